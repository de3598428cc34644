//! One iterative lookup (BEP 5): ask the closest nodes known to a target, [`ALPHA`] at a
//! time, learn closer ones from their answers, and stop when the [`K`] closest that can
//! answer all have.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::krpc::NodeInfo;
use super::routing::K;
use super::{Distance, NodeId};

/// Queries in flight per lookup (BEP 5's α, Kademlia's 3).
pub const ALPHA: usize = 3;

/// How long a query holds one of the [`ALPHA`] slots. A round trip takes well under a
/// second on most paths: a node silent that long is likely gone, and waiting for its
/// full time-out would stall the lookup. Its answer still counts if it comes later.
pub const SLOW_AFTER: Duration = Duration::from_secs(1);

/// Candidates a lookup keeps, closest first. Only the closest [`K`] decide when it ends; a
/// few times that lets it route around nodes that do not answer, and bounds what the
/// `nodes` of hostile answers can make it hold.
pub const MAX_CANDIDATES: usize = 4 * K;

/// Where a candidate is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not asked yet.
    Fresh,
    /// Asked at this time, no answer yet.
    Asked(Instant),
    /// Answered, with the token it gave (for `get_peers`).
    Answered(Option<Vec<u8>>),
    /// Did not answer in time, or answered nonsense.
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    node: NodeInfo,
    state: State,
    /// Answers between the seeds and this node: 0 for a seed, one more than the node that
    /// named it.
    hop: u32,
}

/// A lookup of the nodes closest to `target`.
#[derive(Clone, Debug)]
pub struct Lookup {
    target: NodeId,
    candidates: BTreeMap<Distance, Candidate>,
    /// Queries sent, for the figures.
    queries: u32,
}

impl Lookup {
    /// A lookup of `target`, starting from `seeds` (the routing table's closest, or the
    /// bootstrap nodes).
    pub fn new(target: NodeId, seeds: impl IntoIterator<Item = NodeInfo>) -> Self {
        let mut l = Lookup {
            target,
            candidates: BTreeMap::new(),
            queries: 0,
        };
        for n in seeds {
            l.add_at(n, 0);
        }
        l
    }

    /// The target.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Queries sent so far.
    pub fn queries(&self) -> u32 {
        self.queries
    }

    /// Adds a starting node (a router's answer, a saved table), if it is among the
    /// closest kept.
    pub fn add(&mut self, node: NodeInfo) {
        self.add_at(node, 0);
    }

    fn add_at(&mut self, node: NodeInfo, hop: u32) {
        let d = node.id.distance(&self.target);
        if self.candidates.contains_key(&d) {
            return;
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            match self.candidates.last_key_value() {
                Some((far, _)) if *far > d => {
                    let far = *far;
                    self.candidates.remove(&far);
                }
                _ => return,
            }
        }
        self.candidates.insert(
            d,
            Candidate {
                node,
                state: State::Fresh,
                hop,
            },
        );
    }

    /// Nodes to query now, marked asked: the closest fresh ones, while fewer than
    /// [`ALPHA`] queries are in flight, not counting those asked [`SLOW_AFTER`] ago.
    pub fn next(&mut self, now: Instant) -> Vec<NodeInfo> {
        let in_flight = self
            .candidates
            .values()
            .filter(|c| matches!(c.state, State::Asked(t) if now.saturating_duration_since(t) < SLOW_AFTER))
            .count();
        let mut out = Vec::new();
        for c in self.candidates.values_mut() {
            if in_flight + out.len() >= ALPHA {
                break;
            }
            if c.state == State::Fresh {
                c.state = State::Asked(now);
                out.push(c.node);
            }
        }
        self.queries += out.len() as u32;
        out
    }

    fn find(&mut self, node: &NodeInfo) -> Option<&mut Candidate> {
        let d = node.id.distance(&self.target);
        self.candidates
            .get_mut(&d)
            .filter(|c| c.node.addr == node.addr)
    }

    /// `from` answered, naming `nodes` and giving `token`.
    pub fn answered(&mut self, from: &NodeInfo, nodes: &[NodeInfo], token: Option<Vec<u8>>) {
        let mut hop = 1;
        if let Some(c) = self.find(from) {
            c.state = State::Answered(token);
            hop = c.hop + 1;
        }
        for n in nodes {
            self.add_at(*n, hop);
        }
    }

