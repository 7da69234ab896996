//! Safe by default (issue 15), through the drop-in C API with its default settings:
//!
//! - a server that freezes mid-command (the fault-injecting proxy of `tests/fake/proxy.rs`
//!   stops forwarding server-to-client bytes 4 s into `sleep 600; echo hi`, TCP stays open)
//!   is detected by the default keepalive (15 s x 3): the application's `read()` on
//!   `db_stdin_stdout` gets EOF within 90 s, `close(h, 1)` gives `db_exitcode` -1 and a
//!   `db_error` saying the server stopped answering;
//! - a healthy server running a silent `sleep 100` is never cut: the command completes with
//!   exit status 0;
//!
//! against OpenSSH sshd, Dropbear and TinySSH, all six at once (so the binary takes ~100 s),
//! with descriptors and threads of this process back to their counts afterwards. The
//! `require_strict_kex` cases are in `tests/interop_refusals.rs`.

mod fake;
mod support;

use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use fake::proxy::{Fault, Proxy};
use sshbridge::ffi::{
    cyg_dropbear_authenticate, cyg_dropbear_cli_handle, cyg_dropbear_ssh_close, cyg_dropbear_ssh_connect,
    drop_in_settings, DropInSettings,
};
use support::{Kind, Server};

/// The server freezes this long after the TCP connection was accepted.
const FREEZE_AFTER: Duration = Duration::from_secs(4);
/// The bound on detection, measured from the freeze.
const DETECT_WITHIN: Duration = Duration::from_secs(90);

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn sockaddr(a: SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let SocketAddr::V4(v4) = a else { panic!("IPv4 only here") };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned for it.
    unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(), sin) };
    ss
}

fn error_text(h: &cyg_dropbear_cli_handle) -> String {
    let bytes: Vec<u8> = h.db_error.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `cyg_dropbear_ssh_connect` with the ed25519 user key (OpenSSH text in `db_id_rsa`, length 0 =
/// NUL-terminated) and the server's pinned ed25519 host key.
fn c_connect(srv: &Server, addr: SocketAddr, command: &str) -> Box<cyg_dropbear_cli_handle> {
    let user = CString::new(support::USER).unwrap();
    let key = CString::new(support::user_keys().bytes("ed25519.openssh")).unwrap();
    let host = CString::new(srv.host_key("ssh-ed25519").expect("ed25519 host key")).unwrap();
    let cmd = CString::new(command).unwrap();
    let auth = cyg_dropbear_authenticate {
        db_username: user.as_ptr(),
        db_host_rsa_key_pub: host.as_ptr(),
        db_host_dsa_key_pub: std::ptr::null(),
        db_id_rsa: key.as_ptr(),
        db_id_rsa_keylen: 0,
        db_id_dsa: std::ptr::null(),
        db_id_dsa_keylen: 0,
        db_password: std::ptr::null(),
    };
    let ss = sockaddr(addr);
    // SAFETY: an all-zero handle is what a C caller's memset gives; connect fills it in.
    let mut h: Box<cyg_dropbear_cli_handle> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: every pointer is valid for the call; the strings outlive it.
    let ok = unsafe { cyg_dropbear_ssh_connect(&mut *h, &ss, &auth, cmd.as_ptr()) };
    assert_eq!(ok, 1, "{:?}: connect failed: {}\n{}", srv.kind, error_text(&h), srv.log());
    h
}

/// Read `fd` as a C application would (blocking reads, bounded by poll) until EOF or `limit`.
/// Returns what was read and when EOF came (None: no EOF within the limit).
fn read_to_eof(fd: RawFd, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, 200) };
        if rc <= 0 {
            continue;
        }
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return (out, Some(Instant::now()));
        }
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        }
    }
    (out, None)
}

fn close(mut h: Box<cyg_dropbear_cli_handle>, wait: bool) -> (i32, String, Duration) {
    let t = Instant::now();
    // SAFETY: `h` came from a successful connect and is closed once.
    unsafe { cyg_dropbear_ssh_close(&mut *h, i32::from(wait)) };
    (h.db_exitcode, error_text(&h), t.elapsed())
}

