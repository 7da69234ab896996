#!/usr/bin/env bash
# Fuzz sshbridge with cargo-fuzz (libFuzzer). The targets are the functions of src/fuzzing.rs;
# fuzz/fuzz_targets/ has one file per target.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     default: all targets, 60 s each
#
# Environment:
#   FUZZ_JOBS=N        run N targets at once (default 1; this is a 2-core machine)
#   FUZZ_SANITIZER=S   none (default: fastest; Rust code panics on its own) or address
#   FUZZ_ARGS="..."    extra libFuzzer flags, e.g. "-fork=2 -ignore_crashes=1"
#
# Only stable Rust is installed here. cargo-fuzz passes nightly-only flags (-Zsanitizer=...,
# and it checks for a nightly compiler), so this script sets RUSTC_BOOTSTRAP=1, which lets the
# stable compiler accept them. Overflow checks and debug assertions are on (--debug-assertions),
# like the test profile.
#
# Inputs libFuzzer finds go to fuzz/work/TARGET/ (ignored by git); the committed seeds in
# fuzz/corpus/TARGET/ are read, never written. Crashes land in fuzz/artifacts/TARGET/; minimise
# one with `RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s none TARGET fuzz/artifacts/TARGET/crash-...`
# (from fuzz/), commit it under fuzz/regressions/TARGET/ and it is replayed by
# tests/fuzz_corpus.rs. Per-target logs and a summary (executions, exec/s, cov, ft, crashes)
# are written to fuzz/work/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

want=${1:-all}
secs=${2:-60}
jobs=${FUZZ_JOBS:-1}
san=${FUZZ_SANITIZER:-none}
extra=${FUZZ_ARGS:-}

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

all=(ident packet message private_key public_key signature client client_session kex)
if [[ $want == all ]]; then
    targets=("${all[@]}")
else
    targets=("$want")
fi

# Longest input per target: room for the limits under test (8 KiB identification lines, a
# 4096-bit RSA key in PEM, several packets), small enough to stay fast.
max_len() {
    case $1 in
        ident) echo 20000 ;;
        private_key) echo 8192 ;;
        packet | client | client_session) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

cd fuzz
echo "fuzz.sh: building (sanitizer: $san)" >&2
cargo fuzz build -s "$san" --debug-assertions >&2

mkdir -p work
summary=work/summary.tsv
[[ -f $summary ]] || printf 'target\tseconds\texecs\texec_per_s\tcov\tft\tcorpus\tresult\n' >"$summary"

run_one() {
    local t=$1 log=work/$1.log status=0
    mkdir -p "work/$t" "corpus/$t"
    echo "fuzz.sh: $t for ${secs}s (log: fuzz/$log)" >&2
    # shellcheck disable=SC2086
    cargo fuzz run -s "$san" --debug-assertions "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 $extra >"$log" 2>&1 || status=$?
    local execs eps cov ft units result
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    units=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    if [[ $status == 0 ]]; then
        result=ok
    else
        result="FAILED($status): $(grep -m1 -E '^(thread .* panicked|==[0-9]+== ?ERROR|ALARM|.*deadly signal|.*-timeout)' "$log" | cut -c1-160)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
        "${units:-?}" "$result" >>"$summary"
    echo "fuzz.sh: $t: execs ${execs:-?}, ${eps:-?}/s, cov ${cov:-?}, ft ${ft:-?}: $result" >&2
    return "$status"
}

failed=0
running=0
for t in "${targets[@]}"; do
    if ((jobs > 1)); then
        run_one "$t" &
        running=$((running + 1))
        if ((running >= jobs)); then
            wait -n || failed=1
            running=$((running - 1))
        fi
    else
        run_one "$t" || failed=1
    fi
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done

echo "fuzz.sh: summary in $root/fuzz/$summary" >&2
column -t -s $'\t' "$summary" >&2 || cat "$summary" >&2
exit "$failed"
