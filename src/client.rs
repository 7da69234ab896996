//! The sans-IO client: the transport (RFC 4253), then user authentication (RFC 4252) on the
//! `ssh-userauth` service (RFC 4253 section 10), then the connection protocol (RFC 4254, the
//! shared `connection` layer in the client role: many channels, global requests, forwarding).
//! Bytes in through `handle_input`, bytes out through `output`/`consume_output`, events out
//! through `poll_event`; `now` and the random generator are passed in. The one I/O driver of
//! the runtime drives this type for the Rust API and the C API alike.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::algs::Preferences;
use crate::auth::{Auth, Credential, Outcome};
pub use crate::connection::ChannelOps;
use crate::connection::{Buffered, Channel, ChannelEvent, Connection, Deliver, ExitStatus, Incoming, OpenKind, Request, Role};
use crate::error::Error;
use crate::gate::Service;
use crate::msg::Msg;
use crate::random::Random;
use crate::transport::{Event as TEvent, HostKeyCheck, RekeyLimits, Transport};
use crate::trust::update::{self, HostKeysUpdate};

/// Everything the core needs to know to connect and authenticate.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub user: String,
    /// Tried in order (the eCos API's order: DSA key, RSA key, password).
    pub credentials: Vec<Credential>,
    pub host_key_check: HostKeyCheck,
    pub prefs: Preferences,
    pub rekey: RekeyLimits,
    /// Accept a server that lets us in with the "none" method.
    pub allow_none_auth: bool,
    /// Send keepalive@openssh.com after this long without hearing from the server
    /// (OpenSSH's ServerAliveInterval); `None` disables it.
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives after which the server is declared dead (ServerAliveCountMax).
    pub keepalive_max: u32,
    /// Most channels open at once.
    pub max_channels: usize,
    /// Hex dumps of packet payloads at trace level.
    pub log_payloads: bool,
    /// Refuse a server without strict key exchange (Terrapin, CVE-2023-48795).
    pub require_strict_kex: bool,
}

impl ClientConfig {
    pub fn new(user: impl Into<String>) -> ClientConfig {
        ClientConfig {
            user: user.into(),
            credentials: Vec::new(),
            host_key_check: HostKeyCheck::default(),
            prefs: Preferences::default(),
            rekey: RekeyLimits::default(),
            allow_none_auth: true,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_max: DEFAULT_KEEPALIVE_MAX,
            require_strict_kex: false,
            max_channels: crate::connection::DEFAULT_MAX_CHANNELS,
            log_payloads: false,
        }
    }
}

/// Dead-peer detection by default: keepalive@openssh.com after 15 s of server silence, the
/// server declared dead after 3 unanswered ones (about 60 s). Any packet counts as an answer,
/// so a long silent command on a healthy server is never cut.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const DEFAULT_KEEPALIVE_MAX: u32 = 3;

pub use crate::connection::ChannelId;

/// What the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Authentication succeeded: channels may be opened.
    Authenticated,
    Channel(ChannelId, ChannelEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Handshake,
    Authenticating,
    Connected,
    /// A fatal error happened or we disconnected; see `error()`.
    Dead,
}

pub struct Client {
    t: Transport,
    auth: Auth,
    phase: Phase,
    conn: Connection,
    events: VecDeque<Event>,
    error: Option<Error>,
    keepalive: Option<(Duration, u32)>,
    /// When the server last sent us anything.
    last_heard: Instant,
    /// Keepalives sent since then.
    unanswered: u32,
    /// UpdateHostKeys (OpenSSH PROTOCOL 2.5), `crate::trust::update`.
    host_keys_update: HostKeysUpdate,
}

