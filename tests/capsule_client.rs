//! SSH Capsules, the client (issue 14) against plain OpenSSH sshd set up as a capsule: any
//! public key is let in once its signature verifies (`AuthorizedKeysCommand /usr/bin/echo %t
//! %k`, proof of possession only), a `ForceCommand` script stands for the capsule's commands
//! and prints the HOST/LANG/TZ it got (`AcceptEnv HOST LANG TZ`) and the original command.
//! sshd only lets system accounts in, so the capsule user is the test account (`--user
//! sshbtest`) and the port sshd's (`--port`); everything else is the capsule convention.
//!
//! The script's commands: no command (shell request) prints a greeting; `report` prints
//! `HOST=`, `LANG=`, `TZ=`, `CMD=`; `fail N` prints `out` on stdout, `failing N` on stderr and
//! exits N; `gemini /hello.gmi` prints `20 text/gemini; charset=utf-8` on stderr and a body;
//! `gemini` of any other path prints `51 Not found` on stderr and exits 51 (the Gemini status:
//! our convention for a missing page); anything else exits 127.
//!
//! The client is `examples/capsule.rs` (built by the first test that needs it) and, for the
//! Rust API, `Capsule` / `Config::capsule`. `/usr/bin/ssh` proves the `--ssh-config` output.
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sshbridge::runtime::capsule::Capsule;
use sshbridge::{Config, Credential, Error, PrivateKey, Session};

const SCRIPT: &str = r#"#!/bin/sh
set -f
set -- $SSH_ORIGINAL_COMMAND
case "$1" in
"") echo "Welcome to the capsule of ${HOST:-nowhere}";;
report) echo "HOST=$HOST"; echo "LANG=$LANG"; echo "TZ=$TZ"; echo "CMD=$SSH_ORIGINAL_COMMAND";;
fail) echo out; echo "failing $2" >&2; exit "$2";;
gemini)
    case "$2" in
    /hello.gmi) printf '20 text/gemini; charset=utf-8\r\n' >&2; printf '# Hello from %s\n' "$HOST";;
    *) printf '51 Not found\r\n' >&2; exit 51;;
    esac;;
*) echo "Command not found" >&2; exit 127;;
esac
"#;

/// A fresh directory readable by the test account (the ForceCommand script lives there),
/// removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!("sshbridge-capsule-{}-{}-{what}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// sshd as a capsule for the test account; `extra` go first (e.g. a `HostKey`).
fn capsule_sshd(d: &TempDir, extra: &[&str]) -> support::Server {
    let script = d.path("capsule.sh");
    fs::write(&script, SCRIPT).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let force = format!("  ForceCommand {}", script.display());
    let mut lines: Vec<&str> = extra.to_vec();
    lines.extend([
        "AcceptEnv HOST LANG TZ",
        "Match User sshbtest",
        "  AuthorizedKeysCommand /usr/bin/echo %t %k",
        "  AuthorizedKeysCommandUser nobody",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        &force,
    ]);
    support::sshd(&lines)
}

/// The example, built once per test process.
fn capsule_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "--example", "capsule"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "cargo build --example capsule failed");
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("capsule");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

