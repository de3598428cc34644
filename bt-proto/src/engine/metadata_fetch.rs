//! Assembling a torrent's metadata from peers (BEP 9): which piece to ask whom, what came
//! back, and whether the assembled bytes are the torrent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::extensions::ut_metadata::{METADATA_PIECE_LEN, piece_count};
use crate::{ConnId, InfoHash};

/// Largest metadata fetched, in bytes (8 MiB). The info dictionary is mostly 20 bytes per
/// piece plus the file list: 8 MiB holds 400,000 piece hashes (1.6 TB in 4 MiB pieces) or
/// file lists of 100,000 files, where libtorrent's 4 MiB leaves some large datasets
/// unfetchable. A peer's claim is all we know of the size before the hash check, so this is
/// also what one torrent's fetch can be made to hold, in pieces we asked for one by one.
pub const MAX_METADATA_SIZE: u64 = 8 * 1024 * 1024;

/// Metadata requests in flight to one peer. Pieces are 16 KiB and peers answer from memory,
/// so a few keep a peer busy for a round trip while the rest go to other peers.
pub const METADATA_REQUESTS_PER_PEER: usize = 4;

/// How long a metadata request may go unanswered before its piece is asked of someone else.
/// A 16 KiB answer from memory takes a round trip, even behind a full pipe of blocks.
pub const METADATA_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a peer that refused a metadata request (or let one time out) is not asked
/// again. It may not have the metadata yet, or limit what it serves; libtorrent waits a
/// minute likewise.
pub const METADATA_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One 16 KiB piece of the metadata.
#[derive(Debug, Clone)]
enum Slot {
    Missing,
    Asked { conn: ConnId, at: Instant },
    Got { data: Bytes, from: SocketAddr },
}

/// What a received piece meant.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled {
    /// More pieces are needed (or the piece was one we already had).
    Incomplete,
    /// Every piece arrived and the bytes hash to the info-hash.
    Done(Vec<u8>),
    /// Every piece arrived and the bytes do not match; these sent them. Start again.
    HashFailed(Vec<SocketAddr>),
}

/// A piece that cannot be part of the metadata being assembled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadPiece {
    /// `total_size` differs from the size being assembled.
    Size { said: u64, expected: u64 },
    /// The piece's length is not what its index and the size make it.
    Length { piece: u32, len: usize },
}

/// The metadata being fetched for one torrent.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetadataFetch {
    /// The size being assembled, once a peer advertised one.
    size: Option<u64>,
    slots: Vec<Slot>,
    /// After an assembly failed its hash, all of the next comes from one peer at a time,
    /// so that a second failure names the peer that lied.
    single_source: bool,
    /// Peers not asked again before then (they refused, or did not answer).
    resting: BTreeMap<ConnId, Instant>,
}

impl MetadataFetch {
    /// The size being assembled, choosing one if none is: the one most `advertised` (by the
    /// connected peers that serve metadata), the smallest among equals. Sizes above
    /// [`MAX_METADATA_SIZE`] and 0 are never chosen.
    pub fn choose_size(&mut self, advertised: impl IntoIterator<Item = u64>) -> Option<u64> {
        if self.size.is_none() {
            let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
            for size in advertised {
                if acceptable_size(size) {
                    *votes.entry(size).or_insert(0) += 1;
                }
            }
            // Ties go to the first, the smallest: max_by_key keeps the last maximum.
            let best = votes.iter().rev().max_by_key(|(_, n)| **n).map(|(s, _)| *s);
            if let Some(size) = best {
                self.size = Some(size);
                let n = piece_count(usize::try_from(size).unwrap_or(usize::MAX));
                self.slots = vec![Slot::Missing; n];
            }
        }
        self.size
    }

