//! Interop matrix, server role (issue 11): real SSH clients against the example server
//! `examples/serve` (`--listen --host-key --authorized-keys [--password-file] [--sftp-server]`).
//!
//! Clients: OpenSSH `ssh` 9.2 and 10.0, Dropbear's `dbclient`, PuTTY's `plink`, libssh2 and
//! libssh (small C programs in `tests/clients/`, compiled here with `cc`), paramiko and asyncssh
//! (Python scripts in `tests/clients/`, run in the venv of `scripts/install-deps.sh`), and as
//! tools `git clone`/`git push`, `scp -O` and `sftp` over OpenSSH 9.2. No mocks: every client is
//! the real program or library.
//!
//! Cases per client, where the client can do them: exec with exit codes 0, 1, 255 and a signal
//! (what each client reports for a signal is pinned in [`signal_report`]), stderr apart from
//! stdout, 64 MiB through stdin -> `cat` -> stdout byte-exact (SHA-256), publickey with ed25519,
//! ECDSA P-256, RSA forced to rsa-sha2-256 and to rsa-sha2-512, password, a key and a password
//! that must be refused, strict kex seen in the client's debug output, a pty (`tty` prints
//! /dev/pts/N) and a shell (no command; `echo hi; exit 3` on stdin), and logins to servers with
//! an ECDSA and an RSA host key.
//!
//! Which server: `SSHBRIDGE_SERVE=/path/to/program` (anything that follows serve's CLI); by
//! default [`DEFAULT_SERVER`]. Until serve exists that is `tests/clients/sshd-serve-shim.sh`,
//! which runs OpenSSH's sshd with the same CLI (it checks passwords against the system's
//! accounts, so the matrix logs in as the `sshbtest` account whose password is in the
//! password file; commands then run as that account).
//!
//! One server process per host key type serves all cases; cases run on `SSHBRIDGE_MATRIX_JOBS`
//! (default 4) worker threads, longest first. `SSHBRIDGE_MATRIX_ONLY=ssh-9.2,plink` limits the
//! rows. Every case names its client and case when it fails; the whole matrix is printed as a
//! table (ok / skip / FAIL, skip reasons and timings below it) before the test passes or fails.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::{Server, PASSWORD, USER};

#[path = "interop_server/clients.rs"]
mod clients;
#[path = "interop_server/tools.rs"]
mod tools;

use clients::Key;

// ---------------------------------------------------------------------------------------
// Which server
// ---------------------------------------------------------------------------------------

/// What runs when `SSHBRIDGE_SERVE` is not set.
#[allow(dead_code)] // one of the two is unused at any time
#[derive(Clone, Copy, PartialEq, Eq)]
enum DefaultServer {
    /// `target/release/examples/serve` if it has been built, otherwise the sshd shim.
    ServeIfBuilt,
    /// Our serve, built with `cargo build --release --features server --example serve` when missing.
    Serve,
}

/// The one line to change when `examples/serve.rs` lands: `DefaultServer::Serve`.
const DEFAULT_SERVER: DefaultServer = DefaultServer::Serve;

const SHIM: &str = "tests/clients/sshd-serve-shim.sh";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Size of the stdin -> cat -> stdout case (and of the scp/sftp files).
const BIG: u64 = 64 << 20;
/// Per-case time limits (the client's process group is killed after them).
const CASE_TIMEOUT: Duration = Duration::from_secs(40);
const BIG_TIMEOUT: Duration = Duration::from_secs(180);

/// Like `eprintln!`, but past the test harness's output capture (straight to fd 2), so the
/// banner, the progress and the table show in a passing run too.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use say;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target"))
}

