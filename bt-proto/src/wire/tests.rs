//! Property tests across the encoder and the decoder.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::PieceIndex;

fn payload(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn block_request() -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), 1..=MAX_BLOCK_LEN)
        .prop_map(|(p, o, l)| BlockRequest::new(PieceIndex(p), o, l))
}

fn unknown_id() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("unknown ids only", |i| message_name(*i) == "unknown")
}

/// Any message the encoder accepts; bitfields of 1..=64 bytes (the decoder has no piece count).
fn message() -> impl Strategy<Value = Message> {
    let index = any::<u32>().prop_map(PieceIndex);
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        index.clone().prop_map(Message::Have),
        vec(any::<u8>(), 1..=64).prop_map(|b| Message::Bitfield(Bytes::from(b))),
        block_request().prop_map(Message::Request),
        (
            index.clone(),
            any::<u32>(),
            vec(any::<u8>(), 1..=MAX_BLOCK_LEN as usize)
        )
            .prop_map(|(piece, offset, data)| Message::Piece {
                piece,
                offset,
                data: Bytes::from(data)
            }),
        block_request().prop_map(Message::Cancel),
        any::<u16>().prop_map(Message::Port),
        index.clone().prop_map(Message::Suggest),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block_request().prop_map(Message::RejectRequest),
        index.prop_map(Message::AllowedFast),
        (any::<u8>(), payload(300)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (unknown_id(), payload(300)).prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

/// Feeds `stream` in the given chunk sizes (cycled), draining after every chunk. Chunks go in
/// alternately through `feed` and through `read_buf`, the two ways an adapter hands bytes over.
fn decode_chunked(stream: &[u8], chunks: &[usize]) -> (Vec<Message>, Option<DecodeError>, Decoder) {
    let mut d = Decoder::new(None);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    let mut via_read_buf = false;
    while !rest.is_empty() {
        let n = sizes
            .next()
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if via_read_buf {
            d.read_buf().extend_from_slice(chunk);
        } else {
            d.feed(chunk);
        }
        via_read_buf = !via_read_buf;
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e), d),
            }
        }
    }
    (out, None, d)
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(m in message()) {
        let bytes = m.to_vec().unwrap();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        let mut d = Decoder::new(None);
        d.feed(&bytes);
        prop_assert_eq!(d.next_message(), Ok(Some(m.clone())));
        prop_assert_eq!(d.buffered(), 0);
        prop_assert_eq!(d.next_message(), Ok(None));
        if let Message::Piece { piece, offset, data } = &m {
            let header = encode_piece_header(*piece, *offset, data.len()).unwrap();
            prop_assert_eq!(&bytes[..PIECE_HEADER_LEN], &header[..]);
        }
    }

    #[test]
    fn any_split_of_a_stream_gives_the_same_messages(
        messages in vec(message(), 0..12),
        chunks in vec(1usize..40_000, 1..8),
    ) {
        let mut stream = Vec::new();
        for m in &messages {
            m.encode(&mut stream).unwrap();
        }
        let (one_shot, err, _) = decode_chunked(&stream, &[stream.len().max(1)]);
        prop_assert!(err.is_none());
        prop_assert_eq!(&one_shot, &messages);
        let (chunked, err, d) = decode_chunked(&stream, &chunks);
        prop_assert!(err.is_none());
        prop_assert_eq!(&chunked, &messages);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn bitfields_of_the_torrents_size_round_trip(pieces in 1u32..5000, seed in any::<u8>()) {
        let mut field = crate::Bitfield::new(pieces);
        for i in (0..pieces).filter(|i| (i ^ u32::from(seed)) % 3 == 0) {
            field.set(PieceIndex(i), true);
        }
        let m = Message::Bitfield(Bytes::copy_from_slice(field.as_bytes()));
        let mut d = Decoder::new(Some(pieces));
        d.feed(&m.to_vec().unwrap());
        let Ok(Some(Message::Bitfield(got))) = d.next_message() else {
            return Err(TestCaseError::fail("bitfield expected"));
        };
        prop_assert_eq!(crate::Bitfield::from_bytes(&got, pieces).unwrap(), field);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in vec(any::<u8>(), 0..2000),
        chunks in vec(1usize..300, 1..8),
        pieces in proptest::option::of(0u32..10_000),
    ) {
        let mut d = Decoder::new(pieces);
        let mut rest = &bytes[..];
        let mut sizes = chunks.iter().cycle();
        let mut fed = 0u64;
        'feed: while !rest.is_empty() {
            let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            d.feed(chunk);
            fed += n as u64;
            loop {
                match d.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(e.offset < fed);
                        // The offending frame was judged from at most its first 5 bytes
                        // plus what was fed with them; nothing of it was consumed.
                        prop_assert_eq!(d.next_message(), Err(e));
                        break 'feed;
                    }
                }
                prop_assert!(d.buffered() <= d.max_frame_len());
            }
            // Whatever waits for more bytes is part of one allowed frame.
            prop_assert!(d.buffered() < d.max_frame_len());
        }
    }

    #[test]
    fn huge_length_prefixes_are_refused_from_five_bytes(
        length in (MAX_EXTENDED_LEN + 1)..=u32::MAX,
        message_id in any::<u8>(),
    ) {
        let mut d = Decoder::new(None);
        d.feed(&length.to_be_bytes());
        prop_assert_eq!(d.next_message(), Ok(None));
        d.feed(&[message_id]);
        let refused = matches!(
            d.next_message(),
            Err(DecodeError { offset: 0, kind: DecodeErrorKind::BadLength { .. } })
        );
        prop_assert!(refused);
    }
}
