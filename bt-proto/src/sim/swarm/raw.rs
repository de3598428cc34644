//! Raw nodes: hosts without a session, whose connections a test drives byte by byte (with a
//! [`RemotePeer`] or raw bytes) to play a hostile or broken peer.

use std::net::SocketAddr;

use bytes::Bytes;

use super::{NodeId, NodeOptions, Swarm};
use crate::sim::net::{NetEventKind, Side, SimConnId};
use crate::sim::remote::RemotePeer;

/// What a raw node's connection has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawConn {
    /// The connection is established.
    pub connected: bool,
    /// Bytes received so far.
    pub received: Vec<u8>,
    /// The other side closed or the connection failed.
    pub closed: bool,
}

impl RawConn {
    /// Records what the network did to the connection.
    pub(super) fn record(&mut self, event: NetEventKind) {
        match event {
            NetEventKind::Connected => self.connected = true,
            NetEventKind::Data(d) => self.received.extend_from_slice(&d),
            NetEventKind::Refused | NetEventKind::Closed(_) => self.closed = true,
        }
    }
}

impl Swarm {
    /// Adds a raw node: no session; the test connects and sends bytes itself, to play a
    /// hostile or broken peer.
    pub fn add_raw_node(&mut self) -> NodeId {
        let id = self.add_node(NodeOptions::default());
        if let Some(n) = self.nodes.get_mut(id.0) {
            n.raw = true;
        }
        id
    }

    /// Opens a connection from a raw node.
    pub fn raw_connect(&mut self, node: NodeId, to: SocketAddr) -> SimConnId {
        let from = self.addr(node);
        let now = self.clock.now();
        let sim = self.net.connect(from, to, now);
        if let Some(n) = self.nodes.get_mut(node.0) {
            n.raw_inbox.insert(sim, RawConn::default());
        }
        sim
    }

    /// Sends bytes on a raw node's connection; false if the connection cannot carry them.
    pub fn raw_send(&mut self, conn: SimConnId, data: impl Into<Bytes>) -> bool {
        let now = self.clock.now();
        self.net.send(conn, Side::Initiator, data, now).is_ok()
    }

    /// What a raw node's connection has seen.
    pub fn raw_conn(&self, node: NodeId, conn: SimConnId) -> Option<&RawConn> {
        self.nodes.get(node.0).and_then(|n| n.raw_inbox.get(&conn))
    }

    /// Hands `peer`, playing raw node `node`'s end of its connection, the bytes that
    /// connection received since it last looked.
    pub fn raw_receive(&self, node: NodeId, peer: &mut RemotePeer<SimConnId>) {
        if let Some(seen) = self.raw_conn(node, peer.conn()) {
            let new = seen
                .received
                .get(peer.bytes_received()..)
                .unwrap_or_default();
            peer.receive(new);
        }
    }
}
