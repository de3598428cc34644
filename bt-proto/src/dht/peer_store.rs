//! Peers other nodes announced to us (`announce_peer`), for our `get_peers` answers:
//! bounded per torrent and in total, each entry expiring unless announced again.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::InfoHash;
use crate::rng::Rng;

/// How long an announced peer is kept. Clients announce every 15 to 30 minutes
/// (libtorrent: 15); twice the shorter keeps a peer through one lost announce.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

/// Peers kept per torrent. A `get_peers` answer carries at most about a hundred in one
/// datagram; a few hundred let the answers vary.
pub const MAX_PEERS_PER_TORRENT: usize = 300;

/// Torrents kept. A node near many info-hashes stores a few thousand; a flood of
/// announces for made-up hashes stops here.
pub const MAX_TORRENTS: usize = 5_000;

/// Peers kept in all: about 1.5 MB at most, whatever announces come.
pub const MAX_PEERS: usize = 50_000;

/// The store.
#[derive(Clone, Debug, Default)]
pub struct PeerStore {
    torrents: HashMap<InfoHash, BTreeMap<SocketAddr, Instant>>,
    total: usize,
}

impl PeerStore {
    /// Records `peer` for `info_hash` until `now + PEER_TTL`. A full torrent drops its
    /// oldest peer; a new torrent or peer beyond the totals is refused (false).
    pub fn announce(&mut self, now: Instant, info_hash: InfoHash, peer: SocketAddr) -> bool {
        let expires = now + PEER_TTL;
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= MAX_TORRENTS {
            return false;
        }
        let peers = self.torrents.entry(info_hash).or_default();
        if let Some(e) = peers.get_mut(&peer) {
            *e = expires;
            return true;
        }
        if peers.len() >= MAX_PEERS_PER_TORRENT {
            if let Some(oldest) = peers.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a) {
                peers.remove(&oldest);
                self.total -= 1;
            }
        } else if self.total >= MAX_PEERS {
            if peers.is_empty() {
                self.torrents.remove(&info_hash);
            }
            return false;
        }
        peers.insert(peer, expires);
        self.total += 1;
        true
    }

    /// Up to `max` live peers of `info_hash` of the families `keep` accepts, in random
    /// order, so that different askers get different peers.
    pub fn get(
        &self,
        now: Instant,
        info_hash: &InfoHash,
        max: usize,
        keep: impl Fn(&SocketAddr) -> bool,
        rng: &mut Rng,
    ) -> Vec<SocketAddr> {
        let Some(peers) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddr> = peers
            .iter()
            .filter(|(a, at)| **at > now && keep(a))
            .map(|(a, _)| *a)
            .collect();
        rng.shuffle(&mut live);
        live.truncate(max);
        live
    }

    /// Forgets the peers whose time is up.
    pub fn expire(&mut self, now: Instant) {
        let mut total = 0;
        self.torrents.retain(|_, peers| {
            peers.retain(|_, at| *at > now);
            total += peers.len();
            !peers.is_empty()
        });
        self.total = total;
    }

    /// Peers kept.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no peer is kept.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u32) -> SocketAddr {
        SocketAddr::from((n.to_be_bytes(), 6881))
    }

    #[test]
    fn peers_are_bounded_per_torrent_and_expire() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(2);
        let mut s = PeerStore::default();
        let h = InfoHash([1; 20]);
        for i in 0..(MAX_PEERS_PER_TORRENT as u32 + 10) {
            assert!(s.announce(now + Duration::from_secs(u64::from(i)), h, peer(i)));
        }
        assert_eq!(s.len(), MAX_PEERS_PER_TORRENT);
        let got = s.get(now, &h, 1000, |_| true, &mut rng);
        assert_eq!(got.len(), MAX_PEERS_PER_TORRENT);
        assert!(!got.contains(&peer(0)), "the oldest went first");
        assert_eq!(s.get(now, &h, 10, |_| true, &mut rng).len(), 10);
        assert!(s.get(now, &h, 10, |a| a.is_ipv6(), &mut rng).is_empty());
        s.expire(now + PEER_TTL + Duration::from_secs(15));
        assert_eq!(s.len(), MAX_PEERS_PER_TORRENT - 6);
        s.expire(now + PEER_TTL + Duration::from_secs(10_000));
        assert!(s.is_empty());
    }

    #[test]
    fn totals_refuse_a_flood() {
        let now = Instant::now();
        let mut s = PeerStore::default();
        let mut accepted = 0;
        for i in 0..(MAX_TORRENTS as u32 + 100) {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            for p in 0..12 {
                if s.announce(now, InfoHash(h), peer(i * 100 + p)) {
                    accepted += 1;
                }
            }
        }
        assert!(s.len() <= MAX_PEERS);
        assert_eq!(accepted, s.len());
        assert!(s.torrents.len() <= MAX_TORRENTS);
    }
}
