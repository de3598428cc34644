//! The sending half of a connection: bytes written and not yet sent, and packets sent and not
//! yet acked, with what acks, selective acks and time-outs say about them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::packet::{PacketType, SelectiveAck};
use super::{DUP_ACK_LIMIT, MAX_PACKETS_IN_FLIGHT, MAX_SEND_BUFFER, seq};

/// A packet sent and not yet acked.
#[derive(Clone, Debug)]
pub(super) struct Sent {
    /// SYN, DATA or FIN: the types that take a sequence number.
    pub kind: PacketType,
    pub payload: Vec<u8>,
    /// When it was last sent.
    pub sent_at: Instant,
    /// Where its last transmission falls in the order of all transmissions (from 1).
    pub order: u64,
    /// Times it was sent; 0 while waiting for the window after a loss.
    pub transmissions: u32,
    /// A selective ack said it arrived.
    pub sacked: bool,
    /// Known or assumed lost, to be sent again.
    pub lost: bool,
    /// Already sent again for a fast retransmit after duplicate acks (once per packet;
    /// selective acks find a resent packet lost again, see [`SendBuffer::ack`]).
    pub fast_resent: bool,
}

impl Sent {
    /// Whether it counts against the window: sent, not known to have arrived, not given up.
    fn in_flight(&self) -> bool {
        self.transmissions > 0 && !self.sacked && !self.lost
    }
}

/// What an ack did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Acked {
    /// Payload bytes newly known to have arrived (cumulatively or selectively).
    pub bytes: usize,
    /// Packets newly acked, SYN and FIN included.
    pub packets: usize,
    /// An RTT sample from a packet sent only once.
    pub rtt: Option<Duration>,
    /// The last packet newly found lost (selective acks past it), if any.
    pub lost: Option<u16>,
    /// Packets newly found lost.
    pub lost_packets: usize,
    /// The latest transmission order (see [`SendBuffer::sends`]) among the packets sent
    /// once and newly known to have arrived; 0 if none. Packets sent again are left out,
    /// as for RTT samples (Karn): which copy arrived is unknown.
    pub newest: u64,
}

/// Unsent bytes and unacked packets.
#[derive(Clone, Debug)]
pub(super) struct SendBuffer {
    unsent: VecDeque<u8>,
    /// Unacked packets; the first has sequence number `acked + 1`, the rest follow.
    packets: VecDeque<Sent>,
    /// The last sequence number acked cumulatively.
    acked: u16,
    /// Payload bytes in flight (see [`Sent::in_flight`]).
    in_flight: usize,
    /// Bytes held: unsent plus the payloads of unacked packets.
    stored: usize,
    /// Transmissions so far, first ones and retransmissions: the last one's order.
    sends: u64,
    /// Packets marked lost and not sent again: while 0, [`SendBuffer::first_lost`] costs
    /// nothing (it was a scan of up to 2,016 packets for every packet sent).
    lost: usize,
}

/// The first `n` bytes of `q`, taken out: copied from its two halves as slices, since a
/// packet's payload collected byte by byte cost a quarter of a seeder's CPU.
fn take_front(q: &mut VecDeque<u8>, n: usize) -> Vec<u8> {
    let n = n.min(q.len());
    let mut out = Vec::with_capacity(n);
    let (front, back) = q.as_slices();
    for part in [front, back] {
        let k = (n - out.len()).min(part.len());
        out.extend_from_slice(part.get(..k).unwrap_or_default());
    }
    q.drain(..n);
    out
}

impl SendBuffer {
    /// An empty buffer whose first packet will take sequence number `first`.
    pub fn new(first: u16) -> Self {
        SendBuffer {
            unsent: VecDeque::new(),
            packets: VecDeque::new(),
            acked: first.wrapping_sub(1),
            in_flight: 0,
            stored: 0,
            sends: 0,
            lost: 0,
        }
    }

