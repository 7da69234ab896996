//! The SSH Capsules client (the "SSH Capsules" seed; `sshbridge::runtime::capsule`):
//!
//! ```text
//! capsule [OPTIONS] HOST [COMMAND...]      run COMMAND (none: the capsule's default command)
//! capsule [OPTIONS] gemcap://HOST[:PORT]/PATH   run `gemini PATH`
//! capsule [OPTIONS] --ssh-config HOST      write the OpenSSH configuration for HOST
//!
//! OPTIONS: --home DIR (instead of $HOME)  --port N (instead of 1966)  --user U (instead of
//!          capsule)  --known-hosts FILE (repeatable; instead of ~/.ssh/known_hosts)
//! ```
//!
//! The first use makes `~/.ssh/<host>_cap_id_ed25519` and records the host key under
//! `[host]:1966`; a changed host key is refused with OpenSSH's warning. The remote stdout and
//! stderr go to ours (stderr first: a Gemini status line precedes the body), and we exit with
//! the remote status (128 + signal number for a signal; 255 when the connection failed or no
//! status came). Standard input is not forwarded (the command sees end of file): capsule
//! commands are requests; `scp`, `git` and `ssh` use the configuration `--ssh-config` writes.
//!
//! `--ssh-config` appends a `Match user capsule` block (Port 1966, publickey only,
//! `Include ~/.ssh/*_cap_config`) to `~/.ssh/config` once, writes `~/.ssh/<host>_cap_config`
//! (`Host`, `SetEnv HOST=`, `IdentityFile`, `IdentitiesOnly`, accept-new trust) and makes the
//! identity, so that `ssh capsule@HOST` works with nothing else. With `--home`, files are named
//! in full instead of with `~` (OpenSSH expands `~` from the password database, not `$HOME`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use sshbridge::runtime::capsule::{self, Capsule, HostConfigState};

const USAGE: &str = "usage: capsule [--home DIR] [--port N] [--user U] [--known-hosts FILE]... \
                     (HOST [COMMAND...] | gemcap://HOST[:PORT]/PATH | --ssh-config HOST)";

struct Args {
    home: Option<PathBuf>,
    port: Option<u16>,
    user: Option<String>,
    known_hosts: Vec<PathBuf>,
    ssh_config: bool,
    target: String,
    command: Vec<String>,
}

fn parse(mut args: Vec<String>) -> Result<Args, String> {
    let mut a = Args { home: None, port: None, user: None, known_hosts: Vec::new(), ssh_config: false, target: String::new(), command: Vec::new() };
    while args.first().is_some_and(|s| s.starts_with("--")) {
        let flag = args.remove(0);
        if flag == "--" {
            break;
        }
        if flag == "--ssh-config" {
            a.ssh_config = true;
            continue;
        }
        if args.is_empty() {
            return Err(format!("{flag} needs a value\n{USAGE}"));
        }
        let value = args.remove(0);
        match flag.as_str() {
            "--home" => a.home = Some(value.into()),
            "--port" => a.port = Some(value.parse().map_err(|_| format!("bad port {value:?}"))?),
            "--user" => a.user = Some(value),
            "--known-hosts" => a.known_hosts.push(value.into()),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if args.is_empty() {
        return Err(USAGE.into());
    }
    a.target = args.remove(0);
    a.command = args;
    Ok(a)
}

fn run(a: Args) -> Result<u8, Box<dyn std::error::Error>> {
    let (host, url_port, command) = if a.target.starts_with("gemcap://") {
        if !a.command.is_empty() {
            return Err("a gemcap:// address takes no command".into());
        }
        let (h, p, c) = capsule::gemcap(&a.target)?;
        (h, p, Some(c))
    } else {
        let c = (!a.command.is_empty()).then(|| a.command.join(" "));
        (a.target.clone(), None, c)
    };
    let mut cap = Capsule::new(&host)?;
    if let Some(home) = a.home {
        cap = cap.home(home);
    }
    if let Some(p) = a.port.or(url_port) {
        cap = cap.port(p);
    }
    if let Some(u) = a.user {
        cap = cap.user(u);
    }
    if !a.known_hosts.is_empty() {
        cap = cap.known_hosts_files(a.known_hosts);
    }

    if a.ssh_config {
        if command.is_some() {
            return Err("--ssh-config takes a host only".into());
        }
        let r = cap.write_ssh_config()?;
        let state = match r.host_config_state {
            HostConfigState::Written => "written",
            HostConfigState::Unchanged => "already up to date",
            HostConfigState::KeptExisting => "exists with other content, kept as it is",
        };
        println!("{}: {}", r.config.display(), if r.match_added { "capsule block added" } else { "capsule block already there" });
        println!("{}: {state}", r.host_config.display());
        println!("identity: {}", r.identity.display());
        return Ok(0);
    }

    let session = cap.connect()?;
    let ch = match &command {
        Some(c) => session.exec(c)?,
        None => session.shell()?,
    };
    let (out, err, status) = ch.output()?;
    std::io::stderr().write_all(&err)?;
    let mut stdout = std::io::stdout();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(status.map_or(255, |s| u8::try_from(s.shell_code()).unwrap_or(255)))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("capsule: {e}");
            ExitCode::from(255)
        }
    }
}
