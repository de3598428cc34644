//! The bytes of each direction of a connection, kept as the buffers they were written in
//! until the receiving end takes them.
//!
//! A segment event says only how many bytes arrived; its bytes stay with the stream's
//! others. A receiver may let segments arrive without an event at all (`flight.rs`) and
//! count them later. A receiver that takes bytes late (the swarm runner, holding segments that
//! complete no message) then gets them as slices of the buffers the sender wrote, cut where
//! the sender's writes were cut, not where segments were: a 16 KiB block written as one
//! buffer comes out as one slice, however many segments carried it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::flight::{Flight, Quiet, Segment};
use super::queue::Pending;
use super::{Arrived, NetError, Network, Side, SimConnId, index};

/// What one end has yet to take of the bytes written towards it.
#[derive(Debug, Default)]
pub(super) struct Stream {
    /// In order: bytes delivered (their events polled), bytes on their way, bytes written
    /// but not yet transmitted.
    bufs: VecDeque<Bytes>,
    /// Bytes in `bufs`.
    len: usize,
    /// Of those, the bytes delivered.
    delivered: usize,
    /// Of those, the bytes delivered or on their way.
    sent: usize,
    /// The segments on their way, and which of them needs an event.
    pub(super) flight: Flight,
}

impl Stream {
    fn write(&mut self, bufs: Vec<Bytes>) {
        for b in bufs.into_iter().filter(|b| !b.is_empty()) {
            self.len += b.len();
            self.bufs.push_back(b);
        }
    }

    fn unsent(&self) -> usize {
        self.len - self.sent
    }

    /// Takes the first `n` bytes (no more than are there), as slices of the buffers
    /// written; with `whole_only`, stops at the last buffer boundary within them. Returns
    /// how many of the `n` were left.
    fn take(&mut self, n: usize, whole_only: bool, out: &mut Vec<Bytes>) -> usize {
        let want = n.min(self.len);
        let mut left = want;
        while left > 0 {
            let Some(front) = self.bufs.front_mut() else {
                break;
            };
            let part = if front.len() <= left {
                self.bufs.pop_front()
            } else if whole_only {
                break;
            } else {
                Some(front.split_to(left))
            };
            let Some(part) = part else {
                break;
            };
            left -= part.len();
            self.consume(part.len());
            out.push(part);
        }
        left + (n - want)
    }

    /// The first `n` bytes as one buffer: a slice if they lie in one written buffer, else a
    /// copy.
    fn take_joined(&mut self, n: usize) -> Bytes {
        let mut parts = Vec::new();
        self.take(n, false, &mut parts);
        match <[Bytes; 1]>::try_from(parts) {
            Ok([one]) => one,
            Err(parts) => Bytes::from(parts.concat()),
        }
    }

    /// `n` more bytes were delivered (never more than were sent).
    fn deliver(&mut self, n: usize) {
        self.delivered = (self.delivered + n).min(self.sent);
    }

    fn consume(&mut self, n: usize) {
        self.len -= n;
        self.sent = self.sent.saturating_sub(n);
        self.delivered = self.delivered.saturating_sub(n);
    }

    /// Forgets the first `n` bytes, of those sent (delivered or not).
    fn drop_sent(&mut self, n: usize) {
        let mut parts = Vec::new();
        let n = n.min(self.sent);
        self.take(n, false, &mut parts);
    }

    /// Keeps the first `keep` bytes and forgets the rest.
    fn keep_first(&mut self, keep: usize) {
        let mut drop = self.len.saturating_sub(keep);
        while drop > 0 {
            let Some(back) = self.bufs.back_mut() else {
                break;
            };
            if back.len() <= drop {
                drop -= back.len();
                self.bufs.pop_back();
            } else {
                back.truncate(back.len() - drop);
                drop = 0;
            }
        }
        self.len = self.len.min(keep);
        self.sent = self.sent.min(keep);
        self.delivered = self.delivered.min(keep);
    }
}

/// Segment lengths for `n` bytes sent at once: as many full `mss` segments as fit, then
/// the rest.
fn segment_lens(n: usize, mss: usize) -> impl Iterator<Item = usize> {
    let mss = mss.max(1);
    (0..n).step_by(mss).map(move |start| mss.min(n - start))
}

impl Network {
    /// Appends `bufs` to what `side` of `conn` has written but not yet transmitted
    /// ([`Network::transmit`] sends them). Nothing happens for an unknown connection.
    pub(crate) fn write(&mut self, conn: SimConnId, side: Side, bufs: Vec<Bytes>) {
        if let Some(s) = self.stream_mut(conn, side.other()) {
            s.write(bufs);
        }
    }

    /// Bytes `side` of `conn` has written and not yet transmitted.
    pub(crate) fn unsent(&self, conn: SimConnId, side: Side) -> usize {
        self.conns
            .get(index(conn))
            .and_then(|c| c.streams.get(side.other().index()))
            .map_or(0, Stream::unsent)
    }

    /// Forgets what `side` of `conn` has written and not transmitted (the other end is gone).
    pub(crate) fn discard_unsent(&mut self, conn: SimConnId, side: Side) {
        if let Some(s) = self.stream_mut(conn, side.other()) {
            s.keep_first(s.sent);
        }
    }

