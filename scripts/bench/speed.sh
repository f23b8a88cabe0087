#!/usr/bin/env bash
# Benchmark (read speed): artfs mount vs curl, s3fs and rclone mount, all reading the
# same objects from the same local S3 server (ministack) in the same run.
#
#   1. one 1 GiB file read sequentially (cold, warm): artfs vs curl GET vs s3fs vs rclone
#   2. 10,000 x 16 KiB files read by 8 parallel readers (cold, warm): artfs vs s3fs vs rclone
#   3. 4 KiB at a random offset of a 4 GiB file (metadata known, data cold): time, bytes fetched
#   4. a cached 1 GiB file through the mount vs the cache file directly (disk-cold: the whole
#      page cache dropped before each read, `drop_caches`; page-warm)
#   2b. the first 500 of those files through a proxy adding 30 ms per request (a realistic
#       object-store round trip; loopback has none): artfs (readahead on, off) vs s3fs vs rclone
#   5. artfs daemon peak RSS (VmHWM) over 1 and 2
#
# Peers read artfs's own blob objects (`registry/blobs/md5/..`): same bytes, same server.
# cold = this run's files evicted from the page cache one by one (`evict.py`, posix_fadvise
# DONTNEED; not `drop_caches`, which would disturb others measuring on the machine) and empty
# caches (fresh mount, fresh cache dir); row 4's disk-cold reads alone drop the whole page cache
# (see `drop_all`);
# warm = the same read again on the same mount. Results go to stdout and replace the
# `## Cold sequential reads: artfs vs s3fs, rclone and curl` section of BENCHMARKS.md. Leaves no mount or server behind (ministack is
# stopped again if this script started it).
#
# Environment: BENCH_DIR (default /tmp/artfs-speed), ARTFS_BIN, BENCH_BIG_MIB (1024),
# BENCH_HUGE_MIB (4096), BENCH_SMALL_N (10000), BENCH_REPS (3), BENCH_LATENCY_MS (30),
# BENCH_LATENCY_N (500), BENCH_BUCKET (artfs-speed), BENCH_MD (BENCHMARKS.md), BENCH_SETTLE (10:
# seconds to wait after dropping pages, before a cold read; see `drop_all`),
# BENCH_ROWS (all; `1`: row 1 only, printed but not written to BENCHMARKS.md),
# BENCH_PERF (a path: after the repetitions, one more cold row-1 read of artfs under
# `perf record -g` of the daemon, written there; read it with `perf report -i PATH`).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH_DIR=${BENCH_DIR:-/tmp/artfs-speed}
BIG_MIB=${BENCH_BIG_MIB:-1024}
HUGE_MIB=${BENCH_HUGE_MIB:-4096}
SMALL_N=${BENCH_SMALL_N:-10000}
REPS=${BENCH_REPS:-3}
SETTLE=${BENCH_SETTLE:-10}
ROWS=${BENCH_ROWS:-all}
[[ $ROWS == all || $ROWS == 1 ]] || { echo "speed.sh: BENCH_ROWS is 'all' or '1'" >&2; exit 1; }
PERF_OUT=${BENCH_PERF:-}
SMALL_KIB=16
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## Cold sequential reads: artfs vs s3fs, rclone and curl"
ENDPOINT=http://127.0.0.1:4566
# Row 2b goes through a proxy that delays each request by LATENCY_MS (scripts/bench/latency-proxy.py).
LATENCY_MS=${BENCH_LATENCY_MS:-30}
LATENCY_N=${BENCH_LATENCY_N:-500}
PROXY_PORT=4567
EP=$ENDPOINT # endpoint the next mount uses
BUCKET=${BENCH_BUCKET:-artfs-speed}
REG=s3://$BUCKET/registry

