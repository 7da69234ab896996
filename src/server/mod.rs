//! The sans-IO server: the transport in the server role (RFC 4253), the `ssh-userauth` service
//! (RFC 4253 section 10, RFC 4252 / 4256 server half in `auth`), then the connection protocol
//! (RFC 4254, the shared `connection` layer in the server role: session channels with exec,
//! shell, subsystem, pty-req, env, window-change and signal; stdout, stderr as extended data,
//! exit-status and exit-signal). Same shape as `client::Client`: bytes in through
//! `handle_input`, bytes out through `output`/`consume_output`, events out through
//! `poll_event`, `now` passed in. Application decisions are events it answers
//! (`answer_auth`, `answer_open`, `answer_request`); while one is pending the core reads
//! nothing more, and a decision left unanswered when the next event is asked for is a refusal.
//! Deadlines (login grace, idle time, delayed failures) are checked in `handle_timeout`.

// Questions and events go one at a time, a few per connection: their size does not matter.
#![allow(clippy::large_enum_variant)]

pub mod auth;


use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algs::Preferences;
pub use crate::connection::ChannelOps;
use crate::connection::{ChannelEvent, ChannelId, Connection, OpenRequest, Request, Role};
use crate::error::Error;
use crate::gate::Service;
use crate::keys::PrivateKey;
use crate::msg::Msg;
use crate::random::Random;
use crate::transport::{Event as TEvent, RekeyLimits, Transport};
pub use auth::{AuthPolicy, Methods, Question};
use auth::{ServerAuth, Step};

/// Everything the server core needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The host keys, one per key type (at least one).
    pub host_keys: Vec<Arc<PrivateKey>>,
    pub prefs: Preferences,
    pub rekey: RekeyLimits,
    pub auth: AuthPolicy,
    /// Authentication must succeed within this time from the connection (LoginGraceTime).
    pub login_grace: Duration,
    /// Disconnect after this long without any packet from the client (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Most channels open at once.
    pub max_channels: usize,
    /// Environment variables a client may set (`env` requests, RFC 4254 section 6.4): exact
    /// names, or a prefix ending in `*` (`LC_*`). Everything else is refused.
    pub env_allow: Vec<String>,
    /// Hex dumps of packet payloads at trace level.
    pub log_payloads: bool,
}

impl ServerConfig {
    pub fn new(host_keys: Vec<Arc<PrivateKey>>) -> ServerConfig {
        let mut prefs = Preferences::default();
        // SHA-1 host signatures only when asked for (prefs.host_key may be set by the caller).
        prefs.host_key.retain(|a| crate::transport::negotiate::user_alg_acceptable(a.name()));
        ServerConfig {
            host_keys,
            prefs,
            rekey: RekeyLimits::default(),
            auth: AuthPolicy::default(),
            login_grace: DEFAULT_LOGIN_GRACE,
            idle_timeout: None,
            max_channels: DEFAULT_MAX_SESSIONS,
            env_allow: vec!["LANG".into(), "LC_*".into(), "TZ".into()],
            log_payloads: false,
        }
    }
}

/// OpenSSH's LoginGraceTime.
pub const DEFAULT_LOGIN_GRACE: Duration = Duration::from_secs(120);
/// OpenSSH's MaxSessions.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// What the application learns or decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A credential to judge: answer with `answer_auth`.
    Auth(Question),
    /// Authentication succeeded (method: "publickey", "password" or "keyboard-interactive").
    Authenticated { user: String, method: &'static str },
    /// The client opens a channel of `kind` ("session"): answer with `answer_open`.
    ChannelOpen { kind: String },
    /// A session request on channel `id`: answer with `answer_request` (exec, shell and
    /// subsystem start the program; window-change and signal want no reply but are answered
    /// the same way).
    ChannelRequest { id: ChannelId, request: Request },
    /// Channel news: data arrived (`Data`), the client's EOF, the channel closed.
    Channel(ChannelId, ChannelEvent),
}

