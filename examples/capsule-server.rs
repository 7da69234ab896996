//! `capsule-server`: an SSH Capsules server (the "SSH Capsules" seed, issue 14) on sshbridge's
//! server role; the policy lives in `sshbridge::runtime::capsule_server`.
//!
//! ```text
//! capsule-server --listen 127.0.0.1:1966 --host-key FILE [--host-key FILE]... CAPSULE_DIR
//!                [--capsule DIR]... [--idle-timeout 10s] [--any-user] [--max-sessions N]
//!                [--max-startups N]
//! ```
//!
//! Any public key gets in once its signature verified (proof of possession; the probe is
//! answered with PK_OK so that OpenSSH signs); passwords and keyboard-interactive are not
//! offered; users other than `capsule` are refused unless `--any-user`. The `HOST` env request
//! picks the capsule directory listing that name (else `CAPSULE_DIR`, the default). The client's
//! command must match the capsule's allow-list (no shell ever runs it); it runs with argv exec,
//! PATH = the capsule's `bin/` then /usr/bin:/bin, cwd `content/`, and only `HOST`, `IDENT`
//! (`<key type> <base64>`), `ACCOUNT_DIR` (`accounts/<fingerprint>/`, made on first use) and the
//! client's `LANG`/`TZ` in its environment; stdout, stderr and the exit status go back.
//! Anything else: `Command not found` on stderr and exit status 127. No pty (a pty-req is
//! ignored), no forwarding, no subsystems. The connection ends after `--idle-timeout` without a
//! packet from the client (`0` or `off`: never); `--max-sessions` caps the channels of a
//! connection, `--max-startups` the connections not yet authenticated. `--listen` with port 0
//! picks a free port; `listening on ADDR` is printed once the server accepts. One log line per
//! command on stderr; `SSHBRIDGE_LOG=info|debug|trace` adds the library's.

mod server_common;
use server_common::{fatal, pipe_child};

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sshbridge::connection::{ExitStatus, Request};
use sshbridge::runtime::capsule_server::{ensure_account, select, CapsuleDir};
use sshbridge::server::{Methods, Question};
use sshbridge::{Server, ServerChannel, ServerConfig};

/// The one user name of capsules.
const USER: &str = "capsule";
/// The variables a client may set (`HOST` selects the capsule; `LANG` and `TZ` are passed on).
const ENV: [&str; 3] = ["HOST", "LANG", "TZ"];

struct Args {
    listen: String,
    host_keys: Vec<String>,
    capsules: Vec<String>,
    idle_timeout: Option<Duration>,
    any_user: bool,
    max_sessions: usize,
    max_startups: usize,
}

const USAGE: &str = "usage: capsule-server --listen ADDR:PORT --host-key FILE [--host-key FILE]... CAPSULE_DIR \
                     [--capsule DIR]... [--idle-timeout 10s] [--any-user] [--max-sessions N] [--max-startups N]";

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

/// `10s`, `500ms`, `2m`, `1h` or plain seconds; `0` / `off`: no idle timeout.
fn parse_duration(s: &str) -> Option<Option<Duration>> {
    if s == "off" {
        return Some(None);
    }
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    Some((!d.is_zero()).then_some(d))
}

fn parse_args() -> Args {
    let mut a = Args {
        listen: String::new(),
        host_keys: vec![],
        capsules: vec![],
        idle_timeout: Some(Duration::from_secs(10)),
        any_user: false,
        max_sessions: sshbridge::server::DEFAULT_MAX_SESSIONS,
        max_startups: 10,
    };
    let mut default = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--listen" => a.listen = val(),
            "--host-key" => a.host_keys.push(val()),
            "--capsule" => a.capsules.push(val()),
            "--idle-timeout" => a.idle_timeout = parse_duration(&val()).unwrap_or_else(|| usage()),
            "--any-user" => a.any_user = true,
            "--max-sessions" => a.max_sessions = val().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage()),
            "--max-startups" => a.max_startups = val().parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage()),
            f if f.starts_with('-') => usage(),
            _ if default.is_none() => default = Some(flag),
            _ => usage(),
        }
    }
    let Some(default) = default else { usage() };
    if a.listen.is_empty() || a.host_keys.is_empty() {
        usage();
    }
    a.capsules.insert(0, default);
    a
}

