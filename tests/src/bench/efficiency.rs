//! `--only efficiency`: how close a simulated swarm comes to the fluid bound (issue 19).
//!
//! For one file of size F, a seed uploading at u_s and N leechers uploading at u_i and
//! downloading at d_i, no schedule finishes everyone sooner than
//!
//! ```text
//! T_min = max(F / u_s, F / min d_i, N·F / (u_s + Σ u_i))     (Kumar and Ross, 2006)
//! ```
//!
//! Each scenario runs 1 seed and N leechers on `bt_proto::sim::swarm`: the seed uploads at
//! [`SEED_UPLOAD`], each leecher at a rate drawn between [`MIN_UPLOAD`] and [`MAX_UPLOAD`],
//! every node downloads at most [`DOWNLOAD`], and every pair of nodes has its own one-way
//! latency drawn between [`MIN_LATENCY`] and [`MAX_LATENCY`]. The figures are the bound, when
//! the last leecher completed, the mean completion, and their ratios; and, to show what the
//! swarm lost against the bound, how much of the upload capacity it used in each tenth of
//! the run. The simulator is deterministic, so every figure replays exactly.

use std::time::{Duration, Instant};

use bt_proto::engine::{AddTorrent, Event, TorrentId};
use bt_proto::rng::Rng;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use serde_json::{Value, json};

/// The seed's upload: 20 Mbit/s, the issue's.
pub const SEED_UPLOAD: u64 = 20_000_000 / 8;

/// Slowest upload a leecher gets: 1 Mbit/s, a poor home line (the issue's range).
pub const MIN_UPLOAD: u64 = 1_000_000 / 8;

/// Fastest upload a leecher gets: 10 Mbit/s (the issue's range).
pub const MAX_UPLOAD: u64 = 10_000_000 / 8;

/// Every node's download: 50 Mbit/s, the issue's.
pub const DOWNLOAD: u64 = 50_000_000 / 8;

/// Shortest one-way latency between two nodes: 20 ms (the issue's range, taken one way).
pub const MIN_LATENCY: Duration = Duration::from_millis(20);

/// Longest one-way latency between two nodes: 80 ms.
pub const MAX_LATENCY: Duration = Duration::from_millis(80);

/// Virtual time a run may take before it counts as stalled: three hours, far beyond what
/// the seed alone would need to serve any scenario here (500 × 32 MiB at 20 Mbit/s is
/// about 1.9 hours).
const LIMIT: Duration = Duration::from_secs(3 * 3600);

/// How often the upload counters are sampled: every virtual second, fine enough to show
/// the ramp-up of runs lasting minutes and cheap beside the run itself.
pub const SAMPLE: Duration = Duration::from_secs(1);

/// Slices of a run whose upload utilisation is reported: tenths.
const SLICES: usize = 10;

/// One leecher in this many leaves the swarm as soon as it completes, in the scenario that
/// has leavers: 5, the issue's 20 %.
pub const LEAVE_EVERY: usize = 5;

/// A swarm to measure.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Leechers besides the one seed.
    pub leechers: usize,
    /// Bytes of the shared file.
    pub size: u64,
    /// Piece length of its torrent.
    pub piece_length: u32,
    /// Probability that one transmission of a segment is lost, on every link.
    pub loss: f64,
    /// Whether one leecher in [`LEAVE_EVERY`] leaves the swarm once complete.
    pub leavers: bool,
    /// Seed of the content, the draws, the network and the engines.
    pub seed: u64,
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The fluid bound T_min for the drawn capacities.
    pub bound: Duration,
    /// Each leecher's completion, in the order they were added.
    pub completions: Vec<Duration>,
    /// Wall time of the run (building the swarm included).
    pub wall: Duration,
    /// Fraction of the whole swarm's upload capacity (seed and leechers) used in each tenth
    /// of the run until the last completion.
    pub utilisation: Vec<f64>,
    /// Fraction of the seed's upload used until the last completion.
    pub seed_utilisation: f64,
    /// Fraction of the seed's upload used in the first tenth of the run.
    pub seed_first_tenth: f64,
    /// Payload bytes uploaded by every node, over the N·F the leechers needed: above 1 when
    /// blocks were sent twice (end game) or to leechers that left.
    pub upload_overhead: f64,
}

