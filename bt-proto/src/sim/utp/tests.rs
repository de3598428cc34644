//! The figures of [`super::figures`] at [`Scale::quick`]: floors a debug test can check in
//! seconds. The full-size figures are the bench's `utp_sim` part.

use std::time::Duration;

use super::figures::{self, Scale};

#[test]
fn one_flow_fills_a_lossy_reordering_duplicating_link() {
    let u = figures::single_flow(Scale::quick(), 0.01, 0.01, Duration::from_millis(1), 1);
    println!("quick, 1 % loss, 1 % duplication, 1 ms jitter: {u:?}");
    assert!(u.share >= 0.9, "{u:?}");
}

#[test]
fn two_flows_share_a_bottleneck_fairly() {
    let f = figures::two_flows(Scale::quick(), 2);
    println!("quick, two flows: {f:?}");
    let total: f64 = f.shares.iter().sum();
    assert!(total >= 0.9, "{f:?}");
    for s in f.shares {
        assert!((0.4..=0.6).contains(&(s / total)), "{f:?}");
    }
    assert!(f.jain >= 0.96, "{f:?}");
}

#[test]
fn a_flow_yields_to_a_stream_that_keeps_a_queue_past_the_target() {
    let scale = Scale {
        warmup: Duration::from_secs(30),
        ..Scale::quick()
    };
    let r = figures::next_to_tcp(scale, Duration::from_secs(5), Duration::from_millis(250), 3);
    println!("quick, next to a stream keeping 250 ms of queue: {r:?}");
    assert!(r.utp_alone >= 0.8, "{r:?}");
    assert!(r.queuing > crate::utp::ledbat::TARGET, "{r:?}");
    assert!(r.utp <= 0.1, "{r:?}");
    assert!(r.tcp >= 0.85, "{r:?}");
}
