//! The blocking Rust API: `Session` is a handle (Clone + Send + Sync) to one SSH connection
//! whose I/O runs in its own driver thread (`driver`). Any number of channels (RFC 4254
//! section 5) can be used at once from different threads: `exec`, `shell`, `open_session`
//! (then env, pty, subsystem, ...), `direct_tcpip` (section 7.2), local and remote port
//! forwarding (`forward_local`, `forward_remote`, section 7.1), explicit `rekey` (RFC 4253
//! section 9). The connection closes when the last handle (sessions, channels, forwards) is
//! dropped.
//!
//! ```no_run
//! use std::io::Read;
//! use sshbridge::{Config, Credential, Session};
//!
//! let mut config = Config::new("alice");
//! config.credentials.push(Credential::password("secret"));
//! config.host_keys.push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...".parse().unwrap());
//! let session = Session::connect("192.0.2.10:22", config)?;
//! let mut ch = session.exec("uname -a")?;
//! let mut out = String::new();
//! ch.read_to_string(&mut out)?;
//! let status = ch.wait()?;
//! println!("{out} exited with {status:?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::connection::ChannelOps;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::client::{ChannelId, Client, ClientConfig, Phase};
use crate::connection::{OpenKind, Request};
use crate::error::Error;
use crate::keys::PublicKey;
use crate::runtime::channel::Channel;
use crate::runtime::driver::{self, Bridge, Core, Shared};
use crate::runtime::sys::{self, OsRandom};
use crate::runtime::known_hosts::{self, HostAddr};

pub use crate::runtime::config::{Config, SessionInfo};

struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    io_timeout: Option<Duration>,
    /// Do not wait for the driver when the last handle goes (C API close(h, 0)).
    detached: AtomicBool,
    /// `Config::env`: sent on every session channel before its command.
    env: Vec<(String, String)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake();
        if !self.detached.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.lock().take() {
                let _ = t.join();
            }
        }
        // Otherwise dropping the JoinHandle detaches the thread; it ends by itself.
    }
}

