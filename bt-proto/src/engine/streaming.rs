//! Streaming: readers that read a file's bytes in order while the torrent downloads, and the
//! sequential download option.
//!
//! A reader ([`Session::open_reader`]) has a position in its file. The pieces from there on,
//! [`STREAM_WINDOW`] bytes of them, are its window: the picker takes them before anything
//! else, most urgent first, and the fastest peers are asked again for the blocks of the
//! first ones that slower peers hold (see [`crate::picker::Picker::set_deadlines`]). With
//! several readers the windows interleave, each reader's next piece before anyone's
//! second. Everything else keeps rarest first (or index order, with
//! [`Session::set_sequential`]).
//!
//! A seek, where a reader's next piece is new to the windows, withdraws the requests in
//! flight for anything but the readers' most urgent pieces (with CANCELs), so that the
//! window is not queued behind pipelined requests; reading on moves the window a piece at
//! a time without that. A seed running this engine under an adapter that reports its writes
//! keeps the requests beyond its send watermark where a CANCEL withdraws them (see
//! [`super::Input::Written`]), so a seek waits only for the little it had handed to its
//! socket. Other seeds may read and queue to send whatever they were asked at once, which
//! no CANCEL recalls: while a torrent has readers its pipelines are short
//! ([`STREAM_REQUEST_AHEAD`]). A reader learns what it may read from
//! [`Session::file_bytes_ready`]: bytes are ready only once their piece is verified.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{Session, TorrentId};
use crate::PieceIndex;

/// Bytes of a reader's window: 16 MiB, a quarter minute of a high-bitrate video, so a player
/// reading at its bitrate finds its next pieces verified, and few enough pieces (64 of
/// 256 KiB) that the window does not become the whole download.
pub const STREAM_WINDOW: u64 = 16 * 1024 * 1024;

/// A window holds at least two pieces: the one read and the next, whatever their size.
pub const MIN_WINDOW_PIECES: u32 = 2;

/// Readers per session: each costs a window's recomputation on every move, and no player
/// needs more than a handful; a caller opening readers in a loop gets `None` past this.
pub const MAX_READERS: usize = 256;

/// How far ahead a streaming torrent's requests run: 200 ms of each peer's rate. Many
/// peers read and queue to send whatever they are asked at once (a CANCEL cannot recall
/// it), so a seek waits for what each of those was asked before it; the usual pipelines of
/// two seconds would make that two seconds. 200 ms is several round trips of most links,
/// enough to keep the peers busy.
pub const STREAM_REQUEST_AHEAD: std::time::Duration = std::time::Duration::from_millis(200);

/// Requests in flight to a peer of a streaming torrent, whatever its rate: 4 blocks, enough
/// to keep a fresh or slow peer busy over a round trip.
pub const MIN_STREAM_DEPTH: usize = 4;

/// A peer's request depth while its torrent streams, from its rate (see
/// [`STREAM_REQUEST_AHEAD`]).
pub(super) fn stream_depth(rate: u64) -> usize {
    let bytes = u128::from(rate) * STREAM_REQUEST_AHEAD.as_millis() / 1000;
    let blocks = bytes / u128::from(crate::picker::BLOCK_LEN);
    usize::try_from(blocks)
        .unwrap_or(usize::MAX)
        .max(MIN_STREAM_DEPTH)
}

/// A reader's handle ([`Session::open_reader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReaderId(pub u64);

#[derive(Debug, Clone, Copy)]
struct Reader {
    torrent: TorrentId,
    file: usize,
    /// Where it reads, in bytes from its file's start.
    offset: u64,
}

/// The session's readers.
#[derive(Debug, Default)]
pub(super) struct Readers {
    next: u64,
    by_id: BTreeMap<ReaderId, Reader>,
}

impl Readers {
    /// Whether torrent `id` has a reader open.
    pub fn streams(&self, id: TorrentId) -> bool {
        self.by_id.values().any(|r| r.torrent == id)
    }

    /// Forgets the readers of a removed torrent.
    pub fn torrent_removed(&mut self, id: TorrentId) {
        self.by_id.retain(|_, r| r.torrent != id);
    }
}

impl Session {
    /// Opens a reader on file `file` of torrent `id`, at its start: the file's first pieces
    /// are fetched before anything else. `None` if there is no such torrent or file (a
    /// magnet link's torrent has its files once its metadata came), or
    /// [`MAX_READERS`] are open. A file set to priority 0 is wanted again: reading it
    /// means wanting it.
    pub fn open_reader(&mut self, now: Instant, id: TorrentId, file: usize) -> Option<ReaderId> {
        let t = self.torrents.get(&id)?;
        if file >= t.meta.piece_map().file_count() || self.readers.by_id.len() >= MAX_READERS {
            return None;
        }
        if t.file_priorities.get(file) == Some(&0) {
            self.set_file_priority(now, id, file, 1);
        }
        let reader = ReaderId(self.readers.next);
        self.readers.next += 1;
        let r = Reader {
            torrent: id,
            file,
            offset: 0,
        };
        self.readers.by_id.insert(reader, r);
        self.update_deadlines(now, id);
        Some(reader)
    }

