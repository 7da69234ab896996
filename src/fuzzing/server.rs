//! The `server` fuzz target and the scripted client it (and `tests/hostile_server.rs`) uses.
//!
//! [`EmuClient`] is the mirror of the `client_session` harness's server: a client on the
//! crate's own codec (`msg`, `cipher::{Sealer, Opener}`, `kex::KexPending`) that runs a REAL
//! key exchange with a [`Server`] in memory, step by step (identification, KEXINIT, KEX_INIT,
//! NEWKEYS), so that a test can put anything between the steps (IGNORE before KEXINIT, a
//! service request during the exchange, a server-only message after it) and seal any payload
//! with the session keys and sequence numbers (strict KEX resets them at every NEWKEYS).
//!
//! [`server`] drives a `Server` with a fixed host key set from fuzz bytes (raw after the
//! identification line, or as payloads sealed after a real key exchange) and answers every
//! application decision deterministically, checking the invariants of the server role: errors
//! stick, no channel open or request reaches the application before it authenticated the
//! user, `Authenticated` only after the application said yes to a login.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use crate::connection::ChannelOps;
use std::collections::VecDeque;
use std::time::Duration;

use super::*;
use crate::connection::{ExitStatus, Request};
use crate::error::Error;
use crate::kex::KexPending;
use crate::server::{Event as SEvent, Phase as SPhase, Question, Server, ServerConfig};

/// The algorithms one [`EmuClient`] offers (one per category, so negotiation is forced).
#[derive(Clone, Copy, Debug)]
pub struct ClientSuite {
    pub kex: Kex,
    pub host: SigAlg,
    pub cipher: Cipher,
    pub mac: Option<Mac>,
}

impl ClientSuite {
    const LIST: &'static [(Kex, SigAlg, Cipher, Option<Mac>)] = &[
        (Kex::Curve25519Sha256, SigAlg::Ed25519, Cipher::Chacha20Poly1305, None),
        (Kex::Curve25519Sha256, SigAlg::Ed25519, Cipher::Aes128Ctr, Some(Mac::HmacSha256)),
        (Kex::Mlkem768X25519Sha256, SigAlg::Ed25519, Cipher::Aes256Gcm, None),
        (ECDH, ECDSA, Cipher::Aes256Ctr, Some(Mac::HmacSha512Etm)),
    ];

    pub fn pick(n: u8) -> ClientSuite {
        let (kex, host, cipher, mac) = Self::LIST[usize::from(n) % Self::LIST.len()];
        ClientSuite { kex, host, cipher, mac }
    }
}

/// The server's host keys in every harness: the fixed Ed25519, ECDSA and RSA keys (as built).
pub fn server_host_keys() -> Vec<Arc<PrivateKey>> {
    static KEYS: OnceLock<Vec<Arc<PrivateKey>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let load = |b: &[u8]| Arc::new(PrivateKey::from_bytes(b, None).expect("fixture key parses"));
        let mut v = vec![load(include_bytes!("../keys/testdata/ed25519.dropbear"))];
        if cfg!(feature = "nistp256") {
            v.push(load(include_bytes!("../keys/testdata/ecdsa256.dropbear")));
        }
        if cfg!(feature = "rsa") {
            v.push(load(include_bytes!("../keys/testdata/rsa2048.dropbear")));
        }
        v
    })
    .clone()
}

/// The identification line of [`EmuClient`].
pub const EMU_CLIENT_IDENT: &str = "SSH-2.0-EmuClient_0.1";
pub const STRICT_C: &str = "kex-strict-c-v00@openssh.com";

