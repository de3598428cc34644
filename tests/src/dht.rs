//! The DHT (BEP 5) over real UDP sockets on loopback, generic over the runtime like the
//! conformance suite (`tests/tests/conformance.rs` runs them on tokio and smol): two
//! sessions given no tracker and no peer, one bootstrapping from the other, find each other
//! through the DHT alone and a magnet link with only the info-hash completes; and a restart
//! takes up the routing table (and the id) its state file kept.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bt_adapter::{
    DhtOptions, DhtStatus, MagnetOptions, Runtime, Session, SessionBuilder, TorrentOptions,
};
use bt_proto::dht::NodeId;
use bt_proto::dht::krpc::{Body, Message, NodeInfo, Query, Response};
use bt_proto::dht::saved::SavedTable;
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;

use crate::local_discovery::{download_from_the_seed_given, unique_torrent};
use crate::swarm::*;

/// How soon the sessions must have found each other and completed once the leecher's node
/// holds the seed's announce. On loopback this takes well under a second; the bound leaves
/// room for slow machines.
pub const FOUND_WITHIN: Duration = Duration::from_secs(30);

/// How long a node may take to fill its table or send its first query.
const NODE_WITHIN: Duration = Duration::from_secs(10);

/// A loopback session with the DHT on ([`crate::loopback_limits`] turns it off), its
/// bootstrap nodes `bootstrap` (never the public routers).
pub fn dht_builder<R: Runtime>(bootstrap: Vec<String>) -> SessionBuilder<R> {
    loopback_builder::<R>()
        .dht(DhtOptions::default().bootstrap(bootstrap))
        .config(|c| c.dht = true)
}

/// Waits until the DHT node of `session` has `n` nodes in its table.
async fn wait_for_nodes<R: Runtime>(session: &Session<R>, n: usize) {
    wait_for::<R>(session, |s| s.nodes >= n).await;
}

/// Waits until the DHT node of `session` is as `done` wants it.
async fn wait_for<R: Runtime>(session: &Session<R>, done: impl Fn(&DhtStatus) -> bool) {
    let end = R::now() + NODE_WITHIN;
    loop {
        let status = session.dht_status().await.unwrap();
        if status.as_ref().is_some_and(&done) {
            return;
        }
        assert!(
            R::now() < end,
            "the DHT table holds {status:?} after {NODE_WITHIN:?}"
        );
        R::sleep_until(R::now() + Duration::from_millis(20)).await;
    }
}

/// A seed on `S` and a leecher on `L`, given no tracker and no peer, LSD off, meet through
/// the DHT alone: the seed bootstraps from the leecher's node and announces the torrent to
/// it; the leecher's search for the magnet link's info-hash finds the seed there.
pub async fn magnet_completes_through_the_dht<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let torrent = unique_torrent::<S>(&seed_dir).await;
    let meta = Metainfo::from_bytes(&torrent).unwrap();

    let leecher = dht_builder::<L>(Vec::new()).start().await.unwrap();
    assert_eq!(
        leecher.dht_port(),
        Some(leecher.port()),
        "the DHT socket did not open on the listening port (see the warning logged)"
    );
    let router = format!("127.0.0.1:{}", leecher.port());
    let seed = dht_builder::<S>(vec![router]).start().await.unwrap();
    wait_for_nodes(&seed, 1).await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    // The seed's search for its torrent announced it to the leecher's node: the only place
    // the leecher can learn of it (its own search would otherwise find nothing and wait
    // for its retry).
    wait_for::<L>(&leecher, |s| s.stored_peers >= 1).await;

    let base = dir.path().join("leecher");
    let link = Magnet::new(meta.info_hash());
    let lt = leecher
        .add_magnet(MagnetOptions::from_magnet(link).base_dir(&base))
        .await
        .unwrap();
    let done = bt_adapter::runtime::timeout_at::<L, _>(L::now() + FOUND_WITHIN, async {
        lt.wait_complete().await.unwrap()
    })
    .await;
    assert!(
        done.is_some(),
        "the DHT did not bring the sessions together within {FOUND_WITHIN:?}"
    );
    assert_same_tree(&seed_dir, &base);
    assert!(st.uploaded().await.unwrap() > 0);
    seed.shutdown().await;
    leecher.shutdown().await;
}

/// Receives one datagram on the blocking socket `raw`, on the blocking pool (the runtime's
/// threads must not block).
async fn recv<R: Runtime>(raw: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let raw = raw.try_clone().unwrap();
    R::unblock(move || {
        let mut buf = vec![0; 2048];
        let (n, from) = raw.recv_from(&mut buf).expect("no datagram came");
        buf.truncate(n);
        (buf, from)
    })
    .await
    .unwrap()
}

