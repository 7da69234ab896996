//! The blocking server API: a listener that hands out connections, each run by the one I/O
//! driver of `runtime::driver` (one thread per connection) around the sans-IO
//! `server::Server` (RFC 4253 server role, RFC 4252/4256 server half, RFC 4254 sessions).
//! Authentication is the application's callback; session channels reach the application once
//! their program was asked for (exec, shell or subsystem, RFC 4254 section 6.5), with the env
//! and pty-req requests that came before (sections 6.2 and 6.4). A channel is read as the
//! client's stdin and written as stdout, stderr goes as extended data, and it ends with an
//! exit status or an exit signal (section 6.10). Unauthenticated connections per listener are
//! capped (OpenSSH's MaxStartups); the login grace time is the core's deadline.

use crate::connection::ChannelOps;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::connection::{ChanState, ChannelEvent, ChannelId, ExitStatus, Request};
use crate::error::Error;
use crate::keys::PublicKey;
use crate::runtime::driver::{self, Endpoint, Shared, Stage, MAX_QUEUED};
use crate::runtime::sys::OsRandom;
use crate::server::{self as core, Event, Question};

/// Decides a credential (`Question`): a publickey probe (`signed: false`) and a signed login
/// are asked separately; the signature was verified before a signed question is asked.
pub type Authenticator = Arc<dyn Fn(&Question) -> bool + Send + Sync>;

/// A listener's settings.
#[derive(Clone)]
pub struct ServerConfig {
    /// Host keys, algorithms, authentication policy and limits of each connection.
    pub core: core::ServerConfig,
    /// Who gets in. The default lets nobody in.
    pub authenticate: Authenticator,
    /// Most connections not yet authenticated at once; more are closed at accept (OpenSSH's
    /// MaxStartups, without the random early drop).
    pub max_startups: usize,
    /// Log records of each connection go here too (per-connection routing).
    pub log_sink: Option<crate::logging::LogSink>,
}

impl ServerConfig {
    pub fn new(host_keys: Vec<Arc<crate::keys::PrivateKey>>) -> ServerConfig {
        ServerConfig { core: core::ServerConfig::new(host_keys), authenticate: Arc::new(|_| false), max_startups: 10, log_sink: None }
    }
}

/// A listening server.
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    unauthenticated: Arc<AtomicUsize>,
}

impl Server {
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> Result<Server, Error> {
        if config.core.host_keys.is_empty() {
            return Err(Error::bad_argument("a server needs at least one host key"));
        }
        let listener = TcpListener::bind(addr)?;
        Ok(Server { listener, config, unauthenticated: Arc::new(AtomicUsize::new(0)) })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Connections that have not authenticated yet.
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.load(Ordering::SeqCst)
    }

    /// Wait for the next client and start its connection (the handshake runs on the
    /// connection's own thread). Connections beyond `max_startups` unauthenticated ones are
    /// closed at once and the wait goes on.
    pub fn accept(&self) -> Result<ServerConnection, Error> {
        loop {
            let (sock, peer) = self.listener.accept()?;
            if self.unauthenticated.load(Ordering::SeqCst) >= self.config.max_startups {
                log::info!(target: "sshbridge", "refused {peer}: {} connections not authenticated yet (max_startups)", self.config.max_startups);
                drop(sock);
                continue;
            }
            match self.start(sock, peer) {
                Ok(c) => return Ok(c),
                Err(e) => log::info!(target: "sshbridge", "connection from {peer} failed to start: {e}"),
            }
        }
    }

    fn start(&self, sock: TcpStream, peer: SocketAddr) -> Result<ServerConnection, Error> {
        sock.set_nodelay(true)?;
        let now = Instant::now();
        let server = core::Server::new(self.config.core.clone(), Box::new(OsRandom), now)?;
        self.unauthenticated.fetch_add(1, Ordering::SeqCst);
        let ep = ServerEndpoint {
            core: server,
            authenticate: self.config.authenticate.clone(),
            unauthenticated: Some(self.unauthenticated.clone()),
            setup: HashMap::new(),
            started: VecDeque::new(),
            later: HashMap::new(),
            signed_key: None,
            auth_key: None,
        };
        let (shared, thread) = driver::spawn(sock, ep, None, Duration::MAX, self.config.log_sink.clone())?;
        log::info!(target: "sshbridge", "connection from {peer}");
        Ok(ServerConnection { inner: Arc::new(Inner { shared, thread: Mutex::new(Some(thread)), peer }) })
    }
}

/// What a session channel asked for before its program started.
#[derive(Debug, Clone, Default)]
struct Setup {
    env: Vec<(String, String)>,
    pty: Option<Request>,
    /// Handed to the application (its handle releases it).
    handed: bool,
}

