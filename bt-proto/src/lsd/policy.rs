//! When to announce and what to accept (BEP 14's rate rules), as two small state machines
//! on the caller's clock: [`Schedule`] for what we send, [`SourceLimit`] for what we take.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::MAX_LSD_INFOHASHES;

/// How often each swarm is announced. BEP 14: "As long as a client is participating in a
/// swarm it should send a LSD announce every 5 minutes"; libtorrent's default is the same.
pub const LSD_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Shortest time between two of our announces (one announce goes to each group). BEP 14:
/// "To avoid causing multicast storms on large networks a client should send no more than 1
/// announce per minute". The first announce of a session goes at once, and each announce
/// carries up to [`MAX_LSD_INFOHASHES`] swarms, so a torrent added later waits at most this
/// long for its first one; a whole session of up to 125 torrents keeps to one message a
/// minute and still announces each every [`LSD_ANNOUNCE_INTERVAL`].
pub const LSD_MIN_GAP: Duration = Duration::from_secs(60);

/// The window of [`MAX_LSD_PER_SOURCE`].
pub const LSD_SOURCE_WINDOW: Duration = Duration::from_secs(60);

/// Announces taken from one host per [`LSD_SOURCE_WINDOW`]; more are dropped unread. An
/// honest BEP 14 sender sends one a minute, but libtorrent sends one message per torrent and
/// repeats each twice a few seconds later, so a libtorrent host starting six torrents sends
/// 18 at once; 20 hears it out. A host flooding us costs 20 small parses a minute.
pub const MAX_LSD_PER_SOURCE: u32 = 20;

/// Hosts whose windows are kept: a /24 network's worth. When all are in a live window, a
/// new host is not heard until one window ends, which bounds the memory a spoofing flood can
/// take while the hosts already heard keep being heard.
pub const MAX_LSD_SOURCES: usize = 256;

/// Which swarms to announce and when, for swarms named by `K`: each one at once when it
/// joins, then every [`LSD_ANNOUNCE_INTERVAL`], in announces at least [`LSD_MIN_GAP`] apart
/// of at most [`MAX_LSD_INFOHASHES`] swarms.
#[derive(Debug, Clone)]
pub struct Schedule<K> {
    /// When each swarm is next due.
    due: BTreeMap<K, Instant>,
    /// When the last announce went out.
    last_sent: Option<Instant>,
}

impl<K> Default for Schedule<K> {
    fn default() -> Self {
        Schedule {
            due: BTreeMap::new(),
            last_sent: None,
        }
    }
}

impl<K: Ord + Copy> Schedule<K> {
    /// A swarm to announce: due at `now` if it was not announced already.
    pub fn join(&mut self, key: K, now: Instant) {
        self.due.entry(key).or_insert(now);
    }

    /// A swarm not to announce any more.
    pub fn leave(&mut self, key: &K) {
        self.due.remove(key);
    }

    /// Keeps only the swarms `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.due.retain(|k, _| keep(k));
    }

    /// Whether `key` is announced.
    pub fn contains(&self, key: &K) -> bool {
        self.due.contains_key(key)
    }

    /// When [`Schedule::take_due`] has something to give; `None` with no swarm.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let earliest = self.due.values().min().copied()?;
        Some(match self.last_sent {
            Some(last) => earliest.max(last + LSD_MIN_GAP),
            None => earliest,
        })
    }

    /// The swarms of the announce to send at `now`, or nothing if none is due or the last
    /// announce was too recent. The ones due come first, longest due first; the room left
    /// is filled with those due soonest, so swarms share messages instead of each taking
    /// one. Each swarm taken is next due in [`LSD_ANNOUNCE_INTERVAL`].
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        if self.last_sent.is_some_and(|last| now < last + LSD_MIN_GAP)
            || !self.due.values().any(|at| *at <= now)
        {
            return Vec::new();
        }
        let mut order: Vec<(Instant, K)> = self.due.iter().map(|(k, at)| (*at, *k)).collect();
        order.sort();
        let taken: Vec<K> = order
            .into_iter()
            .take(MAX_LSD_INFOHASHES)
            .map(|(_, k)| k)
            .collect();
        for k in &taken {
            self.due.insert(*k, now + LSD_ANNOUNCE_INTERVAL);
        }
        self.last_sent = Some(now);
        taken
    }
}

