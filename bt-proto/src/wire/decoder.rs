//! The incremental decoder: bytes from a peer in, [`Message`]s out, in any chunking.
//!
//! Received buffers given as [`Bytes`] ([`Decoder::feed_bytes`]) are decoded in place: bodies
//! with payloads (PIECE, BITFIELD, EXTENDED, unknown) are slices of them, sharing their memory
//! instead of being copied, and fixed-size messages are parsed where they lie. Only a message
//! cut by the end of a read is copied, into the decoder's own [`BytesMut`], and only its own
//! bytes, so the bytes copied per read are at most one message. Bytes given as slices
//! ([`Decoder::feed`]) are appended to that buffer, and payloads are split off it.
//!
//! Every length is judged from the 4-byte prefix and the id before the body is waited for:
//! an over-long message is an error while at most 5 of its bytes are buffered, so the
//! unfinished message the decoder holds is never larger than [`Decoder::max_frame_len`].

use bytes::{Buf, Bytes, BytesMut};
use nom::{IResult, Parser, number::complete::be_u16, number::complete::be_u32};

use super::handshake::{HANDSHAKE_LEN, Handshake, HandshakeError, HandshakePrefix, Progress};
use super::message::{BlockRequest, Message, PIECE_HEADER_LEN, id, is_known, message_name};
use super::{MAX_BITFIELD_LEN_UNKNOWN, MAX_BLOCK_LEN, MAX_EXTENDED_LEN, MAX_UNKNOWN_LEN};
use crate::{Bitfield, PieceIndex};

/// Free space [`Decoder::read_buf`] makes room for before a read: 64 KiB.
///
/// Four full PIECE messages per read keeps system calls per byte low, and a whole PIECE
/// (16 KiB + 13) always fits, so a block never needs two reads for lack of room.
pub const READ_CHUNK: usize = 64 * 1024;

/// What was wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The length prefix is outside what this message may have. `min == max` for fixed-size
    /// messages (and a bitfield once the piece count is known).
    #[error(
        "{} message (id {id}) has length {length}, allowed {min}..={max}",
        message_name(*.id)
    )]
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix received (id byte included).
        length: u32,
        /// Smallest length allowed.
        min: u32,
        /// Largest length allowed.
        max: u32,
    },
    /// A REQUEST, CANCEL or REJECT REQUEST for a block of 0 or more than [`MAX_BLOCK_LEN`]
    /// bytes (BEP 3: peers close connections that request more).
    #[error(
        "{} message (id {id}) names a block of {length} bytes, allowed 1..={MAX_BLOCK_LEN}",
        message_name(*.id)
    )]
    InvalidBlockLength {
        /// The message id.
        id: u8,
        /// The block length received.
        length: u32,
    },
}

/// A message the peer should not have sent; the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer message at stream byte {offset}: {kind}")]
pub struct DecodeError {
    /// Where the offending message starts, counting every byte the decoder was given
    /// (including a handshake it decoded, and a prefix passed to [`Decoder::with_prefix`]).
    pub offset: u64,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// Turns the byte stream from one peer into messages.
///
/// ```
/// use bt_proto::wire::{Decoder, Handshake, Message, Progress, Reserved};
/// use bt_proto::{InfoHash, PeerId, PieceIndex};
///
/// // A peer sends its handshake and first messages in one go.
/// let hs = Handshake {
///     reserved: Reserved::NONE,
///     info_hash: InfoHash([7; 20]),
///     peer_id: PeerId([8; 20]),
/// };
/// let mut stream = hs.encode().to_vec();
/// Message::HaveAll.encode(&mut stream).unwrap();
/// Message::Have(PieceIndex(3)).encode(&mut stream).unwrap();
///
/// let mut decoder = Decoder::new(None);
/// decoder.feed(&stream);
/// assert_eq!(decoder.decode_handshake(), Ok(Progress::Done(hs)));
/// decoder.set_piece_count(Some(4)); // the engine found the torrent
/// assert_eq!(decoder.next_message(), Ok(Some(Message::HaveAll)));
/// assert_eq!(decoder.next_message(), Ok(Some(Message::Have(PieceIndex(3)))));
/// assert_eq!(decoder.next_message(), Ok(None));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    /// Received bytes that are not decoded in place: a message cut by the end of a read, and
    /// whatever was fed as slices. When not empty, these bytes come before `chunk` in the
    /// stream; those before `pos` are decoded and only wait to be released.
    buf: BytesMut,
    /// A received buffer decoded in place (payloads are slices of it). Its bytes follow
    /// `buf`'s, and it is read only once `buf` is empty.
    chunk: Bytes,
    /// Read cursor into `buf` when it is not empty, else into `chunk`. Fixed-size messages
    /// just move it; the decoded bytes are released in one step when a payload is split off
    /// or more bytes are needed.
    pos: usize,
    pieces: Option<u32>,
    /// Stream offset of `buf[0]`.
    consumed: u64,
    /// Whether the last payload split off was a message put together in a buffer of its
    /// own (see [`Decoder::last_payload_owned`]).
    owned: bool,
}

#[inline]
fn piece_index(input: &[u8]) -> IResult<&[u8], PieceIndex> {
    be_u32.map(PieceIndex).parse(input)
}

impl Decoder {
    /// An empty decoder. `pieces` is the torrent's piece count, or `None` while it is unknown
    /// (a magnet link before its metadata); it fixes the only length a BITFIELD may have.
    pub fn new(pieces: Option<u32>) -> Self {
        Decoder::with_prefix(BytesMut::new(), pieces)
    }

    /// A decoder that starts with bytes already received, e.g. what followed a handshake that
    /// was decoded elsewhere.
    pub fn with_prefix(prefix: BytesMut, pieces: Option<u32>) -> Self {
        Decoder {
            buf: prefix,
            chunk: Bytes::new(),
            pos: 0,
            pieces,
            consumed: 0,
            owned: false,
        }
    }

    /// Sets the piece count once the torrent is known; from then on a BITFIELD must be
    /// exactly `1 + ceil(pieces / 8)` long.
    pub fn set_piece_count(&mut self, pieces: Option<u32>) {
        self.pieces = pieces;
    }

