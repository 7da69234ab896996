//! Tests against fixtures made by the real tools (see `testdata/gen.sh`): dropbearkey and
//! dropbearconvert 2022.83, ssh-keygen 9.2, openssl 3.0. Every private key must yield the
//! tool's own public line and `ssh-keygen -l` fingerprint; signatures are checked against the
//! `ssh-key` crate's verifier, against signatures OpenSSH made (`ssh-keygen -Y sign`), and,
//! when ssh-keygen is installed, by ssh-keygen itself (`-Y check-novalidate`).

use super::*;
use crate::algs::SigAlg;
use crate::error::Error;
use crate::random::TestRng;
use crate::wire::{Reader, Writer};

mod generate;
mod interop;
mod malformed;

struct Fixture {
    file: &'static str,
    data: &'static [u8],
    pass: Option<&'static [u8]>,
    kind: KeyKind,
    /// The tool's public line (`ssh-keygen -y`, `dropbearkey -y`).
    pub_line: &'static str,
    /// `ssh-keygen -lf KEY.pub`.
    fp_line: &'static str,
}

macro_rules! fx {
    ($file:literal, $base:literal, $kind:expr) => {
        fx!($file, $base, $kind, None)
    };
    ($file:literal, $base:literal, $kind:expr, $pass:expr) => {
        Fixture {
            file: $file,
            data: include_bytes!(concat!("../testdata/", $file)),
            pass: $pass,
            kind: $kind,
            pub_line: include_str!(concat!("../testdata/", $base, ".pub")),
            fp_line: include_str!(concat!("../testdata/", $base, ".fp")),
        }
    };
}

const PASS: Option<&[u8]> = Some(b"test-pass");

/// The fixtures of the key kinds this build has (passphrase-protected ones only with the
/// `encrypted-keys` feature).
fn fixtures() -> Vec<Fixture> {
    all_fixtures()
        .into_iter()
        .filter(|f| f.kind.missing_feature().is_none() && (f.pass.is_none() || cfg!(feature = "encrypted-keys")))
        .collect()
}

/// Is the fixture file `name` of a key kind this build has?
fn compiled_in(name: &str) -> bool {
    fixtures().iter().any(|f| f.file == name)
}

fn all_fixtures() -> Vec<Fixture> {
    vec![
        // Made by dropbearkey, and dropbearconvert's exports of them.
        fx!("db-rsa1024.dropbear", "db-rsa1024", KeyKind::Rsa(1024)),
        fx!("db-rsa1024.openssh", "db-rsa1024", KeyKind::Rsa(1024)),
        fx!("db-dss.dropbear", "db-dss", KeyKind::Dsa),
        fx!("db-dss.pem", "db-dss", KeyKind::Dsa),
        fx!("db-ed25519.dropbear", "db-ed25519", KeyKind::Ed25519),
        fx!("db-ed25519.openssh", "db-ed25519", KeyKind::Ed25519),
        fx!("db-ecdsa256.dropbear", "db-ecdsa256", KeyKind::EcdsaP256),
        fx!("db-ecdsa256.openssh", "db-ecdsa256", KeyKind::EcdsaP256),
        // Made by ssh-keygen / openssl, and dropbearconvert's imports of them.
        fx!("rsa2048.pem", "rsa2048", KeyKind::Rsa(2048)),
        fx!("rsa2048.openssh", "rsa2048", KeyKind::Rsa(2048)),
        fx!("rsa2048.pkcs8", "rsa2048", KeyKind::Rsa(2048)),
        fx!("rsa2048.dropbear", "rsa2048", KeyKind::Rsa(2048)),
        fx!("rsa2048-enc.openssh", "rsa2048", KeyKind::Rsa(2048), PASS),
        fx!("dsa.pem", "dsa", KeyKind::Dsa),
        fx!("dsa.openssh", "dsa", KeyKind::Dsa),
        fx!("dsa.pkcs8", "dsa", KeyKind::Dsa),
        fx!("dsa.dropbear", "dsa", KeyKind::Dsa),
        fx!("dsa-enc.openssh", "dsa", KeyKind::Dsa, PASS),
        fx!("ecdsa256.pem", "ecdsa256", KeyKind::EcdsaP256),
        fx!("ecdsa256.openssh", "ecdsa256", KeyKind::EcdsaP256),
        fx!("ecdsa256.pkcs8", "ecdsa256", KeyKind::EcdsaP256),
        fx!("ecdsa256.dropbear", "ecdsa256", KeyKind::EcdsaP256),
        fx!("ecdsa256-enc.openssh", "ecdsa256", KeyKind::EcdsaP256, PASS),
        fx!("ed25519.openssh", "ed25519", KeyKind::Ed25519),
        fx!("ed25519.dropbear", "ed25519", KeyKind::Ed25519),
        fx!("ed25519-enc.openssh", "ed25519", KeyKind::Ed25519, PASS),
        fx!("ed25519-openssl.pkcs8", "ed25519-openssl", KeyKind::Ed25519),
    ]
}