note() { echo "speed.sh: $*" >&2; }
die() { note "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (mounts FUSE)"

# --- tools ------------------------------------------------------------------------------------
for pkg in s3fs rclone fuse3; do
  bin=$pkg; [[ $pkg == fuse3 ]] && bin=fusermount3
  command -v "$bin" >/dev/null || { note "installing $pkg"; apt-get install -y -q "$pkg" >/dev/null; }
done
if [[ -z ${ARTFS_BIN:-} ]]; then
  ARTFS_BIN=$REPO/target/release/artfs
  [[ -x $ARTFS_BIN ]] || cargo build --release
fi

# --- cleanup: every mount and process this script starts -----------------------------------------
MOUNTS=() PIDS=() STARTED_SERVICES=0
cleanup() {
  for m in "${MOUNTS[@]}"; do mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ $STARTED_SERVICES == 1 ]] && scripts/test-services.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Captured first: with pipefail, `grep -q` closing the pipe early would fail the status command
# and make a running server look down (and then stopped by the cleanup).
services=$(scripts/test-services.sh status 2>/dev/null || true)
if ! grep -q '^s3 *up' <<<"$services"; then
  scripts/test-services.sh start >/dev/null && STARTED_SERVICES=1
fi
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$ENDPOINT
export ARTFS_ENTITY=bench ARTFS_PROJECT=speed
curl -sf -X PUT "$ENDPOINT/$BUCKET" >/dev/null || true

# --- data and registry -------------------------------------------------------------------------
DATA=$BENCH_DIR/data
mkdir -p "$DATA/big" "$DATA/huge" "$DATA/small" "$BENCH_DIR/mnt"
[[ $(stat -c %s "$DATA/big/big.bin" 2>/dev/null) == $((BIG_MIB << 20)) ]] ||
  head -c $((BIG_MIB << 20)) /dev/urandom >"$DATA/big/big.bin"
if [[ $ROWS == all ]]; then # row 1 needs only the big file
  [[ $(stat -c %s "$DATA/huge/huge.bin" 2>/dev/null) == $((HUGE_MIB << 20)) ]] ||
    head -c $((HUGE_MIB << 20)) /dev/urandom >"$DATA/huge/huge.bin"
  if [[ $(find "$DATA/small" -type f | wc -l) != "$SMALL_N" ]]; then
    rm -rf "$DATA/small" && mkdir -p "$DATA/small"
    head -c $((SMALL_N * SMALL_KIB * 1024)) /dev/urandom |
      split -b $((SMALL_KIB * 1024)) -a 5 -d - "$DATA/small/f"
  fi
fi
A="$ARTFS_BIN --registry $REG -q"
blob() { local h; h=$(md5sum "$1" | cut -c1-32); echo "registry/blobs/md5/${h:0:2}/${h:2}"; }
# Logging is idempotent: an unchanged directory returns the existing version.
$A log big "$DATA/big" >/dev/null
BIG_KEY=$(blob "$DATA/big/big.bin")
if [[ $ROWS == all ]]; then
  $A log huge "$DATA/huge" >/dev/null && $A log small "$DATA/small" >/dev/null
  HUGE_KEY=$(blob "$DATA/huge/huge.bin")
  (cd "$DATA/small" && md5sum f*) | awk '{print "registry/blobs/md5/" substr($1,1,2) "/" substr($1,3)}' >"$BENCH_DIR/small-keys"
  ls "$DATA/small" | sed 's|^|small:v0/|' >"$BENCH_DIR/small-names"
fi

