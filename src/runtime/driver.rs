//! The one I/O driver of a connection: a thread with one poll(2) loop that owns the TCP socket
//! and the sans-IO core (`Client`, or the server role's `Server`: RFC 4253 transport, RFC 4252
//! authentication, RFC 4254 connection layer), behind the `Endpoint` trait. Application handles (`Session`, `Channel`, forwards) change the core
//! under its lock and wake the driver through a socket pair; they wait on a condition variable
//! that the driver signals after every pass. Descriptor-based consumers (the C API's socketpair
//! bridge, local port forwards) are `Bridge`s that the driver polls together with the network,
//! so a connection has exactly one thread whatever uses it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::client::{Client, Phase};
use crate::connection::{ChannelId, Deliver};
use crate::error::Error;
use crate::runtime::known_hosts;
use crate::runtime::sys::{self, Ready};

/// Network bytes asked for per read(2): the first reads are small, so an idle session keeps a
/// small buffer; every read that fills its space doubles the next, up to the maximum. (256 KiB
/// reads left glibc's per-thread arenas 2.4 MB larger after 200 concurrent sessions: soak.)
const NET_READ_MIN: usize = 4 * 1024;
const NET_READ_MAX: usize = 64 * 1024;
/// Stack kept below the driver loop's frame when the rest is given back (`release_unused_stack`):
/// the loop's own calls (a pass's parsing, sealing and logging) stay resident.
const STACK_KEEP: usize = 16 * 1024;
/// A connection whose network was quiet this long gives back its bulk-transfer buffers
/// (`Endpoint::trim_buffers`, down to `IDLE_BUFFER_KEEP` each; reads start small again).
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(1);
const IDLE_BUFFER_KEEP: usize = 16 * 1024;
/// How long a dead core's last output may wait for a peer that does not read.
const LAST_WORDS: Duration = Duration::from_secs(2);
/// Most bytes queued for the network before writers wait (handles and bridges alike).
pub const MAX_QUEUED: usize = 256 * 1024;

/// What a bridge sees of the connection on each pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// The network side is gone: nothing more will arrive or leave.
    pub net_dead: bool,
    /// Every application handle is gone: finish up.
    pub shutdown: bool,
}

/// What a bridge wants after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep polling its descriptors.
    Wait,
    /// Run another pass at once, without waiting.
    Again,
    /// Finished: drop it (its descriptors close).
    Done,
}

/// The sans-IO core a driver runs: the client, or the server role.
pub trait Endpoint: Send + 'static {
    fn output(&self) -> &[u8];
    fn consume_output(&mut self, n: usize);
    fn output_len(&self) -> usize;
    /// Space for up to `max` network bytes, never empty (shorter when the partial packet in the
    /// core's buffer ends sooner: reading just its rest saves moving it).
    fn read_space(&mut self, max: usize) -> &mut [u8];
    /// `n` bytes arrived in the last `read_space` (errors stay in the core: `error`).
    fn input_read(&mut self, n: usize, now: Instant);
    /// `input_read`, offering received channel data to `deliver` before the core buffers it.
    fn input_read_to(&mut self, n: usize, now: Instant, deliver: &mut dyn Deliver) {
        let _ = deliver;
        self.input_read(n, now);
    }
    /// Whether to read the network now (a server waiting for the application reads no more).
    fn wants_input(&self) -> bool {
        true
    }
    fn fail(&mut self, e: Error);
    fn is_dead(&self) -> bool;
    fn error(&self) -> Option<&Error>;
    fn next_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn disconnect(&mut self);
    /// Work after every pass's input: events, known_hosts writes, decisions.
    fn after_input(&mut self);
    /// Where the handshake stands, for the driver's handshake deadlines.
    fn stage(&self) -> Stage;
    /// "server" or "client": the other end, for error messages.
    fn peer(&self) -> &'static str;
    /// Key exchanges completed so far (the driver gives back stack pages after each).
    fn kex_count(&self) -> u32 {
        0
    }
    /// Capacity of the network buffers, and letting go of the empty ones above `keep` bytes
    /// (the driver's idle trim).
    fn buffer_capacity(&self) -> usize {
        0
    }
    fn trim_buffers(&mut self, keep: usize) {
        let _ = keep;
    }
}

