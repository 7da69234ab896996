//! The keyed primitives behind the packet layer, one per negotiated cipher/MAC family, all from
//! RustCrypto crates (no hand-written crypto); with feature "aws-lc" the two AEADs can also run
//! on AWS-LC (`awslc`), chosen per key by `Backend`, the nonce and counter logic staying here:
//!
//! * chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305): two ChaCha20 instances
//!   with the original 64-bit nonce (the packet sequence number, big-endian); K_1 (the last 32
//!   key bytes) encrypts the length, K_2 (the first 32) the rest; the Poly1305 key is the first
//!   half of K_2's keystream block 0 and the body starts at block 1; the unpadded Poly1305 tag
//!   covers encrypted length || ciphertext.
//! * aes128-gcm / aes256-gcm@openssh.com (RFC 5647 section 7, OpenSSH PROTOCOL section 1.6):
//!   12-byte nonce = 4-byte fixed field || 8-byte invocation counter, incremented after every
//!   packet; the packet length is the AAD.
//! * aes128/192/256-ctr (RFC 4344 section 4): one big-endian 128-bit counter that runs on across
//!   packets.
//! * HMAC (RFC 2104) with SHA-256/SHA-512 (RFC 6668) or SHA-1 (RFC 4253 section 6.4), always
//!   over uint32 sequence number || data, compared in constant time.
//!
//! Every function here works on slices whose lengths the packet layer has already validated;
//! nothing indexes or panics on peer data.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20Legacy;
use hmac::Hmac;
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[cfg(feature = "aws-lc")]
use super::awslc;
use super::Backend;
use crate::algs::Mac;
use crate::error::Error;

/// Length of the Poly1305 and GCM tags.
pub(super) const AEAD_TAG_LEN: usize = 16;
/// Longest MAC we produce (HMAC-SHA-512).
pub(super) const MAX_MAC_LEN: usize = 64;

fn tag_mismatch() -> Error {
    Error::crypto("AEAD tag mismatch")
}

fn mac_mismatch() -> Error {
    Error::crypto("MAC mismatch")
}

/// Copy a key slice into a fixed-size, self-wiping array.
fn key_array<const N: usize>(key: &[u8]) -> Option<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    if key.len() != N {
        return None;
    }
    out.copy_from_slice(key);
    Some(out)
}

/// chacha20-poly1305@openssh.com keys for one direction, on either backend.
pub(super) enum ChaChaPoly {
    RustCrypto(RcChaChaPoly),
    #[cfg(feature = "aws-lc")]
    AwsLc(Box<awslc::ChaChaKey>),
}

impl ChaChaPoly {
    /// `key` is the 64 bytes from the key derivation: K_2 || K_1.
    pub(super) fn new(backend: Backend, key: &[u8]) -> Option<Self> {
        Some(match backend {
            Backend::RustCrypto => ChaChaPoly::RustCrypto(RcChaChaPoly::new(key)?),
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => ChaChaPoly::AwsLc(Box::new(awslc::ChaChaKey::new(key)?)),
        })
    }

    /// XOR the 4-byte length field with K_1's keystream (encrypts or decrypts).
    pub(super) fn crypt_length(&self, seq: u32, len: &mut [u8; 4]) {
        match self {
            ChaChaPoly::RustCrypto(c) => c.crypt_length(seq, len),
            #[cfg(feature = "aws-lc")]
            ChaChaPoly::AwsLc(c) => c.crypt_length(seq, len),
        }
    }

    /// `pkt` is the plaintext packet (length || padding_length || payload || padding); encrypt
    /// it in place and return the tag.
    pub(super) fn seal(&self, seq: u32, pkt: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        match self {
            ChaChaPoly::RustCrypto(c) => c.seal(seq, pkt),
            #[cfg(feature = "aws-lc")]
            ChaChaPoly::AwsLc(c) => c.seal(seq, pkt),
        }
    }

    /// `pkt` is encrypted length || ciphertext; check `tag` (constant time), then decrypt the
    /// ciphertext in place (the length field is left encrypted).
    pub(super) fn open(&self, seq: u32, pkt: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        match self {
            ChaChaPoly::RustCrypto(c) => c.open(seq, pkt, tag),
            #[cfg(feature = "aws-lc")]
            ChaChaPoly::AwsLc(c) => {
                let tag: &[u8; AEAD_TAG_LEN] = tag.try_into().map_err(|_| tag_mismatch())?;
                if c.open(seq, pkt, tag) {
                    Ok(())
                } else {
                    Err(tag_mismatch())
                }
            }
        }
    }
}

