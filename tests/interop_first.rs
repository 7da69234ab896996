mod support;
use std::io::{Read, Write};
use sshbridge::{Config, Credential, PrivateKey, Session};

#[test]
fn sshd_password_echo() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::password(support::PASSWORD));
    cfg.host_keys.push(srv.host_key("ssh-ed25519").unwrap().parse().unwrap());
    let mut s = match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{}", srv.log()),
    };
    let info = s.info().unwrap();
    eprintln!("{info:?}");
    let mut ch = s.exec("echo hello; echo err >&2; exit 3").unwrap();
    let mut out = String::new();
    ch.read_to_string(&mut out).unwrap();
    assert_eq!(out, "hello\n");
    let mut err = [0u8; 10];
    let n = ch.read_stderr(&mut err).unwrap();
    assert_eq!(&err[..n], b"err\n");
    assert_eq!(ch.wait().unwrap(), Some(sshbridge::ExitStatus::Code(3)));
    let mut ch = s.exec("cat").unwrap();
    ch.write_all(b"round trip").unwrap();
    let (o, _, st) = ch.output().unwrap();
    assert_eq!(o, b"round trip");
    assert_eq!(st, Some(sshbridge::ExitStatus::Code(0)));
}

#[test]
fn sshd_ed25519_key() {
    support::ensure_env();
    let srv = support::sshd(&[]);
    let keys = support::user_keys();
    let mut cfg = Config::new(support::USER);
    cfg.credentials.push(Credential::key(PrivateKey::from_bytes(&keys.bytes("ed25519.openssh"), None).unwrap()));
    let mut s = match Session::connect(srv.addr(), cfg) {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{}", srv.log()),
    };
    let (o, _, st) = s.exec("echo key").unwrap().output().unwrap();
    assert_eq!(o, b"key\n");
    assert_eq!(st, Some(sshbridge::ExitStatus::Code(0)));
}
