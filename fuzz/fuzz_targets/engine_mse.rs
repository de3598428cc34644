//! The engine's encryption stage under hostile peers: a session (encryption enabled or
//! required) with one torrent accepts connections whose bytes are fuzz-chosen, or come from
//! a real MSE initiator whose stream the fuzzer cuts and flips, then carries BitTorrent
//! messages through the cipher the handshake set up. Time moves too. After every step: no
//! panic, and what the engine sends on a connection whose handshake finished decrypts to a
//! BitTorrent handshake followed by valid peer-wire messages.
#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::engine::{AddTorrent, Config, Input, Output, Session};
use bt_proto::metainfo::Metainfo;
use bt_proto::mse::{Cipher, Encryption, Initiator, Methods};
use bt_proto::rng::Rng;
use bt_proto::wire::{Decoder, Extension, Handshake, Progress, Reserved};
use bt_proto::{ConnId, PeerId};
use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

mod common;

fn meta() -> &'static Metainfo {
    static META: std::sync::OnceLock<Metainfo> = std::sync::OnceLock::new();
    META.get_or_init(|| common::small_torrent("m"))
}

/// One connection as the fuzzed peer sees it.
#[derive(Default)]
struct Conn {
    mse: Option<Initiator>,
    /// The engine's ciphers once our handshake finished (`None` inside: plaintext).
    done: Option<(Option<Cipher>, Option<Cipher>)>,
    /// What the engine sent after the handshake, decrypted.
    decoder: Option<Decoder>,
    handshook: bool,
}

struct Harness {
    s: Session,
    now: Instant,
    conns: BTreeMap<ConnId, Conn>,
    rng: Rng,
}

impl Harness {
    /// Routes the engine's output: bytes on our connections to their peers.
    fn pump(&mut self) {
        while let Some(o) = self.s.poll_output() {
            let (conn, bufs) = match o {
                Output::Send { conn, bufs } => (conn, bufs),
                Output::Close { conn, .. } => {
                    self.conns.remove(&conn);
                    continue;
                }
                _ => continue,
            };
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            for b in bufs {
                c.take(&b);
            }
        }
    }
}

impl Conn {
    fn take(&mut self, data: &[u8]) {
        if let Some((_, receive)) = &mut self.done {
            let mut d = data.to_vec();
            if let Some(r) = receive {
                r.apply(&mut d);
            }
            let dec = self.decoder.get_or_insert_with(|| Decoder::new(None));
            dec.feed_bytes(Bytes::from(d));
            if !self.handshook {
                match dec.decode_handshake() {
                    Ok(Progress::Done(_)) => self.handshook = true,
                    Ok(Progress::NeedMore(_)) => return,
                    Err(e) => panic!("the engine sent a bad handshake: {e:?}"),
                }
            }
            while let Some(m) = dec.next_message().expect("the engine sent a bad message") {
                let _ = m;
            }
            return;
        }
        let Some(i) = &mut self.mse else {
            return;
        };
        if let Ok(Some(mut e)) = i.receive(data) {
            self.done = Some((e.send.take(), e.receive.take()));
            let rest = std::mem::take(&mut e.rest);
            self.mse = None;
            self.take(&rest);
        }
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let meta = meta();
    let mut config = Config::new(PeerId(*b"-Sx0001-fuzzfuzzfuzz"), 6881, u.arbitrary()?);
    config.encryption = if u.arbitrary()? {
        Encryption::Required
    } else {
        Encryption::Enabled
    };
    let mut h = Harness {
        s: Session::new(config),
        now: Instant::now(),
        conns: BTreeMap::new(),
        rng: Rng::seed_from_u64(u.arbitrary()?),
    };
    h.s.add_torrent(h.now, meta.clone(), AddTorrent::default());
    h.pump();
    for _ in 0..u.int_in_range(0..=40)? {
        match u.int_in_range(0..=5)? {
            0 => {
                let host: u8 = u.int_in_range(1..=4)?;
                let conn =
                    h.s.accept(h.now, SocketAddr::from(([10, 0, 0, host], 5000)));
                let mut c = Conn::default();
                if u.arbitrary()? {
                    let offer = Methods(u.int_in_range(0..=3)?);
                    let ours = Handshake {
                        reserved: Reserved::NONE.with(Extension::Fast),
                        info_hash: meta.info_hash(),
                        peer_id: PeerId([0xab; 20]),
                    };
                    let mut i =
                        Initiator::new(&mut h.rng, meta.info_hash(), offer, ours.encode().to_vec())
                            .expect("a handshake fits the initial payload");
                    let first = i.take_output();
                    c.mse = Some(i);
                    h.conns.insert(conn, c);
                    h.s.handle(
                        h.now,
                        Input::Received {
                            conn,
                            data: first.into(),
                        },
                    );
                } else {
                    h.conns.insert(conn, c);
                }
            }
            1 | 2 if !h.conns.is_empty() => {
                // The next bytes of a connection's initiator (cut, maybe flipped), or raw.
                let keys: Vec<ConnId> = h.conns.keys().copied().collect();
                let conn = keys[u.choose_index(keys.len())?];
                let mut data = match h.conns.get_mut(&conn).and_then(|c| c.mse.as_mut()) {
                    Some(i) => i.take_output(),
                    None => {
                        let n = u.int_in_range(0..=200)?;
                        u.bytes(n)?.to_vec()
                    }
                };
                let len = data.len().max(1);
                if let Some((at, x)) = u.arbitrary::<Option<(usize, u8)>>()?
                    && let Some(b) = data.get_mut(at % len)
                {
                    *b ^= x;
                }
                h.s.handle(
                    h.now,
                    Input::Received {
                        conn,
                        data: data.into(),
                    },
                );
            }
            3 if !h.conns.is_empty() => {
                // A message after the handshake, through the cipher.
                let keys: Vec<ConnId> = h.conns.keys().copied().collect();
                let conn = keys[u.choose_index(keys.len())?];
                let n = u.int_in_range(0..=40)?;
                let mut data = u.bytes(n)?.to_vec();
                if let Some(Some((Some(send), _))) = h.conns.get_mut(&conn).map(|c| c.done.as_mut())
                {
                    send.apply(&mut data);
                }
                h.s.handle(
                    h.now,
                    Input::Received {
                        conn,
                        data: data.into(),
                    },
                );
            }
            4 if !h.conns.is_empty() => {
                let keys: Vec<ConnId> = h.conns.keys().copied().collect();
                let conn = keys[u.choose_index(keys.len())?];
                h.conns.remove(&conn);
                h.s.handle(h.now, Input::Closed { conn });
            }
            _ => {
                h.now += Duration::from_millis(u.int_in_range(0..=30_000)?);
                h.s.handle_timeout(h.now);
            }
        }
        h.pump();
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
