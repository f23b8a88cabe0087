#!/usr/bin/env bash
# Benchmark: many small files through the mount, warm and cold, against the same files on local disk.
#
#   A. open + read of every file once, one thread, name order, warm (cache filled and the files
#      read once through this mount): 2,000 PNGs of ~2.5 KB and 2,000 files of 4 KiB.
#   B. a DataLoader-like epoch (`small_files.py epoch`: 2 worker processes, shuffled, batches of
#      32, Pillow decodes each PNG) over 2,000 and 10,000 PNGs: warm through one mount, and cold
#      (fresh cache dir and fresh mount) from a local registry and from an S3 registry (ministack).
#   The local-disk baseline reads the same files from the directory they were logged from: warm
#   (page cache) for the warm cases, after dropping the page cache for the cold ones. Cold mounts
#   put their cache on a fresh ext4 loop filesystem (root: mount, mkfs.ext4).
#   Targets: A ≤ 1.5× local; B warm ≤ 1.1× local, cold ≤ 1.5× local, S3 cold ≤ 1.5× local registry.
#
# Each mount case runs for every binary in BENCH_BINS ("label=path[,mount-arg...] ..."; default:
# this checkout's release build; e.g. "base=/old/artfs new=target/release/artfs,--warm-up,1G"), cases interleaved within a repetition, BENCH_REPS repetitions, medians reported
# with the daemon's CPU seconds (utime+stime from /proc/PID/stat) over the timed part. The section
# `## How fast are many small files?` of BENCHMARKS.md is replaced with the result.
#
# Environment: BENCH_DIR (/tmp/artfs-small), BENCH_BINS, BENCH_REPS (3), BENCH_PYTHON (a python
# with Pillow and numpy; default the wandb test venv's), BENCH_MD (docs/BENCHMARKS.md),
# BENCH_MOUNT_ARGS (extra `artfs mount` arguments for every mount).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH_DIR=${BENCH_DIR:-/tmp/artfs-small}
REPS=${BENCH_REPS:-3}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
PY=${BENCH_PYTHON:-$(ls -d /tmp/artfs-services/wbvenv/bin/python 2>/dev/null || echo python3)}
SECTION="## How fast are many small files?"
ENDPOINT=http://127.0.0.1:4566
BUCKET=artfs-small-$$
note() { echo "small.sh: $*" >&2; }
die() { note "$*"; exit 1; }

if [[ -z ${BENCH_BINS:-} ]]; then
  [[ -x target/release/artfs ]] || cargo build --release
  BENCH_BINS="artfs=$REPO/target/release/artfs"
fi
read -r -a BINS <<<"$BENCH_BINS"
"$PY" -c 'import PIL, numpy' || die "$PY has no Pillow/numpy (set BENCH_PYTHON)"
# shellcheck source=common.sh
source scripts/bench/common.sh
bench_s3_bucket "$ENDPOINT" "$BUCKET" || exit 1
export ARTFS_ENTITY=bench ARTFS_PROJECT=small

# --- data and registries: one artifact, one folder per data set ----------------------------------
DATA=$BENCH_DIR/data
if [[ ! -f $DATA/.done ]]; then
  rm -rf "$DATA"
  "$PY" scripts/bench/small_files.py make "$DATA/png2k" 2000 2500 png
  "$PY" scripts/bench/small_files.py make "$DATA/png10k" 10000 2500 png
  "$PY" scripts/bench/small_files.py make "$DATA/raw4k" 2000 4096 raw
  touch "$DATA/.done"
fi
for set in png2k png10k raw4k; do
  (cd "$DATA/$set" && find . -type f | sed 's|^\./||' | sort) >"$BENCH_DIR/names-$set"
