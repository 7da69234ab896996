//! User and host keys: the SSH public-key formats of RFC 4253 section 6.6 (`ssh-rsa`,
//! `ssh-dss`), RFC 8332 (`rsa-sha2-256`, `rsa-sha2-512` signatures), RFC 5656 section 3
//! (`ecdsa-sha2-nistp256`) and RFC 8709 (`ssh-ed25519`); OpenSSH's fingerprint and
//! authorized_keys line forms; and private keys in every format a Dropbear user may hold:
//!
//! - Dropbear's own binary format (`dropbearkey`), parsed here with [`crate::wire::Reader`];
//! - OpenSSH's `-----BEGIN OPENSSH PRIVATE KEY-----` (PROTOCOL.key): plain keys parsed here,
//!   passphrase-protected ones (bcrypt-pbkdf) decrypted with the `ssh-key` crate;
//! - PEM: PKCS#1 `RSA PRIVATE KEY` (RFC 8017 appendix A.1.2), OpenSSL's `DSA PRIVATE KEY`,
//!   SEC1 `EC PRIVATE KEY` (RFC 5915) and PKCS#8 `PRIVATE KEY` (RFC 5208 / RFC 5958, with the
//!   algorithm identifiers of RFC 3279, RFC 5480 and RFC 8410), read with the `der` family.
//!
//! Every format ends in the same four constructors (`private.rs`), which check that the public
//! and private halves agree, and every public key goes through the one blob parser
//! (`public.rs`), so a key read from a file obeys the same rules as a host key from a server.
//!
//! New keys (`generate.rs`) are written back out in OpenSSH's format (plain or
//! passphrase-protected, as `ssh-keygen` writes them) and in Dropbear's (as `dropbearkey`
//! writes them).

mod dropbear;
mod generate;
mod openssh;
mod pem;
mod private;
pub mod known_hosts;
mod public;

#[cfg(test)]
mod tests;

pub use generate::{RSA_DEFAULT_BITS, RSA_GENERATE_MIN_BITS};
pub use private::PrivateKey;
pub use public::PublicKey;

use std::fmt;

/// The kind of a key, independent of the signature algorithm used with it: what
/// [`PrivateKey::kind`] reports and what [`PrivateKey::generate`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits (`ssh-keygen -t rsa -b BITS`). Generating needs at
    /// least 2048 ([`RSA_GENERATE_MIN_BITS`]); 3072 ([`RSA_DEFAULT_BITS`]) is ssh-keygen's
    /// default.
    Rsa(usize),
    Dsa,
    Ed25519,
    EcdsaP256,
}

impl KeyKind {
    /// The SSH key type name carried in the public-key blob.
    pub fn key_type(self) -> &'static str {
        match self {
            KeyKind::Rsa(_) => "ssh-rsa",
            KeyKind::Dsa => "ssh-dss",
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::EcdsaP256 => "ecdsa-sha2-nistp256",
        }
    }

    /// The cargo feature of sshbridge this kind needs, when the build leaves it out.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            KeyKind::Rsa(_) if cfg!(not(feature = "rsa")) => Some("rsa"),
            KeyKind::Dsa if cfg!(not(feature = "legacy")) => Some("legacy"),
            KeyKind::EcdsaP256 if cfg!(not(feature = "nistp256")) => Some("nistp256"),
            _ => None,
        }
    }

    /// The error for a key of a kind this build leaves out ("RSA keys need the `rsa` feature
    /// of sshbridge").
    pub(crate) fn unavailable(self) -> crate::Error {
        let feature = self.missing_feature().unwrap_or("default");
        crate::Error::key(format!("{self} keys need the `{feature}` feature of sshbridge"))
    }

    /// The kind for an SSH key type name, if we recognise it (compiled in or not). The name
    /// does not tell an RSA key's size: it comes back as `Rsa(0)`.
    pub(crate) fn from_key_type(name: &str) -> Option<KeyKind> {
        match name {
            "ssh-rsa" => Some(KeyKind::Rsa(0)),
            "ssh-dss" => Some(KeyKind::Dsa),
            "ssh-ed25519" => Some(KeyKind::Ed25519),
            "ecdsa-sha2-nistp256" => Some(KeyKind::EcdsaP256),
            _ => None,
        }
    }
}

/// The names `ssh-keygen -l` prints in parentheses: "RSA", "DSA", "ED25519", "ECDSA".
impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa(_) => "RSA",
            KeyKind::Dsa => "DSA",
            KeyKind::Ed25519 => "ED25519",
            KeyKind::EcdsaP256 => "ECDSA",
        })
    }
}

/// A name taken from untrusted input, made safe and short enough for an error message.
fn shown_name(raw: &[u8]) -> String {
    let cut = raw.get(..64).unwrap_or(raw);
    let mut s = crate::error::sanitize(cut);
    if raw.len() > cut.len() {
        s.push_str("...");
    }
    s
}

/// "unsupported key type X" for names we do not know; for a kind this build leaves out, the
/// error naming the feature it needs.
fn unsupported_type(raw: &[u8]) -> crate::Error {
    match std::str::from_utf8(raw).ok().and_then(KeyKind::from_key_type) {
        Some(kind) if kind.missing_feature().is_some() => kind.unavailable(),
        _ => crate::Error::key(format!("unsupported key type {}", shown_name(raw))),
    }
}
