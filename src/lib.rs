//! sshbridge: an embeddable SSH-2 client and server (RFC 4250-4254) with a drop-in C API for
//! the eCos Dropbear client.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod algs;
pub mod auth;
pub mod client;
pub mod connection;
/// The channel module of the connection layer, under its old path.
pub use connection::channel;
pub mod cipher;
pub mod error;
pub mod ffi;
#[doc(hidden)] pub mod fuzzing;
pub mod gate;
pub mod kex;
pub mod logging;
pub mod keys;
pub mod msg;
pub mod random;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
pub mod transport;
pub mod trust;
pub mod wire;

pub use algs::{Cipher, Kex, Mac, Preferences, SigAlg};
pub use auth::Credential;
pub use channel::ExitStatus;
pub use error::{Error, Result};
pub use keys::{KeyKind, PrivateKey, PublicKey};
pub use runtime::channel::{Channel, Output};
pub use runtime::forward::{LocalForward, RemoteForward};
pub use runtime::known_hosts::HostAddr;
pub use runtime::session::{Config, Session, SessionInfo};
#[cfg(feature = "server")]
pub use runtime::server::{Server, ServerChannel, ServerConfig, ServerConnection};
pub use trust::{HostKeyPolicy, HostKeyQuery, KnownHosts, Strict};
pub use transport::RekeyLimits;