done
LOCAL_REG=$BENCH_DIR/registry
S3_REG=s3://$BUCKET/registry
LOG_BIN=${BINS[0]#*=}; LOG_BIN=${LOG_BIN%%,*}
rm -rf "$LOCAL_REG"
"$LOG_BIN" --registry "$LOCAL_REG" -q log small "$DATA" >/dev/null
AWS_ENDPOINT_URL=$ENDPOINT "$LOG_BIN" --registry "$S3_REG" -q log small "$DATA" >/dev/null

# --- helpers ---------------------------------------------------------------------------------------
wait_mounted() { for _ in $(seq 300); do mountpoint -q "$1" && return 0; sleep 0.1; done; die "no mount at $1"; }
DAEMON=0 MNT=
mount_artfs() { # BIN[,ARG...] REGISTRY: fresh cache (a fresh filesystem) and mount point; sets MNT and DAEMON
  local bin=${1%%,*} reg=$2 args=()
  [[ $1 == *,* ]] && IFS=, read -r -a args <<<"${1#*,}"
  MNT=$BENCH_DIR/mnt; mkdir -p "$MNT"
  bench_fresh_fs "$BENCH_DIR/cachefs" 4G || die "cannot make a fresh cache filesystem"
  # shellcheck disable=SC2086
  AWS_ENDPOINT_URL=$ENDPOINT "$bin" --registry "$reg" --cache-dir "$BENCH_DIR/cachefs/c" --cache-size 3G -v \
    mount small:v0 "$MNT" --foreground "${args[@]}" ${BENCH_MOUNT_ARGS:-} 2>"$BENCH_DIR/mount.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$MNT"); wait_mounted "$MNT"
}
unmount() { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; wait "$DAEMON" 2>/dev/null || true; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$DAEMON/stat"; }
declare -A R C
add() { R[$1]="${R[$1]:-} $2"; }
addc() { C[$1]="${C[$1]:-} $2"; }
openread() { "$PY" scripts/bench/small_files.py openread "$1/$2" "$BENCH_DIR/names-$2"; }
epoch() { "$PY" scripts/bench/small_files.py epoch "$1/$2" "$BENCH_DIR/names-$2" 2; }
timed_mount() { # KEY COMMAND…: time COMMAND through the mount, with the daemon's CPU seconds
  local key=$1 c0 t; shift
  c0=$(cpu); t=$("$@"); add "$key" "$t"; addc "$key" "$(awk -v a="$(cpu)" -v b="$c0" 'BEGIN { printf "%.3f", a - b }')"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPS"); do
  note "repetition $rep of $REPS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  add or-local-png2k "$(openread "$DATA" png2k)"
  add or-local-raw4k "$(openread "$DATA" raw4k)"
  add ep-local-png2k "$(epoch "$DATA" png2k)"
  add ep-local-png10k "$(epoch "$DATA" png10k)"
  for set in png2k png10k; do bench_drop_caches; add "epc-local-$set" "$(epoch "$DATA" "$set")"; done
  for b in "${BINS[@]}"; do
    label=${b%%=*} bin=${b#*=}
    # Warm: cache filled and every file read once through this mount before the clock.
    mount_artfs "$bin" "$LOCAL_REG"
    for set in png2k png10k raw4k; do openread "$MNT" "$set" >/dev/null; done
    timed_mount "or-$label-png2k" openread "$MNT" png2k
    timed_mount "or-$label-raw4k" openread "$MNT" raw4k
    timed_mount "epw-$label-png2k" epoch "$MNT" png2k
    timed_mount "epw-$label-png10k" epoch "$MNT" png10k
    unmount
    # Cold: fresh cache and mount per case, page cache dropped (the local registry's blobs
    # come from the disk, like the local baseline's files).
    for set in png2k png10k; do
      mount_artfs "$bin" "$LOCAL_REG"; bench_drop_caches; timed_mount "epc-$label-$set" epoch "$MNT" "$set"; unmount
      mount_artfs "$bin" "$S3_REG"; bench_drop_caches; timed_mount "eps3-$label-$set" epoch "$MNT" "$set"; unmount
    done
  done
done
for k in "${!R[@]}"; do echo "samples $k:${R[$k]} cpu:${C[$k]:-}"; done | sort >&2
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
declare -A M MC
for k in "${!R[@]}"; do M[$k]=$(median ${R[$k]}); MC[$k]=$(median ${C[$k]:-0}); done
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "yes" : "**NO**") }'; }
row() { # TITLE KEY-PREFIX SET BASE-KEY TARGET
  local title=$1 pre=$2 set=$3 base=$4 target=$5 b label k r
  for b in "${BINS[@]}"; do
    label=${b%%=*} k="$pre-${b%%=*}-$set"
    r=$(ratio "${M[$k]}" "${M[$base]}")
    echo "| $title, \`$label\` | ${M[$k]} s (local ${M[$base]} s) | ${r}× | ${MC[$k]} s | ≤ ${target}× | $(verdict "$r" "$target") |"
  done
}
TABLE=$(
  echo "| measurement | seconds (median) | vs local | daemon CPU | target | met |"
  echo "|---|---:|---:|---:|---|---|"
  row "A. open+read, 2,000 PNGs of ~2.5 KB, warm" or png2k or-local-png2k 1.5
  row "A. open+read, 2,000 files of 4 KiB, warm" or raw4k or-local-raw4k 1.5
  row "B. epoch, 2,000 PNGs, warm" epw png2k ep-local-png2k 1.1
  row "B. epoch, 10,000 PNGs, warm" epw png10k ep-local-png10k 1.1
  row "B. epoch, 2,000 PNGs, cold, local registry" epc png2k epc-local-png2k 1.5
  row "B. epoch, 10,000 PNGs, cold, local registry" epc png10k epc-local-png10k 1.5
  row "B. epoch, 2,000 PNGs, cold, S3 registry" eps3 png2k epc-local-png2k 1.5
  row "B. epoch, 10,000 PNGs, cold, S3 registry" eps3 png10k epc-local-png10k 1.5
  for b in "${BINS[@]}"; do
    l=${b%%=*}
    for set in png2k png10k; do
      r=$(ratio "${M[eps3-$l-$set]}" "${M[epc-$l-$set]}")
      echo "| B. cold S3 vs cold local registry, $set, \`$l\` | ${M[eps3-$l-$set]} vs ${M[epc-$l-$set]} s | ${r}× (vs registry) | – | ≤ 1.5× | $(verdict "$r" 1.5) |"
    done
  done
)
SECTION_TEXT=$(cat <<EOF
$SECTION

Run \`scripts/bench/small.sh\` (root: FUSE). One artifact of three folders: 2,000 and 10,000 RGB-noise
PNGs of ~2.5 KB and 2,000 files of 4 KiB, in 10 class folders each. A: one thread opens and reads
every file once in name order. B: \`small_files.py epoch\`, a DataLoader-like epoch (2 worker
processes, seeded shuffle, batches of 32, Pillow decode; torch itself is not installed here).
Warm: cache filled and every file read once through the same mount first; compared with the
logged folder on local disk, page cache warm. Cold: a fresh mount with its cache on a fresh ext4
filesystem (a new loop image per case), and the page cache dropped before the clock, so the local
registry's blobs come from the disk; compared with the logged folder read after dropping the page
cache too. Daemon CPU: utime+stime of \`artfs mount\` over the timed part. Medians of $REPS
repetitions, cases interleaved.

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) cores; load average at the start: $LOAD0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- binaries: $(for b in "${BINS[@]}"; do printf '`%s` ' "$b"; done | sed "s|$REPO/||g; s|/work/[a-z-]*/||g")(artfs commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ', working tree modified')); mount arguments: \`${BENCH_MOUNT_ARGS:-none}\`

$TABLE

Samples (s): $(for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '%s:%s; ' "$k" "${R[$k]}"; done)
EOF
)
printf '\n%s\n' "$SECTION_TEXT"
if [[ -z ${BENCH_NO_MD:-} ]]; then
  printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
  note "results in $BENCH_MD"
fi
