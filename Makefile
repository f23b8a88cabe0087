# artfs developer entry points. `make test` is what CI (.ci/run) runs.
SHELL := /bin/bash
SERVICES := scripts/test-services.sh
CLIPPY := cargo clippy --all-targets --release -- -D warnings

.PHONY: install services fmt lint test bench clean-mounts

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

bench:
	scripts/bench/run.sh

# Unmount leftover artfs FUSE mounts under /tmp (e.g. after a crashed test).
clean-mounts:
	@findmnt -ln -t fuse.artfs -o TARGET | { grep '^/tmp/' || true; } | while IFS= read -r m; do \
	  echo "unmounting $$m"; fusermount3 -u "$$m" || echo "failed to unmount $$m (busy? try: fusermount3 -uz '$$m')" >&2; \
	done
