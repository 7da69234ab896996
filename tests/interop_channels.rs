//! Interop, connection layer (issue 9, "How it is proven"), against OpenSSH sshd 9.2 and
//! Dropbear 2022.83 started on loopback: many channels at once on one connection from many
//! threads, no head-of-line blocking behind a channel nobody reads, 1000 channels opened and
//! closed one after another with fds/threads/memory flat, pty (tty name, size, window-change),
//! signals, env, the sftp subsystem, and explicit rekeys during transfers on several channels.
//! Port forwarding is in `interop_forwarding.rs`; shared helpers in `chanutil/`.
//!
//! Every blocking call is bounded by `Config::io_timeout`, so a hang is a failure, not a stuck
//! CI job. Echo transfers never let more than `IN_FLIGHT` bytes be written and not yet read
//! back, so neither window can fill while the writer waits for the reader. Throughput figures
//! are printed (`--nocapture` to see them); they are not asserted.

mod chanutil;
mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chanutil::*;
use sshbridge::{Channel, Error, ExitStatus, Session};
use support::Server;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

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

/// `Config::max_channels` caps the table; sshd's `MaxSessions` refusal comes back as the
/// server's open failure; neither harms the channels already open or the connection.
#[test]
fn sshd_channel_caps_ours_and_the_servers() {
    let srv = support::sshd(&["MaxSessions 3"]);
    let _log = ShowLog(&srv);
    let mut cfg = config(&srv);
    cfg.max_channels = 2;
    let session = Session::connect(srv.addr(), cfg).unwrap();
    let a = session.open_session().unwrap();
    let b = session.open_session().unwrap();
    match session.open_session() {
        Err(Error::BadArgument(m)) => assert!(m.contains("too many open channels"), "{m}"),
        other => panic!("a third channel with max_channels 2: {:?}", other.map(|c| c.id())),
    }
    drop((a, b));
    // Closing takes a round trip (the server's CLOSE); keepalives are those round trips.
    let end = Instant::now() + IO_TIMEOUT;
    while session.channel_count() > 0 {
        assert!(Instant::now() < end, "{} channels still in the table", session.channel_count());
        session.keepalive(IO_TIMEOUT).unwrap();
    }

    let session = connect(&srv);
    let held: Vec<Channel> = (0..3).map(|_| session.open_session().unwrap()).collect();
    match session.open_session() {
        Err(Error::ChannelOpenFailed { reason, description }) => {
            println!("OpenSsh: open past MaxSessions 3: reason {reason}, {description:?}");
            // serverloop.c answers a failed session_open with SSH2_OPEN_CONNECT_FAILED (2)
            // and "open failed".
            assert_eq!((reason, description.as_str()), (2, "open failed"));
        }
        other => panic!("a 4th session with MaxSessions 3: {:?}", other.map(|c| c.id())),
    }
    assert_eq!(session.channel_count(), 3, "the refused open left the table");
    let mut held = held.into_iter();
    let mut first = held.next().unwrap();
    first.exec("echo alive").unwrap();
    let (out, _, st) = first.output().unwrap();
    assert_eq!((out.as_slice(), st), (&b"alive\n"[..], Some(ExitStatus::Code(0))));
}

/// Dropping a channel whose command still floods it (`yes`) closes it: the server stops, the
/// table empties, and the connection carries on.
#[test]
fn sshd_dropping_a_busy_channel_frees_it() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    for _ in 0..3 {
        let mut ch = session.exec("yes").unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        ch.read_exact(&mut buf).unwrap();
        assert!(buf.chunks(2).all(|c| c == b"y\n"));
        drop(ch);
    }
    let end = Instant::now() + IO_TIMEOUT;
    while session.channel_count() > 0 {
        assert!(Instant::now() < end, "{} channels still in the table", session.channel_count());
        session.keepalive(IO_TIMEOUT).unwrap();
    }
    let (out, _, _) = session.exec("echo after").unwrap().output().unwrap();
    assert_eq!(out, b"after\n");
    assert!(session.error().is_none());
}

