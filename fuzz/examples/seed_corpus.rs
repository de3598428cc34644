//! Writes the seed corpora under `fuzz/corpus/<target>/` from the fixtures and from messages
//! built with bt-proto's own encoders, so every seed is a valid input the target can mutate.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`.
//! It rewrites the seed files it names and leaves other files alone.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bt_proto::bencode::Bencode;
use bt_proto::extensions::ExtensionHandshake;
use bt_proto::extensions::ut_metadata::{METADATA_PIECE_LEN, MetadataMessage};
use bt_proto::extensions::ut_pex::{PexFlags, PexMessage};
use bt_proto::lsd::{Announce, LsdGroup};
use bt_proto::magnet::{Magnet, MagnetPeer};
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::{FileStamp, ResumeData};
use bt_proto::tracker::announce::AnnounceRequest;
use bt_proto::tracker::udp::{
    self, Action, CompactPeers, ConnectRequest, ConnectResponse, ConnectionId, ErrorResponse,
    ScrapeRequest, TransactionId,
};
use bt_proto::tracker::{AnnounceEvent, AnnounceResponse, Peer, ScrapeResponse, ScrapeStats};
use bt_proto::wire::{BlockRequest, Handshake, Message, Reserved};
use bt_proto::{Bitfield, InfoHash, PeerId, PieceIndex};
use bytes::Bytes;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("../tests/fixtures/webtorrent").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A split plan (see `fuzz_targets/split.rs`) in front of `stream`.
fn planned(lens: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut out = vec![lens.len() as u8];
    out.extend_from_slice(lens);
    out.extend_from_slice(stream);
    out
}

