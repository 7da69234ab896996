//! Fuzz entry points: one function per cargo-fuzz target in `fuzz/fuzz_targets/`, replayed over
//! the committed corpora by `tests/fuzz_corpus.rs`. Not part of the API.
//!
//! Every function takes arbitrary bytes. None may panic on any input, except where it asserts
//! an invariant of the code under test (written next to each `assert!`): such a panic is a
//! finding, exactly like a panic inside the library. The functions also check bounds the
//! library documents (no waiting for bytes already there, bounded buffering, errors stick).
//!
//! Targets (HOSTILE.md "Fuzz targets"):
//! - [`ident`]: the identification exchange, whole and re-split;
//! - [`packet`]: `Opener` for every cipher mode with fixed keys, whole and byte by byte, plus
//!   seal/open round trips and one-bit flips of sealed packets;
//! - [`message`]: `Msg::decode`, with decode(encode(m)) == m;
//! - [`private_key`] / [`public_key`]: the key parsers; parsed keys must sign and verify;
//! - [`signature`]: `PublicKey::verify` against fixed keys (no forgeries of deterministic schemes);
//! - [`client`]: the sans-IO client fed one byte string in data-chosen chunks, optionally after a
//!   real server identification and KEXINIT;
//! - [`client_session`]: a structure-aware variant: the harness plays the server through a real
//!   key exchange (fixed host keys), then seals the fuzz data's payloads with the session keys,
//!   so authentication, channels and rekeying are reached;
//! - [`server()`]: the sans-IO server fed raw bytes after a client identification, or payloads
//!   sealed after a real key exchange by the scripted client [`EmuClient`] (module `server`);
//! - [`kex()`]: key exchange values of every method, as the server's reply to our client and as
//!   a client's value to the server side (module `kex`).

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use crate::connection::ChannelOps;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::algs::{Cipher, Kex, Mac, Preferences, SigAlg};
use crate::auth::Credential;
use crate::channel::ChannelEvent;
use crate::cipher::{DirectionKeys, Opened, Opener, Sealer, MAX_PACKET_LEN};
use crate::client::{Client, ClientConfig, Event, Phase};
use crate::kex::{derive_key, exchange_hash, server_respond, HashInput};
use crate::keys::{PrivateKey, PublicKey};
use crate::msg::{KexInit, Msg};
use crate::random::Random;
use crate::transport::ident::{IdentReader, IdentResult, CLIENT_IDENT, MAX_LINE};
use crate::transport::HostKeyCheck;

mod kex;
#[cfg(feature = "server")]
mod server;
mod session;
pub use kex::{kex, kex_methods, KEX_CLIENT_SEED};
#[cfg(feature = "server")]
pub use server::*;
pub use session::*;

/// A deterministic generator: the ChaCha20 keystream under a key made from `seed`.
pub struct FuzzRng(chacha20::ChaCha20);

