//! Interop matrix, data: transfers of 0 B to 64 MiB in both directions, exit codes and
//! signals, stdout/stderr separation, and rekeying (server- and client-initiated) during
//! 64 MiB transfers, against OpenSSH sshd 9.2, Dropbear 2022.83 and tinysshd 20230101.
//!
//! Uploads are checked by the server (`sha256sum` of the file written by `cat > FILE`) and
//! downloads (`cat FILE`) byte for byte against the locally generated data; small sizes also
//! go through a remote `cat` echo. Large transfers never write without reading (the blocking
//! API would fill both windows), so uploads go to a file and downloads come from it.
//!
//! tinysshd serves one channel per connection (it closes the connection when the first
//! command ends), so tests connect anew for each of its commands.
//! Any failing test prints the server log (see `ShowLog`).

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sshbridge::{Config, Credential, ExitStatus, PrivateKey, RekeyLimits, Session};
use support::{Kind, Server};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

struct ShowLog<'a>(&'a Server);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== {:?} server log (port {}) =====\n{}", self.0.kind, self.0.port, self.0.log());
        }
    }
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

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// A unique file name in the remote /tmp (the servers run on this host).
fn remote_file(tag: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!("/tmp/sshbridge-interop-{}-{tag}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

const MIB64: usize = 64 << 20;

/// Connects to one server with the right credentials; reuses the session unless the server
/// allows only one channel per connection (tinysshd).
struct Remote<'a> {
    srv: &'a Server,
    rekey: RekeyLimits,
    session: Option<Session>,
}

impl<'a> Remote<'a> {
    fn new(srv: &'a Server) -> Remote<'a> {
        Remote { srv, rekey: RekeyLimits::default(), session: None }
    }

    fn config(&self) -> Config {
        let mut cfg = Config::new(support::USER);
        cfg.host_keys = self.srv.host_keys.iter().map(|l| l.parse().unwrap()).collect();
        if self.srv.kind == Kind::TinySsh {
            let key = PrivateKey::from_bytes(&support::user_keys().bytes("ed25519.openssh"), None).unwrap();
            cfg.credentials.push(Credential::key(key));
        } else {
            cfg.credentials.push(Credential::password(support::PASSWORD));
        }
        cfg.rekey = self.rekey;
        // Generous, but no test may hang forever.
        cfg.io_timeout = Some(Duration::from_secs(60));
        cfg
    }

    fn connect(&self) -> Session {
        match Session::connect(self.srv.addr(), self.config()) {
            Ok(s) => s,
            Err(e) => panic!("connect to {:?} failed: {e} ({e:?})", self.srv.kind),
        }
    }

    /// The session to run the next command on.
    fn session(&mut self) -> &mut Session {
        if self.session.is_none() || self.srv.kind == Kind::TinySsh {
            self.session = Some(self.connect());
        }
        self.session.as_mut().unwrap()
    }

    /// Run `cmd` feeding it `input`; returns (stdout, stderr, status). Only for inputs the
    /// server's reply cannot outgrow our window with (small, or commands with little output).
    fn run(&mut self, cmd: &str, input: &[u8], chunk: usize) -> (Vec<u8>, Vec<u8>, Option<ExitStatus>) {
        let s = self.session();
        let mut ch = s.exec(cmd).unwrap_or_else(|e| panic!("exec {cmd:?}: {e:?}"));
        for piece in input.chunks(chunk.max(1)) {
            ch.write_all(piece).unwrap_or_else(|e| panic!("{cmd:?}: write: {e:?}"));
        }
        ch.output().unwrap_or_else(|e| panic!("{cmd:?}: output: {e:?}"))
    }

    /// Upload `bytes` into remote file `path`; the server's sha256sum must match ours.
    fn upload(&mut self, path: &str, bytes: &[u8], chunk: usize) {
        let cmd = format!("cat > {path} && sha256sum < {path}");
        let (out, err, st) = self.run(&cmd, bytes, chunk);
        let out = String::from_utf8_lossy(&out);
        assert_eq!(st, Some(ExitStatus::Code(0)), "upload {}: status (stderr {:?})", bytes.len(), String::from_utf8_lossy(&err));
        assert_eq!(
            out.split_whitespace().next(),
            Some(sha256_hex(bytes).as_str()),
            "upload of {} bytes: server's sha256 differs",
            bytes.len()
        );
    }

    /// Download remote file `path` (and remove it); must equal `expected` byte for byte.
    fn download(&mut self, path: &str, expected: &[u8]) {
        let cmd = format!("cat {path}; rc=$?; rm -f {path}; exit $rc");
        let s = self.session();
        let mut ch = s.exec(&cmd).unwrap_or_else(|e| panic!("exec {cmd:?}: {e:?}"));
        let mut got = Vec::with_capacity(expected.len());
        ch.read_to_end(&mut got).unwrap_or_else(|e| panic!("download {}: read: {e:?}", expected.len()));
        let mut err = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = ch.read_stderr(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            err.extend_from_slice(&buf[..n]);
        }
        let st = ch.wait().unwrap();
        assert!(err.is_empty(), "download: stderr {:?}", String::from_utf8_lossy(&err));
        assert_eq!(st, Some(ExitStatus::Code(0)), "download status");
        assert_eq!(got.len(), expected.len(), "download length");
        assert!(got == expected, "download of {} bytes differs at {:?}", expected.len(), first_difference(&got, expected));
    }
}

// ---------------------------------------------------------------------------------------
// 6. Transfers
// ---------------------------------------------------------------------------------------

const SIZES: &[usize] = &[0, 1, 32767, 32768, 32769, 200_000];

/// Every small size: echo through `cat` (both directions at once), upload, download.
fn small_transfers(srv: &Server) {
    let mut r = Remote::new(srv);
    for (i, &n) in SIZES.iter().enumerate() {
        let bytes = data(n, 100 + i as u64);
        // Echo, written in a few different chunk sizes.
        for chunk in [1 << 20, 4096, 32769] {
            let (out, err, st) = r.run("cat", &bytes, chunk);
            assert_eq!(st, Some(ExitStatus::Code(0)), "echo {n}/{chunk}");
            assert!(err.is_empty(), "echo {n}: stderr {err:?}");
            assert_eq!(out.len(), n, "echo {n}/{chunk}: length");
            assert!(out == bytes, "echo {n}/{chunk}: differs at {:?}", first_difference(&out, &bytes));
        }
        let path = remote_file(&format!("{:?}-{n}", srv.kind));
        r.upload(&path, &bytes, 65536);
        r.download(&path, &bytes);
    }
    // Many one-byte writes.
    let bytes = data(1000, 7);
    let (out, _, st) = r.run("cat", &bytes, 1);
    assert_eq!(out, bytes, "1000 one-byte writes");
    assert_eq!(st, Some(ExitStatus::Code(0)));
}

/// 64 MiB up (checked by the server's sha256sum) and back down (compared byte for byte).
fn big_transfer(r: &mut Remote<'_>, seed: u64) {
    let bytes = data(MIB64, seed);
    let path = remote_file(&format!("{:?}-64m", r.srv.kind));
    r.upload(&path, &bytes, 1 << 20);
    r.download(&path, &bytes);
}

#[test]
fn sshd_transfer_sizes() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    small_transfers(&srv);
}

#[test]
fn dropbear_transfer_sizes() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    small_transfers(&srv);
}

