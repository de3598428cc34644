//! A uTP socket with one connection, opened by us or by the fuzzer's peer, fed hostile
//! datagrams: raw bytes, and packets with forged connection ids, acks of data never sent,
//! selective acks up to the longest the wire allows, windows of 0, data ahead of the
//! reorder limit; the application writes, reads and closes, and time moves. After every
//! step: no panic; the send side, the receive side and the socket stay within their limits;
//! one input makes at most a window of packets; and a connection left without answers
//! fails after the named number of time-outs instead of retransmitting forever.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::utp::connection::{MAX_RETRANSMITS, MAX_STALLED_TIMEOUTS};
use bt_proto::utp::socket::MAX_PENDING_RESETS;
use bt_proto::utp::{
    Header, MAX_PACKETS_IN_FLIGHT, MAX_SEND_BUFFER, Packet, PacketType, RECV_BUFFER, SelectiveAck,
    Socket, SocketConfig, State, StreamId,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// What one input may make the socket send: a window of packets (never more than are
/// numbered at once), an ack, and the resets of strangers.
const MAX_SENT_PER_INPUT: usize = MAX_PACKETS_IN_FLIGHT as usize + 2 + MAX_PENDING_RESETS;

/// What the fuzzer's peer knows from our packets.
struct Peer {
    addr: SocketAddr,
    /// The id our packets carry (the peer's receive id) and the one it must use.
    their_id: u16,
    our_id: u16,
    /// Our last numbered packet, and the peer's next sequence number.
    our_seq: u16,
    next_seq: u16,
}

fn pick_u16(u: &mut Unstructured, near: u16) -> Result<u16> {
    Ok(match u.int_in_range(0..=3)? {
        0 => near,
        1 => near.wrapping_sub(u.int_in_range(0..=8)?),
        2 => near.wrapping_add(u.arbitrary::<u16>()? % 2048),
        _ => u.arbitrary()?,
    })
}

fn packet(u: &mut Unstructured, peer: &mut Peer, out: &mut Vec<u8>) -> Result<()> {
    let kind = match u.int_in_range(0..=9)? {
        0..=4 => PacketType::Data,
        5 | 6 => PacketType::State,
        7 => PacketType::Fin,
        8 => PacketType::Reset,
        _ => PacketType::Syn,
    };
    let connection_id = if u.ratio(9, 10)? {
        peer.our_id
    } else {
        u.arbitrary()?
    };
    let seq_nr = pick_u16(u, peer.next_seq)?;
    if seq_nr == peer.next_seq && matches!(kind, PacketType::Data | PacketType::Fin) {
        peer.next_seq = peer.next_seq.wrapping_add(1);
    }
    let wnd_size = match u.int_in_range(0..=2)? {
        0 => 0,
        1 => 1 << 20,
        _ => u.arbitrary()?,
    };
    let header = Header {
        kind,
        connection_id,
        timestamp_us: u.arbitrary()?,
        timestamp_diff_us: u.int_in_range(0..=400_000)?,
        wnd_size,
        seq_nr,
        ack_nr: pick_u16(u, peer.our_seq)?,
    };
    let sack_len = 4 * usize::from(u.int_in_range(0u8..=63)?);
    let bits = u.bytes(sack_len)?.to_vec();
    let len = if kind == PacketType::Data {
        u.int_in_range(0..=1400)?
    } else {
        0
    };
    let payload = u.bytes(len)?;
    let p = Packet {
        header,
        sack: SelectiveAck::new(&bits).ok(),
        payload,
    };
    p.encode_into(out);
    Ok(())
}

fn check(s: &Socket, id: StreamId) {
    assert!(s.counts().1 <= 1);
    if let Some(c) = s.connection(id) {
        let (bytes, packets) = c.send_backlog();
        assert!(bytes <= MAX_SEND_BUFFER);
        assert!(packets <= usize::from(MAX_PACKETS_IN_FLIGHT) + 1);
        assert!(c.readable() <= RECV_BUFFER);
        assert!(c.congestion_window() <= MAX_SEND_BUFFER);
    }
}

/// Drains what the socket sends, learning our sequence numbers; returns how many.
fn drain(s: &mut Socket, now: Instant, peer: &mut Peer) -> usize {
    let mut n = 0;
    while let Some((_, d)) = s.poll_transmit(now) {
        n += 1;
        assert!(n <= MAX_SENT_PER_INPUT, "a storm of datagrams");
        if let Ok(p) = Packet::decode(&d) {
            if p.header.kind == PacketType::Syn {
                peer.their_id = p.header.connection_id;
                peer.our_id = p.header.connection_id;
            } else if p.header.kind != PacketType::Reset {
                peer.their_id = p.header.connection_id;
            }
            if matches!(
                p.header.kind,
                PacketType::Data | PacketType::Fin | PacketType::Syn
            ) {
                peer.our_seq = p.header.seq_nr;
            }
        }
    }
    while s.poll_event().is_some() {}
    n
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut now = Instant::now();
    let mut s = Socket::new(now, SocketConfig { max_incoming: 1 }, u.arbitrary()?);
    let mut peer = Peer {
        addr: SocketAddr::from(([10, 0, 0, 2], 6881)),
        their_id: 0,
        our_id: 0,
        our_seq: 0,
        next_seq: u.arbitrary()?,
    };
    let id = if u.arbitrary()? {
        s.connect(now, peer.addr)
    } else {
        let syn_id: u16 = u.arbitrary()?;
        let syn = Packet {
            header: Header {
                kind: PacketType::Syn,
                connection_id: syn_id,
                timestamp_us: 0,
                timestamp_diff_us: 0,
                wnd_size: 1 << 20,
                seq_nr: peer.next_seq,
                ack_nr: 0,
            },
            sack: None,
            payload: &[],
        };
        peer.next_seq = peer.next_seq.wrapping_add(1);
        peer.our_id = syn_id.wrapping_add(1);
        s.handle(now, peer.addr, &syn.encode());
        bt_proto::utp::StreamId(0)
    };
    drain(&mut s, now, &mut peer);
    // Time-outs in a row with no datagram from the peer.
    let mut unanswered = 0u32;
    let mut buf = vec![0u8; 70_000];
    for _ in 0..u.int_in_range(0..=200)? {
        match u.int_in_range(0..=9)? {
            0 => {
                let n = u.int_in_range(0..=100)?;
                let raw = u.bytes(n)?.to_vec();
                s.handle(now, peer.addr, &raw);
                unanswered = 0;
            }
            1..=4 => {
                let mut d = Vec::new();
                packet(u, &mut peer, &mut d)?;
                s.handle(now, peer.addr, &d);
                unanswered = 0;
            }
            5 => {
                let n = u.int_in_range(0..=70_000)?;
                s.write(id, &buf[..n]);
            }
            6 => {
                let n = u.int_in_range(0..=70_000)?;
                s.read(id, &mut buf[..n]);
            }
            7 => s.close(id),
            _ => {
                let step = Duration::from_millis(u.int_in_range(0..=2000)?);
                let due = s.next_timeout();
                now = match due {
                    Some(t) if u.arbitrary()? => now.max(t),
                    _ => now + step,
                };
                if due.is_some_and(|t| t <= now) {
                    let open = s
                        .connection(id)
                        .is_some_and(|c| matches!(c.state(), State::SynSent | State::Connected));
                    s.handle_timeout(now);
                    if open {
                        unanswered += 1;
                    }
                }
            }
        }
        drain(&mut s, now, &mut peer);
        check(&s, id);
        if unanswered > MAX_RETRANSMITS.max(MAX_STALLED_TIMEOUTS) + 1 {
            let c = s.connection(id);
            assert!(
                c.is_none_or(|c| !matches!(c.state(), State::SynSent | State::Connected)),
                "retransmitting forever"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
