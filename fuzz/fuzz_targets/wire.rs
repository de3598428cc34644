//! The incremental peer-message decoder: nothing panics, and chunking does not matter.
//!
//! The input is a small header, a split plan (see `split.rs`) and the byte stream. The stream
//! is fed once whole and once in the planned chunks, decoding after every feed; both runs
//! give the same messages and the same error. While chunked, the decoder never holds more
//! than `max_frame_len()` bytes of unfinished message plus the chunk just fed. Decoded
//! messages re-encode to exactly the bytes they were decoded from.
#![no_main]

mod split;

use bt_proto::wire::{
    DecodeError, Decoder, HANDSHAKE_LEN, Handshake, HandshakeError, Message, Progress,
};
use libfuzzer_sys::fuzz_target;

/// What one run over the stream produced.
#[derive(Debug, PartialEq)]
struct Run {
    handshake: Option<Result<Handshake, HandshakeError>>,
    messages: Vec<Message>,
    error: Option<DecodeError>,
}

/// Header: flags (bit 0: a handshake comes first; bit 1: the piece count is known), then the
/// piece count as a big-endian u16 (used when known).
struct Setup {
    handshake: bool,
    pieces: Option<u32>,
}

fn setup(data: &[u8]) -> Option<(Setup, &[u8])> {
    let (&[flags, hi, lo], rest) = data.split_first_chunk::<3>()?;
    let setup = Setup {
        handshake: flags & 1 != 0,
        pieces: (flags & 2 != 0).then(|| u32::from(u16::from_be_bytes([hi, lo]))),
    };
    Some((setup, rest))
}

/// Decodes everything available; returns `false` once the stream is finished (an error).
fn drain(decoder: &mut Decoder, setup: &Setup, run: &mut Run) -> bool {
    if setup.handshake && !matches!(run.handshake, Some(Ok(_))) {
        match decoder.decode_handshake() {
            Ok(Progress::NeedMore(n)) => {
                assert!(n > 0);
                return true;
            }
            Ok(Progress::Done(h)) => {
                run.handshake = Some(Ok(h));
                decoder.set_piece_count(setup.pieces);
            }
            Err(e) => {
                run.handshake = Some(Err(e));
                return false;
            }
        }
    }
    loop {
        match decoder.next_message() {
            Ok(Some(m)) => run.messages.push(m),
            Ok(None) => {
                assert!(
                    decoder.buffered() <= decoder.max_frame_len(),
                    "holds {} bytes of an unfinished message, max frame {}",
                    decoder.buffered(),
                    decoder.max_frame_len()
                );
                return true;
            }
            Err(e) => {
                // Nothing is consumed on error: asking again gives the same answer.
                assert_eq!(decoder.next_message(), Err(e));
                run.error = Some(e);
                return false;
            }
        }
    }
}

fn new_decoder(setup: &Setup) -> Decoder {
    // Before the handshake the torrent is unknown; the engine sets the count after it.
    Decoder::new(if setup.handshake { None } else { setup.pieces })
}

fn empty_run() -> Run {
    Run {
        handshake: None,
        messages: Vec::new(),
        error: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((setup, rest)) = setup(data) else {
        return;
    };
    let (lens, stream) = split::plan(rest);

    let mut whole = empty_run();
    let mut decoder = new_decoder(&setup);
    decoder.feed(stream);
    drain(&mut decoder, &setup, &mut whole);

    let mut chunked = empty_run();
    let mut decoder = new_decoder(&setup);
    for chunk in split::chunks(stream, &lens) {
        let held = decoder.buffered();
        decoder.feed(chunk);
        assert_eq!(decoder.buffered(), held + chunk.len());
        assert!(decoder.buffered() <= decoder.max_frame_len() + chunk.len());
        if !drain(&mut decoder, &setup, &mut chunked) {
            break;
        }
    }
    assert_eq!(chunked, whole, "chunking changed the result");

    // Re-encoding reproduces the stream, message for message.
    let start = match whole.handshake {
        Some(Ok(h)) => {
            assert_eq!(stream.get(..HANDSHAKE_LEN), Some(h.encode().as_slice()));
            HANDSHAKE_LEN
        }
        _ => 0,
    };
    let mut encoded = Vec::new();
    for m in &whole.messages {
        let bytes = m
            .to_vec()
            .unwrap_or_else(|e| panic!("decoded {m:?} does not encode: {e}"));
        assert_eq!(bytes.len(), m.encoded_len());
        let mut fresh = Decoder::new(setup.pieces);
        fresh.feed(&bytes);
        assert_eq!(fresh.next_message(), Ok(Some(m.clone())));
        assert_eq!(fresh.buffered(), 0);
        encoded.extend_from_slice(&bytes);
    }
    assert_eq!(
        stream.get(start..start + encoded.len()),
        Some(encoded.as_slice()),
        "re-encoded messages differ from the stream"
    );
    if let Some(e) = whole.error {
        assert_eq!(e.offset, (start + encoded.len()) as u64, "error offset");
    }
});
