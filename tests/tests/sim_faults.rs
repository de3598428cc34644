//! Fault schedules on the simulator: leechers killed and restarted, links that drop, a seed
//! that corrupts what it serves, peers that push forged blocks, connection floods, leechers
//! that refuse incoming connections, and disks whose writes and reads fail. Whatever the
//! schedule, while an honest seed stays: every surviving leecher completes byte-exact, no
//! verified piece is ever lost, and no piece is reported verified unless its bytes are right.
//!
//! Reproducible: proptest runs from a fixed seed (`PROPTEST_RNG_SEED` picks another), failing
//! cases are kept in `sim_faults.proptest-regressions` beside this file and replayed first, and
//! a failure prints its whole schedule.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use bt_proto::engine::{AddTorrent, CheckScope, TorrentId, TorrentState};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::disk::FaultScope;
use bt_proto::sim::net::{LinkConfig, SimConnId};
use bt_proto::sim::remote::{self, RemotePeer};
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use bt_proto::wire::{Extension, Message, Reserved};
use bt_proto::{Bitfield, PeerId, PieceIndex};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};

/// Virtual time a schedule may take before it counts as a stall: the slowest schedule (a
/// few hundred KiB at 64 KiB/s over links that drop, with restarts and failing disks) needs a
/// few minutes.
const LIMIT: Duration = Duration::from_secs(1800);

/// How often the test looks at the swarm, acts for its hostile peers and retries failed
/// torrents, in virtual time.
const STEP: Duration = Duration::from_millis(250);

/// Connections a flooder opens to the seed without ever handshaking.
const FLOOD: usize = 40;

#[derive(Debug, Clone)]
struct Schedule {
    seed: u64,
    size: u64,
    piece_kib: u32,
    leechers: usize,
    refuse: Vec<bool>,
    latency_ms: u64,
    loss: f64,
    drop_within_s: Option<u64>,
    seed_upload_kib: u64,
    corrupt_seed: bool,
    forgers: usize,
    flooder: bool,
    /// (virtual seconds, leecher) kill, and whether it comes back (restarted, rechecked).
    kills: Vec<(u64, usize, bool)>,
    /// (leecher, failures) of writes.
    write_faults: Vec<(usize, u32)>,
    /// Failures of the honest seed's reads.
    read_faults: u32,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        (
            any::<u64>(),
            20_000u64..400_000,
            prop::sample::select(vec![16u32, 32, 64]),
            2usize..=4,
            proptest::collection::vec(prop::bool::weighted(0.25), 4),
            1u64..60,
            prop::sample::select(vec![0.0, 0.01, 0.05]),
            prop::option::weighted(0.3, 2u64..30),
        ),
        (
            64u64..2048,
            prop::bool::weighted(0.3),
            0usize..=2,
            prop::bool::weighted(0.3),
            proptest::collection::vec((1u64..20, 0usize..4, any::<bool>()), 0..=2),
            proptest::collection::vec((0usize..4, 1u32..4), 0..=2),
            0u32..3,
        ),
    )
        .prop_map(
            |(
                (seed, size, piece_kib, leechers, refuse, latency_ms, loss, drop_within_s),
                (seed_upload_kib, corrupt_seed, forgers, flooder, kills, write_faults, read_faults),
            )| Schedule {
                seed,
                size,
                piece_kib,
                leechers,
                refuse,
                latency_ms,
                loss,
                drop_within_s,
                seed_upload_kib,
                corrupt_seed,
                forgers,
                flooder,
                kills,
                write_faults,
                read_faults,
            },
        )
}

/// One leecher: its node and torrent, whether it is in the swarm, and the pieces it verified.
struct Leecher {
    node: NodeId,
    torrent: TorrentId,
    alive: bool,
    verified: Bitfield,
    /// A restarted leecher's pieces are checked again: until that check ends its bitfield is
    /// not yet what its disk holds.
    checking: bool,
}

/// A peer that says it has everything, unchokes, and pushes garbage for blocks nobody asked
/// it for.
struct Forger {
    peer: RemotePeer<SimConnId>,
    next: u32,
}

struct Run {
    swarm: Swarm,
    meta: Metainfo,
    content: Vec<u8>,
    seed: (NodeId, TorrentId),
    leechers: Vec<Leecher>,
    forgers: Vec<Forger>,
}

