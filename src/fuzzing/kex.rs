//! The `kex` fuzz target (HOSTILE.md "Fuzz targets": kex reply): the key exchange values of
//! every method, both ways: as the server's Q_S / f / S_REPLY handed to the client's
//! `KexPending::finish`, and as the client's Q_C / e / C_PK handed to `kex::server_respond`
//! (RFC 4253 section 8, RFC 5656 section 4, draft-ietf-sshm-mlkem-hybrid-kex).

use super::FuzzRng;
use crate::algs::Kex;
use crate::error::Error;
use crate::kex::{hybrid, server_respond, KexPending};

// Stand-ins for methods a build leaves out, so the table keeps its length (and the committed
// corpus its meaning).
#[cfg(feature = "sntrup")]
const SNTRUP: Kex = Kex::Sntrup761X25519Sha512;
#[cfg(not(feature = "sntrup"))]
const SNTRUP: Kex = Kex::Mlkem768X25519Sha256;
#[cfg(feature = "sntrup")]
const SNTRUP_OPENSSH: Kex = Kex::Sntrup761X25519Sha512Openssh;
#[cfg(not(feature = "sntrup"))]
const SNTRUP_OPENSSH: Kex = Kex::Mlkem768X25519Sha256;

/// The methods of the `kex` target, selected by the first byte (bits 1-7, mod the length).
pub fn kex_methods() -> [Kex; 6] {
    [Kex::Mlkem768X25519Sha256, SNTRUP, SNTRUP_OPENSSH, Kex::Curve25519Sha256, super::ECDH, super::DH14]
}

/// Seed of the client's key pair in the `kex` target (the corpus writer uses it too).
pub const KEX_CLIENT_SEED: u64 = 0x6b;

fn check_error(alg: Kex, e: &Error, len: usize, expected: Option<usize>) {
    assert!(matches!(e, Error::Crypto(_)), "{alg}: a bad peer value is a crypto error, not {e:?}");
    if alg.is_hybrid() {
        let text = e.to_string();
        assert!(text.contains(alg.name()), "{alg}: error does not name the method: {text}");
        // Of the right length, only the X25519 part (or ML-KEM's key check) can be refused.
        if Some(len) == expected {
            assert!(text.contains("X25519") || text.contains("ML-KEM-768"), "{alg}: {len} bytes refused: {text}");
        }
    }
}

/// Byte 0: bit 0 = role (0: the data is the server's value for our client; 1: the data is a
/// client's value for `server_respond`), bits 1-7 pick the method. The rest is the value.
/// Checks: errors are crypto errors naming the method; a hybrid accepts exactly its length;
/// K is the hash output for the hybrids; the result does not depend on anything but the data
/// and the generator (run twice, same K).
pub fn kex(data: &[u8]) {
    let Some((&sel, value)) = data.split_first() else { return };
    let methods = kex_methods();
    let alg = methods[usize::from(sel >> 1) % methods.len()];
    let run = || {
        if sel & 1 == 0 {
            let ours = KexPending::start(alg, &mut FuzzRng::new(KEX_CLIENT_SEED)).expect("kex start");
            ours.finish(value).map(|k| (Vec::new(), k))
        } else {
            server_respond(alg, value, &mut FuzzRng::new(KEX_CLIENT_SEED + 1))
        }
    };
    let expected = if sel & 1 == 0 { hybrid::server_value_len(alg) } else { hybrid::client_value_len(alg) };
    match run() {
        Ok((reply, k)) => {
            assert!(!k.is_empty(), "{alg}: empty K");
            if alg.is_hybrid() {
                assert_eq!(Some(value.len()), expected, "{alg}: accepted a value of the wrong length");
                assert_eq!(k.len(), alg.hash_len(), "{alg}: K is not the hash output");
                if sel & 1 == 1 {
                    assert_eq!(Some(reply.len()), hybrid::server_value_len(alg), "{alg}: reply length");
                }
            }
            let again = run().expect("same input, same generator: accepted again");
            assert_eq!(*again.1, *k, "{alg}: K depends on more than the input");
            assert_eq!(again.0, reply, "{alg}: reply depends on more than the input");
        }
        Err(e) => check_error(alg, &e, value.len(), expected),
    }
}
