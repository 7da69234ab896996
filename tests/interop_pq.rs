//! Interop, post-quantum hybrid key exchange (issue 12): mlkem768x25519-sha256,
//! sntrup761x25519-sha512 and sntrup761x25519-sha512@openssh.com against real servers:
//! OpenSSH 10.0 sshd (bookworm-backports, unpacked in /opt/openssh-10 by
//! `scripts/install-deps.sh`), OpenSSH 9.2 sshd, tinysshd 20230101 and Dropbear 2025.89 (built
//! from Debian trixie's source package into /opt/dropbear-2025 by the same script).
//!
//! - OpenSSH 10.0, unrestricted: our default preferences land on mlkem768x25519-sha256;
//! - OpenSSH 10.0 with `KexAlgorithms` restricted to each of the three names in turn;
//! - OpenSSH 10.0 restricted to mlkem768x25519-sha256 with `RekeyLimit 1M`: 64 MiB up and
//!   64 MiB down, dozens of server-initiated re-exchanges, all under ML-KEM;
//! - OpenSSH 9.2 restricted to sntrup761x25519-sha512@openssh.com, and tinysshd (which offers
//!   it beside curve25519): both connect under sntrup with our default preferences;
//! - Dropbear 2025.89 (ML-KEM and sntrup761 on by default): defaults land on ML-KEM, and the
//!   client restricted to each hybrid name the server has.
//!
//! Uploads are checked by the server's `sha256sum`, downloads byte for byte. Any failing test
//! prints the server log (see `ShowLog`).

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sshbridge::{Config, Credential, Error, ExitStatus, Preferences, PrivateKey, Session, SessionInfo};
use support::{Kind, Server};

// ---------------------------------------------------------------------------------------
// Helpers (each interop_*.rs file is its own crate, so these are repeated per file)
// ---------------------------------------------------------------------------------------

struct ShowLog<'a>(&'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== {:?} server log (port {}) =====\n{}", self.0.kind, self.0.port, self.0.log());
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
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

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn remote_file(tag: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!("/tmp/sshbridge-interop-pq-{}-{tag}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

/// USER with the password (sshd) or the ed25519 key (tinysshd); every host key pinned.
fn config(srv: &Server) -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.host_keys = srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
    if srv.kind == Kind::TinySsh {
        let key = PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap();
        cfg.credentials.push(Credential::key(key));
    } else {
        cfg.credentials.push(Credential::password(support::PASSWORD));
    }
    cfg.io_timeout = Some(Duration::from_secs(60));
    cfg
}

fn restricted(srv: &Server, kex: &str) -> Config {
    let mut cfg = config(srv);
    let mut p = Preferences::default();
    p.restrict(Some(kex), None, None, None).unwrap();
    cfg.algorithms = p;
    cfg
}

fn connect(srv: &Server, cfg: Config, what: &str) -> Session {
    match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("{what}: connect to {:?} failed: {e} ({e:?})", srv.kind),
    }
}

fn info(s: &Session) -> SessionInfo {
    s.info().expect("session info after connect")
}

/// Echo 200000 bytes through a remote `cat`, compared byte for byte.
fn echo(s: &mut Session, what: &str) {
    let sent = data(200_000, what.len() as u64);
    let mut ch = s.exec("cat").unwrap_or_else(|e| panic!("{what}: exec cat: {e}"));
    ch.write_all(&sent).unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let (out, err, status) = ch.output().unwrap_or_else(|e| panic!("{what}: output: {e}"));
    assert!(out == sent, "{what}: echoed {} bytes differ from the {} sent", out.len(), sent.len());
    assert!(err.is_empty(), "{what}: stderr {:?}", String::from_utf8_lossy(&err));
    assert_eq!(status, Some(ExitStatus::Code(0)), "{what}: exit status");
}

/// Connect with `cfg`, expect key exchange `kex`, and move data through the session.
fn connect_expect(srv: &Server, cfg: Config, kex: &str, what: &str) {
    let mut s = connect(srv, cfg, what);
    let i = info(&s);
    assert_eq!(i.negotiated.kex.name(), kex, "{what}");
    if srv.kind == Kind::TinySsh {
        // One channel per connection: a short command instead of the echo.
        let (out, _, st) = s.exec("echo pq").unwrap().output().unwrap();
        assert_eq!((out.as_slice(), st), (&b"pq\n"[..], Some(ExitStatus::Code(0))), "{what}");
    } else {
        echo(&mut s, what);
    }
    s.close();
}