/// Where a connection's handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    KeyExchange,
    Authenticating,
    /// Authenticated, dead, or a core that keeps its own deadlines.
    Other,
}

impl Endpoint for Client {
    fn output(&self) -> &[u8] {
        Client::output(self)
    }
    fn consume_output(&mut self, n: usize) {
        Client::consume_output(self, n)
    }
    fn output_len(&self) -> usize {
        Client::output_len(self)
    }
    fn read_space(&mut self, max: usize) -> &mut [u8] {
        Client::read_space(self, max)
    }
    fn input_read(&mut self, n: usize, now: Instant) {
        let _ = Client::input_read(self, n, now);
    }
    fn input_read_to(&mut self, n: usize, now: Instant, deliver: &mut dyn Deliver) {
        let _ = Client::input_read_to(self, n, now, deliver);
    }
    fn fail(&mut self, e: Error) {
        Client::fail(self, e)
    }
    fn is_dead(&self) -> bool {
        self.phase() == Phase::Dead
    }
    fn error(&self) -> Option<&Error> {
        Client::error(self)
    }
    fn next_timeout(&self) -> Option<Instant> {
        Client::next_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Client::handle_timeout(self, now)
    }
    fn disconnect(&mut self) {
        Client::disconnect(self)
    }
    fn after_input(&mut self) {
        // Channel events are state in the channels; the queue only needs emptying.
        while self.poll_event().is_some() {}
        // known_hosts writes the host key decision and UpdateHostKeys ask for.
        known_hosts::carry_out(self);
    }
    fn stage(&self) -> Stage {
        match self.phase() {
            Phase::Handshake => Stage::KeyExchange,
            Phase::Authenticating => Stage::Authenticating,
            _ => Stage::Other,
        }
    }
    fn peer(&self) -> &'static str {
        "server"
    }
    fn kex_count(&self) -> u32 {
        self.transport().kex_count()
    }
    fn buffer_capacity(&self) -> usize {
        self.transport().buffer_capacity()
    }
    fn trim_buffers(&mut self, keep: usize) {
        Client::trim_buffers(self, keep)
    }
}

/// A consumer of the connection that lives in the driver thread and owns descriptors.
pub trait Bridge<E = Client>: Send {
    /// Move data between its descriptors and the core (lock held, never blocks).
    fn service(&mut self, c: &mut E, pass: Pass) -> Step;
    /// Descriptors to poll: (fd, want read, want write); a negative fd is ignored.
    fn fds(&self, c: &E, pass: Pass, out: &mut Vec<(RawFd, bool, bool)>);
    /// Readiness of the descriptors of the last `fds`, in the same order.
    fn ready(&mut self, c: &mut E, ready: &[Ready]);
    /// The earliest time it needs a pass without any descriptor being ready.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Data of channel `id` just decrypted, offered before the core buffers it (`Deliver`):
    /// `None` if the channel is not this bridge's, else how much it wrote out (never blocking).
    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> Option<usize> {
        let _ = (id, stderr, data);
        None
    }
}

/// The bridges as the core's direct destination for received data.
struct ToBridges<'a, E>(&'a mut [Box<dyn Bridge<E>>]);

impl<E> Deliver for ToBridges<'_, E> {
    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> usize {
        self.0.iter_mut().find_map(|b| b.offer(id, stderr, data)).unwrap_or(0)
    }
}

/// The state handles and the driver share, under one lock.
pub struct Core<E = Client> {
    /// The sans-IO core.
    pub ep: E,
    /// Bridges handed over, picked up by the driver on its next pass.
    pub new_bridges: Vec<Box<dyn Bridge<E>>>,
    /// No handle is left: finish the bridges, say goodbye and stop.
    pub shutdown: bool,
    /// The network side is gone (the error is in the client).
    pub net_dead: bool,
    /// The driver loop has ended.
    pub finished: bool,
    /// Key exchange + authentication must be done by then.
    pub handshake_deadline: Option<Instant>,
    /// Authentication alone, counted from the first key exchange.
    pub auth_timeout: Duration,
    auth_deadline: Option<Instant>,
}

