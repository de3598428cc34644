//! The routing table (BEP 5): buckets of at most [`K`] nodes that split around our own id,
//! node status (good, questionable, bad), replacement caches, and the buckets due for a
//! refresh.
//!
//! Bucket `i` holds the nodes sharing exactly `i` leading bits with our id; the last bucket
//! holds every node sharing more, and is the only one that splits, so the table knows many
//! nodes near us and a few far away. A node enters only once it answered one of our
//! queries: a query alone proves nothing about its address, which anyone can forge in UDP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::NodeId;
use super::krpc::NodeInfo;
use crate::rng::Rng;

/// Nodes per bucket (BEP 5's k).
pub const K: usize = 8;

/// How long a node stays good after it last answered us, or queried us after having
/// answered once (BEP 5).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);

/// Queries in a row a node may leave unanswered before it is bad. BEP 5 says "multiple";
/// one lost datagram is common, three in a row is a node gone.
pub const MAX_FAILURES: u32 = 3;

/// Nodes kept aside per full bucket to replace the ones that go bad.
pub const REPLACEMENTS_PER_BUCKET: usize = K;

/// How long a bucket may go without a change before it is refreshed (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

/// Most buckets: one per bit of the id.
const MAX_BUCKETS: usize = 160;

/// What BEP 5 calls a node's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Answered lately (or queried us lately, having answered before).
    Good,
    /// Quiet for [`GOOD_FOR`]: worth a ping before it is trusted again.
    Questionable,
    /// [`MAX_FAILURES`] queries in a row unanswered: replaced by the next node met.
    Bad,
}

/// One node of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its id and address.
    pub node: NodeInfo,
    /// Its id follows BEP 42 for its address.
    pub secure: bool,
    last_response: Option<Instant>,
    last_query: Option<Instant>,
    failures: u32,
}

impl Entry {
    fn new(node: NodeInfo, now: Instant) -> Self {
        Entry {
            node,
            secure: node.id.is_secure_for(node.addr.ip()),
            last_response: Some(now),
            last_query: None,
            failures: 0,
        }
    }

    /// Its status at `now`.
    pub fn status(&self, now: Instant) -> Status {
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < GOOD_FOR);
        if self.failures >= MAX_FAILURES {
            Status::Bad
        } else if recent(self.last_response)
            || (self.last_response.is_some() && recent(self.last_query))
        {
            Status::Good
        } else {
            Status::Questionable
        }
    }
}

/// How we heard from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// It answered a query of ours: it is at that address.
    Response,
    /// It queried us.
    Query,
}

/// What [`RoutingTable::heard`] did with a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// It is in the table now.
    Added,
    /// It was there; its times are updated.
    Updated,
    /// Its bucket is full of nodes that are not bad: it waits in the replacement cache.
    /// The bucket's questionable nodes are worth a ping (a failed one is replaced).
    Cached {
        /// The bucket's questionable nodes.
        ping: Vec<NodeInfo>,
    },
    /// Not taken: our own id, a query from a node not in the table, or a known id at
    /// another address (someone else claiming it).
    Ignored,
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: VecDeque<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::new(),
            replacements: VecDeque::new(),
            last_changed: now,
        }
    }
}

