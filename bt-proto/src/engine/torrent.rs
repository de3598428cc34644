//! The state of one torrent in a session.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::announce::Announcer;
use super::io::{TorrentId, TorrentState};
use crate::choker::Choker;
use crate::metainfo::Metainfo;
use crate::picker::{BLOCK_LEN, Picker};
use crate::{ConnId, PieceIndex};

/// Addresses remembered per torrent; tracker replies beyond this are dropped, so a hostile
/// tracker cannot grow memory without bound.
pub const MAX_KNOWN_PEERS: usize = 2000;
/// Failed connection attempts after which an address is forgotten.
pub const MAX_CONNECT_FAILURES: u32 = 5;
/// Wait before retrying an address after its first failure; doubled per failure.
pub const RECONNECT_BASE: Duration = Duration::from_secs(10);
/// Wait before redialling an address after the first close of a working (handshaken)
/// connection to it. A flat minute here once left a leecher at 255 of 256 pieces idle with
/// no peer at all after its only seed dropped it; a few seconds brings back a peer that
/// restarted or lost a NAT mapping at once, and is still no load on one that closed on
/// purpose, since repeated closes back off (see [`RECONNECT_AFTER_CLOSE_MAX`]).
pub const RECONNECT_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// Each further close of an address's connections doubles its wait, up to this. A peer that
/// keeps dropping us (full, or it does not want us) costs a handshake every half hour at
/// worst: it must not be hammered, yet a peer that changes its mind is not lost for good.
pub const RECONNECT_AFTER_CLOSE_MAX: Duration = Duration::from_secs(30 * 60);
/// A connection that lasted this long (or delivered blocks), not snubbed and not closed by us
/// for the peer's fault, worked: its close forgives the address's earlier closes, so the
/// next redial is [`RECONNECT_AFTER_CLOSE`] again. A minute is far beyond what a peer that
/// drops us on sight (a full client, or one that does not want us) gives.
pub const CONNECTION_PROVEN_AFTER: Duration = Duration::from_secs(60);
/// Closes counted when we closed a connection for breaking the protocol (a malformed message,
/// the slip limit): such a peer will likely do it again, so it starts three doublings up the
/// back-off (40 s), while a one-off race still gets another chance within a minute.
pub const PROTOCOL_ERROR_CLOSES: u32 = 4;
/// A torrent with every wanted piece needs nothing from its peers (leechers dial it), so it
/// redials a closed peer after at least this long; it calls every known peer back at once
/// when it wants pieces again.
pub const RECONNECT_WHEN_DONE: Duration = Duration::from_secs(60);

/// An address we may connect to.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub next_attempt: Instant,
    pub failures: u32,
    /// Closes of working connections since the last one that proved itself, each doubling the
    /// wait before the next dial (see [`RECONNECT_AFTER_CLOSE`]).
    pub closes: u32,
    pub connected: bool,
}

/// How an established connection to a known address ended, for [`Candidate::closed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndedConnection {
    /// How long it was open.
    pub lasted: Duration,
    /// Whether it delivered blocks we wanted: a peer serving us is worth calling back
    /// soon however short its connections (a flaky link, a client that rotates them).
    pub delivered: bool,
    /// We closed it because the peer broke the protocol.
    pub misbehaved: bool,
    /// Whether it delivered nothing when asked (snubbed) or went silent (inactive), so it
    /// did not work however long it lasted.
    pub useless: bool,
    /// Whether the torrent has every wanted piece.
    pub torrent_done: bool,
}

