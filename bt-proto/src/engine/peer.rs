//! The state of one peer connection, and the rules that keep it consistent.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::early_pieces::EarlyPieces;
use super::encryption::Crypto;
use super::extension::PeerExtensions;
use super::io::TorrentId;
use super::metadata::MetadataServed;
use super::pex::PexSent;
use super::send_window::SendWindow;
use crate::picker::{BLOCK_LEN, Block};
use crate::rate::RateMeter;
use crate::wire::{Decoder, Extension, Message, Reserved};
use crate::{Bitfield, ConnId, PeerId, PieceIndex};

/// Most pieces a peer may mark allowed-fast for us; BEP 6 suggests 10, so 64 leaves room and
/// still bounds memory.
pub const MAX_ALLOWED_FAST: usize = 64;

/// Protocol slips (requests for pieces we lack, unrequested blocks, ...) tolerated per
/// connection before it is closed: a few happen legitimately around HAVE/choke races.
pub const MAX_SLIPS: u32 = 64;

/// Queued messages up to this many bytes are copied out of `Peer::out` on a flush: a
/// flush's small messages (HAVE, REQUEST, a PIECE header: 5-17 bytes each) rarely come near
/// it. Anything larger (a bitfield, metadata, a burst of requests) is split off without a
/// copy, so no flush copies more than this.
const COPIED_FLUSH: usize = 1024;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outbound, waiting for the TCP connect.
    Connecting,
    /// Handshakes being exchanged; `sent` once ours went out.
    Handshaking { sent: bool },
    /// Messages flow.
    Active,
}

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The peer connected to our listener.
    Incoming,
    /// We dialled the peer.
    Outgoing,
}

/// The peer's side of the choke and interest states (BEP 3), and ours.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChokeState {
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Peer {
    pub conn: ConnId,
    pub addr: SocketAddr,
    pub direction: Direction,
    pub torrent: Option<TorrentId>,
    pub phase: Phase,
    pub decoder: Decoder,
    pub peer_id: Option<PeerId>,
    /// Both sides speak the fast extension (BEP 6).
    pub fast: bool,
    /// Both sides speak the extension protocol (BEP 10).
    pub extended: bool,
    pub choke: ChokeState,
    /// Pieces the peer has; empty until the torrent is known.
    pub pieces: Bitfield,
    /// What it said it has while its torrent fetched the metadata (`pieces` is empty then).
    pub early_pieces: EarlyPieces,
    /// Whether the peer has sent anything after its handshake (a bitfield may only come first).
    pub sent_first_message: bool,
    /// Our requests to it, oldest first, with when they were sent.
    pub requests: VecDeque<(Block, Instant)>,
    /// Requests we keep in flight to it, from its measured rate.
    pub queue_depth: usize,
    /// Its requests to us not yet read from disk.
    pub their_requests: VecDeque<Block>,
    /// Its requests being read from disk.
    pub reading: Vec<Block>,
    /// What its transport has not taken yet of what we handed it, and the watermark that
    /// holds back its requests (see `send_window`).
    pub send_window: SendWindow,
    /// Pieces it lets us request while choked (BEP 6).
    pub allowed_fast: Vec<PieceIndex>,
    pub down: RateMeter,
    pub up: RateMeter,
    pub downloaded: u64,
    pub uploaded: u64,
    pub connected_at: Instant,
    pub last_received: Instant,
    pub last_sent: Instant,
    /// Last time a block arrived, or requests were first sent after a quiet spell.
    pub last_block: Instant,
    pub snubbed: bool,
    pub optimistic: bool,
    pub extensions: PeerExtensions,
    /// The metadata pieces we served it and the requests we refused (BEP 9).
    pub metadata_served: MetadataServed,
    /// What we told it by peer exchange, and how often it told us (BEP 11).
    pub pex: PexSent,
    /// Message stream encryption: the handshake, or the cipher after it.
    pub crypto: Crypto,
    /// The torrent an incoming MSE handshake named: its BitTorrent handshake must name the
    /// same one.
    pub mse_torrent: Option<crate::InfoHash>,
    /// Bytes for the wire as they are, ahead of everything else: an MSE handshake's.
    sealed: Vec<Bytes>,
    /// Messages waiting to be written with the next flush.
    out: BytesMut,
    /// Buffers waiting behind `out` (PIECE payloads), flushed in order.
    out_tail: Vec<Bytes>,
    /// Bytes of the PIECE messages in `out_tail`, for the send watermark.
    pieces_queued: u64,
    /// Protocol slips tolerated so far (requests for pieces we lack, ...).
    slips: u32,
    /// Blocks we stopped waiting for (cancelled, or dropped by a choke without BEP 6), newest
    /// last, at most [`super::Config::max_request_depth`]: their data may already be on the
    /// wire, so its arrival is not a slip. An endgame cancels whole pipelines; counting what
    /// was in flight would close good peers, often the only seed.
    withdrawn: VecDeque<Block>,
    /// Queued in [`super::peers::Peers`] for a flush.
    pub(super) flush_queued: bool,
    /// TCP, or uTP carried by the engine itself.
    pub transport: super::Transport,
}

