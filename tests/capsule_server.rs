//! SSH Capsules, the server (issue 14): `examples/capsule-server` against OpenSSH's own `ssh`,
//! `scp -O` and `git`, configured as the seed shows (a `Match user capsule` block with `Port`,
//! `PubkeyAuthentication yes`, `PasswordAuthentication no`, and per host a `Match user capsule
//! host NAME` block with `SetEnv HOST=NAME`, passed with `ssh -F`), and against our own
//! `examples/capsule` client.
//!
//! Each test starts its own server (release build of the examples, made once per process) with
//! capsule directories made here: `host`, `commands` (the allow-list below), `content/`
//! (`hello.gmi`, `repo.git`, symlinks pointing outside) and `bin/` (`welcome`, `gemini`, `wait`,
//! `echo-back` scripts).
//!
//! Cases: the greeting (default command, no command given); `cat /hello.gmi` through path
//! binding; two virtual hosts selected by `HOST`; `scp -O`; `git clone` through an allow-listed
//! `git-upload-pack <path>`; the environment a command gets (only PATH, HOST, IDENT,
//! ACCOUNT_DIR, LANG, TZ); a password attempt and another user refused; `bash` and commands
//! off the list -> `Command not found`, 127; traversal (`..`, absolute paths, symlinks to the
//! outside) never reaching the real files; the idle timeout (1 s) ending a silent connection
//! but not one with traffic; one account directory per key; our `capsule` client: identity and
//! trust on first use then reused, `gemcap://` body and status 20 / 51, its `--ssh-config`
//! output letting `ssh` in with the same key and trust, a changed host key refused loudly;
//! `--max-sessions` and `--max-startups`; no sftp subsystem.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const COMMANDS: &str = "\
# the allow-list of the test capsules
welcome
cat <path>
ls <path>
scp -f <path>
git-upload-pack <path>
gemini <path>
env
wait
echo-back
";

const GEMINI: &str = r#"#!/bin/sh
if [ -f "$1" ]; then
    printf '20 text/gemini; charset=utf-8\r\n' >&2
    exec cat "$1"
fi
printf '51 Not found\r\n' >&2
exit 51
"#;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/examples/NAME`, both examples built once per test process.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "--release", "--features", "server", "--example", "capsule-server", "--example", "capsule"])
            .current_dir(manifest())
            .status()
            .expect("cannot run cargo");
        assert!(st.success(), "cargo build --release --features server --example capsule-server --example capsule failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| manifest().join("target"));
        target.join("release/examples")
    });
    dir.join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

fn write_exec(p: &Path, body: &str) {
    fs::write(p, body).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn git(args: &[&str], cwd: &Path) {
    let o = Command::new("git").args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]).args(args).current_dir(cwd).output().unwrap();
    assert!(o.status.success(), "git {args:?}: {}", show(&o));
}

