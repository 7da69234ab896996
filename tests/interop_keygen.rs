//! Key generation and export against the real tools: every kind we generate (Ed25519, and
//! ECDSA P-256 and RSA-3072 with their features) is written with `to_openssh(None)`,
//! `to_openssh(Some(pw))` and `to_dropbear()`, and
//!
//! - `ssh-keygen -y` (OpenSSH 9.2) prints our public line for both OpenSSH files (and refuses a
//!   wrong passphrase); `dropbearkey -y` (Dropbear 2022.83) prints it for the Dropbear file;
//! - `dropbearconvert openssh dropbear` turns our OpenSSH file into exactly our Dropbear bytes,
//!   and its reverse conversion of our Dropbear file is a key ssh-keygen and we read;
//! - our own parser reads every file back;
//! - a fresh key logs in to a real sshd through our client, through OpenSSH's `ssh -i` with
//!   our OpenSSH file, through Dropbear's `dbclient -i` with our Dropbear file, and through
//!   the eCos C API with the Dropbear bytes in `db_id_rsa`. The sshd gets its own
//!   `AuthorizedKeysFile`, so the test account's `~/.ssh/authorized_keys`, shared with
//!   concurrent tests, is not touched.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sshbridge::{Config, Credential, ExitStatus, KeyKind, PrivateKey, Session};

const PASS: &str = "keygen-Test-pw";

/// The kinds this build generates; RSA at the size ssh-keygen picks by default.
fn kinds() -> Vec<KeyKind> {
    let mut v = vec![KeyKind::Ed25519];
    if cfg!(feature = "nistp256") {
        v.push(KeyKind::EcdsaP256);
    }
    if cfg!(feature = "rsa") {
        v.push(KeyKind::Rsa(sshbridge::keys::RSA_DEFAULT_BITS));
    }
    v
}

/// One generated key and its three files.
struct Generated {
    key: PrivateKey,
    /// `public_key().to_openssh()`.
    public: String,
    openssh: PathBuf,
    openssh_enc: PathBuf,
    dropbear: PathBuf,
}

