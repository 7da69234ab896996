//! The SSH binary packet protocol (RFC 4253 section 6), one direction at a time: framing,
//! random padding (section 6 "random padding", at least 4 bytes, minimum packet 16 bytes),
//! encryption (section 6.3) and integrity (section 6.4), with the sequence number supplied by
//! the caller. `Sealer` turns payloads into packets, `Opener` turns bytes from the network back
//! into payloads, decrypting in place.
//!
//! Modes (key derivation is RFC 4253 section 7.2 and lives elsewhere; this module takes the
//! derived keys as `DirectionKeys`):
//!
//! * "none": before the first NEWKEYS; block size 8, no MAC.
//! * chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305): encrypted length,
//!   16-byte Poly1305 tag; block size 8.
//! * aes128-gcm@openssh.com, aes256-gcm@openssh.com (RFC 5647 as OpenSSH does it, PROTOCOL
//!   section 1.6): length in clear as AAD, 16-byte tag, block size 16. The sequence number is
//!   not an input: packet order is enforced by the invocation counter in the nonce.
//! * aes128-ctr, aes192-ctr, aes256-ctr (RFC 4344 section 4) with hmac-sha2-256, hmac-sha2-512
//!   (RFC 6668) or hmac-sha1 (RFC 4253 section 6.4; feature "legacy"), either
//!   MAC-then-encrypt as in RFC 4253 (MAC over seq || plaintext packet, all of it encrypted)
//!   or encrypt-then-MAC, the -etm@openssh.com variants (PROTOCOL section 1.7: length in clear,
//!   MAC over seq || length || ciphertext, checked before anything is decrypted).
//!
//! Alignment: the encrypted part is a multiple of the block size. For AEAD and EtM modes the
//! length field is not part of it (as OpenSSH computes it), for "none" and MtE modes it is.
//!
//! What `Opener` accepts, checked before it waits for or touches the body: `packet_length` at
//! most `MAX_PACKET_LEN` (256 KiB, so 35000-byte packets pass) and at least the smallest packet
//! the mode can carry (12 for "none" and MtE, i.e. 16 bytes with the length field; the block
//! size for AEAD/EtM — note OpenSSH itself sends 8-byte chacha20-poly1305 packets for 1-byte
//! payloads such as NEWKEYS, so 8 must pass there); alignment as above. After the integrity
//! check: `padding_length` at least 4 and less than `packet_length`. A packet whose padding
//! fills it (padding_length = packet_length - 1) carries an empty payload; rejecting that (it
//! has no message number) is the message layer's job. In MtE mode the padding length is only
//! looked at after the MAC has been verified, so a corrupted first block cannot be probed.
//! The length field of MtE and chacha20-poly1305 packets is necessarily used before it is
//! authenticated; EtM and AEAD modes exist for that reason.
//!
//! Backends: AES-GCM and chacha20-poly1305 are computed by RustCrypto, or with feature "aws-lc"
//! by AWS-LC through aws-lc-rs (`Backend`); the framing, padding, nonce and counter logic here
//! is the same for both. `Sealer::new`/`Opener::new` take `Backend::DEFAULT`, the build's
//! choice; `with_backend` picks one (tests run every case on both and cross them). AES-CTR and
//! HMAC always come from RustCrypto.
//!
//! After `Opener::open` has returned an error once, the opener refuses all further input: the
//! connection must be torn down (the cipher state is no longer in step with the peer).

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::cast_possible_truncation)
)]

#[cfg(feature = "aws-lc")]
mod awslc;
mod engine;
#[cfg(test)]
#[macro_use]
mod test_backends;
#[cfg(test)]
mod kat_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::algs::{Cipher, Mac};
use crate::error::Error;
use crate::random::Random;

use engine::{AesCtr, ChaChaPoly, Gcm, MacKey, AEAD_TAG_LEN, MAX_MAC_LEN};
#[cfg(feature = "encrypted-keys")]
pub(crate) use engine::{open_key_section, KeySection};

/// Largest inbound `packet_length` accepted (OpenSSH's limit; RFC 4253 section 6.1 requires at
/// least 35000 bytes in total).
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Smallest padding (RFC 4253 section 6).
pub const MIN_PADDING: usize = 4;
/// Smallest packet we send, length field included (RFC 4253 section 6).
const MIN_SEND_PACKET: usize = 16;
/// Smallest `packet_length` accepted where the length field counts towards alignment.
const MIN_PACKET_LEN_INCLUDED: usize = MIN_SEND_PACKET - 4;
/// AES-CTR block size: the MtE opener decrypts this much to learn the packet length.
const AES_BLOCK: usize = 16;

