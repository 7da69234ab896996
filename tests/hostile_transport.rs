//! Hostile servers at the transport layer (HOSTILE.md rows 1-19, 21-23, 25, 26), driven through
//! the blocking Rust API against the scripted fake server of `tests/fake`.
//!
//! Every test checks: the call returns within its bound, the error variant and a text fragment,
//! no panic, and that the client's socket is closed once the session is gone
//! (`assert_socket_released`, exact and parallel-safe). `zz_fd_and_thread_baseline` counts every
//! descriptor and thread of the process across many failing and succeeding connections while
//! holding the process-wide lock.

mod fake;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fake::server::*;
use fake::*;
use sshbridge::msg::{self, Msg};
use sshbridge::wire::Writer;
use sshbridge::{Config, Error, ExitStatus, Session};

#[global_allocator]
static ALLOC: fake::CountingAlloc = fake::CountingAlloc;

fn banner() -> Step {
    Step::Banner(SERVER_IDENT.into())
}

fn kex() -> Step {
    Step::Kex(KexOpts::default())
}

fn tail(out: &[u8], code: u32) -> Vec<Step> {
    vec![
        Step::AcceptAuth,
        Step::AcceptChannel { window: 1 << 20, max_packet: 32768 },
        Step::AcceptExec,
        Step::Data(out.to_vec()),
        Step::ExitStatus(code),
        Step::Eof,
        Step::ChannelClose,
    ]
}

fn script(head: Vec<Step>, out: &[u8]) -> Vec<Step> {
    let mut s = head;
    s.extend(tail(out, 0));
    s
}

/// Connect, expecting failure. Returns the error, the elapsed time and the server's record of
/// the connection; checks the client socket was released. `alloc_mark()` afterwards is the
/// largest single allocation the connect made.
fn fail_with(steps: Vec<Step>, cfg: Config) -> (Error, Duration, ConnRecord) {
    let srv = FakeServer::start(steps);
    let t = Instant::now();
    alloc_mark_reset();
    let r = Session::connect(srv.addr(), cfg);
    let el = t.elapsed();
    let e = expect_err(r);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_socket_released(rec.client_socket());
    (e, el, rec)
}

fn fail(steps: Vec<Step>) -> (Error, Duration, ConnRecord) {
    fail_with(steps, config())
}

/// Connect, run one command, expect `out` and exit 0; returns the server's record.
fn succeed(steps: Vec<Step>, out: &[u8]) -> ConnRecord {
    succeed_with(steps, out, config())
}

fn succeed_with(steps: Vec<Step>, out: &[u8], cfg: Config) -> ConnRecord {
    let srv = FakeServer::start(steps);
    let t = Instant::now();
    let s = match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("connect failed: {e}; server: {:?}", srv.conns()),
    };
    let (o, _, st) = s.exec("cmd").and_then(|c| c.output()).unwrap_or_else(|e| panic!("{e}; server {:?}", srv.conns()));
    assert_eq!(o, out);
    assert_eq!(st, Some(ExitStatus::Code(0)));
    assert_within(t, Duration::from_secs(5), "session");
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert_socket_released(rec.client_socket());
    assert_eq!(rec.disconnect_reason(), Some(11), "dropping a healthy session sends DISCONNECT by application");
    rec
}

fn no_auth_sent(rec: &ConnRecord) {
    assert!(
        !rec.got(msg::SERVICE_REQUEST) && !rec.got(msg::USERAUTH_REQUEST),
        "client sent SERVICE_REQUEST/USERAUTH_REQUEST: {:?}",
        rec.numbers()
    );
}

/// A plaintext packet with explicit length and padding fields.
fn plain(packet_len: u32, padding: u8, body: &[u8]) -> Vec<u8> {
    let mut v = packet_len.to_be_bytes().to_vec();
    v.push(padding);
    v.extend_from_slice(body);
    v
}

/// A well-formed plaintext packet of exactly `total` bytes (multiple of 8) carrying IGNORE.
fn plain_ignore_total(total: usize) -> Vec<u8> {
    let packet_len = total - 4;
    let pad = 8usize;
    let payload_len = packet_len - 1 - pad;
    let mut w = Writer::new();
    w.u8(msg::IGNORE).string(&vec![b'i'; payload_len - 5]);
    let mut v = (packet_len as u32).to_be_bytes().to_vec();
    v.push(pad as u8);
    v.extend_from_slice(&w.buf);
    v.extend_from_slice(&[0u8; 8]);
    assert_eq!(v.len(), total);
    v
}

fn lists_with(i: usize, value: &str) -> Vec<String> {
    let mut l = default_lists(false).to_vec();
    l[i] = value.to_string();
    l
}

fn short_cfg(handshake: Duration) -> Config {
    let mut c = config();
    c.handshake_timeout = handshake;
    c
}

#[test]
fn harness_self_check() {
    let _g = shared();
    // The socket probe sees a live client socket, and not a closed one.
    let srv = FakeServer::start(script(vec![banner(), kex()], b"h"));
    let s = Session::connect(srv.addr(), config()).unwrap();
    let sock = srv.conn(0, Duration::from_millis(100)).client_socket().unwrap();
    assert!(holds_socket(sock.0, sock.1), "probe misses a live socket");
    drop(s);
    assert!(!holds_socket(sock.0, sock.1));
    // The allocation probe sees a large allocation on this thread.
    alloc_mark_reset();
    let v = vec![0u8; 3 << 20];
    assert!(alloc_mark() >= 3 << 20);
    drop(v);
    // The CPU probe sees a busy loop.
    let (t, cpu) = (Instant::now(), thread_cpu());
    while thread_cpu() - cpu < Duration::from_millis(50) && t.elapsed() < Duration::from_secs(10) {
        std::hint::black_box((0..10_000u64).sum::<u64>());
    }
    assert!(thread_cpu() - cpu >= Duration::from_millis(50), "CPU probe stuck at {:?}", thread_cpu() - cpu);
}

// ---------------------------------------------------------------------------------------
// Rows 1-4: identification
// ---------------------------------------------------------------------------------------

#[test]
fn r01_pre_banner_lines_then_banner() {
    let _g = shared();
    let head = vec![Step::Raw(b"Welcome\r\nline two\r\n\r\nno CR here\nfifth line\r\n".to_vec()), banner(), kex()];
    succeed(script(head, b"ok\n"), b"ok\n");
}

#[test]
fn r02_many_pre_banner_lines_fail_at_the_line_cap() {
    let _g = shared();
    let mut junk = b"junk\r\n".repeat(2000);
    junk.extend_from_slice(format!("{SERVER_IDENT}\r\n").as_bytes());

    let (e, el, _) = fail(vec![Step::Raw(junk), kex()]);
    assert_error(&e, &["Protocol"], "no SSH identification");
    assert!(el < PROMPT, "{el:?}");
    assert!(alloc_mark() < 1 << 20, "largest allocation {}", alloc_mark());
}

#[test]
fn r02_endless_tarpit_fails_at_the_byte_cap() {
    let _g = shared();
    let tarpit = hook(|c| loop {
        c.write_raw(&[b'x'; 98].iter().chain(b"\r\n").copied().collect::<Vec<u8>>())?;
    });

    let (e, el, _) = fail(vec![tarpit]);
    assert_error(&e, &["Protocol"], "no SSH identification");
    assert!(el < PROMPT, "{el:?}");
    assert!(alloc_mark() < 1 << 20, "largest allocation {}", alloc_mark());
}

#[test]
fn r02_slow_tarpit_hits_the_handshake_timeout() {
    let _g = shared();
    let slow = hook(|c| loop {
        c.write_raw(b"still here\r\n")?;
        c.sleep(Duration::from_millis(100));
    });
    let cpu = thread_cpu();
    let (e, el, _) = fail_with(vec![slow], short_cfg(Duration::from_secs(2)));
    assert_error(&e, &["Timeout"], "did not finish in time");
    assert!(el >= Duration::from_secs(2) && el < Duration::from_secs(3), "{el:?}");
    let used = thread_cpu() - cpu;
    assert!(used < Duration::from_millis(500), "client thread used {used:?} CPU while waiting");
}

