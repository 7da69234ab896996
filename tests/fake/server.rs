//! A scripted SSH server for hostile-peer tests, built on sshbridge's own codec (`msg`, `wire`),
//! packet protection (`cipher::{Sealer, Opener}`) and key exchange (`kex`), so it completes a
//! real key exchange and can misbehave at any point afterwards.
//!
//! A `FakeServer` listens on 127.0.0.1 (random port) and runs the same `Vec<Step>` on every
//! accepted connection, one thread each. The server side mirrors the client's transport: it
//! seals with the s2c keys (RFC 4253 section 7.2 letters B, D, F) and opens with the c2s keys
//! (A, C, E); strict KEX (OpenSSH PROTOCOL 1.10) resets its sequence numbers at NEWKEYS when
//! it advertised `kex-strict-s-v00@openssh.com` and the client sent the `-c-` marker.
//!
//! Everything the client sends is recorded per connection (`ConnRecord`: message numbers,
//! sequence numbers, payloads, channel data, whether it closed), and so is every packet the
//! server sent (number, sequence number), so tests can check e.g. that no USERAUTH_REQUEST was
//! ever received, or that UNIMPLEMENTED named the right packet. When the script ends (or a step
//! fails) the connection keeps reading and recording until the client closes or the server is
//! dropped. Dropping the server stops and joins every thread and closes every socket.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chacha20::cipher::{KeyIvInit, StreamCipher};
use poly1305::universal_hash::KeyInit;
use sshbridge::algs::{Cipher, Kex, Mac, SigAlg};
use sshbridge::cipher::{DirectionKeys, Opened, Opener, Sealer};
use sshbridge::kex::{derive_key, exchange_hash, server_respond, HashInput};
use sshbridge::msg::{self, Msg};
use sshbridge::random::Random;
use sshbridge::runtime::sys::OsRandom;
use sshbridge::wire::{Reader, Writer};
use sshbridge::PrivateKey;

pub const SERVER_IDENT: &str = "SSH-2.0-FakeSSH_0.1";
/// The server's channel number in every channel it confirms.
pub const SERVER_CHANNEL: u32 = 7;
pub const STRICT_S: &str = "kex-strict-s-v00@openssh.com";
pub const STRICT_C: &str = "kex-strict-c-v00@openssh.com";
/// How long a step waits for the client before the step fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(8);

pub type Hook = Arc<dyn Fn(&mut Conn) -> Result<(), String> + Send + Sync>;
pub type Mangle = Arc<dyn Fn(&mut Vec<u8>) + Send + Sync>;

/// Wrap a closure as a `Step::Hook`.
pub fn hook(f: impl Fn(&mut Conn) -> Result<(), String> + Send + Sync + 'static) -> Step {
    Step::Hook(Arc::new(f))
}

/// Wrap a closure as a `Step::Mangled` transformation.
pub fn mangle(f: impl Fn(&mut Vec<u8>) + Send + Sync + 'static) -> Mangle {
    Arc::new(f)
}

/// One scripted action of the server.
#[derive(Clone)]
pub enum Step {
    /// Bytes straight onto the socket.
    Raw(Vec<u8>),
    /// An identification line; CR LF is appended. Becomes V_S for the exchange hash.
    Banner(String),
    /// Read the client's identification line (done by `Kex` when needed).
    ReadIdent,
    /// A full key exchange as the server (initial or, once keys exist, a re-exchange that the
    /// server starts).
    Kex(KexOpts),
    /// A payload through the current packet protection (plaintext before NEWKEYS).
    Packet(Vec<u8>),
    /// A payload sealed as usual, then the bytes on the wire transformed before sending.
    Mangled(Vec<u8>, Mangle),
    /// A whole plaintext packet (length field, padding length, payload, padding: any values)
    /// protected as is with the current keys: "none" or chacha20-poly1305 only.
    RawPacket(Vec<u8>),
    /// Read client messages (recording them) until one with this number arrives.
    Expect(u8),
    /// SERVICE_REQUEST -> SERVICE_ACCEPT, then USERAUTH_REQUEST -> USERAUTH_SUCCESS.
    AcceptAuth,
    /// CHANNEL_OPEN -> CHANNEL_OPEN_CONFIRMATION with this window and maximum packet.
    AcceptChannel {
        window: u32,
        max_packet: u32,
    },
    /// CHANNEL_REQUEST (exec/shell) -> CHANNEL_SUCCESS.
    AcceptExec,
    /// CHANNEL_DATA to the client's channel.
    Data(Vec<u8>),
    /// CHANNEL_EXTENDED_DATA with this type code.
    ExtData(u32, Vec<u8>),
    /// Read until this many bytes of channel data have arrived in total.
    ExpectData(usize),
    WindowAdjust(u32),
    /// CHANNEL_REQUEST "exit-status", want_reply false.
    ExitStatus(u32),
    Eof,
    /// CHANNEL_CLOSE.
    ChannelClose,
    /// SSH_MSG_DISCONNECT.
    Disconnect(u32, Vec<u8>),
    Sleep(u64),
    /// Stop the script; keep reading and recording (never answering) until the client closes.
    Hang,
    /// Keep the TCP connection open without reading or writing until the server is dropped.
    Stall,
    /// Close the TCP connection (FIN).
    Close,
    /// Abort the TCP connection (RST).
    Reset,
    Hook(Hook),
}

