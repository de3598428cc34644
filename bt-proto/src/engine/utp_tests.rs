//! uTP connections in the engine against floods: each test fails without the bound it checks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::tests::seed_session_with;
use super::*;
use crate::utp::{Header, Packet, PacketType};

fn syn(connection_id: u16) -> Bytes {
    let header = Header {
        kind: PacketType::Syn,
        connection_id,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr: 1,
        ack_nr: 0,
    };
    let packet = Packet {
        header,
        sack: None,
        payload: &[],
    };
    Bytes::from(packet.encode())
}

/// Datagrams the session sends after one input, drained.
fn datagrams(s: &mut Session) -> usize {
    let mut n = 0;
    while let Some(o) = s.poll_output() {
        if matches!(o, Output::SendDatagram { .. }) {
            n += 1;
        }
    }
    n
}

/// 10,000 SYNs from as many forged addresses: the session holds no more connections than
/// its incoming limit allows, in the engine and in the socket, and answers with at most a
/// packet each (never more than it received: no amplification).
#[test]
fn a_syn_flood_holds_no_more_than_the_incoming_limit() {
    let mut config = Config::new(crate::PeerId([1; 20]), 6881, 1);
    config.max_incoming = 8;
    let (mut s, _) = seed_session_with(config, 7);
    let t0 = Instant::now();
    let mut sent = 0;
    let mut most_held = 0;
    for i in 0..10_000u32 {
        let [a, b] = (i as u16).to_be_bytes();
        let from = SocketAddr::from(([10, 1, a, b], 40_000));
        let now = t0 + Duration::from_millis(u64::from(i));
        s.handle(
            now,
            Input::Datagram {
                from,
                data: syn(i as u16),
            },
        );
        sent += datagrams(&mut s);
        s.handle_timeout(now);
        sent += datagrams(&mut s);
        most_held = most_held.max(s.memory_use().connections);
        let (in_socket, _) = s.utp.counts();
        assert!(
            in_socket <= 8 + 1,
            "{in_socket} connections in the socket at SYN {i}"
        );
    }
    assert!(most_held <= 8, "{most_held} connections held");
    assert!(sent <= 2 * 10_000, "{sent} datagrams sent for 10,000 SYNs");
}

/// SYNs from one host on many ports: no more of its handshakes at once than the per-host
/// limit, as for TCP.
#[test]
fn one_host_gets_no_more_handshakes_than_the_per_host_limit() {
    let (mut s, _) = seed_session_with(Config::new(crate::PeerId([1; 20]), 6881, 1), 7);
    let now = Instant::now();
    for port in 1000..1100u16 {
        let from = SocketAddr::from(([10, 2, 0, 1], port));
        s.handle(
            now,
            Input::Datagram {
                from,
                data: syn(port),
            },
        );
        datagrams(&mut s);
    }
    let held = s.memory_use().connections;
    assert_eq!(
        held, DEFAULT_MAX_INCOMING_HANDSHAKES_PER_HOST,
        "{held} handshakes held"
    );
}

/// uTP off: the datagrams are dropped, nothing is allocated or answered.
#[test]
fn with_utp_off_a_syn_gets_nothing() {
    let mut config = Config::new(crate::PeerId([1; 20]), 6881, 1);
    config.transports = Transports::Tcp;
    let (mut s, _) = seed_session_with(config, 7);
    let now = Instant::now();
    let from = SocketAddr::from(([10, 3, 0, 1], 6881));
    s.handle(now, Input::Datagram { from, data: syn(9) });
    assert_eq!(datagrams(&mut s), 0);
    assert_eq!(s.memory_use().connections, 0);
}