fn main() {
    // Small torrents only: the big ones would dominate the corpus size.
    let torrents = [
        "alice.torrent",
        "folder.torrent",
        "numbers.torrent",
        "leaves.torrent",
    ];
    for name in torrents {
        let bytes = fixture(name);
        write("metainfo", name, &bytes);
        write("bencode", name, &bytes);
    }
    write("metainfo", "corrupt.torrent", &fixture("corrupt.torrent"));
    write("bencode", "unsorted", b"d1:bi1e1:ali2eli3eee");
    write("bencode", "nested", b"lld3:keyi-42e0:1:xeee");

    let numbers = Metainfo::from_bytes(&fixture("numbers.torrent")).expect("fixture parses");
    write("magnet", "numbers", numbers.magnet().to_uri().as_bytes());
    let mut m = Magnet::new(InfoHash([0xab; 20]));
    m.display_name = Some("a b&c=d%é".into());
    m.trackers = vec![
        "udp://t.example:6969/announce".into(),
        "http://[::1]/a?x=1".into(),
    ];
    m.peers = vec![
        "10.0.0.1:6881".parse::<MagnetPeer>().expect("peer"),
        "[::1]:1".parse::<MagnetPeer>().expect("peer"),
    ];
    write("magnet", "full", m.to_uri().as_bytes());
    write(
        "magnet",
        "base32",
        b"magnet:?xt=urn:btih:VLVLVLVLVLVLVLVLVLVLVLVLVLVLVLVL&tr.1=http%3A%2F%2Fa%2F",
    );

    for group in LsdGroup::ALL {
        let announce = Announce {
            group,
            port: 6881,
            info_hashes: vec![numbers.info_hash(), InfoHash([0xab; 20])],
            cookie: Some("0badcafe".into()),
        };
        write("lsd", &format!("{group:?}"), &announce.encode());
    }
    write(
        "lsd",
        "other_client",
        b"BT-SEARCH * HTTP/1.1\r\nhost: 239.192.152.143:6771\r\nPORT: 51413\r\n\
X-Extra: 1\r\nInfohash: D2474E86C95B19B8BCFDB92BC12C9D44667CFA36\r\n\r\n",
    );

    let hs = Handshake {
        reserved: Reserved::NONE,
        info_hash: numbers.info_hash(),
        peer_id: PeerId(*b"-Sx0100-abcdefghijkl"),
    };
    write("handshake", "full", &hs.encode());
    write("handshake", "prefix", &hs.encode()[..48]);

    let req = BlockRequest::new(PieceIndex(1), 16384, 16384);
    let messages = [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(PieceIndex(2)),
        Message::Bitfield(Bytes::from_static(&[0b1010_0000])),
        Message::Request(req),
        Message::Piece {
            piece: PieceIndex(1),
            offset: 0,
            data: Bytes::from_static(b"0123456789"),
        },
        Message::Cancel(req),
        Message::Port(6881),
        Message::Suggest(PieceIndex(0)),
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest(req),
        Message::AllowedFast(PieceIndex(3)),
        Message::Extended {
            id: 0,
            payload: Bytes::from(
                Bencode::dict()
                    .with("m", Bencode::dict().with("ut_pex", 1))
                    .encode(),
            ),
        },
        Message::Unknown {
            id: 99,
            payload: Bytes::from_static(b"??"),
        },
    ];
    let mut stream = Vec::new();
    for message in &messages {
        message.encode(&mut stream).expect("valid message");
    }
    // Header: flags (bit 0 handshake first, bit 1 piece count known), piece count u16, then
    // the split plan and the stream.
    let mut seed = vec![0b10, 0, 3];
    seed.extend(planned(&[1, 7, 3], &stream));
    write("wire", "messages", &seed);
    let mut with_hs = hs.encode().to_vec();
    with_hs.extend_from_slice(&stream);
    let mut seed = vec![0b11, 0, 3];
    seed.extend(planned(&[5, 60, 2, 200], &with_hs));
    write("wire", "handshake-then-messages", &seed);
    let mut seed = vec![0b00, 0, 0];
    seed.extend(planned(&[], &stream));
    write("wire", "unknown-piece-count", &seed);

    // HTTP tracker: responses, bodies, queries and URLs.
    let reply = AnnounceResponse {
        interval: Duration::from_secs(1800),
        min_interval: Some(Duration::from_secs(60)),
        warning: None,
        tracker_id: Some(b"tid".to_vec()),
        complete: Some(5),
        incomplete: Some(2),
        peers: vec![
            Peer::from_addr(SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 6881))),
            Peer::from_addr(SocketAddr::from((Ipv6Addr::LOCALHOST, 6882))),
        ],
    };
    let body = reply.encode();
    let mut http = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    http.extend_from_slice(&body);
    write("http_tracker", "content-length", &planned(&[3, 17], &http));
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(20) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    write("http_tracker", "chunked", &planned(&[9, 1, 40], &chunked));
    write(
        "http_tracker",
        "redirect",
        &planned(&[], b"HTTP/1.0 302 Found\r\nLocation: ../other?x=1\r\n\r\n"),
    );
    let peers_dict = Bencode::dict()
        .with("interval", 900)
        .with(
            "peers",
            vec![
                Bencode::dict()
                    .with("ip", "tracker.example")
                    .with("peer id", &[7u8; 20][..])
                    .with("port", 6881),
            ],
        )
        .encode();
    write(
        "http_tracker",
        "dict-peers-body",
        &planned(&[], &peers_dict),
    );
    let mut scrape = ScrapeResponse::default();
    scrape.files.insert(
        InfoHash([1; 20]),
        ScrapeStats {
            seeders: 1,
            completed: 2,
            leechers: 3,
        },
    );
    write(
        "http_tracker",
        "scrape-body",
        &planned(&[], &scrape.encode()),
    );
    let announce = AnnounceRequest {
        info_hash: numbers.info_hash(),
        peer_id: PeerId(*b"-Sx0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: Some(0xdead_beef),
        tracker_id: Some(b"t i d".to_vec()),
        ip: Some("192.0.2.1".parse().expect("ip")),
    };
    write(
        "http_tracker",
        "announce-query",
        &planned(&[], announce.query().as_bytes()),
    );
    write(
        "http_tracker",
        "url",
        &planned(
            &[],
            b"https://Tracker.Example:8443/a/b/announce?passkey=x y#frag",
        ),
    );

    tracker_url_seeds();
    http_reply_seeds(&body);
    encoding_seeds(&numbers);
    extension_seeds(&numbers);
    utp_seeds();

    // UDP tracker: one selector byte (see the target), then a packet.
    let txn = TransactionId(0x1234_5678);
    let conn = ConnectionId(0x0102_0304_0506_0708);
    let udp_announce = udp::AnnounceRequest::from_announce(conn, txn, &announce);
    let packets: Vec<(&str, u8, Vec<u8>)> = vec![
        (
            "connect-request",
            0,
            ConnectRequest {
                transaction_id: txn,
            }
            .encode(),
        ),
        ("announce-request", 0, udp_announce.encode()),
        (
            "scrape-request",
            0,
            ScrapeRequest {
                connection_id: conn,
                transaction_id: txn,
                info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
            }
            .encode(),
        ),
        (
            "connect-response",
            0,
            ConnectResponse {
                transaction_id: txn,
                connection_id: conn,
            }
            .encode(),
        ),
        (
            "announce-response-v4",
            1 << 1,
            udp::AnnounceResponse {
                transaction_id: txn,
                interval: Duration::from_secs(900),
                leechers: 1,
                seeders: 2,
                peers: CompactPeers::V4(vec![SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881)]),
            }
            .encode(),
        ),
        (
            "announce-response-v6",
            1 | (1 << 1),
            udp::AnnounceResponse {
                transaction_id: txn,
                interval: Duration::from_secs(900),
                leechers: 1,
                seeders: 2,
                peers: CompactPeers::V6(vec![SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6881, 0, 0)]),
            }
            .encode(),
        ),
        (
            "scrape-response",
            2 << 1,
            udp::ScrapeResponse {
                transaction_id: txn,
                stats: vec![ScrapeStats {
                    seeders: 1,
                    completed: 2,
                    leechers: 3,
                }],
            }
            .encode(),
        ),
        (
            "error-response",
            Action::Error.code() as u8 % 4 * 2,
            ErrorResponse {
                transaction_id: txn,
                message: "unknown torrent".into(),
            }
            .encode(),
        ),
    ];
    for (name, selector, packet) in packets {
        let mut seed = vec![selector];
        seed.extend_from_slice(&packet);
        write("udp_tracker", name, &seed);
    }

    // Resume data for numbers.torrent: a change plan byte count, the plan, then the data.
    let mut pieces = Bitfield::new(numbers.piece_count());
    pieces.set(PieceIndex(0), true);
    let stamp = |length, t| {
        Some(FileStamp {
            length,
            mtime_secs: t,
            mtime_nanos: 17,
        })
    };
    let files: Vec<Option<FileStamp>> = numbers
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 1 {
                None
            } else {
                stamp(f.length, 1_700_000_000)
            }
        })
        .collect();
    let data = ResumeData {
        info_hash: numbers.info_hash(),
        pieces: pieces.clone(),
        files: files.clone(),
        uploaded: 10,
        downloaded: 20,
    };
    let mut seed = vec![0];
    seed.extend_from_slice(&data.encode());
    write("resume", "unchanged", &seed);
    let all = ResumeData {
        pieces: Bitfield::full(numbers.piece_count()),
        files: numbers.files().iter().map(|f| stamp(f.length, 5)).collect(),
        ..data
    };
    let mut seed = vec![0x81, 0b0110_1100];
    seed.extend_from_slice(&all.encode());
    write("resume", "changed-files", &seed);
}

