#!/usr/bin/env bash
# Benchmark (Performance): `artfs log` of 2 GiB in 2,000 files.
#
# Targets, as ratios against baselines measured in the same run (the machine is noisy):
#   artfs log (fresh registry)      <= 1.3 x  (md5sum + cp -r of the same files)
#   artfs re-log (unchanged files)  <= 0.1 x  (md5sum of the same files; the stat cache reads none)
#   artfs re-log --rehash           <= 1.0 x  (md5sum; every file hashed again)
# Peer (no target): the wandb Python SDK building the same artifact offline,
# `wandb.Artifact(...).add_dir(DIR)`, reported as a ratio to `artfs log`.
#
# Every contender runs cold (the data set's files evicted from the page cache one by one with
# posix_fadvise DONTNEED, `evict.py`: other work on the machine keeps its cache) and warm.
# Each is repeated BENCH_REPS times and the median is reported. Results go to stdout and to
# the `## How fast does `artfs log` upload? (2 GiB in 2,000 files)` section of BENCHMARKS.md (other sections are kept).
#
# Environment:
#   ARTFS_BIN     artfs binary (default target/release/artfs, built with cargo if missing)
#   BENCH_DIR     work dir (default /tmp/artfs-bench); the data set is reused when it matches
#   BENCH_REPS    repetitions per contender (default 3)
#   BENCH_FILES   file count (default 2000); BENCH_FILE_KIB file size (default 1024)
#   BENCH_MD      results file (default BENCHMARKS.md in the repo)
#   BENCH_WANDB   0 skips the wandb peer (default 1); WANDB_VERSION pins the SDK (default 0.31.0)
#   BENCH_STRICT  1 exits non-zero when a target is missed (default 0: report only)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

BENCH_DIR=${BENCH_DIR:-/tmp/artfs-bench}
REPS=${BENCH_REPS:-3}
FILES=${BENCH_FILES:-2000}
FILE_KIB=${BENCH_FILE_KIB:-1024}
FILE_BYTES=$((FILE_KIB * 1024))
TOTAL_BYTES=$((FILES * FILE_BYTES))
BENCH_MD=${BENCH_MD:-$REPO/docs/BENCHMARKS.md}
BENCH_WANDB=${BENCH_WANDB:-1}
WANDB_VERSION=${WANDB_VERSION:-0.31.0}
BENCH_STRICT=${BENCH_STRICT:-0}
SECTION="## How fast does `artfs log` upload? (2 GiB in 2,000 files)"

die() { echo "log.sh: $*" >&2; exit 1; }
note() { echo "log.sh: $*" >&2; }

# --- binary ---------------------------------------------------------------------------------
if [[ -n ${ARTFS_BIN:-} ]]; then
  [[ -x $ARTFS_BIN ]] || die "ARTFS_BIN=$ARTFS_BIN is not an executable"
else
  ARTFS_BIN=$REPO/target/release/artfs
  if [[ ! -x $ARTFS_BIN ]]; then
    note "building $ARTFS_BIN"
    cargo build --release
  fi
fi

# --- data set -------------------------------------------------------------------------------
DATA=$BENCH_DIR/data
mkdir -p "$BENCH_DIR"
data_ok() {
  [[ -d $DATA ]] || return 1
  find "$DATA" -type f -printf '%s\n' |
    awk -v n="$FILES" -v s="$FILE_BYTES" '$1 != s { bad = 1 } END { exit (bad || NR != n) }'
}
if data_ok; then
  note "reusing $DATA ($FILES files of $FILE_KIB KiB)"
else
  note "generating $DATA: $FILES files of $FILE_KIB KiB from /dev/urandom"
  rm -rf "$DATA" "$DATA.tmp"
  mkdir -p "$DATA.tmp"
  head -c "$TOTAL_BYTES" /dev/urandom |
    split -b "$FILE_BYTES" -a 5 -d --additional-suffix=.bin - "$DATA.tmp/f"
  mv "$DATA.tmp" "$DATA"
  data_ok || die "generated data set does not match ($FILES x $FILE_BYTES bytes)"
fi

# --- wandb venv -----------------------------------------------------------------------------
VENV=$BENCH_DIR/wandb-venv
WANDB_HOME=$BENCH_DIR/wandb-home
WANDB_PY=$BENCH_DIR/wandb_add_dir.py
if [[ $BENCH_WANDB == 1 ]]; then
  if ! "$VENV/bin/python" -c "import wandb, sys; sys.exit(wandb.__version__ != '$WANDB_VERSION')" 2>/dev/null; then
    note "installing wandb==$WANDB_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "wandb==$WANDB_VERSION"
  fi
  # add_dir hashes eagerly: each file is copied to WANDB_DATA_DIR/artifacts/staging (the
  # default "mutable" policy) and MD5-hashed there, on an 8-thread pool, before add_dir returns.
  # The digest and entry count are read back so nothing can be deferred.
  cat >"$WANDB_PY" <<'EOF'
