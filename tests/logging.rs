//! Logging (issue 9): every record of a whole password login and a whole key login against a
//! real sshd, captured at trace level with payload dumps on, tells what happened (negotiated
//! algorithms, host key, authentication attempts, channel events, a rekey) and never contains
//! the password or the private key, in clear or as hex.

mod support;

use std::sync::Mutex;

use sshbridge::{Config, Credential, PrivateKey, Session};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target().starts_with("sshbridge") {
            self.0.lock().unwrap().push(format!("{} {}", r.level(), r.args()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Install the capturing logger once for every test of this file, at trace level.
fn capture() -> &'static Capture {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    &CAPTURE
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn trace_logs_tell_what_happened_and_never_hold_secrets() {
    capture();
    support::ensure_env();
    let srv = support::sshd(&[]);

    // A password login, a command, an explicit rekey.
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.log_payloads = true;
    let s = Session::connect(srv.addr(), cfg).unwrap();
    let (out, _, _) = s.exec("echo logged").unwrap().output().unwrap();
    assert_eq!(out, b"logged\n");
    s.rekey().unwrap();
    drop(s);

    // A key login.
    let key_text = support::user_keys().bytes("ed25519.openssh");
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::key(PrivateKey::from_bytes(&key_text, None).unwrap()));
    cfg.log_payloads = true;
    let s = Session::connect(srv.addr(), cfg).unwrap();
    let (out, _, _) = s.exec("echo again").unwrap().output().unwrap();
    assert_eq!(out, b"again\n");
    drop(s);

    let records = CAPTURE.0.lock().unwrap().clone();
    let all = records.join("\n");
    for want in [
        "INFO key exchange #1 done: kex ",
        "INFO key re-exchange #2 done",
        "INFO server host key ssh-ed25519 SHA256:",
        "INFO authentication: trying password",
        "INFO authentication: trying publickey ssh-ed25519 SHA256:",
        "INFO authenticated as \"sshbtest\"",
        "DEBUG channel 0: opening Session",
        "DEBUG channel 0: Started",
        "DEBUG channel 0: Closed",
        "TRACE send seq 0: message 20,",
        "TRACE recv seq ",
    ] {
        assert!(all.contains(want), "no record with {want:?} among {} records", records.len());
    }
    // Payload dumps are there (the command went out as hex).
    assert!(all.contains(&hex(b"echo logged")), "no payload dump of the exec request");

    // Never the password, in clear or in hex.
    let pw = support::PASSWORD.as_bytes();
    assert!(!all.contains(support::PASSWORD), "the password appears in the log");
    assert!(!all.contains(&hex(pw)), "the password appears in the log as hex");
    // Never the private key: its 32-byte seed and the whole key file, in hex; nor the file text.
    let key = ssh_key::PrivateKey::from_openssh(std::str::from_utf8(&key_text).unwrap()).unwrap();
    let seed = key.key_data().ed25519().unwrap().private.to_bytes();
    assert!(!all.contains(&hex(&seed)), "the private key seed appears in the log");
    let body: String = String::from_utf8_lossy(&key_text).lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!all.contains(&body[..40]), "the key file text appears in the log");
    eprintln!("{} records checked", records.len());
}

fn u32be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn string(b: &[u8]) -> Vec<u8> {
    let mut v = u32be(b.len() as u32).to_vec();
    v.extend_from_slice(b);
    v
}

/// No session key, IV or MAC key ever reaches a record: the in-memory harness plays the server
/// (so the test knows every key derived on both sides) through every suite it has (ML-KEM,
/// curve25519, ECDH, DH; AEAD and MAC ciphers), a password login, channel data both ways and a
/// re-exchange, with the client's payload dumps on; the log is searched for every key in hex.
#[test]
fn trace_logs_never_hold_session_keys() {
    let cap = capture();
    let mut payloads: Vec<Vec<u8>> = vec![[vec![6], string(b"ssh-userauth")].concat(), vec![52]];
    // The session channel the client opens once authenticated: confirmed, data, a rekey, data.
    payloads.push([vec![91], u32be(0).to_vec(), u32be(0).to_vec(), u32be(1 << 20).to_vec(), u32be(32768).to_vec()].concat());
    payloads.push([vec![94], u32be(0).to_vec(), string(b"session data before the rekey")].concat());
    payloads.push(vec![20]);
    payloads.push([vec![94], u32be(0).to_vec(), string(b"session data after the rekey")].concat());
    payloads.push([vec![98], u32be(0).to_vec(), string(b"exit-status"), vec![0], u32be(3).to_vec()].concat());
    payloads.push([vec![97], u32be(0).to_vec()].concat());
    let script = sshbridge::fuzzing::make_script(&payloads);
    let mut keys = Vec::new();
    for suite in 0..10u8 {
        let data = [vec![0x40 | suite], script.clone()].concat();
        let (outcome, derived) = sshbridge::fuzzing::run_session_logged(&data).unwrap();
        assert_eq!(outcome.error, None, "suite {suite}: {outcome:?}");
        assert_eq!(outcome.kex_count, 2, "suite {suite}: the re-exchange did not happen");
        // Two exchanges, each with a key per direction at least (chacha20-poly1305 has no IV).
        assert!(derived.len() >= 4, "suite {suite}: {} keys derived", derived.len());
        keys.extend(derived);
    }
    let records = cap.0.lock().unwrap().clone();
    let all = records.join("\n");
    // The dumps are on, so the check below looks at real payload hex.
    assert!(all.contains(&hex(b"session data after the rekey")), "no payload dump of the channel data");
    assert!(all.contains("key re-exchange #2 done"), "no rekey record");
    for k in &keys {
        assert!(k.len() >= 12, "a derived value of {} bytes", k.len());
        assert!(!all.contains(&hex(k)), "a derived session key/IV appears in the log: {}", hex(k));
    }
    eprintln!("{} records checked against {} derived keys", records.len(), keys.len());
}
