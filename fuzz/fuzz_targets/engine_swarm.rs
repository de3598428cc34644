//! Whole swarms on the simulator with fuzz-chosen topology, link faults, upload caps, hostile
//! (corrupting) seeds, leechers that know the torrent by magnet link only, and peers leaving:
//! never a panic, never a hang (virtual time is bounded), every leecher that completes holds
//! exactly the torrent's bytes, and while an honest seed stays in the swarm every leecher
//! left completes.
#![no_main]

use std::time::Duration;

use bt_proto::Bitfield;
use bt_proto::engine::AddTorrent;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeOptions, Swarm, make_torrent};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Below this connection lifetime a link is too broken to demand completion of: at 200 ms and
/// a tenth of packets lost, a handshake, the piece summary, interest, unchoke and the first
/// blocks take seconds.
const MIN_CONNECTION_LIFE_SECS: u64 = 10;

fn run(u: &mut Unstructured) -> Result<()> {
    let size = u.int_in_range(1..=300_000u64)?;
    let second = u.int_in_range(0..=100_000u64)?;
    let piece = [16 * 1024, 32 * 1024][u.choose_index(2)?];
    let files: Vec<(&str, u64)> = if second > 0 {
        vec![("a", size), ("d/b", second)]
    } else {
        vec![("a", size)]
    };
    let Ok((meta, content)) = make_torrent(&files, piece, u.arbitrary()?) else {
        return Ok(());
    };
    let mut swarm = Swarm::new(u.arbitrary()?);
    let loss = [0.0, 0.01, 0.1][u.choose_index(3)?];
    let mut link = LinkConfig::new(Duration::from_millis(u.int_in_range(1..=200)?)).with_loss(loss);
    // Connections cut within this many seconds, if at all.
    let mut cut_within = None;
    if u.arbitrary()? {
        let secs = u.int_in_range(1..=60)?;
        link = link.with_drop_within(Duration::from_secs(secs));
        cut_within = Some(secs);
    }
    swarm.set_default_link(link);
    let upload = |u: &mut Unstructured| -> Result<Option<u64>> {
        Ok(if u.arbitrary()? {
            Some(u.int_in_range(8..=1024)? * 1024)
        } else {
            None
        })
    };
    let mut seeds = Vec::new();
    let mut honest_seeds = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let options = NodeOptions {
            upload: upload(u)?,
            corrupt_uploads: u.ratio(1, 4)?,
            ..Default::default()
        };
        let honest = !options.corrupt_uploads;
        let n = swarm.add_node(options);
        swarm.put_content(n, &meta, &content);
        let have = Some(Bitfield::full(meta.piece_count()));
        swarm.add_torrent(
            n,
            &meta,
            AddTorrent {
                have,
                ..Default::default()
            },
        );
        seeds.push(n);
        if honest {
            honest_seeds.push(n);
        }
    }
    let mut leechers = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let options = NodeOptions {
            upload: upload(u)?,
            refuse: u.ratio(1, 5)?,
            ..Default::default()
        };
        let n = swarm.add_node(options);
        // Some know the torrent by magnet link only and fetch the metadata from the swarm.
        let t = if u.ratio(1, 3)? {
            swarm.add_magnet(n, &meta.magnet(), AddTorrent::default())
        } else {
            swarm.add_torrent(n, &meta, AddTorrent::default())
        };
        leechers.push((n, t));
    }
    // Some nodes leave after a while.
    for _ in 0..u.int_in_range(0..=2)? {
        swarm.run_for(Duration::from_millis(u.int_in_range(0..=5000)?));
        let all: Vec<_> = seeds
            .iter()
            .copied()
            .chain(leechers.iter().map(|(n, _)| *n))
            .collect();
        let victim = all[u.choose_index(all.len())?];
        swarm.kill(victim);
        leechers.retain(|(n, _)| *n != victim);
        honest_seeds.retain(|n| *n != victim);
    }
    let done = swarm.run_until(
        |s| leechers.iter().all(|(n, t)| s.is_complete(*n, *t)),
        Duration::from_secs(1800),
    );
    // Half an hour of virtual time is far beyond what the slowest schedule needs (8 KiB/s,
    // 400 KB, 200 ms links losing a tenth of their packets): an honest seed left means
    // completion. Not on links that cut every connection within seconds: there a connection
    // rarely lives to deliver a block, so each counts as a peer closing on us, and the
    // redials back off towards half an hour (kind to peers that do not want us, as meant).
    let workable = cut_within.is_none_or(|secs| secs >= MIN_CONNECTION_LIFE_SECS);
    assert!(
        honest_seeds.is_empty() || !workable || done.is_ok(),
        "leechers stalled beside an honest seed: {done:?}"
    );
    for (n, t) in &leechers {
        if swarm.is_complete(*n, *t) {
            assert_eq!(
                swarm.content(*n, &meta),
                content,
                "a complete leecher holds wrong bytes"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