# --- mounts -------------------------------------------------------------------------------------
now() { date +%s.%N; }
wait_mounted() { for _ in $(seq 300); do mountpoint -q "$1" && return 0; sleep 0.1; done; die "no mount at $1"; }
# Per-file eviction (evict.py), never the whole machine's page cache: others may be measuring.
drop() { sync; python3 "$REPO/scripts/bench/evict.py" "$BENCH_DIR"; sleep "$SETTLE"; } # see drop_all
# Row 4 only: `evict.py` stays out of the mounts, so pages the kernel keeps for the FUSE file
# itself (a file read without passthrough) would survive it and make "disk-cold" warm.
# The settle (BENCH_SETTLE seconds, 10): this VM hands freed memory back to the host over the
# seconds after it is freed (free page reporting, in rounds 2 s apart), and a page read into
# memory the host took back costs a fault. A `cat` of the 1 GiB cache file right after
# `drop_caches` took 0.36 s, 3 s later 1.1 s, 10 s later 1.7 s, mount and direct alike; without
# the settle, which of those a sample met decided row 4's medians. After it every cold read
# meets the same memory.
drop_all() { sync; echo 3 >/proc/sys/vm/drop_caches; sleep "$SETTLE"; }
DAEMON=0
mount_artfs() { # fresh cache dir; sets DAEMON; extra arguments go to `artfs mount`
  local m=$BENCH_DIR/mnt/artfs; rm -rf "$BENCH_DIR/cache"; mkdir -p "$m"
  AWS_ENDPOINT_URL=$EP $ARTFS_BIN --registry "$REG" --cache-dir "$BENCH_DIR/cache" --cache-size 20G -v \
    mount "$m" --foreground "$@" 2>"$BENCH_DIR/artfs-mount.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$m"); wait_mounted "$m"; MNT=$m/bench/speed
}
mount_s3fs() {
  local m=$BENCH_DIR/mnt/s3fs; mkdir -p "$m"; echo 'test:test' >"$BENCH_DIR/passwd"; chmod 600 "$BENCH_DIR/passwd"
  s3fs "$BUCKET" "$m" -f -o ro,url=$EP,use_path_request_style,passwd_file="$BENCH_DIR/passwd",endpoint=us-east-1 \
    2>"$BENCH_DIR/s3fs.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$m"); wait_mounted "$m"; MNT=$m
}
mount_rclone() {
  local m=$BENCH_DIR/mnt/rclone; mkdir -p "$m"; rm -rf "$BENCH_DIR/rclone-cache"
  env -u AWS_CA_BUNDLE RCLONE_CONFIG_S_TYPE=s3 RCLONE_CONFIG_S_PROVIDER=Other RCLONE_CONFIG_S_ENDPOINT=$EP \
    RCLONE_CONFIG_S_REGION=us-east-1 RCLONE_CONFIG_S_ACCESS_KEY_ID=test RCLONE_CONFIG_S_SECRET_ACCESS_KEY=test \
    RCLONE_CONFIG_S_FORCE_PATH_STYLE=true rclone mount "S:$BUCKET" "$m" --read-only --vfs-cache-mode full \
    --cache-dir "$BENCH_DIR/rclone-cache" 2>"$BENCH_DIR/rclone.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$m"); wait_mounted "$m"; MNT=$m
}
unmount() {
  fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1"
  wait "$DAEMON" 2>/dev/null || true
}
timed() { local t0; t0=$(now); "$@" >/dev/null; printf '%.3f' "$(echo "$(now) - $t0" | bc -l)"; }
# Bytes fetched for test 3, where a daemon keeps them: artfs's partial chunk files, rclone's
# sparse VFS cache (allocated bytes). s3fs without a disk cache keeps nothing to measure.
fetched() { du -s --block-size=1 "$1" 2>/dev/null | cut -f1; }
hwm_mib() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$DAEMON/status"; }
# CPU seconds (user + system, all threads) of the given processes so far, from /proc/PID/stat.
TICKS=$(getconf CLK_TCK)
cpu_s() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "scale=2; $t / $TICKS" | bc -l | sed 's/^\./0./'; }
SERVER_PIDS=$(pgrep -f 'bin/ministack' | tr '\n' ' ')
[[ -n $SERVER_PIDS ]] || note "ministack's pid not found: server CPU is reported as 0"
# Row 1 with per-stage CPU: the time, and the CPU seconds the daemon and the server spent on it.
cpu_delta() { echo "scale=2; $2 - $1" | bc -l | sed 's/^\./0./; s/^-\./-0./'; }
read_small() { # $1: root, $2: list of relative paths, $3: files per `cat` (200); 8 parallel readers
  (cd "$1" && xargs -P 8 -n "${3:-200}" cat <"$2" >/dev/null)
}
if [[ $ROWS == all ]]; then
  head -n "$LATENCY_N" "$BENCH_DIR/small-names" >"$BENCH_DIR/latency-names"
  head -n "$LATENCY_N" "$BENCH_DIR/small-keys" >"$BENCH_DIR/latency-keys"
  python3 "$REPO/scripts/bench/latency-proxy.py" "$PROXY_PORT" 4566 "$LATENCY_MS" &
  PIDS+=("$!")
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" && break; sleep 0.1; done
fi
latency_round() { # row 2b for every tool, each through the delaying proxy, cold
  EP=http://127.0.0.1:$PROXY_PORT
  local mode
  for mode in on off; do
    if [[ $mode == on ]]; then mount_artfs; else mount_artfs --readahead-files 0; fi
    drop; add "artfs-ra-$mode,lat,cold" "$(timed read_small "$MNT" "$BENCH_DIR/latency-names" 50)"
    unmount "$BENCH_DIR/mnt/artfs"
  done
  for peer in s3fs rclone; do
    "mount_$peer"
    drop; add "$peer,lat,cold" "$(timed read_small "$MNT" "$BENCH_DIR/latency-keys" 50)"
    unmount "$MNT"
  done
  EP=$ENDPOINT
}

