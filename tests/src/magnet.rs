//! Magnet links over real sockets and files, generic over the runtime like the conformance
//! suite (`tests/tests/conformance.rs` runs them on tokio and smol): a download whose only
//! way in is a tracker, one whose only way in is an `x.pe` host name, and a restart that
//! takes the metadata kept by the first run instead of fetching it again; and metadata no
//! honest seed would hold (served by a scripted peer), refused without harm. And the
//! session's switch for peer exchange, seen in its extension handshake.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bt_adapter::{
    Error, LayoutError, MagnetOptions, MagnetTorrent, Runtime, Session, TorrentOptions,
    TorrentState,
};
use bt_proto::bencode::Bencode;
use bt_proto::engine::Event;
use bt_proto::extensions::ExtensionHandshake;
use bt_proto::extensions::ut_metadata::{MetadataMessage, piece_of};
use bt_proto::magnet::{Magnet, MagnetPeer};
use bt_proto::metainfo::{Metainfo, MetainfoError};
use bt_proto::sim::remote::{self, RemotePeer};
use bt_proto::storage::{metadata_path, resume_path};
use bt_proto::wire::{Extension, Message, Reserved};
use bt_proto::{InfoHash, PeerId};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance::{RESUME_PIECE, running_seed};
use crate::swarm::*;
use crate::tracker::TestTracker;

/// The events of `session` from now on, kept for looking at later.
fn event_log<R: Runtime>(session: &Session<R>) -> Arc<Mutex<Vec<Event>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = log.clone();
    let mut events = session.events();
    R::detach(R::spawn(async move {
        while let Some(e) = events.next().await {
            let e = e.expect("the test reads every event");
            writer.lock().unwrap().push(e);
        }
    }));
    log
}

/// The metadata the leecher under `base` kept for the torrent `meta`, if it kept it.
fn kept_metadata(base: &Path, meta: &Metainfo) -> Option<Metainfo> {
    let path = metadata_path(&resume_path(base, &meta.info_hash()));
    Some(Metainfo::from_bytes(&std::fs::read(path).ok()?).unwrap())
}

/// Downloads through the magnet `link` into `base` and checks what must hold of any magnet
/// download: no name or size before the metadata, the same torrent after, byte-exact files,
/// one `MetadataReceived`, and the metadata kept beside the resume data.
async fn download<R: Runtime>(
    leecher: &Session<R>,
    link: Magnet,
    base: &Path,
    seed_dir: &Path,
    meta: &Metainfo,
) -> MagnetTorrent<R> {
    let events = event_log(leecher);
    let lt = leecher
        .add_magnet(MagnetOptions::from_magnet(link).base_dir(base))
        .await
        .unwrap();
    assert_eq!(lt.infohash(), meta.info_hash());
    let t = lt.wait_metadata().await.unwrap();
    assert_eq!(t.metainfo().info_bytes(), meta.info_bytes());
    assert_eq!(t.id(), lt.id());
    assert!(lt.stats().await.unwrap().has_metadata);
    assert_eq!(lt.name().as_deref(), Some(meta.name()));
    lt.wait_complete().await.unwrap();
    assert_same_tree(seed_dir, base);
    let kept = until::<R, _, _, _>(|| async { kept_metadata(base, meta) }).await;
    assert_eq!(kept.info_hash(), meta.info_hash());
    let received =
        |e: &Event| matches!(e, Event::MetadataReceived { torrent } if *torrent == lt.id());
    until::<R, _, _, _>(|| async { events.lock().unwrap().iter().any(received).then_some(()) })
        .await;
    assert_eq!(
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| received(e))
            .count(),
        1
    );
    lt
}

/// A magnet link holding only the info-hash and a tracker: the tracker brings the seed, the
/// seed gives the metadata, then the files.
pub async fn through_tracker<R: Runtime>(tracker: TestTracker) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(3_000));
    let torrent = torrent_of::<R>(&content, 16 * 1024, vec![tracker.url.clone()]).await;
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let seed = loopback_session::<R>().await;
    let mut seed_events = seed.events();
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    // The seed is known to the tracker before the leecher asks.
    while !matches!(
        seed_events.next().await.unwrap().unwrap(),
        Event::TrackerReply { .. }
    ) {}

    let mut link = Magnet::new(meta.info_hash());
    link.trackers = vec![tracker.url.clone()];
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let lt = download(&leecher, link, &base, &seed_dir, &meta).await;
    let trackers = lt.trackers().await.unwrap();
    assert_eq!(trackers.len(), 1);
    assert_eq!(trackers[0].last_error, None);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A magnet link with no tracker and one `x.pe` peer given by host name (`localhost`),