/// Ways to spoil a key exchange.
#[derive(Clone, Debug)]
pub enum KexFault {
    /// Send this as Q_S / f / S_REPLY instead of the real value.
    ServerValue(Vec<u8>),
    /// Overwrite the real value from byte `at` on with `bytes` (e.g. a hybrid's X25519 part).
    ServerValueAt { at: usize, bytes: Vec<u8> },
    /// Send this as K_S (the signature is still made by the real key over the H computed
    /// with this blob).
    HostKeyBlob(Vec<u8>),
    /// Replace the whole signature blob.
    Signature(Vec<u8>),
    /// Sign a different exchange hash.
    SignOtherHash,
    /// Sign with this algorithm instead of the negotiated one.
    SigAlg(SigAlg),
}

/// Parameters of one key exchange.
#[derive(Clone)]
pub struct KexOpts {
    /// Put `kex-strict-s-v00@openssh.com` in this KEXINIT. Strict mode itself is decided by
    /// the first exchange only (OpenSSH PROTOCOL 1.10); in a re-exchange the marker must be
    /// ignored by the client.
    pub strict: bool,
    pub kex: Vec<String>,
    pub host_key_algs: Vec<String>,
    pub ciphers: Vec<String>,
    pub macs: Vec<String>,
    pub first_kex_follows: bool,
    /// Use this host key instead of the server's.
    pub host_key: Option<Arc<PrivateKey>>,
    /// Payloads sent before our KEXINIT.
    pub before_kexinit: Vec<Vec<u8>>,
    /// A "guessed" packet sent right after our KEXINIT (with `first_kex_follows`).
    pub guess: Option<Vec<u8>>,
    /// Payloads sent after the client's KEX_INIT arrived, before our KEX_REPLY.
    pub before_reply: Vec<Vec<u8>>,
    /// Payloads sent after KEX_REPLY, before our NEWKEYS.
    pub before_newkeys: Vec<Vec<u8>>,
    pub fault: Option<KexFault>,
    /// Strict mode, but do not reset our send sequence number after NEWKEYS.
    pub no_seq_reset: bool,
}

impl Default for KexOpts {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        KexOpts {
            strict: true,
            kex: s(&["curve25519-sha256"]),
            host_key_algs: s(&["ssh-ed25519"]),
            ciphers: s(&["chacha20-poly1305@openssh.com"]),
            macs: s(&["hmac-sha2-256"]),
            first_kex_follows: false,
            host_key: None,
            before_kexinit: vec![],
            guess: None,
            before_reply: vec![],
            before_newkeys: vec![],
            fault: None,
            no_seq_reset: false,
        }
    }
}

impl KexOpts {
    pub fn non_strict() -> KexOpts {
        KexOpts { strict: false, ..KexOpts::default() }
    }
    pub fn with_kex(mut self, k: &[&str]) -> KexOpts {
        self.kex = k.iter().map(|x| x.to_string()).collect();
        self
    }
    pub fn with_ciphers(mut self, c: &[&str], m: &[&str]) -> KexOpts {
        self.ciphers = c.iter().map(|x| x.to_string()).collect();
        self.macs = m.iter().map(|x| x.to_string()).collect();
        self
    }
    pub fn with_fault(mut self, f: KexFault) -> KexOpts {
        self.fault = Some(f);
        self
    }
}

/// A message the client sent.
#[derive(Clone, Debug)]
pub struct Received {
    pub number: u8,
    pub seq: u32,
    pub payload: Vec<u8>,
}

/// What happened on one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnRecord {
    /// The client's address (its socket's local address).
    pub peer: Option<SocketAddr>,
    /// The server's address as the client sees it.
    pub local: Option<SocketAddr>,
    pub client_ident: Option<String>,
    pub received: Vec<Received>,
    /// (message number, sequence number) of every packet the server sent.
    pub sent: Vec<(u8, u32)>,
    /// Channel data received, concatenated.
    pub data: Vec<u8>,
    pub script_error: Option<String>,
    pub script_done: bool,
    /// Non-key-exchange messages the client sent between its KEXINIT and its NEWKEYS.
    pub kex_violations: Vec<String>,
    pub client_closed: bool,
    pub finished: bool,
    /// Channel data bytes sent by `Conn::flood`.
    pub flooded: usize,
}

