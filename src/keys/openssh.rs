//! OpenSSH's private-key format (OpenSSH PROTOCOL.key): base64 between
//! `-----BEGIN/END OPENSSH PRIVATE KEY-----` of
//!
//! ```text
//! "openssh-key-v1\0" string cipher, string kdf, string kdf-options, uint32 1 (keys),
//! string public-key blob, string private section (encrypted unless cipher is "none")
//! private section: uint32 check, uint32 check, key fields by type, string comment, 1 2 3 ...
//! key fields: ssh-rsa n e d iqmp p q | ssh-dss p q g y x | ssh-ed25519 string pk, string sk||pk
//!             | ecdsa-sha2-nistp256 string curve, string Q, mpint d
//! ```
//!
//! Plain keys are parsed here with [`crate::wire::Reader`]: the `ssh-key` crate refuses
//! padding of a whole block, which dropbearconvert writes for about one key in eight and
//! OpenSSH accepts. Passphrase-protected keys (bcrypt-pbkdf, as `ssh-keygen` writes them) are
//! decrypted with the `bcrypt-pbkdf` and `ssh-cipher` crates and then parsed the same way
//! (feature `encrypted-keys`; without it they are refused). Either way the key must match the
//! file's cleartext public key.
//!
//! Keys are written (`to_openssh_with`) by `ssh-key`'s encoder, plain or encrypted as
//! `ssh-keygen` does it (aes256-ctr with a bcrypt-pbkdf key).

use base64ct::{Base64, Encoding};
#[cfg(feature = "nistp256")]
use ssh_key::private::EcdsaKeypair;
use ssh_key::private::KeypairData;
use ssh_key::LineEnding;
use zeroize::Zeroizing;

use super::private::Secret;
use super::{unsupported_type, KeyKind, PrivateKey, PublicKey};
use crate::error::Error;
#[cfg(feature = "encrypted-keys")]
use crate::cipher::KeySection;
#[cfg(feature = "encrypted-keys")]
use ssh_cipher::block_cipher::BlockModeDecrypt;
#[cfg(feature = "encrypted-keys")]
use crate::random::CryptoRng;
use crate::random::Random;
use crate::wire::Reader;

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

fn malformed(e: Error) -> Error {
    match e {
        Error::Protocol(m) => Error::key(format!("malformed OpenSSH private key: {m}")),
        other => other,
    }
}

/// Most bcrypt-pbkdf rounds accepted for a passphrase-protected key (ssh-keygen uses 16 by
/// default; each round costs milliseconds, so 2^31 would hang the caller for days).
pub const MAX_BCRYPT_ROUNDS: u32 = 1024;

/// Parse trimmed text starting with the BEGIN line.
pub(super) fn parse(text: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
    let binary = unarmor(text)?;
    let mut r = Reader::new(&binary);
    if r.bytes(MAGIC.len()).map_err(malformed)? != MAGIC {
        return Err(Error::key("malformed OpenSSH private key: bad magic"));
    }
    let cipher = r.string().map_err(malformed)?;
    let kdf = r.string().map_err(malformed)?;
    let kdf_options = r.string().map_err(malformed)?;
    let bcrypt = if kdf == b"bcrypt" {
        // string salt, uint32 rounds: refuse absurd work factors before doing any of it.
        let mut o = Reader::new(kdf_options);
        let salt = o.string().map_err(malformed)?;
        let rounds = o.u32().map_err(malformed)?;
        o.finish().map_err(malformed)?;
        if rounds == 0 || rounds > MAX_BCRYPT_ROUNDS {
            return Err(Error::key(format!(
                "OpenSSH private key asks for {rounds} bcrypt-pbkdf rounds (1 to {MAX_BCRYPT_ROUNDS} accepted)"
            )));
        }
        Some((salt, rounds))
    } else {
        None
    };
    let count = r.u32().map_err(malformed)?;
    if count != 1 {
        return Err(Error::key(format!("OpenSSH key files holding {count} keys are not supported")));
    }
    let public_blob = r.string().map_err(malformed)?;
    let section = r.string().map_err(malformed)?;
    // An AEAD cipher's tag follows the encrypted section, outside its string (sshkey.c).
    let tag = r.rest();
    if cipher == b"none" && !tag.is_empty() {
        return Err(Error::key("malformed OpenSSH private key: trailing bytes"));
    }

    // The public half is in clear: refuse types we cannot use before asking for a passphrase.
    let key_type = Reader::new(public_blob).string().map_err(malformed)?;
    if std::str::from_utf8(key_type).ok().and_then(KeyKind::from_key_type).is_none() {
        return Err(unsupported_type(key_type));
    }
    let public = PublicKey::from_blob(public_blob)?;

    let key = if cipher == b"none" {
        if kdf != b"none" {
            return Err(Error::key("malformed OpenSSH private key: kdf without a cipher"));
        }
        parse_section(section)?
    } else {
        decrypt(Encrypted { cipher, kdf, bcrypt, section, tag }, passphrase)?
    };
    if key.public_key() != public {
        return Err(Error::key("OpenSSH private key does not match its public key"));
    }
    Ok(key)
}