/// One SSH connection (a cheap handle: clones share it).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
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
        let host_key_check =
            known_hosts::host_key_check(&config.host_key_policy, &config.host_keys, config.host_key_alias.as_deref(), target)?;
        let deadline = Instant::now() + config.handshake_timeout;
        sock.set_nodelay(true)?;
        if config.tcp_keepalive {
            sys::set_tcp_keepalive(&sock)?;
        }
        let cc = ClientConfig {
            user: config.user,
            credentials: config.credentials,
            host_key_check,
            prefs: config.algorithms,
            rekey: config.rekey,
            allow_none_auth: config.allow_none_auth,
            keepalive_interval: config.keepalive_interval,
            keepalive_max: config.keepalive_max,
            max_channels: config.max_channels,
            log_payloads: config.log_payloads,
            require_strict_kex: config.require_strict_kex,
        };
        log::debug!(target: "sshbridge", "connecting to {} as {:?}", sock.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string()), cc.user);
        let client = Client::new(cc, Box::new(OsRandom), Instant::now());
        if config.log_sink.is_some() {
            crate::logging::LogSink::install();
        }
        let (shared, thread) = driver::spawn(sock, client, Some(deadline), config.auth_timeout, config.log_sink)?;
        let s = Session {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
                io_timeout: config.io_timeout,
                detached: AtomicBool::new(false),
                env: config.env,
            }),
        };
        // The driver enforces the handshake deadlines; the margin only guards against a bug.
        let sh = s.inner.shared.clone();
        let r = sh
            .wait_until(sh.lock(), Some(deadline + Duration::from_secs(2)), "key exchange and authentication", |c| {
                c.ep.phase() == Phase::Connected
            })
            .map(drop);
        // On an error, dropping `s` joins the driver, which has closed the socket.
        r.map(|()| s)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.inner.shared.lock()
    }

    /// The deadline of one blocking operation (`Config::io_timeout`).
    pub(crate) fn io_deadline(&self) -> Option<Instant> {
        self.inner.io_timeout.map(|d| Instant::now() + d)
    }

    /// Do not wait for the connection thread when the last handle is dropped.
    pub(crate) fn detach(&self) {
        self.inner.detached.store(true, Ordering::SeqCst);
    }

    /// Hand a descriptor-based consumer to the connection's driver thread.
    pub(crate) fn attach(&self, b: Box<dyn Bridge>) {
        self.lock().new_bridges.push(b);
        self.inner.shared.wake();
    }

    /// What was negotiated, the server's host key, banner and identification.
    pub fn info(&self) -> Option<SessionInfo> {
        let g = self.lock();
        let t = g.ep.transport();
        Some(SessionInfo {
            server_ident: String::from_utf8_lossy(t.server_ident()).into_owned(),
            negotiated: *t.negotiated()?,
            strict_kex: t.strict_kex(),
            host_key: t.host_key()?.clone(),
            banner: g.ep.banner().to_string(),
            kex_count: t.kex_count(),
            session_id: t.session_id()?.to_vec(),
            buffer_bytes: t.buffer_capacity(),
        })
    }

    /// Host trust warnings: malformed known_hosts lines (skipped), a changed key accepted
    /// under `Strict::No`. (Files that could not be written are logged.)
    pub fn host_key_warnings(&self) -> Vec<String> {
        self.lock().ep.transport().host_key_decision().map(|d| d.warnings.clone()).unwrap_or_default()
    }

    /// The connection's fatal error, once it died.
    pub fn error(&self) -> Option<Error> {
        self.lock().ep.error().cloned()
    }

    /// Channels in the connection's table (open, or closed and not yet released).
    pub fn channel_count(&self) -> usize {
        self.lock().ep.connection().channel_count()
    }

    /// Open a channel and wait until the server confirms it (and accepts `start`, if any).
    pub(crate) fn open_id(&self, kind: &OpenKind, start: Option<Request>) -> Result<ChannelId, Error> {
        let has_start = start.is_some();
        let sh = self.shared();
        let mut g = sh.lock();
        let id = g.ep.open_channel(kind, start)?;
        sh.wake();
        let r = sh.wait_until(g, self.io_deadline(), "opening a channel", |c| {
            c.ep.channel(id).is_none_or(|ch| if has_start { ch.start_settled() } else { ch.state != crate::connection::ChanState::Opening })
        });
        let mut g = match r {
            Ok(g) => g,
            Err(e) => {
                let mut g = sh.lock();
                g.ep.release_channel(id);
                sh.wake();
                return Err(e);
            }
        };
        // A fast command may have run and closed already: that is success, if it started.
        let failed = match g.ep.channel(id) {
            None => Some(Error::ChannelRequestFailed("channel closed before it was started".into())),
            Some(ch) => ch.error.clone().or_else(|| {
                (has_start && !ch.started).then(|| Error::ChannelRequestFailed("channel closed before it was started".into()))
            }),
        };
        if let Some(e) = failed {
            g.ep.release_channel(id);
            sh.wake();
            return Err(e);
        }
        Ok(id)
    }

    /// Run `command` on the server.
    pub fn exec(&self, command: &str) -> Result<Channel, Error> {
        self.exec_bytes(command.as_bytes())
    }

    /// Run a command given as bytes (RFC 4254 section 6.5: no character set is implied).
    pub fn exec_bytes(&self, command: &[u8]) -> Result<Channel, Error> {
        if !self.inner.env.is_empty() {
            let mut ch = self.open_session()?;
            ch.exec_bytes(command)?;
            return Ok(ch);
        }
        let id = self.open_id(&OpenKind::Session, Some(Request::Exec(command.to_vec())))?;
        Ok(Channel::new(self.clone(), id))
    }

    /// Start the user's shell.
    pub fn shell(&self) -> Result<Channel, Error> {
        if !self.inner.env.is_empty() {
            let mut ch = self.open_session()?;
            ch.shell()?;
            return Ok(ch);
        }
        let id = self.open_id(&OpenKind::Session, Some(Request::Shell))?;
        Ok(Channel::new(self.clone(), id))
    }

    /// An opened session channel with nothing requested yet but `Config::env`: set env, a
    /// pty, then exec, shell or a subsystem.
    pub fn open_session(&self) -> Result<Channel, Error> {
        let id = self.open_id(&OpenKind::Session, None)?;
        let mut ch = Channel::new(self.clone(), id);
        ch.send_env(&self.inner.env)?;
        Ok(ch)
    }

    /// A TCP connection made by the server to `host:port` (RFC 4254 section 7.2), as a byte
    /// stream: read what the remote end sends, write to it, `send_eof` to half-close.
    pub fn direct_tcpip(&self, host: &str, port: u16) -> Result<Channel, Error> {
        let kind = OpenKind::DirectTcpip {
            host: host.to_string(),
            port: u32::from(port),
            origin_host: "127.0.0.1".into(),
            origin_port: 0,
        };
        let id = self.open_id(&kind, None)?;
        Ok(Channel::new(self.clone(), id))
    }

    /// Exchange keys again now (RFC 4253 section 9); returns once the new keys are in use.
    pub fn rekey(&self) -> Result<(), Error> {
        let sh = self.shared();
        let mut g = sh.lock();
        let before = g.ep.transport().kex_count();
        g.ep.rekey()?;
        sh.wake();
        // A key exchange already running (started by either side) counts too.
        let _g = sh.wait_until(g, self.io_deadline(), "key re-exchange", |c| c.ep.transport().kex_count() > before)?;
        Ok(())
    }

    /// Send keepalive@openssh.com and wait for the answer (any answer proves the server alive).
    pub fn keepalive(&self, timeout: Duration) -> Result<(), Error> {
        let sh = self.shared();
        let mut g = sh.lock();
        g.ep.send_keepalive();
        sh.wake();
        let _g = sh.wait_until(g, Some(Instant::now() + timeout), "keepalive", |c| c.ep.pending_keepalives() == 0)?;
        Ok(())
    }

    /// Close this handle. The connection ends (DISCONNECT, socket closed) when the last handle
    /// of it (sessions, channels, forwards) is gone.
    pub fn close(self) {}
}

impl std::str::FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        PublicKey::from_openssh_line(s)
    }
}
