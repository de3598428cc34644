//! One uTP connection as a state machine: the handshake, the byte stream both ways, acks,
//! retransmission, congestion and flow control, the close.
//!
//! Feed it the packets of its connection ([`Connection::on_datagram`]) and its time-outs
//! ([`Connection::on_timeout`] at [`Connection::next_timeout`]); drain the datagrams it wants
//! sent ([`Connection::poll_transmit`]) and what happened ([`Connection::poll_event`]) after
//! each call. Connection ids follow BEP 29: the side that connects picks `recv_id`, sends its
//! SYN with it and everything else with `send_id = recv_id + 1`; the side that accepts
//! receives on `SYN id + 1` and sends with the SYN's id.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ledbat::Ledbat;
use super::packet::{Header, Packet, PacketType, SelectiveAck};
use super::recv_buffer::{Received, RecvBuffer};
use super::rtt::Rtt;
use super::send_buffer::SendBuffer;
use super::{DUP_ACK_LIMIT, MAX_PAYLOAD, MAX_SACK_BYTES, seq};

/// Retransmission time-outs survived with nothing at all heard from the peer: 5. The sixth
/// gives the connection up: with back-off from the 500 ms minimum, about 30 s of silence
/// (0.5 + 1 + 2 + 4 + 8 + 16 s). A peer silent that long is gone or unreachable (libtorrent
/// gives up after 3 resends), and BitTorrent has other peers to use.
pub const MAX_RETRANSMITS: u32 = 5;

/// Time-outs of a SYN survived: 2; the third fails the connect. Three SYNs over
/// 1 + 2 + 4 = 7 s (from BEP 29's 1 s initial time-out): a peer that answers none of them
/// is not there, and BitTorrent has other peers to try.
pub const MAX_SYN_RETRANSMITS: u32 = 2;

/// Time-outs in a row without progress (nothing newly acked), even if the peer answers,
/// survived: 8; the ninth gives the connection up, about two minutes with back-off (0.5 s doubling to
/// 32 s, then the one-minute cap), BitTorrent's usual inactivity time-out. This is what ends
/// a peer that keeps its window at 0 (it answers every probe) or acks nothing: its buffers
/// would otherwise be held forever.
pub const MAX_STALLED_TIMEOUTS: u32 = 8;

/// How long an accepted connection waits for the peer to show it is there (any packet after
/// its SYN) before it is dropped: 10 s. A spoofed SYN never gets an answer through, and an
/// incoming connection slot should not be held for longer than a real peer needs to answer.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closed connection stays to ack the peer's FIN again, should our ack be lost:
/// 30 s, about as long as the peer retries before it gives up ([`MAX_RETRANSMITS`] with
/// back-off). It holds no buffers then, and the socket no longer counts it as incoming. A
/// FIN later than that gets a reset, which for a peer that has finished sending only makes
/// its clean close an abrupt one.
pub const CLOSE_LINGER: Duration = Duration::from_secs(30);

/// New packets an ack lets go beyond those it acked: 32 (43 KB, 3.5 ms at 100 Mbit/s: small
/// against LEDBAT's 100 ms target). A sender held back while its flight drained (by the
/// packet limit behind a hole, or the peer's window) otherwise sends the rest of its window
/// at once when that ends, a burst the bottleneck queues, which LEDBAT then measures as
/// queueing delay. A cap of 2 (TCP's maxburst) paced every sender by its acks and cost
/// the 1 GiB loopback transfer 45 % (304 to 162 MB/s, tokio): the receiver acks once per
/// batch of datagrams it drains, and the window could not regrow past what each ack let go.
pub const ACK_BURST: usize = 32;

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Our SYN is out, no answer yet.
    SynSent,
    /// Open (accepted connections are open from their SYN on).
    Connected,
    /// Both sides sent their FIN and had it acked; only lingers to ack the peer's FIN again.
    Closed,
    /// Over, abruptly.
    Failed(ConnectionError),
}

/// Why a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ConnectionError {
    /// Nothing heard from the peer for [`MAX_RETRANSMITS`] time-outs (or
    /// [`MAX_SYN_RETRANSMITS`] for a SYN, or [`ACCEPT_TIMEOUT`] after an incoming SYN).
    #[error("uTP peer timed out")]
    TimedOut,
    /// No progress for [`MAX_STALLED_TIMEOUTS`] time-outs: a window kept at 0, or acks that
    /// never ack anything.
    #[error("uTP connection stalled")]
    Stalled,
    /// The peer sent a reset.
    #[error("uTP connection reset by the peer")]
    Reset,
    /// We reset it ([`Connection::reset`]).
    #[error("uTP connection aborted")]
    Aborted,
}