/// The routing table of one node.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table around `own`.
    pub fn new(own: NodeId, now: Instant) -> Self {
        RoutingTable {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    fn index(&self, id: &NodeId) -> usize {
        (self.own.shared_prefix(id) as usize).min(self.buckets.len().saturating_sub(1))
    }

    /// We heard from `node`: add or update it as the rules say.
    pub fn heard(&mut self, now: Instant, node: NodeInfo, how: Heard) -> Inserted {
        if node.id == self.own {
            return Inserted::Ignored;
        }
        let i = self.index(&node.id);
        let Some(bucket) = self.buckets.get_mut(i) else {
            return Inserted::Ignored;
        };
        if let Some(e) = bucket.nodes.iter_mut().find(|e| e.node.id == node.id) {
            if e.node.addr != node.addr {
                return Inserted::Ignored;
            }
            match how {
                Heard::Response => {
                    e.last_response = Some(now);
                    e.failures = 0;
                }
                Heard::Query => e.last_query = Some(now),
            }
            bucket.last_changed = now;
            return Inserted::Updated;
        }
        if how == Heard::Query {
            return Inserted::Ignored;
        }
        // A node that restarted with a new id keeps its address: the old entry goes.
        self.forget_addr(node.addr);
        self.insert(now, Entry::new(node, now))
    }

    fn insert(&mut self, now: Instant, entry: Entry) -> Inserted {
        loop {
            let i = self.index(&entry.node.id);
            let count = self.buckets.len();
            let last = i + 1 == count;
            let Some(bucket) = self.buckets.get_mut(i) else {
                return Inserted::Ignored;
            };
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.last_changed = now;
                return Inserted::Added;
            }
            if let Some(slot) = bucket
                .nodes
                .iter_mut()
                .find(|e| e.status(now) == Status::Bad)
            {
                *slot = entry;
                bucket.last_changed = now;
                return Inserted::Added;
            }
            // BEP 42: a conforming node takes the place of a quiet one that is not.
            if entry.secure
                && let Some(slot) = bucket
                    .nodes
                    .iter_mut()
                    .find(|e| !e.secure && e.status(now) == Status::Questionable)
            {
                *slot = entry;
                bucket.last_changed = now;
                return Inserted::Added;
            }
            if last && count < MAX_BUCKETS {
                self.split(now);
                continue;
            }
            let ping = bucket
                .nodes
                .iter()
                .filter(|e| e.status(now) == Status::Questionable)
                .map(|e| e.node)
                .collect();
            bucket.replacements.retain(|r| r.node.id != entry.node.id);
            if bucket.replacements.len() >= REPLACEMENTS_PER_BUCKET {
                bucket.replacements.pop_front();
            }
            bucket.replacements.push_back(entry);
            return Inserted::Cached { ping };
        }
    }

    /// Splits the last bucket: the nodes sharing more bits with us move to a new last one.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let own = self.own;
        let Some(last) = self.buckets.last_mut() else {
            return;
        };
        let (near, far): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut last.nodes)
            .into_iter()
            .partition(|e| own.shared_prefix(&e.node.id) as usize >= depth);
        let (near_r, far_r): (VecDeque<Entry>, VecDeque<Entry>) =
            std::mem::take(&mut last.replacements)
                .into_iter()
                .partition(|e| own.shared_prefix(&e.node.id) as usize >= depth);
        last.nodes = far;
        last.replacements = far_r;
        self.buckets.push(Bucket {
            nodes: near,
            replacements: near_r,
            last_changed: now,
        });
    }

    /// A query to `node` went unanswered. A node that turns bad gives its place to the
    /// newest node of its bucket's replacement cache.
    pub fn failed(&mut self, now: Instant, node: &NodeInfo) {
        let i = self.index(&node.id);
        let Some(bucket) = self.buckets.get_mut(i) else {
            return;
        };
        let Some(pos) = bucket
            .nodes
            .iter()
            .position(|e| e.node.id == node.id && e.node.addr == node.addr)
        else {
            bucket.replacements.retain(|r| r.node.id != node.id);
            return;
        };
        if let Some(e) = bucket.nodes.get_mut(pos) {
            e.failures += 1;
            if e.status(now) != Status::Bad {
                return;
            }
        }
        if let Some(r) = bucket.replacements.pop_back() {
            if let Some(slot) = bucket.nodes.get_mut(pos) {
                *slot = r;
            }
            bucket.last_changed = now;
        }
    }

    /// Whether `id` is in the table.
    pub fn knows(&self, id: &NodeId) -> bool {
        self.buckets
            .get(self.index(id))
            .is_some_and(|b| b.nodes.iter().any(|e| e.node.id == *id))
    }

    /// Whether a node `id` that answered would be taken at once: its bucket has room, a
    /// bad node, or can split.
    pub fn has_room_for(&self, now: Instant, id: &NodeId) -> bool {
        let i = self.index(id);
        let Some(b) = self.buckets.get(i) else {
            return false;
        };
        b.nodes.len() < K
            || b.nodes.iter().any(|e| e.status(now) == Status::Bad)
            || (i + 1 == self.buckets.len() && self.buckets.len() < MAX_BUCKETS)
    }

    /// Removes whatever entry has this address.
    fn forget_addr(&mut self, addr: SocketAddr) {
        for b in &mut self.buckets {
            b.nodes.retain(|e| e.node.addr != addr);
            b.replacements.retain(|e| e.node.addr != addr);
        }
    }

    /// Removes a node (it answered garbage or lied).
    pub fn remove(&mut self, node: &NodeInfo) {
        for b in &mut self.buckets {
            b.nodes.retain(|e| e.node != *node);
            b.replacements.retain(|e| e.node != *node);
        }
    }

    /// Up to `count` nodes closest to `target` that are not bad, closest first.
    pub fn closest(&self, now: Instant, target: &NodeId, count: usize) -> Vec<NodeInfo> {
        self.closest_where(now, target, count, |_| true)
    }

    /// Up to `count` nodes closest to `target` that are not bad and that `keep` takes,
    /// closest first.
    pub fn closest_where(
        &self,
        now: Instant,
        target: &NodeId,
        count: usize,
        keep: impl Fn(&NodeInfo) -> bool,
    ) -> Vec<NodeInfo> {
        let mut all: Vec<&Entry> = self
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|e| e.status(now) != Status::Bad && keep(&e.node))
            .collect();
        all.sort_by_key(|e| e.node.id.distance(target));
        all.into_iter().take(count).map(|e| e.node).collect()
    }

    /// Targets to look up for the buckets unchanged for [`REFRESH_AFTER`]: a random id in
    /// each one's range. Those buckets count as changed now.
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut Rng) -> Vec<NodeId> {
        self.targets(now, rng, false)
    }

    /// A target in every bucket's range but the last (which holds our own id): what a node
    /// that just joined looks up, so that it knows nodes in every part of the id space and
    /// not only near itself (Kademlia's join). The buckets count as changed now.
    pub fn join_targets(&mut self, now: Instant, rng: &mut Rng) -> Vec<NodeId> {
        self.targets(now, rng, true)
    }

    fn targets(&mut self, now: Instant, rng: &mut Rng, joining: bool) -> Vec<NodeId> {
        let last = self.buckets.len().saturating_sub(1);
        let own = self.own;
        let mut out = Vec::new();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            let stale = now.saturating_duration_since(b.last_changed) >= REFRESH_AFTER;
            if joining && i == last || !joining && !stale {
                continue;
            }
            b.last_changed = now;
            let bits = i as u32;
            let target = if i == last {
                own.random_with_prefix(bits, rng)
            } else {
                // Exactly `i` shared bits: ours up to bit i, then the other value of it.
                let mut flipped = own;
                if let Some(byte) = flipped.0.get_mut(i / 8) {
                    *byte ^= 0x80 >> (i % 8);
                }
                flipped.random_with_prefix(bits + 1, rng)
            };
            out.push(target);
        }
        out
    }

    /// Every node in the table (not the replacement caches), for saving.
    pub fn nodes(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| &b.nodes)
    }

    /// Nodes in the table.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets (1 for an empty table, at most 160).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: NodeId, port: u16) -> NodeInfo {
        NodeInfo {
            id,
            addr: SocketAddr::from(([10, 1, (port >> 8) as u8, port as u8], port)),
        }
    }

    /// An id sharing exactly `bits` leading bits with `own`.
    fn at(own: NodeId, bits: u32, rng: &mut Rng) -> NodeId {
        let mut flipped = own;
        flipped.0[(bits / 8) as usize] ^= 0x80 >> (bits % 8);
        flipped.random_with_prefix(bits + 1, rng)
    }

    #[test]
    fn buckets_split_around_our_id_and_far_ones_stay_small() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(5);
        let own = NodeId::random(&mut rng);
        let mut t = RoutingTable::new(own, now);
        let mut port = 1;
        // Many nodes far away (first bit differs): one bucket of K, the rest cached.
        for _ in 0..20 {
            t.heard(now, info(at(own, 0, &mut rng), port), Heard::Response);
            port += 1;
        }
        // Nodes ever closer: each depth gets its own bucket.
        for bits in 1..12 {
            for _ in 0..3 {
                let r = t.heard(now, info(at(own, bits, &mut rng), port), Heard::Response);
                assert_eq!(r, Inserted::Added);
                port += 1;
            }
        }
        let far = t.closest(now, &at(own, 0, &mut rng), 100);
        assert_eq!(far.len(), K + 11 * 3);
        assert!(t.bucket_count() >= 2);
        assert_eq!(t.len(), K + 33);
        // The closest to our own id are the deepest.
        let near = t.closest(now, &own, 3);
        assert!(near.iter().all(|n| own.shared_prefix(&n.id) == 11));
    }

    #[test]
    fn queries_alone_do_not_add_and_ids_cannot_be_claimed_from_elsewhere() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(6);
        let own = NodeId::random(&mut rng);
        let mut t = RoutingTable::new(own, now);
        let a = info(NodeId::random(&mut rng), 1);
        assert_eq!(t.heard(now, a, Heard::Query), Inserted::Ignored);
        assert_eq!(t.heard(now, a, Heard::Response), Inserted::Added);
        assert_eq!(t.heard(now, a, Heard::Query), Inserted::Updated);
        let thief = NodeInfo {
            addr: info(own, 2).addr,
            ..a
        };
        assert_eq!(t.heard(now, thief, Heard::Response), Inserted::Ignored);
        assert_eq!(
            t.heard(now, info(own, 3), Heard::Response),
            Inserted::Ignored
        );
        // The same address with a new id: the node restarted; the old entry goes.
        let renamed = NodeInfo {
            id: NodeId::random(&mut rng),
            ..a
        };
        assert_eq!(t.heard(now, renamed, Heard::Response), Inserted::Added);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn quiet_nodes_turn_questionable_failed_ones_bad_and_are_replaced() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(7);
        let own = NodeId::random(&mut rng);
        let mut t = RoutingTable::new(own, now);
        // Fill the far bucket, then split it away so it can no longer split.
        let far: Vec<NodeInfo> = (0..K as u16)
            .map(|p| info(at(own, 0, &mut rng), p + 1))
            .collect();
        for n in &far {
            t.heard(now, *n, Heard::Response);
        }
        t.heard(now, info(at(own, 5, &mut rng), 100), Heard::Response);
        let later = now + GOOD_FOR;
        let newcomer = info(at(own, 0, &mut rng), 200);
        let Inserted::Cached { ping } = t.heard(later, newcomer, Heard::Response) else {
            panic!("full bucket");
        };
        assert_eq!(ping.len(), K, "all quiet for 15 minutes");
        for _ in 0..MAX_FAILURES {
            t.failed(later, &far[0]);
        }
        let nodes: Vec<NodeInfo> = t.nodes().map(|e| e.node).collect();
        assert!(!nodes.contains(&far[0]) && nodes.contains(&newcomer));
        assert_eq!(
            t.nodes().find(|e| e.node == far[1]).unwrap().status(later),
            Status::Questionable
        );
    }

    #[test]
    fn stale_buckets_are_refreshed_with_targets_in_their_range() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(8);
        let own = NodeId::random(&mut rng);
        let mut t = RoutingTable::new(own, now);
        for p in 0..(K as u16 + 1) {
            t.heard(
                now,
                info(at(own, (p % 3) as u32, &mut rng), p + 1),
                Heard::Response,
            );
        }
        assert!(t.refresh_targets(now, &mut rng).is_empty());
        let later = now + REFRESH_AFTER;
        let targets = t.refresh_targets(later, &mut rng);
        assert_eq!(targets.len(), t.bucket_count());
        let last = t.bucket_count() - 1;
        for (i, target) in targets.iter().enumerate() {
            let shared = own.shared_prefix(target) as usize;
            if i == last {
                assert!(shared >= i);
            } else {
                assert_eq!(shared, i);
            }
        }
        assert!(
            t.refresh_targets(later, &mut rng).is_empty(),
            "refreshed now"
        );
    }
}
