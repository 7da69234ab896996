//! The data path of a channel, RFC 4254 section 5.2: CHANNEL_DATA and EXTENDED_DATA in (within
//! our window, buffered per stream, the window reopened as the application consumes) and out
//! (cut to the peer's window and maximum packet).

use super::{ChanState, Channel, ChannelEvent, Sink, MAX_PACKET, MAX_SEND_CHUNK, WINDOW};
use crate::connection::Deliver;
use crate::error::Error;
use crate::msg::Msg;
use crate::transport::Transport;

impl Channel {
    /// CHANNEL_DATA or EXTENDED_DATA for this channel: checked against our window, then offered
    /// to `deliver` when nothing older of that stream is buffered (order is kept), and what it
    /// did not take is buffered. Taken bytes count as consumed: they reopen the window as read
    /// ones do.
    pub(super) fn on_data(
        &mut self,
        data: &[u8],
        sink: Sink,
        t: &mut Transport,
        deliver: &mut dyn Deliver,
    ) -> Result<Option<ChannelEvent>, Error> {
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
        let stderr = match sink {
            // Data after EOF breaks RFC 4254 section 5.3, and extended data of unknown types
            // has no reader: drop both but keep the window moving.
            _ if self.eof_received => return self.dropped(len, t),
            Sink::Discard => return self.dropped(len, t),
            Sink::Stdout => false,
            Sink::Stderr => true,
        };
        let queued = if stderr { self.stderr.len() } else { self.stdout.len() };
        let taken = if queued == 0 { deliver.offer(self.local_id, stderr, data).min(data.len()) } else { 0 };
        if taken > 0 {
            self.ack(taken as u32, t);
        }
        let rest = data.get(taken..).unwrap_or_default();
        if stderr {
            self.stderr.extend(rest);
        } else {
            self.stdout.extend(rest);
        }
        Ok(None)
    }

    fn dropped(&mut self, len: u32, t: &mut Transport) -> Result<Option<ChannelEvent>, Error> {
        self.ack(len, t);
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

    /// Send one CHANNEL_DATA packet whose data `fill` writes in place (`Transport::
    /// send_channel_data_with`): it is offered up to `max` bytes, no more than the peer's
    /// window and maximum packet allow, and returns how many it wrote. `fill` is not called
    /// when nothing may be sent (`writable` is 0). Returns the bytes sent.
    pub fn send_data_with(&mut self, max: usize, t: &mut Transport, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let room = self.writable(t);
        let n = max.min(room).min(self.remote_max_packet.min(MAX_SEND_CHUNK) as usize);
        if n == 0 {
            return 0;
        }
        let sent = t.send_channel_data_with(self.remote_id, n, fill).min(n);
        self.remote_window -= sent as u32;
        sent
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

#[cfg(test)]
mod tests {
    use super::super::tests::started;
    use super::*;
    use crate::connection::ChannelId;

    /// A direct destination that takes at most `take` bytes per offer and records what it got.
    struct Partial {
        take: usize,
        got: Vec<(ChannelId, bool, Vec<u8>)>,
    }

    impl Deliver for Partial {
        fn offer(&mut self, id: ChannelId, stderr: bool, data: &[u8]) -> usize {
            let n = data.len().min(self.take);
            self.got.push((id, stderr, data[..n].to_vec()));
            n
        }
    }

    /// Every byte the peer sent is in our window, given back, or still buffered.
    fn window_holds(ch: &Channel) {
        assert_eq!(ch.local_window as usize + ch.unacked as usize + ch.stdout_len() + ch.stderr_len(), WINDOW as usize);
    }

    #[test]
    fn direct_delivery_keeps_order_and_window_when_the_sink_takes_part() {
        let (mut ch, mut t) = started(1000, 100);
        let mut sink = Partial { take: 30, got: Vec::new() };
        let a: Vec<u8> = (0..100).collect();
        let b: Vec<u8> = (100..150).collect();
        ch.handle_to(Msg::ChannelData { recipient: 0, data: &a }, &mut t, &mut sink).unwrap();
        // 30 bytes went straight out; 70 wait, counted as not consumed.
        assert_eq!(sink.got, vec![(0, false, a[..30].to_vec())]);
        assert_eq!((ch.stdout_len(), ch.unacked), (70, 30));
        window_holds(&ch);
        // Older bytes are buffered: the next packet is not offered, it queues behind them.
        ch.handle_to(Msg::ChannelData { recipient: 0, data: &b }, &mut t, &mut sink).unwrap();
        assert_eq!(sink.got.len(), 1);
        assert_eq!(ch.stdout_len(), 120);
        window_holds(&ch);
        // stderr is a stream of its own: offered, since nothing of it is buffered.
        ch.handle_to(Msg::ChannelExtendedData { recipient: 0, code: 1, data: b"err!" }, &mut t, &mut sink).unwrap();
        assert_eq!(sink.got.last(), Some(&(0, true, b"err!".to_vec())));
        assert_eq!(ch.stderr_len(), 0);
        window_holds(&ch);
        let mut buf = vec![0u8; 200];
        let n = ch.read(false, &mut buf, &mut t);
        let mut all = sink.got[0].2.clone();
        all.extend_from_slice(&buf[..n]);
        let sent: Vec<u8> = a.iter().chain(&b).copied().collect();
        assert_eq!(all, sent, "delivered then buffered bytes come out in the order sent");
        window_holds(&ch);
        // Once the buffer is empty, direct delivery resumes.
        ch.handle_to(Msg::ChannelData { recipient: 0, data: &b }, &mut t, &mut sink).unwrap();
        assert_eq!(sink.got.len(), 3);
        window_holds(&ch);
    }

    #[test]
    fn directly_delivered_bytes_reopen_the_window() {
        let (mut ch, mut t) = started(1000, 100);
        // The sink takes everything: a whole window goes through without anything buffered,
        // and the window adjustments keep the peer sending.
        let mut sink = Partial { take: usize::MAX, got: Vec::new() };
        let chunk = vec![5u8; MAX_PACKET as usize];
        for _ in 0..(3 * WINDOW / MAX_PACKET) {
            ch.handle_to(Msg::ChannelData { recipient: 0, data: &chunk }, &mut t, &mut sink).unwrap();
            assert_eq!(ch.stdout_len(), 0);
            window_holds(&ch);
        }
        let adjusts = t.queued_payloads().iter().filter(|p| matches!(Msg::decode(p), Ok(Msg::ChannelWindowAdjust { .. }))).count();
        assert!(adjusts >= 8, "{adjusts} window adjustments for three windows of data");
        // After EOF, data is dropped, not offered (RFC 4254 section 5.3).
        ch.handle(Msg::ChannelEof { recipient: 0 }, &mut t).unwrap();
        let before = sink.got.len();
        ch.handle_to(Msg::ChannelData { recipient: 0, data: b"late" }, &mut t, &mut sink).unwrap();
        assert_eq!((sink.got.len(), ch.stdout_len()), (before, 0));
        window_holds(&ch);
    }
}
