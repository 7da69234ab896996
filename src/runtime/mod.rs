//! The I/O edge: the only code that touches sockets, threads, the clock and the OS random
//! generator. `session` is the blocking Rust API; `sys` wraps the system calls.

pub mod known_hosts;
pub mod session;
pub mod worker;
pub mod sys;
