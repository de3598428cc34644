//! Rate limits: token buckets on what the session uploads and requests, for the session as a
//! whole and for each torrent ([`RateLimits`]).
//!
//! Uploads are limited where a block starts: a peer's request is read from disk only when
//! the buckets allow it, so what is not allowed yet waits as a request, not as bytes in a
//! buffer. Downloads are limited where they start too: a request goes out only when the
//! buckets allow its block, so the peers send no faster than the limit (the blocks already
//! in flight when a limit is set arrive as they were asked).
//!
//! A transfer may start when both its torrent's bucket and the session's hold a token. When
//! one does not, the peer waits in a queue of its direction, and the queue is served in
//! turn, one block per peer per turn, whenever a bucket refills: every connection under a
//! limit gets an equal share of it, as in libtorrent. A peer that no limit covers (its
//! torrent and the session unlimited, or a local peer when [`Config::rate_limit_exempt_local`]
//! is on) never waits, so a limited torrent never holds back the unlimited ones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::timers::Timer;
use super::{Config, RateLimits, Session, TorrentId};
use crate::ConnId;
use crate::token_bucket::TokenBucket;

/// Bytes of a PIECE message's header (length, id, index, begin): what
/// [`Config::rate_limit_overhead`] adds to each block uploaded or downloaded.
pub const PIECE_HEADER_LEN: u64 = 13;

/// Bytes of a REQUEST message: what [`Config::rate_limit_overhead`] adds to each block
/// downloaded, besides the PIECE header.
pub const REQUEST_LEN: u64 = 17;

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Way {
    Up,
    Down,
}

/// An upload and a download bucket.
#[derive(Debug, Clone)]
struct Buckets {
    up: TokenBucket,
    down: TokenBucket,
}

impl Buckets {
    fn new(limits: RateLimits) -> Self {
        Buckets {
            up: TokenBucket::new(limits.upload),
            down: TokenBucket::new(limits.download),
        }
    }

    fn way(&mut self, way: Way) -> &mut TokenBucket {
        match way {
            Way::Up => &mut self.up,
            Way::Down => &mut self.down,
        }
    }

    fn limits(&self) -> RateLimits {
        RateLimits {
            upload: self.up.rate(),
            download: self.down.rate(),
        }
    }

    fn set(&mut self, now: Instant, limits: RateLimits) {
        self.up.set_rate(now, limits.upload);
        self.down.set_rate(now, limits.download);
    }
}

/// Peers waiting for tokens in one direction, in turn order; each once.
#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<ConnId>,
    members: BTreeSet<ConnId>,
}

impl Queue {
    fn push(&mut self, conn: ConnId) {
        if self.members.insert(conn) {
            self.order.push_back(conn);
        }
    }
}

/// The session's buckets, each torrent's, and who waits for them.
#[derive(Debug)]
pub(super) struct Limits {
    session: Buckets,
    torrents: BTreeMap<TorrentId, Buckets>,
    up: Queue,
    down: Queue,
    overhead: bool,
    exempt_local: bool,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Limits {
            session: Buckets::new(config.rate_limits),
            torrents: BTreeMap::new(),
            up: Queue::default(),
            down: Queue::default(),
            overhead: config.rate_limit_overhead,
            exempt_local: config.rate_limit_exempt_local,
        }
    }

    fn queue(&mut self, way: Way) -> &mut Queue {
        match way {
            Way::Up => &mut self.up,
            Way::Down => &mut self.down,
        }
    }

    /// Whether a limit covers a transfer of torrent `id` with a peer at `addr`.
    pub fn covers(&self, id: TorrentId, addr: SocketAddr, way: Way) -> bool {
        if self.exempt_local && is_local(addr.ip()) {
            return false;
        }
        let limited = |b: &Buckets| match way {
            Way::Up => !b.up.is_unlimited(),
            Way::Down => !b.down.is_unlimited(),
        };
        limited(&self.session) || self.torrents.get(&id).is_some_and(limited)
    }

    /// Bytes that may start now for torrent `id` without debt: the less of its bucket's and
    /// the session's.
    pub fn available(&mut self, now: Instant, id: TorrentId, way: Way) -> u64 {
        let session = self.session.way(way).available(now);
        let own = self
            .torrents
            .get_mut(&id)
            .map_or(u64::MAX, |b| b.way(way).available(now));
        session.min(own)
    }

    /// Blocks a peer of torrent `id` may request now: one on its `turn`, else as many as
    /// the buckets hold tokens for; 0 if it must wait (outside its turn a peer queues behind
    /// those already waiting).
    pub fn blocks_allowed(&mut self, now: Instant, id: TorrentId, turn: bool) -> usize {
        if !turn && self.someone_waits(Way::Down) {
            return 0;
        }
        match self.available(now, id, Way::Down) {
            0 => 0,
            _ if turn => 1,
            n => usize::try_from(n.div_ceil(u64::from(crate::picker::BLOCK_LEN)))
                .unwrap_or(usize::MAX),
        }
    }

    /// Whether anyone waits to go `way`.
    pub fn someone_waits(&self, way: Way) -> bool {
        match way {
            Way::Up => !self.up.order.is_empty(),
            Way::Down => !self.down.order.is_empty(),
        }
    }

    /// A block of `len` bytes started for torrent `id`.
    pub fn take(&mut self, now: Instant, id: TorrentId, way: Way, len: u32) {
        let cost = u64::from(len)
            + match (self.overhead, way) {
                (false, _) => 0,
                (true, Way::Up) => PIECE_HEADER_LEN,
                (true, Way::Down) => PIECE_HEADER_LEN + REQUEST_LEN,
            };
        self.session.way(way).take(now, cost);
        if let Some(b) = self.torrents.get_mut(&id) {
            b.way(way).take(now, cost);
        }
    }

    /// When the first of the buckets `id`'s transfers need next has a token.
    fn ready_at(&self, now: Instant, id: TorrentId, way: Way) -> Instant {
        let pick = |b: &Buckets| match way {
            Way::Up => b.up.ready_at(now),
            Way::Down => b.down.ready_at(now),
        };
        let own = self.torrents.get(&id).map_or(now, pick);
        pick(&self.session).max(own)
    }
}

