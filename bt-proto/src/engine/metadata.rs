//! Serving a torrent's metadata (BEP 9): a peer's request for a piece of the info dictionary
//! is answered from the torrent's own bytes, within a budget per connection.

use std::time::Instant;

use bytes::Bytes;

use super::peer::Peer;
use super::{ProtocolViolation, Session, TorrentId};
use crate::ConnId;
use crate::extensions::ut_metadata::{self, MetadataError, MetadataMessage};
use crate::wire::Message;

/// Times each metadata piece is served to one connection. A client fetching the metadata
/// needs every piece once; when the assembled bytes fail the info-hash (a piece from a lying
/// peer) it asks again, and libtorrent retries with the same peers. Three full copies cover
/// that, while a peer asking on and on cannot make us send more than three times the
/// metadata (BEP 9 suggests this kind of limit: the piece count times a factor).
pub const METADATA_SERVINGS_PER_PIECE: u32 = 3;

/// Metadata requests refused (out of range, or over [`METADATA_SERVINGS_PER_PIECE`]) per
/// connection before it is closed. A reject is as small as the request, so refusing costs
/// little, but a client that got its copies does not keep asking: libtorrent waits a minute
/// after each reject, so 64 is an hour of honest retries, and a flood ends here.
pub const MAX_METADATA_REJECTS: u32 = 64;

/// What one connection got of the metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetadataServed {
    /// Pieces sent.
    served: u32,
    /// Requests refused.
    rejected: u32,
}

impl Session {
    /// A `ut_metadata` message under our id, on a torrent that serves its metadata.
    pub(super) fn on_metadata_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        payload: &[u8],
    ) -> Result<(), ProtocolViolation> {
        let piece = match MetadataMessage::decode(payload) {
            Ok(MetadataMessage::Request { piece }) => piece,
            // We never ask (we have the metadata): data and rejects answer nothing of ours.
            Ok(MetadataMessage::Data { .. } | MetadataMessage::Reject { .. }) => return Ok(()),
            // BEP 9: types we do not know are ignored.
            Err(MetadataError::UnknownType(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (Some(t), Some(p)) = (self.torrents.get(&id), self.peers.get_mut(conn)) else {
            return Ok(());
        };
        // A peer that did not name ut_metadata has no id to receive our answer under.
        let Some(their_id) = p.extensions.said.metadata_id() else {
            return Ok(());
        };
        let info = t.meta.info_bytes();
        let pieces = u32::try_from(ut_metadata::piece_count(info.len())).unwrap_or(u32::MAX);
        let budget = pieces.saturating_mul(METADATA_SERVINGS_PER_PIECE);
        let served = &mut p.metadata_served;
        match ut_metadata::piece_of(info, piece) {
            Some(data) if served.served < budget => {
                served.served += 1;
                let reply = MetadataMessage::Data {
                    piece,
                    total_size: info.len() as u64,
                    data: Bytes::copy_from_slice(data),
                };
                send_metadata(p, their_id, &reply, now);
                Ok(())
            }
            _ => self.refuse_metadata_request(now, conn, piece),
        }
    }

    /// Answers a metadata request with a reject, closing a peer that asked for more than
    /// [`MAX_METADATA_REJECTS`] we could not give.
    pub(super) fn refuse_metadata_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        piece: u32,
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        // A peer that did not name ut_metadata has no id to receive our answer under.
        let Some(their_id) = p.extensions.said.metadata_id() else {
            return Ok(());
        };
        let served = &mut p.metadata_served;
        if served.rejected >= MAX_METADATA_REJECTS {
            return Err(ProtocolViolation::MetadataRequestFlood);
        }
        served.rejected += 1;
        send_metadata(p, their_id, &MetadataMessage::Reject { piece }, now);
        Ok(())
    }
}

/// Sends a `ut_metadata` message under the id the peer gave it.
pub(super) fn send_metadata(p: &mut Peer, their_id: u8, msg: &MetadataMessage, now: Instant) {
    let payload = Bytes::from(msg.encode());
    p.send(
        &Message::Extended {
            id: their_id,
            payload,
        },
        now,
    );
}