/// The error for a passphrase-protected key in a build without `encrypted-keys`.
#[cfg(not(feature = "encrypted-keys"))]
fn encryption_unavailable() -> Error {
    Error::key("passphrase-protected OpenSSH keys need the `encrypted-keys` feature of sshbridge")
}

/// The encrypted parts of a passphrase-protected key file.
#[cfg_attr(not(feature = "encrypted-keys"), allow(dead_code))]
struct Encrypted<'a> {
    cipher: &'a [u8],
    kdf: &'a [u8],
    /// Salt and rounds when `kdf` is bcrypt (checked by `parse`).
    bcrypt: Option<(&'a [u8], u32)>,
    section: &'a [u8],
    /// The AEAD tag after the section (empty for the other ciphers).
    tag: &'a [u8],
}

/// A passphrase-protected key: bcrypt-pbkdf turns the passphrase into the cipher's key and IV
/// (OpenSSH PROTOCOL.key), the private section is decrypted (every cipher OpenSSH writes keys
/// with but 3des-cbc: CTR and the AEADs by the transport's cipher code, CBC by `ssh-cipher`),
/// and it is parsed as a plain key's.
#[cfg(feature = "encrypted-keys")]
fn decrypt(e: Encrypted<'_>, passphrase: Option<&[u8]>) -> Result<PrivateKey, Error> {
    let name = std::str::from_utf8(e.cipher).unwrap_or("?");
    let cipher = KEY_CIPHERS
        .iter()
        .copied()
        .find(|c| c.as_str() == name)
        .ok_or_else(|| Error::key(format!("OpenSSH private key encrypted with an unsupported cipher: {}", crate::error::sanitize(e.cipher))))?;
    let Some((salt, rounds)) = e.bcrypt else {
        return Err(Error::key(format!("OpenSSH private key uses an unsupported key derivation: {}", crate::error::sanitize(e.kdf))));
    };
    let Some(pass) = passphrase else {
        return Err(Error::key("encrypted key needs a passphrase"));
    };
    // What can be checked without the key is checked before the (deliberately slow) KDF, as
    // sshkey.c does: the tag, and a section of whole blocks.
    if e.tag.len() != if cipher.has_tag() { 16 } else { 0 } {
        return Err(Error::key(if cipher.has_tag() && e.tag.len() < 16 {
            "malformed OpenSSH private key: no authentication tag of 16 bytes"
        } else {
            "malformed OpenSSH private key: trailing bytes"
        }));
    }
    let block = cipher.block_size();
    if e.section.len() < block || !e.section.len().is_multiple_of(block) {
        return Err(Error::key("malformed OpenSSH private key: encrypted section is not a whole number of blocks"));
    }
    // OpenSSH derives its chacha20-poly1305 key as the transport's: 64 bytes (the half that
    // encrypts packet lengths goes unused) and no IV, the nonce being the sequence number 0.
    // (ssh-cipher's sizes for it, 32 + 8, are not what ssh-keygen uses.)
    let chacha = cipher == ssh_cipher::Cipher::ChaCha20Poly1305;
    let (key_len, iv_len) = match cipher.key_and_iv_size() {
        _ if chacha => (64, 0),
        Some(sizes) => sizes,
        None => return Err(Error::internal("cipher without a key")),
    };
    let mut key_iv = Zeroizing::new(vec![0u8; key_len + iv_len]);
    // An empty passphrase cannot have encrypted anything (bcrypt-pbkdf refuses it, as ssh-keygen does).
    if pass.is_empty() {
        return Err(Error::key("wrong passphrase"));
    }
    // Its working memory holds key material too: ours, so it is wiped.
    let mut work = Zeroizing::new([0u8; 64]);
    bcrypt_pbkdf::bcrypt_pbkdf_with_memory(pass, salt, rounds, &mut key_iv, &mut *work)
        .map_err(|_| Error::key("malformed OpenSSH private key: bad bcrypt-pbkdf salt"))?;
    let (key, iv) = key_iv.split_at(key_len);
    let mut section = Zeroizing::new(e.section.to_vec());
    match crate::cipher::open_key_section(cipher.as_str(), key, iv, &mut section, e.tag) {
        KeySection::Decrypted => {}
        KeySection::BadTag => return Err(Error::key("wrong passphrase")),
        // The CBC ciphers (older ssh-keygen releases wrote such keys with them): ssh-cipher. What the
        // transport's code does not do, the C library does not carry twice.
        KeySection::Unsupported => {
            if cipher.has_tag() {
                return Err(Error::internal("AEAD key section not decrypted"));
            }
            // (`decrypt_blocks` is the Decryptor's own; ssh-cipher's generic one-block path is
            // not implemented. `Cipher::decrypt` would do the same but brings its AEAD arms,
            // duplicates of the transport's, into the C library.)
            let mut d = cipher
                .decryptor::<ssh_cipher::block_cipher::Aes>(key, iv)
                .map_err(|err| Error::key(format!("cannot decrypt OpenSSH private key: {err}")))?;
            // Whole blocks: checked above, before the KDF.
            let (blocks, _) = ssh_cipher::block_cipher::Block::<ssh_cipher::block_cipher::Aes>::slice_as_chunks_mut(&mut section);
            d.decrypt_blocks(blocks);
        }
    }
    // The check bytes differ after decryption with a wrong key (for the non-AEAD ciphers).
    let mut r = Reader::new(&section);
    if r.u32().map_err(malformed)? != r.u32().map_err(malformed)? {
        return Err(Error::key("wrong passphrase"));
    }
    parse_section(&section)
}

