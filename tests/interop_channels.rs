//! Interop, connection layer (issue 9, "How it is proven"), against OpenSSH sshd 9.2 and
//! Dropbear 2022.83 started on loopback: many channels at once on one connection from many
//! threads, no head-of-line blocking behind a channel nobody reads, 1000 channels opened and
//! closed one after another with fds/threads/memory flat, pty (tty name, size, window-change),
//! signals, env, the sftp subsystem, direct-tcpip and local forwards to a TCP echo server, remote
//! forwards, and explicit rekeys during transfers on several channels.
//!
//! Every blocking call is bounded by `Config::io_timeout`, so a hang is a failure, not a stuck
//! CI job. Echo transfers never let more than `IN_FLIGHT` bytes be written and not yet read
//! back, so neither window can fill while the writer waits for the reader. Throughput figures
//! are printed (`--nocapture` to see them); they are not asserted.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sshbridge::{Channel, Config, Credential, Error, ExitStatus, Session};
use support::Server;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Longest wait for any single operation; a hang becomes a test failure.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

/// Prints the server log if the test fails.
struct ShowLog<'a>(&'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("===== {:?} server log (port {}) =====\n{}", self.0.kind, self.0.port, self.0.log());
        }
    }
}

fn config(srv: &Server) -> Config {
    let mut cfg = Config::new(support::USER);
    cfg.host_keys = srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.io_timeout = Some(IO_TIMEOUT);
    cfg
}

fn connect(srv: &Server) -> Session {
    Session::connect(srv.addr(), config(srv)).unwrap_or_else(|e| panic!("connect to {:?}: {e} ({e:?})", srv.kind))
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}: {} bytes back for {} sent, first difference at {:?}",
        got.len(),
        want.len(),
        first_difference(got, want)
    );
}

fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / MIB as f64 / t.as_secs_f64().max(1e-6)
}

/// Most bytes written to an echo and not yet read back.
const IN_FLIGHT: usize = MIB;
const CHUNK: usize = 64 * 1024;

