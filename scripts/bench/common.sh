# Sourced by the mount benchmarks: ministack up and credentials set, a fresh bucket, and every
# mount and background process started by the script undone on exit.
#   source scripts/bench/common.sh; bench_s3_bucket "$ENDPOINT" "$BUCKET"
# The script appends to MOUNTS (mount points) and PIDS (background processes) as it starts them.

MOUNTS=() PIDS=() LOOPS=()
bench_cleanup() {
  for m in "${MOUNTS[@]}"; do mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Each fresh filesystem is listed once per case; a busy one is detached lazily. Nothing here
  # may fail the script (errexit applies in the trap), as the results are written by then.
  for m in "${LOOPS[@]}"; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" || true; }; done
  return 0
}
trap bench_cleanup EXIT

bench_s3_bucket() { # ENDPOINT BUCKET: fails unless ministack answers and the bucket is made
  local services
  services=$(scripts/test-services.sh status 2>/dev/null || true)
  grep -q '^s3 *up' <<<"$services" || { echo "ministack is not running (scripts/test-services.sh start)" >&2; return 1; }
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  curl -sf -X PUT "$1/$2" >/dev/null || { echo "cannot create bucket $2" >&2; return 1; }
}

# A fresh, empty ext4 filesystem of SIZE at DIR (a sparse image beside it, made anew on each
# call): a cache that starts cold on a disk with no history. Reusing one directory on the shared
# disk is not that: ext4 steers new inodes around the thousands just deleted by the previous
# case (`recently_deleted` in the kernel), which cost more CPU than the fills themselves.
bench_fresh_fs() { # DIR SIZE
  local dir=$1 size=$2
  mountpoint -q "$dir" && umount "$dir"
  mkdir -p "$dir"
  rm -f "$dir.img" && truncate -s "$size" "$dir.img" && mkfs.ext4 -q -F "$dir.img" && mount -o loop "$dir.img" "$dir" || return 1
  LOOPS+=("$dir")
}

# Page cache dropped machine-wide (root): the next read comes from the disk.
bench_drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
