//! Named deadlines: the engine wakes for what is due and touches nothing else.
//!
//! Every deadline the session keeps (a peer's handshake, inactivity, keep-alive and request
//! time-outs and its peer exchange; a torrent's announce, choke round, redial and resume save) is one entry here,
//! named by a [`Timer`]. [`super::Session::handle_timeout`] pops only the entries that are due,
//! so an idle session of thousands of peers costs nothing per second.
//!
//! Deadlines that move often (a peer's inactivity deadline moves with every byte it sends)
//! are not moved on every change: the entry stays where it was and, when it fires, the
//! handler looks at the real deadline and sets the entry again if it is still ahead. A
//! deadline therefore never fires late, and the hot path never touches the table.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::io::TorrentId;
use crate::ConnId;

/// A deadline of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PeerTimer {
    /// The connect and handshake must be done by then.
    Handshake,
    /// Nothing received for [`super::Config::inactivity_timeout`].
    Inactivity,
    /// Nothing sent for [`super::Config::keepalive_interval`].
    KeepAlive,
    /// No block for [`super::Config::request_timeout`] while requests are out: snub it.
    Request,
    /// Our next peer exchange message to it is due.
    Pex,
}

/// A deadline of one torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TorrentTimer {
    /// The announcer's next announce.
    Announce,
    /// The choker's next round.
    ChokeRound,
    /// A known address becomes due for a dial, or the connection budget may have room.
    Dial,
    /// A resume save of the pieces verified since the last one.
    ResumeSave,
    /// A metadata request times out, or a peer that refused one may be asked again.
    Metadata,
    /// The next DHT search for the torrent's peers.
    Dht,
}

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// A connection's.
    Peer(ConnId, PeerTimer),
    /// A torrent's.
    Torrent(TorrentId, TorrentTimer),
    /// The session's next local service discovery announce.
    Lsd,
    /// The DHT node's next time-out or maintenance.
    Dht,
    /// A rate limit's bucket refills for a peer waiting on it.
    RateLimit,
    /// A running download may stall while another waits in the queue.
    Queue,
}

/// Deadlines by name, and the names by deadline.
#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    by_time: BTreeSet<(Instant, Timer)>,
    by_name: BTreeMap<Timer, Instant>,
    /// The earliest deadline, kept as the table changes: adapters ask for it after every
    /// input, and finding it walked the tree down its left edge (most of the simulator's
    /// own time in carrying out outputs).
    first: Option<Instant>,
}

impl TimerTable {
    /// Sets `timer` to fire at `at`, replacing its previous deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        let old = self.by_name.insert(timer, at);
        if let Some(old) = old {
            self.by_time.remove(&(old, timer));
        }
        self.by_time.insert((at, timer));
        self.first = match self.first {
            // The earliest deadline stands unless it was this timer's.
            Some(first) if old != Some(first) => Some(first.min(at)),
            _ => self.earliest(),
        };
    }

    /// Cancels `timer`.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(old) = self.by_name.remove(&timer) {
            self.by_time.remove(&(old, timer));
            if self.first == Some(old) {
                self.first = self.earliest();
            }
        }
    }

    fn earliest(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Cancels every deadline of a connection.
    pub fn stop_peer(&mut self, conn: ConnId) {
        for t in [
            PeerTimer::Handshake,
            PeerTimer::Inactivity,
            PeerTimer::KeepAlive,
            PeerTimer::Request,
            PeerTimer::Pex,
        ] {
            self.stop(Timer::Peer(conn, t));
        }
    }

    /// Cancels every deadline of a torrent.
    pub fn stop_torrent(&mut self, id: TorrentId) {
        for t in [
            TorrentTimer::Announce,
            TorrentTimer::ChokeRound,
            TorrentTimer::Dial,
            TorrentTimer::ResumeSave,
        ] {
            self.stop(Timer::Torrent(id, t));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.first
    }

    /// Removes and returns a timer whose deadline is at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(at, timer) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_name.remove(&timer);
        self.first = self.earliest();
        Some(timer)
    }

    /// When `timer` fires, if it is set.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.by_name.get(&timer).copied()
    }

    /// How many deadlines are set.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn peer(c: u64, t: PeerTimer) -> Timer {
        Timer::Peer(ConnId(c), t)
    }

    #[test]
    fn pops_due_timers_in_order_and_nothing_early() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut table = TimerTable::default();
        table.set(peer(1, PeerTimer::KeepAlive), t0 + 3 * s);
        table.set(peer(2, PeerTimer::Inactivity), t0 + s);
        table.set(
            Timer::Torrent(TorrentId(0), TorrentTimer::Announce),
            t0 + 2 * s,
        );
        assert_eq!(table.next(), Some(t0 + s));
        assert_eq!(table.pop_due(t0), None);
        assert_eq!(
            table.pop_due(t0 + 2 * s),
            Some(peer(2, PeerTimer::Inactivity))
        );
        assert_eq!(
            table.pop_due(t0 + 2 * s),
            Some(Timer::Torrent(TorrentId(0), TorrentTimer::Announce))
        );
        assert_eq!(table.pop_due(t0 + 2 * s), None);
        assert_eq!(table.next(), Some(t0 + 3 * s));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn setting_again_moves_a_timer_and_stopping_removes_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut table = TimerTable::default();
        let k = peer(1, PeerTimer::Request);
        table.set(k, t0 + s);
        table.set(k, t0 + 5 * s);
        assert_eq!(table.len(), 1);
        assert_eq!(table.pop_due(t0 + 4 * s), None, "the old deadline is gone");
        assert_eq!(table.deadline(k), Some(t0 + 5 * s));
        table.stop(k);
        assert_eq!(table.next(), None);
        assert_eq!(table.pop_due(t0 + 10 * s), None);
    }

    /// The kept earliest deadline matches the table's after any mix of changes.
    #[test]
    fn the_next_deadline_follows_every_change() {
        let t0 = Instant::now();
        let mut rng = crate::rng::Rng::seed_from_u64(5);
        let mut table = TimerTable::default();
        for step in 0..5000 {
            let k = peer(rng.below(6), PeerTimer::KeepAlive);
            let at = t0 + Duration::from_millis(rng.below(50));
            match rng.below(4) {
                0 | 1 => table.set(k, at),
                2 => table.stop(k),
                _ => {
                    table.pop_due(at);
                }
            }
            let walked = table.by_time.first().map(|(at, _)| *at);
            assert_eq!(table.next(), walked, "step {step}");
        }
    }

    #[test]
    fn a_connection_or_torrent_takes_all_its_timers_with_it() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(peer(1, PeerTimer::Handshake), t0);
        table.set(peer(1, PeerTimer::KeepAlive), t0);
        table.set(peer(2, PeerTimer::KeepAlive), t0);
        table.set(Timer::Torrent(TorrentId(3), TorrentTimer::Dial), t0);
        table.set(Timer::Torrent(TorrentId(3), TorrentTimer::ChokeRound), t0);
        table.stop_peer(ConnId(1));
        table.stop_torrent(TorrentId(3));
        assert_eq!(table.len(), 1);
        assert_eq!(table.pop_due(t0), Some(peer(2, PeerTimer::KeepAlive)));
    }
}
