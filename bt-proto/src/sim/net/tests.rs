//! The network model's tests: handshakes, bandwidth, loss, drops, datagrams, determinism.
use super::*;
use proptest::prelude::*;

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 6881))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every event due up to `until`.
fn drain(net: &mut Network, until: Instant) -> Vec<NetEvent> {
    std::iter::from_fn(|| net.poll(until)).collect()
}

/// When the last of `events` on connection `c` happened.
fn last_delivery(events: &[NetEvent], c: SimConnId) -> Instant {
    events
        .iter()
        .filter(|e| e.conn == c)
        .map(|e| e.at)
        .max()
        .unwrap()
}

/// Two accepting hosts joined by `link` both ways; the connection established both ends.
fn pair(link: LinkConfig, t0: Instant) -> (Network, SimConnId, Instant) {
    let mut net = Network::new(1);
    net.add_host(addr(1), HostConfig::default());
    net.add_host(addr(2), HostConfig::default());
    net.set_path(addr(1), addr(2), link);
    let conn = net.connect(addr(1), addr(2), t0);
    let up = drain(&mut net, t0 + Duration::from_secs(10));
    assert_eq!(up.len(), 2);
    (net, conn, up[1].at)
}

fn data_of(events: &[NetEvent], side: Side) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e.side == side)
        .filter_map(|e| match &e.kind {
            NetEventKind::Data(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn handshake_takes_one_rtt_for_the_initiator_and_half_more_for_the_acceptor() {
    let t0 = Instant::now();
    let mut net = Network::new(1);
    net.add_host(addr(2), HostConfig::default());
    net.set_link(addr(1), addr(2), LinkConfig::new(ms(30)));
    net.set_link(addr(2), addr(1), LinkConfig::new(ms(20)));
    let conn = net.connect(addr(1), addr(2), t0);
    assert_eq!(net.next_event_time(), Some(t0 + ms(50)));
    assert!(net.poll(t0 + ms(49)).is_none());
    let a = net.poll(t0 + ms(50)).unwrap();
    assert_eq!(
        (a.conn, a.side, a.host, a.peer, a.kind),
        (
            conn,
            Side::Initiator,
            addr(1),
            addr(2),
            NetEventKind::Connected
        )
    );
    // The acceptor may not send before its own Connected.
    assert_eq!(
        net.send(conn, Side::Acceptor, vec![1], t0 + ms(50)),
        Err(NetError::NotEstablished {
            conn,
            side: Side::Acceptor
        })
    );
    let b = net.poll(t0 + ms(80)).unwrap();
    assert_eq!(
        (b.at, b.side, b.host, b.peer),
        (t0 + ms(80), Side::Acceptor, addr(2), addr(1))
    );
    assert_eq!(net.endpoints(conn), Some((addr(1), addr(2))));
}

#[test]
fn one_megabyte_over_one_megabyte_per_second_takes_one_second_plus_latency() {
    let t0 = Instant::now();
    let link = LinkConfig::new(ms(50)).with_bandwidth(1_000_000);
    let (mut net, conn, start) = pair(link, t0);
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    net.send(conn, Side::Initiator, payload.clone(), start)
        .unwrap();
    let events = drain(&mut net, start + Duration::from_secs(5));
    assert_eq!(data_of(&events, Side::Acceptor), payload);
    assert!(events.iter().all(|e| match &e.kind {
        NetEventKind::Data(b) => b.len() <= MSS,
        _ => false,
    }));
    let first = events.first().unwrap().at - start;
    let last = events.last().unwrap().at - start;
    // One segment serialises in 1.46 ms: the first arrives after it plus the latency.
    assert_eq!(first, Duration::from_nanos(1_460_000) + ms(50));
    assert_eq!(last, ms(1_050));
    // The sender's buffer empties when the last byte leaves, one latency earlier.
    assert_eq!(
        net.flushed_at(conn, Side::Initiator),
        Some(start + ms(1_000))
    );
    assert_eq!(net.flushed_at(conn, Side::Acceptor), None);
    // Deliveries are paced by the link, not bunched.
    let mid = &events[events.len() / 2];
    let expected = ms(50) + Duration::from_nanos(1_460_000 * (events.len() as u64 / 2 + 1));
    assert_eq!(mid.at - start, expected);
}

#[test]
fn datagrams_share_the_link_and_may_be_lost_reordered_or_duplicated() {
    let t0 = Instant::now();
    let link = LinkConfig::new(ms(50)).with_bandwidth(1_000_000);
    let (mut net, conn, start) = pair(link, t0);
    // 100 kB of stream first: a datagram behind it waits its 100 ms in the queue.
    net.send(conn, Side::Initiator, vec![7u8; 100_000], start)
        .unwrap();
    let at = net.datagram(addr(1), addr(2), 1_000, start);
    assert_eq!(at, vec![start + ms(50 + 101)]);
    // Total loss drops every datagram; it is never retransmitted.
    let mut net = Network::new(1);
    net.set_default_link(LinkConfig::new(ms(10)).with_loss(1.0));
    assert!(net.datagram(addr(1), addr(2), 100, t0).is_empty());
    // Duplicates arrive twice; jitter reorders back-to-back datagrams.
    let mut net = Network::new(2);
    let jittery = LinkConfig::new(ms(10))
        .with_jitter(ms(20))
        .with_duplicate(1.0);
    net.set_default_link(jittery);
    let arrivals: Vec<Vec<Instant>> = (0..20)
        .map(|_| net.datagram(addr(1), addr(2), 100, t0))
        .collect();
    assert!(arrivals.iter().all(|a| a.len() == 2));
    let firsts: Vec<Instant> = arrivals.iter().map(|a| a[0]).collect();
    assert!(firsts.windows(2).any(|w| w[1] < w[0]), "never reordered");
    assert!(
        firsts
            .iter()
            .all(|a| *a >= t0 + ms(10) && *a <= t0 + ms(30))
    );
}

#[test]
fn a_host_upload_cap_is_shared_by_its_connections() {
    let t0 = Instant::now();
    let mut net = Network::new(1);
    net.add_host(
        addr(1),
        HostConfig {
            upload: Some(100_000),
            ..Default::default()
        },
    );
    net.add_host(addr(2), HostConfig::default());
    net.add_host(addr(3), HostConfig::default());
    net.set_default_link(LinkConfig::new(ms(10)));
    let c2 = net.connect(addr(1), addr(2), t0);
    let c3 = net.connect(addr(1), addr(3), t0);
    drain(&mut net, t0 + ms(100));
    let now = t0 + ms(100);
    net.send(c2, Side::Initiator, vec![0; 100_000], now)
        .unwrap();
    net.send(c3, Side::Initiator, vec![0; 100_000], now)
        .unwrap();
    let events = drain(&mut net, now + Duration::from_secs(10));
    let done = |c| last_delivery(&events, c);
    // 200 kB through a 100 kB/s uplink: the second connection's data waits for the first.
    assert_eq!(done(c2) - now, Duration::from_secs(1) + ms(10));
    assert_eq!(done(c3) - now, Duration::from_secs(2) + ms(10));
}

#[test]
fn a_host_download_cap_is_shared_by_its_connections() {
    let t0 = Instant::now();
    let mut net = Network::new(1);
    net.add_host(addr(1), HostConfig::default());
    net.add_host(addr(2), HostConfig::default());
    net.add_host(
        addr(3),
        HostConfig {
            download: Some(100_000),
            ..Default::default()
        },
    );
    net.set_default_link(LinkConfig::new(ms(10)));
    let c1 = net.connect(addr(1), addr(3), t0);
    let c2 = net.connect(addr(2), addr(3), t0);
    drain(&mut net, t0 + ms(100));
    let now = t0 + ms(100);
    net.send(c1, Side::Initiator, vec![0; 100_000], now)
        .unwrap();
    net.send(c2, Side::Initiator, vec![0; 100_000], now)
        .unwrap();
    let events = drain(&mut net, now + Duration::from_secs(10));
    let done = |c| last_delivery(&events, c);
    // 200 kB into a 100 kB/s downlink from two unlimited senders: the second sender's data
    // waits for the first's.
    assert_eq!(done(c1) - now, Duration::from_secs(1) + ms(10));
    assert_eq!(done(c2) - now, Duration::from_secs(2) + ms(10));
    // The other direction is not capped: the receiver uploads at once.
    net.send(c1, Side::Acceptor, vec![0; 100_000], now + ms(10_000))
        .unwrap();
    let back = drain(&mut net, now + Duration::from_secs(20));
    assert_eq!(back.last().unwrap().at - now, ms(10_010));
}

#[test]
fn small_mss_delivers_byte_by_byte_in_order() {
    let t0 = Instant::now();
    let (mut net, conn, start) = pair(LinkConfig::new(ms(5)).with_mss(1), t0);
    net.send(conn, Side::Acceptor, &b"abc"[..], start).unwrap();
    net.send(conn, Side::Acceptor, &b"def"[..], start).unwrap();
    let events = drain(&mut net, start + ms(10));
    assert_eq!(events.len(), 6);
    assert_eq!(data_of(&events, Side::Initiator), b"abcdef");
    assert!(events.iter().all(|e| e.at == start + ms(5)));
}

#[test]
fn loss_delays_but_never_loses_or_reorders() {
    let t0 = Instant::now();
    let link = LinkConfig::new(ms(20))
        .with_bandwidth(1_000_000)
        .with_loss(0.1);
    let (mut net, conn, start) = pair(link, t0);
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    net.send(conn, Side::Initiator, payload.clone(), start)
        .unwrap();
    let events = drain(&mut net, start + Duration::from_secs(60));
    assert_eq!(data_of(&events, Side::Acceptor), payload);
    let last = events.last().unwrap().at - start;
    // 0.3 s of serialisation + 20 ms, plus at least one retransmission (RTT + 200 ms).
    assert!(last >= ms(320) + ms(240), "{last:?}");
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn total_loss_resets_the_connection() {
    let t0 = Instant::now();
    let (mut net, conn, start) = pair(LinkConfig::new(ms(1)).with_loss(1.0), t0);
    net.send(conn, Side::Initiator, vec![7; 10], start).unwrap();
    let events = drain(&mut net, start + Duration::from_secs(3_600));
    let kinds: Vec<_> = events.iter().map(|e| (e.side, e.kind.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            (Side::Initiator, NetEventKind::Closed(CloseKind::Reset)),
            (Side::Acceptor, NetEventKind::Closed(CloseKind::Reset)),
        ]
    );
    assert!(events[0].at - start > Duration::from_secs(600));
}

#[test]
fn refusing_and_silent_hosts() {
    let t0 = Instant::now();
    let mut net = Network::new(1);
    net.add_host(
        addr(2),
        HostConfig {
            upload: None,
            listen: Listen::Refuse,
            ..Default::default()
        },
    );
    net.add_host(
        addr(3),
        HostConfig {
            upload: None,
            listen: Listen::Silent,
            ..Default::default()
        },
    );
    net.set_default_link(LinkConfig::new(ms(25)));
    let refused = net.connect(addr(1), addr(2), t0);
    let silent = net.connect(addr(1), addr(3), t0);
    let nobody = net.connect(addr(1), addr(9), t0);
    let events = drain(&mut net, t0 + Duration::from_secs(100));
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].conn,
            events[0].side,
            events[0].at,
            events[0].kind.clone()
        ),
        (refused, Side::Initiator, t0 + ms(50), NetEventKind::Refused)
    );
    for c in [refused, silent, nobody] {
        assert_eq!(
            net.send(c, Side::Initiator, vec![1], t0 + ms(100)),
            Err(NetError::NotEstablished {
                conn: c,
                side: Side::Initiator
            })
        );
        assert!(net.drop_at(c, t0).is_err());
    }
    // A host can start refusing mid-run.
    net.add_host(addr(4), HostConfig::default());
    net.host_mut(addr(4)).unwrap().listen = Listen::Refuse;
    net.connect(addr(1), addr(4), t0 + ms(200));
    assert_eq!(net.poll(t0 + ms(250)).unwrap().kind, NetEventKind::Refused);
}

#[test]
fn close_delivers_eof_after_the_data() {
    let t0 = Instant::now();
    let (mut net, conn, start) = pair(LinkConfig::new(ms(10)).with_bandwidth(10_000), t0);
    net.send(conn, Side::Initiator, vec![5; 5_000], start)
        .unwrap();
    net.close(conn, Side::Initiator, start).unwrap();
    net.close(conn, Side::Initiator, start).unwrap(); // twice: nothing more
    assert_eq!(
        net.send(conn, Side::Initiator, vec![1], start),
        Err(NetError::Closed {
            conn,
            side: Side::Initiator
        })
    );
    // The acceptor's reply towards the closed end is dropped.
    net.send(conn, Side::Acceptor, vec![9; 10], start).unwrap();
    let events = drain(&mut net, start + Duration::from_secs(5));
    assert!(events.iter().all(|e| e.side == Side::Acceptor));
    let last = events.last().unwrap();
    assert_eq!(last.kind, NetEventKind::Closed(CloseKind::Eof));
    assert_eq!(last.at, start + ms(510));
    assert_eq!(data_of(&events, Side::Acceptor).len(), 5_000);
    assert_eq!(
        net.send(conn, Side::Acceptor, vec![1], last.at),
        Err(NetError::PeerClosed {
            conn,
            side: Side::Acceptor
        })
    );
}

#[test]
fn closing_before_the_handshake_abandons_the_connection() {
    let t0 = Instant::now();
    let mut net = Network::new(1);
    net.add_host(addr(2), HostConfig::default());
    net.set_default_link(LinkConfig::new(ms(100)));
    let conn = net.connect(addr(1), addr(2), t0);
    net.close(conn, Side::Initiator, t0 + ms(150)).unwrap();
    assert_eq!(net.next_event_time(), None);
    assert!(drain(&mut net, t0 + Duration::from_secs(1)).is_empty());
}

#[test]
fn a_drop_resets_both_ends_and_loses_bytes_in_flight() {
    let t0 = Instant::now();
    let (mut net, conn, start) = pair(LinkConfig::new(ms(10)).with_bandwidth(100_000), t0);
    net.send(conn, Side::Initiator, vec![3; 100_000], start)
        .unwrap(); // 1 s of data
    net.drop_at(conn, start + ms(500)).unwrap();
    let events = drain(&mut net, start + Duration::from_secs(5));
    let data = data_of(&events, Side::Acceptor).len();
    assert!((47_000..50_000).contains(&data), "{data}");
    let resets: Vec<_> = events
        .iter()
        .filter(|e| e.kind == NetEventKind::Closed(CloseKind::Reset))
        .map(|e| (e.side, e.at))
        .collect();
    assert_eq!(
        resets,
        vec![
            (Side::Initiator, start + ms(500)),
            (Side::Acceptor, start + ms(500))
        ]
    );
    assert_eq!(
        events.last().unwrap().kind,
        NetEventKind::Closed(CloseKind::Reset)
    );
    assert_eq!(
        net.send(conn, Side::Acceptor, vec![1], start + ms(500)),
        Err(NetError::Reset { conn })
    );
    // A drop asked for before the acceptor is established waits for it.
    let mut net = Network::new(1);
    net.add_host(addr(2), HostConfig::default());
    net.set_default_link(LinkConfig::new(ms(10)));
    let c = net.connect(addr(1), addr(2), t0);
    net.drop_at(c, t0).unwrap();
    let kinds: Vec<_> = drain(&mut net, t0 + ms(100))
        .into_iter()
        .map(|e| (e.side, e.kind, e.at - t0))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Side::Initiator, NetEventKind::Connected, ms(20)),
            (Side::Acceptor, NetEventKind::Connected, ms(30)),
            (
                Side::Initiator,
                NetEventKind::Closed(CloseKind::Reset),
                ms(30)
            ),
            (
                Side::Acceptor,
                NetEventKind::Closed(CloseKind::Reset),
                ms(30)
            ),
        ]
    );
}

