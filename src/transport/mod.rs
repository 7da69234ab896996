//! The SSH transport layer, RFC 4253 sections 4-11, sans-IO and for either role:
//! identification exchange, binary packets with sequence numbers, algorithm negotiation, key
//! exchange (module `exchange`), NEWKEYS, rekeying (section 9: by the peer at any time, by us
//! after 1 GiB, 1 hour or 2^31 packets), EXT_INFO (RFC 8308) and strict key exchange (OpenSSH
//! PROTOCOL section 1.10, CVE-2023-48795). The role decides the identification, the first
//! KEXINIT's pseudo-algorithms, the negotiation order, sign or verify of the exchange hash and
//! which derived keys go which way.
//!
//! Bytes come in through `receive`, go out through `take_output`; payloads for the layers above
//! come out of `poll`. Time (`now`) and randomness are passed in.

mod exchange;
pub mod ident;
pub mod negotiate;
mod pad;

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algs::Preferences;
use crate::cipher::{DirectionKeys, Opened, Opener, Sealer};
use crate::error::{sanitize, Error};
use crate::gate::{gate, GateState, KexStage, Service, Verdict};
use crate::kex::KexPending;
use crate::keys::{PrivateKey, PublicKey};
use crate::msg::{self, Msg};
use crate::random::Random;
use crate::trust::Decision;
use ident::{IdentReader, IdentResult, CLIENT_IDENT};
pub use negotiate::Negotiated;

/// How far past twice a read `read_space` may grow the input buffer to take the rest of a
/// packet without moving it: one packet of the largest size we accept in data (32 KiB plus
/// header, padding and tag).
const READ_TO_END_SLACK: usize = 36 * 1024;
/// Reads of at least this much (the driver's largest) mean bulk data: `read_space` keeps room
/// for two of them.
const BULK_READ: usize = 64 * 1024;

/// Our identification line (both roles), without CR LF.
pub(crate) const OUR_IDENT: &str = CLIENT_IDENT;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    /// The other end, for messages ("server KEXINIT was packet 3").
    pub fn peer_name(self) -> &'static str {
        match self {
            Role::Client => "server",
            Role::Server => "client",
        }
    }
}
use pad::{PadPool, PadSource};

/// Rekey limits (RFC 4253 section 9, RFC 4344 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyLimits {
    pub bytes: u64,
    pub time: Duration,
    pub packets: u32,
}

impl Default for RekeyLimits {
    fn default() -> Self {
        RekeyLimits { bytes: 1 << 30, time: Duration::from_secs(3600), packets: 1 << 31 }
    }
}

/// How the server's host key is checked: pinned keys, known_hosts or an application verifier
/// (`crate::trust`), decided once the exchange-hash signature verified.
pub use crate::trust::HostKeyCheck;

/// What `poll` hands upward.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A payload for the layers above: `input[range]` of the buffer `lend_input` hands out
    /// (decrypted in place, not copied); `seq` is its sequence number.
    Payload { seq: u32, range: Range<usize> },
    /// A key exchange finished (the first one: keys are in place, authentication may start).
    KexDone { first: bool },
}

enum KexState {
    Idle,
    /// We sent KEXINIT (payload kept for the exchange hash).
    SentInit { ours: Vec<u8> },
    /// Both KEXINITs are in; the client waits for KEX_REPLY (`pending`: its ephemeral secret),
    /// the server for the client's KEX_INIT value (`pending` is None).
    AwaitReply { ours: Vec<u8>, theirs: Vec<u8>, negotiated: Negotiated, pending: Option<KexPending> },
    AwaitNewKeys { rx: DirectionKeys, negotiated: Negotiated },
}

impl KexState {
    fn stage(&self) -> KexStage {
        match self {
            KexState::Idle => KexStage::Idle,
            KexState::SentInit { .. } => KexStage::AwaitKexInit,
            KexState::AwaitReply { .. } => KexStage::AwaitReply,
            KexState::AwaitNewKeys { .. } => KexStage::AwaitNewKeys,
        }
    }
}

