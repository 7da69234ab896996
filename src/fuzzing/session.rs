//! The `client_session` fuzz target: the harness plays the server through a real key exchange
//! (fixed host keys), then seals the fuzz data's payloads with the session keys, so
//! authentication, channels and rekeying are reached. Also the in-memory `Connected` harness
//! other tests use.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use super::*;

// ---------------------------------------------------------------------------------------------
// client_session: the harness plays the server

/// One algorithm per category, so negotiation is forced.
#[derive(Clone, Copy)]
pub(super) struct Suite {
    kex: Kex,
    host: SigAlg,
    cipher: Cipher,
    mac: Option<Mac>,
}

impl Suite {
    const LIST: &'static [(Kex, SigAlg, Cipher, Option<Mac>)] = &[
        (Kex::Curve25519Sha256, SigAlg::Ed25519, Cipher::Chacha20Poly1305, None),
        (Kex::Curve25519Sha256Libssh, SigAlg::Ed25519, Cipher::Aes128Ctr, Some(Mac::HmacSha256)),
        (Kex::Curve25519Sha256, ECDSA, Cipher::Aes256Gcm, None),
        (ECDH, SigAlg::Ed25519, Cipher::Aes128Gcm, None),
        (Kex::Curve25519Sha256, RSA_SHA256, Cipher::Aes256Ctr, Some(Mac::HmacSha512Etm)),
        (Kex::Curve25519Sha256, RSA_SHA512, Cipher::Aes192Ctr, Some(Mac::HmacSha256Etm)),
        (DH14, SigAlg::Ed25519, Cipher::Aes128Ctr, Some(Mac::HmacSha512)),
        (Kex::Curve25519Sha256, SigAlg::Ed25519, Cipher::Chacha20Poly1305, None),
        (Kex::Mlkem768X25519Sha256, SigAlg::Ed25519, Cipher::Chacha20Poly1305, None),
        (Kex::Mlkem768X25519Sha256, RSA_SHA512, Cipher::Aes128Ctr, Some(Mac::HmacSha256Etm)),
    ];

    pub(super) fn pick(n: u8) -> Suite {
        let (kex, host, cipher, mac) = Self::LIST[usize::from(n) % Self::LIST.len()];
        Suite { kex, host, cipher, mac }
    }

    fn host_key(&self) -> &'static PrivateKey {
        let k = fixed_keys();
        match self.host.key_type() {
            "ssh-ed25519" => &k.ed25519,
            "ecdsa-sha2-nistp256" => &k.ecdsa,
            "ssh-dss" => &k.dsa,
            _ => &k.rsa,
        }
    }

    pub(super) fn server_kexinit(&self, strict: bool) -> Vec<u8> {
        let mut kex = vec![self.kex.name(), "ext-info-s"];
        if strict {
            kex.push("kex-strict-s-v00@openssh.com");
        }
        let mac: Vec<&str> = self.mac.map(|m| vec![m.name()]).unwrap_or_else(|| vec!["hmac-sha2-256"]);
        Msg::KexInit(Box::new(KexInit {
            cookie: [0x42; 16],
            kex,
            host_key: vec![self.host.name()],
            cipher_c2s: vec![self.cipher.name()],
            cipher_s2c: vec![self.cipher.name()],
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
}

/// The server side of a connection, run by the harness.
struct EmuServer {
    suite: Suite,
    strict: bool,
    rng: FuzzRng,
    sealer: Sealer,
    opener: Opener,
    tx_seq: u32,
    rx_seq: u32,
    /// Client output not yet parsed (identification line first).
    from_client: Vec<u8>,
    saw_client_ident: bool,
    session_id: Option<Vec<u8>>,
    /// Keys for reading the client after its NEWKEYS.
    pending_rx: Option<DirectionKeys>,
    /// Everything sent to the client, for recording sessions.
    record: Vec<u8>,
    /// Every key, IV and MAC key derived (both directions, every exchange), for the test
    /// that no log record holds one.
    derived: Vec<Vec<u8>>,
    now: Instant,
    split: bool,
}

impl EmuServer {
    fn new(suite: Suite, strict: bool, split: bool, now: Instant) -> EmuServer {
        EmuServer {
            suite,
            strict,
            rng: FuzzRng::new(0x5e),
            sealer: Sealer::plaintext(),
            opener: Opener::plaintext(),
            tx_seq: 0,
            rx_seq: 0,
            from_client: Vec::new(),
            saw_client_ident: false,
            session_id: None,
            pending_rx: None,
            record: Vec::new(),
            derived: Vec::new(),
            now,
            split,
        }
    }

    /// Send raw bytes to the client (in two pieces when `split`).
    fn send_raw(&mut self, c: &mut Client, bytes: &[u8]) -> bool {
        self.record.extend_from_slice(bytes);
        let ok = if self.split && bytes.len() > 1 {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            feed_keep(c, a, self.now, &mut self.from_client) && feed_keep(c, b, self.now, &mut self.from_client)
        } else {
            feed_keep(c, bytes, self.now, &mut self.from_client)
        };
        ok
    }

    fn send(&mut self, c: &mut Client, payload: &[u8]) -> bool {
        let mut pkt = Vec::new();
        self.sealer.seal(self.tx_seq, payload, &mut self.rng, &mut pkt);
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.send_raw(c, &pkt)
    }

    /// Decode what the client sent so far; returns the payloads.
    fn client_packets(&mut self) -> Vec<Vec<u8>> {
        if !self.saw_client_ident {
            let Some(nl) = self.from_client.iter().position(|&b| b == b'\n') else { return Vec::new() };
            assert_eq!(&self.from_client[..nl], format!("{CLIENT_IDENT}\r").as_bytes());
            self.from_client.drain(..=nl);
            self.saw_client_ident = true;
        }
        let mut out = Vec::new();
        loop {
            match self.opener.open(self.rx_seq, &mut self.from_client) {
                Ok(Opened::Packet { consumed, payload }) => {
                    let p = self.from_client[payload].to_vec();
                    self.from_client.drain(..consumed);
                    self.rx_seq = self.rx_seq.wrapping_add(1);
                    if p.first() == Some(&crate::msg::NEWKEYS) {
                        if let Some(k) = self.pending_rx.take() {
                            self.opener = Opener::new(&k).expect("derived keys");
                            if self.strict {
                                self.rx_seq = 0;
                            }
                        }
                    }
                    out.push(p);
                }
                Ok(Opened::NeedMore(_)) => break,
                Err(e) => panic!("the client sent a packet our own opener rejects: {e} (seq {}, {} bytes)", self.rx_seq, self.from_client.len()),
            }
        }
        out
    }

    /// Run a key exchange from the server's KEXINIT on. Returns false if the client died.
    fn key_exchange(&mut self, c: &mut Client) -> bool {
        let ours = self.suite.server_kexinit(self.strict);
        // Collect the client's KEXINIT (sent at start, or in answer to ours on a rekey).
        let mut client_kexinit = None;
        for p in self.client_packets() {
            if p.first() == Some(&crate::msg::KEXINIT) {
                client_kexinit = Some(p);
            }
        }
        if !self.send(c, &ours) {
            return false;
        }
        let mut client_value = None;
        for p in self.client_packets() {
            match p.first() {
                Some(&crate::msg::KEXINIT) => client_kexinit = Some(p),
                Some(&crate::msg::KEX_INIT) => {
                    if let Ok(Msg::KexInitValue { value }) = Msg::decode(&p) {
                        client_value = Some(value.to_vec());
                    }
                }
                _ => {}
            }
        }
        let (Some(ic), Some(qc)) = (client_kexinit, client_value) else {
            panic!("client did not answer a valid KEXINIT with KEXINIT and its kex value");
        };
        let (qs, k) = server_respond(self.suite.kex, &qc, &mut self.rng).expect("client's kex value is valid");
        let host = self.suite.host_key();
        let blob = host.public_key().blob().to_vec();
        let h = exchange_hash(
            self.suite.kex,
            &HashInput {
                client_ident: CLIENT_IDENT.as_bytes(),
                server_ident: SERVER_IDENT.as_bytes(),
                client_kexinit: &ic,
                server_kexinit: &ours,
                host_key: &blob,
                client_value: &qc,
                server_value: &qs,
            },
            &k,
        );
        let sig = host.sign(self.suite.host, &h, &mut self.rng).expect("host key signs");
        let sid = self.session_id.get_or_insert_with(|| h.clone()).clone();
        let kx = self.suite.kex;
        let keys = |iv: u8, key: u8, mac: u8| DirectionKeys {
            cipher: self.suite.cipher,
            mac: if self.suite.cipher.is_aead() { None } else { self.suite.mac },
            iv: derive_key(kx, &k, &h, iv, &sid, self.suite.cipher.iv_len()).to_vec(),
            key: derive_key(kx, &k, &h, key, &sid, self.suite.cipher.key_len()).to_vec(),
            mac_key: match (self.suite.cipher.is_aead(), self.suite.mac) {
                (false, Some(m)) => derive_key(kx, &k, &h, mac, &sid, m.key_len()).to_vec(),
                _ => Vec::new(),
            },
        };
        let tx = keys(b'B', b'D', b'F');
        let rx = keys(b'A', b'C', b'E');
        for d in [&tx, &rx] {
            self.derived.extend([d.iv.clone(), d.key.clone(), d.mac_key.clone()].into_iter().filter(|k| !k.is_empty()));
        }
        self.pending_rx = Some(rx);
        let reply = Msg::KexReply { host_key: &blob, value: &qs, signature: &sig }.encode();
        if !self.send(c, &reply) {
            return false;
        }
        if !self.send(c, &Msg::NewKeys.encode()) {
            return false;
        }
        self.sealer = Sealer::new(&tx).expect("derived keys");
        if self.strict {
            self.tx_seq = 0;
        }
        let _ = self.client_packets();
        true
    }
}

fn feed_keep(c: &mut Client, bytes: &[u8], now: Instant, from_client: &mut Vec<u8>) -> bool {
    let r = c.handle_input(bytes, now);
    if r.is_ok() {
        let buffered = c.transport().buffered_input();
        assert!(buffered < MAX_NEED, "client buffers {buffered} bytes after a successful feed");
    } else {
        assert_eq!(c.phase(), Phase::Dead, "client failed without dying");
    }
    after_feed(c, now, Some(from_client));
    r.is_ok()
}

/// Split the script into payloads: each is a 2-byte big-endian length and that many bytes
/// (cut short at the end).
pub fn script_payloads(script: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = script;
    while rest.len() >= 2 && out.len() < 256 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let (p, r) = body.split_at(n.min(body.len()));
        out.push(p);
        rest = r;
    }
    out
}

/// Encode payloads as a [`client_session`] script.
pub fn make_script(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(&(p.len().min(0xffff) as u16).to_be_bytes());
        out.extend_from_slice(&p[..p.len().min(0xffff)]);
    }
    out
}

/// How a [`client_session`] run ended, for tests of the seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOutcome {
    /// `None`: the client is still alive at the end of the script.
    pub error: Option<crate::error::Error>,
    pub phase: Phase,
    pub kex_count: u32,
    pub exit: Option<crate::channel::ExitStatus>,
    /// Everything the server sent (identification included).
    pub record: Vec<u8>,
}

