//! One channel of the connection protocol, RFC 4254 sections 5, 6 and 7, for either role:
//! open (5.1; `session` and `direct-tcpip` outbound, any kind inbound), data and stderr as
//! extended data type 1 (5.2), both flow-control windows and the peer's maximum packet, EOF and
//! CLOSE in both directions (5.3), channel requests with their replies matched in order (5.4):
//! pty-req (6.2), env (6.4), exec / shell / subsystem (6.5), window-change (6.7), signal
//! (6.9), exit-status and exit-signal (6.10), and failure answers to requests we do not know.
//! Buffers are bounded by the window we advertise.

mod data;

use std::collections::VecDeque;

use super::{Buffered, Deliver};
use crate::error::{sanitize, Error};
use crate::msg::Msg;
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

pub use super::request::Request;

/// The window we advertise, and the most we buffer per channel.
pub const WINDOW: u32 = 2 * 1024 * 1024;
/// The largest data packet we accept (advertised maximum packet size).
pub const MAX_PACKET: u32 = 32768;
/// We never send a data chunk larger than this, whatever the peer allows (stays under the
/// 35000-byte packet every implementation must accept).
const MAX_SEND_CHUNK: u32 = 32768;

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit-status`: the command's exit code.
    Code(u32),
    /// `exit-signal`: the signal name without "SIG" (e.g. "TERM"), core-dump flag, message.
    Signal { name: String, core_dumped: bool, message: String },
}

impl ExitStatus {
    /// The shell convention: the code itself, or 128 + the signal number for a signal.
    pub fn shell_code(&self) -> i32 {
        match self {
            ExitStatus::Code(c) => i32::try_from(*c).unwrap_or(255),
            ExitStatus::Signal { name, .. } => 128 + signal_number(name),
        }
    }
}

/// RFC 4254 section 6.10 signal names and the common Linux numbers.
const SIGNALS: [(&str, i32); 13] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("ABRT", 6),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
];

/// A signal name (without "SIG") to its Linux number; 0 for a name not in section 6.10.
pub fn signal_number(name: &str) -> i32 {
    SIGNALS.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
}

/// A Linux signal number to its section 6.10 name (a server reporting exit-signal).
pub fn signal_name(number: i32) -> Option<&'static str> {
    SIGNALS.iter().find(|(_, v)| *v == number).map(|(n, _)| *n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChanState {
    /// CHANNEL_OPEN sent, no answer yet.
    Opening,
    /// Open: data and requests flow.
    Open,
    /// We sent CLOSE; the peer's CLOSE has not arrived yet.
    Closing,
    /// Both CLOSEs exchanged (or the open failed).
    Closed,
}

/// What happened to a channel, reported to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The peer confirmed the open.
    Opened,
    /// The peer accepted the command, shell or subsystem.
    Started,
    Failed(Error),
    Eof,
    Closed,
    /// The peer asked for something (server role): answer with `answer_request`.
    Request,
}

/// What a channel is opened for (RFC 4254 sections 6.1 and 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenKind {
    Session,
    /// A TCP connection from the server to `host:port`, on behalf of `origin`.
    DirectTcpip { host: String, port: u32, origin_host: String, origin_port: u32 },
}

impl OpenKind {
    fn name(&self) -> &'static str {
        match self {
            OpenKind::Session => "session",
            OpenKind::DirectTcpip { .. } => "direct-tcpip",
        }
    }
    fn extra(&self) -> Vec<u8> {
        let mut w = Writer::new();
        if let OpenKind::DirectTcpip { host, port, origin_host, origin_port } = self {
            w.str(host).u32(*port).str(origin_host).u32(*origin_port);
        }
        w.into_vec()
    }
}

/// Results of answered requests kept for their owner; older ones are dropped past this.
const MAX_RESULTS: usize = 64;
/// Requests of the peer waiting for the application, per channel (server role).
const MAX_PEER_REQUESTS: usize = 64;

#[derive(Debug, Clone, Copy)]
enum Sink {
    Stdout,
    Stderr,
    Discard,
}

#[derive(Debug)]
pub struct Channel {
    pub local_id: u32,
    remote_id: u32,
    pub state: ChanState,
    remote_window: u32,
    remote_max_packet: u32,
    /// What the peer may still send us.
    local_window: u32,
    /// Consumed by the application and not yet given back with WINDOW_ADJUST.
    unacked: u32,
    stdout: VecDeque<u8>,
    stderr: VecDeque<u8>,
    pub eof_received: bool,
    pub eof_sent: bool,
    pub close_received: bool,
    pub close_sent: bool,
    pub exit: Option<ExitStatus>,
    /// The open failed (OPEN_FAILURE), or the start request was refused.
    pub error: Option<Error>,
    /// exec / shell / subsystem accepted.
    pub started: bool,
    /// Sent on confirmation: the start request of `Client::open_session(command)`.
    auto_start: Option<Request>,
    /// want_reply requests of ours waiting for an answer, in order: (ticket, request).
    pending: VecDeque<(u64, Request)>,
    /// Answers not yet collected by their owner.
    results: VecDeque<(u64, Result<(), Error>)>,
    next_ticket: u64,
    /// `close` was called before the peer confirmed the open.
    close_requested: bool,
    /// The owner (an application handle) is gone: the table may drop the channel once closed.
    pub released: bool,
    /// Server role: session requests from the peer wait for the application's answer.
    pub(crate) serve_requests: bool,
    /// Those requests, in order, with their want_reply flag; `None` for a kind we do not serve,
    /// refused when its turn comes (replies go in order).
    peer_requests: VecDeque<(Option<Request>, bool)>,
}

impl Channel {
    fn new(local_id: u32, state: ChanState) -> Channel {
        Channel {
            local_id,
            remote_id: 0,
            state,
            remote_window: 0,
            remote_max_packet: 0,
            local_window: WINDOW,
            unacked: 0,
            stdout: VecDeque::new(),
            stderr: VecDeque::new(),
            eof_received: false,
            eof_sent: false,
            close_received: false,
            close_sent: false,
            exit: None,
            error: None,
            started: false,
            auto_start: None,
            pending: VecDeque::new(),
            results: VecDeque::new(),
            next_ticket: 1,
            close_requested: false,
            released: false,
            serve_requests: false,
            peer_requests: VecDeque::new(),
        }
    }

    /// Open a channel of `kind`; `start` is sent as soon as the peer confirms.
    pub fn open(local_id: u32, kind: &OpenKind, start: Option<Request>, t: &mut Transport) -> Channel {
        let extra = kind.extra();
        t.send_msg(&Msg::ChannelOpen { kind: kind.name(), sender: local_id, window: WINDOW, max_packet: MAX_PACKET, extra: &extra });
        let mut ch = Channel::new(local_id, ChanState::Opening);
        ch.auto_start = start;
        ch
    }

    /// Accept a channel the peer opened (sends the confirmation).
    pub fn accept(local_id: u32, remote_id: u32, window: u32, max_packet: u32, t: &mut Transport) -> Channel {
        t.send_msg(&Msg::ChannelOpenConfirmation {
            recipient: remote_id,
            sender: local_id,
            window: WINDOW,
            max_packet: MAX_PACKET,
            extra: &[],
        });
        let mut ch = Channel::new(local_id, ChanState::Open);
        ch.remote_id = remote_id;
        ch.remote_window = window;
        ch.remote_max_packet = max_packet;
        ch
    }

    /// Handle a connection-protocol message addressed to this channel (received data is
    /// buffered).
    pub fn handle(&mut self, m: Msg<'_>, t: &mut Transport) -> Result<Option<ChannelEvent>, Error> {
        self.handle_to(m, t, &mut Buffered)
    }

    /// `handle`, offering received data to `deliver` first (`Deliver`).
    pub fn handle_to(&mut self, m: Msg<'_>, t: &mut Transport, deliver: &mut dyn Deliver) -> Result<Option<ChannelEvent>, Error> {
        if self.state == ChanState::Closed {
            // RFC 4254 section 5.3: nothing is expected after CLOSE; late messages are dropped.
            return Ok(None);
        }
        if self.state == ChanState::Opening {
            return match m {
                Msg::ChannelOpenConfirmation { sender, window, max_packet, .. } => {
                    if max_packet == 0 {
                        return Err(Error::protocol("channel maximum packet size 0"));
                    }
                    self.remote_id = sender;
                    self.remote_window = window;
                    self.remote_max_packet = max_packet;
                    self.state = ChanState::Open;
                    if self.close_requested {
                        self.close(t);
                        return Ok(None);
                    }
                    if let Some(req) = self.auto_start.take() {
                        self.request(req, t)?;
                        return Ok(None);
                    }
                    Ok(Some(ChannelEvent::Opened))
                }
                Msg::ChannelOpenFailure { reason, description, .. } => {
                    self.state = ChanState::Closed;
                    let e = Error::ChannelOpenFailed { reason, description: sanitize(description) };
                    self.error = Some(e.clone());
                    Ok(Some(ChannelEvent::Failed(e)))
                }
                other => Err(Error::protocol(format!("{} on a channel that is not open yet", short(&other)))),
            };
        }
        match m {
            Msg::ChannelOpenConfirmation { .. } | Msg::ChannelOpenFailure { .. } => {
                Err(Error::protocol("second open confirmation/failure for one channel"))
            }
            Msg::ChannelWindowAdjust { bytes, .. } => {
                if self.eof_sent {
                    return Ok(None);
                }
                if self.serve_requests {
                    // Server role: an overflowing adjust saturates (HOSTILE.md S9).
                    self.remote_window = self.remote_window.saturating_add(bytes);
                    return Ok(None);
                }
                self.remote_window = self
                    .remote_window
                    .checked_add(bytes)
                    .ok_or_else(|| Error::protocol("WINDOW_ADJUST makes the window exceed 2^32-1"))?;
                Ok(None)
            }
            Msg::ChannelData { data, .. } => self.on_data(data, Sink::Stdout, t, deliver),
            Msg::ChannelExtendedData { code, data, .. } => {
                // A client's extended data has no reader on a server (OpenSSH ignores it too).
                let sink = if code == 1 && !self.serve_requests { Sink::Stderr } else { Sink::Discard };
                self.on_data(data, sink, t, deliver)
            }
            Msg::ChannelEof { .. } => {
                let first = !self.eof_received;
                self.eof_received = true;
                Ok(first.then_some(ChannelEvent::Eof))
            }
            Msg::ChannelClose { .. } => {
                self.close_received = true;
                self.eof_received = true;
                if !self.close_sent {
                    t.send_msg(&Msg::ChannelClose { recipient: self.remote_id });
                    self.close_sent = true;
                }
                self.state = ChanState::Closed;
                // Requests still waiting will never be answered.
                while let Some((ticket, req)) = self.pending.pop_front() {
                    self.push_result(ticket, Err(Error::ChannelRequestFailed(format!("channel closed before the {} request was answered", req.kind()))));
                }
                Ok(Some(ChannelEvent::Closed))
            }
            Msg::ChannelRequest { kind, want_reply, data, .. } => {
                if self.serve_requests {
                    let req = Request::parse(kind, data)?;
                    if req.is_some() || !self.peer_requests.is_empty() {
                        if self.peer_requests.len() >= MAX_PEER_REQUESTS {
                            return Err(Error::protocol("too many channel requests waiting for an answer"));
                        }
                        let known = req.is_some();
                        self.peer_requests.push_back((req, want_reply));
                        return Ok(known.then_some(ChannelEvent::Request));
                    }
                }
                self.on_request(kind, want_reply, data, t)?;
                Ok(None)
            }
            Msg::ChannelSuccess { .. } | Msg::ChannelFailure { .. } => {
                let ok = matches!(m, Msg::ChannelSuccess { .. });
                let (ticket, req) =
                    self.pending.pop_front().ok_or_else(|| Error::protocol("channel request reply without a request"))?;
                let result = if ok { Ok(()) } else { Err(req.refused()) };
                let mut ev = None;
                if req.starts() {
                    if ok {
                        self.started = true;
                        ev = Some(ChannelEvent::Started);
                    } else {
                        let e = req.refused();
                        self.error = Some(e.clone());
                        self.close(t);
                        ev = Some(ChannelEvent::Failed(e));
                    }
                }
                self.push_result(ticket, result);
                Ok(ev)
            }
            other => Err(Error::internal(format!("message {} routed to a channel", short(&other)))),
        }
    }

    fn push_result(&mut self, ticket: u64, r: Result<(), Error>) {
        if self.results.len() >= MAX_RESULTS {
            self.results.pop_front();
        }
        self.results.push_back((ticket, r));
    }

    /// Send a channel request. Returns the ticket to collect its answer with `take_result`
    /// (None when it wants no reply).
    pub fn request(&mut self, req: Request, t: &mut Transport) -> Result<Option<u64>, Error> {
        if self.state != ChanState::Open || self.close_sent {
            return Err(Error::ChannelRequestFailed(format!("{} on a channel that is not open", req.kind())));
        }
        let want_reply = req.want_reply();
        t.send_msg(&Msg::ChannelRequest { recipient: self.remote_id, kind: req.kind(), want_reply, data: &req.data() });
        if !want_reply {
            return Ok(None);
        }
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.pending.push_back((ticket, req));
        Ok(Some(ticket))
    }

    /// The answer to request `ticket`, once it arrived.
    pub fn take_result(&mut self, ticket: u64) -> Option<Result<(), Error>> {
        let i = self.results.iter().position(|(t, _)| *t == ticket)?;
        self.results.remove(i).map(|(_, r)| r)
    }

    /// Whether the start request (exec/shell/subsystem) has been answered either way.
    pub fn start_settled(&self) -> bool {
        self.started || self.error.is_some() || self.state == ChanState::Closed
    }

    fn on_request(&mut self, kind: &str, want_reply: bool, data: &[u8], t: &mut Transport) -> Result<(), Error> {
        let mut r = Reader::new(data);
        match kind {
            "exit-status" => {
                // First valid status wins; malformed ones are ignored, not fatal.
                if let (Ok(code), Ok(())) = (r.u32(), r.finish()) {
                    if self.exit.is_none() {
                        self.exit = Some(ExitStatus::Code(code));
                    }
                }
            }
            "exit-signal" => {
                let parsed = (|| -> Result<ExitStatus, Error> {
                    let name = r.string()?;
                    let core_dumped = r.bool()?;
                    let message = r.string()?;
                    let _lang = r.string()?;
                    Ok(ExitStatus::Signal {
                        name: sanitize(name.get(..name.len().min(32)).unwrap_or(&[])),
                        core_dumped,
                        message: sanitize(message.get(..message.len().min(1024)).unwrap_or(&[])),
                    })
                })();
                if let (Ok(st), None) = (parsed, &self.exit) {
                    self.exit = Some(st);
                }
            }
            _ => {}
        }
        if want_reply {
            // Unknown requests (keepalive@openssh.com and friends) get a failure, never silence.
            let known = matches!(kind, "exit-status" | "exit-signal");
            let m = if known {
                Msg::ChannelSuccess { recipient: self.remote_id }
            } else {
                Msg::ChannelFailure { recipient: self.remote_id }
            };
            t.send_msg(&m);
        }
        Ok(())
    }

    // ----- serving the peer's requests (server role) -----

    /// The oldest request of the peer not answered yet.
    pub fn peer_request(&self) -> Option<&Request> {
        self.peer_requests.front().and_then(|(r, _)| r.as_ref())
    }

    /// Answer the oldest request: SUCCESS or FAILURE when the peer wants a reply (RFC 4254
    /// section 5.4: replies go in order), then refuse the unknown ones queued behind it.
    /// Returns the request answered.
    pub fn answer_request(&mut self, ok: bool, t: &mut Transport) -> Option<Request> {
        let (req, want_reply) = self.peer_requests.pop_front()?;
        self.reply(ok && req.is_some(), want_reply, t);
        while let Some((None, want_reply)) = self.peer_requests.front().cloned() {
            self.peer_requests.pop_front();
            self.reply(false, want_reply, t);
        }
        req
    }

    fn reply(&mut self, ok: bool, want_reply: bool, t: &mut Transport) {
        if want_reply && !self.close_sent {
            let m = if ok { Msg::ChannelSuccess { recipient: self.remote_id } } else { Msg::ChannelFailure { recipient: self.remote_id } };
            t.send_msg(&m);
        }
    }

    /// Report how the program ended (section 6.10): an exit code, or a signal (name without
    /// "SIG", core dumped, message).
    pub fn send_exit(&mut self, status: &ExitStatus, t: &mut Transport) {
        if self.close_sent || self.state != ChanState::Open {
            return;
        }
        let mut w = Writer::new();
        let kind = match status {
            ExitStatus::Code(c) => {
                w.u32(*c);
                "exit-status"
            }
            ExitStatus::Signal { name, core_dumped, message } => {
                w.str(name).bool(*core_dumped).str(message).str("");
                "exit-signal"
            }
        };
        t.send_msg(&Msg::ChannelRequest { recipient: self.remote_id, kind, want_reply: false, data: &w.into_vec() });
    }

    // ----- what the application does (sending and reading data: `data`) -----

    /// Our side will send no more data (RFC 4254 section 5.3).
    pub fn send_eof(&mut self, t: &mut Transport) {
        if !self.eof_sent && !self.close_sent && self.state == ChanState::Open {
            t.send_msg(&Msg::ChannelEof { recipient: self.remote_id });
            self.eof_sent = true;
        }
    }

    /// Close our side; the channel is done when the peer's CLOSE arrives.
    pub fn close(&mut self, t: &mut Transport) {
        match self.state {
            ChanState::Opening => self.close_requested = true, // closed when the confirmation arrives
            ChanState::Closed => {}
            ChanState::Open | ChanState::Closing => {
                if !self.close_sent {
                    t.send_msg(&Msg::ChannelClose { recipient: self.remote_id });
                    self.close_sent = true;
                }
                self.state = if self.close_received { ChanState::Closed } else { ChanState::Closing };
            }
        }
    }

    pub fn remote_id(&self) -> u32 {
        self.remote_id
    }
}

fn short(m: &Msg<'_>) -> String {
    let s = format!("{m:?}");
    s.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("message").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algs::Preferences;
    use crate::random::TestRng;
    use crate::transport::{HostKeyCheck, RekeyLimits};
    use std::time::Instant;

    fn transport() -> Transport {
        Transport::new(Preferences::default(), HostKeyCheck::default(), RekeyLimits::default(), Box::new(TestRng::new(3)), Instant::now())
    }

    pub(super) fn started(window: u32, max_packet: u32) -> (Channel, Transport) {
        let mut t = transport();
        let mut ch = Channel::open(0, &OpenKind::Session, Some(Request::Exec(b"cmd".to_vec())), &mut t);
        assert_eq!(ch.state, ChanState::Opening);
        let conf = Msg::ChannelOpenConfirmation { recipient: 0, sender: 9, window, max_packet, extra: &[] };
        assert_eq!(ch.handle(conf, &mut t).unwrap(), None);
        assert_eq!(ch.state, ChanState::Open);
        assert!(!ch.started);
        assert_eq!(ch.handle(Msg::ChannelSuccess { recipient: 0 }, &mut t).unwrap(), Some(ChannelEvent::Started));
        (ch, t)
    }

    #[test]
    fn our_window_is_enforced_and_reopened_by_reading() {
        let (mut ch, mut t) = started(1000, 100);
        let chunk = vec![7u8; MAX_PACKET as usize];
        for _ in 0..(WINDOW / MAX_PACKET) {
            ch.handle(Msg::ChannelData { recipient: 0, data: &chunk }, &mut t).unwrap();
        }
        assert_eq!(ch.stdout_len(), WINDOW as usize);
        let e = ch.handle(Msg::ChannelData { recipient: 0, data: b"x" }, &mut t).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        // Memory never exceeds the window: the byte was refused, not buffered.
        assert_eq!(ch.stdout_len(), WINDOW as usize);
        let (mut ch, mut t) = started(1000, 100);
        for _ in 0..(WINDOW / MAX_PACKET) {
            ch.handle(Msg::ChannelData { recipient: 0, data: &chunk }, &mut t).unwrap();
        }
        let mut buf = vec![0u8; (WINDOW / 4) as usize];
        assert_eq!(ch.read(false, &mut buf, &mut t), buf.len());
        // A quarter of the window was consumed and given back: that much more is accepted.
        for _ in 0..(WINDOW / 4 / MAX_PACKET) {
            ch.handle(Msg::ChannelData { recipient: 0, data: &chunk }, &mut t).unwrap();
        }
        assert!(ch.handle(Msg::ChannelData { recipient: 0, data: b"x" }, &mut t).is_err());
    }

    #[test]
    fn stdout_and_stderr_kept_apart_unknown_extended_types_dropped() {
        let (mut ch, mut t) = started(1000, 100);
        ch.handle(Msg::ChannelData { recipient: 0, data: b"out" }, &mut t).unwrap();
        ch.handle(Msg::ChannelExtendedData { recipient: 0, code: 1, data: b"err" }, &mut t).unwrap();
        ch.handle(Msg::ChannelExtendedData { recipient: 0, code: 2, data: b"odd" }, &mut t).unwrap();
        let mut b = [0u8; 16];
        let n = ch.read(false, &mut b, &mut t);
        assert_eq!(&b[..n], b"out");
        let n = ch.read(true, &mut b, &mut t);
        assert_eq!(&b[..n], b"err");
        assert_eq!(ch.stdout_len() + ch.stderr_len(), 0);
    }

    #[test]
    fn sending_respects_peer_window_and_max_packet() {
        let (mut ch, mut t) = started(250, 100);
        assert_eq!(ch.remote_window, 250);
        // The transport is not keyed here, so nothing may be sent yet.
        assert_eq!(ch.send_data(&[1u8; 1000], &mut t), 0);
        ch.remote_window = 250;
        assert_eq!(ch.remote_max_packet, 100);
        assert!(ch.handle(Msg::ChannelWindowAdjust { recipient: 0, bytes: u32::MAX }, &mut t).is_err());
        assert!(ch.handle(Msg::ChannelWindowAdjust { recipient: 0, bytes: 10 }, &mut t).is_ok());
        assert_eq!(ch.remote_window, 260);
    }

    #[test]
    fn max_packet_zero_and_second_confirmation_rejected() {
        let mut t = transport();
        let mut ch = Channel::open(0, &OpenKind::Session, Some(Request::Shell), &mut t);
        let conf = Msg::ChannelOpenConfirmation { recipient: 0, sender: 1, window: 10, max_packet: 0, extra: &[] };
        assert!(ch.handle(conf, &mut t).is_err());
        let (mut ch, mut t) = started(10, 10);
        let conf = Msg::ChannelOpenConfirmation { recipient: 0, sender: 1, window: 10, max_packet: 10, extra: &[] };
        assert!(ch.handle(conf, &mut t).is_err());
    }

    #[test]
    fn exit_status_first_valid_wins_and_signals_map_to_128_plus_n() {
        let (mut ch, mut t) = started(10, 10);
        let req = |kind, data: &'static [u8]| Msg::ChannelRequest { recipient: 0, kind, want_reply: false, data };
        ch.handle(req("exit-status", &[0, 0, 0]), &mut t).unwrap(); // malformed: ignored
        assert_eq!(ch.exit, None);
        ch.handle(req("exit-status", &[0, 0, 0, 44]), &mut t).unwrap();
        ch.handle(req("exit-status", &[0, 0, 0, 1]), &mut t).unwrap();
        assert_eq!(ch.exit, Some(ExitStatus::Code(44)));
        let (mut ch, mut t) = started(10, 10);
        let mut w = Writer::new();
        w.str("TERM").bool(false).str("killed\x1b[1m").str("");
        let data: &'static [u8] = Box::leak(w.into_vec().into_boxed_slice());
        ch.handle(req("exit-signal", data), &mut t).unwrap();
        let st = ch.exit.clone().unwrap();
        assert_eq!(st.shell_code(), 143);
        assert!(matches!(&st, ExitStatus::Signal { message, .. } if message == "killed\\u{1b}[1m"));
    }

    #[test]
    fn signal_names_and_numbers_agree() {
        for name in ["HUP", "INT", "KILL", "PIPE", "TERM", "USR2"] {
            assert_eq!(signal_name(signal_number(name)), Some(name));
        }
        assert_eq!((signal_number("TERM"), signal_number("WINCH")), (15, 0));
        assert_eq!((signal_name(9), signal_name(28)), (Some("KILL"), None));
    }

    #[test]
    fn request_replies_must_match_requests() {
        let (mut ch, mut t) = started(10, 10);
        // exec was answered already; another SUCCESS answers nothing we asked.
        assert!(ch.handle(Msg::ChannelSuccess { recipient: 0 }, &mut t).is_err());
    }

    #[test]
    fn data_after_close_is_ignored() {
        let (mut ch, mut t) = started(10, 10);
        assert_eq!(ch.handle(Msg::ChannelClose { recipient: 0 }, &mut t).unwrap(), Some(ChannelEvent::Closed));
        assert!(ch.close_sent);
        assert_eq!(ch.handle(Msg::ChannelData { recipient: 0, data: b"late" }, &mut t).unwrap(), None);
        assert_eq!(ch.stdout_len(), 0);
    }
}
