//! Our external IPv4 address as other nodes see it: the `ip` of their answers (BEP 42),
//! put to a vote. Once the vote settles on an address our id does not suit, the node takes
//! an id that does ([`super::NodeId::secure_for`]), so that nodes enforcing BEP 42 keep it.
//!
//! Only answers to our own queries vote (a forged one must guess a transaction id), each
//! source address once per round. Only IPv4 counts: one id serves the node, most of the
//! DHT is IPv4, and votes of both families would pull the id back and forth.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Voters in one round. Enough that a few nodes lying about our address cannot decide
/// it, and a bootstrap collects that many answers within seconds.
pub const ROUND_VOTES: usize = 20;

/// What one round found.
#[derive(Clone, Debug, Default)]
pub struct ExternalIp {
    voters: BTreeSet<IpAddr>,
    counts: BTreeMap<Ipv4Addr, usize>,
}

impl ExternalIp {
    /// `voter` (the node that answered) saw us at `seen`. Returns the address a round
    /// just settled on: the one more than half its voters named. A round that ends
    /// without a majority settles nothing; either way the next round starts.
    pub fn vote(&mut self, voter: SocketAddr, seen: SocketAddr) -> Option<Ipv4Addr> {
        let IpAddr::V4(seen) = seen.ip().to_canonical() else {
            return None;
        };
        if !self.voters.insert(voter.ip().to_canonical()) {
            return None;
        }
        *self.counts.entry(seen).or_insert(0) += 1;
        if self.voters.len() < ROUND_VOTES {
            return None;
        }
        let (leader, votes) = self
            .counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(ip, n)| (*ip, *n))?;
        let total = self.voters.len();
        *self = ExternalIp::default();
        (votes * 2 > total).then_some(leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(i: usize) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, i as u8], 6881))
    }

    #[test]
    fn a_majority_of_distinct_voters_settles_the_address() {
        let ours: SocketAddr = "203.0.113.7:6881".parse().unwrap();
        let liar: SocketAddr = "192.0.2.1:6881".parse().unwrap();
        let mut vote = ExternalIp::default();
        // One voter repeating itself counts once.
        for _ in 0..50 {
            assert_eq!(vote.vote(voter(0), liar), None);
        }
        for i in 1..ROUND_VOTES - 1 {
            let seen = if i % 4 == 0 { liar } else { ours };
            assert_eq!(vote.vote(voter(i), seen), None);
        }
        // IPv6 answers do not vote.
        assert_eq!(
            vote.vote(voter(200), "[2001:db8::1]:1".parse().unwrap()),
            None
        );
        assert_eq!(
            vote.vote(voter(ROUND_VOTES), ours),
            Some(Ipv4Addr::new(203, 0, 113, 7))
        );
    }

    #[test]
    fn a_split_round_settles_nothing_and_the_next_starts_afresh() {
        let mut vote = ExternalIp::default();
        for i in 0..ROUND_VOTES {
            let seen = SocketAddr::from(([203, 0, 113, (i % 3) as u8 + 1], 1));
            assert_eq!(vote.vote(voter(i), seen), None);
        }
        let ours: SocketAddr = "203.0.113.9:1".parse().unwrap();
        let settled = (0..ROUND_VOTES)
            .filter_map(|i| vote.vote(voter(i), ours))
            .last();
        assert_eq!(settled, Some(Ipv4Addr::new(203, 0, 113, 9)));
    }
}
