#!/usr/bin/env bash
# test-c.sh — build and test sshbridge's C side with CMake/CTest, twice:
#
#   Debug    build/c-debug    cargo dev profile; clitest1 with AddressSanitizer + UBSan
#   Release  build/c-release  cargo --release; clitest1, valgrind memcheck runs, packaging
#                             (add_subdirectory, install + pkg-config, find_package)
#
# Each runs `ctest --output-on-failure` (the CTest fixture starts a throwaway sshd and dropbear
# on loopback, so run as root, as for the Rust integration tests). Prints one summary line per
# configuration and a final verdict; exits non-zero if anything failed.
#
#   scripts/test-c.sh                 both configurations
#   scripts/test-c.sh Release         just one
#   JOBS=8 scripts/test-c.sh          ctest parallelism (default 4; the tests mostly wait on I/O)
#   CTEST_ARGS="-R sshd" scripts/test-c.sh
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=${HERE%/scripts}
readonly JOBS=${JOBS:-4}
read -r -a EXTRA <<<"${CTEST_ARGS:-}"

log() { printf 'test-c: %s\n' "$*" >&2; }

configs=("$@")
((${#configs[@]})) || configs=(Debug Release)

if [[ $(id -u) -ne 0 ]]; then
    log "WARNING: not root: the fixture servers cannot start, so most tests will not run"
fi
# A fresh machine: cmake, valgrind, pkg-config, the SSH servers and the test account.
if ! command -v cmake >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
    log "cmake/pkg-config missing: running scripts/install-deps.sh"
    flock "${TMPDIR:-/tmp}/sshbridge-install-deps.lock" bash "$ROOT/scripts/install-deps.sh" || exit 1
fi
command -v cargo >/dev/null 2>&1 || PATH=$HOME/.cargo/bin:$PATH

mkdir -p "$ROOT/build"
start=$SECONDS
summary=()
overall=0
for cfg in "${configs[@]}"; do
    dir=$ROOT/build/c-${cfg,,}
    t0=$SECONDS
    log "=== $cfg: configure + build in ${dir#"$ROOT/"}"
    if ! cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$cfg" >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log" >&2
        summary+=("$cfg: CONFIGURE FAILED")
        overall=1
        continue
    fi
    if ! cmake --build "$dir" -j "$(nproc)"; then
        summary+=("$cfg: BUILD FAILED")
        overall=1
        continue
    fi
    log "=== $cfg: ctest"
    (cd "$dir" && ctest --output-on-failure -j "$JOBS" "${EXTRA[@]}") 2>&1 | tee "$dir/ctest.log"
    rc=${PIPESTATUS[0]}
    # "100% tests passed, 0 tests failed out of 87" counts run tests (skipped ones as passed).
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$dir/ctest.log" | tail -n 1)
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    disabled=$(grep -cE '\*\*\*Not Run \(Disabled\)' "$dir/ctest.log")
    skipped=$(grep -cE '\*\*\*Skipped' "$dir/ctest.log")
    if [[ -z $line ]]; then
        summary+=("$cfg: NO TEST RESULTS (ctest exit $rc)")
        overall=1
        continue
    fi
    passed=$((total - failed - skipped))
    ((rc == 0 && failed == 0)) || overall=1
    summary+=("$cfg: $passed passed, $failed failed, $skipped skipped, $disabled disabled ($((SECONDS - t0)) s)")
done

echo
for s in "${summary[@]}"; do
    echo "test-c: $s"
done
if ((overall == 0)); then
    echo "test-c: OK ($((SECONDS - start)) s)"
else
    echo "test-c: FAILED ($((SECONDS - start)) s)"
fi
exit "$overall"
