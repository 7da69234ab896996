//! The per-connection worker thread behind the C API: it bridges one session channel (RFC 4254
//! section 5.2 data and extended data, 5.3 EOF/CLOSE) to two socketpairs whose other ends the
//! application reads and writes. One poll() loop over the TCP socket, the worker's socketpair
//! ends and a wake-up socket; flow control in both directions is the SSH window on one side and
//! the socket buffers on the other, so memory per connection stays bounded.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::channel::{ChanState, ExitStatus};
use crate::client::{ChannelId, Client, Phase};
use crate::error::Error;
use crate::runtime::sys;

/// Largest read from the application in one step (split into packets by the channel).
const APP_READ: usize = 32 * 1024;
/// Network bytes asked for per read(2): the first reads are small, so an idle session keeps a
/// small buffer; every read that fills its space doubles the next, up to the maximum. (256 KiB
/// reads left glibc's per-thread arenas 2.4 MB larger after 200 concurrent sessions: soak.)
const NET_READ_MIN: usize = 16 * 1024;
const NET_READ_MAX: usize = 64 * 1024;
/// Stop reading the application while this much is queued for the network.
const MAX_QUEUED: usize = 256 * 1024;
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

pub struct WorkerCtx {
    pub sock: TcpStream,
    pub client: Client,
    pub channel: ChannelId,
    pub stdio: UnixStream,
    pub stderr: UnixStream,
    pub wake: UnixStream,
    pub shared: Arc<Mutex<Shared>>,
}

/// One direction of remote output toward the application, written straight from the
/// channel's buffer (no copy in between).
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

    /// Signal end of file to the application once everything is delivered.
    fn finish(&mut self) {
        if !self.shut && !self.has_pending() {
            let _ = self.sock.shutdown(Shutdown::Write);
            self.shut = true;
        }
    }
}