#[test]
fn random_drops_happen_within_the_span() {
    let t0 = Instant::now();
    let mut net = Network::new(77);
    net.add_host(addr(2), HostConfig::default());
    net.set_default_link(LinkConfig::new(ms(10)).with_drop_within(Duration::from_secs(60)));
    let conns: Vec<_> = (0..20).map(|_| net.connect(addr(1), addr(2), t0)).collect();
    let events = drain(&mut net, t0 + Duration::from_secs(120));
    let mut times = Vec::new();
    for c in conns {
        let resets: Vec<_> = events
            .iter()
            .filter(|e| e.conn == c && e.kind == NetEventKind::Closed(CloseKind::Reset))
            .collect();
        assert_eq!(resets.len(), 2);
        let at = resets[0].at - t0;
        assert!(at >= ms(30) && at < ms(30) + Duration::from_secs(60));
        times.push(at);
    }
    times.sort();
    times.dedup();
    assert!(times.len() > 15, "drop times should differ: {times:?}");
}

#[test]
fn unknown_connections_are_errors() {
    let mut net = Network::new(1);
    let t0 = Instant::now();
    let bogus = SimConnId(9);
    assert_eq!(
        net.send(bogus, Side::Initiator, vec![1], t0),
        Err(NetError::UnknownConn(bogus))
    );
    assert_eq!(
        net.close(bogus, Side::Initiator, t0),
        Err(NetError::UnknownConn(bogus))
    );
    assert_eq!(net.drop_at(bogus, t0), Err(NetError::UnknownConn(bogus)));
    assert_eq!(net.endpoints(bogus), None);
}