impl Outcome {
    /// When the last leecher completed.
    pub fn last(&self) -> Duration {
        self.completions.iter().copied().max().unwrap_or_default()
    }

    /// The mean completion.
    pub fn mean(&self) -> Duration {
        let n = self.completions.len().max(1) as u32;
        self.completions.iter().sum::<Duration>() / n
    }

    /// The bound over the last completion: 1 is a perfect schedule.
    pub fn efficiency(&self) -> f64 {
        ratio(self.bound, self.last())
    }

    /// The bound over the mean completion.
    pub fn mean_efficiency(&self) -> f64 {
        ratio(self.bound, self.mean())
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The fluid bound T_min = max(F / u_s, F / min d_i, N·F / (u_s + Σ u_i)) for a file of
/// `size` bytes, a seed uploading at `seed_upload` and leechers uploading at `uploads` and
/// downloading at `downloads` (bytes per second; the leechers' N is `uploads.len()`).
/// Zero with no leechers.
pub fn bound(size: u64, seed_upload: u64, uploads: &[u64], downloads: &[u64]) -> Duration {
    let Some(min_down) = downloads.iter().copied().min() else {
        return Duration::ZERO;
    };
    let f = size as f64;
    let capacity = (seed_upload + uploads.iter().sum::<u64>()) as f64;
    let secs = [
        f / seed_upload.max(1) as f64,
        f / min_down.max(1) as f64,
        uploads.len() as f64 * f / capacity.max(1.0),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    Duration::from_secs_f64(secs)
}

/// The swarm as built: its nodes, the leechers' torrents and the capacities drawn.
struct Built {
    swarm: Swarm,
    seed: NodeId,
    seed_torrent: TorrentId,
    leechers: Vec<(NodeId, TorrentId)>,
    uploads: Vec<u64>,
}

fn build(s: &Scenario) -> Result<Built, String> {
    let (meta, content) = make_torrent(&[("payload.bin", s.size)], s.piece_length, s.seed)
        .map_err(|e| e.to_string())?;
    let mut rng = Rng::seed_from_u64(s.seed);
    let mut swarm = Swarm::new(s.seed);
    let capped = |upload| NodeOptions {
        upload: Some(upload),
        download: Some(DOWNLOAD),
        ..Default::default()
    };
    let seed = swarm.add_node(capped(SEED_UPLOAD));
    let seed_torrent = swarm.add_seed(seed, &meta, &content);
    drop(content);
    // Every capacity and latency is drawn before any leecher starts, so that a scenario's
    // links do not depend on what the engines did meanwhile.
    let uploads: Vec<u64> = (0..s.leechers)
        .map(|_| MIN_UPLOAD + rng.below(MAX_UPLOAD - MIN_UPLOAD + 1))
        .collect();
    let nodes: Vec<NodeId> = uploads.iter().map(|&u| swarm.add_node(capped(u))).collect();
    let all: Vec<NodeId> = std::iter::once(seed).chain(nodes.iter().copied()).collect();
    let span = (MAX_LATENCY - MIN_LATENCY).as_micros() as u64;
    for (i, &a) in all.iter().enumerate() {
        for &b in all.iter().skip(i + 1) {
            let latency = MIN_LATENCY + Duration::from_micros(rng.below(span + 1));
            swarm.set_path(a, b, LinkConfig::new(latency).with_loss(s.loss));
        }
    }
    let leechers = nodes
        .into_iter()
        .map(|n| (n, swarm.add_torrent(n, &meta, AddTorrent::default())))
        .collect();
    Ok(Built {
        swarm,
        seed,
        seed_torrent,
        leechers,
        uploads,
    })
}

/// Payload bytes uploaded so far by the seed and by all the leechers.
fn uploaded(b: &Built) -> (u64, u64) {
    let now = b.swarm.now();
    let of = |(n, t): (NodeId, TorrentId)| {
        b.swarm
            .session(n)
            .and_then(|s| s.stats(t, now))
            .map_or(0, |st| st.uploaded)
    };
    let seed = of((b.seed, b.seed_torrent));
    (seed, b.leechers.iter().map(|&l| of(l)).sum())
}

/// Runs `s` until every leecher completes (one in [`LEAVE_EVERY`] taken off the network as
/// it completes, if `s.leavers`), sampling the upload counters every [`SAMPLE`].
pub fn run(s: Scenario) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut b = build(&s)?;
    let downloads = vec![DOWNLOAD; s.leechers];
    let bound = bound(s.size, SEED_UPLOAD, &b.uploads, &downloads);
    let leaves = |i: usize| s.leavers && i % LEAVE_EVERY == LEAVE_EVERY - 1;
    let mut gone = vec![false; s.leechers];
    let mut samples = vec![(Duration::ZERO, 0u64, 0u64)];
    let mut next_sample = SAMPLE;
    let mut first_incomplete = 0;
    loop {
        let left = LIMIT.saturating_sub(b.swarm.elapsed());
        let leechers = &b.leechers;
        let gone_now = &gone;
        b.swarm
            .run_until(
                |sw| {
                    if sw.elapsed() >= next_sample {
                        return true;
                    }
                    let leaving = leechers
                        .iter()
                        .zip(gone_now)
                        .enumerate()
                        .any(|(i, (&(n, t), &gone))| leaves(i) && !gone && sw.is_complete(n, t));
                    if leaving {
                        return true;
                    }
                    // Looking from the first leecher not yet complete keeps this cheap.
                    while let Some(&(n, t)) = leechers.get(first_incomplete) {
                        if !sw.is_complete(n, t) {
                            return false;
                        }
                        first_incomplete += 1;
                    }
                    true
                },
                left,
            )
            .map_err(|e| e.to_string())?;
        for (i, (&(n, t), gone)) in b.leechers.iter().zip(gone.iter_mut()).enumerate() {
            if leaves(i) && !*gone && b.swarm.is_complete(n, t) {
                b.swarm.kill(n);
                *gone = true;
            }
        }
        if b.swarm.elapsed() >= next_sample {
            let (seed, leechers) = uploaded(&b);
            samples.push((b.swarm.elapsed(), seed, leechers));
            next_sample += SAMPLE;
        }
        if first_incomplete >= b.leechers.len() {
            break;
        }
    }
    let (seed_up, leechers_up) = uploaded(&b);
    samples.push((b.swarm.elapsed(), seed_up, leechers_up));
    let completions = b
        .leechers
        .iter()
        .map(|&(n, t)| completed_at(&b.swarm, n, t).unwrap_or_else(|| b.swarm.elapsed()))
        .collect();
    let wall = started.elapsed();
    let capacity = SEED_UPLOAD + b.uploads.iter().sum::<u64>();
    let mut out = Outcome {
        bound,
        completions,
        wall,
        utilisation: Vec::new(),
        seed_utilisation: 0.0,
        seed_first_tenth: 0.0,
        upload_overhead: (seed_up + leechers_up) as f64
            / (s.size * s.leechers as u64).max(1) as f64,
    };
    let last = out.last();
    out.utilisation = (0..SLICES)
        .map(|k| {
            let (from, to) = (
                last * k as u32 / SLICES as u32,
                last * (k as u32 + 1) / SLICES as u32,
            );
            let (s0, l0) = at(&samples, from);
            let (s1, l1) = at(&samples, to);
            (s1 + l1).saturating_sub(s0 + l0) as f64 / (capacity as f64 * (to - from).as_secs_f64())
        })
        .collect();
    out.seed_utilisation = at(&samples, last).0 as f64 / (SEED_UPLOAD as f64 * last.as_secs_f64());
    let tenth = last / SLICES as u32;
    out.seed_first_tenth =
        at(&samples, tenth).0 as f64 / (SEED_UPLOAD as f64 * tenth.as_secs_f64());
    Ok(out)
}

/// When leecher `n` emitted [`Event::Complete`] for `t`.
fn completed_at(swarm: &Swarm, n: NodeId, t: TorrentId) -> Option<Duration> {
    swarm.events(n).iter().find_map(|(at, e)| match e {
        Event::Complete { torrent } if *torrent == t => Some(*at),
        _ => None,
    })
}

/// The counters (seed, leechers) of the last sample taken at or before `t`.
fn at(samples: &[(Duration, u64, u64)], t: Duration) -> (u64, u64) {
    samples
        .iter()
        .take_while(|(when, _, _)| *when <= t)
        .last()
        .map_or((0, 0), |&(_, s, l)| (s, l))
}

/// The issue's scenarios: 10, 100 and 500 leechers (the 500 on a 32 MiB file, so that the
/// run takes a minute rather than most of an hour; the bound is computed for whatever F is
/// used), then the 100 with 1 % loss and with 20 % of leechers leaving on completion. All
/// in 256 KiB pieces.
pub fn scenarios() -> Vec<Scenario> {
    let base = Scenario {
        leechers: 100,
        size: 256 << 20,
        piece_length: 256 << 10,
        loss: 0.0,
        leavers: false,
        seed: 19,
    };
    vec![
        Scenario {
            leechers: 10,
            ..base
        },
        base,
        Scenario {
            leechers: 500,
            size: 32 << 20,
            ..base
        },
        Scenario { loss: 0.01, ..base },
        Scenario {
            leavers: true,
            ..base
        },
    ]
}

/// `--quick`'s stand-ins, a few seconds in all: the same shapes on small files. Their
/// figures only show that the part runs; the issue's goals are about [`scenarios`].
pub fn quick_scenarios() -> Vec<Scenario> {
    let sizes = [16 << 20, 4 << 20, 1 << 20, 4 << 20, 4 << 20];
    let leechers = [10, 100, 200, 100, 100];
    scenarios()
        .into_iter()
        .zip(sizes.into_iter().zip(leechers))
        .map(|(s, (size, leechers))| Scenario {
            size,
            leechers,
            ..s
        })
        .collect()
}

/// A scenario's name in the table: leechers, size, and what is special about it.
fn label(s: &Scenario) -> String {
    let mut l = format!("eff 1+{} × {} MiB", s.leechers, s.size >> 20);
    if s.loss > 0.0 {
        l.push_str(&format!(", {} % loss", s.loss * 100.0));
    }
    if s.leavers {
        l.push_str(", 20 % leave");
    }
    l
}

/// Rows of the bench's table: (bench, figure, target).
pub type Rows = Vec<(String, String, String)>;

/// Runs every scenario: the table's rows and the `efficiency` array.
pub fn figures(scenarios: &[Scenario]) -> Result<(Rows, Value), String> {
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for s in scenarios {
        let o = run(*s)?;
        rows.push((
            format!("{}: last/mean (% of bound)", label(s)),
            format!(
                "{:.1}/{:.1}",
                100.0 * o.efficiency(),
                100.0 * o.mean_efficiency()
            ),
            "≥ 90/95".to_string(),
        ));
        all.push(json!({
            "leechers": s.leechers, "size": s.size, "piece_length": s.piece_length,
            "loss": s.loss, "leave_fraction": if s.leavers { 1.0 / LEAVE_EVERY as f64 } else { 0.0 },
            "bound_secs": o.bound.as_secs_f64(), "last_secs": o.last().as_secs_f64(),
            "mean_secs": o.mean().as_secs_f64(), "first_secs":
                o.completions.iter().min().copied().unwrap_or_default().as_secs_f64(),
            "efficiency": o.efficiency(), "mean_efficiency": o.mean_efficiency(),
            "wall_secs": o.wall.as_secs_f64(),
            "utilisation_by_tenth": o.utilisation, "seed_utilisation": o.seed_utilisation,
            "seed_utilisation_first_tenth": o.seed_first_tenth,
            "upload_overhead": o.upload_overhead,
        }));
    }
    Ok((rows, Value::Array(all)))
}
