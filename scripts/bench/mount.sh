#!/usr/bin/env bash
# Benchmark (Performance): the mount.
#
#   1. warm read of a cached 1 GiB file through the mount vs `cat` of the cache file itself
#      (page cache dropped before each run)                               target >= 0.9x
#   2. a 100,000-entry artifact: time from `artfs mount` to the first `ls` returning
#   3. `find MOUNT -type f | xargs stat` vs the same on a local directory of the same shape,
#      cold (caches dropped) and warm                                     target <= 1.5x
#   4. daemon RSS with 100,000 and 1,000,000 entries mounted (tree loaded)
#                                                                         target < 200 B/entry
#
# The large artifacts are written straight into the registry (a manifest and a commit, digests
# of nothing: listing never reads content), so the benchmark does not spend minutes logging a
# million files. Each timing is repeated BENCH_REPS times; medians are reported. Results go to
# stdout and to the `## How fast does the mount read, cold and warm?` section of BENCHMARKS.md (other sections are kept).
#
# Environment:
#   ARTFS_BIN       artfs binary (default target/release/artfs, built with cargo if missing)
#   BENCH_DIR       work dir (default /tmp/artfs-bench-mount); data sets are reused
#   BENCH_REPS      repetitions (default 3)
#   BENCH_BIG_MIB   size of the read file (default 1024)
#   BENCH_ENTRIES   entries of the stat artifact (default 100000)
#   BENCH_HUGE      entries of the RSS-only artifact (default 1000000; 0 skips it)
#   BENCH_MD        results file (default BENCHMARKS.md in the repo)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

BENCH_DIR=${BENCH_DIR:-/tmp/artfs-bench-mount}
REPS=${BENCH_REPS:-3}
BIG_MIB=${BENCH_BIG_MIB:-1024}
ENTRIES=${BENCH_ENTRIES:-100000}
HUGE=${BENCH_HUGE:-1000000}
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
SECTION="## How fast does the mount read, cold and warm?"

die() { echo "mount.sh: $*" >&2; exit 1; }
note() { echo "mount.sh: $*" >&2; }

[[ -w /proc/sys/vm/drop_caches ]] || die "needs root (drops the page cache between runs)"
command -v fusermount3 >/dev/null || die "fusermount3 missing (apt-get install fuse3)"

if [[ -n ${ARTFS_BIN:-} ]]; then
  [[ -x $ARTFS_BIN ]] || die "ARTFS_BIN=$ARTFS_BIN is not an executable"
else
  ARTFS_BIN=$REPO/target/release/artfs
  note "building $ARTFS_BIN"
  cargo build --release -q
fi

export ARTFS_REGISTRY=$BENCH_DIR/registry ARTFS_CACHE_DIR=$BENCH_DIR/cache
export ARTFS_ENTITY=bench ARTFS_PROJECT=mount ARTFS_CACHE_SIZE=$((BIG_MIB * 4))M
unset ARTFS_LOG
mkdir -p "$BENCH_DIR"

MNT=$BENCH_DIR/mnt
cleanup() { # every artfs mount this benchmark may have left under $MNT
  findmnt -rn -t fuse.artfs -o TARGET | { grep "^$MNT/" || true; } | while read -r m; do
    fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# mount ARGS... MOUNTPOINT: background mount; prints the daemon pid.
mount_bg() {
  mkdir -p "${*: -1}"
  "$ARTFS_BIN" mount "$@" --log-file "$BENCH_DIR/mount.log" 2>&1 | sed -n 's/.*daemon pid \([0-9]*\).*/\1/p'
}
unmount() { "$ARTFS_BIN" unmount "$1"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# fabricate NAME N: a version of N entries (1000 per directory) published directly.
fabricate() {
  python3 - "$ARTFS_REGISTRY" "$1" "$2" <<'PY'
import base64, hashlib, json, os, sys
reg, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
commit = os.path.join(reg, "collections/bench/mount", name, "commits/00000000000000000001.json")
if os.path.exists(commit):
    sys.exit(0)
contents = {}
for i in range(n):
    path = f"d{i // 1000:04d}/file-{i % 1000:04d}.bin"
    digest = base64.b64encode(hashlib.md5(path.encode()).digest()).decode()
    contents[path] = {"digest": digest, "size": 1000 + i % 4096}
manifest = json.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                       "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents},
                      separators=(",", ":")).encode()
key = "manifests/" + hashlib.md5(manifest).hexdigest() + ".json"
os.makedirs(os.path.join(reg, "manifests"), exist_ok=True)
with open(os.path.join(reg, key), "wb") as f:
    f.write(manifest)
os.makedirs(os.path.dirname(commit), exist_ok=True)
with open(commit, "w") as f:
    json.dump({"seq": 1, "time": "2026-01-01T00:00:00Z", "writer": "bench", "op": {
        "kind": "create", "version": 0, "digest": hashlib.md5(manifest).hexdigest(),
        "manifest": key, "type": "dataset", "description": None, "metadata": {},
        "size": sum(e["size"] for e in contents.values()), "file_count": n, "aliases": []}}, f)
PY
}

# local_shape DIR N: empty files in the same layout as `fabricate`.
local_shape() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
if os.path.exists(os.path.join(root, ".done")):
    sys.exit(0)
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"file-{i % 1000:04d}.bin"), "wb").close()
open(os.path.join(root, ".done"), "wb").close()
PY
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. warm read ---------------------------------------------------------------------------
BIG=$BENCH_DIR/big/big.bin
if [[ $(stat -c %s "$BIG" 2>/dev/null || echo 0) != $((BIG_MIB << 20)) ]]; then
  note "writing $BIG ($BIG_MIB MiB)"
  mkdir -p "$(dirname "$BIG")"
  head -c "$((BIG_MIB << 20))" /dev/urandom >"$BIG"