pub struct Transport {
    role: Role,
    /// Server role: the host keys, one per key type.
    host_keys: Vec<Arc<PrivateKey>>,
    /// Server role: the client's first KEXINIT offered `ext-info-c`.
    peer_ext_info: bool,
    prefs: Preferences,
    host_key_check: HostKeyCheck,
    limits: RekeyLimits,
    rng: Box<dyn Random>,
    /// Random bytes for packet padding, drawn from `rng` a pool at a time.
    pad_pool: PadPool,

    ident: Option<IdentReader>,
    /// The peer's identification line, without CR LF.
    peer_ident: Vec<u8>,
    /// Received bytes are `inbuf[in_start..in_end]`; `inbuf[in_end..]` is initialised space
    /// the network can be read into directly (`input_space`).
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// Bytes from `in_start` the packet there needs in full (when the last `poll` wanted more).
    in_need: usize,
    out: Vec<u8>,
    /// Bytes of `out` already written to the network.
    out_start: usize,

    opener: Opener,
    sealer: Sealer,
    rx_seq: u32,
    tx_seq: u32,

    kex: KexState,
    /// Set once the first NEWKEYS has been received.
    keys_in_place: bool,
    strict: bool,
    /// Our first KEXINIT went out; later ones carry no pseudo-algorithms.
    sent_first_kexinit: bool,
    ignore_next_kex_packet: bool,
    session_id: Option<Vec<u8>>,
    host_key: Option<PublicKey>,
    /// What the host key check decided (first exchange), for the layers above.
    decision: Option<Decision>,
    negotiated: Option<Negotiated>,
    queued: VecDeque<Vec<u8>>,
    /// Bytes in `queued`.
    queued_bytes: usize,
    service: Service,

    since_kex_bytes: u64,
    since_kex_packets_tx: u32,
    since_kex_packets_rx: u32,
    kex_started_at: Instant,
    kex_count: u32,
    strict_seen: bool,
    /// Refuse a server whose first KEXINIT lacks the strict-kex marker.
    require_strict: bool,
    /// Hex dumps of payloads at trace level (never of authentication requests).
    log_payloads: bool,
    server_sig_algs: Option<Vec<String>>,
}

impl Transport {
    pub fn new(
        prefs: Preferences,
        host_key_check: HostKeyCheck,
        limits: RekeyLimits,
        rng: Box<dyn Random>,
        now: Instant,
    ) -> Transport {
        let mut prefs = prefs;
        // Known key types go first, so that the server presents the key we can check.
        host_key_check.order(&mut prefs.host_key);
        Transport::build(Role::Client, Vec::new(), prefs, host_key_check, limits, rng, now)
    }

    /// A server's transport, presenting `host_keys` (one per key type). The host-key
    /// algorithms offered are those of `prefs.host_key` one of the keys can make; an RSA key
    /// signs with rsa-sha2-512/256 only, unless `prefs.host_key` lists `ssh-rsa`. Only with the
    /// `server` feature: without it `role()` is always the client.
    #[cfg(any(feature = "server", test))]
    pub fn new_server(
        prefs: Preferences,
        host_keys: Vec<Arc<PrivateKey>>,
        limits: RekeyLimits,
        rng: Box<dyn Random>,
        now: Instant,
    ) -> Result<Transport, Error> {
        let mut prefs = prefs;
        prefs.host_key.retain(|alg| host_keys.iter().any(|k| k.public_key().key_type() == alg.key_type()));
        if prefs.host_key.is_empty() {
            return Err(Error::bad_argument("a server needs at least one host key of a type the preferences allow"));
        }
        Ok(Transport::build(Role::Server, host_keys, prefs, HostKeyCheck::default(), limits, rng, now))
    }