/// Per-host rate limit of the announces we take: [`MAX_LSD_PER_SOURCE`] per
/// [`LSD_SOURCE_WINDOW`], for at most [`MAX_LSD_SOURCES`] hosts at once.
#[derive(Debug, Clone, Default)]
pub struct SourceLimit {
    /// Start of each host's current window, and how many announces it holds.
    windows: BTreeMap<IpAddr, (Instant, u32)>,
}

impl SourceLimit {
    /// Whether an announce from `ip` at `now` is taken, counting it if so.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.windows.contains_key(&ip) && self.windows.len() >= MAX_LSD_SOURCES {
            self.windows
                .retain(|_, (start, _)| now < *start + LSD_SOURCE_WINDOW);
            if self.windows.len() >= MAX_LSD_SOURCES {
                return false;
            }
        }
        let window = self.windows.entry(ip).or_insert((now, 0));
        if now >= window.0 + LSD_SOURCE_WINDOW {
            *window = (now, 0);
        }
        if window.1 >= MAX_LSD_PER_SOURCE {
            return false;
        }
        window.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_swarm_goes_at_once_then_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        assert_eq!(s.next_wakeup(), None);
        s.join(1u32, t0);
        assert_eq!(s.next_wakeup(), Some(t0));
        assert_eq!(s.take_due(t0), vec![1]);
        assert_eq!(s.take_due(t0), Vec::<u32>::new(), "nothing due");
        assert_eq!(s.next_wakeup(), Some(t0 + LSD_ANNOUNCE_INTERVAL));
        s.join(1, t0 + LSD_MIN_GAP);
        assert_eq!(
            s.next_wakeup(),
            Some(t0 + LSD_ANNOUNCE_INTERVAL),
            "joining again"
        );
        assert_eq!(s.take_due(t0 + LSD_ANNOUNCE_INTERVAL), vec![1]);
    }

    #[test]
    fn announces_are_a_minute_apart_and_share_messages() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.join(1u32, t0);
        assert_eq!(s.take_due(t0), vec![1]);
        let later = t0 + Duration::from_secs(10);
        s.join(2, later);
        assert_eq!(
            s.next_wakeup(),
            Some(t0 + LSD_MIN_GAP),
            "the gap holds it back"
        );
        assert!(s.take_due(later).is_empty());
        // When 2 goes, 1 fills the room: one message for both, both due together again.
        assert_eq!(s.take_due(t0 + LSD_MIN_GAP), vec![2, 1]);
        assert_eq!(
            s.next_wakeup(),
            Some(t0 + LSD_MIN_GAP + LSD_ANNOUNCE_INTERVAL)
        );
        s.leave(&1);
        s.leave(&2);
        assert_eq!(s.next_wakeup(), None);
    }

    #[test]
    fn many_swarms_go_round_robin() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let n = MAX_LSD_INFOHASHES as u32 + 5;
        for k in 0..n {
            s.join(k, t0);
        }
        let first = s.take_due(t0);
        assert_eq!(first.len(), MAX_LSD_INFOHASHES);
        let second = s.take_due(t0 + LSD_MIN_GAP);
        // The five left out come first, then those announced longest ago.
        assert_eq!(second.len(), MAX_LSD_INFOHASHES);
        for k in MAX_LSD_INFOHASHES as u32..n {
            assert!(second.contains(&k));
        }
        s.retain(|k| *k < 3);
        assert!(s.contains(&2) && !s.contains(&3));
    }

    #[test]
    fn a_source_is_capped_per_window() {
        let t0 = Instant::now();
        let ip = IpAddr::from([192, 168, 1, 2]);
        let mut l = SourceLimit::default();
        for _ in 0..MAX_LSD_PER_SOURCE {
            assert!(l.allow(ip, t0));
        }
        assert!(!l.allow(ip, t0 + Duration::from_secs(59)));
        assert!(l.allow(IpAddr::from([192, 168, 1, 3]), t0), "another host");
        assert!(l.allow(ip, t0 + LSD_SOURCE_WINDOW), "a new window");
    }

    #[test]
    fn the_hosts_kept_are_bounded() {
        let t0 = Instant::now();
        let mut l = SourceLimit::default();
        for i in 0..MAX_LSD_SOURCES as u32 {
            assert!(l.allow(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), t0));
        }
        let late = IpAddr::from([192, 168, 9, 9]);
        assert!(!l.allow(late, t0), "every window is live");
        assert!(l.allow(late, t0 + LSD_SOURCE_WINDOW), "the old ones ended");
    }
}