/// The server core as the driver runs it: decisions are taken here, on the connection's
/// thread (authentication by the callback, sessions accepted, requests recorded).
pub struct ServerEndpoint {
    core: core::Server,
    authenticate: Authenticator,
    /// The listener's count of unauthenticated connections, while this one is in it.
    unauthenticated: Option<Arc<AtomicUsize>>,
    setup: HashMap<ChannelId, Setup>,
    /// Channels whose program was asked for, waiting for `accept_channel`.
    started: VecDeque<(ChannelId, Request, Setup)>,
    /// window-change and signal requests after the start, per channel.
    later: HashMap<ChannelId, VecDeque<Request>>,
    /// The key of the last signed publickey request the application accepted.
    signed_key: Option<PublicKey>,
    /// The key that authenticated the connection (publickey logins).
    auth_key: Option<PublicKey>,
}

impl ServerEndpoint {
    fn uncount(&mut self) {
        if let Some(n) = self.unauthenticated.take() {
            n.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn decide(&mut self) {
        let now = Instant::now();
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::Auth(q) => {
                    let yes = (self.authenticate)(&q);
                    if let Question::PublicKey { key, signed: true, .. } = &q {
                        self.signed_key = yes.then(|| key.clone());
                    }
                    self.core.answer_auth(yes, now);
                }
                Event::Authenticated { method, .. } => {
                    if method == "publickey" {
                        self.auth_key = self.signed_key.take();
                    }
                    self.uncount();
                }
                Event::ChannelOpen { kind } => {
                    if let Some(id) = self.core.answer_open(kind == "session") {
                        self.setup.insert(id, Setup::default());
                    }
                }
                Event::ChannelRequest { id, request } => {
                    let Some(setup) = self.setup.get_mut(&id) else {
                        self.core.answer_request(id, false);
                        continue;
                    };
                    let ok = match &request {
                        Request::Env { name, value } if !setup.handed => {
                            setup.env.push((name.clone(), value.clone()));
                            true
                        }
                        Request::Pty { .. } if !setup.handed && setup.pty.is_none() => {
                            setup.pty = Some(request.clone());
                            true
                        }
                        r if r.starts() && !setup.handed => {
                            setup.handed = true;
                            self.started.push_back((id, request.clone(), setup.clone()));
                            true
                        }
                        Request::WindowChange { .. } | Request::Signal(_) if setup.handed => {
                            let q = self.later.entry(id).or_default();
                            if q.len() < 64 {
                                q.push_back(request.clone());
                            }
                            true
                        }
                        _ => false,
                    };
                    self.core.answer_request(id, ok);
                }
                Event::Channel(id, ChannelEvent::Closed) => {
                    // A channel the application never saw is dropped here.
                    if self.setup.get(&id).is_some_and(|s| !s.handed) {
                        self.setup.remove(&id);
                        self.core.release_channel(id);
                    }
                }
                Event::Channel(..) => {}
            }
        }
        if self.core.phase() == core::Phase::Dead {
            self.uncount();
        }
    }
}

impl Drop for ServerEndpoint {
    fn drop(&mut self) {
        self.uncount();
    }
}

impl Endpoint for ServerEndpoint {
    fn output(&self) -> &[u8] {
        self.core.output()
    }
    fn consume_output(&mut self, n: usize) {
        self.core.consume_output(n)
    }
    fn output_len(&self) -> usize {
        self.core.output_len()
    }
    fn read_space(&mut self, max: usize) -> &mut [u8] {
        self.core.read_space(max)
    }
    fn input_read(&mut self, n: usize, now: Instant) {
        let _ = self.core.input_read(n, now);
        self.decide();
    }
    fn wants_input(&self) -> bool {
        self.core.wants_input()
    }
    fn fail(&mut self, e: Error) {
        self.core.fail(e);
        self.uncount();
    }
    fn is_dead(&self) -> bool {
        self.core.phase() == core::Phase::Dead
    }
    fn error(&self) -> Option<&Error> {
        self.core.error()
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.core.next_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        self.decide();
    }
    fn disconnect(&mut self) {
        self.core.disconnect();
        self.uncount();
    }
    fn after_input(&mut self) {
        self.decide();
    }
    fn stage(&self) -> Stage {
        // The core keeps its own login grace deadline.
        Stage::Other
    }
    fn peer(&self) -> &'static str {
        "client"
    }
    fn kex_count(&self) -> u32 {
        self.core.transport().kex_count()
    }
    fn buffer_capacity(&self) -> usize {
        self.core.transport().buffer_capacity()
    }
    fn trim_buffers(&mut self, keep: usize) {
        self.core.trim_buffers(keep)
    }
}

struct Inner {
    shared: Arc<Shared<ServerEndpoint>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    peer: SocketAddr,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// One client's connection (a cheap handle: clones share it). Dropping the last handle and
/// every channel ends the connection.
#[derive(Clone)]
pub struct ServerConnection {
    inner: Arc<Inner>,
}

impl ServerConnection {
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The authenticated user, once authentication succeeded.
    pub fn user(&self) -> Option<String> {
        let g = self.inner.shared.lock();
        (g.ep.core.phase() == core::Phase::Connected).then(|| g.ep.core.user().unwrap_or_default().to_string())
    }

    /// The public key the client authenticated with (a publickey login whose signature
    /// verified); `None` before authentication or for other methods.
    pub fn auth_key(&self) -> Option<PublicKey> {
        self.inner.shared.lock().ep.auth_key.clone()
    }