/// RustCrypto's chacha20-poly1305@openssh.com.
pub(super) struct RcChaChaPoly {
    /// K_2: payload encryption and the Poly1305 key.
    main: Zeroizing<[u8; 32]>,
    /// K_1: packet length encryption.
    length: Zeroizing<[u8; 32]>,
}

impl RcChaChaPoly {
    /// `key` is the 64 bytes from the key derivation: K_2 || K_1.
    fn new(key: &[u8]) -> Option<Self> {
        let (k2, k1) = (key.get(..32)?, key.get(32..)?);
        Some(RcChaChaPoly { main: key_array(k2)?, length: key_array(k1)? })
    }

    fn nonce(seq: u32) -> [u8; 8] {
        u64::from(seq).to_be_bytes()
    }

    /// XOR the 4-byte length field with K_1's keystream (encrypts or decrypts).
    fn crypt_length(&self, seq: u32, len: &mut [u8; 4]) {
        let mut c = ChaCha20Legacy::new((&*self.length).into(), (&Self::nonce(seq)).into());
        c.apply_keystream(len);
    }

    /// K_2's cipher positioned at block 1, and the one-time Poly1305 key from block 0.
    fn body_cipher(&self, seq: u32) -> (ChaCha20Legacy, Poly1305) {
        let mut c = ChaCha20Legacy::new((&*self.main).into(), (&Self::nonce(seq)).into());
        let mut block0 = Zeroizing::new([0u8; 64]);
        c.apply_keystream(&mut *block0);
        let mut poly_key = Zeroizing::new([0u8; 32]);
        for (k, b) in poly_key.iter_mut().zip(block0.iter()) {
            *k = *b;
        }
        let poly = Poly1305::new((&*poly_key).into());
        (c, poly)
    }

    /// `pkt` is the plaintext packet (length || padding_length || payload || padding); encrypt
    /// it in place and return the tag.
    fn seal(&self, seq: u32, pkt: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        let (len, body) = pkt.split_at_mut(4.min(pkt.len()));
        let mut l = [0u8; 4];
        l.copy_from_slice(len);
        self.crypt_length(seq, &mut l);
        len.copy_from_slice(&l);
        let (mut c, poly) = self.body_cipher(seq);
        c.apply_keystream(body);
        poly.compute_unpadded(pkt).into()
    }

    /// `pkt` is encrypted length || ciphertext; check `tag`, then decrypt the ciphertext in
    /// place (the length field is left encrypted).
    fn open(&self, seq: u32, pkt: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        let (mut c, poly) = self.body_cipher(seq);
        let expected = poly.compute_unpadded(pkt);
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(tag_mismatch());
        }
        if let Some(body) = pkt.get_mut(4..) {
            c.apply_keystream(body);
        }
        Ok(())
    }
}

enum GcmKey {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    #[cfg(feature = "aws-lc")]
    AwsLc(Box<awslc::GcmKey>),
}

impl GcmKey {
    /// Encrypt `body` in place, authenticating `aad`; `None` if the AEAD refused.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> Option<[u8; AEAD_TAG_LEN]> {
        let r = match self {
            GcmKey::Aes128(k) => k.encrypt_inout_detached(nonce.into(), aad, body.into()),
            GcmKey::Aes256(k) => k.encrypt_inout_detached(nonce.into(), aad, body.into()),
            #[cfg(feature = "aws-lc")]
            GcmKey::AwsLc(k) => return k.seal(*nonce, aad, body),
        };
        r.ok().map(Into::into)
    }

    /// Check `tag` (constant time, inside the AEAD) and decrypt `body` in place.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], body: &mut [u8], tag: &[u8; AEAD_TAG_LEN]) -> bool {
        match self {
            GcmKey::Aes128(k) => k.decrypt_inout_detached(nonce.into(), aad, body.into(), tag.into()).is_ok(),
            GcmKey::Aes256(k) => k.decrypt_inout_detached(nonce.into(), aad, body.into(), tag.into()).is_ok(),
            #[cfg(feature = "aws-lc")]
            GcmKey::AwsLc(k) => k.open(*nonce, aad, body, tag),
        }
    }
}

/// aes128-gcm / aes256-gcm@openssh.com state for one direction.
pub(super) struct Gcm {
    key: GcmKey,
    fixed: [u8; 4],
    invocation: u64,
}

