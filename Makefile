# artfs developer entry points. `make test` is what CI (.ci/run) runs.
SHELL := /bin/bash
SERVICES := scripts/test-services.sh
CLIPPY := cargo clippy --all-targets --release -- -D warnings && cargo clippy --lib --release --features python -- -D warnings

.PHONY: install services fmt lint test bench clean-mounts wheel python-test

# The Python wheel (docs/PYTHON.md). WHEEL_PROFILE=dev builds a quick unoptimised one.
WHEEL_PROFILE ?= release
WHEEL_DIR := target/$(if $(filter dev,$(WHEEL_PROFILE)),debug,$(WHEEL_PROFILE))
PY := python3
PY_BUILD := target/py/build
PY_TEST := target/py/test

install:
	@dpkg -s fuse3 >/dev/null 2>&1 || apt-get install -y fuse3
	cargo install --path . --locked

# Start (or confirm) the local S3 / GCS / HTTP test servers; see scripts/test-services.sh.
services:
	$(SERVICES) start

fmt:
	cargo fmt

lint:
	$(CLIPPY)

# One shell line so the services' environment reaches cargo.
test:
	$(SERVICES) start && eval "$$($(SERVICES) env)" && cargo fmt --check && $(CLIPPY) && cargo test --release -- --test-threads=4
	$(MAKE) python-test

# The wheel: the `artfs` binary (the one `cargo test --release` already built, stripped) as a
# script pip puts on PATH, plus the package in python/ and its extension module (this crate with
# `--features python`, built by maturin into target/wheels).
wheel:
	cargo build --locked --profile $(WHEEL_PROFILE) --bin artfs
	rm -rf target/wheel-data target/wheels && mkdir -p target/wheel-data/scripts
	strip -o target/wheel-data/scripts/artfs $(WHEEL_DIR)/artfs
	test -x $(PY_BUILD)/bin/maturin || { $(PY) -m venv $(PY_BUILD) && $(PY_BUILD)/bin/pip install -q 'maturin>=1.9,<2'; }
	$(PY_BUILD)/bin/maturin build --locked --profile $(WHEEL_PROFILE) --strip --out target/wheels

# The wheel installed into a fresh venv (never the source tree) as a user without a Rust toolchain
# would: PATH holds the venv and the system directories only. First README's quick start with the
# installed `artfs`, then ruff, mypy and the tests. The fsspec tests run where FUSE is unavailable
# (/dev/fuse masked in a private mount namespace).
NO_RUST := PATH=$(abspath $(PY_TEST))/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
python-test: wheel
	rm -rf $(PY_TEST) && $(NO_RUST) $(PY) -m venv $(PY_TEST)
	$(NO_RUST) pip install -q pytest fsspec pandas pyarrow mypy ruff
	$(NO_RUST) pip install -q --no-deps target/wheels/artfs-*.whl
	eval "$$($(SERVICES) env)" && cd python/tests && $(NO_RUST) pytest -q -p no:cacheprovider test_quickstart.py
	$(NO_RUST) ruff check python && $(NO_RUST) ruff format --check python
	$(NO_RUST) mypy python/artfs
	cd python/tests && unshare --mount --propagation private sh -c \
	  '{ [ ! -e /dev/fuse ] || mount --bind /dev/null /dev/fuse; } && ARTFS_TEST_NO_FUSE=1 exec ../../$(PY_TEST)/bin/pytest -q -m "not mount" -p no:cacheprovider .'
	eval "$$($(SERVICES) env)" && cd python/tests && $(NO_RUST) pytest -q -m mount -p no:cacheprovider --ignore=test_quickstart.py .

bench:
	scripts/bench/run.sh

# Unmount leftover artfs FUSE mounts under /tmp (e.g. after a crashed test).
clean-mounts:
	@findmnt -ln -t fuse.artfs -o TARGET | { grep '^/tmp/' || true; } | while IFS= read -r m; do \
	  echo "unmounting $$m"; fusermount3 -u "$$m" || echo "failed to unmount $$m (busy? try: fusermount3 -uz '$$m')" >&2; \
	done