/// A scripted SSH client on the crate's own codec, driving a [`Server`] in memory.
pub struct EmuClient {
    pub suite: ClientSuite,
    /// Put `kex-strict-c-v00@openssh.com` in our first KEXINIT.
    pub strict: bool,
    /// Strict KEX in force (both sides offered it in the first exchange).
    pub strict_on: bool,
    /// Do not reset our send sequence number at NEWKEYS even in strict mode.
    pub no_seq_reset: bool,
    rng: FuzzRng,
    sealer: Sealer,
    opener: Opener,
    pub tx_seq: u32,
    pub rx_seq: u32,
    from_server: Vec<u8>,
    pub server_ident: Option<Vec<u8>>,
    pub session_id: Option<Vec<u8>>,
    pending_rx: Option<DirectionKeys>,
    /// The server's NEWKEYS was read: the next packet needs `pending_rx`.
    newkeys_waiting: bool,
    /// Our KEXINIT of the exchange in progress.
    our_kexinit: Option<Vec<u8>>,
    /// The server's KEXINIT not yet used by an exchange.
    server_kexinit: Option<Vec<u8>>,
    /// Payloads received (with their sequence numbers) not yet taken by the test.
    pub inbox: VecDeque<(u32, Vec<u8>)>,
    /// The first error `handle_input` returned.
    pub error: Option<Error>,
    pub now: Instant,
}

impl EmuClient {
    pub fn new(suite: ClientSuite, strict: bool, now: Instant) -> EmuClient {
        EmuClient {
            suite,
            strict,
            strict_on: false,
            no_seq_reset: false,
            rng: FuzzRng::new(0xc5),
            sealer: Sealer::plaintext(),
            opener: Opener::plaintext(),
            tx_seq: 0,
            rx_seq: 0,
            from_server: Vec::new(),
            server_ident: None,
            session_id: None,
            pending_rx: None,
            newkeys_waiting: false,
            our_kexinit: None,
            server_kexinit: None,
            inbox: VecDeque::new(),
            error: None,
            now,
        }
    }

    /// Feed bytes to the server, then collect what it answered.
    pub fn send_raw(&mut self, s: &mut Server, bytes: &[u8]) -> bool {
        let r = s.handle_input(bytes, self.now);
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
        self.pull(s);
        self.error.is_none()
    }

