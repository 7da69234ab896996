//! Public keys: the SSH public-key blob (RFC 4253 section 6.6 for `ssh-rsa` and `ssh-dss`,
//! RFC 5656 section 3.1 for `ecdsa-sha2-nistp256`, RFC 8709 section 4 for `ssh-ed25519`),
//! OpenSSH's one-line form and SHA-256 fingerprint, and signature verification (RFC 4253
//! section 6.6, RFC 8332 section 3, RFC 5656 section 3.1.2, RFC 8709 section 6).

use std::fmt;
use std::hash::{Hash, Hasher};

use base64ct::{Base64, Base64Unpadded, Encoding};
#[cfg(feature = "rsa")]
use crypto_bigint::BoxedUint;
#[cfg(feature = "legacy")]
use sha1::Sha1;
use sha2::{Digest, Sha256};
#[cfg(feature = "rsa")]
use sha2::Sha512;

use super::{shown_name, unsupported_type, KeyKind};
use crate::algs::SigAlg;
use crate::error::Error;
use crate::wire::{Reader, Writer};

/// Smallest RSA modulus we accept, in bits (OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE).
#[cfg(feature = "rsa")]
pub(super) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus we accept, in bits (OpenSSH's SSH_RSA_MAXIMUM_MODULUS_SIZE).
#[cfg(feature = "rsa")]
pub(super) const RSA_MAX_BITS: usize = 16384;
/// DSA as SSH uses it (FIPS 186-2): a 160-bit q, so r and s are 20 bytes each.
#[cfg(feature = "legacy")]
const DSA_Q_BITS: usize = 160;
#[cfg(feature = "legacy")]
const DSA_P_MIN_BITS: usize = 1024;
#[cfg(feature = "legacy")]
const DSA_P_MAX_BITS: usize = 3072;
/// `ssh-dss` signatures: r || s, 20 bytes each (RFC 4253 section 6.6).
#[cfg(feature = "legacy")]
const DSA_SIG_LEN: usize = 40;
const ED25519_SIG_LEN: usize = 64;
/// An uncompressed P-256 point: 0x04 || x || y (SEC1 section 2.3.3).
#[cfg(feature = "nistp256")]
const P256_POINT_LEN: usize = 65;
/// Longest public line we parse (an RSA 16384 key is about 2.8 KB of base64).
const MAX_LINE: usize = 16 * 1024;

/// A public key: a host key or the public half of a user key. Equality is equality of blobs.
#[derive(Clone)]
pub struct PublicKey {
    blob: Vec<u8>,
    key: Verifying,
}

#[derive(Clone)]
enum Verifying {
    #[cfg(feature = "rsa")]
    Rsa(rsa::RsaPublicKey),
    #[cfg(feature = "legacy")]
    Dsa(dsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    #[cfg(feature = "nistp256")]
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

/// Reader errors inside a key blob are key errors, not protocol errors.
fn blob_err(e: Error) -> Error {
    match e {
        Error::Protocol(m) => Error::key(format!("malformed public key blob: {m}")),
        other => other,
    }
}

/// Reader errors inside a signature blob are crypto failures.
fn sig_err(e: Error) -> Error {
    match e {
        Error::Protocol(m) => Error::crypto(format!("malformed signature blob: {m}")),
        other => other,
    }
}

/// Bit length of a big-endian magnitude (leading zero bytes allowed).
#[cfg(feature = "rsa")]
pub(super) fn bits(magnitude: &[u8]) -> usize {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let m = magnitude.get(skip..).unwrap_or(&[]);
    match m.first() {
        None => 0,
        Some(&top) => (m.len() - 1).saturating_mul(8) + (8 - top.leading_zeros() as usize),
    }
}

/// A big-endian magnitude as a `BoxedUint` whose precision is its length rounded up to whole
/// limbs (at least one limb, so zero is representable).
#[cfg(feature = "rsa")]
pub(super) fn uint(magnitude: &[u8]) -> Option<BoxedUint> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let m = magnitude.get(skip..)?;
    let bits = u32::try_from(m.len()).ok()?.checked_mul(8)?.max(64);
    BoxedUint::from_be_slice(m, bits).ok()
}

/// A big-endian magnitude at exactly `bits_precision` (the precision of another number, so the
/// two can share Montgomery parameters); `None` when it does not fit.
#[cfg(feature = "legacy")]
pub(super) fn uint_at(magnitude: &[u8], bits_precision: u32) -> Option<BoxedUint> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    BoxedUint::from_be_slice(magnitude.get(skip..)?, bits_precision).ok()
}

/// Left-pad a big-endian magnitude to `N` bytes; `None` when it does not fit.
#[cfg(any(feature = "legacy", feature = "nistp256"))]
pub(super) fn pad_to<const N: usize>(magnitude: &[u8]) -> Option<[u8; N]> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let m = magnitude.get(skip..)?;
    let start = N.checked_sub(m.len())?;
    let mut out = [0u8; N];
    out.get_mut(start..)?.copy_from_slice(m);
    Some(out)
}