impl Peer {
    fn new(conn: ConnId, addr: SocketAddr, direction: Direction, now: Instant) -> Self {
        Peer {
            conn,
            addr,
            direction,
            torrent: None,
            phase: match direction {
                Direction::Incoming => Phase::Handshaking { sent: false },
                Direction::Outgoing => Phase::Connecting,
            },
            decoder: Decoder::new(None),
            peer_id: None,
            fast: false,
            extended: false,
            choke: ChokeState {
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
            },
            pieces: Bitfield::new(0),
            early_pieces: EarlyPieces::default(),
            sent_first_message: false,
            requests: VecDeque::new(),
            queue_depth: 0,
            their_requests: VecDeque::new(),
            reading: Vec::new(),
            send_window: SendWindow::new(now),
            allowed_fast: Vec::new(),
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            downloaded: 0,
            uploaded: 0,
            connected_at: now,
            last_received: now,
            last_sent: now,
            last_block: now,
            snubbed: false,
            optimistic: false,
            extensions: PeerExtensions::default(),
            metadata_served: MetadataServed::default(),
            pex: PexSent::default(),
            crypto: Crypto::Plain,
            mse_torrent: None,
            sealed: Vec::new(),
            out: BytesMut::new(),
            out_tail: Vec::new(),
            pieces_queued: 0,
            slips: 0,
            withdrawn: VecDeque::new(),
            flush_queued: false,
            transport: super::Transport::Tcp,
        }
    }

    /// A connection accepted by our listener; its torrent is known from its handshake.
    pub fn incoming(conn: ConnId, addr: SocketAddr, now: Instant, depth: usize) -> Self {
        Peer {
            queue_depth: depth,
            ..Peer::new(conn, addr, Direction::Incoming, now)
        }
    }

    /// A connection we dial for `torrent`.
    pub fn outgoing(
        conn: ConnId,
        addr: SocketAddr,
        torrent: TorrentId,
        now: Instant,
        depth: usize,
    ) -> Self {
        Peer {
            queue_depth: depth,
            torrent: Some(torrent),
            ..Peer::new(conn, addr, Direction::Outgoing, now)
        }
    }

    pub fn is_incoming(&self) -> bool {
        self.direction == Direction::Incoming
    }

    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    pub fn is_seed(&self) -> bool {
        !self.pieces.is_empty() && self.pieces.is_full()
    }

    /// Our reserved bytes: fast extension and extension protocol.
    pub fn our_reserved() -> Reserved {
        Reserved::NONE
            .with(Extension::Fast)
            .with(Extension::ExtensionProtocol)
    }

    // ----- output -----------------------------------------------------------------------

    /// Queues a message for the next flush. `out` always holds what comes after `out_tail`.
    pub fn send(&mut self, msg: &Message, now: Instant) {
        // Messages the engine builds are always valid, so encoding cannot fail.
        let _ = msg.encode(&mut self.out);
        self.last_sent = now;
    }

    /// Queues raw bytes (a handshake) for the next flush.
    pub fn send_raw(&mut self, bytes: &[u8], now: Instant) {
        self.out.extend_from_slice(bytes);
        self.last_sent = now;
    }

    /// Queues a PIECE message without copying its block.
    pub fn send_piece(&mut self, header: [u8; 13], data: Bytes, now: Instant) {
        // The header goes out with the messages queued before it, in one buffer.
        self.out.extend_from_slice(&header);
        let queued = self.take_out();
        self.out_tail.extend(queued);
        self.pieces_queued += (header.len() + data.len()) as u64;
        self.out_tail.push(data);
        self.last_sent = now;
    }

    /// What `out` holds, as a buffer of its own. Small messages (most flushes: a few HAVEs
    /// and REQUESTs) are copied out and `out` keeps its memory for the next ones; splitting
    /// `out` instead would make it a shared buffer whose count every flush and every drop
    /// of a sent buffer updates, which cost more than the copy (5 % of the simulator's time),
    /// and a sent HAVE would pin the rest of that buffer until the transport dropped it.
    fn take_out(&mut self) -> Option<Bytes> {
        match self.out.len() {
            0 => None,
            n if n <= COPIED_FLUSH => {
                let small = Bytes::copy_from_slice(&self.out);
                self.out.clear();
                Some(small)
            }
            _ => Some(self.out.split().freeze()),
        }
    }