/// which the adapter resolves.
pub async fn from_peer_only<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = running_seed::<R>(&seed_dir, 3_000, 16 * 1024).await;
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let mut link = Magnet::new(meta.info_hash());
    link.peers = vec![MagnetPeer::Host {
        host: "localhost".into(),
        port: seed.port(),
    }];
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    download(&leecher, link, &base, &seed_dir, &meta).await;
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A magnet download shut down part-way (only the first file wanted) and added again by the
/// same link into the same directory: the second run takes the metadata kept by the first
/// (it is there at once, and no `MetadataReceived` comes) and its resume data (the verified
/// pieces are not downloaded again), and finishes.
pub async fn restart<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, st) = running_seed::<R>(&seed_dir, 5_000, RESUME_PIECE).await;
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let link = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&x.pe={}",
        meta.info_hash(),
        addr_of(&seed)
    ))
    .unwrap();
    let base = dir.path().join("leecher");
    let mut prio = vec![0u8; st.metainfo().files().len()];
    prio[0] = 1;

    let s1 = loopback_session::<R>().await;
    let t1 = s1
        .add_magnet(
            MagnetOptions::from_magnet(link.clone())
                .base_dir(&base)
                .file_priorities(prio),
        )
        .await
        .unwrap();
    t1.wait_complete().await.unwrap();
    let have1 = t1.metadata().unwrap().bitfield().await.unwrap();
    assert!(have1.count() > 0 && !have1.is_full());
    until::<R, _, _, _>(|| async { kept_metadata(&base, &meta) }).await;
    s1.shutdown().await;

    let s2 = loopback_session::<R>().await;
    let events = event_log(&s2);
    // Paused, so that what the resume data gave can be looked at before the download
    // (fast on loopback) fills in the rest.
    let t2 = s2
        .add_magnet(
            MagnetOptions::from_magnet(link)
                .base_dir(&base)
                .state(TorrentState::Paused),
        )
        .await
        .unwrap();
    let whole = t2.metadata().expect("the kept metadata, at once");
    assert!(t2.stats().await.unwrap().has_metadata);
    assert_eq!(whole.metainfo().info_bytes(), meta.info_bytes());
    assert_eq!(whole.bitfield().await.unwrap(), have1, "resume data taken");
    let down_before = whole.downloaded().await.unwrap();
    t2.start().await.unwrap();
    t2.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    let missing: u64 = (0..have1.len())
        .map(bt_proto::PieceIndex)
        .filter(|p| !have1.get(*p))
        .map(|p| u64::from(meta.piece_len(p).unwrap()))
        .sum();
    assert_eq!(whole.downloaded().await.unwrap() - down_before, missing);
    let fetched = events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::MetadataReceived { .. }));
    assert!(!fetched, "the metadata was fetched again");
    s2.shutdown().await;
    seed.shutdown().await;
}

/// A peer on 127.0.0.1 that serves `info` (any bytes) as the metadata of its SHA-1 to every
/// connection, and nothing else: metadata no honest seed would hold. Its address and the
/// info-hash.
async fn metadata_server(info: Vec<u8>) -> (std::net::SocketAddr, InfoHash) {
    let info_hash = InfoHash(Sha1::digest(&info).into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_metadata(stream, info_hash, info.clone()));
        }
    });
    (addr, info_hash)
}

