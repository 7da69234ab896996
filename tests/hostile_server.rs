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
use sshbridge::connection::{ChannelOps, Request};
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

/// The USERAUTH_FAILURE method list, if `p` is one.
fn failure_methods(p: &[u8]) -> Option<String> {
    match Msg::decode(p).ok()? {
        Msg::UserauthFailure { methods, .. } => Some(methods.join(",")),
        _ => None,
    }
}

/// S5: `none` answered at once with the method list and not counted; a probe answered with
/// PK_OK echoing algorithm and blob; bad signatures refused before the application is asked;
/// a PK_OK for one key never carries to another.
#[test]
fn s5_none_probe_and_signature_checks() {
    // Ten nones, then five wrong passwords (a counted none would make it > 6), then success.
    let mut r = Rig::authenticating(config());
    for _ in 0..10 {
        assert!(r.send(&none(USER)));
        let (_, p) = r.c.take(msg::USERAUTH_FAILURE).expect("none answered at once, no delay");
        assert_eq!(failure_methods(&p).as_deref(), Some("publickey,password"));
    }
    for _ in 0..5 {
        assert!(r.send(&password(USER, "wrong")));
        r.advance(Duration::from_millis(100));
        assert!(r.c.take(msg::USERAUTH_FAILURE).is_some());
    }
    assert!(r.send(&password(USER, PASSWORD)));
    assert!(r.c.take(msg::USERAUTH_SUCCESS).is_some(), "{:?} {:?}", r.c.numbers(), r.s.error());
    assert!(r.app.questions().iter().all(|q| matches!(q, Question::Password { .. })), "none never reached the app");

    let a = user_key(KeyKind::Ed25519, 11);
    let b = user_key(KeyKind::Ed25519, 12);
    let (pa, pb) = (a.public_key(), b.public_key());
    // Probe: PK_OK echoes algorithm and blob.
    let mut r = Rig::authenticating(config());
    r.app.keys = vec![pa.clone()];
    assert!(r.send(&publickey(USER, "ssh-ed25519", &pa, None)));
    let (_, ok) = r.c.take(msg::USERAUTH_60).expect("PK_OK");
    let mut rd = Reader::new(&ok[1..]);
    assert_eq!(rd.string().unwrap(), b"ssh-ed25519");
    assert_eq!(rd.string().unwrap(), pa.blob());
    assert!(rd.finish().is_ok());
    assert!(matches!(r.app.questions()[..], [Question::PublicKey { signed: false, .. }]));
    // PK_OK for A, then a request signed by B: B is judged as B (asked, signed, refused).
    let sid = r.session_id();
    assert!(r.send(&publickey(USER, "ssh-ed25519", &pb, Some((&b, &sid)))));
    match r.app.questions().last() {
        Some(Question::PublicKey { key, signed: true, .. }) => assert_eq!(key, &pb),
        q => panic!("B not asked as signed: {q:?}"),
    }
    r.advance(Duration::from_millis(100));
    assert!(r.c.take(msg::USERAUTH_SUCCESS).is_none() && r.c.take(msg::USERAUTH_FAILURE).is_some());
    // Then A signed: success.
    assert!(r.send(&publickey(USER, "ssh-ed25519", &pa, Some((&a, &sid)))));
    assert!(r.c.take(msg::USERAUTH_SUCCESS).is_some());

    // Refused before the application is asked (and the refusal is delayed like any other).
    let wrong_sid = vec![0x42u8; 32];
    type MakeRequest<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
    let cases: Vec<(&str, MakeRequest)> = vec![
        ("alg is not the key's type", Box::new(|sid| publickey(USER, "ecdsa-sha2-nistp256", &pa, Some((&a, sid))))),
        ("rsa alg, ed25519 key", Box::new(|sid| publickey(USER, "rsa-sha2-256", &pa, Some((&a, sid))))),
        ("signature over another session id", Box::new(|_| publickey(USER, "ssh-ed25519", &pa, Some((&a, &wrong_sid))))),
        ("signature by another key", Box::new(|sid| publickey(USER, "ssh-ed25519", &pa, Some((&b, sid))))),
        ("SHA-1 ssh-rsa", Box::new(|sid| publickey(USER, "ssh-rsa", &pa, Some((&a, sid))))),
    ];
    for (what, make) in &cases {
        let mut r = Rig::authenticating(config());
        r.app.keys = vec![pa.clone()];
        let sid = r.session_id();
        assert!(r.send(&make(&sid)), "{what}");
        assert!(r.app.questions().is_empty(), "{what}: the app was asked {:?}", r.app.questions());
        assert!(r.c.take(msg::USERAUTH_FAILURE).is_none(), "{what}: failure before the delay");
        r.advance(Duration::from_millis(100));
        assert!(r.c.take(msg::USERAUTH_FAILURE).is_some(), "{what}");
        assert!(r.c.take(msg::USERAUTH_SUCCESS).is_none() && r.app.authenticated() == 0, "{what}");
    }
}

