//! The session clients of the matrix (ssh 9.2/10.0, dbclient, plink, libssh2, libssh, paramiko,
//! asyncssh): how each is invoked for an authentication method, a pty and a command, what it
//! reports for an exit status or signal, and the cases run with each.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::support::{self, PASSWORD, USER};
use super::{cmd, must, run, Ctx, Input, Job, Outcome, Run, Srv, BIG, BIG_TIMEOUT, CASE_TIMEOUT};

pub const PLINK: &str = "/usr/bin/plink";
pub const PUTTYGEN: &str = "/usr/bin/puttygen";
pub const VENV_PYTHON: &str = "/opt/sshbridge-venv/bin/python";
const CC: &str = "/usr/bin/cc";
const WRONG_PASSWORD: &str = "not-the-password";

/// Install what the clients need (scripts/install-deps.sh) when any of it is missing.
pub fn ensure_clients() {
    let needed = [
        PLINK,
        PUTTYGEN,
        VENV_PYTHON,
        CC,
        "/usr/include/libssh/libssh.h",
        "/usr/include/libssh2.h",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    let venv_ok = || {
        Command::new(VENV_PYTHON)
            .args(["-c", "import paramiko, asyncssh"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if missing.is_empty() && venv_ok() {
        return;
    }
    let script = super::manifest().join("scripts/install-deps.sh");
    eprintln!(
        "interop_server: missing {missing:?} (or the venv's modules); running {}",
        script.display()
    );
    let lock = std::env::temp_dir().join("sshbridge-install-deps.lock");
    must(
        Command::new(support::FLOCK)
            .arg(&lock)
            .arg("bash")
            .arg(&script),
    );
}

/// Compile the C clients, write the askpass scripts and dbclient's known_hosts.
pub fn prepare(ctx: &Ctx) {
    let src = super::manifest().join("tests/clients");
    for (name, lib) in [("libssh2_client", "-lssh2"), ("libssh_client", "-lssh")] {
        must(
            Command::new(CC)
                .args([
                    "-std=c99",
                    "-D_POSIX_C_SOURCE=200809L",
                    "-O2",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-o",
                ])
                .arg(ctx.dir.join(name))
                .arg(src.join(format!("{name}.c")))
                .arg(lib),
        );
    }
    for (name, pw) in [("askpass-good", PASSWORD), ("askpass-bad", WRONG_PASSWORD)] {
        let p = ctx.dir.join(name);
        fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' '{pw}'\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Dropbear's known_hosts names the host without the port.
    let dotssh = ctx.dir.join("dbhome/.ssh");
    fs::create_dir_all(&dotssh).unwrap();
    let kh: String = ctx
        .srv
        .iter()
        .map(|s| format!("127.0.0.1 {}\n", s.host_line))
        .collect();
    fs::write(dotssh.join("known_hosts"), kh).unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Client {
    Ssh92,
    Ssh10,
    Dbclient,
    Plink,
    Libssh2,
    Libssh,
    Paramiko,
    Asyncssh,
}

impl Client {
    pub const ALL: [Client; 8] = [
        Client::Ssh92,
        Client::Ssh10,
        Client::Dbclient,
        Client::Plink,
        Client::Libssh2,
        Client::Libssh,
        Client::Paramiko,
        Client::Asyncssh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::Ssh92 => "ssh-9.2",
            Client::Ssh10 => "ssh-10.0",
            Client::Dbclient => "dbclient-2022.83",
            Client::Plink => "plink-0.78",
            Client::Libssh2 => "libssh2-1.10",
            Client::Libssh => "libssh-0.10",
            Client::Paramiko => "paramiko-4.0",
            Client::Asyncssh => "asyncssh-2.21",
        }
    }

    /// Clients that write a status file (`-s`) instead of exiting with the remote status.
    fn has_status_file(self) -> bool {
        matches!(
            self,
            Client::Libssh2 | Client::Libssh | Client::Paramiko | Client::Asyncssh
        )
    }
}

/// Client key files (`id_<file>` in the run dir, plus `.db` and `.ppk` twins).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    Ed25519,
    Ecdsa,
    /// The RSA key, signing with rsa-sha2-256 ...
    Rsa256,
    /// ... or with rsa-sha2-512 (same file).
    Rsa512,
    /// An ed25519 key that is not authorised.
    Stranger,
}

impl Key {
    pub const FILES: [Key; 4] = [Key::Ed25519, Key::Ecdsa, Key::Rsa256, Key::Stranger];

    pub fn file(self) -> &'static str {
        match self {
            Key::Ed25519 => "ed25519",
            Key::Ecdsa => "ecdsa",
            Key::Rsa256 | Key::Rsa512 => "rsa",
            Key::Stranger => "stranger",
        }
    }

    fn forced_alg(self) -> Option<&'static str> {
        match self {
            Key::Rsa256 => Some("rsa-sha2-256"),
            Key::Rsa512 => Some("rsa-sha2-512"),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    Key(Key),
    Password,
    WrongPassword,
}

/// One invocation: which server, how to log in, pty, debug output, command (None: shell).
pub struct Req<'a> {
    pub srv: &'a Srv,
    pub auth: Auth,
    pub pty: bool,
    pub verbose: bool,
    pub command: Option<&'a str>,
    pub status_file: Option<&'a Path>,
}

/// The command line for `client`, or why the client cannot do `req`.
pub fn command(ctx: &Ctx, client: Client, req: &Req) -> Result<Command, String> {
    let port = req.srv.server.port.to_string();
    let mut c;
    match client {
        Client::Ssh92 | Client::Ssh10 => {
            c = cmd(if client == Client::Ssh92 {
                support::SSH
            } else {
                support::SSH10
            });
            c.args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o"])
                .arg(format!(
                    "UserKnownHostsFile={}",
                    req.srv.known_hosts.display()
                ))
                .args([
                    "-o",
                    "GlobalKnownHostsFile=/dev/null",
                    "-o",
                    "UpdateHostKeys=no",
                ])
                .args([
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "IdentityAgent=none",
                    "-o",
                    "IdentitiesOnly=yes",
                ])
                .args(["-p", &port, if req.pty { "-tt" } else { "-T" }]);
            if req.verbose {
                c.arg("-vv");
            }
            match req.auth {
                Auth::Key(k) => {
                    c.args([
                        "-o",
                        "BatchMode=yes",
                        "-o",
                        "PreferredAuthentications=publickey",
                        "-i",
                    ])
                    .arg(ctx.key(k, ""));
                    if let Some(alg) = k.forced_alg() {
                        c.arg("-o").arg(format!("PubkeyAcceptedAlgorithms={alg}"));
                    }
                }
                Auth::Password | Auth::WrongPassword => {
                    let askpass = if req.auth == Auth::Password {
                        "askpass-good"
                    } else {
                        "askpass-bad"
                    };
                    c.args(["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no"])
                        .args([
                            "-o",
                            "PreferredAuthentications=password",
                            "-o",
                            "NumberOfPasswordPrompts=1",
                        ])
                        .env("SSH_ASKPASS", ctx.dir.join(askpass))
                        .env("SSH_ASKPASS_REQUIRE", "force")
                        .env("DISPLAY", ":0");
                }
            }
            c.arg(format!("{USER}@127.0.0.1"));
        }
        Client::Dbclient => {
            // HOME holds .ssh/known_hosts; DROPBEAR_PASSWORD is always set so that it never
            // tries to prompt (it would spin on a missing terminal).
            let mut args: Vec<String> = vec!["-p".into(), port.clone()];
            args.push(if req.pty { "-t" } else { "-T" }.into());
            let password = match req.auth {
                Auth::Key(Key::Rsa512) => {
                    return Err(
                        "Dropbear 2022.83 has no rsa-sha2-512 (only rsa-sha2-256 and ssh-rsa)"
                            .into(),
                    )
                }
                Auth::Key(k) => {
                    args.push("-i".into());
                    args.push(ctx.key(k, ".db").display().to_string());
                    WRONG_PASSWORD
                }
                Auth::Password => PASSWORD,
                Auth::WrongPassword => WRONG_PASSWORD,
            };
            args.push(format!("{USER}@127.0.0.1"));
            args.extend(req.command.map(String::from));
            if req.pty {
                // dbclient asks for a pty only when its own stdin is a terminal: script(1)
                // gives it one (and passes its exit code on with -e).
                let line = std::iter::once(support::DBCLIENT.to_owned())
                    .chain(args)
                    .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
                    .collect::<Vec<_>>()
                    .join(" ");
                c = cmd("/usr/bin/script");
                c.args(["-qec", &line, "/dev/null"]);
            } else {
                c = cmd(support::DBCLIENT);
                c.args(args);
            }
            c.env("HOME", ctx.dir.join("dbhome"))
                .env("DROPBEAR_PASSWORD", password);
            return Ok(c);
        }
        Client::Plink => {
            c = cmd(PLINK);
            c.args([
                "-ssh",
                "-batch",
                "-noagent",
                "-P",
                &port,
                "-l",
                USER,
                "-hostkey",
                &req.srv.fingerprint,
            ])
            .arg(if req.pty { "-t" } else { "-T" });
            if req.verbose {
                c.arg("-v");
            }
            match req.auth {
                Auth::Key(Key::Rsa256) => {
                    return Err("PuTTY 0.78 cannot be told the RSA signature algorithm (it takes rsa-sha2-512 when the server lists it)".into())
                }
                Auth::Key(k) => {
                    c.arg("-i").arg(ctx.key(k, ".ppk"));
                }
                Auth::Password => {
                    c.args(["-pw", PASSWORD]);
                }
                Auth::WrongPassword => {
                    c.args(["-pw", WRONG_PASSWORD]);
                }
            }
            c.arg("127.0.0.1");
        }
        Client::Libssh2 | Client::Libssh | Client::Paramiko | Client::Asyncssh => {
            c = match client {
                Client::Libssh2 => cmd(&ctx.libssh2),
                Client::Libssh => cmd(&ctx.libssh),
                _ => {
                    let mut c = cmd(&ctx.python);
                    let script = if client == Client::Paramiko {
                        "paramiko_client.py"
                    } else {
                        "asyncssh_client.py"
                    };
                    c.arg(super::manifest().join("tests/clients").join(script));
                    c
                }
            };
            c.args(["-p", &port, "-u", USER, "-k", &req.srv.host_line]);
            if req.pty {
                c.arg("-t");
            }
            if let Some(s) = req.status_file {
                c.arg("-s").arg(s);
            }
            match req.auth {
                Auth::Key(k) => {
                    if client == Client::Libssh2 && k.forced_alg().is_some() {
                        return Err("libssh2 1.10 signs RSA only with ssh-rsa (SHA-1) and cannot be told otherwise".into());
                    }
                    c.arg("-i").arg(ctx.key(k, ""));
                    if let Some(alg) = k.forced_alg() {
                        c.args(["-a", alg]);
                    }
                }
                Auth::Password => {
                    c.args(["-P", PASSWORD]);
                }
                Auth::WrongPassword => {
                    c.args(["-P", WRONG_PASSWORD]);
                }
            }
        }
    }
    if let Some(command) = req.command {
        c.arg(command);
    }
    Ok(c)
}

/// What the client reported about how the remote command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Status(i32),
    Signal(String),
    Nothing,
}

fn report(client: Client, r: &Run, status_file: &Path) -> Result<Report, String> {
    if !client.has_status_file() {
        return Ok(r.code.map(Report::Status).unwrap_or(Report::Nothing));
    }
    if r.code != Some(0) {
        return Err(format!("client failed: {}", r.describe()));
    }
    let text = fs::read_to_string(status_file).unwrap_or_default();
    let line = text.lines().next().unwrap_or("");
    Ok(if let Some(sig) = line.strip_prefix("exit-signal ") {
        Report::Signal(sig.to_owned())
    } else if let Some(n) = line
        .strip_prefix("exit-status ")
        .and_then(|n| n.parse().ok())
    {
        Report::Status(n)
    } else {
        Report::Nothing
    })
}

/// What each client reports for a command killed by SIGTERM (measured, then pinned).
pub fn signal_report(client: Client) -> Report {
    match client {
        // OpenSSH exits 255 (its own failure code) and prints nothing about the signal.
        Client::Ssh92 | Client::Ssh10 => Report::Status(255),
        // dbclient ignores exit-signal and exits 0.
        Client::Dbclient => Report::Status(0),
        // PuTTY turns exit-signal into exit code 128 (it does not map names to numbers).
        Client::Plink => Report::Status(128),
        Client::Libssh2 | Client::Libssh | Client::Asyncssh => Report::Signal("TERM".into()),
        // paramiko has no exit-signal handling: recv_exit_status() stays -1.
        Client::Paramiko => Report::Status(-1),
    }
}

/// The cases, in table column order.
#[derive(Clone, Copy, Debug)]
enum Case {
    Exit(i32),
    Signal,
    Stderr,
    Big,
    Pk(Key),
    Password,
    WrongKey,
    WrongPassword,
    StrictKex,
    Pty,
    Shell,
    HostKey(usize),
}

impl Case {
    const ALL: [Case; 18] = [
        Case::Exit(0),
        Case::Exit(1),
        Case::Exit(255),
        Case::Signal,
        Case::Stderr,
        Case::Big,
        Case::Pk(Key::Ed25519),
        Case::Pk(Key::Ecdsa),
        Case::Pk(Key::Rsa256),
        Case::Pk(Key::Rsa512),
        Case::Password,
        Case::WrongKey,
        Case::WrongPassword,
        Case::StrictKex,
        Case::Pty,
        Case::Shell,
        Case::HostKey(1),
        Case::HostKey(2),
    ];

    fn col(self) -> &'static str {
        match self {
            Case::Exit(0) => "exit 0",
            Case::Exit(1) => "exit 1",
            Case::Exit(_) => "exit 255",
            Case::Signal => "signal",
            Case::Stderr => "stderr apart",
            Case::Big => "64MiB",
            Case::Pk(Key::Ed25519) => "ed25519",
            Case::Pk(Key::Ecdsa) => "ecdsa-p256",
            Case::Pk(Key::Rsa256) => "rsa-sha2-256",
            Case::Pk(_) => "rsa-sha2-512",
            Case::Password => "password",
            Case::WrongKey => "wrong key refused",
            Case::WrongPassword => "wrong pw refused",
            Case::StrictKex => "strict kex",
            Case::Pty => "pty",
            Case::Shell => "shell",
            Case::HostKey(1) => "host key ecdsa",
            Case::HostKey(_) => "host key rsa",
        }
    }
}

pub fn jobs<'a>() -> Vec<Job<'a>> {
    let mut v = Vec::new();
    for client in Client::ALL {
        for case in Case::ALL {
            v.push(Job {
                row: client.name().to_owned(),
                col: case.col(),
                heavy: matches!(case, Case::Big),
                run: Box::new(move |ctx: &Ctx| one(ctx, client, case)),
            });
        }
    }
    v
}

fn check(ok: bool, what: &str, r: &Run) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {}", r.describe()))
    }
}

