//! When to announce to which tracker (BEP 12 tiers), and with which event.
//!
//! URLs are shuffled within each tier once; a URL that answers moves to the front of its tier;
//! a failure falls through to the next URL, then the next tier; when every URL failed the
//! round backs off exponentially. `started` is sent once, `completed` once when the download
//! finishes (never when the torrent was complete at start: BEP 3 says a client that starts
//! complete sends no `completed`, and trackers count `completed` as finished downloads),
//! `stopped` when the torrent stops. Each URL is kept once, [`MAX_TRACKER_URLS`] at most, and
//! found through an index when there are more than [`INDEX_FROM`], so a reply costs the same
//! however many URLs the torrent lists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dialing::MAX_PEERS_PER_REPLY;
use super::fetching::{LEFT_UNKNOWN, swarm_of};
use super::timers::{Timer, TorrentTimer};
use super::{Event, Output, Session, TorrentId};
use crate::rng::Rng;
use crate::tracker::{
    AnnounceError, AnnounceEvent, AnnounceRequest, AnnounceResponse, MAX_TRACKER_URLS,
    MIN_ANNOUNCE_INTERVAL, PeerAddr, announce_interval,
};
/// First wait after every tracker failed; doubled per failed round.
pub const RETRY_BASE: Duration = Duration::from_secs(15);
/// Longest wait after failures.
pub const RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// How soon after a reply a torrent that has run out of peers asks again, when the tracker
/// named no `min interval`: libtorrent's default floor between announces, which trackers are
/// used to. The tracker's `interval` (often 30 minutes) is for a torrent that has peers; one
/// with none would otherwise sit idle until then.
pub const STARVED_REANNOUNCE: Duration = Duration::from_secs(5 * 60);

/// URLs a torrent lists beyond which a reply finds its entry through an index rather than
/// by looking at each: most torrents list one to a few trackers, and a session holds
/// thousands of torrents, for each of which an index would be a hash table of about 200
/// bytes; comparing up to this many URLs costs less than hashing one.
pub const INDEX_FROM: usize = 8;

/// Where each URL of a torrent sits: (tier, position).
type UrlIndex = HashMap<Arc<str>, (usize, usize)>;

/// One tracker URL and what it last said.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub url: Arc<str>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    pub last_error: Option<AnnounceError>,
}

/// The announce schedule of one torrent.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    pub tiers: Vec<Vec<Entry>>,
    /// Where each URL sits in `tiers` (tier, position), so that a reply finds its entry
    /// without scanning every tier: a round of failures stays linear in the URLs. Only
    /// for more than [`INDEX_FROM`] URLs, and boxed: the table's handle alone is as large
    /// as six pointers, in each of thousands of torrents.
    index: Option<Box<UrlIndex>>,
    /// The tier and index to use next.
    cursor: (usize, usize),
    next_at: Option<Instant>,
    in_flight: bool,
    /// Event still to be delivered with the next announce.
    pending: Option<AnnounceEvent>,
    failed_rounds: u32,
    pub tracker_id: Option<Vec<u8>>,
    /// URL that last answered, where `stopped` goes.
    last_good: Option<Arc<str>>,
    started_sent: bool,
    /// When the last reply came and how long the tracker wants between announces at least.
    last_reply: Option<(Instant, Duration)>,
}

