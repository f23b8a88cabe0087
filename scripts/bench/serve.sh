#!/usr/bin/env bash
# Benchmark (Performance): the wandb SDK through `artfs serve` against artfs itself.
#   log:      SDK `log_artifact` of BENCH_FILES files through `artfs serve`  vs  `artfs log`
#             (target: within 1.5x)
#   download: SDK `artifact.download()` through `artfs serve`  vs  `artfs get`  vs  `cat` of every
#             file through `artfs mount` (each with an empty cache)
#   floors:   what the SDK costs without any upload: a run that logs nothing (init + finish), and
#             a re-log of the same files with a fresh SDK cache (init + hashing every file +
#             createArtifact answered COMMITTED + finish)
#   memory:   peak RSS (VmHWM) of the server over the run; with BENCH_BIG_GIB=N (e.g. 4) also
#             of a fresh server receiving one file of N GiB (multipart) through the SDK
# Warm page cache, one repetition (the SDK run dominates; compare ratios of one run only).
# Results go to stdout and to the `## How fast is the SDK through `artfs serve`?` section of BENCHMARKS.md.
#
# Environment: ARTFS_BIN (default target/release/artfs), ARTFS_WANDB_PYTHON (a Python with
# wandb==0.31.0; default /work/venv/bin/python), BENCH_DIR (default /tmp/artfs-bench-serve),
# BENCH_FILES (default 2000), BENCH_FILE_KIB (default 1024), BENCH_MD (default BENCHMARKS.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARTFS_BIN=${ARTFS_BIN:-$REPO/target/release/artfs}
PY=${ARTFS_WANDB_PYTHON:-/work/venv/bin/python}
DIR=${BENCH_DIR:-/tmp/artfs-bench-serve}
FILES=${BENCH_FILES:-2000}
KIB=${BENCH_FILE_KIB:-1024}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
[[ -x $ARTFS_BIN ]] || { echo "serve.sh: build first (cargo build --release)" >&2; exit 1; }

rm -rf "$DIR" && mkdir -p "$DIR/data" "$DIR/w/wandb"
"$PY" - "$DIR/data" "$FILES" "$KIB" <<'EOF'
import os, sys
root, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(kib * 1024))
EOF
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); printf "%.2f" "$(echo "$t1 - $t0" | bc)"; }

export ARTFS_CACHE_DIR=$DIR/cache-log
t_artfs_log=$(secs "$ARTFS_BIN" -q --registry "$DIR/reg-cli" log acme/bench/data "$DIR/data")

REG=$DIR/reg-serve
KEY=$("$ARTFS_BIN" -q --registry "$REG" key create acme)
"$ARTFS_BIN" --registry "$REG" serve --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$DIR/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$DIR/serve.out")
sdk() {
  env WANDB_BASE_URL="$URL" WANDB_API_KEY="$KEY" WANDB_MODE=online WANDB_SILENT=true \
    WANDB_DIR="$DIR/w/wandb" WANDB_CACHE_DIR="$DIR/w/$1" WANDB_DATA_DIR="$DIR/w/data" \
    WANDB_CONFIG_DIR="$DIR/w/config" WANDB_DISABLE_GIT=true NETRC="$DIR/w/netrc" \
    "$PY" -c "$2"
}
LOG='import wandb, sys
with wandb.init(entity="acme", project="bench", job_type="bench") as run:
    a = wandb.Artifact("data", type="dataset"); a.add_dir(sys.argv[1] if len(sys.argv) > 1 else "'"$DIR/data"'")
    run.log_artifact(a); a.wait()'
GET='import wandb
wandb.Api().artifact("acme/bench/data:latest").download(root="'"$DIR/dl-sdk"'")'
NOOP='import wandb
with wandb.init(entity="acme", project="bench", job_type="noop") as run:
    pass'
