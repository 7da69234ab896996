//! UpdateHostKeys driven in memory after a real key exchange with the harness's server: the
//! proof request, good and bad proofs, replies interleaved with keepalives, and the cases that
//! leave the files alone.

use std::sync::Arc;

use super::*;
use crate::fuzzing::{fixed_keys, Connected, FuzzRng};
use crate::keys::PrivateKey;
use crate::trust::{HostKeyCheck, KnownHosts, KnownHostsView, LoadedFile};

/// A second Ed25519 key: the server's "new" key.
fn new_key() -> PrivateKey {
    PrivateKey::from_bytes(include_bytes!("../keys/testdata/db-ed25519.dropbear"), None).unwrap()
}

fn host() -> PublicKey {
    fixed_keys().ed25519.public_key()
}

/// A client that verified the harness's host key by `file` (a user file when `user`).
fn connected(file: &str, user: bool) -> Connected {
    let view = KnownHostsView {
        files: vec![LoadedFile { path: "/u/kh".into(), user, parsed: Some(known_hosts::parse(file.as_bytes(), "/u/kh")) }],
        name: "h".into(),
        portless: None,
        writable: true,
        settings: KnownHosts::file("/u/kh").update_host_keys(true),
    };
    Connected::new(HostKeyCheck { pinned: Vec::new(), rule: Rule::KnownHosts(Arc::new(view)) })
}

fn announce(k: &mut Connected, keys: &[&PublicKey]) {
    let mut w = Writer::new();
    for key in keys {
        w.string(key.blob());
    }
    assert!(k.send(&Msg::GlobalRequest { name: HOSTKEYS, want_reply: false, data: &w.into_vec() }.encode()));
}

/// The hostkeys-prove requests the client sent: their key blobs.
fn prove_requests(k: &mut Connected) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for p in k.received() {
        if let Ok(Msg::GlobalRequest { name: HOSTKEYS_PROVE, want_reply, data }) = Msg::decode(&p) {
            assert!(want_reply);
            let mut r = Reader::new(data);
            let mut blobs = Vec::new();
            while !r.is_empty() {
                blobs.push(r.string().unwrap().to_vec());
            }
            out.push(blobs);
        }
    }
    out
}

fn proof(key: &PrivateKey, alg: SigAlg, session_id: &[u8]) -> Vec<u8> {
    let mut signed = Writer::new();
    signed.str(HOSTKEYS_PROVE).string(session_id).string(key.public_key().blob());
    key.sign(alg, &signed.into_vec(), &mut FuzzRng::new(1)).unwrap()
}

fn reply(sigs: &[Vec<u8>], extra: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    for s in sigs {
        w.string(s);
    }
    w.raw(extra);
    Msg::RequestSuccess { data: &w.into_vec() }.encode()
}

fn known_by_host() -> String {
    format!("h {}\n", host().to_openssh_line())
}

#[test]
fn a_new_key_is_proven_then_recorded() {
    let mut k = connected(&known_by_host(), true);
    let new = new_key();
    announce(&mut k, &[&host(), &new.public_key()]);
    assert_eq!(prove_requests(&mut k), vec![vec![new.public_key().blob().to_vec()]]);
    assert_eq!(k.client.take_known_hosts_update(), None, "nothing before the proof");
    let sid = k.session_id();
    assert!(k.send(&reply(&[proof(&new, SigAlg::Ed25519, &sid)], &[])));
    let rw = k.client.take_known_hosts_update().expect("an update");
    assert_eq!(rw, Rewrite { files: vec!["/u/kh".into()], name: "h".into(), keys: vec![host(), new.public_key()], hash: false });
    assert_eq!(k.client.take_known_hosts_update(), None, "once");
    // A second announcement is ignored.
    announce(&mut k, &[&host(), &new.public_key()]);
    assert!(prove_requests(&mut k).is_empty());
}