/// Run one case; `Err` is a failure, `Ok(Outcome)` an ok or a skip.
/// ssh 9.2, ed25519 key, `exit 0` on every server (each host key type).
pub fn smoke(ctx: &Ctx) -> Result<(), String> {
    for i in 0..ctx.srv.len() {
        let case = if i == 0 {
            Case::Exit(0)
        } else {
            Case::HostKey(i)
        };
        if let Outcome::Fail(why) = one(ctx, Client::Ssh92, case) {
            return Err(format!(
                "server {i} (port {}): {why}",
                ctx.srv[i].server.port
            ));
        }
    }
    Ok(())
}

fn one(ctx: &Ctx, client: Client, case: Case) -> Outcome {
    match one_inner(ctx, client, case) {
        Ok(o) => o,
        Err(why) => Outcome::Fail(why),
    }
}

fn one_inner(ctx: &Ctx, client: Client, case: Case) -> Result<Outcome, String> {
    let status_file = ctx.scratch("status");
    let mut req = Req {
        srv: &ctx.srv[0],
        auth: Auth::Key(Key::Ed25519),
        pty: false,
        verbose: false,
        command: Some("echo auth-ok"),
        status_file: Some(&status_file),
    };
    let mut input = Input::Null;
    let mut timeout = CASE_TIMEOUT;
    let mut note = String::new();
    let command_owned;
    match case {
        Case::Exit(n) => {
            command_owned = format!("echo exit-marker; exit {n}");
            req.command = Some(&command_owned);
        }
        Case::Signal => req.command = Some("echo sig-marker; kill -TERM $$"),
        Case::Stderr => req.command = Some("echo to-out; echo to-err >&2"),
        Case::Big => {
            req.command = Some("cat");
            input = Input::File(ctx.big.clone());
            timeout = BIG_TIMEOUT;
        }
        Case::Pk(k) => {
            req.auth = Auth::Key(k);
            if k == Key::Rsa256 && client == Client::Dbclient {
                note = "dbclient's only RSA signature; not forced".into();
            }
            if k == Key::Rsa512 && client == Client::Plink {
                note = "PuTTY's choice when offered; not forced".into();
            }
        }
        Case::Password => req.auth = Auth::Password,
        Case::WrongKey => req.auth = Auth::Key(Key::Stranger),
        Case::WrongPassword => req.auth = Auth::WrongPassword,
        Case::StrictKex => {
            if !matches!(client, Client::Ssh92 | Client::Ssh10 | Client::Plink) {
                return Ok(Outcome::Skip(
                    "the client does not show the negotiated kex extensions".into(),
                ));
            }
            req.verbose = true;
        }
        Case::Pty => {
            req.pty = true;
            req.command = Some("tty");
        }
        Case::Shell => {
            req.command = None;
            input = Input::Bytes(b"echo hi; exit 3\n".to_vec());
        }
        Case::HostKey(i) => req.srv = &ctx.srv[i],
    }
    let c = match command(ctx, client, &req) {
        Ok(c) => c,
        Err(why) => return Ok(Outcome::Skip(why)),
    };
    let r = run(c, input, timeout);
    check(!r.timed_out, "timed out", &r)?;
    // Refused means: the client got as far as authentication and was turned away there (not a
    // connection or host key failure, which would make a dead server look like a refusal).
    let refused = |r: &Run| -> Result<(), String> {
        let any = |needles: &[&str]| needles.iter().any(|n| r.err.contains(n));
        let said_no = match client {
            // The helper programs exit 2 only when authentication failed.
            Client::Libssh2 | Client::Libssh | Client::Paramiko | Client::Asyncssh => {
                r.code == Some(2)
            }
            Client::Ssh92 | Client::Ssh10 => r.code == Some(255) && any(&["Permission denied"]),
            Client::Plink => {
                r.code == Some(1)
                    && any(&[
                        "refused our key",
                        "Access denied",
                        "not accepted",
                        "No supported authentication",
                    ])
            }
            // dbclient exits 0 when the server gives up on it ("exited: Disconnect received").
            Client::Dbclient => {
                any(&["exited:"]) && !any(&["Connect failed", "host key", "Bad hostkey"])
            }
        };
        check(
            said_no && !r.stdout().contains("auth-ok"),
            "login was not refused",
            r,
        )
    };
    match case {
        Case::Exit(n) => {
            check(r.stdout() == "exit-marker\n", "stdout", &r)?;
            let got = report(client, &r, &status_file)?;
            check(
                got == Report::Status(n),
                &format!("reported {got:?}, want exit status {n}"),
                &r,
            )?;
        }
        Case::Signal => {
            check(r.stdout() == "sig-marker\n", "stdout", &r)?;
            let got = report(client, &r, &status_file)?;
            let want = signal_report(client);
            check(got == want, &format!("reported {got:?}, want {want:?}"), &r)?;
            note = format!("reports {got:?}");
        }
        Case::Stderr => {
            check(r.stdout() == "to-out\n", "stdout must hold only stdout", &r)?;
            check(
                r.err.contains("to-err\n"),
                "stderr must hold the remote stderr",
                &r,
            )?;
            check(
                report(client, &r, &status_file)? == Report::Status(0),
                "status",
                &r,
            )?;
        }
        Case::Big => {
            check(
                r.out_len == BIG && r.out_sha == ctx.big_sha,
                "64 MiB not echoed byte-exact",
                &r,
            )?;
            check(
                report(client, &r, &status_file)? == Report::Status(0),
                "status",
                &r,
            )?;
            let mibs = BIG as f64 / (1 << 20) as f64 / r.took.as_secs_f64();
            super::say!(
                "    {} 64MiB: {:.1?} ({mibs:.0} MiB/s)",
                client.name(),
                r.took
            );
        }
        Case::HostKey(2)
            if client == Client::Libssh2
                && r.err.contains("Unable to exchange encryption keys") =>
        {
            return Ok(Outcome::Skip(
                "libssh2 1.10 knows only ssh-rsa (SHA-1) RSA host key signatures; the server offers rsa-sha2-256/512: handshake fails".into(),
            ));
        }
        Case::Pk(_) | Case::Password | Case::HostKey(_) => {
            check(r.stdout() == "auth-ok\n", "login", &r)?;
            check(
                report(client, &r, &status_file)? == Report::Status(0),
                "status",
                &r,
            )?;
        }
        Case::WrongKey | Case::WrongPassword => {
            refused(&r)?;
            if client == Client::Dbclient {
                note =
                    "dbclient exits 0 when refused; checked: no output and \"exited:\" on stderr"
                        .into();
            }
        }
        Case::StrictKex => {
            check(r.stdout() == "auth-ok\n", "login", &r)?;
            let seen = if client == Client::Plink {
                r.err.contains("Enabling strict key exchange semantics")
            } else {
                // The line after "peer server KEXINIT proposal" lists the server's kex names.
                r.err
                    .split("peer server KEXINIT proposal")
                    .nth(1)
                    .and_then(|rest| rest.lines().find(|l| l.contains("KEX algorithms:")))
                    .is_some_and(|l| l.contains("kex-strict-s-v00@openssh.com"))
            };
            check(seen, "strict kex not seen in the client's debug output", &r)?;
            if client == Client::Ssh10 {
                // OpenSSH 10.0 lists the ML-KEM hybrid first, and the server takes the client's
                // first choice it offers: the whole ssh-10.0 row runs under it.
                check(
                    r.err.contains("kex: algorithm: mlkem768x25519-sha256"),
                    "ssh 10.0 did not negotiate mlkem768x25519-sha256",
                    &r,
                )?;
                note = "kex mlkem768x25519-sha256".into();
            }
        }
        Case::Pty => {
            let out = r.stdout();
            // (Under script(1) the terminal echoes its empty stdin as "^@", before or after the
            // command's line depending on timing.)
            let cleaned = out.replace("^@", "");
            let line = cleaned.trim();
            let pts = line
                .strip_prefix("/dev/pts/")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            check(pts, "tty must print /dev/pts/N", &r)?;
            if client == Client::Dbclient {
                note =
                    "under script(1), which gives dbclient the terminal it needs to ask for a pty"
                        .into();
            }
            check(
                report(client, &r, &status_file)? == Report::Status(0),
                "status",
                &r,
            )?;
        }
        Case::Shell => {
            check(
                r.stdout().lines().any(|l| l.trim() == "hi"),
                "shell output",
                &r,
            )?;
            let got = report(client, &r, &status_file)?;
            check(
                got == Report::Status(3),
                &format!("reported {got:?}, want 3"),
                &r,
            )?;
        }
    }
    let _ = fs::remove_file(&status_file);
    Ok(Outcome::Ok(note))
}