#[test]
fn r03_long_but_acceptable_lines() {
    let _g = shared();
    // A pre-banner line of exactly 8192 bytes and a 300-byte identification (RFC 4253 says
    // 255, robustness says accept and hash the exact bytes) work.
    let mut pre = vec![b'p'; 8192];
    pre.extend_from_slice(b"\r\n");
    let ident = format!("SSH-2.0-{}", "v".repeat(292));
    succeed(script(vec![Step::Raw(pre), Step::Banner(ident), kex()], b"l\n"), b"l\n");
    // 8193 bytes: refused.
    let mut pre = vec![b'p'; 8193];
    pre.extend_from_slice(b"\r\n");
    let (e, _, _) = fail(vec![Step::Raw(pre), banner(), Step::Hang]);
    assert_error(&e, &["Protocol"], "longer than 8192");
}

#[test]
fn r03_huge_line_without_lf() {
    let _g = shared();

    let (e, el, _) = fail(vec![Step::Raw(vec![b'A'; 1 << 20])]);
    assert_error(&e, &["Protocol"], "longer than 8192");
    assert!(el < PROMPT);
    assert!(alloc_mark() < 1 << 20, "largest allocation {}", alloc_mark());
}

#[test]
fn r03_nul_and_bare_cr_in_banner() {
    let _g = shared();
    for line in [&b"SSH-2.0-evil\0server\r\n"[..], b"SSH-2.0-abc\rdef\r\n", b"SSH-2.0-x\x1b[2J\r\n"] {
        let (e, el, _) = fail_with(vec![Step::Raw(line.to_vec()), Step::Hang], short_cfg(Duration::from_secs(1)));
        // ESC is not a CR/NUL: the line is accepted and the failure comes later (no KEXINIT),
        // so only NUL and bare CR are identification errors.
        if line.contains(&0x1b) {
            assert_error(&e, &["Timeout"], "did not finish");
            continue;
        }
        assert_error(&e, &["Protocol"], "control characters");
        assert!(el < PROMPT);
    }
}

#[test]
fn r04_protocol_versions() {
    let _g = shared();
    for (line, frag) in [
        ("SSH-1.5-x", "protocol version not supported"),
        ("SSH-3.0-x", "protocol version not supported"),
        ("SSH-2.0", "no software version"),
        ("SSH-2.0-", "no software version"),
    ] {
        let (e, el, rec) = fail(vec![Step::Banner(line.into()), Step::Hang]);
        assert_error(&e, &["Protocol", "VersionNotSupported"], frag);
        assert!(el < PROMPT);
        no_auth_sent(&rec);
    }
    // SSH-1.99 means "2.0 and 1.x": accepted.
    succeed(script(vec![Step::Banner("SSH-1.99-OldServer".into()), kex()], b"v\n"), b"v\n");
}

#[test]
fn r04_lowercase_ssh_is_a_preamble_line_then_times_out() {
    let _g = shared();
    // RFC 4253 4.2: only "SSH-" starts the identification; "ssh-2.0-x" is a pre-banner line.
    // The server then talks binary; the client must end within its handshake timeout.
    let (e, el, _) = fail_with(vec![Step::Banner("ssh-2.0-x".into()), kex()], short_cfg(Duration::from_secs(2)));
    assert!(matches!(e, Error::Timeout(_) | Error::Protocol(_)), "{e}");
    assert!(el < Duration::from_secs(3), "{el:?}");
}

#[test]
fn r04_version_mismatch_disconnect_reason_is_8() {
    let _g = shared();
    let (_, _, rec) = fail(vec![Step::Banner("SSH-1.5-x".into()), Step::Hang]);
    assert_eq!(rec.disconnect_reason(), Some(8), "{:?}", rec.numbers());
}

// ---------------------------------------------------------------------------------------
// Rows 5-6: closed, refused, silent
// ---------------------------------------------------------------------------------------

#[test]
fn r05_fin_or_rst_before_banner() {
    let _g = shared();
    for steps in [vec![Step::Close], vec![Step::Reset], vec![banner(), Step::Close], vec![banner(), Step::Reset]] {
        let (e, el, _) = fail(steps);
        assert_error(&e, &["ConnectionClosed"], "");
        assert!(el < PROMPT, "{el:?}");
    }
}

#[test]
fn r05_refused_and_unroutable() {
    let _g = shared();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Instant::now();
    let e = expect_err(Session::connect(("127.0.0.1", port), config()));
    assert_error(&e, &["ConnectionClosed"], "refused");
    assert!(t.elapsed() < PROMPT);

    let mut cfg = config();
    cfg.connect_timeout = Duration::from_millis(500);
    let t = Instant::now();
    let e = expect_err(Session::connect("10.255.255.1:22", cfg));
    // Timeout where packets are dropped; "unreachable" where there is no route at all.
    assert!(matches!(e, Error::Timeout(_) | Error::ConnectionClosed(_)), "{e}");
    assert_within(t, Duration::from_millis(1500), "unroutable connect");
}

#[test]
fn r06_silent_server_hits_the_handshake_timeout() {
    let _g = shared();
    let variants: Vec<Vec<Step>> = vec![
        vec![Step::Stall],
        vec![Step::Hang],
        vec![banner(), Step::Hang],
        // KEXINIT, then never the reply.
        vec![banner(), Step::Packet(kexinit_payload(&default_lists(true), false, 0)), Step::Hang],
    ];
    let jobs: Vec<Box<dyn FnOnce() -> (Error, Duration, Duration) + Send>> = variants
        .into_iter()
        .map(|steps| {
            Box::new(move || {
                let cpu = thread_cpu();
                let (e, el, _) = fail_with(steps, short_cfg(Duration::from_secs(2)));
                (e, el, thread_cpu() - cpu)
            }) as Box<dyn FnOnce() -> _ + Send>
        })
        .collect();
    for (e, el, cpu) in parallel(jobs) {
        assert_error(&e, &["Timeout"], "did not finish in time");
        assert!(el >= Duration::from_secs(2) && el < Duration::from_secs(3), "{el:?}");
        assert!(cpu < Duration::from_millis(300), "CPU {cpu:?} while waiting");
    }
}

// ---------------------------------------------------------------------------------------
// Rows 7-10: packet framing before encryption
// ---------------------------------------------------------------------------------------

#[test]
fn r07_bad_packet_lengths() {
    let _g = shared();
    for len in [0u32, 1, 4, 5, 11, 13, 17, 30] {
        let (e, el, _) = fail(vec![banner(), Step::Raw(plain(len, 4, &[0u8; 40])), Step::Hang]);
        assert_error(&e, &["Protocol"], "packet length");
        assert!(el < PROMPT, "len {len}: {el:?}");
    }
}

#[test]
fn r08_huge_packet_lengths_fail_without_allocating() {
    let _g = shared();
    for len in [0x7fff_ffffu32, 0xffff_ffff, 262_145, 262_148, 1 << 20] {
        let (e, el, _) = fail(vec![banner(), Step::Raw(plain(len, 4, &[0u8; 64])), Step::Hang]);
        assert_error(&e, &["Protocol"], "bad packet length");
        assert!(el < PROMPT);
        assert!(alloc_mark() < 512 * 1024, "len {len:#x}: largest allocation {}", alloc_mark());
    }
}