#[test]
fn tinysshd_transfer_sizes() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    small_transfers(&srv);
}

#[test]
fn sshd_transfer_64mib() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    big_transfer(&mut Remote::new(&srv), 1);
}

#[test]
fn dropbear_transfer_64mib() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    big_transfer(&mut Remote::new(&srv), 2);
}

#[test]
fn tinysshd_transfer_64mib() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    big_transfer(&mut Remote::new(&srv), 3);
}

/// A download the server generates itself (not a file we uploaded): `yes | head -c`.
#[test]
fn generated_download_all_servers() {
    let n = 5_000_000;
    let mut expected = Vec::with_capacity(n + 16);
    while expected.len() < n {
        expected.extend_from_slice(b"abcdefghij\n");
    }
    expected.truncate(n);
    for srv in [support::sshd(&[]), support::dropbear(&[]), support::tinysshd()] {
        let _log = ShowLog(&srv);
        let mut r = Remote::new(&srv);
        let mut ch = r.session().exec(&format!("yes abcdefghij | head -c {n}")).unwrap();
        let mut got = Vec::new();
        ch.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), n, "{:?}", srv.kind);
        assert!(got == expected, "{:?}: differs at {:?}", srv.kind, first_difference(&got, &expected));
        assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    }
}

// ---------------------------------------------------------------------------------------
// 7. Exit codes, signals, stderr
// ---------------------------------------------------------------------------------------

