//! Key generation, as `ssh-keygen -t ed25519|ecdsa|rsa` and `dropbearkey -t ...` do it: an
//! Ed25519 seed of 32 random bytes (RFC 8032 section 5.1.5), a P-256 scalar drawn by the `p256`
//! crate (FIPS 186-5 appendix A.2), an RSA key with e = 65537 made by the `rsa` crate (FIPS
//! 186-5 appendix A.1). The randomness comes from the caller (the sans-IO rule); the
//! `PrivateKey::generate` that uses the OS generator lives in `runtime::keygen`. The keys are
//! written out by `openssh.rs` (OpenSSH PROTOCOL.key) and `dropbear.rs` (Dropbear's format).

use zeroize::Zeroizing;

use super::{KeyKind, PrivateKey};
use crate::error::Error;
use crate::random::Random;

/// Smallest RSA modulus [`PrivateKey::generate`] makes, in bits (NIST SP 800-131A's floor
/// for new keys). Smaller keys are still read, down to 1024 bits, for old devices.
pub const RSA_GENERATE_MIN_BITS: usize = 2048;

/// The RSA size to pick when there is no reason for another (ssh-keygen's default).
pub const RSA_DEFAULT_BITS: usize = 3072;

impl PrivateKey {
    /// Generate a new key of `kind` from `rng` (which must be a cryptographically secure
    /// generator). [`PrivateKey::generate`] is the same with the OS generator.
    ///
    /// `KeyKind::Rsa(bits)` needs 2048 <= bits <= 16384 (3072 is the usual choice; generating
    /// takes seconds); DSA keys are not generated (OpenSSH 10 removed them). A kind this build
    /// leaves out is refused with an error naming the cargo feature it needs.
    pub fn generate_with(kind: KeyKind, rng: &mut dyn Random) -> Result<PrivateKey, Error> {
        match kind {
            // Whatever the features: "needs `legacy`" would promise what is not there.
            KeyKind::Dsa => Err(Error::bad_argument(
                "DSA keys are not generated: ssh-dss is obsolete (OpenSSH 10 removed it); \
                 use KeyKind::Ed25519",
            )),
            _ if kind.missing_feature().is_some() => Err(kind.unavailable()),
            KeyKind::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill(seed.as_mut_slice());
                PrivateKey::ed25519(&seed, None)
            }
            KeyKind::EcdsaP256 => generate_p256(rng),
            KeyKind::Rsa(bits) => generate_rsa(bits, rng),
        }
    }
}

#[cfg(feature = "nistp256")]
fn generate_p256(rng: &mut dyn Random) -> Result<PrivateKey, Error> {
    use p256::elliptic_curve::Generate;
    let key = p256::ecdsa::SigningKey::generate_from_rng(&mut crate::random::CryptoRng(rng));
    let scalar = Zeroizing::new(key.to_bytes());
    PrivateKey::ecdsa_p256(scalar.as_slice(), None)
}

#[cfg(not(feature = "nistp256"))]
fn generate_p256(_: &mut dyn Random) -> Result<PrivateKey, Error> {
    Err(KeyKind::EcdsaP256.unavailable())
}

#[cfg(feature = "rsa")]
fn generate_rsa(bits: usize, rng: &mut dyn Random) -> Result<PrivateKey, Error> {
    use super::public::RSA_MAX_BITS;
    if !(RSA_GENERATE_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(Error::bad_argument(format!(
            "cannot generate a {bits}-bit RSA key: the size must be {RSA_GENERATE_MIN_BITS} to \
             {RSA_MAX_BITS} bits ({RSA_DEFAULT_BITS} is the usual choice)"
        )));
    }
    let key = rsa::RsaPrivateKey::new(&mut crate::random::CryptoRng(rng), bits)
        .map_err(|e| Error::internal(format!("RSA key generation failed: {e}")))?;
    PrivateKey::from_rsa(key)
}

#[cfg(not(feature = "rsa"))]
fn generate_rsa(_: usize, _: &mut dyn Random) -> Result<PrivateKey, Error> {
    Err(KeyKind::Rsa(0).unavailable())
}