/// S6 and S7 (HOSTILE.md): MaxAuthTries 6, the request cap, delayed uniform failures, user or
/// service change, password change, nothing after success.
#[test]
fn s6_auth_limits() {
    // Six wrong passwords: five FAILUREs, then DISCONNECT (reason 14) at the sixth.
    let mut r = Rig::authenticating(config());
    for i in 0..6 {
        let alive = r.send(&password(USER, "wrong"));
        r.advance(Duration::from_millis(100));
        if i < 5 {
            assert!(alive && r.c.take(msg::USERAUTH_FAILURE).is_some(), "attempt {i}");
        } else {
            assert!(!alive, "the sixth failure must disconnect");
        }
    }
    r.assert_disconnected(14, "6 failed attempts");
    assert_eq!(r.app.authenticated(), 0);
    // The request cap (MAX_REQUESTS = 64): nones are not failures, but not free either.
    let mut r = Rig::authenticating(config());
    for i in 0..64 {
        assert!(r.send(&none(USER)), "none {i}");
    }
    assert!(!r.send(&none(USER)));
    r.assert_disconnected(PROTOCOL_ERROR, "more than 64 authentication requests");
    // Failures wait for the minimum delay, the same for an unknown user and a wrong password
    // (the application answered at once in both cases); so does a refused password change.
    let change = userauth(USER, SERVICE, AuthMethod::PasswordChange { old: PASSWORD, new: "new" });
    for (what, req) in [("unknown user", password("mallory", PASSWORD)), ("wrong password", password(USER, "nope")), ("password change", change)] {
        let mut r = Rig::authenticating(config());
        let t0 = r.now();
        assert!(r.send(&req));
        assert!(r.c.inbox.is_empty(), "{what}: answered at once {:?}", r.c.numbers());
        assert_eq!(r.s.next_timeout(), Some(t0 + Duration::from_millis(100)), "{what}");
        r.advance(Duration::from_millis(99));
        assert!(r.c.inbox.is_empty(), "{what}: answered before the delay");
        r.advance(Duration::from_millis(1));
        assert!(r.c.take(msg::USERAUTH_FAILURE).is_some(), "{what}: {:?}", r.c.numbers());
        assert!(r.c.take(msg::USERAUTH_SUCCESS).is_none() && r.app.authenticated() == 0, "{what}");
        if what == "password change" {
            assert!(r.app.questions().is_empty(), "a password change reached the application");
        }
    }
    // While a failure is held, what follows waits behind it (one answer per request, in order).
    let mut r = Rig::authenticating(config());
    assert!(r.send_all(&[password(USER, "nope"), none(USER)]));
    assert!(r.c.inbox.is_empty());
    r.advance(Duration::from_millis(100));
    assert_eq!(r.c.numbers(), vec![msg::USERAUTH_FAILURE, msg::USERAUTH_FAILURE]);
    // User change, service change: disconnect.
    let mut r = Rig::authenticating(config());
    assert!(r.send(&none(USER)));
    assert!(!r.send(&password("bob", PASSWORD)));
    r.assert_disconnected(PROTOCOL_ERROR, "user changed");
    assert!(r.app.questions().is_empty());
    for service in ["ssh-userauth", "ssh-connectio", ""] {
        let mut r = Rig::authenticating(config());
        assert!(r.send(&none(USER)));
        assert!(!r.send(&userauth(USER, service, AuthMethod::Password { password: PASSWORD })));
        r.assert_disconnected(PROTOCOL_ERROR, "authentication for service");
        assert!(r.app.questions().is_empty());
    }
    // After success: another request is ignored (no reply, no second Authenticated).
    let mut r = Rig::connected(config());
    let asked = r.app.questions().len();
    assert!(r.send(&password(USER, PASSWORD)), "{:?}", r.s.error());
    assert!(r.send(&password("root", "x")), "{:?}", r.s.error());
    r.advance(Duration::from_millis(200));
    assert!(r.c.inbox.is_empty(), "answered after success: {:?}", r.c.numbers());
    assert_eq!((r.app.authenticated(), r.app.questions().len()), (1, asked));
    assert_eq!(r.s.user(), Some(USER));
    assert!(r.open(0, 1 << 20, 32768).is_some());
}

