//! Who sent bad data: strikes for hash failures, and the smart ban's block comparison.
//!
//! Every failed attempt at a piece is remembered block by block (each block's SHA-1 and who
//! sent it). When the piece later passes, whoever sent a block that differs from the good data,
//! in any attempt, sent bad data and is banned at once. A failed piece that came from a single
//! address is a strike against it; [`SmartBan::new`]'s `ban_strikes` of them ban it.
//!
//! A piece of several senders that fails says only that one of them lied, so it strikes no
//! one: blaming all of them (libtorrent's partial strikes) bans the honest seed too when a
//! peer slips one bad block into every piece it shares with it, which is the attack this
//! guards against. Instead the engine has the piece downloaded again from one peer alone
//! (see `Torrent::exclusive`), so the next attempt either passes, and the comparison names
//! the liars of every earlier attempt, or fails with one sender, who takes the strike.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::PieceIndex;

/// Failed attempts kept per piece: with each re-download from one peer, a piece failing
/// more often than this is being attacked from many hosts, each of which took a strike.
pub const MAX_ATTEMPTS_PER_PIECE: usize = 4;

/// Blocks of failed attempts remembered per torrent, oldest attempts forgotten first: about
/// 3.4 MiB of hashes and addresses, 256 attempts at 4 MiB pieces.
pub const MAX_REMEMBERED_BLOCKS: usize = 65_536;

/// One failed attempt at a piece: each block's hash and who sent it.
#[derive(Debug, Clone, Default)]
struct Attempt {
    blocks: Vec<([u8; 20], SocketAddr)>,
}

/// The hash-failure record of one torrent. Most torrents never see a failed piece or a
/// ban, and a session holds thousands of torrents: the record is allocated with the first.
#[derive(Debug, Clone)]
pub(crate) struct SmartBan {
    ban_strikes: u32,
    record: Option<Box<Record>>,
}

/// What [`SmartBan`] remembers once a piece has failed or a host was banned.
#[derive(Debug, Clone, Default)]
struct Record {
    failed: BTreeMap<PieceIndex, VecDeque<Attempt>>,
    /// The piece of every remembered attempt, oldest first.
    order: VecDeque<PieceIndex>,
    remembered_blocks: usize,
    strikes: BTreeMap<IpAddr, u32>,
    banned: BTreeSet<IpAddr>,
}

impl SmartBan {
    /// Bans an address after `ban_strikes` failed pieces that it alone sent.
    pub fn new(ban_strikes: u32) -> Self {
        SmartBan {
            ban_strikes,
            record: None,
        }
    }

    fn record(&mut self) -> &mut Record {
        self.record.get_or_insert_default()
    }

    /// Whether an address's host is banned.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.record.as_ref().is_some_and(|r| r.banned.contains(&ip))
    }

    /// Bans a host; false if it was banned already.
    pub fn ban(&mut self, ip: IpAddr) -> bool {
        self.record().banned.insert(ip)
    }

    /// A piece failed its hash check; `blocks` are its blocks in order with their senders.
    /// Returns the address that earned its last strike, if one did.
    pub fn piece_failed(
        &mut self,
        piece: PieceIndex,
        blocks: &[(Bytes, SocketAddr)],
    ) -> Option<SocketAddr> {
        let ban_strikes = self.ban_strikes;
        let record = self.record();
        record.remember(piece, blocks);
        let only = single_sender(blocks)?;
        let strikes = record.strikes.entry(only.ip()).or_insert(0);
        *strikes += 1;
        (*strikes >= ban_strikes).then_some(only)
    }

    /// A piece passed; `blocks` are the good blocks in order. Returns the senders of blocks,
    /// in any remembered failed attempt, that differ from them.
    pub fn piece_passed(
        &mut self,
        piece: PieceIndex,
        blocks: &[(Bytes, SocketAddr)],
    ) -> BTreeSet<SocketAddr> {
        match self.record.as_mut() {
            Some(r) => r.piece_passed(piece, blocks),
            None => BTreeSet::new(),
        }
    }

    /// Blocks of failed attempts remembered now.
    #[cfg(test)]
    fn remembered_blocks(&self) -> usize {
        self.record.as_ref().map_or(0, |r| r.remembered_blocks)
    }
}