#[test]
fn bad_proofs_change_nothing() {
    let new = new_key();
    let wrong_sid = vec![7u8; 32];
    let cases: Vec<(&str, Box<dyn Fn(&[u8]) -> Vec<u8>>)> = vec![
        ("other session id", Box::new(|_sid: &[u8]| reply(&[proof(&new, SigAlg::Ed25519, &wrong_sid)], &[]))),
        ("signed by the old key", Box::new(|sid: &[u8]| reply(&[proof(&fixed_keys().ed25519, SigAlg::Ed25519, sid)], &[]))),
        ("no signature", Box::new(|_sid: &[u8]| reply(&[], &[]))),
        ("trailing bytes", Box::new(|sid: &[u8]| reply(&[proof(&new, SigAlg::Ed25519, sid)], &[0]))),
        ("garbage", Box::new(|_sid: &[u8]| reply(&[b"\x00\x00\x00\x0bssh-ed25519".to_vec()], &[]))),
        ("failure", Box::new(|_sid: &[u8]| Msg::RequestFailure.encode())),
    ];
    for (what, make) in cases {
        let mut k = connected(&known_by_host(), true);
        announce(&mut k, &[&host(), &new.public_key()]);
        assert_eq!(prove_requests(&mut k).len(), 1, "{what}");
        let sid = k.session_id();
        assert!(k.send(&make(&sid)), "{what}: the connection must survive");
        assert_eq!(k.client.take_known_hosts_update(), None, "{what}");
    }
}

#[test]
fn the_proof_reply_is_told_apart_from_keepalive_replies() {
    let mut k = connected(&known_by_host(), true);
    let new = new_key();
    assert_eq!(k.client.send_keepalive(), 1);
    announce(&mut k, &[&host(), &new.public_key()]);
    assert_eq!(prove_requests(&mut k).len(), 1);
    // The keepalive's answer comes first (replies are in order): not taken for the proof.
    assert!(k.send(&Msg::RequestFailure.encode()));
    assert_eq!(k.client.pending_keepalives(), 0);
    assert_eq!(k.client.take_known_hosts_update(), None);
    let sid = k.session_id();
    assert!(k.send(&reply(&[proof(&new, SigAlg::Ed25519, &sid)], &[])));
    assert!(k.client.take_known_hosts_update().is_some());
    assert_eq!(k.client.pending_keepalives(), 0);
}

#[test]
fn a_dropped_key_needs_no_proof() {
    let new = new_key();
    let file = format!("{}h {}\n", known_by_host(), new.public_key().to_openssh_line());
    let mut k = connected(&file, true);
    announce(&mut k, &[&host()]);
    assert!(prove_requests(&mut k).is_empty());
    let rw = k.client.take_known_hosts_update().expect("an update");
    assert_eq!(rw.keys, vec![host()]);
}

#[test]
fn cases_left_alone() {
    let new = new_key();
    let other = format!("{}elsewhere {}\n", known_by_host(), new.public_key().to_openssh_line());
    let wildcard = format!("h* {}\n", host().to_openssh_line());
    let marker = format!("{}@revoked h {}\n", known_by_host(), new.public_key().to_openssh_line());
    for (what, file, user, keys) in [
        ("system file", known_by_host(), false, vec![host(), new.public_key()]),
        ("key known under another name", other, true, vec![host(), new.public_key()]),
        ("wildcard line", wildcard, true, vec![host(), new.public_key()]),
        ("marker for the host", marker, true, vec![host(), new.public_key()]),
        ("duplicate keys", known_by_host(), true, vec![host(), new.public_key(), new.public_key()]),
        ("nothing new", known_by_host(), true, vec![host()]),
    ] {
        let mut k = connected(&file, user);
        announce(&mut k, &keys.iter().collect::<Vec<_>>());
        assert!(prove_requests(&mut k).is_empty(), "{what}");
        assert_eq!(k.client.take_known_hosts_update(), None, "{what}");
    }
}

/// An RSA proof made with SHA-1 when RSA was not the negotiated algorithm is disregarded: the
/// key is not recorded, the others are.
#[cfg(feature = "legacy")]
#[test]
fn a_sha1_rsa_proof_is_disregarded() {
    let mut k = connected(&known_by_host(), true);
    let new = new_key();
    let rsa = &fixed_keys().rsa;
    announce(&mut k, &[&host(), &rsa.public_key(), &new.public_key()]);
    assert_eq!(prove_requests(&mut k).len(), 1);
    let sid = k.session_id();
    assert!(k.send(&reply(&[proof(rsa, SigAlg::SshRsa, &sid), proof(&new, SigAlg::Ed25519, &sid)], &[])));
    let rw = k.client.take_known_hosts_update().expect("an update");
    assert_eq!(rw.keys, vec![host(), new.public_key()]);
    // With rsa-sha2-512 it is recorded.
    let mut k = connected(&known_by_host(), true);
    announce(&mut k, &[&host(), &rsa.public_key()]);
    assert_eq!(prove_requests(&mut k).len(), 1);
    let sid = k.session_id();
    assert!(k.send(&reply(&[proof(rsa, SigAlg::RsaSha512, &sid)], &[])));
    assert_eq!(k.client.take_known_hosts_update().expect("an update").keys, vec![host(), rsa.public_key()]);
}
