# Sourced by the mount benchmarks: ministack up and credentials set, a fresh bucket, and every
# mount and background process started by the script undone on exit.
#   source scripts/bench/common.sh; bench_s3_bucket "$ENDPOINT" "$BUCKET"
# The script appends to MOUNTS (mount points) and PIDS (background processes) as it starts them.

MOUNTS=() PIDS=()
bench_cleanup() {
  for m in "${MOUNTS[@]}"; do mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap bench_cleanup EXIT

bench_s3_bucket() { # ENDPOINT BUCKET: fails unless ministack answers and the bucket is made
  local services
  services=$(scripts/test-services.sh status 2>/dev/null || true)
  grep -q '^s3 *up' <<<"$services" || { echo "ministack is not running (scripts/test-services.sh start)" >&2; return 1; }
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  curl -sf -X PUT "$1/$2" >/dev/null || { echo "cannot create bucket $2" >&2; return 1; }
}