/// The program to run as the server, a description, and whether it is the sshd shim.
fn pick_server() -> (PathBuf, String, bool) {
    let shim = manifest().join(SHIM);
    if let Some(p) = std::env::var_os("SSHBRIDGE_SERVE") {
        let p = PathBuf::from(p);
        let is_shim = p.file_name() == shim.file_name();
        let desc = format!("{} (from SSHBRIDGE_SERVE)", p.display());
        return (p, desc, is_shim);
    }
    let serve = target_dir().join("release/examples/serve");
    let source = manifest().join("examples/serve.rs");
    match DEFAULT_SERVER {
        DefaultServer::Serve => {
            // Guarded: only a serve that exists in the source tree is built. cargo makes this a
            // no-op when the binary is up to date (release has its own build lock, so this is
            // safe inside `cargo test`).
            assert!(
                source.exists(),
                "DEFAULT_SERVER is Serve but {} does not exist",
                source.display()
            );
            say!("interop_server: cargo build --release --features server --example serve");
            let st = Command::new(env!("CARGO"))
                .args(["build", "--release", "--features", "server", "--example", "serve"])
                .current_dir(manifest())
                .status()
                .expect("cannot run cargo");
            assert!(st.success(), "cargo build --release --features server --example serve failed");
            (
                serve.clone(),
                format!("our serve: {}", serve.display()),
                false,
            )
        }
        DefaultServer::ServeIfBuilt if serve.exists() => (
            serve.clone(),
            format!(
                "our serve: {} (as built; not rebuilt by this test)",
                serve.display()
            ),
            false,
        ),
        DefaultServer::ServeIfBuilt => (
            shim.clone(),
            format!("THE SSHD SHIM {} (our serve is not built)", shim.display()),
            true,
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Context: keys, servers, inputs
// ---------------------------------------------------------------------------------------

/// One running server under test.
pub struct Srv {
    pub server: Server,
    /// `"type base64"` of its host key.
    pub host_line: String,
    /// `SHA256:...` of its host key.
    pub fingerprint: String,
    /// OpenSSH known_hosts file trusting it.
    pub known_hosts: PathBuf,
}

pub struct Ctx {
    /// Everything of this run (keys, inputs, client homes, remote files); removed at the end.
    pub dir: PathBuf,
    pub shim: bool,
    /// Host key ed25519 (all cases), ecdsa, rsa (host key cases).
    pub srv: Vec<Srv>,
    /// The C clients, compiled into `dir`.
    pub libssh2: PathBuf,
    pub libssh: PathBuf,
    pub python: PathBuf,
    /// 64 MiB of pseudo-random bytes and their SHA-256 (hex).
    pub big: PathBuf,
    pub big_sha: String,
    /// A directory the remote commands may write (owned by the account they run as).
    pub remote: PathBuf,
    seq: Mutex<u64>,
}

impl Ctx {
    /// A fresh path in `dir` for a per-case file.
    pub fn scratch(&self, what: &str) -> PathBuf {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *s += 1;
        self.dir.join(format!("{what}-{s}"))
    }

    /// The private key file of `k` (OpenSSH format), or its `.db` / `.ppk` twin.
    pub fn key(&self, k: Key, ext: &str) -> PathBuf {
        self.dir.join(format!("id_{}{ext}", k.file()))
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.srv.clear(); // servers first: they may still use files in dir
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Run a setup command; panic with its output if it fails.
pub fn must(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{desc}: {e}"));
    assert!(
        out.status.success(),
        "{desc} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(path: &Path, ty: &str, bits: Option<&str>) {
    let mut c = Command::new(support::SSH_KEYGEN);
    c.args(["-q", "-N", "", "-C", "interop-server", "-t", ty]);
    if let Some(b) = bits {
        c.args(["-b", b]);
    }
    must(c.arg("-f").arg(path));
}

fn pub_line(key: &Path) -> String {
    let text = fs::read_to_string(key.with_extension("pub"))
        .unwrap_or_else(|e| panic!("{}.pub: {e}", key.display()));
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn setup() -> Ctx {
    support::ensure_env();
    clients::ensure_clients();
    let (program, desc, shim) = pick_server();
    say!("\n################################################################");
    say!("## interop_server: the server under test is {desc}");
    if shim {
        say!(
            "## (sshd checks passwords against the sshbtest account: password cases run for real)"
        );
    }
    say!("################################################################\n");

    let dir = support::fresh_dir("matrix");
    // Client keys: the authorised three and a stranger; Dropbear and PuTTY twins.
    for k in Key::FILES {
        let p = dir.join(format!("id_{}", k.file()));
        match k {
            Key::Ecdsa => keygen(&p, "ecdsa", Some("256")),
            Key::Rsa256 => keygen(&p, "rsa", Some("2048")),
            _ => keygen(&p, "ed25519", None),
        }
        // dropbearconvert (2022.83) reads RSA from PEM, the others from OpenSSH's format.
        let src = if k == Key::Rsa256 {
            let pem = p.with_extension("pem");
            fs::copy(&p, &pem).unwrap();
            must(
                Command::new(support::SSH_KEYGEN)
                    .args(["-q", "-p", "-P", "", "-N", "", "-m", "PEM", "-f"])
                    .arg(&pem),
            );
            pem
        } else {
            p.clone()
        };
        must(
            Command::new(support::DROPBEARCONVERT)
                .args(["openssh", "dropbear"])
                .arg(&src)
                .arg(p.with_extension("db")),
        );
        must(
            Command::new(clients::PUTTYGEN)
                .arg(&p)
                .args(["-O", "private", "-o"])
                .arg(p.with_extension("ppk")),
        );
    }
    let ak = dir.join("authorized_keys");
    let lines: Vec<String> = [Key::Ed25519, Key::Ecdsa, Key::Rsa256]
        .iter()
        .map(|k| pub_line(&dir.join(format!("id_{}", k.file()))) + " matrix\n")
        .collect();
    fs::write(&ak, lines.concat()).unwrap();
    let pw = dir.join("passwords");
    fs::write(&pw, format!("{USER}:{PASSWORD}\n")).unwrap();
    for f in [&ak, &pw] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
    }

    // The servers: one per host key type, each in its own dir (killed and removed on drop).
    let mut srv = Vec::new();
    for (ty, bits) in [
        ("ed25519", None),
        ("ecdsa", Some("256")),
        ("rsa", Some("3072")),
    ] {
        let sdir = support::fresh_dir(&format!("serve-{ty}"));
        let hk = sdir.join(format!("host_{ty}"));
        keygen(&hk, ty, bits);
        let host_line = pub_line(&hk);
        let fp = must(
            Command::new(support::SSH_KEYGEN)
                .arg("-lf")
                .arg(hk.with_extension("pub")),
        );
        let fingerprint = fp.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let (program, ak, pw) = (program.clone(), ak.clone(), pw.clone());
        let server = support::external_server(sdir, vec![host_line.clone()], move |port| {
            let mut c = Command::new(&program);
            c.arg("--listen").arg(format!("127.0.0.1:{port}"));
            c.arg("--host-key")
                .arg(&hk)
                .arg("--authorized-keys")
                .arg(&ak);
            c.arg("--password-file")
                .arg(&pw)
                .arg("--sftp-server")
                .arg(SFTP_SERVER);
            c
        });
        let known_hosts = server.write_known_hosts();
        srv.push(Srv {
            server,
            host_line,
            fingerprint,
            known_hosts,
        });
    }

    // Inputs and client homes.
    let big = dir.join("big.bin");
    let data = pseudo_random(BIG as usize);
    let big_sha = sha256_hex(&data);
    fs::write(&big, &data).unwrap();
    drop(data);
    let remote = dir.join("remote");
    fs::create_dir(&remote).unwrap();
    fs::set_permissions(&remote, fs::Permissions::from_mode(0o755)).unwrap();

    let ctx = Ctx {
        libssh2: dir.join("libssh2_client"),
        libssh: dir.join("libssh_client"),
        python: PathBuf::from(clients::VENV_PYTHON),
        dir,
        shim,
        srv,
        big,
        big_sha,
        remote,
        seq: Mutex::new(0),
    };
    clients::prepare(&ctx);
    tools::prepare(&ctx);
    ctx
}

/// `n` bytes of xorshift64* output (incompressible, reproducible).
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Make `path` (recursively) belong to the account remote commands run as: `sshbtest` under
/// the shim (sshd runs them as the logged-in account), the current user under serve.
pub fn give_to_remote(ctx: &Ctx, path: &Path) {
    if ctx.shim {
        must(
            Command::new("chown")
                .args(["-R", &format!("{USER}:")])
                .arg(path),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Running a client
// ---------------------------------------------------------------------------------------

pub enum Input {
    Null,
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// What a client process did.
pub struct Run {
    /// Exit code (None: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// The first MiB of stdout, its full length and SHA-256.
    pub out: Vec<u8>,
    pub out_len: u64,
    pub out_sha: String,
    pub err: String,
    pub timed_out: bool,
    pub took: Duration,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// A short account of the run for failure messages.
    pub fn describe(&self) -> String {
        let clip = |s: &str| {
            let s = s.trim_end();
            if s.len() > 1500 {
                let cut = (0..=1500)
                    .rev()
                    .find(|&i| s.is_char_boundary(i))
                    .unwrap_or(0);
                format!("{}...[{} bytes]", &s[..cut], s.len())
            } else {
                s.to_owned()
            }
        };
        format!(
            "exit {:?}{} after {:.1?}; stdout {} bytes: {:?}; stderr: {}",
            self.code,
            if self.timed_out {
                " (TIMED OUT, killed)"
            } else {
                ""
            },
            self.took,
            self.out_len,
            clip(&self.stdout()),
            clip(&self.err)
        )
    }
}

/// A command whose program runs in a session of its own (`setsid`): no controlling terminal,
/// so no client can prompt, and its process group can be killed as a whole.
pub fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("/usr/bin/setsid");
    c.arg(program);
    c
}

/// Run a client with `input` on stdin; kill its process group after `timeout`.
pub fn run(mut c: Command, input: Input, timeout: Duration) -> Run {
    let t0 = Instant::now();
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    match &input {
        Input::Null => c.stdin(Stdio::null()),
        Input::Bytes(_) => c.stdin(Stdio::piped()),
        Input::File(p) => {
            c.stdin(fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        }
    };
    let desc = format!("{c:?}");
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    if let Input::Bytes(b) = input {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&b);
        });
    }
    let (tx, rx) = mpsc::channel();
    let mut so = child.stdout.take().unwrap();
    let tx1 = tx.clone();
    std::thread::spawn(move || {
        let (mut h, mut keep, mut len, mut buf) =
            (Sha256::new(), Vec::new(), 0u64, vec![0u8; 1 << 16]);
        while let Ok(n) = so.read(&mut buf) {
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            len += n as u64;
            if keep.len() < 1 << 20 {
                keep.extend_from_slice(&buf[..n.min((1 << 20) - keep.len())]);
            }
        }
        let _ = tx1.send((0, keep, len, hex(&h.finalize())));
    });
    let mut se = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        let _ = tx.send((1, v, 0, String::new()));
    });
    let mut timed_out = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if t0.elapsed() > timeout {
            // Not reaped yet, so the pid is still the (setsid) group leader's.
            support::kill9(&[format!("-{}", child.id())]);
            timed_out = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut r = Run {
        code: status.and_then(|s| s.code()),
        out: Vec::new(),
        out_len: 0,
        out_sha: String::new(),
        err: String::new(),
        timed_out,
        took: Duration::ZERO,
    };
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((0, keep, len, sha)) => (r.out, r.out_len, r.out_sha) = (keep, len, sha),
            Ok((_, v, _, _)) => r.err = String::from_utf8_lossy(&v).into_owned(),
            Err(_) => r
                .err
                .push_str("\n[matrix: an output pipe stayed open after the client exited]"),
        }
    }
    r.took = t0.elapsed();
    r
}

// ---------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------

pub enum Outcome {
    Ok(String),
    Skip(String),
    Fail(String),
}

/// One cell: the row (client or tool) and column (case) name, and how to fill it.
pub struct Job<'a> {
    pub row: String,
    pub col: &'static str,
    /// Longer jobs start first.
    pub heavy: bool,
    pub run: Box<dyn FnOnce(&Ctx) -> Outcome + Send + 'a>,
}

/// The outcome as the table shows it, plus timing.
struct Cell {
    outcome: Outcome,
    took: Duration,
}

#[test]
fn real_clients_against_serve() {
    let t0 = Instant::now();
    let ctx = setup();
    let setup_took = t0.elapsed();
    // One plain login first: a server that does not work at all fails here, once, with its
    // log, instead of in every cell after a time limit each.
    if let Err(why) = clients::smoke(&ctx) {
        for srv in &ctx.srv {
            eprintln!(
                "===== server log (port {}) =====\n{}",
                srv.server.port,
                srv.server.log()
            );
        }
        panic!("the server under test does not serve a plain `ssh ... true`: {why}");
    }
    let only: Option<Vec<String>> = std::env::var("SSHBRIDGE_MATRIX_ONLY")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let keep = |j: &Job| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|o| j.row.starts_with(o.as_str())))
    };
    let client_jobs: Vec<Job> = clients::jobs().into_iter().filter(keep).collect();
    let tool_jobs: Vec<Job> = tools::jobs().into_iter().filter(keep).collect();
    let shape = |jobs: &[Job]| -> (Vec<String>, Vec<&'static str>) {
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for j in jobs {
            if !rows.contains(&j.row) {
                rows.push(j.row.clone());
            }
            if !cols.contains(&j.col) {
                cols.push(j.col);
            }
        }
        (rows, cols)
    };
    let tables = [shape(&client_jobs), shape(&tool_jobs)];
    let mut jobs = client_jobs;
    jobs.extend(tool_jobs);
    jobs.sort_by_key(|j| !j.heavy); // heavy first; stable otherwise
    jobs.reverse(); // pop() from the end
    let queue = Mutex::new(jobs);
    let cells: Mutex<BTreeMap<(String, &'static str), Cell>> = Mutex::new(BTreeMap::new());
    let workers: usize = std::env::var("SSHBRIDGE_MATRIX_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    break;
                };
                let t = Instant::now();
                let (row, col) = (job.row.clone(), job.col);
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(&ctx)))
                        .unwrap_or_else(|p| {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            Outcome::Fail(format!("panicked: {msg}"))
                        });
                let took = t.elapsed();
                let tag = match &outcome {
                    Outcome::Ok(_) => "ok",
                    Outcome::Skip(_) => "skip",
                    Outcome::Fail(_) => "FAIL",
                };
                say!(
                    "[{:>6.1}s] {row} / {col}: {tag} ({took:.1?})",
                    t0.elapsed().as_secs_f64()
                );
                cells
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((row, col), Cell { outcome, took });
            });
        }
    });
    let cells = cells.into_inner().unwrap_or_else(|e| e.into_inner());
    let server = if ctx.shim {
        "the sshd shim (tests/clients/sshd-serve-shim.sh)"
    } else {
        "examples/serve"
    };
    let mut report = format!("\n### Client matrix against {server}\n");
    for (rows, cols) in &tables {
        if !rows.is_empty() {
            report.push_str(&table(rows, cols, &cells));
        }
    }
    let _ = writeln!(
        report,
        "\nSetup {setup_took:.1?}, whole test {:.1?} (wall, {workers} workers)",
        t0.elapsed()
    );
    // Also kept as a file next to the build, for pasting into the issue.
    let saved = target_dir().join("interop_server-matrix.md");
    let _ = fs::write(&saved, &report);
    say!("{report}(saved in {})\n", saved.display());
    let failures: Vec<String> = cells
        .iter()
        .filter_map(|((r, c), cell)| match &cell.outcome {
            Outcome::Fail(why) => Some(format!("{r} / {c}: {why}")),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        for srv in &ctx.srv {
            eprintln!(
                "===== server log (port {}) =====\n{}",
                srv.server.port,
                srv.server.log()
            );
        }
        panic!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            cells.len(),
            failures.join("\n\n")
        );
    }
}

