#!/usr/bin/env bash
# Benchmark (Performance): `artfs lineage` of a version 3 hops deep in a project
# with 10,000 runs and 10,000 versions: under 1 s on a local registry, and a handful of requests
# on S3.
#
# The project is built once per registry by the `registry::lineage::tests::bench_fixture` test
# (ignored by default): run i logs version i (100 collections of 100 versions) and uses version
# i-1 and a random older one. Timings are the median of BENCH_REPS runs of the release binary.
# The S3 part (ministack, `scripts/test-services.sh env`) builds a smaller project
# (BENCH_S3_RUNS, default 1,000: building 10,000 runs through ministack takes long) and counts
# the requests of one lineage call through a counting proxy; the walk's requests do not depend
# on the project's size (one listing per node), which the local runs at both sizes show.
#
# Environment: BENCH_DIR (default /tmp/artfs-bench-lineage), BENCH_REPS (5), BENCH_RUNS (10000),
# BENCH_S3_RUNS (1000), BENCH_MD (BENCHMARKS.md).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH_DIR=${BENCH_DIR:-/tmp/artfs-bench-lineage}
REPS=${BENCH_REPS:-5}
RUNS=${BENCH_RUNS:-10000}
S3_RUNS=${BENCH_S3_RUNS:-1000}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## How fast is `artfs lineage` on a large project?"
BIN=$REPO/target/release/artfs
[[ -x $BIN ]] || cargo build --release
mkdir -p "$BENCH_DIR"

fixture() { # registry-url runs
  ARTFS_BENCH_REGISTRY=$1 ARTFS_BENCH_RUNS=$2 \
    cargo test --release --lib registry::lineage::tests::bench_fixture -- --ignored --exact >&2
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

time_lineage() { # registry version args...
  local reg=$1 v=$2; shift 2
  for _ in $(seq "$REPS"); do
    local t0 t1
    t0=$(date +%s%N)
    ARTFS_REGISTRY=$reg "$BIN" lineage "$v" "$@" --json >"$BENCH_DIR/out.json"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | median
}

nodes() { python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); print(len(g["nodes"]), len(g["edges"]))' "$BENCH_DIR/out.json"; }

rows=()
for n in 1000 "$RUNS"; do
  reg=$BENCH_DIR/local-$n
  if [[ ! -e $reg/.complete ]]; then
    rm -rf "$reg"
    t0=$SECONDS
    fixture "$reg" "$n"
    echo "built $n runs in $((SECONDS - t0)) s" >&2
    touch "$reg/.complete"
  fi
  mid=bench/p/c050:v$((n / 200))
  up=$(time_lineage "$reg" "$mid" --up --depth 3); up_nodes=$(nodes)
  both=$(time_lineage "$reg" "$mid" --depth 3); both_nodes=$(nodes)
  rows+=("| local | $n | $n | \`--up --depth 3\` | $up ms | $up_nodes |")
  rows+=("| local | $n | $n | \`--depth 3\` (both ways) | $both ms | $both_nodes |")
done

s3_row=""
if eval "$(scripts/test-services.sh env 2>/dev/null)" && [[ -n ${ARTFS_TEST_S3_ENDPOINT:-} ]]; then
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  bucket=artfs-bench-lineage-$S3_RUNS
  port=${ARTFS_TEST_S3_ENDPOINT##*:}
  if ! curl -sf --noproxy 127.0.0.1 "$ARTFS_TEST_S3_ENDPOINT/$bucket/bench-complete" >/dev/null; then
    curl -sf --noproxy 127.0.0.1 -X PUT "$ARTFS_TEST_S3_ENDPOINT/$bucket" >/dev/null || true
    AWS_ENDPOINT_URL=$ARTFS_TEST_S3_ENDPOINT fixture "s3://$bucket/reg" "$S3_RUNS"
    curl -sf --noproxy 127.0.0.1 -X PUT --data-binary x "$ARTFS_TEST_S3_ENDPOINT/$bucket/bench-complete" >/dev/null
  fi
  pport=$((20000 + RANDOM % 20000))
  python3 scripts/bench/latency-proxy.py "$pport" "$port" 20 "$BENCH_DIR/count" &
  proxy=$!
  trap 'kill $proxy 2>/dev/null || true' EXIT
  sleep 0.5
  mid=bench/p/c050:v$((S3_RUNS / 200))
  echo 0 >"$BENCH_DIR/count"
  export AWS_ENDPOINT_URL=http://127.0.0.1:$pport
  t=$(REPS=1 time_lineage "s3://$bucket/reg" "$mid" --up --depth 3)
  before=$(cat "$BENCH_DIR/count")
  t=$(time_lineage "s3://$bucket/reg" "$mid" --up --depth 3)
  after=$(cat "$BENCH_DIR/count")
  reqs=$(((after - before) / REPS))
  s3_row="| S3 (ministack, +20 ms per request) | $S3_RUNS | $S3_RUNS | \`--up --depth 3\` | $t ms | $(nodes) |"
  s3_note="On S3 one \`artfs lineage --up --depth 3\` makes **$reqs requests** (counted by a proxy; they include the registry check and one listing per node, plus each collection's and run's log reads)."
fi

{
  echo "$SECTION"
  echo
  echo "\`scripts/bench/lineage.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores (median of $REPS). Target: under 1 s locally for 3 hops in a project of 10,000 runs and 10,000 versions; a handful of requests on S3."
  echo
  echo "| registry | runs | versions | walk | time | nodes, edges |"
  echo "| --- | ---: | ---: | --- | ---: | --- |"
  printf '%s\n' "${rows[@]}"
  [[ -n $s3_row ]] && echo "$s3_row"
  echo
  [[ -n ${s3_note:-} ]] && echo "$s3_note"
} | tee /dev/stderr | python3 scripts/bench/update-section.py "$BENCH_MD" "$SECTION"