fn exit_statuses(srv: &Server) {
    let mut r = Remote::new(srv);
    for code in [0u32, 1, 44, 255] {
        let (out, err, st) = r.run(&format!("echo before-exit; exit {code}"), b"", 1);
        assert_eq!(out, b"before-exit\n", "exit {code}");
        assert!(err.is_empty());
        let st = st.unwrap_or_else(|| panic!("exit {code}: no exit status"));
        assert_eq!(st, ExitStatus::Code(code));
        assert_eq!(st.shell_code(), code as i32);
    }
    // wait() without reading: the status still arrives.
    let ch = r.session().exec("echo discarded; exit 7").unwrap();
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(7)));
    // The user's shell (no pty) reading commands from stdin.
    let mut ch = r.session().shell().unwrap();
    ch.write_all(b"echo from-shell; echo shell-err >&2; exit 9\n").unwrap();
    let (out, err, st) = ch.output().unwrap();
    assert_eq!(out, b"from-shell\n", "shell stdout");
    assert_eq!(err, b"shell-err\n", "shell stderr");
    assert_eq!(st, Some(ExitStatus::Code(9)), "shell exit");
    // A signal.
    let (_, _, st) = r.run("kill -TERM $$", b"", 1);
    match st {
        Some(ref s @ ExitStatus::Signal { ref name, core_dumped, .. }) => {
            assert_eq!(name, "TERM");
            assert!(!core_dumped);
            assert_eq!(s.shell_code(), 143);
        }
        other => panic!("kill -TERM: expected a TERM exit-signal, got {other:?}"),
    }
}

#[test]
fn sshd_exit_statuses() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    exit_statuses(&srv);
}

#[test]
fn dropbear_exit_statuses() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    exit_statuses(&srv);
}

#[test]
fn tinysshd_exit_statuses() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    exit_statuses(&srv);
}

/// When the server's per-connection process dies mid-command, reading and waiting end
/// promptly with ConnectionClosed instead of hanging.
#[test]
fn sshd_connection_lost_mid_command() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let mut r = Remote::new(&srv);
    let s = r.session();
    // $PPID is the unprivileged sshd session process that owns the connection.
    let t = std::time::Instant::now();
    let ch = s.exec("kill -9 $PPID; sleep 30").unwrap();
    match ch.output() {
        Err(sshbridge::Error::ConnectionClosed(_)) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}

/// Interleaved writes to stdout and stderr: each stream arrives complete and unmixed.
fn stderr_apart(srv: &Server) {
    let mut r = Remote::new(srv);
    let n = 2000;
    let cmd = format!("i=0; while [ $i -lt {n} ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done; exit 5");
    let (out, err, st) = r.run(&cmd, b"", 1);
    let want_out: String = (0..n).map(|i| format!("out {i}\n")).collect();
    let want_err: String = (0..n).map(|i| format!("err {i}\n")).collect();
    assert_eq!(st, Some(ExitStatus::Code(5)));
    assert!(out == want_out.as_bytes(), "stdout differs at {:?}", first_difference(&out, want_out.as_bytes()));
    assert!(err == want_err.as_bytes(), "stderr differs at {:?}", first_difference(&err, want_err.as_bytes()));

    // Bulk on both streams at once, each larger than our 2 MiB window; read stdout with
    // Read (stderr is stashed meanwhile), then stderr.
    let size = 3_000_000;
    let cmd = format!("yes stderr-line | head -c {size} >&2 & yes stdout-line-x | head -c {size}; wait");
    let s = r.session();
    let mut ch = s.exec(&cmd).unwrap();
    let mut out = Vec::new();
    ch.read_to_end(&mut out).unwrap();
    let mut err = Vec::new();
    let mut buf = vec![0u8; 100_000];
    loop {
        let k = ch.read_stderr(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        err.extend_from_slice(&buf[..k]);
    }
    let st = ch.wait().unwrap();
    let pattern = |line: &[u8]| -> Vec<u8> { line.iter().copied().cycle().take(size).collect() };
    let (wo, we) = (pattern(b"stdout-line-x\n"), pattern(b"stderr-line\n"));
    assert_eq!(out.len(), size, "bulk stdout length");
    assert_eq!(err.len(), size, "bulk stderr length");
    assert!(out == wo, "bulk stdout differs at {:?}", first_difference(&out, &wo));
    assert!(err == we, "bulk stderr differs at {:?}", first_difference(&err, &we));
    assert_eq!(st, Some(ExitStatus::Code(0)));

    // stderr only, read with read_stderr while stdout stays empty.
    let mut r2 = Remote::new(srv);
    let s = r2.session();
    let mut ch = s.exec("echo only-err >&2; exit 2").unwrap();
    let mut buf = [0u8; 64];
    let k = ch.read_stderr(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"only-err\n");
    let mut out = Vec::new();
    ch.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(2)));
}