fn seed_torrent(swarm: &mut Swarm, n: NodeId, meta: &Metainfo) -> TorrentId {
    let have = Some(Bitfield::full(meta.piece_count()));
    swarm.add_torrent(
        n,
        meta,
        AddTorrent {
            have,
            ..Default::default()
        },
    )
}

fn build(s: &Schedule) -> Run {
    let files = [("x", s.size), ("y/z", s.size / 3)];
    let (meta, content) = make_torrent(&files, s.piece_kib * 1024, s.seed).unwrap();
    let mut swarm = Swarm::new(s.seed);
    let mut link = LinkConfig::new(Duration::from_millis(s.latency_ms)).with_loss(s.loss);
    if let Some(d) = s.drop_within_s {
        link = link.with_drop_within(Duration::from_secs(d));
    }
    swarm.set_default_link(link);
    let upload = Some(s.seed_upload_kib * 1024);
    let seed = swarm.add_node(NodeOptions {
        upload,
        ..Default::default()
    });
    swarm.put_content(seed, &meta, &content);
    let seed_torrent_id = seed_torrent(&mut swarm, seed, &meta);
    if s.corrupt_seed {
        let bad = swarm.add_node(NodeOptions {
            upload,
            corrupt_uploads: true,
            ..Default::default()
        });
        swarm.put_content(bad, &meta, &content);
        seed_torrent(&mut swarm, bad, &meta);
    }
    let leechers: Vec<Leecher> = (0..s.leechers)
        .map(|i| {
            let node = swarm.add_node(NodeOptions {
                refuse: s.refuse[i],
                ..Default::default()
            });
            let torrent = swarm.add_torrent(node, &meta, AddTorrent::default());
            Leecher {
                node,
                torrent,
                alive: true,
                verified: Bitfield::new(meta.piece_count()),
                checking: false,
            }
        })
        .collect();
    for &(i, times) in &s.write_faults {
        let host = swarm.addr(leechers[i % leechers.len()].node);
        swarm
            .disk_mut()
            .fail_writes(FaultScope::Host(host), Some(times));
    }
    if s.read_faults > 0 {
        let host = swarm.addr(seed);
        swarm
            .disk_mut()
            .fail_reads(FaultScope::Host(host), Some(s.read_faults));
    }
    let mut forgers = Vec::new();
    for i in 0..s.forgers {
        let target = leechers[i % leechers.len()].node;
        let raw = swarm.add_raw_node();
        let conn = swarm.raw_connect(raw, swarm.addr(target));
        let mut id = *b"-XX0000-forger-00000";
        id[19] = b'0' + i as u8;
        let peer = RemotePeer::new(conn, meta.info_hash(), PeerId(id))
            .with_reserved(Reserved::NONE.with(Extension::Fast))
            .with_piece_count(meta.piece_count());
        forgers.push(Forger { peer, next: 0 });
    }
    if s.flooder {
        let raw = swarm.add_raw_node();
        for _ in 0..FLOOD {
            swarm.raw_connect(raw, swarm.addr(seed));
        }
    }
    Run {
        swarm,
        meta,
        content,
        seed: (seed, seed_torrent_id),
        leechers,
        forgers,
    }
}

impl Run {
    fn state(&self, n: NodeId, t: TorrentId) -> Option<TorrentState> {
        self.swarm
            .session(n)
            .and_then(|s| s.stats(t, self.swarm.now()))
            .map(|s| s.state)
    }

    /// Forgers say hello once connected, then push one garbage block each per step.
    fn forge(&mut self) {
        let pieces = self.meta.piece_count();
        for f in &mut self.forgers {
            let conn = f.peer.conn();
            let data = if f.next == 0 {
                let hello = f.peer.hello_bytes(&[Message::HaveAll, Message::Unchoke]);
                hello.unwrap()
            } else {
                let garbage = Message::Piece {
                    piece: PieceIndex(f.next % pieces),
                    offset: 0,
                    data: vec![0xa5; 1024].into(),
                };
                remote::encode(&[garbage]).unwrap()
            };
            if self.swarm.raw_send(conn, data) {
                f.next += 1;
            }
        }
    }