impl Announcer {
    /// The schedule for `tiers` (BEP 12): each URL once, at most [`MAX_TRACKER_URLS`] in
    /// all (the first ones), each tier shuffled.
    pub fn new(tiers: &[Vec<String>], rng: &mut Rng) -> Self {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut kept = Vec::new();
        for tier in tiers {
            let mut urls = Vec::new();
            for url in tier {
                if seen.len() >= MAX_TRACKER_URLS {
                    break;
                }
                if seen.insert(url) {
                    urls.push(Entry {
                        url: Arc::from(url.as_str()),
                        seeders: None,
                        leechers: None,
                        last_error: None,
                    });
                }
            }
            if !urls.is_empty() {
                rng.shuffle(&mut urls);
                // A session keeps one announcer per torrent, thousands of them: no room
                // left over from growing (a tier of one URL would hold four).
                urls.shrink_to_fit();
                kept.push(urls);
            }
        }
        kept.shrink_to_fit();
        let index = (seen.len() > INDEX_FROM).then(|| {
            Box::new(
                kept.iter()
                    .enumerate()
                    .flat_map(|(t, tier)| {
                        tier.iter()
                            .enumerate()
                            .map(move |(i, e)| (e.url.clone(), (t, i)))
                    })
                    .collect(),
            )
        });
        Announcer {
            tiers: kept,
            index,
            cursor: (0, 0),
            next_at: None,
            in_flight: false,
            pending: None,
            failed_rounds: 0,
            tracker_id: None,
            last_good: None,
            started_sent: false,
            last_reply: None,
        }
    }

    /// The torrent started: announce `started` now.
    pub fn start(&mut self, now: Instant) {
        self.pending = Some(AnnounceEvent::Started);
        self.started_sent = false;
        self.next_at = Some(now);
        self.cursor = (0, 0);
        self.failed_rounds = 0;
    }

    /// The download finished during this run: announce `completed` now.
    pub fn completed(&mut self, now: Instant) {
        // If `started` never got through, `started` still goes first; `completed` then
        // replaces it, which trackers accept as the first event too.
        self.pending = Some(AnnounceEvent::Completed);
        self.next_at = Some(now);
    }

    /// The torrent stopped: the URL to send `stopped` to, if one ever answered; nothing more
    /// is scheduled.
    pub fn stop(&mut self) -> Option<String> {
        self.next_at = None;
        self.pending = None;
        self.in_flight = false;
        if self.started_sent {
            self.started_sent = false;
            self.last_good.as_deref().map(str::to_string)
        } else {
            None
        }
    }

    /// When the next announce is due.
    pub fn next_at(&self) -> Option<Instant> {
        // Without trackers nothing is ever due; a deadline here would be a past instant the
        // adapter wakes for again and again.
        if self.in_flight || self.tiers.is_empty() {
            None
        } else {
            self.next_at
        }
    }

