#!/usr/bin/env bash
# Benchmark: the wheel. Its size, `pip install` of the local wheel into a fresh venv (dependencies
# already in pip's cache, median of 3), and reads through fsspec vs the mount vs `artfs get` of
# the same 256 MiB file (`fsspec_vs_mount.py`: cold and warm, sequential and random 4 KiB,
# medians of BENCH_REPS). Replaces the `## The wheel: size, install, fsspec vs mount vs get`
# section of BENCHMARKS.md.
#
# Environment: BENCH_MIB (256), BENCH_REPS (3), BENCH_MD (docs/BENCHMARKS.md). Builds the
# release wheel with `make wheel` unless target/wheels holds one.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
MIB=${BENCH_MIB:-256}
REPS=${BENCH_REPS:-3}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## The wheel: size, install, fsspec vs mount vs get"
VENV=$(mktemp -d /tmp/artfs-bench-venv.XXXXXX)
trap 'rm -rf "$VENV"' EXIT

ls target/wheels/artfs-*.whl >/dev/null 2>&1 || make wheel
wheel=$(ls target/wheels/artfs-*.whl | head -1)
python3 -m venv "$VENV/deps" && "$VENV/deps/bin/pip" install -q fsspec
installs=()
for _ in 1 2 3; do
  rm -rf "$VENV/i" && python3 -m venv "$VENV/i"
  start=$(date +%s.%N)
  "$VENV/i/bin/pip" install -q --no-deps "$wheel"
  installs+=("$(printf "%.2f" "$(echo "$(date +%s.%N) - $start" | bc)")")
done
install_s=$(printf '%s\n' "${installs[@]}" | sort -n | sed -n 2p)
"$VENV/i/bin/pip" install -q fsspec
load=$(cut -d' ' -f1-3 /proc/loadavg)
table=$("$VENV/i/bin/python" scripts/bench/fsspec_vs_mount.py "$MIB" "$REPS")
{
  echo "$SECTION"
  echo
  echo "\`scripts/bench/fsspec.sh\` on $(date -u +%F), release wheel, 2 cores, load average $load at the start."
  echo
  echo "- Wheel: \`$(basename "$wheel")\`, $(du -m "$wheel" | cut -f1) MB ($(stat -c %s "$wheel") bytes)."
  echo "- \`pip install --no-deps\` of the local wheel into a fresh venv: ${install_s} s (median of 3)."
  echo "- Reads of one ${MIB} MiB file of random bytes in a local registry, median of ${REPS}; each cell"
  echo "  times opening the reader (fsspec handle, mount, or the whole download for \`get\`) to the last byte:"
  echo
  echo "$table"
} | tee /dev/stderr | python3 scripts/bench/update-section.py "$BENCH_MD" "$SECTION"
