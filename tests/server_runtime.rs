//! The blocking server API over loopback: our client against our `Server` (exec with stdout,
//! stderr and exit status, 3 MiB through stdin and back byte-exact on two channels, refused keys), and the
//! listener's limits: the cap on unauthenticated connections (max_startups) and the login
//! grace time closing idle half-open connections, after which new clients get in again.
#![cfg(feature = "server")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sshbridge::server::Question;
use sshbridge::{Config, Credential, ExitStatus, KeyKind, PrivateKey, Server, ServerConfig, Session};

fn start(max_startups: usize, grace: Duration, user_key: sshbridge::PublicKey) -> (std::net::SocketAddr, Arc<Server>) {
    let host = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let mut config = ServerConfig::new(vec![host]);
    config.max_startups = max_startups;
    config.core.login_grace = grace;
    config.authenticate = Arc::new(move |q: &Question| matches!(q, Question::PublicKey { key, .. } if *key == user_key));
    let server = Arc::new(Server::bind("127.0.0.1:0", config).unwrap());
    let addr = server.local_addr().unwrap();
    let s = server.clone();
    std::thread::spawn(move || loop {
        let Ok(conn) = s.accept() else { return };
        std::thread::spawn(move || {
            while let Some(ch) = conn.accept_channel() {
                std::thread::spawn(move || {
                    let cmd = ch.command().map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
                    if cmd == "cat" {
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = (&ch).read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            (&ch).write_all(&buf[..n]).unwrap();
                        }
                        ch.exit(&ExitStatus::Code(0));
                    } else {
                        (&ch).write_all(format!("ran {cmd}").as_bytes()).unwrap();
                        ch.write_stderr(b"to stderr").unwrap();
                        ch.exit(&ExitStatus::Code(42));
                    }
                });
            }
        });
    });
    (addr, server)
}

fn client_config(key: &Arc<PrivateKey>) -> Config {
    let mut c = Config::new("anyone");
    c.credentials.push(Credential::Key(key.clone()));
    c.host_key_policy = sshbridge::HostKeyPolicy::AcceptAny;
    c
}

#[test]
fn our_client_runs_commands_and_streams_through_our_server() {
    let user = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let (addr, _server) = start(10, Duration::from_secs(30), user.public_key());
    let session = Session::connect(addr, client_config(&user)).unwrap();
    let (out, err, status) = session.exec("hello").unwrap().output().unwrap();
    assert_eq!((out.as_slice(), err.as_slice(), status), (&b"ran hello"[..], &b"to stderr"[..], Some(ExitStatus::Code(42))));
    // 3 MiB through stdin and back (within what the windows and the reader's stash hold while
    // one thread writes everything first), on two channels of the one connection at once.
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let session = session.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let mut ch = session.exec("cat").unwrap();
                ch.write_all(&data).unwrap();
                ch.send_eof().unwrap();
                let mut back = Vec::new();
                ch.read_to_end(&mut back).unwrap();
                assert!(back == data, "{} bytes back of {}", back.len(), data.len());
                assert_eq!(ch.wait().unwrap(), Some(ExitStatus::Code(0)));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Another key is refused.
    let stranger = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let e = Session::connect(addr, client_config(&stranger)).err().unwrap();
    assert!(matches!(e, sshbridge::Error::AuthFailed { .. }), "{e}");
}

#[test]
fn unauthenticated_connections_are_capped_and_cut_at_the_login_grace_time() {
    let user = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let (addr, server) = start(2, Duration::from_secs(2), user.public_key());
    let mut idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"SSH-2.0-");
    }
    let t0 = Instant::now();
    while server.unauthenticated() < 2 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.unauthenticated(), 2);
    // The third is closed at once, before any byte.
    let mut third = TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(third.read(&mut b).unwrap(), 0, "a connection beyond max_startups must be closed");
    // The idle two are cut at the login grace time (2 s), not before.
    for s in &mut idle {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "{waited:?}");
    let t1 = Instant::now();
    while server.unauthenticated() > 0 && t1.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.unauthenticated(), 0);
    // Room again: a real client gets in.
    let session = Session::connect(addr, client_config(&user)).unwrap();
    assert_eq!(session.exec("x").unwrap().output().unwrap().2, Some(ExitStatus::Code(42)));
}
