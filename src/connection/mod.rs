//! The connection protocol, RFC 4254, for either role: the channel table (section 5: any
//! number of channels up to a cap, each with its own windows and bounded buffers), global
//! requests with want-reply bookkeeping answered in order (section 4), and TCP/IP port
//! forwarding (section 7: `tcpip-forward` / `cancel-tcpip-forward`, inbound `forwarded-tcpip`
//! channels accepted only for a forward we asked for). The role decides which inbound opens
//! are accepted. Sans-IO: messages in, messages out through the transport.

pub mod channel;
mod ops;
pub mod request;

use std::collections::{BTreeMap, VecDeque};

use crate::error::{sanitize, Error};
use crate::msg::Msg;
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

pub use channel::{ChanState, Channel, ChannelEvent, ExitStatus, OpenKind, Request};
pub use ops::ChannelOps;

/// A channel's identity inside one connection (our channel number).
pub type ChannelId = u32;

/// Where received channel data can go as it is decrypted, without being buffered first (the
/// driver's bridges write it to their sockets: issue 16). `offer` takes what it can of `data`
/// for channel `id` (`stderr`: extended data type 1) without blocking and returns how much;
/// the channel buffers the rest. A channel offers only while nothing older of that stream is
/// buffered, so the order holds; taken bytes reopen the window like read ones.
pub trait Deliver {
    fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> usize;
}

/// No direct destination: received data is buffered.
pub struct Buffered;

impl Deliver for Buffered {
    fn offer(&mut self, _id: ChannelId, _stderr: bool, _data: &[u8]) -> usize {
        0
    }
}

/// Default cap on channels open at once on one connection.
pub const DEFAULT_MAX_CHANNELS: usize = 1024;

/// Which side of the connection we are: decides what the peer may open toward us.
pub use crate::transport::Role;

/// Why one of our global requests was sent (to route its answer).
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobalKind {
    Keepalive,
    Forward { addr: String, port: u32 },
    /// An answer nobody waits for (cancel-tcpip-forward).
    Ignored,
}

/// A `forwarded-tcpip` channel the server opened for one of our remote forwards, waiting for
/// the application to accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub id: ChannelId,
    /// The channel type: `forwarded-tcpip` (client role) or `session` (server role).
    pub kind: String,
    /// The forward it arrived on (address and port as bound on the server).
    pub bound_addr: String,
    pub bound_port: u32,
    /// Who connected to it, as the server reports.
    pub origin_addr: String,
    pub origin_port: u32,
}

/// Results of answered global requests kept for their owner; older ones are dropped past this.
const MAX_RESULTS: usize = 64;

pub struct Connection {
    role: Role,
    channels: BTreeMap<ChannelId, Channel>,
    next_id: ChannelId,
    max_channels: usize,
    /// Our global requests waiting for an answer, in order: (ticket, kind).
    globals: VecDeque<(u64, GlobalKind)>,
    /// Answers not yet collected: (ticket, Ok(reply data) or Err).
    global_results: VecDeque<(u64, Result<Vec<u8>, Error>)>,
    next_ticket: u64,
    /// Remote forwards in force: (address, port as bound).
    forwards: Vec<(String, u32)>,
    incoming: VecDeque<Incoming>,
    /// Server role: session opens waiting for the application's answer.
    open_requests: VecDeque<OpenRequest>,
    events: VecDeque<(ChannelId, ChannelEvent)>,
}

/// A channel the peer asked to open (server role), waiting for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub kind: String,
    sender: u32,
    window: u32,
    max_packet: u32,
}

impl Connection {
    /// The role; always the client in a build without the `server` feature (as
    /// `Transport::role`), so LTO drops what only a server does.
    fn role(&self) -> Role {
        if cfg!(any(feature = "server", test)) {
            self.role
        } else {
            Role::Client
        }
    }

