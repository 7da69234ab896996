//! Faults between the client and real servers (HOSTILE.md rows 20, 39, 40, 41 through the
//! fault-injecting proxy of `tests/fake/proxy.rs`), and the real-server halves of rows 12, 18,
//! 27, 28, 31, 35 and 37 (OpenSSH sshd 9.2, Dropbear 2022.83, tinysshd from tests/support).
//!
//! Needs root, like every interop test (see tests/support).

mod fake;
mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::proxy::{Fault, Proxy};
use fake::*;
use sshbridge::{Config, Credential, Error, ExitStatus, PrivateKey, Session};
use support::{Kind, Server};

struct ShowLog<'a>(&'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.0.log();
            let tail = &log[log.len().saturating_sub(6000)..];
            eprintln!("===== {:?} server log (port {}), tail =====\n{tail}", self.0.kind, self.0.port);
        }
    }
}

/// The ed25519 user key (support generates the user keys once per process: seconds).
fn user_key() -> Arc<PrivateKey> {
    static K: std::sync::OnceLock<Arc<PrivateKey>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let k = support::user_keys();
        Arc::new(PrivateKey::from_bytes(&k.bytes("ed25519.openssh"), None).unwrap())
    })
    .clone()
}

/// Config for `srv`: user key (and password where the server takes it), pinned ed25519 host
/// key, short timeouts, algorithms restricted to `cipher`/`mac` when given.
fn cfg_for(srv: &Server, cipher: Option<&str>, mac: Option<&str>) -> Config {
    let mut c = Config::new(support::USER);
    c.credentials.push(Credential::Key(user_key()));
    c.host_keys.push(srv.host_key("ssh-ed25519").expect("ed25519 host key").parse().unwrap());
    c.algorithms.restrict(None, None, cipher, mac).unwrap();
    c.connect_timeout = Duration::from_secs(3);
    c.handshake_timeout = Duration::from_secs(5);
    c.io_timeout = Some(Duration::from_secs(5));
    c
}

