//! The DHT (BEP 5) in the session: one [`crate::dht::node::Node`] on the session's UDP
//! port, searches for the peers of every torrent that is not private, and the PORT messages
//! that tell peers where our node is and teach it theirs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timers::{Timer, TorrentTimer};
use super::{Config, Output, Session, TorrentId};
use crate::ConnId;
use crate::dht::NodeId;
use crate::dht::krpc::NodeInfo;
use crate::dht::node::{DhtEvent, LookupId, Node, NodeConfig};
use crate::dht::saved::SavedTable;
use crate::rng::Rng;
use crate::wire::Message;

/// How often a torrent searches the DHT for peers again, as BEP 5 clients do (libtorrent:
/// every 15 minutes); an announce lives about twice that in other nodes' stores.
pub const DHT_SEARCH_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// How soon a torrent searches again when its search ended with fewer than k nodes
/// answering: the routing table was thin (the node had just started, or lost its
/// network), and waiting [`DHT_SEARCH_INTERVAL`] would leave a magnet link without peers.
pub const DHT_SEARCH_RETRY: Duration = Duration::from_secs(30);

/// How soon a torrent that wants pieces and has no peer searches again, however long until
/// its next regular search: new peers announce at any time, and one lookup (some 30
/// datagrams) every two minutes per starved torrent costs the network little. Trackers
/// get the same early re-announce.
pub const DHT_STARVED_SEARCH: Duration = Duration::from_secs(2 * 60);

/// Peers taken from one DHT answer, as from one tracker reply: enough to fill the
/// connection slots, and a node listing thousands only makes us dial them.
pub const MAX_DHT_PEERS_PER_ANSWER: usize = 100;

/// The session's node and what it runs for torrents.
#[derive(Debug, Default)]
pub(crate) struct SessionDht {
    /// The node's id, options and seed until it starts: it needs the time, which the session
    /// gets with its first input.
    unstarted: Option<(NodeId, NodeConfig, u64)>,
    node: Option<Node>,
    lookups: BTreeMap<LookupId, TorrentId>,
    /// Torrents whose last search ended with fewer than k nodes answering, with the size
    /// of the routing table then: searched again as soon as the table has doubled (a
    /// bootstrap answered, a node that queried us answered our ping), not only at
    /// [`DHT_SEARCH_RETRY`]. Doubling bounds it to a few searches while a table fills.
    thin: BTreeMap<TorrentId, usize>,
    /// The table's size when `thin` was last looked at: only a change is worth a look.
    seen_table: usize,
    /// When each torrent last searched, for [`DHT_STARVED_SEARCH`].
    searched: BTreeMap<TorrentId, Instant>,
}

impl SessionDht {
    /// A node to start if the configuration asks for one. The random draws happen only
    /// then, so a session without a DHT makes the same choices as before it had one.
    pub fn new(config: &Config, rng: &mut Rng) -> Self {
        let unstarted = config.dht.then(|| {
            // Drawn even when a saved id is given, so the draws after it stay the same.
            let drawn = NodeId::random(rng);
            let id = config.dht_id.unwrap_or(drawn);
            let cfg = NodeConfig {
                read_only: config.dht_read_only,
            };
            (id, cfg, rng.next_u64())
        });
        SessionDht {
            unstarted,
            node: None,
            lookups: BTreeMap::new(),
            thin: BTreeMap::new(),
            seen_table: 0,
            searched: BTreeMap::new(),
        }
    }

    /// The node, started at `now` if it was not.
    fn node_at(&mut self, now: Instant) -> Option<&mut Node> {
        if let Some((id, cfg, seed)) = self.unstarted.take() {
            self.node = Some(Node::new(id, cfg, seed, now));
        }
        self.node.as_mut()
    }

    fn enabled(&self) -> bool {
        self.unstarted.is_some() || self.node.is_some()
    }
}

impl Session {
    /// Whether torrent `id` uses the DHT: the session runs one and the torrent is not
    /// private (BEP 27). A torrent still fetching its metadata is not known private.
    fn uses_dht(&self, id: TorrentId) -> bool {
        self.dht.enabled()
            && match self.torrents.get(&id) {
                Some(t) => !t.meta.is_private(),
                None => self.fetching.contains_key(&id),
            }
    }

    /// Searches the DHT for torrent `id`'s peers and announces us, unless it is stopped;
    /// the next search is in [`DHT_SEARCH_INTERVAL`].
    pub(super) fn dht_search(&mut self, now: Instant, id: TorrentId) {
        let timer = Timer::Torrent(id, TorrentTimer::Dht);
        let Some(info_hash) = self.info_hash_of(id) else {
            return;
        };
        let stopped = super::fetching::swarm_of(&mut self.torrents, &mut self.fetching, id)
            .is_none_or(|s| !s.state.in_swarm());
        if stopped || !self.uses_dht(id) {
            self.timers.stop(timer);
            self.dht.searched.remove(&id);
            return;
        }
        self.dht.searched.insert(id, now);
        let port = self.config.listen_port;
        let announce = (port != 0).then_some(Some(port));
        if let Some(node) = self.dht.node_at(now)
            && let Some(lookup) = node.get_peers(now, info_hash, announce)
        {
            self.dht.lookups.insert(lookup, id);
        }
        self.timers.set(timer, now + DHT_SEARCH_INTERVAL);
        self.after_dht(now);
    }

    /// Torrent `id` is removed: nothing about it is kept.
    pub(super) fn dht_forget(&mut self, id: TorrentId) {
        self.dht.searched.remove(&id);
        self.dht.thin.remove(&id);
        self.dht.lookups.retain(|_, t| *t != id);
    }