    pub fn new(role: Role, max_channels: usize) -> Connection {
        Connection {
            role,
            channels: BTreeMap::new(),
            next_id: 0,
            max_channels: max_channels.max(1),
            globals: VecDeque::new(),
            global_results: VecDeque::new(),
            next_ticket: 1,
            forwards: Vec::new(),
            incoming: VecDeque::new(),
            open_requests: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ----- channels -----

    fn free_id(&mut self) -> Result<ChannelId, Error> {
        // Closed channels whose owner is gone leave the table here.
        self.channels.retain(|_, c| !(c.state == ChanState::Closed && c.released));
        if self.channels.len() >= self.max_channels {
            return Err(Error::bad_argument(format!("too many open channels (the limit is {})", self.max_channels)));
        }
        while self.channels.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Ok(id)
    }

    /// Open a channel; `start` (exec/shell/subsystem) goes out as soon as it is confirmed.
    pub fn open(&mut self, kind: &OpenKind, start: Option<Request>, t: &mut Transport) -> Result<ChannelId, Error> {
        let id = self.free_id()?;
        log::debug!(target: "sshbridge", "channel {id}: opening {kind:?}");
        self.channels.insert(id, Channel::open(id, kind, start, t));
        Ok(id)
    }

    pub fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(&id)
    }
    pub fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.channels.get_mut(&id)
    }
    /// Channels in the table (open, closing, or closed and not yet released).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
    pub fn channel_ids(&self) -> Vec<ChannelId> {
        self.channels.keys().copied().collect()
    }

