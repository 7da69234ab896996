//! The C API's socketpair bridge: one session channel (RFC 4254 section 5.2 data and extended
//! data, 5.3 EOF/CLOSE) joined to two socketpairs whose other ends the application reads and
//! writes. It is a `Bridge` of the connection's one driver thread (`driver`), so each
//! `cyg_dropbear_ssh_connect` has exactly one thread. Flow control in both directions is the
//! SSH window on one side and the socket buffers on the other, so memory per connection stays
//! bounded.

use crate::connection::ChannelOps;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::{ChannelId, Client, Phase};
use crate::connection::{ChanState, ExitStatus};
use crate::error::Error;
use crate::runtime::driver::{offer_write, Bridge, Offered, Pass, Step, MAX_QUEUED};
use crate::runtime::sys::Ready;

/// Largest read from the application in one step (one packet, read straight into it).
const APP_READ: usize = 32 * 1024;
/// After close(h, 0), how long the worker keeps trying to say goodbye.
const DETACHED_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Deliver everything, send EOF, wait for the command to exit (until the deadline).
    Wait(Instant),
    /// Send EOF and CLOSE, disconnect, and go.
    NoWait,
}

/// State shared between the application thread and the worker.
#[derive(Debug, Default)]
pub struct Shared {
    pub close: Option<CloseMode>,
    pub exit: Option<ExitStatus>,
    pub error: Option<Error>,
    pub finished: bool,
}


/// One direction of remote output toward the application: written as it is decrypted when the
/// socket takes it (`offer`), else from the channel's buffer (`pump`, no copy in between).
struct Outflow {
    sock: UnixStream,
    stderr: bool,
    /// Output was left in the channel's buffer at the last `pump` (the socket was full).
    pending: bool,
    /// The application closed its reading end: discard from now on.
    broken: bool,
    shut: bool,
}

impl Outflow {
    fn new(sock: UnixStream, stderr: bool) -> Outflow {
        Outflow { sock, stderr, pending: false, broken: false, shut: false }
    }

    fn has_pending(&self) -> bool {
        self.pending
    }

    /// Move buffered channel output into the socket; returns whether progress was made.
    fn pump(&mut self, client: &mut Client, id: ChannelId) -> bool {
        let mut progress = false;
        loop {
            if self.broken {
                client.discard(id, self.stderr);
                self.pending = false;
                return progress;
            }
            let data = client.peek(id, self.stderr);
            if data.is_empty() {
                self.pending = false;
                return progress;
            }
            match self.sock.write(data) {
                Ok(n) => {
                    client.consume(id, self.stderr, n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = true;
                    return progress;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EPIPE or similar: nobody reads. Keep the window moving so the remote
                    // command is not stuck and its exit status still arrives.
                    self.broken = true;
                    progress = true;
                }
            }
        }
    }

    /// Write data just received, whose channel buffer is empty, straight to the socket (issue
    /// 16: no stop in the buffer); returns how much went. What did not is buffered by the
    /// channel and goes out with `pump` (or is discarded there once nobody reads).
    fn offer(&mut self, data: &[u8]) -> usize {
        if self.broken || self.shut {
            return 0;
        }
        match offer_write(&mut self.sock, data) {
            Offered::Took(n) => {
                self.pending |= n < data.len();
                n
            }
            Offered::Full => {
                self.pending = true;
                0
            }
            // Nobody reads: `pump` discards from now on (as it does on this error).
            Offered::Broken => {
                self.broken = true;
                0
            }
        }
    }

    /// Signal end of file to the application once everything is delivered.
    fn finish(&mut self) {
        if !self.shut && !self.has_pending() {
            let _ = self.sock.shutdown(Shutdown::Write);
            self.shut = true;
        }
    }
}

/// The bridge of one C API connection.
pub struct StdioBridge {
    id: ChannelId,
    out: Outflow,
    err: Outflow,
    shared: Arc<Mutex<Shared>>,
    app_eof: bool,
    /// Where input nobody will receive is read to be dropped (allocated when first needed:
    /// uploads are read straight into packets).
    ibuf: Vec<u8>,
    close: Option<CloseMode>,
    detached_deadline: Option<Instant>,
    out_hup: bool,
    err_hup: bool,
    discarded: u64,
    /// The application's socket may have input: not known to be empty since poll() last said
    /// it was readable (or close() was called). An idle session then builds no packet to read
    /// into (that reserves a whole packet of output buffer: 32 KiB of RSS per idle session)
    /// and makes no read that would block.
    app_readable: bool,
}

impl StdioBridge {
    pub fn new(id: ChannelId, stdio: UnixStream, stderr: UnixStream, shared: Arc<Mutex<Shared>>) -> StdioBridge {
        let _ = stdio.set_nonblocking(true);
        let _ = stderr.set_nonblocking(true);
        StdioBridge {
            id,
            out: Outflow::new(stdio, false),
            err: Outflow::new(stderr, true),
            shared,
            app_eof: false,
            ibuf: Vec::new(),
            close: None,
            detached_deadline: None,
            out_hup: false,
            err_hup: false,
            discarded: 0,
            app_readable: false,
        }
    }

