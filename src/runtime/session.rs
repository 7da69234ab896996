//! The blocking Rust API: a thin I/O loop (non-blocking TCP socket + poll) around the sans-IO
//! `Client`. One `Session` is one SSH connection; `exec`/`shell` give a `Channel` that reads
//! remote stdout (`Read`), writes remote stdin (`Write`), reads stderr separately and `wait`s
//! for the exit status.
//!
//! ```no_run
//! use std::io::Read;
//! use sshbridge::{Config, Credential, Session};
//!
//! let mut config = Config::new("alice");
//! config.credentials.push(Credential::password("secret"));
//! config.host_keys.push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...".parse().unwrap());
//! let mut session = Session::connect("192.0.2.10:22", config)?;
//! let mut ch = session.exec("uname -a")?;
//! let mut out = String::new();
//! ch.read_to_string(&mut out)?;
//! let status = ch.wait()?;
//! println!("{out} exited with {status:?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::algs::Preferences;
use crate::auth::Credential;
use crate::channel::{ChanState, ChannelEvent, ExitStatus};
use crate::client::{ChannelId, Client, ClientConfig, Event, Phase};
use crate::error::Error;
use crate::keys::{PrivateKey, PublicKey};
use crate::runtime::known_hosts::{self, HostAddr};
use crate::runtime::sys::{self, OsRandom};
use crate::transport::{Negotiated, RekeyLimits};
use crate::trust::HostKeyPolicy;

/// Everything a command produced: (stdout, stderr, exit status).
pub type Output = (Vec<u8>, Vec<u8>, Option<ExitStatus>);

/// Most output of a stream nobody is reading that a `Channel` keeps in memory.
const MAX_STASH: usize = crate::channel::WINDOW as usize;

/// How much we read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// Connection settings for the blocking API.
#[derive(Clone, Debug)]
pub struct Config {
    pub user: String,
    /// Tried in order.
    pub credentials: Vec<Credential>,
    /// Pinned host keys: shorthand for `HostKeyPolicy::Pinned`; with the default policy
    /// (`AcceptAny`) an empty list accepts any host key (no verification).
    pub host_keys: Vec<PublicKey>,
    /// How the host key is judged: pinned keys, known_hosts files, an application verifier, or
    /// `AcceptAny` (the default, today's behaviour with no `host_keys`).
    pub host_key_policy: HostKeyPolicy,
    /// Look the host key up (and record it) under this name instead of the host connected to
    /// (OpenSSH's HostKeyAlias).
    pub host_key_alias: Option<String>,
    /// Algorithm preferences (restrict with `Preferences::restrict`).
    pub algorithms: Preferences,
    pub rekey: RekeyLimits,
    /// TCP connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Key exchange plus authentication must finish within this (default 30 s), so a silent
    /// server cannot hang the caller.
    pub handshake_timeout: Duration,
    /// Authentication alone must finish within this once the keys are in place (default 30 s;
    /// the handshake timeout bounds it too).
    pub auth_timeout: Duration,
    /// Send keepalive@openssh.com after this long without hearing from the server, and give up
    /// after `keepalive_max` unanswered ones (default: off, 3).
    pub keepalive_interval: Option<Duration>,
    pub keepalive_max: u32,
    /// Longest wait for any single operation after the handshake (`None`: wait forever).
    pub io_timeout: Option<Duration>,
    /// Accept a server that admits us with the "none" method (default true).
    pub allow_none_auth: bool,
}

impl Config {
    pub fn new(user: impl Into<String>) -> Config {
        Config {
            user: user.into(),
            credentials: Vec::new(),
            host_keys: Vec::new(),
            host_key_policy: HostKeyPolicy::AcceptAny,
            host_key_alias: None,
            algorithms: Preferences::default(),
            rekey: RekeyLimits::default(),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(30),
            keepalive_interval: None,
            keepalive_max: 3,
            io_timeout: None,
            allow_none_auth: true,
        }
    }
}

impl Credential {
    pub fn password(pw: &str) -> Credential {
        Credential::Password(Arc::new(Zeroizing::new(pw.to_string())))
    }
    pub fn key(key: PrivateKey) -> Credential {
        Credential::Key(Arc::new(key))
    }
}

