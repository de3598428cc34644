//! A sans-IO client for one UDP tracker: connect, then announce or scrape, retransmitting on
//! the BEP 15 schedule and reusing the connection id while it is valid.
//!
//! The adapter owns the socket and the clock. It starts a [`UdpJob`], sends whatever
//! [`UdpTrackerClient::poll_transmit`] returns, feeds received datagrams to
//! [`UdpTrackerClient::handle_datagram`], sleeps until [`UdpTrackerClient::poll_timeout`] and
//! then calls [`UdpTrackerClient::handle_timeout`]; results come out of
//! [`UdpTrackerClient::poll_event`]. Transaction ids are drawn from the caller's [`Rng`].
//!
//! ```
//! use std::time::Instant;
//! use bt_proto::rng::Rng;
//! use bt_proto::tracker::udp::{AddressFamily, Request, UdpJob, UdpTrackerClient};
//! # use bt_proto::{InfoHash, PeerId};
//! # let announce = bt_proto::tracker::AnnounceRequest {
//! #     info_hash: InfoHash([1; 20]), peer_id: PeerId([2; 20]), port: 6881, uploaded: 0,
//! #     downloaded: 0, left: 10, event: None, numwant: None, key: None, tracker_id: None,
//! #     ip: None,
//! # };
//!
//! let mut rng = Rng::seed_from_u64(1);
//! let now = Instant::now(); // the adapter's clock
//! let mut client = UdpTrackerClient::new(AddressFamily::V4);
//! client.start(UdpJob::Announce(announce), now, &mut rng).unwrap();
//! let packet = client.poll_transmit().unwrap();
//! assert!(matches!(Request::decode(&packet), Ok(Request::Connect(_))));
//! assert_eq!(client.poll_timeout(), Some(now + std::time::Duration::from_secs(15)));
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    Action, AddressFamily, AnnounceRequest, AnnounceResponse, ConnectRequest, ConnectionId,
    MAX_SCRAPE_HASHES, Response, ScrapeRequest, TransactionId, UdpError, connection_id_valid,
    decode_reply, timeout_for_attempt,
};
use crate::InfoHash;
use crate::rng::Rng;
use crate::tracker::ScrapeStats;

/// What to ask the tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpJob {
    /// Announce (the transport-independent request; see
    /// [`AnnounceRequest::from_announce`] for what UDP keeps of it).
    Announce(crate::tracker::AnnounceRequest),
    /// Scrape 1 to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape(Vec<InfoHash>),
}

impl UdpJob {
    fn action(&self) -> Action {
        match self {
            UdpJob::Announce(_) => Action::Announce,
            UdpJob::Scrape(_) => Action::Scrape,
        }
    }
}

/// Why a job ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The tracker sent an error packet.
    #[error("tracker error: {0}")]
    Tracker(String),
    /// No answer after the last retransmit (BEP 15: attempt 8, about 2 hours in all).
    #[error("tracker did not answer")]
    TimedOut,
    /// A reply to our request that could not be decoded.
    #[error("bad reply: {0}")]
    Protocol(UdpError),
    /// A scrape reply with another number of entries than hashes asked.
    #[error("scrape asked for {asked} torrents, reply has {got}")]
    ScrapeCountMismatch {
        /// Hashes in the request.
        asked: usize,
        /// Entries in the reply.
        got: usize,
    },
    /// A scrape job with no hashes, or more than [`MAX_SCRAPE_HASHES`].
    #[error("a UDP scrape takes 1 to {MAX_SCRAPE_HASHES} info-hashes, not {0}")]
    BadScrapeSize(usize),
}

/// The end of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The announce was answered.
    Announced(AnnounceResponse),
    /// The scrape was answered: counts per requested torrent, in request order.
    Scraped(Vec<(InfoHash, ScrapeStats)>),
    /// The job failed.
    Failed(ClientError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for a connect response.
    Connecting,
    /// Waiting for the job's own response.
    Requesting,
}