impl Client {
    pub fn new(config: ClientConfig, rng: Box<dyn Random>, now: Instant) -> Client {
        let mut auth = Auth::new(config.user, config.credentials);
        auth.allow_none = config.allow_none_auth;
        let keepalive = config.keepalive_interval.filter(|d| !d.is_zero()).map(|d| (d, config.keepalive_max));
        let mut t = Transport::new(config.prefs, config.host_key_check, config.rekey, rng, now);
        t.set_require_strict(config.require_strict_kex);
        t.set_log_payloads(config.log_payloads);
        Client {
            t,
            auth,
            phase: Phase::Handshake,
            conn: Connection::new(Role::Client, config.max_channels),
            events: VecDeque::new(),
            error: None,
            keepalive,
            last_heard: now,
            unanswered: 0,
            host_keys_update: HostKeysUpdate::default(),
        }
    }

    // ----- state -----

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
    pub fn transport(&self) -> &Transport {
        &self.t
    }
    /// `Transport::trim_buffers`: empty buffers above `keep` bytes are released.
    pub fn trim_buffers(&mut self, keep: usize) {
        self.t.trim_buffers(keep);
    }
    /// The server's USERAUTH_BANNER text, sanitized.
    pub fn banner(&self) -> &str {
        self.auth.banner()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.conn.poll_event().map(|(id, ev)| Event::Channel(id, ev))
    }
    /// The connection layer (channel table, global requests, forwards).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    // ----- bytes in and out -----

    pub fn output(&self) -> &[u8] {
        self.t.output()
    }
    pub fn consume_output(&mut self, n: usize) {
        self.t.consume_output(n)
    }
    pub fn output_len(&self) -> usize {
        self.t.output_len()
    }

