//! Streaming on the simulator: a reader that seeks to the middle of a large file while the
//! torrent downloads gets its first verified byte within about a piece's time plus a round
//! trip; a reader moving through the file finds each piece in time; two readers share the
//! swarm; sequential download takes pieces in order.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, MIN_SEND_WATERMARK, ReaderId, TorrentId};
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, SEND_BUFFER, Swarm, make_torrent};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const PIECE: u32 = 256 * 1024;
/// Each seed's upload, in bytes a second.
const SEED_RATE: u64 = 2_500_000;
/// One-way latency: a 40 ms round trip.
const LATENCY: Duration = Duration::from_millis(20);

/// Four seeds uploading 2.5 MB/s each (a 10 MB/s swarm) and a leecher downloading a file
/// of `len` bytes from them, started `after` ago.
fn swarm(len: u64, after: Duration) -> (Swarm, NodeId, TorrentId, Vec<u8>) {
    let (meta, content) = make_torrent(&[("movie.mkv", len)], PIECE, 21).unwrap();
    let mut s = Swarm::new(81);
    s.set_default_link(LinkConfig::new(LATENCY));
    for _ in 0..4 {
        let seed = s.add_node(NodeOptions {
            upload: Some(SEED_RATE),
            ..Default::default()
        });
        s.add_seed(seed, &meta, &content);
    }
    s.run_for(Duration::from_secs(1));
    let leecher = s.add_node(NodeOptions::default());
    let t = s.add_torrent(leecher, &meta, AddTorrent::default());
    s.run_for(after);
    (s, leecher, t, content)
}

fn ready(s: &Swarm, n: NodeId, t: TorrentId, offset: u64) -> u64 {
    s.session(n)
        .unwrap()
        .file_bytes_ready(t, 0, offset)
        .unwrap()
}

fn open_at(s: &mut Swarm, n: NodeId, t: TorrentId, offset: u64) -> ReaderId {
    s.with_session(n, |session, now| {
        let r = session.open_reader(now, t, 0).unwrap();
        assert!(session.move_reader(now, r, offset));
        r
    })
    .unwrap()
}

/// Waits for the byte at `offset`; how long it took.
fn first_byte(s: &mut Swarm, n: NodeId, t: TorrentId, offset: u64) -> Duration {
    let from = s.elapsed();
    s.run_until(|s| ready(s, n, t, offset) > 0, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("byte {offset} never came: {e:?}"));
    s.elapsed() - from
}

/// A piece's time at the swarm's 10 MB/s plus a round trip: the bound a seek's first byte
/// should meet.
fn piece_time_and_round_trip() -> Duration {
    Duration::from_secs_f64(f64::from(PIECE) / 10_000_000.0) + 2 * LATENCY
}

/// What a seed has queued for the leecher that a CANCEL cannot recall, in time at its
/// 2.5 MB/s: its send watermark's floor ([`MIN_SEND_WATERMARK`], two blocks; ten ms of its
/// rate, what the watermark follows, is less) handed to the socket, and the socket's own
/// send buffer ([`SEND_BUFFER`]) on the wire. Their PIECE headers (13 bytes a block) are
/// left out: microseconds.
fn seed_queue_drain() -> Duration {
    let queued = MIN_SEND_WATERMARK + SEND_BUFFER as u64;
    Duration::from_secs_f64(queued as f64 / SEED_RATE as f64)
}

/// A reader playing the file from the start seeks to the middle: its first byte there
/// comes within a piece's time and a round trip (issue 18), plus the time the seeds take to
/// send what they had queued before the seek ([`seed_queue_drain`]). Each seed keeps the
/// requests beyond its send watermark, so the seek's CANCELs withdraw them.
#[test]
fn a_seek_to_the_middle_gets_its_first_byte_soon() {
    let len = 256 * MIB;
    let (mut s, leecher, t, _) = swarm(len, Duration::ZERO);
    let r = open_at(&mut s, leecher, t, 0);
    s.run_for(Duration::from_secs(3));
    let middle = len / 2 + 12_345;
    assert_eq!(
        ready(&s, leecher, t, middle),
        0,
        "the middle came before the seek"
    );
    s.with_session(leecher, |session, now| session.move_reader(now, r, middle));
    let took = first_byte(&mut s, leecher, t, middle);
    let bound = piece_time_and_round_trip();
    let queued = seed_queue_drain();
    eprintln!(
        "first byte of the middle after {took:?} (a piece's time and a round trip: {bound:?}, \
         plus the seeds' queues: {queued:?})"
    );
    assert!(took <= bound + queued, "{took:?}");
}

