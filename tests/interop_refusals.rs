//! Interop matrix, refusals: every way a connection can fail before a session exists must end
//! within a bounded time with the right error variant and a useful text: not an SSH server,
//! a server that hangs up or stays silent, no common algorithm, a host key that does not
//! match the pinned one (and then no credential may reach the server), a closed port.
//!
//! Time bounds are generous (slow CI), but far below anything that would look like a hang.
//! Any failing test prints the server log (see `ShowLog`).

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sshbridge::{Config, Credential, Error, PublicKey, Session};
use support::Server;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

struct ShowLog<'a>(&'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== {:?} server log (port {}) =====\n{}", self.0.kind, self.0.port, self.0.log());
        }
    }
}

fn config() -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg
}

fn pinned_config(srv: &Server) -> Config {
    let mut cfg = config();
    cfg.host_keys = srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
    cfg
}

/// Connect and return the error and how long it took; panics if the connect succeeds.
fn connect_err(addr: SocketAddr, cfg: Config) -> (Error, Duration) {
    let t = Instant::now();
    match Session::connect(addr, cfg) {
        Ok(_) => panic!("connect to {addr} unexpectedly succeeded"),
        Err(e) => {
            let took = t.elapsed();
            eprintln!("connect to {addr}: {e} ({e:?}) after {took:?}");
            (e, took)
        }
    }
}

/// A one-connection fake server on 127.0.0.1 running `serve` on the accepted socket.
fn fake_server(serve: impl FnOnce(TcpStream) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve(s);
        }
    });
    (addr, h)
}