#[derive(Debug)]
struct Pending {
    job: UdpJob,
    stage: Stage,
    transaction: TransactionId,
    /// BEP 15's `n`: retransmissions so far for this job's current request.
    attempt: u32,
    deadline: Instant,
    /// The bytes last sent, resent as they are on timeout.
    packet: Vec<u8>,
}

/// The exchange with one UDP tracker. One job at a time: starting a job abandons the
/// previous one (a `stopped` announce supersedes a pending regular one).
#[derive(Debug)]
pub struct UdpTrackerClient {
    family: AddressFamily,
    connection: Option<(ConnectionId, Instant)>,
    pending: Option<Pending>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl UdpTrackerClient {
    /// A client for a tracker reached over a socket of `family` (it decides how announce
    /// replies list peers).
    pub fn new(family: AddressFamily) -> Self {
        UdpTrackerClient {
            family,
            connection: None,
            pending: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts a job: sends the request if the connection id is still valid at `now`, or
    /// a connect request first.
    pub fn start(&mut self, job: UdpJob, now: Instant, rng: &mut Rng) -> Result<(), ClientError> {
        if let UdpJob::Scrape(hashes) = &job
            && !(1..=MAX_SCRAPE_HASHES).contains(&hashes.len())
        {
            return Err(ClientError::BadScrapeSize(hashes.len()));
        }
        let mut pending = Pending {
            job,
            stage: Stage::Connecting,
            transaction: TransactionId(0),
            attempt: 0,
            deadline: now,
            packet: Vec::new(),
        };
        self.prepare(&mut pending, now, rng);
        self.send(pending, now);
        Ok(())
    }

    /// Builds the packet for the pending job's next request, with a fresh transaction id:
    /// the job's request if we hold a valid connection id, else a connect request.
    fn prepare(&self, p: &mut Pending, now: Instant, rng: &mut Rng) {
        p.transaction = TransactionId(rng.next_u32());
        match self.connection {
            Some((id, obtained)) if connection_id_valid(obtained, now) => {
                p.stage = Stage::Requesting;
                p.packet = match &p.job {
                    UdpJob::Announce(req) => {
                        AnnounceRequest::from_announce(id, p.transaction, req).encode()
                    }
                    UdpJob::Scrape(hashes) => ScrapeRequest {
                        connection_id: id,
                        transaction_id: p.transaction,
                        info_hashes: hashes.clone(),
                    }
                    .encode(),
                };
            }
            _ => {
                p.stage = Stage::Connecting;
                p.packet = ConnectRequest {
                    transaction_id: p.transaction,
                }
                .encode();
            }
        }
    }

    /// Queues the pending packet and arms its timer, or gives up past the last attempt.
    fn send(&mut self, mut p: Pending, now: Instant) {
        match timeout_for_attempt(p.attempt) {
            Some(timeout) => {
                p.deadline = now + timeout;
                self.transmit.push_back(p.packet.clone());
                self.pending = Some(p);
            }
            None => {
                self.pending = None;
                self.events.push_back(Event::Failed(ClientError::TimedOut));
            }
        }
    }

    fn fail(&mut self, error: ClientError) {
        self.pending = None;
        self.events.push_back(Event::Failed(error));
    }

    /// Retransmits when the deadline has passed (a new connect first if the connection id
    /// has expired meanwhile), or reports [`ClientError::TimedOut`] after the last attempt.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        if now < p.deadline {
            self.pending = Some(p);
            return;
        }
        p.attempt += 1;
        let expired = self
            .connection
            .is_none_or(|(_, obtained)| !connection_id_valid(obtained, now));
        if p.stage == Stage::Requesting && expired {
            self.connection = None;
            self.prepare(&mut p, now, rng);
        }
        self.send(p, now);
    }

    /// Handles a datagram from the tracker. Packets for other transactions (late replies to
    /// earlier attempts, strays) and packets too short to carry a transaction id are ignored;
    /// a malformed reply to our request fails the job.
    pub fn handle_datagram(&mut self, packet: &[u8], now: Instant, rng: &mut Rng) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        let expected = match p.stage {
            Stage::Connecting => Action::Connect,
            Stage::Requesting => p.job.action(),
        };
        let reply = match decode_reply(packet, self.family, p.transaction, expected) {
            Ok(reply) => reply,
            Err(UdpError::TransactionMismatch { .. })
            | Err(UdpError::TooShort { min: 1..=8, .. }) => {
                self.pending = Some(p);
                return;
            }
            Err(e) => return self.fail(ClientError::Protocol(e)),
        };
        match reply {
            Response::Connect(c) => {
                self.connection = Some((c.connection_id, now));
                p.attempt = 0;
                self.prepare(&mut p, now, rng);
                self.send(p, now);
            }
            Response::Announce(a) => self.events.push_back(Event::Announced(a)),
            Response::Scrape(s) => {
                let UdpJob::Scrape(hashes) = p.job else {
                    // decode_reply checked the action against the job.
                    return self.fail(ClientError::Protocol(UdpError::UnexpectedAction {
                        expected,
                        found: Action::Scrape,
                    }));
                };
                if s.stats.len() != hashes.len() {
                    return self.fail(ClientError::ScrapeCountMismatch {
                        asked: hashes.len(),
                        got: s.stats.len(),
                    });
                }
                self.events
                    .push_back(Event::Scraped(hashes.into_iter().zip(s.stats).collect()));
            }
            Response::Error(e) => {
                // The tracker may have refused our connection id; get a fresh one next time.
                self.connection = None;
                self.fail(ClientError::Tracker(e.message));
            }
        }
    }