    /// Pieces to ask `conn` for now, marked asked. None while it rests, while another peer
    /// is the single source, or when nothing is missing.
    pub fn assign(&mut self, now: Instant, conn: ConnId) -> Vec<u32> {
        if self.resting.get(&conn).is_some_and(|until| *until > now) {
            return Vec::new();
        }
        self.resting.remove(&conn);
        let mut mine = 0;
        let mut others = 0;
        for slot in &self.slots {
            if let Slot::Asked { conn: c, .. } = slot {
                if *c == conn {
                    mine += 1;
                } else {
                    others += 1;
                }
            }
        }
        if self.single_source && others > 0 {
            return Vec::new();
        }
        let room = METADATA_REQUESTS_PER_PEER.saturating_sub(mine);
        let mut asked = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if asked.len() >= room {
                break;
            }
            if matches!(slot, Slot::Missing) {
                *slot = Slot::Asked { conn, at: now };
                asked.extend(u32::try_from(i).ok());
            }
        }
        asked
    }

    /// A piece arrived from `conn` at `from`. A piece we did not ask for is taken as well
    /// (an answer after its time-out is still the data): the hash check judges it.
    pub fn received(
        &mut self,
        info_hash: &InfoHash,
        from: SocketAddr,
        piece: u32,
        total_size: u64,
        data: Bytes,
    ) -> Result<Assembled, BadPiece> {
        let Some(size) = self.size else {
            return Ok(Assembled::Incomplete);
        };
        if total_size != size {
            return Err(BadPiece::Size {
                said: total_size,
                expected: size,
            });
        }
        let index = piece as usize;
        let start = (index as u64).saturating_mul(METADATA_PIECE_LEN as u64);
        let expected = size.saturating_sub(start).min(METADATA_PIECE_LEN as u64);
        let Some(slot) = self.slots.get_mut(index).filter(|_| expected > 0) else {
            return Err(BadPiece::Length {
                piece,
                len: data.len(),
            });
        };
        if data.len() as u64 != expected {
            return Err(BadPiece::Length {
                piece,
                len: data.len(),
            });
        }
        if matches!(slot, Slot::Got { .. }) {
            return Ok(Assembled::Incomplete);
        }
        *slot = Slot::Got { data, from };
        Ok(self.assemble(info_hash))
    }

    fn assemble(&mut self, info_hash: &InfoHash) -> Assembled {
        let mut bytes = Vec::new();
        let mut senders = Vec::new();
        for slot in &self.slots {
            let Slot::Got { data, from } = slot else {
                return Assembled::Incomplete;
            };
            bytes.extend_from_slice(data);
            if !senders.contains(from) {
                senders.push(*from);
            }
        }
        if crate::sha1(&bytes) == info_hash.0 {
            return Assembled::Done(bytes);
        }
        // The size may have been the lie: let the peers choose again.
        self.size = None;
        self.slots.clear();
        self.single_source = true;
        Assembled::HashFailed(senders)
    }

    /// `conn` refused `piece`: ask someone else, and not it for a while.
    pub fn rejected(&mut self, now: Instant, conn: ConnId, piece: u32) {
        if let Some(slot @ Slot::Asked { .. }) = self.slots.get_mut(piece as usize)
            && matches!(slot, Slot::Asked { conn: c, .. } if *c == conn)
        {
            *slot = Slot::Missing;
        }
        self.resting.insert(conn, now + METADATA_RETRY_AFTER);
    }

    /// Requests unanswered for [`METADATA_REQUEST_TIMEOUT`] go back to missing, and their
    /// peers rest. Returns the next deadline: a request's time-out or a rest's end.
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for slot in &mut self.slots {
            if let Slot::Asked { conn, at } = *slot {
                let due = at + METADATA_REQUEST_TIMEOUT;
                if due <= now {
                    *slot = Slot::Missing;
                    self.resting.insert(conn, now + METADATA_RETRY_AFTER);
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        self.resting.retain(|_, until| *until > now);
        if let Some(rest) = self.resting.values().min() {
            next = Some(next.map_or(*rest, |n| n.min(*rest)));
        }
        next
    }

    /// `conn` is gone: what it was asked is missing again.
    pub fn closed(&mut self, conn: ConnId) {
        for slot in &mut self.slots {
            if matches!(slot, Slot::Asked { conn: c, .. } if *c == conn) {
                *slot = Slot::Missing;
            }
        }
        self.resting.remove(&conn);
    }

    /// Whether a peer advertising `size` can serve the metadata being assembled.
    pub fn wants_size(&self, size: u64) -> bool {
        acceptable_size(size) && self.size.is_none_or(|s| s == size)
    }
}

fn acceptable_size(size: u64) -> bool {
    size > 0 && size <= MAX_METADATA_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6881))
    }

    fn metadata(len: usize) -> (Vec<u8>, InfoHash) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let hash = InfoHash(crate::sha1(&bytes));
        (bytes, hash)
    }

    fn piece(bytes: &[u8], i: u32) -> Bytes {
        let start = i as usize * METADATA_PIECE_LEN;
        let end = (start + METADATA_PIECE_LEN).min(bytes.len());
        Bytes::copy_from_slice(&bytes[start..end])
    }

    #[test]
    fn the_most_advertised_size_wins_and_oversized_ones_never_do() {
        let mut f = MetadataFetch::default();
        assert_eq!(f.choose_size([MAX_METADATA_SIZE + 1, 0]), None);
        assert_eq!(
            f.choose_size([100, 200, 200, MAX_METADATA_SIZE + 1]),
            Some(200)
        );
        assert_eq!(
            f.choose_size([100, 100, 100]),
            Some(200),
            "kept once chosen"
        );
        assert!(f.wants_size(200) && !f.wants_size(100));
        let mut g = MetadataFetch::default();
        assert_eq!(
            g.choose_size([300, 100]),
            Some(100),
            "ties go to the smallest"
        );
    }

    #[test]
    fn pieces_are_spread_and_assembled() {
        let (bytes, hash) = metadata(METADATA_PIECE_LEN * 5 + 7);
        let mut f = MetadataFetch::default();
        f.choose_size([bytes.len() as u64]);
        let now = Instant::now();
        let a = f.assign(now, ConnId(1));
        let b = f.assign(now, ConnId(2));
        assert_eq!(a, [0, 1, 2, 3]);
        assert_eq!(b, [4, 5]);
        assert!(f.assign(now, ConnId(1)).is_empty(), "its budget is full");
        let size = bytes.len() as u64;
        for i in 0..5 {
            let got = f.received(&hash, addr(1), i, size, piece(&bytes, i));
            assert_eq!(got, Ok(Assembled::Incomplete));
        }
        assert_eq!(
            f.received(&hash, addr(2), 5, size, piece(&bytes, 5)),
            Ok(Assembled::Done(bytes.clone()))
        );
    }

    #[test]
    fn wrong_sizes_and_lengths_are_refused() {
        let (bytes, hash) = metadata(METADATA_PIECE_LEN + 10);
        let mut f = MetadataFetch::default();
        f.choose_size([bytes.len() as u64]);
        let size = bytes.len() as u64;
        assert_eq!(
            f.received(&hash, addr(1), 0, size + 1, piece(&bytes, 0)),
            Err(BadPiece::Size {
                said: size + 1,
                expected: size
            })
        );
        assert_eq!(
            f.received(&hash, addr(1), 1, size, piece(&bytes, 0)),
            Err(BadPiece::Length {
                piece: 1,
                len: METADATA_PIECE_LEN
            })
        );
        assert!(f.received(&hash, addr(1), 2, size, Bytes::new()).is_err());
        assert!(
            f.received(&hash, addr(1), u32::MAX, size, Bytes::new())
                .is_err()
        );
    }

    #[test]
    fn a_failed_hash_starts_again_from_one_peer_at_a_time() {
        let (bytes, hash) = metadata(METADATA_PIECE_LEN * 2);
        let size = bytes.len() as u64;
        let mut f = MetadataFetch::default();
        f.choose_size([size]);
        let now = Instant::now();
        f.assign(now, ConnId(1));
        let lie = Bytes::from(vec![0u8; METADATA_PIECE_LEN]);
        assert_eq!(
            f.received(&hash, addr(1), 0, size, lie),
            Ok(Assembled::Incomplete)
        );
        assert_eq!(
            f.received(&hash, addr(2), 1, size, piece(&bytes, 1)),
            Ok(Assembled::HashFailed(vec![addr(1), addr(2)]))
        );
        assert!(
            f.assign(now, ConnId(1)).is_empty(),
            "no size until chosen again"
        );
        f.choose_size([size]);
        assert_eq!(f.assign(now, ConnId(1)), [0, 1]);
        assert!(f.assign(now, ConnId(2)).is_empty(), "one source at a time");
        f.closed(ConnId(1));
        assert_eq!(f.assign(now, ConnId(2)), [0, 1]);
    }

    #[test]
    fn rejects_and_time_outs_rest_the_peer() {
        let (bytes, _) = metadata(METADATA_PIECE_LEN * 2);
        let mut f = MetadataFetch::default();
        f.choose_size([bytes.len() as u64]);
        let now = Instant::now();
        assert_eq!(f.assign(now, ConnId(1)), [0, 1]);
        f.rejected(now, ConnId(1), 0);
        assert!(f.assign(now, ConnId(1)).is_empty(), "resting");
        assert_eq!(f.assign(now, ConnId(2)), [0]);
        let deadline = f.expire(now);
        assert_eq!(deadline, Some(now + METADATA_REQUEST_TIMEOUT));
        let later = now + METADATA_REQUEST_TIMEOUT;
        assert_eq!(f.expire(later), Some(later + METADATA_RETRY_AFTER));
        assert_eq!(f.assign(later, ConnId(3)), [0, 1], "both timed out");
        assert!(
            f.assign(later, ConnId(2)).is_empty(),
            "2 rests after its time-out"
        );
    }
}
