# The README's commands. `make demo` runs the product; `make test` is what CI runs.
.PHONY: demo demo-stop test lint build

demo:
	./demo/trusted-clusters.sh

demo-stop:
	./demo/trusted-clusters.sh stop

build:
	cargo build --workspace --bins

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# End-to-end tests drive the binaries built by `build`; they need root (they create Unix users).
test: lint build
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi
