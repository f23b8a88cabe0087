#!/usr/bin/env bash
# Benchmark (item 3): warming the cache on purpose.
#
#   A. a shuffled first epoch: N small files (ImageNet-like: 10 class folders) read by a 4-worker
#      loader (Python threads, `loader.py`, seeded shuffle) through a fresh mount, cold: local
#      registry; S3 registry (ministack) without and with `mount --warm-up`; and both S3 cases
#      again through the +30 ms latency proxy (`latency-proxy.py`).
#      Target: S3 with warm-up <= 1.5x the local registry.
#   B. `artfs prefetch` of the same N files (fresh cache) vs a sequential `cat` of them in name
#      order through a fresh mount, both through the +30 ms proxy. Target: prefetch >= 4x faster.
#
# Cold = fresh cache dir and fresh mount (new inodes: nothing in the page cache through the
# mount); the page cache is never dropped machine-wide. Every measurement is repeated
# BENCH_REPS times, cases interleaved within a repetition, and the median reported. Results go
# to stdout and replace the `## Does warming the cache on purpose pay?` section of BENCHMARKS.md.
#
# Environment: BENCH_DIR (default /tmp/artfs-warm), ARTFS_BIN, BENCH_N (2000), BENCH_KIB (64),
# BENCH_REPS (3), BENCH_LATENCY_MS (30), BENCH_MD (BENCHMARKS.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH_DIR=${BENCH_DIR:-/tmp/artfs-warm}
N=${BENCH_N:-2000}
KIB=${BENCH_KIB:-64}
REPS=${BENCH_REPS:-3}
LATENCY_MS=${BENCH_LATENCY_MS:-30}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## Does warming the cache on purpose pay?"
ENDPOINT=http://127.0.0.1:4566
BUCKET=artfs-warm-$$
note() { echo "warm.sh: $*" >&2; }
die() { note "$*"; exit 1; }

if [[ -z ${ARTFS_BIN:-} ]]; then
  ARTFS_BIN=$REPO/target/release/artfs
  [[ -x $ARTFS_BIN ]] || cargo build --release
fi
# shellcheck source=common.sh
source scripts/bench/common.sh
bench_s3_bucket "$ENDPOINT" "$BUCKET" || exit 1
export ARTFS_ENTITY=bench ARTFS_PROJECT=warm

# --- data and registries ------------------------------------------------------------------------
DATA=$BENCH_DIR/data
if [[ $(find "$DATA" -type f 2>/dev/null | wc -l) != "$N" ]]; then
  rm -rf "$DATA"; mkdir -p "$DATA"
  for c in $(seq 0 9); do mkdir -p "$DATA/class$c"; done
  head -c $((N * KIB * 1024)) /dev/urandom | split -b $((KIB * 1024)) -a 5 -d - "$DATA/img"
  i=0; for f in "$DATA"/img*; do mv "$f" "$DATA/class$((i % 10))/$(basename "$f").jpg"; i=$((i + 1)); done
fi
LOCAL_REG=$BENCH_DIR/registry
S3_REG=s3://$BUCKET/registry
"$ARTFS_BIN" --registry "$LOCAL_REG" -q log images "$DATA" >/dev/null
AWS_ENDPOINT_URL=$ENDPOINT "$ARTFS_BIN" --registry "$S3_REG" -q log images "$DATA" >/dev/null
(cd "$DATA" && find . -type f | sed 's|^\./||' | sort) >"$BENCH_DIR/names"

PROXY_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$REPO/scripts/bench/latency-proxy.py" "$PROXY_PORT" 4566 "$LATENCY_MS" &
PIDS+=("$!")
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" && break; sleep 0.1; done
PROXY=http://127.0.0.1:$PROXY_PORT

# --- helpers --------------------------------------------------------------------------------------
now() { date +%s.%N; }
wait_mounted() { for _ in $(seq 300); do mountpoint -q "$1" && return 0; sleep 0.1; done; die "no mount at $1"; }
DAEMON=0
mount_artfs() { # REGISTRY ENDPOINT [mount args…]: fresh cache dir; sets MNT (the version dir)
  local reg=$1 ep=$2; shift 2
  local m=$BENCH_DIR/mnt; rm -rf "$BENCH_DIR/cache"; mkdir -p "$m"
  AWS_ENDPOINT_URL=$ep "$ARTFS_BIN" --registry "$reg" --cache-dir "$BENCH_DIR/cache" --cache-size 20G -v \
    mount images:v0 "$m" --foreground "$@" 2>"$BENCH_DIR/mount.log" &
  DAEMON=$!; PIDS+=("$DAEMON"); MOUNTS+=("$m"); wait_mounted "$m"; MNT=$m
}
unmount() { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; wait "$DAEMON" 2>/dev/null || true; }
timed() { local t0; t0=$(now); "$@" >/dev/null; printf '%.3f' "$(echo "$(now) - $t0" | bc -l)"; }
loader() { python3 "$REPO/scripts/bench/loader.py" "$MNT" 4 "$BENCH_DIR/names"; }
cat_in_order() { (cd "$MNT" && xargs cat <"$BENCH_DIR/names" >/dev/null); }
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }
epoch() { # KEY REGISTRY ENDPOINT [mount args…]
  local key=$1; shift
  mount_artfs "$@"; add "$key" "$(timed loader)"; unmount
}