impl FuzzRng {
    pub fn new(seed: u64) -> FuzzRng {
        use chacha20::cipher::KeyIvInit;
        let mut key = [0x5au8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        FuzzRng(chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }
}

impl Random for FuzzRng {
    fn fill(&mut self, buf: &mut [u8]) {
        use chacha20::cipher::StreamCipher;
        buf.fill(0);
        // 256 GiB of keystream; a fuzz run never gets near it (zeros after that).
        let _ = self.0.try_apply_keystream(buf);
    }
}

// ---------------------------------------------------------------------------------------------
// ident

#[derive(Debug, PartialEq, Eq)]
enum IdentOutcome {
    /// Identification line and the offset just past its LF.
    Done(Vec<u8>, usize),
    NeedMore,
    Failed,
}

/// Feed `data` to an `IdentReader` the way the transport does: append a chunk, feed everything
/// not yet consumed, drop what was consumed.
fn ident_run(data: &[u8], sizes: &[usize]) -> IdentOutcome {
    let mut r = IdentReader::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut base = 0usize; // offset in `data` of buf[0]
    let mut pos = 0usize;
    let mut i = 0usize;
    while pos < data.len() {
        let n = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(usize::MAX).max(1);
        i += 1;
        let end = pos.saturating_add(n).min(data.len());
        buf.extend_from_slice(&data[pos..end]);
        pos = end;
        match r.feed(&buf) {
            Err(_) => return IdentOutcome::Failed,
            Ok((IdentResult::NeedMore, used)) => {
                assert!(used <= buf.len(), "ident consumed {used} of {} bytes", buf.len());
                buf.drain(..used);
                base += used;
                // Documented: a partial line longer than MAX_LINE (not counting the CR of a CR LF
                // still waiting for its LF) is an error, so what is kept between feeds is bounded.
                assert!(buf.len() <= MAX_LINE + 1, "ident keeps a {}-byte partial line", buf.len());
            }
            Ok((IdentResult::Done { ident, consumed }, used)) => {
                assert_eq!(consumed, used);
                assert!(used <= buf.len());
                let line = &buf[..used];
                assert!(ident.starts_with(b"SSH-"));
                assert!(!ident.contains(&b'\n'));
                assert!(
                    line.ends_with(&[ident.as_slice(), b"\n"].concat())
                        || line.ends_with(&[ident.as_slice(), b"\r\n"].concat()),
                    "identification is not the line that ends the consumed input"
                );
                return IdentOutcome::Done(ident, base + used);
            }
        }
    }
    IdentOutcome::NeedMore
}

/// The identification parser: whole input at once, and the same bytes in data-chosen chunks
/// (1..=64 bytes). The outcome must not depend on how TCP split the bytes.
pub fn ident(data: &[u8]) {
    let whole = ident_run(data, &[]);
    let sizes: Vec<usize> = data.iter().take(8).map(|&b| usize::from(b % 64) + 1).collect();
    let split = ident_run(data, &sizes);
    assert_eq!(whole, split, "identification outcome depends on how the input is split");
}

// ---------------------------------------------------------------------------------------------
// packet

/// Cipher modes of the `packet` target, selected by the first byte (mod 7).
pub const PACKET_MODES: [&str; 7] = [
    "none",
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr+hmac-sha2-256",
    "aes256-ctr+hmac-sha2-512-etm@openssh.com",
    "aes192-ctr+hmac-sha1",
];

fn fixed_bytes(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag)).collect()
}

fn direction_keys(cipher: Cipher, mac: Option<Mac>, tag: u8) -> DirectionKeys {
    DirectionKeys {
        cipher,
        mac,
        key: fixed_bytes(cipher.key_len(), tag),
        iv: fixed_bytes(cipher.iv_len(), tag ^ 0x40),
        mac_key: mac.map(|m| fixed_bytes(m.key_len(), tag ^ 0x80)).unwrap_or_default(),
    }
}

/// The fixed keys of packet mode `mode` (`None`: the "none" cipher).
pub fn packet_keys(mode: usize) -> Option<DirectionKeys> {
    #[cfg(feature = "legacy")]
    let legacy_mac = Mac::HmacSha1;
    #[cfg(not(feature = "legacy"))]
    let legacy_mac = Mac::HmacSha512;
    let (cipher, mac) = match mode % PACKET_MODES.len() {
        0 => return None,
        1 => (Cipher::Chacha20Poly1305, None),
        2 => (Cipher::Aes128Gcm, None),
        3 => (Cipher::Aes256Gcm, None),
        4 => (Cipher::Aes128Ctr, Some(Mac::HmacSha256)),
        5 => (Cipher::Aes256Ctr, Some(Mac::HmacSha512Etm)),
        _ => (Cipher::Aes192Ctr, Some(legacy_mac)),
    };
    Some(direction_keys(cipher, mac, mode as u8))
}

pub fn packet_opener(mode: usize) -> Opener {
    match packet_keys(mode) {
        None => Opener::plaintext(),
        Some(k) => Opener::new(&k).expect("fixed keys have the right lengths"),
    }
}

pub fn packet_sealer(mode: usize) -> Sealer {
    match packet_keys(mode) {
        None => Sealer::plaintext(),
        Some(k) => Sealer::new(&k).expect("fixed keys have the right lengths"),
    }
}

/// Largest `NeedMore` an opener may ask for: a maximal packet and the longest tag.
const MAX_NEED: usize = MAX_PACKET_LEN + 4 + 64;

