//! Peer exchange (BEP 11) with libtorrent, on loopback: a swarm where it is the only way our
//! peers and libtorrent's can meet, both ways.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::run_on;
use bt_tokio::Tokio;

/// 16 MiB in 256 KiB pieces: nobody completes (the only data is half of it), so only the
/// size of the files on disk matters.
const SIZE: u64 = 16 * 1024 * 1024;
const PIECE: u32 = 256 * 1024;

/// How long libtorrent's peer exchange may take to name a peer: it sends a message a minute.
const PEX_WAIT: Duration = Duration::from_secs(90);

/// No tracker answers (the torrent's is a closed port), and nobody completes: our peer S has
/// the first half of the data, the rest of the swarm none, so every connection stays up.
/// libtorrent L, with its `ut_pex` plugin, is connected to S. Our leecher B (127.0.0.2) is
/// given only L's address, and our leecher C (127.0.0.3) only S's. B can meet S only through
/// L's peer exchange, and C can meet L only through S's: both must happen.
#[test]
fn peer_exchange_with_libtorrent_both_ways() {
    run_on::<Tokio, _>("pex with libtorrent", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        // Port 9 (discard) on loopback: nothing listens, every announce fails at once.
        let dead = "http://127.0.0.1:9/announce";
        let seed_dir = tmp.path().join("s");
        let p = make_payload(&seed_dir, "payload", Layout::Single, SIZE, PIECE, dead);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(seed_dir.join(&p.name))
            .unwrap();
        file.set_len(SIZE / 2).unwrap();
        let s = Ours::<Tokio>::start(&p, &seed_dir, &[]).await;
        let lt_dir = tmp.path().join("lt");
        let args = LtArgs::leech().pex().connect(s.addr());
        let Some(lt) = Lt::start("libtorrent-pex", &p, &lt_dir, args, &logs) else {
            return;
        };
        let b = Ours::<Tokio>::start_at(
            Ipv4Addr::new(127, 0, 0, 2),
            &p,
            &tmp.path().join("b"),
            &[lt.addr()],
        )
        .await;
        let c = Ours::<Tokio>::start_at(
            Ipv4Addr::new(127, 0, 0, 3),
            &p,
            &tmp.path().join("c"),
            &[s.addr()],
        )
        .await;
        let met = poll_until::<Tokio>(PEX_WAIT, || {
            b.peers_met().contains(&s.addr()) && c.peers_met().contains(&lt.addr())
        })
        .await;
        if !met {
            fail(
                &format!(
                    "B met {:?} (S is {}), C met {:?} (libtorrent is {})",
                    b.peers_met(),
                    s.addr(),
                    c.peers_met(),
                    lt.addr()
                ),
                &[&lt.proc],
            );
        }
        b.shutdown().await;
        c.shutdown().await;
        s.shutdown().await;
    });
}
