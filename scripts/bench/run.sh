#!/usr/bin/env bash
# Runs every benchmark in scripts/bench/ (each *.sh but this one), in name order; `make bench`.
# Each benchmark records its own section in BENCHMARKS.md. Stops at the first failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$(basename "${BASH_SOURCE[0]}")
shopt -s nullglob
ran=0
for bench in "$here"/*.sh; do
  [[ $(basename "$bench") == "$self" ]] && continue
  echo "==> $(basename "$bench")"
  bash "$bench"
  ran=$((ran + 1))
done
echo "==> $ran benchmark(s) done; results in docs/BENCHMARKS.md"