    /// Torrent `id` wants pieces and has no peer: its next search comes
    /// [`DHT_STARVED_SEARCH`] after its last, if that is sooner than planned.
    pub(super) fn dht_if_starved(&mut self, now: Instant, id: TorrentId) {
        let Some(last) = self.dht.searched.get(&id) else {
            return;
        };
        let earliest = (*last + DHT_STARVED_SEARCH).max(now);
        let timer = Timer::Torrent(id, TorrentTimer::Dht);
        if self.timers.deadline(timer).is_some_and(|at| at > earliest) {
            self.timers.set(timer, earliest);
        }
    }

    /// A datagram on the session's UDP port: DHT messages are bencoded dictionaries.
    pub(super) fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if data.first() != Some(&b'd') {
            self.on_utp_datagram(now, from, data);
            return;
        }
        if let Some(node) = self.dht.node_at(now) {
            node.handle(now, super::connection::canonical(from), data);
            self.after_dht(now);
        }
    }

    pub(super) fn on_dht_timer(&mut self, now: Instant) {
        if let Some(node) = self.dht.node.as_mut() {
            node.handle_timeout(now);
            self.after_dht(now);
        }
    }

    /// Carries out what the node asked for: datagrams out, peers found for torrents, and
    /// its next deadline.
    fn after_dht(&mut self, now: Instant) {
        let Some(node) = self.dht.node.as_mut() else {
            return;
        };
        while let Some((to, data)) = node.poll_transmit() {
            self.outputs.push_back(Output::SendDatagram {
                to,
                data: Bytes::from(data),
            });
        }
        let mut found = Vec::new();
        let mut retry = Vec::new();
        let mut searched = Vec::new();
        let table = node.table().len();
        while let Some(e) = node.poll_event() {
            match e {
                DhtEvent::Peers { lookup, peers, .. } => {
                    if let Some(id) = self.dht.lookups.get(&lookup) {
                        found.push((*id, peers));
                    }
                }
                // The new id is in the table the adapter saves (`dht_saved`).
                DhtEvent::IdChanged { .. } => {}
                DhtEvent::PeerAnnounced { info_hash, peer } => {
                    // A peer of a torrent we have told our node where it is: dial it, as a
                    // peer an LSD announce names (it may not find us through its lookup
                    // if it cannot be dialled itself).
                    if let Some(id) = self.by_info_hash.get(&info_hash) {
                        found.push((*id, vec![peer]));
                    }
                }
                DhtEvent::LookupDone {
                    lookup, closest, ..
                } => match self.dht.lookups.remove(&lookup) {
                    Some(id) if closest.len() < crate::dht::routing::K => {
                        self.dht.thin.insert(id, table);
                        retry.push((id, now + DHT_SEARCH_RETRY));
                    }
                    Some(id) => {
                        self.dht.thin.remove(&id);
                        searched.push(id);
                    }
                    None => {}
                },
            }
        }
        if table != self.dht.seen_table {
            self.dht.seen_table = table;
            for (id, then) in &mut self.dht.thin {
                if table >= (*then * 2).max(1) {
                    *then = table;
                    retry.push((*id, now));
                }
            }
        }
        self.timers.set(Timer::Dht, node.poll_timeout());
        for (id, at) in retry {
            let timer = Timer::Torrent(id, TorrentTimer::Dht);
            if self.timers.deadline(timer).is_some() {
                self.timers.set(timer, at);
            } else {
                // Stopped or removed: it searches again when it starts.
                self.dht.thin.remove(&id);
            }
        }
        for (id, peers) in found {
            if !self.uses_dht(id) {
                continue;
            }
            for peer in peers.into_iter().take(MAX_DHT_PEERS_PER_ANSWER) {
                self.learn_peer(now, id, peer);
            }
            self.connect_more(now, id);
        }
        // A search that found no peer to dial leaves the torrent starved: dialling (or
        // finding nothing to dial) brings its next search and announce forward.
        for id in searched {
            self.connect_more(now, id);
        }
    }

    /// Starts (or restarts) the DHT node from `routers` (addresses: the adapter resolves
    /// host names) and a saved table, if any.
    pub fn dht_bootstrap(&mut self, now: Instant, routers: &[SocketAddr], saved: &[NodeInfo]) {
        if let Some(node) = self.dht.node_at(now) {
            node.bootstrap(now, routers, saved);
            self.after_dht(now);
        }
    }

    /// The DHT routing table to save, if the session's node has started.
    pub fn dht_saved(&self) -> Option<SavedTable> {
        self.dht.node.as_ref().map(Node::saved)
    }

    /// The DHT node, for its table and counters.
    pub fn dht_node(&self) -> Option<&Node> {
        self.dht.node.as_ref()
    }

    /// Whether we set the DHT bit in our handshakes.
    pub(super) fn runs_dht(&self) -> bool {
        self.dht.enabled()
    }

    /// After a handshake where both sides set the DHT bit: our node's port (BEP 5).
    pub(super) fn send_dht_port(&mut self, now: Instant, conn: ConnId) {
        let port = self.config.listen_port;
        if port == 0 || !self.runs_dht() {
            return;
        }
        if let Some(p) = self.peers.get_mut(conn) {
            p.send(&Message::Port(port), now);
        }
    }

    /// A peer's PORT message: its DHT node is at its address and this port; a ping lets it
    /// into our table if it answers.
    pub(super) fn on_dht_port(&mut self, now: Instant, conn: ConnId, port: u16) {
        let Some(ip) = self.peers.get(conn).map(|p| p.addr.ip()) else {
            return;
        };
        if port == 0 {
            return;
        }
        if let Some(node) = self.dht.node_at(now) {
            node.ping_addr(now, SocketAddr::new(ip, port));
            self.after_dht(now);
        }
    }
}