impl PublicKey {
    /// Parse and validate an SSH public-key blob. The blob must be exact (no trailing bytes);
    /// RSA needs an odd e of at most 33 bits and 1024 <= |n| <= 16384 bits; DSA needs a
    /// 160-bit q dividing p - 1, 1024 <= |p| <= 3072 bits and g, y of order q; ECDSA must be on
    /// nistp256 with an uncompressed point on the curve; Ed25519 is 32 bytes that decompress.
    /// A kind this build leaves out is refused with the feature it needs.
    pub fn from_blob(blob: &[u8]) -> Result<PublicKey, Error> {
        let mut r = Reader::new(blob);
        let name = r.string().map_err(blob_err)?;
        let kind = std::str::from_utf8(name)
            .ok()
            .and_then(KeyKind::from_key_type)
            .ok_or_else(|| unsupported_type(name))?;
        let key = match kind {
            #[cfg(feature = "rsa")]
            KeyKind::Rsa(_) => {
                let e = r.mpint().map_err(blob_err)?;
                let n = r.mpint().map_err(blob_err)?;
                Verifying::Rsa(rsa_public(n, e)?)
            }
            #[cfg(feature = "legacy")]
            KeyKind::Dsa => {
                let p = r.mpint().map_err(blob_err)?;
                let q = r.mpint().map_err(blob_err)?;
                let g = r.mpint().map_err(blob_err)?;
                let y = r.mpint().map_err(blob_err)?;
                Verifying::Dsa(dsa_public(p, q, g, y)?)
            }
            KeyKind::Ed25519 => {
                let raw = r.string().map_err(blob_err)?;
                let raw: [u8; 32] = raw
                    .try_into()
                    .map_err(|_| Error::key(format!("ssh-ed25519 key is {} bytes, not 32", raw.len())))?;
                let k = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| Error::key("ssh-ed25519 key is not a valid curve point"))?;
                Verifying::Ed25519(k)
            }
            #[cfg(feature = "nistp256")]
            KeyKind::EcdsaP256 => {
                let curve = r.string().map_err(blob_err)?;
                if curve != b"nistp256" {
                    return Err(Error::key(format!(
                        "ecdsa-sha2-nistp256 key names curve {}, not nistp256",
                        shown_name(curve)
                    )));
                }
                let q = r.string().map_err(blob_err)?;
                Verifying::EcdsaP256(p256_public(q)?)
            }
            #[allow(unreachable_patterns)]
            _ => return Err(kind.unavailable()),
        };
        r.finish().map_err(blob_err)?;
        Ok(PublicKey { blob: blob.to_vec(), key })
    }

    /// Parse the authorized_keys / `.pub` form: `TYPE BASE64 [COMMENT]`. Surrounding
    /// whitespace (and a trailing NUL) and the comment are ignored; TYPE must be the blob's type.
    /// Leading authorized_keys options (`from="..." ssh-rsa ...`) are not accepted.
    pub fn from_openssh_line(line: &str) -> Result<PublicKey, Error> {
        if line.len() > MAX_LINE {
            return Err(Error::key("public key line too long"));
        }
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        let mut words = line.split_whitespace();
        let word = words.next().ok_or_else(|| Error::key("empty public key line"))?;
        if KeyKind::from_key_type(word).is_none() {
            return Err(unsupported_type(word.as_bytes()));
        }
        let b64 = words
            .next()
            .ok_or_else(|| Error::key(format!("public key line has no base64 key after {word}")))?;
        let blob = Base64::decode_vec(b64)
            .or_else(|_| Base64Unpadded::decode_vec(b64))
            .map_err(|_| Error::key("public key line: bad base64"))?;
        let key = PublicKey::from_blob(&blob)?;
        if key.key_type() != word {
            return Err(Error::key(format!(
                "public key line says {word} but the key is {}",
                key.key_type()
            )));
        }
        Ok(key)
    }

    /// The DSA verifying key, for building the matching signing key.
    #[cfg(feature = "legacy")]
    pub(super) fn dsa_key(&self) -> Option<&dsa::VerifyingKey> {
        match &self.key {
            Verifying::Dsa(k) => Some(k),
            _ => None,
        }
    }

    /// The SSH wire blob.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// "ssh-ed25519", "ssh-rsa", "ssh-dss" or "ecdsa-sha2-nistp256".
    pub fn key_type(&self) -> &str {
        self.kind().key_type()
    }

    pub fn kind(&self) -> KeyKind {
        match self.key {
            #[cfg(feature = "rsa")]
            Verifying::Rsa(_) => KeyKind::Rsa(self.bits()),
            #[cfg(feature = "legacy")]
            Verifying::Dsa(_) => KeyKind::Dsa,
            Verifying::Ed25519(_) => KeyKind::Ed25519,
            #[cfg(feature = "nistp256")]
            Verifying::EcdsaP256(_) => KeyKind::EcdsaP256,
        }
    }

    /// Size in bits as `ssh-keygen -l` reports it (modulus, p, or curve size).
    pub fn bits(&self) -> usize {
        match &self.key {
            #[cfg(feature = "rsa")]
            Verifying::Rsa(k) => rsa::traits::PublicKeyParts::n(k).bits_vartime() as usize,
            #[cfg(feature = "legacy")]
            Verifying::Dsa(k) => k.components().p().bits_vartime() as usize,
            Verifying::Ed25519(_) => 256,
            #[cfg(feature = "nistp256")]
            Verifying::EcdsaP256(_) => 256,
        }
    }

    /// OpenSSH's fingerprint: "SHA256:" and the unpadded base64 of SHA-256(blob).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.blob);
        format!("SHA256:{}", Base64Unpadded::encode_string(&digest))
    }

    /// The `.pub` / authorized_keys form without a comment: "ssh-ed25519 AAAA...", the line
    /// `ssh-keygen -y` prints for the private key.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), Base64::encode_string(&self.blob))
    }

    /// The same as [`PublicKey::to_openssh`].
    pub fn to_openssh_line(&self) -> String {
        self.to_openssh()
    }

    /// Verify an SSH signature blob (string algorithm name, string signature) over `data`.
    /// The blob's name must be `alg`, `alg` must suit this key, and the signature must have
    /// exactly its algorithm's shape. RSA signatures shorter than the modulus are left-padded
    /// as OpenSSH does; longer ones are refused. Every failure is `Error::Crypto`.
    pub fn verify(&self, alg: SigAlg, data: &[u8], sig_blob: &[u8]) -> Result<(), Error> {
        if alg.key_type() != self.key_type() {
            return Err(Error::crypto(format!(
                "signature algorithm {alg} does not fit a {} key",
                self.key_type()
            )));
        }
        let mut r = Reader::new(sig_blob);
        let name = r.string().map_err(sig_err)?;
        if name != alg.name().as_bytes() {
            return Err(Error::crypto(format!(
                "signature is {}, expected {alg}",
                shown_name(name)
            )));
        }
        let sig = r.string().map_err(sig_err)?;
        r.finish().map_err(sig_err)?;
        let ok = match &self.key {
            #[cfg(feature = "rsa")]
            Verifying::Rsa(k) => verify_rsa(k, alg, data, sig)?,
            #[cfg(feature = "legacy")]
            Verifying::Dsa(k) => verify_dsa(k, data, sig)?,
            Verifying::Ed25519(k) => verify_ed25519(k, data, sig)?,
            #[cfg(feature = "nistp256")]
            Verifying::EcdsaP256(k) => verify_p256(k, data, sig)?,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::crypto(format!("{alg} signature verification failed")))
        }
    }
}

