//! The simulator's promise at scale: the same seed gives the same run, however the simulator
//! is made faster. The digest below was recorded on the simulator before its speed work
//! (issue 22); a change that moves it changes what the engines see, and must say why.
// Test code: a failed run should fail the test on its line.
#![allow(clippy::unwrap_used)]

use bt_tests::bench::sim::{self, Scenario};

/// A hundred nodes (1 seed, 99 leechers) on the bench's network (25 ms links, uploads of
/// 1 to 10 Mbit/s) sharing 256 KiB in 16 KiB pieces: small enough for a debug build, large
/// enough that every leecher trades with dozens of others over shared upload queues.
const SWARM: Scenario = Scenario {
    leechers: 99,
    size: 256 << 10,
    piece_length: 16 << 10,
    seed: 22,
};

/// SHA-1 of the event log of [`SWARM`].
const RECORDED: &str = "4f28a8771e370b570adc185d071bde37e288052e";

#[test]
fn hundred_node_swarm_replays_the_recorded_event_log() {
    let run = sim::run(SWARM).unwrap();
    assert_eq!(run.nodes, 100);
    eprintln!(
        "100 nodes: virtual {:.3} s, wall {:.3} s",
        run.virtual_time.as_secs_f64(),
        run.wall.as_secs_f64()
    );
    assert_eq!(run.digest, RECORDED);
}