#[derive(Debug, PartialEq, Eq)]
enum PacketEvent {
    Payload(Vec<u8>),
    Failed,
}

/// One `open` call on `buf[*pos..]`, checking the documented contract. Returns false when the
/// opener needs more bytes or failed.
fn open_one(o: &mut Opener, seq: &mut u32, buf: &mut [u8], pos: &mut usize, out: &mut Vec<PacketEvent>) -> bool {
    let input = &mut buf[*pos..];
    let avail = input.len();
    match o.open(*seq, input) {
        Ok(Opened::NeedMore(n)) => {
            // A caller waits for `n` bytes: asking for what is already there would hang it.
            assert!(n > avail, "NeedMore({n}) with {avail} bytes available");
            assert!(n <= MAX_NEED, "NeedMore({n}) beyond the largest packet");
            false
        }
        Ok(Opened::Packet { consumed, payload }) => {
            assert!(consumed <= avail && consumed > 0, "consumed {consumed} of {avail}");
            assert!(payload.start <= payload.end && payload.end <= consumed, "payload {payload:?} outside packet");
            out.push(PacketEvent::Payload(input[payload].to_vec()));
            *pos += consumed;
            *seq = seq.wrapping_add(1);
            true
        }
        Err(_) => {
            out.push(PacketEvent::Failed);
            // Documented: after an error the opener refuses everything.
            let mut again = input.to_vec();
            assert!(o.open(*seq, &mut again).is_err(), "opener accepted input after an error");
            false
        }
    }
}

/// Open a stream of packets, the input arriving in steps of `step` bytes (0: all at once).
fn open_stream(mode: usize, seq0: u32, data: &[u8], step: usize) -> Vec<PacketEvent> {
    let mut o = packet_opener(mode);
    let mut seq = seq0;
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(data.len());
    let mut pos = 0usize;
    let mut fed = 0usize;
    while fed < data.len() {
        let n = if step == 0 { data.len() } else { step };
        let end = fed.saturating_add(n).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        while open_one(&mut o, &mut seq, &mut buf, &mut pos, &mut out) {}
        if out.last() == Some(&PacketEvent::Failed) {
            break;
        }
    }
    out
}