/// A scripted run with several hosts, lossy links and drops; returns every event.
fn scripted_run(seed: u64) -> Vec<NetEvent> {
    let t0 = Instant::now();
    let mut net = Network::new(seed);
    for n in 1..=4 {
        net.add_host(
            addr(n),
            HostConfig {
                upload: Some(200_000),
                ..Default::default()
            },
        );
    }
    net.set_default_link(
        LinkConfig::new(ms(15))
            .with_bandwidth(150_000)
            .with_loss(0.05)
            .with_drop_within(Duration::from_secs(3)),
    );
    let mut conns = Vec::new();
    for a in 1..=4 {
        for b in (a + 1)..=4 {
            conns.push(net.connect(addr(a), addr(b), t0));
        }
    }
    let mut out = Vec::new();
    let mut now = t0;
    while let Some(t) = net.next_event_time() {
        now = t;
        while let Some(ev) = net.poll(now) {
            if ev.kind == NetEventKind::Connected {
                let _ = net.send(ev.conn, ev.side, vec![ev.conn.0 as u8; 40_000], now);
            }
            out.push(ev);
        }
    }
    assert!(now > t0);
    out
}

#[test]
fn same_seed_same_events_other_seed_other_events() {
    let strip = |evs: Vec<NetEvent>| -> Vec<(u64, SimConnId, Side, NetEventKind)> {
        let base = evs.first().map(|e| e.at).unwrap();
        evs.into_iter()
            .map(|e| ((e.at - base).as_nanos() as u64, e.conn, e.side, e.kind))
            .collect()
    };
    let a = strip(scripted_run(5));
    let b = strip(scripted_run(5));
    let c = strip(scripted_run(6));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

proptest! {
    #[test]
    fn streams_arrive_whole_and_in_order(
        latency_ms in 0u64..200,
        bandwidth in proptest::option::of(1_000u64..10_000_000),
        loss in 0.0f64..0.1,
        mss in 1usize..3_000,
        sends in proptest::collection::vec((any::<bool>(), 0usize..5_000, 0u64..50), 1..20),
        seed: u64,
    ) {
        let t0 = Instant::now();
        let link = LinkConfig::new(ms(latency_ms)).with_loss(loss).with_mss(mss);
        let link = LinkConfig { bandwidth, ..link };
        let mut net = Network::new(seed);
        net.add_host(addr(1), HostConfig::default());
        net.add_host(addr(2), HostConfig::default());
        net.set_path(addr(1), addr(2), link);
        let conn = net.connect(addr(1), addr(2), t0);
        let mut events = drain(&mut net, t0 + Duration::from_secs(1));
        let mut now = t0 + Duration::from_secs(1);
        let mut sent = [Vec::new(), Vec::new()];
        let mut fill = 0u8;
        for (from_acceptor, len, gap) in sends {
            let side = if from_acceptor { Side::Acceptor } else { Side::Initiator };
            let bytes: Vec<u8> = (0..len).map(|_| { fill = fill.wrapping_add(1); fill }).collect();
            sent[side.index()].extend_from_slice(&bytes);
            now += ms(gap);
            events.extend(drain(&mut net, now));
            net.send(conn, side, bytes, now).unwrap();
        }
        net.close(conn, Side::Initiator, now).unwrap();
        let mut last = now;
        while let Some(t) = net.next_event_time() {
            prop_assert!(t >= last);
            last = t;
            events.extend(drain(&mut net, t));
        }
        // Events come in time order; every byte arrives once, in order, and the data for
        // the closed end stops at its close.
        prop_assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
        let to_acceptor = data_of(&events, Side::Acceptor);
        prop_assert_eq!(&to_acceptor, &sent[0]);
        let to_initiator = data_of(&events, Side::Initiator);
        prop_assert!(sent[1].starts_with(&to_initiator));
        let max_seg = mss;
        let segments_ok = events.iter().all(|e| match &e.kind {
            NetEventKind::Data(b) => !b.is_empty() && b.len() <= max_seg,
            _ => true,
        });
        prop_assert!(segments_ok);
        let eof = events.iter().filter(|e| e.kind == NetEventKind::Closed(CloseKind::Eof)).count();
        // Loss can exhaust retransmissions only with astronomically small odds here.
        prop_assert_eq!(eof, 1);
        prop_assert_eq!(&events.last().unwrap().kind, &NetEventKind::Closed(CloseKind::Eof));
    }
}

proptest! {
    // Buffers written at once are cut into the same segments, at the same times, as the one
    // buffer they make together.
    #[test]
    fn buffers_are_segmented_as_their_concatenation(
        lens in proptest::collection::vec(0usize..4000, 0..8),
        mss in 1usize..3000,
        rate in 1_000u64..1_000_000,
    ) {
        let t0 = Instant::now();
        let link = LinkConfig::new(ms(5)).with_mss(mss).with_bandwidth(rate);
        let bufs: Vec<Bytes> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| Bytes::from(vec![i as u8; len]))
            .collect();
        let deliveries = |whole: bool| {
            let (mut net, conn, up) = pair(link, t0);
            if whole {
                net.send(conn, Side::Initiator, bufs.concat(), up).unwrap();
            } else {
                net.send_bufs(conn, Side::Initiator, bufs.clone(), up).unwrap();
            }
            drain(&mut net, up + Duration::from_secs(3600))
        };
        prop_assert_eq!(deliveries(false), deliveries(true));
    }
}