/// What was agreed with the server, for logging and tests.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub server_ident: String,
    pub negotiated: Negotiated,
    pub strict_kex: bool,
    pub host_key: PublicKey,
    pub banner: String,
    pub kex_count: u32,
}

/// One SSH connection.
pub struct Session {
    /// Host trust warnings: malformed known_hosts lines, a file that could not be written.
    trust_warnings: Vec<String>,
    sock: TcpStream,
    client: Client,
    io_timeout: Option<Duration>,
    events: Vec<(ChannelId, ChannelEvent)>,
}

/// Connect to `addr` (each resolved address in turn) with the connect timeout.
pub fn tcp_connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(|e| Error::bad_argument(format!("cannot resolve address: {e}")))?.collect();
    let mut last = Error::bad_argument("address resolved to nothing");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = Error::Timeout(format!("TCP connect to {a} did not finish within {} ms", timeout.as_millis()))
            }
            Err(e) => last = Error::ConnectionClosed(format!("TCP connect to {a} failed: {e}")),
        }
    }
    Err(last)
}

impl Session {
    /// Connect, exchange keys, verify the host key, authenticate. The host key is looked up
    /// under the name given (`"name:port"`), or the address for a socket address.
    pub fn connect(addr: impl HostAddr, config: Config) -> Result<Session, Error> {
        let target = addr.host_port();
        let sock = tcp_connect(&addr, config.connect_timeout)?;
        Session::handshake_to(sock, config, target)
    }

    /// The same over a TCP stream the caller connected (host keys are looked up under the
    /// peer's address, or `host_key_alias`).
    pub fn handshake(sock: TcpStream, config: Config) -> Result<Session, Error> {
        let target = sock.peer_addr().ok().and_then(|a| a.host_port());
        Session::handshake_to(sock, config, target)
    }

    fn handshake_to(sock: TcpStream, config: Config, target: Option<(String, u16)>) -> Result<Session, Error> {
        if config.user.is_empty() {
            return Err(Error::bad_argument("user name is empty"));
        }
        let host_key_check = known_hosts::host_key_check(
            &config.host_key_policy,
            &config.host_keys,
            config.host_key_alias.as_deref(),
            target,
        )?;
        let deadline = Instant::now() + config.handshake_timeout;
        sock.set_nodelay(true)?;
        sock.set_nonblocking(true)?;
        let cc = ClientConfig {
            user: config.user,
            credentials: config.credentials,
            host_key_check,
            prefs: config.algorithms,
            rekey: config.rekey,
            allow_none_auth: config.allow_none_auth,
            keepalive_interval: config.keepalive_interval,
            keepalive_max: config.keepalive_max,
        };
        let client = Client::new(cc, Box::new(OsRandom), Instant::now());
        let mut s = Session { trust_warnings: Vec::new(), sock, client, io_timeout: config.io_timeout, events: Vec::new() };
        s.run_until(|c| c.phase() != Phase::Handshake, Some(deadline), "key exchange")?;
        s.after_host_key();
        let auth_deadline = deadline.min(Instant::now() + config.auth_timeout);
        s.run_until(|c| c.phase() == Phase::Connected, Some(auth_deadline), "authentication")?;
        Ok(s)
    }

    pub fn info(&self) -> Option<SessionInfo> {
        let t = self.client.transport();
        Some(SessionInfo {
            server_ident: String::from_utf8_lossy(t.server_ident()).into_owned(),
            negotiated: *t.negotiated()?,
            strict_kex: t.strict_kex(),
            host_key: t.host_key()?.clone(),
            banner: self.client.banner().to_string(),
            kex_count: t.kex_count(),
        })
    }

