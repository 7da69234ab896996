//! Hostile servers during authentication and on channels (HOSTILE.md rows 27-38 and 42),
//! driven through the blocking Rust API against the scripted fake server of `tests/fake`.
//! Each test checks the bound on elapsed time, the error variant and text, and that the
//! client's socket is closed once the session is gone.

mod fake;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fake::server::*;
use fake::*;
use sshbridge::msg::{self, AuthMethod, Msg};
use sshbridge::wire::{Reader, Writer};
use sshbridge::{Config, Credential, Error, ExitStatus, Session};

#[global_allocator]
static ALLOC: fake::CountingAlloc = fake::CountingAlloc;

const WIN: u32 = 1 << 20;

fn banner() -> Step {
    Step::Banner(SERVER_IDENT.into())
}

fn kex() -> Step {
    Step::Kex(KexOpts::default())
}

fn service() -> Vec<Step> {
    vec![Step::Expect(msg::SERVICE_REQUEST), Step::Packet(Msg::ServiceAccept { name: "ssh-userauth" }.encode())]
}

/// Wait for a USERAUTH_REQUEST, answer with `reply`.
fn on_request(reply: Vec<u8>) -> Vec<Step> {
    vec![Step::Expect(msg::USERAUTH_REQUEST), Step::Packet(reply)]
}

fn failure(methods: &[&str], partial: bool) -> Vec<u8> {
    Msg::UserauthFailure { methods: methods.to_vec(), partial }.encode()
}

fn success() -> Vec<u8> {
    Msg::UserauthSuccess.encode()
}

/// Up to an open channel with a running command.
fn open(window: u32, max_packet: u32) -> Vec<Step> {
    vec![banner(), kex(), Step::AcceptAuth, Step::AcceptChannel { window, max_packet }, Step::AcceptExec]
}

fn finish(code: u32) -> Vec<Step> {
    vec![Step::ExitStatus(code), Step::Eof, Step::ChannelClose]
}

fn cat(a: Vec<Step>, b: Vec<Step>) -> Vec<Step> {
    let mut v = a;
    v.extend(b);
    v
}

fn connect_err(steps: Vec<Step>, cfg: Config) -> (Error, Duration, ConnRecord) {
    let srv = FakeServer::start(steps);
    let t = Instant::now();
    alloc_mark_reset();
    let e = expect_err(Session::connect(srv.addr(), cfg));
    let el = t.elapsed();
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_socket_released(rec.client_socket());
    (e, el, rec)
}

/// Connect and run one command with `output()`; returns its result and the server record.
fn run(steps: Vec<Step>, cfg: Config) -> (Result<(Vec<u8>, Vec<u8>, Option<ExitStatus>), Error>, Duration, ConnRecord) {
    let srv = FakeServer::start(steps);
    let t = Instant::now();
    let r = Session::connect(srv.addr(), cfg).and_then(|s| s.exec("cmd").and_then(|c| c.output()));
    let el = t.elapsed();
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_socket_released(rec.client_socket());
    (r, el, rec)
}

/// The methods of every USERAUTH_REQUEST the client sent.
fn auth_methods(rec: &ConnRecord) -> Vec<String> {
    rec.all(msg::USERAUTH_REQUEST)
        .iter()
        .map(|r| match Msg::decode(&r.payload) {
            Ok(Msg::UserauthRequest { method, .. }) => match method {
                AuthMethod::None => "none".into(),
                AuthMethod::Password { .. } => "password".into(),
                AuthMethod::PasswordChange { .. } => "password-change".into(),
                AuthMethod::PublicKey { sig: None, .. } => "publickey-query".into(),
                AuthMethod::PublicKey { sig: Some(_), .. } => "publickey-signed".into(),
                AuthMethod::KeyboardInteractive { .. } => "keyboard-interactive".into(),
                AuthMethod::Other { name, .. } => name.to_string(),
            },
            _ => "?".into(),
        })
        .collect()
}

fn no_allow_none() -> Config {
    let mut c = config();
    c.allow_none_auth = false;
    c
}

// ---------------------------------------------------------------------------------------
// Row 27: trivial and unsolicited success
// ---------------------------------------------------------------------------------------

#[test]
fn r27_success_to_none_follows_the_policy_flag() {
    let _g = shared();
    let steps = || {
        cat(
            cat(vec![banner(), kex()], service()),
            cat(
                on_request(success()),
                cat(
                    vec![
                        Step::AcceptChannel { window: WIN, max_packet: 32768 },
                        Step::AcceptExec,
                        Step::Data(b"in\n".to_vec()),
                    ],
                    finish(0),
                ),
            ),
        )
    };
    // Default: accepted (OpenSSH's behaviour; the host key is pinned).
    let (r, _, rec) = run(steps(), config());
    assert_eq!(r.unwrap().0, b"in\n");
    assert_eq!(auth_methods(&rec), ["none"]);
    // "Disable trivial auth": refused.
    let (e, el, rec) = connect_err(steps(), no_allow_none());
    assert_error(&e, &["AuthFailed"], "trivial");
    assert!(el < PROMPT);
    assert!(!rec.got(msg::CHANNEL_OPEN));
}

#[test]
fn r27_success_after_a_real_password_is_fine_without_trivial_auth() {
    let _g = shared();
    let mut cfg = no_allow_none();
    cfg.credentials.push(Credential::password("pw"));
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(
            cat(on_request(failure(&["password"], false)), on_request(success())),
            cat(vec![Step::AcceptChannel { window: WIN, max_packet: 32768 }, Step::AcceptExec], finish(0)),
        ),
    );
    let (r, _, rec) = run(steps, cfg);
    assert_eq!(r.unwrap().2, Some(ExitStatus::Code(0)));
    assert_eq!(auth_methods(&rec), ["none", "password"]);
}