#[cfg(feature = "rsa")]
fn rsa_public(n: &[u8], e: &[u8]) -> Result<rsa::RsaPublicKey, Error> {
    let n_bits = bits(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n_bits) {
        return Err(Error::key(format!(
            "RSA modulus of {n_bits} bits is outside {RSA_MIN_BITS}..={RSA_MAX_BITS}"
        )));
    }
    let (Some(n), Some(e)) = (uint(n), uint(e)) else {
        return Err(Error::key("unusable RSA public key: number too long"));
    };
    rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
        .map_err(|e| Error::key(format!("unusable RSA public key: {e}")))
}

#[cfg(feature = "legacy")]
fn dsa_public(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Result<dsa::VerifyingKey, Error> {
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{NonZero, Odd};
    let (p_bits, q_bits) = (bits(p), bits(q));
    if q_bits != DSA_Q_BITS || !(DSA_P_MIN_BITS..=DSA_P_MAX_BITS).contains(&p_bits) {
        return Err(Error::key(format!(
            "DSA key with {p_bits}-bit p and {q_bits}-bit q (need 160-bit q, 1024..=3072-bit p)"
        )));
    }
    let bad_params = || Error::key("unusable DSA parameters");
    // The sizes are checked above, so p and q are non-zero. g and y get p's precision: the
    // `dsa` crate computes with them modulo p.
    let p = uint(p).and_then(|p| Odd::new(p).into_option()).ok_or_else(bad_params)?;
    let q = uint(q).and_then(|q| NonZero::new(q).into_option()).ok_or_else(bad_params)?;
    let g = uint_at(g, p.bits_precision()).ok_or_else(bad_params)?;
    let one = BoxedUint::one();
    let p_minus_1 = p.wrapping_sub(&one);
    let q_divides = bool::from(p_minus_1.rem_vartime(&q).is_zero());
    // g must generate the order-q subgroup: 1 < g < p - 1 and g^q = 1 (mod p).
    if !q_divides || g <= one || g >= p_minus_1 {
        return Err(bad_params());
    }
    let params = BoxedMontyParams::new_vartime(p.clone());
    if BoxedMontyForm::new(g.clone(), &params).pow(&q).retrieve() != one {
        return Err(bad_params());
    }
    // The checked constructor only takes the FIPS 186-4 (L, N) pairs; SSH's DSA is FIPS 186-2
    // (160-bit q with any p of 1024..=3072 bits, checked above).
    let components = dsa::Components::from_components_unchecked(p.get(), q.get(), g).map_err(|_| bad_params())?;
    // from_components checks y >= 2 and y^q = 1 (mod p).
    let bad_y = || Error::key("unusable DSA public value y");
    let y = uint_at(y, components.p().bits_precision()).ok_or_else(bad_y)?;
    dsa::VerifyingKey::from_components(components, y).map_err(|_| bad_y())
}

#[cfg(feature = "nistp256")]
fn p256_public(point: &[u8]) -> Result<p256::ecdsa::VerifyingKey, Error> {
    // OpenSSH accepts only the uncompressed form (sshbuf_get_ec), so do we.
    if point.len() != P256_POINT_LEN || point.first() != Some(&0x04) {
        return Err(Error::key("ecdsa-sha2-nistp256 key is not an uncompressed P-256 point"));
    }
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| Error::key("ecdsa-sha2-nistp256 key is not a point on the curve"))
}

