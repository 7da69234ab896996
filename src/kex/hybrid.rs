//! Post-quantum hybrid key exchange: `mlkem768x25519-sha256` (draft-ietf-sshm-mlkem-hybrid-kex,
//! its "Key Exchange Method" and "Shared Secret Encoding" sections, as OpenSSH's
//! `kexmlkem768x25519.c` implements them) and `sntrup761x25519-sha512` /
//! `sntrup761x25519-sha512@openssh.com` (draft-ietf-sshm-ntruprime-ssh, formerly
//! draft-josefsson-ntruprime-ssh; OpenSSH's `kexsntrup761x25519.c`).
//!
//! Both have the ECDH message shape (SSH_MSG_KEX_ECDH_INIT / _REPLY, RFC 5656 section 4): the
//! client sends C_PK = KEM encapsulation key || X25519 public key, the server replies
//! S_REPLY = KEM ciphertext || X25519 public key. The X25519 result is used raw (not as an
//! mpint) and refused when all zero; K = HASH(K_PQ || K_CL), a 32- or 64-byte hash output that
//! the exchange hash and the key derivation take as an SSH `string`, not an `mpint`.
//!
//! The KEMs come from RustCrypto's `ml-kem` (FIPS 203) and, with the `sntrup` feature, the
//! `sntrup` crate; their key pairs are drawn from our own `Random`.

use ml_kem::kem::{Decapsulate, Encapsulate, KeyExport};
use ml_kem::MlKem768;
use sha2::{Digest, Sha256};
#[cfg(feature = "sntrup")]
use sha2::Sha512;
use zeroize::{Zeroize, Zeroizing};

use super::SharedSecret;
use crate::algs::Kex;
use crate::error::Error;
use crate::random::{CryptoRng, Random};

/// X25519 public key length.
pub const X25519_LEN: usize = 32;
/// ML-KEM-768 encapsulation key and ciphertext lengths (FIPS 203 table 3).
pub const MLKEM768_PK_LEN: usize = 1184;
pub const MLKEM768_CT_LEN: usize = 1088;
/// sntrup761 public key and ciphertext lengths.
#[cfg(feature = "sntrup")]
pub const SNTRUP761_PK_LEN: usize = sntrup::sntrup761::PUBLIC_KEY_SIZE;
#[cfg(feature = "sntrup")]
pub const SNTRUP761_CT_LEN: usize = sntrup::sntrup761::CIPHERTEXT_SIZE;

/// Which KEM a hybrid method uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kem {
    MlKem768,
    #[cfg(feature = "sntrup")]
    Sntrup761,
}

impl Kem {
    fn of(alg: Kex) -> Option<Kem> {
        match alg {
            Kex::Mlkem768X25519Sha256 => Some(Kem::MlKem768),
            #[cfg(feature = "sntrup")]
            Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => Some(Kem::Sntrup761),
            _ => None,
        }
    }
    fn pk_len(self) -> usize {
        match self {
            Kem::MlKem768 => MLKEM768_PK_LEN,
            #[cfg(feature = "sntrup")]
            Kem::Sntrup761 => SNTRUP761_PK_LEN,
        }
    }
    fn ct_len(self) -> usize {
        match self {
            Kem::MlKem768 => MLKEM768_CT_LEN,
            #[cfg(feature = "sntrup")]
            Kem::Sntrup761 => SNTRUP761_CT_LEN,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kem::MlKem768 => "ML-KEM-768",
            #[cfg(feature = "sntrup")]
            Kem::Sntrup761 => "sntrup761",
        }
    }
}

/// The client's length of C_PK for a hybrid method.
pub fn client_value_len(alg: Kex) -> Option<usize> {
    Kem::of(alg).map(|k| k.pk_len() + X25519_LEN)
}

/// The server's length of S_REPLY for a hybrid method.
pub fn server_value_len(alg: Kex) -> Option<usize> {
    Kem::of(alg).map(|k| k.ct_len() + X25519_LEN)
}

// Not boxed per variant: the whole `Pending` is boxed inside `KexPending`.
#[allow(clippy::large_enum_variant)]
enum Decap {
    MlKem768(ml_kem::DecapsulationKey<MlKem768>),
    #[cfg(feature = "sntrup")]
    Sntrup761(sntrup::sntrup761::DecapsulationKey),
}

