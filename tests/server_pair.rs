//! Our client against our server in memory (a Pair harness with a simulated clock): every key
//! exchange, cipher, MAC and host-key type; publickey (probe, then signed), password and
//! keyboard-interactive; exec with stdout, stderr, exit status and exit signal; many channels;
//! rekeying in both directions; the server's limits (MaxAuthTries, login grace, failure delay).
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sshbridge::algs::{Cipher, Kex, Mac, Preferences, SigAlg};
use sshbridge::client::{Client, ClientConfig, Phase as CPhase};
use sshbridge::connection::{ChannelEvent, ChannelOps, ExitStatus, Request};
use sshbridge::random::Random;
use sshbridge::server::{Event as SEvent, Phase as SPhase, Question, Server, ServerConfig};
use sshbridge::transport::HostKeyCheck;
use sshbridge::{Credential, KeyKind, PrivateKey};

struct Rng(u64);
impl Random for Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            // xorshift: deterministic, good enough for a test's nonces and keys.
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}

fn key(kind: KeyKind, seed: u64) -> Arc<PrivateKey> {
    Arc::new(PrivateKey::generate_with(kind, &mut Rng(seed)).unwrap())
}

/// What the server side application does in these tests.
struct App {
    user_key: Option<sshbridge::PublicKey>,
    password: &'static str,
    authenticated: bool,
    probes: u32,
    /// Requests seen, in order.
    requests: Vec<Request>,
    /// Run: exec → write "out:<cmd>" on stdout, "err" on stderr, exit per the command.
    exited: Vec<u32>,
}

struct Pair {
    c: Client,
    s: Server,
    now: Instant,
    app: App,
}

impl Pair {
    fn new(cc: ClientConfig, sc: ServerConfig, app: App) -> Pair {
        let now = Instant::now();
        Pair { c: Client::new(cc, Box::new(Rng(11)), now), s: Server::new(sc, Box::new(Rng(22)), now).unwrap(), now, app }
    }

    /// Move bytes both ways and let the server application act, until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let out = self.c.output().to_vec();
            if !out.is_empty() {
                self.c.consume_output(out.len());
                let _ = self.s.handle_input(&out, self.now);
                moved = true;
            }
            let out = self.s.output().to_vec();
            if !out.is_empty() {
                self.s.consume_output(out.len());
                let _ = self.c.handle_input(&out, self.now);
                moved = true;
            }
            moved |= self.serve();
            while self.c.poll_event().is_some() {}
            if !moved {
                return;
            }
        }
        panic!("the pair never settled");
    }

    /// Advance the simulated clock.
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.c.handle_timeout(self.now);
        self.pump();
    }

    fn serve(&mut self) -> bool {
        let mut acted = false;
        while let Some(ev) = self.s.poll_event() {
            acted = true;
            match ev {
                SEvent::Auth(q) => {
                    let yes = match &q {
                        Question::PublicKey { key, signed, .. } => {
                            if !signed {
                                self.app.probes += 1;
                            }
                            Some(key) == self.app.user_key.as_ref()
                        }
                        Question::Password { password, .. } => password.as_str() == self.app.password,
                        Question::KeyboardInteractive { responses, .. } => {
                            responses.len() == 1 && responses[0].as_str() == self.app.password
                        }
                    };
                    self.s.answer_auth(yes, self.now);
                }
                SEvent::Authenticated { .. } => self.app.authenticated = true,
                SEvent::ChannelOpen { .. } => {
                    self.s.answer_open(true);
                }
                SEvent::ChannelRequest { id, request } => {
                    self.app.requests.push(request.clone());
                    let ok = !matches!(&request, Request::Subsystem(_));
                    self.s.answer_request(id, ok);
                    if let Request::Exec(cmd) = request {
                        let cmd = String::from_utf8(cmd).unwrap();
                        self.s.send_data(id, format!("out:{cmd}").as_bytes());
                        self.s.send_stderr(id, b"err");
                        let status = match cmd.strip_prefix("signal ") {
                            Some(sig) => ExitStatus::Signal { name: sig.into(), core_dumped: false, message: "killed".into() },
                            None => ExitStatus::Code(cmd.strip_prefix("exit ").map_or(0, |c| c.parse().unwrap())),
                        };
                        if let ExitStatus::Code(c) = status {
                            self.app.exited.push(c);
                        }
                        self.s.send_exit(id, &status);
                        self.s.send_eof(id);
                        self.s.close_channel(id);
                    }
                }
                SEvent::Channel(id, ChannelEvent::Closed) => self.s.release_channel(id),
                SEvent::Channel(..) => {}
            }
        }
        acted
    }

    fn run(&mut self, cmd: &str) -> (String, String, Option<ExitStatus>) {
        let id = self.c.open_session(Some(cmd.as_bytes())).unwrap();
        self.pump();
        let mut out = vec![0u8; 4096];
        let n = self.c.read(id, false, &mut out);
        let stdout = String::from_utf8_lossy(&out[..n]).into_owned();
        let n = self.c.read(id, true, &mut out);
        let stderr = String::from_utf8_lossy(&out[..n]).into_owned();
        let exit = self.c.exit_status(id).cloned();
        self.c.release_channel(id);
        self.pump();
        (stdout, stderr, exit)
    }
}