/// A directory removed at the end (0755: sshd reads the authorized keys in it as the test user).
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("sshb-keygen-{}-{n}-{what}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Write a secret file as ssh-keygen wants it (mode 0600).
fn write_secret(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Generate every kind once per process, with the OS generator, and write the files.
fn generated() -> &'static [Generated] {
    static KEYS: OnceLock<(TempDir, Vec<Generated>)> = OnceLock::new();
    &KEYS
        .get_or_init(|| {
            let dir = TempDir::new("keys");
            let keys = kinds()
                .into_iter()
                .map(|kind| {
                    let key = PrivateKey::generate(kind)
                        .unwrap_or_else(|e| panic!("generate {kind:?}: {e}"));
                    assert_eq!(key.kind(), kind);
                    let name = kind.key_type();
                    let g = Generated {
                        public: key.public_key().to_openssh(),
                        openssh: dir.0.join(format!("{name}.openssh")),
                        openssh_enc: dir.0.join(format!("{name}.enc.openssh")),
                        dropbear: dir.0.join(format!("{name}.dropbear")),
                        key,
                    };
                    write_secret(&g.openssh, g.key.to_openssh(None).unwrap().as_bytes());
                    write_secret(
                        &g.openssh_enc,
                        g.key.to_openssh(Some(PASS)).unwrap().as_bytes(),
                    );
                    write_secret(&g.dropbear, &g.key.to_dropbear().unwrap());
                    g
                })
                .collect();
            (dir, keys)
        })
        .1
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
}

fn stdout_ok(c: &mut Command) -> String {
    let out = run(c);
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// "TYPE BASE64" of the first line of `text` that starts with a key type.
fn public_line_in(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
        .unwrap_or_else(|| panic!("no public key line in {text:?}"));
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ssh_keygen_y(file: &Path, pass: &str) -> Output {
    run(Command::new(support::SSH_KEYGEN)
        .args(["-y", "-P", pass, "-f"])
        .arg(file))
}

// ---------------------------------------------------------------------------------------
// The tools read our files
// ---------------------------------------------------------------------------------------

#[test]
fn ssh_keygen_reads_our_openssh_files() {
    support::ensure_env();
    for g in generated() {
        let out = ssh_keygen_y(&g.openssh, "");
        assert!(
            out.status.success(),
            "{}: {}",
            g.public,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            public_line_in(&String::from_utf8_lossy(&out.stdout)),
            g.public
        );

        let out = ssh_keygen_y(&g.openssh_enc, PASS);
        assert!(
            out.status.success(),
            "{}: {}",
            g.public,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            public_line_in(&String::from_utf8_lossy(&out.stdout)),
            g.public
        );

        // The encryption is real: a wrong passphrase gets nothing out of it.
        let out = ssh_keygen_y(&g.openssh_enc, "wrong");
        assert!(!out.status.success(), "{}", g.public);
        assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("incorrect passphrase"),
            "{out:?}"
        );
    }
}

/// Keys `ssh-keygen` encrypted with each cipher it offers for key files (`-Z`): we read them
/// with the passphrase, refuse a wrong one by name, and name 3des-cbc, which this build leaves
/// out, instead of failing on it later.
#[cfg(feature = "encrypted-keys")]
#[test]
fn we_read_keys_ssh_keygen_encrypted_with_every_cipher() {
    support::ensure_env();
    let dir = TempDir::new("ciphers");
    let ciphers = [
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-cbc",
        "aes192-cbc",
        "aes256-cbc",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
    ];
    let key_err = |r: Result<PrivateKey, sshbridge::Error>| match r {
        Err(sshbridge::Error::Key(m)) => m,
        other => panic!("expected a key error, got {other:?}"),
    };
    for (i, cipher) in ciphers.iter().chain(&["3des-cbc"]).enumerate() {
        let file = dir.0.join(format!("key{i}"));
        stdout_ok(Command::new(support::SSH_KEYGEN)
            .args(["-q", "-t", "ed25519", "-C", "", "-N", PASS, "-Z", cipher, "-f"])
            .arg(&file));
        let text = fs::read(&file).unwrap();
        let public = public_line_in(&fs::read_to_string(file.with_extension("pub")).unwrap());
        if *cipher == "3des-cbc" {
            let m = key_err(PrivateKey::from_bytes(&text, Some(PASS.as_bytes())));
            assert!(m.contains("unsupported cipher: 3des-cbc"), "{m}");
            continue;
        }
        let key = PrivateKey::from_bytes(&text, Some(PASS.as_bytes()))
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        assert_eq!(key.public_key().to_openssh(), public, "{cipher}");
        assert_eq!(key_err(PrivateKey::from_bytes(&text, Some(b"keygen-Test-pW"))), "wrong passphrase", "{cipher}");
        assert_eq!(key_err(PrivateKey::from_bytes(&text, None)), "encrypted key needs a passphrase", "{cipher}");
    }
}

#[test]
fn dropbearkey_reads_our_dropbear_files() {
    support::ensure_env();
    for g in generated() {
        let text = stdout_ok(
            Command::new(support::DROPBEARKEY)
                .args(["-y", "-f"])
                .arg(&g.dropbear),
        );
        assert_eq!(public_line_in(&text), g.public);
        assert!(text.contains(&g.key.public_key().fingerprint()), "{text}");
    }
}

/// dropbearconvert agrees with us on what the Dropbear form of our OpenSSH file is, byte for
/// byte, and its OpenSSH form of our Dropbear file is the same key.
#[test]
fn dropbearconvert_agrees_with_our_exports() {
    support::ensure_env();
    let dir = TempDir::new("convert");
    for g in generated() {
        let out = dir.0.join("from-openssh.dropbear");
        stdout_ok(
            Command::new(support::DROPBEARCONVERT)
                .args(["openssh", "dropbear"])
                .arg(&g.openssh)
                .arg(&out),
        );
        assert_eq!(
            fs::read(&out).unwrap(),
            *g.key.to_dropbear().unwrap(),
            "{}",
            g.public
        );

        let out = dir.0.join("from-dropbear.openssh");
        stdout_ok(
            Command::new(support::DROPBEARCONVERT)
                .args(["dropbear", "openssh"])
                .arg(&g.dropbear)
                .arg(&out),
        );
        fs::set_permissions(&out, fs::Permissions::from_mode(0o600)).unwrap();
        let back = PrivateKey::from_bytes(&fs::read(&out).unwrap(), None).unwrap();
        assert_eq!(back.public_key().to_openssh(), g.public);
        let out = ssh_keygen_y(&out, "");
        assert_eq!(
            public_line_in(&String::from_utf8_lossy(&out.stdout)),
            g.public
        );
    }
}

#[test]
fn our_parser_reads_every_file_back() {
    for g in generated() {
        for (path, pass) in [
            (&g.openssh, None),
            (&g.openssh_enc, Some(PASS.as_bytes())),
            (&g.dropbear, None),
        ] {
            let back = PrivateKey::from_bytes(&fs::read(path).unwrap(), pass)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                back.public_key().to_openssh(),
                g.public,
                "{}",
                path.display()
            );
            assert_eq!(back.kind(), g.key.kind());
        }
        assert!(
            PrivateKey::from_bytes(&fs::read(&g.openssh_enc).unwrap(), Some(b"wrong")).is_err()
        );
    }
}

#[test]
fn generated_keys_differ() {
    let a = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let b = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    assert_ne!(a.public_key(), b.public_key());
}

// ---------------------------------------------------------------------------------------
// Fresh keys log in
// ---------------------------------------------------------------------------------------

/// An sshd that takes exactly the generated keys, from its own authorized keys file.
fn sshd_for_generated_keys(dir: &TempDir) -> support::Server {
    let ak = dir.0.join("authorized_keys");
    let lines: String = generated()
        .iter()
        .map(|g| format!("{} keygen-test\n", g.public))
        .collect();
    fs::write(&ak, lines).unwrap();
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o644)).unwrap();
    support::sshd(&[&format!("AuthorizedKeysFile {}", ak.display())])
}