/// Run a session; see [`client_session`].
pub fn run_session(data: &[u8]) -> Option<SessionOutcome> {
    run_session_with(data, false).map(|(o, _)| o)
}

/// Run a session as [`run_session`] does, with the client's payload dumps on (`log_payloads`),
/// and return every key, IV and MAC key derived in it (both directions, every exchange): for
/// the test that logging never holds one.
pub fn run_session_logged(data: &[u8]) -> Option<(SessionOutcome, Vec<Vec<u8>>)> {
    run_session_with(data, true)
}

fn run_session_with(data: &[u8], log_payloads: bool) -> Option<(SessionOutcome, Vec<Vec<u8>>)> {
    let (&flags, script) = data.split_first()?;
    let suite = Suite::pick(flags & 31);
    let now = Instant::now();
    let mut c = new_client_logging(now, log_payloads);
    let mut srv = EmuServer::new(suite, flags & 0x40 != 0, flags & 0x20 != 0, now);
    if !srv.send_raw(&mut c, format!("{SERVER_IDENT}\r\n").as_bytes()) || !srv.key_exchange(&mut c) {
        panic!("the initial key exchange with the harness failed: {:?}", c.error());
    }
    for p in script_payloads(script) {
        // A lone KEXINIT number: the harness runs a real server-initiated re-exchange.
        let ok = if p == [crate::msg::KEXINIT] { srv.key_exchange(&mut c) } else { srv.send(&mut c, p) };
        let _ = srv.client_packets();
        if !ok {
            assert!(c.handle_input(b"x", now).is_err(), "dead client accepted input");
            break;
        }
    }
    let out = SessionOutcome {
        error: c.error().cloned(),
        phase: c.phase(),
        kex_count: c.transport().kex_count(),
        exit: c.exit_status(0).cloned(),
        record: std::mem::take(&mut srv.record),
    };
    c.disconnect();
    let _ = srv.client_packets();
    Some((out, std::mem::take(&mut srv.derived)))
}

