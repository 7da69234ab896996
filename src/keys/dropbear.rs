//! Dropbear's private-key file format (`dropbearkey`, Dropbear's signkey.c and the
//! `buf_put_*_priv_key` functions): no armour, no encryption, just SSH wire fields (RFC 4251
//! section 5) one after another:
//!
//! - `ssh-rsa`: string "ssh-rsa", mpint e, mpint n, mpint d, then mpint p, mpint q (keys from
//!   old Dropbear versions stop after d);
//! - `ssh-dss`: string "ssh-dss", mpint p, q, g, y, x;
//! - `ssh-ed25519`: string "ssh-ed25519", string of 64 bytes (32-byte seed || 32-byte public);
//! - `ecdsa-sha2-nistp256`: string "ecdsa-sha2-nistp256", string "nistp256", string Q
//!   (uncompressed point), mpint d.
//!
//! The caller passes an explicit length, so the key must fill it exactly. `to_dropbear` writes
//! the same layout (RSA always with p and q, as Dropbear 2014+ does).

use super::private::Secret;
use super::{unsupported_type, PrivateKey, PublicKey};
use crate::error::Error;
use crate::wire::{Reader, Writer};
use zeroize::Zeroizing;

/// Binary input: text formats never begin with a NUL, every Dropbear key begins with the
/// high byte of a short length.
pub(super) fn looks_like_dropbear(data: &[u8]) -> bool {
    data.first() == Some(&0)
}

/// Parse a Dropbear key; a public-key blob gets its own message.
pub(super) fn parse(data: &[u8]) -> Result<PrivateKey, Error> {
    parse_fields(data).map_err(|e| {
        if PublicKey::from_blob(data).is_ok() {
            Error::key("not a private key (looks like a public key blob)")
        } else {
            e
        }
    })
}

fn wire_err(e: Error) -> Error {
    match e {
        Error::Protocol(m) if m.starts_with("truncated") => Error::key("truncated dropbear key"),
        Error::Protocol(m) => Error::key(format!("malformed dropbear key: {m}")),
        other => other,
    }
}

fn parse_fields(data: &[u8]) -> Result<PrivateKey, Error> {
    let mut r = Reader::new(data);
    let name = r.string().map_err(wire_err)?;
    match name {
        b"ssh-rsa" => {
            let e = r.mpint().map_err(wire_err)?;
            let n = r.mpint().map_err(wire_err)?;
            let d = r.mpint().map_err(wire_err)?;
            let primes = if r.is_empty() {
                None
            } else {
                let p = r.mpint().map_err(wire_err)?;
                let q = r.mpint().map_err(wire_err)?;
                Some((p, q))
            };
            r.finish().map_err(wire_err)?;
            PrivateKey::rsa(n, e, d, primes)
        }
        b"ssh-dss" => {
            let p = r.mpint().map_err(wire_err)?;
            let q = r.mpint().map_err(wire_err)?;
            let g = r.mpint().map_err(wire_err)?;
            let y = r.mpint().map_err(wire_err)?;
            let x = r.mpint().map_err(wire_err)?;
            r.finish().map_err(wire_err)?;
            PrivateKey::dsa(p, q, g, Some(y), x)
        }
        b"ssh-ed25519" => {
            let both = r.string().map_err(wire_err)?;
            r.finish().map_err(wire_err)?;
            if both.len() != 64 {
                return Err(Error::key(format!(
                    "malformed dropbear key: ssh-ed25519 key data is {} bytes, not 64",
                    both.len()
                )));
            }
            let (seed, public) = both.split_at(32);
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                seed.try_into().map_err(|_| Error::internal("ed25519 seed length"))?,
            );
            PrivateKey::ed25519(&seed, Some(public))
        }
        b"ecdsa-sha2-nistp256" => {
            let curve = r.string().map_err(wire_err)?;
            let q = r.string().map_err(wire_err)?;
            let d = r.mpint().map_err(wire_err)?;
            r.finish().map_err(wire_err)?;
            if curve != b"nistp256" {
                return Err(Error::key("malformed dropbear key: ecdsa-sha2-nistp256 key on another curve"));
            }
            PrivateKey::ecdsa_p256(d, Some(q))
        }
        other => Err(unsupported_type(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing: the fields above, as Dropbear's `buf_put_*_priv_key` lays them out.

/// Room for the largest key (RSA 16384: five numbers of at most 2049 bytes and their
/// headers), so the buffer never reallocates and leaves no copy of the secret behind.
const MAX_DROPBEAR_KEY: usize = 16 * 1024;

impl PrivateKey {
    /// This key in Dropbear's binary format, byte for byte what `dropbearkey` writes (RSA with
    /// p and q): a file for `dropbear -r`, `dbclient -i` and `dropbearkey -y`, and the bytes the
    /// eCos C API takes as `db_id_rsa` / `db_id_dsa` (with their length).
    pub fn to_dropbear(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut w = Writer::with_capacity(MAX_DROPBEAR_KEY);
        match self.secret() {
            #[cfg(feature = "rsa")]
            Secret::Rsa(k) => {
                use rsa::traits::{PrivateKeyParts, PublicKeyParts};
                let [p, q] = k.primes() else {
                    return Err(Error::key("multi-prime RSA keys have no Dropbear form"));
                };
                let d = Zeroizing::new(k.d().to_be_bytes());
                let (p, q) = (Zeroizing::new(p.to_be_bytes()), Zeroizing::new(q.to_be_bytes()));
                w.str("ssh-rsa").mpint(&k.e().to_be_bytes()).mpint(&k.n().to_be_bytes());
                w.mpint(&d).mpint(&p).mpint(&q);
            }
            #[cfg(feature = "legacy")]
            Secret::Dsa(k) => {
                let c = k.verifying_key().components();
                let x = Zeroizing::new(k.x().to_be_bytes());
                w.str("ssh-dss").mpint(&c.p().to_be_bytes()).mpint(&c.q().to_be_bytes());
                w.mpint(&c.g().to_be_bytes()).mpint(&k.verifying_key().y().to_be_bytes());
                w.mpint(&x);
            }
            Secret::Ed25519(k) => {
                let mut both = Zeroizing::new([0u8; 64]);
                let (seed, public) = both.split_at_mut(32);
                seed.copy_from_slice(k.as_bytes());
                public.copy_from_slice(k.verifying_key().as_bytes());
                w.str("ssh-ed25519").string(both.as_slice());
            }
            #[cfg(feature = "nistp256")]
            Secret::EcdsaP256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let d = Zeroizing::new(k.to_bytes());
                w.str("ecdsa-sha2-nistp256").str("nistp256").string(point.as_bytes());
                w.mpint(d.as_slice());
            }
        }
        Ok(Zeroizing::new(w.into_vec()))
    }
}
