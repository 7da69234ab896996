//! Key exchange methods and key derivation: the post-quantum hybrids (module `hybrid`:
//! mlkem768x25519-sha256, sntrup761x25519-sha512), curve25519-sha256 (RFC 8731),
//! ecdh-sha2-nistp256 (RFC 5656 sections 4 and 7), diffie-hellman-group14-sha256 and
//! -group16-sha512 (RFC 8268, RFC 4253 section 8 with the RFC 3526 groups), the exchange hash
//! (RFC 4253 section 8, RFC 5656 section 4; K as a `string` for the hybrids, as in
//! draft-ietf-sshm-mlkem-hybrid-kex, "Shared Secret Encoding") and the key derivation of
//! RFC 4253 section 7.2.

pub mod hybrid;

use crate::algs::Kex;
use crate::error::Error;
use crate::random::Random;
use crate::wire::Writer;
#[cfg(feature = "dh")]
use crypto_bigint::{modular::BoxedMontyParams, BoxedUint};
use sha2::{Digest, Sha256};
#[cfg(any(feature = "dh", feature = "sntrup"))]
use sha2::Sha512;
use zeroize::Zeroizing;

#[cfg(feature = "dh")]
use dh::{dh_pow, group_params, magnitude, DH_EXPONENT_BITS, DH_EXPONENT_BYTES};
#[cfg(all(test, feature = "dh"))]
use dh::group_prime;

/// The finite-field groups (feature `dh`), the one user of big-integer arithmetic here.
#[cfg(feature = "dh")]
mod dh {
    use super::*;
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd, Resize};

    /// RFC 3526 group 14 (2048-bit MODP), generator 2.
    pub(super) const GROUP14_P: &str = "\
        FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
        020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
        4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
        EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
        98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
        9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
        E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
        3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";

    /// RFC 3526 group 16 (4096-bit MODP), generator 2.
    pub(super) const GROUP16_P: &str = "\
        FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
        020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
        4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
        EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
        98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
        9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
        E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
        3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33\
        A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
        ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864\
        D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2\
        08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7\
        88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8\
        DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2\
        233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9\
        93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF";

    /// Bits of the DH private exponent: twice the 256-bit security we ask of the rest.
    pub(super) const DH_EXPONENT_BYTES: usize = 64;
    pub(super) const DH_EXPONENT_BITS: u32 = 8 * DH_EXPONENT_BYTES as u32;

    pub(super) fn group_prime(alg: Kex) -> Option<Odd<BoxedUint>> {
        let hex = match alg {
            Kex::DhGroup14Sha256 => GROUP14_P,
            Kex::DhGroup16Sha512 => GROUP16_P,
            _ => return None,
        };
        let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        BoxedUint::from_str_radix_vartime(&digits, 16).ok()?.into_odd().into_option()
    }

    /// Montgomery parameters of a group's prime (public, so computed in variable time).
    pub(super) fn group_params(alg: Kex) -> Option<BoxedMontyParams> {
        group_prime(alg).map(BoxedMontyParams::new_vartime)
    }

    /// `base^exponent mod p` in constant time (crypto-bigint's Montgomery exponentiation over all
    /// `DH_EXPONENT_BITS` bits of the exponent). `base` must be below p.
    pub(super) fn dh_pow(base: &BoxedUint, exponent: &BoxedUint, params: &BoxedMontyParams) -> Result<BoxedUint, Error> {
        let base = base.try_resize(params.bits_precision()).ok_or_else(|| Error::internal("DH base size"))?;
        Ok(BoxedMontyForm::new(base, params).pow(exponent).retrieve())
    }

    /// The minimal big-endian magnitude of `n` (what the `mpint` encoding starts from).
    pub(super) fn magnitude(n: &BoxedUint) -> Zeroizing<Vec<u8>> {
        let bytes = Zeroizing::new(n.to_be_bytes());
        Zeroizing::new(strip_zeros(&bytes).to_vec())
    }
}

enum Secret {
    X25519(x25519_dalek::StaticSecret),
    #[cfg(feature = "nistp256")]
    P256(p256::ecdh::EphemeralSecret),
    #[cfg(feature = "dh")]
    Dh { x: Zeroizing<BoxedUint>, params: BoxedMontyParams },
    /// Boxed: the KEM decapsulation keys are a few KiB.
    Hybrid(Box<hybrid::Pending>),
}