    /// Feed bytes from the network. On a fatal error the client sends DISCONNECT (in `output`),
    /// enters `Phase::Dead` and returns the error (also kept in `error()`).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.t.receive(data);
        self.input_arrived(data.len(), now, &mut Buffered)
    }

    /// Space of at least `min` bytes to read network input into without a copy; then call
    /// `input_read` with the count. Same as `handle_input`, one copy fewer.
    pub fn input_space(&mut self, min: usize) -> &mut [u8] {
        self.t.input_space(min)
    }

    /// Space to read up to `max` network bytes into without a copy, never empty (shorter when
    /// that saves moving a partial packet: `Transport::read_space`); then `input_read`.
    pub fn read_space(&mut self, max: usize) -> &mut [u8] {
        self.t.read_space(max)
    }

    /// `n` bytes were read into the last `input_space`: process them as `handle_input` does.
    pub fn input_read(&mut self, n: usize, now: Instant) -> Result<(), Error> {
        self.input_read_to(n, now, &mut Buffered)
    }

    /// `input_read`, offering received channel data to `deliver` before buffering it (no copy
    /// into the channel's buffer for what it takes: `Deliver`).
    pub fn input_read_to(&mut self, n: usize, now: Instant, deliver: &mut dyn Deliver) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.t.commit_input(n);
        self.input_arrived(n, now, deliver)
    }

    fn input_arrived(&mut self, n: usize, now: Instant, deliver: &mut dyn Deliver) -> Result<(), Error> {
        if n > 0 {
            self.last_heard = now;
            self.unanswered = 0;
        }
        let r = self.process(now, deliver);
        self.fail_on(r)
    }

    /// Periodic work: rekey when a limit is reached; keepalives when the server is silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        self.t.maybe_rekey(now);
        if let (Some((_, max)), Some(due)) = (self.keepalive, self.keepalive_due()) {
            if now >= due {
                if self.unanswered >= max {
                    let silent = crate::error::Tenths(now.saturating_duration_since(self.last_heard));
                    let e = Error::Timeout(format!(
                        "the server stopped answering: nothing received for {silent} s, {max} keepalives unanswered"
                    ));
                    let _ = self.fail_on(Err(e));
                    return;
                }
                self.send_keepalive();
                self.unanswered += 1;
            }
        }
    }

    fn keepalive_due(&self) -> Option<Instant> {
        let (interval, _) = self.keepalive?;
        if self.phase != Phase::Connected {
            return None;
        }
        self.last_heard.checked_add(interval.checked_mul(self.unanswered.saturating_add(1))?)
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match (self.t.next_timer(), self.keepalive_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Record a fatal error that happened outside the core (I/O, timeout, peer closed).
    pub fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            log::info!(target: "sshbridge", "connection ended: {e}");
            self.error = Some(e);
        }
        self.phase = Phase::Dead;
    }

    fn fail_on(&mut self, r: Result<(), Error>) -> Result<(), Error> {
        if let Err(e) = r {
            if self.phase != Phase::Dead {
                // A host key refusal names local files: the server is told no more than that.
                let text = if matches!(e, Error::HostKeyRejected(_)) { "host key rejected".into() } else { e.to_string() };
                self.t.disconnect(e.disconnect_reason(), text.get(..text.len().min(200)).unwrap_or(""));
            }
            self.fail(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Politely end the connection (DISCONNECT "by application", RFC 4253 section 11.1).
    pub fn disconnect(&mut self) {
        if self.phase != Phase::Dead {
            self.t.disconnect(11, "disconnected by application");
            self.fail(Error::ConnectionClosed("disconnected by application".into()));
        }
    }

    fn process(&mut self, now: Instant, deliver: &mut dyn Deliver) -> Result<(), Error> {
        while let Some(ev) = self.t.poll(now)? {
            match ev {
                TEvent::KexDone { first: true } => {
                    if self.t.host_key_decision().is_some_and(|d| d.untrusted) {
                        self.auth.forbid_passwords(); // a changed key accepted under Strict::No
                    }
                    self.t.send_msg(&Msg::ServiceRequest { name: "ssh-userauth" });
                    self.t.set_service(Service::Requested);
                }
                TEvent::KexDone { first: false } => {}
                TEvent::Payload { seq, range } => {
                    // The payload is read where it was decrypted: borrow the input buffer.
                    let input = self.t.lend_input();
                    let r = self.dispatch(input.get(range).unwrap_or_default(), seq, deliver);
                    self.t.return_input(input);
                    r?;
                }
            }
        }
        self.t.trim_input(MAX_IDLE_INPUT);
        self.t.maybe_rekey(now);
        Ok(())
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32, deliver: &mut dyn Deliver) -> Result<(), Error> {
        let m = Msg::decode(payload)?;
        match m {
            Msg::ServiceAccept { name } => {
                if name != "ssh-userauth" {
                    return Err(Error::protocol(format!("SERVICE_ACCEPT for {name:?}")));
                }
                self.phase = Phase::Authenticating;
                self.t.set_service(Service::Auth);
                self.auth.start(&mut self.t);
                Ok(())
            }
            Msg::UserauthSuccess | Msg::UserauthFailure { .. } | Msg::UserauthBanner { .. } | Msg::Userauth60 { .. } => {
                if self.auth.handle(m, &mut self.t)? == Outcome::Success {
                    self.phase = Phase::Connected;
                    self.t.set_service(Service::Connected);
                    self.events.push_back(Event::Authenticated);
                }
                Ok(())
            }
            Msg::GlobalRequest { name, data, .. } if name == update::HOSTKEYS => {
                // UpdateHostKeys (crate::trust::update); the connection layer still answers.
                self.host_keys_update.on_announce(data, &mut self.t, self.conn.pending_globals());
                self.conn.handle(m, &mut self.t)
            }
            Msg::RequestSuccess { .. } | Msg::RequestFailure if self.host_keys_update.on_reply(&m, &self.t) => Ok(()),
            Msg::GlobalRequest { .. }
            | Msg::RequestSuccess { .. }
            | Msg::RequestFailure
            | Msg::ChannelOpen { .. }
            | Msg::ChannelOpenConfirmation { .. }
            | Msg::ChannelOpenFailure { .. }
            | Msg::ChannelWindowAdjust { .. }
            | Msg::ChannelData { .. }
            | Msg::ChannelExtendedData { .. }
            | Msg::ChannelEof { .. }
            | Msg::ChannelClose { .. }
            | Msg::ChannelRequest { .. }
            | Msg::ChannelSuccess { .. }
            | Msg::ChannelFailure { .. } => self.conn.handle_to(m, &mut self.t, deliver),
            Msg::Unknown { .. } => {
                self.t.send_msg(&Msg::Unimplemented { seq });
                Ok(())
            }
            _ => Err(Error::protocol(format!("unexpected message {}", payload.first().copied().unwrap_or(0)))),
        }
    }

    // ----- channels -----

    fn connected(&self) -> Result<(), Error> {
        if self.phase == Phase::Connected {
            Ok(())
        } else {
            Err(self.error.clone().unwrap_or_else(|| Error::bad_argument("not authenticated yet")))
        }
    }

    /// Open a session channel running `command` (None: a shell). `Event::Channel(id, Started)`
    /// follows when the server accepts the command.
    pub fn open_session(&mut self, command: Option<&[u8]>) -> Result<ChannelId, Error> {
        let start = match command {
            Some(c) => Request::Exec(c.to_vec()),
            None => Request::Shell,
        };
        self.open_channel(&OpenKind::Session, Some(start))
    }

    /// Open a channel of `kind`; `start` goes out once the server confirms it.
    pub fn open_channel(&mut self, kind: &OpenKind, start: Option<Request>) -> Result<ChannelId, Error> {
        self.connected()?;
        self.conn.open(kind, start, &mut self.t)
    }

    /// Send a channel request; the ticket collects its answer (`take_request_result`).
    pub fn request(&mut self, id: ChannelId, req: Request) -> Result<Option<u64>, Error> {
        self.connected()?;
        let (c, t) = self.channel_mut(id).ok_or_else(|| Error::bad_argument("no such channel"))?;
        c.request(req, t)
    }

    pub fn take_request_result(&mut self, id: ChannelId, ticket: u64) -> Option<Result<(), Error>> {
        self.conn.channel_mut(id).and_then(|c| c.take_result(ticket))
    }

    fn channel_mut(&mut self, id: ChannelId) -> Option<(&mut Channel, &mut Transport)> {
        let t = &mut self.t;
        self.conn.channel_mut(id).map(|c| (c, t))
    }

    pub fn exit_status(&self, id: ChannelId) -> Option<&ExitStatus> {
        self.channel(id).and_then(|c| c.exit.as_ref())
    }

    /// What the host key decision asks of the runtime, once: a known_hosts line to record and
    /// warnings.
    pub fn take_host_key_actions(&mut self) -> Option<(Option<crate::trust::Record>, Vec<String>)> {
        self.host_keys_update.take_decision(&self.t)
    }

    /// The known_hosts edit UpdateHostKeys asks for, once (the runtime carries it out).
    pub fn take_known_hosts_update(&mut self) -> Option<update::Rewrite> {
        self.host_keys_update.take()
    }

    // ----- global requests -----

    /// Keepalives sent and not yet answered.
    pub fn pending_keepalives(&self) -> u32 {
        self.conn.pending_keepalives()
    }

    /// Send keepalive@openssh.com as a global request wanting a reply (any reply proves the
    /// server alive). Returns how many are unanswered, this one included.
    pub fn send_keepalive(&mut self) -> u32 {
        if self.phase == Phase::Connected {
            self.conn.send_keepalive(&mut self.t);
        }
        self.conn.pending_keepalives()
    }

    /// Ask the server to forward connections to `addr:port` to us (RFC 4254 section 7.1).
    pub fn tcpip_forward(&mut self, addr: &str, port: u32) -> Result<u64, Error> {
        self.connected()?;
        Ok(self.conn.tcpip_forward(addr, port, &mut self.t))
    }
    pub fn cancel_forward(&mut self, addr: &str, port: u32) {
        if self.phase == Phase::Connected {
            self.conn.cancel_forward(addr, port, &mut self.t);
        }
    }
    pub fn take_global_result(&mut self, ticket: u64) -> Option<Result<Vec<u8>, Error>> {
        self.conn.take_global_result(ticket)
    }
    pub fn take_incoming(&mut self, addr: &str, port: u32) -> Option<Incoming> {
        self.conn.take_incoming(addr, port)
    }

    /// Start a key re-exchange now (when none is running). Returns whether one was started.
    pub fn rekey(&mut self) -> Result<bool, Error> {
        self.connected()?;
        Ok(self.t.rekey_now())
    }
}

/// The channel calls (send, read, EOF, close, release) are the shared `ChannelOps`.
impl ChannelOps for Client {
    fn link(&mut self) -> (&mut Connection, &mut Transport) {
        (&mut self.conn, &mut self.t)
    }
    fn link_ref(&self) -> (&Connection, &Transport) {
        (&self.conn, &self.t)
    }
    fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }
}

/// An input buffer grown beyond this (by one huge packet) is released once it is empty.
const MAX_IDLE_INPUT: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::KexInit;
    use crate::random::TestRng;

    fn client() -> Client {
        let mut cfg = ClientConfig::new("u");
        cfg.credentials.push(Credential::Password(std::sync::Arc::new(zeroize::Zeroizing::new("pw".into()))));
        Client::new(cfg, Box::new(TestRng::new(7)), Instant::now())
    }

    fn server_kexinit(extra_kex: &[&'static str]) -> Vec<u8> {
        let mut kex = vec!["curve25519-sha256"];
        kex.extend_from_slice(extra_kex);
        Msg::KexInit(Box::new(KexInit {
            cookie: [1; 16],
            kex,
            host_key: vec!["ssh-ed25519"],
            cipher_c2s: vec!["chacha20-poly1305@openssh.com"],
            cipher_s2c: vec!["chacha20-poly1305@openssh.com"],
            mac_c2s: vec!["hmac-sha2-256"],
            mac_s2c: vec!["hmac-sha2-256"],
            comp_c2s: vec!["none"],
            comp_s2c: vec!["none"],
            lang_c2s: vec![],
            lang_s2c: vec![],
            first_kex_follows: false,
            reserved: 0,
        }))
        .encode()
    }

    /// Frame a payload as an unencrypted packet.
    fn plain_packet(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::cipher::Sealer::plaintext().seal(0, payload, &mut TestRng::new(1), &mut out);
        out
    }

    #[test]
    fn sends_ident_and_first_kexinit_with_markers() {
        let c = client();
        let out = c.output();
        assert!(out.starts_with(b"SSH-2.0-sshbridge_"));
        let text = String::from_utf8_lossy(out);
        assert!(text.contains("kex-strict-c-v00@openssh.com"));
        assert!(text.contains("ext-info-c"));
    }

    #[test]
    fn answers_kexinit_with_kex_init_value() {
        let mut c = client();
        let n = c.output_len();
        c.consume_output(n);
        let mut input = b"SSH-2.0-test\r\n".to_vec();
        input.extend(plain_packet(&server_kexinit(&["kex-strict-s-v00@openssh.com"])));
        c.handle_input(&input, Instant::now()).unwrap();
        assert!(c.transport().strict_kex());
        // One plaintext packet carrying message 30 with a 32-byte curve25519 value.
        let out = c.output().to_vec();
        assert_eq!(out.get(5), Some(&crate::msg::KEX_INIT));
    }

    /// Strict KEX: an IGNORE before the server's KEXINIT taints the exchange.
    #[test]
    fn strict_kex_rejects_ignore_before_kexinit() {
        let mut c = client();
        let mut input = b"SSH-2.0-test\r\n".to_vec();
        input.extend(plain_packet(&Msg::Ignore { data: b"x" }.encode()));
        input.extend(plain_packet(&server_kexinit(&["kex-strict-s-v00@openssh.com"])));
        let e = c.handle_input(&input, Instant::now()).unwrap_err();
        assert!(matches!(e, Error::StrictKex(_)), "{e}");
        assert_eq!(c.phase(), Phase::Dead);
        // Without the marker the IGNORE is tolerated.
        let mut c = client();
        let mut input = b"SSH-2.0-test\r\n".to_vec();
        input.extend(plain_packet(&Msg::Ignore { data: b"x" }.encode()));
        input.extend(plain_packet(&server_kexinit(&[])));
        c.handle_input(&input, Instant::now()).unwrap();
        assert!(!c.transport().strict_kex());
    }

    #[test]
    fn strict_kex_rejects_debug_during_exchange_and_out_of_phase_messages() {
        for (strict, bad) in [
            (true, Msg::Debug { always_display: true, message: b"x" }.encode()),
            (false, Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
            (false, Msg::UserauthSuccess.encode()),
            (false, Msg::ChannelData { recipient: 0, data: b"x" }.encode()),
            (false, Msg::ExtInfo { extensions: vec![] }.encode()),
            (false, server_kexinit(&[])),
            (false, Msg::NewKeys.encode()),
        ] {
            let mut c = client();
            let mut input = b"SSH-2.0-test\r\n".to_vec();
            let marker: &[&'static str] = if strict { &["kex-strict-s-v00@openssh.com"] } else { &[] };
            input.extend(plain_packet(&server_kexinit(marker)));
            input.extend(plain_packet(&bad));
            let e = c.handle_input(&input, Instant::now()).unwrap_err();
            if strict {
                assert!(matches!(e, Error::StrictKex(_)), "{e}");
            } else {
                assert!(matches!(e, Error::Protocol(_)), "{e}");
            }
            // A DISCONNECT goes out before we close.
            assert!(c.output_len() > 0);
        }
    }

    #[test]
    fn disconnect_text_reaches_the_error() {
        let mut c = client();
        let mut input = b"SSH-2.0-test\r\n".to_vec();
        input.extend(plain_packet(&Msg::Disconnect { reason: 11, description: b"go away\x1b[2J" }.encode()));
        let e = c.handle_input(&input, Instant::now()).unwrap_err();
        assert_eq!(e.to_string(), "server disconnected (reason 11): go away\\u{1b}[2J");
    }

    #[test]
    fn no_common_algorithm_names_the_category() {
        let mut c = client();
        let raw = server_kexinit(&[]);
        let mut k = Msg::decode(&raw).unwrap();
        if let Msg::KexInit(ref mut ki) = k {
            ki.cipher_c2s = vec!["3des-cbc"];
        }
        let mut input = b"SSH-2.0-test\r\n".to_vec();
        input.extend(plain_packet(&k.encode()));
        let e = c.handle_input(&input, Instant::now()).unwrap_err();
        assert!(e.to_string().contains("no matching cipher (client to server)"), "{e}");
    }

    /// Arbitrary bytes after a valid identification never panic and never hang the core: each
    /// feed either needs more input or fails with an error.
    #[test]
    fn random_input_never_panics() {
        let mut rng = TestRng::new(99);
        for round in 0..3000u32 {
            let mut c = client();
            let mut buf = vec![0u8; (round as usize * 7) % 600];
            crate::random::Random::fill(&mut rng, &mut buf);
            let mut input = b"SSH-2.0-fuzz\r\n".to_vec();
            if round % 3 == 0 {
                input.extend(plain_packet(&server_kexinit(&["kex-strict-s-v00@openssh.com"])));
            }
            if round % 5 == 0 {
                // A plausible length prefix so the body parsers are reached.
                let len = (buf.len() as u32).saturating_sub(4);
                if let Some(head) = buf.get_mut(..4) {
                    head.copy_from_slice(&len.to_be_bytes());
                }
                if let Some(p) = buf.get_mut(4) {
                    *p = 4;
                }
            }
            input.extend_from_slice(&buf);
            let _ = c.handle_input(&input, Instant::now());
        }
    }
}