pub struct Shared<E = Client> {
    core: Mutex<Core<E>>,
    cond: Condvar,
    wake_tx: UnixStream,
}

impl<E: Endpoint> Shared<E> {
    pub fn lock(&self) -> MutexGuard<'_, Core<E>> {
        self.core.lock()
    }

    /// Make the driver run a pass (after changing the core).
    pub fn wake(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Wait for the driver's next pass (or the deadline). Returns false when the deadline
    /// passed.
    pub fn wait(&self, g: &mut MutexGuard<'_, Core<E>>, deadline: Option<Instant>) -> bool {
        match deadline {
            Some(d) => Instant::now() < d && !self.cond.wait_until(g, d).timed_out(),
            None => {
                self.cond.wait(g);
                true
            }
        }
    }

    /// Wake everybody waiting on the core (after a handle changed something others wait for).
    pub fn notify(&self) {
        self.cond.notify_all();
    }

    /// Wait until `done` holds, the connection dies or `deadline` passes; `what` names the
    /// operation in the timeout error. Returns the guard for the caller's next step.
    pub fn wait_until<'a>(
        &'a self,
        mut g: MutexGuard<'a, Core<E>>,
        deadline: Option<Instant>,
        what: &str,
        mut done: impl FnMut(&mut Core<E>) -> bool,
    ) -> Result<MutexGuard<'a, Core<E>>, Error> {
        loop {
            if done(&mut g) {
                return Ok(g);
            }
            if g.net_dead || g.finished || g.ep.is_dead() {
                return Err(g.ep.error().cloned().unwrap_or_else(|| Error::ConnectionClosed("connection closed".into())));
            }
            match deadline {
                Some(d) => {
                    if Instant::now() >= d || self.cond.wait_until(&mut g, d).timed_out() && !done(&mut g) {
                        return Err(Error::Timeout(format!("{what} did not finish in time")));
                    }
                }
                None => self.cond.wait(&mut g),
            }
        }
    }
}

/// What a non-blocking write of freshly received data to a bridge's descriptor did (issue 16:
/// data goes from the decrypted packet to the descriptor when nothing older waits).
pub(crate) enum Offered {
    /// This many bytes went (maybe fewer than offered).
    Took(usize),
    /// The descriptor is full: nothing went.
    Full,
    /// The descriptor is gone (a write error or a zero-length write).
    Broken,
}

pub(crate) fn offer_write(w: &mut impl Write, data: &[u8]) -> Offered {
    loop {
        match w.write(data) {
            Ok(0) if !data.is_empty() => return Offered::Broken,
            Ok(n) => return Offered::Took(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Offered::Full,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Offered::Broken,
        }
    }
}

/// Start the driver thread for a connected socket and a fresh core.
pub fn spawn<E: Endpoint>(
    sock: TcpStream,
    client: E,
    handshake_deadline: Option<Instant>,
    auth_timeout: Duration,
    log_sink: Option<crate::logging::LogSink>,
) -> Result<(Arc<Shared<E>>, std::thread::JoinHandle<()>), Error> {
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    sock.set_nonblocking(true)?;
    let core = Core {
        ep: client,
        new_bridges: Vec::new(),
        shutdown: false,
        net_dead: false,
        finished: false,
        handshake_deadline,
        auth_timeout,
        auth_deadline: None,
    };
    let shared = Arc::new(Shared { core: Mutex::new(core), cond: Condvar::new(), wake_tx });
    let sh = shared.clone();
    let thread = std::thread::Builder::new()
        .name("sshbridge-conn".into())
        .spawn(move || {
            crate::logging::LogSink::set_for_this_thread(log_sink);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&sh, sock, wake_rx)));
            let mut g = sh.lock();
            if r.is_err() {
                g.ep.fail(Error::internal("connection thread panicked"));
                g.new_bridges.clear();
            }
            g.net_dead = true;
            g.finished = true;
            drop(g);
            sh.cond.notify_all();
        })
        .map_err(|e| Error::internal(format!("cannot start the connection thread: {e}")))?;
    Ok((shared, thread))
}

