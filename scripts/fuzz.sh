#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_EACH] [TARGET...]
#
# The committed seeds (fuzz/seeds/<target>) start each run; what the fuzzer finds goes to
# target/fuzz/corpus/<target> (kept between runs, never committed). A crash, panic, hang
# (-timeout) or runaway memory (-rss_limit_mb) fails the script and leaves the input under
# fuzz/artifacts/<target>/ with the command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(role_map template labels resource_yaml proxy_request tunnel_wire tunnel_lines node_lines kube app pg)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

# cargo-fuzz passes nightly-only flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
# No sanitizer: the code under test has no unsafe code, and ASan would triple the time per input.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$PWD/target/fuzz"
flags=(--sanitizer none --release --debug-assertions --fuzz-dir fuzz)
cargo fuzz build "${flags[@]}"

for t in "${targets[@]}"; do
    corpus="target/fuzz/corpus/$t"
    mkdir -p "$corpus"
    echo "== fuzzing $t for ${seconds}s"
    log="target/fuzz/$t.log"
    dict=()
    if [ -f "fuzz/dicts/$t.dict" ]; then
        dict=(-dict="fuzz/dicts/$t.dict")
    fi
    status=0
    cargo fuzz run "${flags[@]}" "$t" "$corpus" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    if [ "$status" -ne 0 ]; then
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|Reproduce with' "$log" | head -60 >&2 || true
        echo "fuzz target $t failed (exit $status); the input is under fuzz/artifacts/$t/, the log in $log" >&2
        exit 1
    fi
done
echo "fuzzing: all ${#targets[@]} targets ran ${seconds}s each without a crash, panic or hang"