#[test]
fn r08_35000_byte_packets_accepted() {
    let _g = shared();
    // Plaintext, before KEXINIT (non-strict server).
    let mut o = KexOpts::non_strict();
    o.before_kexinit = vec![];
    let head = vec![banner(), Step::RawPacket(plain_ignore_total(35000)), Step::Kex(o)];
    succeed(script(head, b"a\n"), b"a\n");
    // Encrypted: a 35000-byte IGNORE payload after NEWKEYS (chacha20-poly1305 packet of
    // 35000 + 5 + padding + 16 bytes).
    let mut w = Writer::new();
    w.u8(msg::IGNORE).string(&vec![0x55; 35000 - 5]);
    let head = vec![banner(), kex(), Step::Packet(w.into_vec())];
    succeed(script(head, b"b\n"), b"b\n");
}

#[test]
fn r09_bad_padding_plaintext() {
    let _g = shared();
    // packet_length 12: padding 0 and 3 (< 4), 11 (fills it: empty payload), 12, 255.
    for pad in [0u8, 3, 11, 12, 255] {
        let (e, el, _) = fail(vec![banner(), Step::Raw(plain(12, pad, &[2u8; 11])), Step::Hang]);
        let frag = if pad == 11 { "empty packet payload" } else { "padding" };
        assert_error(&e, &["Protocol"], frag);
        assert!(el < PROMPT);
    }
}

#[test]
fn r09_bad_padding_encrypted() {
    let _g = shared();
    // chacha20-poly1305 with a valid tag: the length field is not aligned, so 16 is fine.
    for pad in [0u8, 3, 15, 16, 255] {
        let mut pkt = plain(16, pad, &[msg::IGNORE, 0, 0, 0, 0]);
        pkt.resize(20, 0);
        let (e, el, rec) = fail(vec![banner(), kex(), Step::RawPacket(pkt), Step::Hang]);
        let frag = if pad == 15 { "empty packet payload" } else { "padding" };
        assert_error(&e, &["Protocol"], frag);
        assert!(el < PROMPT);
        no_userauth(&rec);
    }
}

/// After NEWKEYS the client asks for ssh-userauth at once; it must get no further.
fn no_userauth(rec: &ConnRecord) {
    assert!(!rec.got(msg::USERAUTH_REQUEST), "{:?}", rec.numbers());
}

#[test]
fn r10_truncated_packet_then_fin_or_stall() {
    let _g = shared();
    let half = |then: Step| vec![banner(), Step::Raw(plain(996, 4, &[2u8; 496])), then];
    let (e, el, _) = fail(half(Step::Close));
    assert_error(&e, &["ConnectionClosed"], "closed");
    assert!(el < PROMPT);

    let cpu = thread_cpu();
    let (e, el, _) = fail_with(half(Step::Stall), short_cfg(Duration::from_secs(2)));
    assert_error(&e, &["Timeout"], "did not finish in time");
    assert!(el >= Duration::from_secs(2) && el < Duration::from_secs(3));
    assert!(thread_cpu() - cpu < Duration::from_millis(300), "spinning while waiting");
}

// ---------------------------------------------------------------------------------------
// Rows 11-13: KEXINIT
// ---------------------------------------------------------------------------------------

#[test]
fn r11_malformed_kexinit() {
    let _g = shared();
    let mut cases: Vec<(&str, Vec<u8>, &[&str], &str)> = Vec::new();
    // A name-list claiming more bytes than the packet has.
    let mut w = Writer::new();
    w.u8(msg::KEXINIT).raw(&[0; 16]).u32(0xffff).raw(b"curve25519-sha256");
    cases.push(("list longer than packet", w.into_vec(), &["Protocol"], "truncated"));
    // Nine lists, then the packet ends.
    let mut w = Writer::new();
    w.u8(msg::KEXINIT).raw(&[0; 16]);
    for l in &default_lists(false)[..9] {
        w.str(l);
    }
    cases.push(("nine lists", w.into_vec(), &["Protocol"], "truncated"));
    cases.push((
        "empty kex list",
        kexinit_payload(&lists_with(0, ""), false, 0),
        &["NoCommonAlgorithm"],
        "key exchange",
    ));
    // Empty entries are skipped (as OpenSSH does; libssh 0.10.6 ends a list with a comma): a
    // list of nothing but commas offers no algorithm.
    cases.push(("',,'", kexinit_payload(&lists_with(0, ",,"), false, 0), &["NoCommonAlgorithm"], "key exchange"));
    cases.push(("70-char name", kexinit_payload(&lists_with(2, &"c".repeat(70)), false, 0), &["Protocol"], "name"));
    cases.push((
        "non-ASCII",
        kexinit_payload(&lists_with(0, "curve25519-sha256,kéx"), false, 0),
        &["Protocol"],
        "name-list",
    ));
    cases.push(("NUL", kexinit_payload(&lists_with(1, "ssh-ed25519,a\0b"), false, 0), &["Protocol"], "name-list"));
    cases.push(("space", kexinit_payload(&lists_with(1, "ssh-ed25519,a b"), false, 0), &["Protocol"], "name-list"));
    // 100k names do not fit the 256 KiB packet cap; 20k (> 64 KiB) hit the name-list cap.
    let many: Vec<String> = (0..100_000).map(|i| format!("n{i}")).collect();
    cases.push((
        "100k names",
        kexinit_payload(&lists_with(0, &many.join(",")), false, 0),
        &["Protocol"],
        "bad packet length",
    ));
    let many: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
    cases.push((
        "20k names",
        kexinit_payload(&lists_with(0, &many.join(",")), false, 0),
        &["Protocol"],
        "name-list too long",
    ));
    let some: Vec<String> = (0..200).map(|i| format!("n{i}")).collect();
    cases.push((
        "200 names",
        kexinit_payload(&lists_with(0, &some.join(",")), false, 0),
        &["Protocol"],
        "too many names",
    ));
    let mut trailing = kexinit_payload(&default_lists(false), false, 0);
    trailing.push(0);
    cases.push(("trailing byte", trailing, &["Protocol"], "trailing"));
    for (what, payload, variants, frag) in cases {
        let (e, el, rec) = fail(vec![banner(), Step::Packet(payload), Step::Hang]);
        assert!(variants.contains(&variant(&e).as_str()) && e.to_string().contains(frag), "{what}: {e}");
        assert_sane_text(&e.to_string());
        assert!(el < PROMPT, "{what}: {el:?}");
        assert!(!rec.got(msg::KEX_INIT), "{what}: client went on with the exchange");
    }
}

#[test]
fn r11_reserved_field_and_odd_boolean_are_tolerated() {
    let _g = shared();
    // reserved != 0 must be ignored (RFC 4253 7.1). The fake server's own KEXINIT is used for
    // the exchange hash, so send a hand-made one through a hook that runs the exchange.
    let lists = default_lists(true);
    let payload = kexinit_payload(&lists, false, 0xdead_beef);
    let (e, _, rec) = fail_with(vec![banner(), Step::Packet(payload), Step::Hang], short_cfg(Duration::from_secs(1)));
    // The client answered with KEX_INIT: the KEXINIT itself was accepted.
    assert!(rec.got(msg::KEX_INIT), "{e}: {:?}", rec.numbers());
    assert_error(&e, &["Timeout"], "");
}

#[test]
fn r12_no_common_algorithm() {
    let _g = shared();
    for (i, value, category) in [
        (0, "diffie-hellman-group1-sha1", "key exchange"),
        (0, "diffie-hellman-group1-sha1,kex-strict-s-v00@openssh.com,ext-info-s", "key exchange"),
        (1, "ssh-xmss@openssh.com,x509v3-sign-rsa", "host key"),
        (2, "3des-cbc", "cipher (client to server)"),
        (3, "3des-cbc,blowfish-cbc", "cipher (server to client)"),
        (6, "zlib", "compression"),
    ] {
        let (e, el, rec) =
            fail(vec![banner(), Step::Packet(kexinit_payload(&lists_with(i, value), false, 0)), Step::Hang]);
        assert_error(&e, &["NoCommonAlgorithm"], category);
        assert!(!e.to_string().contains("kex-strict"), "pseudo-algorithm named: {e}");
        assert!(el < PROMPT);
        // KEY_EXCHANGE_FAILED (3) goes to the server.
        assert_eq!(rec.disconnect_reason(), Some(3), "{:?}", rec.numbers());
    }
    // aes128-ctr needs a MAC: only umac offered.
    let mut l = lists_with(2, "aes128-ctr");
    l[3] = "aes128-ctr".into();
    l[4] = "umac-64@openssh.com".into();
    l[5] = "umac-64@openssh.com".into();
    let (e, _, _) = fail(vec![banner(), Step::Packet(kexinit_payload(&l, false, 0)), Step::Hang]);
    assert_error(&e, &["NoCommonAlgorithm"], "MAC");
}