/// The server logged the key exchange method (sshd LogLevel DEBUG2: "kex: algorithm: NAME").
fn assert_server_logged_kex(srv: &Server, kex: &str) {
    let needle = format!("kex: algorithm: {kex}");
    assert!(srv.wait_log_contains(&needle, Duration::from_secs(5)), "sshd log lacks {needle:?}");
}

const MLKEM: &str = "mlkem768x25519-sha256";
const SNTRUP: &str = "sntrup761x25519-sha512";
const SNTRUP_OPENSSH: &str = "sntrup761x25519-sha512@openssh.com";

// ---------------------------------------------------------------------------------------
// OpenSSH 10.0
// ---------------------------------------------------------------------------------------

#[test]
fn sshd10_default_negotiation_is_mlkem() {
    let srv = support::sshd10(&[]);
    let _log = ShowLog(&srv);
    let s = connect(&srv, config(&srv), "defaults");
    let i = info(&s);
    assert_eq!(i.negotiated.kex.name(), MLKEM);
    assert!(i.server_ident.starts_with("SSH-2.0-OpenSSH_10.0"), "{}", i.server_ident);
    assert!(i.strict_kex);
    drop(s);
    assert_server_logged_kex(&srv, MLKEM);
}

/// sshd offers only `kex`; the client keeps its default preferences.
fn sshd10_kex_only(kex: &str) {
    let line = format!("KexAlgorithms {kex}");
    let srv = support::sshd10(&[&line]);
    let _log = ShowLog(&srv);
    connect_expect(&srv, config(&srv), kex, kex);
    assert_server_logged_kex(&srv, kex);
}

#[test]
fn sshd10_kex_mlkem768x25519_sha256() {
    sshd10_kex_only(MLKEM);
}

#[test]
#[cfg(feature = "sntrup")]
fn sshd10_kex_sntrup761x25519_sha512() {
    sshd10_kex_only(SNTRUP);
}

#[test]
#[cfg(feature = "sntrup")]
fn sshd10_kex_sntrup761x25519_sha512_openssh() {
    sshd10_kex_only(SNTRUP_OPENSSH);
}

/// One unrestricted sshd 10.0; the client restricts itself to each hybrid in turn.
#[test]
fn sshd10_client_restricted_to_each_hybrid() {
    let srv = support::sshd10(&[]);
    let _log = ShowLog(&srv);
    let kexes = if cfg!(feature = "sntrup") { vec![MLKEM, SNTRUP, SNTRUP_OPENSSH] } else { vec![MLKEM] };
    for kex in kexes {
        connect_expect(&srv, restricted(&srv, kex), kex, kex);
    }
}

/// Server rekeys every 1 MiB during 64 MiB up and 64 MiB down, all under ML-KEM.
#[test]
fn sshd10_mlkem_64mib_with_server_rekey() {
    let srv = support::sshd10(&[&format!("KexAlgorithms {MLKEM}"), "RekeyLimit 1M"]);
    let _log = ShowLog(&srv);
    let mut s = connect(&srv, config(&srv), "rekey");
    let bytes = data(64 << 20, 12);
    let path = remote_file("64m");
    // Up: the server's sha256sum of what `cat` wrote.
    let mut ch = s.exec(&format!("cat > {path} && sha256sum < {path}")).unwrap();
    for piece in bytes.chunks(1 << 20) {
        ch.write_all(piece).unwrap();
    }
    let (out, err, st) = ch.output().unwrap();
    assert_eq!(st, Some(ExitStatus::Code(0)), "upload (stderr {:?})", String::from_utf8_lossy(&err));
    assert_eq!(String::from_utf8_lossy(&out).split_whitespace().next(), Some(sha256_hex(&bytes).as_str()), "upload");
    // Down: byte for byte.
    let mut ch = s.exec(&format!("cat {path}; rc=$?; rm -f {path}; exit $rc")).unwrap();
    let mut got = Vec::with_capacity(bytes.len());
    ch.read_to_end(&mut got).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    assert_eq!(got.len(), bytes.len(), "download length");
    assert!(got == bytes, "download differs");
    let i = info(&s);
    assert_eq!(i.negotiated.kex.name(), MLKEM);
    // 128 MiB with a 1 MiB limit: dozens of ML-KEM key exchanges.
    assert!(i.kex_count > 32, "only {} key exchanges", i.kex_count);
    echo(&mut s, "after the re-exchanges");
    s.close();
    // Every one of them logged by the server under ML-KEM, none under anything else.
    let log = srv.log();
    let kexes = log.matches("kex: algorithm: ").count();
    let mlkem = log.matches(&format!("kex: algorithm: {MLKEM}")).count();
    assert!(mlkem > 32 && mlkem == kexes, "{mlkem} of {kexes} logged key exchanges are ML-KEM");
}