/// Read stdout until EOF or error; returns (bytes read, all of them zero, the error).
fn drain(ch: &mut sshbridge::Channel) -> (usize, bool, Option<std::io::Error>) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut n, mut zero) = (0usize, true);
    loop {
        match ch.read(&mut buf) {
            Ok(0) => return (n, zero, None),
            Ok(k) => {
                zero &= buf[..k].iter().all(|&b| b == 0);
                n += k;
            }
            Err(e) => return (n, zero, Some(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Row 20: one flipped bit after the key exchange, every cipher each server offers
// ---------------------------------------------------------------------------------------

const STREAM: usize = 1_000_000;
/// Server-to-client offsets (all past the key exchange) and bits to flip.
const FLIPS: &[(usize, u8)] = &[(5_000, 0), (200_003, 7)];

fn flip_matrix(srv: &Server, suites: &[(&str, Option<&str>)]) {
    let _log = ShowLog(srv);
    let mut masked = 0;
    for &(cipher, mac) in suites {
        for &(offset, bit) in FLIPS {
            let what = format!("{:?} {cipher} {mac:?} flip @{offset}.{bit}", srv.kind);
            let proxy = Proxy::start(srv.addr(), Fault::FlipBit { offset, bit });
            let cfg = cfg_for(srv, Some(cipher), mac);
            let t = Instant::now();
            let s = Session::connect(proxy.addr(), cfg).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
            let neg = s.info().unwrap().negotiated;
            assert_eq!(neg.cipher_s2c.name(), cipher, "{what}");
            let (n, zero, e) = match s.exec(&format!("head -c {STREAM} /dev/zero")) {
                Ok(mut ch) => {
                    let (n, zero, err) = drain(&mut ch);
                    let e = match err {
                        Some(err) => ssh_error(&err).unwrap_or_else(|| panic!("{what}: {err}")),
                        None => {
                            // The failure came while output was buffered and read() then
                            // reported a clean EOF (see r39_failure_after_buffered_data_is_not_eof
                            // in hostile_auth_channel.rs); the error still surfaces from wait().
                            masked += 1;
                            ch.wait().expect_err(&format!("{what}: EOF after {n} bytes and a clean exit"))
                        }
                    };
                    (n, zero, e)
                }
                // The flip may land before the command's reply.
                Err(e) => (0, true, e),
            };
            let el = t.elapsed();
            assert!(proxy.fired.load(std::sync::atomic::Ordering::SeqCst), "{what}: flip never happened");
            assert!(zero, "{what}: corrupt data delivered");
            assert!(n < STREAM, "{what}: the whole stream arrived: the flip went unnoticed");
            assert!(matches!(e, Error::Crypto(_) | Error::Protocol(_)), "{what}: {e}");
            assert_sane_text(&e.to_string());
            assert!(el < Duration::from_secs(5), "{what}: took {el:?}");
            drop(s);
            for c in proxy.clients() {
                assert_socket_released(Some(c));
            }
        }
    }
    if masked > 0 {
        eprintln!("{:?}: {masked} integrity failure(s) were reported by read() as EOF (BUG)", srv.kind);
    }
}

#[test]
fn r20_bit_flips_sshd() {
    let _g = shared();
    let srv = support::sshd(&[]);
    flip_matrix(
        &srv,
        &[
            ("chacha20-poly1305@openssh.com", None),
            ("aes128-gcm@openssh.com", None),
            ("aes256-gcm@openssh.com", None),
            ("aes128-ctr", Some("hmac-sha2-256")),
            ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
        ],
    );
}

#[test]
fn r20_bit_flips_dropbear() {
    let _g = shared();
    let srv = support::dropbear(&[]);
    flip_matrix(&srv, &[("chacha20-poly1305@openssh.com", None), ("aes128-ctr", Some("hmac-sha2-256"))]);
}

#[test]
fn r20_bit_flips_tinysshd() {
    let _g = shared();
    let srv = support::tinysshd();
    flip_matrix(&srv, &[("chacha20-poly1305@openssh.com", None)]);
}

// ---------------------------------------------------------------------------------------
// Rows 39-41: the connection dies, stalls, or stops reading mid-transfer
// ---------------------------------------------------------------------------------------

fn servers() -> Vec<Server> {
    vec![support::sshd(&[]), support::dropbear(&[]), support::tinysshd()]
}

#[test]
fn r39_r40_close_and_stall_mid_transfer() {
    let _g = shared();
    for srv in servers() {
        let _log = ShowLog(&srv);
        // Close after 300 kB: the read fails promptly with "connection closed".
        let proxy = Proxy::start(srv.addr(), Fault::CloseAfter(300_000));
        let s = Session::connect(proxy.addr(), cfg_for(&srv, None, None)).unwrap();
        let mut ch = s.exec("head -c 5000000 /dev/zero").unwrap();
        let t = Instant::now();
        let (n, zero, err) = drain(&mut ch);
        let err = err.unwrap_or_else(|| panic!("{:?}: EOF after {n} bytes of a cut stream", srv.kind));
        let e = ssh_error(&err).expect("sshbridge error");
        assert_error(&e, &["ConnectionClosed"], "closed");
        assert!(zero && n < 300_000);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}: {:?}", srv.kind, t.elapsed());
        // wait() on the dead session returns at once.
        let t = Instant::now();
        assert!(ch.wait().is_err());
        assert!(t.elapsed() < Duration::from_millis(500));
        drop(s);
        for c in proxy.clients() {
            assert_socket_released(Some(c));
        }

        // Stall after 300 kB: the read gives up at io_timeout.
        let proxy = Proxy::start(srv.addr(), Fault::StallAfter(300_000));
        let mut cfg = cfg_for(&srv, None, None);
        cfg.io_timeout = Some(Duration::from_secs(2));
        let s = Session::connect(proxy.addr(), cfg).unwrap();
        let mut ch = s.exec("head -c 5000000 /dev/zero").unwrap();
        let mut buf = vec![0u8; 65536];
        let mut last_ok = Instant::now();
        let cpu = thread_cpu();
        let err = loop {
            match ch.read(&mut buf) {
                Ok(0) => panic!("{:?}: EOF from a stalled stream", srv.kind),
                Ok(_) => last_ok = Instant::now(),
                Err(e) => break e,
            }
        };
        let waited = last_ok.elapsed();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(3), "{waited:?}");
        assert!(thread_cpu() - cpu < Duration::from_millis(500), "busy waiting");
        let t = Instant::now();
        drop(ch);
        drop(s);
        assert!(t.elapsed() < Duration::from_millis(500), "close blocked");
        for c in proxy.clients() {
            assert_socket_released(Some(c));
        }
    }
}

#[test]
fn r41_server_stops_reading_while_the_client_writes_100_mib() {
    let _g = shared();
    for srv in [support::sshd(&[]), support::dropbear(&[])] {
        let _log = ShowLog(&srv);
        let proxy = Proxy::start(srv.addr(), Fault::StopReadingClientAfter(16 * 1024));
        let mut cfg = cfg_for(&srv, None, None);
        cfg.io_timeout = Some(Duration::from_secs(2));
        let s = Session::connect(proxy.addr(), cfg).unwrap();
        let mut ch = s.exec("cat > /dev/null").unwrap();
        let chunk = vec![0x5a_u8; 1 << 20];
        let rss = vm_rss_kib();
        let (t, cpu) = (Instant::now(), thread_cpu());
        let mut written = 0usize;
        let err = loop {
            if written >= 100 << 20 {
                break None;
            }
            match ch.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break Some(e),
            }
        };
        let el = t.elapsed();
        let grown = vm_rss_kib().saturating_sub(rss);
        let err = err.unwrap_or_else(|| panic!("{:?}: 100 MiB accepted by a server that reads nothing", srv.kind));
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{:?}: {err}", srv.kind);
        assert!(written < 16 << 20, "{:?}: {written} bytes accepted", srv.kind);
        assert!(grown < 64 * 1024, "{:?}: RSS grew by {grown} KiB", srv.kind);
        assert!(el < Duration::from_secs(4), "{el:?}");
        assert!(thread_cpu() - cpu < Duration::from_millis(800), "busy loop");
        let t = Instant::now();
        drop(ch);
        drop(s);
        assert!(t.elapsed() < Duration::from_millis(500), "close blocked");
        for c in proxy.clients() {
            assert_socket_released(Some(c));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Real-server halves of rows 12, 18, 27, 28, 31, 35, 37
// ---------------------------------------------------------------------------------------

#[test]
fn r12_real_sshd_with_only_unsupported_algorithms() {
    let _g = shared();
    for (line, category) in
        [("KexAlgorithms diffie-hellman-group1-sha1", "key exchange"), ("Ciphers 3des-cbc", "cipher")]
    {
        let srv = support::sshd(&[line]);
        let _log = ShowLog(&srv);
        let cfg = cfg_for(&srv, None, None);
        let t = Instant::now();
        let e = expect_err(Session::connect(srv.addr(), cfg));
        assert_error(&e, &["NoCommonAlgorithm"], category);
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn r18_real_servers_with_an_unpinned_host_key() {
    let _g = shared();
    for srv in servers() {
        let _log = ShowLog(&srv);
        let mut cfg = cfg_for(&srv, None, None);
        cfg.host_keys = vec![keys().ed_a.public_key()];
        cfg.credentials.push(Credential::password(support::PASSWORD));
        let t = Instant::now();
        let e = expect_err(Session::connect(srv.addr(), cfg));
        assert_error(&e, &["HostKeyRejected"], "mismatch");
        assert!(t.elapsed() < Duration::from_secs(2));
        if srv.kind == Kind::OpenSsh {
            std::thread::sleep(Duration::from_millis(200));
            assert!(!srv.log().contains("userauth-request"), "credentials reached sshd");
        }
    }
}

#[test]
fn r27_real_tinysshnoneauthd() {
    let _g = shared();
    let srv = support::tinysshd_noneauth();
    let _log = ShowLog(&srv);
    let mut cfg = cfg_for(&srv, None, None);
    cfg.credentials.clear();
    let s = Session::connect(srv.addr(), cfg.clone()).expect("none auth accepted by default");
    let mut ch = s.shell().unwrap();
    ch.write_all(b"echo\n").unwrap();
    let (o, _, _) = ch.output().unwrap();
    assert_eq!(o, b"echo\n");
    drop(s);
    cfg.allow_none_auth = false;
    let e = expect_err(Session::connect(srv.addr(), cfg));
    assert_error(&e, &["AuthFailed"], "trivial");
}

#[test]
fn r28_real_servers_wrong_password() {
    let _g = shared();
    for srv in [support::sshd(&["MaxAuthTries 2"]), support::dropbear(&[])] {
        let _log = ShowLog(&srv);
        let mut cfg = cfg_for(&srv, None, None);
        cfg.credentials = vec![Credential::password("wrong-password")];
        let t = Instant::now();
        let e = expect_err(Session::connect(srv.addr(), cfg));
        // sshd may hang up first ("Too many authentication failures").
        assert!(matches!(e, Error::AuthFailed { .. } | Error::Disconnected { .. }), "{:?}: {e}", srv.kind);
        assert_sane_text(&e.to_string());
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}

#[test]
fn r31_real_sshd_max_sessions_0() {
    let _g = shared();
    let srv = support::sshd(&["MaxSessions 0"]);
    let _log = ShowLog(&srv);
    let s = Session::connect(srv.addr(), cfg_for(&srv, None, None)).unwrap();
    let e = s.exec("true").err().expect("sshd must refuse the channel");
    assert_error(&e, &["ChannelOpenFailed"], "reason");
}

#[test]
fn r35_real_stderr_after_stdout_closed() {
    let _g = shared();
    for srv in [support::sshd(&[]), support::dropbear(&[])] {
        let _log = ShowLog(&srv);
        let s = Session::connect(srv.addr(), cfg_for(&srv, None, None)).unwrap();
        let (o, e, st) =
            s.exec("echo out; exec 1>&-; sleep 0.3; echo late-stderr >&2; exit 3").unwrap().output().unwrap();
        assert_eq!(o, b"out\n", "{:?}", srv.kind);
        assert_eq!(e, b"late-stderr\n", "{:?}", srv.kind);
        assert_eq!(st, Some(ExitStatus::Code(3)));
    }
}

#[test]
fn r37_real_sshd_client_alive_probes_are_answered() {
    let _g = shared();
    let srv = support::sshd(&["ClientAliveInterval 1", "ClientAliveCountMax 2"]);
    let _log = ShowLog(&srv);
    let s = Session::connect(srv.addr(), cfg_for(&srv, None, None)).unwrap();
    let t = Instant::now();
    let st = s.exec("sleep 3; echo done").unwrap().output().unwrap();
    assert_eq!(st.0, b"done\n");
    assert_eq!(st.2, Some(ExitStatus::Code(0)));
    assert!(t.elapsed() >= Duration::from_secs(3));
    assert!(srv.log().contains("keepalive") || srv.log().contains("client_alive"), "no probes seen in the log");
}

/// Row 40 with keepalive instead of an I/O timeout: a server that goes silent mid-session (the
/// proxy stops forwarding, TCP stays up) is declared dead after `keepalive_max` unanswered
/// keepalive@openssh.com requests, and the blocked read returns that error in bounded time.
#[test]
fn r40_keepalive_detects_a_silent_server() {
    let _g = shared();
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let proxy = Proxy::start(srv.addr(), Fault::StallAfter(300_000));
    let mut cfg = cfg_for(&srv, None, None);
    cfg.keepalive_interval = Some(Duration::from_millis(300));
    cfg.keepalive_max = 3;
    let s = Session::connect(proxy.addr(), cfg).unwrap();
    let mut ch = s.exec("head -c 5000000 /dev/zero").unwrap();
    let mut buf = vec![0u8; 65536];
    let mut last_ok = Instant::now();
    let cpu = thread_cpu();
    let err = loop {
        match ch.read(&mut buf) {
            Ok(0) => panic!("EOF from a stalled stream"),
            Ok(_) => last_ok = Instant::now(),
            Err(e) => break e,
        }
    };
    let waited = last_ok.elapsed();
    let e = ssh_error(&err).expect("sshbridge error");
    assert_error(&e, &["Timeout"], "keepalive");
    // Four intervals: three keepalives unanswered, then the verdict.
    assert!(waited >= Duration::from_millis(1100) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(thread_cpu() - cpu < Duration::from_millis(500), "busy waiting");
    drop(ch);
    drop(s);
    for c in proxy.clients() {
        assert_socket_released(Some(c));
    }
}
