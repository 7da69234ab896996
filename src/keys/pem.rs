//! Text key formats: format detection, OpenSSH's `OPENSSH PRIVATE KEY` (handed to
//! `openssh.rs`) and PEM (RFC 7468) around DER: PKCS#1 `RSA PRIVATE KEY` (RFC 8017
//! appendix A.1.2), OpenSSL's `DSA PRIVATE KEY` (SEQUENCE of version, p, q, g, y, x), SEC1
//! `EC PRIVATE KEY` (RFC 5915) and PKCS#8 `PRIVATE KEY` (RFC 5208 / RFC 5958) holding RSA
//! (RFC 8017), DSA (RFC 3279 section 2.3.2), EC (RFC 5480) or Ed25519 (RFC 8410) keys.
//! DER is parsed with the `der`, `pkcs8`, `sec1` and (through `rsa`) `pkcs1` crates; the key
//! values then go to the constructors in `private.rs`.

use pkcs8::der::asn1::{OctetStringRef, UintRef};
use pkcs8::der::{self, Decode, Reader as _, SliceReader};
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use zeroize::Zeroizing;

use super::{openssh, shown_name, unsupported_type, KeyKind, PrivateKey};
use crate::error::Error;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

const NOT_PRIVATE: &str = "not a private key (looks like a public key)";

/// Parse trimmed, non-empty text.
pub(super) fn parse(text: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Err(Error::key("unrecognised private key format (binary data, not a Dropbear key)"));
    };
    if let Some(label) = pem_label(text) {
        return pem(label, text, passphrase);
    }
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY") {
        return Err(Error::key(NOT_PRIVATE));
    }
    if text.starts_with("PuTTY-User-Key-File-") {
        return Err(Error::key(
            "PuTTY keys are not supported: export the key in OpenSSH format with puttygen",
        ));
    }
    let first = text.split_whitespace().next().unwrap_or("");
    if KeyKind::from_key_type(first).is_some()
        || first.starts_with("ssh-")
        || first.starts_with("ecdsa-sha2-")
        || first.starts_with("sk-")
    {
        return Err(Error::key(NOT_PRIVATE));
    }
    Err(Error::key("unrecognised private key format"))
}

/// The label of a text starting "-----BEGIN LABEL-----".
fn pem_label(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("-----BEGIN ")?;
    rest.split_once("-----").map(|(label, _)| label)
}

fn pem(label: &str, text: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
    match label {
        "OPENSSH PRIVATE KEY" => openssh::parse(text, passphrase),
        "RSA PRIVATE KEY" | "DSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => {
            if text.contains("Proc-Type:") {
                return Err(Error::key(
                    "encrypted PEM keys (OpenSSL's legacy encryption) are not supported: \
                     convert with `ssh-keygen -p -f FILE` to OpenSSH's format",
                ));
            }
            let (_, der) = der::pem::decode_vec(text.as_bytes())
                .map_err(|e| Error::key(format!("malformed PEM {label}: {e}")))?;
            let der = Zeroizing::new(der);
            match label {
                "RSA PRIVATE KEY" => pkcs1_rsa(&der),
                "DSA PRIVATE KEY" => openssl_dsa(&der),
                "EC PRIVATE KEY" => sec1_ec(&der, None),
                _ => pkcs8(&der),
            }
        }
        // `openssl ecparam -genkey` writes the curve first, then the key.
        "EC PARAMETERS" => {
            let end = "-----END EC PARAMETERS-----";
            let rest = text.split_once(end).map(|(_, r)| r.trim()).unwrap_or("");
            match pem_label(rest) {
                Some(next) if next != "EC PARAMETERS" => pem(next, rest, passphrase),
                _ => Err(Error::key("PEM EC PARAMETERS without a private key")),
            }
        }
        "ENCRYPTED PRIVATE KEY" => Err(Error::key(
            "encrypted PKCS#8 keys are not supported: convert with `ssh-keygen -p -f FILE` \
             to OpenSSH's format",
        )),
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "DSA PUBLIC KEY" | "EC PUBLIC KEY" | "SSH2 PUBLIC KEY" => {
            Err(Error::key(NOT_PRIVATE))
        }
        "CERTIFICATE" => Err(Error::key("not a private key (looks like an X.509 certificate)")),
        other => Err(Error::key(format!("unsupported PEM type {}", shown_name(other.as_bytes())))),
    }
}

fn der_err(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |e| Error::key(format!("malformed {what}: {e}"))
}

#[cfg(not(feature = "rsa"))]
fn pkcs1_rsa(_: &[u8]) -> Result<PrivateKey, Error> {
    Err(KeyKind::Rsa(0).unavailable())
}

