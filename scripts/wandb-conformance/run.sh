#!/usr/bin/env bash
# W&B's own system tests (test_artifacts, test_registries), unmodified, against `artfs serve`.
#
#   scripts/wandb-conformance/run.sh WANDB_SOURCE [PYTEST ARGS...]
#
# WANDB_SOURCE is a checkout of github.com/wandb/wandb or a bare/mirror git directory of it.
# Its tests are copied to a temp dir, where only tests/system_tests/conftest.py and
# backend_fixtures.py are replaced by ours (users, orgs and teams become artfs commands); an
# `artfs serve` on a temp registry answers them. Prints pass/fail/skip/error counts per
# directory and the first error line of each failure; exits with pytest's status.
#
# Env: ARTFS_BIN (default: this repo's target/debug/artfs, built if missing),
#      ARTFS_WANDB_PYTHON (default: /tmp/artfs-services/wbvenv/bin/python, with wandb 0.31.0),
#      CONFORMANCE_TIMEOUT (seconds per test, default 180), CONFORMANCE_KEEP=1 keeps the temp dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
src="$1"
shift
[[ $# -gt 0 ]] || set -- tests/system_tests/test_artifacts tests/system_tests/test_registries

python="${ARTFS_WANDB_PYTHON:-/tmp/artfs-services/wbvenv/bin/python}"
if [[ -z "${ARTFS_BIN:-}" ]]; then
    ARTFS_BIN="$repo/target/debug/artfs"
    [[ -x "$ARTFS_BIN" ]] || cargo build --manifest-path "$repo/Cargo.toml" --bin artfs
fi
export ARTFS_BIN

work="$(mktemp -d -t artfs-wandb-conformance.XXXXXX)"
serve_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    if [[ "${CONFORMANCE_KEEP:-}" == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the tests, copied (a mirror may lack some large blobs: those files are left out) ---------
wanted=(tests/__init__.py tests/conftest.py tests/assets tests/fixtures tests/system_tests)
if [[ -d "$src/tests/system_tests" ]]; then
    (cd "$src" && tar -cf - "${wanted[@]}") | tar -xf - -C "$work"
else
    git -C "$src" rev-parse --git-dir >/dev/null
    git -C "$src" ls-tree -r HEAD -- "${wanted[@]}" | while read -r _mode type obj path; do
        [[ "$type" == blob ]] || continue
        mkdir -p "$work/$(dirname "$path")"
        git -C "$src" cat-file blob "$obj" >"$work/$path" 2>/dev/null || rm -f "$work/$path"
    done
fi
[[ -f "$work/tests/system_tests/conftest.py" ]] || { echo "no tests/system_tests in $src" >&2; exit 2; }
cp "$here/conftest.py" "$here/backend_fixtures.py" "$work/tests/system_tests/"
cp "$here/pytest.ini" "$work/"

# --- what the tests import (PyPI only; already-present packages are left alone) --------------
deps=(pytest~=8.4 pytest-timeout pytest-mock pytest-xdist pytest-asyncio fastapi uvicorn
      responses "moto[s3]" boto3 pandas numpy matplotlib bokeh google-cloud-storage pyte Pillow)
if ! "$python" -c 'import pytest, pytest_timeout, pytest_mock, xdist, pytest_asyncio, fastapi, uvicorn, responses, moto, boto3, pandas, numpy, matplotlib, bokeh, google.cloud.storage, pyte, PIL' 2>/dev/null; then
    "$python" -m pip install -q "${deps[@]}"
fi

# --- the server ------------------------------------------------------------------------------
export ARTFS_REGISTRY="$work/registry" ARTFS_CACHE_DIR="$work/cache"
mkdir -p "$ARTFS_REGISTRY"
# W&B's test server is configured with the storage region `minio-local`, which the tests name.
"$ARTFS_BIN" serve --listen 127.0.0.1:0 --storage-region minio-local \
    >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
ARTFS_CONFORMANCE_URL="$(sed -n 's/^listening on //p' "$work/serve.out" | head -1)"
[[ -n "$ARTFS_CONFORMANCE_URL" ]] || { echo "artfs serve did not start" >&2; exit 1; }
export ARTFS_CONFORMANCE_URL
echo "artfs serve at $ARTFS_CONFORMANCE_URL (registry $ARTFS_REGISTRY)" >&2

# --- the run ---------------------------------------------------------------------------------
rc=0
(cd "$work" && "$python" -m pytest -p no:cacheprovider -c pytest.ini --rootdir "$work" \
    --timeout="${CONFORMANCE_TIMEOUT:-180}" -o junit_family=xunit2 --junitxml="$work/junit.xml" \
    --continue-on-collection-errors -q -rN "$@") >"$work/pytest.out" 2>&1 || rc=$?
tail -3 "$work/pytest.out" >&2
if [[ -f "$work/junit.xml" ]]; then
    "$python" "$here/report.py" "$work/junit.xml"
else
    cat "$work/pytest.out"
fi
exit "$rc"
