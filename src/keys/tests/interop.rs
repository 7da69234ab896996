//! Cross-checks with other implementations: the `ssh-key` crate's verifier, signatures made by
//! OpenSSH (`ssh-keygen -Y sign`, recorded by testdata/gen.sh), and ssh-keygen checking ours.

use super::*;

#[test]
fn our_signatures_pass_the_ssh_key_crates_verifier() {
    use signature::Verifier;
    let mut rng = TestRng::new(8);
    let data = b"cross-check";
    let mut checked = 0;
    for f in fixtures() {
        let key = load(&f);
        let theirs = ssh_key::PublicKey::from_openssh(f.pub_line.trim()).unwrap();
        for alg in key.sig_algs() {
            // ssh-key 0.6 verifies neither SHA-1 RSA nor RSA keys under 2048 bits.
            #[cfg(feature = "legacy")]
            if alg == SigAlg::SshRsa {
                continue;
            }
            if matches!(key.kind(), KeyKind::Rsa(bits) if bits < 2048) {
                continue;
            }
            let sig = key.sign(alg, data, &mut rng).unwrap();
            let parsed = ssh_key::Signature::try_from(&sig[..]).unwrap();
            theirs.key_data().verify(data, &parsed).unwrap_or_else(|e| panic!("{} {alg}: {e}", f.file));
            assert!(theirs.key_data().verify(b"cross-checK", &parsed).is_err());
            checked += 1;
        }
    }
    assert!(checked >= 20 || fixtures().len() < all_fixtures().len(), "{checked}");
}

/// (key base name, SSHSIG file made by `ssh-keygen -Y sign -n file` over sshsig.msg)
const SSHSIGS: &[(&str, &[u8])] = &[
    ("db-rsa1024", include_bytes!("../testdata/db-rsa1024.sshsig")),
    ("db-dss", include_bytes!("../testdata/db-dss.sshsig")),
    ("db-ed25519", include_bytes!("../testdata/db-ed25519.sshsig")),
    ("db-ecdsa256", include_bytes!("../testdata/db-ecdsa256.sshsig")),
    ("rsa2048", include_bytes!("../testdata/rsa2048.sshsig")),
    ("dsa", include_bytes!("../testdata/dsa.sshsig")),
    ("ecdsa256", include_bytes!("../testdata/ecdsa256.sshsig")),
    ("ed25519", include_bytes!("../testdata/ed25519.sshsig")),
];

#[test]
fn openssh_made_signatures_verify() {
    let msg = include_bytes!("../testdata/sshsig.msg");
    for (base, pem) in SSHSIGS {
        let sshsig = ssh_key::SshSig::from_pem(pem).unwrap();
        let signed = ssh_key::SshSig::signed_data(sshsig.namespace(), sshsig.hash_alg(), msg).unwrap();
        let blob: Vec<u8> = sshsig.signature().clone().try_into().unwrap();
        let mut r = Reader::new(&blob);
        let Some(alg) = SigAlg::from_name(r.utf8().unwrap()) else {
            // ssh-dss needs `legacy`, the other families their own feature.
            let key_type = testdata_pub(base).split_whitespace().next().unwrap();
            assert!(KeyKind::from_key_type(key_type).unwrap().missing_feature().is_some(), "{base}");
            continue;
        };
        let f = fixtures().into_iter().find(|f| f.pub_line == testdata_pub(base)).unwrap();
        let key = load(&f).public_key();
        let mut w = Writer::new();
        ssh_key_blob(&sshsig, &mut w);
        assert_eq!(key.blob(), &w.buf[..], "{base}: SSHSIG names the same key");
        key.verify(alg, &signed, &blob).unwrap_or_else(|e| panic!("{base} {alg}: {e}"));
        expect_crypto(key.verify(alg, &signed[1..], &blob), base);
    }
}

fn testdata_pub(base: &str) -> &'static str {
    all_fixtures().into_iter().find(|f| f.file.starts_with(&format!("{base}."))).unwrap().pub_line
}

fn ssh_key_blob(sig: &ssh_key::SshSig, w: &mut Writer) {
    let line = ssh_key::PublicKey::from(sig.public_key().clone()).to_openssh().unwrap();
    let key = PublicKey::from_openssh_line(&line).unwrap();
    w.raw(key.blob());
}

/// Our signatures, wrapped as SSHSIG, checked by the real ssh-keygen when it is installed.
#[test]
fn ssh_keygen_accepts_our_signatures() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("ssh-keygen not installed: skipping the OpenSSH cross-check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sshbridge-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let msg = b"signed by sshbridge\n";
    let mut rng = TestRng::new(9);
    let mut checked = 0;
    for f in fixtures().iter().filter(|f| f.file.ends_with(".dropbear")) {
        let key = load(f);
        for alg in key.sig_algs() {
            #[cfg(feature = "legacy")]
            if alg == SigAlg::SshRsa {
                continue; // SSHSIG refuses SHA-1 RSA signatures
            }
            let hash = ssh_key::HashAlg::Sha512;
            let signed = ssh_key::SshSig::signed_data("file", hash, msg).unwrap();
            let sig = key.sign(alg, &signed, &mut rng).unwrap();
            let theirs = ssh_key::PublicKey::from_openssh(f.pub_line.trim()).unwrap();
            let sshsig = ssh_key::SshSig::new(
                theirs.key_data().clone(),
                "file",
                hash,
                ssh_key::Signature::try_from(&sig[..]).unwrap(),
            )
            .unwrap();
            let sig_path = dir.join(format!("{}-{alg}.sig", f.file));
            std::fs::write(&sig_path, sshsig.to_pem(ssh_key::LineEnding::LF).unwrap()).unwrap();
            for (m, want) in [(&msg[..], true), (&b"tampered\n"[..], false)] {
                let mut child = Command::new("ssh-keygen")
                    .args(["-Y", "check-novalidate", "-n", "file", "-s"])
                    .arg(&sig_path)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(m).unwrap();
                let out = child.wait_with_output().unwrap();
                assert_eq!(
                    out.status.success(),
                    want,
                    "{} {alg}: {}{}",
                    f.file,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 8 || fixtures().len() < all_fixtures().len(), "{checked}");
}