    /// Whether an announce is due at `now` (and [`Announcer::due`] would give it).
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_at().is_some_and(|t| t <= now)
    }

    /// The URL the next announce goes to.
    pub fn due_url(&self) -> Option<&str> {
        let (t, i) = self.cursor;
        Some(&self.tiers.get(t)?.get(i)?.url)
    }

    /// If an announce is due at `now`: the URL and event to send.
    pub fn due(&mut self, now: Instant) -> Option<(String, Option<AnnounceEvent>)> {
        if self.in_flight || self.next_at.is_none_or(|t| t > now) {
            return None;
        }
        let (t, i) = self.cursor;
        let url = self.tiers.get(t)?.get(i)?.url.to_string();
        self.in_flight = true;
        Some((url, self.pending))
    }

    fn find(&self, url: &str) -> Option<(usize, usize)> {
        match &self.index {
            Some(index) => index.get(url).copied(),
            None => self.tiers.iter().enumerate().find_map(|(t, tier)| {
                let i = tier.iter().position(|e| e.url.as_ref() == url)?;
                Some((t, i))
            }),
        }
    }

    /// A tracker answered.
    pub fn succeeded(&mut self, url: &str, reply: &AnnounceResponse, now: Instant) {
        self.in_flight = false;
        let mut answered = None;
        if let Some((t, i)) = self.find(url)
            && let Some(tier) = self.tiers.get_mut(t)
        {
            if let Some(e) = tier.get_mut(i) {
                e.seeders = reply.complete;
                e.leechers = reply.incomplete;
                e.last_error = None;
                answered = Some(e.url.clone());
            }
            // BEP 12: the URL that answered goes to the front of its tier. Only the entries
            // before it move; at most once per announce interval.
            if let Some(moved) = tier.get_mut(..=i) {
                moved.rotate_right(1);
                if let Some(index) = self.index.as_mut() {
                    for (pos, e) in moved.iter().enumerate() {
                        if let Some(at) = index.get_mut(&e.url) {
                            *at = (t, pos);
                        }
                    }
                }
            }
        }
        // Any answer means this tracker knows us now, so `stopped` is owed at the end.
        self.started_sent = true;
        self.pending = None;
        self.cursor = (0, 0);
        self.failed_rounds = 0;
        self.last_good = Some(answered.unwrap_or_else(|| Arc::from(url)));
        if reply.tracker_id.is_some() {
            self.tracker_id.clone_from(&reply.tracker_id);
        }
        self.next_at = Some(now + announce_interval(reply.interval, reply.min_interval));
        let floor = reply.min_interval.unwrap_or(STARVED_REANNOUNCE);
        self.last_reply = Some((now, floor.max(MIN_ANNOUNCE_INTERVAL)));
    }

    /// The torrent wants pieces and has no peer left to talk to or dial soon: announce as
    /// early as the last reply's minimum interval allows, rather than at its interval.
    /// Nothing changes before a first reply (failures have their own back-off).
    pub fn starved(&mut self, now: Instant) {
        let Some((at, floor)) = self.last_reply else {
            return;
        };
        let earliest = (at + floor).max(now);
        if !self.in_flight && self.next_at.is_some_and(|next| next > earliest) {
            self.next_at = Some(earliest);
        }
    }

    /// A tracker failed; fall through to the next URL, or back off after a failed round.
    pub fn failed(&mut self, url: &str, error: &AnnounceError, now: Instant) {
        self.in_flight = false;
        if let Some((t, i)) = self.find(url)
            && let Some(e) = self.tiers.get_mut(t).and_then(|tier| tier.get_mut(i))
        {
            e.last_error = Some(error.clone());
        }
        let (t, i) = self.cursor;
        let tier_len = self.tiers.get(t).map_or(0, Vec::len);
        if i + 1 < tier_len {
            self.cursor = (t, i + 1);
            self.next_at = Some(now);
        } else if t + 1 < self.tiers.len() {
            self.cursor = (t + 1, 0);
            self.next_at = Some(now);
        } else {
            self.cursor = (0, 0);
            let backoff = RETRY_BASE
                .saturating_mul(1u32 << self.failed_rounds.min(10))
                .min(RETRY_MAX);
            self.failed_rounds = self.failed_rounds.saturating_add(1);
            self.next_at = Some(now + backoff);
        }
    }

    /// When the URL in use is next due (for snapshots).
    pub fn next_announce_of(&self, url: &str) -> Option<Instant> {
        let (t, i) = self.cursor;
        let current = self.tiers.get(t).and_then(|tier| tier.get(i))?;
        (current.url.as_ref() == url)
            .then_some(self.next_at)
            .flatten()
    }
}

impl Session {
    /// What to announce for a torrent now, with `event`.
    fn announce_request(
        &self,
        id: TorrentId,
        event: Option<AnnounceEvent>,
    ) -> Option<AnnounceRequest> {
        let (info_hash, uploaded, downloaded, left, announcer) = match self.torrents.get(&id) {
            Some(t) => (
                t.meta.info_hash(),
                t.uploaded,
                t.downloaded,
                t.left(),
                &t.announcer,
            ),
            None => {
                let f = self.fetching.get(&id)?;
                (
                    f.info_hash,
                    f.uploaded,
                    f.downloaded,
                    LEFT_UNKNOWN,
                    &f.announcer,
                )
            }
        };
        Some(AnnounceRequest {
            info_hash,
            peer_id: self.config.peer_id,
            port: self.config.listen_port,
            uploaded,
            downloaded,
            left,
            event,
            numwant: (event != Some(AnnounceEvent::Stopped)).then_some(self.config.numwant),
            key: Some(self.key),
            tracker_id: announcer.tracker_id.clone(),
            ip: None,
        })
    }