#[cfg(feature = "rsa")]
fn pkcs1_rsa(der: &[u8]) -> Result<PrivateKey, Error> {
    let k = rsa::pkcs1::RsaPrivateKeyRef::from_der(der).map_err(der_err("PKCS#1 RSA key"))?;
    if k.other_prime_infos.is_some() {
        return Err(Error::key("multi-prime RSA keys are not supported"));
    }
    PrivateKey::rsa(
        k.modulus.as_bytes(),
        k.public_exponent.as_bytes(),
        k.private_exponent.as_bytes(),
        Some((k.prime1.as_bytes(), k.prime2.as_bytes())),
    )
}

/// OpenSSL's traditional DSA key: SEQUENCE { version 0, p, q, g, y, x }.
fn openssl_dsa(der: &[u8]) -> Result<PrivateKey, Error> {
    let what = "OpenSSL DSA key";
    let mut reader = SliceReader::new(der).map_err(der_err(what))?;
    let (version, p, q, g, y, x) = reader
        .sequence(|s| {
            Ok((
                UintRef::decode(s)?,
                UintRef::decode(s)?,
                UintRef::decode(s)?,
                UintRef::decode(s)?,
                UintRef::decode(s)?,
                UintRef::decode(s)?,
            ))
        })
        .map_err(der_err(what))?;
    reader.finish().map_err(der_err(what))?;
    if version.as_bytes().iter().any(|&b| b != 0) {
        return Err(Error::key("malformed OpenSSL DSA key: version is not 0"));
    }
    PrivateKey::dsa(p.as_bytes(), q.as_bytes(), g.as_bytes(), Some(y.as_bytes()), x.as_bytes())
}

/// SEC1 ECPrivateKey; `outer` is the curve named by a PKCS#8 wrapper, if any.
fn sec1_ec(der: &[u8], outer: Option<ObjectIdentifier>) -> Result<PrivateKey, Error> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(der_err("SEC1 EC key"))?;
    let inner = k.parameters.and_then(|p| p.named_curve());
    let curve = match (inner, outer) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::key("malformed PKCS#8 EC key: two different curves"));
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(Error::key("malformed SEC1 EC key: no curve named")),
    };
    match curve {
        OID_P256 => PrivateKey::ecdsa_p256(k.private_key, k.public_key),
        OID_P384 => Err(unsupported_type(b"ecdsa-sha2-nistp384")),
        OID_P521 => Err(unsupported_type(b"ecdsa-sha2-nistp521")),
        other => Err(Error::key(format!("unsupported key type: EC key on curve {other}"))),
    }
}

fn pkcs8(der: &[u8]) -> Result<PrivateKey, Error> {
    let what = "PKCS#8 key";
    let info = PrivateKeyInfoRef::from_der(der).map_err(der_err(what))?;
    let private_key = info.private_key.as_bytes();
    // The optional publicKey is a BIT STRING; a key is a whole number of bytes.
    let public_key = match info.public_key {
        Some(bits) => Some(
            bits.as_bytes()
                .ok_or_else(|| Error::key("malformed PKCS#8 key: public key is not whole bytes"))?,
        ),
        None => None,
    };
    match info.algorithm.oid {
        OID_RSA => pkcs1_rsa(private_key),
        OID_EC => {
            let curve = info.algorithm.parameters_oid().ok();
            sec1_ec(private_key, curve)
        }
        OID_DSA => {
            // Parameters: Dss-Parms ::= SEQUENCE { p, q, g } (RFC 3279 section 2.3.2). The
            // values are checked by `PrivateKey::dsa`, like those of every other format.
            let params = info
                .algorithm
                .parameters_any()
                .map_err(|_| Error::key("malformed PKCS#8 DSA key: no parameters"))?;
            let (p, q, g) = params
                .sequence(|s| Ok::<_, der::Error>((UintRef::decode(s)?, UintRef::decode(s)?, UintRef::decode(s)?)))
                .map_err(der_err(what))?;
            let x = UintRef::from_der(private_key).map_err(der_err(what))?;
            let y = match public_key {
                Some(b) => Some(UintRef::from_der(b).map_err(der_err(what))?),
                None => None,
            };
            PrivateKey::dsa(p.as_bytes(), q.as_bytes(), g.as_bytes(), y.as_ref().map(|y| y.as_bytes()), x.as_bytes())
        }
        OID_ED25519 => {
            // CurvePrivateKey ::= OCTET STRING (RFC 8410 section 7), inside privateKey.
            let seed = <&OctetStringRef>::from_der(private_key).map_err(der_err(what))?;
            let seed: Zeroizing<[u8; 32]> =
                Zeroizing::new(seed.as_bytes().try_into().map_err(|_| {
                    Error::key("malformed PKCS#8 Ed25519 key: private key is not 32 bytes")
                })?);
            PrivateKey::ed25519(&seed, public_key)
        }
        OID_ED448 => Err(unsupported_type(b"ssh-ed448")),
        other => Err(Error::key(format!("unsupported key type: PKCS#8 algorithm {other}"))),
    }
}