struct ShowLog<'a>(&'a support::Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== sshd log (port {}) =====\n{}",
                self.0.port,
                self.0.log()
            );
        }
    }
}

#[test]
fn fresh_keys_log_in_to_sshd() {
    let dir = TempDir::new("sshd");
    let srv = sshd_for_generated_keys(&dir);
    let _log = ShowLog(&srv);
    for g in generated() {
        // Our client, with the key read back from the Dropbear file and the encrypted OpenSSH
        // file (PrivateKey is not Clone; the unit tests show the round trips keep the key).
        let from = |path: &Path, pass: Option<&[u8]>| {
            PrivateKey::from_bytes(&fs::read(path).unwrap(), pass).unwrap()
        };
        let keys = [
            ("dropbear file", from(&g.dropbear, None)),
            (
                "encrypted openssh file",
                from(&g.openssh_enc, Some(PASS.as_bytes())),
            ),
        ];
        for (what, key) in keys {
            assert_eq!(key.public_key().to_openssh(), g.public);
            let mut cfg = Config::new(support::USER);
            cfg.host_keys = srv
                .host_keys
                .iter()
                .filter_map(|l| l.parse().ok())
                .collect();
            cfg.credentials.push(Credential::key(key));
            let s = Session::connect(srv.addr(), cfg)
                .unwrap_or_else(|e| panic!("{} {what}: {e}", g.public));
            let (out, _, st) = s.exec("whoami").unwrap().output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                format!("{}\n", support::USER)
            );
            assert_eq!(st, Some(ExitStatus::Code(0)));
        }
        let fp = g.key.public_key().fingerprint();
        assert!(
            srv.wait_log_contains(&fp, std::time::Duration::from_secs(5)),
            "sshd did not log {fp}"
        );

        // OpenSSH's client with our OpenSSH file.
        let out = run(&mut srv.ssh_command(&g.openssh, &[], "whoami"));
        assert!(
            out.status.success(),
            "ssh -i {}: {}",
            g.public,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", support::USER)
        );

        // Dropbear's client with our Dropbear file (what the eCos C API gets as db_id_rsa).
        let home = TempDir::new("dbclient-home");
        let out = run(Command::new("timeout")
            .arg("60")
            .arg(support::DBCLIENT)
            .args(["-y", "-y", "-i"])
            .arg(&g.dropbear)
            .args([
                "-p",
                &srv.port.to_string(),
                "-l",
                support::USER,
                "127.0.0.1",
                "whoami",
            ])
            .env("HOME", &home.0));
        assert!(
            out.status.success(),
            "dbclient -i {}: {}",
            g.public,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", support::USER)
        );
    }
}

