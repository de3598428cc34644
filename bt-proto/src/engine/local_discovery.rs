//! Local service discovery (BEP 14), the session's side: which torrents are announced (those
//! in a swarm, started or paused, and not private; torrents still fetching their metadata
//! too, as their info-hash is known and they are not known to be private), and what an
//! announce received does (its sender is learned as a tracker's peer would be, for each
//! torrent of ours it names).
//!
//! The codec and the rate rules are [`crate::lsd`]; this module only ties them to torrents,
//! timers and outputs. The adapter moves the datagrams ([`Output::SendMulticast`],
//! [`super::Input::MulticastReceived`]).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::timers::Timer;
use super::{Config, Output, Session, TorrentId};
use crate::lsd::policy::{Schedule, SourceLimit};
use crate::lsd::{Announce, LsdGroup};
use crate::rng::Rng;

/// Mixed into the seed of the cookie's generator, so that drawing the cookie leaves the
/// session's own random sequence as it was.
const COOKIE_STREAM: u64 = 0x6c73_645f_636f_6f6b;

/// The session's local service discovery state.
#[derive(Debug)]
pub(crate) struct LocalDiscovery {
    /// Sent with every announce of ours, so that ours coming back through multicast
    /// loopback are recognised and ignored.
    cookie: String,
    schedule: Schedule<TorrentId>,
    sources: SourceLimit,
}

impl LocalDiscovery {
    /// The state of a new session. The cookie is random per session: from the seed, the
    /// peer id and the port, so that two sessions on one host differ even if they were
    /// given the same seed (their ports differ).
    pub fn new(config: &Config) -> Self {
        let id = config
            .peer_id
            .0
            .iter()
            .fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(*b));
        let mut rng =
            Rng::seed_from_u64(config.seed ^ COOKIE_STREAM ^ id ^ u64::from(config.listen_port));
        LocalDiscovery {
            cookie: format!("{:08x}", rng.next_u32()),
            schedule: Schedule::default(),
            sources: SourceLimit::default(),
        }
    }
}

impl Session {
    /// Whether torrent `id` is announced: LSD on, the torrent in its swarm (not stopped),
    /// and not private (BEP 27: a private torrent's peers come from its tracker only).
    fn announces_locally(&self, id: TorrentId) -> bool {
        if !self.config.lsd {
            return false;
        }
        match (self.torrents.get(&id), self.fetching.get(&id)) {
            (Some(t), _) => t.state.in_swarm() && !t.meta.is_private(),
            (None, Some(f)) => f.state.in_swarm(),
            (None, None) => false,
        }
    }

    /// Torrent `id` was added, started, paused or stopped: it joins the announces (the
    /// first at once, or as soon as the rate allows) or leaves them.
    pub(super) fn lsd_torrent_changed(&mut self, now: Instant, id: TorrentId) {
        if self.announces_locally(id) {
            self.lsd.schedule.join(id, now);
        } else {
            self.lsd.schedule.leave(&id);
        }
        self.schedule_lsd();
    }

    fn schedule_lsd(&mut self) {
        match self.lsd.schedule.next_wakeup() {
            Some(at) => self.timers.set(Timer::Lsd, at),
            None => self.timers.stop(Timer::Lsd),
        }
    }

    /// The announce timer: one announce to each group with the torrents due.
    pub(super) fn on_lsd_timer(&mut self, now: Instant) {
        // A torrent removed, or found private once its metadata came, since it joined.
        let mut schedule = std::mem::take(&mut self.lsd.schedule);
        schedule.retain(|id| self.announces_locally(*id));
        let due = schedule.take_due(now);
        self.lsd.schedule = schedule;
        let info_hashes: Vec<_> = due.iter().filter_map(|id| self.info_hash_of(*id)).collect();
        let port = self.config.listen_port;
        // Port 0 is nobody's listening port (a session not bound yet): nothing to announce.
        if !info_hashes.is_empty() && port != 0 {
            for group in LsdGroup::ALL {
                let announce = Announce {
                    group,
                    port,
                    info_hashes: info_hashes.clone(),
                    cookie: Some(self.lsd.cookie.clone()),
                };
                self.outputs.push_back(Output::SendMulticast {
                    group,
                    data: Bytes::from(announce.encode()),
                });
            }
        }
        self.schedule_lsd();
    }

    /// A datagram on the LSD port: if it is a well-formed announce from someone else, within
    /// its sender's rate, its sender is a peer of each torrent of ours it names. Anything
    /// else is dropped: the sender is not a connection to close.
    pub(super) fn on_lsd_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.config.lsd || !self.lsd.sources.allow(from.ip(), now) {
            return;
        }
        let Ok(announce) = Announce::decode(data) else {
            return;
        };
        if announce.cookie.as_deref() == Some(self.lsd.cookie.as_str()) {
            return;
        }
        let peer = SocketAddr::new(from.ip(), announce.port);
        for info_hash in &announce.info_hashes {
            let Some(id) = self.by_info_hash.get(info_hash).copied() else {
                continue;
            };
            if self.announces_locally(id) && self.learn_peer(now, id, peer).is_some() {
                self.connect_more(now, id);
            }
        }
    }

    /// Our cookie, for tests that echo our own announces back.
    #[cfg(test)]
    pub(super) fn lsd_cookie(&self) -> &str {
        &self.lsd.cookie
    }
}

#[cfg(test)]
mod tests;