    /// Seal one payload with the current keys and sequence number (it counts as sent).
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.sealer.seal(self.tx_seq, payload, &mut self.rng, &mut out);
        self.tx_seq = self.tx_seq.wrapping_add(1);
        out
    }

    /// Seal and send one payload; false once the server failed.
    pub fn send(&mut self, s: &mut Server, payload: &[u8]) -> bool {
        let pkt = self.seal(payload);
        self.send_raw(s, &pkt)
    }

    pub fn send_msg(&mut self, s: &mut Server, m: &Msg<'_>) -> bool {
        self.send(s, &m.encode())
    }

    /// Take the server's output and decode every whole packet into `inbox`.
    pub fn pull(&mut self, s: &mut Server) {
        let n = s.output_len();
        self.from_server.extend_from_slice(s.output());
        s.consume_output(n);
        while let Some(p) = self.next_packet() {
            self.inbox.push_back(p);
        }
    }

    fn next_packet(&mut self) -> Option<(u32, Vec<u8>)> {
        if self.server_ident.is_none() {
            let nl = self.from_server.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = self.from_server.drain(..=nl).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.starts_with(b"SSH-2.0-"), "server identification {line:?}");
            self.server_ident = Some(line.to_vec());
        }
        if self.newkeys_waiting {
            // Nothing after the server's NEWKEYS can be read before we derived the keys.
            let k = self.pending_rx.take()?;
            self.opener = Opener::new(&k).expect("derived keys");
            if self.strict_on {
                self.rx_seq = 0;
            }
            self.newkeys_waiting = false;
        }
        match self.opener.open(self.rx_seq, &mut self.from_server) {
            Ok(Opened::Packet { consumed, payload }) => {
                let p = self.from_server[payload].to_vec();
                self.from_server.drain(..consumed);
                let seq = self.rx_seq;
                self.rx_seq = self.rx_seq.wrapping_add(1);
                match p.first() {
                    Some(&crate::msg::NEWKEYS) => self.newkeys_waiting = true,
                    Some(&crate::msg::KEXINIT) => self.server_kexinit = Some(p.clone()),
                    _ => {}
                }
                Some((seq, p))
            }
            Ok(Opened::NeedMore(_)) => None,
            Err(e) => panic!("the server sent a packet our own opener rejects: {e} (seq {})", self.rx_seq),
        }
    }

    /// Remove and return the first received payload with message number `n`.
    pub fn take(&mut self, n: u8) -> Option<(u32, Vec<u8>)> {
        let i = self.inbox.iter().position(|(_, p)| p.first() == Some(&n))?;
        self.inbox.remove(i)
    }

    /// The message numbers received and not taken, in order.
    pub fn numbers(&self) -> Vec<u8> {
        self.inbox.iter().map(|(_, p)| p.first().copied().unwrap_or(0)).collect()
    }

    /// Our KEXINIT payload (the strict marker only in the first exchange).
    pub fn kexinit_payload(&self) -> Vec<u8> {
        let mut kex = vec![self.suite.kex.name()];
        if self.strict && self.session_id.is_none() {
            kex.push(STRICT_C);
        }
        let mac: Vec<&str> = self.suite.mac.map(|m| vec![m.name()]).unwrap_or_else(|| vec!["hmac-sha2-256"]);
        Msg::KexInit(Box::new(KexInit {
            cookie: [0x17; 16],
            kex,
            host_key: vec![self.suite.host.name()],
            cipher_c2s: vec![self.suite.cipher.name()],
            cipher_s2c: vec![self.suite.cipher.name()],
            mac_c2s: mac.clone(),
            mac_s2c: mac,
            comp_c2s: vec!["none"],
            comp_s2c: vec!["none"],
            lang_c2s: vec![],
            lang_s2c: vec![],
            first_kex_follows: false,
            reserved: 0,
        }))
        .encode()
    }

    pub fn send_ident(&mut self, s: &mut Server) -> bool {
        self.send_raw(s, format!("{EMU_CLIENT_IDENT}\r\n").as_bytes())
    }

    pub fn send_kexinit(&mut self, s: &mut Server) -> bool {
        let k = self.kexinit_payload();
        self.our_kexinit = Some(k.clone());
        self.send(s, &k)
    }

    /// The rest of a key exchange after our KEXINIT (sent first if it was not): KEX_INIT,
    /// the server's reply checked (host key signature over H), NEWKEYS both ways.
    pub fn finish_kex(&mut self, s: &mut Server) -> Result<(), String> {
        if self.our_kexinit.is_none() && !self.send_kexinit(s) {
            return Err(format!("server failed at our KEXINIT: {:?}", self.error));
        }
        let ours = self.our_kexinit.take().unwrap();
        let theirs = self.server_kexinit.take().ok_or("no KEXINIT from the server")?;
        let _ = self.take(crate::msg::KEXINIT);
        let Ok(Msg::KexInit(sk)) = Msg::decode(&theirs) else { return Err("malformed server KEXINIT".into()) };
        if self.session_id.is_none() {
            self.strict_on = self.strict && sk.kex.contains(&"kex-strict-s-v00@openssh.com");
        }
        let pending = KexPending::start(self.suite.kex, &mut self.rng).map_err(|e| e.to_string())?;
        let q_c = pending.client_value.clone();
        if !self.send_msg(s, &Msg::KexInitValue { value: &q_c }) {
            return Err(format!("server failed at KEX_INIT: {:?}", self.error));
        }
        let (_, reply) = self.take(crate::msg::KEX_REPLY).ok_or_else(|| format!("no KEX_REPLY: {:?}", self.numbers()))?;
        let Ok(Msg::KexReply { host_key, value, signature }) = Msg::decode(&reply) else {
            return Err("malformed KEX_REPLY".into());
        };
        let k = pending.finish(value).map_err(|e| e.to_string())?;
        let kx = self.suite.kex;
        let h = exchange_hash(
            kx,
            &HashInput {
                client_ident: EMU_CLIENT_IDENT.as_bytes(),
                server_ident: self.server_ident.as_deref().unwrap_or_default(),
                client_kexinit: &ours,
                server_kexinit: &theirs,
                host_key,
                client_value: &q_c,
                server_value: value,
            },
            &k,
        );
        let hk = PublicKey::from_blob(host_key).map_err(|e| e.to_string())?;
        hk.verify(self.suite.host, &h, signature).map_err(|e| format!("host signature: {e}"))?;
        let sid = self.session_id.get_or_insert_with(|| h.clone()).clone();
        let suite = self.suite;
        let keys = |iv: u8, key: u8, mac: u8| DirectionKeys {
            cipher: suite.cipher,
            mac: if suite.cipher.is_aead() { None } else { suite.mac },
            iv: derive_key(kx, &k, &h, iv, &sid, suite.cipher.iv_len()).to_vec(),
            key: derive_key(kx, &k, &h, key, &sid, suite.cipher.key_len()).to_vec(),
            mac_key: match (suite.cipher.is_aead(), suite.mac) {
                (false, Some(m)) => derive_key(kx, &k, &h, mac, &sid, m.key_len()).to_vec(),
                _ => Vec::new(),
            },
        };
        let tx = keys(b'A', b'C', b'E');
        let rx = keys(b'B', b'D', b'F');
        // Whatever followed the server's NEWKEYS waited for these keys.
        self.pending_rx = Some(rx);
        while let Some(p) = self.next_packet() {
            self.inbox.push_back(p);
        }
        let ok = self.send_msg(s, &Msg::NewKeys);
        self.sealer = Sealer::new(&tx).map_err(|e| e.to_string())?;
        if self.strict_on && !self.no_seq_reset {
            self.tx_seq = 0;
        }
        if !ok {
            return Err(format!("server failed at NEWKEYS: {:?}", self.error));
        }
        let _ = self.take(crate::msg::NEWKEYS).ok_or("no NEWKEYS from the server")?;
        Ok(())
    }

    /// Identification, KEXINIT and the whole first key exchange.
    pub fn handshake(&mut self, s: &mut Server) -> Result<(), String> {
        if !self.send_ident(s) || !self.send_kexinit(s) {
            return Err(format!("server failed: {:?}", self.error));
        }
        self.finish_kex(s)
    }
}

