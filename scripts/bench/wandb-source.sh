#!/usr/bin/env bash
# Benchmark (Performance): a W&B server as the registry. One `artfs serve` on
# 127.0.0.1 holds an artifact logged by the wandb SDK (one BENCH_BIG_MIB file + BENCH_SMALL
# files of BENCH_SMALL_KIB), read back three ways, each with an empty cache of its own:
#   SDK `artifact.download()`  vs  `artfs get --registry http://…`  vs  `cat` of every file
#   through `artfs mount --registry http://…`   (target: the mount >= 1.5x faster than the SDK)
# and the time to the first byte through a fresh mount with an empty cache, of one small file
# and of the big one (target: < 1 s). W&B keeps no chunk checksums, so the big file's first
# byte waits for the whole file to arrive (parallel ranges) and match its MD5; BENCH_BIG_MIB=4096
# measures a 4 GiB entry (default 1 GiB: the disk and time of a shared machine).
# Page cache warm on the server side; one run; compare ratios within the run only.
# Results go to stdout and to the `## How fast is a W&B server as the registry?` section of BENCHMARKS.md.
#
# Environment: ARTFS_BIN (default target/release/artfs), ARTFS_WANDB_PYTHON (a Python with
# wandb==0.31.0), BENCH_DIR (default /tmp/artfs-bench-wandb-source), BENCH_BIG_MIB (1024),
# BENCH_SMALL (2000), BENCH_SMALL_KIB (16), BENCH_MD (default BENCHMARKS.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARTFS_BIN=${ARTFS_BIN:-$REPO/target/release/artfs}
PY=${ARTFS_WANDB_PYTHON:-/work/venv/bin/python}
DIR=${BENCH_DIR:-/tmp/artfs-bench-wandb-source}
BIG_MIB=${BENCH_BIG_MIB:-1024}
SMALL=${BENCH_SMALL:-2000}
SMALL_KIB=${BENCH_SMALL_KIB:-16}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
[[ -x $ARTFS_BIN ]] || { echo "wandb-source.sh: build first (cargo build --release)" >&2; exit 1; }

rm -rf "$DIR" && mkdir -p "$DIR/data/small" "$DIR/w/wandb" "$DIR/mnt"
head -c "$((BIG_MIB << 20))" /dev/urandom >"$DIR/data/big.bin"
"$PY" - "$DIR/data/small" "$SMALL" "$SMALL_KIB" <<'EOF'
import os, sys
root, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 20))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(kib * 1024))
EOF
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); printf "%.2f" "$(echo "$t1 - $t0" | bc)"; }

REG=$DIR/reg
KEY=$("$ARTFS_BIN" -q --registry "$REG" key create acme)
ARTFS_LOG=artfs=info "$ARTFS_BIN" --registry "$REG" serve --listen 127.0.0.1:0 \
  >"$DIR/serve.out" 2>"$DIR/serve.log" &
