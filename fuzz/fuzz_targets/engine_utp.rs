//! uTP connections inside the engine under hostile datagrams: a seeding session takes
//! datagrams from an honest uTP peer (our own socket, sending a BitTorrent handshake and
//! fuzz-chosen bytes) that the fuzzer drops, flips, duplicates and reorders, and raw
//! fuzz-chosen datagrams from other addresses, while time moves. After every step: no panic,
//! every datagram the engine sends is a uTP packet of at most `MAX_DATAGRAM` bytes, and the
//! session holds no more connections than its incoming limit.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::engine::{AddTorrent, Config, Input, Output, Session};
use bt_proto::metainfo::Metainfo;
use bt_proto::utp::{MAX_DATAGRAM, Packet, Socket, SocketConfig, StreamId};
use bt_proto::wire::{Extension, Handshake, Reserved};
use bt_proto::{Bitfield, PeerId};
use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

mod common;

/// The session's incoming limit in this target: small, so that floods reach it.
const MAX_INCOMING: usize = 4;

fn meta() -> &'static Metainfo {
    static META: std::sync::OnceLock<Metainfo> = std::sync::OnceLock::new();
    META.get_or_init(|| common::small_torrent("u"))
}

const ENGINE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    6881,
);
const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    6881,
);

struct Harness {
    s: Session,
    now: Instant,
    peer: Socket,
    stream: StreamId,
    /// Datagrams on their way to the engine, which the fuzzer picks from.
    to_engine: Vec<Vec<u8>>,
}

impl Harness {
    /// Moves the engine's datagrams to the honest peer, checking each.
    fn pump(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::SendDatagram { to, data } => {
                    assert!(data.len() <= MAX_DATAGRAM, "{} bytes sent", data.len());
                    assert!(
                        Packet::decode(&data).is_ok(),
                        "the engine sent a bad packet"
                    );
                    if to == PEER {
                        self.peer.handle(self.now, ENGINE, &data);
                    }
                }
                Output::Send { .. } | Output::Close { .. } | Output::Connect { .. } => {
                    panic!("a uTP-only session asked the adapter for TCP: {o:?}")
                }
                _ => {}
            }
        }
        while let Some((_, d)) = self.peer.poll_transmit(self.now) {
            self.to_engine.push(d);
        }
        let held = self.s.memory_use().connections;
        assert!(held <= MAX_INCOMING, "{held} connections held");
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let meta = meta();
    let mut config = Config::new(PeerId(*b"-Sx0001-fuzzfuzzfuzz"), 6881, u.arbitrary()?);
    config.transports = bt_proto::engine::Transports::Utp;
    config.max_incoming = MAX_INCOMING;
    let now = Instant::now();
    let mut s = Session::new(config);
    let opts = AddTorrent {
        have: Some(Bitfield::full(meta.piece_count())),
        ..Default::default()
    };
    s.add_torrent(now, meta.clone(), opts);
    let mut peer = Socket::new(now, SocketConfig { max_incoming: 1 }, u.arbitrary()?);
    let stream = peer.connect(now, ENGINE);
    let hs = Handshake {
        reserved: Reserved::NONE.with(Extension::Fast),
        info_hash: meta.info_hash(),
        peer_id: PeerId([0xab; 20]),
    };
    peer.write(stream, &hs.encode());
    let mut h = Harness {
        s,
        now,
        peer,
        stream,
        to_engine: Vec::new(),
    };
    h.pump();
    for _ in 0..u.int_in_range(0..=60)? {
        match u.int_in_range(0..=5)? {
            0 | 1 if !h.to_engine.is_empty() => {
                // The honest peer's next datagram: delivered, maybe flipped, maybe twice, or
                // lost; not always the oldest (reordering).
                let i = u.choose_index(h.to_engine.len())?;
                let mut d = h.to_engine.remove(i);
                if let Some((at, x)) = u.arbitrary::<Option<(usize, u8)>>()?
                    && !d.is_empty()
                {
                    let at = at % d.len();
                    if let Some(b) = d.get_mut(at) {
                        *b ^= x;
                    }
                }
                let copies = u.int_in_range(0..=2)?;
                for _ in 0..copies {
                    let data = Bytes::from(d.clone());
                    h.s.handle(h.now, Input::Datagram { from: PEER, data });
                }
            }
            2 => {
                // Bytes from the peer's application: peer-wire messages or garbage.
                let n = u.int_in_range(0..=300)?;
                let bytes = u.bytes(n)?.to_vec();
                h.peer.write(h.stream, &bytes);
            }
            3 => {
                // A stranger's datagram (forged ids, acks of nothing, SYNs).
                let host: u8 = u.int_in_range(3..=8)?;
                let n = u.int_in_range(0..=100)?;
                let mut d = u.bytes(n)?.to_vec();
                if let Some(b) = d.first_mut() {
                    // Mostly uTP version 1, so the engine does not drop them on sight.
                    *b = (*b & 0xf0) | 1;
                }
                let from = SocketAddr::from(([10, 0, 0, host], u.int_in_range(1..=3)?));
                h.s.handle(
                    h.now,
                    Input::Datagram {
                        from,
                        data: d.into(),
                    },
                );
            }
            _ => {
                h.now += Duration::from_millis(u.int_in_range(1..=3000)?);
                h.s.handle_timeout(h.now);
                h.peer.handle_timeout(h.now);
            }
        }
        h.pump();
        let mut buf = vec![0; 1 << 16];
        while h.peer.read(h.stream, &mut buf) > 0 {}
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
