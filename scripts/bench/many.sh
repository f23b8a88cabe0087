#!/usr/bin/env bash
# Benchmark (Performance): many single-file artifacts opened by `name:latest`, one after the
# other, over an S3 registry behind +BENCH_LATENCY_MS per request (ministack from
# `scripts/test-services.sh` behind `latency-proxy.py`).
#   sdk:    `wandb.Api().artifact("acme/many/aNNNNN:latest").download()` for each name through
#           `artfs serve`, run twice; the second run (SDK cache warm) is timed
#   mount:  one whole-registry `artfs mount`, a fresh one per row; one process opens and reads
#           `MNT/acme/many/aNNNNN:latest/f.txt` for each name (bytes checked), with the artfs
#           cache warm and with it empty
# target: the mount (cache warm) >= 20x faster than the SDK's cached loop, for N = 300 and 3,000.
# The SDK loop over 3,000 names takes long: with BENCH_SDK_MAX (default 300) it times that many
# names and scales the time up to N (the table says so). With BASE_BIN, the same mount rows run
# for that binary too, interleaved with ARTFS_BIN's (before/after in one run), for N up to
# BENCH_BASE_MAX_N (default: all; the old mount over 3,000 names takes several minutes a row).
# Results go to stdout and to the `## How fast are many artifacts through one mount?` section.
#
# Environment: ARTFS_BIN (default target/release/artfs), BASE_BIN (optional), ARTFS_WANDB_PYTHON
# (default: the test services' wbvenv), BENCH_DIR (default /tmp/artfs-bench-many), BENCH_NS
# ("300 3000"), BENCH_SDK_MAX (300), BENCH_BASE_MAX_N, BENCH_LATENCY_MS (30), BENCH_MD (BENCHMARKS.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
ARTFS_BIN=${ARTFS_BIN:-$REPO/target/release/artfs}
BASE_BIN=${BASE_BIN:-}
DIR=${BENCH_DIR:-/tmp/artfs-bench-many}
NS=${BENCH_NS:-300 3000}
SDK_MAX=${BENCH_SDK_MAX:-300}
BASE_MAX_N=${BENCH_BASE_MAX_N:-}
LAT=${BENCH_LATENCY_MS:-30}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## How fast are many artifacts through one mount?"
[[ -x $ARTFS_BIN ]] || { echo "many.sh: build first (cargo build --release)" >&2; exit 1; }
eval "$(scripts/test-services.sh env)"
PY=${ARTFS_WANDB_PYTHON:-/tmp/artfs-services/wbvenv/bin/python}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
S3=$ARTFS_TEST_S3_ENDPOINT
mkdir -p "$DIR"
load0=$(cut -d' ' -f1-3 /proc/loadavg)

PIDS=()
cleanup() {
  for m in "$DIR"/mnt-*; do fusermount3 -u "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
pport=$((20000 + RANDOM % 20000))
python3 scripts/bench/latency-proxy.py "$pport" "${S3##*:}" "$LAT" &
PIDS+=($!)
SLOW=http://127.0.0.1:$pport
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); printf "%.2f" "$(echo "$t1 - $t0" | bc)"; }

# N artifacts `aNNNNN` of one file each (`f.txt`, distinct bytes), logged straight to S3.
fixture() { # bucket n
  local bucket=$1 n=$2
  curl -sf --noproxy 127.0.0.1 "$S3/$bucket/bench-complete" >/dev/null && return 0
  curl -sf --noproxy 127.0.0.1 -X PUT "$S3/$bucket" >/dev/null || true
  rm -rf "$DIR/src-$n" && mkdir -p "$DIR/src-$n"
  for i in $(seq 0 $((n - 1))); do
    mkdir -p "$DIR/src-$n/$i" && printf 'artifact %05d of %d\n' "$i" "$n" >"$DIR/src-$n/$i/f.txt"
  done
  seq 0 $((n - 1)) | AWS_ENDPOINT_URL=$S3 ARTFS_CACHE_DIR=$DIR/cache-log xargs -P 8 -I{} \
    sh -c "'$ARTFS_BIN' -q --registry s3://$bucket/reg log acme/many/a\$(printf %05d {}) '$DIR/src-$n/{}/f.txt' >/dev/null"
  curl -sf --noproxy 127.0.0.1 -X PUT --data-binary x "$S3/$bucket/bench-complete" >/dev/null
}

