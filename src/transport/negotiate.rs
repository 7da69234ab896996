//! Algorithm negotiation, RFC 4253 section 7.1: our SSH_MSG_KEXINIT (client or server) and the
//! choice of one algorithm per category (the first client algorithm the server also supports).
//! Also the pseudo-algorithms: `ext-info-c` (RFC 8308 section 2.1) and
//! `kex-strict-c-v00@openssh.com` / `kex-strict-s-v00@openssh.com` (OpenSSH PROTOCOL section
//! 1.10), which are sent in the first KEXINIT only and never selected.

use crate::algs::{Cipher, Kex, Mac, Preferences, SigAlg};
use crate::error::Error;
use crate::msg::KexInit;

pub const EXT_INFO_C: &str = "ext-info-c";
pub const STRICT_C: &str = "kex-strict-c-v00@openssh.com";
pub const STRICT_S: &str = "kex-strict-s-v00@openssh.com";

/// What one key exchange agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub kex: Kex,
    pub host_key: SigAlg,
    pub cipher_c2s: Cipher,
    pub cipher_s2c: Cipher,
    /// `None` when the cipher is an AEAD.
    pub mac_c2s: Option<Mac>,
    pub mac_s2c: Option<Mac>,
}

/// Our KEXINIT name-lists. `first` adds the pseudo-algorithms.
pub fn client_kexinit(prefs: &Preferences, cookie: [u8; 16], first: bool) -> KexInit<'static> {
    let mut kex: Vec<&'static str> = prefs.kex.iter().map(|k| k.name()).collect();
    if first {
        kex.push(EXT_INFO_C);
        kex.push(STRICT_C);
    }
    let ciphers: Vec<&'static str> = prefs.cipher.iter().map(|c| c.name()).collect();
    let macs: Vec<&'static str> = prefs.mac.iter().map(|m| m.name()).collect();
    KexInit {
        cookie,
        kex,
        host_key: prefs.host_key.iter().map(|h| h.name()).collect(),
        cipher_c2s: ciphers.clone(),
        cipher_s2c: ciphers,
        mac_c2s: macs.clone(),
        mac_s2c: macs,
        comp_c2s: vec!["none"],
        comp_s2c: vec!["none"],
        lang_c2s: vec![],
        lang_s2c: vec![],
        first_kex_follows: false,
        reserved: 0,
    }
}

/// The server's KEXINIT: our preferences, host-key algorithms only for the keys we hold (the
/// caller filtered `prefs.host_key`); `first` adds the strict-kex marker.
pub fn server_kexinit(prefs: &Preferences, cookie: [u8; 16], first: bool) -> KexInit<'static> {
    let mut k = client_kexinit(prefs, cookie, false);
    if first {
        k.kex.push(STRICT_S);
    }
    k
}

/// Signature algorithms a server accepts for user keys and lists in `server-sig-algs`: no
/// SHA-1 (`ssh-rsa`, `ssh-dss`), as OpenSSH 8.8 and later.
pub fn user_alg_acceptable(name: &str) -> bool {
    !matches!(name, "ssh-rsa" | "ssh-dss")
}

/// The server's side of section 7.1: the first algorithm of the *client's* list that is also in
/// ours, per category (`ours` is the KEXINIT we sent).
pub fn negotiate_as_server(ours: &KexInit<'_>, client: &KexInit<'_>) -> Result<Negotiated, Error> {
    fn pick<T>(category: &'static str, client: &[&str], ours: &[&str], parse: fn(&str) -> Option<T>) -> Result<T, Error> {
        client
            .iter()
            .filter(|c| !is_pseudo(c) && ours.contains(c))
            .find_map(|c| parse(c))
            .ok_or_else(|| Error::NoCommonAlgorithm {
                category,
                ours: ours.iter().filter(|t| !is_pseudo(t)).copied().collect::<Vec<_>>().join(","),
                theirs: client.iter().filter(|t| !is_pseudo(t)).copied().collect::<Vec<_>>().join(","),
            })
    }
    let kex = pick("key exchange", &client.kex, &ours.kex, Kex::from_name)?;
    let host_key = pick("host key", &client.host_key, &ours.host_key, SigAlg::from_name)?;
    let cipher_c2s = pick("cipher (client to server)", &client.cipher_c2s, &ours.cipher_c2s, Cipher::from_name)?;
    let cipher_s2c = pick("cipher (server to client)", &client.cipher_s2c, &ours.cipher_s2c, Cipher::from_name)?;
    let mac = |category, cipher: Cipher, client: &[&str], ours: &[&str]| -> Result<Option<Mac>, Error> {
        if cipher.is_aead() {
            return Ok(None);
        }
        pick(category, client, ours, Mac::from_name).map(Some)
    };
    let mac_c2s = mac("MAC (client to server)", cipher_c2s, &client.mac_c2s, &ours.mac_c2s)?;
    let mac_s2c = mac("MAC (server to client)", cipher_s2c, &client.mac_s2c, &ours.mac_s2c)?;
    for (category, list) in [("compression (client to server)", &client.comp_c2s), ("compression (server to client)", &client.comp_s2c)] {
        if !list.contains(&"none") {
            return Err(Error::NoCommonAlgorithm { category, ours: "none".into(), theirs: list.join(",") });
        }
    }
    Ok(Negotiated { kex, host_key, cipher_c2s, cipher_s2c, mac_c2s, mac_s2c })
}

