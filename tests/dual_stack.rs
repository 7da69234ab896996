//! `Session::connect("name:port")` tries every address the name resolves to, in the resolver's
//! order (runtime::session::tcp_connect): a name with two addresses, ::1 and 127.0.0.1, and our
//! own server listening on only one of them. The names come from c-tests/dual-stack.hosts,
//! served by libnss_wrapper (Debian libnss-wrapper; scripts/install-deps.sh installs it), which
//! must be preloaded: the test runs itself again as a child process with
//! `LD_PRELOAD=libnss_wrapper.so` and `NSS_WRAPPER_HOSTS`. It skips (passes with a note) when the
//! library is not installed or ::1 cannot be bound. The C side's twin is exttest.dual_stack.
#![cfg(feature = "server")]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sshbridge::{Config, Credential, ExitStatus, KeyKind, PrivateKey, Server, ServerConfig, Session};

const CHILD: &str = "dual_stack_child";
const HOSTS_ENV: &str = "NSS_WRAPPER_HOSTS";

/// Our server on `bind` only; each command is answered with the address it was reached on.
fn serve(bind: &str, user: sshbridge::PublicKey) -> (SocketAddr, Arc<Server>) {
    let host = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let mut config = ServerConfig::new(vec![host]);
    config.authenticate = Arc::new(
        move |q: &sshbridge::server::Question| matches!(q, sshbridge::server::Question::PublicKey { key, .. } if *key == user),
    );
    let server = Arc::new(Server::bind(bind, config).unwrap());
    let addr = server.local_addr().unwrap();
    let s = server.clone();
    std::thread::spawn(move || loop {
        let Ok(conn) = s.accept() else { return };
        std::thread::spawn(move || {
            let peer = conn.peer_addr();
            while let Some(ch) = conn.accept_channel() {
                (&ch).write_all(format!("server {addr} peer {}", peer.ip()).as_bytes()).unwrap();
                ch.exit(&ExitStatus::Code(3));
            }
        });
    });
    (addr, server)
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

fn resolve(name: &str) -> Vec<String> {
    (name, 1).to_socket_addrs().map(|a| a.map(|a| a.ip().to_string()).collect()).unwrap_or_default()
}

/// The parent: runs `CHILD` under the wrapper and reports its verdict.
#[test]
fn session_connect_tries_every_address_of_a_name() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIP: ::1 cannot be bound on this host; a name with an IPv6 and an IPv4 address is not tested");
        return;
    }
    let hosts = concat!(env!("CARGO_MANIFEST_DIR"), "/c-tests/dual-stack.hosts");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([CHILD, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("LD_PRELOAD", "libnss_wrapper.so")
        .env(HOSTS_ENV, hosts)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("--- child ---\n{text}--- end of child ---");
    if text.contains("SKIP-NSS-WRAPPER") {
        eprintln!("SKIP: libnss_wrapper is not installed (Debian: libnss-wrapper, see scripts/install-deps.sh)");
        return;
    }
    assert!(out.status.success() && text.contains("DUAL-STACK-OK"), "the child failed: {:?}", out.status);
}

/// The child (ignored unless the parent runs it under the wrapper).
#[test]
#[ignore = "run by session_connect_tries_every_address_of_a_name under libnss_wrapper"]
fn dual_stack_child() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    if std::env::var_os(HOSTS_ENV).is_none() || !maps.contains("libnss_wrapper") {
        println!("SKIP-NSS-WRAPPER: libnss_wrapper is not loaded");
        return;
    }
    assert_eq!(resolve("v6first.sshbridge.test"), ["::1", "127.0.0.1"], "the wrapper's order");
    assert_eq!(resolve("v4first.sshbridge.test"), ["127.0.0.1", "::1"], "the wrapper's order");

    let user = Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let (a4, _s4) = serve("127.0.0.1:0", user.public_key());
    let (a6, _s6) = serve("[::1]:0", user.public_key());
    // Nothing on the other address of either port (the server is on one only).
    assert!(refused(SocketAddr::new("::1".parse().unwrap(), a4.port())), "[::1]:{} answers", a4.port());
    assert!(refused(SocketAddr::new("127.0.0.1".parse().unwrap(), a6.port())), "127.0.0.1:{} answers", a6.port());

    for (name, server) in [
        ("v6first.sshbridge.test", a4), // ::1 refused, then 127.0.0.1
        ("v4first.sshbridge.test", a6), // 127.0.0.1 refused, then ::1
        ("v6first.sshbridge.test", a6), // the first address
        ("v4first.sshbridge.test", a4),
    ] {
        let mut config = Config::new("anyone");
        config.credentials.push(Credential::Key(user.clone()));
        config.host_key_policy = sshbridge::HostKeyPolicy::AcceptAny;
        let target = format!("{name}:{}", server.port());
        let session = Session::connect(target.as_str(), config).unwrap_or_else(|e| panic!("{target}: {e}"));
        let (out, _err, status) = session.exec("which").unwrap().output().unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        println!("{target} (server on {} only): {out}", server.ip());
        assert_eq!(out, format!("server {server} peer {}", server.ip()), "{target}");
        assert_eq!(status, Some(ExitStatus::Code(3)));
        session.close();
    }
    // No address answers: each was tried, the error names the last.
    for (name, last) in [("v6first.sshbridge.test", "127.0.0.1:1"), ("v4first.sshbridge.test", "[::1]:1")] {
        let e = Session::connect(format!("{name}:1").as_str(), Config::new("anyone")).err().expect("port 1 connected");
        println!("{name}:1: {e}");
        assert!(e.to_string().contains(last), "{name}:1: {e}");
    }
    println!("DUAL-STACK-OK");
}