impl Candidate {
    /// Records the close of a working connection to this address and schedules the next
    /// dial: soon after a connection that worked or a first close, then doubling per close.
    pub fn closed(&mut self, now: Instant, how: EndedConnection) {
        let worked = how.lasted >= CONNECTION_PROVEN_AFTER || how.delivered;
        if worked && !how.misbehaved && !how.useless {
            self.closes = 0;
        }
        let weight = if how.misbehaved {
            PROTOCOL_ERROR_CLOSES
        } else {
            1
        };
        self.closes = self.closes.saturating_add(weight);
        // 2^20 times the base is far past the cap; the shift stays in range.
        let doublings = self.closes.saturating_sub(1).min(20);
        let mut wait = RECONNECT_AFTER_CLOSE
            .saturating_mul(1 << doublings)
            .min(RECONNECT_AFTER_CLOSE_MAX);
        if how.torrent_done {
            wait = wait.max(RECONNECT_WHEN_DONE);
        }
        self.next_attempt = now + wait;
    }
}

/// Received blocks of a piece not yet complete, with who sent each.
#[derive(Debug, Clone, Default)]
pub(crate) struct PieceBuf {
    pub blocks: Vec<Option<(Bytes, SocketAddr)>>,
}

/// A piece that failed once: the hash of each block and who sent it, kept until the piece
/// passes so the senders of blocks that differ from the good data can be named.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailedPiece {
    pub blocks: Vec<([u8; 20], SocketAddr)>,
}

#[derive(Debug)]
pub(crate) struct Torrent {
    pub id: TorrentId,
    pub meta: Metainfo,
    pub state: TorrentState,
    pub picker: Picker,
    pub file_priorities: Vec<u8>,
    pub buffers: BTreeMap<PieceIndex, PieceBuf>,
    /// Pieces handed to the adapter to verify and store, with each block and its sender, for
    /// the comparison with an earlier failed attempt.
    pub verifying: BTreeMap<PieceIndex, Vec<(Bytes, SocketAddr)>>,
    pub failed: BTreeMap<PieceIndex, FailedPiece>,
    pub checking: BTreeSet<PieceIndex>,
    pub peers: BTreeSet<ConnId>,
    pub known: BTreeMap<SocketAddr, Candidate>,
    pub strikes: BTreeMap<IpAddr, u32>,
    pub banned: BTreeSet<IpAddr>,
    pub uploaded: u64,
    pub downloaded: u64,
    pub announcer: Announcer,
    pub choker: Choker,
    /// Whether every wanted piece was verified when last looked at (to notice completion).
    pub was_done: bool,
}

impl Torrent {
    pub fn piece_count(&self) -> u32 {
        self.meta.piece_count()
    }

    pub fn piece_len(&self, p: PieceIndex) -> u32 {
        self.picker.piece_len(p)
    }

    pub fn blocks_in(&self, p: PieceIndex) -> usize {
        self.piece_len(p).div_ceil(BLOCK_LEN) as usize
    }

    /// Bytes of file `file` inside piece `p`.
    pub fn file_overlap(&self, file: usize, p: PieceIndex) -> u64 {
        let map = self.meta.piece_map();
        let (Some(fstart), Some(flen), Some(pstart)) = (
            map.file_offset(file),
            map.file_len(file),
            map.piece_offset(p),
        ) else {
            return 0;
        };
        let pend = pstart + u64::from(self.piece_len(p));
        let fend = fstart + flen;
        pend.min(fend).saturating_sub(pstart.max(fstart))
    }

    /// Bytes of wanted pieces not yet verified, the short last piece included.
    pub fn left(&self) -> u64 {
        self.picker
            .needed()
            .iter_ones()
            .map(|p| u64::from(self.piece_len(p)))
            .sum()
    }

    /// Priority of each piece: the highest of the files it touches, so a piece shared by a
    /// skipped file and a wanted one is wanted.
    pub fn piece_priorities(meta: &Metainfo, file_priorities: &[u8]) -> Vec<u8> {
        let mut prio = vec![0u8; meta.piece_count() as usize];
        for (i, file) in meta.files().iter().enumerate() {
            if file.is_padding() {
                continue;
            }
            let fp = file_priorities.get(i).copied().unwrap_or(1);
            if let Some(range) = meta.piece_map().file_pieces(i) {
                for p in range.iter() {
                    if let Some(slot) = prio.get_mut(p.as_usize()) {
                        *slot = (*slot).max(fp);
                    }
                }
            }
        }
        prio
    }
}
