//! Private keys and signing: RFC 4253 section 6.6 (`ssh-rsa` PKCS#1 v1.5 with SHA-1, `ssh-dss`
//! r || s), RFC 8332 section 3 (`rsa-sha2-256`, `rsa-sha2-512`), RFC 5656 section 3.1.2
//! (ECDSA mpint r, mpint s; SHA-256 for nistp256), RFC 8709 section 6 (Ed25519). DSA and ECDSA
//! nonces are deterministic (RFC 6979); RSA is blinded with the caller's RNG.
//!
//! Every file format funnels into the four constructors below, which check that the private
//! and public halves belong together before a key is accepted.

use std::fmt;

use signature::Signer;
#[cfg(any(feature = "rsa", feature = "nistp256"))]
use zeroize::Zeroizing;

use super::public::{self, PublicKey};
use super::{dropbear, pem, KeyKind};
use crate::algs::SigAlg;
use crate::error::Error;
#[cfg(feature = "rsa")]
use crate::random::CryptoRng;
use crate::random::Random;
use crate::wire::Writer;

/// A user's private key. The secret halves zeroize themselves on drop (`rsa`, `dsa`,
/// `ed25519-dalek` and `p256` all implement that); `Debug` shows only the public fingerprint.
pub struct PrivateKey {
    secret: Secret,
    public: PublicKey,
}

/// The secret half, one variant per kind compiled in (read by the exporters).
pub(super) enum Secret {
    #[cfg(feature = "rsa")]
    Rsa(Box<rsa::RsaPrivateKey>),
    #[cfg(feature = "legacy")]
    Dsa(Box<dsa::SigningKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    #[cfg(feature = "nistp256")]
    EcdsaP256(Box<p256::ecdsa::SigningKey>),
}

impl PrivateKey {
    /// Read a private key, detecting its format from the bytes: Dropbear's binary format,
    /// OpenSSH's format (plain or passphrase-protected), or PEM (PKCS#1 RSA, OpenSSL DSA,
    /// SEC1 EC, PKCS#8). Text formats may carry surrounding whitespace and a trailing NUL.
    /// The passphrase is used only when the key is encrypted.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
        if dropbear::looks_like_dropbear(data) {
            return dropbear::parse(data);
        }
        let text = trim(data);
        if text.is_empty() {
            return Err(Error::key("empty key data"));
        }
        pem::parse(text, passphrase)
    }

    /// The kind, with an RSA key's modulus size: `PrivateKey::generate(key.kind())` makes a
    /// new key like this one.
    pub fn kind(&self) -> KeyKind {
        self.public.kind()
    }

    pub(super) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The public half, as an SSH public-key blob and friends.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Signature algorithms this key can make, best first (for RSA: rsa-sha2-512,
    /// rsa-sha2-256, then ssh-rsa with the `legacy` feature). Never empty: a key of a kind the
    /// build leaves out is refused when it is read.
    pub fn sig_algs(&self) -> Vec<SigAlg> {
        SigAlg::for_key_type(self.public.key_type())
    }

    /// Sign `data`, returning the SSH signature blob `string(alg) || string(signature)`.
    #[cfg_attr(not(feature = "rsa"), allow(unused_variables))]
    pub fn sign(&self, alg: SigAlg, data: &[u8], rng: &mut dyn Random) -> Result<Vec<u8>, Error> {
        if alg.key_type() != self.public.key_type() {
            return Err(Error::key(format!(
                "cannot make a {alg} signature with a {} key",
                self.public.key_type()
            )));
        }
        let failed = |what: &str| Error::internal(format!("{alg} signing failed: {what}"));
        let sig = match &self.secret {
            #[cfg(feature = "rsa")]
            Secret::Rsa(k) => {
                let (scheme, hashed) =
                    public::rsa_scheme(alg, data).ok_or_else(|| failed("not an RSA algorithm"))?;
                k.sign_with_rng(&mut CryptoRng(rng), scheme, &hashed)
                    .map_err(|e| failed(&e.to_string()))?
            }
            #[cfg(feature = "legacy")]
            Secret::Dsa(k) => {
                use public::pad_to;
                use sha1::{Digest, Sha1};
                use signature::DigestSigner;
                let hashed = |d: &mut Sha1| {
                    d.update(data);
                    Ok(())
                };
                let sig = DigestSigner::<Sha1, dsa::Signature>::try_sign_digest(k.as_ref(), hashed)
                    .map_err(|_| failed("dsa"))?;
                let r = pad_to::<20>(&sig.r().to_be_bytes()).ok_or_else(|| failed("r too long"))?;
                let s = pad_to::<20>(&sig.s().to_be_bytes()).ok_or_else(|| failed("s too long"))?;
                let mut out = Vec::with_capacity(40);
                out.extend_from_slice(&r);
                out.extend_from_slice(&s);
                out
            }
            Secret::Ed25519(k) => k.sign(data).to_bytes().to_vec(),
            #[cfg(feature = "nistp256")]
            Secret::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(data).map_err(|_| failed("ecdsa"))?;
                let (r, s) = sig.split_bytes();
                let mut w = Writer::new();
                w.mpint(&r).mpint(&s);
                w.into_vec()
            }
        };
        let mut w = Writer::with_capacity(sig.len().saturating_add(32));
        w.str(alg.name()).string(&sig);
        Ok(w.into_vec())
    }