fi
"$ARTFS_BIN" -q log big "$BIG" >/dev/null
PID=$(mount_bg big "$MNT/big")
ls -l "$MNT/big" >/dev/null
RSS_SMALL=$(rss_kib "$PID") # idle: one 1-entry version loaded, nothing read yet
cat "$MNT/big/big.bin" >/dev/null # fills the artfs cache
CACHED=$(find "$ARTFS_CACHE_DIR/v1/obj" -type f -size "$((BIG_MIB * 1024))k" | head -n 1)
[[ -n $CACHED ]] || die "the cache holds no $BIG_MIB MiB entry"
T_MOUNT="" T_DIRECT=""
for _ in $(seq "$REPS"); do
  drop; s=$(now); cat "$MNT/big/big.bin" >/dev/null; T_MOUNT+=" $(since "$s")"
  drop; s=$(now); cat "$CACHED" >/dev/null; T_DIRECT+=" $(since "$s")"
done
unmount "$MNT/big"
M_MOUNT=$(median <<<"$T_MOUNT") M_DIRECT=$(median <<<"$T_DIRECT")
R_READ=$(ratio "$M_DIRECT" "$M_MOUNT")
note "warm read: mount $M_MOUNT s, direct $M_DIRECT s, ratio $R_READ"

# --- 2-4. many entries -------------------------------------------------------------------------
note "preparing $ENTRIES entries"
fabricate many "$ENTRIES"
LOCAL=$BENCH_DIR/local-$ENTRIES
local_shape "$LOCAL" "$ENTRIES"

T_FIRST_LS=""
for _ in $(seq "$REPS"); do
  s=$(now)
  PID=$(mount_bg many "$MNT/many")
  ls "$MNT/many" >/dev/null
  T_FIRST_LS+=" $(since "$s")"
  unmount "$MNT/many"
done
M_FIRST_LS=$(median <<<"$T_FIRST_LS")

PID=$(mount_bg many "$MNT/many")
T_FS_COLD="" T_LOCAL_COLD="" T_FS_WARM="" T_LOCAL_WARM=""
stat_all() { (cd "$1" && find . -type f -print0 | xargs -0 stat >/dev/null); }
for _ in $(seq "$REPS"); do
  drop; s=$(now); stat_all "$MNT/many"; T_FS_COLD+=" $(since "$s")"
  s=$(now); stat_all "$MNT/many"; T_FS_WARM+=" $(since "$s")"
  drop; s=$(now); stat_all "$LOCAL"; T_LOCAL_COLD+=" $(since "$s")"
  s=$(now); stat_all "$LOCAL"; T_LOCAL_WARM+=" $(since "$s")"