/// `capsule --home HOME [--port PORT] --user sshbtest ARGS...` with LANG and TZ set.
fn capsule(home: &Path, port: Option<u16>, args: &[&str]) -> Output {
    let mut c = Command::new(capsule_bin());
    c.arg("--home").arg(home).args(["--user", support::USER]);
    if let Some(p) = port {
        c.args(["--port", &p.to_string()]);
    }
    c.args(args).env("LANG", "C.UTF-8").env("TZ", "Europe/Paris").env("HOME", home).stdin(Stdio::null());
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

/// Lines of a known_hosts file.
fn known_lines(home: &Path) -> Vec<String> {
    fs::read_to_string(home.join(".ssh/known_hosts")).unwrap_or_default().lines().map(String::from).collect()
}

/// The SHA256 fingerprint of a key file's public half.
fn fingerprint(key_file: &Path) -> String {
    PrivateKey::from_bytes(&fs::read(key_file).unwrap(), None).unwrap().public_key().fingerprint()
}

/// sshd's "Accepted publickey" lines naming `key` ("ED25519 SHA256:...").
fn accepted(srv: &support::Server, key: &str) -> usize {
    srv.log().lines().filter(|l| l.contains("Accepted publickey") && l.ends_with(key)).count()
}

#[test]
fn first_use_creates_identity_and_trust_then_both_are_reused() {
    support::ensure_env();
    let d = TempDir::new("first-use");
    let srv = capsule_sshd(&d, &[]);
    let home = d.path("home");
    fs::create_dir(&home).unwrap();

    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), "HOST=127.0.0.1\nLANG=C.UTF-8\nTZ=Europe/Paris\nCMD=report\n", "{}", show(&o));

    // The identity: made now, 0600 in a 0700 ~/.ssh, with its .pub, used to log in.
    let ssh_dir = home.join(".ssh");
    let key = ssh_dir.join("127.0.0.1_cap_id_ed25519");
    assert_eq!(mode(&ssh_dir), 0o700);
    assert_eq!(mode(&key), 0o600);
    let public = fs::read_to_string(ssh_dir.join("127.0.0.1_cap_id_ed25519.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
    let fp = fingerprint(&key);
    assert!(srv.wait_log_contains("Accepted publickey for sshbtest from 127.0.0.1 port", Duration::from_secs(5)), "{}", srv.log());
    assert_eq!(accepted(&srv, &format!("ED25519 {fp}")), 1, "{fp} not in\n{}", srv.log());
    assert!(!ssh_dir.join("127.0.0.1_cap_id_rsa").exists());

    // The trust: one line under [127.0.0.1]:PORT holding one of the server's keys.
    let lines = known_lines(&home);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (name, key_line) = lines[0].split_once(' ').unwrap();
    assert_eq!(name, format!("[127.0.0.1]:{}", srv.port));
    assert!(srv.host_keys.iter().any(|k| k == key_line), "{key_line} is not a key of the server");

    // The second run reuses both: same key file, the same single known_hosts line.
    let key_bytes = fs::read(&key).unwrap();
    let kh_bytes = fs::read(ssh_dir.join("known_hosts")).unwrap();
    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(fs::read(&key).unwrap(), key_bytes);
    assert_eq!(fs::read(ssh_dir.join("known_hosts")).unwrap(), kh_bytes);
    assert_eq!(accepted(&srv, &format!("ED25519 {fp}")), 2, "{}", srv.log());

    // stdout and stderr apart, the remote status as ours.
    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "fail", "7"]);
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "failing 7\n");
    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "bash"]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    assert_eq!(text(&o.stderr), "Command not found\n");
    // No command: a shell request, the capsule's default command.
    let o = capsule(&home, Some(srv.port), &["127.0.0.1"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), "Welcome to the capsule of 127.0.0.1\n");
    // Never a password or keyboard-interactive attempt.
    let log = srv.log();
    assert!(!log.contains("method password") && !log.contains("method keyboard-interactive"), "{log}");
}