sdk_loop() { # url key n
  env WANDB_BASE_URL="$1" WANDB_API_KEY="$2" WANDB_SILENT=true WANDB_CACHE_DIR="$DIR/w/cache" \
    WANDB_DATA_DIR="$DIR/w/data" WANDB_CONFIG_DIR="$DIR/w/config" NETRC="$DIR/w/netrc" \
    "$PY" - "$3" "$DIR/w/dl" <<'EOF'
import sys, wandb
n, root = int(sys.argv[1]), sys.argv[2]
api = wandb.Api()
for i in range(n):
    got = api.artifact("acme/many/a%05d:latest" % i).download(root="%s/%d" % (root, i))
    assert open(got + "/f.txt").read().startswith("artifact %05d " % i)
EOF
}

mount_loop() { # bin bucket n cache-dir
  local bin=$1 bucket=$2 n=$3 cache=$4 mnt=$DIR/mnt-$RANDOM
  mkdir -p "$mnt"
  AWS_ENDPOINT_URL=$SLOW ARTFS_CACHE_DIR=$cache "$bin" --registry "s3://$bucket/reg" mount "$mnt" \
    --log-file "$DIR/mount.log" >/dev/null
  secs python3 - "$mnt/acme/many" "$n" <<'EOF'
import sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open("%s/a%05d:latest/f.txt" % (root, i), "rb") as f:
        assert f.read().startswith(b"artifact %05d " % i), i
EOF
  fusermount3 -u "$mnt" && rmdir "$mnt"
}

rows=()
for n in $NS; do
  bucket=artfs-bench-many-$n
  fixture "$bucket" "$n"
  rm -rf "$DIR/w" "$DIR/serve.out" && mkdir -p "$DIR/w"
  key=$(AWS_ENDPOINT_URL=$S3 "$ARTFS_BIN" -q --registry "s3://$bucket/reg" key create acme)
  AWS_ENDPOINT_URL=$SLOW "$ARTFS_BIN" --registry "s3://$bucket/reg" serve --listen 127.0.0.1:0 \
    >"$DIR/serve.out" 2>"$DIR/serve.log" &
  PIDS+=($!)
  for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$DIR/serve.out")
  m=$((n < SDK_MAX ? n : SDK_MAX))
  sdk_loop "$url" "$key" "$m" # fills the SDK's cache
  t_sdk_m=$(secs sdk_loop "$url" "$key" "$m")
  kill "${PIDS[-1]}"
  t_sdk=$(echo "scale=2; $t_sdk_m * $n / $m" | bc)
  sdk_note=$([[ $m -lt $n ]] && echo " ($m names timed: $t_sdk_m s, scaled to $n)" || true)
  bins=("$ARTFS_BIN")
  [[ -n $BASE_BIN && ( -z $BASE_MAX_N || $n -le $BASE_MAX_N ) ]] && bins=("$BASE_BIN" "$ARTFS_BIN")
  declare -A warm=() cold=()
  # Interleaved: each binary with an empty cache of its own, then each again with that cache.
  for b in "${bins[@]}"; do
    rm -rf "$DIR/cache-${#cold[@]}"
    cold[$b]=$(mount_loop "$b" "$bucket" "$n" "$DIR/cache-${#cold[@]}")
  done
  i=0
  for b in "${bins[@]}"; do
    warm[$b]=$(mount_loop "$b" "$bucket" "$n" "$DIR/cache-$i") && i=$((i + 1))
  done
  rows+=("| $n | SDK \`download()\`, SDK cache warm$sdk_note | $t_sdk | 1.0 |")
  for b in "${bins[@]}"; do
    who=$([[ $b == "$BASE_BIN" ]] && echo "before" || echo "now")
    rows+=("| $n | mount ($who), artfs cache warm | ${warm[$b]} | $(echo "scale=1; $t_sdk / ${warm[$b]}" | bc) |")
    rows+=("| $n | mount ($who), artfs cache empty | ${cold[$b]} | $(echo "scale=1; $t_sdk / ${cold[$b]}" | bc) |")
  done
done

report=$(cat <<EOF
$SECTION

\`scripts/bench/many.sh\`: N artifacts of one small file each, opened one after the other by
\`name:latest\` through one whole-registry mount, against the SDK's
\`Api().artifact("e/p/name:latest").download()\` through \`artfs serve\` (its cache warm: second
loop); S3 (ministack) behind +$LAT ms per request; $(date -u +%Y-%m-%d), $(nproc) cores shared with
other builds (load average at start: $load0; at end: $(cut -d' ' -f1-3 /proc/loadavg)).
Binary: \`$ARTFS_BIN\`$([[ -n $BASE_BIN ]] && echo ", before: \`$BASE_BIN\`"). Speed-up = SDK seconds / row seconds (target >= 20 with the cache warm).

| N | what | seconds | speed-up |
| ---: | --- | ---: | ---: |
$(printf '%s\n' "${rows[@]}")
EOF
)
echo "$report"
echo "$report" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