/// The ciphers a passphrase-protected key may use (`ssh-keygen -Z`; 3des-cbc is not built).
#[cfg(feature = "encrypted-keys")]
const KEY_CIPHERS: [ssh_cipher::Cipher; 9] = [
    ssh_cipher::Cipher::Aes256Ctr,
    ssh_cipher::Cipher::Aes192Ctr,
    ssh_cipher::Cipher::Aes128Ctr,
    ssh_cipher::Cipher::Aes256Cbc,
    ssh_cipher::Cipher::Aes192Cbc,
    ssh_cipher::Cipher::Aes128Cbc,
    ssh_cipher::Cipher::Aes256Gcm,
    ssh_cipher::Cipher::Aes128Gcm,
    ssh_cipher::Cipher::ChaCha20Poly1305,
];

#[cfg(not(feature = "encrypted-keys"))]
fn decrypt(_: Encrypted<'_>, _: Option<&[u8]>) -> Result<PrivateKey, Error> {
    Err(encryption_unavailable())
}

/// The binary inside the armour. Any line width (OpenSSH writes 70 columns, dropbearconvert
/// 64) and CRLF line ends are accepted.
fn unarmor(text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.split_once(END))
        .filter(|(_, after)| after.trim().is_empty())
        .map(|(body, _)| body)
        .ok_or_else(|| Error::key("malformed OpenSSH private key: no END line"))?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    Base64::decode_vec(&b64)
        .map(Zeroizing::new)
        .map_err(|_| Error::key("malformed OpenSSH private key: bad base64"))
}