fn min_time(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Fail the handshake when its deadline passed.
fn check_handshake<E: Endpoint>(core: &mut Core<E>, now: Instant) {
    let stage = core.ep.stage();
    if stage == Stage::Authenticating && core.auth_deadline.is_none() {
        core.auth_deadline = Some(now + core.auth_timeout);
    }
    let (deadline, what) = match stage {
        Stage::KeyExchange => (core.handshake_deadline, "key exchange"),
        Stage::Authenticating => (min_time(core.handshake_deadline, core.auth_deadline), "authentication"),
        Stage::Other => return,
    };
    if deadline.is_some_and(|d| now >= d) {
        core.ep.fail(Error::Timeout(format!("{what} did not finish in time")));
    }
}

fn handshake_deadline<E: Endpoint>(core: &Core<E>) -> Option<Instant> {
    match core.ep.stage() {
        Stage::KeyExchange => core.handshake_deadline,
        Stage::Authenticating => min_time(core.handshake_deadline, core.auth_deadline),
        Stage::Other => None,
    }
}

fn run<E: Endpoint>(sh: &Shared<E>, mut sock: TcpStream, mut wake: UnixStream) {
    sys::block_signals_in_this_thread();
    let mut bridges: Vec<Box<dyn Bridge<E>>> = Vec::new();
    let mut net_read = NET_READ_MIN;
    // When the core died: its last words (DISCONNECT) get this long to leave, then the socket
    // closes even if the peer reads nothing.
    let mut dead_since: Option<Instant> = None;
    let mut fds: Vec<(RawFd, bool, bool)> = Vec::new();
    let mut spans: Vec<usize> = Vec::new();
    // The key exchange after which this thread last gave back its unused stack.
    let mut stack_released_at = 0u32;
    // When bytes last moved on the network (for the idle trim of big buffers).
    let mut net_busy_at = Instant::now();
    let mut g = sh.lock();
    loop {
        let now = Instant::now();
        check_handshake(&mut g, now);
        bridges.append(&mut g.new_bridges);
        let was_dead = g.net_dead;
        let core = &mut *g;

        // Bridges move data between their descriptors and the channels.
        let pass = Pass { net_dead: core.net_dead, shutdown: core.shutdown };
        let mut again = false;
        let mut i = 0;
        while i < bridges.len() {
            let step = bridges.get_mut(i).map_or(Step::Done, |b| b.service(&mut core.ep, pass));
            match step {
                Step::Done => {
                    bridges.swap_remove(i);
                    again = true;
                }
                Step::Again => {
                    again = true;
                    i += 1;
                }
                Step::Wait => i += 1,
            }
        }
        // Network output: what the handles and the bridges queued, in this pass.
        if !core.net_dead {
            while core.ep.output_len() > 0 {
                match sock.write(core.ep.output()) {
                    Ok(0) => {
                        let peer = core.ep.peer();
                        core.ep.fail(Error::ConnectionClosed(format!("{peer} closed the connection")));
                        core.net_dead = true;
                        break;
                    }
                    Ok(n) => {
                        core.ep.consume_output(n);
                        net_busy_at = now;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let peer = core.ep.peer();
                        core.ep.fail(Error::ConnectionClosed(format!("write to {peer} failed: {e}")));
                        core.net_dead = true;
                        break;
                    }
                }
            }
        }
        if core.ep.is_dead() && !core.net_dead {
            let since = *dead_since.get_or_insert(now);
            if core.ep.output_len() == 0 || now.saturating_duration_since(since) >= LAST_WORDS {
                core.net_dead = true;
            }
        }

        again |= core.net_dead && !was_dead;
        if (core.shutdown || core.net_dead) && bridges.is_empty() && core.new_bridges.is_empty() {
            break;
        }
        sh.cond.notify_all();
        if again {
            continue;
        }

        // Wait for something to happen.
        fds.clear();
        spans.clear();
        fds.push((wake.as_raw_fd(), true, false));
        let net_fd = if core.net_dead { -1 } else { sock.as_raw_fd() };
        fds.push((net_fd, core.ep.wants_input(), core.ep.output_len() > 0));
        let mut wake_at = min_time(core.ep.next_timeout(), handshake_deadline(core));
        wake_at = min_time(wake_at, dead_since.map(|d| d + LAST_WORDS));
        for b in &bridges {
            let before = fds.len();
            b.fds(&core.ep, pass, &mut fds);
            spans.push(fds.len() - before);
            wake_at = min_time(wake_at, b.deadline());
        }
        // Big buffers left by a bulk transfer go once the network has been quiet a while.
        let big = core.ep.buffer_capacity() > 2 * IDLE_BUFFER_KEEP || net_read > NET_READ_MIN;
        if big {
            let trim_at = net_busy_at + IDLE_TRIM_AFTER;
            if now >= trim_at {
                core.ep.trim_buffers(IDLE_BUFFER_KEEP);
                net_read = NET_READ_MIN;
            } else {
                wake_at = min_time(wake_at, Some(trim_at));
            }
        }
        // A key exchange (and authentication) just finished: its deep crypto frames are gone,
        // so their stack pages go back before this thread sleeps (idle sessions stay small).
        let release_stack = core.ep.stage() == Stage::Other && core.ep.kex_count() != stack_released_at;
        if release_stack {
            stack_released_at = core.ep.kex_count();
        }
        drop(g);
        if release_stack {
            sys::release_unused_stack(STACK_KEEP);
        }
        let ready = sys::poll(&fds, wake_at);
        g = sh.lock();
        let ready = match ready {
            Ok(r) => r,
            Err(e) => {
                g.ep.fail(Error::from(e));
                g.net_dead = true;
                continue;
            }
        };
        let at = |i: usize| ready.get(i).copied().unwrap_or_default();
        if at(0).read || at(0).hup {
            let mut b = [0u8; 256];
            while matches!(wake.read(&mut b), Ok(n) if n > 0) {}
        }
        let core = &mut *g;
        if !core.net_dead && core.ep.wants_input() && (at(1).read || at(1).hup) {
            loop {
                // Straight into the transport's input buffer: no copy before decryption.
                let space = core.ep.read_space(net_read);
                let asked = space.len().min(net_read);
                match sock.read(space.get_mut(..asked).unwrap_or_default()) {
                    Ok(0) => {
                        let peer = core.ep.peer();
                        core.ep.fail(Error::ConnectionClosed(format!("{peer} closed the connection")));
                        core.net_dead = true;
                        break;
                    }
                    Ok(n) => {
                        net_busy_at = Instant::now();
                        // Channel data may go straight to a bridge's descriptor (issue 16).
                        core.ep.input_read_to(n, Instant::now(), &mut ToBridges(&mut bridges));
                        if !core.ep.wants_input() {
                            break;
                        }
                        if n < asked {
                            break;
                        }
                        if asked == net_read {
                            net_read = (net_read * 2).min(NET_READ_MAX);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let peer = core.ep.peer();
                        core.ep.fail(Error::ConnectionClosed(format!("read from {peer} failed: {e}")));
                        core.net_dead = true;
                        break;
                    }
                }
            }
        }
        core.ep.after_input();
        let mut start = 2;
        for (b, n) in bridges.iter_mut().zip(spans.iter()) {
            b.ready(&mut core.ep, ready.get(start..start + n).unwrap_or_default());
            start += n;
        }
        core.ep.handle_timeout(Instant::now());
    }

    // Say goodbye politely, bounded.
    if !g.ep.is_dead() {
        g.ep.disconnect();
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = sock.write_all(g.ep.output());
    }
    g.net_dead = true;
    g.finished = true;
    drop(g);
    sh.cond.notify_all();
    // The socket closes here, in this thread, exactly once.
}