/// Which library computes AES-GCM and chacha20-poly1305@openssh.com.
/// Which variants exist depends on the build's features, hence `non_exhaustive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// The aes-gcm, chacha20 and poly1305 crates (the default, and the reference in tests).
    RustCrypto,
    /// AWS-LC through aws-lc-rs (feature "aws-lc").
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl Backend {
    /// The build's choice: `AwsLc` with feature "aws-lc", else `RustCrypto`.
    #[cfg(feature = "aws-lc")]
    pub const DEFAULT: Backend = Backend::AwsLc;
    /// The build's choice: `AwsLc` with feature "aws-lc", else `RustCrypto`.
    #[cfg(not(feature = "aws-lc"))]
    pub const DEFAULT: Backend = Backend::RustCrypto;

    /// Every backend compiled in, the default's reference (RustCrypto) first.
    pub const ALL: &'static [Backend] = &[
        Backend::RustCrypto,
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc,
    ];
}

/// Keys for one direction, from the key derivation (RFC 4253 section 7.2). Zeroized on drop.
/// `mac` and `mac_key` are ignored for AEAD ciphers; `iv` is empty for chacha20-poly1305.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DirectionKeys {
    #[zeroize(skip)]
    pub cipher: Cipher,
    #[zeroize(skip)]
    pub mac: Option<Mac>,
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub mac_key: Vec<u8>,
}

impl fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectionKeys").field("cipher", &self.cipher).field("mac", &self.mac).finish_non_exhaustive()
    }
}

/// The keyed state of one direction.
enum Mode {
    Plain,
    ChaCha(ChaChaPoly),
    Gcm(Gcm),
    Ctr { aes: AesCtr, mac: Box<MacKey>, etm: bool },
}

impl Mode {
    fn new(keys: &DirectionKeys, backend: Backend) -> Result<Mode, Error> {
        let c = keys.cipher;
        if keys.key.len() != c.key_len() {
            return Err(Error::internal(format!("{c}: key is {} bytes, needs {}", keys.key.len(), c.key_len())));
        }
        if keys.iv.len() != c.iv_len() {
            return Err(Error::internal(format!("{c}: IV is {} bytes, needs {}", keys.iv.len(), c.iv_len())));
        }
        let bad_key = || Error::internal(format!("{c}: unusable key"));
        Ok(match c {
            Cipher::Chacha20Poly1305 => Mode::ChaCha(ChaChaPoly::new(backend, &keys.key).ok_or_else(bad_key)?),
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => Mode::Gcm(Gcm::new(backend, &keys.key, &keys.iv).ok_or_else(bad_key)?),
            Cipher::Aes128Ctr | Cipher::Aes192Ctr | Cipher::Aes256Ctr => {
                let m = keys.mac.ok_or_else(|| Error::internal(format!("{c} needs a MAC")))?;
                if keys.mac_key.len() != m.key_len() {
                    return Err(Error::internal(format!(
                        "{m}: key is {} bytes, needs {}",
                        keys.mac_key.len(),
                        m.key_len()
                    )));
                }
                Mode::Ctr {
                    aes: AesCtr::new(&keys.key, &keys.iv).ok_or_else(bad_key)?,
                    mac: Box::new(
                        MacKey::new(m, &keys.mac_key).ok_or_else(|| Error::internal(format!("{m}: unusable key")))?,
                    ),
                    etm: m.is_etm(),
                }
            }
        })
    }

    fn block_size(&self) -> usize {
        match self {
            Mode::Plain | Mode::ChaCha(_) => 8,
            Mode::Gcm(_) | Mode::Ctr { .. } => AES_BLOCK,
        }
    }

    /// Is the length field left out of the block alignment (AEAD and EtM modes)?
    fn length_excluded(&self) -> bool {
        match self {
            Mode::Plain => false,
            Mode::ChaCha(_) | Mode::Gcm(_) => true,
            Mode::Ctr { etm, .. } => *etm,
        }
    }