/// `tracker_url`: flags (bit 0 IPv6; bits 1-2: no redirect, from a local tracker, from a
/// global one), 16 address bytes, then a URL and, after a newline, a reference.
fn tracker_url_seeds() {
    let v4 = |a: [u8; 4]| {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&a);
        bytes
    };
    let seeds: [(&str, u8, [u8; 16], &str); 5] = [
        (
            "local-announce",
            0,
            v4([127, 0, 0, 1]),
            "http://127.0.0.1:6969/announce?passkey=x\n/announce?y=1",
        ),
        (
            "local-admin",
            0,
            v4([192, 168, 1, 1]),
            "http://router.lan/cgi-bin/reboot\n",
        ),
        (
            "udp-v6",
            1,
            Ipv6Addr::LOCALHOST.octets(),
            "udp://[::1]:6969\n//other.example:80/announce",
        ),
        (
            "https-from-global",
            4,
            v4([10, 0, 0, 1]),
            "https://Tracker.Example:8443/a/b/announce?passkey=x y#frag\nhttp://10.0.0.1/announce",
        ),
        (
            "relative-from-local",
            2,
            v4([8, 8, 8, 8]),
            "http://t.example/a/announce?k=1\n../other?x=1",
        ),
    ];
    for (name, flags, ip, text) in seeds {
        let mut seed = vec![flags];
        seed.extend_from_slice(&ip);
        seed.extend_from_slice(text.as_bytes());
        write("tracker_url", name, &seed);
    }
}

/// One `http_reply` seed: its name, redirects followed, request URL selector, status,
/// `Location` (empty: none) and body.
type HttpReplySeed<'a> = (&'a str, u8, u8, u16, &'a str, &'a [u8]);

