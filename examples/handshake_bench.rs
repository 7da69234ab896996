//! Handshake CPU per key exchange and host key algorithm: our client against our server in
//! memory (the sans-IO cores, no sockets), each connection from the version exchange through
//! the key exchange (RFC 4253 sections 7-8 and the hybrids), host key signature and
//! publickey user authentication (ssh-ed25519, RFC 4252 section 7) to `Connected`. Prints the
//! CPU time of this thread per connection, both sides together, over SECONDS (default 1) of it
//! per case (from /proc/thread-self/schedstat; wall time where that is missing). For comparing
//! builds (e.g. opt-levels, issue 16), not peers.
//!
//! ```text
//! cargo run --release --features server --example handshake_bench [SECONDS]
//! ```
//! One line per case: `kex=... host_key=... connections=... ms_per_connection=...`

use std::sync::Arc;
use std::time::Instant;

use sshbridge::client::{Client, ClientConfig, Phase};
use sshbridge::random::Random;
use sshbridge::server::{Event, Question, Server, ServerConfig};
use sshbridge::transport::HostKeyCheck;
use sshbridge::{Credential, Kex, KeyKind, Preferences, PrivateKey, SigAlg};

/// xorshift: deterministic and cheap, so the figures are the protocol's and not the RNG's.
struct Rng(u64);

impl Random for Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}

/// CPU time of this thread in seconds, or wall time since `start` if the kernel does not say.
fn cpu_seconds(start: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| start.elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

/// One connection to `Connected`; every publickey question answered yes.
fn connect(prefs: &Preferences, host_keys: &[Arc<PrivateKey>], user: &Arc<PrivateKey>, seed: u64) -> Result<(), String> {
    let now = Instant::now();
    let mut cc = ClientConfig::new("bench");
    cc.credentials = vec![Credential::Key(user.clone())];
    cc.host_key_check = HostKeyCheck::default();
    cc.keepalive_interval = None;
    cc.prefs = prefs.clone();
    let mut c = Client::new(cc, Box::new(Rng(seed)), now);
    let mut s = Server::new(ServerConfig::new(host_keys.to_vec()), Box::new(Rng(seed ^ 0x5555)), now).map_err(|e| e.to_string())?;
    for _ in 0..1000 {
        if c.phase() == Phase::Connected {
            return Ok(());
        }
        let mut moved = false;
        let out = c.output().to_vec();
        if !out.is_empty() {
            c.consume_output(out.len());
            let _ = s.handle_input(&out, now);
            moved = true;
        }
        let out = s.output().to_vec();
        if !out.is_empty() {
            s.consume_output(out.len());
            let _ = c.handle_input(&out, now);
            moved = true;
        }
        while let Some(ev) = s.poll_event() {
            moved = true;
            if let Event::Auth(Question::PublicKey { .. }) = ev {
                s.answer_auth(true, now);
            }
        }
        while c.poll_event().is_some() {}
        if !moved {
            break;
        }
    }
    Err(format!("not connected: client {:?}, server {:?}", c.error(), s.error()))
}

fn main() -> Result<(), String> {
    let secs: f64 = std::env::args().nth(1).map_or(Ok(1.0), |a| a.parse()).map_err(|e| format!("SECONDS: {e}"))?;
    let key = |kind, seed| PrivateKey::generate_with(kind, &mut Rng(seed)).map(Arc::new).map_err(|e| e.to_string());
    let user = key(KeyKind::Ed25519, 1)?;
    let mut kinds = vec![KeyKind::Ed25519];
    #[cfg(feature = "nistp256")]
    kinds.push(KeyKind::EcdsaP256);
    #[cfg(feature = "rsa")]
    kinds.push(KeyKind::Rsa(2048));
    let host_keys = kinds.into_iter().enumerate().map(|(i, k)| key(k, 100 + i as u64)).collect::<Result<Vec<_>, _>>()?;
    // Every key exchange with an ed25519 host key, then every host key with curve25519-sha256.
    let mut cases: Vec<(Kex, SigAlg)> = Kex::ALL.iter().map(|k| (*k, SigAlg::Ed25519)).collect();
    for alg in SigAlg::ALL.iter().filter(|a| !matches!(a.name(), "ssh-ed25519" | "ssh-rsa" | "ssh-dss")) {
        cases.push((Kex::Curve25519Sha256, *alg));
    }
    let start = Instant::now();
    for (kex, alg) in cases {
        let prefs = Preferences { kex: vec![kex], host_key: vec![alg], ..Preferences::default() };
        connect(&prefs, &host_keys, &user, 7)?; // warm-up
        // The CPU clock may advance in scheduler ticks: run for `secs` of it, at least 5 times.
        let t0 = cpu_seconds(start);
        let mut done = 0u64;
        while done < 5 || cpu_seconds(start) - t0 < secs {
            connect(&prefs, &host_keys, &user, 1000 + done).map_err(|e| format!("{kex} {alg}: {e}"))?;
            done += 1;
        }
        let t1 = cpu_seconds(start);
        println!("kex={kex} host_key={alg} connections={done} ms_per_connection={:.3}", (t1 - t0) * 1000.0 / done as f64);
    }
    Ok(())
}
