//! Interop matrix, algorithms: every key exchange, host key, cipher and MAC the client
//! implements, against real servers (OpenSSH sshd 9.2, Dropbear 2022.83, tinysshd 20230101).
//!
//! For OpenSSH each algorithm is tested twice: once with the *server* restricted to it
//! (sshd `KexAlgorithms` / `HostKeyAlgorithms` / `Ciphers` / `MACs`, one server per test) and
//! once in a loop where the *client* restricts its own preferences against one unrestricted
//! sshd. Dropbear and tinysshd cannot be restricted from the command line, so the client
//! restricts itself. Every cipher/MAC case moves 200000 bytes each way through a remote `cat`
//! and compares them byte for byte. Strict KEX and IPv6 are here too.
//!
//! Any failing test prints the server log (see `ShowLog`).

mod support;

use std::io::Write;

use sshbridge::{Config, Credential, Error, Preferences, PrivateKey, Session, SessionInfo};
use support::Server;

// ---------------------------------------------------------------------------------------
// Helpers (each interop_*.rs file is its own crate, so these are repeated per file)
// ---------------------------------------------------------------------------------------

/// Prints the server's log if the test fails while this guard is alive. Declare it right
/// after the server so it drops (and prints) before the server removes its directory.
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

/// A config for USER that logs in with the password (sshd, dropbear) and pins every host
/// key the server holds.
fn password_config(srv: &Server) -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    pin_all(&mut cfg, srv);
    cfg
}

/// A config for USER that logs in with the ed25519 user key (tinysshd accepts nothing else).
fn ed25519_config(srv: &Server) -> Config {
    let mut cfg = Config::new(support::USER);
    let key = PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap();
    cfg.credentials.push(Credential::key(key));
    pin_all(&mut cfg, srv);
    cfg
}

fn pin_all(cfg: &mut Config, srv: &Server) {
    cfg.host_keys = srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
}

fn prefs(kex: Option<&str>, host_key: Option<&str>, cipher: Option<&str>, mac: Option<&str>) -> Preferences {
    let mut p = Preferences::default();
    p.restrict(kex, host_key, cipher, mac).unwrap();
    p
}

fn connect(srv: &Server, cfg: Config) -> Session {
    match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("connect to {:?} failed: {e} ({e:?})", srv.kind),
    }
}

/// Send `n` bytes through a remote `cat` and compare what comes back byte for byte.
fn echo(s: &mut Session, n: usize, seed: u64, what: &str) {
    let sent = data(n, seed);
    let mut ch = s.exec("cat").unwrap_or_else(|e| panic!("{what}: exec cat: {e}"));
    ch.write_all(&sent).unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let (out, err, status) = ch.output().unwrap_or_else(|e| panic!("{what}: output: {e}"));
    assert_eq!(out.len(), sent.len(), "{what}: echoed length");
    assert!(out == sent, "{what}: echoed bytes differ (first at {:?})", out.iter().zip(&sent).position(|(a, b)| a != b));
    assert!(err.is_empty(), "{what}: stderr {:?}", String::from_utf8_lossy(&err));
    assert_eq!(status, Some(sshbridge::ExitStatus::Code(0)), "{what}: exit status");
}

const ECHO_BYTES: usize = 200_000;

fn info(s: &Session) -> SessionInfo {
    s.info().expect("session info after connect")
}

/// Connect with `cfg`, check the negotiated names with `check`, then echo 200000 bytes.
fn connect_check_echo(srv: &Server, cfg: Config, what: &str, check: impl FnOnce(&SessionInfo)) {
    let mut s = match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("{what}: connect to {:?} failed: {e} ({e:?})", srv.kind),
    };
    let i = info(&s);
    check(&i);
    echo(&mut s, ECHO_BYTES, what.len() as u64, what);
    s.close();
}

// ---------------------------------------------------------------------------------------
// 1. Key exchange
// ---------------------------------------------------------------------------------------

const KEXES: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
];

/// sshd offers only `kex`; the client keeps its default preferences.
fn sshd_kex_only(kex: &str) {
    let line = format!("KexAlgorithms {kex}");
    let srv = support::sshd(&[&line]);
    let _log = ShowLog(&srv);
    connect_check_echo(&srv, password_config(&srv), kex, |i| {
        assert_eq!(i.negotiated.kex.name(), kex);
    });
}

#[test]
fn sshd_kex_curve25519_sha256() {
    sshd_kex_only("curve25519-sha256");
}
#[test]
fn sshd_kex_curve25519_sha256_libssh() {
    sshd_kex_only("curve25519-sha256@libssh.org");
}
#[test]
fn sshd_kex_ecdh_nistp256() {
    sshd_kex_only("ecdh-sha2-nistp256");
}
#[test]
fn sshd_kex_dh_group16_sha512() {
    sshd_kex_only("diffie-hellman-group16-sha512");
}
#[test]
fn sshd_kex_dh_group14_sha256() {
    sshd_kex_only("diffie-hellman-group14-sha256");
}