    /// Sends the announce that is due, if one is and a slot is free, and sets the torrent's
    /// announce deadline. Without a free slot the torrent waits its turn with no deadline
    /// set: a past one would wake the session again and again.
    pub(super) fn announce_due(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        if t.state.in_swarm() && t.announcer.is_due(now) {
            let url = t.announcer.due_url().unwrap_or_default();
            if !self.announce_slots.take(id, url) {
                self.timers.stop(Timer::Torrent(id, TorrentTimer::Announce));
                return;
            }
            let sent = t.announcer.due(now).and_then(|(url, event)| {
                let request = self.announce_request(id, event)?;
                Some(Output::Announce {
                    torrent: id,
                    url,
                    request,
                })
            });
            match sent {
                Some(output) => self.outputs.push_back(output),
                None => self.announce_slots.release(id),
            }
        }
        self.schedule_announce(id);
    }

    /// Gives the free slots to the torrents waiting for one, first come first.
    fn announce_waiting(&mut self, now: Instant) {
        while let Some(id) = self.announce_slots.next_waiting() {
            self.announce_due(now, id);
        }
    }

    /// Sets (or clears) the torrent's announce deadline from its announcer.
    fn schedule_announce(&mut self, id: TorrentId) {
        let timer = Timer::Torrent(id, TorrentTimer::Announce);
        let next = match self.torrents.get(&id) {
            Some(t) => t.announcer.next_at(),
            None => self.fetching.get(&id).and_then(|f| f.announcer.next_at()),
        };
        match next {
            Some(at) => self.timers.set(timer, at),
            None => self.timers.stop(timer),
        }
    }

    /// Announces early (see [`Announcer::starved`]) if torrent `id` wants pieces and is out
    /// of peers: none connected, and no address to dial before a re-announce could bring
    /// new ones (`next_dial`).
    pub(super) fn announce_if_starved(
        &mut self,
        now: Instant,
        id: TorrentId,
        next_dial: Option<Instant>,
    ) {
        let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        let starved = t.has_no_peer_to_download_from()
            && next_dial.is_none_or(|at| at > now + STARVED_REANNOUNCE);
        if starved {
            t.announcer.starved(now);
            self.schedule_announce(id);
            self.dht_if_starved(now, id);
        }
    }

    /// The torrent stops: `stopped` goes to the tracker that last answered, and nothing more
    /// is announced.
    pub(super) fn announce_stopped(&mut self, id: TorrentId) {
        let stopped = swarm_of(&mut self.torrents, &mut self.fetching, id);
        let Some(url) = stopped.and_then(|t| t.announcer.stop()) else {
            self.schedule_announce(id);
            return;
        };
        if let Some(request) = self.announce_request(id, Some(AnnounceEvent::Stopped)) {
            self.outputs.push_back(Output::Announce {
                torrent: id,
                url,
                request,
            });
        }
        self.schedule_announce(id);
    }

    pub(super) fn on_announced(
        &mut self,
        now: Instant,
        id: TorrentId,
        url: &str,
        result: Result<AnnounceResponse, AnnounceError>,
    ) {
        self.announce_slots.release(id);
        self.on_announce_result(now, id, url, result);
        self.announce_waiting(now);
    }