/// `http_reply`: redirects followed, request URL selector, status (u16), `Location` length
/// (0: none), the location, then the body.
fn http_reply_seeds(reply: &[u8]) {
    let failure = Bencode::dict()
        .with("failure reason", "unregistered torrent")
        .encode();
    let seeds: [HttpReplySeed; 6] = [
        ("reply", 0, 0, 200, "", reply),
        ("refused-ok", 0, 0, 200, "", &failure),
        ("refused-403", 0, 2, 403, "", &failure),
        ("not-found", 1, 0, 404, "", b"<h1>Not Found</h1>"),
        ("redirect", 2, 0, 302, "/v2/announce?a=b", b""),
        (
            "downgrade",
            0,
            1,
            301,
            "http://t.example/announce?passkey=y",
            b"",
        ),
    ];
    for (name, redirects, selector, status, location, body) in seeds {
        let mut seed = vec![redirects, selector];
        seed.extend_from_slice(&status.to_be_bytes());
        seed.push(location.len() as u8);
        seed.extend_from_slice(location.as_bytes());
        seed.extend_from_slice(body);
        write("http_reply", name, &seed);
    }
}

/// `utp_packet`: a SYN, an ack with a selective ack, data, and a packet with an extension
/// the decoder skips.
fn utp_seeds() {
    use bt_proto::utp::{Header, Packet, PacketType, SelectiveAck};
    let header = |kind| Header {
        kind,
        connection_id: 0x1234,
        timestamp_us: 1_000_000,
        timestamp_diff_us: 20_000,
        wnd_size: 1 << 20,
        seq_nr: 65535,
        ack_nr: 7,
    };
    let packet = |kind, sack: Option<SelectiveAck<'static>>, payload: &'static [u8]| Packet {
        header: header(kind),
        sack,
        payload,
    };
    write(
        "utp_packet",
        "syn",
        &packet(PacketType::Syn, None, b"").encode(),
    );
    let sack = SelectiveAck::new(&[0b101, 0, 0, 0x80]).ok();
    write(
        "utp_packet",
        "state-sack",
        &packet(PacketType::State, sack, b"").encode(),
    );
    write(
        "utp_packet",
        "data",
        &packet(PacketType::Data, None, b"hello").encode(),
    );
    let mut skipped = packet(PacketType::Fin, None, b"").encode();
    skipped[1] = 2;
    skipped.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    write("utp_packet", "fin-extension-bits", &skipped);
}

/// `encoding`: text each codec reads.
fn encoding_seeds(numbers: &Metainfo) {
    let hash = numbers.info_hash();
    write("encoding", "hex", hash.to_string().as_bytes());
    let mut upper = hash.to_string().to_ascii_uppercase().into_bytes();
    upper.extend_from_slice(b"%41%2");
    write("encoding", "hex-upper-then-percent", &upper);
    write(
        "encoding",
        "base32",
        bt_proto::encoding::base32::encode(&hash.0).as_bytes(),
    );
    write("encoding", "percent", b"a%20b+c%7E%zz~");
    write(
        "encoding",
        "controls",
        "name\u{1b}[2J\u{9b}1m\u{202e}gpj.exe\\u{41}\t\r\n\u{e0041}".as_bytes(),
    );
}

/// `extension`: a selector byte (0 handshake, 1 ut_metadata, 2 ut_pex), then the payload.
fn extension_seeds(numbers: &Metainfo) {
    let seed = |selector: u8, payload: Vec<u8>| {
        let mut out = vec![selector];
        out.extend(payload);
        out
    };
    let handshake = ExtensionHandshake {
        ut_metadata: Some(1),
        ut_pex: Some(0),
        metadata_size: Some(numbers.info_bytes().len() as u64),
        listen_port: Some(6881),
        reqq: Some(500),
        client: Some("bt 0.1.0".into()),
        yourip: Some(Ipv4Addr::new(10, 0, 0, 1).into()),
    };
    write("extension", "handshake", &seed(0, handshake.encode()));
    let request = MetadataMessage::Request { piece: 0 };
    write("extension", "metadata-request", &seed(1, request.encode()));
    let info = numbers.info_bytes();
    let data = MetadataMessage::Data {
        piece: 0,
        total_size: info.len() as u64,
        data: Bytes::copy_from_slice(&info[..info.len().min(METADATA_PIECE_LEN)]),
    };
    write("extension", "metadata-data", &seed(1, data.encode()));
    let pex = PexMessage {
        added: vec![
            (SocketAddr::from(([10, 0, 0, 2], 6881)), PexFlags::SEED),
            (
                SocketAddr::from((Ipv6Addr::LOCALHOST, 51413)),
                PexFlags::REACHABLE,
            ),
        ],
        dropped: vec![SocketAddr::from(([10, 0, 0, 3], 6881))],
    };
    write("extension", "pex", &seed(2, pex.encode()));
}