/// Channels opened and closed from 8 threads at once (churn in the channel table): every one
/// runs and reports its status, and the table is empty at the end.
#[test]
fn sshd_channel_churn_from_8_threads() {
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let srv = support::sshd(&["MaxSessions 32"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = session.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    let code = (t * EACH + i) % 200;
                    let mut ch = s.exec(&format!("echo {t}-{i}; exit {code}")).unwrap();
                    let mut out = String::new();
                    ch.read_to_string(&mut out).unwrap();
                    assert_eq!(out, format!("{t}-{i}\n"));
                    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(code as u32)), "thread {t} channel {i}");
                }
            })
        })
        .collect();
    join_all(handles);
    println!("OpenSsh: {} channels from {THREADS} threads in {:.2} s", THREADS * EACH, t0.elapsed().as_secs_f64());
    assert_eq!(session.channel_count(), 0);
    assert!(session.error().is_none());
}

/// When the server dies, every thread blocked on one of its channels gets an error at once
/// (not a hang until the timeout), and the session reports why.
#[test]
fn sshd_server_death_wakes_every_blocked_channel() {
    const N: usize = 4;
    let srv = support::sshd(&["MaxSessions 32"]);
    let session = connect(&srv);
    let (ready_tx, ready_rx) = mpsc::channel();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (s, ready) = (session.clone(), ready_tx.clone());
            thread::spawn(move || {
                let mut ch = s.exec("echo ready; sleep 100").unwrap();
                let mut acc = Vec::new();
                read_until(&mut ch, &mut acc, 0, "ready\n");
                ready.send(()).unwrap();
                let mut buf = [0u8; 64];
                let r = ch.read(&mut buf);
                let e = r.expect_err(&format!("channel {i}: read after the server died"));
                assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "channel {i}: {e}");
                e.to_string()
            })
        })
        .collect();
    for _ in 0..N {
        ready_rx.recv_timeout(IO_TIMEOUT).expect("a channel did not start");
    }
    let t0 = Instant::now();
    drop(srv); // SIGKILL to sshd and all its children: the TCP connection ends
    for (i, h) in handles.into_iter().enumerate() {
        let e = h.join().unwrap_or_else(|_| panic!("worker {i} panicked"));
        println!("channel {i}: {e}");
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "blocked readers took {:?}", t0.elapsed());
    assert!(session.error().is_some(), "the session does not report the dead connection");
    assert!(session.exec("true").is_err());
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

/// The other direction: a writer blocked on a channel whose remote reader does not read (the
/// server's window for it is spent) stops only itself; 4 other channels move 32 MiB each
/// meanwhile; once the remote side reads, the writer finishes and everything arrived.
#[test]
fn sshd_blocked_writer_does_not_block_others() {
    const UP: usize = 16 * MIB; // far more than sshd's 2 MiB window plus a pipe
    const EACH: usize = 32 * MIB;
    const N: usize = 4;
    let srv = support::sshd(&["MaxSessions 32"]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let gate = std::env::temp_dir().join(format!("sshbridge-chan-gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    // The remote reader starts only once the gate file exists (polled by the remote shell).
    let cmd = format!("while [ ! -e {0} ]; do sleep 0.05; done; wc -c", gate.display());
    let mut blocked = session.exec(&cmd).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let writer = thread::spawn(move || {
        let input = data(UP, 4242);
        for piece in input.chunks(CHUNK) {
            blocked.write_all(piece).unwrap();
        }
        done_tx.send(()).unwrap();
        blocked.output().unwrap()
    });

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
                    total += n;
                }
                assert_eq!(total, EACH, "channel {i}: bytes");
            })
        })
        .collect();
    join_all(handles);
    let t = t0.elapsed();
    println!(
        "OpenSsh: {N} channels x {} MiB beside a blocked writer in {:.2} s: {:.0} MiB/s aggregate",
        EACH / MIB,
        t.as_secs_f64(),
        mbps(N * EACH, t)
    );
    assert!(done_rx.try_recv().is_err(), "the writer finished although the remote side never read");

    std::fs::write(&gate, b"").unwrap();
    let (out, err, st) = writer.join().unwrap();
    let _ = std::fs::remove_file(&gate);
    assert_eq!(String::from_utf8_lossy(&out).trim(), UP.to_string(), "stderr {:?}", String::from_utf8_lossy(&err));
    assert_eq!(st, Some(ExitStatus::Code(0)));
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
        println!(
            "inner_1000_channels measures per-process figures: run it through sshd_1000_channels_one_after_another"
        );
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
    // The terminal echoes what we type: `T""TY=` is echoed as typed, only the command's
    // output contains `TTY=`.
    ch.write_all(b"echo T\"\"TY=$(tty)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, 0, "TTY=");
    let tty = line_at(&mut ch, &mut acc, at);
    assert!(tty.starts_with("TTY=/dev/pts/"), "{tty:?}");
    ch.write_all(b"echo S\"\"IZE=$(stty size)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, at, "SIZE=");
    assert_eq!(line_at(&mut ch, &mut acc, at), "SIZE=30 100");
    ch.window_change(120, 40).unwrap();
    ch.write_all(b"echo S\"\"IZE=$(stty size)\n").unwrap();
    let at = read_until(&mut ch, &mut acc, at + 5, "SIZE=");
    assert_eq!(line_at(&mut ch, &mut acc, at), "SIZE=40 120");
    ch.write_all(b"exit 7\n").unwrap();
    let mut rest = Vec::new();
    ch.read_to_end(&mut rest).unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(7)));
}

