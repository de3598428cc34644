//! `utp_peer`: a one-torrent BitTorrent peer over `bt_proto::utp` and a plain UDP socket, for
//! checking the uTP machine against other clients by hand until the engine speaks uTP.
//!
//! ```text
//! cargo run --release -p bt-tests --bin utp_peer -- fetch|serve TORRENT CONTENT HOST:PORT
//! ```
//!
//! It connects to the client at HOST:PORT over uTP. `fetch` downloads the single-file torrent
//! and compares it with CONTENT; `serve` offers CONTENT (a bitfield of every piece, unchoked)
//! and answers requests until the client stops asking for 10 s. The bitfield goes after the
//! client's handshake: transmission 3.00 ignored one sent in the same uTP packet as ours.
// A manual test tool: a failing step should stop it loudly on its line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bt_proto::metainfo::Metainfo;
use bt_proto::utp::{Event, Socket, SocketConfig, SocketEvent, StreamId};
use bt_proto::wire::{BlockRequest, Decoder, Handshake, Message, Progress, Reserved};
use bt_proto::{PeerId, PieceIndex};
use bytes::Bytes;

/// Requests in flight when fetching.
const PIPELINE: usize = 32;

struct Peer {
    udp: UdpSocket,
    utp: Socket,
    id: StreamId,
    decoder: Decoder,
    shaken: bool,
    start: Instant,
}

impl Peer {
    /// Moves datagrams both ways and fires time-outs; returns the stream's events.
    fn turn(&mut self) -> Vec<Event> {
        let mut buf = [0u8; 65536];
        if let Ok((n, from)) = self.udp.recv_from(&mut buf) {
            self.utp.handle(Instant::now(), from, &buf[..n]);
        }
        let now = Instant::now();
        if self.utp.next_timeout().is_some_and(|t| t <= now) {
            self.utp.handle_timeout(now);
        }
        while let Some((to, d)) = self.utp.poll_transmit(Instant::now()) {
            self.udp.send_to(&d, to).unwrap();
        }
        let mut events = Vec::new();
        while let Some(e) = self.utp.poll_event() {
            if let SocketEvent::Stream(_, e) = e {
                events.push(e);
            }
        }
        loop {
            let n = self.utp.read(self.id, &mut buf);
            if n == 0 {
                break;
            }
            self.decoder.feed(&buf[..n]);
        }
        events
    }

    /// Writes all of `bytes`, turning while the send buffer is full.
    fn send(&mut self, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            done += self.utp.write(self.id, &bytes[done..]);
            if done < bytes.len() {
                self.turn();
            }
        }
    }

    /// The next whole message, once the handshake is in.
    fn message(&mut self) -> Option<Message> {
        if !self.shaken {
            let Ok(Progress::Done(h)) = self.decoder.decode_handshake() else {
                return None;
            };
            println!("{:?}: handshake from {:?}", self.start.elapsed(), h.peer_id);
            self.shaken = true;
        }
        self.decoder.next_message().unwrap()
    }
}

fn all_pieces(count: u32) -> Message {
    let n = count as usize;
    let mut bits = vec![0xffu8; n.div_ceil(8)];
    if !n.is_multiple_of(8) {
        *bits.last_mut().unwrap() = 0xff << (8 - n % 8);
    }
    Message::Bitfield(Bytes::from(bits))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, torrent, content, addr] = args.as_slice() else {
        panic!("usage: utp_peer fetch|serve TORRENT CONTENT HOST:PORT");
    };
    let m = Metainfo::from_bytes(&std::fs::read(torrent).unwrap()).unwrap();
    let content = std::fs::read(content).unwrap();
    let to: SocketAddr = addr.parse().unwrap();
    let udp = UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let start = Instant::now();
    let mut utp = Socket::new(start, SocketConfig { max_incoming: 0 }, 1);
    let id = utp.connect(start, to);
    let mut p = Peer {
        udp,
        utp,
        id,
        decoder: Decoder::new(Some(m.piece_count())),
        shaken: false,
        start,
    };
    while !p.turn().contains(&Event::Connected) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no answer to the SYN"
        );
    }
    let hs = Handshake {
        reserved: Reserved::NONE,
        info_hash: m.info_hash(),
        peer_id: PeerId(*b"-BT0100-utp-peer-000"),
    };
    p.send(&hs.encode());
    match mode.as_str() {
        "fetch" => fetch(&mut p, &m, &content),
        "serve" => serve(&mut p, &m, &content),
        _ => panic!("fetch or serve"),
    }
    p.utp.close(id);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let events = p.turn();
        if events.contains(&Event::Closed) || events.iter().any(|e| matches!(e, Event::Failed(_))) {
            println!("{:?}: {events:?}", start.elapsed());
            break;
        }
    }
}

