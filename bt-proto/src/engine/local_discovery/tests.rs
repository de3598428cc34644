use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::{AddTorrent, Config, Input, Output, Session, TorrentId, TorrentState};
use crate::lsd::policy::{LSD_ANNOUNCE_INTERVAL, LSD_MIN_GAP};
use crate::lsd::{Announce, LsdGroup};
use crate::magnet::Magnet;
use crate::metainfo::Metainfo;
use crate::metainfo::create::TorrentBuilder;
use crate::{InfoHash, PeerId};

/// A one-piece torrent, private or not, with no tracker.
fn torrent(private: bool) -> Metainfo {
    let plan = TorrentBuilder::single_file("f", 1000)
        .piece_length(16384)
        .private(private)
        .plan()
        .unwrap();
    let mut h = plan.hasher();
    h.update(&[3; 1000]);
    Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap()
}

fn session(lsd: bool) -> Session {
    let mut config = Config::new(PeerId([1; 20]), 6881, 1);
    config.lsd = lsd;
    Session::new(config)
}

/// Drains the outputs: the announces sent (group, decoded) and the addresses dialled.
fn drain(s: &mut Session) -> (Vec<(LsdGroup, Announce, Bytes)>, Vec<SocketAddr>) {
    let (mut sent, mut dials) = (Vec::new(), Vec::new());
    while let Some(o) = s.poll_output() {
        match o {
            Output::SendMulticast { group, data } => {
                let a = Announce::decode(&data).unwrap();
                sent.push((group, a, data));
            }
            Output::Connect { addr, .. } => dials.push(addr),
            _ => {}
        }
    }
    (sent, dials)
}

/// An announce from another host on the LAN for `info_hash`, its peer at port 7000.
fn theirs(info_hash: InfoHash, cookie: &str) -> Bytes {
    let a = Announce {
        group: LsdGroup::V4,
        port: 7000,
        info_hashes: vec![InfoHash([9; 20]), info_hash],
        cookie: Some(cookie.to_string()),
    };
    Bytes::from(a.encode())
}

fn neighbour() -> SocketAddr {
    "192.168.1.20:6771".parse().unwrap()
}

fn receive(s: &mut Session, now: Instant, from: SocketAddr, data: Bytes) {
    s.handle(now, Input::MulticastReceived { from, data });
}

#[test]
fn a_started_torrent_announces_at_once_on_both_groups() {
    let now = Instant::now();
    let mut s = session(true);
    let meta = torrent(false);
    let info_hash = meta.info_hash();
    s.add_torrent(now, meta, AddTorrent::default());
    s.handle_timeout(now);
    let (sent, _) = drain(&mut s);
    let groups: Vec<LsdGroup> = sent.iter().map(|(g, _, _)| *g).collect();
    assert_eq!(groups, LsdGroup::ALL);
    for (group, a, _) in &sent {
        assert_eq!(a.group, *group);
        assert_eq!(a.port, 6881);
        assert_eq!(a.info_hashes, [info_hash]);
        assert_eq!(a.cookie.as_deref(), Some(s.lsd_cookie()));
    }
    // Nothing more until the interval.
    s.handle_timeout(now + LSD_ANNOUNCE_INTERVAL - Duration::from_secs(1));
    assert!(drain(&mut s).0.is_empty());
    assert_eq!(s.poll_timeout(), Some(now + LSD_ANNOUNCE_INTERVAL));
    s.handle_timeout(now + LSD_ANNOUNCE_INTERVAL);
    assert_eq!(drain(&mut s).0.len(), 2);
}

#[test]
fn an_announce_from_a_neighbour_is_dialled() {
    let now = Instant::now();
    let mut s = session(true);
    let meta = torrent(false);
    let info_hash = meta.info_hash();
    s.add_torrent(now, meta, AddTorrent::default());
    drain(&mut s);
    receive(&mut s, now, neighbour(), theirs(info_hash, "0123abcd"));
    let (_, dials) = drain(&mut s);
    assert_eq!(dials, ["192.168.1.20:7000".parse::<SocketAddr>().unwrap()]);
}

