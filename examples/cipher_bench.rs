//! Packet-layer cipher throughput per backend (RFC 4253 section 6 packets; aes128/256-gcm as in
//! RFC 5647 / OpenSSH PROTOCOL 1.6, chacha20-poly1305@openssh.com, aes-ctr with an EtM HMAC of
//! RFC 4344 / RFC 6668): seals and opens 1 GiB (or the MiB given) in 32 KiB payloads with every
//! backend compiled in, in process, and prints the CPU time this thread spent
//! (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which counts the running time slice;
//! /proc/thread-self/schedstat only moves at scheduler ticks, 4 ms here, longer than one 1 MiB
//! round, so it measured each phase in tick-sized samples; wall time if neither works).
//! Build with `--features aws-lc` to compare RustCrypto with AWS-LC.
//!
//! ```text
//! cargo run --release --features aws-lc --example cipher_bench [MIB [CIPHER...]]
//! ```
//! Naming ciphers (`aes128-gcm@openssh.com`) or backends (`RustCrypto`, `AwsLc`) after MIB runs
//! only those, to profile one at a time.
//! One line per cipher (and MAC) and backend:
//! `cipher=aes128-gcm@openssh.com backend=AwsLc seal_mib_s=... open_mib_s=... seal_cpu_s_per_gib=... open_cpu_s_per_gib=...`

use std::time::Instant;

use sshbridge::cipher::{Backend, DirectionKeys, Opened, Opener, Sealer};
use sshbridge::random::Random;
use sshbridge::{Cipher, Mac};

/// Payload bytes per packet: the size channel data goes out in.
const PAYLOAD: usize = 32 * 1024;
/// Packets sealed, then opened, per round (1 MiB: stays in cache as real traffic does).
const PER_ROUND: usize = 32;

/// Padding bytes for the benchmark: not random, which costs nothing and changes nothing here.
struct Counter(u8);

impl Random for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

/// CPU time of this thread in seconds, or wall time since `start` if the kernel does not say.
fn cpu_seconds(start: Instant) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return start.elapsed().as_secs_f64();
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn keys(cipher: Cipher, mac: Option<Mac>, round: usize) -> DirectionKeys {
    let fill = |n: usize, salt: usize| (0..n).map(|i| (i * 31 + salt + round) as u8).collect();
    let mac_key = mac.map_or_else(Vec::new, |m| fill(m.key_len(), 3));
    DirectionKeys { cipher, mac, key: fill(cipher.key_len(), 1), iv: fill(cipher.iv_len(), 2), mac_key }
}

fn run(cipher: Cipher, mac: Option<Mac>, backend: Backend, mib: usize) -> Result<(f64, f64), String> {
    let start = Instant::now();
    let rounds = mib * 1024 * 1024 / (PAYLOAD * PER_ROUND);
    let payload = vec![0x5au8; PAYLOAD];
    let mut wire = Vec::with_capacity(PER_ROUND * (PAYLOAD + 256));
    let mut rng = Counter(0);
    let (mut seal_s, mut open_s) = (0.0, 0.0);
    for round in 0..rounds {
        let k = keys(cipher, mac, round);
        let mut sealer = Sealer::with_backend(&k, backend).map_err(|e| e.to_string())?;
        let mut opener = Opener::with_backend(&k, backend).map_err(|e| e.to_string())?;
        wire.clear();
        let t0 = cpu_seconds(start);
        for seq in 0..PER_ROUND as u32 {
            sealer.seal(seq, &payload, &mut rng, &mut wire);
        }
        let t1 = cpu_seconds(start);
        let mut off = 0;
        for seq in 0..PER_ROUND as u32 {
            match opener.open(seq, wire.get_mut(off..).unwrap_or_default()) {
                Ok(Opened::Packet { consumed, payload: p }) if p.len() == PAYLOAD => off += consumed,
                r => return Err(format!("{cipher} {backend:?}: packet {seq} did not open: {r:?}")),
            }
        }
        let t2 = cpu_seconds(start);
        seal_s += t1 - t0;
        open_s += t2 - t1;
    }
    Ok((seal_s, open_s))
}

fn main() -> Result<(), String> {
    let mib: usize = std::env::args().nth(1).map_or(Ok(1024), |a| a.parse()).map_err(|e| format!("MIB: {e}"))?;
    let only: Vec<String> = std::env::args().skip(2).collect();
    // The AEADs with every backend; AES-CTR with an EtM HMAC (RustCrypto only).
    let cases = [
        (Cipher::Aes128Gcm, None, Backend::ALL),
        (Cipher::Aes256Gcm, None, Backend::ALL),
        (Cipher::Chacha20Poly1305, None, Backend::ALL),
        (Cipher::Aes128Ctr, Some(Mac::HmacSha256Etm), &[Backend::RustCrypto][..]),
        (Cipher::Aes256Ctr, Some(Mac::HmacSha512Etm), &[Backend::RustCrypto][..]),
    ];
    let backend_named = |b: &Backend| only.contains(&format!("{b:?}"));
    let cipher_named = |c: &Cipher| only.contains(&c.to_string());
    let any_backend = !Backend::ALL.iter().any(backend_named);
    let any_cipher = !cases.iter().any(|(c, _, _)| cipher_named(c));
    for (cipher, mac, backends) in cases.into_iter().filter(|(c, _, _)| any_cipher || cipher_named(c)) {
        for &backend in backends.iter().filter(|b| any_backend || backend_named(b)) {
            let (seal, open) = run(cipher, mac, backend, mib)?;
            let gib = mib as f64 / 1024.0;
            let mac = mac.map_or(String::new(), |m| format!(" mac={m}"));
            println!(
                "cipher={cipher}{mac} backend={backend:?} seal_mib_s={:.0} open_mib_s={:.0} seal_cpu_s_per_gib={:.3} open_cpu_s_per_gib={:.3}",
                mib as f64 / seal,
                mib as f64 / open,
                seal / gib,
                open / gib
            );
        }
    }
    Ok(())
}