/// Send `input` through an echo (a remote `cat`, or a TCP echo at the end of a forward) and
/// return what comes back once the far end closes. `progress` is called with the bytes read
/// back so far after each chunk.
fn echo_with(ch: &mut Channel, input: &[u8], what: &str, progress: &mut dyn FnMut(usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0;
    for piece in input.chunks(CHUNK) {
        ch.write_all(piece).unwrap_or_else(|e| panic!("{what}: write at {sent}: {e}"));
        sent += piece.len();
        while sent - out.len() > IN_FLIGHT {
            let n = ch.read(&mut buf).unwrap_or_else(|e| panic!("{what}: read at {}: {e}", out.len()));
            assert!(n > 0, "{what}: end of file after {} of {} bytes", out.len(), input.len());
            out.extend_from_slice(&buf[..n]);
        }
        progress(out.len());
    }
    ch.send_eof().unwrap();
    ch.read_to_end(&mut out).unwrap_or_else(|e| panic!("{what}: read at {}: {e}", out.len()));
    out
}

fn echo(ch: &mut Channel, input: &[u8], what: &str) -> Vec<u8> {
    echo_with(ch, input, what, &mut |_| {})
}

/// Join worker threads; a worker's panic fails the test with its message.
fn join_all(handles: Vec<JoinHandle<()>>) {
    let mut failed = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("worker {i}: {msg}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Read from `ch` into `acc` until `acc[from..]` contains `needle`; returns where it starts.
fn read_until(ch: &mut Channel, acc: &mut Vec<u8>, from: usize, needle: &str) -> usize {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(p) = acc.get(from..).and_then(|s| s.windows(needle.len()).position(|w| w == needle.as_bytes())) {
            return from + p;
        }
        let n = ch
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}; got {:?}", String::from_utf8_lossy(acc)));
        assert!(n > 0, "end of file while waiting for {needle:?}; got {:?}", String::from_utf8_lossy(acc));
        acc.extend_from_slice(&buf[..n]);
    }
}

/// The line (without CR/LF) that starts at `at` in `acc`, reading more until it is complete.
fn line_at(ch: &mut Channel, acc: &mut Vec<u8>, at: usize) -> String {
    let end = read_until(ch, acc, at, "\n");
    String::from_utf8_lossy(&acc[at..end]).trim_end_matches('\r').to_string()
}

/// A TCP echo server on 127.0.0.1 (a thread per connection; echoes until EOF, then closes).
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                let Ok(mut r) = s.try_clone() else { return };
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// 1. Many channels at once, from many threads
// ---------------------------------------------------------------------------------------

/// `n` threads each open a `cat` channel on one connection; once all `n` are open at the same
/// time (checked with `channel_count`), each echoes its own `size` bytes of distinct data.
fn many_channels(srv: &Server, n: usize, size: usize) {
    let _log = ShowLog(srv);
    let session = connect(srv);
    let (opened_tx, opened_rx) = mpsc::channel::<Result<(), String>>();
    let mut go = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let (s, opened) = (session.clone(), opened_tx.clone());
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        handles.push(thread::spawn(move || {
            let mut ch = match s.exec("cat") {
                Ok(ch) => ch,
                Err(e) => {
                    let _ = opened.send(Err(format!("channel {i}: exec cat: {e} ({e:?})")));
                    return;
                }
            };
            opened.send(Ok(())).unwrap();
            if go_rx.recv_timeout(IO_TIMEOUT).is_err() {
                return; // the main thread gave up
            }
            let input = data(size, 1000 + i as u64);
            let out = echo(&mut ch, &input, &format!("channel {i}"));
            assert_same(&out, &input, &format!("channel {i}"));
            assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)), "channel {i}: exit status");
        }));
    }
    drop(opened_tx);
    for _ in 0..n {
        match opened_rx.recv_timeout(IO_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(e) => panic!("a channel did not open: {e}"),
        }
    }
    assert_eq!(session.channel_count(), n, "all {n} channels open at once");
    let t0 = Instant::now();
    for g in go {
        g.send(()).unwrap();
    }
    join_all(handles);
    let t = t0.elapsed();
    println!(
        "{:?}: {n} channels x {} MiB echoed at once in {:.2} s: {:.0} MiB/s each way aggregate",
        srv.kind,
        size / MIB,
        t.as_secs_f64(),
        mbps(n * size, t)
    );
    assert_eq!(session.channel_count(), 0, "channels left in the table");
    // The connection is still fine.
    let (out, _, st) = session.exec("echo still-here").unwrap().output().unwrap();
    assert_eq!((out.as_slice(), st), (&b"still-here\n"[..], Some(ExitStatus::Code(0))));
}

#[test]
fn sshd_16_channels_at_once_from_16_threads() {
    let srv = support::sshd(&["MaxSessions 32"]);
    many_channels(&srv, 16, 4 * MIB);
}

/// Dropbear 2022.83 allows MAX_CHANNELS = 1000 channels per connection (sysoptions.h), so 16
/// is no special case for it.
#[test]
fn dropbear_16_channels_at_once_from_16_threads() {
    let srv = support::dropbear(&[]);
    many_channels(&srv, 16, 4 * MIB);
}

// ---------------------------------------------------------------------------------------
// 2. No head-of-line blocking
// ---------------------------------------------------------------------------------------

/// Output of `seq 1 n`.
fn seq_output(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        v.extend_from_slice(i.to_string().as_bytes());
        v.push(b'\n');
    }
    v
}

