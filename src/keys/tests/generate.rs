//! Generation and export: every kind this build has is generated, written in OpenSSH's format
//! (plain and encrypted) and Dropbear's, and read back; the Dropbear files made by the real
//! tools come out byte for byte; sizes and left-out kinds are refused with clear errors.
//! (ssh-keygen and dropbearkey reading our output: `tests/interop_keygen.rs`.)

use super::*;

/// The kinds this build generates, RSA at the smallest size to keep the tests fast.
fn kinds() -> Vec<KeyKind> {
    let mut v = vec![KeyKind::Ed25519];
    if cfg!(feature = "nistp256") {
        v.push(KeyKind::EcdsaP256);
    }
    if cfg!(feature = "rsa") {
        v.push(KeyKind::Rsa(2048));
    }
    v
}

/// A generated key signs, and its public half verifies the signature.
fn assert_works(key: &PrivateKey, what: &str) {
    let mut rng = TestRng::new(3);
    for alg in key.sig_algs() {
        let sig = key.sign(alg, b"generated", &mut rng).unwrap();
        key.public_key().verify(alg, b"generated", &sig).unwrap_or_else(|e| panic!("{what} {alg}: {e}"));
        expect_crypto(key.public_key().verify(alg, b"generatee", &sig), what);
    }
}

/// The base64 body of OpenSSH armour, decoded.
fn openssh_binary(text: &str) -> Vec<u8> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    <base64ct::Base64 as base64ct::Encoding>::decode_vec(&body).unwrap()
}

#[test]
fn generated_keys_round_trip_through_every_export() {
    for kind in kinds() {
        let key = PrivateKey::generate_with(kind, &mut TestRng::new(11)).unwrap();
        assert_eq!(key.kind(), kind);
        assert_eq!(key.public_key().kind(), kind);
        assert_works(&key, &kind.to_string());

        // OpenSSH, plain: armour as ssh-keygen writes it, cipher "none", reads back.
        let text = key.to_openssh_with(None, &mut TestRng::new(1)).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"), "{kind}");
        assert!(text.ends_with("-----END OPENSSH PRIVATE KEY-----\n"), "{kind}");
        assert!(text.lines().all(|l| l.len() <= 70), "{kind}");
        let bin = openssh_binary(&text);
        let mut r = Reader::new(&bin);
        assert_eq!(r.bytes(15).unwrap(), b"openssh-key-v1\0");
        assert_eq!(r.string().unwrap(), b"none");
        assert_eq!(r.string().unwrap(), b"none");
        let back = PrivateKey::from_bytes(text.as_bytes(), None).unwrap();
        assert_eq!(back.public_key(), key.public_key(), "{kind}");
        assert_works(&back, &kind.to_string());

        // OpenSSH, encrypted: aes256-ctr + bcrypt (16 rounds), needs the passphrase.
        if cfg!(feature = "encrypted-keys") {
            encrypted_round_trip(&key, kind);
        }

        // Dropbear: reads back, and starts with the type name.
        let db = key.to_dropbear().unwrap();
        let back = PrivateKey::from_bytes(&db, None).unwrap();
        assert_eq!(back.public_key(), key.public_key(), "{kind}");
        assert_eq!(Reader::new(&db).string().unwrap(), kind.key_type().as_bytes());
        assert_eq!(back.to_dropbear().unwrap(), db, "{kind}: Dropbear export is stable");
    }
}

/// OpenSSH's format with a passphrase (the `encrypted-keys` feature).
fn encrypted_round_trip(key: &PrivateKey, kind: KeyKind) {
    {
        let text = key.to_openssh_with(Some("sesame"), &mut TestRng::new(2)).unwrap();
        let bin = openssh_binary(&text);
        let mut r = Reader::new(&bin);
        r.bytes(15).unwrap();
        assert_eq!(r.string().unwrap(), b"aes256-ctr");
        assert_eq!(r.string().unwrap(), b"bcrypt");
        let mut kdf = Reader::new(r.string().unwrap());
        assert_eq!(kdf.string().unwrap().len(), 16, "salt");
        assert_eq!(kdf.u32().unwrap(), 16, "rounds");
        let back = PrivateKey::from_bytes(text.as_bytes(), Some(b"sesame")).unwrap();
        assert_eq!(back.public_key(), key.public_key(), "{kind}");
        assert_eq!(key_err(PrivateKey::from_bytes(text.as_bytes(), None)), "encrypted key needs a passphrase");
        assert_eq!(key_err(PrivateKey::from_bytes(text.as_bytes(), Some(b"sesamE"))), "wrong passphrase");
        // No secret in clear: the Ed25519 seed (after "ssh-ed25519" and a length in the
        // Dropbear form), or the end of ECDSA's d or RSA's q (the last Dropbear field).
        let db = key.to_dropbear().unwrap();
        let secret = if kind == KeyKind::Ed25519 { &db[19..35] } else { &db[db.len() - 16..] };
        assert!(!bin.windows(16).any(|w| w == secret), "{kind}: secret in clear");
        let plain = openssh_binary(&key.to_openssh_with(None, &mut TestRng::new(1)).unwrap());
        assert!(plain.windows(16).any(|w| w == secret), "{kind}: the check above can fail");
    }
}

