//! The channel calls of a sans-IO core (RFC 4254 sections 5.2 and 5.3: data within the peer's
//! window, extended data, EOF, CLOSE, reading with window adjustment; section 6.10 exit status),
//! written once for the client and the server: each core only says where its connection layer
//! and transport are and whether it is dead.

use super::{Channel, ChannelId, Connection, ExitStatus};
use crate::transport::Transport;

pub trait ChannelOps {
    /// The connection layer and the transport it sends through.
    fn link(&mut self) -> (&mut Connection, &mut Transport);
    fn link_ref(&self) -> (&Connection, &Transport);
    /// The connection is over: nothing more is sent (what arrived can still be read).
    fn is_dead(&self) -> bool;

    fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.link_ref().0.channel(id)
    }

    /// How many bytes `send_data` would accept now.
    fn writable(&self, id: ChannelId) -> usize {
        if self.is_dead() {
            return 0;
        }
        let (c, t) = self.link_ref();
        c.channel(id).map_or(0, |ch| ch.writable(t))
    }

    /// Send data (the peer's stdin, or a server's stdout) within the window; returns how much.
    fn send_data(&mut self, id: ChannelId, data: &[u8]) -> usize {
        with_live(self, id, 0, |ch, t| ch.send_data(data, t))
    }

    /// Send one data packet whose bytes `fill` writes straight into it (up to `max`, within
    /// the window and maximum packet; not called when nothing may be sent); returns how much.
    fn send_data_with(&mut self, id: ChannelId, max: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        with_live(self, id, 0, |ch, t| ch.send_data_with(max, t, fill))
    }

    /// Send stderr (extended data type 1); the server's side of a session.
    fn send_stderr(&mut self, id: ChannelId, data: &[u8]) -> usize {
        with_live(self, id, 0, |ch, t| ch.send_stderr(data, t))
    }

    /// Report how the program ended (exit-status or exit-signal).
    fn send_exit(&mut self, id: ChannelId, status: &ExitStatus) {
        with_live(self, id, (), |ch, t| ch.send_exit(status, t))
    }

    fn send_eof(&mut self, id: ChannelId) {
        with_live(self, id, (), |ch, t| ch.send_eof(t))
    }

    fn close_channel(&mut self, id: ChannelId) {
        with_live(self, id, (), |ch, t| ch.close(t))
    }

    /// The application is done with channel `id` (close it; forget it once closed).
    fn release_channel(&mut self, id: ChannelId) {
        let dead = self.is_dead();
        let (c, t) = self.link();
        if dead {
            if let Some(ch) = c.channel_mut(id) {
                ch.released = true;
            }
            return;
        }
        c.release(id, t);
    }

    /// Copy received data (stdout, or `stderr`: extended data) into `buf`. After a fatal
    /// error what arrived is still handed out; a WINDOW_ADJUST queued then is never sent.
    fn read(&mut self, id: ChannelId, stderr: bool, buf: &mut [u8]) -> usize {
        let (c, t) = self.link();
        c.channel_mut(id).map_or(0, |ch| ch.read(stderr, buf, t))
    }

    /// Buffered received data, without copying: the oldest contiguous run (empty when none).
    /// Follow with `consume` for what was used.
    fn peek(&self, id: ChannelId, stderr: bool) -> &[u8] {
        self.link_ref().0.channel(id).map_or(&[], |ch| ch.peek(stderr))
    }

    /// The first `n` bytes of `peek` were delivered: drop them and reopen the window.
    fn consume(&mut self, id: ChannelId, stderr: bool, n: usize) {
        let (c, t) = self.link();
        if let Some(ch) = c.channel_mut(id) {
            ch.consume(stderr, n, t);
        }
    }

    fn discard(&mut self, id: ChannelId, stderr: bool) {
        let (c, t) = self.link();
        if let Some(ch) = c.channel_mut(id) {
            ch.discard(stderr, t);
        }
    }
}

/// Run `f` on a channel of a live connection; `none` when dead or unknown.
fn with_live<O: ChannelOps + ?Sized, R>(o: &mut O, id: ChannelId, none: R, f: impl FnOnce(&mut Channel, &mut Transport) -> R) -> R {
    if o.is_dead() {
        return none;
    }
    let (c, t) = o.link();
    match c.channel_mut(id) {
        Some(ch) => f(ch, t),
        None => none,
    }
}