/// The packet decoder of one cipher mode (first byte mod 7; bit 7: start at sequence number
/// 2^32 - 2, so the wrap is crossed). The rest is fed whole and byte by byte: the packets
/// and errors must be the same. Then the rest is split into two payloads, sealed and opened
/// again (round trip), and a one-bit flip of the sealed bytes must never open.
pub fn packet(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mode = usize::from(sel & 0x7f) % PACKET_MODES.len();
    let seq0 = if sel & 0x80 != 0 { u32::MAX - 1 } else { 0 };

    let whole = open_stream(mode, seq0, rest, 0);
    let grown = open_stream(mode, seq0, rest, 1);
    assert_eq!(whole, grown, "{}: result depends on how the bytes arrive", PACKET_MODES[mode]);

    // Round trip through our own Sealer.
    let rest = &rest[..rest.len().min(4096)];
    let (a, b) = rest.split_at(rest.len() / 2);
    let mut sealer = packet_sealer(mode);
    let mut rng = FuzzRng::new(u64::from(sel));
    let mut wire = Vec::new();
    sealer.seal(seq0, a, &mut rng, &mut wire);
    let first_len = wire.len();
    sealer.seal(seq0.wrapping_add(1), b, &mut rng, &mut wire);
    let opened = open_stream(mode, seq0, &wire, 0);
    assert_eq!(
        opened,
        vec![PacketEvent::Payload(a.to_vec()), PacketEvent::Payload(b.to_vec())],
        "{}: seal/open round trip",
        PACKET_MODES[mode]
    );

    // Integrity: a flipped bit anywhere in the first sealed packet must not open.
    if mode != 0 && first_len > 0 {
        let at = usize::from(rest.first().copied().unwrap_or(0)) * 7 % first_len;
        let bit = rest.get(1).copied().unwrap_or(0) % 8;
        let mut bad = wire[..first_len].to_vec();
        bad[at] ^= 1 << bit;
        let mut o = packet_opener(mode);
        let r = o.open(seq0, &mut bad);
        assert!(
            !matches!(r, Ok(Opened::Packet { .. })),
            "{}: packet with bit {bit} of byte {at} flipped was accepted",
            PACKET_MODES[mode]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// message

/// `Msg::decode`; whatever decodes must re-encode to something that decodes to the same value,
/// and encoding must then be stable.
pub fn message(data: &[u8]) {
    let _ = Msg::number_of(data);
    let Ok(m) = Msg::decode(data) else { return };
    let enc = m.encode();
    let m2 = match Msg::decode(&enc) {
        Ok(m2) => m2,
        Err(e) => panic!("{m:?} encodes to {enc:?}, which does not decode: {e}"),
    };
    assert_eq!(m, m2, "decode(encode(m)) != m");
    assert_eq!(m2.encode(), enc, "encoding is not stable");
}

// ---------------------------------------------------------------------------------------------
// keys

/// Data every key signature check signs.
pub const SIG_MSG: &[u8] = b"sshbridge fuzz: exchange hash stand-in";

/// A key that parsed must be usable: its public half round-trips through the blob and line
/// forms, and it signs with every algorithm it claims, verifiably.
fn check_private_key(key: &PrivateKey) {
    let public = key.public_key();
    match PublicKey::from_blob(public.blob()) {
        Ok(p) => assert_eq!(p, public),
        Err(e) => panic!("public half of {key:?} does not re-parse: {e}"),
    }
    match PublicKey::from_openssh_line(&public.to_openssh_line()) {
        Ok(p) => assert_eq!(p, public),
        Err(e) => panic!("public line of {key:?} does not re-parse: {e}"),
    }
    let mut rng = FuzzRng::new(3);
    for alg in key.sig_algs() {
        let sig = match key.sign(alg, SIG_MSG, &mut rng) {
            Ok(s) => s,
            Err(e) => panic!("{key:?} was accepted but cannot make a {alg} signature: {e}"),
        };
        if let Err(e) = public.verify(alg, SIG_MSG, &sig) {
            panic!("{key:?}: its own {alg} signature does not verify: {e}");
        }
        assert!(public.verify(alg, b"another message", &sig).is_err(), "{alg} signature verifies other data");
    }
}

/// bcrypt-pbkdf rounds above this are not tried with a passphrase, for speed only: the library
/// refuses more than `keys::openssh::MAX_BCRYPT_ROUNDS` (1024) itself since the fuzzer found
/// the unbounded case (fuzz/regressions/private_key/bcrypt-rounds-*), but 1024 rounds still
/// cost about a second per input. OpenSSH's default is 16.
pub const FUZZ_MAX_BCRYPT_ROUNDS: u32 = 16;

/// The bcrypt-pbkdf round count of an encrypted OpenSSH key, if `data` is one.
pub fn openssh_bcrypt_rounds(data: &[u8]) -> Option<u32> {
    use base64ct::{Base64, Encoding};
    let text = std::str::from_utf8(data).ok()?;
    let body = text.split_once("-----BEGIN OPENSSH PRIVATE KEY-----")?.1;
    let body = body.split_once("-----END")?.0;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bin = Base64::decode_vec(&b64).ok()?;
    let mut r = crate::wire::Reader::new(bin.get(15..)?);
    let _cipher = r.string().ok()?;
    if r.string().ok()? != b"bcrypt" {
        return None;
    }
    let mut opts = crate::wire::Reader::new(r.string().ok()?);
    let _salt = opts.string().ok()?;
    opts.u32().ok()
}

/// `PrivateKey::from_bytes` without and with a passphrase ("test-pass", the fixtures' one).
pub fn private_key(data: &[u8]) {
    let slow_kdf = openssh_bcrypt_rounds(data).is_some_and(|r| r > FUZZ_MAX_BCRYPT_ROUNDS);
    for pass in [None, Some(&b"test-pass"[..])] {
        if pass.is_some() && slow_kdf {
            return;
        }
        if let Ok(key) = PrivateKey::from_bytes(data, pass) {
            check_private_key(&key);
            // An unencrypted key ignores the passphrase: nothing new to learn.
            return;
        }
    }
}

fn check_public_key(key: &PublicKey) {
    match PublicKey::from_blob(key.blob()) {
        Ok(p) => assert_eq!(&p, key),
        Err(e) => panic!("{key:?}: blob does not re-parse: {e}"),
    }
    let line = key.to_openssh_line();
    match PublicKey::from_openssh_line(&line) {
        Ok(p) => assert_eq!(&p, key),
        Err(e) => panic!("{key:?}: line {line:?} does not re-parse: {e}"),
    }
    let _ = (key.fingerprint(), key.bits(), key.to_string());
}

/// `PublicKey::from_blob` on the bytes and `from_openssh_line` on their lossy UTF-8.
pub fn public_key(data: &[u8]) {
    if let Ok(k) = PublicKey::from_blob(data) {
        check_public_key(&k);
    }
    if let Ok(k) = PublicKey::from_openssh_line(&String::from_utf8_lossy(data)) {
        check_public_key(&k);
    }
}

/// The fixed keys of the `signature` target (fixtures committed in src/keys/testdata).
pub struct FixedKeys {
    pub ed25519: PrivateKey,
    pub ecdsa: PrivateKey,
    pub rsa: PrivateKey,
    pub dsa: PrivateKey,
}

/// The fixed keys; a key type this build leaves out is stood in for by the Ed25519 key.
pub fn fixed_keys() -> &'static FixedKeys {
    static KEYS: OnceLock<FixedKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ed25519: &[u8] = include_bytes!("keys/testdata/ed25519.dropbear");
        let load = |compiled_in: bool, b: &[u8]| {
            PrivateKey::from_bytes(if compiled_in { b } else { ed25519 }, None).expect("fixture key parses")
        };
        FixedKeys {
            ed25519: load(true, ed25519),
            ecdsa: load(cfg!(feature = "nistp256"), include_bytes!("keys/testdata/ecdsa256.dropbear")),
            rsa: load(cfg!(feature = "rsa"), include_bytes!("keys/testdata/rsa2048.dropbear")),
            dsa: load(cfg!(feature = "legacy"), include_bytes!("keys/testdata/dsa.dropbear")),
        }
    })
}