    /// Transmits the next `n` written bytes of `side` (at most what is unsent) at `now`:
    /// cut into segments of at most the link's MSS, each delivered to the other end as a
    /// count of bytes it may then take ([`Network::take_received`]).
    pub(crate) fn transmit(
        &mut self,
        conn: SimConnId,
        side: Side,
        n: usize,
        now: Instant,
    ) -> Result<(), NetError> {
        self.check_open(conn, side, now)?;
        let route = self.direction(conn, side)?;
        let link = self.link(route.from, route.to);
        let n = n.min(self.unsent(conn, side));
        // Bytes towards an end that closed are sent (they take their time in the queues)
        // but never delivered: none is kept for it.
        let gone = self
            .conns
            .get(index(conn))
            .and_then(|c| c.closed.get(side.other().index()).copied())
            .unwrap_or(true);
        if let Some(s) = self.stream_mut(conn, side.other()) {
            s.sent += n;
            if gone {
                s.drop_sent(s.sent);
            }
        }
        for len in segment_lens(n, link.mss) {
            let sent = self.transmit_segment(route, &link, len, now);
            self.note_flushed(conn, side, sent.departed);
            let (arrival, given_up) = self.retransmit_delay(sent.arrival, sent.lost, &link);
            if given_up {
                // The kernel gives up on this segment: the connection dies when it does.
                self.reset(conn, arrival);
                return Ok(());
            }
            let at = self.in_order(conn, side.other(), arrival)?;
            self.seq += 1;
            let segment = Segment {
                at,
                seq: self.seq,
                len,
            };
            if gone {
                continue;
            }
            let Some(s) = self.stream_mut(conn, side.other()) else {
                continue;
            };
            let wake = s.flight.push(segment);
            if wake.is_some() || !s.flight.listed {
                self.wake(conn, side.other(), wake);
            }
        }
        Ok(())
    }

    /// Puts the event of `segment`, the new wake of the stream towards `side`, in the heap;
    /// lists the stream on its host if its next segment comes without an event.
    pub(super) fn wake(&mut self, conn: SimConnId, side: Side, segment: Option<Segment>) {
        if let Some(c) = self.conns.get_mut(index(conn))
            && let Some(s) = c.streams.get_mut(side.index())
            && !s.flight.listed
            && s.flight.has_quiet()
            && let Some(h) = c
                .hosts
                .get(side.index())
                .and_then(|h| self.hosts.get_mut(*h))
        {
            s.flight.listed = true;
            h.quiet.push((conn, side));
        }
        if let Some(s) = segment {
            self.queue.push(Pending {
                at: s.at,
                seq: s.seq,
                conn,
                side,
                kind: Arrived::Bytes(s.len),
            });
        }
    }

    /// Lets `quiet` bytes arrive at `side` of `conn` without an event (counted from the
    /// next to arrive): the receiver would do nothing with them but hold them.
    pub(crate) fn set_quiet(&mut self, conn: SimConnId, side: Side, quiet: usize) {
        let wake = self
            .stream_mut(conn, side)
            .and_then(|s| s.flight.set_quiet(quiet));
        self.wake(conn, side, wake);
    }

    /// What arrived at `side` of `conn` without an event by `now`, now delivered (to be
    /// taken with [`Network::take_received`]).
    pub(crate) fn quiet_arrivals(
        &mut self,
        conn: SimConnId,
        side: Side,
        now: Instant,
    ) -> Option<Quiet> {
        self.settle(conn, side, now);
        self.stream_mut(conn, side)?.flight.take_settled()
    }

    /// The streams towards `host` whose next segment arrives without an event: the ends
    /// that may have received bytes no event told of.
    pub(crate) fn quiet_streams(&mut self, host: SocketAddr) -> Vec<(SimConnId, Side)> {
        let Some(h) = self.host_index.get(&host).copied() else {
            return Vec::new();
        };
        let mut listed = self
            .hosts
            .get_mut(h)
            .map(|h| std::mem::take(&mut h.quiet))
            .unwrap_or_default();
        listed.sort_unstable();
        listed.dedup();
        listed.retain(|&(conn, side)| {
            let Some(s) = self.stream_mut(conn, side) else {
                return false;
            };
            s.flight.listed = s.flight.has_quiet();
            s.flight.listed
        });
        if let Some(h) = self.hosts.get_mut(h) {
            h.quiet.clone_from(&listed);
        }
        listed
    }

    /// When the first byte that arrived at `side` of `conn` without an event (and is not
    /// taken) came, if one has by `now`: its time and sequence number.
    pub(crate) fn first_quiet_arrival(
        &self,
        conn: SimConnId,
        side: Side,
        now: Instant,
    ) -> Option<(Instant, u64)> {
        let c = self.conns.get(index(conn))?;
        c.streams
            .get(side.index())?
            .flight
            .first_quiet(now, c.reset_at)
    }