// ---------------------------------------------------------------------------------------------
// the fuzz target

/// The user and password the fuzz server's application accepts (and the Ed25519 fixed key).
pub const SERVER_USER: &str = "fuzz";
pub const SERVER_PASSWORD: &str = "fuzz-pw";

/// A server with the fixed host keys; `max_tries` and delays as by default, 2 channels.
pub fn new_server(now: Instant) -> Server {
    let mut cfg = ServerConfig::new(server_host_keys());
    cfg.auth.methods.keyboard_interactive = true;
    cfg.max_channels = 2;
    Server::new(cfg, Box::new(FuzzRng::new(0x5f)), now).expect("server")
}

/// What the fuzz application saw (invariants are checked as events arrive).
#[derive(Default, Debug)]
pub struct ServerApp {
    /// The application said yes to a login (not a probe).
    pub said_yes: bool,
    pub authenticated: bool,
    pub opens: u32,
    pub requests: u32,
}

/// Answer every pending decision deterministically and check the role's invariants.
pub fn serve(s: &mut Server, app: &mut ServerApp, now: Instant) {
    for _ in 0..256 {
        let Some(ev) = s.poll_event() else { break };
        match ev {
            SEvent::Auth(q) => {
                assert!(!app.authenticated, "an authentication question after success: {q:?}");
                let yes = match &q {
                    Question::Password { user, password } => user == SERVER_USER && password.as_str() == SERVER_PASSWORD,
                    Question::PublicKey { key, .. } => *key == fixed_keys().ed25519.public_key(),
                    Question::KeyboardInteractive { responses, .. } => {
                        responses.first().is_some_and(|r| r.as_str() == SERVER_PASSWORD)
                    }
                };
                if yes && !matches!(q, Question::PublicKey { signed: false, .. }) {
                    app.said_yes = true;
                }
                s.answer_auth(yes, now);
            }
            SEvent::Authenticated { .. } => {
                assert!(app.said_yes && !app.authenticated, "Authenticated without a yes, or twice");
                app.authenticated = true;
            }
            SEvent::ChannelOpen { .. } => {
                assert!(app.authenticated, "a channel open reached the application before authentication");
                app.opens += 1;
                let _ = s.answer_open(!app.opens.is_multiple_of(3));
            }
            SEvent::ChannelRequest { id, request } => {
                assert!(app.authenticated, "a channel request reached the application before authentication");
                if let Request::Env { name, .. } = &request {
                    assert!(crate::server::env_allowed(&["LANG".into(), "LC_*".into(), "TZ".into()], name), "env {name:?} asked");
                }
                app.requests += 1;
                s.answer_request(id, !matches!(request, Request::Subsystem(_)));
                if let Request::Exec(cmd) = request {
                    let _ = s.send_data(id, &cmd);
                    let _ = s.send_stderr(id, b"err");
                    s.send_exit(id, &ExitStatus::Code(u32::try_from(cmd.len()).unwrap_or(0)));
                    s.send_eof(id);
                    s.close_channel(id);
                }
            }
            SEvent::Channel(id, ChannelEvent::Closed) => s.release_channel(id),
            SEvent::Channel(id, _) => {
                let mut buf = [0u8; 4096];
                while s.read(id, false, &mut buf) > 0 {}
                while s.read(id, true, &mut buf) > 0 {}
            }
        }
    }
}