/// A loopback session with the DHT on, its table kept in `state`, no bootstrap node.
async fn with_state<R: Runtime>(state: &std::path::Path) -> Session<R> {
    dht_builder::<R>(Vec::new())
        .dht(
            DhtOptions::default()
                .bootstrap(Vec::<String>::new())
                .state_file(state),
        )
        .start()
        .await
        .unwrap()
}

/// A session whose state file holds a table restarts with that table's id and asks its
/// nodes first, bootstrapping from nothing else; a node that answers enters its table, and
/// the table is saved again at shutdown. A bad state file is ignored (and not overwritten by
/// an empty table).
pub async fn a_restart_takes_up_the_saved_table<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".bt").join("dht.dat");
    // A node of the saved table: a bare socket that answers as a DHT node would.
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(NODE_WITHIN)).unwrap();
    let saved = SavedTable {
        id: NodeId([0x5a; 20]),
        nodes: vec![NodeInfo {
            id: NodeId([0xa5; 20]),
            addr: raw.local_addr().unwrap(),
        }],
    };
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(&state, saved.encode()).unwrap();

    let session = with_state::<R>(&state).await;
    let status = session.dht_status().await.unwrap().unwrap();
    assert_eq!(status.id, saved.id, "the saved id was not taken up");

    // Its bootstrap asks the saved node, from the session's port.
    let (query, from) = recv::<R>(&raw).await;
    assert_eq!(from.port(), session.port());
    let query = Message::decode(&query).unwrap();
    assert!(matches!(query.body, Body::Query(_)), "{query:?}");
    let answer = Message {
        transaction: query.transaction,
        body: Body::Response(Response {
            id: NodeId([0xa5; 20]),
            ..Default::default()
        }),
        read_only: false,
        your_ip: None,
        version: None,
    };
    raw.send_to(&answer.encode(), from).unwrap();
    wait_for_nodes(&session, 1).await;
    session.shutdown().await;
    let again = SavedTable::decode(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(again, saved, "the table saved at shutdown");

    // A damaged file: ignored, the session starts with a fresh id.
    std::fs::write(&state, b"d2:id3:abce").unwrap();
    let session = with_state::<R>(&state).await;
    let status = session.dht_status().await.unwrap().unwrap();
    assert_ne!(status.id, saved.id);
    assert_eq!(status.nodes, 0);
    session.shutdown().await;
    // An empty table is not saved over the last one.
    assert_eq!(std::fs::read(&state).unwrap(), b"d2:id3:abce");
}

/// A session whose UDP port is taken runs without the DHT (a warning logged): no DHT
/// socket, and its torrents still move over TCP from the peers given.
pub async fn a_taken_udp_port_is_not_fatal<R: Runtime>() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let leecher = dht_builder::<R>(Vec::new()).port(port);
    download_from_the_seed_given(leecher, |l| {
        assert_eq!(l.port(), port);
        assert_eq!(l.dht_port(), None);
    })
    .await;
    drop(taken);
}

/// Whether the DHT node of a session started from `builder` answers a ping sent to its port
/// within a second.
async fn answers_a_ping<R: Runtime>(builder: SessionBuilder<R>) -> bool {
    let session = builder.start().await.unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let ping = Message {
        transaction: b"pi".to_vec(),
        body: Body::Query(Query::Ping {
            id: NodeId([0x77; 20]),
        }),
        read_only: false,
        your_ip: None,
        version: None,
    };
    raw.send_to(&ping.encode(), ("127.0.0.1", session.port()))
        .unwrap();
    // The node may ping us too (to put us in its table) before or after its answer.
    let answered = R::unblock(move || {
        let mut buf = vec![0; 2048];
        while let Ok((n, _)) = raw.recv_from(&mut buf) {
            let answer = Message::decode(buf.get(..n).unwrap_or_default());
            if answer.is_ok_and(|m| matches!(m.body, Body::Response(_)) && m.transaction == b"pi") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    session.shutdown().await;
    answered
}

/// A read-only node (BEP 43) asks but answers nobody; a node that is not answers.
pub async fn a_read_only_node_answers_nothing<R: Runtime>() {
    let read_only = dht_builder::<R>(Vec::new()).dht(
        DhtOptions::default()
            .bootstrap(Vec::<String>::new())
            .read_only(true),
    );
    assert!(!answers_a_ping(read_only).await);
    assert!(answers_a_ping(dht_builder::<R>(Vec::new())).await);
}
