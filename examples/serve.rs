//! `serve`: a small SSH server on sshbridge's server role.
//!
//! ```text
//! serve --listen 127.0.0.1:2222 --host-key FILE [--host-key FILE]... --authorized-keys FILE
//!       [--password-file FILE] [--sftp-server PATH] [--max-startups N] [--login-grace SECS]
//! ```
//!
//! Exec requests run with `/bin/sh -c` as the current user (stdin, stdout and stderr apart,
//! the exit status or the signal passed back); no command runs a shell; a pty-req gives the
//! program a terminal (window-change applied); the `sftp` subsystem pipes to the sftp-server
//! program given. Public keys come from an OpenSSH authorized_keys file, passwords from
//! `user:password` lines (password and keyboard-interactive). `--listen` with port 0 picks a
//! free port; the address is printed as `listening on ADDR` once the server accepts.

mod server_common;
use server_common::{fatal, pipe_child, pump};

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sshbridge::connection::{ExitStatus, Request};
use sshbridge::server::Question;
use sshbridge::{PublicKey, Server, ServerChannel, ServerConfig};

struct Args {
    listen: String,
    host_keys: Vec<String>,
    authorized_keys: Option<String>,
    password_file: Option<String>,
    sftp_server: Option<String>,
    max_startups: usize,
    login_grace: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: serve --listen ADDR:PORT --host-key FILE [--host-key FILE]... --authorized-keys FILE \
         [--password-file FILE] [--sftp-server PATH] [--max-startups N] [--login-grace SECS]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        listen: String::new(),
        host_keys: vec![],
        authorized_keys: None,
        password_file: None,
        sftp_server: None,
        max_startups: 10,
        login_grace: 120,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--listen" => a.listen = val(),
            "--host-key" => a.host_keys.push(val()),
            "--authorized-keys" => a.authorized_keys = Some(val()),
            "--password-file" => a.password_file = Some(val()),
            "--sftp-server" => a.sftp_server = Some(val()),
            "--max-startups" => a.max_startups = val().parse().unwrap_or_else(|_| usage()),
            "--login-grace" => a.login_grace = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.listen.is_empty() || a.host_keys.is_empty() {
        usage();
    }
    a
}

fn main() {
    server_common::init("serve");
    let args = parse_args();
    let host_keys = server_common::host_keys(&args.host_keys);
    let mut authorized: Vec<PublicKey> = Vec::new();
    if let Some(f) = &args.authorized_keys {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| fatal(f, e));
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match PublicKey::from_openssh_line(line) {
                Ok(k) => authorized.push(k),
                Err(e) => eprintln!("serve: {f}: skipped a line: {e}"),
            }
        }
    }
    let mut passwords: HashMap<String, String> = HashMap::new();
    if let Some(f) = &args.password_file {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| fatal(f, e));
        for line in text.lines() {
            if let Some((u, p)) = line.split_once(':') {
                passwords.insert(u.to_string(), p.to_string());
            }
        }
    }
    let mut config = ServerConfig::new(host_keys);
    config.core.auth.methods.password = !passwords.is_empty();
    config.core.auth.methods.keyboard_interactive = !passwords.is_empty();
    config.core.login_grace = Duration::from_secs(args.login_grace);
    config.max_startups = args.max_startups;
    config.authenticate = Arc::new(move |q: &Question| match q {
        Question::PublicKey { key, .. } => authorized.contains(key),
        Question::Password { user, password } => passwords.get(user).is_some_and(|p| p == password.as_str()),
        Question::KeyboardInteractive { user, responses } => {
            responses.len() == 1 && passwords.get(user).is_some_and(|p| p == responses[0].as_str())
        }
    });
    let server = Server::bind(&args.listen, config).unwrap_or_else(|e| fatal(&args.listen, e));
    println!("listening on {}", server.local_addr().unwrap_or_else(|e| fatal("address", e)));
    let _ = io::stdout().flush();
    let sftp = args.sftp_server.map(Arc::new);
    loop {
        let conn = match server.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let sftp = sftp.clone();
        std::thread::spawn(move || {
            while let Some(ch) = conn.accept_channel() {
                let sftp = sftp.clone();
                std::thread::spawn(move || run_channel(ch, sftp.as_deref().map(String::as_str)));
            }
        });
    }
}