fn is_pseudo(name: &str) -> bool {
    name == EXT_INFO_C
        || name == "ext-info-s"
        || name == STRICT_C
        || name == STRICT_S
        || name.starts_with("kex-strict-")
}

fn choose<T: Copy>(
    category: &'static str,
    ours: &[T],
    name: fn(T) -> &'static str,
    theirs: &[&str],
) -> Result<T, Error> {
    ours.iter()
        .copied()
        .find(|a| theirs.iter().any(|t| !is_pseudo(t) && *t == name(*a)))
        .ok_or_else(|| Error::NoCommonAlgorithm {
            category,
            ours: ours.iter().map(|a| name(*a)).collect::<Vec<_>>().join(","),
            theirs: theirs.iter().filter(|t| !is_pseudo(t)).copied().collect::<Vec<_>>().join(","),
        })
}

fn choose_mac(
    category: &'static str,
    cipher: Cipher,
    ours: &[Mac],
    theirs: &[&str],
) -> Result<Option<Mac>, Error> {
    if cipher.is_aead() {
        return Ok(None);
    }
    choose(category, ours, Mac::name, theirs).map(Some)
}

/// Pick one algorithm per category (RFC 4253 section 7.1).
pub fn negotiate(prefs: &Preferences, server: &KexInit<'_>) -> Result<Negotiated, Error> {
    let kex = choose("key exchange", &prefs.kex, Kex::name, &server.kex)?;
    let host_key = choose("host key", &prefs.host_key, SigAlg::name, &server.host_key)?;
    let cipher_c2s = choose("cipher (client to server)", &prefs.cipher, Cipher::name, &server.cipher_c2s)?;
    let cipher_s2c = choose("cipher (server to client)", &prefs.cipher, Cipher::name, &server.cipher_s2c)?;
    let mac_c2s = choose_mac("MAC (client to server)", cipher_c2s, &prefs.mac, &server.mac_c2s)?;
    let mac_s2c = choose_mac("MAC (server to client)", cipher_s2c, &prefs.mac, &server.mac_s2c)?;
    for (dir, list) in [("client to server", &server.comp_c2s), ("server to client", &server.comp_s2c)] {
        if !list.contains(&"none") {
            return Err(Error::NoCommonAlgorithm {
                category: if dir.starts_with('c') { "compression (client to server)" } else { "compression (server to client)" },
                ours: "none".into(),
                theirs: list.join(","),
            });
        }
    }
    Ok(Negotiated { kex, host_key, cipher_c2s, cipher_s2c, mac_c2s, mac_s2c })
}

/// RFC 4253 section 7: the peer's guessed kex packet is right only if both sides prefer the
/// same key exchange and host-key algorithms (the first of each list), as OpenSSH's
/// `proposals_match`; otherwise it is ignored. (Dropbear's kexguess2 relaxation is not offered.)
pub fn guess_wrong(ours: &KexInit<'_>, theirs: &KexInit<'_>) -> bool {
    ours.kex.first() != theirs.kex.first() || ours.host_key.first() != theirs.host_key.first()
}