    /// Record the outcome for `close` and let the channel go.
    fn finish(&mut self, client: &mut Client) -> Step {
        let mut sh = self.shared.lock();
        if let Some(st) = client.exit_status(self.id) {
            sh.exit.get_or_insert_with(|| st.clone());
        }
        sh.finished = true;
        drop(sh);
        client.release_channel(self.id);
        Step::Done
    }

    /// Input nobody will receive (the connection died or the server closed the channel).
    fn sinking(&self, client: &Client, net_dead: bool) -> bool {
        !self.app_eof
            && (net_dead || client.channel(self.id).is_none_or(|c| c.close_received || c.state == ChanState::Closed))
    }
}

impl Bridge for StdioBridge {
    fn service(&mut self, client: &mut Client, pass: Pass) -> Step {
        let id = self.id;
        let net_dead = pass.net_dead;
        // What the application asked for.
        {
            let mut sh = self.shared.lock();
            if self.close.is_none() {
                self.close = sh.close;
                if self.close.is_some() {
                    // Read until it would block once more: that is how close(h, 1) knows all
                    // of the application's input was taken.
                    self.app_readable = true;
                    // The application reads no more once it closes the handle: keep the remote
                    // output flowing into the void so the command can finish.
                    self.out.broken = true;
                    self.err.broken = true;
                }
            }
            if let Some(st) = client.exit_status(id) {
                sh.exit.get_or_insert_with(|| st.clone());
            }
            if let Some(e) = client.error() {
                if !matches!(e, Error::ConnectionClosed(m) if m == "disconnected by application") {
                    sh.error.get_or_insert_with(|| e.clone());
                }
            }
        }
        // Remote output toward the application.
        self.out.pump(client, id);
        self.err.pump(client, id);
        let ch_done = client.channel(id).is_none_or(|c| c.eof_received || c.state == ChanState::Closed);
        if ch_done || net_dead {
            self.out.finish();
            self.err.finish();
        }

        // Input nobody will receive is read and dropped, so an application blocked in write()
        // always gets through to close(); the loss is reported in db_error.
        let sink = self.sinking(client, net_dead);
        if sink {
            if self.ibuf.is_empty() {
                self.ibuf = vec![0u8; APP_READ];
            }
            loop {
                match self.out.sock.read(&mut self.ibuf) {
                    Ok(0) => {
                        self.app_eof = true;
                        break;
                    }
                    Ok(n) => self.discarded = self.discarded.saturating_add(n as u64),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if matches!(self.close, Some(CloseMode::Wait(_))) {
                            self.app_eof = true;
                        }
                        break;
                    }
                    Err(_) => {
                        self.app_eof = true;
                        break;
                    }
                }
            }
            if self.discarded > 0 {
                self.shared.lock().error.get_or_insert_with(|| {
                    Error::ConnectionClosed("input written after the session ended was discarded".into())
                });
            }
        }

