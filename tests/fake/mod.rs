//! Hostile-peer test harness (HOSTILE.md): a scripted fake SSH server built on the crate's own
//! codec and crypto (`server`), a fault-injecting TCP proxy for real servers (`proxy`), and the
//! measuring helpers the hostile tests share: host keys, short-timeout client configs, error
//! classification, and process probes (descriptors, threads, per-thread CPU time, RSS, the
//! largest single allocation made by a thread).
//!
//! Use from an integration test with `mod fake;`. A test binary that wants the allocation
//! probe declares `#[global_allocator] static A: fake::CountingAlloc = fake::CountingAlloc;`.

#![allow(dead_code)]

pub mod proxy;
pub mod server;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use sshbridge::{Config, Error, PrivateKey};

#[allow(unused_imports)]
pub use server::{FakeServer, KexFault, KexOpts, Step};

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// Host keys for fake servers, generated once per test process with ssh-keygen.
pub struct Keys {
    /// The default host key of every fake server.
    pub ed_a: Arc<PrivateKey>,
    /// Another ed25519 key (the "wrong" key for pinning tests).
    pub ed_b: Arc<PrivateKey>,
    /// RSA 2048 (signature-algorithm tests).
    pub rsa: Arc<PrivateKey>,
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/sshbridge-fake-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let gen = |name: &str, args: &[&str]| -> Arc<PrivateKey> {
            let path = dir.join(name);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-N", "", "-C", "fake-host-key"])
                .args(args)
                .arg("-f")
                .arg(&path)
                .output()
                .expect("run ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
            let bytes = std::fs::read(&path).unwrap();
            Arc::new(PrivateKey::from_bytes(&bytes, None).expect("parse generated host key"))
        };
        let k = Keys {
            ed_a: gen("ed_a", &["-t", "ed25519"]),
            ed_b: gen("ed_b", &["-t", "ed25519"]),
            rsa: gen("rsa", &["-t", "rsa", "-b", "2048"]),
        };
        let _ = std::fs::remove_dir_all(&dir);
        k
    })
}

// ---------------------------------------------------------------------------------------
// Client configuration and error classification
// ---------------------------------------------------------------------------------------

/// Defaults of `config()`: long enough that a failure which must come at once (< `PROMPT`)
/// cannot be a timeout even on a loaded machine. Tests that wait for a timeout set their own.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// "At once": the bound for failures that must not wait for any timer.
pub const PROMPT: Duration = Duration::from_millis(2500);

/// A client config for a fake server using `host_key`: user "tester", that key pinned, no
/// credentials ("none" is accepted by default), short timeouts.
pub fn config_pinned(host_key: &PrivateKey) -> Config {
    let mut c = Config::new("tester");
    c.host_keys.push(host_key.public_key());
    c.connect_timeout = Duration::from_secs(2);
    c.handshake_timeout = HANDSHAKE_TIMEOUT;
    c.io_timeout = Some(IO_TIMEOUT);
    c
}

/// `config_pinned` for the default fake host key.
pub fn config() -> Config {
    config_pinned(&keys().ed_a)
}

/// The crate error inside an `io::Error` from `Channel`'s Read/Write impls.
pub fn ssh_error(e: &io::Error) -> Option<Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()).cloned()
}

/// Short name of an error variant ("Protocol", "Timeout", ...), for assertions and messages.
/// Taken from the Debug form so that variants added later need no change here.
pub fn variant(e: &Error) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_string()
}

/// Assert `e` is one of `variants` and its text contains `fragment` (case-insensitive);
/// also that the text is bounded and free of raw control characters.
#[track_caller]
pub fn assert_error(e: &Error, variants: &[&str], fragment: &str) {
    let text = e.to_string();
    assert!(
        variants.contains(&variant(e).as_str()),
        "expected {variants:?} containing {fragment:?}, got {}: {text}",
        variant(e)
    );
    assert!(text.to_lowercase().contains(&fragment.to_lowercase()), "error {} lacks {fragment:?}: {text}", variant(e));
    assert_sane_text(&text);
}

/// Error text must be bounded and printable (HOSTILE.md: "sanitised and bounded").
#[track_caller]
pub fn assert_sane_text(text: &str) {
    assert!(text.len() <= 4096, "error text of {} bytes", text.len());
    assert!(!text.chars().any(|c| c.is_control() && c != '\t'), "raw control characters in error text: {text:?}");
}