// Stand-ins for algorithms a build leaves out, so the fuzz tables keep their length (and the
// committed corpora their meaning).
#[cfg(feature = "nistp256")]
const ECDSA: SigAlg = SigAlg::EcdsaNistp256;
#[cfg(not(feature = "nistp256"))]
const ECDSA: SigAlg = SigAlg::Ed25519;
#[cfg(feature = "nistp256")]
const ECDH: Kex = Kex::EcdhNistp256;
#[cfg(not(feature = "nistp256"))]
const ECDH: Kex = Kex::Curve25519Sha256;
#[cfg(feature = "rsa")]
const RSA_SHA256: SigAlg = SigAlg::RsaSha256;
#[cfg(not(feature = "rsa"))]
const RSA_SHA256: SigAlg = SigAlg::Ed25519;
#[cfg(feature = "rsa")]
const RSA_SHA512: SigAlg = SigAlg::RsaSha512;
#[cfg(not(feature = "rsa"))]
const RSA_SHA512: SigAlg = SigAlg::Ed25519;
#[cfg(feature = "dh")]
const DH14: Kex = Kex::DhGroup14Sha256;
#[cfg(not(feature = "dh"))]
const DH14: Kex = Kex::Curve25519Sha256Libssh;


/// The (key, algorithm) pairs of the `signature` target, selected by the first byte; the last
/// ones pair keys with algorithms they cannot have.
pub fn signature_cases() -> Vec<(&'static PrivateKey, SigAlg)> {
    let k = fixed_keys();
    let mut v = vec![
        (&k.ed25519, SigAlg::Ed25519),
        (&k.ecdsa, ECDSA),
        (&k.rsa, RSA_SHA256),
        (&k.rsa, RSA_SHA512),
    ];
    #[cfg(feature = "legacy")]
    {
        v.push((&k.rsa, SigAlg::SshRsa));
        v.push((&k.dsa, SigAlg::SshDss));
    }
    v.push((&k.ed25519, RSA_SHA256));
    v.push((&k.rsa, SigAlg::Ed25519));
    v
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    &b[n..]
}

