//! Addresses to connect to, and when to try each again.
//!
//! A torrent learns addresses from trackers and the user. Each one is a [`Candidate`] with
//! the time of its next attempt: a failed dial backs off (and the address is forgotten after
//! [`MAX_CONNECT_FAILURES`]); a closed connection is redialled soon if it worked and later
//! each time it keeps closing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::Bound;
use std::time::{Duration, Instant};

use super::connection::canonical;
use super::fetching::swarm_of;
use super::timers::{Timer, TorrentTimer};
use super::{DIAL_RETRY_INTERVAL, Session, TorrentId, Transport, Transports};
use crate::rng::Rng;

/// Addresses remembered per torrent; tracker replies beyond this are dropped, so a hostile
/// tracker cannot grow memory without bound.
pub const MAX_KNOWN_PEERS: usize = 2000;
/// Addresses taken from one tracker reply: we ask for [`super::DEFAULT_NUMWANT`], and a
/// reply far larger is a flood that would otherwise replace every address we know.
pub const MAX_PEERS_PER_REPLY: usize = 200;
/// Failed connection attempts after which an address is forgotten.
pub const MAX_CONNECT_FAILURES: u32 = 5;
/// Wait before retrying an address after its first failure; doubled per failure.
pub const RECONNECT_BASE: Duration = Duration::from_secs(10);
/// Wait, at most, before redialling a peer that took our connection and closed it before
/// its handshake (a peer at its connection limit does that; its slots free up as its
/// peers complete or leave). The wait doubles from [`RECONNECT_BASE`] up to this: a full
/// seed is tried again within a minute, as libtorrent's `min_reconnect_time` does, rather
/// than backed off for many minutes and forgotten like an address nobody listens at, which
/// left the simulator's seed idle for minutes while hundreds of leechers needed it.
pub const BUSY_RETRY_MAX: Duration = Duration::from_secs(60);
/// How often, at most, a torrent that wants pieces none of its peers has calls back the
/// peers that were too full to take it (at a choke round): twice as often as
/// their own waits at most, so a peer that keeps refusing us is dialled twice a minute.
pub const STUCK_REDIAL_EVERY: Duration = Duration::from_secs(30);
/// Refusals before the handshake after which an address is forgotten: at [`BUSY_RETRY_MAX`]
/// apart, about twenty minutes of a peer that never lets us in (it may not serve the
/// torrent at all); a tracker or peer exchange that names it again brings it back.
pub const MAX_BUSY_REFUSALS: u32 = 20;
/// Wait before redialling an address after the first close of a working (handshaken)
/// connection to it: a peer that restarted or lost a NAT mapping comes back at once, and a
/// leecher whose only seed dropped it is not left idle; repeated closes back off (see
/// [`RECONNECT_AFTER_CLOSE_MAX`]), so this is no load on a peer that closed on purpose.
pub const RECONNECT_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// Each further close of an address's connections doubles its wait, up to this. A peer that
/// keeps dropping us (full, or it does not want us) costs a handshake every half hour at
/// worst: it must not be hammered, yet a peer that changes its mind is not lost for good.
pub const RECONNECT_AFTER_CLOSE_MAX: Duration = Duration::from_secs(30 * 60);
/// A connection that lasted this long (or delivered blocks), not snubbed and not closed by us
/// for the peer's fault, worked: its close forgives the address's earlier closes, so the
/// next redial is [`RECONNECT_AFTER_CLOSE`] again. A minute is far beyond what a peer that
/// drops us on sight (a full client, or one that does not want us) gives.
pub const CONNECTION_PROVEN_AFTER: Duration = Duration::from_secs(60);
/// Closes counted when we closed a connection for breaking the protocol (a malformed message,
/// the slip limit): such a peer will likely do it again, so it starts three doublings up the
/// back-off (40 s), while a one-off race still gets another chance within a minute.
pub const PROTOCOL_ERROR_CLOSES: u32 = 4;
/// A torrent with every wanted piece needs nothing from its peers (leechers dial it), so it
/// redials a closed peer after at least this long; it calls every known peer back at once
/// when it wants pieces again.
pub const RECONNECT_WHEN_DONE: Duration = Duration::from_secs(60);