#[test]
fn empty_passphrase_means_unencrypted() {
    let key = PrivateKey::generate_with(KeyKind::Ed25519, &mut TestRng::new(5)).unwrap();
    let text = key.to_openssh_with(Some(""), &mut TestRng::new(1)).unwrap();
    let plain = key.to_openssh_with(None, &mut TestRng::new(1)).unwrap();
    assert_eq!(*text, *plain);
    assert_eq!(PrivateKey::from_bytes(text.as_bytes(), None).unwrap().public_key(), key.public_key());
}

#[test]
fn generation_follows_the_rng() {
    for kind in kinds() {
        let a = PrivateKey::generate_with(kind, &mut TestRng::new(21)).unwrap();
        let b = PrivateKey::generate_with(kind, &mut TestRng::new(21)).unwrap();
        let c = PrivateKey::generate_with(kind, &mut TestRng::new(22)).unwrap();
        assert_eq!(a.public_key(), b.public_key(), "{kind}");
        assert_ne!(a.public_key(), c.public_key(), "{kind}");
        // kind() describes the key well enough to make another like it.
        assert_eq!(PrivateKey::generate_with(a.kind(), &mut TestRng::new(23)).unwrap().kind(), kind);
    }
}

/// The Dropbear files dropbearkey (and dropbearconvert) wrote come out byte for byte.
#[test]
fn dropbear_export_reproduces_the_tools_files() {
    let mut checked = 0;
    for f in fixtures().iter().filter(|f| f.file.ends_with(".dropbear")) {
        let key = load(f);
        assert_eq!(&*key.to_dropbear().unwrap(), f.data, "{}", f.file);
        checked += 1;
    }
    assert!(checked >= 2, "{checked}");
}

/// Keys read from any format are written out again and read back the same.
#[test]
fn fixtures_export_to_openssh_and_back() {
    for f in fixtures() {
        let key = load(&f);
        let pass = cfg!(feature = "encrypted-keys").then_some("x");
        let text = key.to_openssh_with(pass, &mut TestRng::new(4)).unwrap();
        let back = PrivateKey::from_bytes(text.as_bytes(), pass.map(str::as_bytes)).unwrap();
        assert_eq!(back.public_key(), key.public_key(), "{}", f.file);
        let db = key.to_dropbear().unwrap();
        assert_eq!(PrivateKey::from_bytes(&db, None).unwrap().public_key(), key.public_key(), "{}", f.file);
    }
}

fn bad_argument(r: Result<PrivateKey, Error>) -> String {
    match r {
        Err(Error::BadArgument(m)) => m,
        other => panic!("expected BadArgument, got {other:?}"),
    }
}

#[test]
fn dsa_is_not_generated() {
    let m = bad_argument(PrivateKey::generate_with(KeyKind::Dsa, &mut TestRng::new(1)));
    assert!(m.contains("DSA keys are not generated"), "{m}");
}

#[test]
#[cfg(feature = "rsa")]
fn rsa_sizes_outside_2048_to_16384_are_refused() {
    for bits in [0, 1024, 2047, 16385] {
        let m = bad_argument(PrivateKey::generate_with(KeyKind::Rsa(bits), &mut TestRng::new(1)));
        assert!(m.contains(&format!("cannot generate a {bits}-bit RSA key")), "{m}");
        assert!(m.contains("2048 to 16384 bits"), "{m}");
    }
}

#[test]
#[cfg(not(feature = "rsa"))]
fn rsa_generation_needs_the_rsa_feature() {
    let m = key_err(PrivateKey::generate_with(KeyKind::Rsa(3072), &mut TestRng::new(1)));
    assert_eq!(m, "RSA keys need the `rsa` feature of sshbridge");
}

#[test]
#[cfg(not(feature = "nistp256"))]
fn ecdsa_generation_needs_the_nistp256_feature() {
    let m = key_err(PrivateKey::generate_with(KeyKind::EcdsaP256, &mut TestRng::new(1)));
    assert_eq!(m, "ECDSA keys need the `nistp256` feature of sshbridge");
}
