//! TCP/IP port forwarding, RFC 4254 section 7, for the blocking API.
//!
//! - `Session::forward_local` (like `ssh -L`): a listening socket of ours; each accepted
//!   connection opens a `direct-tcpip` channel (section 7.2) and is joined to it by a bridge in
//!   the connection's driver thread (no thread per connection). Dropping the `LocalForward`
//!   stops listening; connections in progress are closed.
//! - `Session::forward_remote` (like `ssh -R`): `tcpip-forward` (section 7.1) makes the server
//!   listen; its `forwarded-tcpip` channels come out of `RemoteForward::accept` as `Channel`s.
//!   Dropping the `RemoteForward` sends `cancel-tcpip-forward`.

use crate::connection::ChannelOps;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::client::{ChannelId, Client, Phase};
use crate::connection::{ChanState, OpenKind};
use crate::error::Error;
use crate::runtime::channel::Channel;
use crate::runtime::driver::{offer_write, Bridge, Offered, Pass, Step, MAX_QUEUED};
use crate::runtime::session::Session;
use crate::runtime::sys::Ready;
use crate::wire::Reader;

/// Largest read from a forwarded TCP connection in one step.
const TCP_READ: usize = 32 * 1024;
/// Most forwarded connections of one local forward at once (each holds a channel).
const MAX_CONNS: usize = 256;

/// A local port forward; dropping it stops listening and closes its connections.
pub struct LocalForward {
    session: Session,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl LocalForward {
    /// The address we listen on (with the port the system picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.session.shared().wake();
    }
}

/// A byte stream a channel can be joined to: a TCP connection or a socketpair end.
pub(crate) trait Duplex: Read + Write + AsRawFd + Send {
    fn shutdown_write(&self);
}

impl Duplex for TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Duplex for std::os::unix::net::UnixStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// One stream joined to its direct-tcpip channel.
pub(crate) struct Conn<S: Duplex> {
    stream: S,
    id: ChannelId,
    /// Channel output is waiting for the socket to take it.
    pending: bool,
    /// The TCP peer sent FIN (or failed): EOF went to the channel.
    in_eof: bool,
    /// We sent FIN to the TCP peer.
    out_shut: bool,
    /// Writing to the TCP peer failed: discard channel output.
    broken: bool,
    hup: bool,
    /// The stream may have input: not known to be empty since poll() last said it was
    /// readable. An idle connection then builds no packet to read into (`send_data_with`
    /// reserves a whole packet of output buffer) and makes no read that would block.
    readable: bool,
}

impl<S: Duplex> Conn<S> {
    pub(crate) fn new(stream: S, id: ChannelId) -> Conn<S> {
        Conn { stream, id, pending: false, in_eof: false, out_shut: false, broken: false, hup: false, readable: false }
    }

