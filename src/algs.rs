//! The algorithm table: every algorithm name this client negotiates (RFC 4253 section 6 and
//! 7.1, draft-ietf-sshm-mlkem-hybrid-kex, draft-ietf-sshm-ntruprime-ssh, RFC 8731, RFC 5656,
//! RFC 8268, RFC 8332, RFC 5647, OpenSSH PROTOCOL and PROTOCOL.chacha20poly1305), in our order
//! of preference. Nothing else spells these names.

use crate::error::Error;

macro_rules! alg_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every variant compiled in, in our preference order.
            pub const ALL: &'static [$name] = &[$($(#[$vm])* $name::$var),+];
            pub fn name(self) -> &'static str {
                match self { $($(#[$vm])* $name::$var => $s),+ }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($(#[$vm])* $s => Some($name::$var),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

alg_enum!(
    /// Key exchange methods.
    Kex {
        Mlkem768X25519Sha256 = "mlkem768x25519-sha256",
        #[cfg(feature = "sntrup")]
        Sntrup761X25519Sha512 = "sntrup761x25519-sha512",
        #[cfg(feature = "sntrup")]
        Sntrup761X25519Sha512Openssh = "sntrup761x25519-sha512@openssh.com",
        Curve25519Sha256 = "curve25519-sha256",
        Curve25519Sha256Libssh = "curve25519-sha256@libssh.org",
        #[cfg(feature = "nistp256")]
        EcdhNistp256 = "ecdh-sha2-nistp256",
        #[cfg(feature = "dh")]
        DhGroup16Sha512 = "diffie-hellman-group16-sha512",
        #[cfg(feature = "dh")]
        DhGroup14Sha256 = "diffie-hellman-group14-sha256",
    }
);

alg_enum!(
    /// Signature algorithms, for host keys and for user keys.
    SigAlg {
        Ed25519 = "ssh-ed25519",
        #[cfg(feature = "nistp256")]
        EcdsaNistp256 = "ecdsa-sha2-nistp256",
        #[cfg(feature = "rsa")]
        RsaSha512 = "rsa-sha2-512",
        #[cfg(feature = "rsa")]
        RsaSha256 = "rsa-sha2-256",
        #[cfg(feature = "legacy")]
        SshRsa = "ssh-rsa",
        #[cfg(feature = "legacy")]
        SshDss = "ssh-dss",
    }
);

alg_enum!(
    /// Encryption algorithms (one per direction).
    Cipher {
        Chacha20Poly1305 = "chacha20-poly1305@openssh.com",
        Aes128Gcm = "aes128-gcm@openssh.com",
        Aes256Gcm = "aes256-gcm@openssh.com",
        Aes128Ctr = "aes128-ctr",
        Aes192Ctr = "aes192-ctr",
        Aes256Ctr = "aes256-ctr",
    }
);

alg_enum!(
    /// MAC algorithms (ignored with an AEAD cipher).
    Mac {
        HmacSha256Etm = "hmac-sha2-256-etm@openssh.com",
        HmacSha512Etm = "hmac-sha2-512-etm@openssh.com",
        HmacSha256 = "hmac-sha2-256",
        HmacSha512 = "hmac-sha2-512",
        #[cfg(feature = "legacy")]
        HmacSha1 = "hmac-sha1",
    }
);

impl Kex {
    /// The exchange hash function's output length.
    pub fn hash_len(self) -> usize {
        match self {
            #[cfg(feature = "dh")]
            Kex::DhGroup16Sha512 => 64,
            #[cfg(feature = "sntrup")]
            Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => 64,
            _ => 32,
        }
    }

    /// Post-quantum hybrids: a KEM combined with X25519, whose shared secret K is a hash
    /// output encoded as an SSH `string` rather than an `mpint`.
    pub fn is_hybrid(self) -> bool {
        match self {
            Kex::Mlkem768X25519Sha256 => true,
            #[cfg(feature = "sntrup")]
            Kex::Sntrup761X25519Sha512 | Kex::Sntrup761X25519Sha512Openssh => true,
            _ => false,
        }
    }
}

impl SigAlg {
    /// The public-key type name carried inside the key blob for this signature algorithm.
    pub fn key_type(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "ssh-ed25519",
            #[cfg(feature = "nistp256")]
            SigAlg::EcdsaNistp256 => "ecdsa-sha2-nistp256",
            #[cfg(feature = "rsa")]
            SigAlg::RsaSha512 | SigAlg::RsaSha256 => "ssh-rsa",
            #[cfg(feature = "legacy")]
            SigAlg::SshRsa => "ssh-rsa",
            #[cfg(feature = "legacy")]
            SigAlg::SshDss => "ssh-dss",
        }
    }

    /// The signature algorithms a key of this type name can make, best first.
    pub fn for_key_type(key_type: &str) -> Vec<SigAlg> {
        SigAlg::ALL.iter().copied().filter(|a| a.key_type() == key_type).collect()
    }
}

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Chacha20Poly1305 => 64,
            Cipher::Aes128Gcm | Cipher::Aes128Ctr => 16,
            Cipher::Aes192Ctr => 24,
            Cipher::Aes256Gcm | Cipher::Aes256Ctr => 32,
        }
    }
    pub fn iv_len(self) -> usize {
        match self {
            Cipher::Chacha20Poly1305 => 0,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 12,
            _ => 16,
        }
    }
    pub fn block_size(self) -> usize {
        match self {
            Cipher::Chacha20Poly1305 => 8,
            _ => 16,
        }
    }
    /// AEAD ciphers carry their own integrity tag; the negotiated MAC is not used.
    pub fn is_aead(self) -> bool {
        matches!(self, Cipher::Chacha20Poly1305 | Cipher::Aes128Gcm | Cipher::Aes256Gcm)
    }
}