/// What the application has not answered yet.
#[derive(Debug)]
enum Decision {
    Auth,
    Open(OpenRequest),
    Request(ChannelId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Key exchange, then waiting for the ssh-userauth service request.
    Handshake,
    Authenticating,
    Connected,
    Dead,
}

pub struct Server {
    t: Transport,
    auth: ServerAuth,
    conn: Connection,
    phase: Phase,
    events: VecDeque<Event>,
    error: Option<Error>,
    decision: Option<Decision>,
    /// The decision was handed out by `poll_event` (asking for the next one refuses it).
    decision_seen: bool,
    env_allow: Vec<String>,
    login_deadline: Instant,
    idle_timeout: Option<Duration>,
    last_heard: Instant,
    /// The latest `now` the caller passed in (decisions answered without one use it).
    now: Instant,
}

/// Input kept while a decision is pending; the driver stops reading beyond it.
const MAX_HELD_INPUT: usize = 256 * 1024;
/// Output (answers to the client's requests, data) beyond which the server reads no more
/// from a client that does not read its answers.
const MAX_HELD_OUTPUT: usize = 1024 * 1024;

impl Server {
    pub fn new(config: ServerConfig, rng: Box<dyn Random>, now: Instant) -> Result<Server, Error> {
        let mut t = Transport::new_server(config.prefs, config.host_keys, config.rekey, rng, now)?;
        t.set_log_payloads(config.log_payloads);
        Ok(Server {
            t,
            auth: ServerAuth::new(config.auth),
            conn: Connection::new(Role::Server, config.max_channels),
            phase: Phase::Handshake,
            events: VecDeque::new(),
            error: None,
            decision: None,
            decision_seen: false,
            env_allow: config.env_allow,
            login_deadline: now + config.login_grace,
            idle_timeout: config.idle_timeout,
            last_heard: now,
            now,
        })
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
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
    /// The authenticated (or authenticating) user.
    pub fn user(&self) -> Option<&str> {
        self.auth.user()
    }
    /// Whether the core takes more input now (not while a decision or a delayed failure is
    /// pending and enough is buffered).
    pub fn wants_input(&self) -> bool {
        !(self.busy() && self.t.buffered_input() >= MAX_HELD_INPUT) && self.t.pending_output() < MAX_HELD_OUTPUT
    }
    fn busy(&self) -> bool {
        self.decision.is_some() || self.auth.busy()
    }

    /// The next event. A decision handed out earlier and still unanswered is refused first.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.decision.is_some() && self.decision_seen {
            log::debug!(target: "sshbridge", "an unanswered decision counts as a refusal");
            let now = self.now;
            match self.decision {
                Some(Decision::Auth) => self.answer_auth(false, now),
                Some(Decision::Open(_)) => {
                    self.answer_open(false);
                }
                Some(Decision::Request(id)) => self.answer_request(id, false),
                None => {}
            }
        }
        if let Some(e) = self.events.pop_front() {
            if self.decision.is_some() && matches!(e, Event::Auth(_) | Event::ChannelOpen { .. } | Event::ChannelRequest { .. }) {
                self.decision_seen = true;
            }
            return Some(e);
        }
        self.conn.poll_event().map(|(id, ev)| Event::Channel(id, ev))
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

    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.t.receive(data);
        self.input_arrived(data.len(), now)
    }
    pub fn input_space(&mut self, min: usize) -> &mut [u8] {
        self.t.input_space(min)
    }
    /// Space to read up to `max` network bytes into, never empty (`Transport::read_space`).
    pub fn read_space(&mut self, max: usize) -> &mut [u8] {
        self.t.read_space(max)
    }
    pub fn input_read(&mut self, n: usize, now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.t.commit_input(n);
        self.input_arrived(n, now)
    }

    fn input_arrived(&mut self, n: usize, now: Instant) -> Result<(), Error> {
        self.now = self.now.max(now);
        if n > 0 {
            self.last_heard = now;
        }
        let r = self.process(now);
        self.fail_on(r)
    }