fn app(user_key: Option<&PrivateKey>) -> App {
    App { user_key: user_key.map(|k| k.public_key()), password: "sesame", authenticated: false, probes: 0, requests: vec![], exited: vec![] }
}

fn client_cfg(creds: Vec<Credential>) -> ClientConfig {
    let mut c = ClientConfig::new("alice");
    c.credentials = creds;
    c.host_key_check = HostKeyCheck::default();
    c.keepalive_interval = None;
    c
}

fn password(p: &str) -> Credential {
    Credential::Password(Arc::new(zeroize::Zeroizing::new(p.into())))
}

#[test]
fn every_algorithm_runs_a_command() {
    let user = key(KeyKind::Ed25519, 1);
    let host_kinds: Vec<KeyKind> = vec![
        KeyKind::Ed25519,
        #[cfg(feature = "nistp256")]
        KeyKind::EcdsaP256,
        #[cfg(feature = "rsa")]
        KeyKind::Rsa(2048),
    ];
    let host_keys: Vec<Arc<PrivateKey>> = host_kinds.iter().enumerate().map(|(i, k)| key(*k, 100 + i as u64)).collect();
    let mut cases = Vec::new();
    for kex in Kex::ALL {
        cases.push((Some(*kex), None, None, None));
    }
    for alg in SigAlg::ALL.iter().filter(|a| !matches!(a.name(), "ssh-rsa" | "ssh-dss")) {
        cases.push((None, Some(*alg), None, None));
    }
    for cipher in Cipher::ALL {
        for mac in Mac::ALL {
            if cipher.is_aead() && *mac != Mac::ALL[0] {
                continue;
            }
            cases.push((None, None, Some(*cipher), Some(*mac)));
        }
    }
    for (kex, hk, cipher, mac) in cases {
        let mut prefs = Preferences::default();
        if let Some(k) = kex {
            prefs.kex = vec![k];
        }
        if let Some(h) = hk {
            prefs.host_key = vec![h];
        }
        if let Some(c) = cipher {
            prefs.cipher = vec![c];
        }
        if let Some(m) = mac {
            prefs.mac = vec![m];
        }
        let mut cc = client_cfg(vec![Credential::Key(user.clone())]);
        cc.prefs = prefs;
        let mut p = Pair::new(cc, ServerConfig::new(host_keys.clone()), app(Some(&user)));
        p.pump();
        let what = format!("{kex:?} {hk:?} {cipher:?} {mac:?}");
        assert_eq!(p.c.phase(), CPhase::Connected, "{what}: {:?}", p.c.error());
        let n = p.c.transport().negotiated().copied().unwrap();
        if let Some(k) = kex {
            assert_eq!(n.kex, k, "{what}");
        }
        if let Some(h) = hk {
            assert_eq!(n.host_key, h, "{what}");
        }
        if let Some(c) = cipher {
            assert_eq!((n.cipher_c2s, n.cipher_s2c), (c, c), "{what}");
        }
        assert!(p.c.transport().strict_kex(), "{what}: strict kex both ways");
        let (out, err, exit) = p.run("exit 7");
        assert_eq!((out.as_str(), err.as_str(), exit), ("out:exit 7", "err", Some(ExitStatus::Code(7))), "{what}");
        assert_eq!(p.c.transport().session_id(), p.s.transport().session_id());
    }
}

#[test]
fn publickey_probe_then_signature_password_and_keyboard_interactive() {
    let host = vec![key(KeyKind::Ed25519, 5)];
    let user = key(KeyKind::Ed25519, 6);
    let stranger = key(KeyKind::Ed25519, 7);
    // The stranger's key is refused, then the right one is probed and signed.
    let mut p = Pair::new(client_cfg(vec![Credential::Key(stranger), Credential::Key(user.clone())]), ServerConfig::new(host.clone()), app(Some(&user)));
    p.pump();
    p.advance(Duration::from_millis(150)); // the refused probe's failure is delayed
    assert_eq!(p.c.phase(), CPhase::Connected, "{:?}", p.c.error());
    assert!(p.app.authenticated);
    assert_eq!(p.app.probes, 2);
    assert_eq!(p.s.user(), Some("alice"));
    // The server told the client what it verifies (EXT_INFO server-sig-algs).
    let algs = p.c.transport().server_sig_algs().unwrap().to_vec();
    assert!(algs.iter().any(|a| a == "ssh-ed25519") && !algs.iter().any(|a| a == "ssh-rsa"), "{algs:?}");
    // Password.
    let mut p = Pair::new(client_cfg(vec![password("sesame")]), ServerConfig::new(host.clone()), app(None));
    p.pump();
    assert_eq!(p.c.phase(), CPhase::Connected, "{:?}", p.c.error());
    // Keyboard-interactive only.
    let mut sc = ServerConfig::new(host.clone());
    sc.auth.methods.password = false;
    sc.auth.methods.keyboard_interactive = true;
    let mut p = Pair::new(client_cfg(vec![password("sesame")]), sc, app(None));
    p.pump();
    assert_eq!(p.c.phase(), CPhase::Connected, "{:?}", p.c.error());
    // A wrong password: refused, the failure held for the minimum delay.
    let mut p = Pair::new(client_cfg(vec![password("wrong")]), ServerConfig::new(host), app(None));
    p.pump();
    assert_eq!(p.c.phase(), CPhase::Authenticating);
    p.advance(Duration::from_millis(99));
    assert_eq!(p.c.phase(), CPhase::Authenticating, "failure not yet answered");
    p.advance(Duration::from_millis(2));
    assert_eq!(p.c.phase(), CPhase::Dead);
    assert!(p.c.error().unwrap().to_string().contains("password"), "{:?}", p.c.error());
    assert!(!p.app.authenticated);
}

