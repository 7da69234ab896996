//! Test support: run each packet-layer test (RFC 4253 section 6, RFC 5647, OpenSSH
//! PROTOCOL.chacha20poly1305) once per compiled-in AEAD backend, as separate tests named
//! `test_name::rustcrypto` and `test_name::aws_lc`.

use std::cell::Cell;

use super::Backend;

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::RustCrypto) };
}

/// The backend the current test runs on (each test has its own thread).
pub(super) fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

pub(super) fn run(b: Backend, body: fn()) {
    BACKEND.with(|c| c.set(b));
    body();
}

/// `both_backends!(f)` next to a plain `fn f()` makes the tests `f::rustcrypto` and, with
/// feature "aws-lc", `f::aws_lc`.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            use crate::cipher::test_backends::run;
            use crate::cipher::Backend;

            #[test]
            fn rustcrypto() {
                run(Backend::RustCrypto, super::$name);
            }

            #[cfg(feature = "aws-lc")]
            #[test]
            fn aws_lc() {
                run(Backend::AwsLc, super::$name);
            }
        }
    };
}
