#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine (as root), then runs
# the Rust tests (unit, interop against real sshd/dropbear/tinysshd, header check) and the C
# tests through CMake/CTest (Debug with ASan/UBSan, Release with valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# One RustCrypto generation only: no crate may appear twice in the dependency graph.
# Checked with and without the optional aws-lc and sntrup features.
for features in "" "--features aws-lc" "--features sntrup"; do
    # shellcheck disable=SC2086
    dups=$(cargo tree -d --edges normal $features 2>/dev/null || true)
    if [[ -n $dups ]]; then
        printf 'duplicate dependency versions (%s):\n%s\n' "${features:-default}" "$dups" >&2
        exit 1
    fi
done
# Lints: the crate denies unwrap/expect/panic outside tests, which only clippy enforces.
cargo clippy -q --lib -- -D warnings
cargo clippy -q --lib --features server -- -D warnings
cargo clippy -q --lib --no-default-features -- -D warnings
cargo clippy -q --lib --features aws-lc -- -D warnings
# The optional aws-lc-rs cipher backend (aws-lc-sys compiles AWS-LC with the C compiler): the
# cipher tests run each case on both backends and cross them (seal on one, open on the other).
cargo test --lib --features aws-lc cipher
# The embedded "modern" build (no rsa, nistp256, dh, legacy, sntrup, encrypted-keys, known-hosts),
# then each optional family alone.
cargo test --lib --no-default-features
for feature in rsa nistp256 dh legacy sntrup; do
    cargo build -q --lib --no-default-features --features "$feature"
done
# The parts an embedded C build may leave out (issue 16), each alone: built and linted, since
# their cfgs decide which helpers are used.
for feature in encrypted-keys known-hosts; do
    cargo clippy -q --lib --no-default-features --features "$feature" -- -D warnings
done
# The integration tests start their own servers on loopback. `server` (off by default, issue 16)
# for the server role's unit tests, tests/server_pair.rs, server_runtime.rs, hostile_server.rs,
# dual_stack.rs, fuzz_corpus.rs's server cases and the examples serve, capsule-server and
# handshake_bench.
cargo test --all-targets --features server -- --test-threads="${SSHBRIDGE_TEST_THREADS:-4}"
# sntrup761 (off by default): its unit tests, hostile values and interop (OpenSSH 10.0 and 9.2,
# tinysshd, Dropbear 2025).
cargo test --features sntrup --lib kex::
cargo test --features sntrup,server --test interop_pq --test hostile_transport --test fuzz_corpus
if [[ -f scripts/test-c.sh ]]; then
    bash scripts/test-c.sh
fi
