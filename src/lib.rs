//! sshbridge: an embeddable SSH-2 client (RFC 4250-4254) with a drop-in C API for the eCos
//! Dropbear client.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod algs;
pub mod cipher;
pub mod error;
pub mod kex;
pub mod keys;
pub mod msg;
pub mod random;
pub mod wire;

pub use error::{Error, Result};
