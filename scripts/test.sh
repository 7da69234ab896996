#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine (as root), then runs
# the Rust tests (unit, interop against real sshd/dropbear/tinysshd, header check) and the C
# tests through CMake/CTest (Debug with ASan/UBSan, Release with valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# One RustCrypto generation only: no crate may appear twice in the dependency graph.
dups=$(cargo tree -d --edges normal 2>/dev/null || true)
if [[ -n $dups ]]; then
    printf 'duplicate dependency versions:\n%s\n' "$dups" >&2
    exit 1
fi
# The embedded "modern" build (no rsa, nistp256, dh, legacy, sntrup), then each optional family alone.
cargo test --lib --no-default-features
for feature in rsa nistp256 dh legacy sntrup; do
    cargo build -q --lib --no-default-features --features "$feature"
done
# The integration tests start their own servers on loopback.
cargo test --all-targets -- --test-threads="${SSHBRIDGE_TEST_THREADS:-4}"
# sntrup761 (off by default): its unit tests, hostile values and interop (OpenSSH 10.0 and 9.2,
# tinysshd, Dropbear 2025).
cargo test --features sntrup --lib kex::
cargo test --features sntrup --test interop_pq --test hostile_transport --test fuzz_corpus
if [[ -f scripts/test-c.sh ]]; then
    bash scripts/test-c.sh
fi