/// Our half of a key exchange in progress.
pub struct KexPending {
    alg: Kex,
    secret: Secret,
    /// What we send in SSH_MSG_KEX_ECDH_INIT / SSH_MSG_KEXDH_INIT: Q_C, or e as mpint body.
    pub client_value: Vec<u8>,
}

/// The shared secret K: an unsigned big-endian magnitude (encoded as an `mpint`), or for the
/// hybrids the hash output (encoded as a `string`).
pub type SharedSecret = Zeroizing<Vec<u8>>;

impl KexPending {
    pub fn start(alg: Kex, rng: &mut dyn Random) -> Result<KexPending, Error> {
        match alg {
            Kex::Mlkem768X25519Sha256 => Self::start_hybrid(alg, rng),
            #[cfg(feature = "sntrup")]
            Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => Self::start_hybrid(alg, rng),
            Kex::Curve25519Sha256 | Kex::Curve25519Sha256Libssh => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill(&mut seed[..]);
                let secret = x25519_dalek::StaticSecret::from(*seed);
                let public = x25519_dalek::PublicKey::from(&secret);
                Ok(KexPending { alg, client_value: public.as_bytes().to_vec(), secret: Secret::X25519(secret) })
            }
            #[cfg(feature = "nistp256")]
            Kex::EcdhNistp256 => {
                use crate::random::CryptoRng;
                use p256::elliptic_curve::Generate;
                let secret = p256::ecdh::EphemeralSecret::generate_from_rng(&mut CryptoRng(rng));
                let public = p256::Sec1Point::from(secret.public_key());
                Ok(KexPending { alg, client_value: public.as_bytes().to_vec(), secret: Secret::P256(secret) })
            }
            #[cfg(feature = "dh")]
            Kex::DhGroup14Sha256 | Kex::DhGroup16Sha512 => {
                let params = group_params(alg).ok_or_else(|| Error::internal("DH group prime"))?;
                let mut bytes = Zeroizing::new([0u8; DH_EXPONENT_BYTES]);
                rng.fill(&mut bytes[..]);
                if let Some(b) = bytes.first_mut() {
                    *b |= 0x40; // never a tiny exponent
                }
                let x = Zeroizing::new(
                    BoxedUint::from_be_slice(&bytes[..], DH_EXPONENT_BITS)
                        .map_err(|_| Error::internal("DH exponent size"))?,
                );
                let e = dh_pow(&BoxedUint::from(2u8), &x, &params)?;
                Ok(KexPending { alg, client_value: mpint_body(&magnitude(&e)), secret: Secret::Dh { x, params } })
            }
        }
    }

    fn start_hybrid(alg: Kex, rng: &mut dyn Random) -> Result<KexPending, Error> {
        let (pending, client_value) = hybrid::start(alg, rng)?;
        Ok(KexPending { alg, client_value, secret: Secret::Hybrid(Box::new(pending)) })
    }

    pub fn alg(&self) -> Kex {
        self.alg
    }

    /// Combine with the server's value (Q_S, f as an mpint body, or a hybrid's S_REPLY) into K.
    pub fn finish(self, server_value: &[u8]) -> Result<SharedSecret, Error> {
        match self.secret {
            Secret::Hybrid(pending) => pending.finish(server_value),
            Secret::X25519(secret) => {
                let q: [u8; 32] = server_value
                    .try_into()
                    .map_err(|_| Error::crypto(format!("curve25519 public key is {} bytes, not 32", server_value.len())))?;
                let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(q));
                if !shared.was_contributory() {
                    return Err(Error::crypto("curve25519 shared secret is zero (low-order point)"));
                }
                Ok(Zeroizing::new(shared.as_bytes().to_vec()))
            }
            #[cfg(feature = "nistp256")]
            Secret::P256(secret) => {
                let q = p256::PublicKey::from_sec1_bytes(server_value)
                    .map_err(|_| Error::crypto("invalid nistp256 public point from server"))?;
                let shared = secret.diffie_hellman(&q);
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            #[cfg(feature = "dh")]
            Secret::Dh { x, params } => {
                if server_value.first().is_some_and(|b| b & 0x80 != 0) {
                    return Err(Error::crypto("negative DH value f"));
                }
                let out_of_range = || Error::crypto("DH value f out of range");
                // Longer than p (leading zeros aside) is out of range too.
                let f = BoxedUint::from_be_slice(strip_zeros(server_value), params.bits_precision())
                    .map_err(|_| out_of_range())?;
                let one = BoxedUint::one();
                let p_minus_1 = params.modulus().wrapping_sub(&one);
                if f <= one || f >= p_minus_1 {
                    return Err(out_of_range());
                }
                let k = Zeroizing::new(dh_pow(&f, &x, &params)?);
                Ok(magnitude(&k))
            }
        }
    }
}

