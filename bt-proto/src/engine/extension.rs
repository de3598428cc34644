//! The extension protocol (BEP 10): our extension handshake, what we keep of theirs, and the
//! routing of extended messages to metadata exchange (`metadata`) and peer exchange (`pex`).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::torrent::Torrent;
use super::{ProtocolViolation, Session, TorrentId};
use crate::ConnId;
use crate::extensions::{
    ExtensionHandshake, HANDSHAKE_ID, UT_METADATA_ID, UT_PEX_ID, ut_metadata::METADATA_PIECE_LEN,
};
use crate::wire::Message;

pub use crate::extensions::MAX_CLIENT_NAME;

/// Largest extension handshake accepted. Real ones are a few hundred bytes (a dictionary of
/// extension names and a few numbers); a peer sending more is closed rather than parsed.
pub const MAX_EXTENSION_HANDSHAKE_LEN: usize = 16 * 1024;

/// Extension handshakes accepted per connection. BEP 10 lets a peer send it again to change
/// a value; a peer sending it over and over only makes us parse it over and over.
pub const MAX_EXTENSION_HANDSHAKES: u32 = 4;

/// What a peer told us in its extension handshakes (BEP 10), merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerExtensions {
    /// Every handshake so far, later values replacing earlier ones.
    pub said: ExtensionHandshake,
    /// Extension handshakes it sent.
    pub handshakes: u32,
}

/// Whether we serve a torrent's metadata (BEP 9). Not for private torrents (BEP 27): their
/// metadata reaches users only through the tracker's site, and a peer that knows only the
/// info-hash is not one the tracker let in; libtorrent does not serve it either.
pub(super) fn serves_metadata(t: &Torrent) -> bool {
    !t.meta.is_private()
}

impl Session {
    /// Whether a torrent exchanges peers (BEP 11): PEX is on for the session and the
    /// torrent, and the torrent is not private (BEP 27: a private torrent's peers come from
    /// its tracker only).
    pub(super) fn exchanges_peers(&self, t: &Torrent) -> bool {
        self.config.pex && !t.no_pex && !t.meta.is_private()
    }

    /// Sends our extension handshake for torrent `id` on `conn`: once activated, and again
    /// when a torrent added by magnet link gets its metadata (BEP 10 lets a handshake update
    /// the last), now with its size and peer exchange.
    pub(super) fn send_extension_handshake(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let Some(addr) = self.peers.get(conn).map(|p| p.addr) else {
            return;
        };
        let hs = match self.torrents.get(&id) {
            Some(t) => self.our_extension_handshake(t, addr),
            // Fetching the metadata: we name ut_metadata, the id peers answer our requests
            // under, with no size; peer exchange waits for the torrent to be known public.
            None => ExtensionHandshake {
                ut_metadata: Some(UT_METADATA_ID),
                ..self.extension_handshake_base(addr)
            },
        };
        let payload = Bytes::from(hs.encode());
        if let Some(p) = self.peers.get_mut(conn) {
            p.send(&Message::Extended { id: 0, payload }, now);
        }
    }

    /// Our extension handshake to the peer at `addr`, for torrent `t`.
    fn our_extension_handshake(&self, t: &Torrent, addr: SocketAddr) -> ExtensionHandshake {
        let metadata = serves_metadata(t);
        ExtensionHandshake {
            ut_metadata: metadata.then_some(UT_METADATA_ID),
            ut_pex: self.exchanges_peers(t).then_some(UT_PEX_ID),
            metadata_size: metadata.then(|| t.meta.info_bytes().len() as u64),
            ..self.extension_handshake_base(addr)
        }
    }

    /// What every extension handshake of ours says, whatever the torrent.
    fn extension_handshake_base(&self, addr: SocketAddr) -> ExtensionHandshake {
        ExtensionHandshake {
            ut_metadata: None,
            ut_pex: None,
            metadata_size: None,
            listen_port: Some(self.config.listen_port).filter(|p| *p != 0),
            reqq: Some(self.config.max_peer_requests),
            client: Some(self.config.client_name.clone()),
            yourip: Some(addr.ip()),
        }
    }

    /// An extended message from an active peer of torrent `id`: a handshake, or a message
    /// under one of our ids for an extension this torrent speaks. Anything else is ignored
    /// (BEP 10: ids we did not give out mean nothing to us).
    pub(super) fn on_extended(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        ext: u8,
        payload: Bytes,
    ) -> Result<(), ProtocolViolation> {
        let Some(t) = self.torrents.get(&id) else {
            return match ext {
                HANDSHAKE_ID => self.on_extension_handshake(now, conn, id, &payload),
                UT_METADATA_ID => self.on_metadata_while_fetching(now, conn, id, payload),
                _ => Ok(()),
            };
        };
        let (metadata, pex) = (serves_metadata(t), self.exchanges_peers(t));
        match ext {
            HANDSHAKE_ID => self.on_extension_handshake(now, conn, id, &payload),
            UT_METADATA_ID if metadata => self.on_metadata_request(now, conn, id, &payload),
            UT_PEX_ID if pex => self.on_pex_message(now, conn, id, &payload),
            _ => Ok(()),
        }
    }

    fn on_extension_handshake(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        payload: &[u8],
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        check_handshake(payload, p.extensions.handshakes)?;
        p.extensions.handshakes += 1;
        let said = ExtensionHandshake::decode(payload)?;
        p.extensions.said.update(said);
        self.start_pex(now, conn, id);
        self.request_metadata(now, id);
        Ok(())
    }
}

/// Checks a peer's extension handshake against the limits before it is parsed; `count` is
/// how many it sent before this one.
pub(super) fn check_handshake(payload: &[u8], count: u32) -> Result<(), ProtocolViolation> {
    if payload.len() > MAX_EXTENSION_HANDSHAKE_LEN {
        return Err(ProtocolViolation::ExtensionHandshakeTooLarge { len: payload.len() });
    }
    if count >= MAX_EXTENSION_HANDSHAKES {
        return Err(ProtocolViolation::TooManyExtensionHandshakes);
    }
    Ok(())
}

// A metadata piece with its dictionary must fit one extended message.
const _: () = assert!(METADATA_PIECE_LEN + 100 < crate::wire::MAX_EXTENDED_LEN as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_or_repeated_handshakes_are_violations() {
        assert!(check_handshake(&[b'd'; MAX_EXTENSION_HANDSHAKE_LEN], 0).is_ok());
        assert_eq!(
            check_handshake(&[b'd'; MAX_EXTENSION_HANDSHAKE_LEN + 1], 0),
            Err(ProtocolViolation::ExtensionHandshakeTooLarge {
                len: MAX_EXTENSION_HANDSHAKE_LEN + 1
            })
        );
        assert_eq!(
            check_handshake(b"de", MAX_EXTENSION_HANDSHAKES),
            Err(ProtocolViolation::TooManyExtensionHandshakes)
        );
    }
}