#[test]
fn sshd_stderr_apart() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    stderr_apart(&srv);
}

#[test]
fn dropbear_stderr_apart() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    stderr_apart(&srv);
}

#[test]
fn tinysshd_stderr_apart() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    stderr_apart(&srv);
}

// ---------------------------------------------------------------------------------------
// 8. Rekeying
// ---------------------------------------------------------------------------------------

/// Server-initiated: sshd rekeys every 1 MiB during 64 MiB each way.
fn sshd_rekey_case(cipher: &str, mac: Option<&str>) {
    let mut extra = vec!["RekeyLimit 1M".to_string(), format!("Ciphers {cipher}")];
    if let Some(m) = mac {
        extra.push(format!("MACs {m}"));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let srv = support::sshd(&extra);
    let _log = ShowLog(&srv);
    let mut r = Remote::new(&srv);
    big_transfer(&mut r, 11);
    let info = r.session.as_ref().unwrap().info().unwrap();
    assert_eq!(info.negotiated.cipher_c2s.name(), cipher);
    // 128 MiB moved with a 1 MiB limit: dozens of key exchanges.
    assert!(info.kex_count > 32, "only {} key exchanges", info.kex_count);
    // The session is still usable afterwards.
    let (out, _, st) = r.run("echo still-here", b"", 1);
    assert_eq!(out, b"still-here\n");
    assert_eq!(st, Some(ExitStatus::Code(0)));
}

#[test]
fn sshd_server_rekey_chacha20() {
    sshd_rekey_case("chacha20-poly1305@openssh.com", None);
}

#[test]
fn sshd_server_rekey_aes128_ctr_hmac() {
    sshd_rekey_case("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com"));
}

/// Client-initiated: our RekeyLimits of 1 MiB during 16 MiB each way.
fn client_rekey_case(srv: &Server) {
    let mut r = Remote::new(srv);
    r.rekey = RekeyLimits { bytes: 1 << 20, ..Default::default() };
    let bytes = data(16 << 20, 21);
    let path = remote_file(&format!("{:?}-rekey", srv.kind));
    if srv.kind == Kind::TinySsh {
        // One channel per connection: check each direction on its own connection.
        r.upload(&path, &bytes, 1 << 20);
        let up = r.session.as_ref().unwrap().info().unwrap().kex_count;
        r.download(&path, &bytes);
        let down = r.session.as_ref().unwrap().info().unwrap().kex_count;
        assert!(up > 8 && down > 8, "key exchanges: upload {up}, download {down}");
        return;
    }
    r.upload(&path, &bytes, 1 << 20);
    r.download(&path, &bytes);
    let kex = r.session.as_ref().unwrap().info().unwrap().kex_count;
    // 32 MiB with a 1 MiB limit. The peer keeps sending until it sees our KEXINIT, so up to
    // a window more than the limit may pass between key exchanges; demand at least 9.
    assert!(kex > 8, "32 MiB with a 1 MiB rekey limit gave only {kex} key exchanges");
    let (out, _, _) = r.run("echo after-rekeys", b"", 1);
    assert_eq!(out, b"after-rekeys\n");
}

#[test]
fn sshd_client_rekey() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    client_rekey_case(&srv);
}

#[test]
fn dropbear_client_rekey() {
    let srv = support::dropbear(&[]);
    let _log = ShowLog(&srv);
    client_rekey_case(&srv);
}

#[test]
fn tinysshd_client_rekey() {
    let srv = support::tinysshd();
    let _log = ShowLog(&srv);
    client_rekey_case(&srv);
}

