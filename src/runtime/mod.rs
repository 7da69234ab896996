//! The I/O edge: the only code that touches sockets, threads, the clock and the OS random
//! generator. `driver` is the one thread per connection; `session`, `channel` and `forward`
//! are the blocking Rust API's handles; `stdio` is the C API's socketpair bridge; `keygen`
//! gives key generation and export the OS generator; `sys` wraps the system calls; `capsule`
//! sets up SSH Capsules connections (per-host identity, trust on first use, OpenSSH config);
//! `capsule_server` is the capsule server's policy (allow-list, path binding, accounts).

pub mod capsule;
pub mod channel;
pub mod config;
pub mod driver;
pub mod forward;
pub mod keygen;
pub mod known_hosts;
pub mod session;
pub mod stdio;
pub mod sys;
#[cfg(feature = "server")]
pub mod capsule_server;
#[cfg(feature = "server")]
pub mod server;