    /// Bytes of MAC or tag after the packet.
    fn tag_len(&self) -> usize {
        match self {
            Mode::Plain => 0,
            Mode::ChaCha(_) | Mode::Gcm(_) => AEAD_TAG_LEN,
            Mode::Ctr { mac, .. } => mac.len(),
        }
    }

    /// Padding for a payload of `payload_len` bytes: at least 4, aligning the encrypted part,
    /// and making the packet at least 16 bytes long.
    fn padding_for(&self, payload_len: usize) -> usize {
        let bs = self.block_size();
        let header = if self.length_excluded() { 1 } else { 5 };
        let unpadded = payload_len.saturating_add(header);
        let mut pad = bs.saturating_sub(unpadded.checked_rem(bs).unwrap_or(0));
        if pad < MIN_PADDING {
            pad = pad.saturating_add(bs);
        }
        while payload_len.saturating_add(5).saturating_add(pad) < MIN_SEND_PACKET {
            pad = pad.saturating_add(bs);
        }
        pad
    }

    /// Validate a received `packet_length` field.
    fn check_length(&self, raw: u32) -> Result<usize, Error> {
        let bs = self.block_size();
        let len = usize::try_from(raw).unwrap_or(usize::MAX);
        let min = if self.length_excluded() { bs } else { MIN_PACKET_LEN_INCLUDED };
        if len > MAX_PACKET_LEN || len < min {
            return Err(Error::protocol(format!("bad packet length {raw}")));
        }
        let aligned = if self.length_excluded() { len } else { len.saturating_add(4) };
        if aligned.checked_rem(bs) != Some(0) {
            return Err(Error::protocol(format!("packet length {raw} not a multiple of the cipher block size {bs}")));
        }
        Ok(len)
    }
}

/// Check `padding_length` against `packet_length`; returns the payload length.
fn check_padding(padding: u8, packet_len: usize) -> Result<usize, Error> {
    let p = usize::from(padding);
    match packet_len.checked_sub(1).and_then(|n| n.checked_sub(p)) {
        Some(payload) if p >= MIN_PADDING => Ok(payload),
        _ => Err(Error::protocol(format!("bad padding length {p} for packet length {packet_len}"))),
    }
}

fn names(keys: &DirectionKeys) -> (&'static str, Option<&'static str>) {
    let mac = if keys.cipher.is_aead() { None } else { keys.mac.map(Mac::name) };
    (keys.cipher.name(), mac)
}

/// Outbound half.
pub struct Sealer {
    mode: Mode,
    names: (&'static str, Option<&'static str>),
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("cipher", &self.names.0).field("mac", &self.names.1).finish()
    }
}

impl Sealer {
    /// The "none" cipher with no MAC, used until the first NEWKEYS.
    pub fn plaintext() -> Sealer {
        Sealer { mode: Mode::Plain, names: ("none", None) }
    }

    /// Wrong key, IV or MAC key lengths, or a non-AEAD cipher without a MAC, are a bug in
    /// the caller: `Error::Internal`.
    pub fn new(keys: &DirectionKeys) -> Result<Sealer, Error> {
        Sealer::with_backend(keys, Backend::DEFAULT)
    }

    /// `new` with the AEAD computed by `backend` (for tests and benchmarks).
    pub fn with_backend(keys: &DirectionKeys, backend: Backend) -> Result<Sealer, Error> {
        Ok(Sealer { mode: Mode::new(keys, backend)?, names: names(keys) })
    }

    /// Is this the "none" cipher?
    pub fn is_plaintext(&self) -> bool {
        matches!(self.mode, Mode::Plain)
    }

    /// Append one complete binary packet carrying `payload` to `out`, encrypted and MACed in
    /// place in `out` (no other allocation). Random padding from `rng`, at least 4 bytes, the
    /// encrypted part aligned to the block size (8 for none/chacha, 16 for AES; for AEAD/EtM
    /// the length field is excluded from the alignment as OpenSSH does), the whole packet at
    /// least 16 bytes. `payload` must not exceed `MAX_PACKET_LEN` (callers keep to 35000).
    pub fn seal(&mut self, seq: u32, payload: &[u8], rng: &mut dyn Random, out: &mut Vec<u8>) {
        let start = self.begin(out, payload.len());
        out.extend_from_slice(payload);
        self.finish(seq, rng, out, start);
    }