    /// The reader moved to `offset` of its file (it read up to there, or seeked); its
    /// window moves with it. False if there is no such reader.
    pub fn move_reader(&mut self, now: Instant, reader: ReaderId, offset: u64) -> bool {
        let Some(r) = self.readers.by_id.get_mut(&reader) else {
            return false;
        };
        let (id, file, old) = (r.torrent, r.file, r.offset);
        r.offset = offset;
        if self.reader_piece(id, file, old) != self.reader_piece(id, file, offset) {
            self.update_deadlines(now, id);
        }
        true
    }

    /// Closes a reader: its window is released.
    pub fn close_reader(&mut self, now: Instant, reader: ReaderId) {
        if let Some(r) = self.readers.by_id.remove(&reader) {
            self.update_deadlines(now, r.torrent);
        }
    }

    /// Verified bytes of file `file` of torrent `id` from `offset` on, in one run (0 if the
    /// piece holding `offset` is not verified yet; what is left of the file at most). `None`
    /// if there is no such torrent or file.
    pub fn file_bytes_ready(&self, id: TorrentId, file: usize, offset: u64) -> Option<u64> {
        let t = self.torrents.get(&id)?;
        let map = t.meta.piece_map();
        let (start, len) = (map.file_offset(file)?, map.file_len(file)?);
        if offset >= len {
            return Some(0);
        }
        let piece_len = u64::from(map.piece_length().max(1));
        let have = t.picker.have();
        let mut at = start + offset;
        let end = start + len;
        while at < end {
            let p = PieceIndex(u32::try_from(at / piece_len).unwrap_or(u32::MAX));
            if !have.get(p) {
                break;
            }
            at = (u64::from(p.0) + 1) * piece_len;
        }
        Some(at.min(end) - (start + offset))
    }

    /// Picks the torrent's new pieces in index order (or rarest first again); false if
    /// there is no such torrent.
    pub fn set_sequential(&mut self, now: Instant, id: TorrentId, on: bool) -> bool {
        let Some(t) = self.torrents.get_mut(&id) else {
            return false;
        };
        t.picker.set_sequential(on);
        self.refill(now, id);
        true
    }

    /// The piece holding byte `offset` of `file`, if any.
    fn reader_piece(&self, id: TorrentId, file: usize, offset: u64) -> Option<u32> {
        let map = self.torrents.get(&id)?.meta.piece_map();
        let start = map.file_offset(file)?;
        let piece_len = u64::from(map.piece_length().max(1));
        u32::try_from((start + offset) / piece_len).ok()
    }

    /// The window of each reader of `id`, interleaved: each reader's first piece, then each
    /// one's second, and so on; pieces already verified left out. The first pieces are the
    /// first `readers` of the list.
    fn windows(&self, id: TorrentId) -> (Vec<PieceIndex>, usize) {
        let Some(t) = self.torrents.get(&id) else {
            return (Vec::new(), 0);
        };
        let map = t.meta.piece_map();
        let piece_len = u64::from(map.piece_length().max(1));
        let mut each: Vec<Vec<PieceIndex>> = Vec::new();
        for r in self.readers.by_id.values().filter(|r| r.torrent == id) {
            let (Some(start), Some(len)) = (map.file_offset(r.file), map.file_len(r.file)) else {
                continue;
            };
            let from = start + r.offset.min(len.saturating_sub(1));
            let to = (start + len)
                .min(from + STREAM_WINDOW.max(piece_len * u64::from(MIN_WINDOW_PIECES)));
            let (first, last) = (from / piece_len, to.saturating_sub(1) / piece_len);
            let pieces = (first..=last)
                .filter_map(|p| u32::try_from(p).ok())
                .map(PieceIndex)
                .filter(|p| !t.picker.have().get(*p))
                .collect();
            each.push(pieces);
        }
        let mut seen = BTreeSet::new();
        let longest = each.iter().map(Vec::len).max().unwrap_or(0);
        let firsts = each.iter().filter(|w| !w.is_empty()).count();
        let all = (0..longest)
            .flat_map(|i| each.iter().filter_map(move |w| w.get(i).copied()))
            .filter(|p| seen.insert(*p))
            .collect();
        (all, firsts)
    }

    /// Gives the picker the torrent's windows; after a seek, withdraws what was asked
    /// outside them so the window goes first.
    fn update_deadlines(&mut self, now: Instant, id: TorrentId) {
        let (window, firsts) = self.windows(id);
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        // A reader whose next piece was not in any window jumped there.
        let seek = window
            .iter()
            .take(firsts)
            .any(|p| !t.picker.deadlines().contains(p));
        t.picker.set_deadlines(window.clone());
        if seek {
            // What was asked beyond each reader's most urgent pieces goes back too, so that
            // the pipelines fill again in the order of the windows interleaved.
            let urgent = firsts.saturating_mul(crate::picker::DEADLINE_ENDGAME_PIECES);
            let inside: BTreeSet<PieceIndex> = window.into_iter().take(urgent).collect();
            for c in self.torrent_conns(id) {
                self.withdraw_outside(now, c, &inside);
            }
        }
        self.refill(now, id);
    }
}
