//! The connection protocol, RFC 4254, for either role: the channel table (section 5: any
//! number of channels up to a cap, each with its own windows and bounded buffers), global
//! requests with want-reply bookkeeping answered in order (section 4), and TCP/IP port
//! forwarding (section 7: `tcpip-forward` / `cancel-tcpip-forward`, inbound `forwarded-tcpip`
//! channels accepted only for a forward we asked for). The role decides which inbound opens
//! are accepted. Sans-IO: messages in, messages out through the transport.

pub mod channel;

use std::collections::{BTreeMap, VecDeque};

use crate::error::{sanitize, Error};
use crate::msg::Msg;
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

pub use channel::{ChanState, Channel, ChannelEvent, ExitStatus, OpenKind, Request};

/// A channel's identity inside one connection (our channel number).
pub type ChannelId = u32;

/// Default cap on channels open at once on one connection.
pub const DEFAULT_MAX_CHANNELS: usize = 1024;

/// Which side of the connection we are: decides what the peer may open toward us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

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
    events: VecDeque<(ChannelId, ChannelEvent)>,
}

impl Connection {
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
        match (self.role, kind) {
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
                self.incoming.push_back(Incoming { id, bound_addr, bound_port, origin_addr, origin_port });
            }
            // Sessions, x11, auth-agent and anything else toward a client are not offered.
            (Role::Client, _) => refuse(t, 1, "not supported by this client"),
            (Role::Server, _) => refuse(t, 1, "not supported"),
        }
    }

    /// Handle a connection-protocol message (numbers 80 to 100).
    pub fn handle(&mut self, m: Msg<'_>, t: &mut Transport) -> Result<(), Error> {
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
                let ev = ch.handle(m, t)?;
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
