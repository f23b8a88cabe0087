#!/usr/bin/env bash
# Benchmark: a cold sequential read of an entry larger than the cache (streamed through the
# bounded window of verified chunks, `fetch/stream.rs`) vs a normal cold read of the same entry
# with a cache big enough to hold it (lazy ranged reads into the cache, `fetch/ranged.rs`).
#
#   stream: the cache dir is a 64 MiB tmpfs, so the entry can never be cached;
#   cached: a fresh cache dir on disk with --cache-size 20G.
# Both read the same entry of an S3 registry (ministack on 127.0.0.1) with `cat` through a fresh
# mount (fresh cache, new inodes; the page cache is never dropped machine-wide). Every measurement
# is repeated BENCH_REPS times, the two cases interleaved, and the median reported; the ratio is
# cached seconds / stream seconds (target >= 0.8: streaming costs at most a fifth of the speed).
# Also records the most the cache tmpfs held during a streamed read. Results go to stdout and
# replace the `## How fast is an entry larger than the cache read?` section of BENCHMARKS.md.
#
# Environment: BENCH_DIR (default /tmp/artfs-stream), ARTFS_BIN, BENCH_MIB (512), BENCH_REPS (3),
# BENCH_MD (BENCHMARKS.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH_DIR=${BENCH_DIR:-/tmp/artfs-stream}
MIB=${BENCH_MIB:-512}
REPS=${BENCH_REPS:-3}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## How fast is an entry larger than the cache read?"
ENDPOINT=http://127.0.0.1:4566
BUCKET=artfs-stream-$$
note() { echo "stream.sh: $*" >&2; }
die() { note "$*"; exit 1; }

if [[ -z ${ARTFS_BIN:-} ]]; then
  ARTFS_BIN=$REPO/target/release/artfs
  [[ -x $ARTFS_BIN ]] || cargo build --release
fi
# shellcheck source=scripts/bench/common.sh
source "$REPO/scripts/bench/common.sh"
bench_s3_bucket "$ENDPOINT" "$BUCKET" || exit 1
export AWS_ENDPOINT_URL=$ENDPOINT ARTFS_ENTITY=bench ARTFS_PROJECT=stream

MNT=$BENCH_DIR/mnt SMALL=$BENCH_DIR/small-cache
cleanup() {
  bench_cleanup
  mountpoint -q "$SMALL" && umount -l "$SMALL"
  return 0
}
trap cleanup EXIT

# --- data and registry ----------------------------------------------------------------------------
DATA=$BENCH_DIR/data
if [[ $(stat -c %s "$DATA/big.bin" 2>/dev/null || echo 0) != $((MIB << 20)) ]]; then
  rm -rf "$DATA"; mkdir -p "$DATA"
  head -c $((MIB << 20)) /dev/urandom >"$DATA/big.bin"
fi
REG=s3://$BUCKET/registry
"$ARTFS_BIN" --registry "$REG" -q log big "$DATA" >/dev/null
mkdir -p "$SMALL"
mountpoint -q "$SMALL" || mount -t tmpfs -o size=64m tmpfs "$SMALL"

# --- helpers --------------------------------------------------------------------------------------
now() { date +%s.%N; }
wait_mounted() { for _ in $(seq 300); do mountpoint -q "$1" && return 0; sleep 0.1; done; die "no mount at $1"; }
DAEMON=0
mount_artfs() { # CACHE_DIR [artfs args…]: fresh cache contents, fresh mount at $MNT
  local cache=$1; shift
  rm -rf "${cache:?}"/* "$BENCH_DIR/disk-cache"; mkdir -p "$MNT" "$cache"
  "$ARTFS_BIN" --registry "$REG" --cache-dir "$cache" "$@" mount big:v0 "$MNT" --foreground \
    2>"$BENCH_DIR/mount.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$MNT"); wait_mounted "$MNT"
}
unmount() { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; wait "$DAEMON" 2>/dev/null || true; }
timed() { local t0; t0=$(now); "$@" >/dev/null; printf '%.3f' "$(echo "$(now) - $t0" | bc -l)"; }
read_all() { cat "$MNT/big.bin" >/dev/null; }
PEAK=0
watch_small() { # prints the most the small cache held (bytes) until $BENCH_DIR/stop exists
  local peak=0 used
  while [[ ! -e $BENCH_DIR/stop ]]; do
    used=$(df -B1 --output=used "$SMALL" | tail -1 | tr -d ' ')
    ((used > peak)) && peak=$used
    sleep 0.02
  done
  echo "$peak"
}
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }

for rep in $(seq "$REPS"); do
  note "repetition $rep of $REPS"
  mount_artfs "$SMALL"
  rm -f "$BENCH_DIR/stop"; watch_small >"$BENCH_DIR/peak" &
  WATCH=$!
  add stream "$(timed read_all)"
  touch "$BENCH_DIR/stop"; wait "$WATCH"
  p=$(cat "$BENCH_DIR/peak"); ((p > PEAK)) && PEAK=$p
  grep -q "do not fit the cache" "$BENCH_DIR/mount.log" || die "the small-cache read was not streamed"
  unmount
  mount_artfs "$BENCH_DIR/disk-cache" --cache-size 20G; add cached "$(timed read_all)"; unmount
done
for k in "${!R[@]}"; do echo "samples $k:${R[$k]}"; done | sort >&2
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
declare -A S
for k in "${!R[@]}"; do S[$k]=${R[$k]}; R[$k]=$(median ${R[$k]}); done
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "yes" : "**NO**") }'; }
mibs() { echo "scale=0; $MIB / $1" | bc -l; }
r=$(ratio "${R[cached]}" "${R[stream]}")
SECTION_TEXT=$(cat <<EOF
$SECTION

Run \`scripts/bench/stream.sh\` (root: FUSE and a tmpfs). One $MIB MiB entry in an S3 registry
(ministack on 127.0.0.1), read cold with \`cat\` through a fresh mount: **stream**, the cache dir a
64 MiB tmpfs (the entry can never be cached, so it is read through the window of
$(grep -o 'STREAM_WINDOW_CHUNKS: usize = [0-9]*' src/fetch/stream.rs | grep -o '[0-9]*$') verified chunks in memory); **cached**, a fresh cache dir on disk with
\`--cache-size 20G\` (lazy ranged reads into the cache). Medians of $REPS repetitions, cases
interleaved; the ratio is cached time / stream time, same run.

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) cores; load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)
- artfs: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (working tree modified)'); binary \`${ARTFS_BIN#"$REPO"/}\`

| measurement | seconds (median) | MiB/s | ratio | target | met |
|---|---:|---:|---:|---|---|
| cold \`cat\`, cache big enough (cached) | ${R[cached]} | $(mibs "${R[cached]}") | 1.00 | – | – |
| cold \`cat\`, 64 MiB cache tmpfs (stream) | ${R[stream]} | $(mibs "${R[stream]}") | ${r}× cached | ≥ 0.8× | $(verdict "$r" 0.8) |

Most the 64 MiB cache tmpfs held during a streamed read: $PEAK bytes.
Samples (s): $(for k in cached stream; do printf '%s:%s; ' "$k" "${S[$k]}"; done)
EOF
)
printf '\n%s\n' "$SECTION_TEXT"
printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
note "results in $BENCH_MD"
