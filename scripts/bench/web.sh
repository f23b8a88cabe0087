#!/usr/bin/env bash
# Benchmark (Performance): server time of the web UI's heavy pages, measured by curl
# (`%{time_total}` against a local `artfs serve`, keep-alive off, the median of BENCH_REPS):
#   - a version of 100,000 entries (50,000 in 1,000 folders of 50 below 100 top folders,
#     50,000 in one flat folder): its version page, its first files page, the last page of the
#     flat folder, a deep folder and a file's page;
#   - the lineage graph of 1,000 nodes (the `registry::lineage::tests::bench_fixture` project of
#     500 runs and 500 versions shaped as a tree, run i using version (i-1)/2, walked whole from
#     its first version): grouped and exploded.
# The load average at the start is printed with the results: on a shared machine it explains
# most of the spread.
#
# Environment: ARTFS_BIN (default target/debug/artfs; BENCH_PROFILE=release for
# target/release), BENCH_DIR (default /tmp/artfs-bench-web), BENCH_REPS (default 15),
# BENCH_MD (a BENCHMARKS.md to update; unset: print only).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
PROFILE=${BENCH_PROFILE:-debug}
BIN=${ARTFS_BIN:-$REPO/target/$PROFILE/artfs}
DIR=${BENCH_DIR:-/tmp/artfs-bench-web}
REPS=${BENCH_REPS:-15}
[[ -x $BIN ]] || { echo "web.sh: build first (cargo build)" >&2; exit 1; }
mkdir -p "$DIR"
REG=$DIR/registry
export ARTFS_REGISTRY=$REG ARTFS_CACHE_DIR=$DIR/cache

if [[ ! -e $DIR/.complete ]]; then
  rm -rf "$REG"
  # 100,000 entries over one stored blob: d00/s00 … d99/s09 and flat/.
  echo one >"$DIR/one.txt"
  "$BIN" -q log bench/web/one "$DIR/one.txt"
  python3 - "$DIR/big.json" <<'EOF'
import base64, hashlib, json, sys
digest = base64.b64encode(hashlib.md5(b"one\n").digest()).decode()
contents = {}
for i in range(50_000):
    contents["d%02d/s%02d/f%06d.txt" % (i % 100, i // 100 % 10, i)] = {"digest": digest, "size": 4}
for i in range(50_000):
    contents["flat/f%06d.txt" % i] = {"digest": digest, "size": 4}
json.dump({"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {},
           "contents": contents}, open(sys.argv[1], "w"))
EOF
  "$BIN" -q log bench/web/big --manifest "$DIR/big.json"
  ARTFS_BENCH_REGISTRY=$REG ARTFS_BENCH_RUNS=500 ARTFS_BENCH_SHAPE=tree \
    cargo test --lib "registry::lineage::tests::bench_fixture" -- --ignored --exact >&2
  touch "$DIR/.complete"
fi

KEY=$("$BIN" -q key create bench --entities bench)
"$BIN" serve --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$DIR/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$DIR/serve.out")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# page path → "median-ms bytes"
time_page() {
  local path=$1 bytes
  bytes=$(curl -s --noproxy 127.0.0.1 -u "api:$KEY" -o /dev/null -w '%{size_download}' "$URL$path")
  for _ in $(seq "$REPS"); do
    curl -s --noproxy 127.0.0.1 -u "api:$KEY" -H 'Connection: close' -o /dev/null \
      -w '%{time_total}\n' "$URL$path"
  done | awk '{printf "%.0f\n", $1 * 1000}' | median | tr -d '\n'
  echo " $bytes"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
big=/ui/a/bench/web/big/v0
graph=/ui/a/bench/p/c000/v0
rows=()
for page in "version page|$big" "first files page|$big/files" "flat folder, page 250 of 250|$big/files/flat/?page=250" \
  "deep folder (50 files)|$big/files/d42/s03/" "one file's page|$big/files/d42/s03/f030342.txt" \
  "graph of 1,000 nodes, grouped|$graph" "graph of 1,000 nodes, exploded|$graph?explode=1"; do
  what=${page%%|*} path=${page#*|}
  read -r ms bytes < <(time_page "$path")
  rows+=("| $what | \`$path\` | $ms ms | $((bytes / 1024)) KiB |")
done

out=$(
  echo "## How fast are the web UI's pages?"
  echo
  echo "\`scripts/bench/web.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $PROFILE build, load average at the start $load; server time as curl sees it, median of $REPS requests, one connection each."
  echo
  echo "| page | path | time | size |"
  echo "| --- | --- | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
)
echo "$out"
if [[ -n ${BENCH_MD:-} ]]; then
  echo "$out" | python3 scripts/bench/update-section.py "$BENCH_MD" "## How fast are the web UI's pages?"
fi
