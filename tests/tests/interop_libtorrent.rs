//! Interop with libtorrent-rasterbar 2.0 (python3-libtorrent) through opentracker.

use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tokio::Tokio;

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 64 * MIB;
const PIECE: u32 = 256 * 1024;

#[test]
fn lt_seeds_we_download_http_single() {
    run_tokio(async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("lt");
        let p = make_payload(
            &seed_dir,
            "payload",
            Layout::Single,
            SIZE,
            PIECE,
            &tracker.http_url(),
        );
        tracker.allow(p.info_hash());
        let Some(mut lt) = Lt::start("libtorrent-seed", &p, &seed_dir, LtArgs::seed(), &logs)
        else {
            return;
        };
        lt.wait_announced::<Tokio>().await;
        let r = our_download::<Tokio>(
            &p,
            &tmp.path().join("ours"),
            &[],
            &[&lt.proc, tracker.proc()],
        )
        .await;
        report("libtorrent", "lt->bt", Announce::Http, Layout::Single, &r);
        lt.stop();
    });
}