/// Frozen server behind the proxy: EOF and the error within the bound. Returns the detection
/// time (EOF minus freeze).
fn frozen(srv: &Server) -> Duration {
    let proxy = Proxy::start(srv.addr(), Fault::StallAfterTime(FREEZE_AFTER));
    let h = c_connect(srv, proxy.addr(), "sleep 600; echo hi");
    while !proxy.fired.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let frozen_at = Instant::now();
    let (out, eof) = read_to_eof(h.db_stdin_stdout, DETECT_WITHIN + Duration::from_secs(10));
    let eof = eof.unwrap_or_else(|| panic!("{:?}: no EOF on db_stdin_stdout {DETECT_WITHIN:?} after the freeze", srv.kind));
    let detected = eof.duration_since(frozen_at);
    assert!(out.is_empty(), "{:?}: output from a frozen server: {out:?}", srv.kind);
    assert!(detected <= DETECT_WITHIN, "{:?}: EOF only {detected:?} after the freeze", srv.kind);
    // Not earlier than the defaults allow (15 s x (3 + 1) of silence, minus the 4 s of traffic
    // before the freeze at most): keepalive, not some other timer, ended it.
    assert!(detected >= Duration::from_secs(40), "{:?}: EOF already {detected:?} after the freeze", srv.kind);
    let (code, err, took) = close(h, true);
    eprintln!("{:?}: frozen server detected {:.1} s after the freeze; close(h, 1) {took:?}: exit {code}, {err}", srv.kind, detected.as_secs_f64());
    assert_eq!(code, -1, "{:?}", srv.kind);
    assert!(err.contains("stopped answering"), "{:?}: db_error {err:?}", srv.kind);
    assert!(took < Duration::from_secs(2), "{:?}: close(h, 1) took {took:?} after the session died", srv.kind);
    drop(proxy);
    detected
}

/// Healthy server, silent command longer than the whole keepalive budget: completes, exit 0.
fn healthy(srv: &Server) {
    let t = Instant::now();
    let h = c_connect(srv, srv.addr(), "sleep 100; echo done");
    let (out, eof) = read_to_eof(h.db_stdin_stdout, Duration::from_secs(150));
    assert!(eof.is_some(), "{:?}: no EOF after 150 s", srv.kind);
    let (code, err, _) = close(h, true);
    assert_eq!(out, b"done\n", "{:?}: output {out:?}; db_error {err}", srv.kind);
    assert_eq!(code, 0, "{:?}: exit {code}, db_error {err:?}", srv.kind);
    assert!(t.elapsed() >= Duration::from_secs(100));
    eprintln!("{:?}: silent sleep 100 completed, exit 0 ({:.1} s)", srv.kind, t.elapsed().as_secs_f64());
}

#[test]
fn frozen_servers_are_detected_and_silent_commands_are_never_cut() {
    support::ensure_env();
    assert_eq!(drop_in_settings(), DropInSettings::DEFAULT, "this test is about the defaults");
    let servers = [support::sshd(&[]), support::dropbear(&[]), support::tinysshd()];
    assert_eq!(servers.iter().map(|s| s.kind).collect::<Vec<_>>(), [Kind::OpenSsh, Kind::Dropbear, Kind::TinySsh]);
    let (fds, tasks) = (count("/proc/self/fd"), count("/proc/self/task"));
    let detections = std::thread::scope(|s| {
        let frozen: Vec<_> = servers.iter().map(|srv| s.spawn(move || (srv.kind, frozen(srv)))).collect();
        let healthy: Vec<_> = servers.iter().map(|srv| s.spawn(move || healthy(srv))).collect();
        for h in healthy {
            h.join().unwrap();
        }
        frozen.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    for (kind, d) in &detections {
        eprintln!("detection time {kind:?}: {:.1} s", d.as_secs_f64());
    }
    // Every worker joined, every descriptor closed (workers of close(h, 1) are joined by it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while (count("/proc/self/fd"), count("/proc/self/task")) != (fds, tasks) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((count("/proc/self/fd"), count("/proc/self/task")), (fds, tasks), "descriptors/threads leaked");
    assert!(servers[0].log().contains("keepalive@openssh.com"), "sshd never saw a keepalive");
}