t_sdk_noop=$(secs sdk cache-noop "$NOOP")
t_sdk_log=$(secs sdk cache-up "$LOG")
t_sdk_relog=$(secs sdk cache-relog "$LOG")
t_sdk_get=$(secs sdk cache-down "$GET")
export ARTFS_CACHE_DIR=$DIR/cache-get
t_artfs_get=$(secs "$ARTFS_BIN" -q --registry "$REG" get acme/bench/data:latest --root "$DIR/dl-artfs")
export ARTFS_CACHE_DIR=$DIR/cache-mount
mkdir -p "$DIR/mnt"
"$ARTFS_BIN" --registry "$REG" mount acme/bench/data:latest "$DIR/mnt" --log-file "$DIR/mount.log"
t_mount_cat=$(secs sh -c "find '$DIR/mnt' -type f -exec cat {} + >/dev/null")
fusermount3 -u "$DIR/mnt" || true
diff -r "$DIR/dl-sdk" "$DIR/data" >/dev/null && diff -r "$DIR/dl-artfs" "$DIR/data" >/dev/null \
  || { echo "serve.sh: downloaded trees differ from the source" >&2; exit 1; }
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
kill $SERVER 2>/dev/null || true

big_line=""
if [[ -n ${BENCH_BIG_GIB:-} ]]; then
  # A fresh server and registry, so the peak is the big upload's alone.
  rm -rf "$DIR/data" "$DIR/dl-sdk" "$DIR/dl-artfs" "$DIR/cache-"* "$DIR/w/cache-"*
  mkdir -p "$DIR/big"
  head -c "$((BENCH_BIG_GIB << 30))" /dev/urandom >"$DIR/big/big.bin"
  REG=$DIR/reg-big
  KEY=$("$ARTFS_BIN" -q --registry "$REG" key create acme)
  rm -f "$DIR/serve.out"
  ARTFS_LOG=artfs=info "$ARTFS_BIN" --registry "$REG" serve --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$DIR/serve-big.log" &
  SERVER=$!
  for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$DIR/serve.out")
  t_big=$(secs sdk cache-big "$(printf '%s' "$LOG" | sed "s|$DIR/data|$DIR/big|")")
  big_kib=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  grep -q "PUT /storage/part/" "$DIR/serve-big.log" || { echo "serve.sh: the big file was not sent in parts" >&2; exit 1; }
  kill $SERVER 2>/dev/null || true
  big_line="Server peak RSS (VmHWM) receiving one file of $BENCH_BIG_GIB GiB through the SDK (multipart): $((big_kib / 1024)) MiB (limit 256 MiB); the upload took $t_big s."
  rm -rf "$DIR/big" "$REG"
fi

MIB=$((FILES * KIB / 1024))
ratio() { echo "scale=2; $1 / $2" | bc; }
report=$(cat <<EOF
## How fast is the SDK through `artfs serve`?

\`scripts/bench/serve.sh\`, $FILES files of $KIB KiB ($MIB MiB), warm page cache, one run,
$(date -u +%Y-%m-%d) on $(nproc) cores shared with other work; ratios within this run.

| what | seconds | ratio |
| --- | ---: | ---: |
| \`artfs log\` | $t_artfs_log | 1.00 |
| SDK \`log_artifact\` through \`artfs serve\` | $t_sdk_log | $(ratio "$t_sdk_log" "$t_artfs_log") (target <= 1.5) |
| floor: SDK run logging nothing (init + finish) | $t_sdk_noop | $(ratio "$t_sdk_noop" "$t_artfs_log") |
| floor: SDK re-log of the same files, fresh SDK cache (hashing, no upload) | $t_sdk_relog | $(ratio "$t_sdk_relog" "$t_artfs_log") |
| \`artfs get\` | $t_artfs_get | 1.00 |
| SDK \`artifact.download()\` through \`artfs serve\` | $t_sdk_get | $(ratio "$t_sdk_get" "$t_artfs_get") |
| \`cat\` of every file through \`artfs mount\` | $t_mount_cat | $(ratio "$t_mount_cat" "$t_artfs_get") |

Server peak RSS (VmHWM) over the run: $((rss_kib / 1024)) MiB.
$big_line
EOF
)
echo "$report"
echo "$report" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "## How fast is the SDK through `artfs serve`?"
