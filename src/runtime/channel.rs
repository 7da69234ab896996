//! A channel handle of the blocking API (RFC 4254 sections 5 and 6): `Read` gives remote
//! stdout (or the remote end of a TCP forward), `Write` feeds remote stdin, `read_stderr`
//! reads extended data type 1; session requests (env, pty-req, exec, shell, subsystem,
//! window-change, signal) wait for their answer. The handle is `Send + 'static`; several
//! channels of one connection work from different threads at once. Dropping it closes the
//! channel.

use crate::connection::ChannelOps;
use std::io::{self, Read, Write};

use parking_lot::MutexGuard;

use crate::client::{ChannelId, Phase};
use crate::connection::{ChanState, ExitStatus, Request};
use crate::error::Error;
use crate::runtime::driver::{Core, MAX_QUEUED};
use crate::runtime::session::Session;

/// Least room in the output queue for which `Write::write` queues part of a larger buffer.
const MIN_WRITE_TURN: usize = 32 * 1024;

/// Everything a command produced: (stdout, stderr, exit status).
pub type Output = (Vec<u8>, Vec<u8>, Option<ExitStatus>);

/// Most output of a stream nobody is reading that a `Channel` keeps beside the window.
const MAX_STASH: usize = crate::connection::channel::WINDOW as usize;

/// Terminal modes sent with a pty request (RFC 4254 section 8): a sane default set, as
/// OpenSSH sends for a cooked terminal: VINTR ^C, VERASE DEL, ICRNL, ISIG, ICANON, ECHO, ECHOE,
/// ECHOK, OPOST, ONLCR, TTY_OP_ISPEED/OSPEED 38400; then TTY_OP_END.
fn default_modes() -> Vec<u8> {
    let mut w = crate::wire::Writer::new();
    for (op, v) in [(1u8, 3u32), (3, 127), (36, 1), (50, 1), (51, 1), (53, 1), (54, 1), (55, 1), (70, 1), (72, 1), (128, 38400), (129, 38400)] {
        w.u8(op).u32(v);
    }
    w.u8(0);
    w.into_vec()
}

/// One channel of a `Session`.
pub struct Channel {
    session: Session,
    id: ChannelId,
    /// Output taken out of the SSH window before the application asked for it:
    /// [stdout, stderr].
    stash: [Vec<u8>; 2],
    /// The channel was handed to a bridge (`into_id`): dropping the handle leaves it open.
    handed_over: bool,
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        Error::ConnectionClosed(_) => io::ErrorKind::ConnectionReset,
        Error::Io { kind, .. } => *kind,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Channel {
    pub(crate) fn new(session: Session, id: ChannelId) -> Channel {
        Channel { session, id, stash: [Vec::new(), Vec::new()], handed_over: false }
    }

    /// Give the channel to another owner (the C API's bridge), which releases it when done.
    pub(crate) fn into_id(mut self) -> ChannelId {
        self.handed_over = true;
        self.id
    }

    /// Our channel number (for logs).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The session this channel belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn request(&mut self, req: Request) -> Result<(), Error> {
        let (id, deadline) = (self.id, self.session.io_deadline());
        let sh = self.session.shared();
        let mut g = sh.lock();
        let what = req.kind();
        let ticket = g.ep.request(id, req)?;
        sh.wake();
        let Some(ticket) = ticket else { return Ok(()) };
        let mut result = None;
        let _g = sh.wait_until(g, deadline, what, |c| {
            result = c.ep.take_request_result(id, ticket);
            result.is_some()
        })?;
        result.unwrap_or(Ok(()))
    }

    /// Set an environment variable for the command (RFC 4254 section 6.4); a refusal (the
    /// server's AcceptEnv does not list it) is an error.
    pub fn set_env(&mut self, name: &str, value: &str) -> Result<(), Error> {
        self.request(Request::Env { name: name.into(), value: value.into() })
    }

    /// `Config::env`: send every variable at once (one round trip), then collect the answers;
    /// a refused variable is logged and skipped (OpenSSH's SendEnv/SetEnv ask for no answer).
    pub(crate) fn send_env(&mut self, vars: &[(String, String)]) -> Result<(), Error> {
        if vars.is_empty() {
            return Ok(());
        }
        let (id, deadline) = (self.id, self.session.io_deadline());
        let sh = self.session.shared();
        let mut g = sh.lock();
        let mut tickets = Vec::with_capacity(vars.len());
        for (name, value) in vars {
            let ticket = g.ep.request(id, Request::Env { name: name.clone(), value: value.clone() })?;
            tickets.extend(ticket.map(|t| (t, name)));
        }
        sh.wake();
        let mut answers: Vec<Option<Result<(), Error>>> = tickets.iter().map(|_| None).collect();
        let _g = sh.wait_until(g, deadline, "env", |c| {
            for ((ticket, _), a) in tickets.iter().zip(answers.iter_mut()) {
                if a.is_none() {
                    *a = c.ep.take_request_result(id, *ticket);
                }
            }
            answers.iter().all(Option::is_some)
        })?;
        for ((_, name), a) in tickets.iter().zip(answers) {
            if let Some(Err(e)) = a {
                log::warn!(target: "sshbridge", "environment variable {name} not set: {e}");
            }
        }
        Ok(())
    }

