//! How many announces a session has in flight at once, and which torrents wait for a slot.
//!
//! Without a bound, a session of thousands of torrents sends all their `started` announces
//! at once when it starts, and a tracker that does not answer keeps every one of them
//! waiting for its time-out together: thousands of sockets and tasks at once, then as many
//! retries at the same moment after the back-off. With slots, announces go out as earlier
//! ones finish, in the order they fell due; a dead tracker holds only the slots it was
//! given, for one time-out each.
//!
//! `stopped` announces take no slot: nobody waits for their answer, and a stop must not wait
//! behind a queue.

use std::collections::{BTreeSet, VecDeque};

use super::io::TorrentId;

/// Announces in flight at once in one session. Each costs the adapter a socket, a task and a
/// receive buffer (about 20 KiB) until it is answered or times out; 64 is a megabyte or two.
/// A tracker answers in well under a second, so 64 slots announce hundreds of torrents a
/// second; a tracker that does not answer costs at most 64 time-outs at a time.
pub const MAX_ANNOUNCES_IN_FLIGHT: usize = 64;

/// Torrents with an announce in flight, and those waiting for a slot, first come first.
#[derive(Debug, Default)]
pub(crate) struct AnnounceSlots {
    in_flight: BTreeSet<TorrentId>,
    waiting: VecDeque<TorrentId>,
    /// The torrents in `waiting` that still wait: one that took a slot or was removed is
    /// dropped from here and skipped when its turn comes.
    queued: BTreeSet<TorrentId>,
}

impl AnnounceSlots {
    /// Takes a slot for an announce of torrent `id`, if one is free; otherwise `id` waits
    /// for one (once, however often it asks) and this is `false`.
    pub fn take(&mut self, id: TorrentId) -> bool {
        if self.in_flight.len() < MAX_ANNOUNCES_IN_FLIGHT {
            self.queued.remove(&id);
            self.in_flight.insert(id);
            true
        } else {
            if self.queued.insert(id) {
                self.waiting.push_back(id);
            }
            false
        }
    }

    /// Torrent `id`'s announce finished (answered or failed): its slot is free.
    pub fn release(&mut self, id: TorrentId) {
        self.in_flight.remove(&id);
    }

    /// Torrent `id` is gone: its slot is free and it waits no more.
    pub fn forget(&mut self, id: TorrentId) {
        self.in_flight.remove(&id);
        self.queued.remove(&id);
    }

    /// The torrent whose turn it is, if a slot is free: it leaves the queue and should take
    /// the slot now.
    pub fn next_waiting(&mut self) -> Option<TorrentId> {
        if self.in_flight.len() >= MAX_ANNOUNCES_IN_FLIGHT {
            return None;
        }
        while let Some(id) = self.waiting.pop_front() {
            if self.queued.remove(&id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrents_beyond_the_slots_wait_their_turn_in_order() {
        let mut slots = AnnounceSlots::default();
        let n = MAX_ANNOUNCES_IN_FLIGHT as u32;
        for i in 0..n {
            assert!(slots.take(TorrentId(i)));
        }
        assert!(!slots.take(TorrentId(n)));
        assert!(!slots.take(TorrentId(n + 1)));
        assert!(
            !slots.take(TorrentId(n)),
            "asking again does not queue twice"
        );
        assert_eq!(slots.next_waiting(), None, "no slot free");
        slots.release(TorrentId(0));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n)));
        assert!(slots.take(TorrentId(n)));
        assert_eq!(slots.next_waiting(), None, "its turn used the slot");
        slots.release(TorrentId(1));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n + 1)));
        assert_eq!(slots.next_waiting(), None, "no one else waits");
    }

    #[test]
    fn a_removed_torrent_frees_its_slot_and_its_place() {
        let mut slots = AnnounceSlots::default();
        let n = MAX_ANNOUNCES_IN_FLIGHT as u32;
        for i in 0..n + 2 {
            slots.take(TorrentId(i));
        }
        slots.forget(TorrentId(n));
        slots.forget(TorrentId(0));
        assert_eq!(slots.next_waiting(), Some(TorrentId(n + 1)));
    }
}
