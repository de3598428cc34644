//! `sim_run`: one run of a simulator bench scenario, for comparing two builds by alternating
//! their runs when a single run swings too much to tell them apart.
//!
//! ```text
//! cargo run --release -p bt-tests --bin sim_run -- [101|1000]
//! ```
//!
//! It runs `bench::sim::HUNDRED` (the default) or `THOUSAND` once and prints the wall time in
//! seconds, the virtual time in seconds and the digest of the event log.

use bt_tests::bench::sim;

fn main() -> Result<(), String> {
    let scenario = match std::env::args().nth(1).as_deref() {
        None | Some("101") => sim::HUNDRED,
        Some("1000") => sim::THOUSAND,
        Some(other) => return Err(format!("unknown scenario {other}: 101 or 1000")),
    };
    let o = sim::run(scenario)?;
    println!(
        "{:.2} {:.1} {}",
        o.wall.as_secs_f64(),
        o.virtual_time.as_secs_f64(),
        o.digest
    );
    Ok(())
}
