//! Magnet links (BEP 9) on the simulator: leechers that know only the info-hash fetch the
//! metadata from the swarm and download, with a tracker or with only a peer address; a peer
//! serving corrupt metadata is banned, and one advertising metadata over the limit is never
//! asked (both played by raw nodes over the simulated network).
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use bt_proto::PeerId;
use bt_proto::engine::{AddTorrent, Event, MAX_METADATA_SIZE, TorrentId};
use bt_proto::extensions::ut_metadata::{self, METADATA_PIECE_LEN, MetadataMessage};
use bt_proto::extensions::{ExtensionHandshake, UT_METADATA_ID};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::remote::{RemotePeer, encode};
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, TRACKER_URL, make_torrent};
use bt_proto::wire::{Extension, Message, Reserved};

const KIB: u64 = 1024;

fn seeded(swarm: &mut Swarm, meta: &Metainfo, content: &[u8]) -> NodeId {
    let seed = swarm.add_node(NodeOptions {
        upload: Some(512 * KIB),
        ..Default::default()
    });
    swarm.add_seed(seed, meta, content);
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
    assert!(!session.stats(t, swarm.now()).unwrap().has_metadata);
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

/// A raw node playing a peer that serves metadata: it connects to `target`, says it has the
/// torrent and offers metadata of `size` bytes, and answers every metadata request with
/// `serve(piece)`. Returns the pieces it was asked for, once `done` holds or after `limit`,
/// and its address.
fn metadata_liar(
    swarm: &mut Swarm,
    target: NodeId,
    meta: &Metainfo,
    size: u64,
    serve: impl Fn(u32) -> Vec<u8>,
    mut done: impl FnMut(&mut Swarm) -> bool,
    limit: Duration,
) -> (Vec<u32>, IpAddr) {
    let raw = swarm.add_raw_node();
    let conn = swarm.raw_connect(raw, swarm.addr(target));
    let reserved = Reserved::NONE
        .with(Extension::Fast)
        .with(Extension::ExtensionProtocol);
    let mut peer =
        RemotePeer::new(conn, meta.info_hash(), PeerId([0xee; 20])).with_reserved(reserved);
    let offer = ExtensionHandshake {
        ut_metadata: Some(5),
        metadata_size: Some(size),
        ..Default::default()
    };
    let hello = [
        Message::HaveAll,
        Message::Extended {
            id: 0,
            payload: offer.encode().into(),
        },
    ];
    swarm.run_for(Duration::from_millis(100));
    assert!(swarm.raw_send(conn, peer.hello_bytes(&hello).unwrap()));
    let mut asked = Vec::new();
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while !done(swarm) && waited < limit {
        swarm.run_for(step);
        waited += step;
        swarm.raw_receive(raw, &mut peer);
        let Ok(messages) = peer.messages() else {
            break;
        };
        for m in messages {
            let Message::Extended { id: 5, payload } = m else {
                continue;
            };
            let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload) else {
                continue;
            };
            asked.push(piece);
            let answer = MetadataMessage::Data {
                piece,
                total_size: size,
                data: serve(piece).into(),
            };
            let reply = Message::Extended {
                id: UT_METADATA_ID,
                payload: answer.encode().into(),
            };
            swarm.raw_send(conn, encode(&[reply]).unwrap());
        }
    }
    (asked, swarm.addr(raw).ip())
}

/// Whether `n` completed a handshake with a peer at `ip`.
fn met(swarm: &Swarm, n: NodeId, ip: IpAddr) -> bool {
    swarm
        .events(n)
        .iter()
        .any(|(_, e)| matches!(e, Event::PeerConnected { addr, .. } if addr.ip() == ip))
}

/// A torrent whose metadata is two 16 KiB pieces and more.
fn two_piece_metadata() -> (Metainfo, Vec<u8>) {
    let names: Vec<String> = (0..120)
        .map(|i| format!("{i:03}-{}", "y".repeat(250)))
        .collect();
    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1000)).collect();
    let (meta, content) = make_torrent(&files, 16 * 1024, 9).unwrap();
    assert!(meta.info_bytes().len() > METADATA_PIECE_LEN);
    (meta, content)
}

/// A magnet leecher's first peer serves corrupt metadata: the copy fails the info-hash, the
/// liar (who sent all of it) is banned, and the real metadata then comes from a seed.
#[test]
fn a_peer_serving_corrupt_metadata_is_banned_and_the_seed_serves_the_real_one() {
    let (meta, content) = two_piece_metadata();
    let mut swarm = Swarm::new(21);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = seeded(&mut swarm, &meta, &content);
    let n = swarm.add_node(NodeOptions::default());
    let t = swarm.add_magnet(n, &Magnet::new(meta.info_hash()), AddTorrent::default());
    let info = meta.info_bytes().to_vec();
    let corrupt = move |piece: u32| {
        let mut bytes = ut_metadata::piece_of(&info, piece).unwrap().to_vec();
        bytes[0] ^= 0xff;
        bytes
    };
    let size = meta.info_bytes().len() as u64;
    let failed = |s: &mut Swarm| {
        s.events(n)
            .iter()
            .any(|(_, e)| matches!(e, Event::MetadataHashFailed { .. }))
    };
    let (asked, _) = metadata_liar(
        &mut swarm,
        n,
        &meta,
        size,
        corrupt,
        failed,
        Duration::from_secs(30),
    );
    assert_eq!(asked, [0, 1, 2], "the liar was asked for everything");
    let events = metadata_events(&swarm, n);
    let liar = match events.as_slice() {
        [Event::MetadataHashFailed { torrent, peers }] if *torrent == t => peers.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(liar.len(), 1);
    let banned = swarm
        .events(n)
        .iter()
        .any(|(_, e)| matches!(e, Event::PeerBanned { addr, .. } if addr.ip() == liar[0].ip()));
    assert!(banned, "the sole sender of a corrupt copy is banned");
    swarm.add_peer(n, t, swarm.addr(seed));
    swarm
        .run_until(|s| s.is_complete(n, t), Duration::from_secs(120))
        .unwrap();
    assert_eq!(swarm.content(n, &meta), content);
    assert_eq!(
        metadata_events(&swarm, n).last(),
        Some(&Event::MetadataReceived { torrent: t })
    );
}

/// A peer that offers metadata over the limit is never asked for any; the seed's real size
/// is fetched instead.
#[test]
fn a_peer_offering_oversized_metadata_is_never_asked() {
    let (meta, content) = two_piece_metadata();
    let mut swarm = Swarm::new(22);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = seeded(&mut swarm, &meta, &content);
    let n = swarm.add_node(NodeOptions::default());
    let t = swarm.add_magnet(n, &Magnet::new(meta.info_hash()), AddTorrent::default());
    swarm.add_peer(n, t, swarm.addr(seed));
    let junk = |_| vec![0u8; METADATA_PIECE_LEN];
    let complete = |s: &mut Swarm| s.is_complete(n, t);
    let huge = MAX_METADATA_SIZE + 1;
    let (asked, liar) = metadata_liar(
        &mut swarm,
        n,
        &meta,
        huge,
        junk,
        complete,
        Duration::from_secs(120),
    );
    assert!(met(&swarm, n, liar), "the liar was connected");
    assert!(asked.is_empty(), "asked {asked:?}");
    assert!(swarm.is_complete(n, t));
    assert_eq!(swarm.content(n, &meta), content);
    assert_eq!(
        metadata_events(&swarm, n),
        [Event::MetadataReceived { torrent: t }]
    );
}
