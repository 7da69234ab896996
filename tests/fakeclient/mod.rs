//! The hostile-client harness (the mirror of `tests/fake/`): our `Server` in memory, driven by
//! the scripted client `sshbridge::fuzzing::EmuClient` (a real key exchange on the crate's own
//! codec, then any payload, sealed or raw, on cue), with a simulated clock and a recording
//! application that answers every decision by a fixed policy.
//!
//! Every step is a bounded number of calls (no loop waits for the server to "settle"), so a
//! case that would hang the server fails instead of hanging the test.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use sshbridge::connection::{ChannelEvent, ChannelId, ChannelOps, ExitStatus, Request};
use sshbridge::fuzzing::{server_host_keys, ClientSuite, EmuClient, FuzzRng};
use sshbridge::msg::{self, AuthMethod, Msg};
use sshbridge::server::{Event, Phase, Question, Server, ServerConfig};
use sshbridge::wire::Writer;
use sshbridge::{KeyKind, PrivateKey, PublicKey};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "sesame";
pub const SERVICE: &str = "ssh-connection";

/// The application: answers by policy, records everything it was told or asked.
pub struct App {
    /// Public keys it accepts for `USER`.
    pub keys: Vec<PublicKey>,
    pub accept_opens: bool,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Commands it ran (exec requests it accepted).
    pub ran: Vec<Vec<u8>>,
    /// Channels it accepted.
    pub channels: Vec<ChannelId>,
    /// Write this much on stdout for every exec, without closing (0: answer and close).
    pub exec_output: usize,
}

impl App {
    pub fn questions(&self) -> Vec<&Question> {
        self.events.iter().filter_map(|e| if let Event::Auth(q) = e { Some(q) } else { None }).collect()
    }
    pub fn authenticated(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Authenticated { .. })).count()
    }
    pub fn opens(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::ChannelOpen { .. })).count()
    }
    pub fn requests(&self) -> Vec<&Request> {
        self.events.iter().filter_map(|e| if let Event::ChannelRequest { request, .. } = e { Some(request) } else { None }).collect()
    }
    /// Asked anything about channels at all.
    pub fn saw_connection_layer(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::ChannelOpen { .. } | Event::ChannelRequest { .. }))
    }
}

pub struct Rig {
    pub s: Server,
    pub c: EmuClient,
    pub app: App,
    pub start: Instant,
}

pub fn config() -> ServerConfig {
    ServerConfig::new(server_host_keys())
}

/// A user key made from `seed` (deterministic).
pub fn user_key(kind: KeyKind, seed: u64) -> PrivateKey {
    PrivateKey::generate_with(kind, &mut FuzzRng::new(seed)).unwrap()
}

impl Rig {
    /// A server with `cfg` and a strict client (suite 0: curve25519, ed25519, chacha20-poly1305)
    /// that has not sent anything yet.
    pub fn new(cfg: ServerConfig) -> Rig {
        Rig::with_client(cfg, 0, true)
    }

    pub fn with_client(cfg: ServerConfig, suite: u8, strict: bool) -> Rig {
        let start = Instant::now();
        let s = Server::new(cfg, Box::new(FuzzRng::new(0x5e5e)), start).unwrap();
        let c = EmuClient::new(ClientSuite::pick(suite), strict, start);
        let app = App { keys: vec![], accept_opens: true, events: vec![], ran: vec![], channels: vec![], exec_output: 0 };
        Rig { s, c, app, start }
    }

    /// Through the key exchange.
    pub fn kexed(cfg: ServerConfig) -> Rig {
        let mut r = Rig::new(cfg);
        r.c.handshake(&mut r.s).unwrap();
        r.assert_alive();
        r
    }

    /// Through the key exchange and the ssh-userauth service request.
    pub fn authenticating(cfg: ServerConfig) -> Rig {
        let mut r = Rig::kexed(cfg);
        r.send(&Msg::ServiceRequest { name: "ssh-userauth" }.encode());
        assert!(r.c.take(msg::SERVICE_ACCEPT).is_some(), "no SERVICE_ACCEPT: {:?}", r.c.numbers());
        r
    }