    /// RSA from n, e, d and, when the file has them, p and q. Without p and q (old Dropbear
    /// keys) the `rsa` crate recovers them from (n, e, d) (NIST SP 800-56B rev. 2 appendix
    /// C.2), which needs e > 2^16.
    #[cfg(feature = "rsa")]
    pub(super) fn rsa(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        primes: Option<(&[u8], &[u8])>,
    ) -> Result<PrivateKey, Error> {
        use public::uint;
        let public = PublicKey::from_blob(&public::rsa_blob(e, n))?;
        // Only values of hundreds of megabytes fail to convert; the sizes that matter (d < n,
        // p * q = n) are checked below and by the rsa crate.
        let too_long = || Error::key("RSA private key value too long");
        let (n, e) = (uint(n).ok_or_else(too_long)?, uint(e).ok_or_else(too_long)?);
        let d = Zeroizing::new(uint(d).ok_or_else(too_long)?);
        // Guard the arithmetic of prime recovery (d e - 1 must not underflow).
        if bool::from(d.is_zero()) || *d >= n {
            return Err(Error::key("RSA private exponent out of range"));
        }
        let had_primes = primes.is_some();
        let primes = match primes {
            Some((p, q)) => vec![uint(p).ok_or_else(too_long)?, uint(q).ok_or_else(too_long)?],
            None => Vec::new(),
        };
        let key = rsa::RsaPrivateKey::from_components(n, e, (*d).clone(), primes).map_err(|err| {
            if had_primes {
                Error::key(format!("inconsistent RSA private key: {err}"))
            } else {
                Error::key(format!("RSA key without p and q: cannot recover them: {err}"))
            }
        })?;
        Ok(PrivateKey { secret: Secret::Rsa(Box::new(key)), public })
    }

    /// A key the `rsa` crate made (and checked); the public half is read back from it.
    #[cfg(feature = "rsa")]
    pub(super) fn from_rsa(key: rsa::RsaPrivateKey) -> Result<PrivateKey, Error> {
        use rsa::traits::PublicKeyParts;
        let e = key.e().to_be_bytes();
        let n = key.n().to_be_bytes();
        let public = PublicKey::from_blob(&public::rsa_blob(&e, &n))?;
        Ok(PrivateKey { secret: Secret::Rsa(Box::new(key)), public })
    }

    #[cfg(not(feature = "rsa"))]
    pub(super) fn rsa(_: &[u8], _: &[u8], _: &[u8], _: Option<(&[u8], &[u8])>) -> Result<PrivateKey, Error> {
        Err(KeyKind::Rsa(0).unavailable())
    }

