#!/usr/bin/env bash
# The long variants of the hostile-world tests (issue 7), too slow for every CI run:
#   - durability: 20 rounds of kill -9 in a stream of up to 1,000 tctl operations
#     (CI runs 3 rounds of up to 150);
#   - load: 10 storms of 200 concurrent sessions (CI runs 2);
#   - fuzzing: 10 minutes per target (CI runs 30 seconds).
# Override with TP_DURABILITY_ROUNDS, TP_DURABILITY_OPS, TP_LOAD_ROUNDS, TP_FUZZ_SECONDS.
# Needs root, like the other end-to-end tests. Takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

export TP_DURABILITY_ROUNDS=${TP_DURABILITY_ROUNDS:-20}
export TP_DURABILITY_OPS=${TP_DURABILITY_OPS:-1000}
export TP_LOAD_ROUNDS=${TP_LOAD_ROUNDS:-10}
fuzz_seconds=${TP_FUZZ_SECONDS:-600}

cargo build --workspace --bins
# A private copy of the binaries: a rebuild during the hour this takes must not swap them mid-run.
export TP_BIN_DIR="$PWD/target/long-tests-bin"
mkdir -p "$TP_BIN_DIR"
cp target/debug/teleport target/debug/tctl target/debug/tsh "$TP_BIN_DIR/"
run_e2e() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run -p e2e --no-capture "$1"
    else
        cargo test -p e2e --test e2e -- --nocapture "$1"
    fi
}
echo "== durability: $TP_DURABILITY_ROUNDS rounds of up to $TP_DURABILITY_OPS operations"
run_e2e durability::
echo "== load: $TP_LOAD_ROUNDS storms of 200 sessions"
run_e2e load::
echo "== fuzzing: ${fuzz_seconds}s per target"
./scripts/fuzz.sh "$fuzz_seconds"
echo "long tests passed"