/// OpenSSH (since 7.9) delivers "signal" requests to the session's process group
/// (session.c `session_signal_req`, `killpg`); Dropbear 2022.83 `kill`s the session's child.
/// Both honour them with and without a pty (observed: exit-signal TERM in all four cases).
fn signal_term(srv: &Server, command: &str, pty: bool) {
    let _log = ShowLog(srv);
    let mut cfg = config(srv);
    cfg.io_timeout = Some(Duration::from_secs(20)); // far below the 100 s of the sleep
    let session = Session::connect(srv.addr(), cfg).unwrap();
    let mut ch = session.open_session().unwrap();
    if pty {
        ch.request_pty("xterm", 80, 24).unwrap();
    }
    // Signal only once the command runs: Dropbear answers exec right after fork(), and a
    // signal that reaches its child before it has exec'd the shell is lost (seen with strace:
    // kill(child, SIGTERM) before execve("/bin/sh"), then sleep ran its full 100 s).
    ch.exec(&format!("echo ready; {command}")).unwrap();
    let mut acc = Vec::new();
    read_until(&mut ch, &mut acc, 0, "ready");
    let t0 = Instant::now();
    ch.signal("TERM").unwrap();
    let st = ch.wait().unwrap();
    assert!(
        matches!(&st, Some(ExitStatus::Signal { name, core_dumped: false, .. }) if name == "TERM"),
        "{:?} (pty {pty}): {st:?}",
        srv.kind
    );
    assert_eq!(st.unwrap().shell_code(), 143);
    assert!(t0.elapsed() < Duration::from_secs(10));
}

/// CPU time used by the calling thread so far (utime + stime, in clock ticks of 10 ms).
fn thread_cpu_ms() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10
}

/// Waiting for a silent command costs no CPU: `wait` and `read` sleep until the driver has
/// news (`wait` used to ping-pong with the driver thread: 1.09 s of CPU in a 2 s wait).
#[test]
fn sshd_waiting_for_a_quiet_command_does_not_spin() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let session = connect(&srv);
    let c0 = thread_cpu_ms();
    let ch = session.exec("sleep 1").unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    let mut ch = session.exec("sleep 1; echo done").unwrap();
    let mut out = String::new();
    ch.read_to_string(&mut out).unwrap();
    assert_eq!(out, "done\n");
    let used = thread_cpu_ms() - c0;
    assert!(used < 200, "{used} ms of CPU while waiting 2 s for sleeping commands");
}

#[test]
fn sshd_signal_term_ends_sleep() {
    let srv = support::sshd(&[]);
    signal_term(&srv, "sleep 100", false);
    signal_term(&srv, "sleep 100", true);
}

#[test]
fn dropbear_signal_term_ends_sleep() {
    // Dropbear signals only its direct child (`kill(pid)`, not the process group, unlike
    // OpenSSH's killpg): TERM to the shell would leave `sleep` holding the channel open.
    // `exec` makes sleep that child.
    let srv = support::dropbear(&[]);
    signal_term(&srv, "exec sleep 100", false);
    signal_term(&srv, "exec sleep 100", true);
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