/// The server's half of a key exchange: its value (Q_S, f, or a hybrid's S_REPLY, checking the
/// client's C_PK) and K. Runs the server side of every method; for the Diffie-Hellman-shaped
/// ones that is the client's computation with the roles swapped.
pub fn server_respond(alg: Kex, client_value: &[u8], rng: &mut dyn Random) -> Result<(Vec<u8>, SharedSecret), Error> {
    if alg.is_hybrid() {
        return hybrid::respond(alg, client_value, rng);
    }
    let ours = KexPending::start(alg, rng)?;
    let value = ours.client_value.clone();
    Ok((value, ours.finish(client_value)?))
}

/// How K enters the exchange hash and the key derivation: `mpint`, or `string` for the hybrids.
fn put_k(w: &mut Writer, alg: Kex, k: &[u8]) {
    if alg.is_hybrid() {
        w.string(k);
    } else {
        w.mpint(k);
    }
}

/// An mpint's string body for an unsigned big-endian magnitude (RFC 4251 section 5).
#[cfg(feature = "dh")]
fn mpint_body(magnitude: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.mpint(magnitude);
    w.buf.get(4..).map(<[u8]>::to_vec).unwrap_or_default()
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let skip = v.iter().take_while(|&&b| b == 0).count();
    v.get(skip..).unwrap_or(&[])
}

#[cfg(feature = "dh")]
fn is_dh(alg: Kex) -> bool {
    matches!(alg, Kex::DhGroup14Sha256 | Kex::DhGroup16Sha512)
}

#[cfg(not(feature = "dh"))]
fn is_dh(_: Kex) -> bool {
    false
}