/// An address we may connect to.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub next_attempt: Instant,
    pub failures: u32,
    /// Closes of working connections since the last one that proved itself, each doubling the
    /// wait before the next dial (see [`RECONNECT_AFTER_CLOSE`]).
    pub closes: u32,
    /// A connection of ours to it exists (dialling, handshaking or active).
    pub connected: bool,
    /// Due, but its host has as many connections as one host may (often one it opened to
    /// us), or it is a seed and we are one: left out of the due addresses until one of
    /// those connections closes ([`Candidates::host_freed`]) or the torrent wants pieces
    /// again ([`Candidates::retry_all`]), rather than looked at and refused at every dial.
    pub parked: bool,
    /// It had every piece when our last connection to it closed. A torrent that has every
    /// piece it wants does not dial it: two seeds have nothing to trade, and each such
    /// connection is a handshake, two piece summaries and a close.
    pub seed: bool,
    /// It did not answer our MSE handshake: dialled in plaintext from now on.
    pub plaintext_only: bool,
    /// Times in a row it took our connection and closed it before its handshake.
    pub busy: u32,
    /// It is known to speak uTP: a peer exchange said so, or it reached us over uTP.
    pub speaks_utp: bool,
    /// It did not answer our uTP dial: dialled over TCP from now on.
    pub refused_utp: bool,
}

/// What dialing makes of a due address, for [`Candidates::take_due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Dial it.
    Dial,
    /// Not now (e.g. it speaks only plaintext and encryption is required).
    Skip,
    /// Its host has all the connections one host may: it is parked until one of them closes.
    HostFull,
    /// It is a seed and so are we: it is parked until we want pieces again.
    Seed,
}

/// How an established connection to a known address ended, for [`Candidates::closed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndedConnection {
    /// How long it was open.
    pub lasted: Duration,
    /// Whether it delivered blocks we wanted: a peer serving us is worth calling back
    /// soon however short its connections (a flaky link, a client that rotates them).
    pub delivered: bool,
    /// We closed it because the peer broke the protocol.
    pub misbehaved: bool,
    /// Whether it delivered nothing when asked (snubbed) or went silent (inactive), so it
    /// did not work however long it lasted.
    pub useless: bool,
    /// Whether the torrent has every wanted piece.
    pub torrent_done: bool,
    /// Whether the peer had every piece.
    pub peer_seed: bool,
}

impl Candidate {
    fn new(now: Instant) -> Self {
        Candidate {
            next_attempt: now,
            failures: 0,
            busy: 0,
            closes: 0,
            connected: false,
            parked: false,
            seed: false,
            plaintext_only: false,
            speaks_utp: false,
            refused_utp: false,
        }
    }

    /// Records the close of a working connection to this address and schedules the next
    /// dial: soon after a connection that worked or a first close, then doubling per close.
    fn closed(&mut self, now: Instant, how: EndedConnection) {
        self.seed = how.peer_seed;
        let worked = how.lasted >= CONNECTION_PROVEN_AFTER || how.delivered;
        if worked && !how.misbehaved && !how.useless {
            self.closes = 0;
        }
        let weight = if how.misbehaved {
            PROTOCOL_ERROR_CLOSES
        } else {
            1
        };
        self.closes = self.closes.saturating_add(weight);
        // 2^20 times the base is far past the cap; the shift stays in range.
        let doublings = self.closes.saturating_sub(1).min(20);
        let mut wait = RECONNECT_AFTER_CLOSE
            .saturating_mul(1 << doublings)
            .min(RECONNECT_AFTER_CLOSE_MAX);
        if how.torrent_done {
            wait = wait.max(RECONNECT_WHEN_DONE);
        }
        self.next_attempt = now + wait;
    }
}

/// The addresses one torrent may dial.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    by_addr: BTreeMap<SocketAddr, Candidate>,
    /// Every address with no connection, by its next attempt: what is due, and when the
    /// next one is, without looking at each of up to [`MAX_KNOWN_PEERS`] addresses. Dialing
    /// runs after every closed connection and on every dial timer; in the simulator's swarm
    /// of a thousand nodes walking them all was about a seventh of the run.
    waiting: BTreeSet<(Instant, SocketAddr)>,
}

/// Above every address a peer can have (a multicast one, which [`dialable`] refuses): the
/// end of a range of [`Candidates::waiting`] up to an instant.
const PAST_EVERY_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V6(Ipv6Addr::from_bits(u128::MAX)), u16::MAX);