/// Our half of a hybrid exchange: the KEM decapsulation key and the X25519 secret (both wiped
/// on drop by their crates).
pub struct Pending {
    alg: Kex,
    kem: Decap,
    x25519: x25519_dalek::StaticSecret,
}

fn x25519_secret(rng: &mut dyn Random) -> x25519_dalek::StaticSecret {
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill(&mut seed[..]);
    x25519_dalek::StaticSecret::from(*seed)
}

/// Start a hybrid exchange: the key pairs and C_PK.
pub fn start(alg: Kex, rng: &mut dyn Random) -> Result<(Pending, Vec<u8>), Error> {
    let kem = Kem::of(alg).ok_or_else(|| Error::internal(format!("{alg} is not a hybrid method")))?;
    let mut value = Vec::with_capacity(kem.pk_len() + X25519_LEN);
    let decap = match kem {
        Kem::MlKem768 => {
            let mut seed = ml_kem::Seed::default();
            rng.fill(&mut seed[..]);
            let dk = ml_kem::DecapsulationKey::<MlKem768>::from_seed(seed);
            seed.zeroize();
            value.extend_from_slice(&dk.encapsulation_key().to_bytes()[..]);
            Decap::MlKem768(dk)
        }
        #[cfg(feature = "sntrup")]
        Kem::Sntrup761 => {
            let (ek, dk) = sntrup::sntrup761::generate_key(&mut CryptoRng(rng));
            value.extend_from_slice(ek.as_ref());
            Decap::Sntrup761(dk)
        }
    };
    let x25519 = x25519_secret(rng);
    value.extend_from_slice(x25519_dalek::PublicKey::from(&x25519).as_bytes());
    if value.len() != kem.pk_len() + X25519_LEN {
        return Err(Error::internal(format!("{alg}: our {} public key has the wrong length", kem.name())));
    }
    Ok((Pending { alg, kem: decap, x25519 }, value))
}

/// Split a peer's KEM part || X25519 part, checking the length.
fn split<'a>(alg: Kex, what: &str, value: &'a [u8], kem_len: usize) -> Result<(&'a [u8], [u8; 32]), Error> {
    let want = kem_len + X25519_LEN;
    if value.len() != want {
        return Err(Error::crypto(format!(
            "{alg}: {what} is {} bytes, not {want} ({kem_len} + {X25519_LEN})",
            value.len()
        )));
    }
    let (kem_part, x) = value.split_at_checked(kem_len).ok_or_else(|| Error::internal("KEM part length"))?;
    let x: [u8; 32] = x.try_into().map_err(|_| Error::internal("X25519 part length"))?;
    Ok((kem_part, x))
}