impl Gcm {
    /// `key` is 16 or 32 bytes, `iv` the 12-byte initial nonce.
    pub(super) fn new(backend: Backend, key: &[u8], iv: &[u8]) -> Option<Self> {
        let key = match (backend, key.len()) {
            (Backend::RustCrypto, 16) => GcmKey::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            (Backend::RustCrypto, 32) => GcmKey::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            #[cfg(feature = "aws-lc")]
            (Backend::AwsLc, _) => GcmKey::AwsLc(Box::new(awslc::GcmKey::new(key)?)),
            _ => return None,
        };
        let fixed: [u8; 4] = iv.get(..4)?.try_into().ok()?;
        let invocation: [u8; 8] = iv.get(4..)?.try_into().ok()?;
        Some(Gcm { key, fixed, invocation: u64::from_be_bytes(invocation) })
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        let (f, i) = n.split_at_mut(4);
        f.copy_from_slice(&self.fixed);
        i.copy_from_slice(&self.invocation.to_be_bytes());
        n
    }

    /// `pkt` is the plaintext packet; the length field stays in clear as AAD, the rest is
    /// encrypted in place. Returns the tag and moves on to the next nonce.
    pub(super) fn seal(&mut self, pkt: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        let nonce = self.nonce();
        let (aad, body) = pkt.split_at_mut(4.min(pkt.len()));
        let r = self.key.seal(&nonce, aad, body);
        self.invocation = self.invocation.wrapping_add(1);
        match r {
            Some(tag) => tag,
            None => {
                // Only possible beyond 64 GiB; never let plaintext out, send a packet the peer
                // will reject instead.
                body.fill(0);
                [0u8; AEAD_TAG_LEN]
            }
        }
    }

    /// Test-only: encrypt `buf` with arbitrary AAD under the current nonce (for published
    /// GCM vectors, whose AAD is not a 4-byte length).
    #[cfg(test)]
    pub(super) fn encrypt_with_aad(&self, aad: &[u8], buf: &mut [u8]) -> Vec<u8> {
        self.key.seal(&self.nonce(), aad, buf).map(|t| t.to_vec()).unwrap_or_default()
    }

    /// `pkt` is length || ciphertext; verify `tag` (constant time, inside the AEAD), then
    /// decrypt in place. The nonce advances only on success.
    pub(super) fn open(&mut self, pkt: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        let nonce = self.nonce();
        let tag: [u8; AEAD_TAG_LEN] = tag.try_into().map_err(|_| tag_mismatch())?;
        let (aad, body) = pkt.split_at_mut(4.min(pkt.len()));
        if !self.key.open(&nonce, aad, body, &tag) {
            return Err(tag_mismatch());
        }
        self.invocation = self.invocation.wrapping_add(1);
        Ok(())
    }
}

/// AES in counter mode; the counter continues from packet to packet (RFC 4344 section 4).
pub(super) enum AesCtr {
    Aes128(Box<ctr::Ctr128BE<aes::Aes128>>),
    Aes192(Box<ctr::Ctr128BE<aes::Aes192>>),
    Aes256(Box<ctr::Ctr128BE<aes::Aes256>>),
}

impl AesCtr {
    pub(super) fn new(key: &[u8], iv: &[u8]) -> Option<Self> {
        Some(match key.len() {
            16 => AesCtr::Aes128(Box::new(ctr::Ctr128BE::new_from_slices(key, iv).ok()?)),
            24 => AesCtr::Aes192(Box::new(ctr::Ctr128BE::new_from_slices(key, iv).ok()?)),
            32 => AesCtr::Aes256(Box::new(ctr::Ctr128BE::new_from_slices(key, iv).ok()?)),
            _ => return None,
        })
    }

    pub(super) fn apply(&mut self, buf: &mut [u8]) {
        match self {
            AesCtr::Aes128(c) => c.apply_keystream(buf),
            AesCtr::Aes192(c) => c.apply_keystream(buf),
            AesCtr::Aes256(c) => c.apply_keystream(buf),
        }
    }
}

/// How an OpenSSH key file's private section came out of `open_key_section`.
#[cfg(feature = "encrypted-keys")]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeySection {
    Decrypted,
    /// The AEAD tag did not match (a wrong passphrase).
    BadTag,
    /// Not a cipher handled here, or key/IV/tag of the wrong size.
    Unsupported,
}

