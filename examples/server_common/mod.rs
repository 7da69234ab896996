//! What the two example servers (`serve`, `capsule-server`) share: fatal errors, the
//! `SSHBRIDGE_LOG` logger, host keys from files, and a finished program's exit status as RFC
//! 4254 section 6.10 reports it.

use std::sync::{Arc, OnceLock};

use sshbridge::{ExitStatus, PrivateKey};

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
