//! uTP on the simulator's network (`bt_proto::sim::utp::figures`): one flow's share of a
//! lossy, reordering, duplicating 100 Mbit/s link with 50 ms one way; two flows through one
//! bottleneck; a flow next to a TCP-like stream that keeps 250 ms of queue.

use std::time::{Duration, Instant};

use bt_proto::sim::utp::figures::{self, Scale};
use serde_json::{Value, json};

/// Random loss rates of the single-flow figure: 0.1 %, what long wired paths lose, and 1 %,
/// a poor wireless hop, the rate at which halving on every loss collapsed to 3 % of the link.
pub const LOSSES: [f64; 2] = [0.001, 0.01];

/// Duplicated datagrams: 1 %.
pub const DUPLICATE: f64 = 0.01;

/// Extra delay per datagram, up to: 0.5 ms, about five packets' spacing at 100 Mbit/s, so
/// datagrams arrive out of order up to a few places (more than the three that mean a loss).
pub const JITTER: Duration = Duration::from_micros(500);

/// The three figures at `scale`, and the wall time they took.
pub fn figures(scale: Scale) -> Value {
    let started = Instant::now();
    let single: Vec<Value> = LOSSES
        .iter()
        .map(|&loss| {
            let u = figures::single_flow(scale, loss, DUPLICATE, JITTER, 1);
            json!({
                "loss": loss, "duplicate": DUPLICATE, "jitter_us": JITTER.as_micros() as u64,
                "share": u.share, "retransmissions": u.retransmissions,
                "timeouts": u.timeouts, "window": u.window,
            })
        })
        .collect();
    let f = figures::two_flows(scale, 2);
    let head_start = Duration::from_secs(10).min(scale.warmup / 2);
    let t = figures::next_to_tcp(scale, head_start, Duration::from_millis(250), 3);
    json!({
        "rate_bytes_per_sec": scale.rate,
        "latency_one_way_ms": scale.latency.as_millis() as u64,
        "warmup_secs": scale.warmup.as_secs(), "measure_secs": scale.measure.as_secs(),
        "single_flow": single,
        "two_flows": {"shares": f.shares, "jain": f.jain},
        "next_to_tcp": {
            "head_start_secs": head_start.as_secs(), "tcp_queue_ms": 250,
            "utp_share": t.utp, "tcp_share": t.tcp, "utp_alone_share": t.utp_alone,
            "utp_queuing_delay_ms": t.queuing.as_secs_f64() * 1000.0,
            "utp_window": t.window,
        },
        "wall_secs": started.elapsed().as_secs_f64(),
    })
}