    /// Ask for a pseudo-terminal of `term` type, `cols` x `rows` characters (section 6.2).
    pub fn request_pty(&mut self, term: &str, cols: u32, rows: u32) -> Result<(), Error> {
        self.request(Request::Pty { term: term.into(), cols, rows, width_px: 0, height_px: 0, modes: default_modes() })
    }

    /// Run `command` (section 6.5).
    pub fn exec(&mut self, command: &str) -> Result<(), Error> {
        self.request(Request::Exec(command.as_bytes().to_vec()))
    }

    /// Run a command given as bytes (no character set is implied).
    pub fn exec_bytes(&mut self, command: &[u8]) -> Result<(), Error> {
        self.request(Request::Exec(command.to_vec()))
    }

    /// Start the user's shell.
    pub fn shell(&mut self) -> Result<(), Error> {
        self.request(Request::Shell)
    }

    /// Start a subsystem, e.g. "sftp".
    pub fn subsystem(&mut self, name: &str) -> Result<(), Error> {
        self.request(Request::Subsystem(name.into()))
    }

    /// Tell the server the terminal changed size (section 6.7; no answer is expected).
    pub fn window_change(&mut self, cols: u32, rows: u32) -> Result<(), Error> {
        self.request(Request::WindowChange { cols, rows, width_px: 0, height_px: 0 })
    }

    /// Deliver a signal ("TERM", "INT", ...) to the remote process (section 6.9; servers may
    /// ignore it).
    pub fn signal(&mut self, name: &str) -> Result<(), Error> {
        self.request(Request::Signal(name.trim_start_matches("SIG").into()))
    }

    /// Move up to `limit` bytes of buffered output of one stream into `v` (out of the window, so
    /// the server keeps sending). Returns whether anything moved.
    fn drain_into(g: &mut Core, id: ChannelId, stderr: bool, v: &mut Vec<u8>, limit: usize) -> bool {
        let n = g.ep.channel(id).map_or(0, |c| if stderr { c.stderr_len() } else { c.stdout_len() }).min(limit);
        if n == 0 {
            return false;
        }
        let start = v.len();
        v.resize(start + n, 0);
        let got = g.ep.read(id, stderr, v.get_mut(start..).unwrap_or_default());
        v.truncate(start + got);
        got > 0
    }

    /// Stash one stream's buffered output, up to `MAX_STASH` per stream: past that a stream
    /// nobody reads blocks the command, like a pipe.
    fn stash(&mut self, g: &mut Core, stderr: bool) -> bool {
        let v = &mut self.stash[usize::from(stderr)];
        let room = MAX_STASH.saturating_sub(v.len());
        Self::drain_into(g, self.id, stderr, v, room)
    }

    fn read_stream(&mut self, stderr: bool, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mine = &mut self.stash[usize::from(stderr)];
        if !mine.is_empty() {
            let n = buf.len().min(mine.len());
            buf.get_mut(..n).unwrap_or_default().copy_from_slice(mine.get(..n).unwrap_or_default());
            mine.drain(..n);
            return Ok(n);
        }
        let (id, deadline) = (self.id, self.session.io_deadline());
        let session = self.session.clone();
        let sh = session.shared();
        let mut g: MutexGuard<'_, Core> = sh.lock();
        loop {
            if self.stash(&mut g, !stderr) {
                sh.wake();
            }
            let ch = g.ep.channel(id);
            let avail = ch.map_or(0, |c| if stderr { c.stderr_len() } else { c.stdout_len() });
            if avail > 0 {
                let n = g.ep.read(id, stderr, buf);
                sh.wake();
                return Ok(n);
            }
            // End of file only if the server said so; a connection that died is an error.
            if ch.is_none_or(|c| c.eof_received || c.close_received || c.state == ChanState::Closed) {
                return Ok(0);
            }
            if g.net_dead || g.ep.phase() == Phase::Dead {
                return Err(g.ep.error().cloned().unwrap_or_else(|| Error::ConnectionClosed("connection closed".into())));
            }
            if !sh.wait(&mut g, deadline) {
                return Err(Error::Timeout("reading did not finish in time".into()));
            }
        }
    }

    /// Read remote stderr.
    pub fn read_stderr(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_stream(true, buf)
    }