    /// The next datagram to send to the tracker.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next finished job.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`UdpTrackerClient::handle_timeout`]; `None` when no job is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// Whether no job is pending.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CompactPeers, ConnectResponse, ErrorResponse, Request, ScrapeResponse};
    use super::*;
    use crate::PeerId;
    use crate::rng::Rng;
    use crate::tracker::AnnounceEvent;
    use proptest::prelude::*;
    use std::time::Duration;

    fn announce_job() -> UdpJob {
        UdpJob::Announce(crate::tracker::AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([2; 20]),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 10,
            event: Some(AnnounceEvent::Started),
            numwant: None,
            key: Some(9),
            tracker_id: None,
            ip: None,
        })
    }

    fn sent(c: &mut UdpTrackerClient) -> Request {
        let p = c.poll_transmit().expect("a packet to send");
        assert_eq!(c.poll_transmit(), None, "one packet at a time");
        Request::decode(&p).unwrap()
    }

    fn connect_txn(r: &Request) -> TransactionId {
        match r {
            Request::Connect(c) => c.transaction_id,
            other => panic!("expected connect, got {other:?}"),
        }
    }

    fn connected(conn: u64, txn: TransactionId) -> Vec<u8> {
        ConnectResponse {
            transaction_id: txn,
            connection_id: ConnectionId(conn),
        }
        .encode()
    }

    fn announced(txn: TransactionId) -> AnnounceResponse {
        AnnounceResponse {
            transaction_id: txn,
            interval: Duration::from_secs(1800),
            leechers: 1,
            seeders: 2,
            peers: CompactPeers::V4(vec!["10.0.0.1:6881".parse().unwrap()]),
        }
    }

    #[test]
    fn connect_then_announce_then_reuse_connection() {
        let mut rng = Rng::seed_from_u64(3);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V4);
        c.start(announce_job(), t0, &mut rng).unwrap();
        let txn = connect_txn(&sent(&mut c));

        c.handle_datagram(&connected(77, txn), t0 + Duration::from_secs(1), &mut rng);
        let Request::Announce(a) = sent(&mut c) else {
            panic!()
        };
        assert_eq!(a.connection_id, ConnectionId(77));
        assert_eq!(a.key, 9);
        assert_ne!(
            a.transaction_id, txn,
            "each request has its own transaction id"
        );
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(16)));

        let reply = announced(a.transaction_id);
        c.handle_datagram(&reply.encode(), t0 + Duration::from_secs(2), &mut rng);
        assert_eq!(c.poll_event(), Some(Event::Announced(reply)));
        assert!(c.is_idle());
        assert_eq!(c.poll_timeout(), None);

        // Within a minute of the connect response, the id is reused.
        c.start(announce_job(), t0 + Duration::from_secs(60), &mut rng)
            .unwrap();
        assert!(
            matches!(sent(&mut c), Request::Announce(a) if a.connection_id == ConnectionId(77))
        );
        // After it, a new connect comes first.
        c.start(announce_job(), t0 + Duration::from_secs(61), &mut rng)
            .unwrap();
        connect_txn(&sent(&mut c));
    }

    #[test]
    fn retransmits_on_schedule_then_gives_up() {
        let mut rng = Rng::seed_from_u64(4);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V4);
        c.start(announce_job(), t0, &mut rng).unwrap();
        let first = c.poll_transmit().unwrap();
        let mut now = t0;
        for n in 0..=8u32 {
            let deadline = c.poll_timeout().unwrap();
            assert_eq!(deadline - now, timeout_for_attempt(n).unwrap());
            // Early timers do nothing.
            c.handle_timeout(deadline - Duration::from_millis(1), &mut rng);
            assert_eq!(c.poll_transmit(), None);
            now = deadline;
            c.handle_timeout(now, &mut rng);
            if n < 8 {
                assert_eq!(
                    c.poll_transmit(),
                    Some(first.clone()),
                    "same request resent"
                );
            }
        }
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.poll_event(), Some(Event::Failed(ClientError::TimedOut)));
        assert!(c.is_idle());
        // 15 * (2^9 - 1) seconds in all.
        assert_eq!(now - t0, Duration::from_secs(15 * 511));
    }

    #[test]
    fn retransmit_after_connection_expiry_reconnects() {
        let mut rng = Rng::seed_from_u64(5);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V4);
        c.start(announce_job(), t0, &mut rng).unwrap();
        let txn = connect_txn(&sent(&mut c));
        c.handle_datagram(&connected(1, txn), t0, &mut rng);
        assert!(matches!(sent(&mut c), Request::Announce(_)));
        // 15 s: the id is still good, resend the announce.
        c.handle_timeout(t0 + Duration::from_secs(15), &mut rng);
        assert!(matches!(sent(&mut c), Request::Announce(_)));
        // 45 s: still good.
        c.handle_timeout(t0 + Duration::from_secs(45), &mut rng);
        assert!(matches!(sent(&mut c), Request::Announce(_)));
        // 105 s: expired, connect again; the backoff keeps growing.
        c.handle_timeout(t0 + Duration::from_secs(105), &mut rng);
        connect_txn(&sent(&mut c));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(105 + 120)));
    }

    #[test]
    fn stray_and_hostile_datagrams() {
        let mut rng = Rng::seed_from_u64(6);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V4);
        c.start(announce_job(), t0, &mut rng).unwrap();
        let txn = connect_txn(&sent(&mut c));
        // Wrong transaction, or too short to tell: ignored.
        c.handle_datagram(&connected(1, TransactionId(txn.0 ^ 1)), t0, &mut rng);
        c.handle_datagram(&[0, 0, 0], t0, &mut rng);
        assert_eq!(c.poll_event(), None);
        assert!(!c.is_idle());
        // Right transaction, wrong kind: the job fails.
        c.handle_datagram(&announced(txn).encode(), t0, &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(Event::Failed(ClientError::Protocol(
                UdpError::UnexpectedAction {
                    expected: Action::Connect,
                    found: Action::Announce
                }
            )))
        );
        assert!(c.is_idle());
        // Nothing pending: ignored.
        c.handle_datagram(&connected(1, txn), t0, &mut rng);
        assert_eq!(c.poll_transmit(), None);
    }

    #[test]
    fn tracker_error_fails_job_and_forgets_connection() {
        let mut rng = Rng::seed_from_u64(7);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V4);
        c.start(announce_job(), t0, &mut rng).unwrap();
        let txn = connect_txn(&sent(&mut c));
        c.handle_datagram(&connected(1, txn), t0, &mut rng);
        let Request::Announce(a) = sent(&mut c) else {
            panic!()
        };
        let err = ErrorResponse {
            transaction_id: a.transaction_id,
            message: "unregistered torrent".into(),
        };
        c.handle_datagram(&err.encode(), t0, &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(Event::Failed(ClientError::Tracker(
                "unregistered torrent".into()
            )))
        );
        c.start(announce_job(), t0 + Duration::from_secs(1), &mut rng)
            .unwrap();
        connect_txn(&sent(&mut c));
    }

    #[test]
    fn scrape_pairs_counts_with_hashes() {
        let mut rng = Rng::seed_from_u64(8);
        let t0 = Instant::now();
        let mut c = UdpTrackerClient::new(AddressFamily::V6);
        let hashes = vec![InfoHash([1; 20]), InfoHash([2; 20])];
        assert_eq!(
            c.start(UdpJob::Scrape(vec![]), t0, &mut rng),
            Err(ClientError::BadScrapeSize(0))
        );
        assert_eq!(
            c.start(UdpJob::Scrape(vec![InfoHash([0; 20]); 75]), t0, &mut rng),
            Err(ClientError::BadScrapeSize(75))
        );
        c.start(UdpJob::Scrape(hashes.clone()), t0, &mut rng)
            .unwrap();
        let txn = connect_txn(&sent(&mut c));
        c.handle_datagram(&connected(5, txn), t0, &mut rng);
        let Request::Scrape(s) = sent(&mut c) else {
            panic!()
        };
        assert_eq!(s.info_hashes, hashes);
        let stats = |n| ScrapeStats {
            seeders: n,
            completed: n,
            leechers: n,
        };
        let reply = ScrapeResponse {
            transaction_id: s.transaction_id,
            stats: vec![stats(1), stats(2)],
        };
        c.handle_datagram(&reply.encode(), t0, &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(Event::Scraped(vec![
                (hashes[0], stats(1)),
                (hashes[1], stats(2))
            ]))
        );

        c.start(UdpJob::Scrape(hashes), t0, &mut rng).unwrap();
        let Request::Scrape(s) = sent(&mut c) else {
            panic!()
        };
        let short = ScrapeResponse {
            transaction_id: s.transaction_id,
            stats: vec![stats(1)],
        };
        c.handle_datagram(&short.encode(), t0, &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(Event::Failed(ClientError::ScrapeCountMismatch {
                asked: 2,
                got: 1
            }))
        );
    }

    #[test]
    fn same_seed_same_packets() {
        let run = || {
            let mut rng = Rng::seed_from_u64(42);
            let t0 = Instant::now();
            let mut c = UdpTrackerClient::new(AddressFamily::V4);
            c.start(announce_job(), t0, &mut rng).unwrap();
            let first = c.poll_transmit().unwrap();
            let txn = connect_txn(&Request::decode(&first).unwrap());
            c.handle_datagram(&connected(3, txn), t0, &mut rng);
            (first, c.poll_transmit().unwrap())
        };
        assert_eq!(run(), run());
    }

    proptest! {
        #[test]
        fn hostile_datagrams_never_panic(
            seed in any::<u64>(),
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..10),
            steps in proptest::collection::vec(0u64..5000, 0..10),
        ) {
            let mut rng = Rng::seed_from_u64(seed);
            let t0 = Instant::now();
            let mut c = UdpTrackerClient::new(AddressFamily::V4);
            c.start(announce_job(), t0, &mut rng).unwrap();
            let mut now = t0;
            for (d, s) in datagrams.iter().zip(steps.iter().chain(std::iter::repeat(&0))) {
                now += Duration::from_secs(*s);
                c.handle_datagram(d, now, &mut rng);
                c.handle_timeout(now, &mut rng);
                // A pending job always has a timer; an idle client has none.
                prop_assert_eq!(c.poll_timeout().is_some(), !c.is_idle());
                while c.poll_transmit().is_some() {}
            }
        }
    }
}
