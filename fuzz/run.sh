#!/usr/bin/env bash
# Runs every fuzz target for the given time (default 300 s each), one after the
# other, then minimises each target's corpus back into fuzz/corpus/<target>/
# and prints, per target: executions, executions per second, libFuzzer's
# coverage (`cov:` edges, `ft:` features) and the corpus size.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Crashes are written to fuzz/artifacts/<target>/ and stop that target's run;
# see fuzz/README.md for turning one into a regression.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-300}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(decode glob config session)

# Longest input per target: long enough to pass the small request limits the
# decode target can pick; for glob, long enough for hostile patterns (which
# cost pattern length × string length, slow under the fuzzer's comparison
# tracing) and short enough to leave time for the rest; for session, room for
# a few dozen steps.
declare -A max_len=([decode]=8192 [glob]=1024 [config]=4096 [session]=2048)
# Extra libFuzzer flags per target. A session script needs many steps to get
# anywhere: start with long inputs rather than growing them slowly.
declare -A extra=([session]="-len_control=0")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo +nightly fuzz build
summary=()
status=0
for target in "${targets[@]}"; do
    corpus=corpus/$target
    mkdir -p "$corpus" "$work/$target" "artifacts/$target"
    seeds=("$corpus")
    [[ -d regressions/$target ]] && seeds+=("regressions/$target")
    log=$work/$target.log
    echo "==> $target: fuzzing for $seconds s"
    # New inputs go to the first directory (scratch); the corpus stays as is
    # until the merge below.
    if ! cargo +nightly fuzz run "$target" "$work/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len="${max_len[$target]:-4096}" \
        -timeout=20 -rss_limit_mb=4096 -use_value_profile=1 ${extra[$target]:-} \
        -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
        >"$log" 2>&1; then
        echo "$target: the fuzzer stopped with a failure:"
        sed -n '/panicked at/,/stack backtrace/p; /ERROR: libFuzzer/p' "$log" | head -n 20
        grep -A 2 'Failing input' "$log" || tail -n 20 "$log"
        status=1
    fi
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: ... exec/s: E ..."
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")

    echo "==> $target: minimising the corpus"
    merged=$work/$target.min
    mkdir -p "$merged"
    cargo +nightly fuzz run "$target" "$merged" "$corpus" "$work/$target" -- \
        -merge=1 -max_len="${max_len[$target]:-4096}" -timeout=20 -rss_limit_mb=4096 \
        -use_value_profile=1 >"$work/$target.merge.log" 2>&1 || {
        echo "$target: merge failed; corpus left as it was"
        tail -n 20 "$work/$target.merge.log"
        status=1
        continue
    }
    rm -f "$corpus"/*
    cp "$merged"/* "$corpus"/
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)
    summary+=("$(printf '%-8s %12s %8s %7s %7s %7s %10s' "$target" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "$files" "$bytes")")
done

echo
printf '%-8s %12s %8s %7s %7s %7s %10s\n' target execs exec/s cov ft files bytes
printf '%s\n' "${summary[@]}"
exit "$status"