/// Loopback, private, link-local and unique-local addresses: the peers
/// [`Config::rate_limit_exempt_local`] exempts.
pub(super) fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments().first().copied().unwrap_or(0);
            v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

impl Session {
    /// Sets the session's limits from `now` on; 0 in either direction lifts that limit.
    pub fn set_rate_limits(&mut self, now: Instant, limits: RateLimits) {
        self.limits.session.set(now, limits);
        self.timers.set(Timer::RateLimit, now);
    }

    /// The session's limits.
    pub fn rate_limits(&self) -> RateLimits {
        self.limits.session.limits()
    }

    /// Sets a torrent's own limits from `now` on (both its own and the session's apply);
    /// false if there is no such torrent.
    pub fn set_torrent_rate_limits(
        &mut self,
        now: Instant,
        id: TorrentId,
        limits: RateLimits,
    ) -> bool {
        if !self.torrents.contains_key(&id) && !self.fetching.contains_key(&id) {
            return false;
        }
        self.set_torrent_limits(now, id, limits);
        true
    }

    pub(super) fn set_torrent_limits(&mut self, now: Instant, id: TorrentId, limits: RateLimits) {
        self.limits
            .torrents
            .entry(id)
            .or_insert_with(|| Buckets::new(limits))
            .set(now, limits);
        self.timers.set(Timer::RateLimit, now);
    }

    /// A torrent's own limits, if it exists.
    pub fn torrent_rate_limits(&self, id: TorrentId) -> Option<RateLimits> {
        if !self.torrents.contains_key(&id) && !self.fetching.contains_key(&id) {
            return None;
        }
        Some(
            self.limits
                .torrents
                .get(&id)
                .map_or(RateLimits::NONE, Buckets::limits),
        )
    }

    /// Forgets a removed torrent's buckets.
    pub(super) fn forget_rate_limits(&mut self, id: TorrentId) {
        self.limits.torrents.remove(&id);
    }

    /// `conn` of torrent `id` has a transfer the limits hold back: it waits for its turn.
    pub(super) fn wait_for_tokens(&mut self, now: Instant, id: TorrentId, conn: ConnId, way: Way) {
        self.limits.queue(way).push(conn);
        let at = self.limits.ready_at(now, id, way);
        if self
            .timers
            .deadline(Timer::RateLimit)
            .is_none_or(|t| t > at)
        {
            self.timers.set(Timer::RateLimit, at);
        }
    }

    /// Buckets refilled: the waiting peers take turns, one block each per turn, while the
    /// buckets allow; those still held back wait for the next refill.
    pub(super) fn on_rate_timer(&mut self, now: Instant) {
        for way in [Way::Up, Way::Down] {
            self.serve_turns(now, way);
        }
        let mut next: Option<Instant> = None;
        for way in [Way::Up, Way::Down] {
            for conn in self.limits.queue(way).order.clone() {
                let Some(id) = self.peers.get(conn).and_then(|p| p.torrent) else {
                    continue;
                };
                let at = self.limits.ready_at(now, id, way);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if let Some(at) = next {
            self.timers.set(Timer::RateLimit, at);
        }
    }

    fn serve_turns(&mut self, now: Instant, way: Way) {
        loop {
            let waiting = std::mem::take(self.limits.queue(way));
            let mut served = false;
            // Those the buckets held back keep their places ahead of those served, which
            // queue themselves again at the back if they have more.
            let mut kept = Queue::default();
            for conn in waiting.order {
                let Some(id) = self.peers.get(conn).and_then(|p| p.torrent) else {
                    continue;
                };
                if self.limits.available(now, id, way) == 0 {
                    kept.push(conn);
                    continue;
                }
                served |= match way {
                    Way::Up => self.pump_reads_turn(now, id, conn),
                    Way::Down => self.fill_requests_turn(now, conn),
                };
            }
            let again = std::mem::replace(self.limits.queue(way), kept);
            for conn in again.order {
                self.limits.queue(way).push(conn);
            }
            if !served || !self.limits.someone_waits(way) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_the_private_ranges() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.9",
            "172.16.0.1",
            "::1",
            "fd00::1",
        ] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        for remote in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_local(remote.parse().unwrap()), "{remote}");
        }
        assert!(is_local("::ffff:10.0.0.1".parse().unwrap()));
    }
}