    /// Why the connection ended (None while it runs).
    pub fn error(&self) -> Option<Error> {
        self.inner.shared.lock().ep.core.error().cloned()
    }

    /// Wait for the next session channel whose program was asked for; `None` once the
    /// connection is over.
    pub fn accept_channel(&self) -> Option<ServerChannel> {
        let sh = &self.inner.shared;
        let mut started = None;
        let g = sh.lock();
        let r = sh.wait_until(g, None, "accept", |c| {
            started = c.ep.started.pop_front();
            started.is_some()
        });
        drop(r);
        let (id, request, setup) = started?;
        Some(ServerChannel { conn: self.clone(), id, request, env: setup.env, pty: setup.pty })
    }

    /// End the connection now (DISCONNECT by application).
    pub fn disconnect(&self) {
        self.inner.shared.lock().ep.core.disconnect();
        self.inner.shared.wake();
    }
}

/// A session channel: `Read` (on `&ServerChannel`, so threads can share it) gives the client's
/// stdin, `Write` sends stdout, `write_stderr` sends stderr; `exit` ends it.
pub struct ServerChannel {
    conn: ServerConnection,
    id: ChannelId,
    request: Request,
    env: Vec<(String, String)>,
    pty: Option<Request>,
}

impl ServerChannel {
    pub fn id(&self) -> ChannelId {
        self.id
    }
    /// What started it: `Request::Exec(command)`, `Request::Shell` or `Request::Subsystem`.
    pub fn request(&self) -> &Request {
        &self.request
    }
    /// The command of an exec request.
    pub fn command(&self) -> Option<&[u8]> {
        match &self.request {
            Request::Exec(c) => Some(c),
            _ => None,
        }
    }
    /// Environment variables the client set (only names of the allow-list get here).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
    /// The pty-req, when the client asked for a terminal.
    pub fn pty(&self) -> Option<&Request> {
        self.pty.as_ref()
    }
    pub fn connection(&self) -> &ServerConnection {
        &self.conn
    }

    /// window-change and signal requests that arrived since the last call.
    pub fn take_requests(&self) -> Vec<Request> {
        self.conn.inner.shared.lock().ep.later.remove(&self.id).map(Vec::from).unwrap_or_default()
    }

    fn write_with(&self, data: &[u8], stderr: bool) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let sh = &self.conn.inner.shared;
        let id = self.id;
        let g = sh.lock();
        let g = sh
            .wait_until(g, None, "write", |c| {
                let closed = c.ep.core.channel(id).is_none_or(|ch| {
                    ch.state != ChanState::Open || ch.close_received || ch.eof_sent || ch.close_sent
                });
                closed || (c.ep.core.writable(id) > 0 && c.ep.output_len() < MAX_QUEUED)
            })
            .map_err(to_io)?;
        let mut g = g;
        let n = if stderr { g.ep.core.send_stderr(id, data) } else { g.ep.core.send_data(id, data) };
        drop(g);
        sh.wake();
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the channel"));
        }
        Ok(n)
    }

    /// Write all of `data` as stderr (extended data type 1).
    pub fn write_stderr(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write_with(data, true)?;
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// End the channel: exit status (or signal), EOF, CLOSE.
    pub fn exit(&self, status: &ExitStatus) {
        let sh = &self.conn.inner.shared;
        {
            let mut g = sh.lock();
            g.ep.core.send_exit(self.id, status);
            g.ep.core.send_eof(self.id);
            g.ep.core.close_channel(self.id);
        }
        sh.wake();
    }

    /// Whether the channel is over: the client closed it or the connection ended.
    pub fn is_closed(&self) -> bool {
        let g = self.conn.inner.shared.lock();
        g.net_dead || g.ep.core.channel(self.id).is_none_or(|ch| ch.state != ChanState::Open || ch.close_received)
    }

    /// Send EOF on stdout (the program's output ended) without closing.
    pub fn send_eof(&self) {
        self.conn.inner.shared.lock().ep.core.send_eof(self.id);
        self.conn.inner.shared.wake();
    }
}

impl Read for &ServerChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let sh = &self.conn.inner.shared;
        let id = self.id;
        let g = sh.lock();
        let mut g = sh
            .wait_until(g, None, "read", |c| {
                c.ep.core.channel(id).is_none_or(|ch| ch.stdout_len() > 0 || ch.eof_received || ch.state == ChanState::Closed)
            })
            .map_err(to_io)?;
        let n = g.ep.core.read(id, false, buf);
        drop(g);
        sh.wake();
        Ok(n)
    }
}

impl Read for ServerChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &ServerChannel {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_with(data, false)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for ServerChannel {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (&*self).write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ServerChannel {
    fn drop(&mut self) {
        let sh = &self.conn.inner.shared;
        {
            let mut g = sh.lock();
            g.ep.setup.remove(&self.id);
            g.ep.later.remove(&self.id);
            g.ep.core.release_channel(self.id);
        }
        sh.wake();
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        Error::ConnectionClosed(_) => io::ErrorKind::ConnectionReset,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}