/// A reader moving through the file as fast as bytes come reads it all, byte-exact, and
/// waits little longer than the download takes.
#[test]
fn a_reader_reads_the_whole_file_in_order() {
    let len = 16 * MIB;
    let (mut s, leecher, t, content) = swarm(len, Duration::ZERO);
    let r = open_at(&mut s, leecher, t, 0);
    let mut at = 0;
    while at < len {
        s.run_until(|s| ready(s, leecher, t, at) > 0, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("stuck at {at}: {e:?}"));
        at += ready(&s, leecher, t, at);
        s.with_session(leecher, |session, now| session.move_reader(now, r, at));
    }
    assert!(
        s.content(
            leecher,
            &make_torrent(&[("movie.mkv", len)], PIECE, 21).unwrap().0
        ) == content
    );
    eprintln!("read {len} bytes in order in {:?}", s.elapsed());
}

/// Two readers far apart each get their first byte soon: their windows interleave, so each
/// takes about twice what a lone reader's does.
#[test]
fn two_readers_each_get_their_window() {
    let len = 128 * MIB;
    let (mut s, leecher, t, _) = swarm(len, Duration::from_secs(2));
    let (a, b) = (len / 4, 3 * len / 4);
    let ra = open_at(&mut s, leecher, t, 0);
    s.run_for(Duration::from_secs(2));
    let rb = s
        .with_session(leecher, |session, now| session.open_reader(now, t, 0))
        .unwrap()
        .unwrap();
    let from = s.elapsed();
    s.with_session(leecher, |session, now| {
        session.move_reader(now, ra, a);
        session.move_reader(now, rb, b);
    });
    s.run_until(
        |s| ready(s, leecher, t, a) > 0 && ready(s, leecher, t, b) > 0,
        Duration::from_secs(30),
    )
    .unwrap();
    let took = s.elapsed() - from;
    eprintln!("both readers' first bytes after {took:?}");
    // The two windows share the swarm: each first piece in twice a lone reader's time.
    let bound = 2 * (piece_time_and_round_trip() + seed_queue_drain());
    assert!(took <= bound, "{took:?}");
}

/// Sequential download: the pieces come in index order (a few in flight at once).
#[test]
fn sequential_download_takes_pieces_in_order() {
    let (meta, content) = make_torrent(&[("s.bin", 8 * MIB)], PIECE, 22).unwrap();
    let mut s = Swarm::new(82);
    s.set_default_link(LinkConfig::new(LATENCY));
    let seed = s.add_node(NodeOptions {
        upload: Some(2_500_000),
        ..Default::default()
    });
    s.add_seed(seed, &meta, &content);
    let leecher = s.add_node(NodeOptions::default());
    let opts = AddTorrent {
        sequential: true,
        ..Default::default()
    };
    let t = s.add_torrent(leecher, &meta, opts);
    s.run_until(|s| s.is_complete(leecher, t), Duration::from_secs(60))
        .unwrap();
    let order: Vec<u32> = s
        .events(leecher)
        .iter()
        .filter_map(|(_, e)| match e {
            bt_proto::engine::Event::HashPassed { piece, .. } => Some(piece.0),
            _ => None,
        })
        .collect();
    // Each piece verified before any piece more than a few places after it.
    for (i, p) in order.iter().enumerate() {
        assert!(
            order[..i].iter().all(|q| *q < p + 8),
            "piece {p} came after a later one: {order:?}"
        );
    }
}
