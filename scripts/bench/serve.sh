#!/usr/bin/env bash
# Benchmark (Performance): the wandb SDK through `artfs serve` against artfs itself.
#   log:      SDK `log_artifact` of BENCH_FILES files through `artfs serve`, against the SDK's own
#             floor in the same run: a re-log of the same files with a fresh SDK cache (init +
#             hashing every file + createArtifact answered COMMITTED + finish, nothing uploaded).
#             Target: through serve within 1.15x of that floor. Also `artfs log` of the same files,
#             the server's CPU seconds over the upload (/proc/PID/stat utime+stime) and the SDK's
#             (python + wandb-core, from wait4's rusage of the python process and its children).
#   download: SDK `artifact.download()` through `artfs serve`  vs  `artfs get`  vs  `cat` of every
#             file through `artfs mount` (each with an empty cache)
#   floors:   a run that logs nothing (init + finish), besides the re-log above
#   memory:   peak RSS (VmHWM) of the server over the run; with BENCH_BIG_GIB=N (e.g. 4) also
#             of a fresh server receiving one file of N GiB (multipart) through the SDK
# Warm page cache. The log and its floor run BENCH_RUNS times (default 1), each time against a
# fresh registry and server; the table shows the medians. BENCH_ONLY=log skips the download part.
# Results go to stdout and to the `## How fast is the SDK through `artfs serve`?` section of BENCHMARKS.md
# (with BENCH_NOTES, a file of text to append below the table, e.g. where the time goes).
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
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {printf "%.2f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }
TCK=$(getconf CLK_TCK)
cpu_of() { awk -v t="$TCK" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; } # utime + stime
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src || echo "+dirty")

export ARTFS_CACHE_DIR=$DIR/cache-log
t_artfs_log=$(secs "$ARTFS_BIN" -q --registry "$DIR/reg-cli" log acme/bench/data "$DIR/data")

