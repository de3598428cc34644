//! What a test tracker remembers: per torrent, every peer that announced and has not stopped.
//!
//! The simulator's tracker keeps its swarms here, and so do the HTTP, UDP and HTTPS test
//! trackers of the workspace's tests (they add only the sockets): one set of rules for who
//! is handed to whom.
//!
//! ```
//! use bt_proto::sim::tracker::TrackerRegistry;
//! use bt_proto::tracker::{AnnounceEvent, AnnounceRequest};
//! use bt_proto::{InfoHash, PeerId};
//!
//! let announce = |id: u8, port: u16, left: u64| AnnounceRequest {
//!     info_hash: InfoHash([7; 20]),
//!     peer_id: PeerId([id; 20]),
//!     port,
//!     uploaded: 0,
//!     downloaded: 0,
//!     left,
//!     event: Some(AnnounceEvent::Started),
//!     numwant: None,
//!     key: None,
//!     tracker_id: None,
//!     ip: None,
//! };
//! let mut tracker = TrackerRegistry::default();
//! let seed = tracker.announce("10.0.0.1:1".parse().unwrap(), &announce(1, 6881, 0));
//! assert!(seed.peers.is_empty());
//! let leech = tracker.announce("10.0.0.2:1".parse().unwrap(), &announce(2, 6881, 100));
//! assert_eq!(leech.peers, vec!["10.0.0.1:6881".parse().unwrap()]);
//! assert_eq!((leech.complete, leech.incomplete), (1, 1));
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::tracker::{AnnounceEvent, AnnounceRequest};
use crate::{InfoHash, PeerId};

/// Peers handed out when an announce does not say how many it wants: what most trackers
/// give by default.
pub const DEFAULT_NUMWANT: usize = 50;

/// The swarms a tracker knows: per torrent, each peer's address (the announce's source IP
/// with the port it announced), peer id and bytes left.
#[derive(Debug, Clone, Default)]
pub struct TrackerRegistry {
    torrents: BTreeMap<InfoHash, BTreeMap<SocketAddr, Announcer>>,
    /// Most peers in any answer, whatever the announce asks for.
    max_peers: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Announcer {
    peer_id: PeerId,
    left: u64,
}

/// The answer to one announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmView {
    /// The other peers of the torrent, in address order, at most the number wanted.
    pub peers: Vec<SocketAddr>,
    /// Peers with nothing left to download (the announcer included).
    pub complete: u32,
    /// Peers still downloading (the announcer included).
    pub incomplete: u32,
}

impl TrackerRegistry {
    /// Gives at most `max` peers per answer (`None`: as many as asked for), as a tracker
    /// that knows little of its swarm would: the peers must then find each other.
    pub fn set_max_peers_per_reply(&mut self, max: Option<usize>) {
        self.max_peers = max;
    }

    /// Records `request`, which came from `from`, and returns the torrent's other peers.
    ///
    /// A peer is its address: the source IP (an IPv4-mapped IPv6 address taken as IPv4)
    /// with the announced port. An announce replaces the entry of the same address and any
    /// entry of the same peer id elsewhere (a client that restarted or moved); `stopped`
    /// removes both.
    pub fn announce(&mut self, from: SocketAddr, request: &AnnounceRequest) -> SwarmView {
        let swarm = self.torrents.entry(request.info_hash).or_default();
        let me = SocketAddr::new(from.ip().to_canonical(), request.port);
        swarm.retain(|addr, peer| *addr != me && peer.peer_id != request.peer_id);
        if request.event != Some(AnnounceEvent::Stopped) {
            swarm.insert(
                me,
                Announcer {
                    peer_id: request.peer_id,
                    left: request.left,
                },
            );
        }
        let wanted = request
            .numwant
            .map_or(DEFAULT_NUMWANT, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .min(self.max_peers.unwrap_or(usize::MAX));
        let count = |done: bool| swarm.values().filter(|p| (p.left == 0) == done).count() as u32;
        SwarmView {
            peers: swarm
                .keys()
                .filter(|addr| **addr != me)
                .take(wanted)
                .copied()
                .collect(),
            complete: count(true),
            incomplete: count(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: u8, port: u16, left: u64, event: Option<AnnounceEvent>) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([peer; 20]),
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: None,
            key: None,
            tracker_id: None,
            ip: None,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_peer_gets_the_others_at_the_port_it_announced() {
        let mut t = TrackerRegistry::default();
        t.announce(addr("10.0.0.2:40000"), &request(2, 7000, 5, None));
        t.announce(addr("10.0.0.1:40001"), &request(1, 6881, 0, None));
        let view = t.announce(addr("10.0.0.3:40002"), &request(3, 9000, 5, None));
        assert_eq!(
            view.peers,
            vec![addr("10.0.0.1:6881"), addr("10.0.0.2:7000")],
            "address order, the announcer left out"
        );
        assert_eq!((view.complete, view.incomplete), (1, 2));
        // Another torrent is another swarm.
        let mut other = request(4, 1, 5, None);
        other.info_hash = InfoHash([2; 20]);
        assert!(t.announce(addr("10.0.0.4:1"), &other).peers.is_empty());
    }

    #[test]
    fn stopped_leaves_and_a_new_peer_id_or_address_replaces_the_old_entry() {
        let mut t = TrackerRegistry::default();
        t.announce(addr("10.0.0.1:1"), &request(1, 6881, 0, None));
        // Restarted on the same address with a new id: one entry, not two.
        t.announce(addr("10.0.0.1:2"), &request(9, 6881, 0, None));
        // The same id from a new port: the old address is gone.
        t.announce(addr("10.0.0.2:1"), &request(2, 7000, 5, None));
        t.announce(addr("10.0.0.2:1"), &request(2, 7001, 5, None));
        let view = t.announce(addr("10.0.0.3:1"), &request(3, 1, 5, None));
        assert_eq!(
            view.peers,
            vec![addr("10.0.0.1:6881"), addr("10.0.0.2:7001")]
        );
        let stopped = Some(AnnounceEvent::Stopped);
        t.announce(addr("10.0.0.2:1"), &request(2, 7001, 5, stopped));
        let view = t.announce(addr("10.0.0.3:1"), &request(3, 1, 5, None));
        assert_eq!(view.peers, vec![addr("10.0.0.1:6881")]);
        assert_eq!((view.complete, view.incomplete), (1, 1));
    }

    #[test]
    fn numwant_bounds_the_list_and_mapped_ipv4_is_ipv4() {
        let mut t = TrackerRegistry::default();
        for i in 1..=60u8 {
            t.announce(addr(&format!("10.0.1.{i}:1")), &request(i, 1, 5, None));
        }
        let mut few = request(100, 1, 5, None);
        few.numwant = Some(3);
        assert_eq!(t.announce(addr("10.0.0.9:1"), &few).peers.len(), 3);
        let many = request(101, 1, 5, None);
        let view = t.announce(addr("[::ffff:10.0.0.8]:1"), &many);
        assert_eq!(view.peers.len(), DEFAULT_NUMWANT);
        let view = t.announce(addr("10.0.0.7:1"), &request(102, 1, 5, None));
        assert!(view.peers.contains(&addr("10.0.0.8:1")), "{:?}", view.peers);
        t.set_max_peers_per_reply(Some(1));
        let view = t.announce(addr("10.0.0.6:1"), &request(103, 1, 5, None));
        assert_eq!(view.peers.len(), 1, "the tracker's own cap");
    }
}
