//! The state of one peer connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::io::TorrentId;
use crate::picker::Block;
use crate::rate::RateMeter;
use crate::wire::{Decoder, Message, Reserved};
use crate::{Bitfield, ConnId, PeerId, PieceIndex};

/// Most pieces a peer may mark allowed-fast for us; BEP 6 suggests 10, so 64 leaves room and
/// still bounds memory.
pub const MAX_ALLOWED_FAST: usize = 64;

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

/// One connection.
#[derive(Debug)]
pub(crate) struct Peer {
    pub conn: ConnId,
    pub addr: SocketAddr,
    pub incoming: bool,
    pub torrent: Option<TorrentId>,
    pub phase: Phase,
    pub decoder: Decoder,
    pub peer_id: Option<PeerId>,
    pub fast: bool,
    pub extended: bool,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Pieces the peer has; empty until the torrent is known.
    pub has: Bitfield,
    /// Whether the peer has sent anything after its handshake (a bitfield may only come first).
    pub sent_first_message: bool,
    /// Our requests to it, oldest first, with when they were sent.
    pub requests: VecDeque<(Block, Instant)>,
    pub queue_depth: usize,
    /// Its requests to us not yet read from disk.
    pub their_requests: VecDeque<Block>,
    /// Its requests being read from disk.
    pub reading: Vec<Block>,
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
    /// Its request-queue size from the extension handshake.
    pub reqq: Option<usize>,
    /// Its listening port from the extension handshake.
    pub listen_port: Option<u16>,
    /// Its client name and version from the extension handshake (`v`).
    pub ext_client: Option<String>,
    /// Messages waiting to be written with the next flush.
    pub out: BytesMut,
    /// Buffers waiting behind `out` (PIECE payloads), flushed in order.
    pub out_tail: Vec<Bytes>,
    /// Protocol slips tolerated so far (requests for pieces we lack, ...).
    pub slips: u32,
    /// Blocks we stopped waiting for (cancelled, or dropped by a choke without BEP 6), newest
    /// last, at most [`super::Config::max_request_depth`]: their data may already be on the
    /// wire, so its arrival is not a slip. Without this, an endgame that cancels a deep
    /// pipeline counted every block still in flight against [`super::MAX_SLIPS`] and closed
    /// a good peer (often the only seed), which is then not redialled for a minute.
    pub withdrawn: VecDeque<Block>,
}

impl Peer {
    /// Remembers that we stopped waiting for `b`, forgetting the oldest beyond `max`: a peer
    /// never has more than the request depth of ours in flight.
    pub fn withdraw(&mut self, b: Block, max: usize) {
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

    pub fn new(
        conn: ConnId,
        addr: SocketAddr,
        incoming: bool,
        torrent: Option<TorrentId>,
        now: Instant,
        depth: usize,
    ) -> Self {
        Peer {
            conn,
            addr,
            incoming,
            torrent,
            phase: if incoming {
                Phase::Handshaking { sent: false }
            } else {
                Phase::Connecting
            },
            decoder: Decoder::new(None),
            peer_id: None,
            fast: false,
            extended: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            has: Bitfield::new(0),
            sent_first_message: false,
            requests: VecDeque::new(),
            queue_depth: depth,
            their_requests: VecDeque::new(),
            reading: Vec::new(),
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
            reqq: None,
            listen_port: None,
            ext_client: None,
            out: BytesMut::new(),
            out_tail: Vec::new(),
            slips: 0,
            withdrawn: VecDeque::new(),
        }
    }

    /// Queues a message for the next flush. `out` always holds what comes after `out_tail`.
    pub fn send(&mut self, msg: &Message, now: Instant) {
        // Messages the engine builds are always valid, so encoding cannot fail.
        let _ = msg.encode(&mut self.out);
        self.last_sent = now;
    }

    /// Queues a PIECE message without copying its block.
    pub fn send_piece(&mut self, header: [u8; 13], data: Bytes, now: Instant) {
        let pending = self.out.split().freeze();
        if !pending.is_empty() {
            self.out_tail.push(pending);
        }
        self.out_tail.push(Bytes::copy_from_slice(&header));
        self.out_tail.push(data);
        self.last_sent = now;
    }

    /// Everything queued, in order.
    pub fn take_output(&mut self) -> Vec<Bytes> {
        let mut bufs = std::mem::take(&mut self.out_tail);
        let pending = self.out.split().freeze();
        if !pending.is_empty() {
            bufs.push(pending);
        }
        bufs
    }

    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    pub fn is_seed(&self) -> bool {
        !self.has.is_empty() && self.has.is_full()
    }

    /// Our reserved bytes: fast extension and extension protocol.
    pub fn our_reserved() -> Reserved {
        Reserved::NONE
            .with(crate::wire::Extension::Fast)
            .with(crate::wire::Extension::ExtensionProtocol)
    }
}
