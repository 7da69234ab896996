//! Hostile clients against the sans-IO server (issue 11, "Server-side security"; HOSTILE.md
//! section 7, rows S1-S12): a scripted client on our own codec (`tests/fakeclient`) runs a real
//! key exchange with `Server` in memory, then misbehaves on cue. Each test asserts the exact
//! outcome (disconnect reason and error text, FAILURE, UNIMPLEMENTED, refusal reason), that it
//! came within a fixed number of steps, and that the application was never asked what it should
//! not have been. Tests are named after the rows.
//! (S8's per-listener cap on unauthenticated connections belongs to the blocking runtime, not
//! to this core, and is not tested here.)
#![cfg(feature = "server")]

mod fakeclient;

use std::time::Duration;

use fakeclient::*;
use sshbridge::connection::Request;
use sshbridge::msg::{self, AuthMethod, Msg};
use sshbridge::server::{Event, Phase, Question};
use sshbridge::wire::Reader;
use sshbridge::KeyKind;

const PROTOCOL_ERROR: u32 = 2;

/// S1: messages only a server sends, from the client: disconnect, never authenticated.
#[test]
fn s1_server_only_messages_from_the_client() {
    let pk_ok = {
        let k = user_key(KeyKind::Ed25519, 1).public_key();
        let mut w = sshbridge::wire::Writer::new();
        w.u8(msg::USERAUTH_60).str("ssh-ed25519").string(k.blob());
        w.into_vec()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("USERAUTH_SUCCESS", Msg::UserauthSuccess.encode()),
        ("USERAUTH_FAILURE", Msg::UserauthFailure { methods: vec!["password"], partial: false }.encode()),
        ("USERAUTH_BANNER", Msg::UserauthBanner { message: b"hi" }.encode()),
        ("PK_OK", pk_ok),
        ("SERVICE_ACCEPT", Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
        ("KEX_REPLY", Msg::KexReply { host_key: b"k", value: &[1; 32], signature: b"s" }.encode()),
    ];
    for (name, payload) in &cases {
        // Before the service request and while authenticating.
        for authenticating in [false, true] {
            let mut r = if authenticating { Rig::authenticating(config()) } else { Rig::kexed(config()) };
            // Pipelined behind it: a login and a command that must never run.
            let ok = r.send_all(&[payload.clone(), password(USER, PASSWORD), Msg::ChannelOpen { kind: "session", sender: 0, window: 1 << 20, max_packet: 32768, extra: &[] }.encode()]);
            assert!(!ok, "{name} (authenticating {authenticating}) accepted");
            r.assert_disconnected(PROTOCOL_ERROR, &format!("message {}", payload[0]));
            assert!(r.app.events.is_empty(), "{name}: the application saw {:?}", r.app.events);
            assert!(r.c.take(msg::USERAUTH_SUCCESS).is_none(), "{name}");
            assert_ne!(r.s.phase(), Phase::Connected);
        }
    }
}

/// S2: any message of RFC 4254 (80-127) before authentication succeeded: disconnect, never
/// queued; the application never sees an open or a request even if a login follows.
#[test]
fn s2_connection_messages_before_auth() {
    for n in 80u8..=127 {
        for authenticating in [false, true] {
            let mut r = if authenticating { Rig::authenticating(config()) } else { Rig::kexed(config()) };
            let mut p = vec![n];
            p.extend_from_slice(&[0; 12]);
            assert!(!r.send(&p), "message {n} accepted before auth (authenticating {authenticating})");
            r.assert_disconnected(PROTOCOL_ERROR, &format!("message {n}"));
            assert!(r.app.events.is_empty(), "{n}: {:?}", r.app.events);
        }
    }
    // The Erlang/OTP CVE-2025-32433 shape: CHANNEL_OPEN + exec, then a valid login, in one write.
    let mut r = Rig::authenticating(config());
    let open = Msg::ChannelOpen { kind: "session", sender: 0, window: 1 << 20, max_packet: 32768, extra: &[] }.encode();
    let global = Msg::GlobalRequest { name: "tcpip-forward", want_reply: true, data: &[] }.encode();
    assert!(!r.send_all(&[open, exec(0, "touch /tmp/pwned"), global, password(USER, PASSWORD)]));
    r.assert_disconnected(PROTOCOL_ERROR, "message 90");
    assert!(r.app.events.is_empty(), "{:?}", r.app.events);
    assert!(r.app.ran.is_empty());
    // GLOBAL_REQUEST alone, before the service request.
    let mut r = Rig::kexed(config());
    assert!(!r.send(&Msg::GlobalRequest { name: "keepalive@openssh.com", want_reply: true, data: &[] }.encode()));
    r.assert_disconnected(PROTOCOL_ERROR, "message 80");
    assert!(r.c.take(msg::REQUEST_FAILURE).is_none());
}

/// S3: only key exchange before the first NEWKEYS; SERVICE_REQUEST only after it, only for
/// ssh-userauth, only once; no USERAUTH_REQUEST before it.
#[test]
fn s3_service_request_rules() {
    let before_newkeys: Vec<(Vec<u8>, &str)> = vec![
        (Msg::ServiceRequest { name: "ssh-userauth" }.encode(), "message 5"),
        (password(USER, PASSWORD), "message 50"),
        (Msg::ChannelOpen { kind: "session", sender: 0, window: 100, max_packet: 100, extra: &[] }.encode(), "message 90"),
    ];
    for (p, frag) in &before_newkeys {
        // After our KEXINIT, before anything else; and after KEX_INIT (non-strict client, so
        // the strict rule is not what catches it).
        for after_kex_init in [false, true] {
            let mut r = Rig::with_client(config(), 0, false);
            assert!(r.c.send_ident(&mut r.s) && r.c.send_kexinit(&mut r.s));
            if after_kex_init {
                let v = [9u8; 32];
                assert!(r.send(&Msg::KexInitValue { value: &v }.encode()));
            }
            assert!(!r.send(p), "{frag} accepted before NEWKEYS");
            if after_kex_init {
                // The server's NEWKEYS went out with its reply: its DISCONNECT is sealed with
                // keys this client never derived.
                r.assert_dead(frag);
            } else {
                r.assert_disconnected(PROTOCOL_ERROR, frag);
            }
            assert!(r.app.events.is_empty());
        }
    }
    // Twice.
    let mut r = Rig::authenticating(config());
    assert!(!r.send(&Msg::ServiceRequest { name: "ssh-userauth" }.encode()));
    r.assert_disconnected(PROTOCOL_ERROR, "message 5");
    // Another service.
    for name in ["ssh-connection", "ssh-userauth\0", "x"] {
        let mut r = Rig::kexed(config());
        assert!(!r.send(&Msg::ServiceRequest { name }.encode()));
        r.assert_disconnected(PROTOCOL_ERROR, "only ssh-userauth");
        assert!(r.c.take(msg::SERVICE_ACCEPT).is_none());
    }
    // USERAUTH_REQUEST without the service request.
    let mut r = Rig::kexed(config());
    assert!(!r.send(&password(USER, PASSWORD)));
    r.assert_disconnected(PROTOCOL_ERROR, "message 50");
    assert!(r.app.events.is_empty());
}

/// S4: strict KEX from the client's side: its KEXINIT must be packet 0, nothing but kex until
/// NEWKEYS, sequence numbers reset at every NEWKEYS (rekey included).
#[test]
fn s4_strict_kex_from_the_client() {
    // IGNORE before a strict KEXINIT.
    let mut r = Rig::new(config());
    assert!(r.c.send_ident(&mut r.s));
    assert!(r.send(&Msg::Ignore { data: b"x" }.encode()));
    assert!(!r.c.send_kexinit(&mut r.s));
    r.assert_disconnected(3, "strict");
    // IGNORE during a strict exchange (after KEXINIT, before NEWKEYS).
    for after_kex_init in [false, true] {
        let mut r = Rig::new(config());
        assert!(r.c.send_ident(&mut r.s) && r.c.send_kexinit(&mut r.s));
        if after_kex_init {
            let v = [9u8; 32];
            r.send(&Msg::KexInitValue { value: &v }.encode());
        }
        assert!(!r.send(&Msg::Ignore { data: b"x" }.encode()));
        if after_kex_init {
            r.assert_dead("strict");
        } else {
            r.assert_disconnected(3, "strict");
        }
    }
    // A non-strict client may send IGNORE (and DEBUG) first.
    let mut r = Rig::with_client(config(), 1, false);
    assert!(r.c.send_ident(&mut r.s));
    assert!(r.send(&Msg::Ignore { data: b"x" }.encode()));
    assert!(r.send(&Msg::Debug { always_display: false, message: b"d" }.encode()));
    r.c.finish_kex(&mut r.s).unwrap();
    assert!(!r.c.strict_on);
    assert!(r.c.tx_seq > 3, "non-strict: no reset ({})", r.c.tx_seq);
    r.assert_alive();
    // Strict: both sides at 0 after NEWKEYS; a client that does not reset is cut (bad MAC).
    let mut r = Rig::kexed(config());
    assert!(r.c.strict_on && r.s.transport().strict_kex());
    assert_eq!((r.c.tx_seq, r.c.rx_seq), (0, 0));
    let mut r2 = Rig::new(config());
    r2.c.no_seq_reset = true;
    r2.c.handshake(&mut r2.s).unwrap();
    assert!(!r2.send(&Msg::ServiceRequest { name: "ssh-userauth" }.encode()));
    assert_eq!(r2.s.phase(), Phase::Dead);
    // Rekey (client-initiated, then server-initiated), then traffic still works.
    r.send(&Msg::ServiceRequest { name: "ssh-userauth" }.encode());
    r.send(&password(USER, PASSWORD));
    assert!(r.c.take(msg::SERVICE_ACCEPT).is_some() && r.c.take(msg::USERAUTH_SUCCESS).is_some());
    r.c.finish_kex(&mut r.s).unwrap();
    assert_eq!((r.c.tx_seq, r.c.rx_seq), (0, 0), "strict: reset at every NEWKEYS");
    assert!(r.s.rekey());
    r.serve();
    assert_eq!(r.c.numbers(), vec![msg::KEXINIT]);
    r.c.finish_kex(&mut r.s).unwrap();
    assert_eq!(r.s.transport().kex_count(), 3);
    let id = r.open(0, 1 << 20, 32768).expect("channel after two rekeys");
    r.send(&exec(id, "true"));
    assert_eq!(r.replies(), vec![msg::CHANNEL_SUCCESS]);
    assert_eq!(r.app.ran, vec![b"true".to_vec()]);
    r.assert_alive();
}