impl Mac {
    pub fn key_len(self) -> usize {
        match self {
            Mac::HmacSha256Etm | Mac::HmacSha256 => 32,
            Mac::HmacSha512Etm | Mac::HmacSha512 => 64,
            #[cfg(feature = "legacy")]
            Mac::HmacSha1 => 20,
        }
    }
    pub fn out_len(self) -> usize {
        self.key_len()
    }
    /// Encrypt-then-MAC: the length field stays in clear and the MAC covers the ciphertext.
    pub fn is_etm(self) -> bool {
        matches!(self, Mac::HmacSha256Etm | Mac::HmacSha512Etm)
    }
}

/// Does this CPU have AES instructions? Decides whether AES-GCM or ChaCha20-Poly1305 leads.
pub fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Our preference lists, one per category. Callers may restrict them (for tests and for
/// users who must match a policy); an empty list is a bad argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub kex: Vec<Kex>,
    pub host_key: Vec<SigAlg>,
    pub cipher: Vec<Cipher>,
    pub mac: Vec<Mac>,
}

impl Default for Preferences {
    fn default() -> Self {
        let mut cipher = Cipher::ALL.to_vec();
        if cpu_has_aes() {
            // AES-GCM is faster than ChaCha20-Poly1305 where the CPU accelerates it.
            cipher.sort_by_key(|c| match c {
                Cipher::Aes128Gcm => 0,
                Cipher::Aes256Gcm => 1,
                Cipher::Chacha20Poly1305 => 2,
                _ => 3,
            });
        }
        Preferences {
            kex: Kex::ALL.to_vec(),
            host_key: SigAlg::ALL.to_vec(),
            cipher,
            mac: Mac::ALL.to_vec(),
        }
    }
}

impl Preferences {
    /// Restrict to the named algorithms (comma-separated lists, OpenSSH style); `None` keeps a
    /// category as it is. Unknown names are a bad argument.
    pub fn restrict(
        &mut self,
        kex: Option<&str>,
        host_key: Option<&str>,
        cipher: Option<&str>,
        mac: Option<&str>,
    ) -> Result<(), Error> {
        fn pick<T: Copy>(list: &str, from: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, Error> {
            let v = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| from(s).ok_or_else(|| Error::bad_argument(format!("unknown {what} algorithm {s:?}"))))
                .collect::<Result<Vec<T>, Error>>()?;
            if v.is_empty() {
                return Err(Error::bad_argument(format!("empty {what} algorithm list")));
            }
            Ok(v)
        }
        if let Some(s) = kex {
            self.kex = pick(s, Kex::from_name, "kex")?;
        }
        if let Some(s) = host_key {
            self.host_key = pick(s, SigAlg::from_name, "host key")?;
        }
        if let Some(s) = cipher {
            self.cipher = pick(s, Cipher::from_name, "cipher")?;
        }
        if let Some(s) = mac {
            self.mac = pick(s, Mac::from_name, "MAC")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kex::ALL {
            assert_eq!(Kex::from_name(k.name()), Some(*k));
        }
        for k in SigAlg::ALL {
            assert_eq!(SigAlg::from_name(k.name()), Some(*k));
        }
        for k in Cipher::ALL {
            assert_eq!(Cipher::from_name(k.name()), Some(*k));
        }
        for k in Mac::ALL {
            assert_eq!(Mac::from_name(k.name()), Some(*k));
        }
        assert_eq!(Kex::from_name("diffie-hellman-group1-sha1"), None);
    }

    #[test]
    fn legacy_algorithms_come_last() {
        let p = Preferences::default();
        #[cfg(feature = "legacy")]
        {
            assert_eq!(&p.host_key[p.host_key.len() - 2..], &[SigAlg::SshRsa, SigAlg::SshDss]);
            assert_eq!(p.mac.last(), Some(&Mac::HmacSha1));
        }
        // OpenSSH 10's order: the post-quantum hybrids first, ML-KEM leading.
        assert_eq!(p.kex[0], Kex::Mlkem768X25519Sha256);
        #[cfg(feature = "sntrup")]
        assert_eq!(&p.kex[1..3], &[Kex::Sntrup761X25519Sha512, Kex::Sntrup761X25519Sha512Openssh]);
        let first_classic = p.kex.iter().position(|k| !k.is_hybrid()).unwrap();
        assert_eq!(p.kex[first_classic], Kex::Curve25519Sha256);
        assert!(p.kex[first_classic..].iter().all(|k| !k.is_hybrid()));
    }

    #[test]
    fn restrict_validates() {
        let mut p = Preferences::default();
        p.restrict(Some("curve25519-sha256"), None, Some("aes128-ctr,aes256-ctr"), None).unwrap();
        assert_eq!(p.kex, vec![Kex::Curve25519Sha256]);
        assert_eq!(p.cipher, vec![Cipher::Aes128Ctr, Cipher::Aes256Ctr]);
        assert!(p.restrict(None, None, Some("3des-cbc"), None).is_err());
        assert!(p.restrict(None, Some(""), None, None).is_err());
    }
}