fn load(f: &Fixture) -> PrivateKey {
    match PrivateKey::from_bytes(f.data, f.pass) {
        Ok(k) => k,
        Err(e) => panic!("{}: {e}", f.file),
    }
}

/// "TYPE BASE64" of a public line, without the comment.
fn type_and_blob(line: &str) -> String {
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn key_err(r: Result<PrivateKey, Error>) -> String {
    match r {
        Err(Error::Key(m)) => m,
        Err(other) => panic!("expected Error::Key, got {other:?}"),
        Ok(k) => panic!("expected an error, got {k:?}"),
    }
}

fn expect_crypto(r: Result<(), Error>, what: &str) {
    match r {
        Err(Error::Crypto(_)) => {}
        other => panic!("{what}: expected Error::Crypto, got {other:?}"),
    }
}

fn testdata(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/keys/testdata").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const DROPBEAR_FIXTURES: &[&str] = &[
    "db-rsa1024.dropbear",
    "db-dss.dropbear",
    "db-ed25519.dropbear",
    "db-ecdsa256.dropbear",
    "rsa2048.dropbear",
    "dsa.dropbear",
    "ecdsa256.dropbear",
    "ed25519.dropbear",
];

// ---------------------------------------------------------------------------------------------
// Parsing every format: kind, public blob, fingerprint.

#[test]
fn every_fixture_yields_the_tools_public_key_and_fingerprint() {
    for f in fixtures() {
        let key = load(&f);
        assert_eq!(key.kind(), f.kind, "{}", f.file);
        let public = key.public_key();
        assert_eq!(public.kind(), f.kind, "{}", f.file);
        assert_eq!(public.to_openssh_line(), type_and_blob(f.pub_line), "{}", f.file);
        let from_line = PublicKey::from_openssh_line(f.pub_line).unwrap();
        assert_eq!(from_line, public, "{}", f.file);
        assert_eq!(PublicKey::from_blob(public.blob()).unwrap(), public);
        // "2048 SHA256:... comment (RSA)"
        let fp: Vec<&str> = f.fp_line.split_whitespace().collect();
        assert_eq!(public.fingerprint(), fp[1], "{}", f.file);
        assert_eq!(public.bits().to_string(), fp[0], "{}", f.file);
        assert_eq!(format!("({})", public.kind()), *fp.last().unwrap(), "{}", f.file);
        assert_eq!(public.key_type(), f.pub_line.split_whitespace().next().unwrap());
    }
}

#[test]
fn same_key_in_every_format_is_the_same_key() {
    let groups: &[&[&str]] = &[
        &["rsa2048.pem", "rsa2048.openssh", "rsa2048.pkcs8", "rsa2048.dropbear", "rsa2048-enc.openssh"],
        &["dsa.pem", "dsa.openssh", "dsa.pkcs8", "dsa.dropbear", "dsa-enc.openssh"],
        &["ecdsa256.pem", "ecdsa256.openssh", "ecdsa256.pkcs8", "ecdsa256.dropbear", "ecdsa256-enc.openssh"],
        &["ed25519.openssh", "ed25519.dropbear", "ed25519-enc.openssh"],
    ];
    let all = fixtures();
    let mut rng = TestRng::new(7);
    for group in groups.iter().filter(|g| compiled_in(g[0])) {
        // Without `encrypted-keys` the -enc files are not among the fixtures.
        let keys: Vec<PrivateKey> =
            group.iter().filter(|name| compiled_in(name)).map(|name| load(all.iter().find(|f| f.file == *name).unwrap())).collect();
        let first = &keys[0];
        for (name, k) in group.iter().filter(|name| compiled_in(name)).zip(&keys) {
            assert_eq!(k.public_key(), first.public_key(), "{name}");
            // The same secret: deterministic signatures are byte-identical.
            for alg in k.sig_algs() {
                let a = k.sign(alg, b"same key", &mut rng).unwrap();
                let b = first.sign(alg, b"same key", &mut rng).unwrap();
                assert_eq!(a, b, "{name} {alg}");
            }
        }
    }
}

#[test]
fn sig_algs_best_first() {
    let all = fixtures();
    let get = |kind: KeyKind| load(all.iter().find(|f| f.kind.key_type() == kind.key_type()).unwrap()).sig_algs();
    #[cfg(feature = "legacy")]
    {
        assert_eq!(get(KeyKind::Rsa(0)), vec![SigAlg::RsaSha512, SigAlg::RsaSha256, SigAlg::SshRsa]);
        assert_eq!(get(KeyKind::Dsa), vec![SigAlg::SshDss]);
    }
    #[cfg(all(feature = "rsa", not(feature = "legacy")))]
    assert_eq!(get(KeyKind::Rsa(0)), vec![SigAlg::RsaSha512, SigAlg::RsaSha256]);
    assert_eq!(get(KeyKind::Ed25519), vec![SigAlg::Ed25519]);
    #[cfg(feature = "nistp256")]
    assert_eq!(get(KeyKind::EcdsaP256), vec![SigAlg::EcdsaNistp256]);
}

#[test]
fn text_keys_tolerate_whitespace_nul_and_crlf() {
    for name in ["rsa2048.pem", "ecdsa256.pkcs8", "dsa.pem", "ed25519.openssh", "ecdsa256.pem"] {
        if !compiled_in(name) {
            continue;
        }
        let data = testdata(name);
        let want = PrivateKey::from_bytes(&data, None).unwrap().public_key();
        let mut padded = b"\n  \t".to_vec();
        padded.extend_from_slice(&data);
        padded.extend_from_slice(b" \r\n\n\0");
        assert_eq!(PrivateKey::from_bytes(&padded, None).unwrap().public_key(), want, "{name}");
        let mut c_string = data.clone();
        c_string.push(0);
        assert_eq!(PrivateKey::from_bytes(&c_string, None).unwrap().public_key(), want, "{name}");
        let crlf = String::from_utf8(data).unwrap().replace('\n', "\r\n");
        assert_eq!(PrivateKey::from_bytes(crlf.as_bytes(), None).unwrap().public_key(), want, "{name}");
    }
}

#[test]
#[cfg(feature = "nistp256")]
fn openssl_ec_parameters_block_before_the_key_is_skipped() {
    let key = testdata("ecdsa256.pem");
    let mut data = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n".to_vec();
    data.extend_from_slice(&key);
    let want = PrivateKey::from_bytes(&key, None).unwrap().public_key();
    assert_eq!(PrivateKey::from_bytes(&data, None).unwrap().public_key(), want);
}

#[test]
fn unencrypted_key_ignores_a_passphrase() {
    let k = PrivateKey::from_bytes(&testdata("ed25519.openssh"), Some(b"whatever")).unwrap();
    assert_eq!(k.kind(), KeyKind::Ed25519);
    let k = PrivateKey::from_bytes(&testdata("ed25519.dropbear"), Some(b"whatever")).unwrap();
    assert_eq!(k.kind(), KeyKind::Ed25519);
}

// ---------------------------------------------------------------------------------------------
// Signing and verifying.

#[test]
fn sign_then_verify_every_key_every_alg() {
    let mut rng = TestRng::new(1);
    let data = b"session id || userauth request";
    for f in fixtures() {
        let key = load(&f);
        let public = PublicKey::from_openssh_line(f.pub_line).unwrap();
        assert!(!key.sig_algs().is_empty());
        for alg in key.sig_algs() {
            let sig = key.sign(alg, data, &mut rng).unwrap();
            let mut r = Reader::new(&sig);
            assert_eq!(r.utf8().unwrap(), alg.name());
            let inner = r.string().unwrap();
            r.finish().unwrap();
            match alg {
                SigAlg::Ed25519 => assert_eq!(inner.len(), 64),
                #[cfg(feature = "legacy")]
                SigAlg::SshDss => assert_eq!(inner.len(), 40),
                #[cfg(feature = "nistp256")]
                SigAlg::EcdsaNistp256 => {
                    let mut ir = Reader::new(inner);
                    assert!(ir.mpint().unwrap().len() <= 32);
                    assert!(ir.mpint().unwrap().len() <= 32);
                    ir.finish().unwrap();
                }
                #[allow(unreachable_patterns)]
                _ => assert_eq!(inner.len() * 8, public.bits(), "RSA signature is modulus-sized"),
            }
            public.verify(alg, data, &sig).unwrap_or_else(|e| panic!("{} {alg}: {e}", f.file));
        }
    }
}

/// ssh-dss is FIPS 186-2 DSA: a 160-bit q with a p of any size in 1024..=3072 bits. The
/// `dsa` crate's checked constructor takes only the FIPS 186-4 pairs (1024/160, 2048/224, ...),
/// so a 2048-bit p with a 160-bit q (openssl makes those) is the case that needs care.
#[test]
#[cfg(feature = "legacy")]
fn dsa_with_2048_bit_p_and_160_bit_q_is_usable() {
    let mut rng = TestRng::new(7);
    let line = String::from_utf8(testdata("dsa2048q160.pub")).unwrap();
    let public = PublicKey::from_openssh_line(&line).unwrap();
    assert_eq!((public.kind(), public.bits()), (KeyKind::Dsa, 2048));
    for name in ["dsa2048q160.pem", "dsa2048q160.pkcs8"] {
        let key = PrivateKey::from_bytes(&testdata(name), None).unwrap();
        assert_eq!(key.public_key(), public, "{name}");
        assert!(!key.sig_algs().is_empty());
        for alg in key.sig_algs() {
            let sig = key.sign(alg, b"data", &mut rng).unwrap();
            public.verify(alg, b"data", &sig).unwrap_or_else(|e| panic!("{name} {alg}: {e}"));
            expect_crypto(public.verify(alg, b"Data", &sig), name);
        }
    }
}

#[test]
fn verify_rejects_tampering() {
    let mut rng = TestRng::new(2);
    let data = b"exchange hash H".to_vec();
    for f in fixtures().iter().filter(|f| f.file.ends_with(".dropbear") || f.file == "rsa2048.pem") {
        let key = load(f);
        let public = key.public_key();
        for alg in key.sig_algs() {
            let what = format!("{} {alg}", f.file);
            let sig = key.sign(alg, &data, &mut rng).unwrap();
            public.verify(alg, &data, &sig).unwrap();
            // Data altered by one bit, anywhere.
            for bit in 0..data.len() * 8 {
                let mut d = data.clone();
                d[bit / 8] ^= 1 << (bit % 8);
                expect_crypto(public.verify(alg, &d, &sig), &what);
            }
            // Signature altered by one bit inside the signature value.
            let mut r = Reader::new(&sig);
            r.string().unwrap();
            let inner = r.string().unwrap().to_vec();
            for i in [0, inner.len() / 2, inner.len() - 1] {
                let mut bad = inner.clone();
                bad[i] ^= 0x01;
                let mut w = Writer::new();
                w.str(alg.name()).string(&bad);
                expect_crypto(public.verify(alg, &data, &w.buf), &what);
            }
            // Truncated and extended signature blobs.
            for cut in 0..sig.len() {
                expect_crypto(public.verify(alg, &data, &sig[..cut]), &what);
            }
            let mut longer = sig.clone();
            longer.push(0);
            expect_crypto(public.verify(alg, &data, &longer), &what);
            // Inner signature one byte longer (lengths consistent): wrong length.
            let mut w = Writer::new();
            let mut padded = inner.clone();
            padded.push(0);
            w.str(alg.name()).string(&padded);
            expect_crypto(public.verify(alg, &data, &w.buf), &what);
            // The same signature under every other algorithm name.
            for other in SigAlg::ALL.iter().copied().filter(|a| *a != alg) {
                let mut w = Writer::new();
                w.str(other.name()).string(&inner);
                expect_crypto(public.verify(alg, &data, &w.buf), &what);
                expect_crypto(public.verify(other, &data, &w.buf), &what);
                expect_crypto(public.verify(other, &data, &sig), &what);
            }
        }
    }
}

#[test]
#[cfg(feature = "rsa")]
fn rsa_hash_algorithms_are_not_interchangeable() {
    let key = PrivateKey::from_bytes(&testdata("rsa2048.pem"), None).unwrap();
    let public = key.public_key();
    let mut rng = TestRng::new(3);
    let s512 = key.sign(SigAlg::RsaSha512, b"m", &mut rng).unwrap();
    let mut r = Reader::new(&s512);
    r.string().unwrap();
    let inner = r.string().unwrap();
    let mut relabelled = Writer::new();
    relabelled.str("rsa-sha2-256").string(inner);
    let e = public.verify(SigAlg::RsaSha256, b"m", &relabelled.buf).unwrap_err();
    assert!(e.to_string().contains("rsa-sha2-256 signature verification failed"), "{e}");
}

#[test]
#[cfg(all(feature = "rsa", feature = "nistp256"))]
fn sign_and_verify_refuse_algorithms_of_another_key_type() {
    let mut rng = TestRng::new(4);
    let ed = PrivateKey::from_bytes(&testdata("ed25519.openssh"), None).unwrap();
    let rsa = PrivateKey::from_bytes(&testdata("rsa2048.pem"), None).unwrap();
    assert!(matches!(ed.sign(SigAlg::RsaSha256, b"x", &mut rng), Err(Error::Key(_))));
    assert!(matches!(rsa.sign(SigAlg::Ed25519, b"x", &mut rng), Err(Error::Key(_))));
    assert!(matches!(rsa.sign(SigAlg::EcdsaNistp256, b"x", &mut rng), Err(Error::Key(_))));
    let sig = ed.sign(SigAlg::Ed25519, b"x", &mut rng).unwrap();
    expect_crypto(rsa.public_key().verify(SigAlg::Ed25519, b"x", &sig), "ed25519 sig on rsa key");
    let other_ed = PrivateKey::from_bytes(&testdata("db-ed25519.dropbear"), None).unwrap();
    expect_crypto(other_ed.public_key().verify(SigAlg::Ed25519, b"x", &sig), "other ed25519 key");
}

#[test]
fn signatures_are_deterministic_where_specified() {
    // Ed25519 by definition, ECDSA and DSA by RFC 6979, RSA PKCS#1 v1.5 by construction
    // (blinding changes the computation, not the result).
    let mut rng = TestRng::new(5);
    for f in fixtures().iter().filter(|f| f.file.ends_with(".dropbear")) {
        let key = load(f);
        for alg in key.sig_algs() {
            let a = key.sign(alg, b"msg", &mut rng).unwrap();
            let b = key.sign(alg, b"msg", &mut rng).unwrap();
            assert_eq!(a, b, "{} {alg}", f.file);
            assert_ne!(a, key.sign(alg, b"msh", &mut rng).unwrap());
        }
    }
}

#[test]
fn ed25519_rfc8032_test_vector_1() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    let seed: [u8; 32] =
        hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
    let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let want_sig = hex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    let key = PrivateKey::ed25519(&seed, Some(&public)).unwrap();
    let sig = key.sign(SigAlg::Ed25519, b"", &mut TestRng::new(0)).unwrap();
    let mut w = Writer::new();
    w.str("ssh-ed25519").string(&want_sig);
    assert_eq!(sig, w.buf);
    key.public_key().verify(SigAlg::Ed25519, b"", &w.buf).unwrap();
    let mut blob = Writer::new();
    blob.str("ssh-ed25519").string(&public);
    assert_eq!(key.public_key().blob(), &blob.buf[..]);
}

