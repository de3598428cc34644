//! What a connection sends: retransmissions first, then new data within the windows, then
//! the FIN, then a bare ack.

use std::time::Instant;

use super::{
    Connection, Header, MAX_PAYLOAD, MAX_SACK_BYTES, Packet, PacketType, SelectiveAck, State,
};

impl Connection {
    /// The next datagram to send, if any; call until `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let d = self.next_datagram(now);
        if d.is_some() {
            // Every packet acks what arrived so far.
            self.need_ack = false;
            self.stats.datagrams_sent += 1;
        }
        d
    }

    fn next_datagram(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.reset_pending {
            self.reset_pending = false;
            return Some(self.encode(now, PacketType::Reset, self.send.next_seq(), &[]));
        }
        if !self.is_open() {
            return self.take_ack(now);
        }
        if self.state == State::SynSent {
            if self.syn_pushed {
                return self.resend(now);
            }
            self.syn_pushed = true;
            let seq_nr = self.send.push(now, PacketType::Syn, 0);
            self.arm(now);
            return Some(self.encode(now, PacketType::Syn, seq_nr, &[]));
        }
        if let Some(d) = self.resend(now) {
            return Some(d);
        }
        if let Some(d) = self.send_new(now) {
            return Some(d);
        }
        self.take_ack(now)
    }

    fn take_ack(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.need_ack || matches!(self.state, State::Failed(_) | State::SynSent) {
            return None;
        }
        Some(self.encode(now, PacketType::State, self.send.next_seq(), &[]))
    }

    /// How many of `want` more bytes the windows let go now (0: none). A packet goes whole
    /// when it fits both the congestion window and the peer's; with nothing in flight, a
    /// window smaller than a packet lets that much go; after a time-out, one packet goes
    /// whatever the windows say (the probe).
    fn room_for(&mut self, want: usize) -> usize {
        let in_flight = self.send.in_flight();
        if self.probe && in_flight == 0 {
            return want;
        }
        let cwnd = self.cc.window();
        if in_flight + want > cwnd && cwnd <= self.peer_wnd {
            self.cwnd_limited = true;
        }
        let window = cwnd.min(self.peer_wnd);
        if in_flight + want <= window {
            want
        } else if in_flight == 0 {
            want.min(window)
        } else {
            0
        }
    }

    fn resend(&mut self, now: Instant) -> Option<Vec<u8>> {
        let (seq_nr, p) = self.send.first_lost()?;
        let (kind, len) = (p.kind, p.payload.len());
        if self.room_for(len) < len {
            return None;
        }
        self.probe = false;
        self.send.resent(now, seq_nr);
        self.stats.retransmissions += 1;
        self.arm(now);
        Some(self.encode(now, kind, seq_nr, self.send.payload(seq_nr)))
    }

    fn send_new(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.send.can_number() {
            return None;
        }
        if self.send.unsent() == 0 {
            self.cwnd_limited = false;
            if !self.close_requested || self.fin_seq.is_some() || self.send.first_lost().is_some() {
                return None;
            }
            let seq_nr = self.send.push(now, PacketType::Fin, 0);
            self.fin_seq = Some(seq_nr);
            self.arm(now);
            return Some(self.encode(now, PacketType::Fin, seq_nr, &[]));
        }
        let paced = self.send.in_flight() > 0 && self.burst == 0;
        let len = if paced {
            0
        } else {
            self.room_for(MAX_PAYLOAD.min(self.send.unsent()))
        };
        if len == 0 {
            // Blocked by a window: a time-out will probe if no ack reopens it.
            self.arm(now);
            return None;
        }
        self.probe = false;
        self.burst = self.burst.saturating_sub(1);
        let seq_nr = self.send.push(now, PacketType::Data, len);
        self.arm(now);
        Some(self.encode(now, PacketType::Data, seq_nr, self.send.payload(seq_nr)))
    }

    /// Starts the retransmission timer if it is not running.
    fn arm(&mut self, now: Instant) {
        if self.deadline.is_none() {
            self.deadline = Some(now + self.rtt.rto());
        }
    }

    /// A packet with the current ack, window, timestamps and selective ack.
    fn encode(&self, now: Instant, kind: PacketType, seq_nr: u16, payload: &[u8]) -> Vec<u8> {
        let header = Header {
            kind,
            connection_id: if kind == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_us: self.micros(now),
            timestamp_diff_us: self.reply_micros,
            wnd_size: u32::try_from(self.recv.window()).unwrap_or(u32::MAX),
            seq_nr,
            ack_nr: self.recv.ack_nr(),
        };
        // A packet without payload has room for the longest selective ack.
        let max_sack = if payload.is_empty() {
            super::super::MAX_STATE_SACK_BYTES
        } else {
            MAX_SACK_BYTES
        };
        let mask = self.recv.sack(max_sack);
        let sack = mask.as_deref().and_then(|m| SelectiveAck::new(m).ok());
        Packet {
            header,
            sack,
            payload,
        }
        .encode()
    }
}