    /// Tell the remote end there is no more input (its stdin sees end of file).
    pub fn send_eof(&mut self) -> Result<(), Error> {
        let mut g = self.session.lock();
        g.ep.send_eof(self.id);
        drop(g);
        self.session.shared().wake();
        Ok(())
    }

    /// Close stdin, read and discard what is left of the output, and return how the command
    /// ended: `None` when the server closed the channel without reporting a status.
    pub fn wait(self) -> Result<Option<ExitStatus>, Error> {
        let (id, deadline) = (self.id, self.session.io_deadline());
        let sh = self.session.shared();
        let mut g = sh.lock();
        g.ep.send_eof(id);
        sh.wake();
        loop {
            let buffered = g.ep.channel(id).map_or(0, |c| c.stdout_len() + c.stderr_len());
            g.ep.discard(id, false);
            g.ep.discard(id, true);
            if g.ep.channel(id).is_none_or(|c| c.state == ChanState::Closed) {
                return Ok(g.ep.exit_status(id).cloned());
            }
            if g.net_dead || g.ep.phase() == Phase::Dead {
                return Err(g.ep.error().cloned().unwrap_or_else(|| Error::ConnectionClosed("connection closed".into())));
            }
            // Only when discarding may have queued a WINDOW_ADJUST: an unconditional wake
            // makes the driver run a pass and notify us at once, a busy loop for as long as
            // the command runs.
            if buffered > 0 {
                sh.wake();
            }
            if !sh.wait(&mut g, deadline) {
                return Err(Error::Timeout("waiting for the command to exit did not finish in time".into()));
            }
        }
    }

    /// Close stdin and collect everything: (stdout, stderr, exit status).
    pub fn output(mut self) -> Result<Output, Error> {
        let (id, deadline) = (self.id, self.session.io_deadline());
        let session = self.session.clone();
        let sh = session.shared();
        let mut g = sh.lock();
        g.ep.send_eof(id);
        sh.wake();
        loop {
            // Unbounded here: the caller asked for all of it.
            let [out, err] = &mut self.stash;
            let moved = Self::drain_into(&mut g, id, false, out, usize::MAX) | Self::drain_into(&mut g, id, true, err, usize::MAX);
            if moved {
                sh.wake();
            }
            if g.ep.channel(id).is_none_or(|c| c.state == ChanState::Closed) {
                let status = g.ep.exit_status(id).cloned();
                drop(g);
                let [out, err] = std::mem::take(&mut self.stash);
                return Ok((out, err, status));
            }
            if g.net_dead || g.ep.phase() == Phase::Dead {
                return Err(g.ep.error().cloned().unwrap_or_else(|| Error::ConnectionClosed("connection closed".into())));
            }
            if !sh.wait(&mut g, deadline) {
                return Err(Error::Timeout("collecting output did not finish in time".into()));
            }
        }
    }

    /// The exit status, once the server reported it.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.session.lock().ep.exit_status(self.id).cloned()
    }
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stream(false, buf).map_err(to_io)
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (id, deadline) = (self.id, self.session.io_deadline());
        let session = self.session.clone();
        let sh = session.shared();
        let mut g = sh.lock();
        loop {
            // Keep output moving so the server's window never fills with unread data.
            let moved = self.stash(&mut g, false) | self.stash(&mut g, true);
            if moved {
                sh.wake();
            }
            let gone = g.ep.channel(id).is_none_or(|c| c.state == ChanState::Closed || c.eof_sent || c.close_received);
            if gone {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "channel closed"));
            }
            if g.net_dead || g.ep.phase() == Phase::Dead {
                let e = g.ep.error().cloned().unwrap_or_else(|| Error::ConnectionClosed("connection closed".into()));
                return Err(to_io(e));
            }
            // Do not queue more than MAX_QUEUED ahead of the socket (a large write goes in
            // several turns rather than growing the output buffer to the window's 2 MiB).
            // Nor in slivers: wait for room for a full packet's worth (or for all of `buf`).
            let room = MAX_QUEUED.saturating_sub(g.ep.output_len());
            if room >= buf.len().min(MIN_WRITE_TURN) {
                let n = g.ep.send_data(id, buf.get(..buf.len().min(room)).unwrap_or(buf));
                if n > 0 {
                    sh.wake();
                    return Ok(n);
                }
            }
            if !sh.wait(&mut g, deadline) {
                return Err(to_io(Error::Timeout("writing did not finish in time".into())));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.session.io_deadline();
        let sh = self.session.shared();
        sh.wake();
        sh.wait_until(sh.lock(), deadline, "flushing", |c| c.ep.output_len() == 0).map(|_| ()).map_err(to_io)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        self.session.lock().ep.release_channel(self.id);
        self.session.shared().wake();
    }
}