#[test]
fn r27_success_to_an_unsigned_key_query_is_trivial() {
    let _g = shared();
    let mut cfg = no_allow_none();
    cfg.credentials.push(Credential::Key(keys().ed_b.clone()));
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(on_request(failure(&["publickey"], false)), on_request(success())),
    );
    let (e, _, rec) = connect_err(cat(steps, vec![Step::Hang]), cfg);
    assert_eq!(auth_methods(&rec), ["none", "publickey-query"]);
    assert_error(&e, &["AuthFailed"], "trivial");
}

#[test]
fn r27_success_to_keyboard_interactive_without_answers_is_trivial() {
    let _g = shared();
    let mut cfg = no_allow_none();
    cfg.credentials.push(Credential::password("pw"));
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(on_request(failure(&["keyboard-interactive"], false)), on_request(success())),
    );
    let (e, _, rec) = connect_err(cat(steps, vec![Step::Hang]), cfg);
    assert_eq!(auth_methods(&rec), ["none", "keyboard-interactive"]);
    assert_error(&e, &["AuthFailed"], "trivial");
}

#[test]
fn r27_unsolicited_and_duplicate_success() {
    let _g = shared();
    // SUCCESS instead of SERVICE_ACCEPT: before any USERAUTH_REQUEST could have been sent.
    let (e, el, rec) = connect_err(
        vec![banner(), kex(), Step::Expect(msg::SERVICE_REQUEST), Step::Packet(success()), Step::Hang],
        config(),
    );
    assert_error(&e, &["Protocol"], "before SERVICE_ACCEPT");
    assert!(el < PROMPT);
    assert!(!rec.got(msg::USERAUTH_REQUEST));
    // A second SUCCESS.
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(on_request(success()), vec![Step::Packet(success()), Step::Hang]),
    );
    let (r, el, _) = run(steps, config());
    assert_error(&r.unwrap_err(), &["Protocol"], "after authentication succeeded");
    assert!(el < Duration::from_secs(4), "{el:?}");
}

#[test]
fn r27_auth_layer_messages_out_of_order() {
    let _g = shared();
    let accept = |name: &'static str| Step::Packet(Msg::ServiceAccept { name }.encode());
    let cases: Vec<(&str, Vec<Step>, &str)> = vec![
        (
            "SERVICE_ACCEPT for another service",
            vec![Step::Expect(msg::SERVICE_REQUEST), accept("ssh-connection")],
            "SERVICE_ACCEPT",
        ),
        (
            "SERVICE_ACCEPT twice",
            vec![Step::Expect(msg::SERVICE_REQUEST), accept("ssh-userauth"), accept("ssh-userauth")],
            "SERVICE_ACCEPT",
        ),
        (
            "USERAUTH_REQUEST from the server",
            cat(
                service(),
                vec![Step::Packet(
                    Msg::UserauthRequest { user: "u", service: "ssh-connection", method: AuthMethod::None }.encode(),
                )],
            ),
            "client-only",
        ),
        (
            "PK_OK after none",
            cat(
                service(),
                on_request({
                    let mut w = Writer::new();
                    w.u8(msg::USERAUTH_60).str("ssh-ed25519").string(b"k");
                    w.into_vec()
                }),
            ),
            "60",
        ),
        (
            "malformed FAILURE",
            cat(
                service(),
                on_request({
                    let mut w = Writer::new();
                    w.u8(msg::USERAUTH_FAILURE).str("password,public key").bool(false);
                    w.into_vec()
                }),
            ),
            "name",
        ),
        (
            "GLOBAL_REQUEST before SUCCESS",
            cat(service(), on_request(Msg::GlobalRequest { name: "x", want_reply: true, data: &[] }.encode())),
            "before authentication",
        ),
        (
            "CHANNEL_OPEN before SUCCESS",
            cat(
                service(),
                on_request(
                    Msg::ChannelOpen { kind: "x11", sender: 1, window: 10, max_packet: 10, extra: &[] }.encode(),
                ),
            ),
            "before authentication",
        ),
    ];
    for (what, steps, frag) in cases {
        let mut cfg = config();
        cfg.credentials.push(Credential::password("pw"));
        let (e, el, rec) = connect_err(cat(cat(vec![banner(), kex()], steps), vec![Step::Hang]), cfg);
        assert!(matches!(e, Error::Protocol(_)) && e.to_string().contains(frag), "{what}: {e}");
        assert!(el < PROMPT, "{what}");
        assert!(
            !auth_methods(&rec).contains(&"password".to_string()),
            "{what}: password sent after a protocol violation"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Row 28: authentication that never ends
// ---------------------------------------------------------------------------------------

/// Answer every USERAUTH_REQUEST with `reply` (until the client stops asking).
fn answer_all(reply: Vec<u8>) -> Step {
    hook(move |c| loop {
        let p = c.expect(msg::USERAUTH_REQUEST)?;
        let _ = p;
        c.send(&reply)?;
    })
}

#[test]
fn r28_endless_partial_failures_are_bounded() {
    let _g = shared();
    let mut cfg = config();
    cfg.credentials.push(Credential::password("pw"));
    cfg.credentials.push(Credential::Key(keys().ed_b.clone()));
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        vec![answer_all(failure(&["publickey", "password", "keyboard-interactive"], true))],
    );
    let (e, el, rec) = connect_err(steps, cfg);
    assert_error(&e, &["AuthFailed"], "authentication failed");
    assert!(el < PROMPT, "{el:?}");
    let methods = auth_methods(&rec);
    assert!(rec.received.len() < 30, "{} packets before giving up: {methods:?}", rec.received.len());
    assert_eq!(methods, ["none", "password", "keyboard-interactive", "publickey-query"]);
}

#[test]
fn r28_only_unsupported_methods() {
    let _g = shared();
    let mut cfg = config();
    cfg.credentials.push(Credential::password("pw"));
    let steps =
        cat(cat(vec![banner(), kex()], service()), vec![answer_all(failure(&["gssapi-with-mic", "hostbased"], false))]);
    let (e, el, rec) = connect_err(steps, cfg);
    assert_error(&e, &["AuthFailed"], "gssapi-with-mic");
    assert!(el < PROMPT);
    assert_eq!(auth_methods(&rec), ["none"]);
}

#[test]
fn r28_flood_of_unsolicited_failures() {
    let _g = shared();
    let mut cfg = config();
    cfg.credentials.push(Credential::password("pw"));
    let mut steps = cat(cat(vec![banner(), kex()], service()), vec![Step::Expect(msg::USERAUTH_REQUEST)]);
    for _ in 0..1000 {
        steps.push(Step::Packet(failure(&["password", "keyboard-interactive"], false)));
    }
    steps.push(Step::Hang);
    let (e, el, rec) = connect_err(steps, cfg);
    assert_error(&e, &["AuthFailed"], "");
    assert!(el < PROMPT);
    assert!(auth_methods(&rec).len() <= 3, "{:?}", auth_methods(&rec));
}

fn info_request(prompts: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(msg::USERAUTH_60).str("name").str("instruction").str("");
    w.u32(prompts);
    for _ in 0..prompts.min(2000) {
        w.str("Password: ").bool(false);
    }
    w.into_vec()
}

#[test]
fn r28_endless_keyboard_interactive_rounds() {
    let _g = shared();
    let mut cfg = config();
    cfg.credentials.push(Credential::password("pw"));
    let rounds = hook(|c| loop {
        let p = c.expect(msg::USERAUTH_INFO_RESPONSE).or_else(|_| c.expect(msg::USERAUTH_REQUEST))?;
        let _ = p;
        c.send(&info_request(1))?;
    });
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(cat(on_request(failure(&["keyboard-interactive"], false)), on_request(info_request(1))), vec![rounds]),
    );
    let (e, el, rec) = connect_err(steps, cfg);
    assert_error(&e, &["AuthFailed"], "");
    assert!(el < PROMPT);
    let answers = rec.all(msg::USERAUTH_INFO_RESPONSE).len();
    assert!((1..=8).contains(&answers), "{answers} INFO_RESPONSEs");
    // Too many prompts in one request: refused without answering.
    let mut cfg = config();
    cfg.credentials.push(Credential::password("pw"));
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(
            cat(on_request(failure(&["keyboard-interactive"], false)), on_request(info_request(1000))),
            vec![Step::Hang],
        ),
    );
    let (e, _, rec) = connect_err(steps, cfg);
    assert_error(&e, &["Protocol"], "prompts");
    assert!(!rec.got(msg::USERAUTH_INFO_RESPONSE));
}