#[test]
#[cfg(feature = "rsa")]
fn rsa_signature_shorter_than_modulus_is_padded_longer_is_refused() {
    // Find a message whose signature starts with a zero byte (about 1 in 256), then send it
    // without that byte as some old implementations do; OpenSSH accepts it, so do we.
    let key = PrivateKey::from_bytes(&testdata("db-rsa1024.dropbear"), None).unwrap();
    let public = key.public_key();
    let mut rng = TestRng::new(6);
    let mut found = false;
    for i in 0u32..20_000 {
        let msg = i.to_be_bytes();
        let sig = key.sign(SigAlg::RsaSha256, &msg, &mut rng).unwrap();
        let mut r = Reader::new(&sig);
        r.string().unwrap();
        let inner = r.string().unwrap();
        if inner[0] != 0 {
            continue;
        }
        let mut short = Writer::new();
        short.str("rsa-sha2-256").string(&inner[1..]);
        public.verify(SigAlg::RsaSha256, &msg, &short.buf).unwrap();
        let mut long = Writer::new();
        let mut extra = vec![0u8];
        extra.extend_from_slice(inner);
        long.str("rsa-sha2-256").string(&extra);
        expect_crypto(public.verify(SigAlg::RsaSha256, &msg, &long.buf), "longer than modulus");
        found = true;
        break;
    }
    assert!(found);
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[test]
fn debug_output_shows_no_secret() {
    for f in fixtures() {
        let key = load(&f);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public_key().fingerprint()), "{shown}");
        assert!(shown.contains("secret hidden"));
        assert!(shown.len() < 120, "{shown}");
    }
}

