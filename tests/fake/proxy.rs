//! A fault-injecting TCP proxy on 127.0.0.1 in front of a real server (HOSTILE.md harness
//! "P", in the spirit of OpenSSH's modpipe): pass-through, a one-bit flip at a byte offset of
//! the server-to-client stream, a stall (stop forwarding, keep TCP open), a close mid-transfer,
//! or a zero window towards the client (stop reading what it sends).
//!
//! Offsets count bytes of the server-to-client stream from its first byte (the server's
//! identification); a key exchange with an ed25519 host key is well under 4 KiB of it, so
//! offsets past that land in encrypted packets. Each accepted connection gets two forwarding
//! threads; dropping the `Proxy` stops and joins them and closes every socket.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Flip bit `bit` (0-7) of byte `offset` of the server-to-client stream.
    FlipBit {
        offset: usize,
        bit: u8,
    },
    /// Forward this many server-to-client bytes, then nothing more (TCP stays open).
    StallAfter(usize),
    /// Forward server-to-client bytes for this long after the connection was accepted, then
    /// nothing more (TCP stays open; the client's bytes still reach the server): a frozen
    /// server, a dead NAT mapping.
    StallAfterTime(Duration),
    /// Forward this many server-to-client bytes, then close both connections.
    CloseAfter(usize),
    /// Forward this many client-to-server bytes, then stop reading from the client.
    StopReadingClientAfter(usize),
}

pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
    clients: Arc<Mutex<Vec<SocketAddr>>>,
    /// Server-to-client bytes forwarded, all connections.
    pub s2c: Arc<AtomicUsize>,
    /// Client-to-server bytes forwarded, all connections.
    pub c2s: Arc<AtomicUsize>,
    /// Set once the fault has been applied.
    pub fired: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let clients: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let s2c = Arc::new(AtomicUsize::new(0));
        let c2s = Arc::new(AtomicUsize::new(0));
        let fired = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, threads, clients) = (stop.clone(), threads.clone(), clients.clone());
            let (s2c, c2s, fired) = (s2c.clone(), c2s.clone(), fired.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((client, peer)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
                        continue;
                    };
                    clients.lock().unwrap().push(peer);
                    for s in [&client, &server] {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
                        let _ = s.set_write_timeout(Some(Duration::from_millis(20)));
                    }
                    let (cr, sw) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let ctx = Pipe { stop: stop.clone(), fault, fired: fired.clone() };
                    let ctx2 = ctx.clone();
                    let (c2s_n, s2c_n) = (c2s.clone(), s2c.clone());
                    let up = std::thread::spawn(move || ctx.run(cr, sw, false, &c2s_n));
                    let down = std::thread::spawn(move || ctx2.run(server, client, true, &s2c_n));
                    threads.lock().unwrap().extend([up, down]);
                }
            })
        };
        Proxy { addr, stop, threads, accept: Some(accept), clients, s2c, c2s, fired }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client sockets that connected: (their local address, the proxy's address).
    pub fn clients(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.clients.lock().unwrap().iter().map(|c| (*c, self.addr)).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let hs: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for h in hs {
            let _ = h.join();
        }
    }
}

#[derive(Clone)]
struct Pipe {
    stop: Arc<AtomicBool>,
    fault: Fault,
    fired: Arc<AtomicBool>,
}

impl Pipe {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn idle_until_stop(&self) {
        while !self.stopped() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Forward `from` to `to`; `down` is the server-to-client direction.
    fn run(&self, mut from: TcpStream, mut to: TcpStream, down: bool, counter: &AtomicUsize) {
        let mut pos = 0usize;
        let mut buf = vec![0u8; 32 * 1024];
        let started = std::time::Instant::now();
        loop {
            if self.stopped() {
                return;
            }
            if let (Fault::StallAfterTime(d), true) = (self.fault, down) {
                if started.elapsed() >= d {
                    self.fired.store(true, Ordering::SeqCst);
                    self.idle_until_stop();
                    return;
                }
            }
            // How much may pass before the fault point in this direction.
            let limit = match (self.fault, down) {
                (Fault::StallAfter(n) | Fault::CloseAfter(n), true) | (Fault::StopReadingClientAfter(n), false) => {
                    Some(n)
                }
                _ => None,
            };
            if let Some(n) = limit {
                if pos >= n {
                    self.fired.store(true, Ordering::SeqCst);
                    match self.fault {
                        Fault::CloseAfter(_) => {
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                        }
                        _ => self.idle_until_stop(),
                    }
                    return;
                }
            }
            let want = limit.map_or(buf.len(), |n| (n - pos).min(buf.len()));
            let got = match from.read(&mut buf[..want]) {
                Ok(0) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                Err(_) => {
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            };
            if let (Fault::FlipBit { offset, bit }, true) = (self.fault, down) {
                if offset >= pos && offset < pos + got {
                    buf[offset - pos] ^= 1 << (bit & 7);
                    self.fired.store(true, Ordering::SeqCst);
                }
            }
            pos += got;
            counter.fetch_add(got, Ordering::SeqCst);
            let mut rest = &buf[..got];
            while !rest.is_empty() {
                if self.stopped() {
                    return;
                }
                match to.write(rest) {
                    Ok(0) => return,
                    Ok(n) => rest = &rest[n..],
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    }
                    Err(_) => {
                        let _ = from.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    }
}
