//! How many announces a session has in flight at once, and which torrents wait for a slot.
//!
//! Without a bound, a session of thousands of torrents sends all their `started` announces
//! at once when it starts, and a tracker that does not answer keeps every one of them
//! waiting for its time-out together: thousands of sockets and tasks at once, then as many
//! retries at the same moment after the back-off. With slots, announces go out as earlier
//! ones finish, in the order they fell due; a dead tracker holds only the slots it was
//! given, for one time-out each.
//!
//! Slots are counted per tracker (its URL's host and port) as well as in all: a tracker
//! that does not answer holds at most [`MAX_ANNOUNCES_PER_TRACKER`], so the torrents of
//! other trackers do not queue behind its time-outs.
//!
//! `stopped` announces take no slot: nobody waits for their answer, and a stop must not wait
//! behind a queue.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::io::TorrentId;

/// Announces in flight at once in one session. Each costs the adapter a socket, a task and a
/// receive buffer (about 20 KiB) until it is answered or times out; 256 is a few megabytes,
/// and room for four trackers at their own limit.
pub const MAX_ANNOUNCES_IN_FLIGHT: usize = 256;

/// Announces in flight at once to one tracker. A tracker answers in well under a second, so
/// 64 slots announce hundreds of torrents a second to it; one that does not answer costs at
/// most 64 time-outs at a time.
pub const MAX_ANNOUNCES_PER_TRACKER: usize = 64;

/// The part of a tracker URL that names the tracker: host and port, whatever the path.
pub(crate) fn tracker_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Torrents with an announce in flight, and those waiting for a slot, first come first.
#[derive(Debug, Default)]
pub(crate) struct AnnounceSlots {
    /// Torrents with an announce in flight, and to which tracker (at most
    /// [`MAX_ANNOUNCES_IN_FLIGHT`], so counting one tracker's is cheap).
    in_flight: BTreeMap<TorrentId, Arc<str>>,
    /// Waiting torrents per tracker, with the number of their turn.
    waiting: BTreeMap<Arc<str>, VecDeque<(u64, TorrentId)>>,
    /// The torrents that still wait, with the number of their live entry in `waiting` and its
    /// tracker: an entry whose torrent took a slot, was removed or queued again is skipped.
    queued: BTreeMap<TorrentId, (u64, Arc<str>)>,
    /// Each tracker's name once, shared by the entries above: thousands of torrents of one
    /// tracker wait for it together, and a copy of its name each cost about 100 bytes (two
    /// heap blocks) per torrent. Names nothing else holds are dropped in
    /// [`AnnounceSlots::next_waiting`].
    names: BTreeSet<Arc<str>>,
    next_turn: u64,
}

impl AnnounceSlots {
    /// Takes a slot for an announce of torrent `id` to the tracker of `url`, if one is free;
    /// otherwise `id` waits for one (once, however often it asks) and this is `false`.
    pub fn take(&mut self, id: TorrentId, url: &str) -> bool {
        let tracker = tracker_of(url);
        if self.has_room(tracker) {
            self.queued.remove(&id);
            self.release(id);
            let name = self.name(tracker);
            self.in_flight.insert(id, name);
            return true;
        }
        let waits_here = self
            .queued
            .get(&id)
            .is_some_and(|(_, t)| t.as_ref() == tracker);
        if !waits_here {
            let turn = self.next_turn;
            self.next_turn += 1;
            let name = self.name(tracker);
            self.queued.insert(id, (turn, name.clone()));
            let queue = self.waiting.entry(name).or_default();
            queue.push_back((turn, id));
        }
        false
    }