fn fetch(p: &mut Peer, m: &Metainfo, content: &[u8]) {
    p.send(&Message::Interested.to_vec().unwrap());
    let (mut got, mut next, mut in_flight, mut unchoked) = (vec![0u8; content.len()], 0, 0, false);
    let mut received = 0;
    while received < content.len() {
        assert!(
            p.start.elapsed() < Duration::from_secs(120),
            "{received} bytes"
        );
        for e in p.turn() {
            assert!(!matches!(e, Event::Failed(_) | Event::Eof), "{e:?}");
        }
        while let Some(msg) = p.message() {
            match msg {
                Message::Unchoke => unchoked = true,
                Message::Piece {
                    piece,
                    offset,
                    data,
                } => {
                    let at = piece.0 as usize * m.piece_length() as usize + offset as usize;
                    got[at..at + data.len()].copy_from_slice(&data);
                    received += data.len();
                    in_flight -= 1;
                }
                _ => {}
            }
        }
        while unchoked && in_flight < PIPELINE && next < content.len() {
            let piece_len = m.piece_length() as usize;
            let len = (16 << 10)
                .min(content.len() - next)
                .min(piece_len - next % piece_len);
            let r = BlockRequest::new(
                PieceIndex((next / piece_len) as u32),
                (next % piece_len) as u32,
                len as u32,
            );
            p.send(&Message::Request(r).to_vec().unwrap());
            (next, in_flight) = (next + len, in_flight + 1);
        }
    }
    let c = p.utp.connection(p.id).unwrap();
    println!(
        "{:?}: fetched {received} bytes, {}, RTT {:?}",
        p.start.elapsed(),
        if got == content { "exact" } else { "DIFFERENT" },
        c.rtt(),
    );
    assert!(got == content);
}

fn serve(p: &mut Peer, m: &Metainfo, content: &[u8]) {
    let (mut served, mut offered, mut last) = (0, false, Instant::now());
    while last.elapsed() < Duration::from_secs(10) {
        for e in p.turn() {
            assert!(!matches!(e, Event::Failed(_)), "{e:?}");
        }
        if p.shaken && !offered {
            p.send(&all_pieces(m.piece_count()).to_vec().unwrap());
            p.send(&Message::Unchoke.to_vec().unwrap());
            offered = true;
        }
        while let Some(msg) = p.message() {
            if let Message::Request(r) = msg {
                let at = r.piece.0 as usize * m.piece_length() as usize + r.offset as usize;
                let data = Bytes::copy_from_slice(&content[at..at + r.length as usize]);
                let piece = Message::Piece {
                    piece: r.piece,
                    offset: r.offset,
                    data,
                };
                p.send(&piece.to_vec().unwrap());
                served += r.length as usize;
                last = Instant::now();
            }
        }
    }
    let c = p.utp.connection(p.id).unwrap();
    println!(
        "{:?}: served {served} bytes, RTT {:?}, congestion window {}",
        p.start.elapsed(),
        c.rtt(),
        c.congestion_window()
    );
}
