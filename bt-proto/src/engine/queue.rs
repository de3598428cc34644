//! The queue: how many torrents run at once ([`Config::max_active_downloads`],
//! [`Config::max_active_seeds`]), and which.
//!
//! Every torrent has a place in one order, the order it was added in unless moved
//! ([`Session::set_queue_position`]). A torrent the user started either runs or waits
//! ([`TorrentState::Queued`]): walking the order, each started torrent runs while its kind
//! (downloads: some wanted piece missing; seeds: none) has a free slot. Paused, stopped and
//! failed torrents take no slot and keep their places.
//!
//! A download that received no payload for [`Config::stalled_after`] still runs but holds no
//! slot, so the next one in the queue starts beside it: a swarm with no seed must not hold
//! the queue up. If it gets going again it takes a slot back, and the last one to start
//! waits again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::timers::Timer;
use super::{Config, Session, TorrentId, TorrentState};

/// The session's queue.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Every torrent, first place first.
    order: Vec<TorrentId>,
    /// The torrents the user started: those the queue runs or holds.
    started: BTreeSet<TorrentId>,
    /// When each running download last made progress: started, or received payload.
    progress: BTreeMap<TorrentId, Instant>,
}

/// The two kinds of slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Download,
    Seed,
}

impl Queue {
    /// A torrent was added: its place is the last.
    pub fn added(&mut self, id: TorrentId) {
        self.order.push(id);
    }

    /// A torrent was removed.
    pub fn removed(&mut self, id: TorrentId) {
        self.order.retain(|t| *t != id);
        self.started.remove(&id);
        self.progress.remove(&id);
    }

    /// A running download received payload.
    pub fn progressed(&mut self, id: TorrentId, now: Instant) {
        if let Some(at) = self.progress.get_mut(&id) {
            *at = now;
        }
    }
}

fn has_caps(config: &Config) -> bool {
    config.max_active_downloads.is_some() || config.max_active_seeds.is_some()
}

impl Session {
    /// The state a torrent enters when asked for `state`: a start waits in the queue while
    /// its kind has no free slot. Records who the user started.
    pub(super) fn admit_state(
        &mut self,
        now: Instant,
        id: TorrentId,
        state: TorrentState,
    ) -> TorrentState {
        match state {
            TorrentState::Started => {
                self.queue.started.insert(id);
                if !has_caps(&self.config) || self.runs_in_queue(now, id) {
                    TorrentState::Started
                } else {
                    TorrentState::Queued
                }
            }
            TorrentState::Queued => TorrentState::Queued,
            other => {
                self.queue.started.remove(&id);
                other
            }
        }
    }

    /// A torrent's place in the queue, 0 first; `None` if there is no such torrent.
    pub fn queue_position(&self, id: TorrentId) -> Option<usize> {
        self.queue.order.iter().position(|t| *t == id)
    }

    /// Moves a torrent to place `position` of the queue (the last place if beyond it); the
    /// queue then starts and holds torrents by the new order. False if there is no such
    /// torrent.
    pub fn set_queue_position(&mut self, now: Instant, id: TorrentId, position: usize) -> bool {
        let Some(from) = self.queue_position(id) else {
            return false;
        };
        self.queue.order.remove(from);
        let to = position.min(self.queue.order.len());
        self.queue.order.insert(to, id);
        self.rebalance_queue(now);
        true
    }

    fn kind_of(&self, id: TorrentId) -> Option<Kind> {
        if let Some(t) = self.torrents.get(&id) {
            return Some(if t.picker.is_done() {
                Kind::Seed
            } else {
                Kind::Download
            });
        }
        self.fetching.contains_key(&id).then_some(Kind::Download)
    }

    fn stalled(&self, now: Instant, id: TorrentId) -> bool {
        self.queue
            .progress
            .get(&id)
            .is_some_and(|at| now.saturating_duration_since(*at) >= self.config.stalled_after)
    }

    /// The started torrents that run, walking the queue: each while its kind has a slot;
    /// a stalled download runs on without holding one.
    fn running_set(&self, now: Instant, also: Option<TorrentId>) -> BTreeSet<TorrentId> {
        let (mut downloads, mut seeds) = (0usize, 0usize);
        let mut runs = BTreeSet::new();
        for id in self.queue.order.iter().copied() {
            if !self.queue.started.contains(&id) && Some(id) != also {
                continue;
            }
            let Some(kind) = self.kind_of(id) else {
                continue;
            };
            let state = swarm_state(self, id);
            if kind == Kind::Download
                && state == Some(TorrentState::Started)
                && self.stalled(now, id)
            {
                runs.insert(id);
                continue;
            }
            let (count, cap) = match kind {
                Kind::Download => (&mut downloads, self.config.max_active_downloads),
                Kind::Seed => (&mut seeds, self.config.max_active_seeds),
            };
            if cap.is_none_or(|cap| *count < cap) {
                *count += 1;
                runs.insert(id);
            }
        }
        runs
    }

    fn runs_in_queue(&self, now: Instant, id: TorrentId) -> bool {
        self.running_set(now, Some(id)).contains(&id)
    }

    /// Starts the started torrents that have a slot now, and holds those that lost theirs;
    /// wakes again when a running download could stall.
    pub(super) fn rebalance_queue(&mut self, now: Instant) {
        if !has_caps(&self.config) {
            return;
        }
        let runs = self.running_set(now, None);
        let started: Vec<TorrentId> = self.queue.started.iter().copied().collect();
        for id in started {
            let state = swarm_state(self, id);
            let should = if runs.contains(&id) {
                TorrentState::Started
            } else {
                TorrentState::Queued
            };
            if matches!(state, Some(TorrentState::Started | TorrentState::Queued))
                && state != Some(should)
            {
                self.apply_state(now, id, should);
            }
        }
        self.arm_queue_timer(now);
    }

    /// The next time a running download stalls, if a torrent waits for a slot.
    fn arm_queue_timer(&mut self, now: Instant) {
        let waiting = self
            .queue
            .started
            .iter()
            .any(|id| swarm_state(self, *id) == Some(TorrentState::Queued));
        let next = self
            .queue
            .progress
            .iter()
            .filter(|(id, _)| swarm_state(self, **id) == Some(TorrentState::Started))
            .map(|(_, at)| *at + self.config.stalled_after)
            .filter(|at| *at > now)
            .min();
        match next.filter(|_| waiting) {
            Some(at) => self.timers.set(Timer::Queue, at),
            None => self.timers.stop(Timer::Queue),
        }
    }

    /// A torrent entered `state`: a running download's progress clock starts now.
    pub(super) fn queue_state_changed(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        if state == TorrentState::Started {
            self.queue.progress.insert(id, now);
        } else {
            self.queue.progress.remove(&id);
        }
    }
}

fn swarm_state(s: &Session, id: TorrentId) -> Option<TorrentState> {
    s.torrents
        .get(&id)
        .map(|t| t.state)
        .or_else(|| s.fetching.get(&id).map(|f| f.state))
}
