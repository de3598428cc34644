//! Hostile and failing peers over the virtual link: resets, dead peers, closed windows,
//! SYN floods, strangers, forged acks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::connection::{
    ACCEPT_TIMEOUT, MAX_RETRANSMITS, MAX_STALLED_TIMEOUTS, MAX_SYN_RETRANSMITS,
};
use super::link::{LinkConfig, Pair};
use super::packet::{Header, Packet, PacketType};
use super::socket::{MAX_PENDING_RESETS, MAX_RESETS_PER_SECOND};
use super::tests::{Seen, drain, open, payload};
use super::*;

#[test]
fn reset_fails_the_peer() {
    let mut p = Pair::new(LinkConfig::default(), 3, 8);
    let (a, b) = open(&mut p);
    p.a.write(a, b"x");
    p.run(Duration::from_secs(1), |p| p.b.readable(b) == 1);
    p.a.reset(a);
    let mut sb = Seen::default();
    p.run(Duration::from_secs(5), |p| {
        drain(&mut p.b, b, &mut sb);
        sb.events.contains(&Event::Failed(ConnectionError::Reset))
    });
    assert_eq!(
        sb.events.last(),
        Some(&Event::Failed(ConnectionError::Reset))
    );
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn a_dead_peer_fails_after_the_named_time_outs() {
    // No answer to the SYN.
    let mut p = Pair::new(LinkConfig::default(), 4, 8);
    p.a_to_b_up = false;
    let a = p.a.connect(p.now, p.addr_b);
    let start = p.now;
    let mut failed = None;
    p.run(Duration::from_secs(600), |p| {
        while let Some(e) = p.a.poll_event() {
            failed = Some(e);
        }
        failed.is_some()
    });
    assert_eq!(
        failed,
        Some(SocketEvent::Stream(
            a,
            Event::Failed(ConnectionError::TimedOut)
        ))
    );
    assert_eq!(p.sent[0], u64::from(MAX_SYN_RETRANSMITS) + 1, "SYNs sent");
    assert_eq!(p.now - start, Duration::from_secs(1 + 2 + 4));

    // A peer that vanishes mid-transfer.
    let mut p = Pair::new(LinkConfig::default(), 5, 8);
    let (a, _b) = open(&mut p);
    p.a.write(a, &payload(100_000, 1));
    p.run(Duration::from_millis(100), |_| false);
    p.a_to_b_up = false;
    p.b_to_a_up = false;
    let sent_before = p.sent[0];
    let cut = p.now;
    let window_then = p.a.connection(a).unwrap().congestion_window();
    let mut failed = None;
    p.run(Duration::from_secs(600), |p| {
        while let Some(e) = p.a.poll_event() {
            if let SocketEvent::Stream(_, Event::Failed(why)) = e {
                failed = Some(why);
            }
        }
        failed.is_some()
    });
    assert_eq!(failed, Some(ConnectionError::TimedOut));
    // Time-outs of 0.5, 1, 2, 4, 8 and 16 s (the first may be longer if the RTT was).
    let silence = p.now - cut;
    assert!(
        silence >= Duration::from_millis(31_500) && silence < Duration::from_secs(40),
        "failed after {silence:?}"
    );
    // At most a minimum window of packets per time-out (the window falls to it, and the
    // rest wait for acks), plus the window that acks already on the wire when the link went
    // down could release.
    let per_window = (ledbat::MIN_CWND / MAX_PAYLOAD) as u64;
    let resent = p.sent[0] - sent_before;
    assert!(
        resent
            <= (u64::from(MAX_RETRANSMITS) + 1) * per_window
                + (window_then / MAX_PAYLOAD) as u64
                + 1,
        "{resent} datagrams to a dead peer, window {window_then}"
    );
    assert!(p.a.is_empty());
}

#[test]
fn a_zero_window_peer_is_probed_not_flooded_then_given_up() {
    let mut p = Pair::new(LinkConfig::default(), 6, 8);
    let (a, b) = open(&mut p);
    // b never reads: its window fills and stays at 0.
    let data = payload(RECV_BUFFER + (1 << 20), 2);
    let mut written = 0;
    let mut failed = None;
    let mut full_at = None;
    p.run(Duration::from_secs(3600), |p| {
        written += p.a.write(a, &data[written..]);
        if full_at.is_none() && p.b.readable(b) >= RECV_BUFFER - MAX_PAYLOAD {
            full_at = Some((p.now, p.sent[0]));
        }
        while let Some(e) = p.a.poll_event() {
            if let SocketEvent::Stream(_, Event::Failed(why)) = e {
                failed = Some(why);
            }
        }
        failed.is_some()
    });
    assert_eq!(failed, Some(ConnectionError::Stalled));
    let (at, sent) = full_at.expect("b's window filled");
    let probes = p.sent[0] - sent;
    // A few packets still in flight when the window closed, then one probe per time-out.
    assert!(
        probes <= u64::from(MAX_STALLED_TIMEOUTS) + 16,
        "{probes} datagrams to a closed window"
    );
    let waited = p.now - at;
    assert!(waited > Duration::from_secs(60), "gave up after {waited:?}");
    assert!(p.a.is_empty());
}

#[test]
fn a_syn_flood_beyond_the_limit_allocates_nothing() {
    let now = Instant::now();
    let mut s = Socket::new(now, SocketConfig { max_incoming: 4 }, 9);
    for i in 0..10_000u32 {
        let syn = Packet {
            header: Header {
                kind: PacketType::Syn,
                connection_id: i as u16,
                timestamp_us: 0,
                timestamp_diff_us: 0,
                wnd_size: 1 << 20,
                seq_nr: 1,
                ack_nr: 0,
            },
            sack: None,
            payload: &[],
        };
        let from = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1000));
        s.handle(now, from, &syn.encode());
    }
    assert_eq!(s.counts(), (4, 4));
    let mut incoming = 0;
    while let Some(e) = s.poll_event() {
        assert!(matches!(e, SocketEvent::Incoming(..)));
        incoming += 1;
    }
    assert_eq!(incoming, 4);
    let mut out = Vec::new();
    while let Some(d) = s.poll_transmit(now) {
        out.push(d);
    }
    // Four acks of accepted SYNs and at most the reset queue's worth of resets.
    assert_eq!(out.len(), 4 + MAX_PENDING_RESETS);
    let resets = out
        .iter()
        .filter(|(_, d)| Packet::decode(d).unwrap().header.kind == PacketType::Reset)
        .count();
    assert_eq!(resets, MAX_PENDING_RESETS);
    // Unconfirmed connections give their slots back.
    s.handle_timeout(now + ACCEPT_TIMEOUT);
    assert_eq!(s.counts(), (0, 0));
}