    /// What a tracker's answer (or its failure) changes for torrent `id`.
    fn on_announce_result(
        &mut self,
        now: Instant,
        id: TorrentId,
        url: &str,
        result: Result<AnnounceResponse, AnnounceError>,
    ) {
        let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        if !t.state.in_swarm() {
            return;
        }
        match result {
            Ok(reply) => {
                // With no peer at all, an address the tracker still lists is worth a dial
                // now, however long its back-off: at most once per starved announce.
                let starved = t.has_no_peer_to_download_from();
                t.announcer.succeeded(url, &reply, now);
                self.schedule_announce(id);
                if let Some(w) = &reply.warning {
                    self.events.push_back(Event::TrackerWarning {
                        torrent: id,
                        url: url.to_string(),
                        message: w.clone(),
                    });
                }
                self.events.push_back(Event::TrackerReply {
                    torrent: id,
                    url: url.to_string(),
                    peers: reply.peers.len(),
                });
                for peer in reply.peers.into_iter().take(MAX_PEERS_PER_REPLY) {
                    // Host names would need DNS, which is the adapter's; trackers in
                    // practice send addresses.
                    if let PeerAddr::Ip(addr) = peer.addr
                        && let Some(addr) = self.learn_peer(now, id, addr)
                        && starved
                        && let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id)
                    {
                        t.candidates.retry_now(addr, now);
                    }
                }
                self.connect_more(now, id);
            }
            Err(error) => {
                t.announcer.failed(url, &error, now);
                self.events.push_back(Event::TrackerError {
                    torrent: id,
                    url: url.to_string(),
                    error,
                });
                // The next URL is tried at once; after a failed round, a back-off.
                self.announce_due(now, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracker that did not answer.
    fn down() -> AnnounceError {
        AnnounceError::Timeout(Duration::from_secs(30))
    }

    fn reply(interval: u64) -> AnnounceResponse {
        AnnounceResponse {
            interval: Duration::from_secs(interval),
            min_interval: None,
            warning: None,
            tracker_id: None,
            complete: Some(3),
            incomplete: Some(4),
            peers: Vec::new(),
        }
    }

    #[test]
    fn tiers_fall_through_promote_and_back_off() {
        let mut rng = Rng::seed_from_u64(1);
        let tiers = vec![
            vec!["http://a/1".to_string(), "http://a/2".to_string()],
            vec!["udp://b".to_string()],
        ];
        let mut a = Announcer::new(&tiers, &mut rng);
        let t0 = Instant::now();
        assert_eq!(a.due(t0), None, "nothing before start");
        a.start(t0);
        let (first, ev) = a.due(t0).unwrap();
        assert_eq!(ev, Some(AnnounceEvent::Started));
        assert_eq!(a.due(t0), None, "one announce in flight at a time");
        a.failed(&first, &down(), t0);
        let (second, ev) = a.due(t0).unwrap();
        assert_ne!(first, second);
        assert_eq!(ev, Some(AnnounceEvent::Started));
        a.failed(&second, &down(), t0);
        let (third, _) = a.due(t0).unwrap();
        assert_eq!(third, "udp://b");
        a.failed(&third, &down(), t0);
        // Round failed: back off 15 s.
        assert_eq!(a.next_at(), Some(t0 + RETRY_BASE));
        let t1 = t0 + RETRY_BASE;
        let (url, _) = a.due(t1).unwrap();
        assert_eq!(url, first);
        a.failed(&url, &down(), t1);
        let (url, _) = a.due(t1).unwrap();
        a.succeeded(&url, &reply(1800), t1);
        assert_eq!(&*a.tiers[0][0].url, url, "promoted to the front");
        assert_eq!(a.next_at(), Some(t1 + Duration::from_secs(1800)));
        // Completed goes out at once, with no event afterwards.
        a.completed(t1);
        let (_, ev) = a.due(t1).unwrap();
        assert_eq!(ev, Some(AnnounceEvent::Completed));
        a.succeeded(&url, &reply(1), t1);
        let min = crate::tracker::MIN_ANNOUNCE_INTERVAL;
        assert_eq!(a.next_at(), Some(t1 + min), "clamped");
        let (_, ev) = a.due(t1 + min).unwrap();
        assert_eq!(ev, None);
        a.succeeded(&url, &reply(100), t1);
        assert_eq!(a.stop(), Some(url));
        assert_eq!(a.next_at(), None);
    }

    /// Every URL is found where it is; past [`INDEX_FROM`] URLs through the index.
    fn assert_index_matches(a: &Announcer) {
        let urls: usize = a.tiers.iter().map(Vec::len).sum();
        assert_eq!(
            a.index.as_ref().map(|i| i.len()),
            (urls > INDEX_FROM).then_some(urls)
        );
        for (t, tier) in a.tiers.iter().enumerate() {
            for (i, e) in tier.iter().enumerate() {
                assert_eq!(a.find(&e.url), Some((t, i)), "{}", e.url);
            }
        }
    }

    #[test]
    fn urls_are_kept_once_and_capped() {
        let mut rng = Rng::seed_from_u64(3);
        let url = |n: usize| format!("udp://t{n}:1");
        // A repeat inside a tier, one across tiers, a tier of repeats only, then far more
        // URLs than the cap.
        let mut tiers = vec![
            vec![url(0), url(1), url(0)],
            vec![url(1), url(2)],
            vec![url(2), url(0)],
        ];
        tiers.extend((3..3 * MAX_TRACKER_URLS).map(|n| vec![url(n)]));
        let a = Announcer::new(&tiers, &mut rng);
        let kept: Vec<&str> = a.tiers.iter().flatten().map(|e| &*e.url).collect();
        assert_eq!(kept.len(), MAX_TRACKER_URLS);
        assert_eq!(kept.iter().collect::<HashSet<_>>().len(), kept.len());
        assert_eq!(
            a.tiers.len(),
            MAX_TRACKER_URLS - 1,
            "the tier of repeats is gone"
        );
        assert_eq!(
            a.tiers[1].iter().map(|e| &*e.url).collect::<Vec<_>>(),
            [url(2)]
        );
        assert_eq!(&*a.tiers.last().unwrap()[0].url, url(MAX_TRACKER_URLS - 1));
        assert_index_matches(&a);
    }

    #[test]
    fn replies_find_their_url_after_promotions() {
        // Looked for one by one, and through the index.
        replies_find_their_url_after_promotions_among(6);
        replies_find_their_url_after_promotions_among(2 * INDEX_FROM);
    }

    fn replies_find_their_url_after_promotions_among(urls: usize) {
        let mut rng = Rng::seed_from_u64(5);
        let tier: Vec<String> = (0..urls).map(|n| format!("http://t{n}/announce")).collect();
        let mut a = Announcer::new(&[tier, vec!["udp://u:1".into()]], &mut rng);
        let t0 = Instant::now();
        a.start(t0);
        // Three fail, the fourth answers and moves to the front of its tier.
        let mut failed = Vec::new();
        for _ in 0..3 {
            let (url, _) = a.due(t0).unwrap();
            a.failed(&url, &down(), t0);
            failed.push(url);
        }
        let (good, _) = a.due(t0).unwrap();
        a.succeeded(&good, &reply(60), t0);
        assert_eq!(&*a.tiers[0][0].url, good);
        assert_index_matches(&a);
        // The failures stay with their URLs, the answer with its own.
        for url in &failed {
            let (t, i) = a.find(url).unwrap();
            assert_eq!(a.tiers[t][i].last_error, Some(down()), "{url}");
        }
        assert_eq!(a.tiers[0][0].seeders, Some(3));
        assert_eq!(a.tiers[0][0].last_error, None);
        // A late reply from a URL now elsewhere in the tier updates that URL only.
        a.failed(&failed[1], &AnnounceError::Status(500), t0);
        let (t, i) = a.find(&failed[1]).unwrap();
        assert_eq!(a.tiers[t][i].last_error, Some(AnnounceError::Status(500)));
        assert_eq!(a.find("http://nowhere/announce"), None);
    }

    #[test]
    fn no_trackers_no_deadline() {
        let mut rng = Rng::seed_from_u64(1);
        let mut a = Announcer::new(&[], &mut rng);
        let t0 = Instant::now();
        a.start(t0);
        assert_eq!(a.next_at(), None);
        assert_eq!(a.due(t0), None);
    }

    #[test]
    fn no_stopped_when_started_never_got_through() {
        let mut rng = Rng::seed_from_u64(1);
        let mut a = Announcer::new(&[vec!["http://x".to_string()]], &mut rng);
        let t0 = Instant::now();
        a.start(t0);
        let (url, _) = a.due(t0).unwrap();
        a.failed(&url, &down(), t0);
        assert_eq!(a.stop(), None);
    }
}