done
RSS_MANY=$(rss_kib "$PID")
unmount "$MNT/many"
M_FS_COLD=$(median <<<"$T_FS_COLD") M_LOCAL_COLD=$(median <<<"$T_LOCAL_COLD")
M_FS_WARM=$(median <<<"$T_FS_WARM") M_LOCAL_WARM=$(median <<<"$T_LOCAL_WARM")
R_STAT_COLD=$(ratio "$M_FS_COLD" "$M_LOCAL_COLD")
R_STAT_WARM=$(ratio "$M_FS_WARM" "$M_LOCAL_WARM")
per_entry() { awk -v r="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (r - b) * 1024 / n }'; }
B_MANY=$(per_entry "$RSS_MANY" "$RSS_SMALL" "$ENTRIES")
B_MANY_TOTAL=$(per_entry "$RSS_MANY" 0 "$ENTRIES")

ROW_HUGE="| daemon RSS, $HUGE entries | skipped (BENCH_HUGE=0) | | | |"
if ((HUGE > 0)); then
  note "preparing $HUGE entries"
  fabricate huge "$HUGE"
  s=$(now)
  PID=$(mount_bg huge "$MNT/huge")
  ls "$MNT/huge" >/dev/null
  T_HUGE_LS=$(since "$s")
  find "$MNT/huge" -type f | tail -n 1 >/dev/null
  RSS_HUGE=$(rss_kib "$PID")
  unmount "$MNT/huge"
  B_HUGE=$(per_entry "$RSS_HUGE" "$RSS_SMALL" "$HUGE")
  B_HUGE_TOTAL=$(per_entry "$RSS_HUGE" 0 "$HUGE")
  ROW_HUGE="| daemon RSS, $HUGE entries (after \`find\`) | $((RSS_HUGE / 1024)) MiB: $B_HUGE B/entry above an idle daemon ($B_HUGE_TOTAL B/entry in all); mount to first \`ls\` $T_HUGE_LS s | < 200 B/entry | $(awk -v b="$B_HUGE" 'BEGIN { print (b < 200) ? "yes" : "**NO**" }') |"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "yes" : "**NO**" }'; }

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT+=" (working tree modified)"
TABLE=$(cat <<EOF
| measure | result | target | met |
|---|---|---|---|
| warm read of a cached $BIG_MIB MiB file: mount vs \`cat\` of the cache file | $M_MOUNT s vs $M_DIRECT s: **${R_READ}×** the direct speed | ≥ 0.9× | $(met "$R_READ" 0.9 ">=") |
| $ENTRIES entries: \`artfs mount\` to first \`ls\` (single mode: manifest read, tree built) | $M_FIRST_LS s | – | – |
| \`find \| xargs stat\`, $ENTRIES entries, cold (caches dropped): mount vs local dir | $M_FS_COLD s vs $M_LOCAL_COLD s: **${R_STAT_COLD}×** | ≤ 1.5× | $(met "$R_STAT_COLD" 1.5 "<=") |
| \`find \| xargs stat\`, warm (kernel caches kept) | $M_FS_WARM s vs $M_LOCAL_WARM s: **${R_STAT_WARM}×** | ≤ 1.5× | $(met "$R_STAT_WARM" 1.5 "<=") |
| daemon RSS, $ENTRIES entries (after \`find\`) | $((RSS_MANY / 1024)) MiB: $B_MANY B/entry above an idle daemon ($B_MANY_TOTAL B/entry in all) | < 200 B/entry | $(awk -v b="$B_MANY" 'BEGIN { print (b < 200) ? "yes" : "**NO**" }') |
$ROW_HUGE
EOF
)

SECTION_TEXT=$(cat <<EOF
$SECTION

Run \`scripts/bench/mount.sh\` (or \`make bench\`). Local registry; medians of $REPS runs. Cold runs
drop the page, dentry and inode caches first (\`echo 3 > /proc/sys/vm/drop_caches\`). The idle
daemon (one 1-entry version mounted) had $((RSS_SMALL / 1024)) MiB RSS. Reads through the
mount copy every byte through the daemon (kernel page cache kept across opens, no FUSE
passthrough yet), which is what the warm-read ratio measures.

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) cores, kernel $(uname -r), $(free -g | awk '/^Mem:/ { print $2 " GiB RAM" }'), $(findmnt -no FSTYPE -T "$BENCH_DIR") in $BENCH_DIR
- load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER
- artfs: commit $COMMIT

$TABLE

Raw seconds: read mount:$T_MOUNT; read direct:$T_DIRECT; first ls:$T_FIRST_LS; stat cold mount:$T_FS_COLD; stat cold local:$T_LOCAL_COLD; stat warm mount:$T_FS_WARM; stat warm local:$T_LOCAL_WARM.
EOF
)

echo
echo "$TABLE"
echo

# Replace only the lines from our heading up to the next `## ` heading; keep everything else.
printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
note "results written to $BENCH_MD ($SECTION)"
