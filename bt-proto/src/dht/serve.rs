//! Our answers to other nodes' queries.

use std::net::SocketAddr;
use std::time::Instant;

use super::NodeId;
use super::krpc::{Body, NodeInfo, Query, Response, Want};
use super::node::{MAX_VALUES_SENT, Node};
use crate::compact::Family;

/// KRPC error codes (BEP 5).
const PROTOCOL_ERROR: i64 = 203;

/// The answer to `q` from `from`.
pub(super) fn answer(node: &mut Node, now: Instant, from: SocketAddr, q: Query) -> Body {
    let id = node.id();
    match q {
        Query::Ping { .. } => Body::Response(Response {
            id,
            ..Default::default()
        }),
        Query::FindNode { target, want, .. } => {
            let (nodes, nodes6) = nodes_for(node, now, from, &target, want);
            Body::Response(Response {
                id,
                nodes,
                nodes6,
                ..Default::default()
            })
        }
        Query::GetPeers {
            info_hash, want, ..
        } => {
            let (nodes, nodes6) = nodes_for(node, now, from, &NodeId::from(info_hash), want);
            let token = Some(node.tokens().issue(from.ip()));
            let family = Family::of(&from);
            let (store, rng) = node.store_mut();
            // Peers of the asker's family: one it can reach over the network it asked on.
            let keep = |a: &SocketAddr| Family::of(a) == family;
            let values = store.get(now, &info_hash, MAX_VALUES_SENT, keep, rng);
            Body::Response(Response {
                id,
                nodes,
                nodes6,
                values,
                token,
            })
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            ..
        } => {
            if !node.tokens().check(from.ip(), &token) {
                return error("bad token");
            }
            let port = if implied_port { from.port() } else { port };
            if port == 0 {
                return error("bad port");
            }
            let peer = SocketAddr::new(from.ip(), port);
            let (store, _) = node.store_mut();
            store.announce(now, info_hash, peer);
            node.announced(info_hash, peer);
            Body::Response(Response {
                id,
                ..Default::default()
            })
        }
    }
}

fn error(message: &str) -> Body {
    Body::Error {
        code: PROTOCOL_ERROR,
        message: message.to_string(),
    }
}

/// The closest nodes to `target` of the families wanted (BEP 32; none named: the asker's).
fn nodes_for(
    node: &Node,
    now: Instant,
    from: SocketAddr,
    target: &NodeId,
    want: Want,
) -> (Vec<NodeInfo>, Vec<NodeInfo>) {
    let want = if want == Want::default() {
        Want {
            v4: from.is_ipv4(),
            v6: from.is_ipv6(),
        }
    } else {
        want
    };
    // Each family's own closest: one table holds both, and the closest of all may be of
    // the family not asked for.
    let of = |v6: bool| node.closest_of(now, target, v6);
    let nodes = if want.v4 { of(false) } else { Vec::new() };
    let nodes6 = if want.v6 { of(true) } else { Vec::new() };
    (nodes, nodes6)
}