    /// The user's part: a failed torrent is started again (the faults are counted, so the
    /// disk works again at some point).
    fn retry_failed(&mut self) {
        let mut nodes: Vec<(NodeId, TorrentId)> = vec![self.seed];
        nodes.extend(
            self.leechers
                .iter()
                .filter(|l| l.alive)
                .map(|l| (l.node, l.torrent)),
        );
        for (n, t) in nodes {
            if self.state(n, t) == Some(TorrentState::Failed) {
                self.swarm
                    .with_session(n, |s, now| s.set_state(now, t, TorrentState::Started));
            }
        }
    }

    /// Kills leecher `i`; if it comes back, it restarts at once and checks its disk.
    fn kill(&mut self, i: usize, back: bool) {
        let node = self.leechers[i].node;
        if !self.leechers[i].alive {
            return;
        }
        self.swarm.kill(node);
        if !back {
            self.leechers[i].alive = false;
            return;
        }
        self.swarm.restart(node);
        let add = AddTorrent {
            check: Some(CheckScope::All),
            ..Default::default()
        };
        self.leechers[i].torrent = self.swarm.add_torrent(node, &self.meta, add);
        self.leechers[i].checking = true;
        let seed_addr = self.swarm.addr(self.seed.0);
        let t = self.leechers[i].torrent;
        self.swarm.add_peer(node, t, seed_addr);
    }

    /// The invariants, for every leecher in the swarm.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let piece_len = u64::from(self.meta.piece_length());
        for i in 0..self.leechers.len() {
            let l = &self.leechers[i];
            if !l.alive {
                continue;
            }
            let (node, torrent) = (l.node, l.torrent);
            let Some(stats) = self
                .swarm
                .session(node)
                .and_then(|s| s.stats(torrent, self.swarm.now()))
            else {
                continue;
            };
            let have = self
                .swarm
                .session(node)
                .and_then(|s| s.bitfield(torrent))
                .cloned();
            let have = have.unwrap();
            let checking = l.checking && stats.state == TorrentState::Stopped;
            if !checking {
                let lost: Vec<PieceIndex> =
                    l.verified.iter_ones().filter(|p| !have.get(*p)).collect();
                prop_assert!(lost.is_empty(), "leecher {i} lost verified pieces {lost:?}");
            }
            let on_disk = self.swarm.content(node, &self.meta);
            for p in have.iter_ones() {
                let start = (u64::from(p.0) * piece_len) as usize;
                let end = (start + piece_len as usize).min(self.content.len());
                prop_assert!(
                    on_disk.get(start..end) == self.content.get(start..end),
                    "leecher {i} reports piece {p} verified but its bytes are wrong"
                );
            }
            let l = &mut self.leechers[i];
            if !checking {
                l.checking = false;
                l.verified = have;
            }
        }
        Ok(())
    }

    fn all_complete(&self) -> bool {
        self.leechers
            .iter()
            .filter(|l| l.alive)
            .all(|l| self.swarm.is_complete(l.node, l.torrent))
    }
}

fn run_schedule(s: &Schedule) -> Result<(), TestCaseError> {
    let mut run = build(s);
    let mut kills: BTreeMap<u64, Vec<(usize, bool)>> = BTreeMap::new();
    for &(at, i, back) in &s.kills {
        kills.entry(at).or_default().push((i % s.leechers, back));
    }
    while run.swarm.elapsed() < LIMIT {
        run.swarm.run_for(STEP);
        let secs = run.swarm.elapsed().as_secs();
        while let Some((&at, _)) = kills.first_key_value() {
            if at > secs {
                break;
            }
            for (i, back) in kills.pop_first().map(|(_, v)| v).unwrap_or_default() {
                run.kill(i, back);
            }
        }
        run.forge();
        run.retry_failed();
        run.check()?;
        if kills.is_empty() && run.all_complete() {
            break;
        }
    }
    for (i, l) in run.leechers.iter().enumerate().filter(|(_, l)| l.alive) {
        prop_assert!(
            run.swarm.is_complete(l.node, l.torrent),
            "leecher {i} stalled: {:?}",
            run.swarm
                .session(l.node)
                .and_then(|x| x.debug_state(l.torrent, run.swarm.now()))
        );
        prop_assert!(
            run.swarm.content(l.node, &run.meta) == run.content,
            "leecher {i} bytes"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x5eed_fa17),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_surviving_leecher_completes_and_nothing_verified_is_lost(s in schedule()) {
        run_schedule(&s)?;
    }
}