#[test]
fn many_channels_requests_in_order_and_exit_signal() {
    let host = vec![key(KeyKind::Ed25519, 8)];
    let user = key(KeyKind::Ed25519, 9);
    let mut sc = ServerConfig::new(host);
    sc.max_channels = 4;
    let mut p = Pair::new(client_cfg(vec![Credential::Key(user.clone())]), sc, app(Some(&user)));
    p.pump();
    let ids: Vec<_> = (0..4).map(|i| p.c.open_session(Some(format!("exit {i}").as_bytes())).unwrap()).collect();
    let fifth = p.c.open_session(Some(b"exit 9")).unwrap();
    p.pump();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(p.c.exit_status(*id), Some(&ExitStatus::Code(i as u32)));
    }
    // The fifth found the table full while the others were open: refused with reason 4.
    let err = p.c.channel(fifth).and_then(|c| c.error.clone());
    assert!(matches!(err, Some(sshbridge::Error::ChannelOpenFailed { reason: 4, .. })), "{err:?}");
    for id in ids.into_iter().chain([fifth]) {
        p.c.release_channel(id);
    }
    p.pump();
    let (_, _, exit) = p.run("signal TERM");
    assert_eq!(exit, Some(ExitStatus::Signal { name: "TERM".into(), core_dumped: false, message: "killed".into() }));
    // env outside the allow-list never reaches the application; LANG does.
    let id = p.c.open_session(None).unwrap();
    p.pump();
    for (name, value) in [("LD_PRELOAD", "/tmp/x.so"), ("LANG", "C.UTF-8")] {
        p.c.request(id, Request::Env { name: name.into(), value: value.into() }).unwrap();
    }
    p.c.request(id, Request::Subsystem("nope".into())).unwrap();
    p.pump();
    assert!(!p.app.requests.iter().any(|r| matches!(r, Request::Env { name, .. } if name == "LD_PRELOAD")), "{:?}", p.app.requests);
    let tail: Vec<_> = p.app.requests.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(tail, vec![Request::Shell, Request::Env { name: "LANG".into(), value: "C.UTF-8".into() }, Request::Subsystem("nope".into())]);
    // Rekey from either side keeps the channel working.
    assert!(p.s.rekey());
    p.pump();
    p.c.rekey().unwrap();
    p.pump();
    assert_eq!(p.c.transport().kex_count(), 3);
    assert_eq!(p.s.transport().kex_count(), 3);
    let (out, _, _) = p.run("exit 0");
    assert_eq!(out, "out:exit 0");
}

#[test]
fn limits_max_auth_tries_and_login_grace() {
    let host = vec![key(KeyKind::Ed25519, 10)];
    // Six wrong keys: the sixth failure disconnects (MaxAuthTries 6).
    let keys: Vec<Credential> = (0..8).map(|i| Credential::Key(key(KeyKind::Ed25519, 200 + i))).collect();
    let mut p = Pair::new(client_cfg(keys), ServerConfig::new(host.clone()), app(None));
    p.pump();
    for _ in 0..10 {
        p.advance(Duration::from_millis(100));
    }
    assert_eq!(p.s.phase(), SPhase::Dead);
    assert_eq!(p.app.probes, 6);
    assert!(p.s.error().unwrap().to_string().contains("6 failed attempts"), "{:?}", p.s.error());
    assert!(p.c.error().unwrap().to_string().contains("too many authentication failures"), "{:?}", p.c.error());
    // A client that never authenticates is cut at the login grace time.
    let mut sc = ServerConfig::new(host);
    sc.login_grace = Duration::from_secs(5);
    let mut p = Pair::new(client_cfg(vec![]), sc, app(None));
    p.c.fail(sshbridge::Error::Timeout("stalled".into())); // the client goes quiet
    p.pump();
    assert_eq!(p.s.next_timeout(), Some(p.now + Duration::from_secs(5)));
    p.advance(Duration::from_secs(5));
    assert_eq!(p.s.phase(), SPhase::Dead);
    assert!(p.s.error().unwrap().to_string().contains("login grace"), "{:?}", p.s.error());
}
