//! The state of one torrent in a session.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::announce::Announcer;
use super::dialing::Candidates;
use super::exclusive::Exclusive;
use super::io::{StorageError, TorrentId, TorrentState};
use super::smart_ban::SmartBan;
use crate::choker::Choker;
use crate::metainfo::Metainfo;
use crate::picker::{BLOCK_LEN, Picker};
use crate::{ConnId, PieceIndex};

/// Received blocks of a piece not yet complete, with who sent each.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartialPiece {
    pub blocks: Vec<Option<(Bytes, SocketAddr)>>,
}

#[derive(Debug)]
pub(crate) struct Torrent {
    pub id: TorrentId,
    /// Shared with whoever added it (see [`super::Session::add_torrent`]).
    pub meta: Arc<Metainfo>,
    pub state: TorrentState,
    pub picker: Picker,
    pub file_priorities: Vec<u8>,
    /// Pieces being downloaded, verified, checked or fetched again: see [`Torrent::in_flight`].
    pub in_flight: Option<Box<InFlight>>,
    /// Every connection bound to this torrent: dialled for it, or routed to it by an incoming
    /// handshake; [`super::peer::Peer::is_active`] tells which finished their handshake.
    pub conns: BTreeSet<ConnId>,
    pub candidates: Candidates,
    pub smart_ban: SmartBan,
    pub uploaded: u64,
    pub downloaded: u64,
    pub announcer: Announcer,
    pub choker: Choker,
    /// Whether every wanted piece was verified when last looked at (to notice completion).
    pub was_done: bool,
    /// The state to enter when the hashcheck asked for at add time is done; `None` once the
    /// user chose a state meanwhile.
    pub after_check: Option<TorrentState>,
    /// Verified pieces changed since the last resume save.
    pub resume_dirty: bool,
    /// The storage error that made the torrent [`TorrentState::Failed`]; `Some` exactly then.
    /// Boxed: rare, and four times the size of a pointer in each of thousands of torrents.
    pub error: Option<Box<StorageError>>,
    /// Peer exchange switched off for this torrent ([`super::AddTorrent::no_pex`]).
    pub no_pex: bool,
    /// The median download rate of its active peers at the last choke round: peers at
    /// least this fast are asked for the urgent blocks of streaming readers.
    pub median_rate: u64,
    /// When it last called its peers back for want of a useful one
    /// (see [`super::Session::redial_if_stuck`]).
    pub stuck_redial: Option<std::time::Instant>,
}

/// What a torrent holds while pieces are in flight. A seed added with its resume data never
/// needs it, and a session may hold thousands of those: it is allocated with the first use
/// (four empty maps inline were 96 of a torrent's ~790 bytes).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    pub partial_pieces: BTreeMap<PieceIndex, PartialPiece>,
    /// Pieces handed to the adapter to verify and store, with each block and its sender, for
    /// the comparison with an earlier failed attempt.
    pub verifying: BTreeMap<PieceIndex, Vec<(Bytes, SocketAddr)>>,
    /// Pieces of a hashcheck not yet answered.
    pub checking: BTreeSet<PieceIndex>,
    /// Pieces that failed their hash check, downloaded again from one peer alone.
    pub exclusive: BTreeMap<PieceIndex, Exclusive>,
}

/// The pieces in flight of a torrent that never had any.
static NONE_IN_FLIGHT: InFlight = InFlight {
    partial_pieces: BTreeMap::new(),
    verifying: BTreeMap::new(),
    checking: BTreeSet::new(),
    exclusive: BTreeMap::new(),
};

impl Torrent {
    /// Its pieces in flight (none if it never had any).
    pub fn in_flight(&self) -> &InFlight {
        self.in_flight.as_deref().unwrap_or(&NONE_IN_FLIGHT)
    }

    /// Its pieces in flight, to change: allocated with the first use.
    pub fn in_flight_mut(&mut self) -> &mut InFlight {
        self.in_flight.get_or_insert_default()
    }

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
