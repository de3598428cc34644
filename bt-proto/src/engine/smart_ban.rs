//! Who sent bad data: strikes for hash failures, and the smart ban's block comparison.
//!
//! A piece that fails its hash check is remembered block by block (each block's SHA-1 and
//! who sent it). When the piece later passes, whoever sent a block that differs from the good
//! data sent bad data and is banned. A failed piece that came from a single address is a
//! strike against it on its own; [`SmartBan::new`]'s `ban_strikes` of them ban it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::PieceIndex;

/// A piece that failed once: the hash of each block and who sent it, kept until the piece
/// passes so the senders of blocks that differ from the good data can be named.
#[derive(Debug, Clone, Default)]
struct FailedPiece {
    blocks: Vec<([u8; 20], SocketAddr)>,
}

/// The hash-failure record of one torrent.
#[derive(Debug, Clone)]
pub(crate) struct SmartBan {
    ban_strikes: u32,
    failed: BTreeMap<PieceIndex, FailedPiece>,
    strikes: BTreeMap<IpAddr, u32>,
    banned: BTreeSet<IpAddr>,
}

impl SmartBan {
    /// Bans an address after `ban_strikes` failed pieces that it alone sent.
    pub fn new(ban_strikes: u32) -> Self {
        SmartBan {
            ban_strikes,
            failed: BTreeMap::new(),
            strikes: BTreeMap::new(),
            banned: BTreeSet::new(),
        }
    }

    /// Whether an address's host is banned.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned.contains(&ip)
    }

    /// Bans a host; false if it was banned already.
    pub fn ban(&mut self, ip: IpAddr) -> bool {
        self.banned.insert(ip)
    }

    /// A piece failed its hash check; `blocks` are its blocks in order with their senders.
    /// Returns an address that earned its last strike, if one did: a piece from a single
    /// sender convicts it, mixed pieces wait for the comparison in [`SmartBan::piece_passed`].
    pub fn piece_failed(
        &mut self,
        piece: PieceIndex,
        blocks: &[(Bytes, SocketAddr)],
    ) -> Option<SocketAddr> {
        let failed = FailedPiece {
            blocks: blocks
                .iter()
                .map(|(data, from)| (crate::sha1(data), *from))
                .collect(),
        };
        self.failed.insert(piece, failed);
        let only = single_sender(blocks)?;
        let strikes = self.strikes.entry(only.ip()).or_insert(0);
        *strikes += 1;
        (*strikes >= self.ban_strikes).then_some(only)
    }

    /// A piece passed; `blocks` are the good blocks in order. Returns the senders of blocks of
    /// an earlier failed attempt that differ from them.
    pub fn piece_passed(
        &mut self,
        piece: PieceIndex,
        blocks: &[(Bytes, SocketAddr)],
    ) -> BTreeSet<SocketAddr> {
        let mut culprits = BTreeSet::new();
        if let Some(failed) = self.failed.remove(&piece) {
            for ((hash, from), (good, _)) in failed.blocks.iter().zip(blocks) {
                if crate::sha1(good) != *hash {
                    culprits.insert(*from);
                }
            }
        }
        culprits
    }
}

/// The one address that sent every block, if there is one.
fn single_sender(blocks: &[(Bytes, SocketAddr)]) -> Option<SocketAddr> {
    let (_, first) = blocks.first()?;
    blocks
        .iter()
        .all(|(_, from)| from == first)
        .then_some(*first)
}

/// The distinct senders of a piece's blocks, in the order they first appear.
pub(crate) fn senders(blocks: &[(Bytes, SocketAddr)]) -> Vec<SocketAddr> {
    let mut from: Vec<SocketAddr> = Vec::new();
    for (_, addr) in blocks {
        if !from.contains(addr) {
            from.push(*addr);
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6881))
    }

    fn block(byte: u8, from: SocketAddr) -> (Bytes, SocketAddr) {
        (Bytes::from(vec![byte; 16]), from)
    }

    #[test]
    fn a_lone_sender_is_banned_at_the_strike_limit() {
        let mut ban = SmartBan::new(3);
        let bad = [block(1, addr(1)), block(2, addr(1))];
        assert_eq!(ban.piece_failed(PieceIndex(0), &bad), None);
        assert_eq!(ban.piece_failed(PieceIndex(1), &bad), None);
        assert_eq!(ban.piece_failed(PieceIndex(2), &bad), Some(addr(1)));
        assert!(ban.ban(addr(1).ip()));
        assert!(!ban.ban(addr(1).ip()), "once");
        assert!(ban.is_banned(addr(1).ip()));
        assert!(!ban.is_banned(addr(2).ip()));
    }

    #[test]
    fn mixed_pieces_earn_no_strike_but_the_comparison_names_the_culprit() {
        let mut ban = SmartBan::new(1);
        let failed = [block(9, addr(1)), block(2, addr(2))];
        assert_eq!(ban.piece_failed(PieceIndex(4), &failed), None);
        let good = [block(1, addr(3)), block(2, addr(3))];
        let culprits = ban.piece_passed(PieceIndex(4), &good);
        assert_eq!(culprits.into_iter().collect::<Vec<_>>(), vec![addr(1)]);
        assert!(
            ban.piece_passed(PieceIndex(4), &good).is_empty(),
            "the failed attempt is forgotten once compared"
        );
    }

    #[test]
    fn a_piece_that_passes_first_time_blames_nobody() {
        let mut ban = SmartBan::new(1);
        let good = [block(1, addr(1))];
        assert!(ban.piece_passed(PieceIndex(0), &good).is_empty());
    }

    #[test]
    fn senders_are_listed_once_in_order() {
        let blocks = [block(0, addr(2)), block(0, addr(1)), block(0, addr(2))];
        assert_eq!(senders(&blocks), vec![addr(2), addr(1)]);
    }
}