/// Every arrival due up to `until`, its bytes left in the stream.
fn arrivals(net: &mut Network, until: Instant) -> Vec<Arrived> {
    std::iter::from_fn(|| net.poll_arrival(until))
        .map(|a| a.what)
        .collect()
}

#[test]
fn bytes_left_in_the_stream_are_taken_as_the_buffers_written() {
    let t0 = Instant::now();
    let (mut net, conn, up) = pair(LinkConfig::new(ms(5)), t0);
    let header = Bytes::from(vec![1u8; 13]);
    let block = Bytes::from(vec![2u8; 16 << 10]);
    let block_at = block.as_ptr();
    net.write(conn, Side::Initiator, vec![header.clone(), block.clone()]);
    assert_eq!(net.unsent(conn, Side::Initiator), 13 + (16 << 10));
    net.transmit(conn, Side::Initiator, usize::MAX, up).unwrap();
    assert_eq!(net.unsent(conn, Side::Initiator), 0);
    let got = arrivals(&mut net, up + ms(6));
    // Segments of the MSS, each a count of bytes.
    assert_eq!(got.len(), (13usize + (16 << 10)).div_ceil(MSS));
    assert_eq!(got.first(), Some(&Arrived::Bytes(MSS)));
    // Only what was delivered can be taken; whole buffers only, when asked.
    let mut out = Vec::new();
    let left = net.take_received(conn, Side::Acceptor, 2 * MSS, true, &mut out);
    assert_eq!((out.clone(), left), (vec![header], 2 * MSS - 13));
    out.clear();
    let all = 16 << 10;
    assert_eq!(
        net.take_received(conn, Side::Acceptor, all, false, &mut out),
        0
    );
    assert_eq!(out, vec![block]);
    assert_eq!(out[0].as_ptr(), block_at, "the buffer written, not a copy");
    assert_eq!(
        net.take_received(conn, Side::Acceptor, 1, false, &mut out),
        1
    );
}

#[test]
fn an_end_that_closed_leaves_the_other_its_unsent_bytes_to_send() {
    let t0 = Instant::now();
    let link = LinkConfig::new(ms(5)).with_bandwidth(100_000);
    let (mut net, conn, up) = pair(link, t0);
    net.write(conn, Side::Acceptor, vec![Bytes::from(vec![3u8; 50_000])]);
    net.transmit(conn, Side::Acceptor, 10_000, up).unwrap();
    net.close(conn, Side::Initiator, up).unwrap();
    // The acceptor has not heard of the close: what it wrote is still its to send, and
    // sending it takes its time on the link, though none of it arrives.
    assert_eq!(net.unsent(conn, Side::Acceptor), 40_000);
    net.transmit(conn, Side::Acceptor, 40_000, up).unwrap();
    assert_eq!(
        net.flushed_at(conn, Side::Acceptor),
        Some(up + Duration::from_millis(500))
    );
    let got = arrivals(&mut net, up + Duration::from_secs(10));
    assert_eq!(got, vec![Arrived::Closed(CloseKind::Eof)]);
    let mut out = Vec::new();
    assert_eq!(
        net.take_received(conn, Side::Initiator, 1, false, &mut out),
        1
    );
    assert!(out.is_empty());
}
