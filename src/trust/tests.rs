//! The decision of each policy for each lookup outcome, and the host-key algorithm order.

use super::*;

const ED_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMTOZowJIAomL7mspElu/tejCPRnwvTuap1Mwvsl21u";
const ED_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIWkem3bycMUQkZy6o8Ucohviaqi5WDTxyS9TymMYFLp";

fn key(line: &str) -> PublicKey {
    PublicKey::from_openssh_line(line).unwrap()
}

fn check(user: &str, system: &str, name: &str, portless: Option<&str>, strict: Strict) -> HostKeyCheck {
    let view = KnownHostsView {
        files: vec![
            LoadedFile { path: "/u/kh".into(), user: true, parsed: Some(known_hosts::parse(user.as_bytes(), "/u/kh")) },
            LoadedFile { path: "/etc/kh".into(), user: false, parsed: Some(known_hosts::parse(system.as_bytes(), "/etc/kh")) },
        ],
        name: name.into(),
        portless: portless.map(str::to_string),
        writable: true,
        settings: KnownHosts::file("/u/kh").mode(strict).update_host_keys(true),
    };
    HostKeyCheck { pinned: Vec::new(), rule: Rule::KnownHosts(Arc::new(view)) }
}

#[test]
fn known_hosts_decisions_per_mode() {
    let a = key(ED_A);
    let n = "[h]:2222";
    let known = format!("{n} {ED_A}\n");
    let other = format!("#x\n{n} {ED_B}\n");
    for strict in [Strict::Yes, Strict::AcceptNew, Strict::No] {
        // OK from the user file: accepted, UpdateHostKeys allowed, nothing recorded.
        let v = check(&known, "", n, None, strict).decide(&a).unwrap();
        assert!(v.may_update && v.record.is_none() && !v.untrusted);
        // OK from the system file: no UpdateHostKeys.
        let v = check("", &known, n, None, strict).decide(&a).unwrap();
        assert!(!v.may_update && v.record.is_none());
        // REVOKED: always refused.
        let e = check(&known, &format!("@revoked * {ED_A}\n"), n, None, strict).decide(&a).unwrap_err();
        assert!(e.to_string().contains("REVOKED HOST KEY") && e.to_string().contains("/etc/kh:1"), "{e}");
        // CHANGED: refused under Yes and AcceptNew, loudly, with file:line and both fingerprints.
        let r = check(&other, "", n, None, strict).decide(&a);
        if strict == Strict::No {
            let v = r.unwrap();
            assert!(v.untrusted && v.record.is_none() && !v.may_update);
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{e}");
            assert!(e.contains("/u/kh:2") && e.contains(&a.fingerprint()) && e.contains(&key(ED_B).fingerprint()), "{e}");
        }
        // NEW: refused under Yes (naming the fingerprint and the line to add), recorded otherwise.
        let r = check("", "", n, None, strict).decide(&a);
        if strict == Strict::Yes {
            let e = r.unwrap_err().to_string();
            assert!(e.contains(&a.fingerprint()) && e.contains(&format!("{n} {ED_A}")), "{e}");
        } else {
            let v = r.unwrap();
            assert_eq!(v.record, Some(Record { path: "/u/kh".into(), name: n.into(), key: a.clone(), hash: false }));
            assert!(!v.may_update);
        }
        // NEW for [h]:2222 but the port-less "h" holds the key: accepted, nothing recorded.
        let v = check(&format!("h {ED_A}\n"), "", n, Some("h"), strict).decide(&a).unwrap();
        assert!(v.record.is_none() && !v.may_update);
        // A port-less line with another key does not make it CHANGED.
        let r = check(&format!("h {ED_B}\n"), "", n, Some("h"), strict).decide(&a);
        assert_eq!(r.is_ok(), strict != Strict::Yes);
    }
}

#[test]
fn unrecordable_name_is_refused_when_new() {
    let mut c = check("", "", "[h]:2222", None, Strict::AcceptNew);
    if let Rule::KnownHosts(v) = &mut c.rule {
        Arc::make_mut(v).writable = false;
    }
    assert!(c.decide(&key(ED_A)).is_err());
}

#[test]
fn pinned_verify_and_accept_any() {
    let a = key(ED_A);
    let b = key(ED_B);
    assert!(HostKeyCheck::default().decide(&a).is_ok());
    let pinned = HostKeyCheck { pinned: vec![b.clone()], rule: Rule::Pinned };
    assert!(pinned.decide(&b).is_ok());
    let e = pinned.decide(&a).unwrap_err().to_string();
    assert!(e.contains("host key mismatch: server offered ssh-ed25519"), "{e}");
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let want = b.clone();
    let verifier: Verifier = Arc::new(move |q: &HostKeyQuery| {
        s2.lock().push((q.host.clone(), q.port));
        q.key == want
    });
    let v = HostKeyCheck { pinned: Vec::new(), rule: Rule::Verify { verifier, host: "Box".into(), port: 2200 } };
    assert!(v.decide(&b).is_ok());
    assert!(v.decide(&a).unwrap_err().to_string().contains("refused by the application's verifier"));
    assert_eq!(seen.lock().as_slice(), &[("Box".to_string(), 2200), ("Box".to_string(), 2200)]);
}

#[test]
fn host_key_algorithms_follow_the_known_keys() {
    let all = SigAlg::ALL.to_vec();
    // Known by ed25519 (the best): the list stays as it is.
    let mut algs = all.clone();
    check(&format!("h {ED_A}\n"), "", "h", None, Strict::Yes).order(&mut algs);
    assert_eq!(algs, all);
    // Nothing known: as it is.
    let mut algs = all.clone();
    check("", "", "h", None, Strict::Yes).order(&mut algs);
    assert_eq!(algs, all);
    #[cfg(feature = "nistp256")]
    {
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAKh5qeVA/MKd8y80W+GYkbn7UHWCCprhBBvLQGncBJ5JAAGmMbP4GSZ10SKwKFbTOw/4qS4dDx+epygUDC39CU=";
        let mut algs = all.clone();
        check(&format!("other {ED_A}\nh {ecdsa}\n"), "", "h", None, Strict::Yes).order(&mut algs);
        assert_eq!(algs[0], SigAlg::EcdsaNistp256);
        assert_eq!(algs[1], SigAlg::Ed25519);
        assert_eq!(algs.len(), all.len());
        // Known by ed25519 and ECDSA: ed25519 is the best, the list stays as it is.
        let mut algs = all.clone();
        check(&format!("h {ED_A}\nh {ecdsa}\n"), "", "h", None, Strict::Yes).order(&mut algs);
        assert_eq!(algs, all);
        // Pinned keys always go first, whatever the best algorithm.
        let mut algs = all.clone();
        let pinned = HostKeyCheck { pinned: vec![key(ecdsa)], rule: Rule::Pinned };
        pinned.order(&mut algs);
        assert_eq!(algs[0], SigAlg::EcdsaNistp256);
    }
}
