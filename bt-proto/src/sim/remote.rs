//! A scripted remote peer: the other end of one connection to an engine [`Session`], played
//! by a test, a bench or a fuzzer.
//!
//! It sends what a peer would (its handshake with the reserved bits chosen, then any
//! messages, or raw bytes when the script wants to break the protocol) and decodes what the
//! session sent on the connection: the session's handshake, then its messages. A malformed
//! handshake or message is an error, never the quiet end of the list, so a test that reads
//! the session's output also checks that the session speaks valid peer wire.
//!
//! The peer is generic over how its connection is named: a [`ConnId`] when it talks to a
//! [`Session`] directly (the engine's unit tests, its bench, the `engine_peer` fuzz target),
//! or a [`SimConnId`](super::net::SimConnId) when it is a raw node of the simulated network
//! ([`Swarm::raw_connect`](super::swarm::Swarm::raw_connect)).
//!
//! ```
//! use std::time::Instant;
//! use bt_proto::engine::{AddTorrent, Config, Session};
//! use bt_proto::sim::remote::RemotePeer;
//! use bt_proto::sim::swarm::make_torrent;
//! use bt_proto::wire::{Extension, Message, Reserved};
//! use bt_proto::{Bitfield, PeerId};
//!
//! let (meta, _) = make_torrent(&[("a.bin", 40_000)], 16 * 1024, 1).unwrap();
//! let mut session = Session::new(Config::new(PeerId([1; 20]), 6881, 1));
//! let now = Instant::now();
//! let have = Some(Bitfield::full(meta.piece_count()));
//! session.add_torrent(now, meta.clone(), AddTorrent { have, ..Default::default() });
//! let conn = session.accept(now, "127.0.0.1:5000".parse().unwrap());
//! let mut peer = RemotePeer::new(conn, meta.info_hash(), PeerId([2; 20]))
//!     .with_reserved(Reserved::NONE.with(Extension::Fast))
//!     .with_piece_count(meta.piece_count());
//! peer.hello(&mut session, now, &[Message::Interested]).unwrap();
//! peer.drain(&mut session); // what the session sent to the peer; its other outputs returned
//! let sent = peer.messages().unwrap();
//! assert!(peer.their_handshake().is_some());
//! assert_eq!(sent.first(), Some(&Message::HaveAll));
//! ```

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::engine::{Input, Output, Session};
use crate::wire::{
    DecodeError, Decoder, EncodeError, Handshake, HandshakeError, Message, Progress, Reserved,
};
use crate::{ConnId, InfoHash, PeerId};

/// The peer at the far end of one connection, `C` naming that connection.
#[derive(Debug)]
pub struct RemotePeer<C = ConnId> {
    conn: C,
    handshake: Handshake,
    decoder: Decoder,
    /// The session's handshake, once decoded from what it sent.
    their_handshake: Option<Handshake>,
    /// Bytes received so far, so a transport that keeps the whole stream can hand over
    /// only what is new.
    received: usize,
}

/// What the session sent was not valid peer wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// The session's handshake is not a BitTorrent handshake.
    #[error("the session sent a bad handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A message after the handshake does not decode.
    #[error("the session sent a malformed message: {0}")]
    Message(#[from] DecodeError),
}

/// `messages` in their wire form, one after the other.
pub fn encode(messages: &[Message]) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    for message in messages {
        message.encode(&mut out)?;
    }
    Ok(out.freeze())
}

impl<C: Copy> RemotePeer<C> {
    /// The peer at the far end of `conn`, for the torrent `info_hash`, calling itself
    /// `peer_id` and offering no extension; it expects a torrent of unknown size until told
    /// ([`RemotePeer::with_piece_count`]).
    pub fn new(conn: C, info_hash: InfoHash, peer_id: PeerId) -> Self {
        RemotePeer {
            conn,
            handshake: Handshake {
                reserved: Reserved::NONE,
                info_hash,
                peer_id,
            },
            decoder: Decoder::new(None),
            their_handshake: None,
            received: 0,
        }
    }

    /// The same peer offering the extensions set in `reserved`.
    #[must_use]
    pub fn with_reserved(mut self, reserved: Reserved) -> Self {
        self.handshake.reserved = reserved;
        self
    }

    /// The same peer expecting a torrent of `pieces` pieces: a BITFIELD from the session
    /// must then have exactly that many bits.
    #[must_use]
    pub fn with_piece_count(mut self, pieces: u32) -> Self {
        self.decoder.set_piece_count(Some(pieces));
        self
    }

    /// The connection this peer is the far end of.
    pub fn conn(&self) -> C {
        self.conn
    }

    /// The handshake this peer sends.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The handshake this peer sends, to choose its reserved bits or id afterwards.
    pub fn handshake_mut(&mut self) -> &mut Handshake {
        &mut self.handshake
    }

    /// The session's handshake, once [`RemotePeer::messages`] has decoded it.
    pub fn their_handshake(&self) -> Option<&Handshake> {
        self.their_handshake.as_ref()
    }