#[test]
fn r28_pk_ok_for_a_key_we_did_not_offer() {
    let _g = shared();
    let mut cfg = config();
    cfg.credentials.push(Credential::Key(keys().ed_b.clone()));
    let other = keys().ed_a.public_key();
    let mut w = Writer::new();
    w.u8(msg::USERAUTH_60).str("ssh-ed25519").string(other.blob());
    let steps = cat(
        cat(vec![banner(), kex()], service()),
        cat(cat(on_request(failure(&["publickey"], false)), on_request(w.into_vec())), vec![Step::Hang]),
    );
    let (e, _, rec) = connect_err(steps, cfg);
    assert_error(&e, &["Protocol"], "did not offer");
    assert!(!auth_methods(&rec).contains(&"publickey-signed".to_string()));
}

// ---------------------------------------------------------------------------------------
// Row 29: USERAUTH_BANNER
// ---------------------------------------------------------------------------------------

#[test]
fn r29_banners_are_bounded_and_sanitized() {
    let _g = shared();
    let b = |m: &[u8]| Msg::UserauthBanner { message: m }.encode();
    let mut steps = cat(vec![banner(), kex()], service());
    steps.push(Step::Expect(msg::USERAUTH_REQUEST));
    steps.push(Step::Packet(b(b"")));
    steps.push(Step::Packet(b(b"\x1b[2J\x1b]0;title\x07 clear screen\r\n")));
    steps.push(Step::Packet(b(&vec![b'B'; 100 * 1024])));
    for i in 0..1000 {
        steps.push(Step::Packet(b(format!("banner line {i:04} {}\n", "-".repeat(80)).as_bytes())));
    }
    steps.push(Step::Packet(success()));
    steps.extend(cat(
        vec![Step::AcceptChannel { window: WIN, max_packet: 32768 }, Step::AcceptExec, Step::Data(b"ok".to_vec())],
        finish(0),
    ));
    let srv = FakeServer::start(steps);
    let rss = vm_rss_kib();
    alloc_mark_reset();
    let s = Session::connect(srv.addr(), config()).unwrap();
    assert!(alloc_mark() < 1 << 20, "largest allocation {}", alloc_mark());
    let info = s.info().unwrap();
    assert!(info.banner.len() <= 8 * 1024 + 64, "banner kept {} bytes", info.banner.len());
    assert!(!info.banner.contains('\x1b') && !info.banner.contains('\x07'), "{:?}", &info.banner[..80]);
    assert!(info.banner.contains("clear screen"));
    assert_eq!(s.exec("x").unwrap().output().unwrap().0, b"ok");
    assert!(vm_rss_kib() < rss + 32 * 1024);
    drop(s);
    assert_socket_released(srv.client_socket());
}

// ---------------------------------------------------------------------------------------
// Rows 30-31: opening the channel
// ---------------------------------------------------------------------------------------