/// Encoders for the blobs (used for the public half of private keys).
#[cfg(feature = "rsa")]
pub(super) fn rsa_blob(e: &[u8], n: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.str("ssh-rsa").mpint(e).mpint(n);
    w.into_vec()
}

#[cfg(feature = "legacy")]
pub(super) fn dsa_blob(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.str("ssh-dss").mpint(p).mpint(q).mpint(g).mpint(y);
    w.into_vec()
}

pub(super) fn ed25519_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.str("ssh-ed25519").string(public);
    w.into_vec()
}

#[cfg(feature = "nistp256")]
pub(super) fn p256_blob(point: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.str("ecdsa-sha2-nistp256").str("nistp256").string(point);
    w.into_vec()
}

#[cfg(feature = "legacy")]
/// DigestInfo prefix for SHA-1 (RFC 8017 section 9.2, note 1): our `sha1` dependency is built
/// without its `oid` feature, so `Pkcs1v15Sign::new::<Sha1>()` is not available.
const SHA1_DIGEST_INFO: [u8; 15] =
    [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

/// The PKCS#1 v1.5 padding and message hash for an RSA signature algorithm.
#[cfg(feature = "rsa")]
pub(super) fn rsa_scheme(alg: SigAlg, data: &[u8]) -> Option<(rsa::Pkcs1v15Sign, Vec<u8>)> {
    match alg {
        SigAlg::RsaSha512 => Some((rsa::Pkcs1v15Sign::new::<Sha512>(), Sha512::digest(data).to_vec())),
        SigAlg::RsaSha256 => Some((rsa::Pkcs1v15Sign::new::<Sha256>(), Sha256::digest(data).to_vec())),
        #[cfg(feature = "legacy")]
        SigAlg::SshRsa => Some((
            rsa::Pkcs1v15Sign { hash_len: Some(20), prefix: Box::new(SHA1_DIGEST_INFO) },
            Sha1::digest(data).to_vec(),
        )),
        _ => None,
    }
}

#[cfg(feature = "rsa")]
fn verify_rsa(k: &rsa::RsaPublicKey, alg: SigAlg, data: &[u8], sig: &[u8]) -> Result<bool, Error> {
    let (scheme, hashed) =
        rsa_scheme(alg, data).ok_or_else(|| Error::crypto(format!("{alg} is not an RSA algorithm")))?;
    let k_len = rsa::traits::PublicKeyParts::size(k);
    if sig.len() > k_len {
        return Err(Error::crypto(format!(
            "{alg} signature is {} bytes, longer than the {k_len}-byte modulus",
            sig.len()
        )));
    }
    let mut padded = vec![0u8; k_len.saturating_sub(sig.len())];
    padded.extend_from_slice(sig);
    Ok(k.verify(scheme, &hashed, &padded).is_ok())
}

#[cfg(feature = "legacy")]
fn verify_dsa(k: &dsa::VerifyingKey, data: &[u8], sig: &[u8]) -> Result<bool, Error> {
    use signature::DigestVerifier;
    if sig.len() != DSA_SIG_LEN {
        return Err(Error::crypto(format!("ssh-dss signature is {} bytes, not 40", sig.len())));
    }
    let (r, s) = sig.split_at(DSA_SIG_LEN / 2);
    let Some(sig) = uint(r).zip(uint(s)).and_then(|(r, s)| dsa::Signature::from_components(r, s)) else {
        return Ok(false);
    };
    let hashed = |d: &mut Sha1| {
        d.update(data);
        Ok(())
    };
    Ok(k.verify_digest(hashed, &sig).is_ok())
}

fn verify_ed25519(k: &ed25519_dalek::VerifyingKey, data: &[u8], sig: &[u8]) -> Result<bool, Error> {
    let sig: [u8; ED25519_SIG_LEN] = sig
        .try_into()
        .map_err(|_| Error::crypto(format!("ssh-ed25519 signature is {} bytes, not 64", sig.len())))?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    // verify_strict also refuses small-order keys and R values (malleable signatures).
    Ok(k.verify_strict(data, &sig).is_ok())
}

#[cfg(feature = "nistp256")]
fn verify_p256(k: &p256::ecdsa::VerifyingKey, data: &[u8], sig: &[u8]) -> Result<bool, Error> {
    use signature::Verifier;
    // RFC 5656 section 3.1.2: the signature string holds mpint r, mpint s.
    let mut r = Reader::new(sig);
    let sr = r.mpint().map_err(sig_err)?;
    let ss = r.mpint().map_err(sig_err)?;
    r.finish().map_err(sig_err)?;
    let (Some(sr), Some(ss)) = (pad_to::<32>(sr), pad_to::<32>(ss)) else {
        return Err(Error::crypto("ecdsa-sha2-nistp256 signature value longer than 32 bytes"));
    };
    let Ok(sig) = p256::ecdsa::Signature::from_scalars(sr, ss) else {
        return Ok(false);
    };
    // The Verifier impl hashes with SHA-256, as RFC 5656 section 6.2.1 requires for nistp256.
    Ok(k.verify(data, &sig).is_ok())
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.blob.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.key_type(), self.fingerprint())
    }
}

impl fmt::Display for PublicKey {
    /// "ssh-ed25519 SHA256:...", the form used in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key_type(), self.fingerprint())
    }
}