/// The account's shared authorized_keys does not hold the fresh keys, so the login above
/// went through the test's own file: a server without it refuses the key.
#[test]
fn fresh_key_is_refused_without_its_authorized_keys_file() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let g = &generated()[0];
    let mut cfg = Config::new(support::USER);
    cfg.host_keys = srv
        .host_keys
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    cfg.credentials.push(Credential::key(
        PrivateKey::from_bytes(&fs::read(&g.dropbear).unwrap(), None).unwrap(),
    ));
    match Session::connect(srv.addr(), cfg) {
        Err(sshbridge::Error::AuthFailed { .. }) => {}
        other => panic!("expected AuthFailed, got {:?}", other.map(|_| ())),
    }
}

// ---------------------------------------------------------------------------------------
// The eCos C API with generated key bytes
// ---------------------------------------------------------------------------------------

fn sockaddr(a: std::net::SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let std::net::SocketAddr::V4(v4) = a else {
        panic!("IPv4 only here")
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned for it.
    unsafe {
        std::ptr::write(
            (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
            sin,
        )
    };
    ss
}

/// `to_dropbear()` bytes in `db_id_rsa` with their length, as an eCos application holds them
/// (compiled in, not NUL-terminated): `whoami` through the socketpair, exit code 0.
#[test]
fn c_api_logs_in_with_generated_dropbear_bytes() {
    use sshbridge::ffi::{
        cyg_dropbear_authenticate, cyg_dropbear_cli_handle, cyg_dropbear_ssh_close,
        cyg_dropbear_ssh_connect,
    };
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    let dir = TempDir::new("c-api");
    let srv = sshd_for_generated_keys(&dir);
    let _log = ShowLog(&srv);
    let user = CString::new(support::USER).unwrap();
    let host = CString::new(srv.host_key("ssh-ed25519").expect("ed25519 host key")).unwrap();
    let cmd = CString::new("whoami").unwrap();
    for g in generated() {
        let bytes = g.key.to_dropbear().unwrap();
        let auth = cyg_dropbear_authenticate {
            db_username: user.as_ptr(),
            db_host_rsa_key_pub: host.as_ptr(),
            db_host_dsa_key_pub: std::ptr::null(),
            db_id_rsa: bytes.as_ptr().cast(),
            db_id_rsa_keylen: bytes.len() as libc::c_int,
            db_id_dsa: std::ptr::null(),
            db_id_dsa_keylen: 0,
            db_password: std::ptr::null(),
        };
        let ss = sockaddr(srv.addr());
        // SAFETY: an all-zero handle is what a C caller's memset gives; connect fills it in.
        let mut h: Box<cyg_dropbear_cli_handle> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: every pointer is valid for the call; the strings and bytes outlive it.
        let ok = unsafe { cyg_dropbear_ssh_connect(&mut *h, &ss, &auth, cmd.as_ptr()) };
        let error: Vec<u8> = h
            .db_error
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        assert_eq!(ok, 1, "{}: {}", g.public, String::from_utf8_lossy(&error));
        // Read to EOF through a duplicate, so close() still closes the library's descriptor.
        // SAFETY: dup of a descriptor the handle owns; the new one is ours alone.
        let fd = unsafe { libc::dup(h.db_stdin_stdout) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just returned by dup and is owned by nobody else.
        let mut out = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("{}\n", support::USER), "{}", g.public);
        // SAFETY: `h` came from a successful connect and is closed once.
        unsafe { cyg_dropbear_ssh_close(&mut *h, 1) };
        assert_eq!(h.db_exitcode, 0, "{}", g.public);
        let fp = g.key.public_key().fingerprint();
        assert!(
            srv.wait_log_contains(&fp, std::time::Duration::from_secs(5)),
            "sshd did not log {fp}"
        );
    }
}