/// S8: login grace time (default 120 s) on the simulated clock; it stops applying once
/// authenticated. The per-listener cap on unauthenticated connections is the blocking
/// runtime's, not this core's.
#[test]
fn s8_login_grace() {
    let mut r = Rig::authenticating(config());
    assert_eq!(r.s.next_timeout(), Some(r.start + Duration::from_secs(120)));
    r.advance(Duration::from_secs(119));
    r.assert_alive();
    // Traffic does not extend it.
    assert!(r.send(&none(USER)));
    let _ = r.c.take(msg::USERAUTH_FAILURE);
    r.advance(Duration::from_secs(1));
    r.assert_disconnected(11, "login grace");
    assert_eq!(r.app.authenticated(), 0);
    // Once authenticated, no deadline is left (idle timeout off by default).
    let mut r = Rig::connected(config());
    assert!(r.s.next_timeout().is_none_or(|t| t > r.start + Duration::from_secs(600)), "only the rekey timer is left");
    r.advance(Duration::from_secs(600));
    r.assert_alive();
}

/// S9: channel cap (reason 4), zero window / max packet refused, data past the window or
/// past our maximum packet is an error, WINDOW_ADJUST saturates, output bounded by the
/// client's window.
#[test]
fn s9_channel_limits() {
    let mut cfg = config();
    cfg.max_channels = 2;
    let mut r = Rig::connected(cfg);
    assert!(r.open(0, 1 << 20, 32768).is_some() && r.open(1, 1 << 20, 32768).is_some());
    assert!(r.open(2, 1 << 20, 32768).is_none());
    assert_eq!(r.open_failure(), Some(4));
    assert_eq!(r.app.opens(), 2, "the third open reached the application");
    // Zero window, zero maximum packet (the cap is not what refuses them: one slot is freed).
    let mut r = Rig::connected(config());
    assert!(r.open(0, 0, 32768).is_none());
    assert_eq!(r.open_failure(), Some(2));
    assert!(r.open(1, 1 << 20, 0).is_none());
    assert_eq!(r.open_failure(), Some(2));
    assert_eq!(r.app.opens(), 0);
    r.assert_alive();
    // A DATA bigger than our maximum packet (32768).
    let mut r = Rig::connected(config());
    let id = r.open(0, 1 << 20, 32768).unwrap();
    assert!(r.send(&data(id, &[7; 32768])));
    assert!(!r.send(&data(id, &[7; 32769])));
    r.assert_disconnected(PROTOCOL_ERROR, "more than our maximum of 32768");
    // Data past the window (2 MiB, never adjusted since nobody reads).
    let mut r = Rig::connected(config());
    let id = r.open(0, 1 << 20, 32768).unwrap();
    let chunk = vec![1u8; 32768];
    for i in 0..64 {
        assert!(r.send(&data(id, &chunk)), "chunk {i} within the window: {:?}", r.s.error());
    }
    assert!(!r.send(&data(id, &[1])));
    r.assert_disconnected(PROTOCOL_ERROR, "window");
    // WINDOW_ADJUST overflow saturates; a client that never adjusts gets exactly its window.
    let mut r = Rig::connected(config());
    r.app.exec_output = 100_000;
    let id = r.open(0, 1000, 32768).unwrap();
    let sid = r.app.channels[0];
    assert!(r.send(&exec(id, "yes")));
    let got: usize = r.c.inbox.iter().filter(|(_, p)| p[0] == msg::CHANNEL_DATA).map(|(_, p)| p.len() - 9).sum();
    assert_eq!(got, 1000, "sent past the client's window");
    assert_eq!(r.s.writable(sid), 0);
    for _ in 0..10 {
        assert_eq!(r.s.send_data(sid, &[0; 65536]), 0, "queued past the window");
    }
    assert_eq!(r.s.output_len(), 0, "nothing grows");
    assert!(r.send(&Msg::ChannelWindowAdjust { recipient: id, bytes: u32::MAX }.encode()));
    assert!(r.send(&Msg::ChannelWindowAdjust { recipient: id, bytes: u32::MAX }.encode()), "{:?}", r.s.error());
    assert!(r.s.writable(sid) > 0);
    assert!(r.s.send_data(sid, &[0; 100]) == 100);
    r.assert_alive();
}