    /// Deadlines: login grace, idle time, delayed authentication failures, rekeying.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.phase == Phase::Dead {
            return;
        }
        if self.phase != Phase::Connected && now >= self.login_deadline {
            let _ = self.fail_on(Err(Error::Timeout("the client did not authenticate within the login grace time".into())));
            return;
        }
        if let Some(idle) = self.idle_timeout {
            if now.saturating_duration_since(self.last_heard) >= idle {
                let e = Error::Timeout(format!("the client was idle for {} s", crate::error::Tenths(idle)));
                let _ = self.fail_on(Err(e));
                return;
            }
        }
        let was_busy = self.auth.busy();
        self.auth.on_timer(now, &mut self.t);
        self.t.maybe_rekey(now);
        if was_busy && !self.busy() {
            // A held failure went out: read what waited behind it.
            let r = self.process(now);
            let _ = self.fail_on(r);
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Dead {
            return None;
        }
        let mut at = self.t.next_timer();
        let mut add = |x: Option<Instant>| {
            at = match (at, x) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        if self.phase != Phase::Connected {
            add(Some(self.login_deadline));
        }
        add(self.idle_timeout.and_then(|d| self.last_heard.checked_add(d)));
        add(self.auth.deadline());
        at
    }

    /// Record a fatal error that happened outside the core (I/O, peer closed).
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
                let (reason, text) = match &e {
                    Error::AuthFailed { .. } => (14, "too many authentication failures".to_string()),
                    other => (other.disconnect_reason(), other.to_string()),
                };
                self.t.disconnect(reason, text.get(..text.len().min(200)).unwrap_or(""));
            }
            self.fail(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Politely end the connection (DISCONNECT "by application").
    pub fn disconnect(&mut self) {
        if self.phase != Phase::Dead {
            self.t.disconnect(11, "disconnected by application");
            self.fail(Error::ConnectionClosed("disconnected by application".into()));
        }
    }

    fn process(&mut self, now: Instant) -> Result<(), Error> {
        while !self.busy() && self.phase != Phase::Dead {
            let Some(ev) = self.t.poll(now)? else { break };
            match ev {
                TEvent::KexDone { .. } => {}
                TEvent::Payload { seq, range } => {
                    let input = self.t.lend_input();
                    let r = self.dispatch(input.get(range).unwrap_or_default(), seq, now);
                    self.t.return_input(input);
                    r?;
                }
            }
        }
        self.t.maybe_rekey(now);
        Ok(())
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32, now: Instant) -> Result<(), Error> {
        let m = Msg::decode(payload)?;
        match m {
            Msg::ServiceRequest { name } => {
                if name != "ssh-userauth" {
                    return Err(Error::protocol(format!("service {:?} requested; only ssh-userauth is offered", crate::error::sanitize(name.as_bytes()))));
                }
                self.t.send_msg(&Msg::ServiceAccept { name });
                self.t.set_service(Service::Auth);
                self.phase = Phase::Authenticating;
                Ok(())
            }
            Msg::UserauthRequest { user, service, method } => {
                let step = self.auth.on_request(user, service, method, now, &mut self.t)?;
                self.on_auth_step(step);
                Ok(())
            }
            Msg::UserauthInfoResponse { responses } => {
                let step = self.auth.on_info_response(&responses, now, &mut self.t)?;
                self.on_auth_step(step);
                Ok(())
            }
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
            | Msg::ChannelFailure { .. } => {
                self.conn.handle(m, &mut self.t)?;
                self.collect();
                Ok(())
            }
            Msg::Unknown { .. } => {
                self.t.send_msg(&Msg::Unimplemented { seq });
                Ok(())
            }
            _ => Err(Error::protocol(format!("unexpected message {} from the client", payload.first().copied().unwrap_or(0)))),
        }
    }

    fn on_auth_step(&mut self, step: Step) {
        if let Step::Ask(q) = step {
            self.decision = Some(Decision::Auth);
            self.decision_seen = false;
            self.events.push_back(Event::Auth(q));
        }
    }

    /// Turn what the connection layer queued into events and decisions.
    fn collect(&mut self) {
        if self.decision.is_none() {
            if let Some(req) = self.conn.take_open_request() {
                self.events.push_back(Event::ChannelOpen { kind: req.kind.clone() });
                self.decision = Some(Decision::Open(req));
                self.decision_seen = false;
                return;
            }
        }
        while let Some((id, ev)) = self.conn.poll_event() {
            if ev != ChannelEvent::Request {
                self.events.push_back(Event::Channel(id, ev));
                continue;
            }
            self.next_request(id);
        }
    }

    /// The oldest request of channel `id` becomes the decision (env outside the allow-list is
    /// refused here, without asking).
    fn next_request(&mut self, id: ChannelId) {
        while self.decision.is_none() {
            let Some(req) = self.conn.channel(id).and_then(|c| c.peer_request()).cloned() else { return };
            if let Request::Env { name, .. } = &req {
                if !env_allowed(&self.env_allow, name) {
                    log::debug!(target: "sshbridge", "channel {id}: env {name:?} refused (not in the allow-list)");
                    if let Some(c) = self.conn.channel_mut(id) {
                        c.answer_request(false, &mut self.t);
                    }
                    continue;
                }
            }
            self.events.push_back(Event::ChannelRequest { id, request: req });
            self.decision = Some(Decision::Request(id));
            self.decision_seen = false;
        }
    }

    fn after_decision(&mut self, now: Instant) {
        self.decision = None;
        self.decision_seen = false;
        self.collect();
        let r = self.process(now);
        let _ = self.fail_on(r);
    }

    // ----- decisions -----

    /// Answer the pending `Event::Auth` question.
    pub fn answer_auth(&mut self, yes: bool, now: Instant) {
        if !matches!(self.decision, Some(Decision::Auth)) || self.phase == Phase::Dead {
            return;
        }
        match self.auth.answer(yes, now, &mut self.t) {
            Ok(true) => {
                self.phase = Phase::Connected;
                self.t.set_service(Service::Connected);
                let user = self.auth.user().unwrap_or_default().to_string();
                let method = self.auth.method.unwrap_or("none");
                log::info!(target: "sshbridge", "client authenticated as {user:?} by {method}");
                self.events.push_back(Event::Authenticated { user, method });
            }
            Ok(false) => {}
            Err(e) => {
                let _ = self.fail_on(Err(e));
                self.decision = None;
                return;
            }
        }
        self.after_decision(now);
    }

    /// Answer the pending `Event::ChannelOpen`; returns the channel when accepted.
    pub fn answer_open(&mut self, accept: bool) -> Option<ChannelId> {
        let Some(Decision::Open(req)) = self.decision.take() else {
            return None;
        };
        if self.phase == Phase::Dead {
            return None;
        }
        let id = if accept {
            self.conn.accept_open(&req, &mut self.t).ok()
        } else {
            self.conn.refuse_open(&req, 1, "refused by the server", &mut self.t);
            None
        };
        self.after_decision(self.now);
        id
    }

    /// Answer the pending `Event::ChannelRequest` of channel `id`.
    pub fn answer_request(&mut self, id: ChannelId, ok: bool) {
        if !matches!(self.decision, Some(Decision::Request(d)) if d == id) {
            return;
        }
        self.decision = None;
        if self.phase == Phase::Dead {
            return;
        }
        if let Some(c) = self.conn.channel_mut(id) {
            c.answer_request(ok, &mut self.t);
        }
        self.next_request(id);
        if self.decision.is_none() {
            self.after_decision(self.now);
        }
    }

    /// Start a key re-exchange now (when none is running).
    pub fn rekey(&mut self) -> bool {
        self.phase == Phase::Connected && self.t.rekey_now()
    }
}

/// The channel calls (send data and stderr, exit status, read, EOF, close, release) are the
/// shared `ChannelOps`.
impl ChannelOps for Server {
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

/// Whether `name` matches the allow-list (exact, or a prefix ending in `*`).
pub fn env_allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => a == name,
    })
}