import json, sys, time
t0 = time.monotonic()
import wandb
t1 = time.monotonic()
art = wandb.Artifact("bench", type="dataset")
art.add_dir(sys.argv[1])
n = len(art.manifest.entries)
missing = [p for p, e in art.manifest.entries.items() if not e.digest]
digest = art.digest
t2 = time.monotonic()
assert not missing, f"{len(missing)} entries without a digest"
print(json.dumps({"import_s": round(t1 - t0, 3), "add_dir_s": round(t2 - t1, 3), "entries": n,
                  "digest": digest, "wandb": wandb.__version__}))
EOF
fi
wandb_env() {
  env WANDB_MODE=offline WANDB_SILENT=true WANDB_DISABLE_GIT=true WANDB_ANONYMOUS=never \
    WANDB_DIR="$WANDB_HOME/dir" WANDB_DATA_DIR="$WANDB_HOME/data" \
    WANDB_CACHE_DIR="$WANDB_HOME/cache" WANDB_CONFIG_DIR="$WANDB_HOME/config" \
    WANDB_ARTIFACT_DIR="$WANDB_HOME/artifacts" "$@"
}

# --- helpers --------------------------------------------------------------------------------
MODES=(cold warm)

# Leaves the machine quiet before a timed run: dirty pages written back, and for `cold` the
# data set's pages evicted, file by file; for `warm` the source files are read
# once so they are surely cached.
prepare() {
  sync
  if [[ $1 == cold ]]; then
    python3 "$REPO/scripts/bench/evict.py" "$DATA"
  else
    cat "$DATA"/* >/dev/null
  fi
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

declare -A T # T[contender.mode] = space-separated wall seconds, one per repetition
declare -A C # C[contender.mode] = the same for CPU seconds (user + sys of all child processes)
record() { T[$1.$2]+="$3 "; }
# CPU time of waited-for children, from the `times` builtin (run in this shell, not a subshell).
TIMES_F=$BENCH_DIR/.times
cpu_mark() { times >"$TIMES_F"; { read -r _ _; read -r CPU_U CPU_S; } <"$TIMES_F"; CPU_MARK="$CPU_U $CPU_S"; }
record_cpu() { # KEY MODE "U0 S0" (marks before; the current CPU_MARK is after)
  C[$1.$2]+="$(awk -v a="$3" -v b="$CPU_MARK" 'function s(x) { split(x, p, "m"); sub("s", "", p[2]); return p[1] * 60 + p[2] }
    BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", s(y[1]) + s(y[2]) - s(x[1]) - s(x[2]) }') "
}

md5_all() { find "$DATA" -type f -print0 | sort -z | xargs -0 md5sum >/dev/null; }

REG=$BENCH_DIR/registry
CACHE=$BENCH_DIR/cache
DEST=$BENCH_DIR/cp-dest
artfs() { "$ARTFS_BIN" --registry "$REG" --cache-dir "$CACHE" "$@"; }
jget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

LOG_DIGEST=""
run_baseline() { # (a) md5sum + cp -r, back to back after one prepare
  rm -rf "$DEST"
  prepare "$1"
  local t0 t1 t2
  local c0 c1
  cpu_mark; c0=$CPU_MARK
  t0=$(now); md5_all; t1=$(now); cpu_mark; c1=$CPU_MARK; cp -r "$DATA" "$DEST"; t2=$(now)
  cpu_mark
  record_cpu cppart "$1" "$c1"
  record_cpu baseline "$1" "$c0"
  CPU_MARK=$c1 record_cpu md5part "$1" "$c0"
  record md5part "$1" "$(elapsed "$t0" "$t1")"
  record cppart "$1" "$(elapsed "$t1" "$t2")"
  record baseline "$1" "$(elapsed "$t0" "$t2")"
  rm -rf "$DEST"
}
run_log() { # (b) artfs log into a fresh empty registry
  rm -rf "$REG" "$CACHE"
  prepare "$1"
  local t0 t1 out
  cpu_mark; local c0=$CPU_MARK
  t0=$(now); out=$(artfs log bench "$DATA" --json -q); t1=$(now)
  cpu_mark; record_cpu log "$1" "$c0"
  record log "$1" "$(elapsed "$t0" "$t1")"
  [[ $(jget "$out" created) == True && $(jget "$out" uploaded_files) == "$FILES" &&
     $(jget "$out" uploaded_bytes) == "$TOTAL_BYTES" ]] ||
    die "first log did not create a version uploading $FILES files / $TOTAL_BYTES bytes: $out"
  LOG_DIGEST=$(jget "$out" digest)
}
run_relog() { # (c) re-log of unchanged files into the same registry
  [[ -d $REG ]] || die "re-log needs the registry of a previous log"
  prepare "$1"
  local t0 t1 out
  cpu_mark; local c0=$CPU_MARK
  t0=$(now); out=$(artfs log bench "$DATA" --json -q); t1=$(now)
  cpu_mark; record_cpu relog "$1" "$c0"
  record relog "$1" "$(elapsed "$t0" "$t1")"
  [[ $(jget "$out" created) == False && $(jget "$out" uploaded_files) == 0 &&
     $(jget "$out" uploaded_bytes) == 0 && $(jget "$out" version) == v0 ]] ||
    die "re-log of unchanged files created or uploaded something: $out"
  [[ $(jget "$out" hashed_files) == 0 ]] || note "re-log hashed $(jget "$out" hashed_files) files (stat cache missed)"
}
run_rehash() { # (c2) re-log with --rehash: every file hashed again, as before the stat cache
  prepare "$1"
  local t0 t1 out
  cpu_mark; local c0=$CPU_MARK
  t0=$(now); out=$(artfs log bench "$DATA" --json -q --rehash); t1=$(now)
  cpu_mark; record_cpu rehash "$1" "$c0"
  record rehash "$1" "$(elapsed "$t0" "$t1")"
  [[ $(jget "$out" created) == False && $(jget "$out" hashed_files) == "$FILES" ]] ||
    die "re-log --rehash did not hash every file, or created a version: $out"
}
run_md5() { # (d) md5sum alone
  prepare "$1"
  local t0 t1
  cpu_mark; local c0=$CPU_MARK
  t0=$(now); md5_all; t1=$(now)
  cpu_mark; record_cpu md5 "$1" "$c0"
  record md5 "$1" "$(elapsed "$t0" "$t1")"
}
WANDB_VER=""
run_wandb() { # (e) wandb SDK peer
  rm -rf "$WANDB_HOME"
  mkdir -p "$WANDB_HOME"/{dir,data,cache,config,artifacts}
  prepare "$1"
  local t0 t1 out
  cpu_mark; local c0=$CPU_MARK
  t0=$(now); out=$(wandb_env "$VENV/bin/python" "$WANDB_PY" "$DATA"); t1=$(now)
  cpu_mark; record_cpu wandbproc "$1" "$c0"
  record wandbproc "$1" "$(elapsed "$t0" "$t1")"
  record wandb "$1" "$(jget "$out" add_dir_s)"
  [[ $(jget "$out" entries) == "$FILES" ]] || die "wandb artifact has the wrong entry count: $out"
  [[ $(jget "$out" digest) == "$LOG_DIGEST" ]] ||
    die "wandb digest $(jget "$out" digest) != artfs digest $LOG_DIGEST"
  WANDB_VER=$(jget "$out" wandb)
  rm -rf "$WANDB_HOME"
}

# --- run ------------------------------------------------------------------------------------
note "binary $ARTFS_BIN; $REPS repetitions; modes: ${MODES[*]}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= REPS; r++)); do
  for m in "${MODES[@]}"; do
    note "rep $r/$REPS $m"
    run_baseline "$m"
    run_log "$m"
    run_md5 "$m"
    run_relog "$m"
    run_rehash "$m"
    [[ $BENCH_WANDB == 1 ]] && run_wandb "$m"
  done
done
rm -rf "$REG" "$CACHE" "$DEST" "$TIMES_F"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ---------------------------------------------------------------------------------
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { median <<<"${T[$1.$2]:-}"; }
cmed() { if [[ -n ${C[$1.$2]:-} ]]; then median <<<"${C[$1.$2]}"; else echo "–"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "yes" : "**NO**") }'; }

# row KEY LABEL BASEKEY BASELABEL TARGET: one table line, medians per mode.
row() {
  local key=$1 label=$2 base=$3 blabel=$4 target=$5 m secs="" cpus="" ratios="" mets="" r
  for m in "${MODES[@]}"; do
    secs+=" $(med "$key" "$m") |"
    cpus+="${cpus:+ / }$(cmed "$key" "$m")"
    if [[ -n $base ]]; then
      r=$(ratio "$(med "$key" "$m")" "$(med "$base" "$m")")
      ratios+="${ratios:+ / }${r}×"
      if [[ -n $target ]]; then
        mets+="${mets:+ / }$(verdict "$r" "$target")"
      fi
    fi
  done
  local tgt="–"
  [[ -n $target ]] && tgt="≤ ${target}×"
  echo "| $label |$secs $cpus | ${blabel:-–} | ${ratios:-–} | $tgt | ${mets:-–} |"
}
ROWS=$(
  row baseline "md5sum + cp -r (baseline)" "" "" ""
  row md5part "  ↳ md5sum part" "" "" ""
  row cppart "  ↳ cp -r part" "" "" ""
  row log "**artfs log** (fresh registry)" baseline "md5sum + cp" 1.3
  row md5 "md5sum alone (hash baseline)" "" "" ""
  row relog "**artfs re-log** (unchanged, stat cache)" md5 "md5sum" 0.1
  row rehash "artfs re-log --rehash (every file hashed)" md5 "md5sum" 1.0
  if [[ $BENCH_WANDB == 1 ]]; then
    row wandb "wandb $WANDB_VER add_dir (in-process)" log "artfs log" ""
    row wandbproc "wandb $WANDB_VER, whole process" log "artfs log" ""
  fi
)
MISSED=$(
  for m in "${MODES[@]}"; do
    awk -v a="$(med log "$m")" -v b="$(med baseline "$m")" -v c="$(med relog "$m")" -v d="$(med md5 "$m")" \
      'BEGIN { print (a / b > 1.3 || c / d > 0.1) ? 1 : 0 }'
  done | sort -r | head -1
)
HEAD="| contender |"; SEPL="|---|"
for m in "${MODES[@]}"; do HEAD+=" $m median s |"; SEPL+="---:|"; done
MODES_SLASH=$(IFS=/; echo "${MODES[*]}")
HEAD+=" CPU s ($MODES_SLASH) | ratio vs | ratio ($MODES_SLASH) | target | met ($MODES_SLASH) |"
SEPL+="---:|---|---:|---|---|"
TABLE=$(printf '%s\n%s\n%s\n' "$HEAD" "$SEPL" "$ROWS")

COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD 2>/dev/null || COMMIT+=" (working tree modified)"
FREE=$(df -h --output=avail "$BENCH_DIR" | tail -1 | tr -d ' ')
FS=$(df --output=fstype "$BENCH_DIR" | tail -1 | tr -d ' ')
ALL=""
for k in baseline md5part cppart log md5 relog rehash wandb wandbproc; do
  for m in "${MODES[@]}"; do
    [[ -n ${T[$k.$m]:-} ]] && ALL+="${ALL:+; }$k/$m: ${T[$k.$m]% }"
    [[ -n ${C[$k.$m]:-} ]] && ALL+=" (CPU ${C[$k.$m]% })"
  done
done

SECTION_TEXT=$(cat <<EOF
$SECTION

Run \`scripts/bench/log.sh\` (or \`make bench\`). Targets: \`artfs log\` within 1.3× of
\`md5sum\` + \`cp -r\` of the same files; a re-log of unchanged files (the stat cache
reads none of them) within 0.1× of \`md5sum\`, and with \`--rehash\` no slower than it.
Peer (no target): wandb SDK \`Artifact.add_dir\` offline (copies each file to its staging dir and
MD5-hashes it, eagerly). Ratios are against baselines measured in the same run; medians of
$REPS runs. *cold*: \`sync\`, then the data set's files evicted one by one (\`posix_fadvise
DONTNEED\`, \`scripts/bench/evict.py\`; the rest of the machine keeps its cache) before each timed run; *warm*:
source files cached. Writes are not synced inside the timings (for any contender).

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) cores, kernel $(uname -r), $(free -g | awk '/^Mem:/ { print $2 " GiB RAM" }'), $FS, $FREE free in $BENCH_DIR
- data: $FILES files × $FILE_KIB KiB = $(awk -v b="$TOTAL_BYTES" 'BEGIN { printf "%d MiB = %.2f GiB", b / 2^20, b / 2^30 }') (random)
- load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER (other work on the machine
  competes for the 2 cores; CPU s = user + sys of the contender's processes, less load-sensitive)
- artfs: commit $COMMIT, binary \`$ARTFS_BIN\`

$TABLE

Raw seconds per run: $ALL.
EOF
)

echo
echo "$TABLE"
echo

# Replace only the lines from our heading up to the next `## ` heading; keep everything else.
printf '%s\n' "$SECTION_TEXT" | python3 "$REPO/scripts/bench/update-section.py" "$BENCH_MD" "$SECTION"
note "results written to $BENCH_MD ($SECTION)"

if [[ $MISSED == 1 ]]; then
  note "a target was missed"
  [[ $BENCH_STRICT == 1 ]] && exit 1
fi
exit 0