/// S10 and S12: unknown channel and global requests answered FAILURE only with want_reply,
/// one reply per request in order; unknown message numbers get UNIMPLEMENTED with their
/// sequence number; trailing bytes in a known message are an error.
#[test]
fn s10_unknown_requests_and_messages() {
    let mut r = Rig::connected(config());
    let id = r.open(0, 1 << 20, 32768).unwrap();
    assert!(r.send(&channel_request(id, "foo@example.com", true, b"")));
    assert!(r.send(&channel_request(id, "foo@example.com", false, b"")));
    assert!(r.send(&Msg::GlobalRequest { name: "bar@example.com", want_reply: true, data: b"" }.encode()));
    assert!(r.send(&Msg::GlobalRequest { name: "bar@example.com", want_reply: false, data: b"" }.encode()));
    assert_eq!(r.replies(), vec![msg::CHANNEL_FAILURE, msg::REQUEST_FAILURE]);
    assert!(r.app.requests().is_empty(), "unknown requests reached the app");
    // Interleaved, in one write: one reply each, in order.
    let unknown = channel_request(id, "winadj@putty.projects.tartarus.org", true, b"");
    assert!(r.send_all(&[env(id, "LANG", "C"), unknown.clone(), env(id, "LD_PRELOAD", "/x.so"), unknown, exec(id, "true")]));
    use msg::{CHANNEL_FAILURE as F, CHANNEL_SUCCESS as S};
    assert_eq!(r.replies(), vec![S, F, F, F, S]);
    assert_eq!(r.app.ran, vec![b"true".to_vec()]);
    // Unknown message numbers.
    for n in [150u8, 200, 255] {
        let seq = r.c.tx_seq;
        assert!(r.send(&[n, 1, 2, 3]));
        let (_, p) = r.c.take(msg::UNIMPLEMENTED).expect("UNIMPLEMENTED");
        assert_eq!(Msg::decode(&p).unwrap(), Msg::Unimplemented { seq }, "message {n}");
    }
    r.assert_alive();
    // Trailing bytes.
    let with_tail = |mut p: Vec<u8>, connected: bool, frag: &str| {
        let mut r = if connected { Rig::connected(config()) } else { Rig::kexed(config()) };
        if connected {
            assert!(r.open(0, 1 << 20, 32768).is_some());
        }
        p.push(0);
        assert!(!r.send(&p), "{frag}: trailing byte accepted");
        r.assert_dead(frag);
        assert!(r.app.ran.is_empty() && r.app.requests().is_empty());
    };
    with_tail(exec(0, "true"), true, "trailing");
    with_tail(data(0, b"abc"), true, "trailing");
    with_tail(Msg::ChannelEof { recipient: 0 }.encode(), true, "trailing");
    with_tail(Msg::ServiceRequest { name: "ssh-userauth" }.encode(), false, "trailing");
}

/// S11: `env` only for the allow-list (LD_PRELOAD refused without asking the application).
#[test]
fn s11_env_allow_list() {
    let mut r = Rig::connected(config());
    let id = r.open(0, 1 << 20, 32768).unwrap();
    assert!(r.send_all(&[env(id, "LD_PRELOAD", "/tmp/x.so"), env(id, "LANG", "C.UTF-8"), env(id, "LC_ALL", "C"), env(id, "PATH", "/tmp")]));
    use msg::{CHANNEL_FAILURE as F, CHANNEL_SUCCESS as S};
    assert_eq!(r.replies(), vec![F, S, S, F]);
    let asked: Vec<String> = r.app.requests().iter().filter_map(|q| if let Request::Env { name, .. } = q { Some(name.clone()) } else { None }).collect();
    assert_eq!(asked, vec!["LANG", "LC_ALL"]);
    // The application's own list replaces the default.
    let mut cfg = config();
    cfg.env_allow = vec!["FOO".into()];
    let mut r = Rig::connected(cfg);
    let id = r.open(0, 1 << 20, 32768).unwrap();
    assert!(r.send_all(&[env(id, "LANG", "C"), env(id, "FOO", "1"), env(id, "FOOBAR", "1")]));
    assert_eq!(r.replies(), vec![F, S, F]);
    assert_eq!(r.app.requests().len(), 1);
    assert!(!r.app.events.iter().any(|e| matches!(e, Event::ChannelRequest { request: Request::Env { name, .. }, .. } if name != "FOO")));
}