impl Candidate {
    /// Its entry in [`Candidates::waiting`], if it has no connection and is not parked.
    fn waiting_key(&self, addr: SocketAddr) -> Option<(Instant, SocketAddr)> {
        (!self.connected && !self.parked).then_some((self.next_attempt, addr))
    }
}

impl Candidates {
    /// Remembers an address, due at once; false if it was known already. A full list makes
    /// room by forgetting an address with no connection, one that failed most first (ties
    /// broken by `rng`), so addresses from one hostile source cannot lock out later ones;
    /// false if every address is connected.
    pub fn learn(&mut self, addr: SocketAddr, now: Instant, rng: &mut Rng) -> bool {
        if self.by_addr.contains_key(&addr) {
            return false;
        }
        if self.by_addr.len() >= MAX_KNOWN_PEERS {
            let Some(victim) = self.eviction_victim(rng) else {
                return false;
            };
            self.remove(victim);
        }
        let c = Candidate::new(now);
        self.waiting.extend(c.waiting_key(addr));
        self.by_addr.insert(addr, c);
        true
    }

    /// Changes the candidate at `addr` with `f`, keeping [`Candidates::waiting`] in step;
    /// `None` if the address is not known.
    fn update<T>(&mut self, addr: SocketAddr, f: impl FnOnce(&mut Candidate) -> T) -> Option<T> {
        let c = self.by_addr.get_mut(&addr)?;
        let before = c.waiting_key(addr);
        let out = f(c);
        let after = c.waiting_key(addr);
        if before != after {
            if let Some(k) = before {
                self.waiting.remove(&k);
            }
            self.waiting.extend(after);
        }
        Some(out)
    }

    /// Forgets the address `addr`.
    fn remove(&mut self, addr: SocketAddr) {
        if let Some(c) = self.by_addr.remove(&addr)
            && let Some(k) = c.waiting_key(addr)
        {
            self.waiting.remove(&k);
        }
    }

    /// Builds [`Candidates::waiting`] again, after a change to many addresses at once.
    fn reindex(&mut self) {
        self.waiting = self
            .by_addr
            .iter()
            .filter_map(|(a, c)| c.waiting_key(*a))
            .collect();
    }

    fn eviction_victim(&self, rng: &mut Rng) -> Option<SocketAddr> {
        let worst = self
            .by_addr
            .values()
            .filter(|c| !c.connected)
            .map(|c| c.failures)
            .max()?;
        let victims: Vec<SocketAddr> = self
            .by_addr
            .iter()
            .filter(|(_, c)| !c.connected && c.failures == worst)
            .map(|(a, _)| *a)
            .collect();
        victims.get(rng.index(victims.len())).copied()
    }

    /// Makes an address due now unless a connection to it exists: the user asking overrides
    /// the back-off.
    pub fn retry_now(&mut self, addr: SocketAddr, now: Instant) {
        self.update(addr, |c| {
            if !c.connected {
                c.next_attempt = now;
            }
        });
    }

    /// Makes every address due now, the parked ones too (the torrent starts, or wants
    /// pieces again).
    pub fn retry_all(&mut self, now: Instant) {
        for c in self.by_addr.values_mut() {
            c.next_attempt = c.next_attempt.min(now);
            c.parked = false;
        }
        self.reindex();
    }

    /// Makes due now every address that refused us before its handshake (full, see
    /// [`Candidates::busy`]) and waits `horizon` or less; those that dropped us after it (a
    /// choice, see [`RECONNECT_AFTER_CLOSE`]) or never answered wait on.
    pub fn retry_busy_within(&mut self, now: Instant, horizon: Duration) {
        for c in self.by_addr.values_mut() {
            if c.busy > 0 && c.next_attempt <= now + horizon {
                c.next_attempt = c.next_attempt.min(now);
            }
        }
        self.reindex();
    }