/// One unrestricted sshd; the client restricts itself to each key exchange in turn.
#[test]
fn sshd_kex_client_restricted() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    for kex in KEXES {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(Some(kex), None, None, None);
        connect_check_echo(&srv, cfg, kex, |i| assert_eq!(i.negotiated.kex.name(), *kex));
    }
}

// ---------------------------------------------------------------------------------------
// 2. Host keys
// ---------------------------------------------------------------------------------------

/// The host key type whose line must be pinned for a host key signature algorithm.
fn key_type_of(alg: &str) -> &'static str {
    match alg {
        "ssh-ed25519" => "ssh-ed25519",
        "ecdsa-sha2-nistp256" => "ecdsa-sha2-nistp256",
        "rsa-sha2-512" | "rsa-sha2-256" | "ssh-rsa" => "ssh-rsa",
        "ssh-dss" => "ssh-dss",
        other => panic!("unknown host key algorithm {other}"),
    }
}

/// Pin only the matching host key line and check both the algorithm and the key.
fn host_key_case(srv: &Server, alg: &str, client_prefs: Option<Preferences>) {
    let ty = key_type_of(alg);
    let line = srv.host_key(ty).unwrap_or_else(|| panic!("{:?} has no {ty} host key", srv.kind)).to_owned();
    let mut cfg = password_config(srv);
    if srv.kind == support::Kind::TinySsh {
        cfg = ed25519_config(srv);
    }
    cfg.host_keys = vec![line.parse().unwrap()];
    if let Some(p) = client_prefs {
        cfg.algorithms = p;
    }
    connect_check_echo(srv, cfg, alg, |i| {
        assert_eq!(i.negotiated.host_key.name(), alg);
        assert_eq!(i.host_key.to_openssh_line(), line, "{alg}: host key reported by info()");
        assert_eq!(i.host_key.key_type(), ty);
    });
}

fn sshd_host_key_only(alg: &str) {
    let line = format!("HostKeyAlgorithms {alg}");
    let srv = support::sshd(&[&line]);
    let _log = ShowLog(&srv);
    host_key_case(&srv, alg, None);
}

#[test]
fn sshd_host_key_ed25519() {
    sshd_host_key_only("ssh-ed25519");
}
#[test]
fn sshd_host_key_ecdsa_nistp256() {
    sshd_host_key_only("ecdsa-sha2-nistp256");
}
#[test]
fn sshd_host_key_rsa_sha2_512() {
    sshd_host_key_only("rsa-sha2-512");
}
#[test]
fn sshd_host_key_rsa_sha2_256() {
    sshd_host_key_only("rsa-sha2-256");
}
#[test]
fn sshd_host_key_ssh_rsa() {
    sshd_host_key_only("ssh-rsa");
}
#[test]
fn sshd_host_key_ssh_dss() {
    sshd_host_key_only("ssh-dss");
}

const HOST_KEY_ALGS: &[&str] =
    &["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-dss"];

/// One sshd offering every host key algorithm; the client asks for each in turn.
#[test]
fn sshd_host_key_client_restricted() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    for alg in HOST_KEY_ALGS {
        host_key_case(&srv, alg, Some(prefs(None, Some(alg), None, None)));
    }
}

/// With every key pinned and default preferences, OpenSSH and we agree on ssh-ed25519, and
/// on sntrup761 (OpenSSH 9.2 has no ML-KEM; see interop_pq.rs) when the feature is on.
#[test]
fn sshd_default_negotiation() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    connect_check_echo(&srv, password_config(&srv), "defaults", |i| {
        let kex = if cfg!(feature = "sntrup") { "sntrup761x25519-sha512" } else { "curve25519-sha256" };
        assert_eq!(i.negotiated.kex.name(), kex);
        assert_eq!(i.negotiated.host_key.name(), "ssh-ed25519");
        assert!(i.server_ident.starts_with("SSH-2.0-OpenSSH_"), "{}", i.server_ident);
        assert_eq!(i.negotiated.cipher_c2s, i.negotiated.cipher_s2c);
    });
}

// ---------------------------------------------------------------------------------------
// 3. Ciphers and MACs
// ---------------------------------------------------------------------------------------

const CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
];

const MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

fn check_cipher(i: &SessionInfo, cipher: &str) {
    assert_eq!(i.negotiated.cipher_c2s.name(), cipher);
    assert_eq!(i.negotiated.cipher_s2c.name(), cipher);
    if i.negotiated.cipher_c2s.is_aead() {
        assert_eq!(i.negotiated.mac_c2s, None, "{cipher}: AEAD cipher must not use a MAC");
        assert_eq!(i.negotiated.mac_s2c, None);
    } else {
        assert!(i.negotiated.mac_c2s.is_some() && i.negotiated.mac_s2c.is_some(), "{cipher}: needs a MAC");
    }
}

