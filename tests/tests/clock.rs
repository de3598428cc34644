//! The adapter reads no clock but its runtime's (`Runtime::now`): under tokio's paused time
//! its timeouts elapse in virtual time, without real waiting.

use std::sync::mpsc;
use std::time::Duration;

use bt_adapter::tracker::{AnnounceError, UDP_DEADLINE};
use bt_tests::conformance::first_tracker_error;
use bt_tests::swarm::loopback_session;
use bt_tokio::Tokio;

/// Real time the whole scenario may take: well under [`UDP_DEADLINE`], so an adapter that
/// waited for the real clock (or spun until it caught up) fails.
const REAL_TIME_LIMIT: Duration = Duration::from_secs(UDP_DEADLINE.as_secs() / 2);

/// A UDP tracker that never answers: the announce gives up after [`UDP_DEADLINE`] of the
/// runtime's clock, which under paused time runs ahead as soon as nothing else is to do.
#[test]
fn a_udp_tracker_timeout_elapses_on_tokios_paused_clock() {
    let (done, result) = mpsc::channel();
    // On its own thread, so a stall fails the test by the real-time limit below instead of
    // hanging it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let outcome = rt.block_on(async {
            // Bound and kept, never read: datagrams to it get no answer and no ICMP error.
            let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let url = format!("udp://{}/announce", silent.local_addr().unwrap());
            let started = tokio::time::Instant::now();
            let error = first_tracker_error(loopback_session::<Tokio>().await, &url).await;
            (error, started.elapsed())
        });
        let _ = done.send(outcome);
    });
    let (error, virtual_elapsed) = result
        .recv_timeout(REAL_TIME_LIMIT)
        .expect("the UDP announce did not time out on the paused clock");
    assert_eq!(error, AnnounceError::Timeout(UDP_DEADLINE));
    assert!(
        virtual_elapsed >= UDP_DEADLINE,
        "gave up after {virtual_elapsed:?} of the runtime's clock"
    );
}