    /// The owner is done with the channel: close it (if it is not yet) and let the table drop
    /// it once both CLOSEs are exchanged.
    pub fn release(&mut self, id: ChannelId, t: &mut Transport) {
        if let Some(c) = self.channels.get_mut(&id) {
            c.released = true;
            c.close(t);
            if c.state == ChanState::Closed {
                self.channels.remove(&id);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<(ChannelId, ChannelEvent)> {
        self.events.pop_front()
    }

    // ----- global requests -----

    fn global(&mut self, name: &str, data: &[u8], kind: GlobalKind, t: &mut Transport) -> u64 {
        t.send_msg(&Msg::GlobalRequest { name, want_reply: true, data });
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.globals.push_back((ticket, kind));
        ticket
    }

    /// keepalive@openssh.com; any answer proves the peer alive.
    pub fn send_keepalive(&mut self, t: &mut Transport) {
        self.global("keepalive@openssh.com", &[], GlobalKind::Keepalive, t);
    }

    /// Global requests of ours (any kind) waiting for their answer.
    pub fn pending_globals(&self) -> u32 {
        u32::try_from(self.globals.len()).unwrap_or(u32::MAX)
    }

    /// Keepalives sent and not yet answered.
    pub fn pending_keepalives(&self) -> u32 {
        let n = self.globals.iter().filter(|(_, k)| *k == GlobalKind::Keepalive).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Ask the server to listen on `addr:port` (port 0: it picks) and forward connections to
    /// us (section 7.1). Collect the answer with `take_global_result`: the reply data holds
    /// the port when 0 was asked for.
    pub fn tcpip_forward(&mut self, addr: &str, port: u32, t: &mut Transport) -> u64 {
        let mut w = Writer::new();
        w.str(addr).u32(port);
        self.global("tcpip-forward", &w.into_vec(), GlobalKind::Forward { addr: addr.to_string(), port }, t)
    }

    /// Stop a remote forward; channels of it not yet accepted are closed.
    pub fn cancel_forward(&mut self, addr: &str, port: u32, t: &mut Transport) {
        self.forwards.retain(|(a, p)| !(a == addr && *p == port));
        let mut w = Writer::new();
        w.str(addr).u32(port);
        self.global("cancel-tcpip-forward", &w.into_vec(), GlobalKind::Ignored, t);
        let (gone, keep): (Vec<_>, Vec<_>) =
            self.incoming.drain(..).partition(|i| i.bound_addr == addr && i.bound_port == port);
        self.incoming = keep.into();
        for i in gone {
            self.release(i.id, t);
        }
    }

    /// The answer to global request `ticket`, once it arrived.
    pub fn take_global_result(&mut self, ticket: u64) -> Option<Result<Vec<u8>, Error>> {
        let i = self.global_results.iter().position(|(t, _)| *t == ticket)?;
        self.global_results.remove(i).map(|(_, r)| r)
    }

    /// The next channel the peer opened toward us, if any.
    pub fn take_opened(&mut self) -> Option<Incoming> {
        self.incoming.pop_front()
    }

    /// Server role: the oldest open the application has not answered yet.
    pub fn take_open_request(&mut self) -> Option<OpenRequest> {
        self.open_requests.pop_front()
    }

    /// Server role: accept an open (sends the confirmation); the channel serves requests.
    pub fn accept_open(&mut self, req: &OpenRequest, t: &mut Transport) -> Result<ChannelId, Error> {
        let id = match self.free_id() {
            Ok(id) => id,
            Err(e) => {
                self.refuse_open(req, 4, "too many channels", t);
                return Err(e);
            }
        };
        let mut ch = Channel::accept(id, req.sender, req.window, req.max_packet, t);
        ch.serve_requests = true;
        self.channels.insert(id, ch);
        log::debug!(target: "sshbridge", "channel {id}: {} opened by the client", req.kind);
        Ok(id)
    }

    /// Server role: refuse an open with a reason code (RFC 4254 section 5.1).
    pub fn refuse_open(&mut self, req: &OpenRequest, reason: u32, why: &str, t: &mut Transport) {
        t.send_msg(&Msg::ChannelOpenFailure { recipient: req.sender, reason, description: why.as_bytes() });
    }

    /// A forwarded connection waiting on the forward `addr:port`, if any.
    pub fn take_incoming(&mut self, addr: &str, port: u32) -> Option<Incoming> {
        let i = self.incoming.iter().position(|i| i.bound_addr == addr && i.bound_port == port)?;
        self.incoming.remove(i)
    }

    fn on_global_reply(&mut self, ok: bool, data: &[u8]) -> Result<(), Error> {
        let (ticket, kind) =
            self.globals.pop_front().ok_or_else(|| Error::protocol("global request reply without a request"))?;
        let result = match kind {
            GlobalKind::Keepalive | GlobalKind::Ignored => return Ok(()),
            GlobalKind::Forward { addr, port } => {
                if !ok {
                    Err(Error::ChannelRequestFailed(format!("server refused to listen on {addr}:{port}")))
                } else {
                    let bound = if port == 0 { Reader::new(data).u32().unwrap_or(0) } else { port };
                    if bound == 0 {
                        Err(Error::protocol("tcpip-forward for port 0 answered without a port"))
                    } else {
                        log::info!(target: "sshbridge", "remote forward: server listens on {addr}:{bound}");
                        self.forwards.push((addr, bound));
                        let mut w = Writer::new();
                        w.u32(bound);
                        Ok(w.into_vec())
                    }
                }
            }
        };
        if self.global_results.len() >= MAX_RESULTS {
            self.global_results.pop_front();
        }
        self.global_results.push_back((ticket, result));
        Ok(())
    }

    fn on_open(&mut self, kind: &str, sender: u32, window: u32, max_packet: u32, extra: &[u8], t: &mut Transport) {
        let refuse = |t: &mut Transport, reason: u32, why: &str| {
            log::debug!(target: "sshbridge", "refused a {kind:?} channel from the server: {why}");
            t.send_msg(&Msg::ChannelOpenFailure { recipient: sender, reason, description: why.as_bytes() });
        };
        if max_packet == 0 {
            return refuse(t, 2, "maximum packet size 0");
        }
        match (self.role(), kind) {
            (Role::Client, "forwarded-tcpip") => {
                let mut r = Reader::new(extra);
                let parsed = (|| -> Result<(String, u32, String, u32), Error> {
                    let a = sanitize(r.string()?);
                    let p = r.u32()?;
                    let oa = sanitize(r.string()?);
                    let op = r.u32()?;
                    Ok((a, p, oa, op))
                })();
                let Ok((addr, port, origin_addr, origin_port)) = parsed else {
                    return refuse(t, 1, "malformed forwarded-tcpip open");
                };
                let Some((bound_addr, bound_port)) =
                    self.forwards.iter().find(|(a, p)| *p == port && (a == &addr || a.is_empty())).cloned()
                else {
                    return refuse(t, 1, "no such forward");
                };
                let Ok(id) = self.free_id() else {
                    return refuse(t, 4, "too many channels");
                };
                log::debug!(target: "sshbridge", "channel {id}: forwarded-tcpip from {origin_addr}:{origin_port} on {bound_addr}:{bound_port}");
                self.channels.insert(id, Channel::accept(id, sender, window, max_packet, t));
                self.incoming.push_back(Incoming { id, kind: "forwarded-tcpip".into(), bound_addr, bound_port, origin_addr, origin_port });
            }
            // Sessions, x11, auth-agent and anything else toward a client are not offered.
            (Role::Client, _) => refuse(t, 1, "not supported by this client"),
            (Role::Server, "session") => {
                if window == 0 {
                    return refuse(t, 2, "initial window 0");
                }
                self.channels.retain(|_, c| !(c.state == ChanState::Closed && c.released));
                if self.channels.len() + self.open_requests.len() >= self.max_channels {
                    return refuse(t, 4, "too many channels");
                }
                self.open_requests.push_back(OpenRequest { kind: kind.to_string(), sender, window, max_packet });
            }
            (Role::Server, _) => refuse(t, 1, "not supported"),
        }
    }

    /// Handle a connection-protocol message (numbers 80 to 100); received data is buffered.
    pub fn handle(&mut self, m: Msg<'_>, t: &mut Transport) -> Result<(), Error> {
        self.handle_to(m, t, &mut Buffered)
    }

    /// `handle`, offering received channel data to `deliver` first.
    pub fn handle_to(&mut self, m: Msg<'_>, t: &mut Transport, deliver: &mut dyn Deliver) -> Result<(), Error> {
        match m {
            Msg::GlobalRequest { want_reply, .. } => {
                // We offer no global services: keepalive@openssh.com, hostkeys-00@openssh.com and
                // the rest get a failure when they ask for an answer (section 4).
                if want_reply {
                    t.send_msg(&Msg::RequestFailure);
                }
                Ok(())
            }
            Msg::RequestSuccess { data } => self.on_global_reply(true, data),
            Msg::RequestFailure => self.on_global_reply(false, &[]),
            Msg::ChannelOpen { kind, sender, window, max_packet, extra } => {
                self.on_open(kind, sender, window, max_packet, extra, t);
                Ok(())
            }
            Msg::ChannelOpenConfirmation { recipient, .. }
            | Msg::ChannelOpenFailure { recipient, .. }
            | Msg::ChannelWindowAdjust { recipient, .. }
            | Msg::ChannelData { recipient, .. }
            | Msg::ChannelExtendedData { recipient, .. }
            | Msg::ChannelEof { recipient }
            | Msg::ChannelClose { recipient }
            | Msg::ChannelRequest { recipient, .. }
            | Msg::ChannelSuccess { recipient }
            | Msg::ChannelFailure { recipient } => {
                let ch = self
                    .channels
                    .get_mut(&recipient)
                    .ok_or_else(|| Error::protocol(format!("message for unknown channel {recipient}")))?;
                let ev = ch.handle_to(m, t, deliver)?;
                if let Some(ev) = &ev {
                    log::debug!(target: "sshbridge", "channel {recipient}: {ev:?}");
                }
                let drop_now = ch.state == ChanState::Closed && ch.released;
                if drop_now {
                    self.channels.remove(&recipient);
                }
                if let Some(ev) = ev {
                    if self.events.len() < 4 * self.max_channels {
                        self.events.push_back((recipient, ev));
                    }
                }
                Ok(())
            }
            other => Err(Error::internal(format!("{other:?} routed to the connection layer"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algs::Preferences;
    use crate::random::TestRng;
    use crate::transport::{HostKeyCheck, RekeyLimits};
    use std::time::Instant;

    fn transport() -> Transport {
        Transport::new(Preferences::default(), HostKeyCheck::default(), RekeyLimits::default(), Box::new(TestRng::new(5)), Instant::now())
    }

    /// The messages the connection sent, decoded (they wait in the unkeyed transport's queue).
    fn sent(t: &Transport) -> Vec<Vec<u8>> {
        t.queued_payloads()
    }

    fn forwarded_open(addr: &str, port: u32) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(addr).u32(port).str("192.0.2.7").u32(5555);
        w.into_vec()
    }

    fn open_failure_reason(p: &[u8]) -> Option<(u32, u32)> {
        match Msg::decode(p).ok()? {
            Msg::ChannelOpenFailure { recipient, reason, .. } => Some((recipient, reason)),
            _ => None,
        }
    }

    #[test]
    fn forwarded_tcpip_only_for_a_forward_we_asked_for() {
        let mut t = transport();
        let mut c = Connection::new(Role::Client, 8);
        let extra = forwarded_open("127.0.0.1", 4000);
        c.handle(Msg::ChannelOpen { kind: "forwarded-tcpip", sender: 7, window: 100, max_packet: 100, extra: &extra }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((7, 1)));
        assert_eq!(c.channel_count(), 0);
        // Ask for port 0; the server answers with the port it picked.
        let ticket = c.tcpip_forward("127.0.0.1", 0, &mut t);
        c.handle(Msg::RequestSuccess { data: &4000u32.to_be_bytes() }, &mut t).unwrap();
        let port = c.take_global_result(ticket).unwrap().unwrap();
        assert_eq!(port, 4000u32.to_be_bytes());
        c.handle(Msg::ChannelOpen { kind: "forwarded-tcpip", sender: 7, window: 100, max_packet: 100, extra: &extra }, &mut t).unwrap();
        assert!(matches!(Msg::decode(sent(&t).last().unwrap()).unwrap(), Msg::ChannelOpenConfirmation { recipient: 7, .. }));
        let inc = c.take_incoming("127.0.0.1", 4000).unwrap();
        assert_eq!((inc.origin_addr.as_str(), inc.origin_port), ("192.0.2.7", 5555));
        assert_eq!(c.channel(inc.id).map(|ch| ch.state), Some(ChanState::Open));
        // Another port, a session, x11: refused.
        let other = forwarded_open("127.0.0.1", 4001);
        for (kind, extra) in [("forwarded-tcpip", &other[..]), ("session", &[][..]), ("x11", &[][..])] {
            c.handle(Msg::ChannelOpen { kind, sender: 8, window: 100, max_packet: 100, extra }, &mut t).unwrap();
            assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((8, 1)), "{kind}");
        }
        // After cancelling, the forward's connections are refused again.
        c.cancel_forward("127.0.0.1", 4000, &mut t);
        c.handle(Msg::ChannelOpen { kind: "forwarded-tcpip", sender: 9, window: 100, max_packet: 100, extra: &extra }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((9, 1)));
    }

    #[test]
    fn server_role_serves_session_requests_in_order() {
        let mut t = transport();
        let mut c = Connection::new(Role::Server, 2);
        c.handle(Msg::ChannelOpen { kind: "session", sender: 40, window: 1 << 20, max_packet: 32768, extra: &[] }, &mut t).unwrap();
        // Nothing is confirmed before the application accepts.
        assert!(sent(&t).is_empty());
        let req = c.take_open_request().unwrap();
        assert_eq!(req.kind, "session");
        let inc = Incoming { id: c.accept_open(&req, &mut t).unwrap(), kind: req.kind.clone(), bound_addr: String::new(), bound_port: 0, origin_addr: String::new(), origin_port: 0 };
        // A zero initial window is refused.
        c.handle(Msg::ChannelOpen { kind: "session", sender: 39, window: 0, max_packet: 32768, extra: &[] }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((39, 2)));
        assert!(matches!(Msg::decode(&sent(&t)[0]).unwrap(), Msg::ChannelOpenConfirmation { recipient: 40, .. }));
        // x11 and direct-tcpip are refused; the cap gives reason 4.
        c.handle(Msg::ChannelOpen { kind: "x11", sender: 41, window: 10, max_packet: 10, extra: &[] }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((41, 1)));
        c.handle(Msg::ChannelOpen { kind: "session", sender: 42, window: 10, max_packet: 10, extra: &[] }, &mut t).unwrap();
        c.handle(Msg::ChannelOpen { kind: "session", sender: 43, window: 10, max_packet: 10, extra: &[] }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((43, 4)));
        // env (want reply), pty (want reply), an unknown request, exec: in order.
        let env = Request::Env { name: "LANG".into(), value: "C".into() };
        let exec = Request::Exec(b"id".to_vec());
        for (kind, data) in [("env", env.data()), ("auth-agent-req@openssh.com", vec![]), ("exec", exec.data())] {
            c.handle(Msg::ChannelRequest { recipient: inc.id, kind, want_reply: true, data: &data }, &mut t).unwrap();
        }
        // Replies go in order: the unknown one waits behind env (nothing sent yet), then fails.
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((43, 4)));
        let ch = c.channel_mut(inc.id).unwrap();
        assert_eq!(ch.peer_request(), Some(&env));
        let before = sent(&t).len();
        assert_eq!(ch.answer_request(false, &mut t), Some(env));
        let replies: Vec<_> = sent(&t)[before..].iter().map(|p| Msg::decode(p).unwrap().encode()).collect();
        assert_eq!(replies, vec![Msg::ChannelFailure { recipient: 40 }.encode(), Msg::ChannelFailure { recipient: 40 }.encode()]);
        assert_eq!(ch.peer_request(), Some(&exec));
        assert_eq!(ch.answer_request(true, &mut t), Some(exec));
        assert!(matches!(Msg::decode(sent(&t).last().unwrap()).unwrap(), Msg::ChannelSuccess { recipient: 40 }));
        assert_eq!(ch.answer_request(true, &mut t), None);
        ch.send_exit(&ExitStatus::Code(3), &mut t);
        let last = sent(&t).last().cloned().unwrap();
        assert!(matches!(Msg::decode(&last).unwrap(), Msg::ChannelRequest { recipient: 40, kind: "exit-status", want_reply: false, data: [0, 0, 0, 3] }));
        // A malformed exec (trailing bytes) is a protocol error.
        let mut bad = Request::Exec(b"x".to_vec()).data();
        bad.push(1);
        assert!(c.handle(Msg::ChannelRequest { recipient: inc.id, kind: "exec", want_reply: true, data: &bad }, &mut t).is_err());
    }

    #[test]
    fn global_replies_are_matched_in_order() {
        let mut t = transport();
        let mut c = Connection::new(Role::Client, 8);
        c.send_keepalive(&mut t);
        let fwd = c.tcpip_forward("", 2222, &mut t);
        c.send_keepalive(&mut t);
        assert_eq!(c.pending_keepalives(), 2);
        c.handle(Msg::RequestFailure, &mut t).unwrap(); // the first keepalive
        assert_eq!(c.take_global_result(fwd), None);
        c.handle(Msg::RequestFailure, &mut t).unwrap(); // the forward: refused
        assert!(c.take_global_result(fwd).unwrap().is_err());
        c.handle(Msg::RequestSuccess { data: &[] }, &mut t).unwrap();
        assert_eq!(c.pending_keepalives(), 0);
        // A reply to nothing is a protocol error.
        assert!(c.handle(Msg::RequestFailure, &mut t).is_err());
    }

    #[test]
    fn the_channel_cap_holds_and_released_channels_leave_the_table() {
        let mut t = transport();
        let mut c = Connection::new(Role::Client, 2);
        let a = c.open(&OpenKind::Session, None, &mut t).unwrap();
        let b = c.open(&OpenKind::Session, None, &mut t).unwrap();
        assert!(c.open(&OpenKind::Session, None, &mut t).is_err());
        // An inbound open beyond the cap is refused with "resource shortage" (4).
        let ticket = c.tcpip_forward("", 1, &mut t);
        c.handle(Msg::RequestSuccess { data: &[] }, &mut t).unwrap();
        assert!(c.take_global_result(ticket).unwrap().is_ok());
        let extra = forwarded_open("", 1);
        c.handle(Msg::ChannelOpen { kind: "forwarded-tcpip", sender: 3, window: 10, max_packet: 10, extra: &extra }, &mut t).unwrap();
        assert_eq!(sent(&t).last().and_then(|p| open_failure_reason(p)), Some((3, 4)));
        // Both CLOSEs exchanged and the owner gone: the slot is free again.
        c.handle(Msg::ChannelOpenConfirmation { recipient: a, sender: 50, window: 10, max_packet: 10, extra: &[] }, &mut t).unwrap();
        c.release(a, &mut t);
        assert_eq!(c.channel_count(), 2, "still waiting for the server's CLOSE");
        c.handle(Msg::ChannelClose { recipient: a }, &mut t).unwrap();
        assert_eq!(c.channel_count(), 1);
        let d = c.open(&OpenKind::Session, None, &mut t).unwrap();
        assert_ne!(d, b);
        // A closed channel whose owner still holds it stays, with its exit status readable.
        c.handle(Msg::ChannelOpenConfirmation { recipient: b, sender: 51, window: 10, max_packet: 10, extra: &[] }, &mut t).unwrap();
        let mut w = Writer::new();
        w.u32(3);
        c.handle(Msg::ChannelRequest { recipient: b, kind: "exit-status", want_reply: false, data: &w.into_vec() }, &mut t).unwrap();
        c.handle(Msg::ChannelClose { recipient: b }, &mut t).unwrap();
        assert_eq!(c.channel(b).and_then(|ch| ch.exit.clone()), Some(ExitStatus::Code(3)));
        // Messages for a channel that is gone are a protocol error.
        assert!(c.handle(Msg::ChannelData { recipient: a, data: b"x" }, &mut t).is_err());
    }

    #[test]
    fn request_answers_go_to_their_tickets_in_order() {
        let mut t = transport();
        let mut c = Connection::new(Role::Client, 4);
        let id = c.open(&OpenKind::Session, None, &mut t).unwrap();
        c.handle(Msg::ChannelOpenConfirmation { recipient: id, sender: 9, window: 100, max_packet: 100, extra: &[] }, &mut t).unwrap();
        let ch = c.channel_mut(id).unwrap();
        let env = ch.request(Request::Env { name: "LANG".into(), value: "C".into() }, &mut t).unwrap().unwrap();
        assert_eq!(ch.request(Request::WindowChange { cols: 1, rows: 1, width_px: 0, height_px: 0 }, &mut t).unwrap(), None);
        let exec = ch.request(Request::Exec(b"true".to_vec()), &mut t).unwrap().unwrap();
        c.handle(Msg::ChannelFailure { recipient: id }, &mut t).unwrap();
        c.handle(Msg::ChannelSuccess { recipient: id }, &mut t).unwrap();
        let ch = c.channel_mut(id).unwrap();
        let e = ch.take_result(env).unwrap().unwrap_err();
        assert!(e.to_string().contains("environment variable \"LANG\""), "{e}");
        assert_eq!(ch.take_result(exec), Some(Ok(())));
        assert!(ch.started);
        assert_eq!(ch.take_result(exec), None, "taken once");
    }
}
