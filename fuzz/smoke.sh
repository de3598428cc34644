#!/usr/bin/env bash
# Fuzz smoke run for CI: builds every cargo-fuzz target once, then runs each for
# ${FUZZ_SECONDS:-30} seconds on the stable toolchain, ${FUZZ_JOBS:-2} targets at a time.
# Fails if any target finds a crash or a slow input (over 10 s; the input is kept in
# fuzz/artifacts/<target>/), and if `cargo fuzz list` fails or misses a target that
# fuzz_targets/ holds.
#
# New inputs a run discovers go to fuzz/target/smoke-corpus/<target> (ignored by git), so the
# committed seeds in fuzz/corpus/<target> stay small and unchanged.
set -euo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Without a sanitizer no nightly-only rustc flag is needed, so the stable toolchain works.
cargo fuzz build --sanitizer none

# The targets the directory holds: each file with a `fuzz_target!` entry point (split.rs is
# a module they share). One missing from the manifest, or a failing `cargo fuzz list`, would
# otherwise skip targets without a word.
mapfile -t expected < <(grep -l '^fuzz_target!' fuzz_targets/*.rs | xargs -n 1 basename | sed 's/\.rs$//')
if ! listed=$(cargo fuzz list); then
    echo "fuzz smoke run: cargo fuzz list failed" >&2
    exit 1
fi
targets=()
while IFS= read -r t; do
    [ -n "$t" ] && targets+=("$t")
done <<<"$listed"
missing=()
for t in "${expected[@]}"; do
    printf '%s\n' "${targets[@]}" | grep -qx -- "$t" || missing+=("$t")
done
if ((${#expected[@]} == 0 || ${#missing[@]} > 0 || ${#targets[@]} < ${#expected[@]})); then
    echo "fuzz smoke run: cargo fuzz list names ${#targets[@]} targets, fuzz_targets/ holds" \
        "${#expected[@]}; missing: ${missing[*]:-none}" >&2
    exit 1
fi
logs="target/smoke-logs"
mkdir -p "$logs"

run_one() {
    local t="$1"
    mkdir -p "target/smoke-corpus/$t"
    if cargo fuzz run --sanitizer none "$t" "target/smoke-corpus/$t" "corpus/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        echo "fuzz $t: ok ($(grep -Eo 'cov: [0-9]+' "$logs/$t.log" | tail -n 1), \
$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -Eo '[0-9]+$') runs)"
    else
        echo "fuzz $t: FAILED, last lines of $logs/$t.log:" >&2
        tail -n 40 "$logs/$t.log" >&2
        return 1
    fi
}

failed=0
pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=("$!")
    if ((${#pids[@]} >= FUZZ_JOBS)); then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done

if ((failed)); then
    echo "fuzz smoke run: a target crashed; see fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz smoke run: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, no crash"