    /// The shared name of `tracker`.
    fn name(&mut self, tracker: &str) -> Arc<str> {
        match self.names.get(tracker) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(tracker);
                self.names.insert(name.clone());
                name
            }
        }
    }

    fn has_room(&self, tracker: &str) -> bool {
        self.in_flight.len() < MAX_ANNOUNCES_IN_FLIGHT
            && self
                .in_flight
                .values()
                .filter(|t| t.as_ref() == tracker)
                .count()
                < MAX_ANNOUNCES_PER_TRACKER
    }

    /// Torrent `id`'s announce finished (answered or failed): its slot is free.
    pub fn release(&mut self, id: TorrentId) {
        self.in_flight.remove(&id);
    }

    /// Torrent `id` is gone: its slot is free and it waits no more.
    pub fn forget(&mut self, id: TorrentId) {
        self.release(id);
        self.queued.remove(&id);
    }

    /// The torrent whose turn it is among the trackers with a free slot: it leaves the queue
    /// and should take the slot now.
    pub fn next_waiting(&mut self) -> Option<TorrentId> {
        // Entries that no longer wait go first, so each front is a live one.
        for queue in self.waiting.values_mut() {
            while let Some(&(turn, id)) = queue.front() {
                if self.queued.get(&id).is_some_and(|(t, _)| *t == turn) {
                    break;
                }
                queue.pop_front();
            }
        }
        self.waiting.retain(|_, q| !q.is_empty());
        self.names.retain(|name| Arc::strong_count(name) > 1);
        let (_, tracker) = self
            .waiting
            .iter()
            .filter(|(tracker, _)| self.has_room(tracker))
            .filter_map(|(tracker, q)| q.front().map(|(turn, _)| (*turn, tracker.clone())))
            .min()?;
        let (_, id) = self.waiting.get_mut(&tracker)?.pop_front()?;
        self.queued.remove(&id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://tracker.example:6969/announce";

    #[test]
    fn torrents_beyond_the_slots_wait_their_turn_in_order() {
        let mut slots = AnnounceSlots::default();
        let n = MAX_ANNOUNCES_PER_TRACKER as u32;
        for i in 0..n {
            assert!(slots.take(TorrentId(i), URL));
        }
        assert!(!slots.take(TorrentId(n), URL));
        assert!(!slots.take(TorrentId(n + 1), URL));
        assert!(
            !slots.take(TorrentId(n), URL),
            "asking again does not queue twice"
        );
        assert_eq!(slots.next_waiting(), None, "no slot free");
        slots.release(TorrentId(0));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n)));
        assert!(slots.take(TorrentId(n), URL));
        assert_eq!(slots.next_waiting(), None, "its turn used the slot");
        slots.release(TorrentId(1));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n + 1)));
        assert_eq!(slots.next_waiting(), None, "no one else waits");
    }

    #[test]
    fn a_removed_torrent_frees_its_slot_and_its_place() {
        let mut slots = AnnounceSlots::default();
        let n = MAX_ANNOUNCES_PER_TRACKER as u32;
        for i in 0..n + 2 {
            slots.take(TorrentId(i), URL);
        }
        slots.forget(TorrentId(n));
        slots.forget(TorrentId(0));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n + 1)));
    }

    /// A tracker that never answers holds its own slots only: another tracker's torrents go
    /// at once, and the session's limit still holds over all trackers.
    #[test]
    fn a_dead_tracker_does_not_hold_up_the_others() {
        let mut slots = AnnounceSlots::default();
        let per = MAX_ANNOUNCES_PER_TRACKER as u32;
        for i in 0..per + 10 {
            slots.take(TorrentId(i), "udp://dead.example:80");
        }
        assert!(slots.take(TorrentId(1000), "http://alive.example/announce?x=1"));
        assert_eq!(
            slots.next_waiting(),
            None,
            "the dead tracker's waiters still wait"
        );
        // Fill the session: trackers at their own limit until the total is reached.
        let mut id = 2000;
        while slots.in_flight.len() < MAX_ANNOUNCES_IN_FLIGHT {
            let tracker = format!("http://t{}.example/a", id / per);
            assert!(slots.take(TorrentId(id), &tracker));
            id += 1;
        }
        assert!(!slots.take(TorrentId(1), "http://fresh.example/a"));
        // A slot of another tracker frees: the fresh tracker's torrent, not the dead one's.
        slots.release(TorrentId(1000));
        assert_eq!(slots.next_waiting(), Some(TorrentId(1)));
    }

    #[test]
    fn trackers_are_told_apart_by_host_and_port() {
        assert_eq!(
            tracker_of("http://a.example:80/announce?k=1"),
            "a.example:80"
        );
        assert_eq!(tracker_of("udp://a.example:80"), "a.example:80");
        assert_eq!(tracker_of("https://a.example/x"), "a.example");
        assert_eq!(tracker_of("nonsense"), "nonsense");
    }
}