    /// Up to `budget` addresses due at `now` with no connection and allowed by `verdict`,
    /// marked connected; and whether more such addresses are left for want of budget.
    /// Addresses found [`Verdict::HostFull`] or [`Verdict::Seed`] are parked.
    pub fn take_due(
        &mut self,
        now: Instant,
        budget: usize,
        mut verdict: impl FnMut(SocketAddr, &Candidate) -> Verdict,
    ) -> (Vec<SocketAddr>, bool) {
        let mut to_park = Vec::new();
        let mut allowed = |addr: SocketAddr, c: &Candidate| match verdict(addr, c) {
            Verdict::Dial => true,
            Verdict::Skip => false,
            Verdict::HostFull | Verdict::Seed => {
                to_park.push(addr);
                false
            }
        };
        let taken = if budget == 0 {
            // Nothing to take, only whether anything is left: the first allowed address in
            // any order says so (refusals before it were made on the same counts), without
            // sorting every due address. A full torrent asks this after every close.
            let more = self
                .waiting
                .range(..=(now, PAST_EVERY_ADDRESS))
                .any(|(_, a)| self.by_addr.get(a).is_some_and(|c| allowed(*a, c)));
            (Vec::new(), more)
        } else {
            self.take_due_in_order(now, budget, allowed)
        };
        for addr in to_park {
            self.update(addr, |c| c.parked = true);
        }
        taken
    }

    /// [`Candidates::take_due`] with a budget: the due addresses in address order.
    fn take_due_in_order(
        &mut self,
        now: Instant,
        budget: usize,
        mut allowed: impl FnMut(SocketAddr, &Candidate) -> bool,
    ) -> (Vec<SocketAddr>, bool) {
        // Looked at in address order, as the addresses themselves are kept. A heap, not a
        // sort: a torrent knows up to [`MAX_KNOWN_PEERS`] addresses, many of them due, and
        // takes only the first few allowed.
        let mut waiting: BinaryHeap<Reverse<SocketAddr>> = self
            .waiting
            .range(..=(now, PAST_EVERY_ADDRESS))
            .map(|(_, a)| Reverse(*a))
            .collect();
        let mut due = Vec::new();
        while let Some(Reverse(addr)) = waiting.pop() {
            if due.len() > budget {
                break;
            }
            if self.by_addr.get(&addr).is_some_and(|c| allowed(addr, c)) {
                due.push(addr);
            }
        }
        let more = due.len() > budget;
        due.truncate(budget);
        for addr in &due {
            self.update(*addr, |c| c.connected = true);
        }
        (due, more)
    }

    /// A connection to host `ip` closed: its parked addresses are due again.
    pub fn host_freed(&mut self, ip: IpAddr) {
        let from = SocketAddr::new(ip, 0);
        let parked = self
            .by_addr
            .range_mut(from..)
            .take_while(|(a, _)| a.ip() == ip)
            .filter(|(_, c)| c.parked);
        for (addr, c) in parked {
            c.parked = false;
            self.waiting.extend(c.waiting_key(*addr));
        }
    }

    /// The earliest attempt after `now` of an address with no connection.
    pub fn next_attempt_after(&self, now: Instant) -> Option<Instant> {
        self.waiting
            .range((Bound::Excluded((now, PAST_EVERY_ADDRESS)), Bound::Unbounded))
            .next()
            .map(|(t, _)| *t)
    }

    /// The earliest next attempt of an address with no connection.
    #[cfg(test)]
    pub fn next_attempt(&self) -> Option<Instant> {
        self.by_addr
            .values()
            .filter(|c| !c.connected)
            .map(|c| c.next_attempt)
            .min()
    }