fn check_mac(i: &SessionInfo, mac: &str) {
    assert_eq!(i.negotiated.cipher_c2s.name(), "aes128-ctr");
    assert_eq!(i.negotiated.mac_c2s.map(|m| m.name()), Some(mac));
    assert_eq!(i.negotiated.mac_s2c.map(|m| m.name()), Some(mac));
}

fn sshd_cipher_only(cipher: &str) {
    let line = format!("Ciphers {cipher}");
    let srv = support::sshd(&[&line]);
    let _log = ShowLog(&srv);
    connect_check_echo(&srv, password_config(&srv), cipher, |i| check_cipher(i, cipher));
}

#[test]
fn sshd_cipher_chacha20_poly1305() {
    sshd_cipher_only("chacha20-poly1305@openssh.com");
}
#[test]
fn sshd_cipher_aes128_gcm() {
    sshd_cipher_only("aes128-gcm@openssh.com");
}
#[test]
fn sshd_cipher_aes256_gcm() {
    sshd_cipher_only("aes256-gcm@openssh.com");
}
#[test]
fn sshd_cipher_aes128_ctr() {
    sshd_cipher_only("aes128-ctr");
}
#[test]
fn sshd_cipher_aes192_ctr() {
    sshd_cipher_only("aes192-ctr");
}
#[test]
fn sshd_cipher_aes256_ctr() {
    sshd_cipher_only("aes256-ctr");
}

fn sshd_mac_only(mac: &str) {
    let line = format!("MACs {mac}");
    let srv = support::sshd(&["Ciphers aes128-ctr", &line]);
    let _log = ShowLog(&srv);
    connect_check_echo(&srv, password_config(&srv), mac, |i| check_mac(i, mac));
}

#[test]
fn sshd_mac_hmac_sha2_256_etm() {
    sshd_mac_only("hmac-sha2-256-etm@openssh.com");
}
#[test]
fn sshd_mac_hmac_sha2_512_etm() {
    sshd_mac_only("hmac-sha2-512-etm@openssh.com");
}
#[test]
fn sshd_mac_hmac_sha2_256() {
    sshd_mac_only("hmac-sha2-256");
}
#[test]
fn sshd_mac_hmac_sha2_512() {
    sshd_mac_only("hmac-sha2-512");
}
#[test]
fn sshd_mac_hmac_sha1() {
    sshd_mac_only("hmac-sha1");
}

/// One unrestricted sshd; the client restricts itself to each cipher, then (with
/// aes128-ctr) to each MAC.
#[test]
fn sshd_cipher_and_mac_client_restricted() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    for cipher in CIPHERS {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(None, None, Some(cipher), None);
        connect_check_echo(&srv, cfg, cipher, |i| check_cipher(i, cipher));
    }
    for mac in MACS {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(None, None, Some("aes128-ctr"), Some(mac));
        connect_check_echo(&srv, cfg, mac, |i| check_mac(i, mac));
    }
}

// ---------------------------------------------------------------------------------------
// 5. Dropbear and TinySSH algorithms (client-side restriction)
// ---------------------------------------------------------------------------------------

#[test]
fn dropbear_kex() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    for kex in ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256"]
    {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(Some(kex), None, None, None);
        connect_check_echo(&srv, cfg, kex, |i| assert_eq!(i.negotiated.kex.name(), kex));
    }
}

#[test]
fn dropbear_host_keys() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    for alg in ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "ssh-rsa"] {
        host_key_case(&srv, alg, Some(prefs(None, Some(alg), None, None)));
    }
}

#[test]
fn dropbear_ciphers_and_macs() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"] {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(None, None, Some(cipher), None);
        connect_check_echo(&srv, cfg, cipher, |i| check_cipher(i, cipher));
    }
    for mac in ["hmac-sha2-256", "hmac-sha1"] {
        let mut cfg = password_config(&srv);
        cfg.algorithms = prefs(None, None, Some("aes128-ctr"), Some(mac));
        connect_check_echo(&srv, cfg, mac, |i| check_mac(i, mac));
    }
}