    /// The sans-IO core, for inspection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn deadline(&self) -> Option<Instant> {
        self.io_timeout.map(|d| Instant::now() + d)
    }

    /// Write what the core has to send, as far as the socket takes it.
    fn flush_some(&mut self) -> Result<(), Error> {
        while self.client.output_len() > 0 {
            match self.sock.write(self.client.output()) {
                Ok(0) => return Err(Error::ConnectionClosed("server closed the connection".into())),
                Ok(n) => self.client.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::ConnectionClosed(format!("write to server failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Carry out what the host key decision asks: record a host trusted on first use.
    fn after_host_key(&mut self) {
        let Some(d) = self.client.transport().host_key_decision() else { return };
        self.trust_warnings.extend(d.warnings.iter().cloned());
        if let Some(r) = d.record.clone() {
            if let Err(e) = known_hosts::record(&r) {
                self.trust_warnings.push(format!("failed to add the host to the list of known hosts: {e}"));
            }
        }
    }

    /// Host trust warnings so far: malformed known_hosts lines (skipped), a changed key
    /// accepted under `Strict::No`, files that could not be written.
    pub fn host_key_warnings(&self) -> &[String] {
        &self.trust_warnings
    }

    fn collect_events(&mut self) {
        if let Some(rw) = self.client.take_known_hosts_update() {
            if let Err(e) = known_hosts::rewrite(&rw) {
                self.trust_warnings.push(format!("UpdateHostKeys: {e}"));
            }
        }
        while let Some(ev) = self.client.poll_event() {
            if let Event::Channel(id, ce) = ev {
                self.events.push((id, ce));
            }
        }
    }

    /// Drive the connection until `done` holds, the deadline passes or the connection fails.
    fn run_until(
        &mut self,
        mut done: impl FnMut(&Client) -> bool,
        deadline: Option<Instant>,
        what: &str,
    ) -> Result<(), Error> {
        loop {
            let flushed = self.flush_some();
            self.collect_events();
            if let Some(e) = self.client.error() {
                let e = e.clone();
                let _ = self.flush_some(); // best effort: our DISCONNECT
                return Err(e);
            }
            if let Err(e) = flushed {
                self.client.fail(e.clone());
                return Err(e);
            }
            if done(&self.client) {
                return Ok(());
            }
            let wake = match (deadline, self.client.next_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let want_write = self.client.output_len() > 0;
            let ready = sys::poll(&[(self.sock.as_raw_fd(), true, want_write)], wake)?;
            let now = Instant::now();
            if ready.first().is_some_and(|r| r.read || r.hup) {
                // Straight into the client's input buffer: no copy before decryption.
                match self.sock.read(self.client.input_space(READ_CHUNK)) {
                    Ok(0) => {
                        let e = Error::ConnectionClosed(format!("server closed the connection during {what}"));
                        self.client.fail(e.clone());
                        return Err(e);
                    }
                    Ok(n) => {
                        // An error is recorded in the client and reported at the loop's top.
                        let _ = self.client.input_read(n, now);
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                    Err(e) => {
                        let e = Error::ConnectionClosed(format!("read from server failed: {e}"));
                        self.client.fail(e.clone());
                        return Err(e);
                    }
                }
            }
            self.client.handle_timeout(now);
            if let Some(d) = deadline {
                if now >= d && !done(&self.client) {
                    let e = Error::Timeout(format!("{what} did not finish in time"));
                    self.client.fail(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// Open a session channel and wait until the server accepts the command (or shell).
    pub(crate) fn start_id(&mut self, command: Option<&[u8]>) -> Result<ChannelId, Error> {
        let id = self.client.open_session(command)?;
        let deadline = self.deadline();
        let mut outcome: Option<Result<(), Error>> = None;
        self.run_until(
            |c| c.channel(id).is_none_or(|ch| ch.state != ChanState::Opening && ch.state != ChanState::Requesting),
            deadline,
            "starting the command",
        )?;
        for (eid, ev) in self.events.drain(..) {
            if eid == id {
                match ev {
                    ChannelEvent::Started => outcome = Some(Ok(())),
                    ChannelEvent::Failed(e) => outcome = Some(Err(e)),
                    _ => {}
                }
            }
        }
        match outcome {
            Some(Ok(())) => Ok(id),
            Some(Err(e)) => Err(e),
            None => Err(Error::ChannelRequestFailed("channel closed before the command started".into())),
        }
    }

    fn start(&mut self, command: Option<&str>) -> Result<Channel<'_>, Error> {
        let id = self.start_id(command.map(str::as_bytes))?;
        Ok(Channel { s: self, id, stash: [Vec::new(), Vec::new()] })
    }

    /// Hand the socket and the core to another driver (the C API's worker thread).
    pub(crate) fn into_parts(mut self) -> Result<(TcpStream, Client), Error> {
        let sock = self.sock.try_clone()?;
        let mut dead = Client::new(ClientConfig::new("-"), Box::new(OsRandom), Instant::now());
        dead.fail(Error::internal("moved"));
        let client = std::mem::replace(&mut self.client, dead);
        Ok((sock, client))
    }

    /// Run `command` on the server.
    pub fn exec(&mut self, command: &str) -> Result<Channel<'_>, Error> {
        self.start(Some(command))
    }

    /// Start the user's shell.
    pub fn shell(&mut self) -> Result<Channel<'_>, Error> {
        self.start(None)
    }

    /// Send keepalive@openssh.com and wait for the answer (any answer proves the server alive).
    pub fn keepalive(&mut self, timeout: Duration) -> Result<(), Error> {
        let before = self.client.send_keepalive();
        let _ = before;
        self.run_until(|c| c.pending_keepalives() == 0, Some(Instant::now() + timeout), "keepalive")
    }

    /// Send DISCONNECT and close the socket.
    pub fn close(mut self) {
        self.client.disconnect();
        let _ = self.flush_some();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.client.phase() != Phase::Dead {
            self.client.disconnect();
            let _ = self.flush_some();
        }
    }
}

/// A session channel running one command. Reading gives remote stdout; writing feeds remote
/// stdin. Remote stderr is read with `read_stderr`. Output of the stream you are not reading
/// (and, while you write, of both streams) is kept for you in memory, so neither stream can
/// stall the other and a command that echoes its input cannot deadlock a writer.
pub struct Channel<'a> {
    s: &'a mut Session,
    id: ChannelId,
    /// Output taken out of the SSH window before the application asked for it:
    /// [stdout, stderr].
    stash: [Vec<u8>; 2],
}

impl Channel<'_> {
    fn state(&self) -> Option<&crate::channel::Channel> {
        self.s.client.channel(self.id)
    }

    /// Move buffered output of one stream out of the window so the server keeps sending, up to
    /// `MAX_STASH` per stream: past that a stream nobody reads blocks the command, like a pipe.
    fn stash(&mut self, stderr: bool) {
        let room = MAX_STASH.saturating_sub(self.stash[usize::from(stderr)].len());
        let n = self.state().map_or(0, |c| if stderr { c.stderr_len() } else { c.stdout_len() }).min(room);
        if n > 0 {
            let v = &mut self.stash[usize::from(stderr)];
            let start = v.len();
            v.resize(start + n, 0);
            let got = self.s.client.read(self.id, stderr, v.get_mut(start..).unwrap_or_default());
            v.truncate(start + got);
        }
    }

    fn finished_reading(c: &Client, id: ChannelId, stderr: bool) -> bool {
        c.channel(id).is_none_or(|ch| {
            let buffered = if stderr { ch.stderr_len() } else { ch.stdout_len() };
            buffered > 0 || ch.eof_received || ch.state == ChanState::Closed
        }) || c.phase() == Phase::Dead
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
        let id = self.id;
        loop {
            self.stash(!stderr);
            if Self::finished_reading(&self.s.client, id, stderr) {
                break;
            }
            let deadline = self.s.deadline();
            let other_has_room = self.stash[usize::from(!stderr)].len() < MAX_STASH;
            let r = self.s.run_until(
                |c| {
                    Self::finished_reading(c, id, stderr)
                        || (other_has_room
                            && c.channel(id).is_some_and(|ch| if stderr { ch.stdout_len() > 0 } else { ch.stderr_len() > 0 }))
                },
                deadline,
                "reading",
            );
            if let Err(e) = r {
                // What arrived before the failure is still delivered.
                if self.state().map_or(0, |c| if stderr { c.stderr_len() } else { c.stdout_len() }) == 0 {
                    return Err(e);
                }
                break;
            }
        }
        let n = self.s.client.read(id, stderr, buf);
        let _ = self.s.flush_some();
        if n == 0 {
            // End of file only if the server said so; a connection that died is an error, even
            // after the data that arrived before it was handed out.
            let clean = self.state().is_some_and(|ch| ch.eof_received || ch.close_received);
            if let (false, Some(e)) = (clean, self.s.client.error()) {
                return Err(e.clone());
            }
        }
        Ok(n)
    }

    /// Read remote stderr.
    pub fn read_stderr(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_stream(true, buf)
    }

    /// Tell the remote command there is no more input (its stdin sees end of file).
    pub fn send_eof(&mut self) -> Result<(), Error> {
        self.s.client.send_eof(self.id);
        let deadline = self.s.deadline();
        self.s.run_until(|c| c.output_len() == 0, deadline, "sending EOF")
    }

    /// Close stdin, read and discard what is left of the output, and return how the command
    /// ended: `None` when the server closed the channel without reporting a status.
    pub fn wait(self) -> Result<Option<ExitStatus>, Error> {
        self.s.client.send_eof(self.id);
        let id = self.id;
        let deadline = self.s.deadline();
        loop {
            self.s.client.discard(id, false);
            self.s.client.discard(id, true);
            let closed = |c: &Client| {
                c.channel(id).is_none_or(|ch| ch.state == ChanState::Closed)
                    || c.channel(id).is_some_and(|ch| ch.stdout_len() > 0 || ch.stderr_len() > 0)
            };
            self.s.run_until(closed, deadline, "waiting for the command to exit")?;
            if self.state().is_none_or(|c| c.state == ChanState::Closed) {
                break;
            }
        }
        Ok(self.s.client.exit_status(id).cloned())
    }

    /// Close stdin and collect everything: (stdout, stderr, exit status).
    pub fn output(mut self) -> Result<Output, Error> {
        self.send_eof()?;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let id = self.id;
        let deadline = self.s.deadline();
        loop {
            let n = self.s.client.read(id, false, &mut buf);
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
            let m = self.s.client.read(id, true, &mut buf);
            err.extend_from_slice(buf.get(..m).unwrap_or_default());
            if n > 0 || m > 0 {
                continue;
            }
            if self.state().is_none_or(|c| c.state == ChanState::Closed) {
                break;
            }
            self.s.run_until(
                |c| c.channel(id).is_none_or(|ch| ch.state == ChanState::Closed || ch.stdout_len() > 0 || ch.stderr_len() > 0),
                deadline,
                "collecting output",
            )?;
        }
        let [mut stashed_out, mut stashed_err] = std::mem::take(&mut self.stash);
        stashed_out.extend_from_slice(&out);
        stashed_err.extend_from_slice(&err);
        Ok((stashed_out, stashed_err, self.s.client.exit_status(id).cloned()))
    }

    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.s.client.exit_status(self.id).cloned()
    }
}

impl Read for Channel<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stream(false, buf).map_err(to_io)
    }
}

impl Write for Channel<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.id;
        let deadline = self.s.deadline();
        let gone = |c: &Client| {
            c.channel(id).is_none_or(|ch| ch.state == ChanState::Closed || ch.eof_sent || ch.close_received)
        };
        loop {
            // Keep output moving so the server's window never fills with unread data.
            self.stash(false);
            self.stash(true);
            if gone(&self.s.client) || self.s.client.phase() == Phase::Dead {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "channel closed"));
            }
            // Do not queue more than a window's worth ahead of the socket.
            if self.s.client.output_len() < 4 * READ_CHUNK {
                let n = self.s.client.send_data(id, buf);
                if n > 0 {
                    let _ = self.s.flush_some();
                    return Ok(n);
                }
            }
            let room = [self.stash[0].len() < MAX_STASH, self.stash[1].len() < MAX_STASH];
            self.s
                .run_until(
                    |c| {
                        (c.writable(id) > 0 && c.output_len() < 4 * READ_CHUNK)
                            || gone(c)
                            || c.channel(id).is_some_and(|ch| {
                                (room[0] && ch.stdout_len() > 0) || (room[1] && ch.stderr_len() > 0)
                            })
                    },
                    deadline,
                    "writing",
                )
                .map_err(to_io)?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.s.deadline();
        self.s.run_until(|c| c.output_len() == 0, deadline, "flushing").map_err(to_io)
    }
}

impl Drop for Channel<'_> {
    fn drop(&mut self) {
        self.s.client.close_channel(self.id);
        let _ = self.s.flush_some();
    }
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

impl std::str::FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        PublicKey::from_openssh_line(s)
    }
}
