//! `read_http_reply`, the reading of an HTTP tracker's response to an announce: nothing
//! panics, and each outcome is the one its status, `Location` and body call for: a 2xx body
//! that decodes is the reply (and re-encodes to a reply equal to it), a redirect is followed
//! below the limit unless it leaves https for http, a `failure reason` is a refusal whatever
//! the status, and anything else is the status.
//!
//! The input is the number of redirects already followed, a selector of the request URL,
//! the status (two bytes), the length of the `Location` (one byte, 0: none), the location,
//! then the body.
#![no_main]

use bt_proto::tracker::announce::ReplyError;
use bt_proto::tracker::http::{HttpError, MAX_REDIRECTS, Response};
use bt_proto::tracker::{AnnounceError, AnnounceResponse, HttpReply, Scheme, Url, read_http_reply};
use libfuzzer_sys::fuzz_target;

/// The URLs an announce may have been sent to.
const REQUEST_URLS: [&str; 4] = [
    "http://t.example/announce?passkey=x&info_hash=%AB",
    "https://t.example:8443/a/b/announce?passkey=y",
    "http://[::1]:6969/announce",
    "https://10.0.0.1/announce",
];

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[redirects, selector, hi, lo, location_len], rest)) = data.split_first_chunk::<5>()
    else {
        return;
    };
    let redirects = redirects % (MAX_REDIRECTS + 2);
    let request = Url::parse(REQUEST_URLS[usize::from(selector) % REQUEST_URLS.len()]).unwrap();
    let status = u16::from_be_bytes([hi, lo]) % 1000;
    let (location, body) = rest.split_at(usize::from(location_len).min(rest.len()));
    let location = (location_len > 0).then(|| String::from_utf8_lossy(location).into_owned());
    let response = Response {
        status,
        location: location.clone(),
        body: body.to_vec(),
    };
    let decoded = AnnounceResponse::decode(body);
    match read_http_reply(response, &request, redirects) {
        Ok(HttpReply::Announced(reply)) => {
            assert!((200..300).contains(&status));
            assert_eq!(decoded.as_ref(), Ok(&reply));
            assert_eq!(AnnounceResponse::decode(&reply.encode()), Ok(reply));
        }
        Ok(HttpReply::Redirect(next)) => {
            assert!(is_redirect(status) && redirects < MAX_REDIRECTS);
            assert!(next.scheme.is_http());
            assert!(request.scheme != Scheme::Https || next.scheme == Scheme::Https);
            let location = location.unwrap();
            assert_eq!(request.join(&location), Ok(next));
        }
        Err(AnnounceError::Refused(failure)) => {
            assert!(!is_redirect(status));
            assert_eq!(decoded, Err(ReplyError::Failure(failure)));
        }
        Err(AnnounceError::Reply(error)) => {
            assert!((200..300).contains(&status));
            assert_eq!(decoded, Err(error));
        }
        Err(AnnounceError::Status(s)) => {
            assert_eq!(s, status);
            assert!(!(200..300).contains(&status) && !is_redirect(status));
            assert!(!matches!(decoded, Err(ReplyError::Failure(_))));
        }
        Err(AnnounceError::InsecureRedirect { from, to }) => {
            assert!(is_redirect(status) && redirects < MAX_REDIRECTS);
            assert_eq!((request.scheme, from), (Scheme::Https, request.authority()));
            let next = request.join(&location.unwrap()).unwrap();
            assert_eq!((next.scheme, to), (Scheme::Http, next.authority()));
        }
        Err(AnnounceError::Http(HttpError::TooManyRedirects)) => {
            assert!(is_redirect(status) && redirects >= MAX_REDIRECTS);
        }
        Err(AnnounceError::Http(HttpError::MissingLocation(s))) => {
            assert!(is_redirect(s) && s == status);
            assert!(location.is_none_or(|l| l.trim().is_empty()));
        }
        Err(AnnounceError::Http(HttpError::BadLocation { location: bad, .. })) => {
            assert!(is_redirect(status));
            assert_eq!(Some(bad), location);
        }
        Err(other) => panic!("read_http_reply gave {other:?}"),
    }
});