/// Unwrap an expected failure of a connect (or any `Result<T, Error>`).
#[track_caller]
pub fn expect_err<T>(r: Result<T, Error>) -> Error {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e,
    }
}

#[track_caller]
pub fn assert_within(start: Instant, bound: Duration, what: &str) -> Duration {
    let el = start.elapsed();
    assert!(el <= bound, "{what} took {el:?}, bound {bound:?}");
    el
}

// ---------------------------------------------------------------------------------------
// Process probes
// ---------------------------------------------------------------------------------------

/// Serialises whole-process measurements: ordinary tests hold `shared()`, tests that count
/// every descriptor/thread of the process hold `exclusive()`.
static PROC_LOCK: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    PROC_LOCK.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROC_LOCK.write().unwrap_or_else(|e| e.into_inner())
}

pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

pub fn task_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the ")" of the command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Resident set size of the process in KiB.
pub fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn addr_matches(field: &str, a: SocketAddr) -> bool {
    let Some((ip_hex, port_hex)) = field.split_once(':') else { return false };
    if u16::from_str_radix(port_hex, 16) != Ok(a.port()) {
        return false;
    }
    match a {
        SocketAddr::V4(a) => {
            ip_hex.len() == 8 && u32::from_str_radix(ip_hex, 16).map(|v| v.to_ne_bytes()) == Ok(a.ip().octets())
        }
        SocketAddr::V6(_) => ip_hex.len() == 32,
    }
}

/// Inodes of TCP sockets from `local` to `remote` (from /proc/net/tcp and tcp6).
fn socket_inodes(local: SocketAddr, remote: SocketAddr) -> Vec<u64> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(l), Some(r), Some(inode)) = (f.get(1), f.get(2), f.get(9)) else { continue };
            if addr_matches(l, local) && addr_matches(r, remote) {
                if let Ok(i) = inode.parse::<u64>() {
                    if i != 0 {
                        out.push(i);
                    }
                }
            }
        }
    }
    out
}

/// Does this process still hold a descriptor for the TCP socket from `local` to `remote` (the
/// client's end of a connection: the server saw `local` as its peer)? Exact and safe to use
/// while other tests run in parallel.
pub fn holds_socket(local: SocketAddr, remote: SocketAddr) -> bool {
    let inodes = socket_inodes(local, remote);
    if inodes.is_empty() {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return false };
    dir.flatten().any(|e| {
        std::fs::read_link(e.path())
            .map(|t| {
                let t = t.to_string_lossy().into_owned();
                inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
            .unwrap_or(false)
    })
}

/// Assert the client's socket (local address, remote address) has been closed.
#[track_caller]
pub fn assert_socket_released(client: Option<(SocketAddr, SocketAddr)>) {
    if let Some((l, r)) = client {
        assert!(!holds_socket(l, r), "client socket {l} -> {r} still open after the session was dropped");
    }
}

// ---------------------------------------------------------------------------------------
// Allocation probe
// ---------------------------------------------------------------------------------------

thread_local! {
    static MAX_ALLOC: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator that remembers, per thread, the largest single allocation request.
pub struct CountingAlloc;

fn note(size: usize) {
    let _ = MAX_ALLOC.try_with(|m| {
        if size > m.get() {
            m.set(size)
        }
    });
}

// SAFETY: every method forwards to `System` unchanged; the bookkeeping touches only a
// const-initialised thread-local `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Reset this thread's largest-allocation mark.
pub fn alloc_mark_reset() {
    let _ = MAX_ALLOC.try_with(|m| m.set(0));
}

/// Largest single allocation on this thread since `alloc_mark_reset` (0 without the
/// counting allocator installed).
pub fn alloc_mark() -> usize {
    MAX_ALLOC.try_with(|m| m.get()).unwrap_or(0)
}

/// Run `f` on `n` threads at once and collect the results in order (to overlap tests that
/// wait for timeouts).
pub fn parallel<T: Send + 'static>(jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    let handles: Vec<_> = jobs.into_iter().map(std::thread::spawn).collect();
    handles
        .into_iter()
        .map(|h| match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
        .collect()
}