/// The inner signature bytes of a well-formed SSH signature blob.
fn sig_body(blob: &[u8]) -> Option<&[u8]> {
    let mut r = crate::wire::Reader::new(blob);
    r.string().ok()?;
    r.string().ok()
}

/// `PublicKey::verify(alg, SIG_MSG, blob)` for a fixed key. A signature that verifies must,
/// for the deterministic schemes (Ed25519, RSA PKCS#1 v1.5), be the one the key makes (up to
/// the leading zeros RSA tolerates); and it must not verify other data.
pub fn signature(data: &[u8]) {
    let Some((&sel, blob)) = data.split_first() else { return };
    let cases = signature_cases();
    let (key, alg) = cases[usize::from(sel) % cases.len()];
    let public = key.public_key();
    if public.verify(alg, SIG_MSG, blob).is_err() {
        return;
    }
    assert!(public.verify(alg, b"another message", blob).is_err(), "{alg} signature verifies other data");
    let deterministic = match alg {
        SigAlg::Ed25519 => true,
        #[cfg(feature = "rsa")]
        SigAlg::RsaSha256 | SigAlg::RsaSha512 => true,
        #[cfg(feature = "legacy")]
        SigAlg::SshRsa => true,
        #[allow(unreachable_patterns)]
        _ => false,
    };
    if deterministic {
        let ours = key.sign(alg, SIG_MSG, &mut FuzzRng::new(5)).expect("fixed key signs");
        let (a, b) = (sig_body(blob).unwrap_or_default(), sig_body(&ours).unwrap_or_default());
        assert_eq!(strip_leading_zeros(a), strip_leading_zeros(b), "{alg}: a second valid signature");
    }
}

// ---------------------------------------------------------------------------------------------
// client

/// User name and password of the fuzzed client.
pub const CLIENT_USER: &str = "fuzz";
pub const CLIENT_PASSWORD: &str = "fuzz-pw";
/// Server identification the harness plays.
pub const SERVER_IDENT: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10";

/// Every algorithm in a fixed order (`Preferences::default` sorts by CPU features, which would
/// make recorded sessions depend on the machine). The optional sntrup761 methods are left out,
/// so that the client's KEXINIT, and with it the recorded sessions, are the same with and
/// without the `sntrup` feature (the `kex` target covers sntrup761).
fn fixed_prefs() -> Preferences {
    Preferences {
        kex: Kex::ALL.iter().copied().filter(|k| !k.name().starts_with("sntrup")).collect(),
        host_key: SigAlg::ALL.to_vec(),
        cipher: Cipher::ALL.to_vec(),
        mac: Mac::ALL.to_vec(),
    }
}

/// A fresh client with a password credential, any host key accepted, deterministic randomness.
pub fn new_client(now: Instant) -> Client {
    new_client_logging(now, false)
}

/// [`new_client`] with the payload dumps of trace logging on or off.
fn new_client_logging(now: Instant, log_payloads: bool) -> Client {
    let mut cfg = ClientConfig::new(CLIENT_USER);
    cfg.log_payloads = log_payloads;
    cfg.credentials.push(Credential::Password(Arc::new(zeroize::Zeroizing::new(CLIENT_PASSWORD.into()))));
    cfg.host_key_check = HostKeyCheck::default();
    cfg.prefs = fixed_prefs();
    Client::new(cfg, Box::new(FuzzRng::new(0xc1)), now)
}