#[test]
fn secret_key_types_zeroize_on_drop() {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    #[cfg(feature = "rsa")]
    zeroizes_on_drop::<rsa::RsaPrivateKey>();
    zeroizes_on_drop::<ed25519_dalek::SigningKey>();
    #[cfg(feature = "nistp256")]
    zeroizes_on_drop::<p256::ecdsa::SigningKey>();
    // dsa::SigningKey keeps x in a Zeroizing<BigUint> (checked by reading dsa 0.6's source);
    // it does not implement the marker trait.
}

#[test]
fn key_kind_names() {
    assert_eq!(KeyKind::Rsa(3072).to_string(), "RSA");
    assert_eq!(KeyKind::Dsa.to_string(), "DSA");
    assert_eq!(KeyKind::Ed25519.to_string(), "ED25519");
    assert_eq!(KeyKind::EcdsaP256.to_string(), "ECDSA");
    for k in [KeyKind::Rsa(0), KeyKind::Dsa, KeyKind::Ed25519, KeyKind::EcdsaP256] {
        assert_eq!(KeyKind::from_key_type(k.key_type()), Some(k));
    }
}


// ---------------------------------------------------------------------------------------------
// Key kinds a build leaves out: recognised, refused with the feature they need.

/// Every fixture of a left-out kind, private key and public line, gives the one clear error.
#[cfg(not(all(feature = "legacy", feature = "nistp256")))]
fn left_out_kind_is_refused(kind: KeyKind, feature: &str) {
    let want = format!("{kind} keys need the `{feature}` feature of sshbridge");
    assert_eq!(kind.missing_feature(), Some(feature));
    let mut seen = 0;
    for f in all_fixtures().into_iter().filter(|f| f.kind.key_type() == kind.key_type()) {
        assert_eq!(key_err(PrivateKey::from_bytes(f.data, f.pass)), want, "{}", f.file);
        match PublicKey::from_openssh_line(f.pub_line) {
            Err(Error::Key(m)) => assert_eq!(m, want, "{}", f.file),
            other => panic!("{}: {other:?}", f.file),
        }
        seen += 1;
    }
    assert!(seen >= 4);
}