    /// Takes as much of `data` as fits in [`MAX_SEND_BUFFER`].
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity());
        // From a slice, so the deque copies it whole rather than byte by byte.
        self.unsent.extend(data.get(..n).unwrap_or_default());
        self.stored += n;
        n
    }

    /// Bytes [`SendBuffer::write`] would take now.
    pub fn capacity(&self) -> usize {
        MAX_SEND_BUFFER.saturating_sub(self.stored)
    }

    /// Bytes written and not yet packetised.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Payload bytes counted against the window.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Transmissions so far, first ones and retransmissions, which number them in order.
    pub fn sends(&self) -> u64 {
        self.sends
    }

    /// Unacked packets.
    pub fn packets(&self) -> usize {
        self.packets.len()
    }

    /// The sequence number the next new packet takes.
    pub fn next_seq(&self) -> u16 {
        seq::add(self.acked, 1).wrapping_add(self.packets.len() as u16)
    }

    /// Whether another packet may be numbered without outrunning the peer's reorder limit.
    pub fn can_number(&self) -> bool {
        self.packets.len() < usize::from(MAX_PACKETS_IN_FLIGHT)
    }

    /// Numbers and records a new packet of `kind` with up to `max_payload` unsent bytes (DATA
    /// only), sent now; returns its sequence number.
    pub fn push(&mut self, now: Instant, kind: PacketType, max_payload: usize) -> u16 {
        let seq = self.next_seq();
        let payload: Vec<u8> = if kind == PacketType::Data {
            let n = max_payload.min(self.unsent.len());
            take_front(&mut self.unsent, n)
        } else {
            Vec::new()
        };
        self.in_flight += payload.len();
        self.sends += 1;
        self.packets.push_back(Sent {
            kind,
            payload,
            sent_at: now,
            order: self.sends,
            transmissions: 1,
            sacked: false,
            lost: false,
            fast_resent: false,
        });
        seq
    }

    /// The payload of unacked packet `seq` (empty if there is none).
    pub fn payload(&self, seq: u16) -> &[u8] {
        let i = usize::from(seq::distance(self.acked, seq)).wrapping_sub(1);
        self.packets.get(i).map_or(&[][..], |p| &p.payload[..])
    }

    /// The first packet to send again, with its sequence number.
    pub fn first_lost(&self) -> Option<(u16, &Sent)> {
        debug_assert_eq!(self.lost, self.packets.iter().filter(|p| p.lost).count());
        if self.lost == 0 {
            return None;
        }
        let i = self.packets.iter().position(|p| p.lost)?;
        let p = self.packets.get(i)?;
        Some((seq::add(self.acked, 1).wrapping_add(i as u16), p))
    }

    /// Records that the packet `seq` was sent again now.
    pub fn resent(&mut self, now: Instant, seq: u16) {
        let i = usize::from(seq::distance(self.acked, seq)).wrapping_sub(1);
        if let Some(p) = self.packets.get_mut(i) {
            if !p.in_flight() {
                self.in_flight += p.payload.len();
            }
            self.sends += 1;
            p.order = self.sends;
            if p.lost {
                self.lost -= 1;
            }
            p.lost = false;
            p.sacked = false;
            p.sent_at = now;
            p.transmissions += 1;
        }
    }

    /// Whether `ack_nr` acks only packets that were sent: the last cumulative ack or later,
    /// up to the last packet numbered.
    pub fn is_valid_ack(&self, ack_nr: u16) -> bool {
        usize::from(seq::distance(self.acked, ack_nr)) <= self.packets.len()
    }

    /// The last sequence number acked cumulatively.
    pub fn acked(&self) -> u16 {
        self.acked
    }

    /// Applies a cumulative ack of everything through `ack_nr` (checked with
    /// [`SendBuffer::is_valid_ack`]) and a selective ack; returns what they newly acked.
    /// With a selective ack, a packet sent again more than `loss.1` ago and still not
    /// acked is lost again (see [`super::rtt::Rtt::resend_loss_delay`]); no packet sent
    /// less than `loss.0` ago is lost (see [`super::rtt::Rtt::reorder_delay`]).
    pub fn ack(
        &mut self,
        now: Instant,
        ack_nr: u16,
        sack: Option<SelectiveAck>,
        loss: (Duration, Option<Duration>),
    ) -> Acked {
        let mut out = Acked::default();
        if !self.is_valid_ack(ack_nr) {
            return out;
        }
        for _ in 0..seq::distance(self.acked, ack_nr) {
            let Some(p) = self.packets.pop_front() else {
                break;
            };
            self.forget(&p, &mut out, now);
        }
        self.acked = ack_nr;
        if let Some(sack) = sack {
            self.selective(now, sack, loss, &mut out);
        }
        out
    }

    fn forget(&mut self, p: &Sent, out: &mut Acked, now: Instant) {
        if p.in_flight() {
            self.in_flight -= p.payload.len();
        }
        if p.lost {
            self.lost -= 1;
        }
        if !p.sacked {
            out.bytes += p.payload.len();
            out.packets += 1;
            if p.transmissions == 1 {
                out.newest = out.newest.max(p.order);
            }
        }
        if p.transmissions == 1 && !p.sacked {
            out.rtt = Some(now.saturating_duration_since(p.sent_at));
        }
        self.stored -= p.payload.len();
    }

    /// Bit `i` of the bitmask is packet `acked + 2 + i`, our packet index `i + 1`. Only the
    /// bits that name packets in flight are read, so a huge bitmask costs no more than ours.
    fn selective(
        &mut self,
        now: Instant,
        sack: SelectiveAck,
        (reorder, resend_loss): (Duration, Option<Duration>),
        out: &mut Acked,
    ) {
        let n = sack.len_bits().min(self.packets.len().saturating_sub(1));
        for i in 0..n {
            let Some(p) = self.packets.get_mut(i + 1) else {
                break;
            };
            if sack.has(i) && !p.sacked {
                if p.in_flight() {
                    self.in_flight -= p.payload.len();
                }
                p.sacked = true;
                if p.lost {
                    self.lost -= 1;
                }
                p.lost = false;
                out.bytes += p.payload.len();
                out.packets += 1;
                if p.transmissions == 1 {
                    out.newest = out.newest.max(p.order);
                    out.rtt = Some(now.saturating_duration_since(p.sent_at));
                }
            }
        }
        // A packet is lost once DUP_ACK_LIMIT packets sent after its last transmission were
        // selectively acked: for a first transmission, any later packets; for one sent again,
        // only packets that went out after it did, so that a retransmission lost too is found
        // the same way instead of by a time-out (which would collapse the window). Packets
        // sent after a retransmission may lie past what the bitmask can name: a resent
        // packet is also lost again once `resend_loss` passed, as this ack shows the peer
        // is there. Either way a packet sent less than `reorder` ago is not lost yet:
        // packets overtaken by a few others on the way (RACK's reordering window, RFC 8985)
        // would otherwise be resent for nothing and counted as losses. `latest` holds the latest transmission orders among the later sacked packets.
        let mut latest = [0u64; DUP_ACK_LIMIT];
        let first = seq::add(self.acked, 1);
        for (i, p) in self.packets.iter_mut().enumerate().rev() {
            if p.sacked {
                let slot = latest.iter().position(|o| p.order > *o);
                if let Some(tail) = slot.and_then(|s| latest.get_mut(s..)) {
                    tail.rotate_right(1);
                    if let Some(o) = tail.first_mut() {
                        *o = p.order;
                    }
                }
            } else if p.in_flight()
                && now.saturating_duration_since(p.sent_at) >= reorder
                && (latest.iter().all(|o| *o > p.order)
                    || (p.transmissions > 1
                        && resend_loss
                            .is_some_and(|d| now.saturating_duration_since(p.sent_at) > d)))
            {
                self.in_flight -= p.payload.len();
                p.lost = true;
                self.lost += 1;
                p.fast_resent = true;
                out.lost = out.lost.or(Some(first.wrapping_add(i as u16)));
                out.lost_packets += 1;
            }
        }
    }

    /// Marks the first unacked packet lost for a fast retransmit (three duplicate acks),
    /// once per packet; returns its sequence number.
    pub fn fast_retransmit(&mut self) -> Option<u16> {
        let p = self.packets.front_mut()?;
        if p.fast_resent || !p.in_flight() {
            return None;
        }
        self.in_flight -= p.payload.len();
        p.lost = true;
        self.lost += 1;
        p.fast_resent = true;
        Some(seq::add(self.acked, 1))
    }

    /// A time-out: every packet not known to have arrived is lost.
    pub fn all_lost(&mut self) {
        for p in self.packets.iter_mut().filter(|p| !p.sacked) {
            p.lost = true;
        }
        self.lost = self.packets.iter().filter(|p| p.lost).count();
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_taken_across_the_deques_wrap_keep_their_order() {
        let mut q: VecDeque<u8> = VecDeque::with_capacity(8);
        q.extend([0, 0, 0, 0, 0, 1, 2]);
        q.drain(..5);
        // The deque's buffer now wraps: its front half ends at the buffer's end.
        q.extend([3, 4, 5, 6]);
        assert_eq!(take_front(&mut q, 4), vec![1, 2, 3, 4]);
        assert_eq!(take_front(&mut q, 9), vec![5, 6]);
        assert!(q.is_empty());
    }

    #[test]
    fn acks_sacks_and_losses() {
        let t0 = Instant::now();
        let mut b = SendBuffer::new(65534);
        assert_eq!(b.write(&[7; 10_000]), 10_000);
        for _ in 0..6 {
            b.push(t0, PacketType::Data, 1000);
        }
        assert_eq!(b.next_seq(), 4);
        assert_eq!(b.in_flight(), 6000);
        // Acks of unsent packets are not valid; the previous ack is.
        assert!(!b.is_valid_ack(4));
        assert!(b.is_valid_ack(65533));
        assert_eq!(b.ack(t0, 4, None, (Duration::ZERO, None)), Acked::default());
        let a = b.ack(
            t0 + Duration::from_millis(5),
            65534,
            None,
            (Duration::ZERO, None),
        );
        assert_eq!((a.bytes, a.packets), (1000, 1));
        assert_eq!(a.rtt, Some(Duration::from_millis(5)));
        // Packets 65535, 0, 1, 2, 3 left; sack 0, 1, 2 (bit i is ack + 2 + i).
        let bits = [0b0000_0111, 0, 0, 0];
        let a = b.ack(
            t0,
            65534,
            Some(SelectiveAck::new(&bits).unwrap()),
            (Duration::ZERO, None),
        );
        assert_eq!(a.packets, 3);
        assert_eq!(a.lost, Some(65535));
        assert_eq!(b.first_lost().map(|(s, _)| s), Some(65535));
        assert_eq!(b.in_flight(), 1000);
        b.resent(t0, 65535);
        assert_eq!(b.in_flight(), 2000);
        let a = b.ack(t0, 3, None, (Duration::ZERO, None));
        assert_eq!(a.bytes, 2000, "sacked packets are not counted twice");
        assert_eq!(b.packets(), 0);
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.capacity(), MAX_SEND_BUFFER - 4000);
    }

    #[test]
    fn huge_sack_reads_only_packets_in_flight() {
        let t0 = Instant::now();
        let mut b = SendBuffer::new(1);
        b.write(&[1; 3000]);
        for _ in 0..3 {
            b.push(t0, PacketType::Data, 1000);
        }
        let a = b.ack(
            t0,
            0,
            Some(SelectiveAck::new(&[0xff; 252]).unwrap()),
            (Duration::ZERO, None),
        );
        assert_eq!(a.packets, 2);
        assert_eq!(a.lost, None, "two sacked after it is not yet a loss");
        assert_eq!(b.fast_retransmit(), Some(1));
        assert_eq!(b.fast_retransmit(), None, "once per packet");
        b.all_lost();
        assert_eq!(b.in_flight(), 0);
    }
}