    /// DSA from p, q, g, x and the public y (computed as g^x mod p when the file omits it).
    #[cfg(feature = "legacy")]
    pub(super) fn dsa(
        p: &[u8],
        q: &[u8],
        g: &[u8],
        y: Option<&[u8]>,
        x: &[u8],
    ) -> Result<PrivateKey, Error> {
        use public::{uint, uint_at};
        // x < q and q is 160 bits; checking sizes first keeps g^x mod p cheap and well defined.
        if public::bits(x) > 160 {
            return Err(Error::key("DSA private value x out of range"));
        }
        let computed_y = Zeroizing::new(dsa_public_value(p, g, x).unwrap_or_default());
        let y = y.unwrap_or(&computed_y);
        let public = PublicKey::from_blob(&public::dsa_blob(p, q, g, y))?;
        let verifying = public.dsa_key().ok_or_else(|| Error::internal("DSA key lost its type"))?;
        let q = verifying.components().q();
        // x at q's precision: the `dsa` crate's RFC 6979 nonce derivation expects that width.
        let x = Zeroizing::new(
            uint_at(x, q.bits_precision()).ok_or_else(|| Error::key("DSA private value x out of range"))?,
        );
        if bool::from(x.is_zero()) || *x >= **q {
            return Err(Error::key("DSA private value x out of range"));
        }
        if uint(&computed_y).as_ref() != Some(&**verifying.y()) {
            return Err(Error::key("DSA public value y does not match the private value x"));
        }
        let key = dsa::SigningKey::from_components(verifying.clone(), (*x).clone())
            .map_err(|_| Error::key("unusable DSA private key"))?;
        Ok(PrivateKey { secret: Secret::Dsa(Box::new(key)), public })
    }

    #[cfg(not(feature = "legacy"))]
    pub(super) fn dsa(_: &[u8], _: &[u8], _: &[u8], _: Option<&[u8]>, _: &[u8]) -> Result<PrivateKey, Error> {
        Err(KeyKind::Dsa.unavailable())
    }

    /// Ed25519 from the 32-byte seed; `public`, when the file has it, must match.
    pub(super) fn ed25519(seed: &[u8; 32], public: Option<&[u8]>) -> Result<PrivateKey, Error> {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let derived = key.verifying_key().to_bytes();
        if let Some(given) = public {
            if given != derived {
                return Err(Error::key("ssh-ed25519 public half does not match the private seed"));
            }
        }
        let public = PublicKey::from_blob(&public::ed25519_blob(&derived))?;
        Ok(PrivateKey { secret: Secret::Ed25519(Box::new(key)), public })
    }

    /// ECDSA P-256 from the private scalar; `public` (a SEC1 point), when given, must match.
    #[cfg(feature = "nistp256")]
    pub(super) fn ecdsa_p256(d: &[u8], public: Option<&[u8]>) -> Result<PrivateKey, Error> {
        let scalar = Zeroizing::new(
            public::pad_to::<32>(d).ok_or_else(|| Error::key("ECDSA P-256 private scalar longer than 32 bytes"))?,
        );
        let key = p256::ecdsa::SigningKey::from_slice(scalar.as_slice())
            .map_err(|_| Error::key("ECDSA P-256 private scalar out of range"))?;
        if let Some(given) = public {
            let given = p256::ecdsa::VerifyingKey::from_sec1_bytes(given)
                .map_err(|_| Error::key("ECDSA public point is not on P-256"))?;
            if given != *key.verifying_key() {
                return Err(Error::key("ECDSA public point does not match the private scalar"));
            }
        }
        let point = key.verifying_key().to_sec1_point(false);
        let public = PublicKey::from_blob(&public::p256_blob(point.as_bytes()))?;
        Ok(PrivateKey { secret: Secret::EcdsaP256(Box::new(key)), public })
    }

    #[cfg(not(feature = "nistp256"))]
    pub(super) fn ecdsa_p256(_: &[u8], _: Option<&[u8]>) -> Result<PrivateKey, Error> {
        Err(KeyKind::EcdsaP256.unavailable())
    }
}

/// g^x mod p as a big-endian magnitude, for p of 1024..=3072 bits (anything else is refused by
/// the blob check); constant time in x.
#[cfg(feature = "legacy")]
fn dsa_public_value(p: &[u8], g: &[u8], x: &[u8]) -> Option<Vec<u8>> {
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};
    use public::{uint, uint_at};
    if !(1024..=3072).contains(&public::bits(p)) {
        return None;
    }
    let p = Odd::new(uint(p)?).into_option()?;
    let g = uint_at(g, p.bits_precision())?;
    let x = Zeroizing::new(uint(x)?);
    let params = BoxedMontyParams::new_vartime(p);
    let y: BoxedUint = BoxedMontyForm::new(g, &params).pow(&x).retrieve();
    Some(y.to_be_bytes_trimmed_vartime().into_vec())
}

/// Strip ASCII whitespace from both ends and NULs from the end (a C string's terminator).
fn trim(data: &[u8]) -> &[u8] {
    let start = data.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(data.len());
    let end = data
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(start, |i| i + 1);
    data.get(start..end.max(start)).unwrap_or(&[])
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({} {}, secret hidden)", self.public.key_type(), self.public.fingerprint())
    }
}