/// Run the bridge until the application closes the handle. Never panics outward: the caller
/// wraps it in catch_unwind and turns a panic into an error.
pub fn run(ctx: WorkerCtx) {
    sys::block_signals_in_this_thread();
    let WorkerCtx { mut sock, mut client, channel: id, stdio, stderr, mut wake, shared } = ctx;
    let _ = sock.set_nonblocking(true);
    let _ = stdio.set_nonblocking(true);
    let _ = stderr.set_nonblocking(true);
    let _ = wake.set_nonblocking(true);
    let mut out = Outflow::new(stdio, false);
    let mut err = Outflow::new(stderr, true);
    let mut app_eof = false;
    let mut net_dead = false;
    let mut ibuf = vec![0u8; APP_READ];
    let mut close: Option<CloseMode> = None;
    let mut detached_deadline: Option<Instant> = None;
    let (mut wake_gone, mut out_hup, mut err_hup) = (false, false, false);
    let mut discarded: u64 = 0;
    let mut net_read = NET_READ_MIN;

    loop {
        let was_dead = net_dead;
        // What the application asked for.
        {
            let mut sh = shared.lock();
            if close.is_none() {
                close = sh.close;
                if close.is_some() {
                    // The application reads no more once it closes the handle: keep the remote
                    // output flowing into the void so the command can finish.
                    out.broken = true;
                    err.broken = true;
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
        out.pump(&mut client, id);
        err.pump(&mut client, id);
        let ch_done = client.channel(id).is_none_or(|c| c.eof_received || c.state == ChanState::Closed);
        if ch_done || net_dead {
            out.finish();
            err.finish();
        }

        // Input nobody will receive (the connection died or the server closed the channel) is
        // read and dropped, so an application blocked in write() always gets through to close();
        // the loss is reported in db_error.
        let sink = !app_eof
            && (net_dead || client.channel(id).is_none_or(|c| c.close_received || c.state == ChanState::Closed));
        if sink {
            loop {
                match out.sock.read(&mut ibuf) {
                    Ok(0) => {
                        app_eof = true;
                        break;
                    }
                    Ok(n) => discarded = discarded.saturating_add(n as u64),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if matches!(close, Some(CloseMode::Wait(_))) {
                            app_eof = true;
                        }
                        break;
                    }
                    Err(_) => {
                        app_eof = true;
                        break;
                    }
                }
            }
            if discarded > 0 {
                shared.lock().error.get_or_insert_with(|| {
                    Error::ConnectionClosed("input written after the session ended was discarded".into())
                });
            }
        }

        // Application input toward the server.
        while !sink && !app_eof && !net_dead && client.output_len() < MAX_QUEUED {
            let room = client.writable(id).min(APP_READ);
            if room == 0 {
                break;
            }
            match out.sock.read(ibuf.get_mut(..room).unwrap_or_default()) {
                Ok(0) => {
                    app_eof = true;
                    client.send_eof(id);
                }
                Ok(n) => {
                    let sent = client.send_data(id, ibuf.get(..n).unwrap_or_default());
                    debug_assert_eq!(sent, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if matches!(close, Some(CloseMode::Wait(_))) {
                        // close() was called after the application's last write, so all of its
                        // data has now been read: end the remote's stdin.
                        app_eof = true;
                        client.send_eof(id);
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    app_eof = true;
                    client.send_eof(id);
                }
            }
        }

        // Network output.
        if !net_dead {
            while client.output_len() > 0 {
                match sock.write(client.output()) {
                    Ok(0) => {
                        net_dead = true;
                        break;
                    }
                    Ok(n) => client.consume_output(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        client.fail(Error::ConnectionClosed(format!("write to server failed: {e}")));
                        net_dead = true;
                        break;
                    }
                }
            }
        }
        if client.phase() == Phase::Dead && client.output_len() == 0 {
            net_dead = true;
        }

        let channel_closed = client.channel(id).is_none_or(|c| c.state == ChanState::Closed);
        let delivered = !out.has_pending() && !err.has_pending();
        match close {
            Some(CloseMode::Wait(deadline)) => {
                let finished = net_dead || (channel_closed && delivered) || (client.channel(id).is_none());
                if finished {
                    break;
                }
                if Instant::now() >= deadline {
                    shared.lock().error.get_or_insert_with(|| {
                        Error::Timeout("the remote command did not exit before the close timeout".into())
                    });
                    break;
                }
            }
            Some(CloseMode::NoWait) => {
                let d = *detached_deadline.get_or_insert_with(|| {
                    client.send_eof(id);
                    client.close_channel(id);
                    Instant::now() + DETACHED_GRACE
                });
                if net_dead || channel_closed || Instant::now() >= d {
                    break;
                }
            }
            None => {}
        }

        // Wait for something to happen.
        if net_dead && !was_dead {
            // The connection died during this pass: go round once more without waiting, so the
            // application gets its EOF (and its input is drained) now rather than at the next wake.
            continue;
        }
        // Re-evaluated here: the connection may have died since the top of this iteration.
        let sink_now = !app_eof
            && (net_dead || client.channel(id).is_none_or(|c| c.close_received || c.state == ChanState::Closed));
        let want_app_read =
            !app_eof && (sink_now || (!net_dead && client.writable(id) > 0 && client.output_len() < MAX_QUEUED));
        let want_net_write = !net_dead && client.output_len() > 0;
        // Fixed slots; a negative descriptor is ignored by poll(2). A descriptor that hung up
        // is dropped from the set so it cannot wake us again and again.
        let slot = |on: bool, fd: i32| if on { fd } else { -1 };
        let fds = [
            (slot(!wake_gone, wake.as_raw_fd()), true, false),
            (slot(!net_dead, sock.as_raw_fd()), true, want_net_write),
            (slot(!out_hup, out.sock.as_raw_fd()), want_app_read, out.has_pending() && !out.broken),
            (slot(!err_hup, err.sock.as_raw_fd()), false, err.has_pending() && !err.broken),
        ];
        let mut wake_at = client.next_timeout();
        let close_deadline = match close {
            Some(CloseMode::Wait(d)) => Some(d),
            _ => None,
        };
        for d in [close_deadline, detached_deadline] {
            wake_at = match (wake_at, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let ready = match sys::poll(&fds, wake_at) {
            Ok(r) => r,
            Err(e) => {
                shared.lock().error.get_or_insert(Error::from(e));
                break;
            }
        };
        let at = |i: usize| ready.get(i).copied().unwrap_or_default();
        if at(0).read || at(0).hup {
            let mut b = [0u8; 64];
            loop {
                match wake.read(&mut b) {
                    Ok(0) => {
                        wake_gone = true; // the handle is gone: only the close mode matters now
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        // The application closed its end of a socketpair: no more output to it, and (stdio)
        // no more input from it.
        if at(2).hup && !at(2).read {
            out_hup = true;
            out.broken = true;
            if !app_eof {
                app_eof = true;
                client.send_eof(id);
            }
        }
        if at(3).hup {
            err_hup = true;
            err.broken = true;
        }
        if !net_dead && (at(1).read || at(1).hup) {
            loop {
                // Straight into the transport's input buffer: no copy before decryption.
                match sock.read(client.input_space(net_read).get_mut(..net_read).unwrap_or_default()) {
                    Ok(0) => {
                        client.fail(Error::ConnectionClosed("server closed the connection".into()));
                        net_dead = true;
                        break;
                    }
                    Ok(n) => {
                        let _ = client.input_read(n, Instant::now());
                        if n < net_read {
                            break;
                        }
                        net_read = (net_read * 2).min(NET_READ_MAX);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        client.fail(Error::ConnectionClosed(format!("read from server failed: {e}")));
                        net_dead = true;
                        break;
                    }
                }
            }
        }
        client.handle_timeout(Instant::now());
    }

    // Say goodbye politely, bounded.
    if client.phase() != Phase::Dead {
        client.close_channel(id);
        client.disconnect();
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = sock.write_all(client.output());
    }
    let mut sh = shared.lock();
    if let Some(st) = client.exit_status(id) {
        sh.exit.get_or_insert_with(|| st.clone());
    }
    sh.finished = true;
    // Sockets close here, in this thread, exactly once (they are owned values).
}
