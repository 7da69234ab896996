//! Inputs that are not usable keys: every truncation and corruption of Dropbear's format,
//! OpenSSH structures built by hand, public keys given as private ones, unsupported formats,
//! and strict public-key blob and line parsing. Each must be a clear `Error::Key`, never a panic.

use super::*;

// ---------------------------------------------------------------------------------------------
// Dropbear's binary format.

/// Length of "string name, mpint e, mpint n, mpint d": an old-style RSA key without p, q.
fn rsa_prefix_len(data: &[u8]) -> usize {
    let mut r = Reader::new(data);
    r.string().unwrap();
    for _ in 0..3 {
        r.mpint().unwrap();
    }
    data.len() - r.remaining()
}

#[test]
#[cfg(feature = "rsa")]
fn old_dropbear_rsa_keys_without_p_and_q_still_sign() {
    let mut rng = TestRng::new(10);
    for name in ["db-rsa1024.dropbear", "rsa2048.dropbear"] {
        let data = testdata(name);
        let full = PrivateKey::from_bytes(&data, None).unwrap();
        let old = PrivateKey::from_bytes(&data[..rsa_prefix_len(&data)], None).unwrap();
        assert_eq!(old.public_key(), full.public_key(), "{name}");
        for alg in old.sig_algs() {
            let sig = old.sign(alg, b"old key", &mut rng).unwrap();
            assert_eq!(sig, full.sign(alg, b"old key", &mut rng).unwrap(), "{name} {alg}");
            full.public_key().verify(alg, b"old key", &sig).unwrap();
        }
    }
}

#[test]
fn every_truncation_of_a_dropbear_key_is_an_error() {
    for name in DROPBEAR_FIXTURES {
        let data = testdata(name);
        let old_rsa = name.contains("rsa").then(|| rsa_prefix_len(&data));
        for cut in 0..data.len() {
            if Some(cut) == old_rsa {
                continue; // the old format without p and q, tested above
            }
            let r = PrivateKey::from_bytes(&data[..cut], None);
            assert!(matches!(r, Err(Error::Key(_))), "{name} cut at {cut}: {r:?}");
        }
        let msg = key_err(PrivateKey::from_bytes(&data[..data.len() - 1], None));
        assert_eq!(msg, "truncated dropbear key", "{name}");
    }
}

#[test]
fn every_corrupted_byte_of_a_dropbear_key_is_an_error() {
    // Lengths, names, values, the leading zero of an mpint: every change must be caught,
    // by the reader or by the checks that the private and public halves agree.
    for name in DROPBEAR_FIXTURES {
        let data = testdata(name);
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x01;
            let r = PrivateKey::from_bytes(&bad, None);
            assert!(matches!(r, Err(Error::Key(_))), "{name} byte {i}: {r:?}");
        }
    }
}

#[test]
fn dropbear_trailing_bytes_are_an_error() {
    for name in DROPBEAR_FIXTURES {
        let mut data = testdata(name);
        data.push(0);
        let msg = key_err(PrivateKey::from_bytes(&data, None));
        assert!(msg.contains("trailing"), "{name}: {msg}");
    }
}

#[test]
fn dropbear_key_types_we_do_not_support() {
    let msg = key_err(PrivateKey::from_bytes(&testdata("db-ecdsa384.dropbear"), None));
    assert_eq!(msg, "unsupported key type ecdsa-sha2-nistp384");
    let mut w = Writer::new();
    w.str("ssh-ed448").string(&[0u8; 114]);
    let msg = key_err(PrivateKey::from_bytes(&w.buf, None));
    assert_eq!(msg, "unsupported key type ssh-ed448");
}