    /// Move data both ways; returns false once the connection is finished.
    fn service(&mut self, c: &mut Client, pass: Pass) -> bool {
        let id = self.id;
        let Some(ch) = c.channel(id) else { return false };
        if ch.state == ChanState::Opening {
            return true;
        }
        if ch.error.is_some() || pass.shutdown || pass.net_dead {
            return false;
        }
        // Channel -> TCP.
        loop {
            if self.broken {
                c.discard(id, false);
                self.pending = false;
                break;
            }
            let data = c.peek(id, false);
            if data.is_empty() {
                self.pending = false;
                break;
            }
            match self.stream.write(data) {
                Ok(0) => self.broken = true,
                Ok(n) => c.consume(id, false, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        c.discard(id, true);
        let remote_eof = c.channel(id).is_none_or(|ch| ch.eof_received || ch.state == ChanState::Closed);
        if remote_eof && !self.pending && !self.out_shut {
            self.stream.shutdown_write();
            self.out_shut = true;
        }
        // TCP -> channel.
        if self.hup && !self.in_eof {
            self.in_eof = true;
            c.send_eof(id);
        }
        while self.readable && !self.in_eof && c.output_len() < MAX_QUEUED {
            let room = c.writable(id).min(TCP_READ);
            if room == 0 {
                break;
            }
            // Read straight into the packet being built (issue 16).
            let stream = &mut self.stream;
            let mut got = None;
            c.send_data_with(id, room, |buf| {
                let r = stream.read(buf);
                let n = r.as_ref().map_or(0, |&n| n);
                got = Some(r);
                n
            });
            let Some(r) = got else { break };
            match r {
                Ok(0) => {
                    self.in_eof = true;
                    c.send_eof(id);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.in_eof = true;
                    self.broken = true;
                    c.send_eof(id);
                }
            }
        }
        let closed = c.channel(id).is_none_or(|ch| ch.state == ChanState::Closed);
        !((self.in_eof && (self.out_shut || self.broken)) || (closed && !self.pending))
    }

    /// Channel data just received while none is buffered: straight to the stream (issue 16);
    /// returns how much it took (the channel buffers the rest for `service`).
    fn offer(&mut self, data: &[u8]) -> usize {
        if self.broken || self.out_shut {
            return 0;
        }
        match offer_write(&mut self.stream, data) {
            Offered::Took(n) => {
                self.pending |= n < data.len();
                n
            }
            Offered::Full => {
                self.pending = true;
                0
            }
            Offered::Broken => {
                self.broken = true;
                0
            }
        }
    }

    fn fds(&self, c: &Client, pass: Pass, out: &mut Vec<(RawFd, bool, bool)>) {
        let open = c.channel(self.id).is_some_and(|ch| ch.state == ChanState::Open);
        let want_read = open && !self.in_eof && !pass.net_dead && c.writable(self.id) > 0 && c.output_len() < MAX_QUEUED;
        let fd = if self.hup { -1 } else { self.stream.as_raw_fd() };
        out.push((fd, want_read, self.pending));
    }

    fn ready(&mut self, r: &Ready) {
        self.readable |= r.read || r.hup;
        if r.hup && !r.read {
            self.hup = true;
            self.broken = true;
        }
    }
}

struct ListenBridge {
    listener: Option<TcpListener>,
    host: String,
    port: u32,
    stop: Arc<AtomicBool>,
    conns: Vec<Conn<TcpStream>>,
}

impl Bridge for ListenBridge {
    fn service(&mut self, c: &mut Client, pass: Pass) -> Step {
        let stopping = pass.shutdown || pass.net_dead || self.stop.load(Ordering::SeqCst);
        if stopping {
            self.listener = None;
        }
        if let Some(l) = &self.listener {
            while self.conns.len() < MAX_CONNS && c.phase() == Phase::Connected {
                let Ok((stream, peer)) = l.accept() else { break };
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let kind = OpenKind::DirectTcpip {
                    host: self.host.clone(),
                    port: self.port,
                    origin_host: peer.ip().to_string(),
                    origin_port: u32::from(peer.port()),
                };
                // A refused open (too many channels) closes the accepted connection.
                if let Ok(id) = c.open_channel(&kind, None) {
                    self.conns.push(Conn::new(stream, id));
                }
            }
        }
        let p = Pass { net_dead: pass.net_dead, shutdown: stopping };
        self.conns.retain_mut(|conn| {
            let keep = conn.service(c, p);
            if !keep {
                c.release_channel(conn.id);
            }
            keep
        });
        if self.listener.is_none() && self.conns.is_empty() {
            Step::Done
        } else {
            Step::Wait
        }
    }

    fn fds(&self, c: &Client, pass: Pass, out: &mut Vec<(RawFd, bool, bool)>) {
        // Not polled while it could not accept anyway (it would stay readable: a busy loop).
        let accepting = self.conns.len() < MAX_CONNS && c.phase() == Phase::Connected;
        let lfd = self.listener.as_ref().filter(|_| accepting).map_or(-1, |l| l.as_raw_fd());
        out.push((lfd, true, false));
        for conn in &self.conns {
            conn.fds(c, pass, out);
        }
    }

    fn ready(&mut self, _c: &mut Client, ready: &[Ready]) {
        for (conn, r) in self.conns.iter_mut().zip(ready.iter().skip(1)) {
            conn.ready(r);
        }
    }

    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> Option<usize> {
        // Extended data of a forward has no reader: left to `service`, which discards it.
        let conn = self.conns.iter_mut().find(|c| c.id == id)?;
        Some(if stderr { 0 } else { conn.offer(data) })
    }
}

/// One stream joined to one channel (the extended C API's `sshbridge_conn_forward`).
pub(crate) struct StreamBridge<S: Duplex> {
    conn: Conn<S>,
}

impl<S: Duplex> StreamBridge<S> {
    pub(crate) fn new(stream: S, id: ChannelId) -> StreamBridge<S> {
        StreamBridge { conn: Conn::new(stream, id) }
    }
}

impl<S: Duplex> Bridge for StreamBridge<S> {
    fn service(&mut self, c: &mut Client, pass: Pass) -> Step {
        if self.conn.service(c, pass) {
            Step::Wait
        } else {
            c.release_channel(self.conn.id);
            Step::Done
        }
    }
    fn fds(&self, c: &Client, pass: Pass, out: &mut Vec<(RawFd, bool, bool)>) {
        self.conn.fds(c, pass, out);
    }
    fn ready(&mut self, _c: &mut Client, ready: &[Ready]) {
        if let Some(r) = ready.first() {
            self.conn.ready(r);
        }
    }

    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> Option<usize> {
        (id == self.conn.id).then(|| if stderr { 0 } else { self.conn.offer(data) })
    }
}

/// A remote port forward: the server listens and hands connections to `accept`.
pub struct RemoteForward {
    session: Session,
    addr: String,
    port: u32,
}

impl RemoteForward {
    /// The port the server listens on (the one it picked when 0 was asked for).
    pub fn port(&self) -> u16 {
        u16::try_from(self.port).unwrap_or(0)
    }

    /// Wait for the next connection to the forwarded port: its channel and who connected
    /// (address and port, as the server reports them).
    pub fn accept(&mut self) -> Result<(Channel, (String, u16)), Error> {
        self.accept_until(None)
    }

    /// `accept` with a deadline.
    pub fn accept_until(&mut self, deadline: Option<Instant>) -> Result<(Channel, (String, u16)), Error> {
        let sh = self.session.shared();
        let mut found = None;
        let (addr, port) = (self.addr.clone(), self.port);
        let _g = sh.wait_until(sh.lock(), deadline, "accepting a forwarded connection", |c| {
            found = c.ep.take_incoming(&addr, port);
            found.is_some()
        })?;
        let inc = found.ok_or_else(|| Error::internal("no forwarded connection"))?;
        let origin = (inc.origin_addr, u16::try_from(inc.origin_port).unwrap_or(0));
        Ok((Channel::new(self.session.clone(), inc.id), origin))
    }
}

impl Drop for RemoteForward {
    fn drop(&mut self) {
        self.session.lock().ep.cancel_forward(&self.addr, self.port);
        self.session.shared().wake();
    }
}

impl Session {
    /// Listen on `bind` (like `ssh -L`); each connection to it is forwarded through the server
    /// to `host:port`.
    pub fn forward_local(&self, bind: impl ToSocketAddrs, host: &str, port: u16) -> Result<LocalForward, Error> {
        let listener = TcpListener::bind(bind).map_err(|e| Error::bad_argument(format!("cannot listen: {e}")))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        self.attach(Box::new(ListenBridge {
            listener: Some(listener),
            host: host.to_string(),
            port: u32::from(port),
            stop: stop.clone(),
            conns: Vec::new(),
        }));
        Ok(LocalForward { session: self.clone(), addr, stop })
    }

    /// Ask the server to listen on `addr:port` (like `ssh -R`; port 0: the server picks) and
    /// forward its connections to us.
    pub fn forward_remote(&self, addr: &str, port: u16) -> Result<RemoteForward, Error> {
        let sh = self.shared();
        let mut g = sh.lock();
        let ticket = g.ep.tcpip_forward(addr, u32::from(port))?;
        sh.wake();
        let mut result = None;
        let _g = sh.wait_until(g, self.io_deadline(), "tcpip-forward", |c| {
            result = c.ep.take_global_result(ticket);
            result.is_some()
        })?;
        let data = result.unwrap_or_else(|| Err(Error::internal("no answer")))?;
        let bound = Reader::new(&data).u32()?;
        Ok(RemoteForward { session: self.clone(), addr: addr.to_string(), port: bound })
    }
}
