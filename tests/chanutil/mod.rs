//! Helpers shared by `interop_channels.rs` and `interop_forwarding.rs`: connecting with a
//! bounded `io_timeout`, deterministic data, echo transfers that never fill a window, and
//! joining worker threads.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sshbridge::{Channel, Config, Credential, Session};

use crate::support::{self, Server};

/// Longest wait for any single operation; a hang becomes a test failure.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
pub const MIB: usize = 1 << 20;

/// Prints the server log if the test fails.
pub struct ShowLog<'a>(pub &'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("===== {:?} server log (port {}) =====\n{}", self.0.kind, self.0.port, self.0.log());
        }
    }
}

pub fn config(srv: &Server) -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.host_keys = srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.io_timeout = Some(IO_TIMEOUT);
    cfg
}

pub fn connect(srv: &Server) -> Session {
    Session::connect(srv.addr(), config(srv)).unwrap_or_else(|e| panic!("connect to {:?}: {e} ({e:?})", srv.kind))
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}: {} bytes back for {} sent, first difference at {:?}",
        got.len(),
        want.len(),
        first_difference(got, want)
    );
}

pub fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / MIB as f64 / t.as_secs_f64().max(1e-6)
}

/// Most bytes written to an echo and not yet read back.
pub const IN_FLIGHT: usize = MIB;
pub const CHUNK: usize = 64 * 1024;

/// Send `input` through an echo (a remote `cat`, or a TCP echo at the end of a forward) and
/// return what comes back once the far end closes. `progress` is called with the bytes read
/// back so far after each chunk.
pub fn echo_with(ch: &mut Channel, input: &[u8], what: &str, progress: &mut dyn FnMut(usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0;
    for piece in input.chunks(CHUNK) {
        ch.write_all(piece).unwrap_or_else(|e| panic!("{what}: write at {sent}: {e}"));
        sent += piece.len();
        while sent - out.len() > IN_FLIGHT {
            let n = ch.read(&mut buf).unwrap_or_else(|e| panic!("{what}: read at {}: {e}", out.len()));
            assert!(n > 0, "{what}: end of file after {} of {} bytes", out.len(), input.len());
            out.extend_from_slice(&buf[..n]);
        }
        progress(out.len());
    }
    ch.send_eof().unwrap();
    ch.read_to_end(&mut out).unwrap_or_else(|e| panic!("{what}: read at {}: {e}", out.len()));
    out
}

pub fn echo(ch: &mut Channel, input: &[u8], what: &str) -> Vec<u8> {
    echo_with(ch, input, what, &mut |_| {})
}

/// Join worker threads; a worker's panic fails the test with its message.
pub fn join_all(handles: Vec<JoinHandle<()>>) {
    let mut failed = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("worker {i}: {msg}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