SERVER=$!
cleanup() {
  fusermount3 -u "$DIR/mnt" 2>/dev/null || true
  kill $SERVER 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$DIR/serve.out")
sdk() {
  env WANDB_BASE_URL="$URL" WANDB_API_KEY="$KEY" WANDB_MODE=online WANDB_SILENT=true \
    WANDB_DIR="$DIR/w/wandb" WANDB_CACHE_DIR="$DIR/w/$1" WANDB_DATA_DIR="$DIR/w/data" \
    WANDB_CONFIG_DIR="$DIR/w/config" WANDB_DISABLE_GIT=true NETRC="$DIR/w/netrc" \
    "$PY" -c "$2"
}
LOG='import wandb
with wandb.init(entity="acme", project="bench", job_type="bench") as run:
    a = wandb.Artifact("data", type="dataset"); a.add_dir("'"$DIR/data"'")
    run.log_artifact(a); a.wait()'
GET='import wandb
wandb.Api().artifact("acme/bench/data:latest").download(root="'"$DIR/dl-sdk"'")'
t_sdk_log=$(secs sdk cache-up "$LOG")
rm -rf "$DIR/w/cache-up" "$DIR/w/data"

# Every reader with an empty cache of its own; the artfs ones read the server as W&B.
artfs() { env ARTFS_CACHE_DIR="$DIR/cache-$1" WANDB_API_KEY="$KEY" NETRC="$DIR/w/netrc" \
  "$ARTFS_BIN" --registry "$URL" "${@:2}"; }
mount_fresh() {
  artfs "$1" mount acme/bench/data:latest "$DIR/mnt" --log-file "$DIR/mount-$1.log"
}
t_sdk_get=$(secs sdk cache-down "$GET")
rm -rf "$DIR/w/cache-down"
t_artfs_get=$(secs artfs get -q get acme/bench/data:latest --root "$DIR/dl-artfs")
rm -rf "$DIR/cache-get"
mount_fresh cat
t_mount_cat=$(secs sh -c "find '$DIR/mnt' -type f -exec cat {} + >/dev/null")
fusermount3 -u "$DIR/mnt"
rm -rf "$DIR/cache-cat"
# Where the mount's time goes: the small files alone (the big one alone is its first byte below).
mount_fresh small
t_mount_small=$(secs sh -c "find '$DIR/mnt/small' -type f -exec cat {} + >/dev/null")
fusermount3 -u "$DIR/mnt"
rm -rf "$DIR/cache-small"
diff -r "$DIR/dl-sdk" "$DIR/data" >/dev/null && diff -r "$DIR/dl-artfs" "$DIR/data" >/dev/null \
  || { echo "wandb-source.sh: downloaded trees differ from the source" >&2; exit 1; }
rm -rf "$DIR/dl-sdk" "$DIR/dl-artfs"

# Time to first byte, each through a fresh mount with an empty cache.
mount_fresh ttfb-small
t_first_small=$(secs head -c 1 "$DIR/mnt/small/d07/f00007.bin")
fusermount3 -u "$DIR/mnt"
mount_fresh ttfb-big
t_first_big=$(secs head -c 1 "$DIR/mnt/big.bin")
fusermount3 -u "$DIR/mnt"
# The floor for that first byte: MD5 of the file from page cache, one core (what artfs must
# compute before serving a byte of it).
t_md5=$(secs md5sum "$DIR/data/big.bin")
# GETs of the big file over the run: one per 16 MiB range for each artfs reader.
big_hex=$(md5sum "$DIR/data/big.bin" | cut -d' ' -f1)
ranged=$(grep -c "GET /storage/blob/$big_hex" "$DIR/serve.log" || true)
kill $SERVER 2>/dev/null || true

ratio() { echo "scale=2; $1 / $2" | bc; }
report=$(cat <<EOF
## How fast is a W&B server as the registry?

\`scripts/bench/wandb-source.sh\`: \`artfs serve\` on 127.0.0.1 holding one artifact logged by the
wandb SDK 0.31 (one file of $BIG_MIB MiB + $SMALL files of $SMALL_KIB KiB; the log took $t_sdk_log s),
read by each reader with an empty cache of its own (the server's page cache warm), one run,
$(date -u +%Y-%m-%d) on $(nproc) cores shared with other builders; ratios within this run.

| what | seconds | SDK / this |
| --- | ---: | ---: |
| SDK \`artifact.download()\` | $t_sdk_get | 1.00 |
| \`artfs get --registry http://…\` | $t_artfs_get | $(ratio "$t_sdk_get" "$t_artfs_get") |
| \`cat\` of every file through \`artfs mount --registry http://…\` | $t_mount_cat | $(ratio "$t_sdk_get" "$t_mount_cat") (target >= 1.5) |
| of which: \`cat\` of the $SMALL small files only (fresh mount) | $t_mount_small | |

Time to the first byte through a fresh mount, empty cache: a $SMALL_KIB KiB file $t_first_small s,
the $BIG_MIB MiB file $t_first_big s (target < 1 s). The big file has no chunk checksums on a W&B
server, so its first byte waits until all of it arrived by parallel 16 MiB ranges and matched its
MD5 ($ranged GETs of it in the server log over the run, all readers together); \`md5sum\` of the
same file from page cache alone takes $t_md5 s.$( ((BIG_MIB < 4096)) && printf '%s' " A 4 GiB entry was not run here
(disk and time on a shared machine): \`BENCH_BIG_MIB=4096\` runs it.")
EOF
)
echo "$report"
echo "$report" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "## How fast is a W&B server as the registry?"