    /// This peer's handshake followed by `then`, in wire form.
    pub fn hello_bytes(&self, then: &[Message]) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.handshake.encode_into(&mut out);
        for message in then {
            message.encode(&mut out)?;
        }
        Ok(out.freeze())
    }

    /// Takes bytes the session sent on the connection.
    pub fn receive(&mut self, data: &[u8]) {
        self.received += data.len();
        self.decoder.feed(data);
    }

    /// How many bytes [`RemotePeer::receive`] has taken so far.
    pub fn bytes_received(&self) -> usize {
        self.received
    }

    /// The messages received since the last call, in order: the session's handshake is
    /// decoded first (an incomplete one gives no messages yet), and a message cut by the end
    /// of what was received waits for the rest.
    pub fn messages(&mut self) -> Result<Vec<Message>, ReceiveError> {
        if self.their_handshake.is_none() {
            match self.decoder.decode_handshake()? {
                Progress::Done(handshake) => self.their_handshake = Some(handshake),
                Progress::NeedMore(_) => return Ok(Vec::new()),
            }
        }
        let mut out = Vec::new();
        while let Some(message) = self.decoder.next_message()? {
            out.push(message);
        }
        Ok(out)
    }
}

impl RemotePeer<ConnId> {
    /// Sends the session this peer's handshake followed by `then`, as one read.
    pub fn hello(
        &self,
        session: &mut Session,
        now: Instant,
        then: &[Message],
    ) -> Result<(), EncodeError> {
        let data = self.hello_bytes(then)?;
        self.send_bytes(session, now, data);
        Ok(())
    }

    /// Sends the session `messages`, as one read.
    pub fn send(
        &self,
        session: &mut Session,
        now: Instant,
        messages: &[Message],
    ) -> Result<(), EncodeError> {
        let data = encode(messages)?;
        self.send_bytes(session, now, data);
        Ok(())
    }

    /// Sends the session `data` as it is, as one read: for scripts that break the protocol.
    pub fn send_bytes(&self, session: &mut Session, now: Instant, data: impl Into<Bytes>) {
        let input = Input::Received {
            conn: self.conn,
            data: data.into(),
        };
        session.handle(now, input);
    }

    /// Takes `output` if it sends bytes on this peer's connection; gives back anything else.
    pub fn absorb(&mut self, output: Output) -> Option<Output> {
        match output {
            Output::Send { conn, bufs } if conn == self.conn => {
                for buf in &bufs {
                    self.receive(buf);
                }
                None
            }
            other => Some(other),
        }
    }

    /// Polls every output of the session: what it sends on this peer's connection is
    /// received, the rest is returned in order.
    pub fn drain(&mut self, session: &mut Session) -> Vec<Output> {
        let mut others = Vec::new();
        while let Some(output) = session.poll_output() {
            others.extend(self.absorb(output));
        }
        others
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BlockRequest, Extension};
    use crate::{Bitfield, PieceIndex};

    #[test]
    fn hello_is_the_handshake_then_the_messages() {
        let peer = RemotePeer::new(3u8, InfoHash([4; 20]), PeerId([5; 20]))
            .with_reserved(Reserved::NONE.with(Extension::Fast));
        let bytes = peer.hello_bytes(&[Message::HaveAll]).unwrap();
        let mut expected = peer.handshake().encode().to_vec();
        expected.extend(Message::HaveAll.to_vec().unwrap());
        assert_eq!(bytes[..], expected[..]);
        assert!(peer.handshake().reserved.has(Extension::Fast));
        assert_eq!(peer.conn(), 3);
    }

    #[test]
    fn messages_come_after_the_handshake_in_any_chunking() {
        let session_side = RemotePeer::new((), InfoHash([4; 20]), PeerId([6; 20]));
        let stream = session_side
            .hello_bytes(&[
                Message::Bitfield(Bytes::copy_from_slice(Bitfield::full(9).as_bytes())),
                Message::Request(BlockRequest::new(PieceIndex(2), 0, 16384)),
            ])
            .unwrap();
        let mut peer = RemotePeer::new((), InfoHash([4; 20]), PeerId([5; 20])).with_piece_count(9);
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            peer.receive(chunk);
            got.extend(peer.messages().unwrap());
        }
        assert_eq!(peer.their_handshake(), Some(session_side.handshake()));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(peer.bytes_received(), stream.len());
    }

    #[test]
    fn a_malformed_message_is_an_error_not_the_end() {
        let mut peer = RemotePeer::new((), InfoHash([4; 20]), PeerId([5; 20])).with_piece_count(9);
        peer.receive(
            &RemotePeer::new((), InfoHash([4; 20]), PeerId([6; 20]))
                .handshake()
                .encode(),
        );
        // A bitfield of 9 pieces is 2 bytes; this one has 1.
        peer.receive(&[0, 0, 0, 2, 5, 0xff]);
        assert!(matches!(peer.messages(), Err(ReceiveError::Message(_))));
        let mut garbage = RemotePeer::new((), InfoHash([4; 20]), PeerId([5; 20]));
        garbage.receive(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(
            garbage.messages(),
            Err(ReceiveError::Handshake(_))
        ));
    }
}
