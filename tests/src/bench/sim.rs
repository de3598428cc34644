//! The swarm simulator at integrator scale (`bt_proto::sim::swarm`): one seed and many
//! leechers on one thread, on virtual time. The figure is simulated payload per second of
//! wall time; the digest of the run's event log shows that a faster simulator still replays
//! the same run.

use std::time::{Duration, Instant};

use bt_proto::engine::AddTorrent;
use bt_proto::rng::Rng;
use bt_proto::sha1;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use serde_json::{Value, json};

/// One-way latency of every link: 25 ms, a path between two hosts of one continent.
pub const LATENCY: Duration = Duration::from_millis(25);

/// Slowest upload a node gets: 1 Mbit/s, a poor home line.
pub const MIN_UPLOAD: u64 = 1_000_000 / 8;

/// Fastest upload a node gets (and the seed's): 10 Mbit/s.
pub const MAX_UPLOAD: u64 = 10_000_000 / 8;

/// Virtual time a run may take before it counts as stalled: an hour, far beyond what the
/// seed alone would need to serve each scenario here.
const LIMIT: Duration = Duration::from_secs(3600);

/// A swarm to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Leechers besides the one seed.
    pub leechers: usize,
    /// Bytes of the shared file.
    pub size: u64,
    /// Piece length of its torrent.
    pub piece_length: u32,
    /// Seed of the content, the uploads, the network and the engines.
    pub seed: u64,
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Nodes, the seed included.
    pub nodes: usize,
    /// Bytes the leechers downloaded in all: leechers × size.
    pub payload_bytes: u64,
    /// Virtual time until the last leecher completed.
    pub virtual_time: Duration,
    /// Wall time of the run (building the swarm included).
    pub wall: Duration,
    /// SHA-1 of every node's event log (node, virtual time, event), node by node, in hex.
    pub digest: String,
}

/// Runs `s`: one seed uploading at [`MAX_UPLOAD`], leechers uploading at a rate drawn
/// between [`MIN_UPLOAD`] and [`MAX_UPLOAD`], every link [`LATENCY`] one way; the leechers
/// find each other through the simulated tracker. Runs until every leecher completes.
pub fn run(s: Scenario) -> Result<Outcome, String> {
    let started = Instant::now();
    let (meta, content) = make_torrent(&[("payload.bin", s.size)], s.piece_length, s.seed)
        .map_err(|e| e.to_string())?;
    let mut rng = Rng::seed_from_u64(s.seed);
    let mut swarm = Swarm::new(s.seed);
    swarm.set_default_link(LinkConfig::new(LATENCY));
    let seed = swarm.add_node(capped(MAX_UPLOAD));
    swarm.add_seed(seed, &meta, &content);
    drop(content);
    let leechers: Vec<_> = (0..s.leechers)
        .map(|_| {
            let up = MIN_UPLOAD + rng.below(MAX_UPLOAD - MIN_UPLOAD + 1);
            let n = swarm.add_node(capped(up));
            (n, swarm.add_torrent(n, &meta, AddTorrent::default()))
        })
        .collect();
    // Leechers complete roughly in order of joining; looking from the first one not yet
    // complete keeps the check cheap at every step.
    let mut first_incomplete = 0;
    let virtual_time = swarm
        .run_until(
            |sw| {
                while let Some((n, t)) = leechers.get(first_incomplete) {
                    if !sw.is_complete(*n, *t) {
                        return false;
                    }
                    first_incomplete += 1;
                }
                true
            },
            LIMIT,
        )
        .map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    Ok(Outcome {
        nodes: s.leechers + 1,
        payload_bytes: s.size * s.leechers as u64,
        virtual_time,
        wall,
        digest: digest(&swarm, s.leechers + 1),
    })
}

fn capped(upload: u64) -> NodeOptions {
    NodeOptions {
        upload: Some(upload),
        ..Default::default()
    }
}

/// SHA-1 over the event logs of nodes `0..nodes`, in hex.
fn digest(swarm: &Swarm, nodes: usize) -> String {
    let mut log = String::new();
    for n in 0..nodes {
        for (at, e) in swarm.events(NodeId(n)) {
            log.push_str(&format!("{n} {} {e:?}\n", at.as_nanos()));
        }
    }
    sha1(log.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The swarm: 1 seed and 100 leechers sharing 64 MiB in 256 KiB pieces.
pub const HUNDRED: Scenario = Scenario {
    leechers: 100,
    size: 64 << 20,
    piece_length: 256 << 10,
    seed: 22,
};

/// The integrator's swarm: 1 seed and 999 leechers sharing 16 MiB in 256 KiB pieces.
pub const THOUSAND: Scenario = Scenario {
    leechers: 999,
    size: 16 << 20,
    piece_length: 256 << 10,
    seed: 22,
};

/// `--quick`'s stand-ins, each a few seconds: 1 + 20 × 16 MiB and 1 + 100 × 4 MiB. Their
/// figures only show that the part runs; the goals are about the full scenarios.
pub const QUICK: (Scenario, Scenario) = (
    Scenario {
        leechers: 20,
        size: 16 << 20,
        ..HUNDRED
    },
    Scenario {
        leechers: 100,
        size: 4 << 20,
        ..THOUSAND
    },
);

/// Both figures: the 101-node swarm's payload rate and the 1,000-node swarm's wall time.
pub fn figures(hundred: Scenario, thousand: Scenario) -> Result<Value, String> {
    let h = run(hundred)?;
    let k = run(thousand)?;
    Ok(json!({
        "sim": {
            "nodes": h.nodes, "payload_bytes": h.payload_bytes,
            "virtual_secs": h.virtual_time.as_secs_f64(), "wall_secs": h.wall.as_secs_f64(),
            "mb_per_s": h.payload_bytes as f64 / h.wall.as_secs_f64() / 1e6,
            "digest": h.digest,
        },
        "sim_1000": {
            "nodes": k.nodes, "payload_bytes": k.payload_bytes,
            "virtual_secs": k.virtual_time.as_secs_f64(), "wall_secs": k.wall.as_secs_f64(),
            "mb_per_s": k.payload_bytes as f64 / k.wall.as_secs_f64() / 1e6,
            "digest": k.digest,
        },
    }))
}
