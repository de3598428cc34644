//! A DHT node under a hostile network of fake nodes: fuzz-chosen datagrams (raw bytes, or
//! well-formed queries, answers to the node's own queries naming more fake nodes, errors)
//! from a few dozen addresses, lookups started, time moving. After every step: no panic,
//! the routing table, queries in flight and stored peers within their limits, and no query
//! storm: one datagram makes the node send a handful, anything else at most what may be in
//! flight.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::InfoHash;
use bt_proto::dht::NodeId;
use bt_proto::dht::krpc::{Body, Message, NodeInfo, Query, Response, Want};
use bt_proto::dht::lookup::ALPHA;
use bt_proto::dht::node::{MAX_PENDING, Node, NodeConfig};
use bt_proto::dht::peer_store::MAX_PEERS;
use bt_proto::dht::routing::K;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// What one datagram may make the node send: an answer, a ping to a node that queried or
/// two questionable ones, a lookup's next α queries, the announces that end one, and the
/// first α queries of the bootstrap that rebuilds the table when the external-address
/// vote gives us a new id.
const MAX_SENT_PER_INPUT: usize = 1 + 2 + ALPHA + K + ALPHA;

fn addr(u: &mut Unstructured) -> Result<SocketAddr> {
    let host: u8 = u.int_in_range(1..=40)?;
    let port = if u.ratio(1, 10)? { 0 } else { 6881 };
    Ok(SocketAddr::from(([10, 0, 0, host], port)))
}

fn id(u: &mut Unstructured) -> Result<NodeId> {
    let mut b = [0u8; 20];
    if u.arbitrary()? {
        b[0] = u.arbitrary()?;
    } else {
        u.fill_buffer(&mut b)?;
    }
    Ok(NodeId(b))
}

fn query(u: &mut Unstructured) -> Result<Query> {
    let me = id(u)?;
    Ok(match u.int_in_range(0..=3)? {
        0 => Query::Ping { id: me },
        1 => Query::FindNode {
            id: me,
            target: id(u)?,
            want: Want {
                v4: u.arbitrary()?,
                v6: u.arbitrary()?,
            },
        },
        2 => Query::GetPeers {
            id: me,
            info_hash: InfoHash(id(u)?.0),
            want: Want::default(),
        },
        _ => {
            let len = u.int_in_range(0..=8)?;
            Query::AnnouncePeer {
                id: me,
                info_hash: InfoHash(id(u)?.0),
                port: u.arbitrary()?,
                implied_port: u.arbitrary()?,
                token: u.bytes(len)?.to_vec(),
            }
        }
    })
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut now = Instant::now();
    let mut node = Node::new(
        NodeId([0x55; 20]),
        NodeConfig::default(),
        u.arbitrary()?,
        now,
    );
    // The node's queries not yet answered: (transaction, to).
    let mut asked: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    let routers = [SocketAddr::from(([10, 0, 0, 1], 6881))];
    node.bootstrap(now, &routers, &[]);
    for _ in 0..u.int_in_range(0..=300)? {
        let step = u.int_in_range(0..=9)?;
        match step {
            0 => {
                let n = u.int_in_range(0..=60)?;
                let data = u.bytes(n)?.to_vec();
                node.handle(now, addr(u)?, &data);
            }
            1 | 2 => {
                let m = Message::query(u.bytes(2)?.to_vec(), query(u)?);
                node.handle(now, addr(u)?, &m.encode());
            }
            3..=5 if !asked.is_empty() => {
                let i = u.choose_index(asked.len())?;
                let (t, to) = asked.swap_remove(i);
                let from = if u.ratio(9, 10)? { to } else { addr(u)? };
                let body = if u.ratio(1, 8)? {
                    Body::Error {
                        code: 201,
                        message: "no".into(),
                    }
                } else {
                    let mut nodes = Vec::new();
                    for _ in 0..u.int_in_range(0..=8)? {
                        nodes.push(NodeInfo {
                            id: id(u)?,
                            addr: addr(u)?,
                        });
                    }
                    let values = (0..u.int_in_range(0..=3)?)
                        .map(|_| addr(u))
                        .collect::<Result<Vec<_>>>()?;
                    Body::Response(Response {
                        id: id(u)?,
                        nodes,
                        values,
                        token: u.arbitrary::<bool>()?.then(|| b"tk".to_vec()),
                        ..Default::default()
                    })
                };
                let m = Message {
                    transaction: t,
                    body,
                    read_only: u.arbitrary()?,
                    // Public addresses, so that a vote can settle one and change our id.
                    your_ip: if u.arbitrary()? {
                        let host: u8 = u.int_in_range(1..=3)?;
                        Some(SocketAddr::from(([203, 0, 113, host], 6881)))
                    } else {
                        None
                    },
                    version: None,
                };
                node.handle(now, from, &m.encode());
            }
            6 => {
                now += Duration::from_millis(u.int_in_range(0..=20_000)?);
                node.handle_timeout(now);
            }
            7 => {
                let h = InfoHash(id(u)?.0);
                let port = if u.arbitrary()? {
                    Some(Some(6881))
                } else {
                    None
                };
                node.get_peers(now, h, port);
            }
            8 => {
                let target = id(u)?;
                node.find_node(now, target);
            }
            _ => {
                node.bootstrap(now, &routers, &[]);
            }
        }
        let mut sent = 0;
        while let Some((to, data)) = node.poll_transmit() {
            sent += 1;
            if let Ok(Message {
                transaction,
                body: Body::Query(_),
                ..
            }) = Message::decode(&data)
            {
                asked.push((transaction, to));
            }
        }
        // A datagram makes at most a few; a timer or a command at most what may be in
        // flight, as every query of ours waits in the pending table.
        let limit = if step <= 5 {
            MAX_SENT_PER_INPUT
        } else {
            MAX_PENDING
        };
        assert!(sent <= limit, "{sent} datagrams at once (step {step})");
        while node.poll_event().is_some() {}
        assert!(node.table().len() <= 160 * K);
        assert!(node.pending() <= MAX_PENDING);
        assert!(node.stored_peers() <= MAX_PEERS);
        asked.truncate(4 * MAX_PENDING);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