/// How a [`server`] run ended, for the seed tests.
#[derive(Debug)]
pub struct ServerOutcome {
    pub phase: SPhase,
    pub error: Option<Error>,
    pub app: ServerApp,
    pub kex_count: u32,
}

/// Feed one chunk and check: errors stick and kill the server.
fn feed_server(c: &mut EmuClient, s: &mut Server, app: &mut ServerApp, bytes: &[u8]) -> bool {
    let ok = c.send_raw(s, bytes);
    if !ok {
        assert_eq!(s.phase(), SPhase::Dead, "server failed without dying");
        assert!(s.error().is_some());
        assert!(s.handle_input(b"x", c.now).is_err(), "dead server accepted input");
    }
    serve(s, app, c.now);
    c.pull(s);
    ok
}

/// Run [`server`] on `data` and report where the server ended.
pub fn run_server(data: &[u8]) -> Option<ServerOutcome> {
    let (&flags, script) = data.split_first()?;
    let now = Instant::now();
    let mut s = new_server(now);
    let mut app = ServerApp::default();
    let mut c = EmuClient::new(ClientSuite::pick(flags & 3), flags & 4 != 0, now);
    if flags & 8 == 0 {
        // Raw: everything after a valid identification line, in chunks of (b + 1) * 7 bytes
        // for the chunk-size byte b that follows the flags.
        let (size, body) = script.split_first().map_or((0, script), |(b, r)| (usize::from(*b), r));
        let mut ok = feed_server(&mut c, &mut s, &mut app, format!("{EMU_CLIENT_IDENT}\r\n").as_bytes());
        for chunk in body.chunks((size + 1) * 7) {
            if !ok {
                break;
            }
            ok = feed_server(&mut c, &mut s, &mut app, chunk);
        }
    } else {
        c.handshake(&mut s).unwrap_or_else(|e| panic!("the initial key exchange with the harness failed: {e}"));
        for p in script_payloads(script) {
            let ok = match p {
                // A lone KEXINIT number: a real client-initiated re-exchange.
                [crate::msg::KEXINIT] => c.finish_kex(&mut s).is_ok() || c.error.is_some() || s.phase() == SPhase::Dead,
                // A lone 0: time passes (delayed failures, login grace, rekey timers).
                [0] => {
                    c.now += Duration::from_millis(700);
                    s.handle_timeout(c.now);
                    serve(&mut s, &mut app, c.now);
                    c.pull(&mut s);
                    s.phase() != SPhase::Dead
                }
                _ => {
                    let pkt = c.seal(p);
                    feed_server(&mut c, &mut s, &mut app, &pkt)
                }
            };
            if !ok || s.phase() == SPhase::Dead {
                break;
            }
        }
    }
    let out = ServerOutcome { phase: s.phase(), error: s.error().cloned(), app, kex_count: s.transport().kex_count() };
    s.disconnect();
    Some(out)
}

/// The sans-IO server fed from fuzz bytes. Byte 0: bits 0-1 pick the client's algorithms,
/// bit 2 = the client offers strict KEX, bit 3 = session mode. Raw mode: byte 1 sets the chunk
/// size, the rest follows a valid client identification line. Session mode: a real key
/// exchange first, then the rest is a script of payloads (see [`script_payloads`]) sealed with
/// the session keys; a payload `[20]` runs a real re-exchange, `[0]` advances the clock 0.7 s.
pub fn server(data: &[u8]) {
    let _ = run_server(data);
}