    /// Logged in with the password.
    pub fn connected(cfg: ServerConfig) -> Rig {
        let mut r = Rig::authenticating(cfg);
        r.send(&password(USER, PASSWORD));
        assert!(r.c.take(msg::USERAUTH_SUCCESS).is_some(), "no USERAUTH_SUCCESS: {:?} {:?}", r.c.numbers(), r.s.error());
        assert_eq!(r.s.phase(), Phase::Connected);
        r
    }

    pub fn now(&self) -> Instant {
        self.c.now
    }

    /// Seal and send one payload, then let the application act; false once the server died.
    pub fn send(&mut self, payload: &[u8]) -> bool {
        let pkt = self.c.seal(payload);
        self.send_raw(&pkt)
    }

    /// Several payloads in one write (pipelined).
    pub fn send_all(&mut self, payloads: &[Vec<u8>]) -> bool {
        let mut bytes = Vec::new();
        for p in payloads {
            bytes.extend(self.c.seal(p));
        }
        self.send_raw(&bytes)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> bool {
        self.c.send_raw(&mut self.s, bytes);
        self.serve();
        self.s.phase() != Phase::Dead
    }

    /// The simulated clock moves on; the server's deadlines are checked.
    pub fn advance(&mut self, d: Duration) {
        self.c.now += d;
        self.s.handle_timeout(self.c.now);
        self.serve();
    }

    /// The application handles every event (bounded), then the client collects the output.
    pub fn serve(&mut self) {
        let now = self.c.now;
        for _ in 0..256 {
            let Some(ev) = self.s.poll_event() else { break };
            self.app.events.push(ev.clone());
            match ev {
                Event::Auth(q) => {
                    let yes = match &q {
                        Question::Password { user, password } => user == USER && password.as_str() == PASSWORD,
                        Question::PublicKey { user, key, .. } => user == USER && self.app.keys.contains(key),
                        Question::KeyboardInteractive { .. } => false,
                    };
                    self.s.answer_auth(yes, now);
                }
                Event::ChannelOpen { .. } => {
                    if let Some(id) = self.s.answer_open(self.app.accept_opens) {
                        self.app.channels.push(id);
                    }
                }
                Event::ChannelRequest { id, request } => {
                    let ok = !matches!(request, Request::Subsystem(_));
                    self.s.answer_request(id, ok);
                    if let Request::Exec(cmd) = request {
                        self.app.ran.push(cmd);
                        if self.app.exec_output > 0 {
                            let junk = vec![b'x'; self.app.exec_output];
                            let _ = self.s.send_data(id, &junk);
                        } else {
                            self.s.send_exit(id, &ExitStatus::Code(0));
                            self.s.send_eof(id);
                            self.s.close_channel(id);
                        }
                    }
                }
                Event::Channel(id, ChannelEvent::Closed) => self.s.release_channel(id),
                Event::Authenticated { .. } | Event::Channel(..) => {}
            }
        }
        self.c.pull(&mut self.s);
    }

    #[track_caller]
    pub fn assert_alive(&self) {
        assert_ne!(self.s.phase(), Phase::Dead, "server died: {:?}", self.s.error());
        assert!(self.c.error.is_none(), "{:?}", self.c.error);
    }

    /// The server is dead with an error whose text contains `fragment`, told the client why
    /// (DISCONNECT with `reason`), and a dead server takes no more input.
    #[track_caller]
    pub fn assert_disconnected(&mut self, reason: u32, fragment: &str) {
        let text = self.assert_dead(fragment);
        let d = self.c.take(msg::DISCONNECT).map(|(_, p)| p);
        let got = d.as_deref().and_then(|p| match Msg::decode(p) {
            Ok(Msg::Disconnect { reason, .. }) => Some(reason),
            _ => None,
        });
        assert_eq!(got, Some(reason), "DISCONNECT reason (error {text:?})");
    }

    /// The server is dead with an error whose text contains `fragment` and takes no more
    /// input (for a DISCONNECT the client cannot read: sealed with keys it never derived).
    #[track_caller]
    pub fn assert_dead(&mut self, fragment: &str) -> String {
        assert_eq!(self.s.phase(), Phase::Dead, "server still alive; client got {:?}", self.c.numbers());
        let text = self.s.error().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.to_lowercase().contains(&fragment.to_lowercase()), "error {text:?} lacks {fragment:?}");
        assert!(self.s.handle_input(b"more", self.c.now).is_err(), "a dead server took input");
        text
    }