/// OpenSSH 9.2 has no ML-KEM: a client restricted to it finds no common method.
#[test]
fn sshd92_has_no_mlkem() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    match Session::connect(srv.addr(), restricted(&srv, MLKEM)) {
        Err(Error::NoCommonAlgorithm { category, .. }) => assert_eq!(category, "key exchange"),
        Err(e) => panic!("expected NoCommonAlgorithm, got {e:?}"),
        Ok(_) => panic!("OpenSSH 9.2 negotiated ML-KEM"),
    }
}

// ---------------------------------------------------------------------------------------
// sntrup761 with OpenSSH 9.2 and tinysshd
// ---------------------------------------------------------------------------------------

#[test]
#[cfg(feature = "sntrup")]
fn sshd92_restricted_to_sntrup_openssh_name() {
    let line = format!("KexAlgorithms {SNTRUP_OPENSSH}");
    let srv = support::sshd(&[&line]);
    let _log = ShowLog(&srv);
    connect_expect(&srv, config(&srv), SNTRUP_OPENSSH, "sshd 9.2");
    assert_server_logged_kex(&srv, SNTRUP_OPENSSH);
}

/// OpenSSH 9.2 unrestricted: with no ML-KEM there, our defaults pick sntrup761 (Debian's
/// 9.2p1-2+deb12u10 offers the new name `sntrup761x25519-sha512` too).
#[test]
#[cfg(feature = "sntrup")]
fn sshd92_defaults_pick_sntrup() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    connect_expect(&srv, config(&srv), SNTRUP, "sshd 9.2 defaults");
    assert_server_logged_kex(&srv, SNTRUP);
}

/// tinysshd offers curve25519-sha256 and sntrup761x25519-sha512@openssh.com: our defaults
/// pick sntrup; restricted to it explicitly, too.
#[test]
#[cfg(feature = "sntrup")]
fn tinysshd_sntrup() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    connect_expect(&srv, config(&srv), SNTRUP_OPENSSH, "tinysshd defaults");
    connect_expect(&srv, restricted(&srv, SNTRUP_OPENSSH), SNTRUP_OPENSSH, "tinysshd restricted");
}

// ---------------------------------------------------------------------------------------
// Dropbear 2025.89
// ---------------------------------------------------------------------------------------

#[test]
fn dropbear2025_defaults_pick_mlkem_and_each_hybrid_works() {
    let srv = support::dropbear2025(&[]);
    let _log = ShowLog(&srv);
    let s = connect(&srv, config(&srv), "dropbear 2025 defaults");
    let i = info(&s);
    assert!(i.server_ident.starts_with("SSH-2.0-dropbear_2025.89"), "{}", i.server_ident);
    assert_eq!(i.negotiated.kex.name(), MLKEM);
    drop(s);
    // Dropbear has sntrup761 under the new name only.
    let kexes = if cfg!(feature = "sntrup") { vec![MLKEM, SNTRUP] } else { vec![MLKEM] };
    for kex in kexes {
        connect_expect(&srv, restricted(&srv, kex), kex, &format!("dropbear 2025 {kex}"));
    }
}

/// Server-initiated rekeys are not configurable in Dropbear; a client rekey every 1 MiB during
/// 8 MiB each way runs the re-exchanges under ML-KEM instead.
#[test]
fn dropbear2025_mlkem_client_rekey() {
    let srv = support::dropbear2025(&[]);
    let _log = ShowLog(&srv);
    let mut cfg = restricted(&srv, MLKEM);
    cfg.rekey = sshbridge::RekeyLimits { bytes: 1 << 20, ..Default::default() };
    let s = connect(&srv, cfg, "dropbear 2025 rekey");
    let bytes = data(8 << 20, 5);
    let path = remote_file("db-8m");
    let mut ch = s.exec(&format!("cat > {path} && sha256sum < {path}")).unwrap();
    ch.write_all(&bytes).unwrap();
    let (out, _, st) = ch.output().unwrap();
    assert_eq!(st, Some(ExitStatus::Code(0)));
    assert_eq!(String::from_utf8_lossy(&out).split_whitespace().next(), Some(sha256_hex(&bytes).as_str()));
    let mut ch = s.exec(&format!("cat {path}; rm -f {path}")).unwrap();
    let mut got = Vec::new();
    ch.read_to_end(&mut got).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    assert!(got == bytes, "download differs");
    let i = info(&s);
    assert_eq!(i.negotiated.kex.name(), MLKEM);
    assert!(i.kex_count > 8, "only {} key exchanges", i.kex_count);
    s.close();
}