#[test]
fn dropbear_ed25519_with_mismatched_public_half_is_refused() {
    let data = testdata("ed25519.dropbear");
    let other = testdata("db-ed25519.dropbear");
    // Same layout: replace the last 32 bytes (the public half) with another key's.
    let mut mixed = data[..data.len() - 32].to_vec();
    mixed.extend_from_slice(&other[other.len() - 32..]);
    let msg = key_err(PrivateKey::from_bytes(&mixed, None));
    assert!(msg.contains("does not match"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Clear errors for things that are not usable private keys.

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    for name in ["rsa2048-enc.openssh", "ed25519-enc.openssh", "ecdsa256-enc.openssh", "dsa-enc.openssh"] {
        if !compiled_in(name) {
            continue;
        }
        let data = testdata(name);
        assert_eq!(key_err(PrivateKey::from_bytes(&data, None)), "encrypted key needs a passphrase");
        assert_eq!(key_err(PrivateKey::from_bytes(&data, Some(b"wrong-pass"))), "wrong passphrase");
        assert_eq!(key_err(PrivateKey::from_bytes(&data, Some(b""))), "wrong passphrase");
        PrivateKey::from_bytes(&data, PASS).unwrap();
    }
}

#[test]
fn public_keys_given_as_private_keys_are_named_as_such() {
    for f in fixtures() {
        let msg = key_err(PrivateKey::from_bytes(f.pub_line.as_bytes(), None));
        assert_eq!(msg, "not a private key (looks like a public key)", "{}", f.file);
        let blob = PublicKey::from_openssh_line(f.pub_line).unwrap().blob().to_vec();
        let msg = key_err(PrivateKey::from_bytes(&blob, None));
        assert_eq!(msg, "not a private key (looks like a public key blob)", "{}", f.file);
    }
    let spki = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    assert_eq!(key_err(PrivateKey::from_bytes(spki.as_bytes(), None)), "not a private key (looks like a public key)");
    let rfc4716 = "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n";
    assert_eq!(key_err(PrivateKey::from_bytes(rfc4716.as_bytes(), None)), "not a private key (looks like a public key)");
}

#[test]
fn unsupported_formats_and_types_say_so() {
    let cases: &[(&str, &str)] = &[
        ("ecdsa384.openssh", "unsupported key type ecdsa-sha2-nistp384"),
        ("legacy-enc.pem", "encrypted PEM keys (OpenSSL's legacy encryption) are not supported"),
        ("ecdsa256-enc.pkcs8", "encrypted PKCS#8 keys are not supported"),
    ];
    for (name, want) in cases {
        let msg = key_err(PrivateKey::from_bytes(&testdata(name), PASS));
        assert!(msg.starts_with(want), "{name}: {msg}");
    }
    assert_eq!(key_err(PrivateKey::from_bytes(b"", None)), "empty key data");
    assert_eq!(key_err(PrivateKey::from_bytes(b" \n\0\0", None)), "empty key data");
    assert_eq!(key_err(PrivateKey::from_bytes(b"hello", None)), "unrecognised private key format");
    let ppk = b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n";
    assert!(key_err(PrivateKey::from_bytes(ppk, None)).starts_with("PuTTY keys are not supported"));
    let x509 = b"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
    assert!(key_err(PrivateKey::from_bytes(x509, None)).contains("certificate"));
    let garbage_pem = b"-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----\n";
    assert!(key_err(PrivateKey::from_bytes(garbage_pem, None)).starts_with("malformed PEM RSA PRIVATE KEY"));
}

#[test]
fn truncated_text_keys_are_errors_not_panics() {
    for name in ["rsa2048.pem", "dsa.pem", "ecdsa256.pkcs8", "ed25519.openssh", "ed25519-enc.openssh", "dsa.pkcs8"] {
        let data = testdata(name);
        for cut in (0..data.len()).step_by(7) {
            assert!(PrivateKey::from_bytes(&data[..cut], PASS).is_err(), "{name} cut at {cut}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public keys: blobs and lines.

#[test]
#[cfg(feature = "rsa")]
fn public_line_parsing() {
    let f = &fixtures()[8]; // rsa2048.pem
    let want = PublicKey::from_openssh_line(f.pub_line).unwrap();
    let (ty, b64) = {
        let mut w = f.pub_line.split_whitespace();
        (w.next().unwrap(), w.next().unwrap())
    };
    for line in [
        format!("{ty} {b64}"),
        format!("  {ty}\t{b64}  a comment with spaces  \n"),
        format!("{ty} {b64} user@host\0"),
        format!("{ty} {}", b64.trim_end_matches('=')),
    ] {
        assert_eq!(PublicKey::from_openssh_line(&line).unwrap(), want, "{line:?}");
    }
    let ed_line = fixtures().iter().find(|f| f.kind == KeyKind::Ed25519).unwrap().pub_line;
    let ed_b64 = ed_line.split_whitespace().nth(1).unwrap();
    let bad = [
        (format!("ssh-rsa {ed_b64}"), "says ssh-rsa but the key is ssh-ed25519"),
        (format!("ssh-foo {b64}"), "unsupported key type ssh-foo"),
        (format!("{ty} {}!", &b64[..b64.len() - 4]), "bad base64"),
        (format!("{ty} {}", &b64[..b64.len() - 8]), ""),
        (ty.to_string(), "no base64 key"),
        (String::new(), "empty public key line"),
        (format!("from=\"host\" {ty} {b64}"), "unsupported key type"),
    ];
    for (line, want_msg) in bad {
        match PublicKey::from_openssh_line(&line) {
            Err(Error::Key(m)) => assert!(m.contains(want_msg), "{line:?}: {m}"),
            other => panic!("{line:?}: {other:?}"),
        }
    }
}

#[cfg(all(feature = "legacy", feature = "nistp256"))]
fn rsa_parts(line: &str) -> (Vec<u8>, Vec<u8>) {
    let key = PublicKey::from_openssh_line(line).unwrap();
    let mut r = Reader::new(key.blob());
    r.string().unwrap();
    (r.mpint().unwrap().to_vec(), r.mpint().unwrap().to_vec())
}

#[cfg(all(feature = "legacy", feature = "nistp256"))]
fn expect_key_err(blob: &[u8], want: &str) {
    match PublicKey::from_blob(blob) {
        Err(Error::Key(m)) => assert!(m.contains(want), "{m} (wanted {want:?})"),
        other => panic!("wanted Error::Key containing {want:?}, got {other:?}"),
    }
}

#[test]
#[cfg(all(feature = "legacy", feature = "nistp256"))]
fn blob_validation_is_strict() {
    let all = fixtures();
    for f in &all {
        let key = PublicKey::from_openssh_line(f.pub_line).unwrap();
        let mut longer = key.blob().to_vec();
        longer.push(0);
        expect_key_err(&longer, "trailing");
        for cut in 0..key.blob().len() {
            assert!(matches!(PublicKey::from_blob(&key.blob()[..cut]), Err(Error::Key(_))));
        }
    }
    // Ed25519 must be 32 bytes.
    for len in [0, 31, 33, 64] {
        let mut w = Writer::new();
        w.str("ssh-ed25519").string(&vec![9u8; len]);
        expect_key_err(&w.buf, "not 32");
    }
    // RSA: n of 1023 bits, even e, e = 1, even n.
    let (e, n) = rsa_parts(all[8].pub_line);
    let mut small_n = vec![0x7fu8; 128];
    small_n[127] = 0x01;
    let mut w = Writer::new();
    w.str("ssh-rsa").mpint(&e).mpint(&small_n);
    expect_key_err(&w.buf, "1023 bits");
    for bad_e in [&[0x01, 0x00, 0x00][..], &[0x01], &[]] {
        let mut w = Writer::new();
        w.str("ssh-rsa").mpint(bad_e).mpint(&n);
        expect_key_err(&w.buf, "unusable RSA public key");
    }
    let mut even_n = n.clone();
    *even_n.last_mut().unwrap() &= 0xfe;
    let mut w = Writer::new();
    w.str("ssh-rsa").mpint(&e).mpint(&even_n);
    expect_key_err(&w.buf, "unusable RSA public key");
    // ECDSA: the curve name, compressed points, points off the curve.
    let ec = PublicKey::from_openssh_line(all[6].pub_line).unwrap();
    let mut r = Reader::new(ec.blob());
    r.string().unwrap();
    r.string().unwrap();
    let point = r.string().unwrap().to_vec();
    let mut w = Writer::new();
    w.str("ecdsa-sha2-nistp256").str("nistp384").string(&point);
    expect_key_err(&w.buf, "not nistp256");
    let mut compressed = vec![0x02 | (point[64] & 1)];
    compressed.extend_from_slice(&point[1..33]);
    let mut w = Writer::new();
    w.str("ecdsa-sha2-nistp256").str("nistp256").string(&compressed);
    expect_key_err(&w.buf, "uncompressed");
    let mut off = point.clone();
    off[64] ^= 1;
    let mut w = Writer::new();
    w.str("ecdsa-sha2-nistp256").str("nistp256").string(&off);
    expect_key_err(&w.buf, "not a point on the curve");
    // DSA: y not in the subgroup, g = 1, q of the wrong size.
    let dsa = PublicKey::from_openssh_line(all[2].pub_line).unwrap();
    let mut r = Reader::new(dsa.blob());
    r.string().unwrap();
    let (p, q, g, y) = (r.mpint().unwrap(), r.mpint().unwrap(), r.mpint().unwrap(), r.mpint().unwrap());
    let mut bad_y = y.to_vec();
    *bad_y.last_mut().unwrap() ^= 1;
    let mut w = Writer::new();
    w.str("ssh-dss").mpint(p).mpint(q).mpint(g).mpint(&bad_y);
    expect_key_err(&w.buf, "unusable DSA public value y");
    let mut w = Writer::new();
    w.str("ssh-dss").mpint(p).mpint(q).mpint(&[1]).mpint(y);
    expect_key_err(&w.buf, "unusable DSA parameters");
    let mut big_q = vec![1u8];
    big_q.extend_from_slice(q);
    let mut w = Writer::new();
    w.str("ssh-dss").mpint(p).mpint(&big_q).mpint(g).mpint(y);
    expect_key_err(&w.buf, "161-bit q");
    // Unknown types, certificates.
    for name in ["ssh-foo", "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp384", ""] {
        let mut w = Writer::new();
        w.str(name).string(&[0u8; 32]);
        expect_key_err(&w.buf, "unsupported key type");
    }
}

#[test]
fn fingerprint_and_line_forms() {
    let f = fixtures().into_iter().find(|f| f.file == "ed25519.openssh").unwrap();
    let key = PublicKey::from_openssh_line(f.pub_line).unwrap();
    assert!(key.fingerprint().starts_with("SHA256:"));
    assert!(!key.fingerprint().ends_with('='));
    assert_eq!(key.fingerprint().len(), "SHA256:".len() + 43);
    assert_eq!(key.to_openssh_line(), type_and_blob(f.pub_line));
    assert_eq!(PublicKey::from_openssh_line(&key.to_openssh_line()).unwrap(), key);
    assert_eq!(format!("{key}"), format!("ssh-ed25519 {}", key.fingerprint()));
}

// ---------------------------------------------------------------------------------------------
// OpenSSH's format, built by hand for the cases the tools produce only sometimes.

fn armor(binary: &[u8], width: usize) -> String {
    use base64ct::{Base64, Encoding};
    let b64 = Base64::encode_string(binary);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    out
}

/// An unencrypted openssh-key-v1 file for the ed25519.dropbear fixture's key.
fn plain_openssh(check2: u32, padding: &[u8], outer_public: Option<&[u8]>) -> Vec<u8> {
    let db = testdata("ed25519.dropbear");
    let mut r = Reader::new(&db);
    r.string().unwrap();
    let both = r.string().unwrap();
    let public = &both[32..];
    let mut blob = Writer::new();
    blob.str("ssh-ed25519").string(public);
    let mut section = Writer::new();
    section.u32(0x1234_5678).u32(check2).str("ssh-ed25519").string(public).string(both).str("comment");
    section.raw(padding);
    let mut w = Writer::new();
    w.raw(b"openssh-key-v1\0").str("none").str("none").string(b"").u32(1);
    w.string(outer_public.unwrap_or(&blob.buf)).string(&section.buf);
    w.into_vec()
}

#[test]
fn openssh_padding_of_a_whole_block_is_accepted() {
    // dropbearconvert pads with 1..=8 bytes; the ssh-key crate refuses 8, OpenSSH accepts it.
    let want = PrivateKey::from_bytes(&testdata("ed25519.dropbear"), None).unwrap().public_key();
    for pad in 0..=8u8 {
        let padding: Vec<u8> = (1..=pad).collect();
        for width in [64, 70, 76] {
            let text = armor(&plain_openssh(0x1234_5678, &padding, None), width);
            let key = PrivateKey::from_bytes(text.as_bytes(), None).unwrap();
            assert_eq!(key.public_key(), want, "padding {pad}, width {width}");
        }
    }
}

#[test]
fn openssh_structure_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (plain_openssh(0x1234_5679, &[1, 2, 3], None), "check bytes differ"),
        (plain_openssh(0x1234_5678, &[1, 2, 4], None), "bad padding"),
        (plain_openssh(0x1234_5678, &[0], None), "bad padding"),
        (plain_openssh(0x1234_5678, &[1], Some(PublicKey::from_openssh_line(
            fixtures().iter().find(|f| f.file == "db-ed25519.dropbear").unwrap().pub_line,
        ).unwrap().blob())), "does not match its public key"),
    ];
    for (binary, want) in cases {
        let msg = key_err(PrivateKey::from_bytes(armor(&binary, 70).as_bytes(), None));
        assert!(msg.contains(want), "{msg} (wanted {want})");
    }
    let good = plain_openssh(0x1234_5678, &[1, 2, 3], None);
    let mut two_keys = good.clone();
    two_keys[b"openssh-key-v1\0".len() + 4 + 4 + 4 + 4 + 4 + 3] = 2; // the uint32 key count
    let msg = key_err(PrivateKey::from_bytes(armor(&two_keys, 70).as_bytes(), None));
    assert!(msg.contains("holding 2 keys"), "{msg}");
    for cut in 0..good.len() {
        let text = armor(&good[..cut], 70);
        assert!(matches!(PrivateKey::from_bytes(text.as_bytes(), None), Err(Error::Key(_))), "cut {cut}");
    }
    let text = armor(&good, 70).replace("-----END OPENSSH PRIVATE KEY-----\n", "");
    assert!(key_err(PrivateKey::from_bytes(text.as_bytes(), None)).contains("no END line"));
}

/// A passphrase-protected openssh-key-v1 file around `section` (not a real encryption), with
/// `trailer` after the section where AEAD ciphers put their tag.
#[cfg(feature = "encrypted-keys")]
fn encrypted_openssh(cipher: &str, kdf: &str, section: &[u8], trailer: &[u8]) -> String {
    let db = testdata("ed25519.dropbear");
    let mut r = Reader::new(&db);
    r.string().unwrap();
    let both = r.string().unwrap();
    let mut blob = Writer::new();
    blob.str("ssh-ed25519").string(&both[32..]);
    let mut kdf_options = Writer::new();
    kdf_options.string(&[7u8; 16]).u32(2);
    let mut w = Writer::new();
    w.raw(b"openssh-key-v1\0").str(cipher).str(kdf).string(&kdf_options.buf).u32(1);
    w.string(&blob.buf).string(section).raw(trailer);
    armor(&w.into_vec(), 70)
}

#[cfg(feature = "encrypted-keys")]
#[test]
fn encrypted_openssh_structure_errors() {
    let pass = Some(&b"a passphrase"[..]);
    let cases: Vec<(String, &str)> = vec![
        (encrypted_openssh("3des-cbc", "bcrypt", &[0; 32], &[]), "unsupported cipher: 3des-cbc"),
        (encrypted_openssh("aes256-ctr", "scrypt", &[0; 32], &[]), "unsupported key derivation: scrypt"),
        (encrypted_openssh("aes256-cbc", "bcrypt", &[0; 33], &[]), "not a whole number of blocks"),
        (encrypted_openssh("aes256-ctr", "bcrypt", &[0; 32], &[0; 16]), "trailing bytes"),
        (encrypted_openssh("aes256-cbc", "bcrypt", &[0; 32], &[0; 16]), "trailing bytes"),
        // Whatever the key, these bytes do not decrypt to equal check words or a valid tag.
        (encrypted_openssh("aes256-ctr", "bcrypt", &[0; 32], &[]), "wrong passphrase"),
        (encrypted_openssh("aes128-cbc", "bcrypt", &[0; 32], &[]), "wrong passphrase"),
        (encrypted_openssh("aes256-gcm@openssh.com", "bcrypt", &[0; 32], &[0; 16]), "wrong passphrase"),
        (encrypted_openssh("chacha20-poly1305@openssh.com", "bcrypt", &[0; 32], &[0; 16]), "wrong passphrase"),
        // An AEAD key without its tag (or with a short one).
        (encrypted_openssh("aes128-gcm@openssh.com", "bcrypt", &[0; 32], &[]), "no authentication tag"),
        (encrypted_openssh("chacha20-poly1305@openssh.com", "bcrypt", &[0; 32], &[0; 15]), "no authentication tag"),
        (encrypted_openssh("aes256-gcm@openssh.com", "bcrypt", &[0; 32], &[0; 17]), "trailing bytes"),
        (encrypted_openssh("aes256-ctr", "bcrypt", &[], &[]), "not a whole number of blocks"),
        (encrypted_openssh("chacha20-poly1305@openssh.com", "bcrypt", &[0; 12], &[0; 16]), "not a whole number of blocks"),
    ];
    for (text, want) in cases {
        let msg = key_err(PrivateKey::from_bytes(text.as_bytes(), pass));
        assert!(msg.contains(want), "{msg} (wanted {want})");
    }
}

/// Keys ssh-keygen (OpenSSH 9.2) encrypted with `-Z` ciphers other than its default: each
/// decrypts with the passphrase (to the key its cleartext public half names, which `parse`
/// checks) and not without it.
#[cfg(feature = "encrypted-keys")]
#[test]
fn keys_encrypted_with_other_ciphers_decrypt() {
    for name in ["aes128-ctr", "aes256-cbc", "aes256-gcm", "chacha20-poly1305"] {
        let data = testdata(&format!("ed25519-enc-{name}.openssh"));
        let key = PrivateKey::from_bytes(&data, PASS).unwrap_or_else(|e| panic!("{name}: {e}"));
        let alg = key.sig_algs()[0];
        let sig = key.sign(alg, b"signed", &mut TestRng::new(5)).unwrap();
        key.public_key().verify(alg, b"signed", &sig).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key_err(PrivateKey::from_bytes(&data, Some(b"test-pasS"))), "wrong passphrase", "{name}");
        assert_eq!(key_err(PrivateKey::from_bytes(&data, Some(b""))), "wrong passphrase", "{name}");
    }
}