/// Decrypt in place the private section of an OpenSSH key file (PROTOCOL.key; sshkey.c runs
/// the transport cipher over it as one packet with sequence number 0 and no AAD or length
/// field) with the transport's own code: aes128/192/256-ctr (`iv` the counter),
/// aes128/256-gcm@openssh.com (`iv` the 12-byte nonce, `tag` after the section) and
/// chacha20-poly1305@openssh.com (`key` the 64 bytes of the transport's key, K_2 first; the
/// tag covers the ciphertext only). The CBC ciphers are not here.
#[cfg(feature = "encrypted-keys")]
pub(crate) fn open_key_section(name: &str, key: &[u8], iv: &[u8], section: &mut [u8], tag: &[u8]) -> KeySection {
    let ok = |b: bool| if b { KeySection::Decrypted } else { KeySection::BadTag };
    match name {
        "aes128-ctr" | "aes192-ctr" | "aes256-ctr" => match AesCtr::new(key, iv) {
            Some(mut c) if tag.is_empty() => {
                c.apply(section);
                KeySection::Decrypted
            }
            _ => KeySection::Unsupported,
        },
        "aes128-gcm@openssh.com" | "aes256-gcm@openssh.com" => {
            let Some(gcm) = Gcm::new(super::Backend::RustCrypto, key, iv) else {
                return KeySection::Unsupported;
            };
            let (nonce, tag): (&[u8; 12], &[u8; AEAD_TAG_LEN]) = match (iv.try_into(), tag.try_into()) {
                (Ok(n), Ok(t)) => (n, t),
                _ => return KeySection::Unsupported,
            };
            ok(gcm.key.open(nonce, &[], section, tag))
        }
        "chacha20-poly1305@openssh.com" => {
            let Some(c) = RcChaChaPoly::new(key).filter(|_| key.len() == 64 && tag.len() == AEAD_TAG_LEN) else {
                return KeySection::Unsupported;
            };
            let (mut body, poly) = c.body_cipher(0);
            let expected = poly.compute_unpadded(section);
            if !bool::from(expected.as_slice().ct_eq(tag)) {
                return KeySection::BadTag;
            }
            body.apply_keystream(section);
            KeySection::Decrypted
        }
        _ => KeySection::Unsupported,
    }
}

/// A keyed HMAC, cloned for every packet (the inner and outer pads are absorbed once).
#[derive(Clone)]
pub(super) enum MacKey {
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
    #[cfg(feature = "legacy")]
    Sha1(Hmac<sha1::Sha1>),
}

impl MacKey {
    pub(super) fn new(mac: Mac, key: &[u8]) -> Option<Self> {
        if key.len() != mac.key_len() {
            return None;
        }
        Some(match mac {
            Mac::HmacSha256 | Mac::HmacSha256Etm => MacKey::Sha256(KeyInit::new_from_slice(key).ok()?),
            Mac::HmacSha512 | Mac::HmacSha512Etm => MacKey::Sha512(KeyInit::new_from_slice(key).ok()?),
            #[cfg(feature = "legacy")]
            Mac::HmacSha1 => MacKey::Sha1(KeyInit::new_from_slice(key).ok()?),
        })
    }

    pub(super) fn len(&self) -> usize {
        match self {
            MacKey::Sha256(_) => 32,
            MacKey::Sha512(_) => 64,
            #[cfg(feature = "legacy")]
            MacKey::Sha1(_) => 20,
        }
    }

    /// MAC(key, uint32 seq || data) into `out`; returns the MAC's length.
    pub(super) fn compute(&self, seq: u32, data: &[u8], out: &mut [u8; MAX_MAC_LEN]) -> usize {
        fn run<M: hmac::Mac + Clone>(m: &M, seq: u32, data: &[u8], out: &mut [u8]) -> usize {
            let mut m = m.clone();
            m.update(&seq.to_be_bytes());
            m.update(data);
            let tag = m.finalize().into_bytes();
            for (o, t) in out.iter_mut().zip(tag.iter()) {
                *o = *t;
            }
            tag.len()
        }
        match self {
            MacKey::Sha256(m) => run(m, seq, data, out),
            MacKey::Sha512(m) => run(m, seq, data, out),
            #[cfg(feature = "legacy")]
            MacKey::Sha1(m) => run(m, seq, data, out),
        }
    }

    /// Check `tag` against MAC(key, seq || data) in constant time.
    pub(super) fn verify(&self, seq: u32, data: &[u8], tag: &[u8]) -> Result<(), Error> {
        let mut expected = [0u8; MAX_MAC_LEN];
        let n = self.compute(seq, data, &mut expected);
        match expected.get(..n) {
            Some(e) if bool::from(e.ct_eq(tag)) => Ok(()),
            _ => Err(mac_mismatch()),
        }
    }
}