/// The client after a real key exchange with the harness's server. Byte 0: bits 0-4 pick the
/// algorithms, bit 5 splits every packet in two feeds, bit 6 = strict KEX. The rest is a script
/// of server payloads (see [`script_payloads`]), sealed with the session keys and sequence
/// numbers; a payload that is the single byte 20 makes the harness run a real re-exchange.
pub fn client_session(data: &[u8]) {
    let _ = run_session(data);
}

/// The bytes a server sends in the session `data` describes (see [`client_session`]): fed to
/// [`client`] as a body they replay the same session.
pub fn record_session(data: &[u8]) -> Vec<u8> {
    run_session(data).map(|o| o.record).unwrap_or_default()
}

/// A client through a real key exchange (the fixed Ed25519 host key, strict KEX) and a "none"
/// authentication with the harness's server, for unit tests of what follows authentication.
#[cfg(test)]
pub(crate) struct Connected {
    pub(crate) client: Client,
    srv: EmuServer,
}

#[cfg(test)]
impl Connected {
    pub(crate) fn new(check: HostKeyCheck) -> Connected {
        let now = Instant::now();
        let mut cfg = ClientConfig::new(CLIENT_USER);
        cfg.host_key_check = check;
        cfg.prefs = fixed_prefs();
        let mut client = Client::new(cfg, Box::new(FuzzRng::new(0xc2)), now);
        let mut srv = EmuServer::new(Suite::pick(0), true, false, now);
        let ok = srv.send_raw(&mut client, format!("{SERVER_IDENT}\r\n").as_bytes()) && srv.key_exchange(&mut client);
        assert!(ok, "key exchange with the harness failed: {:?}", client.error());
        let mut k = Connected { client, srv };
        k.send(&Msg::ServiceAccept { name: "ssh-userauth" }.encode());
        k.send(&Msg::UserauthSuccess.encode());
        assert_eq!(k.client.phase(), Phase::Connected, "{:?}", k.client.error());
        let _ = k.received();
        k
    }

    /// Seal a payload to the client; false if the client died.
    pub(crate) fn send(&mut self, payload: &[u8]) -> bool {
        self.srv.send(&mut self.client, payload)
    }

    /// The payloads the client sent since the last call.
    pub(crate) fn received(&mut self) -> Vec<Vec<u8>> {
        self.srv.client_packets()
    }

    pub(crate) fn session_id(&self) -> Vec<u8> {
        self.srv.session_id.clone().unwrap_or_default()
    }
}
