//! Helpers for the simulator's tests in `tests/sim_*.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use bt_proto::PeerId;
use bt_proto::extensions::{ExtensionHandshake, UT_PEX_ID};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::SimConnId;
use bt_proto::sim::remote::RemotePeer;
use bt_proto::sim::swarm::{NodeId, Swarm};
use bt_proto::wire::{Extension, Message, Reserved};

/// A raw node joined to the node at `to` for `meta`'s torrent, its handshake and extension
/// handshake (with `ut_pex` under [`UT_PEX_ID`]) sent and delivered: a peer that exchanges
/// peers, for a test to speak through.
///
/// # Panics
/// If the handshake cannot be encoded or sent: a broken test setup.
pub fn pex_peer(
    swarm: &mut Swarm,
    meta: &Metainfo,
    to: SocketAddr,
) -> (NodeId, RemotePeer<SimConnId>) {
    let raw = swarm.add_raw_node();
    let conn = swarm.raw_connect(raw, to);
    let reserved = Reserved::NONE.with(Extension::ExtensionProtocol);
    let peer = RemotePeer::new(conn, meta.info_hash(), PeerId([0xdd; 20])).with_reserved(reserved);
    let hello = ExtensionHandshake {
        ut_pex: Some(UT_PEX_ID),
        ..Default::default()
    };
    swarm.run_for(Duration::from_millis(100));
    let first = [Message::Extended {
        id: 0,
        payload: hello.encode().into(),
    }];
    let bytes = peer.hello_bytes(&first).expect("a handshake encodes");
    assert!(swarm.raw_send(conn, bytes), "the raw connection is open");
    swarm.run_for(Duration::from_millis(200));
    (raw, peer)
}