fn hash(alg: Kex, parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        #[cfg(feature = "dh")]
        Kex::DhGroup16Sha512 => {
            let mut h = Sha512::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
        #[cfg(feature = "sntrup")]
        Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => {
            let mut h = Sha512::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
        _ => {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
    }
}

/// Inputs to the exchange hash H.
pub struct HashInput<'a> {
    pub client_ident: &'a [u8],
    pub server_ident: &'a [u8],
    pub client_kexinit: &'a [u8],
    pub server_kexinit: &'a [u8],
    pub host_key: &'a [u8],
    pub client_value: &'a [u8],
    pub server_value: &'a [u8],
}

/// H = HASH(V_C || V_S || I_C || I_S || K_S || Q_C/e/C_PK || Q_S/f/S_REPLY || K).
pub fn exchange_hash(alg: Kex, input: &HashInput<'_>, k: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(2048);
    w.string(input.client_ident)
        .string(input.server_ident)
        .string(input.client_kexinit)
        .string(input.server_kexinit)
        .string(input.host_key);
    if is_dh(alg) {
        w.mpint(strip_zeros(input.client_value)).mpint(strip_zeros(input.server_value));
    } else {
        w.string(input.client_value).string(input.server_value);
    }
    put_k(&mut w, alg, k);
    let out = hash(alg, &[&w.buf]);
    zeroize::Zeroize::zeroize(&mut w.buf);
    out
}

/// RFC 4253 section 7.2: key `letter` ('A'..='F') of `len` bytes.
pub fn derive_key(alg: Kex, k: &[u8], h: &[u8], letter: u8, session_id: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut kw = Writer::new();
    put_k(&mut kw, alg, k);
    let k_enc = Zeroizing::new(kw.into_vec());
    let mut out = Zeroizing::new(hash(alg, &[&k_enc, h, &[letter], session_id]));
    while out.len() < len {
        let more = hash(alg, &[&k_enc, h, &out]);
        out.extend_from_slice(&more);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;
    #[cfg(feature = "dh")]
    use crypto_bigint::{modular::BoxedMontyForm, Resize};

    #[test]
    #[cfg(feature = "dh")]
    fn groups_are_safe_primes_of_the_right_size() {
        for (alg, bits) in [(Kex::DhGroup14Sha256, 2048), (Kex::DhGroup16Sha512, 4096)] {
            let p = group_prime(alg).unwrap();
            assert_eq!(p.bits(), bits);
            assert_eq!(p.bits_precision(), bits);
            // RFC 3526: the primes start and end with 64 one bits.
            let hex = p.to_string_radix_vartime(16).to_lowercase();
            assert!(hex.starts_with("ffffffffffffffffc90fdaa22168c234"));
            assert!(hex.ends_with("ffffffffffffffff"));
            let one = BoxedUint::one();
            let q = p.wrapping_sub(&one).shr(1);
            // Fermat test, base 2 and 3, on p and (p-1)/2.
            for n in [p.get(), q] {
                let params = BoxedMontyParams::new_vartime(n.clone().into_odd().unwrap());
                for a in [2u8, 3] {
                    let base = BoxedUint::from(a).try_resize(n.bits_precision()).unwrap();
                    let r = BoxedMontyForm::new(base, &params).pow(&n.wrapping_sub(&one)).retrieve();
                    assert_eq!(r, one);
                }
            }
        }
        let p14 = group_prime(Kex::DhGroup14Sha256).unwrap().to_string_radix_vartime(16).to_lowercase();
        assert!(p14.ends_with("15728e5a8aacaa68ffffffffffffffff"));
        let p16 = group_prime(Kex::DhGroup16Sha512).unwrap().to_string_radix_vartime(16).to_lowercase();
        assert!(p16.ends_with("4df435c934063199ffffffffffffffff"));
    }

    /// Two ends of every method agree on K (the server side is simulated with a second
    /// `KexPending`, which computes the same function).
    #[test]
    fn both_sides_agree() {
        let mut rng = TestRng::new(1);
        for alg in Kex::ALL {
            let a = KexPending::start(*alg, &mut rng).unwrap();
            let av = a.client_value.clone();
            let (bv, kb) = server_respond(*alg, &av, &mut rng).unwrap();
            let ka = a.finish(&bv).unwrap();
            assert_eq!(*ka, *kb, "{alg}");
            assert!(!ka.is_empty());
            if alg.is_hybrid() {
                assert_eq!(ka.len(), alg.hash_len(), "{alg}: K is the hash output");
            }
        }
    }

    #[test]
    fn bad_server_values_rejected() {
        let mut rng = TestRng::new(2);
        for bad in [vec![0u8; 31], vec![0u8; 33], vec![0u8; 32]] {
            let a = KexPending::start(Kex::Curve25519Sha256, &mut rng).unwrap();
            assert!(matches!(a.finish(&bad), Err(Error::Crypto(_))), "{}", bad.len());
        }
        #[cfg(feature = "nistp256")]
        {
            let a = KexPending::start(Kex::EcdhNistp256, &mut rng).unwrap();
            assert!(a.finish(&[4u8; 65]).is_err());
        }
    }

    #[test]
    #[cfg(feature = "dh")]
    fn bad_dh_values_rejected() {
        let mut rng = TestRng::new(3);
        for bad in [vec![0u8], vec![1u8], vec![0x80, 1]] {
            let a = KexPending::start(Kex::DhGroup14Sha256, &mut rng).unwrap();
            assert!(a.finish(&bad).is_err());
        }
        let p = group_prime(Kex::DhGroup14Sha256).unwrap();
        let a = KexPending::start(Kex::DhGroup14Sha256, &mut rng).unwrap();
        let p_minus_1 = p.wrapping_sub(BoxedUint::one());
        assert!(a.finish(&mpint_body(&p_minus_1.to_be_bytes())).is_err());
        // More bytes than p is out of range; leading zero bytes do not count.
        let a = KexPending::start(Kex::DhGroup14Sha256, &mut rng).unwrap();
        assert!(matches!(a.finish(&[1u8; 257]), Err(Error::Crypto(m)) if m.contains("out of range")));
        let a = KexPending::start(Kex::DhGroup14Sha256, &mut rng).unwrap();
        let b = KexPending::start(Kex::DhGroup14Sha256, &mut rng).unwrap();
        let mut padded = vec![0u8; 40];
        padded.extend_from_slice(strip_zeros(&b.client_value));
        let av = a.client_value.clone();
        assert_eq!(*a.finish(&padded).unwrap(), *b.finish(&av).unwrap());
    }

    /// RFC 4253 section 7.2 by hand for one key: K1 = HASH(K || H || "A" || session_id),
    /// K2 = HASH(K || H || K1).
    #[test]
    fn kdf_matches_definition() {
        let k = [0x80u8, 1, 2];
        let h = [7u8; 32];
        let sid = [9u8; 32];
        let out = derive_key(Kex::Curve25519Sha256, &k, &h, b'A', &sid, 40);
        let k_enc = [0, 0, 0, 4, 0, 0x80, 1, 2];
        let k1 = Sha256::new().chain_update(k_enc).chain_update(h).chain_update(b"A").chain_update(sid).finalize();
        let k2 = Sha256::new().chain_update(k_enc).chain_update(h).chain_update(k1).finalize();
        assert_eq!(&out[..32], &k1[..]);
        assert_eq!(&out[32..], &k2[..8]);
        #[cfg(feature = "dh")]
        {
            let out512 = derive_key(Kex::DhGroup16Sha512, &k, &h, b'C', &sid, 64);
            let e = Sha512::new().chain_update(k_enc).chain_update(h).chain_update(b"C").chain_update(sid).finalize();
            assert_eq!(&out512[..], &e[..]);
        }
    }

    /// draft-ietf-sshm-mlkem-hybrid-kex, "Shared Secret Encoding": K is a `string` in H and in
    /// the KDF (an `mpint` would add a zero byte before a K with its top bit set, and strip
    /// leading zeros).
    #[test]
    fn hybrid_k_is_a_string_in_the_hash_and_the_kdf() {
        let k = [0x80u8, 0, 1];
        let input = HashInput {
            client_ident: b"SSH-2.0-a",
            server_ident: b"SSH-2.0-b",
            client_kexinit: b"ic",
            server_kexinit: b"is",
            host_key: b"ks",
            client_value: &[0x00, 0x80],
            server_value: &[0x05],
        };
        let h = exchange_hash(Kex::Mlkem768X25519Sha256, &input, &k);
        let mut w = Writer::new();
        w.str("SSH-2.0-a").str("SSH-2.0-b").str("ic").str("is").str("ks");
        w.string(&[0x00, 0x80]).string(&[5]).string(&k);
        assert_eq!(h, Sha256::digest(&w.buf).to_vec());
        assert_ne!(h, exchange_hash(Kex::Curve25519Sha256, &input, &k));
        let sid = [9u8; 32];
        let out = derive_key(Kex::Mlkem768X25519Sha256, &k, &h, b'A', &sid, 32);
        let k_enc = [0, 0, 0, 3, 0x80, 0, 1];
        let e = Sha256::new().chain_update(k_enc).chain_update(&h).chain_update(b"A").chain_update(sid).finalize();
        assert_eq!(&out[..], &e[..]);
        #[cfg(feature = "sntrup")]
        for alg in [Kex::Sntrup761X25519Sha512, Kex::Sntrup761X25519Sha512Openssh] {
            let h = exchange_hash(alg, &input, &k);
            assert_eq!(h, Sha512::digest(&w.buf).to_vec(), "{alg}");
            let out = derive_key(alg, &k, &h, b'C', &sid, 64);
            let e = Sha512::new().chain_update(k_enc).chain_update(&h).chain_update(b"C").chain_update(sid).finalize();
            assert_eq!(&out[..], &e[..], "{alg}");
        }
    }

    #[test]
    #[cfg(feature = "dh")]
    fn exchange_hash_encodes_dh_values_as_mpint() {
        let input = HashInput {
            client_ident: b"SSH-2.0-a",
            server_ident: b"SSH-2.0-b",
            client_kexinit: b"ic",
            server_kexinit: b"is",
            host_key: b"ks",
            client_value: &[0x00, 0x80],
            server_value: &[0x05],
        };
        let h = exchange_hash(Kex::DhGroup14Sha256, &input, &[1]);
        let mut w = Writer::new();
        w.str("SSH-2.0-a").str("SSH-2.0-b").str("ic").str("is").str("ks");
        w.mpint(&[0x80]).mpint(&[5]).mpint(&[1]);
        assert_eq!(h, Sha256::digest(&w.buf).to_vec());
        let h2 = exchange_hash(Kex::Curve25519Sha256, &input, &[1]);
        let mut w = Writer::new();
        w.str("SSH-2.0-a").str("SSH-2.0-b").str("ic").str("is").str("ks");
        w.string(&[0x00, 0x80]).string(&[5]).mpint(&[1]);
        assert_eq!(h2, Sha256::digest(&w.buf).to_vec());
    }
}