/// Dropbear has no GCM and no EtM MACs: asking only for those must fail cleanly, naming the
/// category, rather than pick something else.
#[test]
fn dropbear_no_gcm_no_etm() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    let mut cfg = password_config(&srv);
    cfg.algorithms = prefs(None, None, Some("aes128-gcm@openssh.com,aes256-gcm@openssh.com"), None);
    match Session::connect(srv.addr(), cfg) {
        Err(Error::NoCommonAlgorithm { category, .. }) => {
            assert!(category.contains("cipher") || category.contains("encryption"), "{category}")
        }
        Err(e) => panic!("expected NoCommonAlgorithm, got {e:?}"),
        Ok(_) => panic!("dropbear negotiated a GCM cipher it does not have"),
    }
    let mut cfg = password_config(&srv);
    cfg.algorithms =
        prefs(None, None, Some("aes128-ctr"), Some("hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com"));
    match Session::connect(srv.addr(), cfg) {
        Err(Error::NoCommonAlgorithm { category, .. }) => assert!(category.to_lowercase().contains("mac"), "{category}"),
        Err(e) => panic!("expected NoCommonAlgorithm, got {e:?}"),
        Ok(_) => panic!("dropbear negotiated an EtM MAC it does not have"),
    }
}

#[test]
fn dropbear_default_negotiation() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    connect_check_echo(&srv, password_config(&srv), "dropbear defaults", |i| {
        assert!(i.server_ident.starts_with("SSH-2.0-dropbear"), "{}", i.server_ident);
        assert_eq!(i.negotiated.host_key.name(), "ssh-ed25519");
    });
}

#[test]
fn tinysshd_algorithms() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    for kex in ["curve25519-sha256", "curve25519-sha256@libssh.org"] {
        let mut cfg = ed25519_config(&srv);
        cfg.algorithms = prefs(Some(kex), Some("ssh-ed25519"), Some("chacha20-poly1305@openssh.com"), None);
        connect_check_echo(&srv, cfg, kex, |i| {
            assert_eq!(i.negotiated.kex.name(), kex);
            assert_eq!(i.negotiated.host_key.name(), "ssh-ed25519");
            check_cipher(i, "chacha20-poly1305@openssh.com");
            assert!(i.server_ident.starts_with("SSH-2.0-tinyssh"), "{}", i.server_ident);
        });
    }
    // Default preferences must land on the one set tinysshd has.
    connect_check_echo(&srv, ed25519_config(&srv), "tinysshd defaults", |i| {
        let kex = if cfg!(feature = "sntrup") { "sntrup761x25519-sha512@openssh.com" } else { "curve25519-sha256" };
        assert_eq!(i.negotiated.kex.name(), kex);
        check_cipher(i, "chacha20-poly1305@openssh.com");
    });
    // Nothing but AES: no common cipher.
    let mut cfg = ed25519_config(&srv);
    cfg.algorithms = prefs(None, None, Some("aes128-ctr,aes256-gcm@openssh.com"), None);
    match Session::connect(srv.addr(), cfg) {
        Err(Error::NoCommonAlgorithm { .. }) => {}
        Err(e) => panic!("expected NoCommonAlgorithm, got {e:?}"),
        Ok(_) => panic!("tinysshd negotiated a cipher it does not have"),
    }
}

// ---------------------------------------------------------------------------------------
// 9. Strict key exchange
// ---------------------------------------------------------------------------------------

#[test]
fn strict_kex_sshd() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let s = connect(&srv, password_config(&srv));
    assert!(info(&s).strict_kex, "OpenSSH 9.2 (Debian deb12u1+) offers kex-strict-s-v00");
}

#[test]
fn strict_kex_dropbear() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    let s = connect(&srv, password_config(&srv));
    assert!(info(&s).strict_kex, "Dropbear 2022.83 deb12u1+ offers kex-strict-s-v00");
}

#[test]
fn strict_kex_tinysshd() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    let mut s = connect(&srv, ed25519_config(&srv));
    assert!(!info(&s).strict_kex, "tinysshd 20230101 predates strict kex");
    // ...and the session still works without it.
    echo(&mut s, 1000, 9, "tinysshd non-strict");
}

// ---------------------------------------------------------------------------------------
// 10. IPv6
// ---------------------------------------------------------------------------------------

fn ipv6_case(srv: &Server) {
    if !support::has_ipv6() {
        eprintln!("SKIP: ::1 cannot be bound on this host; IPv6 not tested");
        return;
    }
    let addr = srv.addr_v6().expect("server should listen on ::1 when has_ipv6()");
    let mut s = match Session::connect(addr, password_config(srv)) {
        Ok(s) => s,
        Err(e) => panic!("connect to {addr} failed: {e:?}"),
    };
    echo(&mut s, ECHO_BYTES, 6, "ipv6");
    let (out, _, st) = s.exec("echo $SSH_CONNECTION").unwrap().output().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("::1 "), "server saw {out:?}");
    assert_eq!(st, Some(sshbridge::ExitStatus::Code(0)));
}

#[test]
fn ipv6_sshd() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    ipv6_case(&srv);
}

#[test]
fn ipv6_dropbear() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    ipv6_case(&srv);
}
