//! The choking algorithm: who may download from us (BEP 3, as Mainline and libtorrent do it).
//!
//! Every [`ROUND_INTERVAL`] the choker unchokes the interested peers that give us the most
//! (by download rate from them while we leech; by upload rate to them while we seed, which
//! favours peers that can take data fast) in all but one of the upload slots: tit-for-tat.
//! The last slot is the *optimistic unchoke*, a random interested peer kept for
//! [`OPTIMISTIC_INTERVAL`], so that peers we do not trade with yet get the chance to show
//! what they can give, and new peers (which have nothing to offer until they get a first
//! piece) get that chance [`NEW_PEER_WEIGHT`] times as often.
//!
//! The choker is pure: it reads snapshots of the peers, the time and a seeded [`Rng`], and
//! returns the changes to make. It keeps only its own timing and the current optimistic peer.
//! Peers that are not interested are always choked: an unchoke they cannot use would only hold
//! a slot.
//!
//! ```
//! use std::time::Instant;
//! use bt_proto::ConnId;
//! use bt_proto::choker::{ChokeChange, Choker, Mode, PeerSnapshot};
//! use bt_proto::rng::Rng;
//!
//! let now = Instant::now(); // the engine's caller supplies time
//! let peer = |id, rate| PeerSnapshot {
//!     id: ConnId(id), interested: true, rate, unchoked: false, connected_at: now, snubbed: false,
//! };
//! let peers = [peer(1, 10), peer(2, 500), peer(3, 300), peer(4, 0)];
//! let mut choker = Choker::new(Mode::Leeching, 3);
//! let decision = choker.run(now, &peers, &mut Rng::seed_from_u64(1));
//! // Two regular slots go to the fastest peers, the third is optimistic.
//! assert!(decision.changes.contains(&ChokeChange::Unchoke(ConnId(2))));
//! assert!(decision.changes.contains(&ChokeChange::Unchoke(ConnId(3))));
//! assert_eq!(decision.unchoked.len(), 3);
//! assert!(matches!(decision.optimistic, Some(ConnId(1)) | Some(ConnId(4))));
//! assert_eq!(choker.next_round(now), now + bt_proto::choker::ROUND_INTERVAL);
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::ConnId;
use crate::rng::Rng;

/// Time between regular choking rounds. BEP 3 and every major client use 10 s: long enough
/// for TCP to reach full speed on a newly unchoked connection, so rates compare fairly.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(10);

/// Rounds an optimistic unchoke lasts. BEP 3: "rotates every 30 seconds", three rounds.
pub const OPTIMISTIC_ROUNDS: u32 = 3;

/// How long one peer holds the optimistic slot: [`OPTIMISTIC_ROUNDS`] × [`ROUND_INTERVAL`].
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);

/// A peer connected for less than this counts as new for the optimistic draw. A new peer has
/// no pieces to trade; 60 s (two optimistic periods) gives it a fair chance to get one.
pub const NEW_PEER_AGE: Duration = Duration::from_secs(60);

/// How much more likely a new peer is to win the optimistic draw than an old one. Mainline
/// uses 3×.
pub const NEW_PEER_WEIGHT: u64 = 3;

/// A sensible number of upload slots: BEP 3 suggests four unchoked peers (three regular plus
/// one optimistic).
pub const DEFAULT_SLOTS: usize = 4;

/// Whether we are still downloading, which decides what "best peer" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// We still want pieces: reward the peers we download from fastest; ignore snubbed ones.
    Leeching,
    /// We have everything: unchoke the peers we upload to fastest.
    Seeding,
}

/// What the choker needs to know about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// The connection.
    pub id: ConnId,
    /// They are interested in pieces we have.
    pub interested: bool,
    /// Bytes per second: download from them while leeching, upload to them while seeding.
    pub rate: u64,
    /// We currently have them unchoked.
    pub unchoked: bool,
    /// When the connection was established.
    pub connected_at: Instant,
    /// They have sent us nothing for a while despite our requests (only used while leeching).
    pub snubbed: bool,
}

/// A change to send to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChokeChange {
    /// Send CHOKE: they were unchoked and no longer are.
    Choke(ConnId),
    /// Send UNCHOKE: they were choked and now are not.
    Unchoke(ConnId),
}

