//! Logging through the `log` crate, target `sshbridge`: connection events at info and debug
//! (negotiated algorithms, host key, authentication attempts, channels, rekeys, disconnects),
//! packets at trace (message number and length), payload hex dumps at trace only when
//! `Config::log_payloads` is set. Secrets never reach a record: authentication requests (RFC
//! 4252 section 5, RFC 4256 section 3.4: they carry passwords and answers) are never dumped,
//! and no key material is ever passed here.

use crate::transport::Negotiated;

pub const TARGET: &str = "sshbridge";

/// Longest payload dump, in bytes.
const MAX_DUMP: usize = 4096;

/// Message numbers whose payload is never dumped: USERAUTH_REQUEST (50) carries a password
/// or a signature, USERAUTH_INFO_RESPONSE (61) keyboard-interactive answers.
fn secret_bearing(n: u8) -> bool {
    matches!(n, 50 | 61)
}

/// Trace one packet: `dir` "send"/"recv", its sequence number, its payload (in parts).
pub fn packet(dir: &str, seq: u32, parts: &[&[u8]], payloads: bool) {
    if !log::log_enabled!(target: TARGET, log::Level::Trace) {
        return;
    }
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let n = parts.iter().find_map(|p| p.first().copied()).unwrap_or(0);
    if payloads && !secret_bearing(n) {
        let mut hex = String::with_capacity(len.min(MAX_DUMP) * 2);
        for b in parts.iter().flat_map(|p| p.iter()).take(MAX_DUMP) {
            hex.push_str(&format!("{b:02x}"));
        }
        let more = if len > MAX_DUMP { "..." } else { "" };
        log::trace!(target: TARGET, "{dir} seq {seq}: message {n}, {len} bytes: {hex}{more}");
    } else {
        log::trace!(target: TARGET, "{dir} seq {seq}: message {n}, {len} bytes");
    }
}

/// A key exchange finished.
pub fn negotiated(n: &Negotiated, count: u32, strict: bool) {
    let mac = |m: Option<crate::algs::Mac>| m.map_or_else(|| "<implicit>".to_string(), |m| m.to_string());
    let what = if count == 1 { "key exchange" } else { "key re-exchange" };
    log::info!(
        target: TARGET,
        "{what} #{count} done: kex {}, host key {}, cipher {} / {}, mac {} / {}, strict kex {}",
        n.kex,
        n.host_key,
        n.cipher_c2s,
        n.cipher_s2c,
        mac(n.mac_c2s),
        mac(n.mac_s2c),
        if strict { "on" } else { "off" }
    );
}
