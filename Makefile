# The README's commands. `make demo` runs the product; `make test` is what CI runs.
.PHONY: demo demo-stop demo-ha demo-ha-stop deps test check fuzz long-tests lint build

demo:
	./demo/trusted-clusters.sh

demo-stop:
	./demo/trusted-clusters.sh stop

demo-ha:
	./demo/ha-root.sh

demo-ha-stop:
	./demo/ha-root.sh stop

build:
	cargo build --workspace --bins

# What the tests need from Debian (OpenSSH, iproute2, nftables, PostgreSQL, HAProxy).
deps:
	./scripts/deps.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# End-to-end tests drive the binaries built by `build`; they need root (they create Unix users).
# `check` is the quick loop; `test` (what CI runs) adds 30 seconds of fuzzing per target. Both
# install what a fresh machine lacks first.
check: deps lint build
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

test: check fuzz

fuzz:
	./scripts/fuzz.sh 30

# Long variants (20 x 1,000 kill -9 rounds, 10 load storms, 10 minutes of fuzzing per target).
long-tests:
	./scripts/long-tests.sh