/// The client's judgement of a guessing server: right if the server's first kex and host-key
/// algorithms are the ones negotiated.
pub fn server_guess_wrong(server: &KexInit<'_>, n: &Negotiated) -> bool {
    server.kex.first().copied() != Some(n.kex.name()) || server.host_key.first().copied() != Some(n.host_key.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server<'a>(kex: Vec<&'a str>, hk: Vec<&'a str>, c: Vec<&'a str>, m: Vec<&'a str>) -> KexInit<'a> {
        KexInit {
            cookie: [0; 16],
            kex,
            host_key: hk,
            cipher_c2s: c.clone(),
            cipher_s2c: c,
            mac_c2s: m.clone(),
            mac_s2c: m,
            comp_c2s: vec!["none", "zlib@openssh.com"],
            comp_s2c: vec!["zlib@openssh.com", "none"],
            lang_c2s: vec![],
            lang_s2c: vec![],
            first_kex_follows: false,
            reserved: 0,
        }
    }

    #[test]
    fn picks_first_client_choice() {
        let p = Preferences::default();
        let s = server(
            vec!["diffie-hellman-group14-sha256", "curve25519-sha256", STRICT_S],
            vec!["rsa-sha2-256", "ssh-ed25519"],
            vec!["aes128-ctr", "chacha20-poly1305@openssh.com"],
            vec!["hmac-sha2-256"],
        );
        let n = negotiate(&p, &s).unwrap();
        assert_eq!(n.kex, Kex::Curve25519Sha256);
        assert_eq!(n.host_key, SigAlg::Ed25519);
        assert_eq!(n.cipher_c2s, p.cipher.iter().copied().find(|c| s.cipher_c2s.contains(&c.name())).unwrap());
    }

    #[test]
    fn aead_needs_no_mac_but_ctr_does() {
        let p = Preferences::default();
        let s = server(vec!["curve25519-sha256"], vec!["ssh-ed25519"], vec!["chacha20-poly1305@openssh.com"], vec!["umac-64@openssh.com"]);
        let n = negotiate(&p, &s).unwrap();
        assert_eq!(n.mac_c2s, None);
        let s = server(vec!["curve25519-sha256"], vec!["ssh-ed25519"], vec!["aes128-ctr"], vec!["umac-64@openssh.com"]);
        let e = negotiate(&p, &s).unwrap_err();
        assert!(e.to_string().contains("no matching MAC"), "{e}");
    }

    #[test]
    fn pseudo_algorithms_never_selected() {
        let mut p = Preferences::default();
        p.kex = vec![Kex::Curve25519Sha256];
        let s = server(vec![STRICT_S, "ext-info-s", "diffie-hellman-group1-sha1"], vec!["ssh-ed25519"], vec!["aes128-ctr"], vec!["hmac-sha2-256"]);
        let e = negotiate(&p, &s).unwrap_err();
        assert!(matches!(e, Error::NoCommonAlgorithm { category: "key exchange", .. }), "{e}");
        assert!(!e.to_string().contains("kex-strict"), "{e}");
    }

    #[test]
    fn first_kexinit_carries_markers_later_ones_do_not() {
        let p = Preferences::default();
        let first = client_kexinit(&p, [0; 16], true);
        assert!(first.kex.contains(&STRICT_C) && first.kex.contains(&EXT_INFO_C));
        let later = client_kexinit(&p, [0; 16], false);
        assert!(!later.kex.iter().any(|k| is_pseudo(k)));
    }

    #[test]
    fn server_picks_the_clients_first_choice() {
        let p = Preferences::default();
        let ours = server_kexinit(&p, [0; 16], true);
        assert!(ours.kex.contains(&STRICT_S) && !ours.kex.contains(&EXT_INFO_C));
        let client = server(
            vec!["curve25519-sha256", "mlkem768x25519-sha256", EXT_INFO_C, STRICT_C],
            vec!["ssh-ed25519"],
            vec!["aes256-ctr", "chacha20-poly1305@openssh.com"],
            vec!["hmac-sha2-512", "hmac-sha2-256"],
        );
        let n = negotiate_as_server(&ours, &client).unwrap();
        assert_eq!(n.kex, Kex::Curve25519Sha256);
        assert_eq!(n.cipher_c2s, Cipher::Aes256Ctr);
        assert_eq!(n.mac_c2s.map(Mac::name), Some("hmac-sha2-512"));
        // A client offering only pseudo-algorithms and unknown names gets a named error.
        let bad = server(vec![EXT_INFO_C, "diffie-hellman-group1-sha1"], vec!["ssh-ed25519"], vec!["aes128-ctr"], vec!["hmac-sha2-256"]);
        let e = negotiate_as_server(&ours, &bad).unwrap_err();
        assert!(matches!(e, Error::NoCommonAlgorithm { category: "key exchange", .. }), "{e}");
        assert!(!user_alg_acceptable("ssh-rsa") && user_alg_acceptable("rsa-sha2-256"));
    }

    #[test]
    fn compression_none_required() {
        let p = Preferences::default();
        let mut s = server(vec!["curve25519-sha256"], vec!["ssh-ed25519"], vec!["aes128-ctr"], vec!["hmac-sha2-256"]);
        s.comp_s2c = vec!["zlib"];
        assert!(negotiate(&p, &s).is_err());
    }
}