    /// A dial to `addr` failed before its handshake: back off, and forget the address after
    /// [`MAX_CONNECT_FAILURES`].
    pub fn dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        let failed = self.update(addr, |c| {
            c.connected = false;
            c.failures += 1;
            c.next_attempt = now + RECONNECT_BASE * (1u32 << c.failures.min(8));
            c.failures
        });
        if failed.is_some_and(|f| f >= MAX_CONNECT_FAILURES) {
            self.remove(addr);
        }
    }

    /// `addr` took our connection and closed it before its handshake finished: a peer that
    /// is there but full (see [`BUSY_RETRY_MAX`]); forgotten after [`MAX_BUSY_REFUSALS`].
    pub fn busy(&mut self, addr: SocketAddr, now: Instant) {
        let refusals = self.update(addr, |c| {
            c.connected = false;
            c.busy += 1;
            // 2^6 times the base is past the cap; the shift stays in range.
            let wait = RECONNECT_BASE.saturating_mul(1 << c.busy.min(6));
            c.next_attempt = now + wait.min(BUSY_RETRY_MAX);
            c.busy
        });
        if refusals.is_some_and(|b| b >= MAX_BUSY_REFUSALS) {
            self.remove(addr);
        }
    }

    /// A handshaken connection to `addr` ended; `how` sets the next dial. `None` means the
    /// torrent stopped: that says nothing about the peer, and starting again redials all.
    pub fn closed(&mut self, addr: SocketAddr, now: Instant, how: Option<EndedConnection>) {
        self.update(addr, |c| {
            c.connected = false;
            if let Some(how) = how {
                c.closed(now, how);
            }
        });
    }

    /// A dial to `addr` reached a handshake: earlier failed dials (a restart, a busy moment)
    /// are forgotten, so a later one does not count towards forgetting a peer that works.
    pub fn handshook(&mut self, addr: SocketAddr) {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            c.failures = 0;
            c.busy = 0;
        }
    }

    /// Our MSE handshake to `addr` went unanswered: the peer speaks only plaintext. With
    /// `redial` it is due again at once, in plaintext (not a failure: the peer is there);
    /// without (encryption required), it is not dialled again.
    pub fn refuses_mse(&mut self, addr: SocketAddr, now: Instant, redial: bool) {
        self.update(addr, |c| {
            c.connected = false;
            c.plaintext_only = true;
            if redial {
                c.next_attempt = now;
            }
        });
    }

    /// `addr` is known to speak uTP (see [`Candidate::speaks_utp`]).
    pub fn speaks_utp(&mut self, addr: SocketAddr) {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            c.speaks_utp = true;
        }
    }

    /// Whether `addr` is known to speak uTP.
    pub fn knows_utp(&self, addr: SocketAddr) -> bool {
        self.by_addr.get(&addr).is_some_and(|c| c.speaks_utp)
    }

    /// Our uTP dial to `addr` went unanswered. With `redial` (TCP is allowed) it is due again
    /// at once, over TCP from now on (not a failure: uTP may be what is missing); without,
    /// it counts as a failed dial.
    pub fn refuses_utp(&mut self, addr: SocketAddr, now: Instant, redial: bool) {
        if !redial {
            self.dial_failed(addr, now);
            return;
        }
        self.update(addr, |c| {
            c.connected = false;
            c.refused_utp = true;
            c.next_attempt = now;
        });
    }

    /// How to dial `addr` under `transports`: uTP where it is known to speak it and has not
    /// failed to answer it, TCP otherwise (see [`super::Config::transports`]).
    pub fn transport_for(&self, addr: SocketAddr, transports: Transports) -> Transport {
        match transports {
            Transports::Tcp => Transport::Tcp,
            Transports::Utp => Transport::Utp,
            Transports::Both => match self.by_addr.get(&addr) {
                Some(c) if c.speaks_utp && !c.refused_utp => Transport::Utp,
                _ => Transport::Tcp,
            },
        }
    }

    /// Whether `addr` answered no MSE handshake of ours before.
    pub fn refused_mse(&self, addr: SocketAddr) -> bool {
        self.by_addr.get(&addr).is_some_and(|c| c.plaintext_only)
    }

    /// Forgets an address (it was ourselves).
    pub fn forget(&mut self, addr: SocketAddr) {
        self.remove(addr);
    }

    /// Forgets every address of a host (it was banned).
    pub fn forget_host(&mut self, ip: IpAddr) {
        self.by_addr.retain(|a, _| a.ip() != ip);
        self.waiting.retain(|(_, a)| a.ip() != ip);
    }

    /// Every address with its state, for diagnostics.
    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Candidate)> {
        self.by_addr.iter()
    }
}

impl Session {
    /// Remembers an address to dial for a torrent, unless no peer can be there (see
    /// [`dialable`]), it is ourselves, or its host is banned. Returns the address as kept
    /// (IPv4-mapped addresses become IPv4), or `None` if it was refused.
    pub(super) fn learn_peer(
        &mut self,
        now: Instant,
        id: TorrentId,
        addr: SocketAddr,
    ) -> Option<SocketAddr> {
        let addr = canonical(addr);
        if !dialable(addr) || self.is_own_address(addr) {
            return None;
        }
        let t = swarm_of(&mut self.torrents, &mut self.fetching, id)?;
        if t.smart_ban.is_banned(addr.ip()) {
            return None;
        }
        t.candidates.learn(addr, now, &mut self.rng);
        Some(addr)
    }

