//! Benchmark helper for `scripts/bench.sh`: many channels on one connection (Rust API).
//!
//! ```text
//! channels -p PORT -l USER -i KEYFILE -k "HOSTKEY" HOST throughput N MIB   # N channels, MIB each
//! channels -p PORT -l USER -i KEYFILE -k "HOSTKEY" HOST idle N             # RSS per idle channel
//! channels -p PORT -l USER -i KEYFILE -k "HOSTKEY" HOST exec COMMAND       # like sshexec
//! ```
//! `throughput` runs `head -c MIB*2^20 /dev/zero` on N channels at once, one reader thread each,
//! and prints `channels=N mib_each=M seconds=S aggregate_mib_s=R`. `idle` opens N channels
//! running `cat` and prints `channels=N rss_before_kib=A rss_after_kib=B per_channel_kib=C`.
//! `exec` is the bench's "sshbridge (Rust API)" client: its stdin goes to the command (then
//! EOF), the command's stdout and stderr to its own, and it exits with the command's status
//! (input first, then output: enough for the bench's transfers, not a general ssh).

use std::io::{Read, Write};
use std::time::Instant;

use sshbridge::{Config, Credential, PrivateKey, Session};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (mut port, mut user, mut key, mut hostkey) = (22u16, String::from("root"), None, None);
    while args.first().is_some_and(|a| a.starts_with('-')) {
        let flag = args.remove(0);
        let value = if args.is_empty() { return Err(format!("{flag} needs a value").into()) } else { args.remove(0) };
        match flag.as_str() {
            "-p" => port = value.parse()?,
            "-l" => user = value,
            "-i" => key = Some(value),
            "-k" => hostkey = Some(value),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let [host, mode, rest @ ..] = args.as_slice() else {
        return Err("usage: channels [-p PORT] [-l USER] [-i KEY] [-k HOSTKEY] HOST throughput N MIB | idle N".into());
    };
    let mut cfg = Config::new(user);
    if let Some(k) = key {
        cfg.credentials.push(Credential::key(PrivateKey::from_bytes(&std::fs::read(k)?, None)?));
    }
    if let Some(h) = hostkey {
        cfg.host_keys.push(h.parse()?);
    }
    let session = Session::connect((host.as_str(), port), cfg)?;
    if mode == "exec" {
        let command = rest.first().ok_or("COMMAND missing")?;
        let code = exec(&session, command)?;
        drop(session);
        std::process::exit(code);
    }
    let n: usize = rest.first().ok_or("N missing")?.parse()?;
    match mode.as_str() {
        "throughput" => {
            let mib: u64 = rest.get(1).ok_or("MIB missing")?.parse()?;
            let t = Instant::now();
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let s = session.clone();
                    std::thread::spawn(move || -> Result<u64, sshbridge::Error> {
                        let mut ch = s.exec(&format!("head -c {} /dev/zero", mib << 20))?;
                        let mut buf = vec![0u8; 256 * 1024];
                        let mut total = 0u64;
                        loop {
                            let got = ch.read(&mut buf).map_err(|e| sshbridge::Error::bad_argument(e.to_string()))?;
                            if got == 0 {
                                break;
                            }
                            total += got as u64;
                        }
                        Ok(total)
                    })
                })
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.join().map_err(|_| "reader thread panicked")??;
            }
            let secs = t.elapsed().as_secs_f64();
            if total != (mib << 20) * n as u64 {
                return Err(format!("moved {total} bytes, expected {}", (mib << 20) * n as u64).into());
            }
            println!("channels={n} mib_each={mib} seconds={secs:.3} aggregate_mib_s={:.1}", (total >> 20) as f64 / secs);
        }
        "idle" => {
            // One warm-up channel, so allocator start-up is not charged to the others.
            let warm = session.exec("cat")?;
            let before = rss_kib();
            let chans: Vec<_> = (0..n).map(|_| session.exec("cat")).collect::<Result<_, _>>()?;
            let after = rss_kib();
            println!(
                "channels={n} rss_before_kib={before} rss_after_kib={after} per_channel_kib={:.1}",
                after.saturating_sub(before) as f64 / n as f64
            );
            drop(chans);
            drop(warm);
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

/// Run `command`: stdin to it (then EOF), its stdout/stderr to ours; its shell exit code.
fn exec(session: &Session, command: &str) -> Result<i32, Box<dyn std::error::Error>> {
    let mut ch = session.exec(command)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut stdin = std::io::stdin().lock();
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ch.write_all(buf.get(..n).unwrap_or_default())?;
    }
    ch.send_eof()?;
    let mut out = std::io::stdout().lock();
    loop {
        let n = ch.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(buf.get(..n).unwrap_or_default())?;
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    loop {
        let n = ch.read_stderr(&mut buf)?;
        if n == 0 {
            break;
        }
        err.write_all(buf.get(..n).unwrap_or_default())?;
    }
    Ok(ch.wait()?.map_or(255, |s| s.shell_code()))
}