    /// The most answers between a seed and one of the closest that answered: how many
    /// steps the lookup took towards its target.
    pub fn hops(&self) -> u32 {
        self.candidates
            .values()
            .filter(|c| matches!(c.state, State::Answered(_)))
            .take(K)
            .map(|c| c.hop)
            .max()
            .unwrap_or(0)
    }

    /// `node` did not answer (in time), or answered nonsense.
    pub fn failed(&mut self, node: &NodeInfo) {
        if let Some(c) = self.find(node) {
            c.state = State::Failed;
        }
    }

    /// Whether the lookup is over: none of the [`K`] closest candidates that have not
    /// failed is still fresh or asked.
    pub fn is_done(&self) -> bool {
        self.candidates
            .values()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .all(|c| matches!(c.state, State::Answered(_)))
    }

    /// The closest nodes that answered, with their tokens, closest first: where to announce.
    pub fn closest_answered(&self) -> Vec<(NodeInfo, Option<Vec<u8>>)> {
        self.candidates
            .values()
            .filter_map(|c| match &c.state {
                State::Answered(t) => Some((c.node, t.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// Whether `addr` is a candidate asked and not yet answered (to match an answer).
    pub fn is_waiting_for(&self, addr: SocketAddr) -> bool {
        self.candidates
            .values()
            .any(|c| c.node.addr == addr && matches!(c.state, State::Asked(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn node(id: NodeId, n: u16) -> NodeInfo {
        NodeInfo {
            id,
            addr: SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 6881)),
        }
    }

    #[test]
    fn alpha_at_a_time_closest_first_until_the_k_closest_answered() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(4);
        let target = NodeId::random(&mut rng);
        let seeds: Vec<NodeInfo> = (0..20).map(|i| node(NodeId::random(&mut rng), i)).collect();
        let mut l = Lookup::new(target, seeds.clone());
        let first = l.next(now);
        assert_eq!(first.len(), ALPHA);
        assert!(l.next(now).is_empty(), "α in flight");
        let mut sorted = seeds.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        assert_eq!(first, sorted[..ALPHA]);
        // Answers name nothing closer; a failure lets the next in.
        l.failed(&first[0]);
        l.answered(&first[1], &[], Some(b"t".to_vec()));
        assert_eq!(l.next(now).len(), 2);
        let mut rounds = 0;
        while !l.is_done() {
            let in_flight: Vec<NodeInfo> = l
                .candidates
                .values()
                .filter(|c| matches!(c.state, State::Asked(_)))
                .map(|c| c.node)
                .collect();
            for n in &in_flight {
                l.answered(n, &[], None);
            }
            l.next(now);
            rounds += 1;
            assert!(rounds < 20);
        }
        let best = l.closest_answered();
        assert_eq!(best.len(), K);
        assert!(
            !best.iter().any(|(n, _)| *n == first[0]),
            "the failed one is not among them"
        );
        assert_eq!(best[0].0, first[1]);
        assert_eq!(best[0].1.as_deref(), Some(&b"t"[..]));
    }

    #[test]
    fn a_slow_query_gives_up_its_slot_but_its_answer_still_counts() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(6);
        let target = NodeId::random(&mut rng);
        let seeds: Vec<NodeInfo> = (0..10).map(|i| node(NodeId::random(&mut rng), i)).collect();
        let mut l = Lookup::new(target, seeds);
        let first = l.next(now);
        assert_eq!(first.len(), ALPHA);
        assert!(l.next(now + SLOW_AFTER / 2).is_empty());
        let second = l.next(now + SLOW_AFTER);
        assert_eq!(second.len(), ALPHA, "the silent three no longer hold slots");
        l.answered(&first[0], &[], None);
        assert_eq!(
            l.closest_answered().first().map(|(n, _)| *n),
            Some(first[0])
        );
    }

    #[test]
    fn the_candidate_list_is_bounded_and_keeps_the_closest() {
        let mut rng = Rng::seed_from_u64(5);
        let target = NodeId::random(&mut rng);
        let mut l = Lookup::new(target, []);
        let all: Vec<NodeInfo> = (0..200)
            .map(|i| node(NodeId::random(&mut rng), i))
            .collect();
        for n in &all {
            l.add(*n);
        }
        assert_eq!(l.candidates.len(), MAX_CANDIDATES);
        let mut sorted = all;
        sorted.sort_by_key(|n| n.id.distance(&target));
        let kept: Vec<NodeInfo> = l.candidates.values().map(|c| c.node).collect();
        assert_eq!(kept, sorted[..MAX_CANDIDATES]);
    }
}