SERVER=""
trap '[[ -n $SERVER ]] && kill $SERVER 2>/dev/null || true' EXIT
start_server() { # REGISTRY LOGFILE: a server over the registry; sets KEY, SERVER, URL
  KEY=$("$ARTFS_BIN" -q --registry "$1" key create acme)
  rm -f "$DIR/serve.out"
  "$ARTFS_BIN" --registry "$1" serve --listen 127.0.0.1:0 >"$DIR/serve.out" 2>"$2" &
  SERVER=$!
  for _ in $(seq 100); do [[ -s $DIR/serve.out ]] && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$DIR/serve.out")
}
# sdk CACHE CODE: runs CODE with the SDK against the server; its user+system CPU (python and the
# wandb-core it waits for) goes to $DIR/sdk.cpu.
sdk() {
  /usr/bin/time -f "%U %S" -o "$DIR/sdk.time" \
    env WANDB_BASE_URL="$URL" WANDB_API_KEY="$KEY" WANDB_MODE=online WANDB_SILENT=true \
    WANDB_DIR="$DIR/w/wandb" WANDB_CACHE_DIR="$DIR/w/$1" WANDB_DATA_DIR="$DIR/w/data" \
    WANDB_CONFIG_DIR="$DIR/w/config" WANDB_DISABLE_GIT=true NETRC="$DIR/w/netrc" \
    "$PY" -c "$2"
  awk '{printf "%.2f", $1 + $2}' "$DIR/sdk.time" >"$DIR/sdk.cpu"
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

# Each round: a fresh registry and server, the upload, then the floor (a re-log of the same
# files, which the server answers COMMITTED without a byte sent) with a fresh SDK cache.
RUNS=${BENCH_RUNS:-1}
LOGS=() RELOGS=() RATIOS=() SCPUS=() UCPUS=() FCPUS=()
for r in $(seq "$RUNS"); do
  [[ -n $SERVER ]] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$DIR/reg-serve" "$DIR/w/cache-"* "$DIR/reg-cli" "$DIR/cache-log"
  # ext4 without a journal (this VM's disk) passes over every inode freed in the last minute (6
  # while its inode table block is unwritten) on each create, one by one: right after deleting
  # thousands of files, each new file costs the server and wandb-core (which copies every file
  # into its cache) far more CPU (`recently_deleted` in a profile). So: written out, then a wait.
  sync
  sleep "${BENCH_SETTLE:-61}"
  REG=$DIR/reg-serve
  start_server "$REG" "$DIR/serve.log"
  [[ $r == 1 ]] && t_sdk_noop=$(secs sdk cache-noop "$NOOP")
  c0=$(cpu_of "$SERVER")
  t=$(secs sdk cache-up "$LOG")
  c1=$(cpu_of "$SERVER")
  LOGS+=("$t") UCPUS+=("$(cat "$DIR/sdk.cpu")") SCPUS+=("$(echo "$c1 - $c0" | bc)")
  f=$(secs sdk cache-relog "$LOG")
  RELOGS+=("$f") FCPUS+=("$(cat "$DIR/sdk.cpu")") RATIOS+=("$(ratio "$t" "$f")")
  echo "serve.sh: round $r: through serve ${t}s, floor ${f}s, server CPU ${SCPUS[-1]}s, SDK CPU ${UCPUS[-1]}s (floor ${FCPUS[-1]}s)" >&2
done
t_sdk_log=$(median "${LOGS[@]}") t_sdk_relog=$(median "${RELOGS[@]}") floor_ratio=$(median "${RATIOS[@]}")
cpu_server=$(median "${SCPUS[@]}") cpu_sdk=$(median "${UCPUS[@]}") cpu_floor=$(median "${FCPUS[@]}")

download_rows=""
if [[ ${BENCH_ONLY:-} != log ]]; then
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
  download_rows=$(cat <<EOF

| download | seconds | ratio |
| --- | ---: | ---: |
| \`artfs get\` | $t_artfs_get | 1.00 |
| SDK \`artifact.download()\` through \`artfs serve\` | $t_sdk_get | $(ratio "$t_sdk_get" "$t_artfs_get") |
| \`cat\` of every file through \`artfs mount\` | $t_mount_cat | $(ratio "$t_mount_cat" "$t_artfs_get") |
EOF
)
fi
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
kill "$SERVER" 2>/dev/null || true
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

big_line=""
if [[ -n ${BENCH_BIG_GIB:-} ]]; then
  # A fresh server and registry, so the peak is the big upload's alone.
  rm -rf "$DIR/data" "$DIR/dl-sdk" "$DIR/dl-artfs" "$DIR/cache-"* "$DIR/w/cache-"* "$DIR/reg-serve"
  mkdir -p "$DIR/big"
  head -c "$((BENCH_BIG_GIB << 30))" /dev/urandom >"$DIR/big/big.bin"
  REG=$DIR/reg-big
  ARTFS_LOG=artfs=info start_server "$REG" "$DIR/serve-big.log"
  t_big=$(secs sdk cache-big "$(printf '%s' "$LOG" | sed "s|$DIR/data|$DIR/big|")")
  big_kib=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  grep -q "PUT /storage/part/" "$DIR/serve-big.log" || { echo "serve.sh: the big file was not sent in parts" >&2; exit 1; }
  kill "$SERVER" 2>/dev/null || true
  big_line="Server peak RSS (VmHWM) receiving one file of $BENCH_BIG_GIB GiB through the SDK (multipart): $((big_kib / 1024)) MiB (limit 256 MiB); the upload took $t_big s."
  rm -rf "$DIR/big" "$REG"
fi

MIB=$((FILES * KIB / 1024))
notes=""
[[ -n ${BENCH_NOTES:-} ]] && notes=$'\n'$(cat "$BENCH_NOTES")
report=$(cat <<EOF
## How fast is the SDK through \`artfs serve\`?

\`scripts/bench/serve.sh\` (BENCH_RUNS=$RUNS${BENCH_ONLY:+, BENCH_ONLY=$BENCH_ONLY}), $FILES files of $KIB KiB ($MIB MiB), warm
page cache, release build of commit $COMMIT, $(date -u '+%Y-%m-%d %H:%M') UTC on $(nproc) cores, load
average $LOAD0 at the start and $LOAD1 at the end. Medians of $RUNS round(s), each against
a fresh registry and server; the ratio is the median of each round's own ratio.

**SDK \`log_artifact\` through \`artfs serve\`: $floor_ratio x the SDK's own floor (target <= 1.15).**

| upload | seconds | CPU seconds | ratio to the floor |
| --- | ---: | ---: | ---: |
| floor: SDK re-log of the same files, fresh SDK cache (hashing, no upload) | $t_sdk_relog | SDK $cpu_floor | 1.00 |
| SDK \`log_artifact\` through \`artfs serve\` | $t_sdk_log | SDK $cpu_sdk, server $cpu_server | $floor_ratio |
| \`artfs log\` of the same files (one run) | $t_artfs_log | | $(ratio "$t_artfs_log" "$t_sdk_relog") |
| SDK run logging nothing (init + finish, one run) | $t_sdk_noop | | $(ratio "$t_sdk_noop" "$t_sdk_relog") |

Rounds (through serve / floor, seconds): $(for i in "${!LOGS[@]}"; do printf '%s / %s; ' "${LOGS[$i]}" "${RELOGS[$i]}"; done)
$download_rows

Server peak RSS (VmHWM) over the run: $((rss_kib / 1024)) MiB.
$big_line$notes
EOF
)
echo "$report"
echo "$report" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "## How fast is the SDK through \`artfs serve\`?"