    /// Whether `addr` is this session: one it connected to itself at, or our port on the
    /// loopback address every listener answers on.
    fn is_own_address(&self, addr: SocketAddr) -> bool {
        let localhost = match addr.ip() {
            IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
            IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
        };
        self.self_addrs.contains(&addr) || (addr.port() == self.config.listen_port && localhost)
    }

    /// A torrent that wants pieces and has no peer with any of them calls back at once the
    /// peers that were too full to take it ([`Candidates::retry_busy_within`]), rather than
    /// sit with peers that have nothing for it: in the
    /// simulator's swarm of 300 leechers, those missing the same last pieces waited on each
    /// other while the peers that had completed (and the seed) had room again. Checked at
    /// each choke round, acted on at most every [`STUCK_REDIAL_EVERY`].
    pub(super) fn redial_if_stuck(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state != super::TorrentState::Started || t.picker.is_done() {
            return;
        }
        if t.stuck_redial
            .is_some_and(|at| now < at + STUCK_REDIAL_EVERY)
        {
            return;
        }
        let peers = &self.peers;
        let useful = t
            .conns
            .iter()
            .filter_map(|c| peers.get(*c))
            .any(|p| p.choke.am_interested);
        if !useful {
            t.stuck_redial = Some(now);
            t.candidates.retry_busy_within(now, BUSY_RETRY_MAX);
            self.connect_more(now, id);
        }
    }

    /// Dials the addresses that are due, within the connection budget, and sets the
    /// torrent's next dial deadline.
    pub(super) fn connect_more(&mut self, now: Instant, id: TorrentId) {
        let timer = Timer::Torrent(id, TorrentTimer::Dial);
        // A peer that speaks only plaintext is never dialled while encryption is required.
        let required = self.encryption_for(id) == crate::mse::Encryption::Required;
        let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        if !t.state.in_swarm() {
            self.timers.stop(timer);
            return;
        }
        let cfg = &self.config;
        let counts = self.peers.counts();
        let budget = (cfg.max_half_open.saturating_sub(counts.connecting))
            .min(
                cfg.max_connections_per_torrent
                    .saturating_sub(t.conns.len()),
            )
            .min(cfg.max_outgoing.saturating_sub(counts.outgoing));
        // The connections to a due address's host, counted for that address alone: with
        // addresses of full hosts parked, a call looks at a few addresses, fewer than the
        // torrent has connections. Hosts dialled earlier in this call count as connected, as
        // they are about to be.
        let done = t.is_done();
        let (conns, peers) = (&*t.conns, &self.peers);
        let mut dialled: Vec<IpAddr> = Vec::new();
        let (due, more) = t.candidates.take_due(now, budget, |addr, c| {
            if required && c.plaintext_only {
                return Verdict::Skip;
            }
            if done && c.seed {
                return Verdict::Seed;
            }
            let ip = addr.ip();
            let connected = conns
                .iter()
                .filter(|c| peers.get(**c).is_some_and(|p| p.addr.ip() == ip))
                .count();
            let earlier = dialled.iter().filter(|e| **e == ip).count();
            if connected + earlier < cfg.max_connections_per_host {
                dialled.push(ip);
                Verdict::Dial
            } else {
                Verdict::HostFull
            }
        });
        // Due but over budget: look again soon, as a slot may free up elsewhere. An address
        // whose host has its connections waits for one of them to close instead.
        let next = if more {
            Some(now + DIAL_RETRY_INTERVAL)
        } else {
            t.candidates.next_attempt_after(now)
        };
        for addr in due {
            self.dial(now, id, addr);
        }
        match next {
            Some(at) => self.timers.set(timer, at),
            None => self.timers.stop(timer),
        }
        self.announce_if_starved(now, id, next);
    }
}

/// Whether a peer can listen at `addr`: not port 0, not an unspecified, multicast or
/// broadcast address. Trackers and peers that send such addresses would aim our dials at
/// nothing, or at many hosts at once.
pub(crate) fn dialable(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

#[cfg(test)]
mod tests;