for rep in $(seq "$REPS"); do
  note "repetition $rep of $REPS"
  epoch local "$LOCAL_REG" "$ENDPOINT"
  epoch s3 "$S3_REG" "$ENDPOINT"
  epoch s3-warm "$S3_REG" "$ENDPOINT" --warm-up 1G
  epoch lat "$S3_REG" "$PROXY"
  epoch lat-warm "$S3_REG" "$PROXY" --warm-up 1G
  # B: prefetch vs sequential cat, both on the proxy, fresh cache each.
  rm -rf "$BENCH_DIR/cache"
  add prefetch "$(timed env AWS_ENDPOINT_URL=$PROXY "$ARTFS_BIN" --registry "$S3_REG" --cache-dir "$BENCH_DIR/cache" \
    --cache-size 20G -q prefetch images:v0)"
  mount_artfs "$S3_REG" "$PROXY"; add cat "$(timed cat_in_order)"; unmount
  mount_artfs "$S3_REG" "$PROXY" --readahead-files 0; add cat-ra-off "$(timed cat_in_order)"; unmount
done
for k in "${!R[@]}"; do echo "samples $k:${R[$k]}"; done | sort >&2
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
declare -A S
for k in "${!R[@]}"; do S[$k]=${R[$k]}; R[$k]=$(median ${R[$k]}); done
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
verdict() { awk -v r="$1" -v t="$2" -v d="$3" 'BEGIN { print ((d == "le" ? r <= t : r >= t) ? "yes" : "**NO**") }'; }
r_warm=$(ratio "${R[s3-warm]}" "${R[local]}")
r_lat=$(ratio "${R[lat-warm]}" "${R[local]}")
r_pre=$(ratio "${R[cat]}" "${R[prefetch]}")
TABLE=$(cat <<EOF
| measurement | seconds (median) | ratio | target | met |
|---|---:|---:|---|---|
| A. shuffled 4-worker epoch, local registry | ${R[local]} | 1.00 | – | – |
| A. same, S3 registry, no warm-up | ${R[s3]} | $(ratio "${R[s3]}" "${R[local]}")× local | – | – |
| A. same, S3 registry, \`--warm-up 1G\` | ${R[s3-warm]} | ${r_warm}× local | ≤ 1.5× | $(verdict "$r_warm" 1.5 le) |
| A. same, S3 +${LATENCY_MS} ms per request, no warm-up | ${R[lat]} | $(ratio "${R[lat]}" "${R[local]}")× local | – | – |
| A. same, S3 +${LATENCY_MS} ms, \`--warm-up 1G\` | ${R[lat-warm]} | ${r_lat}× local; $(ratio "${R[lat]}" "${R[lat-warm]}")× faster than without | – | – |
| B. \`artfs prefetch\` (default \`--jobs 64\`), S3 +${LATENCY_MS} ms, fresh cache | ${R[prefetch]} | ${r_pre}× faster than \`cat\` | ≥ 4× | $(verdict "$r_pre" 4 ge) |
| B. sequential \`cat\` in name order through a fresh mount (readahead on, default) | ${R[cat]} | – | – | – |
| B. same, \`--readahead-files 0\` | ${R[cat-ra-off]} | $(ratio "${R[cat-ra-off]}" "${R[prefetch]}")× prefetch | – | – |
EOF
)
SECTION_TEXT=$(cat <<EOF
$SECTION

Run \`scripts/bench/warm.sh\` (root: FUSE). $N files × $KIB KiB in 10 folders, logged to a local
registry and to an S3 registry (ministack on 127.0.0.1; the +${LATENCY_MS} ms rows go through
\`latency-proxy.py\`, which delays every request). A: a loader of 4 Python threads reads every file
once in a seeded shuffled order through a fresh mount of the version (fresh cache dir, new inodes;
the page cache is never dropped machine-wide). B: \`artfs prefetch\` into a fresh cache vs \`xargs cat\`
of the files in name order through a fresh mount. Medians of $REPS repetitions, cases interleaved;
ratios from the same run.

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) cores; load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)
- artfs: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (working tree modified)')

$TABLE

Samples (s): $(for k in local s3 s3-warm lat lat-warm prefetch cat cat-ra-off; do printf '%s:%s; ' "$k" "${S[$k]}"; done)
EOF
)
printf '\n%s\n' "$SECTION_TEXT"
printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
note "results in $BENCH_MD"