impl ConnRecord {
    /// The client's socket: (its local address, its remote address).
    pub fn client_socket(&self) -> Option<(SocketAddr, SocketAddr)> {
        Some((self.peer?, self.local?))
    }
    pub fn numbers(&self) -> Vec<u8> {
        self.received.iter().map(|r| r.number).collect()
    }
    pub fn got(&self, n: u8) -> bool {
        self.received.iter().any(|r| r.number == n)
    }
    pub fn first(&self, n: u8) -> Option<&Received> {
        self.received.iter().find(|r| r.number == n)
    }
    pub fn all(&self, n: u8) -> Vec<&Received> {
        self.received.iter().filter(|r| r.number == n).collect()
    }
    /// Reason code of the client's DISCONNECT, if it sent one.
    pub fn disconnect_reason(&self) -> Option<u32> {
        let p = &self.first(msg::DISCONNECT)?.payload;
        Reader::new(p.get(1..)?).u32().ok()
    }
    /// Sequence number the server used for its first packet with this message number.
    pub fn sent_seq(&self, n: u8) -> Option<u32> {
        self.sent.iter().find(|(m, _)| *m == n).map(|(_, s)| *s)
    }
}

/// The default server name-lists, as raw strings (kex, host key, cipher c2s/s2c, MAC c2s/s2c,
/// compression c2s/s2c, language c2s/s2c), for building KEXINITs by hand.
pub fn default_lists(strict: bool) -> [String; 10] {
    let kex = if strict { format!("curve25519-sha256,{STRICT_S}") } else { "curve25519-sha256".into() };
    [
        kex,
        "ssh-ed25519".into(),
        "chacha20-poly1305@openssh.com".into(),
        "chacha20-poly1305@openssh.com".into(),
        "hmac-sha2-256".into(),
        "hmac-sha2-256".into(),
        "none".into(),
        "none".into(),
        String::new(),
        String::new(),
    ]
}

/// A KEXINIT payload from raw name-list strings (no validation: may be malformed on purpose).
pub fn kexinit_payload(lists: &[String], first_kex_follows: bool, reserved: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(msg::KEXINIT);
    let mut cookie = [0u8; 16];
    OsRandom.fill(&mut cookie);
    w.raw(&cookie);
    for l in lists {
        w.str(l);
    }
    w.bool(first_kex_follows).u32(reserved);
    w.into_vec()
}

pub fn channel_request(recipient: u32, kind: &str, want_reply: bool, data: &[u8]) -> Vec<u8> {
    Msg::ChannelRequest { recipient, kind, want_reply, data }.encode()
}

fn u32_bytes(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

type Records = Arc<Mutex<Vec<Arc<Mutex<ConnRecord>>>>>;

pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    records: Records,
}

impl FakeServer {
    /// Start with the default host key (`fake::keys().ed_a`).
    pub fn start(script: Vec<Step>) -> FakeServer {
        FakeServer::with_key(script, super::keys().ed_a.clone())
    }