/// The outcome of one choking round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChokeDecision {
    /// Only the peers whose state changes: all chokes first (freeing upload capacity), then
    /// the unchokes, each in the order the peers were given.
    pub changes: Vec<ChokeChange>,
    /// Every peer unchoked after this round, regular ones best first, the optimistic one last.
    pub unchoked: Vec<ConnId>,
    /// The peer holding the optimistic slot, if any.
    pub optimistic: Option<ConnId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Optimistic {
    id: ConnId,
    since: Instant,
}

/// Round timing and the optimistic slot of one torrent's choker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choker {
    mode: Mode,
    slots: usize,
    next_round: Option<Instant>,
    optimistic: Option<Optimistic>,
}

impl Choker {
    /// A choker that has not run yet (its first round is due at once) with `slots` upload
    /// slots: `slots - 1` regular unchokes plus one optimistic; 0 chokes everybody.
    pub fn new(mode: Mode, slots: usize) -> Self {
        Choker {
            mode,
            slots,
            next_round: None,
            optimistic: None,
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switches mode (e.g. to [`Mode::Seeding`] when the download completes); it applies from
    /// the next [`Choker::run`], which the caller should make at once.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// The number of upload slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Changes the number of upload slots, from the next [`Choker::run`].
    pub fn set_slots(&mut self, slots: usize) {
        self.slots = slots;
    }

    /// The peer holding the optimistic slot since the last round, if any.
    pub fn optimistic(&self) -> Option<ConnId> {
        self.optimistic.map(|o| o.id)
    }

    /// When the next regular round is due: `now` if the choker has never run.
    pub fn next_round(&self, now: Instant) -> Instant {
        self.next_round.unwrap_or(now)
    }

    /// Whether a round is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_round.is_none_or(|t| t <= now)
    }

    /// Runs a full round at `now` and schedules the next one [`ROUND_INTERVAL`] later.
    ///
    /// The caller runs it when [`Choker::next_round`] comes, and may run it early when the
    /// picture changes (an unchoked peer leaves or loses interest, the mode changes); the
    /// optimistic slot rotates by elapsed time, not by the number of runs. `peers` lists each
    /// connection once (a repeated id is ignored after its first entry); ties in rate are
    /// broken by `rng`, so the same inputs and seed give the same decision.
    pub fn run(&mut self, now: Instant, peers: &[PeerSnapshot], rng: &mut Rng) -> ChokeDecision {
        let mut seen = HashSet::with_capacity(peers.len());
        let peers: Vec<&PeerSnapshot> = peers.iter().filter(|p| seen.insert(p.id)).collect();
        self.next_round = Some(now.checked_add(ROUND_INTERVAL).unwrap_or(now));

        let previous = self.optimistic.take();
        let kept = previous.filter(|o| {
            let fresh = o
                .since
                .checked_add(OPTIMISTIC_INTERVAL)
                .is_none_or(|end| now < end);
            fresh && self.slots > 0 && peers.iter().any(|p| p.id == o.id && p.interested)
        });

        let mut candidates: Vec<&PeerSnapshot> = peers
            .iter()
            .copied()
            .filter(|p| p.interested && Some(p.id) != kept.map(|o| o.id))
            .filter(|p| !(self.mode == Mode::Leeching && p.snubbed))
            .collect();
        // Shuffle, then a stable sort: equal rates end up in random order.
        rng.shuffle(&mut candidates);
        candidates.sort_by_key(|p| std::cmp::Reverse(p.rate));
        let mut unchoked: Vec<ConnId> = candidates
            .iter()
            .take(self.slots.saturating_sub(1))
            .map(|p| p.id)
            .collect();

        self.optimistic = match kept {
            Some(o) => Some(o),
            None if self.slots > 0 => {
                let pool: Vec<&PeerSnapshot> = peers
                    .iter()
                    .copied()
                    .filter(|p| p.interested && !unchoked.contains(&p.id))
                    .collect();
                // The peer whose turn just ended waits unless nobody else wants the slot.
                let others: Vec<&PeerSnapshot> = pool
                    .iter()
                    .copied()
                    .filter(|p| Some(p.id) != previous.map(|o| o.id))
                    .collect();
                let pool = if others.is_empty() { pool } else { others };
                draw_weighted(&pool, now, rng).map(|id| Optimistic { id, since: now })
            }
            None => None,
        };
        if let Some(o) = self.optimistic {
            unchoked.push(o.id);
        }

        let chokes = peers
            .iter()
            .filter(|p| p.unchoked && !unchoked.contains(&p.id))
            .map(|p| ChokeChange::Choke(p.id));
        let unchokes = peers
            .iter()
            .filter(|p| !p.unchoked && unchoked.contains(&p.id))
            .map(|p| ChokeChange::Unchoke(p.id));
        ChokeDecision {
            changes: chokes.chain(unchokes).collect(),
            unchoked,
            optimistic: self.optimistic.map(|o| o.id),
        }
    }
}

/// Picks one peer at random, new peers weighted [`NEW_PEER_WEIGHT`]×.
fn draw_weighted(pool: &[&PeerSnapshot], now: Instant, rng: &mut Rng) -> Option<ConnId> {
    let weight = |p: &PeerSnapshot| {
        if now.saturating_duration_since(p.connected_at) < NEW_PEER_AGE {
            NEW_PEER_WEIGHT
        } else {
            1
        }
    };
    let total: u64 = pool.iter().map(|p| weight(p)).sum();
    // Nobody to draw: the session's random stream is left as it was.
    if total == 0 {
        return None;
    }
    let mut ticket = rng.below(total);
    for p in pool {
        let w = weight(p);
        if ticket < w {
            return Some(p.id);
        }
        ticket -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn peer(id: u64, rate: u64, at: Instant) -> PeerSnapshot {
        PeerSnapshot {
            id: ConnId(id),
            interested: true,
            rate,
            unchoked: false,
            connected_at: at,
            snubbed: false,
        }
    }

    /// Applies a decision to the snapshots, as the engine would.
    fn apply(peers: &mut [PeerSnapshot], d: &ChokeDecision) {
        for p in peers.iter_mut() {
            p.unchoked = d.unchoked.contains(&p.id);
        }
    }

    /// A round with nobody interested draws nothing: the session's random stream (which
    /// also drives dialing and piece picking) is the same whether it ran or not.
    #[test]
    fn a_round_with_nobody_to_unchoke_draws_nothing() {
        let t0 = Instant::now();
        let mut idle = peer(1, 0, t0);
        idle.interested = false;
        let mut rng = Rng::seed_from_u64(9);
        for peers in [vec![], vec![idle]] {
            let d = Choker::new(Mode::Seeding, 4).run(t0, &peers, &mut rng);
            assert_eq!(d.optimistic, None);
        }
        assert_eq!(rng, Rng::seed_from_u64(9));
    }

    #[test]
    fn regular_slots_go_to_the_fastest_and_only_changes_are_reported() {
        let t0 = Instant::now();
        let mut peers: Vec<_> = (0..8).map(|i| peer(i, i * 100, t0)).collect();
        peers[1].unchoked = true; // slow: must be choked (unless drawn optimistic)
        peers[7].unchoked = true; // fastest: stays unchoked, no message
        let mut c = Choker::new(Mode::Leeching, 4);
        let d = c.run(t0, &peers, &mut Rng::seed_from_u64(3));
        assert_eq!(&d.unchoked[..3], &[ConnId(7), ConnId(6), ConnId(5)]);
        assert_eq!(d.unchoked.len(), 4);
        let opt = d.optimistic.unwrap();
        assert_eq!(d.unchoked[3], opt);
        assert!(opt.0 < 5);
        assert!(!d.changes.contains(&ChokeChange::Unchoke(ConnId(7))));
        assert!(!d.changes.contains(&ChokeChange::Choke(ConnId(7))));
        assert_eq!(
            d.changes.contains(&ChokeChange::Choke(ConnId(1))),
            opt != ConnId(1)
        );
        // Chokes come before unchokes.
        let first_unchoke = d
            .changes
            .iter()
            .position(|c| matches!(c, ChokeChange::Unchoke(_)))
            .unwrap();
        assert!(
            d.changes[first_unchoke..]
                .iter()
                .all(|c| matches!(c, ChokeChange::Unchoke(_)))
        );
        // Running again with the state applied and nothing changed: no messages at all.
        apply(&mut peers, &d);
        let again = c.run(t0 + secs(10), &peers, &mut Rng::seed_from_u64(4));
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }

    #[test]
    fn uninterested_peers_are_choked_even_if_fast() {
        let t0 = Instant::now();
        let mut peers = vec![peer(1, 1_000, t0), peer(2, 10, t0)];
        peers[0].interested = false;
        peers[0].unchoked = true;
        let mut c = Choker::new(Mode::Seeding, 4);
        let d = c.run(t0, &peers, &mut Rng::seed_from_u64(1));
        assert_eq!(d.unchoked, vec![ConnId(2)]);
        assert_eq!(
            d.changes,
            vec![
                ChokeChange::Choke(ConnId(1)),
                ChokeChange::Unchoke(ConnId(2))
            ]
        );
    }

    #[test]
    fn snubbed_peers_lose_regular_slots_only_while_leeching() {
        let t0 = Instant::now();
        let mut peers: Vec<_> = (0..5).map(|i| peer(i, 100 + i, t0)).collect();
        peers[4].snubbed = true; // the fastest on paper
        peers[3].snubbed = true;
        let mut leech = Choker::new(Mode::Leeching, 3);
        let d = leech.run(t0, &peers, &mut Rng::seed_from_u64(9));
        assert_eq!(&d.unchoked[..2], &[ConnId(2), ConnId(1)]);
        let mut seed = Choker::new(Mode::Seeding, 3);
        let d = seed.run(t0, &peers, &mut Rng::seed_from_u64(9));
        assert_eq!(&d.unchoked[..2], &[ConnId(4), ConnId(3)]);
    }

    #[test]
    fn optimistic_slot_rotates_after_thirty_seconds() {
        let t0 = Instant::now();
        let old = t0.checked_sub(secs(600)).unwrap_or(t0);
        let mut peers: Vec<_> = (0..6).map(|i| peer(i, 0, old)).collect();
        peers[0].rate = 1_000; // the only regular slot (2 slots)
        let mut c = Choker::new(Mode::Leeching, 2);
        let mut rng = Rng::seed_from_u64(5);
        let d = c.run(t0, &peers, &mut rng);
        let first = d.optimistic.unwrap();
        assert_ne!(first, ConnId(0));
        apply(&mut peers, &d);
        for s in [10, 20, 29] {
            let d = c.run(t0 + secs(s), &peers, &mut rng);
            assert_eq!(d.optimistic, Some(first), "kept at {s} s");
            assert!(d.changes.is_empty());
        }
        let d = c.run(t0 + secs(30), &peers, &mut rng);
        let second = d.optimistic.unwrap();
        assert_ne!(second, first);
        assert_ne!(second, ConnId(0));
        assert_eq!(
            d.changes,
            vec![ChokeChange::Choke(first), ChokeChange::Unchoke(second)]
        );
    }

    #[test]
    fn optimistic_peer_that_leaves_or_loses_interest_is_replaced_at_once() {
        let t0 = Instant::now();
        let mut peers: Vec<_> = (0..4).map(|i| peer(i, 0, t0)).collect();
        let mut c = Choker::new(Mode::Leeching, 1);
        let mut rng = Rng::seed_from_u64(11);
        let first = c.run(t0, &peers, &mut rng).optimistic.unwrap();
        peers.retain(|p| p.id != first);
        let second = c.run(t0 + secs(1), &peers, &mut rng).optimistic.unwrap();
        assert_ne!(second, first);
        for p in peers.iter_mut().filter(|p| p.id == second) {
            p.interested = false;
        }
        let third = c.run(t0 + secs(2), &peers, &mut rng).optimistic.unwrap();
        assert_ne!(third, second);
        assert_ne!(third, first);
    }

    #[test]
    fn an_optimistic_peer_whose_turn_ended_is_redrawn_only_when_alone() {
        let t0 = Instant::now();
        let peers = vec![peer(1, 0, t0)];
        let mut c = Choker::new(Mode::Leeching, 1);
        let mut rng = Rng::seed_from_u64(2);
        assert_eq!(c.run(t0, &peers, &mut rng).optimistic, Some(ConnId(1)));
        // Alone and interested, it keeps being unchoked after its turn (as a fresh turn).
        let d = c.run(t0 + secs(40), &peers, &mut rng);
        assert_eq!(d.unchoked, vec![ConnId(1)]);
        assert_eq!(d.optimistic, Some(ConnId(1)));
        assert_eq!(d.changes, vec![ChokeChange::Unchoke(ConnId(1))]);
    }

    #[test]
    fn zero_and_one_slots() {
        let t0 = Instant::now();
        let mut peers: Vec<_> = (0..3).map(|i| peer(i, i * 10, t0)).collect();
        peers[2].unchoked = true;
        let mut none = Choker::new(Mode::Leeching, 0);
        let d = none.run(t0, &peers, &mut Rng::seed_from_u64(1));
        assert!(d.unchoked.is_empty() && d.optimistic.is_none());
        assert_eq!(d.changes, vec![ChokeChange::Choke(ConnId(2))]);
        let mut one = Choker::new(Mode::Leeching, 1);
        let d = one.run(t0, &peers, &mut Rng::seed_from_u64(1));
        assert_eq!(d.unchoked.len(), 1);
        assert_eq!(d.optimistic, Some(d.unchoked[0]));
    }

    #[test]
    fn new_peers_are_three_times_as_likely_to_be_drawn() {
        let t0 = Instant::now();
        let old = t0.checked_sub(secs(3_600)).unwrap_or(t0);
        // One new peer against three old ones: it should win 3 / (3 + 3) = half the draws.
        let peers = vec![
            peer(0, 0, old),
            peer(1, 0, old),
            peer(2, 0, old),
            peer(3, 0, t0.checked_sub(secs(59)).unwrap_or(t0)),
        ];
        let mut wins = 0;
        for seed in 0..4_000 {
            let mut c = Choker::new(Mode::Leeching, 1);
            if c.run(t0, &peers, &mut Rng::seed_from_u64(seed)).optimistic == Some(ConnId(3)) {
                wins += 1;
            }
        }
        assert!((1_800..2_200).contains(&wins), "{wins}");
    }

    #[test]
    fn ties_are_broken_at_random_but_reproducibly() {
        let t0 = Instant::now();
        let peers: Vec<_> = (0..10).map(|i| peer(i, 50, t0)).collect();
        let regular = |seed| {
            let mut c = Choker::new(Mode::Seeding, 3);
            let d = c.run(t0, &peers, &mut Rng::seed_from_u64(seed));
            d.unchoked[..2].to_vec()
        };
        assert_eq!(regular(1), regular(1));
        let distinct: HashSet<Vec<ConnId>> = (0..20).map(regular).collect();
        assert!(distinct.len() > 5, "{distinct:?}");
    }

    #[test]
    fn round_timing() {
        let t0 = Instant::now();
        let mut c = Choker::new(Mode::Leeching, 4);
        assert!(c.is_due(t0));
        assert_eq!(c.next_round(t0), t0);
        c.run(t0, &[], &mut Rng::seed_from_u64(0));
        assert_eq!(c.next_round(t0), t0 + ROUND_INTERVAL);
        assert!(!c.is_due(t0 + secs(9)));
        assert!(c.is_due(t0 + secs(10)));
        assert_eq!(OPTIMISTIC_INTERVAL, ROUND_INTERVAL * OPTIMISTIC_ROUNDS);
    }

    #[test]
    fn repeated_ids_count_once() {
        let t0 = Instant::now();
        let mut dup = peer(1, 5, t0);
        dup.unchoked = true;
        let peers = vec![peer(1, 5, t0), dup, peer(2, 1, t0)];
        let mut c = Choker::new(Mode::Seeding, 4);
        let d = c.run(t0, &peers, &mut Rng::seed_from_u64(0));
        assert_eq!(d.unchoked.iter().filter(|id| **id == ConnId(1)).count(), 1);
        assert_eq!(
            d.changes
                .iter()
                .filter(|c| matches!(c, ChokeChange::Unchoke(ConnId(1))))
                .count(),
            1
        );
    }

    fn arb_peers() -> impl Strategy<Value = Vec<(u64, bool, u64, bool, u64, bool)>> {
        proptest::collection::vec(
            (
                0u64..40,
                any::<bool>(),
                0u64..2_000,
                any::<bool>(),
                0u64..200,
                any::<bool>(),
            ),
            0..30,
        )
    }

    fn build(raw: &[(u64, bool, u64, bool, u64, bool)], t0: Instant) -> Vec<PeerSnapshot> {
        let mut seen = HashSet::new();
        raw.iter()
            .filter(|r| seen.insert(r.0))
            .map(
                |&(id, interested, rate, unchoked, age, snubbed)| PeerSnapshot {
                    id: ConnId(id),
                    interested,
                    rate,
                    unchoked,
                    connected_at: t0.checked_sub(Duration::from_secs(age)).unwrap_or(t0),
                    snubbed,
                },
            )
            .collect()
    }

    proptest! {
        #[test]
        fn round_invariants(raw in arb_peers(), slots in 0usize..8, seeding: bool, seed: u64) {
            let t0 = Instant::now();
            let peers = build(&raw, t0);
            let mode = if seeding { Mode::Seeding } else { Mode::Leeching };
            let mut c = Choker::new(mode, slots);
            let d = c.run(t0, &peers, &mut Rng::seed_from_u64(seed));

            // Never more than `slots`, never twice, only interested peers.
            prop_assert!(d.unchoked.len() <= slots);
            let set: HashSet<ConnId> = d.unchoked.iter().copied().collect();
            prop_assert_eq!(set.len(), d.unchoked.len());
            let by_id = |id: ConnId| peers.iter().find(|p| p.id == id).unwrap();
            prop_assert!(d.unchoked.iter().all(|id| by_id(*id).interested));

            // The optimistic peer is the last one unchoked; the rest are the best eligible.
            let regular: Vec<ConnId> = d.unchoked.iter().copied()
                .filter(|id| Some(*id) != d.optimistic).collect();
            prop_assert!(regular.len() <= slots.saturating_sub(1));
            let eligible = |p: &PeerSnapshot| p.interested && !(mode == Mode::Leeching && p.snubbed);
            prop_assert!(regular.iter().all(|id| eligible(by_id(*id))));
            let worst_regular = regular.iter().map(|id| by_id(*id).rate).min();
            for p in peers.iter().filter(|p| eligible(p) && !set.contains(&p.id)) {
                // An eligible peer left out means the regular slots are full of peers at
                // least as fast as it.
                prop_assert_eq!(regular.len(), slots.saturating_sub(1));
                prop_assert!(worst_regular.is_none_or(|w| w >= p.rate));
            }
            // Someone interested is left choked only if every slot is used.
            if peers.iter().any(|p| p.interested && !set.contains(&p.id)) && slots > 0 {
                prop_assert!(d.optimistic.is_some());
            }

            // Exactly the state changes are reported.
            for p in &peers {
                let now_unchoked = set.contains(&p.id);
                let expected = match (p.unchoked, now_unchoked) {
                    (false, true) => Some(ChokeChange::Unchoke(p.id)),
                    (true, false) => Some(ChokeChange::Choke(p.id)),
                    _ => None,
                };
                let reported: Vec<_> = d.changes.iter()
                    .filter(|c| matches!(c, ChokeChange::Choke(id) | ChokeChange::Unchoke(id) if *id == p.id))
                    .collect();
                prop_assert_eq!(reported, expected.iter().collect::<Vec<_>>());
            }

            // Deterministic for a given seed.
            let mut again = Choker::new(mode, slots);
            prop_assert_eq!(again.run(t0, &peers, &mut Rng::seed_from_u64(seed)), d);
        }

        #[test]
        fn optimistic_rotation_over_rounds(
            raw in arb_peers(), slots in 1usize..5, seed: u64,
            rates in proptest::collection::vec(0u64..1000, 12),
        ) {
            let t0 = Instant::now();
            let mut peers = build(&raw, t0);
            for p in peers.iter_mut() { p.snubbed = false; }
            let mut c = Choker::new(Mode::Leeching, slots);
            let mut rng = Rng::seed_from_u64(seed);
            let mut held: Option<(ConnId, u64)> = None;
            for (round, wobble) in rates.iter().enumerate() {
                let now = t0 + ROUND_INTERVAL * round as u32;
                let elapsed = 10 * round as u64;
                for (i, p) in peers.iter_mut().enumerate() {
                    p.rate = (wobble * (i as u64 + 1)) % 997;
                }
                let d = c.run(now, &peers, &mut rng);
                let regular: HashSet<ConnId> = d.unchoked.iter().copied()
                    .filter(|id| Some(*id) != d.optimistic).collect();
                if let Some((prev, since)) = held {
                    if elapsed - since < 30 {
                        // Within its turn the optimistic peer keeps the slot.
                        prop_assert_eq!(d.optimistic, Some(prev));
                    } else if peers.iter().any(|p| p.interested && p.id != prev && !regular.contains(&p.id)) {
                        // After it, whoever else can take the slot does.
                        prop_assert!(d.optimistic.is_some());
                        prop_assert_ne!(d.optimistic, Some(prev));
                    }
                }
                held = match (held, d.optimistic) {
                    (Some((prev, since)), Some(id)) if prev == id && elapsed - since < 30 => Some((id, since)),
                    (_, Some(id)) => Some((id, elapsed)),
                    (_, None) => None,
                };
                apply(&mut peers, &d);
            }
        }
    }
}
