//! The DHT on the simulator's datagram network (`bt_proto::sim::dht`): lookups among a
//! thousand nodes, how many reach the true closest, and what they cost in queries and hops.

use std::time::Instant;

use bt_proto::dht::NodeId;
use bt_proto::dht::routing::K;
use bt_proto::rng::Rng;
use bt_proto::sim::dht::DhtNetwork;
use serde_json::{Value, json};

/// The value at fraction `q` (0 to 1) of sorted `v`.
fn quantile(v: &[u32], q: f64) -> u32 {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0)
}

/// `lookups` lookups from random nodes to random targets in a network of `nodes`, after
/// every node bootstrapped from the first: the fraction that found exactly the k closest,
/// queries and hops per lookup (median, 95th percentile), and the wall time.
pub fn lookups(nodes: usize, lookups: usize, seed: u64) -> Value {
    let started = Instant::now();
    let mut net = DhtNetwork::new(nodes, seed);
    net.bootstrap_all();
    let bootstrapped = started.elapsed().as_secs_f64();
    let mut rng = Rng::seed_from_u64(seed ^ 0xd47);
    let (mut queries, mut hops, mut exact) = (Vec::new(), Vec::new(), 0);
    for _ in 0..lookups {
        let asker = 1 + rng.index(nodes.saturating_sub(1).max(1));
        let target = NodeId::random(&mut rng);
        let r = net.lookup(asker, target);
        let truth = net.truth(&target, asker);
        if r.closest.len() == K && r.closest.iter().zip(&truth).all(|(a, b)| a.id == b.id) {
            exact += 1;
        }
        queries.push(r.queries);
        hops.push(r.hops);
    }
    queries.sort_unstable();
    hops.sort_unstable();
    json!({
        "nodes": nodes, "lookups": lookups,
        "exact_k_closest_fraction": exact as f64 / lookups.max(1) as f64,
        "queries_median": quantile(&queries, 0.5), "queries_p95": quantile(&queries, 0.95),
        "hops_median": quantile(&hops, 0.5), "hops_p95": quantile(&hops, 0.95),
        "datagrams_sent": net.sent(),
        "bootstrap_wall_secs": bootstrapped,
        "wall_secs": started.elapsed().as_secs_f64(),
    })
}