fn confirm(recipient: u32, window: u32, max_packet: u32) -> Vec<u8> {
    Msg::ChannelOpenConfirmation { recipient, sender: SERVER_CHANNEL, window, max_packet, extra: &[] }.encode()
}

#[test]
fn r30_bad_open_confirmations() {
    let _g = shared();
    let pre = || vec![banner(), kex(), Step::AcceptAuth, Step::Expect(msg::CHANNEL_OPEN)];
    let cases: Vec<(&str, Vec<Step>, &str)> = vec![
        ("unknown id", vec![Step::Packet(confirm(5, WIN, 32768))], "unknown channel 5"),
        ("id > INT_MAX", vec![Step::Packet(confirm(0x8000_0001, WIN, 32768))], "unknown channel"),
        (
            "twice",
            vec![Step::Packet(confirm(0, WIN, 32768)), Step::Packet(confirm(0, WIN, 32768))],
            "second open confirmation",
        ),
        ("max packet 0", vec![Step::Packet(confirm(0, WIN, 0))], "maximum packet size 0"),
    ];
    for (what, steps, frag) in cases {
        let (r, el, _) = run(cat(cat(pre(), steps), vec![Step::Hang]), config());
        let e = r.expect_err(what);
        assert_error(&e, &["Protocol"], frag);
        assert!(el < PROMPT, "{what}: {el:?}");
    }
}

#[test]
fn r30_max_packet_1_works_for_a_small_payload() {
    let _g = shared();
    let srv =
        FakeServer::start(cat(open(WIN, 1), cat(vec![Step::ExpectData(5), Step::Data(b"done".to_vec())], finish(0))));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    ch.write_all(b"hello").unwrap();
    let (o, _, st) = ch.output().unwrap();
    assert_eq!((o.as_slice(), st), (&b"done"[..], Some(ExitStatus::Code(0))));
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    let sizes: Vec<usize> = rec.all(msg::CHANNEL_DATA).iter().map(|r| r.payload.len() - 9).collect();
    assert_eq!(sizes, [1, 1, 1, 1, 1], "data packets must honour max packet 1");
    assert_eq!(rec.data, b"hello");
    assert_socket_released(rec.client_socket());
}

#[test]
fn r30_huge_max_packet_and_window_are_capped() {
    let _g = shared();
    let steps = cat(open(u32::MAX, u32::MAX), cat(vec![Step::ExpectData(300_000)], finish(0)));
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    ch.write_all(&vec![b'm'; 300_000]).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    let biggest = rec.all(msg::CHANNEL_DATA).iter().map(|r| r.payload.len() - 9).max().unwrap();
    assert!(biggest <= 32768, "a {biggest}-byte data chunk (transport packets must stay under 35000 bytes)");
    assert_eq!(rec.data.len(), 300_000);
}

#[test]
fn r30_window_0_then_window_adjust() {
    let _g = shared();
    let steps = cat(
        open(0, 32768),
        cat(
            vec![
                Step::Sleep(1000),
                Step::WindowAdjust(3),
                Step::ExpectData(3),
                Step::Sleep(300),
                Step::WindowAdjust(100),
                Step::ExpectData(5),
            ],
            finish(0),
        ),
    );
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let (t, cpu) = (Instant::now(), thread_cpu());
    ch.write_all(b"hello").unwrap();
    let (el, used) = (t.elapsed(), thread_cpu() - cpu);
    assert!(el >= Duration::from_millis(1200) && el < Duration::from_secs(3), "{el:?}");
    assert!(used < Duration::from_millis(300), "busy waiting: {used:?} CPU");
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_eq!(rec.data, b"hello");
    assert_socket_released(rec.client_socket());
}

#[test]
fn r31_open_failure_and_refused_command_are_clean_errors() {
    let _g = shared();
    let fail = Msg::ChannelOpenFailure { recipient: 0, reason: 4, description: b"no \x1b[31mway\n" }.encode();
    let refuse = Msg::ChannelFailure { recipient: 1 }.encode();
    let steps = cat(
        vec![banner(), kex(), Step::AcceptAuth, Step::Expect(msg::CHANNEL_OPEN), Step::Packet(fail)],
        cat(
            vec![
                Step::AcceptChannel { window: WIN, max_packet: 32768 },
                Step::Expect(msg::CHANNEL_REQUEST),
                Step::Packet(refuse),
                Step::Expect(msg::CHANNEL_CLOSE),
                Step::ChannelClose,
            ],
            cat(
                vec![
                    Step::AcceptChannel { window: WIN, max_packet: 32768 },
                    Step::AcceptExec,
                    Step::Data(b"third".to_vec()),
                ],
                finish(0),
            ),
        ),
    );
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let t = Instant::now();
    let e = s.exec("x").err().expect("open must fail");
    assert!(t.elapsed() < PROMPT);
    assert_error(&e, &["ChannelOpenFailed"], "reason 4");
    // The session survives: a refused command, then one that runs.
    let e = s.exec("y").err().expect("exec must be refused");
    assert_error(&e, &["ChannelRequestFailed"], "refused");
    let (o, _, st) = s.exec("z").unwrap().output().unwrap();
    assert_eq!((o.as_slice(), st), (&b"third"[..], Some(ExitStatus::Code(0))));
    drop(s);
    assert_socket_released(srv.client_socket());
}

#[test]
fn r31_refused_command_is_reported_without_waiting_for_close() {
    let _g = shared();
    let refuse = Msg::ChannelFailure { recipient: 0 }.encode();
    let steps = vec![
        banner(),
        kex(),
        Step::AcceptAuth,
        Step::AcceptChannel { window: WIN, max_packet: 32768 },
        Step::Expect(msg::CHANNEL_REQUEST),
        Step::Packet(refuse),
        Step::Hang,
    ];
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let t = Instant::now();
    let e = s.exec("x").err().expect("exec must be refused");
    assert_error(&e, &["ChannelRequestFailed"], "refused");
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
}

