//! The AEAD primitives of feature "aws-lc": the same two constructions as the RustCrypto ones in
//! `engine`, computed by AWS-LC through aws-lc-rs (no hand-written crypto here either):
//!
//! * aes128-gcm / aes256-gcm@openssh.com (RFC 5647 section 7, OpenSSH PROTOCOL section 1.6):
//!   `aead::LessSafeKey`, which takes the caller's nonce (the packet layer keeps the 4-byte
//!   fixed field || 64-bit invocation counter, shared with the RustCrypto key) and seals and
//!   opens in place with a detached tag; the 4-byte packet length is the AAD.
//! * chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305):
//!   `aead::chacha20_poly1305_openssh`, aws-lc-rs's implementation of exactly OpenSSH's
//!   construction (K_2 || K_1, nonce = sequence number, Poly1305 over the encrypted length and
//!   the ciphertext, tag checked before anything is decrypted).
//!
//! Key material: the AES-GCM key schedule lives in an `EVP_AEAD_CTX` that AWS-LC allocates and
//! frees with `OPENSSL_free`, which cleanses the whole allocation first; aws-lc-rs's ChaCha20
//! keys zeroize themselves on drop. The temporary copies made here are `Zeroizing`.

use aws_lc_rs::aead::chacha20_poly1305_openssh as openssh;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use zeroize::Zeroizing;

use super::engine::AEAD_TAG_LEN;

/// An AES-GCM key (128 or 256 bits by its length).
pub(super) struct GcmKey(LessSafeKey);

impl GcmKey {
    pub(super) fn new(key: &[u8]) -> Option<Self> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        Some(GcmKey(LessSafeKey::new(UnboundKey::new(alg, key).ok()?)))
    }

    /// Encrypt `body` in place under `nonce`, authenticating `aad`; the tag, or `None` if
    /// AWS-LC refused (it never does for the lengths the packet layer passes).
    pub(super) fn seal(&self, nonce: [u8; 12], aad: &[u8], body: &mut [u8]) -> Option<[u8; AEAD_TAG_LEN]> {
        let tag = self.0.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body).ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Check `tag` and decrypt `body` in place. On failure `body` is unspecified; the packet
    /// layer never looks at it again.
    pub(super) fn open(&self, nonce: [u8; 12], aad: &[u8], body: &mut [u8], tag: &[u8; AEAD_TAG_LEN]) -> bool {
        self.0.open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), tag, body).is_ok()
    }
}

/// chacha20-poly1305@openssh.com keys for one direction. aws-lc-rs splits sealing and opening
/// into two types; both are kept (64 bytes of key each) since this state serves either one.
pub(super) struct ChaChaKey {
    seal: openssh::SealingKey,
    open: openssh::OpeningKey,
}

impl ChaChaKey {
    /// `key` is the 64 bytes from the key derivation: K_2 || K_1.
    pub(super) fn new(key: &[u8]) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; openssh::KEY_LEN]);
        if key.len() != k.len() {
            return None;
        }
        k.copy_from_slice(key);
        Some(ChaChaKey { seal: openssh::SealingKey::new(&k), open: openssh::OpeningKey::new(&k) })
    }

    /// Decrypt (or encrypt: it is an XOR) the 4-byte length field with K_1.
    pub(super) fn crypt_length(&self, seq: u32, len: &mut [u8; 4]) {
        *len = self.open.decrypt_packet_length(seq, *len);
    }

    /// `pkt` is the plaintext packet, length field first; encrypt it in place, return the tag.
    pub(super) fn seal(&self, seq: u32, pkt: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        let mut tag = [0u8; AEAD_TAG_LEN];
        // aws-lc-rs splits off the length field without checking; the packet layer never
        // passes less, but an empty tag for a short buffer beats a panic.
        if pkt.len() >= openssh::PACKET_LENGTH_LEN {
            self.seal.seal_in_place(seq, pkt, &mut tag);
        }
        tag
    }

    /// `pkt` is encrypted length || ciphertext; check `tag`, then decrypt the ciphertext in
    /// place (the length field stays encrypted). False on a bad tag, `pkt` untouched.
    pub(super) fn open(&self, seq: u32, pkt: &mut [u8], tag: &[u8; AEAD_TAG_LEN]) -> bool {
        pkt.len() >= openssh::PACKET_LENGTH_LEN && self.open.open_in_place(seq, pkt, tag).is_ok()
    }
}
