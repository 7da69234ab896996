//! The data path of a channel, RFC 4254 section 5.2: CHANNEL_DATA and EXTENDED_DATA in (within
//! our window, buffered per stream, the window reopened as the application consumes) and out
//! (cut to the peer's window and maximum packet).

use super::{ChanState, Channel, ChannelEvent, Sink, MAX_PACKET, MAX_SEND_CHUNK, WINDOW};
use crate::error::Error;
use crate::msg::Msg;
use crate::transport::Transport;

impl Channel {
    pub(super) fn on_data(&mut self, data: &[u8], sink: Sink, t: &mut Transport) -> Result<Option<ChannelEvent>, Error> {
        let len = u32::try_from(data.len()).map_err(|_| Error::protocol("data too long"))?;
        if len > MAX_PACKET {
            return Err(Error::protocol(format!("peer sent {len} bytes in one packet, more than our maximum of {MAX_PACKET}")));
        }
        if len > self.local_window {
            return Err(Error::protocol(format!(
                "peer sent {len} bytes with only {} left in our window",
                self.local_window
            )));
        }
        self.local_window -= len;
        match sink {
            // Data after EOF breaks RFC 4254 section 5.3, and extended data of unknown types
            // has no reader: drop both but keep the window moving.
            _ if self.eof_received => self.ack(len, t),
            Sink::Discard => self.ack(len, t),
            Sink::Stdout => self.stdout.extend(data),
            Sink::Stderr => self.stderr.extend(data),
        }
        Ok(None)
    }

    /// Give `n` consumed bytes back to the peer's window when enough have gathered.
    pub(super) fn ack(&mut self, n: u32, t: &mut Transport) {
        self.unacked = self.unacked.saturating_add(n);
        if self.unacked >= WINDOW / 4 && !self.close_sent {
            t.send_msg(&Msg::ChannelWindowAdjust { recipient: self.remote_id, bytes: self.unacked });
            self.local_window = self.local_window.saturating_add(self.unacked);
            self.unacked = 0;
        }
    }

    /// Send stderr output (extended data type 1, section 5.2) within the peer's window; returns
    /// how much was sent.
    pub fn send_stderr(&mut self, data: &[u8], t: &mut Transport) -> usize {
        self.send_chunks(data, t, |t, recipient, chunk| {
            t.send_msg(&Msg::ChannelExtendedData { recipient, code: 1, data: chunk });
        })
    }

    /// Bytes the application may send now (the peer's window, if the line is free).
    pub fn writable(&self, t: &Transport) -> usize {
        if self.state != ChanState::Open || self.eof_sent || self.close_sent || !t.can_send() {
            0
        } else {
            self.remote_window as usize
        }
    }

    /// Send as much of `data` as the window allows, in chunks within the peer's maximum packet.
    pub fn send_data(&mut self, data: &[u8], t: &mut Transport) -> usize {
        self.send_chunks(data, t, |t, recipient, chunk| t.send_channel_data(recipient, chunk))
    }

    /// Cut `data` into packets within the peer's window and maximum packet; `send` emits one.
    fn send_chunks(&mut self, data: &[u8], t: &mut Transport, send: impl Fn(&mut Transport, u32, &[u8])) -> usize {
        let mut sent = 0usize;
        let chunk_max = self.remote_max_packet.min(MAX_SEND_CHUNK) as usize;
        while sent < data.len() && self.writable(t) > 0 {
            let n = (data.len() - sent).min(self.remote_window as usize).min(chunk_max);
            send(t, self.remote_id, data.get(sent..sent + n).unwrap_or(&[]));
            self.remote_window -= n as u32;
            sent += n;
        }
        sent
    }

    pub fn stdout_len(&self) -> usize {
        self.stdout.len()
    }
    pub fn stderr_len(&self) -> usize {
        self.stderr.len()
    }

    /// Copy buffered remote stdout (or stderr) into `buf`; consumed bytes reopen the window.
    pub fn read(&mut self, stderr: bool, buf: &mut [u8], t: &mut Transport) -> usize {
        let q = if stderr { &self.stderr } else { &self.stdout };
        let n = buf.len().min(q.len());
        let (a, b) = q.as_slices();
        let from_a = n.min(a.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..from_a), a.get(..from_a)) {
            dst.copy_from_slice(src);
        }
        if let (Some(dst), Some(src)) = (buf.get_mut(from_a..n), b.get(..n - from_a)) {
            dst.copy_from_slice(src);
        }
        self.consume(stderr, n, t);
        n
    }

    /// The oldest contiguous run of buffered stdout (or stderr), for writing out without a copy.
    pub fn peek(&self, stderr: bool) -> &[u8] {
        let q = if stderr { &self.stderr } else { &self.stdout };
        let (a, b) = q.as_slices();
        if a.is_empty() {
            b
        } else {
            a
        }
    }

    /// Drop the first `n` buffered bytes (delivered); they reopen the window.
    pub fn consume(&mut self, stderr: bool, n: usize, t: &mut Transport) {
        let q = if stderr { &mut self.stderr } else { &mut self.stdout };
        let n = n.min(q.len());
        q.drain(..n);
        self.ack(n as u32, t);
    }

    /// Throw away buffered output (the application stopped reading) and keep the window open so
    /// the remote command is not stuck (OpenSSH's "fake consumption").
    pub fn discard(&mut self, stderr: bool, t: &mut Transport) {
        let n = if stderr { self.stderr.len() } else { self.stdout.len() };
        if stderr {
            self.stderr.clear();
        } else {
            self.stdout.clear();
        }
        self.ack(n as u32, t);
    }
}