    /// Appends received bytes. Decode after each call: the buffer holds whatever has not been
    /// decoded yet, so the caller bounds memory by feeding bounded chunks.
    pub fn feed(&mut self, data: &[u8]) {
        self.release();
        self.spill();
        self.buf.extend_from_slice(data);
    }

    /// Appends a received buffer without copying it: messages are decoded where they lie and
    /// payloads are slices of `data`. Only a message cut by the start or end of `data` is
    /// copied (its own bytes alone). Decode after each call, as with [`Decoder::feed`].
    pub fn feed_bytes(&mut self, data: Bytes) {
        self.release();
        self.spill();
        self.chunk = data;
        self.top_up();
    }

    /// The receive buffer, with at least [`READ_CHUNK`] bytes (or what the message being
    /// received still lacks, if more) of free capacity, for reading from a socket straight
    /// into it (e.g. tokio's `read_buf`). Bytes appended are decoded like fed ones; do not
    /// remove or change bytes already there.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        self.release();
        self.spill();
        let want = self.bytes_needed().max(READ_CHUNK);
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        &mut self.buf
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        if self.buf.is_empty() {
            self.chunk.len().saturating_sub(self.pos)
        } else {
            self.buf.len().saturating_sub(self.pos) + self.chunk.len()
        }
    }

    /// Bytes still missing before the next message (or its header) is complete: a hint for
    /// sizing reads. 0 when a message is ready or the next one is invalid.
    pub fn bytes_needed(&self) -> usize {
        match self.front_frame() {
            Frame::Needs(n) => {
                let ahead = if self.buf.is_empty() {
                    0
                } else {
                    self.chunk.len()
                };
                n.saturating_sub(ahead)
            }
            Frame::Complete | Frame::Invalid => 0,
        }
    }

    /// The state of the message at the front of the pending bytes (of `buf` if it has any).
    fn front_frame(&self) -> Frame {
        self.frame_of(self.pending())
    }

    /// The state of the message `pending` starts.
    fn frame_of(&self, pending: &[u8]) -> Frame {
        match (pending.first_chunk::<4>(), pending.get(4)) {
            (None, _) => Frame::Needs(4 - pending.len()),
            (Some(&[0, 0, 0, 0]), _) => Frame::Complete,
            (Some(_), None) => Frame::Needs(5 - pending.len()),
            (Some(prefix), Some(&message_id)) => {
                let length = u32::from_be_bytes(*prefix);
                if self.check_length(message_id, length).is_err() {
                    Frame::Invalid
                } else {
                    match (4 + length as usize).saturating_sub(pending.len()) {
                        0 => Frame::Complete,
                        n => Frame::Needs(n),
                    }
                }
            }
        }
    }

    /// Moves what is left of `chunk` to the end of `buf` (a copy), so that the pending bytes
    /// are contiguous again. Call after [`Decoder::release`].
    fn spill(&mut self) {
        if !self.chunk.is_empty() {
            let rest = std::mem::take(&mut self.chunk);
            let start = if self.buf.is_empty() { self.pos } else { 0 };
            if self.buf.is_empty() {
                self.consumed += start as u64;
                self.pos = 0;
            }
            let rest = rest.get(start..).unwrap_or_default();
            // A block's header alone reserves nothing: its block may come whole in the next
            // buffer fed, and be taken from there.
            if self.buf.is_empty()
                && rest.len() >= 5
                && !is_piece_header(rest)
                && let Frame::Needs(n) = self.frame_of(rest)
            {
                self.reserve_frame(rest.len() + n);
            }
            self.buf.extend_from_slice(rest);
        }
    }

    /// Makes room in `buf` for the `missing` bytes of the message it is receiving, once that
    /// message's header (length and id, checked) is known, so a message put together from
    /// many reads is copied once and fills a buffer of its own size. At most [`READ_CHUNK`]
    /// is reserved ahead of the bytes that fill it, no more than [`Decoder::read_buf`] offers
    /// any peer; a longer message grows as it comes.
    fn reserve_frame(&mut self, missing: usize) {
        self.buf.reserve(missing.min(READ_CHUNK));
    }

    /// Completes the unfinished message at the front of `buf` from `chunk`, copying only the
    /// bytes it lacks, so that the rest of `chunk` is decoded in place. Bytes that are not a
    /// valid message (a handshake, or an error to report) are all moved to `buf`, where they
    /// are decoded as fed bytes are. Call after [`Decoder::release`].
    fn top_up(&mut self) {
        while !self.buf.is_empty() && !self.chunk.is_empty() {
            match self.front_frame() {
                Frame::Needs(_) if self.block_in_chunk().is_some() => break,
                Frame::Needs(n) => {
                    if self.buf.len().saturating_sub(self.pos) >= 5 {
                        self.reserve_frame(n);
                    }
                    let n = n.min(self.chunk.len());
                    self.buf
                        .extend_from_slice(self.chunk.get(..n).unwrap_or_default());
                    self.chunk.advance(n);
                }
                Frame::Complete => break,
                Frame::Invalid => self.spill(),
            }
        }
    }

    /// Called when the pending bytes end inside a message: `true` if more bytes were made
    /// available to decode it (from `chunk`), `false` if the caller must wait for a read.
    /// A message cut by the end of `chunk` is kept in `buf`.
    fn need_more(&mut self) -> bool {
        self.release();
        if self.buf.is_empty() {
            // Only the unfinished message is left of the chunk: at most one frame is copied.
            self.spill();
            false
        } else if self.chunk.is_empty() {
            false
        } else {
            self.top_up();
            true
        }
    }

    /// Moves the read cursor past `n` decoded bytes; leaving `buf` once it is all decoded.
    #[inline]
    fn skip(&mut self, n: usize) {
        self.pos += n;
        if !self.buf.is_empty() && self.pos >= self.buf.len() {
            self.release();
        }
    }

    /// Largest frame (length prefix included) this decoder accepts with its current piece
    /// count: the most it ever holds of an unfinished message.
    pub fn max_frame_len(&self) -> usize {
        let bitfield = self.bounds(id::BITFIELD).1;
        let largest = [
            bitfield,
            9 + MAX_BLOCK_LEN,
            MAX_EXTENDED_LEN,
            MAX_UNKNOWN_LEN,
        ]
        .into_iter()
        .max()
        .unwrap_or(MAX_EXTENDED_LEN);
        4 + largest as usize
    }

    /// The first 48 bytes of the peer's handshake, without consuming anything: a listener
    /// routes the connection by its info-hash, then calls [`Decoder::decode_handshake`].
    pub fn peek_handshake_prefix(&self) -> Result<Progress<HandshakePrefix>, HandshakeError> {
        HandshakePrefix::decode(self.pending())
    }

    /// Decodes and consumes the peer's handshake, which must be the first thing in the stream;
    /// messages buffered behind it stay for [`Decoder::next_message`].
    pub fn decode_handshake(&mut self) -> Result<Progress<Handshake>, HandshakeError> {
        let progress = Handshake::decode(self.pending())?;
        if let Progress::Done(_) = progress {
            self.skip(HANDSHAKE_LEN);
        }
        Ok(progress)
    }

    /// The next complete message, `Ok(None)` if more bytes are needed, or the first invalid
    /// message's error. Nothing is consumed on error, so calling again gives the same error.
    #[inline]
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        loop {
            match self.decode_one() {
                Err(NeedMore) => {
                    if !self.need_more() {
                        return Ok(None);
                    }
                }
                Ok(result) => return result,
            }
        }
    }

    /// The next message from the pending bytes, or `Err(NeedMore)` if they end inside it.
    #[inline]
    fn decode_one(&mut self) -> Result<Result<Option<Message>, DecodeError>, NeedMore> {
        let pending = self.pending();
        let Some(&prefix) = pending.first_chunk::<4>() else {
            return Err(NeedMore);
        };
        let length = u32::from_be_bytes(prefix);
        if length == 0 {
            self.skip(4);
            return Ok(Ok(Some(Message::KeepAlive)));
        }
        let Some(&message_id) = pending.get(4) else {
            return Err(NeedMore);
        };
        if let Err(kind) = self.check_length(message_id, length) {
            return Ok(Err(self.error(kind)));
        }
        let frame = 4 + length as usize;
        let Some(body) = pending.get(5..frame) else {
            return self.piece_from_chunk().ok_or(NeedMore).map(|m| Ok(Some(m)));
        };
        let message = match message_id {
            id::PIECE => {
                let Ok((_, (piece, offset))) = (piece_index, be_u32).parse(body) else {
                    return Ok(Err(self.short_body(message_id, length)));
                };
                let data = self.split_payload(frame, PIECE_HEADER_LEN);
                Message::Piece {
                    piece,
                    offset,
                    data,
                }
            }
            id::BITFIELD => Message::Bitfield(self.split_payload(frame, 5)),
            id::EXTENDED => {
                let Some(&ext) = body.first() else {
                    return Ok(Err(self.short_body(message_id, length)));
                };
                Message::Extended {
                    id: ext,
                    payload: self.split_payload(frame, 6),
                }
            }
            other if !is_known(other) => Message::Unknown {
                id: other,
                payload: self.split_payload(frame, 5),
            },
            fixed => {
                let Ok((_, [a, b, c])) = fixed_fields(body) else {
                    return Ok(Err(self.short_body(fixed, length)));
                };
                let is_block = matches!(fixed, id::REQUEST | id::CANCEL | id::REJECT_REQUEST);
                if is_block && !(1..=MAX_BLOCK_LEN).contains(&c) {
                    return Ok(Err(self.error(DecodeErrorKind::InvalidBlockLength {
                        id: fixed,
                        length: c,
                    })));
                }
                let block = BlockRequest::new(PieceIndex(a), b, c);
                // Built once, straight into the return value, from scalars: building an enum
                // in pieces and then moving it costs more than the whole parse.
                let message = match fixed {
                    id::CHOKE => Message::Choke,
                    id::UNCHOKE => Message::Unchoke,
                    id::INTERESTED => Message::Interested,
                    id::NOT_INTERESTED => Message::NotInterested,
                    id::HAVE_ALL => Message::HaveAll,
                    id::HAVE_NONE => Message::HaveNone,
                    id::HAVE => Message::Have(PieceIndex(a)),
                    id::SUGGEST => Message::Suggest(PieceIndex(a)),
                    id::ALLOWED_FAST => Message::AllowedFast(PieceIndex(a)),
                    id::REQUEST => Message::Request(block),
                    id::CANCEL => Message::Cancel(block),
                    id::REJECT_REQUEST => Message::RejectRequest(block),
                    // The length check made PORT's body 2 bytes, so `a` fits.
                    id::PORT => Message::Port(u16::try_from(a).unwrap_or(u16::MAX)),
                    // Every id reaching this arm is one of the above.
                    _ => return Ok(Err(self.short_body(fixed, length))),
                };
                self.skip(frame);
                return Ok(Ok(Some(message)));
            }
        };
        Ok(Ok(Some(message)))
    }

    /// The length of the block whose PIECE header is all `buf` has left, if the block lies
    /// whole at the front of `chunk`: a block written as a buffer of its own and fed as
    /// one, after its header.
    fn block_in_chunk(&self) -> Option<usize> {
        if self.buf.is_empty() {
            return None;
        }
        let header = self.buf.get(self.pos..)?;
        if !is_piece_header(header) {
            return None;
        }
        let length = u32::from_be_bytes(*header.first_chunk::<4>()?) as usize;
        let block = (4 + length).checked_sub(PIECE_HEADER_LEN)?;
        (self.chunk.len() >= block && self.check_length(id::PIECE, length as u32).is_ok())
            .then_some(block)
    }

    /// The PIECE message of [`Decoder::block_in_chunk`], its block a slice of `chunk` (not
    /// copied).
    fn piece_from_chunk(&mut self) -> Option<Message> {
        let block = self.block_in_chunk()?;
        let header = self.buf.get(self.pos + 5..)?;
        let Ok((_, (piece, offset))) = (piece_index, be_u32).parse(header) else {
            return None;
        };
        // The header is decoded: `buf` is done with, and `chunk` is read from its start.
        self.pos = self.buf.len();
        self.release();
        let data = self.chunk.slice(..block);
        self.pos = block;
        self.owned = false;
        Some(Message::Piece {
            piece,
            offset,
            data,
        })
    }

    /// The bytes not decoded yet, up to the end of the buffer being read (`buf`, else
    /// `chunk`).
    #[inline]
    fn pending(&self) -> &[u8] {
        let from = if self.buf.is_empty() {
            &self.chunk[..]
        } else {
            &self.buf[..]
        };
        from.get(self.pos..).unwrap_or_default()
    }

    /// Drops the decoded bytes from the buffer being read (they may still be shared by
    /// payloads).
    fn release(&mut self) {
        if self.pos > 0 {
            if self.buf.is_empty() {
                self.chunk.advance(self.pos.min(self.chunk.len()));
            } else {
                self.buf.advance(self.pos.min(self.buf.len()));
            }
            self.consumed += self.pos as u64;
            self.pos = 0;
        }
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.consumed + self.pos as u64,
            kind,
        }
    }

    /// A body its parser could not read. The length check makes every body exactly as long
    /// as its parser reads, so this cannot happen; were it to, it would be a length error.
    fn short_body(&self, message_id: u8, length: u32) -> DecodeError {
        let (min, max) = self.bounds(message_id);
        self.error(DecodeErrorKind::BadLength {
            id: message_id,
            length,
            min,
            max,
        })
    }

    /// Whether `length` is allowed for `message_id`.
    #[inline]
    fn check_length(&self, message_id: u8, length: u32) -> Result<(), DecodeErrorKind> {
        let (min, max) = self.bounds(message_id);
        if (min..=max).contains(&length) {
            Ok(())
        } else {
            Err(DecodeErrorKind::BadLength {
                id: message_id,
                length,
                min,
                max,
            })
        }
    }

    /// Allowed length prefix range for a message id.
    #[inline]
    fn bounds(&self, message_id: u8) -> (u32, u32) {
        match message_id {
            id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED => (1, 1),
            id::HAVE_ALL | id::HAVE_NONE => (1, 1),
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => (5, 5),
            id::REQUEST | id::CANCEL | id::REJECT_REQUEST => (13, 13),
            id::PORT => (3, 3),
            id::PIECE => (10, 9 + MAX_BLOCK_LEN),
            id::BITFIELD => match self.pieces {
                Some(pieces) => {
                    // At most 2^29 bytes for u32 pieces, so this fits.
                    let bytes = u32::try_from(Bitfield::byte_len(pieces)).unwrap_or(u32::MAX - 1);
                    (1 + bytes, 1 + bytes)
                }
                // Every torrent has at least one piece, so at least one byte.
                None => (2, 1 + MAX_BITFIELD_LEN_UNKNOWN),
            },
            id::EXTENDED => (2, MAX_EXTENDED_LEN),
            _ => (1, MAX_UNKNOWN_LEN),
        }
    }

    /// Takes the next `frame` pending bytes and returns them from `start` on, without
    /// copying.
    fn split_payload(&mut self, frame: usize, start: usize) -> Bytes {
        if self.buf.is_empty() {
            let end = self.pos.saturating_add(frame).min(self.chunk.len());
            let begin = self.pos.saturating_add(start).min(end);
            let payload = self.chunk.slice(begin..end);
            self.pos = end;
            self.owned = false;
            return payload;
        }
        self.release();
        // A message put together from several reads is usually all `buf` holds: the buffer
        // is handed over whole, which shares nothing and, filled to its capacity, costs no
        // allocation.
        let mut whole = if self.buf.len() == frame {
            self.owned = self.buf.capacity() == frame;
            std::mem::take(&mut self.buf)
        } else {
            self.owned = false;
            self.buf.split_to(frame.min(self.buf.len()))
        };
        whole.advance(start.min(whole.len()));
        self.consumed += frame as u64;
        whole.freeze()
    }

    /// Whether the payload of the last message with one (PIECE, BITFIELD, EXTENDED,
    /// unknown) fills a buffer of its own, allocated for it as it came in pieces: keeping it
    /// holds no memory but its own message. Otherwise it is a slice of a received buffer
    /// (fed with [`Decoder::feed_bytes`]) or of the decoder's buffer, and keeping it keeps
    /// that whole buffer alive.
    pub fn last_payload_owned(&self) -> bool {
        self.owned
    }
}