    /// Open a session channel (window, max packet); returns the server's channel number.
    pub fn open(&mut self, sender: u32, window: u32, max_packet: u32) -> Option<u32> {
        self.send(&Msg::ChannelOpen { kind: "session", sender, window, max_packet, extra: &[] }.encode());
        let (_, p) = self.c.take(msg::CHANNEL_OPEN_CONFIRMATION)?;
        match Msg::decode(&p) {
            Ok(Msg::ChannelOpenConfirmation { recipient, sender: id, .. }) if recipient == sender => Some(id),
            _ => None,
        }
    }

    /// The reason of the next OPEN_FAILURE.
    pub fn open_failure(&mut self) -> Option<u32> {
        let (_, p) = self.c.take(msg::CHANNEL_OPEN_FAILURE)?;
        match Msg::decode(&p) {
            Ok(Msg::ChannelOpenFailure { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    /// Replies to channel requests and global requests received, in order (99/100, 81/82).
    pub fn replies(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.c.inbox.retain(|(_, p)| {
            let n = p.first().copied().unwrap_or(0);
            if matches!(n, msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE | msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE) {
                out.push(n);
                false
            } else {
                true
            }
        });
        out
    }

    /// The session id (for signatures).
    pub fn session_id(&self) -> Vec<u8> {
        self.c.session_id.clone().unwrap()
    }
}

// ----- payload builders -----

pub fn userauth(user: &str, service: &str, method: AuthMethod<'_>) -> Vec<u8> {
    Msg::UserauthRequest { user, service, method }.encode()
}

pub fn password(user: &str, pw: &str) -> Vec<u8> {
    userauth(user, SERVICE, AuthMethod::Password { password: pw })
}

pub fn none(user: &str) -> Vec<u8> {
    userauth(user, SERVICE, AuthMethod::None)
}

/// A publickey request: `alg` and the blob of `key`, signed by `signer` over `sid` (None: a
/// probe).
pub fn publickey(user: &str, alg: &str, key: &PublicKey, signer: Option<(&PrivateKey, &[u8])>) -> Vec<u8> {
    let sig = signer.map(|(k, sid)| {
        let data = sshbridge::auth::signed_data(sid, user, SERVICE, alg, key.blob());
        let sig_alg = sshbridge::SigAlg::from_name(alg).filter(|a| a.key_type() == k.public_key().key_type());
        let sig_alg = sig_alg.unwrap_or_else(|| sshbridge::SigAlg::from_name(k.public_key().key_type()).unwrap());
        k.sign(sig_alg, &data, &mut FuzzRng::new(9)).unwrap()
    });
    userauth(user, SERVICE, AuthMethod::PublicKey { alg, key: key.blob(), sig: sig.as_deref() })
}

pub fn channel_request(recipient: u32, kind: &str, want_reply: bool, data: &[u8]) -> Vec<u8> {
    Msg::ChannelRequest { recipient, kind, want_reply, data }.encode()
}

pub fn exec(recipient: u32, cmd: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(cmd);
    channel_request(recipient, "exec", true, &w.into_vec())
}

pub fn env(recipient: u32, name: &str, value: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(name).str(value);
    channel_request(recipient, "env", true, &w.into_vec())
}

pub fn data(recipient: u32, bytes: &[u8]) -> Vec<u8> {
    Msg::ChannelData { recipient, data: bytes }.encode()
}