/// A capsule directory `dir` serving `hosts`, its pages saying `name`.
fn make_capsule(dir: &Path, name: &str, hosts: &[&str]) {
    fs::create_dir_all(dir.join("content/docs")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("host"), hosts.iter().map(|h| format!("{h}\n")).collect::<String>()).unwrap();
    fs::write(dir.join("commands"), COMMANDS).unwrap();
    fs::write(dir.join("content/hello.gmi"), format!("# Hello from {name}\n")).unwrap();
    fs::write(dir.join("content/docs/a.txt"), "a\n").unwrap();
    write_exec(&dir.join("bin/welcome"), &format!("#!/bin/sh\necho \"Welcome to {name} ($HOST)\"\n"));
    write_exec(&dir.join("bin/gemini"), GEMINI);
    write_exec(&dir.join("bin/wait"), "#!/bin/sh\nexec sleep 30\n");
    write_exec(&dir.join("bin/echo-back"), "#!/bin/sh\nexec cat\n");
    // Ways out that must stay shut.
    std::os::unix::fs::symlink("/etc/passwd", dir.join("content/leak")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("content/etc-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent-capsule-target", dir.join("content/dangling")).unwrap();
}

fn keygen(path: &Path) -> String {
    let o = Command::new(support::SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"]).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn fingerprint(key_file: &Path) -> String {
    sshbridge::PrivateKey::from_bytes(&fs::read(key_file).unwrap(), None).unwrap().public_key().fingerprint()
}

/// A running capsule server, its directory (`dir/alpha`, the default capsule serving
/// `alpha.test`, and `dir/beta` serving `beta.test`), a client key and an ssh config.
struct Cap {
    srv: support::Server,
    dir: PathBuf,
    key: PathBuf,
    config: PathBuf,
}

fn capsule_server(extra: &[&str]) -> Cap {
    let dir = support::fresh_dir("capsule-server");
    let host_key = dir.join("host_key");
    let host_line = keygen(&host_key);
    make_capsule(&dir.join("alpha"), "alpha", &["alpha.test"]);
    make_capsule(&dir.join("beta"), "beta", &["beta.test", "www.beta.test"]);
    let repo_src = dir.join("repo-src");
    fs::create_dir(&repo_src).unwrap();
    git(&["init", "-q"], &repo_src);
    fs::write(repo_src.join("README"), "capsule repository\n").unwrap();
    git(&["add", "README"], &repo_src);
    git(&["commit", "-q", "-m", "first"], &repo_src);
    git(&["clone", "-q", "--bare", "repo-src", "alpha/content/repo.git"], &dir);
    let key = dir.join("id_client");
    keygen(&key);

    let bin = example("capsule-server");
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let (d, hk) = (dir.clone(), host_key.clone());
    let srv = support::external_server(dir.clone(), vec![host_line], move |port| {
        let mut c = Command::new(&bin);
        c.arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--host-key").arg(&hk).arg(d.join("alpha"));
        c.arg("--capsule").arg(d.join("beta")).args(&extra);
        c
    });
    let config = write_ssh_config(&dir, srv.port, &key);
    Cap { srv, dir, key, config }
}

/// The seed's OpenSSH configuration (with the test's port, key and files).
fn write_ssh_config(dir: &Path, port: u16, key: &Path) -> PathBuf {
    let known = dir.join("known_hosts");
    let mut cfg = format!(
        "IdentitiesOnly yes\n\
         Match user capsule\n  PubkeyAuthentication yes\n  PasswordAuthentication no\n  PreferredAuthentications publickey\n  \
         Port {port}\n  IdentityFile {}\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
         StrictHostKeyChecking accept-new\n  BatchMode yes\n  IdentityAgent none\n  SendEnv LANG TZ\n",
        key.display(),
        known.display()
    );
    for h in ["alpha.test", "beta.test"] {
        cfg.push_str(&format!("Match user capsule host {h}\n  Hostname 127.0.0.1\n  SetEnv HOST={h}\n"));
    }
    let path = dir.join("ssh_config");
    fs::write(&path, cfg).unwrap();
    path
}

impl Cap {
    /// `ssh -F CONFIG [options] DEST [command]`, LANG and TZ set, stdin empty.
    fn ssh_with(&self, options: &[&str], dest: &str, command: &str) -> Command {
        let mut c = Command::new(support::SSH);
        c.arg("-F").arg(&self.config).arg("-T").args(options).arg(dest);
        if !command.is_empty() {
            c.arg(command);
        }
        c.env("LANG", "C.UTF-8").env("TZ", "Europe/Paris").env_remove("SSH_AUTH_SOCK").stdin(Stdio::null());
        c
    }

    fn ssh(&self, dest: &str, command: &str) -> Output {
        self.ssh_with(&[], dest, command).output().unwrap()
    }

    fn accounts(&self, capsule: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.join(capsule).join("accounts"))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn account_name(key_file: &Path) -> String {
    fingerprint(key_file).trim_start_matches("SHA256:").replace('+', "-").replace('/', "_")
}

#[test]
fn openssh_greeting_paths_and_virtual_hosts() {
    support::ensure_env();
    let cap = capsule_server(&[]);
    // No command: the default command (first one-word line), for the default capsule.
    let o = cap.ssh("capsule@127.0.0.1", "");
    assert!(o.status.success(), "{}\n{}", show(&o), cap.srv.log());
    assert_eq!(text(&o.stdout), "Welcome to alpha (alpha.test)\n", "{}", show(&o));
    // Path binding: /hello.gmi is content/hello.gmi; relative and dotted forms too.
    for p in ["/hello.gmi", "hello.gmi", "/docs/../hello.gmi", "'/hello.gmi'"] {
        let o = cap.ssh("capsule@127.0.0.1", &format!("cat {p}"));
        assert!(o.status.success(), "{p}: {}", show(&o));
        assert_eq!(text(&o.stdout), "# Hello from alpha\n", "{p}");
    }
    let o = cap.ssh("capsule@127.0.0.1", "ls /docs");
    assert_eq!(text(&o.stdout), "a.txt\n", "{}", show(&o));
    // Virtual hosts: HOST (SetEnv in the per-host block) picks the capsule.
    for (dest, name) in [("capsule@alpha.test", "alpha"), ("capsule@beta.test", "beta")] {
        let o = cap.ssh(dest, "");
        assert!(o.status.success(), "{dest}: {}\n{}", show(&o), cap.srv.log());
        assert_eq!(text(&o.stdout), format!("Welcome to {name} ({})\n", &dest[8..]), "{dest}");
        let o = cap.ssh(dest, "cat /hello.gmi");
        assert_eq!(text(&o.stdout), format!("# Hello from {name}\n"), "{dest}: {}", show(&o));
    }
    // A HOST no capsule serves: the default one.
    let o = cap.ssh_with(&["-o", "SetEnv=HOST=nobody.test"], "capsule@127.0.0.1", "cat /hello.gmi").output().unwrap();
    assert_eq!(text(&o.stdout), "# Hello from alpha\n", "{}", show(&o));
    // The environment of a command: nothing but these.
    let o = cap.ssh("capsule@beta.test", "env");
    assert!(o.status.success(), "{}", show(&o));
    let mut env: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    env.sort();
    let ident = fs::read_to_string(cap.key.with_extension("pub")).unwrap().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let account = cap.dir.join("beta").canonicalize().unwrap().join("accounts").join(account_name(&cap.key));
    let bin = cap.dir.join("beta/bin").canonicalize().unwrap();
    let mut want = vec![
        format!("ACCOUNT_DIR={}", account.display()),
        "HOST=beta.test".to_string(),
        format!("IDENT={ident}"),
        "LANG=C.UTF-8".to_string(),
        format!("PATH={}:/usr/bin:/bin", bin.display()),
        "TZ=Europe/Paris".to_string(),
    ];
    want.sort();
    assert_eq!(env, want);
}

#[test]
fn openssh_scp_and_git_clone() {
    support::ensure_env();
    let cap = capsule_server(&[]);
    let dest = cap.dir.join("download");
    fs::create_dir(&dest).unwrap();
    let o = Command::new("scp")
        .args(["-O", "-F"])
        .arg(&cap.config)
        .arg("capsule@127.0.0.1:/hello.gmi")
        .arg(&dest)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", show(&o), cap.srv.log());
    assert_eq!(fs::read_to_string(dest.join("hello.gmi")).unwrap(), "# Hello from alpha\n");
    // Uploads are not on the list.
    let o = Command::new("scp")
        .args(["-O", "-F"])
        .arg(&cap.config)
        .arg(dest.join("hello.gmi"))
        .arg("capsule@127.0.0.1:/uploaded")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", show(&o));
    assert!(!cap.dir.join("alpha/content/uploaded").exists());
    let log = cap.srv.log();
    assert!(log.contains(r#"ran ["scp", "-f", "./hello.gmi"] for "scp -f /hello.gmi""#), "{log}");
    assert!(log.contains(r#"refused "scp -t /uploaded""#), "{log}");

    let o = Command::new("git")
        .args(["clone", "-q", "capsule@127.0.0.1:/repo.git"])
        .arg(dest.join("clone"))
        .env("GIT_SSH_COMMAND", format!("ssh -F {}", cap.config.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", show(&o), cap.srv.log());
    assert_eq!(fs::read_to_string(dest.join("clone/README")).unwrap(), "capsule repository\n");
    // What git asked for, as the server ran it.
    assert!(cap.srv.log().contains(r#"ran ["git-upload-pack", "./repo.git"] for "git-upload-pack '/repo.git'""#), "{}", cap.srv.log());
}

#[test]
fn openssh_refusals_and_traversal() {
    support::ensure_env();
    let cap = capsule_server(&[]);
    // Password: not offered, so OpenSSH has nothing to try.
    let o = cap
        .ssh_with(
            &["-o", "PasswordAuthentication=yes", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"],
            "capsule@127.0.0.1",
            "welcome",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(255), "{}", show(&o));
    assert!(text(&o.stderr).contains("Permission denied (publickey)."), "{}", show(&o));
    // Another user, with a good key: refused.
    let port = cap.srv.port.to_string();
    let mut o = cap.ssh_with(&["-p", &port, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", &format!("IdentityFile={}", cap.key.display())], "root@127.0.0.1", "welcome");
    let o = o.env("HOME", &cap.dir).output().unwrap();
    assert_eq!(o.status.code(), Some(255), "{}", show(&o));
    assert!(text(&o.stderr).contains("Permission denied (publickey)."), "{}", show(&o));

    // Off the list.
    for cmd in ["bash", "sh -c id", "cat", "cat /hello.gmi /hello.gmi", "cat /hello.gmi;id", "cat $HOME", "scp -t /x", "ls -la /"] {
        let o = cap.ssh("capsule@127.0.0.1", cmd);
        assert_eq!(o.status.code(), Some(127), "{cmd}: {}", show(&o));
        assert_eq!(text(&o.stderr), "Command not found\n", "{cmd}");
        assert!(o.stdout.is_empty(), "{cmd}");
    }
    // Traversal: bound under content (not found there), never the real file.
    for p in ["../../etc/passwd", "/etc/passwd", "/../../../etc/passwd", "docs/../../../../etc/passwd"] {
        let o = cap.ssh("capsule@127.0.0.1", &format!("cat {p}"));
        assert_eq!(o.status.code(), Some(1), "{p}: {}", show(&o));
        assert!(o.stdout.is_empty(), "{p}: {}", show(&o));
        assert_eq!(text(&o.stderr), "cat: ./etc/passwd: No such file or directory\n", "{p}");
    }
    // Symlinks pointing outside: refused before anything runs.
    for p in ["/leak", "/etc-link/passwd", "/etc-link", "/dangling"] {
        let o = cap.ssh("capsule@127.0.0.1", &format!("cat {p}"));
        assert_eq!(o.status.code(), Some(127), "{p}: {}", show(&o));
        assert!(o.stdout.is_empty() && !text(&o.stdout).contains("root:"), "{p}");
    }
    assert!(!cap.srv.log().contains("ran [\"cat\", \"./leak\"]"), "{}", cap.srv.log());
    // No subsystems.
    let o = Command::new("sftp").args(["-b", "/dev/null", "-F"]).arg(&cap.config).arg("capsule@127.0.0.1").stdin(Stdio::null()).output().unwrap();
    assert!(!o.status.success(), "{}", show(&o));
}

#[test]
fn idle_timeout_ends_silent_connections_only() {
    support::ensure_env();
    let cap = capsule_server(&["--idle-timeout", "1s"]);
    // Silent: the command sleeps 30 s; the connection ends after 1 s without a packet.
    let t = Instant::now();
    let o = cap.ssh("capsule@127.0.0.1", "wait");
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(255), "{}", show(&o));
    assert!(took < Duration::from_secs(8) && took >= Duration::from_millis(900), "{took:?}");
    assert!(cap.srv.wait_log_contains("idle for 1.0 s", Duration::from_secs(5)), "{}", cap.srv.log());
    // Its command was ended with it.
    assert!(cap.srv.wait_log_contains(r#"ran ["wait"] for "wait": Signal"#, Duration::from_secs(5)), "{}", cap.srv.log());

    // Traffic every 300 ms for 2.4 s keeps it alive.
    let mut child = cap.ssh_with(&[], "capsule@127.0.0.1", "echo-back").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..8 {
        writeln!(stdin, "line {i}").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), (0..8).map(|i| format!("line {i}\n")).collect::<String>());
}

#[test]
fn one_account_directory_per_key() {
    support::ensure_env();
    let cap = capsule_server(&[]);
    assert!(cap.accounts("alpha").is_empty());
    for _ in 0..2 {
        let o = cap.ssh("capsule@127.0.0.1", "");
        assert!(o.status.success(), "{}", show(&o));
    }
    assert_eq!(cap.accounts("alpha"), [account_name(&cap.key)]);
    assert_eq!(cap.srv.log().matches("account made").count(), 1, "{}", cap.srv.log());
    // Another key: a second directory.
    let other = cap.dir.join("id_other");
    keygen(&other);
    let o = cap.ssh_with(&["-i", other.to_str().unwrap()], "capsule@127.0.0.1", "env").output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let id_line = fs::read_to_string(other.with_extension("pub")).unwrap();
    assert!(text(&o.stdout).contains(&format!("IDENT={}\n", id_line.split_whitespace().take(2).collect::<Vec<_>>().join(" "))), "{}", show(&o));
    let mut want = vec![account_name(&cap.key), account_name(&other)];
    want.sort();
    assert_eq!(cap.accounts("alpha"), want);
    assert_eq!(cap.srv.log().matches("account made").count(), 2);
    assert_eq!(std::fs::metadata(cap.dir.join("alpha/accounts").join(&want[0])).unwrap().permissions().mode() & 0o777, 0o700);
}

/// `capsule --home HOME --port PORT ARGS...`.
fn our_client(home: &Path, port: u16, args: &[&str]) -> Output {
    let mut c = Command::new(example("capsule"));
    c.arg("--home").arg(home).args(["--port", &port.to_string()]).args(args);
    c.env("LANG", "C.UTF-8").env("TZ", "Europe/Paris").env("HOME", home).stdin(Stdio::null());
    c.output().unwrap()
}

/// A capsule-server on a given port (the harness picks ports itself), killed when dropped.
struct Manual(Child);

impl Drop for Manual {
    fn drop(&mut self) {
        support::kill9(&[format!("-{}", self.0.id())]);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn manual_server(dir: &Path, port: u16, host_key: &Path) -> Manual {
    let log = fs::File::create(dir.join("manual.log")).unwrap();
    let child = Command::new(example("capsule-server"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--host-key")
        .arg(host_key)
        .arg(dir.join("alpha"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(dir.join("manual.log")).unwrap_or_default().contains("listening on") {
        assert!(Instant::now() < end, "{}", fs::read_to_string(dir.join("manual.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(20));
    }
    Manual(child)
}

#[test]
fn our_capsule_client_against_our_server() {
    support::ensure_env();
    let cap = capsule_server(&[]);
    let port = cap.srv.port;
    // Outlives the first server (its directory goes with it).
    let keep = support::fresh_dir("capsule-server-restart");
    let home = keep.join("home");
    fs::create_dir(&home).unwrap();

    // First use: an identity and a known_hosts line are made.
    let o = our_client(&home, port, &["127.0.0.1"]);
    assert!(o.status.success(), "{}\n{}", show(&o), cap.srv.log());
    assert_eq!(text(&o.stdout), "Welcome to alpha (127.0.0.1)\n");
    let key = home.join(".ssh/127.0.0.1_cap_id_ed25519");
    let key_bytes = fs::read(&key).unwrap();
    let known = fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    assert_eq!(known.lines().count(), 1, "{known}");
    assert_eq!(known.lines().next().unwrap(), format!("[127.0.0.1]:{port} {}", cap.srv.host_keys[0]));
    assert_eq!(cap.accounts("alpha"), [account_name(&key)]);
    // Second run: both reused, nothing added.
    let o = our_client(&home, port, &["127.0.0.1", "cat", "/hello.gmi"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), "# Hello from alpha\n");
    assert_eq!(fs::read(&key).unwrap(), key_bytes);
    assert_eq!(fs::read_to_string(home.join(".ssh/known_hosts")).unwrap(), known);
    assert_eq!(cap.accounts("alpha"), [account_name(&key)]);
    let o = our_client(&home, port, &["127.0.0.1", "bash"]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    assert_eq!(text(&o.stderr), "Command not found\n");

    // gemcap://: the body on stdout, the status line on stderr, the Gemini status as ours.
    let url = |p: &str| format!("gemcap://127.0.0.1:{port}{p}");
    let o = our_client(&home, port, &[&url("/hello.gmi")]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stdout), "# Hello from alpha\n");
    assert_eq!(text(&o.stderr), "20 text/gemini; charset=utf-8\r\n");
    let o = our_client(&home, port, &[&url("/missing.gmi")]);
    assert_eq!(o.status.code(), Some(51), "{}", show(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(text(&o.stderr), "51 Not found\r\n");

    // `--ssh-config`: OpenSSH with that file alone shares the identity and the trust.
    let o = our_client(&home, port, &["--ssh-config", "127.0.0.1"]);
    assert!(o.status.success(), "{}", show(&o));
    let o = Command::new(support::SSH)
        .arg("-F")
        .arg(home.join(".ssh/config"))
        .args(["-T", "-o", "BatchMode=yes", "capsule@127.0.0.1", "env"])
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", show(&o), cap.srv.log());
    assert!(text(&o.stdout).contains("HOST=127.0.0.1\n") && text(&o.stdout).contains("LANG=C.UTF-8\n"), "{}", show(&o));
    assert_eq!(fs::read_to_string(home.join(".ssh/known_hosts")).unwrap(), known);
    assert_eq!(cap.accounts("alpha"), [account_name(&key)], "ssh used another key");

    // The same port, a new host key: refused loudly, nothing written.
    make_capsule(&keep.join("alpha"), "alpha", &["alpha.test"]);
    let new_key = keep.join("host_key");
    keygen(&new_key);
    drop(cap);
    let _srv = manual_server(&keep, port, &new_key);
    let o = our_client(&home, port, &["127.0.0.1"]);
    assert_eq!(o.status.code(), Some(255), "{}", show(&o));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    assert!(err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{err}");
    assert!(err.contains(&fingerprint(&new_key)), "{err}");
    assert_eq!(fs::read_to_string(home.join(".ssh/known_hosts")).unwrap(), known);
    assert!(!keep.join("alpha/accounts").exists(), "a command ran");
    drop(_srv);
    let _ = fs::remove_dir_all(&keep);
}

#[test]
fn session_and_startup_caps() {
    use std::io::Read;
    support::ensure_env();
    let cap = capsule_server(&["--max-sessions", "2", "--max-startups", "2"]);
    let home = cap.dir.join("home-caps");
    fs::create_dir(&home).unwrap();
    // Sessions per connection: the third channel open at once is refused.
    let s = sshbridge::runtime::capsule::Capsule::new("127.0.0.1").unwrap().home(&home).port(cap.srv.port).connect().unwrap();
    let a = s.open_session().unwrap();
    let b = s.open_session().unwrap();
    assert!(s.open_session().is_err(), "a third session opened");
    drop((a, b));
    std::thread::sleep(Duration::from_millis(200));
    let (out, _, status) = s.exec("cat /hello.gmi").unwrap().output().unwrap();
    assert_eq!((text(&out).as_str(), status), ("# Hello from alpha\n", Some(sshbridge::ExitStatus::Code(0))));
    // Connections not authenticated yet: two are let in (they get the server's version line),
    // a third is closed at once.
    let ident = |c: &mut std::net::TcpStream| {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8];
        let n = c.read(&mut buf).unwrap_or(0);
        text(&buf[..n])
    };
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut c = std::net::TcpStream::connect(cap.srv.addr()).unwrap();
        assert_eq!(ident(&mut c), "SSH-2.0-");
        held.push(c);
    }
    let mut c = std::net::TcpStream::connect(cap.srv.addr()).unwrap();
    assert_eq!(ident(&mut c), "", "a third unauthenticated connection was served");
    // The authenticated session is not counted and still works.
    let (out, _, _) = s.exec("cat /hello.gmi").unwrap().output().unwrap();
    assert_eq!(text(&out), "# Hello from alpha\n");
    drop(held);
}