    /// When the last byte that arrived anywhere without an event by `now` came, if one
    /// has: the time a receiver taking every event would have seen last.
    pub(crate) fn last_quiet_arrival(&self, now: Instant) -> Option<Instant> {
        self.conns
            .iter()
            .flat_map(|c| {
                c.streams
                    .iter()
                    .map(|s| s.flight.last_quiet(now, c.reset_at))
            })
            .flatten()
            .max()
    }

    /// Counts what arrived quietly at `side` by `now` as delivered.
    pub(super) fn settle(&mut self, conn: SimConnId, side: Side, now: Instant) {
        let Some(c) = self.conns.get_mut(index(conn)) else {
            return;
        };
        let cut = c.reset_at;
        if let Some(s) = c.streams.get_mut(side.index()) {
            let bytes = s.flight.settle(now, cut);
            s.deliver(bytes);
        }
    }

    /// Takes the first `n` bytes delivered to `side` of `conn` and not yet taken, as slices
    /// of the buffers they were written in (cut only where a buffer lies partly within
    /// them); with `whole_only`, only the buffers that lie wholly within them. Returns how
    /// many of the `n` were left.
    pub(crate) fn take_received(
        &mut self,
        conn: SimConnId,
        side: Side,
        n: usize,
        whole_only: bool,
        out: &mut Vec<Bytes>,
    ) -> usize {
        match self.stream_mut(conn, side) {
            Some(s) => {
                let ready = n.min(s.delivered);
                s.take(ready, whole_only, out) + (n - ready)
            }
            None => n,
        }
    }

    /// Forgets every byte written towards `side` of `conn`: its end is gone.
    pub(crate) fn forget_received(&mut self, conn: SimConnId, side: Side) {
        if let Some(s) = self.stream_mut(conn, side) {
            *s = Stream::default();
        }
    }

    /// Forgets the bytes sent towards `side` of `conn`, which closed it: the other end
    /// still transmits what it wrote before it learns of the close, but none of it is
    /// delivered.
    pub(super) fn drop_sent(&mut self, conn: SimConnId, side: Side) {
        if let Some(s) = self.stream_mut(conn, side) {
            s.drop_sent(s.sent);
            s.flight.clear();
        }
    }

    /// Notes that `n` bytes towards `side` were delivered; returns them as one buffer if
    /// `take`, for a caller that wants the bytes with the event.
    pub(super) fn deliver(&mut self, conn: SimConnId, side: Side, n: usize, take: bool) -> Bytes {
        let Some(s) = self.stream_mut(conn, side) else {
            return Bytes::new();
        };
        s.deliver(n);
        if take { s.take_joined(n) } else { Bytes::new() }
    }

    /// [`Network::take_received`] of `n` bytes as one buffer: a slice if they lie in one
    /// written buffer, else a copy.
    pub(crate) fn take_received_joined(&mut self, conn: SimConnId, side: Side, n: usize) -> Bytes {
        match self.stream_mut(conn, side) {
            Some(s) => {
                let ready = n.min(s.delivered);
                s.take_joined(ready)
            }
            None => Bytes::new(),
        }
    }

    /// Forgets the bytes towards `side` that will never be delivered: its connection ended.
    pub(super) fn end_stream(&mut self, conn: SimConnId, side: Side) {
        if let Some(s) = self.stream_mut(conn, side) {
            s.keep_first(s.delivered);
            s.flight.clear();
        }
    }

    fn stream_mut(&mut self, conn: SimConnId, towards: Side) -> Option<&mut Stream> {
        self.conns
            .get_mut(index(conn))?
            .streams
            .get_mut(towards.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(bufs: &[&'static [u8]]) -> Stream {
        let mut s = Stream::default();
        s.write(bufs.iter().map(|b| Bytes::from_static(b)).collect());
        s.sent = s.len;
        s.delivered = s.len;
        s
    }

    #[test]
    fn bytes_come_out_as_slices_of_the_buffers_written() {
        let mut s = stream(&[b"abc", b"defgh", b"ij"]);
        let mut out = Vec::new();
        assert_eq!(s.take(5, false, &mut out), 0);
        assert_eq!(out, vec![&b"abc"[..], &b"de"[..]]);
        out.clear();
        // Only whole buffers: "fgh" is the rest of one, "i" would cut the next.
        assert_eq!(s.take(4, true, &mut out), 1);
        assert_eq!(out, vec![&b"fgh"[..]]);
        assert_eq!(s.take_joined(2), &b"ij"[..]);
        assert_eq!((s.len, s.sent, s.delivered), (0, 0, 0));
    }

    #[test]
    fn a_stream_cut_short_keeps_its_first_bytes() {
        let mut s = stream(&[b"abc", b"defgh"]);
        s.keep_first(4);
        assert_eq!(s.take_joined(10), &b"abcd"[..]);
    }

    #[test]
    fn segments_are_full_but_the_last() {
        assert_eq!(segment_lens(10, 4).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(segment_lens(8, 4).collect::<Vec<_>>(), vec![4, 4]);
        assert_eq!(segment_lens(0, 4).count(), 0);
        assert_eq!(segment_lens(3, 0).count(), 3);
    }
}