    pub fn with_key(script: Vec<Step>, key: Arc<PrivateKey>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let records: Records = Arc::default();
        let script = Arc::new(script);
        let accept = {
            let (stop, workers, records) = (stop.clone(), workers.clone(), records.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, peer)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_nodelay(true);
                            let rec = Arc::new(Mutex::new(ConnRecord {
                                peer: Some(peer),
                                local: s.local_addr().ok(),
                                ..Default::default()
                            }));
                            records.lock().unwrap().push(rec.clone());
                            let (stop, script, key) = (stop.clone(), script.clone(), key.clone());
                            let h = std::thread::spawn(move || run_conn(s, stop, &script, key, rec));
                            workers.lock().unwrap().push(h);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FakeServer { addr, stop, accept: Some(accept), workers, records }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Snapshots of every connection so far.
    pub fn conns(&self) -> Vec<ConnRecord> {
        self.records.lock().unwrap().iter().map(|r| r.lock().unwrap().clone()).collect()
    }

    /// Connection `i` once its thread has finished or the client has closed, or as it is
    /// after `timeout`.
    pub fn conn(&self, i: usize, timeout: Duration) -> ConnRecord {
        let end = Instant::now() + timeout;
        loop {
            let rec = self.records.lock().unwrap().get(i).map(|r| r.lock().unwrap().clone());
            match rec {
                Some(r) if r.finished || r.client_closed || Instant::now() >= end => return r,
                None if Instant::now() >= end => panic!("no connection {i} reached the fake server"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The client socket of connection 0 (see `ConnRecord::client_socket`).
    pub fn client_socket(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.records.lock().unwrap().first().and_then(|r| r.lock().unwrap().client_socket())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let hs: Vec<_> = self.workers.lock().unwrap().drain(..).collect();
        for h in hs {
            let _ = h.join();
        }
    }
}

/// What happens after a step.
enum Flow {
    Next,
    /// Skip the rest of the script; keep reading and recording.
    Drain,
    /// The connection is over.
    End,
}

fn run_conn(
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    script: &[Step],
    key: Arc<PrivateKey>,
    rec: Arc<Mutex<ConnRecord>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(20)));
    let mut c = Conn::new(stream, stop, key, rec.clone());
    let mut ended = false;
    for step in script {
        match c.step(step) {
            Ok(Flow::Next) => {}
            Ok(Flow::Drain) => break,
            Ok(Flow::End) => {
                ended = true;
                break;
            }
            Err(e) => {
                rec.lock().unwrap().script_error = Some(e);
                break;
            }
        }
    }
    {
        let mut r = rec.lock().unwrap();
        if r.script_error.is_none() {
            r.script_done = true;
        }
    }
    if !ended {
        c.drain();
    }
    rec.lock().unwrap().finished = true;
}

/// The server end of one connection. Hooks get `&mut Conn` and may use everything public.
pub struct Conn {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    inbuf: Vec<u8>,
    opener: Opener,
    sealer: Sealer,
    s2c: Option<DirectionKeys>,
    pub rx_seq: u32,
    pub tx_seq: u32,
    ident_read: bool,
    pub client_ident: Vec<u8>,
    pub server_ident: Vec<u8>,
    pub session_id: Option<Vec<u8>>,
    pub strict: bool,
    host_key: Arc<PrivateKey>,
    rng: OsRandom,
    /// The client's channel number (from its CHANNEL_OPEN).
    pub client_channel: Option<u32>,
    /// The client's advertised window and maximum packet.
    pub client_window: u32,
    pub client_max_packet: u32,
    data_len: usize,
    in_client_kex: bool,
    /// Messages read while waiting for something else, not yet claimed by `expect`.
    pending: std::collections::VecDeque<Vec<u8>>,
    pub rec: Arc<Mutex<ConnRecord>>,
}

impl Conn {
    fn new(stream: TcpStream, stop: Arc<AtomicBool>, key: Arc<PrivateKey>, rec: Arc<Mutex<ConnRecord>>) -> Conn {
        Conn {
            stream,
            stop,
            inbuf: Vec::new(),
            opener: Opener::plaintext(),
            sealer: Sealer::plaintext(),
            s2c: None,
            rx_seq: 0,
            tx_seq: 0,
            ident_read: false,
            client_ident: Vec::new(),
            server_ident: SERVER_IDENT.as_bytes().to_vec(),
            session_id: None,
            strict: false,
            host_key: key,
            rng: OsRandom,
            client_channel: None,
            client_window: 0,
            client_max_packet: 0,
            data_len: 0,
            in_client_kex: false,
            pending: std::collections::VecDeque::new(),
            rec,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn step(&mut self, s: &Step) -> Result<Flow, String> {
        match s {
            Step::Raw(b) => self.write_raw(b)?,
            Step::Banner(l) => {
                if l.starts_with("SSH-") {
                    self.server_ident = l.as_bytes().to_vec();
                }
                let mut b = l.as_bytes().to_vec();
                b.extend_from_slice(b"\r\n");
                self.write_raw(&b)?;
            }
            Step::ReadIdent => self.read_ident()?,
            Step::Kex(o) => self.kex(o)?,
            Step::Packet(p) => self.send(p)?,
            Step::Mangled(p, f) => {
                let mut out = self.seal(p);
                f(&mut out);
                self.write_raw(&out)?;
            }
            Step::RawPacket(pkt) => self.send_raw_packet(pkt)?,
            Step::Expect(n) => {
                self.expect(*n)?;
            }
            Step::AcceptAuth => {
                self.expect(msg::SERVICE_REQUEST)?;
                self.send_msg(&Msg::ServiceAccept { name: "ssh-userauth" })?;
                self.expect(msg::USERAUTH_REQUEST)?;
                self.send_msg(&Msg::UserauthSuccess)?;
            }
            Step::AcceptChannel { window, max_packet } => {
                let p = self.expect(msg::CHANNEL_OPEN)?;
                let Ok(Msg::ChannelOpen { sender, window: cw, max_packet: cm, .. }) = Msg::decode(&p) else {
                    return Err("bad CHANNEL_OPEN".into());
                };
                self.client_channel = Some(sender);
                self.client_window = cw;
                self.client_max_packet = cm;
                self.send_msg(&Msg::ChannelOpenConfirmation {
                    recipient: sender,
                    sender: SERVER_CHANNEL,
                    window: *window,
                    max_packet: *max_packet,
                    extra: &[],
                })?;
            }
            Step::AcceptExec => {
                let p = self.expect(msg::CHANNEL_REQUEST)?;
                if let Ok(Msg::ChannelRequest { want_reply: true, .. }) = Msg::decode(&p) {
                    let r = self.chan();
                    self.send_msg(&Msg::ChannelSuccess { recipient: r })?;
                }
            }
            Step::Data(d) => {
                let r = self.chan();
                self.send_msg(&Msg::ChannelData { recipient: r, data: d })?;
            }
            Step::ExtData(code, d) => {
                let r = self.chan();
                self.send_msg(&Msg::ChannelExtendedData { recipient: r, code: *code, data: d })?;
            }
            Step::ExpectData(n) => {
                let end = Instant::now() + STEP_TIMEOUT;
                while self.data_len < *n {
                    let p = self.recv(end).map_err(|e| format!("waiting for {n} bytes of data: {e}"))?;
                    if p.first() != Some(&msg::CHANNEL_DATA) {
                        self.park(p);
                    }
                }
            }
            Step::WindowAdjust(b) => {
                let r = self.chan();
                self.send_msg(&Msg::ChannelWindowAdjust { recipient: r, bytes: *b })?;
            }
            Step::ExitStatus(code) => {
                let r = self.chan();
                self.send(&channel_request(r, "exit-status", false, &u32_bytes(*code)))?;
            }
            Step::Eof => {
                let r = self.chan();
                self.send_msg(&Msg::ChannelEof { recipient: r })?;
            }
            Step::ChannelClose => {
                let r = self.chan();
                self.send_msg(&Msg::ChannelClose { recipient: r })?;
            }
            Step::Disconnect(reason, text) => {
                self.send_msg(&Msg::Disconnect { reason: *reason, description: text })?;
            }
            Step::Sleep(ms) => self.sleep(Duration::from_millis(*ms)),
            Step::Hang => return Ok(Flow::Drain),
            Step::Stall => {
                while !self.stopped() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Ok(Flow::End);
            }
            Step::Close => {
                let _ = self.stream.shutdown(Shutdown::Both);
                return Ok(Flow::End);
            }
            Step::Reset => {
                let lg = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: valid socket descriptor and a correctly sized linger struct.
                unsafe {
                    libc::setsockopt(
                        self.stream.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        &lg as *const libc::linger as *const libc::c_void,
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
                return Ok(Flow::End);
            }
            Step::Hook(h) => h(self)?,
        }
        Ok(Flow::Next)
    }

    /// The client's channel number (0 before any CHANNEL_OPEN).
    pub fn chan(&self) -> u32 {
        self.client_channel.unwrap_or(0)
    }

    pub fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && !self.stopped() {
            std::thread::sleep(Duration::from_millis(5).min(end.saturating_duration_since(Instant::now())));
        }
    }

    // ----- output -----

    /// Write everything (a blocked write gives up when the server is dropped).
    pub fn write_raw(&mut self, mut b: &[u8]) -> Result<(), String> {
        while !b.is_empty() {
            if self.stopped() {
                return Err("server stopped".into());
            }
            match self.stream.write(b) {
                Ok(0) => return Err("write: connection closed".into()),
                Ok(n) => b = &b[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    fn note_sent(&mut self, n: u8) {
        self.rec.lock().unwrap().sent.push((n, self.tx_seq));
        self.tx_seq = self.tx_seq.wrapping_add(1);
    }

    /// Seal one payload (it counts as sent) and return the bytes, for hooks that want to
    /// put several packets, or altered ones, into one write.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.sealer.seal(self.tx_seq, payload, &mut self.rng, &mut out);
        self.note_sent(payload.first().copied().unwrap_or(0));
        out
    }

    /// Seal and send one payload.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), String> {
        let out = self.seal(payload);
        self.write_raw(&out)
    }

    pub fn send_msg(&mut self, m: &Msg<'_>) -> Result<(), String> {
        self.send(&m.encode())
    }

    /// Protect a complete plaintext packet as is (see `Step::RawPacket`).
    pub fn send_raw_packet(&mut self, pkt: &[u8]) -> Result<(), String> {
        let n = pkt.get(5).copied().unwrap_or(0);
        let out = match &self.s2c {
            None => pkt.to_vec(),
            Some(k) if k.cipher == Cipher::Chacha20Poly1305 => chacha_seal_raw(&k.key, self.tx_seq, pkt),
            Some(k) => return Err(format!("RawPacket not supported with {}", k.cipher)),
        };
        self.note_sent(n);
        self.write_raw(&out)
    }

    // ----- input -----

    /// Read more bytes into `inbuf`; Err on EOF, error, stop or deadline.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<(), String> {
        let mut buf = [0u8; 65536];
        loop {
            if self.stopped() {
                return Err("server stopped".into());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err("timed out waiting for the client".into());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.rec.lock().unwrap().client_closed = true;
                    return Err("client closed the connection".into());
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.rec.lock().unwrap().client_closed = true;
                    return Err(format!("read: {e}"));
                }
            }
        }
    }

    pub fn read_ident(&mut self) -> Result<(), String> {
        if self.ident_read {
            return Ok(());
        }
        let end = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                if line.starts_with(b"SSH-") {
                    self.rec.lock().unwrap().client_ident = Some(String::from_utf8_lossy(&line).into_owned());
                    self.client_ident = line;
                    self.ident_read = true;
                    return Ok(());
                }
                continue;
            }
            self.fill(Some(end))?;
        }
    }

    /// Read one packet (recorded) and return its payload.
    pub fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, String> {
        self.read_ident()?;
        loop {
            match self.opener.open(self.rx_seq, &mut self.inbuf) {
                Ok(Opened::Packet { consumed, payload }) => {
                    let p = self.inbuf[payload].to_vec();
                    self.inbuf.drain(..consumed);
                    let seq = self.rx_seq;
                    self.rx_seq = self.rx_seq.wrapping_add(1);
                    self.record(&p, seq);
                    return Ok(p);
                }
                Ok(Opened::NeedMore(_)) => self.fill(deadline)?,
                Err(e) => return Err(format!("bad packet from the client: {e}")),
            }
        }
    }

    fn record(&mut self, p: &[u8], seq: u32) {
        let n = p.first().copied().unwrap_or(0);
        let mut r = self.rec.lock().unwrap();
        match n {
            msg::KEXINIT => self.in_client_kex = true,
            msg::NEWKEYS => self.in_client_kex = false,
            1..=4 | 30 => {}
            _ if self.in_client_kex => r.kex_violations.push(format!("message {n} (seq {seq}) during key exchange")),
            _ => {}
        }
        if let Ok(Msg::ChannelData { data, .. }) = Msg::decode(p) {
            r.data.extend_from_slice(data);
            self.data_len += data.len();
        }
        r.received.push(Received { number: n, seq, payload: p.to_vec() });
    }

    /// Keep a message read while waiting for something else, for a later `expect`.
    fn park(&mut self, p: Vec<u8>) {
        if self.pending.len() >= 4096 {
            self.pending.pop_front();
        }
        self.pending.push_back(p);
    }

    /// The first message numbered `n` that arrived while earlier steps waited for something
    /// else, or else the next one to arrive (messages skipped on the way are parked); a
    /// DISCONNECT (when not expected) fails.
    pub fn expect(&mut self, n: u8) -> Result<Vec<u8>, String> {
        self.expect_within(n, STEP_TIMEOUT)
    }

    /// `expect` with its own time limit.
    pub fn expect_within(&mut self, n: u8, limit: Duration) -> Result<Vec<u8>, String> {
        if let Some(i) = self.pending.iter().position(|p| p.first() == Some(&n)) {
            return Ok(self.pending.remove(i).unwrap_or_default());
        }
        let end = Instant::now() + limit;
        loop {
            let p = self.recv(end).map_err(|e| format!("waiting for message {n}: {e}"))?;
            let got = p.first().copied().unwrap_or(0);
            if got == n {
                return Ok(p);
            }
            if got == msg::DISCONNECT {
                let text = match Msg::decode(&p) {
                    Ok(Msg::Disconnect { reason, description }) => {
                        format!("reason {reason}: {}", String::from_utf8_lossy(description))
                    }
                    _ => "malformed".into(),
                };
                return Err(format!("waiting for message {n}: client disconnected ({text})"));
            }
            if got != msg::CHANNEL_DATA {
                self.park(p);
            }
        }
    }

    /// Keep reading and recording until the client closes or the server stops.
    fn drain(&mut self) {
        loop {
            if self.stopped() {
                return;
            }
            let r = if self.ident_read { self.recv_until(None).map(|_| ()) } else { self.read_ident() };
            if let Err(e) = r {
                if self.stopped() || self.rec.lock().unwrap().client_closed {
                    return;
                }
                if e.starts_with("bad packet") || e.starts_with("timed out") {
                    // Undecodable input: just swallow bytes until the client closes.
                    self.inbuf.clear();
                    while self.fill(None).is_ok() {
                        self.inbuf.clear();
                    }
                    return;
                }
            }
        }
    }

    /// Send up to `total` bytes of channel data (stdout, or extended data `code`) as fast as
    /// the client's window allows, like an honest server with an endless producer; stops
    /// when the window stays shut for `patience`. Returns the bytes sent.
    pub fn flood(&mut self, total: usize, code: Option<u32>, patience: Duration) -> Result<usize, String> {
        let r = self.chan();
        let chunk = vec![b'f'; 32768.min(self.client_max_packet.max(1) as usize)];
        let mut window = self.client_window as usize;
        let mut sent = 0usize;
        while sent < total {
            if window == 0 {
                match self.expect_within(msg::CHANNEL_WINDOW_ADJUST, patience) {
                    Ok(p) => {
                        window += Reader::new(p.get(5..).unwrap_or(&[])).u32().unwrap_or(0) as usize;
                        continue;
                    }
                    Err(e) if e.contains("timed out") => break,
                    Err(e) => return Err(e),
                }
            }
            let n = chunk.len().min(window).min(total - sent);
            let payload = match code {
                None => Msg::ChannelData { recipient: r, data: &chunk[..n] }.encode(),
                Some(c) => Msg::ChannelExtendedData { recipient: r, code: c, data: &chunk[..n] }.encode(),
            };
            self.send(&payload)?;
            window -= n;
            sent += n;
        }
        self.rec.lock().unwrap().flooded += sent;
        Ok(sent)
    }

    // ----- key exchange -----

    fn kex(&mut self, o: &KexOpts) -> Result<(), String> {
        let initial = self.session_id.is_none();
        self.read_ident()?;
        for p in &o.before_kexinit {
            self.send(p)?;
        }
        let mut kex_list = o.kex.clone();
        if o.strict {
            kex_list.push(STRICT_S.into());
        }
        let lists = [
            kex_list.join(","),
            o.host_key_algs.join(","),
            o.ciphers.join(","),
            o.ciphers.join(","),
            o.macs.join(","),
            o.macs.join(","),
            "none".into(),
            "none".into(),
            String::new(),
            String::new(),
        ];
        let ours = kexinit_payload(&lists, o.first_kex_follows, 0);
        self.send(&ours)?;
        if let Some(g) = &o.guess {
            self.send(g)?;
        }
        let theirs = self.expect_kex(msg::KEXINIT)?;
        let Ok(Msg::KexInit(ck)) = Msg::decode(&theirs) else {
            return Err("malformed client KEXINIT".into());
        };
        if initial {
            self.strict = o.strict && ck.kex.contains(&STRICT_C);
        }
        let pick = |client: &[&str], server: &[String], what: &str| -> Result<String, String> {
            client
                .iter()
                .find(|c| server.iter().any(|s| s == *c))
                .map(|s| s.to_string())
                .ok_or_else(|| format!("no common {what}"))
        };
        let kex = Kex::from_name(&pick(&ck.kex, &o.kex, "kex")?).ok_or("kex")?;
        let hk_alg = SigAlg::from_name(&pick(&ck.host_key, &o.host_key_algs, "host key")?).ok_or("host key")?;
        let c_c2s = Cipher::from_name(&pick(&ck.cipher_c2s, &o.ciphers, "cipher")?).ok_or("cipher")?;
        let c_s2c = Cipher::from_name(&pick(&ck.cipher_s2c, &o.ciphers, "cipher")?).ok_or("cipher")?;
        let mac_for = |c: Cipher, list: &[&str]| -> Result<Option<Mac>, String> {
            if c.is_aead() {
                return Ok(None);
            }
            Ok(Some(Mac::from_name(&pick(list, &o.macs, "mac")?).ok_or("mac")?))
        };
        let m_c2s = mac_for(c_c2s, &ck.mac_c2s)?;
        let m_s2c = mac_for(c_s2c, &ck.mac_s2c)?;

        let init = self.expect_kex(msg::KEX_INIT)?;
        let Ok(Msg::KexInitValue { value: q_c }) = Msg::decode(&init) else {
            return Err("malformed KEX_INIT".into());
        };
        let q_c = q_c.to_vec();
        let (mut q_s, k) = server_respond(kex, &q_c, &mut self.rng).map_err(|e| format!("server kex: {e}"))?;
        let key = o.host_key.clone().unwrap_or_else(|| self.host_key.clone());
        let mut blob = key.public_key().blob().to_vec();
        match &o.fault {
            Some(KexFault::ServerValue(v)) => q_s = v.clone(),
            Some(KexFault::ServerValueAt { at, bytes }) => {
                let end = (at + bytes.len()).min(q_s.len());
                q_s[*at..end].copy_from_slice(&bytes[..end - at]);
            }
            Some(KexFault::HostKeyBlob(b)) => blob = b.clone(),
            _ => {}
        }
        let h = exchange_hash(
            kex,
            &HashInput {
                client_ident: &self.client_ident,
                server_ident: &self.server_ident,
                client_kexinit: &theirs,
                server_kexinit: &ours,
                host_key: &blob,
                client_value: &q_c,
                server_value: &q_s,
            },
            &k,
        );
        let sig = match &o.fault {
            Some(KexFault::Signature(s)) => s.clone(),
            Some(KexFault::SignOtherHash) => {
                let mut other = h.clone();
                other[0] ^= 1;
                key.sign(hk_alg, &other, &mut self.rng).map_err(|e| e.to_string())?
            }
            Some(KexFault::SigAlg(a)) => key.sign(*a, &h, &mut self.rng).map_err(|e| e.to_string())?,
            _ => key.sign(hk_alg, &h, &mut self.rng).map_err(|e| e.to_string())?,
        };
        for p in &o.before_reply {
            self.send(p)?;
        }
        self.send_msg(&Msg::KexReply { host_key: &blob, value: &q_s, signature: &sig })?;
        let sid = self.session_id.get_or_insert_with(|| h.clone()).clone();
        let d = |letter: u8, len: usize| derive_key(kex, &k, &h, letter, &sid, len).to_vec();
        let c2s = DirectionKeys {
            cipher: c_c2s,
            mac: m_c2s,
            iv: d(b'A', c_c2s.iv_len()),
            key: d(b'C', c_c2s.key_len()),
            mac_key: m_c2s.map(|m| d(b'E', m.key_len())).unwrap_or_default(),
        };
        let s2c = DirectionKeys {
            cipher: c_s2c,
            mac: m_s2c,
            iv: d(b'B', c_s2c.iv_len()),
            key: d(b'D', c_s2c.key_len()),
            mac_key: m_s2c.map(|m| d(b'F', m.key_len())).unwrap_or_default(),
        };
        for p in &o.before_newkeys {
            self.send(p)?;
        }
        self.send_msg(&Msg::NewKeys)?;
        self.sealer = Sealer::new(&s2c).map_err(|e| e.to_string())?;
        self.s2c = Some(s2c);
        if self.strict && !o.no_seq_reset {
            self.tx_seq = 0;
        }
        self.expect_kex(msg::NEWKEYS)?;
        self.opener = Opener::new(&c2s).map_err(|e| e.to_string())?;
        if self.strict {
            self.rx_seq = 0;
        }
        Ok(())
    }

    /// `expect` for key-exchange messages: anything else from the client is recorded (and
    /// flagged as a violation when it falls between the client's KEXINIT and NEWKEYS).
    fn expect_kex(&mut self, n: u8) -> Result<Vec<u8>, String> {
        self.expect(n).map_err(|e| format!("key exchange: {e}"))
    }
}

/// chacha20-poly1305@openssh.com over an arbitrary plaintext packet (OpenSSH
/// PROTOCOL.chacha20poly1305): `key` is K_2 || K_1.
fn chacha_seal_raw(key: &[u8], seq: u32, pkt: &[u8]) -> Vec<u8> {
    use chacha20::ChaCha20Legacy;
    let nonce = u64::from(seq).to_be_bytes();
    let (k2, k1) = key.split_at(32);
    let (k2, k1): (&[u8; 32], &[u8; 32]) = (k2.try_into().unwrap(), k1.try_into().unwrap());
    let mut out = pkt.to_vec();
    let mut lc = ChaCha20Legacy::new(k1.into(), (&nonce).into());
    lc.apply_keystream(&mut out[..4.min(pkt.len())]);
    let mut mc = ChaCha20Legacy::new(k2.into(), (&nonce).into());
    let mut block0 = [0u8; 64];
    mc.apply_keystream(&mut block0);
    if out.len() > 4 {
        mc.apply_keystream(&mut out[4..]);
    }
    let poly_key: &[u8; 32] = block0[..32].try_into().unwrap();
    let poly = poly1305::Poly1305::new(poly_key.into());
    let tag = poly.compute_unpadded(&out);
    out.extend_from_slice(&tag);
    out
}