# Every measurement is repeated BENCH_REPS times, tools interleaved within each repetition (so
# slow phases of the machine hit all of them), and reported as the median.
declare -A R # key -> space-separated samples
add() { R[$1]="${R[$1]:-} $2"; }
artfs_round() { # one repetition of 1-5 for artfs
  mount_artfs
  drop
  local d0 s0; d0=$(cpu_s "$DAEMON"); s0=$(cpu_s $SERVER_PIDS)
  add artfs,seq,cold "$(timed cat "$MNT/big:v0/big.bin")"
  add artfs,seq,cpu,daemon "$(cpu_delta "$d0" "$(cpu_s "$DAEMON")")"
  add artfs,seq,cpu,server "$(cpu_delta "$s0" "$(cpu_s $SERVER_PIDS)")"
  # After the last chunk the daemon checks the whole file's MD5 before it becomes a cache entry.
  local cached=$BENCH_DIR/cache/v1/obj/md5/${BIG_KEY#registry/blobs/md5/} i
  d0=$(cpu_s "$DAEMON")
  for _ in $(seq 300); do [[ -f $cached ]] && break; sleep 0.1; done
  add artfs,seq,cpu,publish "$(cpu_delta "$d0" "$(cpu_s "$DAEMON")")"
  add artfs,seq,warm "$(timed cat "$MNT/big:v0/big.bin")"
  if [[ $ROWS == 1 ]]; then unmount "$BENCH_DIR/mnt/artfs"; return; fi
  drop; add artfs,small,cold "$(timed read_small "$MNT" "$BENCH_DIR/small-names")"
  add artfs,small,warm "$(timed read_small "$MNT" "$BENCH_DIR/small-names")"
  add artfs,rss "$(hwm_mib)"
  # Metadata known (stat first, as for the peers), data cold.
  stat "$MNT/huge:v0/huge.bin" >/dev/null; drop
  add artfs,rand,cold "$(timed dd if="$MNT/huge:v0/huge.bin" of=/dev/null bs=4096 count=1 skip="$OFFSET" iflag=skip_bytes status=none)"
  add artfs,rand,bytes "$(fetched "$BENCH_DIR/cache/v1/partial")"
  # Warm: mount and direct alternate which goes first, since a read can warm caches below the
  # VM for the one after it. The cache file was written in this repetition, and the first read
  # of freshly written blocks is slower (the host has not cached them: ~2.3 s against ~0.5 s
  # for 1 GiB), so one untimed cold read goes before the samples, whoever would be first.
  drop_all; cat "$cached" >/dev/null
  # Four pairs per repetition, for a median of 12 per side.
  for i in 1 2 3 4; do
    if (( i % 2 )); then
      drop_all; add warm4,mount,cold "$(timed cat "$MNT/big:v0/big.bin")"
      drop_all; add warm4,direct,cold "$(timed cat "$cached")"
    else
      drop_all; add warm4,direct,cold "$(timed cat "$cached")"
      drop_all; add warm4,mount,cold "$(timed cat "$MNT/big:v0/big.bin")"
    fi
    cat "$MNT/big:v0/big.bin" "$cached" >/dev/null
    add warm4,mount,warm "$(timed cat "$MNT/big:v0/big.bin")"
    add warm4,direct,warm "$(timed cat "$cached")"
  done
  PATH_USED=$(grep -o 'warm reads: [^(]*' "$BENCH_DIR/artfs-mount.log" | head -1 || true)
  unmount "$BENCH_DIR/mnt/artfs"
}
peer_round() { # $1: s3fs or rclone
  local peer=$1
  "mount_$peer"
  drop; add "$peer,seq,cold" "$(timed cat "$MNT/$BIG_KEY")"
  add "$peer,seq,warm" "$(timed cat "$MNT/$BIG_KEY")"
  if [[ $ROWS == 1 ]]; then unmount "$MNT"; return; fi
  drop; add "$peer,small,cold" "$(timed read_small "$MNT" "$BENCH_DIR/small-keys")"
  add "$peer,small,warm" "$(timed read_small "$MNT" "$BENCH_DIR/small-keys")"
  stat "$MNT/$HUGE_KEY" >/dev/null; drop
  add "$peer,rand,cold" "$(timed dd if="$MNT/$HUGE_KEY" of=/dev/null bs=4096 count=1 skip="$OFFSET" iflag=skip_bytes status=none)"
  [[ $peer == rclone ]] && add "$peer,rand,bytes" "$(fetched "$BENCH_DIR/rclone-cache/vfs")"
  add "$peer,rss" "$(hwm_mib)"
  unmount "$MNT"
}
OFFSET=$(( (HUGE_MIB << 20) - 3 * 4096 - 12345 ))
s0=0
for rep in $(seq "$REPS"); do
  note "repetition $rep of $REPS"
  artfs_round
  drop
  s0=$(cpu_s $SERVER_PIDS)
  add curl,seq,cold "$(timed curl -sf -o /dev/null "$ENDPOINT/$BUCKET/$BIG_KEY")"
  add curl,seq,cpu,server "$(cpu_delta "$s0" "$(cpu_s $SERVER_PIDS)")"
  add curl,seq,warm "$(timed curl -sf -o /dev/null "$ENDPOINT/$BUCKET/$BIG_KEY")"
  for peer in s3fs rclone; do peer_round "$peer"; done
  [[ $ROWS == 1 ]] || latency_round
done
if [[ -n $PERF_OUT ]]; then # not part of the medians: perf's own cost slows the read
  note "profiling one cold row-1 read into $PERF_OUT"
  mount_artfs; drop
  perf record -q -g -p "$DAEMON" -o "$PERF_OUT" 2>"$BENCH_DIR/perf.log" & perf_pid=$!
  sleep 1 # perf attaches to every thread first
  cat "$MNT/big:v0/big.bin" >/dev/null
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  unmount "$BENCH_DIR/mnt/artfs"
fi
# Row 1 per repetition (the s3fs target is per run): time(peer)/time(artfs) of each repetition.
per_run() { # $1: peer; prints the ratios and, with $2, how many reach it
  local -a a p; read -ra a <<<"${R[artfs,seq,cold]}"; read -ra p <<<"${R[$1,seq,cold]}"
  local i out='' met=0 r
  for i in "${!a[@]}"; do
    r=$(echo "scale=2; ${p[$i]} / ${a[$i]}" | bc -l | sed 's/^\./0./')
    out+="${out:+ / }${r}×"
    [[ -n ${2:-} ]] && (( $(echo "$r >= $2" | bc -l) )) && met=$((met + 1))
  done
  echo "$out${2:+ (≥ $2 in $met of ${#a[@]})}"
}
RUNS_S3FS=$(per_run s3fs 1.3) RUNS_CURL=$(per_run curl 1.0) RUNS_RCLONE=$(per_run rclone)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
# The raw samples go to stderr for the record; medians replace them.
for k in "${!R[@]}"; do echo "samples $k:${R[$k]}"; done | sort >&2
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
for k in "${!R[@]}"; do
  # shellcheck disable=SC2086 # word splitting of the sample list is the point
  R[$k]=$(median ${R[$k]})
done

# --- report -----------------------------------------------------------------------------------
mbs() { echo "scale=0; $BIG_MIB / ${R[$1,seq,$2]}" | bc -l; }
ratio() { echo "scale=2; $2 / $1" | bc -l | sed 's/^\./0./'; } # time($2)/time($1): >1 means $1 faster
mib() { [[ -n $1 ]] && echo "scale=2; $1 / 1048576" | bc -l | sed 's/^\./0./' || echo n/a; }
ms() { echo "scale=1; $1 * 1000 / 1" | bc -l; }
ROW1=$(cat <<EOF
| measurement | artfs | curl | s3fs | rclone | ratio (target) |
|---|---:|---:|---:|---:|---|
| 1. ${BIG_MIB} MiB sequential, cold: s (MB/s) | ${R[artfs,seq,cold]} ($(mbs artfs cold)) | ${R[curl,seq,cold]} ($(mbs curl cold)) | ${R[s3fs,seq,cold]} ($(mbs s3fs cold)) | ${R[rclone,seq,cold]} ($(mbs rclone cold)) | vs curl $(ratio "${R[artfs,seq,cold]}" "${R[curl,seq,cold]}")× (≥ 1.0), vs s3fs $(ratio "${R[artfs,seq,cold]}" "${R[s3fs,seq,cold]}")× (≥ 1.3) |
| 1. cold, CPU s spent: artfs daemon / server (for curl: server) | ${R[artfs,seq,cpu,daemon]} / ${R[artfs,seq,cpu,server]} | ${R[curl,seq,cpu,server]} (server) | – | – | daemon $(ratio "${R[artfs,seq,cpu,server]}" "${R[artfs,seq,cpu,daemon]}")× the server's own |
| 1. cold, each repetition: time(peer)/time(artfs) | – | ${RUNS_CURL} | ${RUNS_S3FS} | ${RUNS_RCLONE} | – |
| 1. cold, daemon CPU s after the read (whole-file MD5, publish) | ${R[artfs,seq,cpu,publish]} | – | – | – | – |
| 1. ${BIG_MIB} MiB sequential, warm: s | ${R[artfs,seq,warm]} | ${R[curl,seq,warm]} | ${R[s3fs,seq,warm]} | ${R[rclone,seq,warm]} | vs curl $(ratio "${R[artfs,seq,warm]}" "${R[curl,seq,warm]}")×, vs s3fs $(ratio "${R[artfs,seq,warm]}" "${R[s3fs,seq,warm]}")× |
EOF
)
if [[ $ROWS == 1 ]]; then
  printf '\n%s\n' "$ROW1"
  note "row 1 only (BENCH_ROWS=1): $BENCH_MD left as it is"
  exit 0
fi
best_small_cold=$(printf '%s\n' "${R[s3fs,small,cold]}" "${R[rclone,small,cold]}" | sort -g | head -1)
best_lat=$(printf '%s\n' "${R[s3fs,lat,cold]}" "${R[rclone,lat,cold]}" | sort -g | head -1)
best_small_warm=$(printf '%s\n' "${R[s3fs,small,warm]}" "${R[rclone,small,warm]}" | sort -g | head -1)
TABLE=$(cat <<EOF
$ROW1
| 2. ${SMALL_N} × ${SMALL_KIB} KiB, 8 readers, cold: s | ${R[artfs,small,cold]} | – | ${R[s3fs,small,cold]} | ${R[rclone,small,cold]} | vs better peer $(ratio "${R[artfs,small,cold]}" "$best_small_cold")× (≥ 2) |
| 2. ${SMALL_N} × ${SMALL_KIB} KiB, 8 readers, warm: s | ${R[artfs,small,warm]} | – | ${R[s3fs,small,warm]} | ${R[rclone,small,warm]} | vs better peer $(ratio "${R[artfs,small,warm]}" "$best_small_warm")× |
| 2b. ${LATENCY_N} × ${SMALL_KIB} KiB, 8 readers, cold, +${LATENCY_MS} ms per request: s | ${R[artfs-ra-on,lat,cold]} (readahead off: ${R[artfs-ra-off,lat,cold]}) | – | ${R[s3fs,lat,cold]} | ${R[rclone,lat,cold]} | vs better peer $(ratio "${R[artfs-ra-on,lat,cold]}" "$best_lat")×; readahead on vs off $(ratio "${R[artfs-ra-on,lat,cold]}" "${R[artfs-ra-off,lat,cold]}")× |
| 3. 4 KiB at a random offset of ${HUGE_MIB} MiB, cold: ms | $(ms "${R[artfs,rand,cold]}") | – | $(ms "${R[s3fs,rand,cold]}") | $(ms "${R[rclone,rand,cold]}") | artfs ≤ 50 ms |
| 3. bytes fetched (kept on disk by the daemon), MiB | $(mib "${R[artfs,rand,bytes]}") | – | n/a | $(mib "${R[rclone,rand,bytes]}") | artfs ≤ 16 MiB |
| 4. cached ${BIG_MIB} MiB, disk-cold (\`drop_caches\`): mount s / direct s | ${R[warm4,mount,cold]} / ${R[warm4,direct,cold]} | – | – | – | $(ratio "${R[warm4,mount,cold]}" "${R[warm4,direct,cold]}")× of direct (≥ 0.95) |
| 4. cached ${BIG_MIB} MiB, page-warm: mount s / direct s | ${R[warm4,mount,warm]} / ${R[warm4,direct,warm]} | – | – | – | $(ratio "${R[warm4,mount,warm]}" "${R[warm4,direct,warm]}")× of direct |
| 5. daemon peak RSS (VmHWM) over 1–2 (artfs), 1–3 (peers), MiB | ${R[artfs,rss]} | – | ${R[s3fs,rss]} | ${R[rclone,rss]} | artfs < 256 |
EOF
)
# `sed -n 1p` reads to the end: `head -1` may exit first, and with pipefail the version
# command's SIGPIPE (141) would end the script here, after every measurement.
S3FS_VERSION=$(s3fs --version 2>&1 | sed -n 1p) RCLONE_VERSION=$(rclone --version 2>/dev/null | sed -n 1p)
HEAD="Run \`scripts/bench/speed.sh\` (root). Same ministack server, same objects, same run; peers read
artfs's blob objects directly. cold: the run's files evicted from the page cache one by one
(\`evict.py\`) and every cache emptied (fresh mount, fresh cache dir); warm: the same read again on the same mount. Every number is the median of $REPS
repetitions, the tools interleaved within each repetition (row 4: $((4 * REPS)) samples per side,
alternating which side reads first). Ratios are time(peer)/time(artfs) from those medians: above
1 means artfs is faster. Timings include \`cat\`/\`xargs cat\` process overhead; 2 cores
shared by server, daemon and reader: compare ratios, not absolute numbers.

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) cores; load average at the end: $LOAD
- artfs: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (working tree modified)'); warm-read path: ${PATH_USED:-unknown}
- peers: $S3FS_VERSION; $RCLONE_VERSION"
SECTION_TEXT=$(printf '%s\n\n%s\n\n%s\n' "$SECTION" "$HEAD" "$TABLE")
printf '\n%s\n' "$SECTION_TEXT"
printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
note "results in $BENCH_MD"