/// Random and fuzzed input never panics: raw bytes after a valid identification line, and
/// random payloads sealed after a real key exchange and login (via `fuzzing::server`, which
/// also checks the role's invariants: errors stick, nothing of RFC 4254 reaches the
/// application before authentication).
#[test]
fn random_input_never_panics() {
    let mut rng = sshbridge::fuzzing::FuzzRng::new(77);
    let mut rand = |n: usize| {
        let mut v = vec![0u8; n];
        sshbridge::random::Random::fill(&mut rng, &mut v);
        v
    };
    for i in 0..3000u32 {
        let len = usize::from(rand(1)[0]) * 4;
        let mut input = vec![(i % 8) as u8, rand(1)[0]];
        input.extend(rand(len));
        sshbridge::fuzzing::server(&input);
    }
    // Session mode: a login first, then random payloads with plausible message numbers.
    let login = password(sshbridge::fuzzing::SERVER_USER, sshbridge::fuzzing::SERVER_PASSWORD);
    let mut logged_in = 0;
    for i in 0..60u32 {
        let mut payloads = vec![Msg::ServiceRequest { name: "ssh-userauth" }.encode()];
        if i % 2 == 0 {
            payloads.push(login.clone());
        }
        for _ in 0..40 {
            let b = rand(3);
            let n = [5u8, 50, 80, 90, 93, 94, 96, 97, 98, 2, 0, b[1]][usize::from(b[0]) % 12];
            let mut p = vec![n];
            if n == 98 || n == 94 || n == 93 {
                p.extend_from_slice(&[0, 0, 0, u8::from(b[2] & 1 == 0)]);
            }
            p.extend(rand(usize::from(b[2] % 40)));
            payloads.push(p);
        }
        let mut input = vec![8 | (i % 8) as u8];
        input.extend(sshbridge::fuzzing::make_script(&payloads));
        let out = sshbridge::fuzzing::run_server(&input).unwrap();
        logged_in += usize::from(out.app.authenticated);
    }
    assert!(logged_in >= 25, "only {logged_in} of 60 sessions got past authentication");
}

/// From the review of the server role: a client that does not read our answers cannot grow
/// our output without bound (the core stops taking input), a dead core has no deadline left to
/// spin on, a running re-exchange has no rekey timer in the past, and the client's extended
/// data on a session is dropped with the window kept moving.
#[test]
fn review_backpressure_timers_and_extended_data() {
    // Before authentication: unknown messages, each answered with UNIMPLEMENTED, output never
    // collected.
    let mut r = Rig::kexed(config());
    let mut fed = 0usize;
    while r.s.wants_input() && fed < 100_000 {
        let pkt = r.c.seal(&[200, 0, 0, 0, 0]);
        let now = r.now();
        assert!(r.s.handle_input(&pkt, now).is_ok());
        fed += 1;
    }
    assert!(!r.s.wants_input(), "the server kept reading after {fed} packets");
    assert!(r.s.transport().pending_output() < 2 * 1024 * 1024, "{} bytes held", r.s.transport().pending_output());
    // Once dead, no deadline remains (the driver would otherwise spin on a past one).
    r.advance(Duration::from_secs(121));
    assert_eq!(r.s.phase(), Phase::Dead);
    assert_eq!(r.s.next_timeout(), None);
    // A re-exchange in progress: no rekey timer until it ends.
    let mut r = Rig::connected(config());
    assert!(r.s.next_timeout().is_some(), "the hourly rekey timer");
    assert!(r.s.rekey());
    assert_eq!(r.s.next_timeout(), None);
    // Extended data from the client (2.5 MiB, more than the 2 MiB window): dropped, window
    // adjusted, the channel lives on and nothing piles up.
    let mut r = Rig::connected(config());
    let id = r.open(0, 1 << 20, 32768).unwrap();
    let chunk = vec![7u8; 32768];
    for _ in 0..80 {
        let mut w = sshbridge::wire::Writer::new();
        w.u8(msg::CHANNEL_EXTENDED_DATA).u32(id).u32(1).string(&chunk);
        assert!(r.send(&w.into_vec()), "extended data beyond the window: {:?}", r.s.error());
    }
    assert_eq!(r.s.channel(id).map(|c| c.stderr_len()), Some(0));
    r.assert_alive();
}