/// One channel's output is not read (its window fills and its command blocks); 8 other
/// channels still move 64 MiB each; then the paused one is read to the end and loses nothing.
#[test]
fn sshd_paused_channel_does_not_block_others() {
    const SEQ_N: u32 = 2_000_000; // 14.9 MB: far more than our window plus sshd's buffers
    const EACH: usize = 64 * MIB;
    const N: usize = 8;
    let srv = support::sshd(&["MaxSessions 32"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);

    let expected = seq_output(SEQ_N);
    let mut paused = session.exec(&format!("seq 1 {SEQ_N}")).unwrap();
    let mut got = vec![0u8; 2];
    paused.read_exact(&mut got).unwrap();
    assert_eq!(got, b"1\n");

    let t0 = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let s = session.clone();
            thread::spawn(move || {
                let mut ch = s.exec(&format!("head -c {EACH} /dev/zero")).unwrap();
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0usize;
                loop {
                    let n = ch.read(&mut buf).unwrap_or_else(|e| panic!("channel {i}: read at {total}: {e}"));
                    if n == 0 {
                        break;
                    }
                    assert!(buf[..n].iter().all(|&b| b == 0), "channel {i}: non-zero byte near {total}");
                    total += n;
                }
                assert_eq!(total, EACH, "channel {i}: bytes");
                assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)), "channel {i}: exit status");
            })
        })
        .collect();
    join_all(handles);
    let t = t0.elapsed();
    println!(
        "OpenSsh: {N} channels x 64 MiB beside a paused one in {:.2} s: {:.0} MiB/s aggregate",
        t.as_secs_f64(),
        mbps(N * EACH, t)
    );

    // The paused command is still blocked on its full window: nothing was dropped or buffered
    // without bound on its behalf.
    assert_eq!(paused.exit_status(), None, "seq finished although nobody read its output");
    paused.read_to_end(&mut got).unwrap();
    assert_same(&got, &expected, "paused channel after resuming");
    assert_eq!(paused.wait().unwrap(), Some(ExitStatus::Code(0)));
    assert_eq!(session.channel_count(), 0);
}

// ---------------------------------------------------------------------------------------
// 3. 1000 channels, one after another
// ---------------------------------------------------------------------------------------

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const INNER_ENV: &str = "SSHBRIDGE_CHANNELS_INNER";

/// fds, threads and memory are per process, and other tests run in parallel threads of this
/// one: the measurement runs in a process of its own (this test binary, only the inner test).
#[test]
fn sshd_1000_channels_one_after_another() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "inner_1000_channels", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    print!("{text}");
    assert!(out.status.success(), "inner test failed ({})", out.status);
    assert!(text.contains("1 passed"), "inner test did not run");
    assert!(text.contains("1000 channels:"), "inner test did not measure");
}

#[test]
#[ignore = "run in a process of its own by sshd_1000_channels_one_after_another"]
fn inner_1000_channels() {
    if std::env::var_os(INNER_ENV).is_none() {
        println!("inner_1000_channels measures per-process figures: run it through sshd_1000_channels_one_after_another");
        return;
    }
    const WARM_UP: usize = 100;
    const TOTAL: usize = 1000;
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let one = |i: usize| {
        let mut ch = session.exec(&format!("echo {i}")).unwrap_or_else(|e| panic!("channel {i}: {e} ({e:?})"));
        let mut out = String::new();
        ch.read_to_string(&mut out).unwrap();
        assert_eq!(out, format!("{i}\n"), "channel {i}");
        assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)), "channel {i}");
    };
    for i in 0..WARM_UP {
        one(i);
    }
    assert_eq!(session.channel_count(), 0);
    let (fds, threads, rss) = (fd_count(), thread_count(), rss_kib());
    let t0 = Instant::now();
    for i in WARM_UP..TOTAL {
        one(i);
        assert_eq!(session.channel_count(), 0, "after channel {i}");
    }
    let t = t0.elapsed();
    let (fds2, threads2, rss2) = (fd_count(), thread_count(), rss_kib());
    println!(
        "1000 channels: {} after warm-up in {:.2} s ({:.1} ms each); fds {fds} -> {fds2}, threads {threads} -> {threads2}, VmRSS {rss} -> {rss2} KiB",
        TOTAL - WARM_UP,
        t.as_secs_f64(),
        t.as_secs_f64() * 1000.0 / (TOTAL - WARM_UP) as f64
    );
    assert_eq!(fds2, fds, "open descriptors grew");
    assert_eq!(threads2, threads, "threads grew");
    assert!(rss2 < rss + 2048, "VmRSS grew by {} KiB over {} channels", rss2.saturating_sub(rss), TOTAL - WARM_UP);
    assert!(session.error().is_none());
}

// ---------------------------------------------------------------------------------------
// 4. pty, window-change, signal
// ---------------------------------------------------------------------------------------

#[test]
fn sshd_pty_exec_prints_tty_and_size() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let mut ch = session.open_session().unwrap();
    ch.request_pty("xterm", 91, 27).unwrap();
    ch.exec("tty; stty size; echo TERM=$TERM").unwrap();
    let (out, _, st) = ch.output().unwrap();
    let out = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines.first().is_some_and(|l| l.starts_with("/dev/pts/")), "tty: {out:?}");
    assert_eq!(lines.get(1..3), Some(&["27 91", "TERM=xterm"][..]), "{out:?}");
    assert_eq!(st, Some(ExitStatus::Code(0)));
    // Without a pty there is no terminal.
    let (out, _, st) = session.exec("tty").unwrap().output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out).trim(), "not a tty");
    assert_eq!(st, Some(ExitStatus::Code(1)));
}

