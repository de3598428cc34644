//! HTTP tracker codecs: nothing panics, chunking does not change what the response reader
//! returns, and accepted replies, queries and URLs round-trip through their encoders.
//!
//! The input is a split plan (see `split.rs`) then the bytes. Those bytes are read as an
//! HTTP response (whole and in the planned chunks), decoded as announce and scrape bodies,
//! and, as lossy UTF-8, parsed as an announce query, a scrape query and a URL.
#![no_main]

mod split;

use bt_proto::tracker::announce::AnnounceRequest;
use bt_proto::tracker::http::{HttpError, Progress, Response, ResponseReader};
use bt_proto::tracker::scrape::parse_scrape_query;
use bt_proto::tracker::url::{MAX_URL_LEN, Url};
use bt_proto::tracker::{AnnounceResponse, ScrapeResponse};
use libfuzzer_sys::fuzz_target;

/// Feeds the chunks until the response is complete or an error; then end of stream.
fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Result<Response, HttpError> {
    let mut reader = ResponseReader::new();
    for chunk in chunks {
        if let Progress::Done(response) = reader.feed(chunk)? {
            // A finished reader refuses more input rather than misreading it.
            assert_eq!(reader.feed(b"x"), Err(HttpError::Finished));
            assert_eq!(reader.finish(), Err(HttpError::Finished));
            return Ok(response);
        }
    }
    reader.finish()
}

fn bodies(body: &[u8]) {
    if let Ok(reply) = AnnounceResponse::decode(body) {
        let again = AnnounceResponse::decode(&reply.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&reply),
            "announce reply does not round-trip"
        );
    }
    if let Ok(reply) = ScrapeResponse::decode(body) {
        assert_eq!(ScrapeResponse::decode(&reply.encode()), Ok(reply));
    }
}

fuzz_target!(|data: &[u8]| {
    let (lens, stream) = split::plan(data);

    let whole = read(std::iter::once(stream));
    let chunked = read(split::chunks(stream, &lens));
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "chunking changed the response"),
        (Err(_), Err(_)) => {}
        _ => panic!("chunking changed the outcome: {whole:?} vs {chunked:?}"),
    }
    if let Ok(response) = &whole {
        bodies(&response.body);
    }
    bodies(stream);

    let text = String::from_utf8_lossy(stream);
    if let Ok(request) = AnnounceRequest::from_query(&text) {
        let query = request.query();
        assert_eq!(
            AnnounceRequest::from_query(&query),
            Ok(request),
            "{query:?}"
        );
    }
    let _ = parse_scrape_query(&text);
    if let Ok(url) = Url::parse(&text) {
        let written = url.to_string();
        if written.len() <= MAX_URL_LEN {
            assert_eq!(Url::parse(&written).as_ref(), Ok(&url), "{written:?}");
        }
        let request = url.get_request("fuzz");
        assert!(request.ends_with(b"\r\n\r\n"));
        // A URL can never inject a header: the request has exactly the four we write.
        let lines = request.split(|&b| b == b'\n').count();
        assert_eq!(lines, 7, "{:?}", String::from_utf8_lossy(&request));
        if let Ok(joined) = url.join(&text) {
            let written = joined.to_string();
            if written.len() <= MAX_URL_LEN {
                assert_eq!(Url::parse(&written).as_ref(), Ok(&joined), "{written:?}");
            }
        }
    }
});