/// Replace sshd's host key and make it re-read it (SIGHUP: sshd re-executes itself, same port).
fn change_host_key(srv: &support::Server, hk: &Path) {
    let new = hk.with_extension("new");
    let o = Command::new(support::SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-C", "new-host-key", "-f"]).arg(&new).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    fs::rename(&new, hk).unwrap();
    let listening = format!("Server listening on 127.0.0.1 port {}", srv.port);
    let before = srv.log().matches(&listening).count();
    let st = Command::new("kill").args(["-HUP", &srv.pid().to_string()]).status().unwrap();
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(10);
    while srv.log().matches(&listening).count() <= before {
        assert!(Instant::now() < end, "sshd did not restart:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn changed_host_key_is_refused_loudly() {
    support::ensure_env();
    let d = TempDir::new("changed");
    let hk = d.path("host_key");
    let o = Command::new(support::SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&hk).output().unwrap();
    assert!(o.status.success());
    let hk_line = format!("HostKey {}", hk.display());
    let srv = capsule_sshd(&d, &[&hk_line]);
    let home = d.path("home");
    fs::create_dir(&home).unwrap();

    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
    assert!(o.status.success(), "{}", show(&o));
    let kh = fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    let old_fp: sshbridge::PublicKey = fs::read_to_string(hk.with_extension("pub")).unwrap().parse().unwrap();

    change_host_key(&srv, &hk);
    let new_fp: sshbridge::PublicKey = fs::read_to_string(hk.with_extension("pub")).unwrap().parse().unwrap();
    let accepted = srv.log().matches("Accepted publickey").count();
    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
    assert_eq!(o.status.code(), Some(255), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("host key rejected") && err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{err}");
    assert!(err.contains(&old_fp.fingerprint()) && err.contains(&new_fp.fingerprint()), "{err}");
    assert!(err.contains(&format!("{}:1", home.join(".ssh/known_hosts").display())), "{err}");
    // Nothing written, nothing sent: no further login.
    assert_eq!(fs::read_to_string(home.join(".ssh/known_hosts")).unwrap(), kh);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.log().matches("Accepted publickey").count(), accepted, "{}", srv.log());

    // The Rust API says so with the specific error.
    let e = Capsule::new("127.0.0.1").unwrap().home(&home).port(srv.port).user(support::USER).connect().err().unwrap();
    assert!(matches!(e, Error::HostKeyRejected(_)), "{e}");
}

#[cfg(feature = "rsa")]
#[test]
fn an_existing_rsa_identity_is_used_instead() {
    support::ensure_env();
    let d = TempDir::new("rsa");
    let srv = capsule_sshd(&d, &[]);
    for name in ["127.0.0.1_cap_id_rsa", "127.0.0.1_anon_id_rsa"] {
        let home = d.path(name);
        fs::create_dir_all(home.join(".ssh")).unwrap();
        let key = home.join(".ssh").join(name);
        let o = Command::new(support::SSH_KEYGEN).args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"]).arg(&key).output().unwrap();
        assert!(o.status.success(), "{}", show(&o));
        let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
        assert!(o.status.success(), "{}", show(&o));
        assert!(text(&o.stdout).starts_with("HOST=127.0.0.1\n"), "{}", show(&o));
        assert!(!home.join(".ssh/127.0.0.1_cap_id_ed25519").exists(), "an ed25519 identity was made beside {name}");
        let fp = fingerprint(&key);
        assert!(srv.wait_log_contains(&format!("RSA {fp}"), Duration::from_secs(5)), "{fp} not in\n{}", srv.log());
        assert_eq!(accepted(&srv, &format!("RSA {fp}")), 1, "{}", srv.log());
    }
}

#[test]
fn ssh_config_makes_openssh_log_in_and_is_idempotent() {
    support::ensure_env();
    let d = TempDir::new("ssh-config");
    let srv = capsule_sshd(&d, &[]);
    let home = d.path("home");
    let ssh_dir = home.join(".ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    let config = ssh_dir.join("config");
    let mine = "# my own settings\nHost other.example\n  User bob\n  Port 2222";
    fs::write(&config, mine).unwrap();

    let o = capsule(&home, Some(srv.port), &["--ssh-config", "127.0.0.1"]);
    assert!(o.status.success(), "{}", show(&o));
    let written = fs::read_to_string(&config).unwrap();
    assert!(written.starts_with(&format!("{mine}\n")), "{written}");
    let block = format!(
        "Match user sshbtest\n  PubkeyAuthentication yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  \
         PreferredAuthentications publickey\n  Port {}\n  Include {}/*_cap_config\n",
        srv.port,
        ssh_dir.display()
    );
    assert!(written.ends_with(&block), "{written}");
    let host_cfg = fs::read_to_string(ssh_dir.join("127.0.0.1_cap_config")).unwrap();
    let id = ssh_dir.join("127.0.0.1_cap_id_ed25519");
    for want in ["Host 127.0.0.1\n", "  SetEnv HOST=127.0.0.1\n", &format!("  IdentityFile {}\n", id.display())] {
        assert!(host_cfg.contains(want), "{want:?} not in\n{host_cfg}");
    }
    assert_eq!(mode(&id), 0o600);
    assert_eq!(mode(&config), 0o644, "the existing file's mode changed");
    assert_eq!(mode(&ssh_dir.join("127.0.0.1_cap_config")), 0o600);

    // Again: nothing added, nothing rewritten.
    let o = capsule(&home, Some(srv.port), &["--ssh-config", "127.0.0.1"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(text(&o.stdout).contains("already there") && text(&o.stdout).contains("already up to date"), "{}", show(&o));
    assert_eq!(fs::read_to_string(&config).unwrap(), written);
    assert_eq!(fs::read_to_string(ssh_dir.join("127.0.0.1_cap_config")).unwrap(), host_cfg);
    assert_eq!(written.matches("Match user").count(), 1);

    // OpenSSH with that configuration and nothing else: port, identity, HOST, LANG/TZ, and
    // trust on first use into the file our client reads.
    let ssh = |cmd: &str| {
        Command::new(support::SSH)
            .arg("-F")
            .arg(&config)
            .args(["-T", "-o", "BatchMode=yes", &format!("{}@127.0.0.1", support::USER), cmd])
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .env("TZ", "Europe/Paris")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = ssh("report");
    assert!(o.status.success(), "{}\n{}", show(&o), srv.log());
    assert_eq!(text(&o.stdout), "HOST=127.0.0.1\nLANG=C.UTF-8\nTZ=Europe/Paris\nCMD=report\n", "{}", show(&o));
    assert_eq!(accepted(&srv, &format!("ED25519 {}", fingerprint(&id))), 1, "{}", srv.log());
    let lines = known_lines(&home);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("[127.0.0.1]:{} ", srv.port)), "{lines:?}");
    // Our client now uses the trust ssh recorded, and adds nothing.
    let o = capsule(&home, Some(srv.port), &["127.0.0.1", "report"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(known_lines(&home), lines);
    // The default command through ssh too.
    let o = ssh("");
    assert_eq!(text(&o.stdout), "Welcome to the capsule of 127.0.0.1\n", "{}", show(&o));
}

/// Without --user/--port the block is the seed's (`Match user capsule`, `Port 1966`): sshd
/// cannot log in a non-system `capsule`, so what OpenSSH makes of it is read with `ssh -G`.
#[test]
fn ssh_config_defaults_resolve_as_the_seed_says() {
    let d = TempDir::new("ssh-config-defaults");
    let home = d.path("home");
    fs::create_dir(&home).unwrap();
    let o = Command::new(capsule_bin()).arg("--home").arg(&home).args(["--ssh-config", "example.com"]).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let config = home.join(".ssh/config");
    let resolve = |dest: &str| {
        let o = Command::new(support::SSH).arg("-G").arg("-F").arg(&config).arg(dest).stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "{}", show(&o));
        text(&o.stdout).to_ascii_lowercase()
    };
    let g = resolve("capsule@example.com");
    let id = home.join(".ssh/example.com_cap_id_ed25519").display().to_string().to_ascii_lowercase();
    for want in [
        "user capsule\n".to_string(),
        "port 1966\n".into(),
        "passwordauthentication no\n".into(),
        "kbdinteractiveauthentication no\n".into(),
        "preferredauthentications publickey\n".into(),
        "identitiesonly yes\n".into(),
        format!("identityfile {id}\n"),
        "setenv host=example.com\n".into(),
        "sendenv lang\n".into(),
        "sendenv tz\n".into(),
        "stricthostkeychecking accept-new\n".into(),
        format!("userknownhostsfile {}\n", home.join(".ssh/known_hosts").display().to_string().to_ascii_lowercase()),
    ] {
        assert!(g.contains(&want), "{want:?} not in\n{g}");
    }
    assert_eq!(mode(&home.join(".ssh/example.com_cap_id_ed25519")), 0o600);
    // Another user, or another host as capsule: untouched.
    let g = resolve("bob@example.com");
    assert!(g.contains("port 22\n") && !g.contains("setenv") && !g.contains(&id), "{g}");
    let g = resolve("capsule@other.example");
    assert!(g.contains("port 1966\n") && !g.contains("setenv") && !g.contains(&id), "{g}");
}

#[test]
fn gemcap_prints_the_body_and_exits_with_the_gemini_status() {
    support::ensure_env();
    let d = TempDir::new("gemcap");
    let srv = capsule_sshd(&d, &[]);
    let home = d.path("home");
    fs::create_dir(&home).unwrap();
    let url = |path: &str| format!("gemcap://127.0.0.1:{}{path}", srv.port);

    let o = capsule(&home, None, &[&url("/hello.gmi")]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), "# Hello from 127.0.0.1\n");
    assert_eq!(text(&o.stderr), "20 text/gemini; charset=utf-8\r\n");
    let o = capsule(&home, None, &[&url("/missing.gmi")]);
    assert_eq!(o.status.code(), Some(51), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    assert_eq!(text(&o.stderr), "51 Not found\r\n");
    // The port came from the address: trust was recorded under it.
    assert!(known_lines(&home)[0].starts_with(&format!("[127.0.0.1]:{} ", srv.port)));
}

#[test]
fn rust_api_settings_and_refused_env_variables() {
    support::ensure_env();
    let d = TempDir::new("api");
    // This capsule accepts HOST only: LANG and TZ are refused, the command still runs.
    let srv = support::sshd(&[
        "AcceptEnv HOST",
        "Match User sshbtest",
        "  AuthorizedKeysCommand /usr/bin/echo %t %k",
        "  AuthorizedKeysCommandUser nobody",
        "  PasswordAuthentication no",
    ]);
    let home = d.path("home");
    fs::create_dir(&home).unwrap();
    let cap = Capsule::new("127.0.0.1").unwrap().home(&home).port(srv.port).user(support::USER);
    assert_eq!(cap.addr(), ("127.0.0.1".to_string(), srv.port));
    let mut cfg: Config = cap.config().unwrap();
    assert_eq!(cfg.user, support::USER);
    assert!(!cfg.allow_none_auth);
    assert!(matches!(cfg.credentials.as_slice(), [Credential::Key(_)]), "{:?}", cfg.credentials);
    assert_eq!(cfg.env.first(), Some(&("HOST".to_string(), "127.0.0.1".to_string())));
    cfg.env = vec![("HOST".into(), "127.0.0.1".into()), ("LANG".into(), "C.UTF-8".into()), ("TZ".into(), "UTC".into())];
    let s = Session::connect(cap.addr(), cfg).unwrap();
    let (out, _, status) = s.exec("echo \"$HOST|$LANG|$TZ\"").unwrap().output().unwrap();
    assert_eq!(text(&out), "127.0.0.1||\n");
    assert_eq!(status, Some(sshbridge::ExitStatus::Code(0)));
    // shell and open_session send the env too.
    let mut ch = s.open_session().unwrap();
    ch.exec("echo $HOST").unwrap();
    assert_eq!(text(&ch.output().unwrap().0), "127.0.0.1\n");
    let mut sh = s.shell().unwrap();
    std::io::Write::write_all(&mut sh, b"echo shell:$HOST\nexit 3\n").unwrap();
    let (out, _, status) = sh.output().unwrap();
    assert_eq!(text(&out), "shell:127.0.0.1\n");
    assert_eq!(status, Some(sshbridge::ExitStatus::Code(3)));
    assert!(home.join(".ssh/127.0.0.1_cap_id_ed25519").exists());
}