/// What an application does between reads: take the output, react to events (open a session
/// once authenticated, write and EOF once it started), read channel data.
/// The client's output is dropped, or appended to `sink` (the harness's server reads it).
fn after_feed(c: &mut Client, now: Instant, sink: Option<&mut Vec<u8>>) {
    while let Some(ev) = c.poll_event() {
        match ev {
            Event::Authenticated => {
                let _ = c.open_session(Some(b"echo fuzz"));
            }
            Event::Channel(id, ChannelEvent::Started) => {
                let n = c.writable(id).min(16);
                let _ = c.send_data(id, &b"fuzz input data!"[..n]);
                c.send_eof(id);
            }
            Event::Channel(id, ChannelEvent::Eof) => c.close_channel(id),
            Event::Channel(_, _) => {}
        }
    }
    let mut buf = [0u8; 4096];
    for stderr in [false, true] {
        for _ in 0..1024 {
            if c.read(0, stderr, &mut buf) == 0 {
                break;
            }
        }
    }
    let _ = c.exit_status(0);
    c.handle_timeout(now);
    if let Some(sink) = sink {
        sink.extend_from_slice(c.output());
    }
    let n = c.output_len();
    c.consume_output(n);
}

/// Feed one chunk and check what the client documents: errors stick and kill the client;
/// after a successful feed at most one partial packet stays buffered.
fn feed(c: &mut Client, chunk: &[u8], now: Instant) -> bool {
    let r = c.handle_input(chunk, now);
    let ok = r.is_ok();
    if ok {
        let buffered = c.transport().buffered_input();
        assert!(buffered < MAX_NEED, "client buffers {buffered} bytes after a successful feed");
    } else {
        assert_eq!(c.phase(), Phase::Dead, "client failed without dying");
        assert!(c.error().is_some());
    }
    after_feed(c, now, None);
    if !ok {
        assert!(c.handle_input(b"SSH-2.0-x\r\n", now).is_err(), "dead client accepted input");
    }
    ok
}

/// The identification and plaintext KEXINIT the harness's server sends first for `suite`
/// (deterministic: the same bytes [`client_session`] starts with).
pub fn server_prefix(suite: u8, strict: bool) -> Vec<u8> {
    let s = Suite::pick(suite);
    let mut out = format!("{SERVER_IDENT}\r\n").into_bytes();
    let mut sealer = Sealer::plaintext();
    sealer.seal(0, &s.server_kexinit(strict), &mut FuzzRng::new(0x5e), &mut out);
    out
}

/// The whole client driven by one byte string. Byte 0: bit 0 = prepend a real server
/// identification and KEXINIT (bits 1-5 pick the algorithms, bit 6 the strict-KEX marker),
/// bit 7 = keepalives once connected. Byte 1 (low 4 bits) = n, then n chunk-size bytes (cycled;
/// chunk = (b + 1) * 3 bytes, 0 sizes = all at once); the rest is what the server "sends".
pub fn client(data: &[u8]) {
    if let Some(mut c) = drive_client(data) {
        c.disconnect();
        assert_eq!(c.phase(), Phase::Dead);
    }
}

/// Where [`client`] leaves the client on `data`: its phase and completed key exchanges (`None`
/// when it died). For tests that check a seed reaches deep.
pub fn client_outcome(data: &[u8]) -> Option<(Phase, u32)> {
    drive_client(data).map(|c| (c.phase(), c.transport().kex_count()))
}

fn drive_client(data: &[u8]) -> Option<Client> {
    let (&flags, rest) = data.split_first()?;
    let (count, rest) = match rest.split_first() {
        Some((&b, r)) => (usize::from(b & 15), r),
        None => (0, rest),
    };
    let (size_bytes, body) = rest.split_at(count.min(rest.len()));
    let sizes: Vec<usize> = size_bytes.iter().map(|&b| (usize::from(b) + 1) * 3).collect();
    let mut input = Vec::new();
    if flags & 1 != 0 {
        input.extend(server_prefix((flags >> 1) & 31, flags & 0x40 != 0));
    }
    input.extend_from_slice(body);

    let now = Instant::now();
    let mut c = new_client(now);
    after_feed(&mut c, now, None);
    let mut pos = 0usize;
    let mut i = 0usize;
    while pos < input.len() {
        let n = if sizes.is_empty() { input.len() } else { sizes[i % sizes.len()] };
        i += 1;
        let end = pos.saturating_add(n).min(input.len());
        if !feed(&mut c, &input[pos..end], now) {
            return None;
        }
        pos = end;
        if flags & 0x80 != 0 {
            let _ = c.send_keepalive();
        }
    }
    Some(c)
}