/// Whether `bytes` are exactly the header of a PIECE message (length, id, index, offset).
fn is_piece_header(bytes: &[u8]) -> bool {
    bytes.len() == PIECE_HEADER_LEN && bytes.get(4) == Some(&id::PIECE)
}

/// The pending bytes end inside a message.
struct NeedMore;

/// The message at the front of the pending bytes.
enum Frame {
    /// Complete: it can be decoded.
    Complete,
    /// This many more bytes are needed (of its header, then of its body).
    Needs(usize),
    /// Its length is not allowed (or the bytes are not a message, e.g. a handshake).
    Invalid,
}

/// The integers in the body of a fixed-size message, zero-filled: nothing, a port (2 bytes),
/// a piece index (4) or a block's index, offset and length (12). The length check has already
/// matched the body's size to its id.
#[inline]
fn fixed_fields(body: &[u8]) -> IResult<&[u8], [u32; 3]> {
    match body.len() {
        0 => Ok((body, [0; 3])),
        2 => be_u16.map(|port| [u32::from(port), 0, 0]).parse(body),
        4 => be_u32.map(|index| [index, 0, 0]).parse(body),
        _ => (be_u32, be_u32, be_u32)
            .map(|(a, b, c)| [a, b, c])
            .parse(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Reserved;
    use crate::{InfoHash, PeerId};

    fn frame(length: u32, message_id: u8, body_len: usize) -> Vec<u8> {
        let mut v = length.to_be_bytes().to_vec();
        v.push(message_id);
        v.resize(5 + body_len, 0xAA);
        v
    }

    fn first(bytes: &[u8], pieces: Option<u32>) -> Result<Option<Message>, DecodeError> {
        let mut d = Decoder::new(pieces);
        d.feed(bytes);
        d.next_message()
    }

    fn bad_length(bytes: &[u8], pieces: Option<u32>) -> (u8, u32, u32, u32) {
        match first(bytes, pieces) {
            Err(DecodeError {
                offset: 0,
                kind:
                    DecodeErrorKind::BadLength {
                        id,
                        length,
                        min,
                        max,
                    },
            }) => (id, length, min, max),
            other => panic!("expected a length error, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_message_from_exact_bytes() {
        let cases: Vec<(Vec<u8>, Message)> = vec![
            (vec![0, 0, 0, 0], Message::KeepAlive),
            (vec![0, 0, 0, 1, 0], Message::Choke),
            (vec![0, 0, 0, 1, 1], Message::Unchoke),
            (vec![0, 0, 0, 1, 2], Message::Interested),
            (vec![0, 0, 0, 1, 3], Message::NotInterested),
            (
                vec![0, 0, 0, 5, 4, 0, 0, 1, 0],
                Message::Have(PieceIndex(256)),
            ),
            (
                vec![0, 0, 0, 3, 5, 0xff, 0xc0],
                Message::Bitfield(Bytes::from_static(&[0xff, 0xc0])),
            ),
            (
                vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
                Message::Request(BlockRequest::new(PieceIndex(1), 16384, 16384)),
            ),
            (
                vec![0, 0, 0, 11, 7, 0, 0, 0, 3, 0, 0, 0, 0, b'h', b'i'],
                Message::Piece {
                    piece: PieceIndex(3),
                    offset: 0,
                    data: Bytes::from_static(b"hi"),
                },
            ),
            (
                vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                Message::Cancel(BlockRequest::new(PieceIndex(1), 0, 1)),
            ),
            (vec![0, 0, 0, 3, 9, 0xc8, 0xd5], Message::Port(51413)),
            (
                vec![0, 0, 0, 5, 13, 0, 0, 0, 2],
                Message::Suggest(PieceIndex(2)),
            ),
            (vec![0, 0, 0, 1, 14], Message::HaveAll),
            (vec![0, 0, 0, 1, 15], Message::HaveNone),
            (
                vec![0, 0, 0, 13, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0],
                Message::RejectRequest(BlockRequest::new(PieceIndex(1), 0, 16384)),
            ),
            (
                vec![0, 0, 0, 5, 17, 0, 0, 0, 4],
                Message::AllowedFast(PieceIndex(4)),
            ),
            (
                vec![0, 0, 0, 2, 20, 0],
                Message::Extended {
                    id: 0,
                    payload: Bytes::new(),
                },
            ),
            (
                vec![0, 0, 0, 5, 20, 3, b'd', b'e', b'!'],
                Message::Extended {
                    id: 3,
                    payload: Bytes::from_static(b"de!"),
                },
            ),
            (
                vec![0, 0, 0, 2, 10, 9],
                Message::Unknown {
                    id: 10,
                    payload: Bytes::from_static(&[9]),
                },
            ),
            (
                vec![0, 0, 0, 1, 255],
                Message::Unknown {
                    id: 255,
                    payload: Bytes::new(),
                },
            ),
        ];
        for (bytes, expected) in cases {
            let mut d = Decoder::new(Some(10));
            d.feed(&bytes);
            assert_eq!(d.next_message(), Ok(Some(expected.clone())), "{bytes:?}");
            assert_eq!(d.buffered(), 0);
            assert_eq!(d.next_message(), Ok(None));
            // Every prefix of the frame is "need more", never an error or a message.
            for cut in 0..bytes.len() {
                let mut d = Decoder::new(Some(10));
                d.feed(&bytes[..cut]);
                assert_eq!(d.next_message(), Ok(None), "{expected:?} cut at {cut}");
                assert_eq!(d.buffered(), cut);
            }
        }
    }

    #[test]
    fn fixed_size_messages_must_have_their_exact_length() {
        for (message_id, exact) in [
            (id::CHOKE, 1),
            (id::UNCHOKE, 1),
            (id::INTERESTED, 1),
            (id::NOT_INTERESTED, 1),
            (id::HAVE, 5),
            (id::REQUEST, 13),
            (id::CANCEL, 13),
            (id::PORT, 3),
            (id::SUGGEST, 5),
            (id::HAVE_ALL, 1),
            (id::HAVE_NONE, 1),
            (id::REJECT_REQUEST, 13),
            (id::ALLOWED_FAST, 5),
        ] {
            for wrong in [exact - 1, exact + 1, u32::MAX] {
                if wrong == 0 {
                    continue; // a zero length is a keep-alive
                }
                // Only the prefix and id are present: the error comes before the body.
                let got = bad_length(&frame(wrong, message_id, 0), Some(8));
                assert_eq!(got, (message_id, wrong, exact, exact));
            }
        }
    }

    #[test]
    fn piece_length_is_checked_before_the_block_is_buffered() {
        assert_eq!(
            bad_length(&frame(9 + MAX_BLOCK_LEN + 1, id::PIECE, 0), None),
            (id::PIECE, 16394, 10, 16393)
        );
        // A PIECE with no block answers no valid request.
        assert_eq!(
            bad_length(&frame(9, id::PIECE, 8), None),
            (id::PIECE, 9, 10, 16393)
        );
        let mut full = frame(9 + MAX_BLOCK_LEN, id::PIECE, 8 + MAX_BLOCK_LEN as usize);
        let Ok(Some(Message::Piece { data, .. })) = first(&full, None) else {
            panic!("a 16 KiB block is fine")
        };
        assert_eq!(data.len(), MAX_BLOCK_LEN as usize);
        full.truncate(4 + 9 + 100);
        assert_eq!(first(&full, None), Ok(None));
    }

    #[test]
    fn bitfield_is_exactly_the_torrents_size_once_known() {
        // 10 pieces: 2 bytes of bitfield, length prefix 3.
        assert!(
            first(&frame(3, id::BITFIELD, 2), Some(10))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            bad_length(&frame(2, id::BITFIELD, 1), Some(10)),
            (id::BITFIELD, 2, 3, 3)
        );
        assert_eq!(
            bad_length(&frame(4, id::BITFIELD, 3), Some(10)),
            (id::BITFIELD, 4, 3, 3)
        );
        assert!(
            first(&frame(3, id::BITFIELD, 2), Some(16))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            bad_length(&frame(3, id::BITFIELD, 0), Some(17)),
            (id::BITFIELD, 3, 4, 4)
        );
        // Unknown piece count: at least one byte, at most the named cap.
        assert!(first(&frame(2, id::BITFIELD, 1), None).unwrap().is_some());
        assert_eq!(
            bad_length(&frame(1, id::BITFIELD, 0), None),
            (id::BITFIELD, 1, 2, 1 + MAX_BITFIELD_LEN_UNKNOWN)
        );
        assert_eq!(
            bad_length(&frame(2 + MAX_BITFIELD_LEN_UNKNOWN, id::BITFIELD, 0), None),
            (
                id::BITFIELD,
                2 + MAX_BITFIELD_LEN_UNKNOWN,
                2,
                1 + MAX_BITFIELD_LEN_UNKNOWN
            )
        );
    }

    #[test]
    fn setting_the_piece_count_changes_the_bitfield_rule() {
        let mut d = Decoder::new(None);
        d.feed(&frame(101, id::BITFIELD, 100));
        d.set_piece_count(Some(8));
        assert!(d.next_message().is_err());
        d.set_piece_count(None);
        assert!(matches!(d.next_message(), Ok(Some(Message::Bitfield(b))) if b.len() == 100));
    }

    #[test]
    fn extended_and_unknown_messages_have_caps() {
        assert_eq!(
            bad_length(&frame(1, id::EXTENDED, 0), None),
            (id::EXTENDED, 1, 2, MAX_EXTENDED_LEN)
        );
        assert_eq!(
            bad_length(&frame(MAX_EXTENDED_LEN + 1, id::EXTENDED, 0), None),
            (id::EXTENDED, MAX_EXTENDED_LEN + 1, 2, MAX_EXTENDED_LEN)
        );
        let at_cap = frame(
            MAX_EXTENDED_LEN,
            id::EXTENDED,
            MAX_EXTENDED_LEN as usize - 1,
        );
        assert!(matches!(
            first(&at_cap, None),
            Ok(Some(Message::Extended { id: 0xAA, payload }))
                if payload.len() == MAX_EXTENDED_LEN as usize - 2
        ));
        assert_eq!(
            bad_length(&frame(MAX_UNKNOWN_LEN + 1, 42, 0), None),
            (42, MAX_UNKNOWN_LEN + 1, 1, MAX_UNKNOWN_LEN)
        );
        let at_cap = frame(MAX_UNKNOWN_LEN, 42, MAX_UNKNOWN_LEN as usize - 1);
        assert!(matches!(
            first(&at_cap, None),
            Ok(Some(Message::Unknown { id: 42, .. }))
        ));
    }

    #[test]
    fn block_requests_of_zero_or_over_16_kib_are_rejected() {
        for message_id in [id::REQUEST, id::CANCEL, id::REJECT_REQUEST] {
            for (length, ok) in [(0u32, false), (1, true), (16384, true), (16385, false)] {
                let mut bytes = vec![0, 0, 0, 13, message_id, 0, 0, 0, 1, 0, 0, 0, 0];
                bytes.extend_from_slice(&length.to_be_bytes());
                let got = first(&bytes, None);
                if ok {
                    assert!(matches!(got, Ok(Some(_))), "{got:?}");
                } else {
                    assert_eq!(
                        got,
                        Err(DecodeError {
                            offset: 0,
                            kind: DecodeErrorKind::InvalidBlockLength {
                                id: message_id,
                                length
                            }
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn errors_say_where_and_are_sticky() {
        let mut d = Decoder::new(Some(8));
        let mut stream = Message::Interested.to_vec().unwrap();
        stream.extend(Message::KeepAlive.to_vec().unwrap());
        stream.extend(frame(2, id::HAVE, 1));
        d.feed(&stream);
        assert_eq!(d.next_message(), Ok(Some(Message::Interested)));
        assert_eq!(d.next_message(), Ok(Some(Message::KeepAlive)));
        let err = d.next_message().unwrap_err();
        assert_eq!(err.offset, 9);
        assert_eq!(
            err.to_string(),
            "peer message at stream byte 9: have message (id 4) has length 2, allowed 5..=5"
        );
        assert_eq!(d.next_message(), Err(err));
        assert_eq!(d.buffered(), 6);
    }

    #[test]
    fn piece_payload_is_a_slice_of_the_receive_buffer() {
        let message = Message::Piece {
            piece: PieceIndex(1),
            offset: 0,
            data: Bytes::from(vec![5u8; 1000]),
        };
        let mut buf = BytesMut::new();
        Message::Have(PieceIndex(0)).encode(&mut buf).unwrap();
        message.encode(&mut buf).unwrap();
        let base = buf.as_ptr() as usize;
        let mut d = Decoder::with_prefix(buf, None);
        assert_eq!(d.next_message(), Ok(Some(Message::Have(PieceIndex(0)))));
        let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
            panic!("piece")
        };
        // No copy: the block sits where it was received, after HAVE (9) and the header (13).
        assert_eq!(data.as_ptr() as usize, base + 9 + PIECE_HEADER_LEN);
        assert_eq!(&data[..], &[5u8; 1000][..]);
    }

    /// A handshake, then messages of every shape, as one stream.
    fn mixed_stream() -> (Handshake, Vec<u8>, Vec<Message>) {
        let hs = Handshake {
            reserved: Reserved::NONE,
            info_hash: InfoHash([3; 20]),
            peer_id: PeerId([4; 20]),
        };
        let messages = vec![
            Message::Bitfield(Bytes::from_static(&[0xF0])),
            Message::Unchoke,
            Message::Piece {
                piece: PieceIndex(2),
                offset: 16384,
                data: Bytes::from((0..3000u32).map(|i| i as u8).collect::<Vec<u8>>()),
            },
            Message::KeepAlive,
            Message::Have(PieceIndex(1)),
            Message::Piece {
                piece: PieceIndex(0),
                offset: 0,
                data: Bytes::from(vec![9u8; 700]),
            },
            Message::Request(BlockRequest::new(PieceIndex(3), 0, 16384)),
            Message::Extended {
                id: 1,
                payload: Bytes::from_static(b"d1:ai1ee"),
            },
        ];
        let mut stream = hs.encode().to_vec();
        for m in &messages {
            stream.extend(m.to_vec().unwrap());
        }
        (hs, stream, messages)
    }

    /// Everything `d` decodes from `reads` given as received buffers, decoding after each.
    fn decode_reads(reads: &[&[u8]]) -> (Handshake, Vec<Message>) {
        let mut d = Decoder::new(Some(4));
        let mut hs = None;
        let mut out = Vec::new();
        for read in reads {
            d.feed_bytes(Bytes::copy_from_slice(read));
            if hs.is_none() {
                match d.decode_handshake().unwrap() {
                    Progress::Done(h) => hs = Some(h),
                    Progress::NeedMore(_) => continue,
                }
            }
            while let Some(m) = d.next_message().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(d.buffered(), 0);
        (hs.unwrap(), out)
    }

    #[test]
    fn received_buffers_decode_alike_in_any_chunking() {
        let (hs, stream, messages) = mixed_stream();
        for size in [1, 2, 3, 5, 7, 13, 64, 68, 69, 100, 1000, 4096, stream.len()] {
            let reads: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(
                decode_reads(&reads),
                (hs, messages.clone()),
                "reads of {size}"
            );
        }
        // Every place one cut can fall.
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                decode_reads(&[a, b]),
                (hs, messages.clone()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_block_fed_whole_after_its_header_is_not_copied() {
        // The simulator hands a session what a peer wrote, cut where its writes were: a
        // header among small messages, then the block as a buffer of its own.
        let block = Bytes::from(vec![7u8; 1000]);
        let piece = Message::Piece {
            piece: PieceIndex(2),
            offset: 16384,
            data: block.clone(),
        };
        let wire = piece.to_vec().unwrap();
        let (header, body) = wire.split_at(PIECE_HEADER_LEN);
        let mut lead = Vec::new();
        Message::Have(PieceIndex(1)).encode(&mut lead).unwrap();
        lead.extend_from_slice(header);
        let mut rest = body.to_vec();
        Message::Unchoke.encode(&mut rest).unwrap();
        let rest = Bytes::from(rest);
        let at = rest.as_ptr() as usize;
        for decode_between in [true, false] {
            let mut d = Decoder::new(None);
            d.feed_bytes(Bytes::from(lead.clone()));
            if decode_between {
                assert_eq!(d.next_message(), Ok(Some(Message::Have(PieceIndex(1)))));
                assert_eq!(d.next_message(), Ok(None));
                assert_eq!(d.bytes_needed(), 1000);
            }
            d.feed_bytes(rest.clone());
            if !decode_between {
                assert_eq!(d.next_message(), Ok(Some(Message::Have(PieceIndex(1)))));
            }
            let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
                panic!("the block")
            };
            assert_eq!(data, block);
            assert_eq!(data.as_ptr() as usize, at, "a slice of the buffer fed");
            assert_eq!(d.next_message(), Ok(Some(Message::Unchoke)));
            assert_eq!(d.next_message(), Ok(None));
            assert_eq!(d.buffered(), 0);
        }
        // A header with the first byte of its block is a cut block, joined as before.
        let mut d = Decoder::new(None);
        d.feed_bytes(Bytes::copy_from_slice(&wire[..PIECE_HEADER_LEN + 1]));
        d.feed_bytes(Bytes::copy_from_slice(&wire[PIECE_HEADER_LEN + 1..]));
        let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
            panic!("the cut block")
        };
        assert_eq!(data, block);
        assert!(d.last_payload_owned());
    }

    #[test]
    fn received_blocks_are_not_copied_unless_cut_by_a_read() {
        let block = |fill: u8| Message::Piece {
            piece: PieceIndex(0),
            offset: 0,
            data: Bytes::from(vec![fill; 1000]),
        };
        let mut stream = Vec::new();
        for fill in 0..3 {
            stream.extend(block(fill).to_vec().unwrap());
        }
        // The second block is cut by the end of the first read.
        let cut = 1013 + 500;
        let first = Bytes::copy_from_slice(&stream[..cut]);
        let second = Bytes::copy_from_slice(&stream[cut..]);
        let (first_at, second_at) = (first.as_ptr() as usize, second.as_ptr() as usize);
        let mut d = Decoder::new(None);
        d.feed_bytes(first);
        let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
            panic!("first block")
        };
        assert_eq!(data.as_ptr() as usize, first_at + PIECE_HEADER_LEN);
        assert!(!d.last_payload_owned(), "a slice of the read");
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.bytes_needed(), 513);
        d.feed_bytes(second);
        let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
            panic!("second block")
        };
        assert_eq!(&data[..], &[1u8; 1000][..], "the cut block is joined");
        assert!(d.last_payload_owned(), "joined in a buffer of its own");
        let Ok(Some(Message::Piece { data, .. })) = d.next_message() else {
            panic!("third block")
        };
        // After the cut block, the second read is decoded in place again.
        assert_eq!(data.as_ptr() as usize, second_at + 513 + PIECE_HEADER_LEN);
        assert!(!d.last_payload_owned());
        assert_eq!(&data[..], &[2u8; 1000][..]);
        assert_eq!(d.next_message(), Ok(None));
    }

    /// A block that comes in many small reads (a uTP packet or a TCP segment each) is
    /// copied once, into a buffer the size of its message, wherever the reads cut it (the
    /// header included). Keeping it then pins nothing else.
    #[test]
    fn a_block_cut_into_many_reads_fills_a_buffer_of_its_own() {
        let block = Message::Piece {
            piece: PieceIndex(1),
            offset: 16384,
            data: Bytes::from((0..16384u32).map(|i| i as u8).collect::<Vec<u8>>()),
        };
        let mut stream = Message::Have(PieceIndex(3)).to_vec().unwrap();
        stream.extend(block.to_vec().unwrap());
        stream.extend(Message::Unchoke.to_vec().unwrap());
        for read in [1, 3, 7, 1000, 1460, 9000] {
            for skew in [0, 1, 2, 4, 6] {
                let mut d = Decoder::new(Some(8));
                let mut got = Vec::new();
                let mut from = 0;
                for to in (skew..stream.len())
                    .step_by(read)
                    .skip(1)
                    .chain([stream.len()])
                {
                    d.feed_bytes(Bytes::copy_from_slice(&stream[from..to]));
                    from = to;
                    while let Some(m) = d.next_message().unwrap() {
                        if let Message::Piece { data, .. } = &m {
                            assert!(d.last_payload_owned(), "read {read}, skew {skew}");
                            assert_eq!(data.len(), 16384);
                        }
                        got.push(m);
                    }
                }
                assert_eq!(got.len(), 3, "read {read}, skew {skew}");
                assert_eq!(got[1], block, "read {read}, skew {skew}");
            }
        }
    }

    /// Bytes fed as slices share one buffer: a block split off it is not its own.
    #[test]
    fn a_block_from_fed_slices_is_not_its_own() {
        let mut stream = Message::Piece {
            piece: PieceIndex(0),
            offset: 0,
            data: Bytes::from(vec![9; 100]),
        }
        .to_vec()
        .unwrap();
        stream.extend(Message::Interested.to_vec().unwrap());
        let mut d = Decoder::new(None);
        d.feed(&stream);
        assert!(matches!(d.next_message(), Ok(Some(Message::Piece { .. }))));
        assert!(!d.last_payload_owned());
        assert_eq!(d.next_message(), Ok(Some(Message::Interested)));
    }

    #[test]
    fn errors_in_received_buffers_say_where() {
        let mut stream = Message::Interested.to_vec().unwrap();
        stream.extend(frame(2, id::HAVE, 1));
        for cut in 0..=stream.len() {
            let mut d = Decoder::new(Some(8));
            d.feed_bytes(Bytes::copy_from_slice(&stream[..cut]));
            let mut got = Vec::new();
            let mut err = None;
            for _ in 0..2 {
                match d.next_message() {
                    Ok(Some(m)) => got.push(m),
                    Ok(None) => break,
                    Err(e) => err = Some(e),
                }
            }
            if err.is_none() {
                d.feed_bytes(Bytes::copy_from_slice(&stream[cut..]));
                loop {
                    match d.next_message() {
                        Ok(Some(m)) => got.push(m),
                        Ok(None) => break,
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
            }
            assert_eq!(got, vec![Message::Interested], "cut at {cut}");
            assert_eq!(err.map(|e| e.offset), Some(5), "cut at {cut}");
        }
    }

    #[test]
    fn handshake_then_messages_in_one_buffer() {
        let hs = Handshake {
            reserved: Reserved::NONE,
            info_hash: InfoHash([3; 20]),
            peer_id: PeerId(*b"-TR4060-abcdefghijkl"),
        };
        let mut stream = hs.encode().to_vec();
        Message::Bitfield(Bytes::from_static(&[0xf0]))
            .encode(&mut stream)
            .unwrap();
        Message::Unchoke.encode(&mut stream).unwrap();

        let mut d = Decoder::new(None);
        d.feed(&stream[..50]);
        // A listener routes by info-hash before the peer id has arrived; nothing is consumed.
        assert_eq!(d.peek_handshake_prefix(), Ok(Progress::Done(hs.prefix())));
        assert_eq!(d.decode_handshake(), Ok(Progress::NeedMore(18)));
        assert_eq!(d.buffered(), 50);
        d.feed(&stream[50..]);
        assert_eq!(d.decode_handshake(), Ok(Progress::Done(hs)));
        d.set_piece_count(Some(4));
        assert_eq!(
            d.next_message(),
            Ok(Some(Message::Bitfield(Bytes::from_static(&[0xf0]))))
        );
        assert_eq!(d.next_message(), Ok(Some(Message::Unchoke)));
        // Offsets count the handshake too.
        let mut d2 = Decoder::new(Some(4));
        let mut bad = hs.encode().to_vec();
        bad.extend(frame(7, id::HAVE, 0));
        d2.feed(&bad);
        assert!(matches!(d2.decode_handshake(), Ok(Progress::Done(_))));
        assert_eq!(d2.next_message().unwrap_err().offset, HANDSHAKE_LEN as u64);
    }

    #[test]
    fn handshake_errors_come_through_the_decoder() {
        let mut d = Decoder::new(None);
        d.feed(b"\x13BitTorrent protoXXX");
        assert!(matches!(
            d.decode_handshake(),
            Err(HandshakeError::ProtocolName { offset: 17, .. })
        ));
        assert!(d.peek_handshake_prefix().is_err());
    }

    #[test]
    fn bytes_needed_tracks_the_current_frame() {
        let mut d = Decoder::new(None);
        assert_eq!(d.bytes_needed(), 4);
        d.feed(&[0, 0]);
        assert_eq!(d.bytes_needed(), 2);
        d.feed(&[0x40, 0x09]);
        assert_eq!(d.bytes_needed(), 1);
        d.feed(&[id::PIECE]);
        assert_eq!(d.bytes_needed(), 16392);
        d.feed(&[0; 100]);
        assert_eq!(d.bytes_needed(), 16292);
        let mut bad = Decoder::new(None);
        bad.feed(&frame(2, id::CHOKE, 0));
        assert_eq!(bad.bytes_needed(), 0);
        let mut ready = Decoder::new(None);
        ready.feed(&[0, 0, 0, 0]);
        assert_eq!(ready.bytes_needed(), 0);
    }

    #[test]
    fn read_buf_has_room_and_its_bytes_are_decoded() {
        let mut d = Decoder::new(None);
        let buf = d.read_buf();
        assert!(buf.capacity() - buf.len() >= READ_CHUNK);
        buf.extend_from_slice(&[0, 0, 0, 1, 2]);
        assert_eq!(d.next_message(), Ok(Some(Message::Interested)));
    }

    #[test]
    fn max_frame_len_follows_the_largest_cap() {
        // Before the torrent is known, a bitfield of the largest torrent is the largest frame;
        // after, the extended cap, unless the torrent's bitfield is larger.
        const { assert!(MAX_BITFIELD_LEN_UNKNOWN > MAX_EXTENDED_LEN) };
        assert_eq!(
            Decoder::new(None).max_frame_len(),
            4 + 1 + MAX_BITFIELD_LEN_UNKNOWN as usize
        );
        assert_eq!(
            Decoder::new(Some(1000)).max_frame_len(),
            4 + MAX_EXTENDED_LEN as usize
        );
        // A huge torrent's bitfield is the largest message.
        assert_eq!(
            Decoder::new(Some(u32::MAX)).max_frame_len(),
            4 + 1 + (u32::MAX as usize).div_ceil(8)
        );
    }
}
