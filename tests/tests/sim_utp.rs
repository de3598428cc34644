//! uTP in the engine, on the simulator: swarms whose connections are carried by uTP over
//! lossy, reordering, duplicating links; sessions mixing transports; the fallback to TCP
//! when a peer does not answer uTP; and the PEX flag that says a peer speaks it.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, CloseReason, Config, Event, Transport, Transports};
use bt_proto::extensions::UT_PEX_ID;
use bt_proto::extensions::ut_pex::{PexFlags, PexMessage};
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use bt_proto::wire::Message;
use bt_tests::sim::pex_peer;

const KIB: u64 = 1024;

fn utp_only(c: &mut Config) {
    c.transports = Transports::Utp;
}
fn tcp_only(c: &mut Config) {
    c.transports = Transports::Tcp;
}
fn both(c: &mut Config) {
    c.transports = Transports::Both;
}

fn node(swarm: &mut Swarm, tweak: fn(&mut Config)) -> NodeId {
    swarm.add_node(NodeOptions::with_config(tweak))
}

/// One seed and three leechers, every one uTP only, over links that lose 1 % of the
/// datagrams, reorder them (20 ms of jitter on 25 ms) and duplicate 1 %: everyone completes
/// byte-exact, and every connection that carried blocks was uTP.
#[test]
fn a_utp_only_swarm_completes_over_a_bad_network() {
    let (meta, content) = make_torrent(&[("u.bin", 2048 * KIB)], 16 * 1024, 7).unwrap();
    let mut swarm = Swarm::new(51);
    swarm.set_default_link(
        LinkConfig::new(Duration::from_millis(25))
            .with_bandwidth(2_000_000)
            .with_loss(0.01)
            .with_jitter(Duration::from_millis(20))
            .with_duplicate(0.01),
    );
    let seed = node(&mut swarm, utp_only);
    swarm.add_seed(seed, &meta, &content);
    swarm.run_for(Duration::from_secs(1));
    let leechers: Vec<_> = (0..3).map(|_| node(&mut swarm, utp_only)).collect();
    let ts: Vec<_> = leechers
        .iter()
        .map(|l| swarm.add_torrent(*l, &meta, AddTorrent::default()))
        .collect();
    let mut transports = Vec::new();
    swarm
        .run_until(
            |s| {
                for (l, t) in leechers.iter().zip(&ts) {
                    let peers = s.session(*l).unwrap().peers(*t, s.now());
                    transports.extend(
                        peers
                            .iter()
                            .filter(|p| p.downloaded > 0)
                            .map(|p| p.transport),
                    );
                }
                leechers.iter().zip(&ts).all(|(l, t)| s.is_complete(*l, *t))
            },
            Duration::from_secs(600),
        )
        .unwrap_or_else(|e| panic!("not complete: {e:?}"));
    eprintln!("uTP-only swarm complete after {:?}", swarm.elapsed());
    for l in &leechers {
        assert!(
            swarm.content(*l, &meta) == content,
            "leecher's bytes differ"
        );
    }
    assert!(!transports.is_empty());
    assert!(
        transports.iter().all(|t| *t == Transport::Utp),
        "{transports:?}"
    );
}

fn slow_node(swarm: &mut Swarm, tweak: fn(&mut Config)) -> NodeId {
    swarm.add_node(NodeOptions {
        upload: Some(64 * KIB),
        tweak: Some(tweak),
        ..Default::default()
    })
}

/// A seed that speaks both serves a uTP-only leecher over uTP and a TCP-only one over TCP.
/// Those two cannot reach each other, and give up on each other after a few attempts: a
/// TCP connection to the uTP-only session is closed at once, a uTP dial to the TCP-only one
/// goes unanswered. A leecher with both that joins later hears from the seed's peer exchange
/// that the uTP-only leecher speaks uTP, and reaches it over uTP.
#[test]
fn sessions_mixing_transports_each_reach_whom_they_can() {
    let (meta, content) = make_torrent(&[("m.bin", 2048 * KIB)], 16 * 1024, 8).unwrap();
    let mut swarm = Swarm::new(52);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    // Everyone uploads slowly, so that all are still leeching when the late one comes.
    let seed = slow_node(&mut swarm, both);
    swarm.add_seed(seed, &meta, &content);
    swarm.run_for(Duration::from_secs(1));
    let (utp, tcp) = (
        slow_node(&mut swarm, utp_only),
        slow_node(&mut swarm, tcp_only),
    );
    let t_utp = swarm.add_torrent(utp, &meta, AddTorrent::default());
    let t_tcp = swarm.add_torrent(tcp, &meta, AddTorrent::default());
    swarm.run_for(Duration::from_secs(5));
    let late = slow_node(&mut swarm, both);
    let t_late = swarm.add_torrent(late, &meta, AddTorrent::default());
    let utp_addr = swarm.addr(utp);
    let mut late_reached_utp = false;
    swarm
        .run_until(
            |s| {
                let peers = s.session(late).unwrap().peers(t_late, s.now());
                late_reached_utp |= peers
                    .iter()
                    .any(|p| p.addr == utp_addr && p.transport == Transport::Utp);
                [(utp, t_utp), (tcp, t_tcp), (late, t_late)]
                    .iter()
                    .all(|(n, t)| s.is_complete(*n, *t))
            },
            Duration::from_secs(900),
        )
        .unwrap_or_else(|e| panic!("not complete: {e:?}"));
    for n in [utp, tcp, late] {
        assert!(swarm.content(n, &meta) == content);
    }
    assert!(
        late_reached_utp,
        "the late leecher never dialled the uTP-only one over uTP"
    );
    // The TCP-only leecher's dials to the uTP-only one, each closed there at once; it backs
    // off and forgets the address after a few.
    let refused = swarm
        .close_reasons(utp)
        .iter()
        .filter(|r| **r == CloseReason::TransportDisabled)
        .count();
    assert!(
        (1..=6).contains(&refused),
        "{refused} TCP connections refused"
    );
}

