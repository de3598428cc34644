//! What a connection does with a packet of its own and with a time-out.

use std::time::Instant;

use super::{
    ACK_BURST, Connection, ConnectionError, DUP_ACK_LIMIT, Event, MAX_RETRANSMITS,
    MAX_STALLED_TIMEOUTS, MAX_SYN_RETRANSMITS, Packet, PacketType, Received, State, seq,
};

impl Connection {
    /// A packet for this connection (the caller matched its address and connection id).
    /// Packets that ack what was never sent are dropped whole.
    pub fn on_datagram(&mut self, now: Instant, packet: &Packet) {
        let h = packet.header;
        match (self.state, h.kind) {
            // After a clean close a reset changes nothing.
            (State::Failed(_), _) | (State::Closed, PacketType::Reset) => return,
            (_, PacketType::Reset) => {
                self.fail(ConnectionError::Reset);
                return;
            }
            (_, PacketType::Syn) => {
                // The peer did not hear our answer to its SYN: answer again.
                if self.accept_deadline.is_some() && h.seq_nr == self.recv.ack_nr() {
                    self.need_ack = true;
                }
                return;
            }
            (State::SynSent, _) => {
                if h.ack_nr != self.send.next_seq().wrapping_sub(1) || self.send.packets() == 0 {
                    return;
                }
                // The answer to our SYN: the peer's numbering starts here (a STATE carries
                // the number its next packet takes, a DATA its own).
                self.recv = super::RecvBuffer::new(h.seq_nr.wrapping_sub(1));
                self.state = State::Connected;
                self.event(Event::Connected);
            }
            _ => {}
        }
        if !self.send.is_valid_ack(h.ack_nr) {
            return;
        }
        self.accept_deadline = None;
        self.silent_timeouts = 0;
        self.peer_wnd = usize::try_from(h.wnd_size).unwrap_or(usize::MAX);
        self.reply_micros = self.micros(now).wrapping_sub(h.timestamp_us);
        self.on_ack(now, packet);
        match h.kind {
            PacketType::Data => self.on_data(h.seq_nr, packet.payload, false),
            PacketType::Fin => self.on_data(h.seq_nr, &[], true),
            _ => {}
        }
        self.check_closed(now);
    }

    fn on_ack(&mut self, now: Instant, packet: &Packet) {
        let h = packet.header;
        let was_acked = self.send.acked();
        let loss = (self.rtt.reorder_delay(), self.rtt.resend_loss_delay());
        let acked = self.send.ack(now, h.ack_nr, packet.sack, loss);
        if let Some(rtt) = acked.rtt {
            self.rtt.sample(rtt);
        }
        self.cc
            .on_ack(now, acked.bytes, h.timestamp_diff_us, self.cwnd_limited);
        if acked.packets > 0 {
            self.next_round(acked.newest);
            self.burst = self.burst.min(ACK_BURST) + acked.packets + ACK_BURST;
            self.stalled_timeouts = 0;
            self.dup_acks = 0;
            self.deadline = (self.send.packets() > 0).then(|| now + self.rtt.rto());
            if self.write_blocked && self.writable() > 0 {
                self.write_blocked = false;
                self.event(Event::Writable);
            }
            if let Some(fin) = self.fin_seq {
                self.fin_acked = self.fin_acked || !seq::before(self.send.acked(), fin);
            }
        } else if h.ack_nr == was_acked
            && h.kind == PacketType::State
            && packet.sack.is_none()
            && self.send.packets() > 0
        {
            self.dup_acks += 1;
            if self.dup_acks == DUP_ACK_LIMIT
                && let Some(lost) = self.send.fast_retransmit()
            {
                self.on_loss(lost, 1);
            }
        }
        if let Some(lost) = acked.lost {
            self.on_loss(lost, acked.lost_packets);
        }
    }

    /// Starts a new round trip once a packet sent in this one arrived (`newest`: the
    /// latest transmission newly acked). Rounds follow deliveries, not the cumulative ack,
    /// which stalls behind a hole for a round trip and would lump two rounds' losses in one.
    fn next_round(&mut self, newest: u64) {
        if newest <= self.round_start {
            return;
        }
        let sends = self.send.sends();
        // What was sent in the round, and at least what is still unacked: a round cut
        // short by an early delivery must not make a few losses look like a high rate.
        let sent = usize::try_from(sends - self.round_start).unwrap_or(usize::MAX);
        self.round_packets = sent.max(self.send.packets());
        self.round_start = sends;
        self.round_losses = 0;
    }

    /// `count` packets were found lost, the last of them `lost`; they are resent in any
    /// case. The window halves if LEDBAT calls it congestion, and once per window of
    /// packets: a loss of a packet sent before the last halving is part of the same event.
    fn on_loss(&mut self, lost: u16, count: usize) {
        self.stats.fast_losses += count as u64;
        self.round_losses += count;
        if seq::before(self.loss_guard, lost)
            && self.cc.is_congestion(self.round_losses, self.round_packets)
        {
            self.cc.on_congestion();
            self.loss_guard = self.send.next_seq().wrapping_sub(1);
        }
    }

    fn on_data(&mut self, seq_nr: u16, payload: &[u8], fin: bool) {
        self.need_ack = true;
        let before = self.recv.readable();
        if self.recv.insert(seq_nr, payload, fin) == Received::New && self.recv.readable() > before
        {
            self.event(Event::Readable);
        }
        if self.recv.fin_received() && !self.eof_reported {
            self.eof_reported = true;
            self.event(Event::Eof);
        }
    }

    fn check_closed(&mut self, now: Instant) {
        if self.state == State::Connected && self.fin_acked && self.recv.fin_received() {
            self.state = State::Closed;
            self.deadline = None;
            self.linger_until = Some(now + super::CLOSE_LINGER);
            self.event(Event::Closed);
        }
    }

    /// Time passed: retransmits after the time-out, gives up after too many, drops an
    /// accepted connection the peer never confirmed. Early calls do nothing.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            if self.linger_until.is_some_and(|t| now >= t) {
                self.linger_until = None;
            }
            return;
        }
        if self.accept_deadline.is_some_and(|t| now >= t) {
            self.fail(ConnectionError::TimedOut);
            return;
        }
        if !self.is_open() || self.deadline.is_none_or(|t| now < t) {
            return;
        }
        if self.send.packets() == 0 && self.send.unsent() == 0 {
            // Nothing outstanding: an idle connection does not time out.
            self.deadline = None;
            return;
        }
        self.silent_timeouts += 1;
        self.stalled_timeouts += 1;
        self.stats.timeouts += 1;
        let silent_limit = if self.state == State::SynSent {
            MAX_SYN_RETRANSMITS
        } else {
            MAX_RETRANSMITS
        };
        if self.silent_timeouts > silent_limit {
            self.fail(ConnectionError::TimedOut);
            return;
        }
        if self.stalled_timeouts > MAX_STALLED_TIMEOUTS {
            self.fail(ConnectionError::Stalled);
            return;
        }
        self.rtt.back_off();
        self.cc.on_timeout();
        self.send.all_lost();
        self.loss_guard = self.send.next_seq().wrapping_sub(1);
        self.round_start = self.send.sends();
        self.round_losses = 0;
        self.probe = true;
        self.deadline = Some(now + self.rtt.rto());
    }
}