// ---------------------------------------------------------------------------------------
// Rows 32-34: windows and channel ids
// ---------------------------------------------------------------------------------------

#[test]
fn r32_window_adjust_overflow() {
    let _g = shared();
    // 1000 + 0xffffffff wraps: protocol error (seen while reading: before our EOF, after
    // which adjusts are moot and ignored).
    let srv = FakeServer::start(cat(open(1000, 32768), vec![Step::WindowAdjust(u32::MAX), Step::Hang]));
    let t = Instant::now();
    let r = Session::connect(srv.addr(), config()).and_then(|s| {
        let mut ch = s.exec("x")?;
        ch.read(&mut [0u8; 8]).map_err(|e| ssh_error(&e).unwrap())
    });
    assert_error(&r.unwrap_err(), &["Protocol"], "2^32-1");
    assert!(t.elapsed() < PROMPT);
    assert_socket_released(srv.client_socket());
    // Exactly 2^32-1 is fine.
    let (r, _, _) = run(cat(open(1000, 32768), cat(vec![Step::WindowAdjust(u32::MAX - 1000)], finish(0))), config());
    assert_eq!(r.unwrap().2, Some(ExitStatus::Code(0)));
    // After the client's EOF and after CLOSE, adjusts are ignored.
    let steps = cat(
        open(1000, 32768),
        vec![
            Step::Expect(msg::CHANNEL_EOF),
            Step::WindowAdjust(u32::MAX),
            Step::WindowAdjust(u32::MAX),
            Step::ExitStatus(0),
            Step::Eof,
            Step::ChannelClose,
            Step::WindowAdjust(u32::MAX),
            Step::WindowAdjust(u32::MAX),
        ],
    );
    let (r, _, _) = run(steps, config());
    assert_eq!(r.unwrap().2, Some(ExitStatus::Code(0)));
}

#[test]
fn r33_more_data_than_our_window() {
    let _g = shared();
    // The application closes the channel without reading; the server ignores the CLOSE and
    // sends 2 MiB + 64 KiB while the session runs a keepalive: nothing consumes the data.
    let chunk = vec![b'w'; 32768];
    let mut steps = open(WIN, 32768);
    steps.push(Step::Expect(msg::CHANNEL_CLOSE));
    for _ in 0..(2 * 1024 * 1024 / 32768 + 2) {
        steps.push(Step::Data(chunk.clone()));
    }
    steps.push(Step::Hang);
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    drop(s.exec("x").unwrap());
    let t = Instant::now();
    let e = s.keepalive(Duration::from_secs(2)).unwrap_err();
    assert_error(&e, &["Protocol"], "window");
    assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
    drop(s);
    assert_socket_released(srv.client_socket());
}