fn main() {
    server_common::init("capsule-server");
    let args = parse_args();
    let host_keys = server_common::host_keys(&args.host_keys);
    let capsules: Vec<CapsuleDir> = args.capsules.iter().map(|d| CapsuleDir::load(d.as_ref()).unwrap_or_else(|e| fatal(d, e))).collect();
    let capsules = Arc::new(capsules);

    let mut config = ServerConfig::new(host_keys);
    config.core.auth.methods = Methods { publickey: true, password: false, keyboard_interactive: false };
    config.core.env_allow = ENV.iter().map(|s| s.to_string()).collect();
    config.core.idle_timeout = args.idle_timeout;
    config.core.max_channels = args.max_sessions;
    config.max_startups = args.max_startups;
    let any_user = args.any_user;
    // The probe (signed: false) is answered yes so that PK_OK goes out and the client signs;
    // a signed question comes only after the signature verified. Nothing else gets in.
    config.authenticate = Arc::new(move |q: &Question| match q {
        Question::PublicKey { user, .. } => any_user || user == USER,
        Question::Password { .. } | Question::KeyboardInteractive { .. } => false,
    });
    let server = Server::bind(&args.listen, config).unwrap_or_else(|e| fatal(&args.listen, e));
    println!("listening on {}", server.local_addr().unwrap_or_else(|e| fatal("address", e)));
    let _ = io::stdout().flush();
    loop {
        let conn = match server.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("capsule-server: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let capsules = capsules.clone();
        std::thread::spawn(move || {
            while let Some(ch) = conn.accept_channel() {
                let capsules = capsules.clone();
                std::thread::spawn(move || run_channel(ch, &capsules));
            }
            if let Some(e) = conn.error() {
                eprintln!("capsule-server: {}: connection ended: {e}", conn.peer_addr());
            }
        });
    }
}

fn not_found(ch: &ServerChannel) {
    let _ = ch.write_stderr(b"Command not found\n");
    ch.exit(&ExitStatus::Code(127));
}

fn run_channel(ch: ServerChannel, capsules: &[CapsuleDir]) {
    let peer = ch.connection().peer_addr();
    let Some(key) = ch.connection().auth_key() else {
        // Only publickey logins exist here; be safe anyway.
        return not_found(&ch);
    };
    let client_env = |name: &str| ch.env().iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let host = client_env("HOST");
    let Some(capsule) = select(capsules, host.as_deref()) else { return not_found(&ch) };
    let command = match ch.request() {
        Request::Exec(c) => Some(c.as_slice()),
        Request::Shell => None,
        _ => return not_found(&ch),
    };
    let shown = command.map_or_else(|| "(shell)".to_string(), |c| format!("{:?}", String::from_utf8_lossy(c)));
    let argv = match capsule.resolve(command, Some(&key)) {
        Ok(a) => a,
        Err(_) => {
            eprintln!("capsule-server: {peer} {} {}: refused {shown}", key.fingerprint(), capsule.root.display());
            return not_found(&ch);
        }
    };
    let account = match ensure_account(capsule, &key) {
        Ok((dir, made)) => {
            if made {
                eprintln!("capsule-server: account made: {}", dir.display());
            }
            dir
        }
        Err(e) => {
            let _ = ch.write_stderr(format!("capsule-server: no account directory: {e}\n").as_bytes());
            ch.exit(&ExitStatus::Code(1));
            return;
        }
    };
    let Some((program, rest)) = argv.split_first() else { return not_found(&ch) };
    let mut path = OsString::from(capsule.bin.as_os_str());
    path.push(":/usr/bin:/bin");
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env_clear()
        .env("PATH", path)
        .env("HOST", host.clone().or_else(|| capsule.hosts.first().cloned()).unwrap_or_default())
        .env("IDENT", key.to_openssh())
        .env("ACCOUNT_DIR", &account)
        .current_dir(&capsule.content)
        .process_group(0);
    for name in ["LANG", "TZ"] {
        if let Some(v) = client_env(name) {
            cmd.env(name, v);
        }
    }
    let ch = Arc::new(ch);
    let status = match run_piped(&ch, &mut cmd) {
        Ok(s) => server_common::exit_status(s),
        Err(e) => {
            let _ = ch.write_stderr(format!("capsule-server: cannot run the command: {e}\n").as_bytes());
            ExitStatus::Code(127)
        }
    };
    eprintln!("capsule-server: {peer} {} {}: ran {argv:?} for {shown}: {status:?}", key.fingerprint(), capsule.root.display());
    ch.exit(&status);
}

fn run_piped(ch: &Arc<ServerChannel>, cmd: &mut Command) -> io::Result<std::process::ExitStatus> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let [out, err] = pipe_child(ch, &mut child);
    // The connection ended (idle timeout, client gone): the command's process group goes too.
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let done = Arc::new(AtomicBool::new(false));
    let c = ch.clone();
    let d = done.clone();
    let watcher = std::thread::spawn(move || {
        while !d.load(Ordering::SeqCst) {
            if pgid > 0 && c.connection().error().is_some() {
                // SAFETY: kill(2) of the process group of our own child (made with process_group(0)).
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let status = child.wait();
    done.store(true, Ordering::SeqCst);
    let _ = out.join();
    let _ = err.join();
    let _ = watcher.join();
    status
}