impl Record {
    fn remember(&mut self, piece: PieceIndex, blocks: &[(Bytes, SocketAddr)]) {
        let attempt = Attempt {
            blocks: blocks
                .iter()
                .map(|(data, from)| (crate::sha1(data), *from))
                .collect(),
        };
        self.remembered_blocks += attempt.blocks.len();
        self.failed.entry(piece).or_default().push_back(attempt);
        self.order.push_back(piece);
        if self
            .failed
            .get(&piece)
            .is_some_and(|a| a.len() > MAX_ATTEMPTS_PER_PIECE)
        {
            self.forget_oldest_of(piece);
        }
        while self.remembered_blocks > MAX_REMEMBERED_BLOCKS {
            let Some(&oldest) = self.order.front() else {
                break;
            };
            self.forget_oldest_of(oldest);
        }
    }

    /// Forgets the oldest remembered attempt at `piece`.
    fn forget_oldest_of(&mut self, piece: PieceIndex) {
        if let Some(i) = self.order.iter().position(|p| *p == piece) {
            self.order.remove(i);
        }
        let Some(attempts) = self.failed.get_mut(&piece) else {
            return;
        };
        if let Some(a) = attempts.pop_front() {
            self.remembered_blocks = self.remembered_blocks.saturating_sub(a.blocks.len());
        }
        if attempts.is_empty() {
            self.failed.remove(&piece);
        }
    }

    fn piece_passed(
        &mut self,
        piece: PieceIndex,
        blocks: &[(Bytes, SocketAddr)],
    ) -> BTreeSet<SocketAddr> {
        let mut culprits = BTreeSet::new();
        let Some(attempts) = self.failed.remove(&piece) else {
            return culprits;
        };
        let good: Vec<[u8; 20]> = blocks.iter().map(|(data, _)| crate::sha1(data)).collect();
        for attempt in &attempts {
            self.remembered_blocks = self.remembered_blocks.saturating_sub(attempt.blocks.len());
            for ((hash, from), good) in attempt.blocks.iter().zip(&good) {
                if hash != good {
                    culprits.insert(*from);
                }
            }
        }
        self.order.retain(|p| *p != piece);
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
    fn nothing_is_allocated_until_a_piece_fails_or_a_host_is_banned() {
        let mut ban = SmartBan::new(3);
        assert!(!ban.is_banned(addr(1).ip()));
        let good = [block(1, addr(1))];
        assert!(ban.piece_passed(PieceIndex(0), &good).is_empty());
        assert!(ban.record.is_none());
        ban.piece_failed(PieceIndex(0), &good);
        assert!(ban.record.is_some());
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

    #[test]
    fn every_remembered_attempt_is_compared() {
        let mut ban = SmartBan::new(3);
        let first = [block(1, addr(1)), block(2, addr(2))];
        let second = [block(1, addr(3)), block(7, addr(4))];
        ban.piece_failed(PieceIndex(0), &first);
        ban.piece_failed(PieceIndex(0), &second);
        let good = [block(1, addr(5)), block(2, addr(5))];
        let culprits: Vec<SocketAddr> =
            ban.piece_passed(PieceIndex(0), &good).into_iter().collect();
        assert_eq!(
            culprits,
            vec![addr(4)],
            "the first attempt's liar was forgotten"
        );
        assert_eq!(ban.remembered_blocks(), 0);
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let mut ban = SmartBan::new(u32::MAX);
        let bad = [block(9, addr(1)), block(9, addr(2))];
        for _ in 0..MAX_ATTEMPTS_PER_PIECE + 3 {
            ban.piece_failed(PieceIndex(0), &bad);
        }
        assert_eq!(ban.remembered_blocks(), 2 * MAX_ATTEMPTS_PER_PIECE);
        for p in 1..=(MAX_REMEMBERED_BLOCKS as u32) {
            ban.piece_failed(PieceIndex(p), &bad);
        }
        assert!(ban.remembered_blocks() <= MAX_REMEMBERED_BLOCKS);
        let record = ban.record();
        assert_eq!(
            record.order.len(),
            record.failed.values().map(VecDeque::len).sum::<usize>()
        );
    }
}