#[test]
fn r13_first_kex_packet_follows() {
    let _g = shared();
    let bogus_reply = Msg::KexReply { host_key: b"junk", value: &[9; 32], signature: b"junk" }.encode();
    // Wrong guess: the server's first kex method is not the one negotiated -> the guessed
    // packet is ignored and the real reply is used.
    let mut o = KexOpts::default().with_kex(&["ecdh-sha2-nistp256", "curve25519-sha256"]);
    o.first_kex_follows = true;
    o.guess = Some(bogus_reply.clone());
    let rec = succeed(script(vec![banner(), Step::Kex(o)], b"g\n"), b"g\n");
    assert!(rec.script_error.is_none(), "{rec:?}");
    // Right guess, real reply: used.
    let mut o = KexOpts::default();
    o.first_kex_follows = true;
    succeed(script(vec![banner(), Step::Kex(o)], b"r\n"), b"r\n");
    // Right guess with a bogus guessed packet: it is used (and fails), not skipped.
    let mut o = KexOpts::default();
    o.first_kex_follows = true;
    o.guess = Some(bogus_reply.clone());
    let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
    assert!(matches!(e, Error::HostKeyRejected(_) | Error::Protocol(_) | Error::Crypto(_)), "{e}");
    assert!(el < PROMPT);
    no_auth_sent(&rec);
    // Wrong guess in a re-exchange: ignored too.
    let mut re = KexOpts::default().with_kex(&["ecdh-sha2-nistp256", "curve25519-sha256"]);
    re.first_kex_follows = true;
    re.guess = Some(bogus_reply);
    let head = vec![
        banner(),
        kex(),
        Step::AcceptAuth,
        Step::AcceptChannel { window: 1 << 20, max_packet: 32768 },
        Step::AcceptExec,
        Step::Kex(re),
    ];
    let mut s = head;
    s.extend([Step::Data(b"after\n".to_vec()), Step::ExitStatus(0), Step::Eof, Step::ChannelClose]);
    succeed(s, b"after\n");
}

// ---------------------------------------------------------------------------------------
// Rows 14-15: strict KEX and out-of-phase messages
// ---------------------------------------------------------------------------------------

fn ignore() -> Vec<u8> {
    Msg::Ignore { data: b"x" }.encode()
}
fn debug_msg() -> Vec<u8> {
    Msg::Debug { always_display: false, message: b"d" }.encode()
}
fn unimplemented() -> Vec<u8> {
    Msg::Unimplemented { seq: 0 }.encode()
}

#[test]
fn r14_strict_kex_violations_abort() {
    let _g = shared();
    let mut cases: Vec<(&str, KexOpts)> = Vec::new();
    let mut o = KexOpts::default();
    o.before_kexinit = vec![ignore()];
    cases.push(("IGNORE before KEXINIT", o));
    for (name, p) in [("IGNORE", ignore()), ("DEBUG", debug_msg()), ("UNIMPLEMENTED", unimplemented())] {
        let mut o = KexOpts::default();
        o.before_reply = vec![p.clone()];
        cases.push((name, o));
        let mut o = KexOpts::default();
        o.before_newkeys = vec![p];
        cases.push((name, o));
    }
    let mut o = KexOpts::default();
    o.before_newkeys = vec![Msg::ExtInfo { extensions: vec![] }.encode()];
    cases.push(("EXT_INFO before NEWKEYS", o));
    for (what, o) in cases {
        let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
        assert_error(&e, &["StrictKex"], "strict KEX violation");
        assert!(el < PROMPT, "{what}");
        no_auth_sent(&rec);
        assert_eq!(rec.disconnect_reason(), Some(3), "{what}: {:?}", rec.numbers());
    }
}

#[test]
fn r14_without_the_marker_the_same_messages_are_tolerated() {
    let _g = shared();
    let mut o = KexOpts::non_strict();
    o.before_kexinit = vec![ignore(), debug_msg()];
    o.before_reply = vec![ignore(), debug_msg(), unimplemented()];
    o.before_newkeys = vec![ignore(), debug_msg()];
    let rec = succeed(script(vec![banner(), Step::Kex(o)], b"t\n"), b"t\n");
    // Non-strict: sequence numbers run on (KEXINIT 0, KEX_INIT 1, NEWKEYS 2, ...).
    assert_eq!(rec.first(msg::SERVICE_REQUEST).map(|r| r.seq), Some(3));
}

#[test]
fn r14_strict_newkeys_without_sequence_reset_fails_integrity() {
    let _g = shared();
    // The sequence number feeds the MAC (aes-ctr + HMAC, MtE or EtM: "MAC mismatch") and the
    // chacha20-poly1305 nonce (the length decrypts to garbage first: "bad packet length").
    for (cipher, mac, variant_, frag, reason) in [
        ("chacha20-poly1305@openssh.com", "hmac-sha2-256", "Protocol", "bad packet length", 2),
        ("aes128-ctr", "hmac-sha2-256", "Crypto", "MAC mismatch", 5),
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", "Crypto", "MAC mismatch", 5),
    ] {
        let mut o = KexOpts::default().with_ciphers(&[cipher], &[mac]);
        o.no_seq_reset = true;
        let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::AcceptAuth, Step::Hang]);
        assert_error(&e, &[variant_], frag);
        assert!(el < PROMPT);
        assert!(!rec.got(msg::USERAUTH_REQUEST));
        assert_eq!(rec.disconnect_reason(), Some(reason), "{cipher}: {:?}", rec.numbers());
    }
    // AES-GCM does not use the sequence number at all (RFC 5647: the nonce is an invocation
    // counter), so a missing reset is invisible there, and harmless (Terrapin needs it).
    let mut o = KexOpts::default().with_ciphers(&["aes256-gcm@openssh.com"], &["hmac-sha2-256"]);
    o.no_seq_reset = true;
    succeed(script(vec![banner(), Step::Kex(o)], b"gcm\n"), b"gcm\n");
}

#[test]
fn r14_strict_client_sends_only_kex_messages_and_resets_its_sequence() {
    let _g = shared();
    let rec = succeed(script(vec![banner(), kex()], b"s\n"), b"s\n");
    assert_eq!(&rec.numbers()[..3], &[msg::KEXINIT, msg::KEX_INIT, msg::NEWKEYS]);
    // The server reset its receive sequence at NEWKEYS; the packet opened, so the client
    // reset its send sequence too.
    assert_eq!(rec.first(msg::SERVICE_REQUEST).map(|r| r.seq), Some(0));
    assert!(rec.kex_violations.is_empty(), "{:?}", rec.kex_violations);
}