/// The fields of one key, borrowed from the decrypted section.
enum Fields<'a> {
    Rsa { n: &'a [u8], e: &'a [u8], d: &'a [u8], p: &'a [u8], q: &'a [u8] },
    Dsa { p: &'a [u8], q: &'a [u8], g: &'a [u8], y: &'a [u8], x: &'a [u8] },
    Ed25519 { public: &'a [u8], both: &'a [u8] },
    EcdsaP256 { point: &'a [u8], d: &'a [u8] },
}

fn parse_section(section: &[u8]) -> Result<PrivateKey, Error> {
    let mut r = Reader::new(section);
    let check1 = r.u32().map_err(malformed)?;
    let check2 = r.u32().map_err(malformed)?;
    if check1 != check2 {
        return Err(Error::key("malformed OpenSSH private key: check bytes differ"));
    }
    let key_type = r.string().map_err(malformed)?;
    let fields = match key_type {
        b"ssh-rsa" => {
            let n = r.mpint().map_err(malformed)?;
            let e = r.mpint().map_err(malformed)?;
            let d = r.mpint().map_err(malformed)?;
            let _iqmp = r.mpint().map_err(malformed)?;
            let p = r.mpint().map_err(malformed)?;
            let q = r.mpint().map_err(malformed)?;
            Fields::Rsa { n, e, d, p, q }
        }
        b"ssh-dss" => {
            let p = r.mpint().map_err(malformed)?;
            let q = r.mpint().map_err(malformed)?;
            let g = r.mpint().map_err(malformed)?;
            let y = r.mpint().map_err(malformed)?;
            let x = r.mpint().map_err(malformed)?;
            Fields::Dsa { p, q, g, y, x }
        }
        b"ssh-ed25519" => {
            let public = r.string().map_err(malformed)?;
            let both = r.string().map_err(malformed)?;
            Fields::Ed25519 { public, both }
        }
        b"ecdsa-sha2-nistp256" => {
            if r.string().map_err(malformed)? != b"nistp256" {
                return Err(Error::key("malformed OpenSSH private key: wrong curve"));
            }
            let point = r.string().map_err(malformed)?;
            let d = r.mpint().map_err(malformed)?;
            Fields::EcdsaP256 { point, d }
        }
        other => return Err(unsupported_type(other)),
    };
    let _comment = r.string().map_err(malformed)?;
    // Padding 1, 2, 3, ... of any length, as OpenSSH's sshkey_private_deserialize checks it.
    let padding = r.rest();
    let padding_ok = padding.len() <= 255 && padding.iter().zip(1u8..=255).all(|(&b, want)| b == want);
    if !padding_ok {
        return Err(Error::key("malformed OpenSSH private key: bad padding"));
    }
    match fields {
        Fields::Rsa { n, e, d, p, q } => PrivateKey::rsa(n, e, d, Some((p, q))),
        Fields::Dsa { p, q, g, y, x } => PrivateKey::dsa(p, q, g, Some(y), x),
        Fields::Ed25519 { public, both } => {
            // sk is seed || public (OpenSSH keeps the 64-byte form of the reference code).
            let (Some(seed), Some(public2)) = (both.get(..32), both.get(32..)) else {
                return Err(Error::key("malformed OpenSSH private key: short ssh-ed25519 key"));
            };
            if both.len() != 64 || public2 != public {
                return Err(Error::key("malformed OpenSSH private key: bad ssh-ed25519 key"));
            }
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                seed.try_into().map_err(|_| Error::internal("ed25519 seed length"))?,
            );
            PrivateKey::ed25519(&seed, Some(public))
        }
        Fields::EcdsaP256 { point, d } => PrivateKey::ecdsa_p256(d, Some(point)),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing: the same format, through `ssh-key`'s encoder (and its aes256-ctr + bcrypt-pbkdf
// encryption with 16 rounds and a 16-byte salt, ssh-keygen's defaults).

impl PrivateKey {
    /// This key in OpenSSH's format (`-----BEGIN OPENSSH PRIVATE KEY-----`, 70 columns, LF line
    /// ends), as `ssh-keygen` writes it, with an empty comment. With a passphrase the private
    /// section is encrypted as ssh-keygen does (aes256-ctr, bcrypt-pbkdf, 16 rounds); an empty
    /// passphrase means no encryption, as with `ssh-keygen -N ""`. `rng` makes the salt and
    /// the check bytes; [`PrivateKey::to_openssh`] is the same with the OS generator.
    pub fn to_openssh_with(
        &self,
        passphrase: Option<&str>,
        rng: &mut dyn Random,
    ) -> Result<Zeroizing<String>, Error> {
        let failed = |e: ssh_key::Error| Error::internal(format!("cannot encode OpenSSH private key: {e}"));
        let key = ssh_key::PrivateKey::new(keypair(self)?, "").map_err(failed)?;
        let key = match passphrase {
            #[cfg(feature = "encrypted-keys")]
            Some(pass) if !pass.is_empty() => key.encrypt(&mut CryptoRng(rng), pass).map_err(failed)?,
            #[cfg(not(feature = "encrypted-keys"))]
            Some(pass) if !pass.is_empty() => {
                let _ = rng;
                return Err(encryption_unavailable());
            }
            _ => key,
        };
        key.to_openssh(LineEnding::LF).map_err(failed)
    }
}

/// The key as `ssh-key`'s keypair (the two crates' key types convert into each other).
fn keypair(key: &PrivateKey) -> Result<KeypairData, Error> {
    Ok(match key.secret() {
        #[cfg(feature = "rsa")]
        Secret::Rsa(k) => KeypairData::Rsa(
            ssh_key::private::RsaKeypair::try_from(k.as_ref())
                .map_err(|e| Error::internal(format!("cannot encode OpenSSH private key: {e}")))?,
        ),
        #[cfg(feature = "legacy")]
        Secret::Dsa(k) => KeypairData::Dsa(ssh_key::private::DsaKeypair::from(k.as_ref())),
        Secret::Ed25519(k) => KeypairData::Ed25519(ssh_key::private::Ed25519Keypair::from(k.as_ref())),
        #[cfg(feature = "nistp256")]
        Secret::EcdsaP256(k) => {
            let private = p256::SecretKey::from(k.as_ref());
            let public = private.public_key();
            KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private: private.into(), public: public.into() })
        }
    })
}