    /// Build a packet in place, for payloads assembled piece by piece without a copy: `begin`
    /// reserves the header (room for `hint` payload bytes), the caller appends the payload to
    /// `out`, and `finish` pads, encrypts and MACs it. `seal` is these three steps.
    pub fn begin(&self, out: &mut Vec<u8>, hint: usize) -> usize {
        let start = out.len();
        // Header, padding (at most two blocks plus the minimum packet) and tag fit in 96 bytes.
        out.reserve(hint.saturating_add(96));
        out.extend_from_slice(&[0u8; 5]);
        start
    }

    /// Complete the packet `begin` started at `start`; the payload is `out[start + 5..]`.
    pub fn finish(&mut self, seq: u32, rng: &mut dyn Random, out: &mut Vec<u8>, start: usize) {
        let payload_len = out.len().saturating_sub(start.saturating_add(5));
        let pad = self.mode.padding_for(payload_len);
        let packet_len = payload_len.saturating_add(pad).saturating_add(1);
        let [a, b, c, d] = u32::try_from(packet_len).unwrap_or(u32::MAX).to_be_bytes();
        if let Some(h) = out.get_mut(start..start.saturating_add(5)) {
            h.copy_from_slice(&[a, b, c, d, u8::try_from(pad).unwrap_or(u8::MAX)]);
        }
        let pad_at = out.len();
        out.resize(pad_at.saturating_add(pad), 0);
        if let Some(p) = out.get_mut(pad_at..) {
            rng.fill(p);
        }
        self.protect(seq, out, start);
    }

    /// Encrypt and MAC the plaintext packet `out[start..]` (length field first) in place and
    /// append the tag. Does not look at what the packet says.
    fn protect(&mut self, seq: u32, out: &mut Vec<u8>, start: usize) {
        let mut tag = [0u8; MAX_MAC_LEN];
        let Some(pkt) = out.get_mut(start..) else { return };
        let n = match &mut self.mode {
            Mode::Plain => 0,
            Mode::ChaCha(c) => copy_tag(&c.seal(seq, pkt), &mut tag),
            Mode::Gcm(g) => copy_tag(&g.seal(pkt), &mut tag),
            Mode::Ctr { aes, mac, etm: false } => {
                let n = mac.compute(seq, pkt, &mut tag);
                aes.apply(pkt);
                n
            }
            Mode::Ctr { aes, mac, etm: true } => {
                if let Some(body) = pkt.get_mut(4..) {
                    aes.apply(body);
                }
                mac.compute(seq, pkt, &mut tag)
            }
        };
        out.extend_from_slice(tag.get(..n).unwrap_or_default());
    }

    /// Test-only: encrypt and MAC an arbitrary plaintext packet (length field included, any
    /// values) as this mode would, so tests can make packets that lie.
    #[cfg(test)]
    fn seal_raw(&mut self, seq: u32, raw: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(raw);
        self.protect(seq, out, start);
    }

    /// Bytes of overhead `seal` adds to a payload of any length at most (length field,
    /// padding length, padding, MAC or tag), for callers sizing packets.
    pub fn max_overhead(&self) -> usize {
        let scan = MIN_SEND_PACKET.saturating_add(self.mode.block_size().saturating_mul(2));
        let worst_pad = (0..=scan).map(|n| self.mode.padding_for(n)).max().unwrap_or(0);
        worst_pad.saturating_add(5).saturating_add(self.mode.tag_len())
    }
}