/// The markdown table (client x case), then skip reasons, notes and timings.
fn table(
    rows: &[String],
    cols: &[&'static str],
    cells: &BTreeMap<(String, &'static str), Cell>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n| client | {} |", cols.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(cols.len()));
    let mut notes = String::new();
    let mut times = String::new();
    for r in rows {
        let _ = write!(s, "| {r} |");
        let mut row_time = Duration::ZERO;
        for c in cols {
            let cell = match cells.get(&(r.clone(), *c)) {
                None => " |".to_owned(),
                Some(cell) => {
                    row_time += cell.took;
                    match &cell.outcome {
                        Outcome::Ok(n) if n.is_empty() => " ok |".to_owned(),
                        Outcome::Ok(n) => {
                            let _ = writeln!(notes, "- {r} / {c}: ok, {n}");
                            " ok* |".to_owned()
                        }
                        Outcome::Skip(why) => {
                            let _ = writeln!(notes, "- {r} / {c}: skipped: {why}");
                            " skip |".to_owned()
                        }
                        Outcome::Fail(_) => " **FAIL** |".to_owned(),
                    }
                }
            };
            s.push_str(&cell);
        }
        s.push('\n');
        let big = cells
            .get(&(r.clone(), "64MiB"))
            .map(|c| format!(", 64MiB case {:.1?}", c.took))
            .unwrap_or_default();
        let _ = writeln!(times, "- {r}: {row_time:.1?} summed over its cases{big}");
    }
    if !notes.is_empty() {
        let _ = write!(s, "\nNotes (ok*, skip):\n{notes}");
    }
    let _ = write!(s, "\nTimings:\n{times}");
    s
}
