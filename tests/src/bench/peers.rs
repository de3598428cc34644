//! The `peers` part: one seeding engine with thousands of leechers connected, fed as the
//! simulator feeds it (each peer a [`RemotePeer`] on its own address, bytes in and out, no
//! network), and what each connection costs it.
//!
//! For each count the bench accepts that many connections from distinct hosts, each sending
//! its handshake, an empty bitfield and INTERESTED, then runs [`ROUNDS`] choke rounds, ten
//! seconds of engine time apart: before each round every peer sends a keep-alive (not timed),
//! then the round's timer is handled and its outputs (the chokes and unchokes) taken, timed
//! on the wall clock. The memory is the bench process's resident set after the connections
//! less before them, so it counts the engine's state per connection and the first bytes it
//! queued to each, as a driver would hold them until written.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use bt_proto::choker::ROUND_INTERVAL;
use bt_proto::engine::{AddTorrent, Config, Session};
use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::create::TorrentBuilder;
use bt_proto::sim::remote::RemotePeer;
use bt_proto::wire::Message;
use bt_proto::{Bitfield, PeerId};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{median, rss_of};

/// Choke rounds timed per count: their median is reported.
pub const ROUNDS: usize = 31;

/// The torrent served: 1 GiB in 1 MiB pieces (its size matters only through the bitfields).
const SIZE: u64 = 1 << 30;
const PIECE_LENGTH: u32 = 1 << 20;

/// What the part measured for one count of connections.
pub struct Measured {
    /// Connections accepted and still open after the rounds.
    pub connections: usize,
    /// Resident set added by the connections, per connection (bytes).
    pub rss_per_conn: f64,
    /// Median wall time of one choke round (seconds).
    pub round_secs: f64,
}

/// Runs the part for each of `counts`.
pub fn run(counts: &[usize]) -> Result<(Vec<Measured>, Value), String> {
    let meta = meta()?;
    let mut all = Vec::new();
    for &n in counts {
        all.push(one(&meta, n)?);
    }
    let json = all
        .iter()
        .map(|m| {
            json!({"connections": m.connections, "rss_bytes_per_conn": m.rss_per_conn,
                "choke_round_secs": m.round_secs})
        })
        .collect();
    Ok((all, Value::Array(json)))
}

fn meta() -> Result<Metainfo, String> {
    let plan = TorrentBuilder::single_file("f", SIZE)
        .piece_length(PIECE_LENGTH)
        .plan()
        .map_err(|e| e.to_string())?;
    let mut h = plan.hasher();
    h.update_zeros(SIZE);
    let hashes = h.finish().map_err(|e| e.to_string())?;
    let bytes = plan.build(&hashes).map_err(|e| e.to_string())?;
    Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// Host `i` of the leechers: one address each, so that no per-host limit applies.
fn host(i: usize) -> SocketAddr {
    let [_, a, b, c] = (i as u32 + 1).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 6881)
}

fn one(meta: &Metainfo, n: usize) -> Result<Measured, String> {
    let mut config = Config::new(PeerId([1; 20]), 6881, 1);
    config.max_incoming = n;
    config.max_incoming_handshakes = n;
    config.max_connections_per_torrent = n;
    let mut s = Session::new(config);
    let mut now = Instant::now();
    let pieces = meta.piece_count();
    let opts = AddTorrent {
        have: Some(Bitfield::full(pieces)),
        ..Default::default()
    };
    let id = s.add_torrent(now, meta.clone(), opts);
    while s.poll_output().is_some() {}
    let pid = std::process::id();
    let before = rss_of(pid)?;
    let empty = Message::Bitfield(Bytes::copy_from_slice(Bitfield::new(pieces).as_bytes()));
    let mut peers = Vec::with_capacity(n);
    for i in 0..n {
        let conn = s.accept(now, host(i));
        // Distinct ids too: a second connection of one peer id is closed as a duplicate.
        let mut peer_id = [b'-'; 20];
        peer_id[12..].copy_from_slice(&(i as u64).to_le_bytes());
        let peer =
            RemotePeer::new(conn, meta.info_hash(), PeerId(peer_id)).with_piece_count(pieces);
        peer.hello(&mut s, now, &[empty.clone(), Message::Interested])
            .map_err(|e| e.to_string())?;
        peers.push(peer);
    }
    // What the engine queued to each (handshake, bitfield) is held as a driver would.
    let mut queued = Vec::new();
    while let Some(o) = s.poll_output() {
        queued.push(o);
    }
    let after = rss_of(pid)?;
    drop(queued);
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        for p in &peers {
            p.send(&mut s, now, &[Message::KeepAlive])
                .map_err(|e| e.to_string())?;
        }
        while s.poll_output().is_some() {}
        now += ROUND_INTERVAL;
        let started = Instant::now();
        s.handle_timeout(now);
        while s.poll_output().is_some() {}
        rounds.push(started.elapsed().as_secs_f64());
    }
    let connections = s.stats(id, now).map_or(0, |st| st.peers);
    Ok(Measured {
        connections,
        rss_per_conn: after.saturating_sub(before) as f64 / n.max(1) as f64,
        round_secs: median(rounds),
    })
}