fn copy_tag(t: &[u8; AEAD_TAG_LEN], out: &mut [u8; MAX_MAC_LEN]) -> usize {
    for (o, i) in out.iter_mut().zip(t.iter()) {
        *o = *i;
    }
    AEAD_TAG_LEN
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Result of `Opener::open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Need at least this many bytes in `input` (from the start of the packet) before trying
    /// again.
    NeedMore(usize),
    /// One packet: `consumed` bytes of input make it up; the payload is `input[payload]`
    /// (decrypted in place).
    Packet { consumed: usize, payload: Range<usize> },
}

/// Inbound half.
pub struct Opener {
    mode: Mode,
    names: (&'static str, Option<&'static str>),
    /// MtE only: the first block of the current packet has been decrypted in place and said
    /// this `packet_length`.
    first_block: Option<u32>,
    /// An error was returned; the stream is no longer usable.
    failed: bool,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("cipher", &self.names.0)
            .field("mac", &self.names.1)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Opener {
    /// The "none" cipher with no MAC, used until the first NEWKEYS.
    pub fn plaintext() -> Opener {
        Opener { mode: Mode::Plain, names: ("none", None), first_block: None, failed: false }
    }

    /// Wrong key, IV or MAC key lengths, or a non-AEAD cipher without a MAC: `Error::Internal`.
    pub fn new(keys: &DirectionKeys) -> Result<Opener, Error> {
        Opener::with_backend(keys, Backend::DEFAULT)
    }

    /// `new` with the AEAD computed by `backend` (for tests and benchmarks).
    pub fn with_backend(keys: &DirectionKeys, backend: Backend) -> Result<Opener, Error> {
        Ok(Opener { mode: Mode::new(keys, backend)?, names: names(keys), first_block: None, failed: false })
    }

    /// Is this the "none" cipher?
    pub fn is_plaintext(&self) -> bool {
        matches!(self.mode, Mode::Plain)
    }

    /// Try to decode the packet at the start of `input`. May decrypt in place. When it returns
    /// `NeedMore`, call again later with the same packet start and more bytes appended (the
    /// bytes already seen passed again unchanged, as the opener left them: for aes-ctr without
    /// EtM the first block is decrypted in place once and the opener remembers that). Bytes
    /// after the packet are not touched. Length, alignment, padding and MAC/tag are checked as
    /// the module documentation says; a huge length fails at once, without allocating.
    /// Integrity failures are `Error::Crypto`, framing errors `Error::Protocol`.
    pub fn open(&mut self, seq: u32, input: &mut [u8]) -> Result<Opened, Error> {
        if self.failed {
            return Err(Error::internal("packet decoder used after an earlier error"));
        }
        let r = self.open_inner(seq, input);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn open_inner(&mut self, seq: u32, input: &mut [u8]) -> Result<Opened, Error> {
        // 1. The packet length, decrypting it if it is encrypted.
        let raw_len = match &mut self.mode {
            Mode::Ctr { aes, etm: false, .. } => match self.first_block {
                Some(l) => l,
                None => {
                    let Some(first) = input.get_mut(..AES_BLOCK) else {
                        return Ok(Opened::NeedMore(AES_BLOCK));
                    };
                    aes.apply(first);
                    let l = be32(first).unwrap_or(u32::MAX);
                    self.first_block = Some(l);
                    l
                }
            },
            Mode::ChaCha(c) => {
                let Some(mut l) = input.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                    return Ok(Opened::NeedMore(4));
                };
                c.crypt_length(seq, &mut l);
                u32::from_be_bytes(l)
            }
            Mode::Plain | Mode::Gcm(_) | Mode::Ctr { etm: true, .. } => match be32(input) {
                Some(l) => l,
                None => return Ok(Opened::NeedMore(4)),
            },
        };
        let packet_len = self.mode.check_length(raw_len)?;
        if let (Mode::Plain, Some(&p)) = (&self.mode, input.get(4)) {
            check_padding(p, packet_len)?;
        }

        // 2. Wait for the whole packet and its tag.
        let tag_len = self.mode.tag_len();
        let body_end = packet_len.saturating_add(4);
        let total = body_end.saturating_add(tag_len);
        if input.len() < total {
            return Ok(Opened::NeedMore(total));
        }
        let Some((pkt, rest)) = input.get_mut(..total).map(|b| b.split_at_mut(body_end)) else {
            return Ok(Opened::NeedMore(total));
        };
        let tag: &[u8] = rest;

        // 3. Integrity and decryption.
        match &mut self.mode {
            Mode::Plain => {}
            Mode::ChaCha(c) => c.open(seq, pkt, tag)?,
            Mode::Gcm(g) => g.open(pkt, tag)?,
            Mode::Ctr { aes, mac, etm: true } => {
                mac.verify(seq, pkt, tag)?;
                if let Some(body) = pkt.get_mut(4..) {
                    aes.apply(body);
                }
            }
            Mode::Ctr { aes, mac, etm: false } => {
                if let Some(body) = pkt.get_mut(AES_BLOCK..) {
                    aes.apply(body);
                }
                self.first_block = None;
                mac.verify(seq, pkt, tag)?;
            }
        }

        // 4. Padding.
        let payload_len = check_padding(pkt.get(4).copied().unwrap_or(0), packet_len)?;
        Ok(Opened::Packet { consumed: total, payload: 5..payload_len.saturating_add(5) })
    }
}