/// The raw X25519 shared secret; all zero (a low-order peer point) is refused.
fn x25519_shared(alg: Kex, secret: &x25519_dalek::StaticSecret, peer: [u8; 32]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if !shared.was_contributory() {
        return Err(Error::crypto(format!("{alg}: X25519 shared secret is zero (low-order point)")));
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}

/// K = HASH(K_PQ || K_CL), as the string body (SHA-256 or SHA-512 by method).
fn combine(alg: Kex, k_pq: &[u8], k_cl: &[u8]) -> SharedSecret {
    match alg {
        #[cfg(feature = "sntrup")]
        Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => {
            let mut d = Sha512::new().chain_update(k_pq).chain_update(k_cl).finalize();
            let k = Zeroizing::new(d.to_vec());
            d.zeroize();
            k
        }
        _ => {
            let mut d = Sha256::new().chain_update(k_pq).chain_update(k_cl).finalize();
            let k = Zeroizing::new(d.to_vec());
            d.zeroize();
            k
        }
    }
}

impl Pending {
    /// Client side: decapsulate S_REPLY's ciphertext, finish X25519, combine into K.
    pub fn finish(self, server_value: &[u8]) -> Result<SharedSecret, Error> {
        let alg = self.alg;
        let mut k_pq = Zeroizing::new([0u8; 32]);
        let x = match &self.kem {
            Decap::MlKem768(dk) => {
                let (ct, x) = split(alg, "server reply (ciphertext || X25519 key)", server_value, MLKEM768_CT_LEN)?;
                let mut ss = dk
                    .decapsulate_slice(ct)
                    .map_err(|_| Error::crypto(format!("{alg}: ML-KEM-768 ciphertext is not {MLKEM768_CT_LEN} bytes")))?;
                k_pq.copy_from_slice(&ss[..]);
                ss.zeroize();
                x
            }
            #[cfg(feature = "sntrup")]
            Decap::Sntrup761(dk) => {
                let (ct, x) = split(alg, "server reply (ciphertext || X25519 key)", server_value, SNTRUP761_CT_LEN)?;
                let ct = sntrup::sntrup761::Ciphertext::try_from(ct)
                    .map_err(|_| Error::crypto(format!("{alg}: sntrup761 ciphertext is not {SNTRUP761_CT_LEN} bytes")))?;
                let ss = dk.decapsulate(&ct);
                let ss: &[u8] = ss.as_ref();
                k_pq.copy_from_slice(ss.get(..32).ok_or_else(|| Error::internal("sntrup761 shared secret length"))?);
                x
            }
        };
        let k_cl = x25519_shared(alg, &self.x25519, x)?;
        Ok(combine(alg, &k_pq[..], &k_cl[..]))
    }
}

/// Server side: check C_PK, encapsulate to its KEM key, answer with S_REPLY, and combine K.
pub fn respond(alg: Kex, client_value: &[u8], rng: &mut dyn Random) -> Result<(Vec<u8>, SharedSecret), Error> {
    let kem = Kem::of(alg).ok_or_else(|| Error::internal(format!("{alg} is not a hybrid method")))?;
    let what = "client value (public key || X25519 key)";
    let (pk, x) = split(alg, what, client_value, kem.pk_len())?;
    let mut k_pq = Zeroizing::new([0u8; 32]);
    let mut reply = Vec::with_capacity(kem.ct_len() + X25519_LEN);
    match kem {
        Kem::MlKem768 => {
            let key = ml_kem::Key::<ml_kem::EncapsulationKey<MlKem768>>::try_from(pk)
                .map_err(|_| Error::internal("ML-KEM-768 key length"))?;
            // FIPS 203 section 7.2 input check (coefficients below q), as OpenSSH does.
            let ek = ml_kem::EncapsulationKey::<MlKem768>::new(&key)
                .map_err(|_| Error::crypto(format!("{alg}: invalid ML-KEM-768 encapsulation key")))?;
            let (ct, mut ss) = ek.encapsulate_with_rng(&mut CryptoRng(rng));
            k_pq.copy_from_slice(&ss[..]);
            ss.zeroize();
            reply.extend_from_slice(&ct[..]);
        }
        #[cfg(feature = "sntrup")]
        Kem::Sntrup761 => {
            let ek = sntrup::sntrup761::EncapsulationKey::try_from(pk)
                .map_err(|_| Error::crypto(format!("{alg}: invalid sntrup761 public key")))?;
            let (ct, ss) = ek.encapsulate(&mut CryptoRng(rng));
            let ss: &[u8] = ss.as_ref();
            k_pq.copy_from_slice(ss.get(..32).ok_or_else(|| Error::internal("sntrup761 shared secret length"))?);
            reply.extend_from_slice(ct.as_ref());
        }
    }
    let secret = x25519_secret(rng);
    let k_cl = x25519_shared(alg, &secret, x)?;
    reply.extend_from_slice(x25519_dalek::PublicKey::from(&secret).as_bytes());
    Ok((reply, combine(alg, &k_pq[..], &k_cl[..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;

    fn hybrids() -> Vec<Kex> {
        Kex::ALL.iter().copied().filter(|k| k.is_hybrid()).collect()
    }

    #[test]
    fn wire_lengths_are_openssh_ones() {
        assert_eq!(client_value_len(Kex::Mlkem768X25519Sha256), Some(1184 + 32));
        assert_eq!(server_value_len(Kex::Mlkem768X25519Sha256), Some(1088 + 32));
        #[cfg(feature = "sntrup")]
        for alg in [Kex::Sntrup761X25519Sha512, Kex::Sntrup761X25519Sha512Openssh] {
            assert_eq!(client_value_len(alg), Some(1158 + 32));
            assert_eq!(server_value_len(alg), Some(1039 + 32));
        }
        assert_eq!(client_value_len(Kex::Curve25519Sha256), None);
        let mut rng = TestRng::new(11);
        for alg in hybrids() {
            let (_, v) = start(alg, &mut rng).unwrap();
            assert_eq!(Some(v.len()), client_value_len(alg), "{alg}");
            let (_, v2) = start(alg, &mut rng).unwrap();
            assert_ne!(v, v2, "{alg}: fresh keys every time");
            let (p, v) = start(alg, &mut rng).unwrap();
            let (reply, k) = respond(alg, &v, &mut rng).unwrap();
            assert_eq!(Some(reply.len()), server_value_len(alg), "{alg}");
            assert_eq!(*p.finish(&reply).unwrap(), *k, "{alg}");
        }
    }

    /// The same seed gives the same key pair: the key pairs come from our `Random` only.
    #[test]
    fn key_pairs_come_from_our_rng() {
        for alg in hybrids() {
            let (_, a) = start(alg, &mut TestRng::new(3)).unwrap();
            let (_, b) = start(alg, &mut TestRng::new(3)).unwrap();
            assert_eq!(a, b, "{alg}");
        }
    }

    #[test]
    fn wrong_length_server_values_are_refused_by_name() {
        let mut rng = TestRng::new(12);
        for alg in hybrids() {
            let n = server_value_len(alg).unwrap();
            for len in [0, 32, n - 1, n + 1, n - 32, 2 * n] {
                let (p, _) = start(alg, &mut rng).unwrap();
                let e = p.finish(&vec![7u8; len]).unwrap_err();
                assert!(matches!(&e, Error::Crypto(m) if m.contains(&format!("is {len} bytes, not {n}"))), "{alg} {len}: {e}");
            }
        }
    }

    #[test]
    fn all_zero_x25519_shares_are_refused() {
        let mut rng = TestRng::new(13);
        for alg in hybrids() {
            // Server side: a real reply with its X25519 part replaced by the zero point (and by
            // a point of order 8, which gives the same all-zero result).
            for bad_x in [[0u8; 32], {
                let mut p = [0u8; 32];
                p[0] = 1;
                p
            }] {
                let (p, v) = start(alg, &mut rng).unwrap();
                let (mut reply, _) = respond(alg, &v, &mut rng).unwrap();
                let at = reply.len() - 32;
                reply[at..].copy_from_slice(&bad_x);
                let e = p.finish(&reply).unwrap_err();
                assert!(matches!(&e, Error::Crypto(m) if m.contains("X25519 shared secret is zero")), "{alg}: {e}");
                // Client side, as a server sees it.
                let (_, mut v) = start(alg, &mut rng).unwrap();
                let at = v.len() - 32;
                v[at..].copy_from_slice(&bad_x);
                let e = respond(alg, &v, &mut rng).unwrap_err();
                assert!(matches!(&e, Error::Crypto(m) if m.contains("X25519 shared secret is zero")), "{alg}: {e}");
            }
        }
    }

    #[test]
    fn bad_client_values_are_refused_by_the_server_side() {
        let mut rng = TestRng::new(14);
        for alg in hybrids() {
            let n = client_value_len(alg).unwrap();
            for len in [0, 32, n - 1, n + 1] {
                let e = respond(alg, &vec![9u8; len], &mut rng).unwrap_err();
                assert!(matches!(&e, Error::Crypto(m) if m.contains(&format!("is {len} bytes, not {n}"))), "{alg} {len}: {e}");
            }
        }
        // FIPS 203 section 7.2: coefficients of 4095 (>= q = 3329) are not an encapsulation key.
        let (_, mut v) = start(Kex::Mlkem768X25519Sha256, &mut rng).unwrap();
        v[..3].fill(0xff);
        let e = respond(Kex::Mlkem768X25519Sha256, &v, &mut rng).unwrap_err();
        assert!(matches!(&e, Error::Crypto(m) if m.contains("invalid ML-KEM-768 encapsulation key")), "{e}");
    }

    /// A corrupted ciphertext of the right size is not an error (implicit rejection): it just
    /// gives another K, so the exchange hash signature fails later.
    #[test]
    fn corrupted_ciphertext_gives_a_different_k() {
        let mut rng = TestRng::new(15);
        for alg in hybrids() {
            let (p, v) = start(alg, &mut rng).unwrap();
            let (mut reply, k) = respond(alg, &v, &mut rng).unwrap();
            reply[5] ^= 0x10;
            let k2 = p.finish(&reply).unwrap();
            assert_ne!(*k2, *k, "{alg}");
        }
    }
}
