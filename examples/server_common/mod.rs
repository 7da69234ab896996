//! What the two example servers (`serve`, `capsule-server`) share: fatal errors, the
//! `SSHBRIDGE_LOG` logger, host keys from files, a program's piped stdio joined to a channel
//! (RFC 4254 sections 5.2 and 5.2's extended data) and its exit status as section 6.10 reports it.

use std::io::{self, Read, Write};
use std::process::Child;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use sshbridge::{ExitStatus, PrivateKey, ServerChannel};

static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Print `PROGRAM: what: e` and exit 1.
pub fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{}: {what}: {e}", PROGRAM.get().copied().unwrap_or("server"));
    std::process::exit(1)
}

/// `SSHBRIDGE_LOG=info|debug|trace`: the library's log records on stderr.
struct StderrLog;
impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("{}: {} {}", PROGRAM.get().copied().unwrap_or("server"), r.level(), r.args());
    }
    fn flush(&self) {}
}

/// Name the program for messages and turn on logging when `SSHBRIDGE_LOG` asks.
pub fn init(program: &'static str) {
    let _ = PROGRAM.set(program);
    if let Ok(level) = std::env::var("SSHBRIDGE_LOG") {
        if log::set_logger(&StderrLog).is_ok() {
            log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Info));
        }
    }
}

/// Read the host keys (OpenSSH, PEM or Dropbear private key files, unencrypted).
pub fn host_keys(files: &[String]) -> Vec<Arc<PrivateKey>> {
    files
        .iter()
        .map(|f| {
            let data = std::fs::read(f).unwrap_or_else(|e| fatal(f, e));
            Arc::new(PrivateKey::from_bytes(&data, None).unwrap_or_else(|e| fatal(f, e)))
        })
        .collect()
}

/// How a child ended, as exit-status or exit-signal.
pub fn exit_status(s: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match s.signal() {
        Some(sig) => ExitStatus::Signal {
            name: sshbridge::connection::channel::signal_name(sig).unwrap_or("KILL").into(),
            core_dumped: s.core_dumped(),
            message: String::new(),
        },
        None => ExitStatus::Code(s.code().unwrap_or(255) as u32),
    }
}

/// Copy a program's output to the channel in chunks as large as a pipe gives (up to 256 KiB):
/// fewer, fuller packets than io::copy's 8 KiB.
pub fn pump(r: &mut impl Read, mut write: impl FnMut(&[u8]) -> io::Result<()>) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if write(buf.get(..n).unwrap_or_default()).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Join a child spawned with piped stdin, stdout and stderr to the channel: stdin from the
/// client until its EOF or the channel's end (that thread is not joined), stdout and stderr to
/// the client. Returns the two output threads, to be joined after the child exits.
pub fn pipe_child(ch: &Arc<ServerChannel>, child: &mut Child) -> [JoinHandle<()>; 2] {
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let c = ch.clone();
    std::thread::spawn(move || {
        if let Some(mut w) = stdin {
            let _ = io::copy(&mut &*c, &mut w);
        }
    });
    let c = ch.clone();
    let out = std::thread::spawn(move || {
        if let Some(mut r) = stdout {
            pump(&mut r, |d| (&*c).write_all(d));
        }
    });
    let c = ch.clone();
    let err = std::thread::spawn(move || {
        if let Some(mut r) = stderr {
            pump(&mut r, |d| c.write_stderr(d));
        }
    });
    [out, err]
}