        // Application input toward the server.
        while self.app_readable && !sink && !self.app_eof && !net_dead && client.output_len() < MAX_QUEUED {
            let room = client.writable(id).min(APP_READ);
            if room == 0 {
                break;
            }
            // Read straight into the packet being built (issue 16): no copy of the data.
            let sock = &mut self.out.sock;
            let mut got = None;
            client.send_data_with(id, room, |buf| {
                let r = sock.read(buf);
                let n = r.as_ref().map_or(0, |&n| n);
                got = Some(r);
                n
            });
            let Some(r) = got else { break };
            match r {
                Ok(0) => {
                    self.app_eof = true;
                    client.send_eof(id);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.app_readable = false;
                    if matches!(self.close, Some(CloseMode::Wait(_))) {
                        // close() was called after the application's last write, so all of its
                        // data has now been read: end the remote's stdin.
                        self.app_eof = true;
                        client.send_eof(id);
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.app_eof = true;
                    client.send_eof(id);
                }
            }
        }

        let net_dead = net_dead || (client.phase() == Phase::Dead && client.output_len() == 0);
        let channel_closed = client.channel(id).is_none_or(|c| c.state == ChanState::Closed);
        let delivered = !self.out.has_pending() && !self.err.has_pending();
        match self.close {
            Some(CloseMode::Wait(deadline)) => {
                if net_dead || (channel_closed && delivered) {
                    return self.finish(client);
                }
                if Instant::now() >= deadline {
                    self.shared.lock().error.get_or_insert_with(|| {
                        Error::Timeout("the remote command did not exit before the close timeout".into())
                    });
                    return self.finish(client);
                }
            }
            Some(CloseMode::NoWait) => {
                let d = *self.detached_deadline.get_or_insert_with(|| {
                    client.send_eof(id);
                    client.close_channel(id);
                    Instant::now() + DETACHED_GRACE
                });
                if net_dead || channel_closed || Instant::now() >= d {
                    return self.finish(client);
                }
            }
            None => {}
        }
        Step::Wait
    }

    fn fds(&self, client: &Client, pass: Pass, out: &mut Vec<(RawFd, bool, bool)>) {
        let id = self.id;
        let net_dead = pass.net_dead;
        let sink_now = self.sinking(client, net_dead);
        let want_app_read = !self.app_eof
            && (sink_now || (!net_dead && client.writable(id) > 0 && client.output_len() < MAX_QUEUED));
        // A descriptor that hung up is left out (-1) so it cannot wake us again and again.
        let slot = |on: bool, fd: RawFd| if on { fd } else { -1 };
        out.push((slot(!self.out_hup, self.out.sock.as_raw_fd()), want_app_read, self.out.has_pending() && !self.out.broken));
        out.push((slot(!self.err_hup, self.err.sock.as_raw_fd()), false, self.err.has_pending() && !self.err.broken));
    }

    fn ready(&mut self, client: &mut Client, ready: &[Ready]) {
        let at = |i: usize| ready.get(i).copied().unwrap_or_default();
        self.app_readable |= at(0).read || at(0).hup;
        // The application closed its end of a socketpair: no more output to it, and (stdio)
        // no more input from it.
        if at(0).hup && !at(0).read {
            self.out_hup = true;
            self.out.broken = true;
            if !self.app_eof {
                self.app_eof = true;
                client.send_eof(self.id);
            }
        }
        if at(1).hup {
            self.err_hup = true;
            self.err.broken = true;
        }
    }

    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> Option<usize> {
        if id != self.id {
            return None;
        }
        Some(if stderr { self.err.offer(data) } else { self.out.offer(data) })
    }

    fn deadline(&self) -> Option<Instant> {
        match self.close {
            Some(CloseMode::Wait(d)) => Some(d),
            Some(CloseMode::NoWait) => self.detached_deadline,
            None => None,
        }
    }
}