/// While the application only writes (or only reads stderr), an honest server floods stdout
/// within the windows the client grants. The client must not grant window for data the
/// application has not taken beyond a fixed budget: otherwise its memory has no bound.
#[test]
fn r41_unread_output_is_bounded_while_writing_or_reading_the_other_stream() {
    let _g = shared();
    const CAP: usize = 64 << 20;
    const BUDGET: usize = 16 << 20;
    // Writing: the server never opens its receive window (64 KiB) and floods stdout.
    let flood = hook(|c| c.flood(CAP, None, Duration::from_millis(500)).map(|_| ()));
    let srv = FakeServer::start(cat(open(65536, 32768), vec![flood, Step::Hang]));
    let mut cfg = config();
    cfg.io_timeout = Some(Duration::from_secs(2));
    let s = Session::connect(srv.addr(), cfg.clone()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let rss = vm_rss_kib();
    let _ = ch.write_all(&vec![b'i'; 1 << 20]);
    let grown = vm_rss_kib().saturating_sub(rss);
    drop(ch);
    drop(s);
    let flooded = srv.conn(0, Duration::from_secs(3)).flooded;
    drop(srv);
    assert!(
        flooded <= BUDGET,
        "while the app wrote, the client accepted {flooded} bytes of unread stdout (RSS +{grown} KiB)"
    );
    // Reading stderr: stdout floods meanwhile.
    let flood = hook(|c| {
        c.flood(CAP, None, Duration::from_millis(500))?;
        c.send(&Msg::ChannelExtendedData { recipient: c.chan(), code: 1, data: b"e" }.encode())
    });
    let srv = FakeServer::start(cat(open(WIN, 32768), vec![flood, Step::Hang]));
    let s = Session::connect(srv.addr(), cfg).unwrap();
    let mut ch = s.exec("x").unwrap();
    let _ = ch.read_stderr(&mut [0u8; 8]);
    drop(ch);
    drop(s);
    let flooded = srv.conn(0, Duration::from_secs(3)).flooded;
    assert!(flooded <= BUDGET, "while the app read stderr, the client accepted {flooded} bytes of unread stdout");
}

#[test]
fn r33_single_data_packet_larger_than_our_max_packet() {
    let _g = shared();
    // We advertise 32768; like OpenSSH (channel_input_data only logs "rcvd big packet") the
    // client takes a bigger one as long as it fits the window. Memory stays bounded by it.
    let big = vec![b'b'; 100_000];
    let (r, _, _) = run(cat(open(WIN, 32768), cat(vec![Step::Data(big.clone())], finish(0))), config());
    match r {
        Ok((o, _, st)) => {
            assert_eq!(o, big);
            assert_eq!(st, Some(ExitStatus::Code(0)));
        }
        Err(e) => assert_error(&e, &["Protocol"], "packet"),
    }
}

#[test]
fn r34_messages_for_channels_that_do_not_exist() {
    let _g = shared();
    for id in [5u32, 0x8000_0001] {
        let msgs: Vec<(&str, Vec<u8>)> = vec![
            ("DATA", Msg::ChannelData { recipient: id, data: b"x" }.encode()),
            ("EXTENDED_DATA", Msg::ChannelExtendedData { recipient: id, code: 1, data: b"x" }.encode()),
            ("EOF", Msg::ChannelEof { recipient: id }.encode()),
            ("CLOSE", Msg::ChannelClose { recipient: id }.encode()),
            ("REQUEST", channel_request(id, "exit-status", false, &[0, 0, 0, 1])),
            ("WINDOW_ADJUST", Msg::ChannelWindowAdjust { recipient: id, bytes: 10 }.encode()),
            ("SUCCESS", Msg::ChannelSuccess { recipient: id }.encode()),
            ("FAILURE", Msg::ChannelFailure { recipient: id }.encode()),
            ("OPEN_FAILURE", Msg::ChannelOpenFailure { recipient: id, reason: 1, description: b"" }.encode()),
        ];
        for (what, p) in msgs {
            let (r, el, rec) = run(cat(open(WIN, 32768), vec![Step::Packet(p), Step::Hang]), config());
            let e = r.expect_err(what);
            assert_error(&e, &["Protocol"], "unknown channel");
            assert!(el < PROMPT, "{what}");
            assert_eq!(rec.disconnect_reason(), Some(2), "{what}");
        }
    }
    // Before any channel was opened.
    let (r, _, _) = run(
        vec![
            banner(),
            kex(),
            Step::AcceptAuth,
            Step::Packet(Msg::ChannelData { recipient: 0, data: b"x" }.encode()),
            Step::Hang,
        ],
        config(),
    );
    // "unknown channel 0", or "not open yet" once exec has opened channel 0.
    assert_error(&r.unwrap_err(), &["Protocol"], "channel");
}

// ---------------------------------------------------------------------------------------
// Rows 35-38: late data, exit status, requests, channels opened by the server
// ---------------------------------------------------------------------------------------

#[test]
fn r35_late_and_odd_data_is_dropped() {
    let _g = shared();
    let steps = cat(
        open(WIN, 32768),
        vec![
            Step::Data(b"out".to_vec()),
            Step::ExtData(2, b"type two".to_vec()),
            Step::ExtData(0xffff_ffff, b"type max".to_vec()),
            Step::ExtData(1, b"err".to_vec()),
            Step::ExitStatus(0),
            Step::Eof,
            // After EOF (RFC 4254 5.3: no more data): dropped, window kept moving.
            Step::Data(b"after-eof".to_vec()),
            Step::ExtData(1, b"err-after-eof".to_vec()),
            Step::ChannelClose,
            Step::Data(b"after-close".to_vec()),
            Step::ExtData(1, b"err-after-close".to_vec()),
            Step::ExitStatus(9),
        ],
    );
    let (r, _, _) = run(steps, config());
    let (o, e, st) = r.unwrap();
    assert_eq!(o, b"out");
    assert_eq!(e, b"err");
    assert_eq!(st, Some(ExitStatus::Code(0)));
}

fn status_bytes(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn signal(name_len: Option<u32>, name: &[u8], msg_: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    match name_len {
        Some(l) => w.u32(l).raw(name),
        None => w.string(name),
    };
    w.bool(true).string(msg_).str("");
    w.into_vec()
}

#[test]
fn r36_exit_status_parsed_defensively() {
    let _g = shared();
    let req = |kind: &str, data: Vec<u8>| Step::Packet(channel_request(0, kind, false, &data));
    let cases: Vec<(&str, Vec<Step>, Option<ExitStatus>)> = vec![
        (
            "empty, then 3, then 4",
            vec![req("exit-status", vec![]), req("exit-status", status_bytes(3)), req("exit-status", status_bytes(4))],
            Some(ExitStatus::Code(3)),
        ),
        (
            "trailing bytes ignored",
            vec![req("exit-status", vec![0, 0, 0, 1, 9]), req("exit-status", status_bytes(44))],
            Some(ExitStatus::Code(44)),
        ),
        ("4 GB signal name", vec![req("exit-signal", signal(Some(u32::MAX), b"TERM", b"m"))], None),
        ("no status at all", vec![], None),
    ];
    for (what, reqs, expected) in cases {
        let (r, _, _) = run(cat(open(WIN, 32768), cat(reqs, vec![Step::Eof, Step::ChannelClose])), config());
        assert_eq!(r.unwrap().2, expected, "{what}");
    }
    // A signal with a 64 KiB message full of escapes: kept short and printable.
    let mut m = vec![b'm'; 64 * 1024];
    m[10] = 0x1b;
    let (r, _, _) = run(
        cat(open(WIN, 32768), vec![req("exit-signal", signal(None, b"SEGV", &m)), Step::Eof, Step::ChannelClose]),
        config(),
    );
    match r.unwrap().2 {
        Some(ExitStatus::Signal { name, core_dumped, message }) => {
            assert_eq!(name, "SEGV");
            assert!(core_dumped);
            assert!(message.len() <= 4096, "{}", message.len());
            assert!(!message.contains('\x1b'));
        }
        other => panic!("{other:?}"),
    }
    // exit-status after CLOSE: the command ended without one.
    let (r, _, _) =
        run(cat(open(WIN, 32768), vec![Step::Eof, Step::ChannelClose, req("exit-status", status_bytes(5))]), config());
    assert_eq!(r.unwrap().2, None);
    // wait() says None too (distinct from Code(0)).
    let srv = FakeServer::start(cat(open(WIN, 32768), vec![Step::Eof, Step::ChannelClose]));
    let s = Session::connect(srv.addr(), config()).unwrap();
    assert_eq!(s.exec("x").unwrap().wait().unwrap(), None);
}

#[test]
fn r37_unknown_requests_get_failure_answers() {
    let _g = shared();
    let steps = cat(
        open(WIN, 32768),
        vec![
            Step::Packet(channel_request(0, "keepalive@openssh.com", true, &[])),
            Step::Expect(msg::CHANNEL_FAILURE),
            Step::Packet(Msg::GlobalRequest { name: "keepalive@openssh.com", want_reply: true, data: &[] }.encode()),
            Step::Expect(msg::REQUEST_FAILURE),
            Step::Packet(
                Msg::GlobalRequest { name: "hostkeys-00@openssh.com", want_reply: false, data: b"\0\0\0\x03abc" }
                    .encode(),
            ),
            Step::Packet(Msg::GlobalRequest { name: "no-reply@example.com", want_reply: false, data: &[] }.encode()),
            Step::Packet(channel_request(0, "auth-agent-req@openssh.com", false, &[])),
            Step::Data(b"alive".to_vec()),
            Step::ExitStatus(0),
            Step::Eof,
            Step::ChannelClose,
        ],
    );
    let (r, _, rec) = run(steps, config());
    let (o, _, st) = r.unwrap();
    assert_eq!((o.as_slice(), st), (&b"alive"[..], Some(ExitStatus::Code(0))));
    let fails = rec.all(msg::CHANNEL_FAILURE);
    assert_eq!(fails.len(), 1, "{:?}", rec.numbers());
    assert_eq!(
        Reader::new(&fails[0].payload[1..]).u32().unwrap(),
        SERVER_CHANNEL,
        "CHANNEL_FAILURE to the server's id"
    );
    assert_eq!(rec.all(msg::REQUEST_FAILURE).len(), 1, "only want_reply requests are answered");
}

#[test]
fn r38_channels_opened_by_the_server_are_refused() {
    let _g = shared();
    let mut steps = open(WIN, 32768);
    for (i, kind) in ["x11", "forwarded-tcpip", "auth-agent@openssh.com", "direct-tcpip"].iter().enumerate() {
        steps.push(Step::Packet(
            Msg::ChannelOpen { kind, sender: 100 + i as u32, window: WIN, max_packet: 32768, extra: b"\0\0\0\0" }
                .encode(),
        ));
    }
    for _ in 0..4 {
        steps.push(Step::Expect(msg::CHANNEL_OPEN_FAILURE));
    }
    steps.extend(cat(vec![Step::Data(b"fine".to_vec())], finish(0)));
    let (r, _, rec) = run(steps, config());
    assert_eq!(r.unwrap().0, b"fine");
    let answers: Vec<(u32, u32)> = rec
        .all(msg::CHANNEL_OPEN_FAILURE)
        .iter()
        .map(|f| {
            let mut rd = Reader::new(&f.payload[1..]);
            (rd.u32().unwrap(), rd.u32().unwrap())
        })
        .collect();
    assert_eq!(answers, [(100, 1), (101, 1), (102, 1), (103, 1)]);
}

// ---------------------------------------------------------------------------------------
// Row 39 (fake-server half): the connection fails while output is buffered
// ---------------------------------------------------------------------------------------

/// Channel data and a packet with a broken tag in one TCP write, so the client decodes both
/// in one go: the data is buffered when the integrity failure is found.
fn data_then_corruption(data: &'static [u8]) -> Step {
    hook(move |c| {
        let r = c.chan();
        let mut out = c.seal(&Msg::ChannelData { recipient: r, data }.encode());
        let mut bad = c.seal(&Msg::Ignore { data: b"x" }.encode());
        *bad.last_mut().unwrap() ^= 1;
        out.extend(bad);
        c.write_raw(&out)
    })
}

#[test]
fn r39_failure_after_buffered_data_surfaces_from_wait_and_output() {
    let _g = shared();
    // output() reports the failure (the buffered bytes are lost with it).
    let (r, el, _) =
        run(cat(open(WIN, 32768), vec![Step::Sleep(300), data_then_corruption(b"abc"), Step::Hang]), config());
    assert_error(&r.unwrap_err(), &["Crypto"], "mismatch");
    assert!(el < PROMPT);
    // read() hands out the buffered bytes first; wait() reports the failure.
    let srv =
        FakeServer::start(cat(open(WIN, 32768), vec![Step::Sleep(300), data_then_corruption(b"abc"), Step::Hang]));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("x").unwrap();
    let mut buf = [0u8; 16];
    let n = ch.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"abc");
    let _ = ch.read(&mut buf);
    assert_error(&ch.wait().unwrap_err(), &["Crypto"], "mismatch");
    drop(s);
    assert_socket_released(srv.client_socket());
}

#[test]
fn r39_failure_after_buffered_data_is_not_eof() {
    let _g = shared();
    let srv =
        FakeServer::start(cat(open(WIN, 32768), vec![Step::Sleep(300), data_then_corruption(b"abc"), Step::Hang]));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("x").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    let end = loop {
        match ch.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(got, b"abc");
    let e = end.expect_err("read() returned EOF although the connection failed");
    assert_error(&ssh_error(&e).unwrap(), &["Crypto"], "mismatch");
    // Same for stderr.
    drop(ch);
    drop(s);
    let srv = FakeServer::start(cat(
        open(WIN, 32768),
        vec![
            Step::Sleep(300),
            hook(|c| {
                let r = c.chan();
                let mut out = c.seal(&Msg::ChannelExtendedData { recipient: r, code: 1, data: b"err" }.encode());
                let mut bad = c.seal(&Msg::Ignore { data: b"x" }.encode());
                *bad.last_mut().unwrap() ^= 1;
                out.extend(bad);
                c.write_raw(&out)
            }),
            Step::Hang,
        ],
    ));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("x").unwrap();
    assert_eq!(ch.read_stderr(&mut buf).unwrap(), 3);
    assert!(ch.read_stderr(&mut buf).is_err(), "read_stderr() returned EOF although the connection failed");
}

#[test]
fn r39_channel_close_or_tcp_close_while_writing() {
    let _g = shared();
    let big = vec![b'q'; 256 * 1024];
    // The server closes the channel while the client is blocked on the window.
    let srv = FakeServer::start(cat(
        open(1000, 32768),
        vec![Step::ExpectData(1000), Step::Sleep(300), Step::Eof, Step::ChannelClose, Step::Hang],
    ));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let t = Instant::now();
    let e = ch.write_all(&big).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    assert!(t.elapsed() < PROMPT);
    assert_eq!(ch.wait().unwrap(), None);
    drop(s);
    drop(srv);
    // TCP FIN while the client is blocked on the window.
    let srv = FakeServer::start(cat(open(1000, 32768), vec![Step::ExpectData(1000), Step::Sleep(300), Step::Close]));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let t = Instant::now();
    let e = ch.write_all(&big).unwrap_err();
    assert_error(&ssh_error(&e).expect("sshbridge error"), &["ConnectionClosed"], "closed");
    assert!(t.elapsed() < PROMPT);
    assert!(ch.wait().is_err());
    drop(s);
    assert_socket_released(srv.client_socket());
}

// ---------------------------------------------------------------------------------------
// Row 42: the server never opens its window
// ---------------------------------------------------------------------------------------

#[test]
fn r42_exhausted_window_blocks_without_spinning() {
    let _g = shared();
    // EOF is still sendable with the window at 0.
    let srv = FakeServer::start(cat(
        open(65536, 32768),
        cat(vec![Step::ExpectData(65536), Step::Expect(msg::CHANNEL_EOF)], finish(0)),
    ));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let big = vec![b'z'; 100 * 1024];
    let mut sent = 0;
    while sent < 65536 {
        sent += ch.write(&big[sent..]).unwrap();
    }
    assert_eq!(sent, 65536);
    ch.send_eof().unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    drop(s);
    drop(srv);
    // A write beyond the window blocks until io_timeout, idle.
    let srv = FakeServer::start(cat(open(65536, 32768), vec![Step::Hang]));
    let mut cfg = config();
    cfg.io_timeout = Some(Duration::from_secs(2));
    let s = Session::connect(srv.addr(), cfg).unwrap();
    let mut ch = s.exec("cat").unwrap();
    let (t, cpu) = (Instant::now(), thread_cpu());
    let e = ch.write_all(&big).unwrap_err();
    let (el, used) = (t.elapsed(), thread_cpu() - cpu);
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert_error(&ssh_error(&e).unwrap(), &["Timeout"], "writing");
    assert!(el >= Duration::from_secs(2) && el < Duration::from_secs(3), "{el:?}");
    assert!(used < Duration::from_millis(300), "busy loop: {used:?} CPU in {el:?}");
    drop(ch);
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_eq!(rec.data.len(), 65536, "client overran the window");
    assert_socket_released(rec.client_socket());
}

// ---------------------------------------------------------------------------------------
// Whole-process descriptors and threads
// ---------------------------------------------------------------------------------------

#[test]
fn zz_fd_and_thread_baseline() {
    let _ = keys();
    let _g = exclusive();
    let run_all = || {
        // Authentication refused.
        let mut cfg = config();
        cfg.credentials.push(Credential::password("pw"));
        let srv = FakeServer::start(cat(
            cat(vec![banner(), kex()], service()),
            vec![answer_all(failure(&["password"], false))],
        ));
        assert!(Session::connect(srv.addr(), cfg).is_err());
        drop(srv);
        // Channel refused, then the session is dropped.
        let fail = Msg::ChannelOpenFailure { recipient: 0, reason: 1, description: b"" }.encode();
        let srv = FakeServer::start(vec![
            banner(),
            kex(),
            Step::AcceptAuth,
            Step::Expect(msg::CHANNEL_OPEN),
            Step::Packet(fail),
            Step::Hang,
        ]);
        let s = Session::connect(srv.addr(), config()).unwrap();
        assert!(s.exec("x").is_err());
        drop(s);
        drop(srv);
        // Protocol error on a channel.
        let (r, _, _) = run(
            cat(open(WIN, 32768), vec![Step::Packet(Msg::ChannelEof { recipient: 9 }.encode()), Step::Hang]),
            config(),
        );
        assert!(r.is_err());
        // Write blocked on the window until io_timeout.
        let srv = FakeServer::start(cat(open(10, 32768), vec![Step::Hang]));
        let mut cfg = config();
        cfg.io_timeout = Some(Duration::from_millis(200));
        let s = Session::connect(srv.addr(), cfg).unwrap();
        let mut ch = s.exec("x").unwrap();
        assert!(ch.write_all(&[0u8; 100]).is_err());
        drop(ch);
        drop(s);
        drop(srv);
        // Integrity failure while reading, and a clean exit.
        let (r, _, _) = run(cat(open(WIN, 32768), vec![data_then_corruption(b"abc"), Step::Hang]), config());
        assert!(r.is_err());
        let (r, _, _) = run(cat(open(WIN, 32768), cat(vec![Step::Data(b"x".to_vec())], finish(0))), config());
        assert!(r.is_ok());
    };
    run_all();
    let (fds, tasks) = (fd_count(), task_count());
    for _ in 0..5 {
        run_all();
    }
    assert_eq!(fd_count(), fds, "descriptors leaked");
    assert_eq!(task_count(), tasks, "threads leaked");
}