/// Read whatever the client sends until it closes (or 10 s pass).
fn drain(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

// ---------------------------------------------------------------------------------------
// 11. Not SSH, hang-ups, silence, closed port
// ---------------------------------------------------------------------------------------

/// An HTTP server answering our identification line with a 400 and closing.
#[test]
fn not_ssh_http_reply() {
    let (addr, h) = fake_server(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        // Let the client read before we close (avoid an RST racing the data).
        std::thread::sleep(Duration::from_millis(100));
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let (e, took) = connect_err(addr, config());
    h.join().unwrap();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    match &e {
        Error::Protocol(_) | Error::ConnectionClosed(_) => {}
        other => panic!("expected Protocol or ConnectionClosed, got {other:?}"),
    }
    let text = e.to_string().to_lowercase();
    assert!(text.contains("ident") || text.contains("ssh") || text.contains("closed"), "unhelpful text: {e}");
}

/// Accepts, then closes at once without a word.
#[test]
fn accept_then_close() {
    let (addr, h) = fake_server(drop);
    let (e, took) = connect_err(addr, config());
    h.join().unwrap();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(matches!(e, Error::ConnectionClosed(_)), "expected ConnectionClosed, got {e:?}");
}

/// Accepts and stays silent: the handshake timeout must fire (2 s), not hang.
#[test]
fn silent_server_times_out() {
    let (addr, h) = fake_server(|s| {
        let got = drain(s);
        // The client said its identification line before giving up.
        assert!(got.starts_with(b"SSH-2.0-"), "client sent {:?}", String::from_utf8_lossy(&got));
    });
    let mut cfg = config();
    cfg.handshake_timeout = Duration::from_secs(2);
    let (e, took) = connect_err(addr, cfg);
    assert!(matches!(e, Error::Timeout(_)), "expected Timeout, got {e:?}");
    assert!(took >= Duration::from_millis(1900), "gave up early: {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?} with a 2 s handshake timeout");
    h.join().unwrap();
}

/// Sends a valid identification line, then nothing: still the handshake timeout.
#[test]
fn banner_then_silence_times_out() {
    let (addr, h) = fake_server(|mut s| {
        s.write_all(b"SSH-2.0-OpenSSH_9.2p1 silent\r\n").unwrap();
        drain(s);
    });
    let mut cfg = config();
    cfg.handshake_timeout = Duration::from_secs(2);
    let (e, took) = connect_err(addr, cfg);
    assert!(matches!(e, Error::Timeout(_)), "expected Timeout, got {e:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    h.join().unwrap();
}

/// A port nobody listens on, held for the caller: bound, never listening, so another test's
/// listener cannot take it in the meantime (a freed port could be, and was: then the
/// "refused" connect reached that listener instead).
fn bound_not_listening() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; `sa` and `len` are live
    // locals of the sizes passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len), 0, "bind");
        let mut len = len;
        assert_eq!(libc::getsockname(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len), 0);
        (owned, u16::from_be(sa.sin_port))
    }
}

/// Nobody listens: refused at once.
#[test]
fn closed_port_is_refused() {
    let (_held, port) = bound_not_listening();
    let (e, took) = connect_err(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), config());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    match &e {
        Error::ConnectionClosed(m) => assert!(m.to_lowercase().contains("refused"), "{m}"),
        other => panic!("expected ConnectionClosed (refused), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 11. No common algorithm (real sshd restricted to what we do not implement)
// ---------------------------------------------------------------------------------------

fn no_common(extra: &[&str], category_word: &str, server_alg: &str) {
    let srv = support::sshd(extra);
    let _log = ShowLog(&srv);
    let (e, took) = connect_err(srv.addr(), pinned_config(&srv));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    match &e {
        Error::NoCommonAlgorithm { category, ours, theirs } => {
            assert!(category.to_lowercase().contains(category_word), "category {category:?}, wanted {category_word}");
            assert!(theirs.contains(server_alg), "server list {theirs:?} should name {server_alg}");
            assert!(!ours.is_empty());
        }
        other => panic!("expected NoCommonAlgorithm, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains(server_alg), "{text}");
    // sshd saw the negotiation fail; no authentication was attempted.
    assert!(srv.wait_log_contains("no matching", Duration::from_secs(5)) || srv.log().contains("disconnect"), "sshd log shows no failed negotiation");
    assert!(!srv.log().contains("userauth-request"), "authentication attempted after a failed negotiation");
}

#[test]
fn no_common_kex() {
    no_common(&["KexAlgorithms diffie-hellman-group1-sha1"], "key exchange", "diffie-hellman-group1-sha1");
}

#[test]
fn no_common_cipher() {
    no_common(&["Ciphers 3des-cbc"], "cipher", "3des-cbc");
}

#[test]
fn no_common_mac() {
    no_common(&["Ciphers aes128-ctr", "MACs hmac-md5"], "mac", "hmac-md5");
}

/// The client asks only for ssh-ed25519 host keys; sshd offers only ssh-dss.
#[test]
fn no_common_host_key() {
    let srv = support::sshd(&["HostKeyAlgorithms ssh-dss"]);
    let _log = ShowLog(&srv);
    let mut cfg = pinned_config(&srv);
    cfg.algorithms.restrict(None, Some("ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256"), None, None).unwrap();
    let (e, took) = connect_err(srv.addr(), cfg);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    match &e {
        Error::NoCommonAlgorithm { category, theirs, .. } => {
            assert!(category.to_lowercase().contains("host"), "category {category:?}");
            assert!(theirs.contains("ssh-dss"), "{theirs}");
        }
        other => panic!("expected NoCommonAlgorithm, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 11. Host key mismatch
// ---------------------------------------------------------------------------------------

/// Pin another server's key: HostKeyRejected naming both fingerprints, and sshd never sees
/// an authentication request (nothing secret left the client).
#[test]
fn host_key_mismatch_sends_no_credentials() {
    let other = support::tinysshd();
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let pinned: PublicKey = other.host_key("ssh-ed25519").unwrap().parse().unwrap();
    let real: PublicKey = srv.host_key("ssh-ed25519").unwrap().parse().unwrap();
    assert_ne!(pinned, real);
    let mut cfg = config();
    cfg.host_keys = vec![pinned.clone()];
    let key = sshbridge::PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap();
    cfg.credentials.push(Credential::key(key));
    let (e, took) = connect_err(srv.addr(), cfg);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    match &e {
        Error::HostKeyRejected(m) => {
            assert!(m.contains(&real.fingerprint()), "offered key's fingerprint missing: {m}");
            assert!(m.contains(&pinned.fingerprint()), "pinned key's fingerprint missing: {m}");
        }
        other => panic!("expected HostKeyRejected, got {other:?}"),
    }
    // Wait until sshd has finished with the connection, then look for any auth traffic.
    assert!(
        srv.wait_log_contains("Received disconnect", Duration::from_secs(5))
            || srv.wait_log_contains("Connection closed", Duration::from_secs(1))
            || srv.wait_log_contains("Disconnected from", Duration::from_secs(1)),
        "sshd did not log the end of the connection"
    );
    let log = srv.log();
    for needle in ["userauth-request", "SERVICE_REQUEST", "service_request", "Failed ", "Accepted ", "Postponed"] {
        assert!(!log.contains(needle), "sshd log contains {needle:?} after a host key mismatch");
    }
    // And with the right key pinned, the same config logs in.
    let mut cfg = config();
    cfg.host_keys = vec![real];
    Session::connect(srv.addr(), cfg).unwrap_or_else(|e| panic!("with the right key pinned: {e:?}"));
}

/// Pinning only a key of another type than the negotiated one also rejects (no fallback to
/// "unknown type, accept").
#[test]
fn host_key_of_other_type_is_rejected() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let mut cfg = config();
    cfg.host_keys = vec![srv.host_key("ssh-rsa").unwrap().parse().unwrap()];
    cfg.algorithms.restrict(None, Some("ssh-ed25519"), None, None).unwrap();
    let (e, _) = connect_err(srv.addr(), cfg);
    assert!(matches!(e, Error::HostKeyRejected(_)), "expected HostKeyRejected, got {e:?}");
}

/// The same mismatch against Dropbear and tinysshd.
#[test]
fn host_key_mismatch_dropbear_and_tinysshd() {
    let db = support::dropbear(&[]);
    let _l1 = ShowLog(&db);
    let ts = support::tinysshd();
    let _l2 = ShowLog(&ts);
    for (srv, wrong) in [(&db, &ts), (&ts, &db)] {
        let mut cfg = config();
        cfg.host_keys = vec![wrong.host_key("ssh-ed25519").unwrap().parse().unwrap()];
        let (e, took) = connect_err(srv.addr(), cfg);
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(matches!(e, Error::HostKeyRejected(_)), "{:?}: expected HostKeyRejected, got {e:?}", srv.kind);
    }
    assert!(!db.log().contains("auth succeeded") && !db.log().contains("Bad password"), "dropbear saw auth traffic");
}

// ---------------------------------------------------------------------------------------
// require_strict_kex (Terrapin, CVE-2023-48795)
// ---------------------------------------------------------------------------------------

fn key_config() -> Config {
    let mut cfg = Config::new(support::USER);
    let key = sshbridge::PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap();
    cfg.credentials.push(Credential::key(key));
    cfg
}

/// TinySSH 20230101 has no strict key exchange: refused before authentication when it is
/// required, still accepted by default. sshd and Dropbear (Debian's, patched) offer it.
#[test]
fn require_strict_kex_refuses_a_server_without_it() {
    support::ensure_env();
    let tiny = support::tinysshd();
    let _log = ShowLog(&tiny);
    let mut cfg = key_config();
    cfg.require_strict_kex = true;
    let (e, took) = connect_err(tiny.addr(), cfg);
    assert!(matches!(e, Error::Refused(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("strict key exchange") && text.contains("CVE-2023-48795"), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Without the requirement the same server works.
    let s = Session::connect(tiny.addr(), key_config()).unwrap();
    assert!(!s.info().unwrap().strict_kex);
    let (out, _, _) = s.exec("echo ok").unwrap().output().unwrap();
    assert_eq!(out, b"ok\n");
    for srv in [support::sshd(&[]), support::dropbear(&[])] {
        let _log = ShowLog(&srv);
        let mut cfg = key_config();
        cfg.require_strict_kex = true;
        let s = Session::connect(srv.addr(), cfg).unwrap_or_else(|e| panic!("{:?}: {e}", srv.kind));
        assert!(s.info().unwrap().strict_kex, "{:?}", srv.kind);
        let (out, _, _) = s.exec("echo ok").unwrap().output().unwrap();
        assert_eq!(out, b"ok\n", "{:?}", srv.kind);
    }
}

/// The connection socket has TCP keepalive on by default (OpenSSH's TCPKeepAlive yes), and off
/// when the configuration says so.
#[test]
fn tcp_keepalive_is_on_by_default() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    for (on, want) in [(true, true), (false, false)] {
        let sock = std::net::TcpStream::connect(srv.addr()).unwrap();
        let probe = sock.try_clone().unwrap();
        let mut cfg = config();
        cfg.tcp_keepalive = on;
        let _s = Session::handshake(sock, cfg).unwrap();
        assert_eq!(sshbridge::runtime::sys::tcp_keepalive(&probe).unwrap(), want);
    }
}