    fn build(
        role: Role,
        host_keys: Vec<Arc<PrivateKey>>,
        prefs: Preferences,
        host_key_check: HostKeyCheck,
        limits: RekeyLimits,
        rng: Box<dyn Random>,
        now: Instant,
    ) -> Transport {
        let mut t = Transport {
            role,
            host_keys,
            peer_ext_info: false,
            prefs,
            host_key_check,
            limits,
            rng,
            pad_pool: PadPool::default(),
            ident: Some(IdentReader::default()),
            peer_ident: Vec::new(),
            inbuf: Vec::new(),
            in_start: 0,
            in_end: 0,
            in_need: 0,
            out: Vec::with_capacity(4096),
            out_start: 0,
            opener: Opener::plaintext(),
            sealer: Sealer::plaintext(),
            rx_seq: 0,
            tx_seq: 0,
            kex: KexState::Idle,
            keys_in_place: false,
            strict: false,
            sent_first_kexinit: false,
            ignore_next_kex_packet: false,
            session_id: None,
            host_key: None,
            decision: None,
            negotiated: None,
            queued: VecDeque::new(),
            queued_bytes: 0,
            service: Service::Requested,
            since_kex_bytes: 0,
            since_kex_packets_tx: 0,
            since_kex_packets_rx: 0,
            kex_started_at: now,
            kex_count: 0,
            strict_seen: false,
            require_strict: false,
            log_payloads: false,
            server_sig_algs: None,
        };
        t.out.extend_from_slice(OUR_IDENT.as_bytes());
        t.out.extend_from_slice(b"\r\n");
        t.send_kexinit();
        t
    }

    /// Refuse servers without strict key exchange (checked on their first KEXINIT).
    pub fn set_require_strict(&mut self, on: bool) {
        self.require_strict = on;
    }
    /// Log packet payloads as hex at trace level (`Config::log_payloads`).
    pub fn set_log_payloads(&mut self, on: bool) {
        self.log_payloads = on;
    }

    // ----- getters -----

