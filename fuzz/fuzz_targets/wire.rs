//! The incremental peer-message decoder: nothing panics, and neither chunking nor the way
//! bytes are handed over matters.
//!
//! The input is a small header, a split plan (see `split.rs`) and the byte stream. The stream
//! is fed once whole, then in the planned chunks four times: as slices (`feed`), as received
//! buffers decoded in place (`feed_bytes`, the engine's path), appended to the decoder's own
//! buffer (`read_buf`, the path of a socket read straight into it), and mixing the three
//! chunk by chunk. Decoding follows every feed; every run gives the same messages and the
//! same error. While chunked, the decoder never holds more than `max_frame_len()` bytes of
//! unfinished message plus the chunk just fed. Decoded messages re-encode to exactly the
//! bytes they were decoded from.
#![no_main]

mod split;

use bt_proto::wire::{
    DecodeError, Decoder, HANDSHAKE_LEN, Handshake, HandshakeError, Message, Progress,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// How a chunk reaches the decoder.
#[derive(Clone, Copy, Debug)]
enum Feed {
    /// `Decoder::feed`: a slice, copied in.
    Slice,
    /// `Decoder::feed_bytes`: a received buffer, decoded where it lies.
    Bytes,
    /// `Decoder::read_buf`: appended to the decoder's own buffer, as a socket read would.
    ReadBuf,
    /// The three in turn, chunk by chunk, starting at `Slice`, `Bytes` or `ReadBuf`
    /// (the header's bits 2 and 3).
    Mixed(usize),
}

impl Feed {
    /// The way the `i`-th chunk is fed.
    fn nth(self, i: usize) -> Feed {
        match self {
            Feed::Mixed(start) => [Feed::Slice, Feed::Bytes, Feed::ReadBuf][(start + i) % 3],
            one => one,
        }
    }
}

/// Hands `chunk` to `decoder` the way `how` says.
fn feed(decoder: &mut Decoder, how: Feed, chunk: &[u8]) {
    match how {
        Feed::Slice | Feed::Mixed(_) => decoder.feed(chunk),
        Feed::Bytes => decoder.feed_bytes(Bytes::copy_from_slice(chunk)),
        Feed::ReadBuf => decoder.read_buf().extend_from_slice(chunk),
    }
}

/// What one run over the stream produced.
#[derive(Debug, PartialEq)]
struct Run {
    handshake: Option<Result<Handshake, HandshakeError>>,
    messages: Vec<Message>,
    error: Option<DecodeError>,
}

/// Header: flags (bit 0: a handshake comes first; bit 1: the piece count is known; bits 2
/// and 3: where the mixed run starts), then the piece count as a big-endian u16 (used when
/// known).
struct Setup {
    handshake: bool,
    pieces: Option<u32>,
    mixed_start: usize,
}

fn setup(data: &[u8]) -> Option<(Setup, &[u8])> {
    let (&[flags, hi, lo], rest) = data.split_first_chunk::<3>()?;
    let setup = Setup {
        handshake: flags & 1 != 0,
        pieces: (flags & 2 != 0).then(|| u32::from(u16::from_be_bytes([hi, lo]))),
        mixed_start: usize::from(flags >> 2 & 3),
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

/// Feeds `stream` in the planned chunks the way `how` says, decoding after each.
fn chunked_run(setup: &Setup, stream: &[u8], lens: &[usize], how: Feed) -> Run {
    let mut run = empty_run();
    let mut decoder = new_decoder(setup);
    for (i, chunk) in split::chunks(stream, lens).enumerate() {
        let held = decoder.buffered();
        feed(&mut decoder, how.nth(i), chunk);
        assert_eq!(decoder.buffered(), held + chunk.len(), "{how:?}");
        assert!(decoder.buffered() <= decoder.max_frame_len() + chunk.len());
        if !drain(&mut decoder, setup, &mut run) {
            break;
        }
    }
    run
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

    let ways = [
        Feed::Slice,
        Feed::Bytes,
        Feed::ReadBuf,
        Feed::Mixed(setup.mixed_start % 3),
    ];
    for how in ways {
        let chunked = chunked_run(&setup, stream, &lens, how);
        assert_eq!(chunked, whole, "chunking changed the result ({how:?})");
    }

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