#[test]
#[cfg(not(feature = "rsa"))]
fn rsa_keys_need_the_rsa_feature() {
    left_out_kind_is_refused(KeyKind::Rsa(2048), "rsa");
    // The Dropbear blob of an RSA public key is refused the same way.
    let line = include_str!("../testdata/rsa2048.pub");
    let b64 = line.split_whitespace().nth(1).unwrap();
    let blob = <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64).unwrap();
    assert!(matches!(PublicKey::from_blob(&blob), Err(Error::Key(m)) if m.contains("`rsa` feature")));
}

#[test]
#[cfg(not(feature = "legacy"))]
fn dsa_keys_need_the_legacy_feature() {
    left_out_kind_is_refused(KeyKind::Dsa, "legacy");
}

#[test]
#[cfg(not(feature = "nistp256"))]
fn ecdsa_keys_need_the_nistp256_feature() {
    left_out_kind_is_refused(KeyKind::EcdsaP256, "nistp256");
}

#[test]
#[cfg(not(feature = "dh"))]
fn dh_groups_need_the_dh_feature() {
    // Not negotiable: unknown names, not offered.
    assert_eq!(crate::algs::Kex::from_name("diffie-hellman-group14-sha256"), None);
    assert!(crate::algs::Kex::ALL.iter().all(|k| !k.name().starts_with("diffie-hellman")));
}