    /// The server's identification line (client role; the peer's in general).
    pub fn server_ident(&self) -> &[u8] {
        &self.peer_ident
    }
    /// The peer's identification line, without CR LF.
    pub fn peer_ident(&self) -> &[u8] {
        &self.peer_ident
    }
    /// The role. A build without the `server` feature is always the client (only the server
    /// module builds a server transport), so the server's half of the key exchange is dead code
    /// there and LTO drops it from the client-only C library (issue 16).
    pub fn role(&self) -> Role {
        if cfg!(any(feature = "server", test)) {
            self.role
        } else {
            Role::Client
        }
    }
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    pub fn strict_kex(&self) -> bool {
        self.strict_seen
    }
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.host_key.as_ref()
    }
    /// The host key check, and what it decided about the first exchange's key.
    pub fn host_key_check(&self) -> &HostKeyCheck {
        &self.host_key_check
    }
    pub fn host_key_decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
    /// Our algorithm preferences (the host-key list as ordered for this host).
    pub fn preferences(&self) -> &Preferences {
        &self.prefs
    }
    pub fn server_sig_algs(&self) -> Option<&[String]> {
        self.server_sig_algs.as_deref()
    }
    /// Completed key exchanges, the first included.
    pub fn kex_count(&self) -> u32 {
        self.kex_count
    }
    pub fn set_service(&mut self, s: Service) {
        self.service = s;
    }
    pub fn service(&self) -> Service {
        self.service
    }
    /// Whether upper-layer messages go out now rather than being queued (no exchange is
    /// waiting for our NEWKEYS).
    pub fn can_send(&self) -> bool {
        matches!(self.kex, KexState::Idle | KexState::AwaitNewKeys { .. }) && self.keys_in_place_tx()
    }
    fn keys_in_place_tx(&self) -> bool {
        self.session_id.is_some()
    }
    /// Random bytes from the transport's generator (for the layers above: signatures).
    pub fn rng(&mut self) -> &mut dyn Random {
        self.rng.as_mut()
    }

    // ----- output -----

    /// Bytes waiting to go to the network.
    pub fn output(&self) -> &[u8] {
        self.out.get(self.out_start..).unwrap_or_default()
    }
    pub fn consume_output(&mut self, n: usize) {
        self.out_start = self.out_start.saturating_add(n).min(self.out.len());
        if self.out_start == self.out.len() {
            // Everything went out: reuse the buffer from the start, no copying.
            self.out.clear();
            self.out_start = 0;
        } else if self.out_start >= 64 * 1024 && self.out_start * 2 >= self.out.len() {
            self.out.drain(..self.out_start);
            self.out_start = 0;
        }
    }
    pub fn output_len(&self) -> usize {
        self.out.len() - self.out_start
    }
    /// Bytes waiting to go out: the output buffer and the messages queued behind a key
    /// exchange (what a peer that stops reading makes us hold).
    pub fn pending_output(&self) -> usize {
        self.output_len().saturating_add(self.queued_bytes)
    }

    fn seal(&mut self, payload: &[u8]) {
        self.seal_parts(&[payload]);
    }

    /// Seal one packet whose payload is `parts` joined, built in place in the output buffer.
    fn seal_parts(&mut self, parts: &[&[u8]]) {
        let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        crate::logging::packet("send", self.tx_seq, parts, self.log_payloads);
        let start = self.sealer.begin(&mut self.out, len);
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.seal_finish(start, len);
    }

    /// Pad, encrypt and count the packet whose payload (`len` bytes) follows `out[start..]`'s
    /// header (`Sealer::begin`).
    fn seal_finish(&mut self, start: usize, len: usize) {
        let mut pad = PadSource { pool: &mut self.pad_pool, rng: self.rng.as_mut() };
        self.sealer.finish(self.tx_seq, &mut pad, &mut self.out, start);
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.since_kex_packets_tx = self.since_kex_packets_tx.saturating_add(1);
        self.since_kex_bytes = self.since_kex_bytes.saturating_add(len as u64);
    }

    /// Send a payload from the layers above: straight out, or queued while a key exchange needs
    /// the line (RFC 4253 section 7.1). The queue holds control messages only: channel data is
    /// produced only when `can_send()`.
    pub fn send(&mut self, payload: &[u8]) {
        let transport_msg = payload.first().is_some_and(|&n| matches!(n, 1..=4 | 20..=49));
        if transport_msg || (self.can_send() && self.queued.is_empty()) {
            self.seal(payload);
            if !transport_msg {
                self.rekey_if_volume_reached();
            }
        } else {
            self.queued_bytes = self.queued_bytes.saturating_add(payload.len());
            self.queued.push_back(payload.to_vec());
        }
    }

    /// Send CHANNEL_DATA (RFC 4254 section 5.2) built directly in the output buffer: the data
    /// is copied once, into the packet that is then encrypted in place. Same rules as `send`.
    pub fn send_channel_data(&mut self, recipient: u32, data: &[u8]) {
        if !(self.can_send() && self.queued.is_empty()) {
            self.send_msg(&Msg::ChannelData { recipient, data });
            return;
        }
        let [r0, r1, r2, r3] = recipient.to_be_bytes();
        let [l0, l1, l2, l3] = u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes();
        self.seal_parts(&[&[msg::CHANNEL_DATA, r0, r1, r2, r3, l0, l1, l2, l3], data]);
        self.rekey_if_volume_reached();
    }

    /// Send CHANNEL_DATA whose data `fill` writes straight into the packet being built (issue
    /// 16: no copy on upload): `fill` gets up to `max` bytes of the packet's payload area and
    /// returns how many it wrote; the header is written, the packet padded and sealed in place.
    /// Nothing is sent when it returns 0. The caller keeps within the peer's window and maximum
    /// packet (`Channel::send_data_with`). Returns the bytes sent.
    pub fn send_channel_data_with(&mut self, recipient: u32, max: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        if !(self.can_send() && self.queued.is_empty()) {
            // Not while a key exchange holds the line: built apart and queued like `send`.
            let mut data = vec![0u8; max];
            let n = fill(&mut data).min(max);
            if n > 0 {
                self.send_channel_data(recipient, data.get(..n).unwrap_or_default());
            }
            return n;
        }
        let start = self.sealer.begin(&mut self.out, max.saturating_add(9));
        let [r0, r1, r2, r3] = recipient.to_be_bytes();
        self.out.extend_from_slice(&[msg::CHANNEL_DATA, r0, r1, r2, r3, 0, 0, 0, 0]);
        let data_at = self.out.len();
        self.out.resize(data_at.saturating_add(max), 0);
        let n = fill(self.out.get_mut(data_at..).unwrap_or_default()).min(max);
        if n == 0 {
            self.out.truncate(start);
            return 0;
        }
        self.out.truncate(data_at.saturating_add(n));
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(l) = self.out.get_mut(data_at.saturating_sub(4)..data_at) {
            l.copy_from_slice(&n32.to_be_bytes());
        }
        let payload_at = start.saturating_add(5);
        crate::logging::packet("send", self.tx_seq, &[self.out.get(payload_at..).unwrap_or_default()], self.log_payloads);
        self.seal_finish(start, n.saturating_add(9));
        self.rekey_if_volume_reached();
        n
    }

    /// Rekey as soon as sending crosses the volume limit, not only when input arrives.
    fn rekey_if_volume_reached(&mut self) {
        if self.volume_limit_reached() && matches!(self.kex, KexState::Idle) {
            self.send_kexinit();
        }
    }

    fn volume_limit_reached(&self) -> bool {
        self.keys_in_place
            && (self.since_kex_bytes >= self.limits.bytes
                || self.since_kex_packets_tx >= self.limits.packets
                || self.since_kex_packets_rx >= self.limits.packets)
    }

    pub fn send_msg(&mut self, m: &Msg<'_>) {
        let payload = m.encode();
        self.send(&payload);
    }

    fn flush_queue(&mut self) {
        while self.can_send() {
            let Some(p) = self.queued.pop_front() else { break };
            self.queued_bytes = self.queued_bytes.saturating_sub(p.len());
            self.seal(&p);
        }
    }

    /// Payloads waiting for the keys (tests look at what the layers above sent).
    #[cfg(test)]
    pub fn queued_payloads(&self) -> Vec<Vec<u8>> {
        self.queued.iter().cloned().collect()
    }

    /// Send DISCONNECT (best effort: the caller closes the connection after writing it).
    pub fn disconnect(&mut self, reason: u32, text: &str) {
        self.seal(&Msg::Disconnect { reason, description: text.as_bytes() }.encode());
    }

    // ----- timers and rekeying -----

    /// Start a key re-exchange if a limit is reached (called by the client after each batch).
    pub fn maybe_rekey(&mut self, now: Instant) {
        if !matches!(self.kex, KexState::Idle) || !self.keys_in_place {
            return;
        }
        let due = self.volume_limit_reached() || now.saturating_duration_since(self.kex_started_at) >= self.limits.time;
        if due {
            self.send_kexinit();
        }
    }

    /// Start a key re-exchange now if none is running (RFC 4253 section 9). Returns whether
    /// one was started.
    pub fn rekey_now(&mut self) -> bool {
        if !matches!(self.kex, KexState::Idle) || !self.keys_in_place {
            return false;
        }
        self.send_kexinit();
        true
    }

    /// When `maybe_rekey` next needs to run for the time limit.
    pub fn next_timer(&self) -> Option<Instant> {
        // Not while an exchange runs: `maybe_rekey` would do nothing, and a timer in the past
        // would make the driver spin until the exchange ends.
        if self.keys_in_place && matches!(self.kex, KexState::Idle) {
            self.kex_started_at.checked_add(self.limits.time)
        } else {
            None
        }
    }

    // ----- input -----

    /// Append bytes received from the network.
    pub fn receive(&mut self, data: &[u8]) {
        if let Some(dst) = self.input_space(data.len()).get_mut(..data.len()) {
            dst.copy_from_slice(data);
            self.commit_input(data.len());
        }
    }

    /// At least `min` bytes of space to read network bytes into directly, with no copy; say how
    /// many arrived with `commit_input`. Space already read out is reused first, so the buffer
    /// stays near `min` plus one partial packet.
    pub fn input_space(&mut self, min: usize) -> &mut [u8] {
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        } else if self.in_start > 0 && self.inbuf.len().saturating_sub(self.in_end) < min {
            self.inbuf.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        let want = self.in_end.saturating_add(min);
        if self.inbuf.len() < want {
            self.inbuf.resize(want, 0);
        }
        self.inbuf.get_mut(self.in_end..).unwrap_or_default()
    }

    /// Space to read up to `max` network bytes into directly: never empty, shorter than `max`
    /// when the packet that is partly in already ends sooner. Rather than moving that partial
    /// packet to the front of the buffer when the room behind it runs short (`input_space`), its
    /// rest is read into that room, so the buffer then empties and starts over: no copy (issue
    /// 16). For that, the buffer of a connection moving bulk data (reads of `BULK_READ`) holds
    /// two reads, and may grow by one large packet more.
    pub fn read_space(&mut self, max: usize) -> &mut [u8] {
        let max = max.max(1);
        let room = self.inbuf.len().saturating_sub(self.in_end);
        let end = self.in_start.saturating_add(self.in_need);
        let cap = max.saturating_mul(2).saturating_add(READ_TO_END_SLACK);
        if self.in_start > 0 && self.in_start < self.in_end && room < max && self.in_need > self.buffered_input() && end <= self.inbuf.len().max(cap) {
            if self.inbuf.len() < end {
                self.inbuf.resize(end, 0);
            }
            return self.inbuf.get_mut(self.in_end..end).unwrap_or_default();
        }
        if self.in_start == self.in_end && max >= BULK_READ && self.inbuf.len() < max.saturating_mul(2) {
            // Bulk data: room for two full reads before the rest of a packet needs reading on
            // its own (idle sessions, reading less, keep their small buffers).
            self.inbuf.resize(max.saturating_mul(2), 0);
        }
        let space = self.input_space(max);
        let n = space.len().min(max);
        space.get_mut(..n).unwrap_or_default()
    }

    /// `n` bytes were written at the start of the last `input_space`.
    pub fn commit_input(&mut self, n: usize) {
        self.in_end = self.in_end.saturating_add(n).min(self.inbuf.len());
    }

    /// Bytes received and not yet turned into packets.
    pub fn buffered_input(&self) -> usize {
        self.in_end.saturating_sub(self.in_start)
    }

    /// Hand out the input buffer, so that a payload `poll` returned (`Event::Payload`) can be
    /// read while the transport is used to answer it. Give it back with `return_input` before
    /// the next `poll`, `receive` or `input_space`.
    pub fn lend_input(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbuf)
    }

    pub fn return_input(&mut self, buf: Vec<u8>) {
        self.inbuf = buf;
    }

    /// Let go of a large input buffer when nothing is buffered (idle sessions stay small).
    pub fn trim_input(&mut self, keep: usize) {
        if self.in_start == self.in_end && self.inbuf.capacity() > keep {
            self.inbuf = Vec::new();
            self.in_start = 0;
            self.in_end = 0;
        }
    }

    /// Bytes of buffer held for input and output (capacity), for the driver's idle trim.
    pub fn buffer_capacity(&self) -> usize {
        self.inbuf.capacity().saturating_add(self.out.capacity())
    }

    /// Let go of input and output buffers larger than `keep` that hold nothing: a connection
    /// that moved bulk data and then went idle returns to an idle one's size.
    pub fn trim_buffers(&mut self, keep: usize) {
        self.trim_input(keep);
        if self.out_start == self.out.len() && self.out.capacity() > keep {
            self.out = Vec::new();
            self.out_start = 0;
        }
    }

    fn gate_state(&self) -> GateState {
        GateState {
            server: self.role() == Role::Server,
            kex: self.kex.stage(),
            initial: !self.keys_in_place,
            strict: self.strict,
            service: self.service,
        }
    }

    /// Process input until a payload for the layers above or a key-exchange milestone is ready;
    /// `Ok(None)` when more input is needed. An upward payload stays where it was decrypted.
    pub fn poll(&mut self, now: Instant) -> Result<Option<Event>, Error> {
        if let Some(reader) = self.ident.as_mut() {
            let avail = self.inbuf.get(self.in_start..self.in_end).unwrap_or(&[]);
            let (res, used) = reader.feed(avail)?;
            self.in_start += used;
            match res {
                IdentResult::NeedMore => return Ok(None),
                IdentResult::Done { ident, .. } => {
                    self.peer_ident = ident;
                    self.ident = None;
                }
            }
        }
        loop {
            let input = self.inbuf.get_mut(self.in_start..self.in_end).unwrap_or_default();
            let (consumed, range) = match self.opener.open(self.rx_seq, input)? {
                Opened::NeedMore(n) => {
                    self.in_need = n;
                    return Ok(None);
                }
                Opened::Packet { consumed, payload } => (consumed, payload),
            };
            self.in_need = 0;
            let start = self.in_start;
            self.in_start += consumed;
            let seq = self.rx_seq;
            if !self.keys_in_place && seq == u32::MAX {
                return Err(Error::protocol("sequence number wrapped during the initial key exchange"));
            }
            self.rx_seq = self.rx_seq.wrapping_add(1);
            self.since_kex_packets_rx = self.since_kex_packets_rx.saturating_add(1);
            let range = start + range.start..start + range.end;
            self.since_kex_bytes = self.since_kex_bytes.saturating_add(range.len() as u64);
            let n = *self.inbuf.get(range.clone()).and_then(|p| p.first()).ok_or_else(|| {
                if range.is_empty() {
                    Error::protocol("empty packet payload")
                } else {
                    Error::internal("payload range")
                }
            })?;
            crate::logging::packet("recv", seq, &[self.inbuf.get(range.clone()).unwrap_or_default()], self.log_payloads);
            match gate(&self.gate_state(), n) {
                Verdict::Reject(e) => return Err(e),
                Verdict::Ignore => continue,
                Verdict::Unimplemented => {
                    self.seal(&Msg::Unimplemented { seq }.encode());
                    continue;
                }
                Verdict::Accept => {}
            }
            if !handled_here(n) {
                return Ok(Some(Event::Payload { seq, range }));
            }
            let buf = self.lend_input();
            let r = self.handle_transport(n, seq, buf.get(range).unwrap_or_default(), now);
            self.return_input(buf);
            if let Some(ev) = r? {
                return Ok(Some(ev));
            }
        }
    }

    /// Handle a transport-layer message (`handled_here`).
    fn handle_transport(&mut self, n: u8, seq: u32, payload: &[u8], now: Instant) -> Result<Option<Event>, Error> {
        match n {
            msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED | msg::DISCONNECT | msg::EXT_INFO => {
                match Msg::decode(payload)? {
                    Msg::Disconnect { reason, description } => {
                        Err(Error::Disconnected { reason, description: sanitize(description) })
                    }
                    Msg::ExtInfo { extensions } => {
                        for (name, value) in extensions {
                            if name == "server-sig-algs" {
                                let list = String::from_utf8_lossy(value);
                                self.server_sig_algs =
                                    Some(list.split(',').take(128).map(|s| s.chars().take(64).collect()).collect());
                            }
                        }
                        Ok(None)
                    }
                    _ => Ok(None),
                }
            }
            msg::KEXINIT => self.on_kexinit(seq, payload).map(|()| None),
            msg::KEX_REPLY => self.on_kex_reply(payload).map(|()| None),
            msg::KEX_INIT => self.on_kex_init(payload).map(|()| None),
            msg::NEWKEYS => self.on_newkeys(payload, now).map(Some),
            _ => Err(Error::internal(format!("message {n} is not a transport message"))),
        }
    }

}

/// The client core moves between threads with its worker.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Transport>();
};

/// The messages `poll` acts on itself; every other accepted message goes upward.
fn handled_here(n: u8) -> bool {
    matches!(
        n,
        msg::DISCONNECT
            | msg::IGNORE
            | msg::UNIMPLEMENTED
            | msg::DEBUG
            | msg::EXT_INFO
            | msg::KEXINIT
            | msg::NEWKEYS
            | msg::KEX_INIT
            | msg::KEX_REPLY
    )
}

#[cfg(test)]
mod tests;