/// A leecher that speaks both is told by peer exchange that a seed speaks uTP, but the
/// seed speaks only TCP: the uTP dial goes unanswered, and the leecher dials it over TCP at
/// once, with no back-off, and completes.
#[test]
fn an_unanswered_utp_dial_falls_back_to_tcp() {
    let (meta, content) = make_torrent(&[("f.bin", 512 * KIB)], 16 * 1024, 9).unwrap();
    let mut swarm = Swarm::new(53);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    // The seed has the torrent only once the peer exchange told the leecher of it, so the
    // leecher cannot learn of it from the tracker first.
    // Nor may the seed dial the leecher when it learns of it.
    let seed = node(&mut swarm, |c| {
        c.transports = Transports::Tcp;
        c.max_outgoing = 0;
    });
    let leecher = node(&mut swarm, both);
    let t = swarm.add_torrent(leecher, &meta, AddTorrent::default());
    swarm.run_for(Duration::from_secs(1));
    let to = swarm.addr(leecher);
    let (_raw, peer) = pex_peer(&mut swarm, &meta, to);
    let seed_addr = swarm.addr(seed);
    let told = PexMessage {
        added: vec![(seed_addr, PexFlags::UTP)],
        dropped: vec![],
    };
    let pex = [Message::Extended {
        id: UT_PEX_ID,
        payload: told.encode().into(),
    }];
    assert!(swarm.raw_send(peer.conn(), bt_proto::sim::remote::encode(&pex).unwrap()));
    let told_at = swarm.elapsed();
    swarm.add_seed(seed, &meta, &content);
    swarm
        .run_until(|s| s.is_complete(leecher, t), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("not complete: {e:?}"));
    assert!(swarm.content(leecher, &meta) == content);
    let connected = swarm
        .events(leecher)
        .iter()
        .find(|(_, e)| matches!(e, Event::PeerConnected { addr, .. } if *addr == seed_addr))
        .map(|(at, _)| *at)
        .unwrap();
    // uTP first: its SYNs go unanswered for seconds before the TCP dial (which takes one
    // round trip); and the TCP dial follows the give-up at once, not after a back-off.
    let waited = connected - told_at;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(10),
        "connected {waited:?} after the peer exchange"
    );
}

/// Peer exchange flags the peers that reached us over uTP (BEP 11's 0x04), and not those
/// on TCP.
#[test]
fn peer_exchange_flags_the_peers_that_speak_utp() {
    let (meta, content) = make_torrent(&[("p.bin", 4096 * KIB)], 16 * 1024, 10).unwrap();
    let mut swarm = Swarm::new(54);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = slow_node(&mut swarm, both);
    swarm.add_seed(seed, &meta, &content);
    let (utp, tcp) = (node(&mut swarm, utp_only), node(&mut swarm, tcp_only));
    for l in [utp, tcp] {
        swarm.add_torrent(l, &meta, AddTorrent::default());
    }
    swarm.run_for(Duration::from_secs(2));
    let to = swarm.addr(seed);
    let (raw, mut peer) = pex_peer(&mut swarm, &meta, to);
    let mut told = Vec::new();
    for _ in 0..200 {
        swarm.run_for(Duration::from_millis(100));
        swarm.raw_receive(raw, &mut peer);
        for m in peer.messages().unwrap() {
            if let Message::Extended { id, payload } = m
                && id == UT_PEX_ID
            {
                told.extend(PexMessage::decode(&payload).unwrap().added);
            }
        }
        if told.len() >= 2 {
            break;
        }
    }
    let flags_of = |a| told.iter().find(|(x, _)| *x == a).map(|(_, f)| *f);
    let f = flags_of(swarm.addr(utp)).unwrap_or_else(|| panic!("{told:?}"));
    assert!(f.contains(PexFlags::UTP), "{told:?}");
    let f = flags_of(swarm.addr(tcp)).unwrap_or_else(|| panic!("{told:?}"));
    assert!(!f.contains(PexFlags::UTP), "{told:?}");
}