#[test]
fn r15_out_of_phase_messages_before_newkeys() {
    let _g = shared();
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("SERVICE_ACCEPT", Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
        ("USERAUTH_SUCCESS", Msg::UserauthSuccess.encode()),
        ("CHANNEL_DATA", Msg::ChannelData { recipient: 0, data: b"x" }.encode()),
        ("EXT_INFO", Msg::ExtInfo { extensions: vec![("server-sig-algs", b"ssh-ed25519")] }.encode()),
        ("second KEXINIT", kexinit_payload(&default_lists(false), false, 0)),
        ("NEWKEYS early", Msg::NewKeys.encode()),
        ("GLOBAL_REQUEST", Msg::GlobalRequest { name: "x", want_reply: true, data: &[] }.encode()),
        ("msg 200", vec![200, 1, 2, 3]),
    ];
    for (what, p) in payloads {
        for where_ in 0..2 {
            if where_ == 1 && what == "NEWKEYS early" {
                continue; // after KEX_REPLY an extra NEWKEYS *is* the NEWKEYS
            }
            let mut o = KexOpts::non_strict();
            if where_ == 0 {
                o.before_reply = vec![p.clone()];
            } else {
                o.before_newkeys = vec![p.clone()];
            }
            let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
            assert_error(&e, &["Protocol"], "unexpected message");
            assert!(el < PROMPT, "{what}");
            no_auth_sent(&rec);
            assert_eq!(rec.disconnect_reason(), Some(2), "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rows 16-19: the key exchange reply
// ---------------------------------------------------------------------------------------

fn hex32(s: &str) -> Vec<u8> {
    (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[test]
fn r16_bad_curve25519_server_values() {
    let _g = shared();
    let mut values: Vec<Vec<u8>> = vec![vec![7; 31], vec![7; 33], vec![], vec![0; 32]];
    for h in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        values.push(hex32(h));
    }
    for v in values {
        let o = KexOpts::default().with_fault(KexFault::ServerValue(v.clone()));
        let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
        assert_error(&e, &["Crypto"], "curve25519");
        assert!(el < PROMPT);
        no_auth_sent(&rec);
        assert_eq!(rec.disconnect_reason(), Some(3), "KEY_EXCHANGE_FAILED for {v:02x?}");
    }
}

/// The post-quantum hybrids: S_REPLY of the wrong length (the ciphertext or the X25519 part
/// too short or too long, or missing), an all-zero X25519 share (the zero point, and a point of
/// order 8 that gives the zero result) behind a real ciphertext, and a corrupted ciphertext of
/// the right size (ML-KEM/sntrup implicit rejection: another K, so the signature fails).
#[test]
fn r16_bad_hybrid_server_values() {
    let _g = shared();
    let mut methods = vec![("mlkem768x25519-sha256", 1088usize)];
    if cfg!(feature = "sntrup") {
        methods.push(("sntrup761x25519-sha512", 1039));
        methods.push(("sntrup761x25519-sha512@openssh.com", 1039));
    }
    for (kex, ct) in methods {
        let n = ct + 32;
        let mut order8 = [0u8; 32];
        order8[0] = 1;
        let mut cases: Vec<(String, KexFault, &str, &str)> = Vec::new();
        for (what, len) in [
            ("ciphertext one byte short", n - 1),
            ("ciphertext one byte long", n + 1),
            ("X25519 key only", 32),
            ("ciphertext only", ct),
            ("empty", 0),
            ("doubled", 2 * n),
        ] {
            cases.push((what.into(), KexFault::ServerValue(vec![0x5a; len]), "Crypto", format!("is {len} bytes, not {n}").leak()));
        }
        for (what, x) in [("zero X25519 share", [0u8; 32]), ("X25519 point of order 8", order8)] {
            let f = KexFault::ServerValueAt { at: ct, bytes: x.to_vec() };
            cases.push((what.into(), f, "Crypto", "X25519 shared secret is zero"));
        }
        let f = KexFault::ServerValueAt { at: 100, bytes: vec![0xa5; 16] };
        cases.push(("corrupted ciphertext".into(), f, "Crypto", "signature"));
        for (what, fault, variant, fragment) in cases {
            let what = format!("{kex}: {what}");
            let o = KexOpts::default().with_kex(&[kex]).with_fault(fault);
            let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
            assert_error(&e, &[variant], fragment);
            if fragment != "signature" {
                assert!(e.to_string().contains(kex), "{what}: error does not name the method: {e}");
            }
            assert!(el < PROMPT, "{what}");
            no_auth_sent(&rec);
            assert_eq!(rec.disconnect_reason(), Some(3), "KEY_EXCHANGE_FAILED for {what}");
            // The client's C_PK was the right size (KEM public key + X25519 key).
            let init = rec.received.iter().find(|r| r.number == msg::KEX_INIT).expect("KEX_INIT");
            let Ok(Msg::KexInitValue { value }) = Msg::decode(&init.payload) else { panic!("{what}: KEX_INIT") };
            let pk = if kex.starts_with("mlkem") { 1184 } else { 1158 };
            assert_eq!(value.len(), pk + 32, "{what}");
        }
    }
}

/// The hybrids work with the fake server too (it runs the server side with `server_respond`),
/// including a re-exchange that switches from one to another.
#[test]
fn r16_hybrid_exchanges_succeed() {
    let _g = shared();
    let mut methods = vec!["mlkem768x25519-sha256"];
    if cfg!(feature = "sntrup") {
        methods.extend(["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]);
    }
    for kex in methods {
        let head = vec![
            banner(),
            Step::Kex(KexOpts::default().with_kex(&[kex])),
            Step::Kex(KexOpts::default().with_kex(&["curve25519-sha256"])),
            Step::Kex(KexOpts::default().with_kex(&[kex])),
        ];
        let rec = succeed(script(head, b"pq\n"), b"pq\n");
        assert_eq!(rec.received.iter().filter(|r| r.number == msg::NEWKEYS).count(), 3, "{kex}");
    }
}

fn ed_blob(key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.str("ssh-ed25519").string(key);
    w.into_vec()
}

#[test]
fn r17_malformed_host_key_blobs() {
    let _g = shared();
    let good = keys().ed_a.public_key().blob().to_vec();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut lying = Writer::new();
    lying.str("ssh-ed25519").u32(1000).raw(&good[good.len() - 32..]);
    let mut lying_type = Writer::new();
    lying_type.u32(500).raw(b"ssh-ed25519");
    let blobs: Vec<(&str, Vec<u8>)> = vec![
        ("31-byte key", ed_blob(&[1; 31])),
        ("33-byte key", ed_blob(&[1; 33])),
        ("not a point", ed_blob(&hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))),
        ("trailing byte", trailing),
        ("lying key length", lying.into_vec()),
        ("lying type length", lying_type.into_vec()),
        ("empty", vec![]),
        ("unknown type", {
            let mut w = Writer::new();
            w.str("ssh-foo").string(&[1; 32]);
            w.into_vec()
        }),
        ("RSA key for ssh-ed25519", keys().rsa.public_key().blob().to_vec()),
    ];
    for (what, blob) in blobs {
        let o = KexOpts::default().with_fault(KexFault::HostKeyBlob(blob));
        let (e, el, rec) = fail(vec![banner(), Step::Kex(o), Step::Hang]);
        // A blob that still parses as a key fails the exchange-hash signature (Crypto), which is
        // checked before the host key is judged (issue 10, rule 6).
        assert!(matches!(e, Error::HostKeyRejected(_) | Error::Protocol(_) | Error::Crypto(_)), "{what}: {e}");
        assert_sane_text(&e.to_string());
        assert!(el < PROMPT, "{what}");
        no_auth_sent(&rec);
    }
}

#[test]
fn r18_unpinned_host_key_aborts_before_authentication() {
    let _g = shared();
    let srv = FakeServer::with_key(script(vec![banner(), kex()], b"no\n"), keys().ed_b.clone());
    let mut cfg = config(); // pins ed_a
    cfg.credentials.push(sshbridge::Credential::password("secret"));
    let t = Instant::now();
    let e = expect_err(Session::connect(srv.addr(), cfg));
    assert!(t.elapsed() < PROMPT);
    assert_error(&e, &["HostKeyRejected"], "mismatch");
    let rec = srv.conn(0, Duration::from_secs(3));
    no_auth_sent(&rec);
    assert!(!rec.got(msg::NEWKEYS), "client finished the exchange: {:?}", rec.numbers());
    assert_eq!(rec.disconnect_reason(), Some(9), "HOST_KEY_NOT_VERIFIABLE expected");
    assert_socket_released(rec.client_socket());
}

#[test]
fn r19_bad_signatures() {
    let _g = shared();
    let mut random_sig = Writer::new();
    random_sig.str("ssh-ed25519").string(&[0x42; 64]);
    let mut wrong_name = Writer::new();
    wrong_name.str("ssh-rsa").string(&[0x42; 64]);
    let mut short = Writer::new();
    short.str("ssh-ed25519").string(&[0x42; 63]);
    let mut lying = Writer::new();
    lying.str("ssh-ed25519").u32(64000).raw(&[0; 64]);
    let faults = vec![
        ("random signature", KexFault::Signature(random_sig.into_vec())),
        ("signature over another H", KexFault::SignOtherHash),
        ("ssh-rsa name on an ed25519 signature", KexFault::Signature(wrong_name.into_vec())),
        ("63-byte signature", KexFault::Signature(short.into_vec())),
        ("lying signature length", KexFault::Signature(lying.into_vec())),
        ("empty signature", KexFault::Signature(vec![])),
    ];
    for (what, f) in faults {
        let (e, el, rec) = fail(vec![banner(), Step::Kex(KexOpts::default().with_fault(f)), Step::Hang]);
        assert_error(&e, &["Crypto"], "signature");
        assert!(el < PROMPT, "{what}");
        no_auth_sent(&rec);
    }
}

#[test]
#[cfg(feature = "legacy")]
fn r19_rsa_signature_algorithm_must_match_the_negotiated_one() {
    let _g = shared();
    let rsa = keys().rsa.clone();
    let mut o = KexOpts::default();
    o.host_key_algs = vec!["rsa-sha2-256".into()];
    // Control: a correct rsa-sha2-256 signature works.
    let srv = FakeServer::with_key(script(vec![banner(), Step::Kex(o.clone())], b"rsa\n"), rsa.clone());
    let s = Session::connect(srv.addr(), config_pinned(&rsa)).unwrap();
    assert_eq!(s.exec("x").unwrap().output().unwrap().0, b"rsa\n");
    drop(s);
    drop(srv);
    // SHA-1 "ssh-rsa" signature where rsa-sha2-256 was negotiated.
    let o = o.with_fault(KexFault::SigAlg(sshbridge::SigAlg::SshRsa));
    let srv = FakeServer::with_key(vec![banner(), Step::Kex(o), Step::Hang], rsa.clone());
    let t = Instant::now();
    let e = expect_err(Session::connect(srv.addr(), config_pinned(&rsa)));
    assert!(t.elapsed() < PROMPT);
    assert_error(&e, &["Crypto"], "expected rsa-sha2-256");
    let rec = srv.conn(0, Duration::from_secs(3));
    no_auth_sent(&rec);
    assert_socket_released(rec.client_socket());
}

// ---------------------------------------------------------------------------------------
// Row 21: broken packets after NEWKEYS
// ---------------------------------------------------------------------------------------

/// The ciphers the fake server can use, with a MAC where needed.
const SUITES: &[(&str, &str, usize)] = &[
    // (cipher, mac, tag length)
    ("chacha20-poly1305@openssh.com", "hmac-sha2-256", 16),
    ("aes256-gcm@openssh.com", "hmac-sha2-256", 16),
    ("aes128-ctr", "hmac-sha2-256", 32),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", 32),
];

fn suite_kex(cipher: &str, mac: &str) -> Step {
    Step::Kex(KexOpts::default().with_ciphers(&[cipher], &[mac]))
}

#[test]
fn r21_encrypted_length_over_the_cap() {
    let _g = shared();
    for &(cipher, mac, tag) in SUITES {
        for bad in [0x7fff_ffffu32, 0xffff_fff8, 262_152, 1 << 20] {
            let m = mangle(move |pkt: &mut Vec<u8>| {
                let plain_len = (pkt.len() - 4 - tag) as u32;
                let x = (plain_len ^ bad).to_be_bytes();
                for (b, k) in pkt.iter_mut().zip(x) {
                    *b ^= k;
                }
            });

            let (e, el, rec) = fail(vec![banner(), suite_kex(cipher, mac), Step::Mangled(ignore(), m), Step::Hang]);
            assert_error(&e, &["Protocol"], "bad packet length");
            assert!(el < PROMPT, "{cipher}");
            assert!(alloc_mark() < 512 * 1024, "{cipher} {bad:#x}: allocation {}", alloc_mark());
            assert!(!rec.got(msg::USERAUTH_REQUEST));
        }
    }
}

#[test]
fn r21_corrupt_short_or_truncated_tags() {
    let _g = shared();
    for &(cipher, mac, _) in SUITES {
        // Last tag byte flipped.
        let flip = mangle(|p: &mut Vec<u8>| *p.last_mut().unwrap() ^= 0x80);
        let (e, el, _) = fail(vec![banner(), suite_kex(cipher, mac), Step::Mangled(ignore(), flip), Step::Hang]);
        assert_error(&e, &["Crypto"], "mismatch");
        assert!(el < PROMPT, "{cipher}");
        // Tag one byte short, followed by a valid packet: the next packet's first byte is
        // taken as the tag's last.
        let cut = mangle(|p: &mut Vec<u8>| {
            p.pop();
        });
        let (e, _, _) = fail(vec![
            banner(),
            suite_kex(cipher, mac),
            Step::Mangled(ignore(), cut),
            Step::Packet(ignore()),
            Step::Hang,
        ]);
        assert_error(&e, &["Crypto"], "mismatch");
        // Truncated then FIN.
        let half = mangle(|p: &mut Vec<u8>| {
            let n = p.len() - 5;
            p.truncate(n);
        });
        let (e, el, _) = fail(vec![banner(), suite_kex(cipher, mac), Step::Mangled(ignore(), half), Step::Close]);
        assert_error(&e, &["ConnectionClosed"], "closed");
        assert!(el < PROMPT, "{cipher}");
    }
}

#[test]
fn r21_truncated_tag_then_stall_times_out() {
    let _g = shared();
    let jobs: Vec<Box<dyn FnOnce() -> (Error, Duration) + Send>> = SUITES
        .iter()
        .map(|&(cipher, mac, _)| {
            Box::new(move || {
                let half = mangle(|p: &mut Vec<u8>| {
                    let n = p.len() - 5;
                    p.truncate(n);
                });
                let (e, el, _) = fail_with(
                    vec![banner(), suite_kex(cipher, mac), Step::Mangled(ignore(), half), Step::Stall],
                    short_cfg(Duration::from_secs(2)),
                );
                (e, el)
            }) as Box<dyn FnOnce() -> _ + Send>
        })
        .collect();
    for (e, el) in parallel(jobs) {
        assert_error(&e, &["Timeout"], "did not finish in time");
        assert!(el < Duration::from_secs(3), "{el:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Rows 22-23: unknown messages, IGNORE, DEBUG, DISCONNECT
// ---------------------------------------------------------------------------------------

#[test]
fn r22_unknown_messages_get_unimplemented_with_their_sequence_number() {
    let _g = shared();
    for strict in [true, false] {
        unimplemented_seq(if strict { KexOpts::default() } else { KexOpts::non_strict() });
    }
}

fn unimplemented_seq(o: KexOpts) {
    let head = vec![
        banner(),
        Step::Kex(o),
        Step::Packet(vec![200, 1, 2, 3]), // before SERVICE_ACCEPT
        Step::Expect(msg::SERVICE_REQUEST),
        Step::Packet(Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
        Step::Expect(msg::USERAUTH_REQUEST),
        Step::Packet(vec![150]),   // during authentication
        Step::Packet(vec![10, 0]), // a transport-range number nobody defined
        Step::Packet(Msg::UserauthSuccess.encode()),
        Step::Packet(vec![255; 40]), // after authentication
        Step::AcceptChannel { window: 1 << 20, max_packet: 32768 },
        Step::AcceptExec,
        Step::Data(b"still fine\n".to_vec()),
        Step::ExitStatus(0),
        Step::Eof,
        Step::ChannelClose,
    ];
    let rec = succeed(head, b"still fine\n");
    let answered: Vec<u32> =
        rec.all(msg::UNIMPLEMENTED).iter().map(|r| u32::from_be_bytes(r.payload[1..5].try_into().unwrap())).collect();
    let expected: Vec<u32> = [200u8, 150, 10, 255].iter().map(|n| rec.sent_seq(*n).unwrap()).collect();
    assert_eq!(answered, expected, "UNIMPLEMENTED must name the packets' sequence numbers");
}

#[test]
fn r22_big_ignore_and_hostile_debug_are_harmless() {
    let _g = shared();
    let big = Msg::Ignore { data: &vec![0xAA; 30 * 1024] }.encode();
    let dbg = Msg::Debug { always_display: true, message: b"\x1b[2J\x1b]0;pwned\x07 hello\r\nrm -rf /\0" }.encode();
    let mut steps = vec![
        banner(),
        kex(),
        Step::Packet(big.clone()),
        Step::Packet(dbg.clone()),
        Step::AcceptAuth,
        Step::Packet(big),
        Step::Packet(dbg),
    ];
    steps.extend(tail(b"d\n", 0).into_iter().skip(1));
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let info = s.info().unwrap();
    assert!(!info.banner.contains('\x1b'), "{:?}", info.banner);
    assert_eq!(s.exec("x").unwrap().output().unwrap().0, b"d\n");
    drop(s);
    assert_socket_released(srv.client_socket());
}

fn disconnect(reason: u32, text: &[u8]) -> Vec<u8> {
    Msg::Disconnect { reason, description: text }.encode()
}

#[test]
fn r23_disconnect_in_every_phase_with_hostile_text() {
    let _g = shared();
    let mut long = vec![b'A'; 64 * 1024];
    long[100] = 0x1b;
    long[200] = b'\n';
    long[300] = 0;
    let texts: Vec<Vec<u8>> = vec![vec![], b"13 bytes text".to_vec(), long, b"bad\x1b[31m\r\nred\xff\xfe".to_vec()];
    for (ti, text) in texts.iter().enumerate() {
        let d = disconnect(11, text);
        let phases: Vec<(&str, Vec<Step>)> = vec![
            ("before KEXINIT", vec![banner(), Step::Packet(d.clone())]),
            ("during kex", {
                let mut o = KexOpts::default();
                o.before_reply = vec![d.clone()];
                vec![banner(), Step::Kex(o)]
            }),
            ("after NEWKEYS", vec![banner(), kex(), Step::Packet(d.clone())]),
            (
                "during auth",
                vec![
                    banner(),
                    kex(),
                    Step::Expect(msg::SERVICE_REQUEST),
                    Step::Packet(Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
                    Step::Expect(msg::USERAUTH_REQUEST),
                    Step::Packet(d.clone()),
                ],
            ),
        ];
        for (phase, mut steps) in phases {
            steps.push(Step::Hang);
            let (e, el, _) = fail(steps);
            assert!(el < PROMPT, "{phase}");
            let Error::Disconnected { reason, description } = &e else { panic!("{phase}: {e}") };
            assert_eq!(*reason, 11);
            assert!(description.len() <= 2048 + 3, "{phase}: kept {} bytes", description.len());
            assert_sane_text(&e.to_string());
            if ti == 1 {
                assert_eq!(e.to_string(), "server disconnected (reason 11): 13 bytes text");
            }
        }
    }
    // After authentication, during a command.
    let mut steps = vec![
        banner(),
        kex(),
        Step::AcceptAuth,
        Step::AcceptChannel { window: 1 << 20, max_packet: 32768 },
        Step::AcceptExec,
    ];
    steps.push(Step::Packet(disconnect(2, b"bye\x07")));
    steps.push(Step::Hang);
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let err = s.exec("x").and_then(|c| c.output()).unwrap_err();
    assert_error(&err, &["Disconnected"], "reason 2");
    drop(s);
    assert_socket_released(srv.client_socket());
}

#[test]
fn r23_disconnect_with_lying_lengths() {
    let _g = shared();
    let mut w = Writer::new();
    w.u8(msg::DISCONNECT).u32(11).u32(100_000).raw(b"short");
    let (e, el, _) = fail(vec![banner(), kex(), Step::Packet(w.into_vec()), Step::Hang]);
    assert_error(&e, &["Protocol"], "truncated");
    assert!(el < PROMPT);
    let (e, _, _) = fail(vec![banner(), Step::Packet(vec![msg::DISCONNECT, 0, 0]), Step::Hang]);
    assert_error(&e, &["Protocol"], "");
}

// ---------------------------------------------------------------------------------------
// Rows 25-26: re-exchange started by the server
// ---------------------------------------------------------------------------------------

fn rekey_session(initial: KexOpts, rekeys: Vec<KexOpts>) -> (ConnRecord, u32) {
    let initial_strict = initial.strict;
    let mut steps = vec![
        banner(),
        Step::Kex(initial),
        Step::AcceptAuth,
        Step::AcceptChannel { window: 1 << 20, max_packet: 32768 },
        Step::AcceptExec,
    ];
    for r in rekeys {
        steps.push(Step::Kex(r));
        steps.push(Step::Data(b"x".to_vec()));
    }
    steps.extend([Step::ExitStatus(0), Step::Eof, Step::ChannelClose]);
    let srv = FakeServer::start(steps);
    let s = Session::connect(srv.addr(), config()).unwrap();
    let sid = s.info().unwrap().session_id;
    let (o, _, st) = s.exec("x").and_then(|c| c.output()).unwrap_or_else(|e| panic!("{e}: {:?}", srv.conns()));
    assert_eq!(st, Some(ExitStatus::Code(0)));
    assert!(o.iter().all(|&b| b == b'x'));
    assert_eq!(s.info().unwrap().session_id, sid, "session id changed");
    let info = s.info().unwrap();
    assert_eq!(info.strict_kex, initial_strict);
    let count = info.kex_count;
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert!(rec.script_error.is_none(), "{:?}", rec.script_error);
    assert!(rec.kex_violations.is_empty(), "{:?}", rec.kex_violations);
    assert_socket_released(rec.client_socket());
    (rec, count)
}

#[test]
fn r25_server_rekey_switches_method() {
    let _g = shared();
    let (_, n) = rekey_session(
        KexOpts::default(),
        vec![
            KexOpts::default().with_kex(&["ecdh-sha2-nistp256"]),
            KexOpts::default()
                .with_kex(&["diffie-hellman-group16-sha512"])
                .with_ciphers(&["aes256-gcm@openssh.com"], &["hmac-sha2-256"]),
            KexOpts::default()
                .with_kex(&["diffie-hellman-group14-sha256"])
                .with_ciphers(&["aes128-ctr"], &["hmac-sha2-512"]),
        ],
    );
    assert_eq!(n, 4);
}

#[test]
fn r25_strictness_is_decided_by_the_first_kexinit_only() {
    let _g = shared();
    // Strict session; the re-exchange KEXINIT lacks the marker: both sides still reset their
    // sequence numbers at NEWKEYS (a client that stopped would fail the MAC).
    let (_, n) = rekey_session(KexOpts::default(), vec![KexOpts::non_strict(), KexOpts::non_strict()]);
    assert_eq!(n, 3);
    // Non-strict session; re-exchange KEXINITs carrying the marker must not switch strict mode
    // on (the server does not reset: a client that did would fail the MAC).
    let (rec, n) = rekey_session(KexOpts::non_strict(), vec![KexOpts::default(), KexOpts::default()]);
    assert_eq!(n, 3);
    assert!(rec.received.last().map_or(false, |r| r.seq > 5), "{:?}", rec.received.last());
}

#[test]
fn r25_rekey_right_after_newkeys_and_during_authentication() {
    let _g = shared();
    let rekey = || Step::Kex(KexOpts::default().with_kex(&["ecdh-sha2-nistp256"]));
    // Before SERVICE_ACCEPT, and again between SERVICE_ACCEPT and USERAUTH_SUCCESS.
    let steps = vec![
        banner(),
        kex(),
        rekey(),
        Step::Expect(msg::SERVICE_REQUEST),
        Step::Packet(Msg::ServiceAccept { name: "ssh-userauth" }.encode()),
        rekey(),
        Step::Expect(msg::USERAUTH_REQUEST),
        Step::Packet(Msg::UserauthSuccess.encode()),
    ];
    let rec = succeed(script_without_auth(steps, b"r\n"), b"r\n");
    assert!(rec.kex_violations.is_empty(), "{:?}", rec.kex_violations);
    assert_eq!(rec.all(msg::NEWKEYS).len(), 3);
}

/// `script` for steps that already did the authentication.
fn script_without_auth(head: Vec<Step>, out: &[u8]) -> Vec<Step> {
    let mut s = head;
    s.extend(tail(out, 0).into_iter().skip(1));
    s
}

#[test]
fn r24_client_initiated_rekey_and_collision() {
    let _g = shared();
    // The client's volume limit (256 KiB) falls around the time the server starts its own
    // exchange: either side may send KEXINIT first; one exchange results either way.
    const N: usize = 400_000;
    let steps = vec![
        banner(),
        kex(),
        Step::AcceptAuth,
        Step::AcceptChannel { window: 16 << 20, max_packet: 32768 },
        Step::AcceptExec,
        Step::ExpectData(100_000),
        Step::Kex(KexOpts::default()),
        Step::ExpectData(N),
        Step::ExitStatus(0),
        Step::Eof,
        Step::ChannelClose,
    ];
    let srv = FakeServer::start(steps);
    let mut cfg = config();
    cfg.rekey.bytes = 256 * 1024;
    let s = Session::connect(srv.addr(), cfg).unwrap();
    let mut ch = s.exec("cat").unwrap();
    ch.write_all(&vec![b'k'; N]).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    assert_eq!(s.info().unwrap().kex_count, 2);
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert!(rec.kex_violations.is_empty(), "{:?}", rec.kex_violations);
    assert_eq!(rec.data.len(), N);
    assert_socket_released(rec.client_socket());
}

#[test]
fn r22_ext_info() {
    let _g = shared();
    // EXT_INFO as the first encrypted packet (sequence 0 under strict KEX) is fine, and so is
    // one after authentication (ignored).
    let ext = Msg::ExtInfo { extensions: vec![("server-sig-algs", b"ssh-ed25519,rsa-sha2-256")] }.encode();
    let mut steps = vec![banner(), kex(), Step::Packet(ext.clone()), Step::AcceptAuth, Step::Packet(ext)];
    steps.extend(tail(b"e\n", 0).into_iter().skip(1));
    succeed(steps, b"e\n");
    // 65 extensions: refused without building them all.
    let mut w = Writer::new();
    w.u8(msg::EXT_INFO).u32(65);
    for i in 0..65 {
        w.str(&format!("x{i}")).string(b"");
    }
    let (e, el, rec) = fail(vec![banner(), kex(), Step::Packet(w.into_vec()), Step::Hang]);
    assert_error(&e, &["Protocol"], "EXT_INFO");
    assert!(el < PROMPT);
    assert!(!rec.got(msg::USERAUTH_REQUEST));
    let mut w = Writer::new();
    w.u8(msg::EXT_INFO).u32(u32::MAX);
    let (e, _, _) = fail(vec![banner(), kex(), Step::Packet(w.into_vec()), Step::Hang]);
    assert_error(&e, &["Protocol"], "EXT_INFO");
}

#[test]
fn r26_rekey_while_the_client_is_sending() {
    let _g = shared();
    // 8 MiB against a 64 MiB window: when the server's KEXINIT comes the client has megabytes
    // still to send (socket buffers hold a few); it must hold them back until its NEWKEYS.
    const N: usize = 8 << 20;
    let steps = vec![
        banner(),
        kex(),
        Step::AcceptAuth,
        Step::AcceptChannel { window: 64 << 20, max_packet: 32768 },
        Step::AcceptExec,
        Step::ExpectData(100_000),
        Step::Kex(KexOpts::default().with_kex(&["ecdh-sha2-nistp256"])),
        Step::ExpectData(N),
        Step::Expect(msg::CHANNEL_EOF),
        Step::ExitStatus(0),
        Step::Eof,
        Step::ChannelClose,
    ];
    let srv = FakeServer::start(steps);
    let data: Vec<u8> = (0..N).map(|i| (i * 7 % 251) as u8).collect();
    let s = Session::connect(srv.addr(), config()).unwrap();
    let mut ch = s.exec("cat > /dev/null").unwrap();
    ch.write_all(&data).unwrap();
    let st = ch.wait().unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            srv.conns()
                .iter()
                .map(|c| (c.script_error.clone(), c.data.len(), c.numbers(), c.script_done, c.sent.clone()))
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(st, Some(ExitStatus::Code(0)));
    assert_eq!(s.info().unwrap().kex_count, 2);
    drop(s);
    let rec = srv.conn(0, Duration::from_secs(3));
    assert!(rec.kex_violations.is_empty(), "client sent data during its key exchange: {:?}", rec.kex_violations);
    assert!(rec.data == data, "data differs (got {} bytes)", rec.data.len());
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
        let mut cfg = config();
        cfg.handshake_timeout = Duration::from_millis(300);
        // refused
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _ = Session::connect(("127.0.0.1", port), cfg.clone());
        for steps in [
            vec![Step::Stall],                                  // timeout
            vec![Step::Banner("SSH-1.5-x".into()), Step::Hang], // bad version
            vec![Step::Reset],                                  // RST
            vec![banner(), Step::Kex(KexOpts::default().with_fault(KexFault::SignOtherHash)), Step::Hang],
            {
                let mut o = KexOpts::default();
                o.before_reply = vec![ignore()];
                vec![banner(), Step::Kex(o), Step::Hang]
            },
        ] {
            let srv = FakeServer::start(steps);
            assert!(Session::connect(srv.addr(), cfg.clone()).is_err());
        }
        let srv = FakeServer::with_key(vec![banner(), kex(), Step::Hang], keys().ed_b.clone());
        assert!(Session::connect(srv.addr(), cfg.clone()).is_err());
        drop(srv);
        // A full session.
        let srv = FakeServer::start(script(vec![banner(), kex()], b"z"));
        let s = Session::connect(srv.addr(), config()).unwrap();
        assert_eq!(s.exec("x").unwrap().output().unwrap().0, b"z");
        s.close();
        // Disconnect mid-command.
        let srv = FakeServer::start(vec![
            banner(),
            kex(),
            Step::AcceptAuth,
            Step::AcceptChannel { window: 1000, max_packet: 100 },
            Step::AcceptExec,
            Step::Close,
        ]);
        let s = Session::connect(srv.addr(), config()).unwrap();
        let mut ch = s.exec("x").unwrap();
        let mut b = [0u8; 10];
        assert!(ch.read(&mut b).is_err() || ch.read(&mut b).is_err());
    };
    run_all(); // warm-up: lazily created process state
    let (fds, tasks) = (fd_count(), task_count());
    for _ in 0..5 {
        run_all();
    }
    assert_eq!(fd_count(), fds, "descriptors leaked");
    assert_eq!(task_count(), tasks, "threads leaked");
}