#[test]
fn our_own_announces_and_garbage_are_ignored() {
    let now = Instant::now();
    let mut s = session(true);
    s.add_torrent(now, torrent(false), AddTorrent::default());
    s.handle_timeout(now);
    let (sent, _) = drain(&mut s);
    for (_, _, data) in sent {
        // Multicast loopback brings them back from our own LAN address.
        receive(&mut s, now, neighbour(), data);
    }
    for junk in [&b""[..], b"BT-SEARCH * HTTP/1.1\r\n", &[0xff; 2000]] {
        receive(&mut s, now, neighbour(), Bytes::copy_from_slice(junk));
    }
    assert!(drain(&mut s).1.is_empty());
}

/// Asserts that a session (LSD on or off) with `meta` sends no announce over twelve minutes
/// and dials nobody a neighbour announces for it.
fn assert_silent(lsd: bool, meta: Metainfo) {
    let now = Instant::now();
    let mut s = session(lsd);
    let info_hash = meta.info_hash();
    s.add_torrent(now, meta, AddTorrent::default());
    for minutes in 0..12 {
        s.handle_timeout(now + Duration::from_secs(60 * minutes));
        assert!(drain(&mut s).0.is_empty());
    }
    receive(&mut s, now, neighbour(), theirs(info_hash, "0123abcd"));
    assert!(drain(&mut s).1.is_empty());
}

#[test]
fn private_torrents_never_announce_nor_take_local_peers() {
    assert_silent(true, torrent(true));
}

#[test]
fn switched_off_it_sends_and_takes_nothing() {
    assert_silent(false, torrent(false));
}

#[test]
fn stopping_and_starting_change_what_is_announced() {
    let now = Instant::now();
    let mut s = session(true);
    let a = torrent(false);
    let a_hash = a.info_hash();
    let id = s.add_torrent(now, a, AddTorrent::default());
    s.handle_timeout(now);
    drain(&mut s);
    s.set_state(now, id, TorrentState::Stopped);
    s.handle_timeout(now + LSD_ANNOUNCE_INTERVAL);
    assert!(
        drain(&mut s).0.is_empty(),
        "a stopped torrent is not announced"
    );
    receive(&mut s, now, neighbour(), theirs(a_hash, "x"));
    assert!(drain(&mut s).1.is_empty(), "nor dials");

    // Started again, it is announced at once (the last announce is long ago).
    let later = now + LSD_ANNOUNCE_INTERVAL + LSD_MIN_GAP;
    s.set_state(later, id, TorrentState::Started);
    s.handle_timeout(later);
    let (sent, _) = drain(&mut s);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].1.info_hashes, [a_hash]);
}

#[test]
fn a_magnet_torrent_is_announced_while_fetching_its_metadata() {
    let now = Instant::now();
    let mut s = session(true);
    let hex = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";
    let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{hex}")).unwrap();
    let id: TorrentId = s.add_magnet(now, &magnet, AddTorrent::default());
    assert!(s.is_fetching_metadata(id));
    s.handle_timeout(now);
    let (sent, _) = drain(&mut s);
    assert_eq!(sent.len(), 2);
    let info_hash: InfoHash = hex.parse().unwrap();
    assert_eq!(sent[0].1.info_hashes, [info_hash]);
    receive(&mut s, now, neighbour(), theirs(info_hash, "x"));
    assert_eq!(drain(&mut s).1.len(), 1);
}

#[test]
fn a_flooding_neighbour_is_capped() {
    let now = Instant::now();
    let mut s = session(true);
    // Many torrents, so every announce names a new one and would be a new dial.
    let mut hashes = Vec::new();
    for i in 0..40u32 {
        let plan = TorrentBuilder::single_file(format!("f{i}"), 1000)
            .piece_length(16384)
            .plan()
            .unwrap();
        let mut h = plan.hasher();
        h.update(&[3; 1000]);
        let meta = Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap();
        hashes.push(meta.info_hash());
        s.add_torrent(now, meta, AddTorrent::default());
    }
    drain(&mut s);
    let mut dials = 0;
    for h in &hashes {
        receive(&mut s, now, neighbour(), theirs(*h, "x"));
        dials += drain(&mut s).1.len();
    }
    assert_eq!(dials, crate::lsd::policy::MAX_LSD_PER_SOURCE as usize);
}