#[test]
fn strangers_get_one_reset_and_resets_get_none() {
    let now = Instant::now();
    let mut s = Socket::new(now, SocketConfig { max_incoming: 4 }, 10);
    let from = SocketAddr::from(([10, 0, 0, 9], 1));
    let mut h = Header {
        kind: PacketType::Data,
        connection_id: 500,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 0,
        seq_nr: 7,
        ack_nr: 3,
    };
    let data = Packet {
        header: h,
        sack: None,
        payload: b"x",
    };
    s.handle(now, from, &data.encode());
    let (to, reset) = s.poll_transmit(now).unwrap();
    assert_eq!(to, from);
    let r = Packet::decode(&reset).unwrap().header;
    assert_eq!(
        (r.kind, r.connection_id, r.ack_nr),
        (PacketType::Reset, 499, 7)
    );
    assert_eq!(s.poll_transmit(now), None);
    // More strangers than the reset rate allows: the excess gets nothing.
    let mut resets = 1;
    for t in 0..3 {
        let at = now + Duration::from_secs(t);
        for _ in 0..2 * MAX_RESETS_PER_SECOND {
            s.handle(at, from, &data.encode());
            resets += u32::from(s.poll_transmit(at).is_some());
        }
    }
    assert_eq!(resets, 3 * MAX_RESETS_PER_SECOND);
    h.kind = PacketType::Reset;
    s.handle(
        now,
        from,
        &Packet {
            header: h,
            sack: None,
            payload: &[],
        }
        .encode(),
    );
    s.handle(now, from, b"garbage");
    assert_eq!(s.poll_transmit(now), None);
    assert!(s.is_empty());
}

#[test]
fn acks_of_unsent_data_and_forged_packets_are_ignored() {
    let t0 = Instant::now();
    let mut a = Connection::connect(t0, 100, 1000);
    let syn = a.poll_transmit(t0).unwrap();
    let syn = Packet::decode(&syn).unwrap();
    let mut b = Connection::accept(t0, &syn.header, 5000);
    let state = b.poll_transmit(t0).unwrap();
    a.on_datagram(t0, &Packet::decode(&state).unwrap());
    assert_eq!(a.state(), State::Connected);
    a.write(&[1; 10_000]);
    let mut sent = 0;
    while a.poll_transmit(t0).is_some() {
        sent += 1;
    }
    assert!(sent >= 1);
    let before = a.send_backlog();
    // An ack far past anything sent, with a huge selective ack and window 0.
    let bits = [0xff; 252];
    let forged = Packet {
        header: Header {
            kind: PacketType::State,
            connection_id: a.recv_id(),
            timestamp_us: 0,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: 5000,
            ack_nr: 1000 + 2000,
        },
        sack: Some(SelectiveAck::new(&bits).unwrap()),
        payload: &[],
    };
    a.on_datagram(t0, &forged);
    assert_eq!(a.send_backlog(), before);
    assert_eq!(a.state(), State::Connected);
}

#[test]
fn a_peer_that_forgot_the_connection_resets_it_whichever_side_opened_it() {
    for forgetful_opener in [true, false] {
        let mut p = Pair::new(LinkConfig::default(), 14, 8);
        let (a, b) = open(&mut p);
        let fresh = Socket::new(p.now, SocketConfig { max_incoming: 8 }, 99);
        let (survivor, id) = if forgetful_opener {
            p.a = fresh;
            (true, b)
        } else {
            p.b = fresh;
            (false, a)
        };
        let mut failed = None;
        p.run(Duration::from_secs(60), |p| {
            let s = if survivor { &mut p.b } else { &mut p.a };
            s.write(id, b"anyone there?");
            while let Some(e) = s.poll_event() {
                if let SocketEvent::Stream(_, Event::Failed(why)) = e {
                    failed = Some(why);
                }
            }
            failed.is_some()
        });
        assert_eq!(
            failed,
            Some(ConnectionError::Reset),
            "opener forgot: {forgetful_opener}"
        );
    }
}