/// Without `encrypted-keys`, every passphrase-protected fixture (of a kind this build has) and
/// writing a key with a passphrase give the one error naming the feature; plain keys still work.
#[cfg(not(feature = "encrypted-keys"))]
#[test]
fn encrypted_keys_left_out_are_refused() {
    let want = "passphrase-protected OpenSSH keys need the `encrypted-keys` feature of sshbridge";
    let mut seen = 0;
    for f in all_fixtures().into_iter().filter(|f| f.pass.is_some() && f.kind.missing_feature().is_none()) {
        assert_eq!(key_err(PrivateKey::from_bytes(f.data, f.pass)), want, "{}", f.file);
        assert_eq!(key_err(PrivateKey::from_bytes(f.data, None)), want, "{}", f.file);
        seen += 1;
    }
    assert!(seen >= 1, "{seen}");
    let key = PrivateKey::from_bytes(&testdata("ed25519.openssh"), None).unwrap();
    match key.to_openssh_with(Some("x"), &mut crate::random::TestRng::new(1)) {
        Err(Error::Key(m)) => assert_eq!(m, want),
        other => panic!("expected the feature error, got {other:?}"),
    }
    assert!(key.to_openssh_with(Some(""), &mut crate::random::TestRng::new(1)).is_ok());
}
