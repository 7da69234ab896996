//! keepalive@openssh.com against a real sshd: answered keepalives keep a quiet session alive,
//! and Session::keepalive gets its answer.
mod support;
use std::time::{Duration, Instant};
use sshbridge::{Config, Credential, ExitStatus, Session};

#[test]
fn keepalives_are_answered_during_a_quiet_command() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.keepalive_interval = Some(Duration::from_millis(200));
    cfg.keepalive_max = 2;
    let s = Session::connect(srv.addr(), cfg).unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
    s.keepalive(Duration::from_secs(5)).unwrap();
    let t = Instant::now();
    // Two seconds of silence: ten keepalives go out and each is answered.
    let (out, _, st) = s.exec("sleep 2; echo done").unwrap().output().unwrap();
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert_eq!(out, b"done\n");
    assert_eq!(st, Some(ExitStatus::Code(0)));
    assert!(srv.log().contains("keepalive@openssh.com"), "sshd never saw a keepalive");
}