/// Answers every `ut_metadata` request on `stream` with its piece of `info`.
async fn serve_metadata(mut stream: tokio::net::TcpStream, info_hash: InfoHash, info: Vec<u8>) {
    let mut peer = RemotePeer::new(0u8, info_hash, PeerId(*b"-XX0000-metadata-srv"))
        .with_reserved(Reserved::NONE.with(Extension::ExtensionProtocol));
    let ours = ExtensionHandshake {
        ut_metadata: Some(3),
        metadata_size: Some(info.len() as u64),
        ..Default::default()
    };
    let hello = Message::Extended {
        id: 0,
        payload: ours.encode().into(),
    };
    if stream
        .write_all(&peer.hello_bytes(&[hello]).unwrap())
        .await
        .is_err()
    {
        return;
    }
    let mut their_id = None;
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        peer.receive(&buf[..n]);
        let Ok(messages) = peer.messages() else {
            return;
        };
        for m in messages {
            let Message::Extended { id, payload } = m else {
                continue;
            };
            if id == 0 {
                their_id = ExtensionHandshake::decode(&payload)
                    .ok()
                    .and_then(|h| h.metadata_id());
                continue;
            }
            let (Some(to), Ok(MetadataMessage::Request { piece })) =
                (their_id, MetadataMessage::decode(&payload))
            else {
                continue;
            };
            let data = MetadataMessage::Data {
                piece,
                total_size: info.len() as u64,
                data: piece_of(&info, piece).unwrap_or_default().to_vec().into(),
            };
            let reply = Message::Extended {
                id: to,
                payload: data.encode().into(),
            };
            if stream
                .write_all(&remote::encode(&[reply]).unwrap())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The info dictionary of a one-file torrent named `name` (5 bytes, one piece).
fn info_named(name: &str) -> Vec<u8> {
    Bencode::dict()
        .with("length", 5)
        .with("name", name)
        .with("piece length", 16384)
        .with("pieces", vec![7u8; 20])
        .encode()
}

/// Adds the magnet of the metadata `info`, served by a peer of its own, and returns the error
/// waiting for the metadata ends with. The torrent is stopped then, and stays so; nothing of
/// it was written (its directory holds no file, and no metadata was kept).
async fn refused<R: Runtime>(info: Vec<u8>) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (addr, info_hash) = metadata_server(info).await;
    let mut link = Magnet::new(info_hash);
    link.peers = vec![MagnetPeer::Addr(addr)];
    let session = loopback_session::<R>().await;
    let base = dir.path().join("down");
    let mt = session
        .add_magnet(MagnetOptions::from_magnet(link).base_dir(&base))
        .await
        .unwrap();
    let error = mt.wait_metadata().await.unwrap_err();
    assert!(mt.metadata().is_none());
    assert_eq!(mt.state().await.unwrap(), TorrentState::Stopped);
    assert!(mt.wait_complete().await.is_err(), "it can never complete");
    session.shutdown().await;
    // Not even the directory (nor `.bt` in it, which `tree` would skip).
    assert!(!base.exists(), "nothing written");
    assert_eq!(tree(dir.path()), Vec::new(), "nothing written");
    error
}

/// Metadata whose files would be written where resume data is kept (a torrent named `.bt`)
/// is refused with [`Error::Layout`], and the torrent cannot be started again; metadata with
/// an unsafe path (`..`) with [`Error::Metainfo`]. Neither panics or writes anything.
pub async fn refused_metadata<R: Runtime>() {
    let error = refused::<R>(info_named(".bt")).await;
    assert!(
        matches!(
            error,
            Error::Layout {
                source: LayoutError::ResumeDir(_),
                ..
            }
        ),
        "{error}"
    );
    let error = refused::<R>(info_named("..")).await;
    assert!(
        matches!(error, Error::Metainfo(MetainfoError::UnsafePath { .. })),
        "{error}"
    );
}

/// The extension handshake a session seeding `torrent` sends a peer that connects and says
/// it speaks the extension protocol.
async fn extension_handshake_of(
    seed: std::net::SocketAddr,
    info_hash: InfoHash,
) -> ExtensionHandshake {
    let mut stream = tokio::net::TcpStream::connect(seed).await.unwrap();
    let mut peer = RemotePeer::new(0u8, info_hash, PeerId(*b"-XX0000-handshaker!!"))
        .with_reserved(Reserved::NONE.with(Extension::ExtensionProtocol));
    stream
        .write_all(&peer.hello_bytes(&[]).unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before its extension handshake");
        peer.receive(&buf[..n]);
        for m in peer.messages().unwrap() {
            if let Message::Extended { id: 0, payload } = m {
                return ExtensionHandshake::decode(&payload).unwrap();
            }
        }
    }
}

/// `SessionBuilder::pex(false)` switches peer exchange off for a session, and
/// `TorrentOptions::pex(false)` for one torrent: the session no longer offers `ut_pex` in
/// that torrent's extension handshake (so no peer sends it PEX messages, and it sends none),
/// while `ut_metadata` stays. Both are on by default.
pub async fn pex_switch<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("payload");
    write_payload(&content, &standard_files(1_000));
    let torrent = torrent_of::<R>(&content, 16 * 1024, Vec::new()).await;
    let info_hash = Metainfo::from_bytes(&torrent).unwrap().info_hash();
    for (session_pex, torrent_pex) in [(true, true), (false, true), (true, false)] {
        let seed = loopback_builder::<R>()
            .pex(session_pex)
            .start()
            .await
            .unwrap();
        let opts = TorrentOptions::from_bytes(torrent.clone())
            .base_dir(dir.path())
            .resume(false)
            .pex(torrent_pex);
        seed.add_torrent(opts)
            .await
            .unwrap()
            .wait_complete()
            .await
            .unwrap();
        let theirs = extension_handshake_of(addr_of(&seed), info_hash).await;
        let offered = theirs.pex_id().is_some();
        assert_eq!(
            offered,
            session_pex && torrent_pex,
            "{session_pex} {torrent_pex}: {theirs:?}"
        );
        assert!(theirs.metadata_id().is_some(), "ut_metadata offered");
        seed.shutdown().await;
    }
}
