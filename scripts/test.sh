#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine (as root), then runs
# the Rust tests (unit, interop against real sshd/dropbear/tinysshd, header check) and the C
# tests through CMake/CTest (Debug with ASan/UBSan, Release with valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# The integration tests start their own servers; two test threads suit a 2-core machine.
cargo test --all-targets -- --test-threads="${SSHBRIDGE_TEST_THREADS:-4}"
if [[ -f scripts/test-c.sh ]]; then
    bash scripts/test-c.sh
fi