/// What happened on a connection, for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The handshake completed (connections we opened).
    Connected,
    /// New bytes can be read.
    Readable,
    /// Room in the send buffer after a write was cut short.
    Writable,
    /// The peer sent its FIN and every byte before it arrived: reads end when the readable
    /// bytes are drained.
    Eof,
    /// Closed cleanly both ways.
    Closed,
    /// Failed; the buffers are gone.
    Failed(ConnectionError),
}

/// What a connection did, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent, all kinds.
    pub datagrams_sent: u64,
    /// Packets sent again (after a time-out or a fast retransmit).
    pub retransmissions: u64,
    /// Retransmission time-outs.
    pub timeouts: u64,
    /// Losses found by duplicate or selective acks.
    pub fast_losses: u64,
}

/// One uTP connection.
#[derive(Clone, Debug)]
pub struct Connection {
    state: State,
    epoch: Instant,
    recv_id: u16,
    send_id: u16,
    send: SendBuffer,
    recv: RecvBuffer,
    rtt: Rtt,
    cc: Ledbat,
    /// The peer's advertised window, in bytes.
    peer_wnd: usize,
    /// Our clock minus the timestamp of the peer's last packet: our `timestamp_difference`.
    reply_micros: u32,
    need_ack: bool,
    /// The retransmission timer.
    deadline: Option<Instant>,
    /// Accepted and not confirmed yet: drop at this time unless the peer speaks.
    accept_deadline: Option<Instant>,
    /// Closed and lingering until then.
    linger_until: Option<Instant>,
    /// Time-outs since the peer's last valid packet, and since the last progress.
    silent_timeouts: u32,
    stalled_timeouts: u32,
    /// After a time-out: one packet may go out whatever the windows say.
    probe: bool,
    dup_acks: usize,
    /// Losses of packets up to this sequence number belong to a window already halved.
    loss_guard: u16,
    /// The current round trip, as BBR counts them: it began after the transmission with
    /// this order ([`SendBuffer::sends`]) and ends when a packet sent later arrives. The
    /// packets sent in the round before (whose losses this round finds), and the losses
    /// found since it began (see [`super::ledbat`] on loss).
    round_start: u64,
    round_packets: usize,
    round_losses: usize,
    /// New packets that may go before the next ack while some are in flight (see
    /// [`ACK_BURST`]).
    burst: usize,
    /// Whether the congestion window limited the last sends (it only grows then).
    cwnd_limited: bool,
    syn_pushed: bool,
    close_requested: bool,
    /// Our FIN's sequence number once it was numbered, and whether it was acked.
    fin_seq: Option<u16>,
    fin_acked: bool,
    eof_reported: bool,
    write_blocked: bool,
    reset_pending: bool,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Connection {
    fn new(now: Instant, recv_id: u16, send_id: u16, first_seq: u16, ack_nr: u16) -> Self {
        Connection {
            state: State::SynSent,
            epoch: now,
            recv_id,
            send_id,
            send: SendBuffer::new(first_seq),
            recv: RecvBuffer::new(ack_nr),
            rtt: Rtt::default(),
            cc: Ledbat::default(),
            peer_wnd: MAX_PAYLOAD,
            reply_micros: 0,
            need_ack: false,
            deadline: None,
            accept_deadline: None,
            linger_until: None,
            silent_timeouts: 0,
            stalled_timeouts: 0,
            probe: false,
            dup_acks: 0,
            loss_guard: first_seq.wrapping_sub(1),
            round_start: 0,
            burst: 0,
            round_packets: 0,
            round_losses: 0,
            cwnd_limited: false,
            syn_pushed: false,
            close_requested: false,
            fin_seq: None,
            fin_acked: false,
            eof_reported: false,
            write_blocked: false,
            reset_pending: false,
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// A connection we open: receives on `recv_id` (chosen by the caller, unique for the
    /// peer's address), numbers packets from `first_seq` (random). The SYN is the first
    /// datagram [`Connection::poll_transmit`] gives.
    pub fn connect(now: Instant, recv_id: u16, first_seq: u16) -> Self {
        Connection::new(now, recv_id, recv_id.wrapping_add(1), first_seq, 0)
    }

    /// A connection the peer opened with `syn`; numbers packets from `first_seq` (random).
    /// Its first datagram acks the SYN.
    pub fn accept(now: Instant, syn: &Header, first_seq: u16) -> Self {
        let id = syn.connection_id;
        let mut c = Connection::new(now, id.wrapping_add(1), id, first_seq, syn.seq_nr);
        c.state = State::Connected;
        c.syn_pushed = true;
        c.peer_wnd = usize::try_from(syn.wnd_size).unwrap_or(usize::MAX);
        c.reply_micros = c.micros(now).wrapping_sub(syn.timestamp_us);
        c.need_ack = true;
        c.accept_deadline = Some(now + ACCEPT_TIMEOUT);
        c
    }

    /// The id the peer's packets carry.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The id our packets carry (but the SYN).
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Bytes [`Connection::read`] would give now.
    pub fn readable(&self) -> usize {
        self.recv.readable()
    }

    /// Bytes [`Connection::write`] would take now (0 once closing or over).
    pub fn writable(&self) -> usize {
        match self.state {
            State::SynSent | State::Connected if !self.close_requested => self.send.capacity(),
            _ => 0,
        }
    }

    /// Whether the peer's FIN arrived with everything before it.
    pub fn is_eof(&self) -> bool {
        self.recv.fin_received()
    }

    /// The current congestion window, in bytes.
    pub fn congestion_window(&self) -> usize {
        self.cc.window()
    }

    /// The queueing delay our packets see, as LEDBAT last measured it.
    pub fn queuing_delay(&self) -> Duration {
        self.cc.queuing_delay()
    }

    /// What the connection did so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The smoothed round-trip time, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// Bytes written and not yet acked, and unacked packets (what the send side holds).
    pub fn send_backlog(&self) -> (usize, usize) {
        (
            super::MAX_SEND_BUFFER - self.send.capacity(),
            self.send.packets(),
        )
    }

    /// Queues up to `data.len()` bytes for sending; returns how many the bounded send
    /// buffer took (0 once [`Connection::close`]d or over).
    pub fn write(&mut self, data: &[u8]) -> usize {
        if self.writable() == 0 {
            self.write_blocked = !data.is_empty();
            return 0;
        }
        let n = self.send.write(data);
        self.write_blocked = n < data.len();
        n
    }

    /// Copies received bytes, in order, into `buf`; returns how many. A window update goes
    /// out if reading reopened a window that was too small for a packet.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let before = self.recv.window();
        let n = self.recv.read(buf);
        if before < MAX_PAYLOAD && self.recv.window() >= MAX_PAYLOAD && self.is_open() {
            self.need_ack = true;
        }
        n
    }

    /// Ends our side of the stream: a FIN follows the bytes already written.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// Ends the connection at once: one reset goes out, the buffers are dropped.
    pub fn reset(&mut self) {
        if self.is_open() {
            self.reset_pending = true;
            self.fail(ConnectionError::Aborted);
        }
    }

    /// The next thing that happened, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the connection has nothing left to do: failed (its reset, if any, sent), or
    /// closed and done lingering, with nothing left to read.
    pub fn is_finished(&self) -> bool {
        match self.state {
            State::Failed(_) => !self.reset_pending,
            State::Closed => self.recv.readable() == 0 && self.linger_until.is_none(),
            _ => false,
        }
    }

    /// When [`Connection::on_timeout`] should be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Failed(_) => None,
            State::Closed => self.linger_until,
            _ => [self.deadline, self.accept_deadline]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.state, State::SynSent | State::Connected)
    }

    fn micros(&self, now: Instant) -> u32 {
        // Wrapping on purpose: the wire field is 32 bits of a free-running clock.
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }

    fn event(&mut self, e: Event) {
        if !self.events.contains(&e) {
            self.events.push_back(e);
        }
    }

    fn fail(&mut self, why: ConnectionError) {
        self.state = State::Failed(why);
        self.send = SendBuffer::new(0);
        self.recv = RecvBuffer::new(0);
        self.deadline = None;
        self.events.clear();
        self.event(Event::Failed(why));
    }
}

mod receive;
mod transmit;