#[test]
fn sshd_pty_shell_window_change() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let mut ch = session.open_session().unwrap();
    ch.request_pty("xterm", 100, 30).unwrap();
    ch.shell().unwrap();
    let mut acc = Vec::new();
    // The terminal echoes what we type; the markers only match the command's output.
    ch.write_all(b"echo TTY=$(tty)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, 0, "TTY=/dev/");
    let tty = line_at(&mut ch, &mut acc, at);
    assert!(tty.starts_with("TTY=/dev/pts/"), "{tty:?}");
    ch.write_all(b"echo SIZE=$(stty size)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, at, "SIZE=");
    assert_eq!(line_at(&mut ch, &mut acc, at), "SIZE=30 100");
    ch.window_change(120, 40).unwrap();
    ch.write_all(b"echo SIZE=$(stty size)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, at + 5, "SIZE=");
    assert_eq!(line_at(&mut ch, &mut acc, at), "SIZE=40 120");
    ch.write_all(b"exit 7\n").unwrap();
    let mut rest = Vec::new();
    ch.read_to_end(&mut rest).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(7)));
}

/// OpenSSH (since 7.9) delivers "signal" requests to the session's process group, pty or not
/// (session.c `session_signal_req`); Dropbear 2022.83 kills the session's child.
fn signal_term(srv: &Server) {
    let _log = ShowLog(srv);
    let mut cfg = config(srv);
    cfg.io_timeout = Some(Duration::from_secs(20)); // far below the 100 s of the sleep
    let session = Session::connect(srv.addr(), cfg).unwrap();
    let mut ch = session.exec("sleep 100").unwrap();
    let t0 = Instant::now();
    ch.signal("TERM").unwrap();
    let st = ch.wait().unwrap();
    assert!(
        matches!(&st, Some(ExitStatus::Signal { name, core_dumped: false, .. }) if name == "TERM"),
        "{:?}: {st:?}",
        srv.kind
    );
    assert_eq!(st.unwrap().shell_code(), 143);
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn sshd_signal_term_ends_sleep() {
    signal_term(&support::sshd(&[]));
}

#[test]
fn dropbear_signal_term_ends_sleep() {
    signal_term(&support::dropbear(&[]));
}

// ---------------------------------------------------------------------------------------
// 5. env
// ---------------------------------------------------------------------------------------

#[test]
fn sshd_env_accepted_and_refused() {
    let srv = support::sshd(&["AcceptEnv LANG"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let mut ch = session.open_session().unwrap();
    ch.set_env("LANG", "C.UTF-8").unwrap();
    let e = ch.set_env("SSHB_NOT_ACCEPTED", "x").unwrap_err();
    assert!(matches!(e, Error::ChannelRequestFailed(ref m) if m.contains("SSHB_NOT_ACCEPTED")), "{e:?}");
    // The refusal leaves the channel usable.
    ch.exec("echo \"LANG=$LANG [$SSHB_NOT_ACCEPTED]\"").unwrap();
    let (out, _, st) = ch.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "LANG=C.UTF-8 []\n");
    assert_eq!(st, Some(ExitStatus::Code(0)));
}

// ---------------------------------------------------------------------------------------
// 6. subsystem
// ---------------------------------------------------------------------------------------

#[test]
fn sshd_sftp_subsystem_answers_init() {
    let srv = support::sshd(&["Subsystem sftp internal-sftp"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let mut ch = session.open_session().unwrap();
    ch.subsystem("sftp").unwrap();
    // SSH_FXP_INIT: uint32 length 5, byte 1, uint32 version 3.
    ch.write_all(&[0, 0, 0, 5, 1, 0, 0, 0, 3]).unwrap();
    let mut len = [0u8; 4];
    ch.read_exact(&mut len).unwrap();
    let len = u32::from_be_bytes(len) as usize;
    assert!((5..=64 * 1024).contains(&len), "SSH_FXP_VERSION length {len}");
    let mut body = vec![0u8; len];
    ch.read_exact(&mut body).unwrap();
    assert_eq!(body[0], 2, "SSH_FXP_VERSION type");
    assert_eq!(u32::from_be_bytes(body[1..5].try_into().unwrap()), 3, "version");
    ch.send_eof().unwrap();
    drop(ch);
    // An unknown subsystem is refused.
    let mut ch = session.open_session().unwrap();
    let e = ch.subsystem("no-such-subsystem").unwrap_err();
    assert!(matches!(e, Error::ChannelRequestFailed(_)), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// 7. direct-tcpip and local forwarding
// ---------------------------------------------------------------------------------------

#[test]
fn sshd_direct_tcpip_64mib_each_way() {
    let srv = support::sshd(&["AllowTcpForwarding yes"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let echo_addr = echo_server();
    let mut ch = session.direct_tcpip("127.0.0.1", echo_addr.port()).unwrap();
    let input = data(64 * MIB, 77);
    let t0 = Instant::now();
    let out = echo(&mut ch, &input, "direct-tcpip");
    let t = t0.elapsed();
    assert_same(&out, &input, "direct-tcpip echo");
    println!("OpenSsh: direct-tcpip 64 MiB each way in {:.2} s: {:.0} MiB/s each way", t.as_secs_f64(), mbps(input.len(), t));
    assert_eq!(ch.wait().unwrap(), None, "a TCP channel has no exit status");
    assert_eq!(session.channel_count(), 0);
}

#[test]
fn sshd_local_forward_8_connections_at_once() {
    const N: usize = 8;
    const SIZE: usize = 8 * MIB;
    let srv = support::sshd(&["AllowTcpForwarding yes"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let echo_addr = echo_server();
    let fwd = session.forward_local("127.0.0.1:0", "127.0.0.1", echo_addr.port()).unwrap();
    let local = fwd.local_addr();
    assert!(local.ip().is_loopback() && local.port() != 0, "{local}");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            thread::spawn(move || {
                let input = data(SIZE, 500 + i as u64);
                let mut s = TcpStream::connect(local).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut w = s.try_clone().unwrap();
                let writer = thread::spawn(move || {
                    w.write_all(&input).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                    input
                });
                let mut out = Vec::new();
                s.read_to_end(&mut out).unwrap_or_else(|e| panic!("connection {i}: read at {}: {e}", out.len()));
                let input = writer.join().unwrap();
                assert_same(&out, &input, &format!("forwarded connection {i}"));
            })
        })
        .collect();
    join_all(handles);
    let t = t0.elapsed();
    println!(
        "OpenSsh: local forward, {N} connections x {} MiB echoed at once in {:.2} s: {:.0} MiB/s each way aggregate",
        SIZE / MIB,
        t.as_secs_f64(),
        mbps(N * SIZE, t)
    );
    // Dropping the forward stops listening.
    drop(fwd);
    session.keepalive(IO_TIMEOUT).unwrap(); // one driver pass later at the latest
    let e = TcpStream::connect(local).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn sshd_direct_tcpip_to_closed_port_reports_reason() {
    let srv = support::sshd(&["AllowTcpForwarding yes"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let port = closed_port();
    match session.direct_tcpip("127.0.0.1", port) {
        Err(Error::ChannelOpenFailed { reason, description }) => {
            // SSH_OPEN_CONNECT_FAILED, with the server's text (OpenSSH: "Connection refused").
            assert_eq!(reason, 2, "{description}");
            assert!(description.contains("refused"), "{description:?}");
        }
        other => panic!("expected ChannelOpenFailed, got {:?}", other.map(|c| c.id())),
    }
    // The connection survives the failed open.
    assert_eq!(session.channel_count(), 0);
    let (out, _, _) = session.exec("echo ok").unwrap().output().unwrap();
    assert_eq!(out, b"ok\n");
}

// ---------------------------------------------------------------------------------------
// 8. Remote forwarding
// ---------------------------------------------------------------------------------------

#[test]
fn sshd_remote_forward_port_zero_accept_and_cancel() {
    const SIZE: usize = 4 * MIB;
    let srv = support::sshd(&["AllowTcpForwarding yes"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let mut rf = session.forward_remote("127.0.0.1", 0).unwrap();
    let port = rf.port();
    assert_ne!(port, 0, "the server must report the port it picked");

    // A client on the server side (loopback here) connects to the server's port.
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let me = s.local_addr().unwrap();
        s.write_all(&data(SIZE, 901)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        (me, back)
    });
    let (mut ch, (origin_addr, origin_port)) = rf.accept_until(Some(Instant::now() + IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    ch.read_to_end(&mut got).unwrap();
    assert_same(&got, &data(SIZE, 901), "TCP client -> channel");
    let reply = data(SIZE, 902);
    ch.write_all(&reply).unwrap();
    ch.send_eof().unwrap();
    let (me, back) = client.join().unwrap();
    assert_same(&back, &reply, "channel -> TCP client");
    assert_eq!((origin_addr.as_str(), origin_port), ("127.0.0.1", me.port()), "origin reported by the server");
    drop(ch);

    // Dropping the forward cancels it: global requests are answered in order, so once the
    // keepalive after it is answered the server has closed the port.
    drop(rf);
    session.keepalive(IO_TIMEOUT).unwrap();
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    assert!(session.error().is_none());
}

// ---------------------------------------------------------------------------------------
// 9. Rekey during transfers on several channels
// ---------------------------------------------------------------------------------------

/// 4 channels echo 16 MiB each; the main thread calls `rekey` three times while they run
/// (after each quarter). `min_kex` is the least number of key exchanges expected.
fn rekey_during_transfers(srv: &Server, min_kex: u32) {
    const N: usize = 4;
    const SIZE: usize = 16 * MIB;
    let _log = ShowLog(srv);
    let session = connect(srv);
    let before = session.info().unwrap();
    let (tx, rx) = mpsc::channel::<usize>();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (s, tx) = (session.clone(), tx.clone());
            thread::spawn(move || {
                let mut ch = s.exec("cat").unwrap();
                let input = data(SIZE, 300 + i as u64);
                let mut mark = 1;
                let out = echo_with(&mut ch, &input, &format!("channel {i}"), &mut |done| {
                    if done >= mark * SIZE / 4 {
                        let _ = tx.send(i);
                        mark += 1;
                    }
                });
                assert_same(&out, &input, &format!("channel {i} across rekeys"));
                assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
            })
        })
        .collect();
    drop(tx);
    let mut explicit = 0;
    for _quarter in 0..3 {
        // Every channel passed the next quarter mark (or finished): rekey now.
        let mut seen = 0;
        while seen < N {
            match rx.recv_timeout(IO_TIMEOUT) {
                Ok(_) => seen += 1,
                Err(_) => break,
            }
        }
        let k = session.info().unwrap().kex_count;
        session.rekey().unwrap();
        let k2 = session.info().unwrap().kex_count;
        assert!(k2 > k, "rekey() returned with kex_count {k} -> {k2}");
        explicit += 1;
    }
    join_all(handles);
    let t = t0.elapsed();
    let after = session.info().unwrap();
    println!(
        "{:?}: {N} channels x {} MiB echoed with {explicit} explicit rekeys in {:.2} s ({:.0} MiB/s each way); kex_count {} -> {}",
        srv.kind,
        SIZE / MIB,
        t.as_secs_f64(),
        mbps(N * SIZE, t),
        before.kex_count,
        after.kex_count
    );
    assert!(after.kex_count >= before.kex_count + min_kex, "kex_count {} -> {}", before.kex_count, after.kex_count);
    assert_eq!(after.session_id, before.session_id, "the session id never changes");
    let (out, _, _) = session.exec("echo after-rekeys").unwrap().output().unwrap();
    assert_eq!(out, b"after-rekeys\n");
}

#[test]
fn sshd_explicit_rekey_during_4_transfers() {
    rekey_during_transfers(&support::sshd(&[]), 3);
}

/// sshd also rekeys by itself every 1 MB: 64 MiB each way gives dozens more.
#[test]
fn sshd_rekey_limit_1m_and_explicit_rekey_during_4_transfers() {
    rekey_during_transfers(&support::sshd(&["RekeyLimit 1M"]), 3 + 32);
}

#[test]
fn dropbear_explicit_rekey_during_4_transfers() {
    rekey_during_transfers(&support::dropbear(&[]), 3);
}
