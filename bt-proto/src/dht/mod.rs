//! The mainline DHT (BEP 5) as sans-IO parts: node ids and their distance ([`NodeId`], with
//! BEP 42), the KRPC messages ([`krpc`]), the routing table ([`routing`]), `announce_peer`
//! tokens ([`tokens`]) and the store of announced peers ([`peer_store`]). Like the engine,
//! nothing here does I/O or reads the clock: time and randomness are inputs.
//!
//! [`node::Node`] puts them together: a node that answers queries, runs lookups
//! ([`lookup`]) and announces, within per-source rate limits ([`rate_limit`]). Its use by
//! the engine (one UDP port shared with uTP, `get_peers` for torrents) is still to come.

pub mod external_ip;
mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod peer_store;
pub mod rate_limit;
pub mod routing;
pub mod saved;
mod serve;
#[cfg(test)]
mod tests;
pub mod tokens;

use std::net::IpAddr;

pub use id::{Distance, NodeId};

/// Whether a node named in an answer can be queried: nodes at port 0, or at unspecified,
/// multicast or broadcast addresses, would aim our queries at nothing or at many hosts.
pub(crate) fn usable(n: &krpc::NodeInfo) -> bool {
    let ip = n.addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    n.addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}