/// Our outbound byte limit must hold within a packet or two: an 8 MiB upload with a 1 MiB
/// limit needs at least 7 key exchanges. Downloads may overshoot by the data in flight (the
/// server sends until it reads our KEXINIT), uploads need not.
#[test]
fn sshd_client_rekey_upload_respects_byte_limit() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let mut r = Remote::new(&srv);
    r.rekey = RekeyLimits { bytes: 1 << 20, ..Default::default() };
    let bytes = data(8 << 20, 22);
    let path = remote_file("rekey-limit");
    r.upload(&path, &bytes, 1 << 20);
    let _ = r.run(&format!("rm -f {path}"), b"", 1);
    let kex = r.session.as_ref().unwrap().info().unwrap().kex_count;
    // sshd logs how much it had received under the old keys at each rekey.
    let inputs: Vec<u64> = srv
        .log()
        .lines()
        .filter(|l| l.contains("rekeying in, input"))
        .filter_map(|l| l.split("input ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    eprintln!("kex_count {kex}; sshd's input byte counters at each rekey: {inputs:?}");
    assert!(kex >= 8, "8 MiB upload with a 1 MiB limit gave only {kex} key exchanges (initial included)");
}

/// Reading stderr first while the command writes more than a window (2 MiB) of stdout: the
/// Channel keeps up to 2 MiB of the unread stream in memory besides the 2 MiB window, so 3 MB
/// of stdout do not stall the stderr line behind them. Past that bound the unread stream
/// blocks the command, like a pipe: memory stays bounded and the read ends at io_timeout.
#[test]
fn sshd_read_stderr_first_with_bulk_stdout() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let mut r = Remote::new(&srv);
    let mut cfg = r.config();
    cfg.io_timeout = Some(Duration::from_secs(3));
    r.session = Some(Session::connect(srv.addr(), cfg).unwrap());
    let s = r.session.as_mut().unwrap();
    let mut ch = s.exec("head -c 3000000 /dev/zero; echo done >&2").unwrap();
    let mut buf = [0u8; 64];
    let n = ch.read_stderr(&mut buf).unwrap_or_else(|e| panic!("read_stderr with 3 MB of stdout pending: {e:?}"));
    assert_eq!(&buf[..n], b"done\n");
    let mut out = Vec::new();
    ch.read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 3_000_000);
    assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
    drop(r);
    // 20 MB of unread stdout: bounded memory, so the stderr read times out instead.
    let mut r = Remote::new(&srv);
    let mut cfg = r.config();
    cfg.io_timeout = Some(Duration::from_secs(3));
    r.session = Some(Session::connect(srv.addr(), cfg).unwrap());
    let s = r.session.as_mut().unwrap();
    let mut ch = s.exec("head -c 20000000 /dev/zero; echo done >&2").unwrap();
    let e = ch.read_stderr(&mut buf).unwrap_err();
    assert!(matches!(e, sshbridge::Error::Timeout(_)), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// Buffers after a bulk transfer (issue 16: RSS of idle sessions)
// ---------------------------------------------------------------------------------------

/// A connection that moved 32 MiB each way grows its network buffers, and gives them back
/// once it has been quiet for a second: `SessionInfo::buffer_bytes` falls to a few KiB again.
#[test]
fn sshd_buffers_shrink_when_the_connection_goes_idle() {
    let srv = support::sshd(&[]);
    let _log = ShowLog(&srv);
    let mut r = Remote::new(&srv);
    let s = r.session().clone();
    let idle_before = s.info().unwrap().buffer_bytes;
    let size = 32 << 20;
    let mut ch = s.exec(&format!("head -c {size} /dev/zero")).unwrap();
    let mut got = Vec::new();
    ch.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), size);
    let after_download = s.info().unwrap().buffer_bytes;
    let mut up = s.exec("cat > /dev/null").unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..32 {
        up.write_all(&chunk).unwrap();
    }
    let after_upload = s.info().unwrap().buffer_bytes;
    up.send_eof().unwrap();
    assert_eq!(up.wait().unwrap(), Some(ExitStatus::Code(0)));
    // Trimmed 1 s after the last traffic; a loaded machine may take longer to get there.
    let t0 = std::time::Instant::now();
    let mut idle_after = s.info().unwrap().buffer_bytes;
    while idle_after > 40 * 1024 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        idle_after = s.info().unwrap().buffer_bytes;
    }
    let idle_wait = t0.elapsed();
    eprintln!(
        "buffer_bytes: idle {idle_before}, after 32 MiB down {after_download}, during 32 MiB up {after_upload}, \
         idle {idle_after} after {idle_wait:?} more"
    );
    assert!(idle_wait >= Duration::from_millis(500), "trimmed after {idle_wait:?}: while the connection was busy?");
    assert!(idle_before <= 32 * 1024, "a fresh idle session holds {idle_before} bytes of buffer");
    assert!(after_download.max(after_upload) >= 96 * 1024, "bulk transfers did not grow the buffers");
    assert!(idle_after <= 40 * 1024, "still {idle_after} bytes of buffer 10 s after the transfers");
    // And the connection still works at full speed afterwards.
    let mut ch = s.exec("head -c 1000000 /dev/zero").unwrap();
    let mut got = Vec::new();
    ch.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 1_000_000);
}
