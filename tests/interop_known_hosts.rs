//! Host trust against real OpenSSH: known_hosts files written by `ssh`, `ssh-keygen -H` and
//! `ssh-keyscan` are read by our strict check; files we write are read by `ssh` and
//! `ssh-keygen -F`; a changed key is refused loudly before any authentication; the host-key
//! algorithm follows the known key; concurrent writers (threads and a second process) lose
//! nothing; UpdateHostKeys ends with the same keys as OpenSSH's own client.
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use sshbridge::keys::known_hosts;
use sshbridge::{Config, Credential, Error, HostKeyPolicy, KnownHosts, Session, Strict};

/// A fresh private directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "sshbridge-kh-{}-{}-{what}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
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

fn config(policy: HostKeyPolicy) -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.host_key_policy = policy;
    cfg
}

fn connect(addr: &str, kh: KnownHosts) -> Result<Session, Error> {
    Session::connect(addr, config(HostKeyPolicy::KnownHosts(kh)))
}

fn run_true(s: &mut Session) {
    let (out, _, _) = s.exec("echo ok").unwrap().output().unwrap();
    assert_eq!(out, b"ok\n");
}

/// OpenSSH's `ssh` with the test user's ed25519 key, `known_hosts` as its only file.
fn ssh(srv: &support::Server, known_hosts: &Path, options: &[&str]) -> Output {
    let key = support::user_keys().path("ed25519.openssh");
    let mut c = Command::new(support::SSH);
    c.args(["-F", "/dev/null", "-T", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .args(["-o", "PreferredAuthentications=publickey", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(key)
        .args(options)
        .args(["-p", &srv.port.to_string()])
        .arg(format!("{}@127.0.0.1", support::USER))
        .arg("true")
        .stdin(Stdio::null());
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (type, base64) of every well-formed line of a file.
#[cfg(all(feature = "rsa", feature = "nistp256"))]
fn key_set(path: &Path) -> BTreeSet<(String, String)> {
    let text = fs::read(path).unwrap();
    let parsed = known_hosts::parse(&text, "");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    parsed
        .entries
        .iter()
        .map(|e| (e.key_type.clone(), base64_of(&e.blob)))
        .collect()
}

#[cfg(all(feature = "rsa", feature = "nistp256"))]
fn base64_of(blob: &[u8]) -> String {
    let k = sshbridge::PublicKey::from_blob(blob).unwrap();
    k.to_openssh_line().split(' ').nth(1).unwrap().to_string()
}

fn line_for(srv: &support::Server, key_type: &str) -> String {
    srv.host_key(key_type).unwrap_or_else(|| panic!("no {key_type} host key")).to_string()
}

#[test]
fn files_written_by_openssh_are_read_by_strict_yes() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let d = TempDir::new("openssh-written");
    let f = d.path("known_hosts");
    // ssh trusts the server on first use and writes the file.
    let o = ssh(&srv, &f, &["-o", "StrictHostKeyChecking=accept-new", "-o", "UpdateHostKeys=no"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = fs::read(&f).unwrap();
    assert!(String::from_utf8_lossy(&written).starts_with(&format!("[127.0.0.1]:{} ", srv.port)));
    // Our strict check accepts it, by name and by socket address, and writes nothing.
    let addr = format!("127.0.0.1:{}", srv.port);
    let mut s = connect(&addr, KnownHosts::file(&f)).unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
    run_true(&mut s);
    assert!(s.host_key_warnings().is_empty(), "{:?}", s.host_key_warnings());
    let mut cfg = config(HostKeyPolicy::KnownHosts(KnownHosts::file(&f)));
    cfg.credentials.clear();
    cfg.credentials.push(Credential::key(sshbridge::PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap()));
    Session::connect(srv.addr(), cfg).unwrap();
    assert_eq!(fs::read(&f).unwrap(), written);
    // The same after ssh-keygen -H hashed the names.
    let o = Command::new(support::SSH_KEYGEN).arg("-H").arg("-f").arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let hashed = fs::read_to_string(&f).unwrap();
    assert!(hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"), "{hashed}");
    connect(&addr, KnownHosts::file(&f)).unwrap_or_else(|e| panic!("{e}"));
    // A strict connect under another port is refused (NEW), naming the line to add.
    let other = TempDir::new("other");
    let e = connect(&addr, KnownHosts::file(other.path("kh"))).err().unwrap().to_string();
    assert!(e.contains("No ED25519 host key is known for") && e.contains(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", srv.port)), "{e}");
    assert!(!other.path("kh").exists());
}

#[test]
fn ssh_keyscan_output_plain_and_hashed() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let d = TempDir::new("keyscan");
    for hashed in [false, true] {
        let mut c = Command::new("ssh-keyscan");
        if hashed {
            c.arg("-H");
        }
        let o = c.args(["-p", &srv.port.to_string(), "127.0.0.1"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(text.lines().filter(|l| !l.starts_with('#')).count() >= 3, "{text}");
        assert_eq!(text.contains("|1|"), hashed);
        let f = d.path(&format!("kh-{hashed}"));
        fs::write(&f, &text).unwrap();
        let mut s = connect(&format!("127.0.0.1:{}", srv.port), KnownHosts::file(&f)).unwrap_or_else(|e| panic!("{e}\n{text}"));
        run_true(&mut s);
        assert_eq!(fs::read_to_string(&f).unwrap(), text);
    }
}

#[test]
fn patterns_revoked_and_garbage_lines() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let d = TempDir::new("patterns");
    let p = srv.port;
    let ed = line_for(&srv, "ssh-ed25519");
    let addr = format!("127.0.0.1:{p}");
    let garbage = "# comment\n@bogus x ssh-ed25519 AAAA\nnot a key line\n\u{1b}[2J\x00\nx ssh-ed25519 !!!\n";
    let cases: &[(String, bool)] = &[
        (format!("[127.0.0.1]:*,!other {ed}\n"), true),
        (format!("[127.0.0.?]:{p} {ed}\n"), true),
        (format!("[127.0.0.1]:{p}0,[127.0.0.1]:{p} {ed}\n"), true),
        (format!("[*]:*,![127.0.0.1]:{p} {ed}\n"), false),
        (format!("*,!127.0.0.1,![127.0.0.1]:{p} {ed}\n"), false),
        (format!("*,!other {ed}\n"), true),
        (format!("[127.0.0.1]:{} {ed}\n", p.wrapping_add(1)), false),
        (format!("127.0.0.1 {ed}\n"), true), // port-less entry holding the key
        (format!("{garbage}[127.0.0.1]:{p} {ed}\n{garbage}"), true),
        (format!("[127.0.0.1]:{p} {ed}\n@revoked * {ed}\n"), false),
    ];
    for (i, (text, ok)) in cases.iter().enumerate() {
        let f = d.path(&format!("kh{i}"));
        fs::write(&f, text).unwrap();
        let r = connect(&addr, KnownHosts::file(&f));
        assert_eq!(r.is_ok(), *ok, "case {i}: {text:?}: {:?}", r.err());
        // OpenSSH agrees.
        let o = ssh(&srv, &f, &["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"]);
        assert_eq!(o.status.success(), *ok, "ssh, case {i}: {text:?}: {}", stderr(&o));
        if let Ok(s) = r {
            if text.contains("bogus") {
                assert_eq!(s.host_key_warnings().len(), 8, "{:?}", s.host_key_warnings());
            }
        } else if text.contains("@revoked") {
            let e = r.err().unwrap().to_string();
            assert!(e.contains("REVOKED HOST KEY") && e.contains(&format!("{}:2", f.display())), "{e}");
        }
        assert_eq!(fs::read_to_string(&f).unwrap(), *text, "case {i} modified the file");
    }
}

#[test]
fn files_written_by_us_are_read_by_openssh() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let d = TempDir::new("ours");
    for hashed in [false, true] {
        // A directory that does not exist yet: created 0700, the file 0600.
        let f = d.path(&format!("dot{hashed}/known_hosts"));
        let kh = KnownHosts::file(&f).mode(Strict::AcceptNew).hash_new_entries(hashed);
        let mut s = connect(&format!("127.0.0.1:{}", srv.port), kh.clone()).unwrap_or_else(|e| panic!("{e}"));
        run_true(&mut s);
        let text = fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(text.starts_with("|1|"), hashed, "{text}");
        if !hashed {
            assert!(text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", srv.port)), "{text}");
        }
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(f.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        // Known now: a second connect writes nothing.
        connect(&format!("127.0.0.1:{}", srv.port), kh.mode(Strict::Yes)).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), text);
        // OpenSSH connects with strict checking and finds the entry.
        let o = ssh(&srv, &f, &["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"]);
        assert!(o.status.success(), "{}\n{text}", stderr(&o));
        let o = Command::new(support::SSH_KEYGEN)
            .arg("-F")
            .arg(format!("[127.0.0.1]:{}", srv.port))
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("Host [127.0.0.1]:{} found: line 1", srv.port)));
    }
}

#[test]
fn changed_key_is_refused_before_any_authentication() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let d = TempDir::new("changed");
    // The host "restarted with another key": the file holds a key the server does not have.
    let other = d.path("other");
    let o = Command::new(support::SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).output().unwrap();
    assert!(o.status.success());
    let old_line = fs::read_to_string(other.with_extension("pub")).unwrap();
    let old_key: sshbridge::PublicKey = old_line.parse().unwrap();
    let f = d.path("known_hosts");
    let text = format!("# mine\nsomewhere {}\n[127.0.0.1]:{} {}", line_for(&srv, "ssh-ed25519"), srv.port, old_line.trim());
    fs::write(&f, &text).unwrap();
    let offered: sshbridge::PublicKey = line_for(&srv, "ssh-ed25519").parse().unwrap();
    for strict in [Strict::Yes, Strict::AcceptNew] {
        let e = connect(&format!("127.0.0.1:{}", srv.port), KnownHosts::file(&f).mode(strict)).err().unwrap();
        assert!(matches!(e, Error::HostKeyRejected(_)), "{e}");
        let e = e.to_string();
        assert!(e.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{e}");
        assert!(e.contains(&format!("{}:3", f.display())), "{e}");
        assert!(e.contains(&offered.fingerprint()) && e.contains(&old_key.fingerprint()), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), text, "the file changed");
    }
    // sshd saw the key exchanges but not a single authentication request.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = srv.log();
    assert!(log.contains("Connection from 127.0.0.1"), "{log}");
    assert!(!log.contains("userauth-request"), "{log}");
    // Under Strict::No the connection goes on without trust: no password is sent.
    let e = connect(&format!("127.0.0.1:{}", srv.port), KnownHosts::file(&f).mode(Strict::No)).err().unwrap();
    assert!(matches!(e, Error::AuthFailed { .. }), "{e}");
    assert_eq!(fs::read_to_string(&f).unwrap(), text);
    // sshd was asked with "none" only: no password, no success.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = srv.log();
    assert!(log.contains("userauth-request"), "{log}");
    assert!(!log.contains("Accepted") && !log.contains("Failed password") && !log.contains("method password"), "{log}");
}

#[cfg(feature = "nistp256")]
#[test]
fn host_known_only_by_ecdsa_connects_by_ecdsa() {
    support::ensure_env();
    let srv = support::sshd(&["HostKeyAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512"]);
    let d = TempDir::new("ecdsa");
    let f = d.path("known_hosts");
    fs::write(&f, format!("[127.0.0.1]:{} {}\n", srv.port, line_for(&srv, "ecdsa-sha2-nistp256"))).unwrap();
    let mut s = connect(&format!("127.0.0.1:{}", srv.port), KnownHosts::file(&f)).unwrap_or_else(|e| panic!("{e}"));
    run_true(&mut s);
    let info = s.info().unwrap();
    assert_eq!(info.host_key.key_type(), "ecdsa-sha2-nistp256");
    assert_eq!(info.negotiated.host_key, sshbridge::SigAlg::EcdsaNistp256);
    // Without the file the same server is met with ed25519 (so the order above was ours).
    let s = Session::connect(srv.addr(), config(HostKeyPolicy::AcceptAny)).unwrap();
    assert_eq!(s.info().unwrap().host_key.key_type(), "ssh-ed25519");
}

/// Environment variable naming the file the second process writes into, and the ports.
const CHILD_FILE: &str = "SSHB_KH_CHILD_FILE";
const CHILD_PORTS: &str = "SSHB_KH_CHILD_PORTS";

/// Trust every server on first use from its own thread, under `host` names.
fn trust_all(file: &Path, ports: &[u16], host: &str, hash: bool) {
    std::thread::scope(|sc| {
        for &p in ports {
            sc.spawn(move || {
                let kh = KnownHosts::file(file).mode(Strict::AcceptNew).hash_new_entries(hash);
                let mut cfg = Config::new(support::USER);
                cfg.host_key_policy = HostKeyPolicy::KnownHosts(kh);
                let s = Session::connect(format!("{host}:{p}"), cfg).unwrap_or_else(|e| panic!("{host}:{p}: {e}"));
                assert!(s.host_key_warnings().is_empty(), "{:?}", s.host_key_warnings());
            });
        }
    });
}

/// The second process of `twenty_threads_and_a_second_process_lose_nothing`.
#[test]
fn concurrent_child() {
    let (Ok(file), Ok(ports)) = (std::env::var(CHILD_FILE), std::env::var(CHILD_PORTS)) else { return };
    let ports: Vec<u16> = ports.split(',').map(|p| p.parse().unwrap()).collect();
    trust_all(Path::new(&file), &ports, "localhost", true);
}

#[test]
fn twenty_threads_and_a_second_process_lose_nothing() {
    support::ensure_env();
    let servers: Vec<_> = (0..20).map(|_| support::tinysshd_noneauth()).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let d = TempDir::new("concurrent");
    let f = d.path("known_hosts");
    fs::write(&f, "# shared\n").unwrap();
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "concurrent_child", "--test-threads=1", "--nocapture"])
        .env(CHILD_FILE, &f)
        .env(CHILD_PORTS, list.join(","))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    trust_all(&f, &ports, "127.0.0.1", false);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    let text = fs::read(&f).unwrap();
    let parsed = known_hosts::parse(&text, "kh");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.entries.len(), 40, "{}", String::from_utf8_lossy(&text));
    for (s, &p) in servers.iter().zip(&ports) {
        let key: sshbridge::PublicKey = s.host_keys[0].parse().unwrap();
        for name in [format!("[127.0.0.1]:{p}"), format!("[localhost]:{p}")] {
            let n = parsed.entries.iter().filter(|e| known_hosts::hosts_match(&e.hosts, &name)).count();
            assert_eq!(n, 1, "{name}");
            assert!(known_hosts::holds(&text, &name, &key), "{name}");
        }
    }
    assert_eq!(parsed.entries.iter().filter(|e| e.is_hashed()).count(), 20);
}

#[cfg(all(feature = "rsa", feature = "nistp256"))]
#[test]
fn update_host_keys_matches_openssh_and_follows_a_dropped_key() {
    support::ensure_env();
    let keys = TempDir::new("hostkeys");
    fs::set_permissions(&keys.0, fs::Permissions::from_mode(0o755)).unwrap();
    for (t, b) in [("ed25519", "256"), ("ecdsa", "256"), ("rsa", "2048")] {
        let o = Command::new(support::SSH_KEYGEN)
            .args(["-q", "-N", "", "-t", t, "-b", b, "-f"])
            .arg(keys.path(t))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let hk = |t: &str| format!("HostKey {}", keys.path(t).display());
    let pubkey = |t: &str| {
        let l = fs::read_to_string(keys.path(t).with_extension("pub")).unwrap();
        l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    };
    let sshd_with = |types: &[&str]| {
        let lines: Vec<String> = types.iter().map(|t| hk(t)).collect();
        support::sshd(&lines.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let all = sshd_with(&["ed25519", "ecdsa", "rsa"]);
    let d = TempDir::new("update");
    let ours = d.path("ours");
    let theirs = d.path("theirs");
    let start = format!("# before\nupdhost {}\n", pubkey("ed25519"));
    fs::write(&ours, &start).unwrap();
    fs::write(&theirs, &start).unwrap();

    let drive = |srv: &support::Server, want: usize| {
        let mut cfg = config(HostKeyPolicy::KnownHosts(KnownHosts::file(&ours).update_host_keys(true)));
        cfg.host_key_alias = Some("updhost".into());
        let mut s = Session::connect(srv.addr(), cfg).unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
        for _ in 0..20 {
            run_true(&mut s);
            if key_set(&ours).len() == want {
                break;
            }
        }
        assert!(s.host_key_warnings().is_empty(), "{:?}", s.host_key_warnings());
    };
    drive(&all, 3);
    let o = ssh(&all, &theirs, &["-o", "HostKeyAlias=updhost", "-o", "UpdateHostKeys=yes", "-o", "StrictHostKeyChecking=yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: BTreeSet<(String, String)> = ["ed25519", "ecdsa", "rsa"]
        .iter()
        .map(|t| {
            let l = pubkey(t);
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    assert_eq!(key_set(&theirs), expected, "OpenSSH's result");
    assert_eq!(key_set(&ours), expected, "ours:\n{}", fs::read_to_string(&ours).unwrap());
    assert!(fs::read_to_string(&ours).unwrap().starts_with(&start), "other lines kept");
    // No update when the host was only just trusted on first use, nor for a wildcard line
    // (OpenSSH leaves both alone).
    for (text, strict) in [(String::new(), Strict::AcceptNew), (format!("upd* {}\n", pubkey("ed25519")), Strict::Yes)] {
        let f = d.path("left-alone");
        fs::write(&f, &text).unwrap();
        let mut cfg = config(HostKeyPolicy::KnownHosts(KnownHosts::file(&f).mode(strict).update_host_keys(true)));
        cfg.host_key_alias = Some("updhost".into());
        let mut s = Session::connect(all.addr(), cfg).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..3 {
            run_true(&mut s);
        }
        let after = fs::read_to_string(&f).unwrap();
        assert_eq!(after.lines().count(), 1, "{after}");
        assert!(after.contains(&pubkey("ed25519")), "{after}");
    }
    drop(all);

    // The server drops its RSA key: the RSA line disappears, the rest stays.
    let two = sshd_with(&["ed25519", "ecdsa"]);
    drive(&two, 2);
    let after: BTreeSet<_> = expected.iter().filter(|(t, _)| t != "ssh-rsa").cloned().collect();
    assert_eq!(key_set(&ours), after, "{}", fs::read_to_string(&ours).unwrap());
    let o = ssh(&two, &theirs, &["-o", "HostKeyAlias=updhost", "-o", "UpdateHostKeys=yes", "-o", "StrictHostKeyChecking=yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(key_set(&theirs), after, "OpenSSH's result");
}

#[test]
fn verifier_pinned_policy_and_the_c_api_default() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let ed: sshbridge::PublicKey = line_for(&srv, "ssh-ed25519").parse().unwrap();
    // The verifier sees the name as typed and the port, and decides.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for accept in [true, false] {
        let s2 = seen.clone();
        let want = ed.clone();
        let policy = HostKeyPolicy::Verify(std::sync::Arc::new(move |q: &sshbridge::HostKeyQuery| {
            s2.lock().unwrap().push((q.host.clone(), q.port, q.key.key_type().to_string()));
            accept && q.key == want
        }));
        let r = Session::connect(format!("LocalHost:{}", srv.port), config(policy));
        assert_eq!(r.is_ok(), accept, "{:?}", r.err());
        if !accept {
            assert!(r.err().unwrap().to_string().contains("refused by the application's verifier"));
        }
    }
    let expect = ("LocalHost".to_string(), srv.port, "ssh-ed25519".to_string());
    assert_eq!(*seen.lock().unwrap(), vec![expect.clone(), expect]);
    // Pinned, through the policy and through the host_keys shorthand.
    Session::connect(srv.addr(), config(HostKeyPolicy::Pinned(vec![ed.clone()]))).unwrap();
    let mut cfg = config(HostKeyPolicy::AcceptAny);
    cfg.host_keys.push(ed.clone());
    Session::connect(srv.addr(), cfg).unwrap();
    let other: sshbridge::PublicKey =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMTOZowJIAomL7mspElu/tejCPRnwvTuap1Mwvsl21u".parse().unwrap();
    let e = Session::connect(srv.addr(), config(HostKeyPolicy::Pinned(vec![other.clone()]))).err().unwrap();
    assert!(e.to_string().contains("host key mismatch"), "{e}");
    // Both the shorthand and another policy: refused as a bad argument.
    let mut cfg = config(HostKeyPolicy::KnownHosts(KnownHosts::file("/nonexistent/kh")));
    cfg.host_keys.push(other);
    assert!(matches!(Session::connect(srv.addr(), cfg).err().unwrap(), Error::BadArgument(_)));
    // AcceptAny with no key: any key (the C API's behaviour without a host key).
    Session::connect(srv.addr(), config(HostKeyPolicy::AcceptAny)).unwrap();
}
