//! Magnet links (BEP 9) on the simulator: leechers that know only the info-hash fetch the
//! metadata from the swarm and download; a peer serving corrupt metadata is found out, and
//! one advertising metadata over the limit is never asked.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::Bitfield;
use bt_proto::engine::{AddTorrent, Event, TorrentId};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, TRACKER_URL, make_torrent};

const KIB: u64 = 1024;

fn seeded(swarm: &mut Swarm, meta: &Metainfo, content: &[u8]) -> NodeId {
    let seed = swarm.add_node(NodeOptions {
        upload: Some(512 * KIB),
        ..Default::default()
    });
    swarm.put_content(seed, meta, content);
    let opts = AddTorrent {
        have: Some(Bitfield::full(meta.piece_count())),
        ..Default::default()
    };
    swarm.add_torrent(seed, meta, opts);
    seed
}

fn metadata_events(swarm: &Swarm, n: NodeId) -> Vec<Event> {
    swarm
        .events(n)
        .iter()
        .map(|(_, e)| e.clone())
        .filter(|e| {
            matches!(
                e,
                Event::MetadataReceived { .. }
                    | Event::MetadataHashFailed { .. }
                    | Event::MetadataInvalid { .. }
            )
        })
        .collect()
}

/// Metadata of several 16 KiB pieces (long file names make it so), one seed and leechers
/// of which some know the torrent by magnet link and tracker only.
#[test]
fn magnet_leechers_fetch_the_metadata_and_download() {
    let names: Vec<String> = (0..200)
        .map(|i| format!("dir/{i:03}-{}", "x".repeat(200)))
        .collect();
    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 3000)).collect();
    let (meta, content) = make_torrent(&files, 16 * 1024, 3).unwrap();
    assert!(
        meta.info_bytes().len() > 2 * 16 * 1024,
        "several metadata pieces"
    );
    let mut swarm = Swarm::new(7);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(20)));
    seeded(&mut swarm, &meta, &content);
    let mut magnet = Magnet::new(meta.info_hash());
    magnet.trackers = vec![TRACKER_URL.to_string()];
    let mut leechers: Vec<(NodeId, TorrentId)> = Vec::new();
    for i in 0..4 {
        let n = swarm.add_node(NodeOptions::default());
        let t = if i % 2 == 0 {
            swarm.add_magnet(n, &magnet, AddTorrent::default())
        } else {
            swarm.add_torrent(n, &meta, AddTorrent::default())
        };
        leechers.push((n, t));
    }
    swarm
        .run_until(
            |s| leechers.iter().all(|(n, t)| s.is_complete(*n, *t)),
            Duration::from_secs(300),
        )
        .unwrap();
    for (i, (n, t)) in leechers.iter().enumerate() {
        assert_eq!(swarm.content(*n, &meta), content, "leecher {i}");
        let session = swarm.session(*n).unwrap();
        let got = session.metainfo(*t).unwrap();
        assert_eq!(got.info_bytes(), meta.info_bytes());
        assert_eq!(got.trackers(), [vec![TRACKER_URL.to_string()]]);
        let events = metadata_events(&swarm, *n);
        if i % 2 == 0 {
            assert_eq!(
                events,
                [Event::MetadataReceived { torrent: *t }],
                "leecher {i}"
            );
        } else {
            assert!(events.is_empty());
        }
    }
}

/// No tracker at all: the link's `x.pe` names the seed, and that is enough.
#[test]
fn a_magnet_with_only_a_peer_address_downloads() {
    let (meta, content) = make_torrent(&[("a.bin", 300 * KIB)], 16 * 1024, 5).unwrap();
    let mut swarm = Swarm::new(11);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(30)));
    let seed = seeded(&mut swarm, &meta, &content);
    let magnet: Magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=a.bin&x.pe={}",
        meta.info_hash(),
        swarm.addr(seed)
    )
    .parse()
    .unwrap();
    let n = swarm.add_node(NodeOptions::default());
    let t = swarm.add_magnet(n, &magnet, AddTorrent::default());
    let session = swarm.session(n).unwrap();
    assert_eq!(session.name_of(t), Some("a.bin"));
    assert!(!session.stats(t).unwrap().has_metadata);
    assert!(session.trackers(t).is_empty());
    swarm
        .run_until(|s| s.is_complete(n, t), Duration::from_secs(120))
        .unwrap();
    assert_eq!(swarm.content(n, &meta), content);
    let leecher = swarm.addr(n);
    assert!(
        swarm.announces.iter().all(|(from, _)| *from != leecher),
        "the leecher announced nowhere: {:?}",
        swarm.announces
    );
}
