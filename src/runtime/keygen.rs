//! The OS-randomness entry points of key generation and export. The key code itself
//! (`keys::generate`, `keys::openssh`) takes its randomness as a parameter, like the rest of
//! the sans-IO core; these wrappers hand it the kernel's generator, which only `runtime`
//! touches. Formats: OpenSSH PROTOCOL.key (`keys/openssh.rs`).

use zeroize::Zeroizing;

use crate::error::Error;
use crate::keys::{KeyKind, PrivateKey};
use crate::runtime::sys::OsRandom;

impl PrivateKey {
    /// Generate a new key of `kind` with the operating system's random generator:
    /// `PrivateKey::generate(KeyKind::Ed25519)`, `KeyKind::EcdsaP256` (feature `nistp256`)
    /// or `KeyKind::Rsa(3072)` (feature `rsa`; 2048 to 16384 bits). See
    /// [`PrivateKey::generate_with`] for the rules.
    pub fn generate(kind: KeyKind) -> Result<PrivateKey, Error> {
        PrivateKey::generate_with(kind, &mut OsRandom)
    }

    /// This key in OpenSSH's format, readable by `ssh-keygen` and `ssh -i`; with
    /// `Some(passphrase)` encrypted as ssh-keygen does (aes256-ctr, bcrypt-pbkdf). See
    /// [`PrivateKey::to_openssh_with`].
    pub fn to_openssh(&self, passphrase: Option<&str>) -> Result<Zeroizing<String>, Error> {
        self.to_openssh_with(passphrase, &mut OsRandom)
    }
}