/// The command a channel asked for, as a process.
fn command_for(ch: &ServerChannel, sftp: Option<&str>) -> Option<Command> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let mut cmd = match ch.request() {
        Request::Exec(c) => {
            let mut k = Command::new("/bin/sh");
            k.arg("-c").arg(OsStr::from_bytes(c));
            k
        }
        Request::Shell => {
            let mut k = Command::new(&shell);
            if ch.pty().is_some() {
                k.arg("-i");
            }
            k
        }
        Request::Subsystem(name) if name == "sftp" => Command::new(sftp?),
        _ => return None,
    };
    for (k, v) in ch.env() {
        cmd.env(k, v);
    }
    if let Some(home) = std::env::var_os("HOME") {
        cmd.current_dir(home);
    }
    Some(cmd)
}

fn run_channel(ch: ServerChannel, sftp: Option<&str>) {
    let Some(mut cmd) = command_for(&ch, sftp) else {
        let _ = ch.write_stderr(b"serve: request not supported\n");
        ch.exit(&ExitStatus::Code(127));
        return;
    };
    let ch = Arc::new(ch);
    let status = match ch.pty().cloned() {
        Some(Request::Pty { term, cols, rows, .. }) => run_with_pty(&ch, cmd.env("TERM", term), cols, rows),
        _ => run_piped(&ch, &mut cmd),
    };
    let status = match status {
        Ok(s) => server_common::exit_status(s),
        Err(e) => {
            let _ = ch.write_stderr(format!("serve: cannot run the command: {e}\n").as_bytes());
            ExitStatus::Code(127)
        }
    };
    ch.exit(&status);
}

fn run_piped(ch: &Arc<ServerChannel>, cmd: &mut Command) -> io::Result<std::process::ExitStatus> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let [out, err] = pipe_child(ch, &mut child);
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_requests(ch.clone(), pid, None, done.clone());
    let status = child.wait();
    // The watcher sees `done` within its poll interval; the exit status does not wait for it.
    done.store(true, Ordering::SeqCst);
    drop(watcher);
    let _ = out.join();
    let _ = err.join();
    status
}

fn run_with_pty(ch: &Arc<ServerChannel>, cmd: &mut Command, cols: u32, rows: u32) -> io::Result<std::process::ExitStatus> {
    let (mut master, mut slave) = (-1, -1);
    let ws = libc::winsize { ws_row: rows as u16, ws_col: cols as u16, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two descriptors we then own.
    if unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // Not inherited by this or any other session's programs (the child gets the terminal
        // as its stdio, which exec keeps).
        // SAFETY: F_SETFD on a descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    cmd.stdin(Stdio::from(slave.try_clone()?)).stdout(Stdio::from(slave.try_clone()?)).stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // The parent's copies of the terminal side close here (EOF reaches the reader).
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let master = std::fs::File::from(master);
    let mut writer = master.try_clone()?;
    let c = ch.clone();
    std::thread::spawn(move || {
        let _ = io::copy(&mut &*c, &mut writer);
    });
    let c = ch.clone();
    let mut reader = master.try_clone()?;
    let out = std::thread::spawn(move || {
        // EIO once the terminal's last user is gone.
        pump(&mut reader, |d| (&*c).write_all(d));
    });
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_requests(ch.clone(), child.id(), Some(master.as_raw_fd()), done.clone());
    let status = child.wait();
    done.store(true, Ordering::SeqCst);
    let _ = out.join();
    // The watcher may still apply a window-change to the master: keep it open until it ends.
    let _ = watcher.join();
    drop(master);
    status
}

/// Apply the client's signal and window-change requests until the program ends; when the
/// client goes away from a terminal session, hang it up (SIGHUP to the session), as sshd does.
fn watch_requests(ch: Arc<ServerChannel>, pid: u32, pty: Option<i32>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut hung_up = false;
        while !done.load(Ordering::SeqCst) {
            if pty.is_some() && !hung_up && ch.is_closed() {
                hung_up = true;
                // SAFETY: the child leads its own session (setsid): its group is its pid.
                unsafe { libc::kill(-(pid as i32), libc::SIGHUP) };
            }
            for r in ch.take_requests() {
                match r {
                    Request::Signal(name) => {
                        let sig = sshbridge::connection::channel::signal_number(&name);
                        if sig != 0 {
                            // SAFETY: a plain kill(2) of our own child.
                            unsafe { libc::kill(pid as i32, sig) };
                        }
                    }
                    Request::WindowChange { cols, rows, .. } => {
                        if let Some(fd) = pty {
                            let ws = libc::winsize { ws_row: rows as u16, ws_col: cols as u16, ws_xpixel: 0, ws_ypixel: 0 };
                            // SAFETY: TIOCSWINSZ on the pty master we hold open.
                            unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
                        }
                    }
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