    /// Everything queued, in order.
    pub fn take_output(&mut self) -> Vec<Bytes> {
        let mut bufs = std::mem::take(&mut self.out_tail);
        self.pieces_queued = 0;
        bufs.extend(self.take_out());
        let bufs = self.crypto.seal(bufs);
        if self.sealed.is_empty() {
            return bufs;
        }
        let mut all = std::mem::take(&mut self.sealed);
        all.extend(bufs);
        all
    }

    /// Bytes of its requests being read or queued in the engine to be sent (the send
    /// watermark adds those handed to the transport; the small messages count once handed).
    pub fn serving(&self) -> u64 {
        let reading: u64 = self.reading.iter().map(|b| u64::from(b.length)).sum();
        reading + self.pieces_queued
    }

    /// Queues bytes that go on the wire as they are, before anything queued later or
    /// now: an MSE handshake's, which it encrypts itself.
    pub fn send_sealed(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.sealed.push(Bytes::from(bytes));
        }
    }

    // ----- choking and interest ---------------------------------------------------------

    /// Chokes or unchokes the peer; false if nothing changed. A choke drops the requests a
    /// peer without BEP 6 queued with us, as BEP 3 has it. A BEP 6 peer's are served: with
    /// the fast extension each request is answered by its block or a reject, and those we
    /// accepted before the choke get their blocks, as they did when the engine read and
    /// queued whatever was asked at once (before the send watermark held requests back);
    /// what it asks while choked is rejected. Dropping them undid what the peer had planned
    /// on: the bench's swarm of slow uploads (101 nodes) took 441 s of virtual time instead
    /// of 352 s. A pause drops them all ([`Peer::drop_their_requests`]).
    pub fn set_choking(&mut self, choke: bool, now: Instant) -> bool {
        if !self.is_active() || self.choke.am_choking == choke {
            return false;
        }
        self.choke.am_choking = choke;
        if choke {
            self.optimistic = false;
            self.send(&Message::Choke, now);
            if !self.fast {
                self.drop_their_requests(now);
            }
        } else {
            self.send(&Message::Unchoke, now);
        }
        true
    }

    /// Drops the peer's requests to us, queued or being read (a read is ignored when it
    /// returns), with a reject each for a BEP 6 peer.
    pub fn drop_their_requests(&mut self, now: Instant) {
        let dropped: Vec<Block> = self
            .their_requests
            .drain(..)
            .chain(self.reading.drain(..))
            .collect();
        if self.fast {
            for b in dropped {
                self.send(&Message::RejectRequest(b), now);
            }
        }
    }

    /// Says INTERESTED or NOT INTERESTED if our interest changed.
    pub fn set_interested(&mut self, interested: bool, now: Instant) {
        if !self.is_active() || self.choke.am_interested == interested {
            return;
        }
        self.choke.am_interested = interested;
        let msg = if interested {
            Message::Interested
        } else {
            Message::NotInterested
        };
        self.send(&msg, now);
    }

    /// Tells a BEP 6 peer its request will not be served (others just never get an answer).
    pub fn reject(&mut self, b: Block, now: Instant) {
        if self.fast {
            self.send(&Message::RejectRequest(b), now);
        }
    }

    // ----- our requests -----------------------------------------------------------------

    /// How many requests to keep in flight: its rate's worth, one while snubbed, never more
    /// than its `reqq`.
    pub fn request_depth(&self) -> usize {
        let depth = if self.snubbed { 1 } else { self.queue_depth };
        self.extensions
            .said
            .reqq
            .map_or(depth, |reqq| depth.min(reqq))
    }

    /// Requests to keep in flight to it, shorter while its torrent `streaming` has readers
    /// (see [`super::STREAM_REQUEST_AHEAD`]).
    pub fn pipeline_depth(&self, streaming: bool, now: Instant) -> usize {
        let depth = self.request_depth();
        match streaming {
            true => depth.min(super::streaming::stream_depth(self.down.rate(now))),
            false => depth,
        }
    }

    /// Stops waiting for every request we made, telling the peer with a CANCEL each when
    /// `cancel`; returns them for the picker. Their data may still arrive: see `withdrawn`.
    pub fn drop_requests(
        &mut self,
        cancel: bool,
        max_withdrawn: usize,
        now: Instant,
    ) -> Vec<Block> {
        self.drop_requests_where(cancel, max_withdrawn, now, |_| true)
    }

    /// Like [`Peer::drop_requests`], for the requests `drop` chooses only.
    pub fn drop_requests_where(
        &mut self,
        cancel: bool,
        max_withdrawn: usize,
        now: Instant,
        drop: impl Fn(Block) -> bool,
    ) -> Vec<Block> {
        let mut reqs = Vec::new();
        self.requests.retain(|(b, _)| {
            let dropped = drop(*b);
            if dropped {
                reqs.push(*b);
            }
            !dropped
        });
        for b in &reqs {
            if cancel {
                self.send(&Message::Cancel(*b), now);
            }
            self.withdraw(*b, max_withdrawn);
        }
        reqs
    }

    /// Stops waiting for one block another peer delivered first (endgame), with a CANCEL.
    /// False if it was not requested from this peer.
    pub fn cancel_request(&mut self, b: Block, max_withdrawn: usize, now: Instant) -> bool {
        let Some(i) = self.requests.iter().position(|(r, _)| *r == b) else {
            return false;
        };
        self.requests.remove(i);
        self.withdraw(b, max_withdrawn);
        self.send(&Message::Cancel(b), now);
        true
    }

    /// Takes a block out of our requests; false if it was not requested from this peer.
    pub fn take_request(&mut self, b: Block) -> bool {
        match self.requests.iter().position(|(r, _)| *r == b) {
            Some(i) => {
                self.requests.remove(i);
                true
            }
            None => false,
        }
    }

    /// Remembers that we stopped waiting for `b`, forgetting the oldest beyond `max`: a peer
    /// never has more than the request depth of ours in flight.
    fn withdraw(&mut self, b: Block, max: usize) {
        if self.withdrawn.len() >= max {
            self.withdrawn.pop_front();
        }
        self.withdrawn.push_back(b);
    }

    /// Whether `b` is a block we withdrew (forgetting it: each arrives once).
    pub fn was_withdrawn(&mut self, b: Block) -> bool {
        match self.withdrawn.iter().position(|x| *x == b) {
            Some(i) => {
                self.withdrawn.remove(i);
                true
            }
            None => false,
        }
    }

    /// A block we wanted arrived: rates, counters, and a request depth of
    /// `queue_seconds` of its rate within `[min_depth, max_depth]`.
    pub fn record_block(
        &mut self,
        length: u32,
        now: Instant,
        queue_seconds: u64,
        (min_depth, max_depth): (usize, usize),
    ) {
        self.down.record(now, u64::from(length));
        self.downloaded += u64::from(length);
        self.last_block = now;
        self.snubbed = false;
        let by_rate = self.down.rate(now).saturating_mul(queue_seconds) / u64::from(BLOCK_LEN);
        self.queue_depth = usize::try_from(by_rate)
            .unwrap_or(usize::MAX)
            .clamp(min_depth, max_depth);
    }

    /// Counts a protocol slip; true once the peer has made more than [`MAX_SLIPS`].
    pub fn slip(&mut self) -> bool {
        self.slips += 1;
        self.slips > MAX_SLIPS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush of small messages hands over a buffer of its own: a HAVE waiting in a socket
    /// queue pins nothing of the peer's buffer, which the next messages reuse.
    #[test]
    fn small_flushes_are_buffers_of_their_own() {
        let now = Instant::now();
        let addr = SocketAddr::from(([10, 0, 0, 1], 6881));
        let mut p = Peer::incoming(ConnId(1), addr, now, 4);
        p.send(&Message::Have(PieceIndex(3)), now);
        p.send(&Message::Interested, now);
        let bufs = p.take_output();
        assert_eq!(bufs.len(), 1);
        assert_eq!(
            &bufs[0][..],
            &[0, 0, 0, 5, 4, 0, 0, 0, 3, 0, 0, 0, 1, 2][..]
        );
        assert!(bufs[0].is_unique(), "the flush shares the peer's buffer");
        // A PIECE header goes with the messages queued before it; the block follows as is.
        p.send(&Message::Have(PieceIndex(4)), now);
        let block = Bytes::from(vec![7u8; 100]);
        let mut header = [0u8; 13];
        header[..4].copy_from_slice(&109u32.to_be_bytes());
        header[4] = 7;
        p.send_piece(header, block.clone(), now);
        let bufs = p.take_output();
        assert_eq!(bufs.len(), 2);
        assert_eq!(bufs[0].len(), 9 + 13);
        assert_eq!(&bufs[0][9..], &header[..]);
        assert!(bufs[0].is_unique());
        assert_eq!(bufs[1].as_ptr(), block.as_ptr(), "the block was copied");
        assert_eq!(p.take_output(), Vec::<Bytes>::new());
    }
}
