//! Sans-IO HTTP/1.1 for tracker requests: the `GET` request bytes of a [`Url`], and an
//! incremental response reader (head by `httparse`, body by `Content-Length`, chunked, or
//! close-delimited). The adapter owns the socket, DNS and TLS; this module owns the bytes.
//!
//! Redirects are not followed here: [`Response::outcome`] reports them as
//! [`Outcome::Redirect`] with the `Location` resolved against the request URL, and refuses
//! after [`MAX_REDIRECTS`].
//!
//! ```
//! use bt_proto::tracker::http::{Outcome, Progress, ResponseReader};
//! use bt_proto::tracker::url::Url;
//!
//! let url = Url::parse("http://tracker.example:6969/announce?x=1").unwrap();
//! let request = url.get_request("bt/0.1");
//! assert!(request.starts_with(b"GET /announce?x=1 HTTP/1.1\r\nHost: tracker.example:6969\r\n"));
//!
//! let mut reader = ResponseReader::new();
//! assert!(matches!(reader.feed(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), Progress::NeedMore));
//! let Progress::Done(response) = reader.feed(b"ngth: 2\r\n\r\nde").unwrap() else { panic!() };
//! assert_eq!(response.outcome(&url, 0).unwrap(), Outcome::Body(b"de".to_vec()));
//! ```

use super::url::{Url, UrlError};

/// Redirects a caller follows for one request before giving up: enough for an `http` to
/// `https` hop plus a load balancer or two, few enough that a redirect loop ends quickly.
pub const MAX_REDIRECTS: u8 = 5;

/// Largest response head (status line and headers). Tracker heads are a few hundred bytes;
/// 16 KiB is twice what common servers accept for a request head.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// Most headers in a response head; trackers send around ten.
pub const MAX_HEADERS: usize = 64;

/// Largest response body. An announce reply with 200 compact peers is about 1.3 KiB and a
/// scrape of a few hundred torrents a few tens of KiB; 2 MiB leaves room for big scrapes
/// while bounding what a hostile server can make us buffer.
pub const MAX_BODY_LEN: usize = 2 * 1024 * 1024;

/// Longest chunk-size line (size, extensions, CRLF). Sizes need at most 16 hex digits;
/// extensions are never used by trackers.
pub const MAX_CHUNK_LINE_LEN: usize = 1024;

impl Url {
    /// The request bytes (for an `http` or `https` URL) for `GET` over HTTP/1.1 with `Connection: close` (one request per
    /// connection keeps the reader simple and trackers expect it) and
    /// `Accept-Encoding: identity` (we do not decompress). Controls in `user_agent` are dropped.
    pub fn get_request(&self, user_agent: &str) -> Vec<u8> {
        let ua: String = user_agent
            .chars()
            .filter(|c| *c == ' ' || c.is_ascii_graphic())
            .collect();
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {ua}\r\nAccept-Encoding: identity\r\n\
             Connection: close\r\n\r\n",
            self.path_and_query,
            self.authority()
        )
        .into_bytes()
    }
}

/// A response that cannot be read, or an outcome the caller must not act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The head is longer than [`MAX_HEAD_LEN`].
    #[error("response head longer than {MAX_HEAD_LEN} bytes")]
    HeadTooLarge,
    /// The status line or a header is malformed (or there are more than [`MAX_HEADERS`]).
    #[error("malformed response head: {0}")]
    BadHead(httparse::Error),
    /// A `Content-Length` that is not a number, or two that disagree.
    #[error("invalid Content-Length {0:?}")]
    BadContentLength(String),
    /// A transfer coding other than `chunked`.
    #[error("unsupported Transfer-Encoding {0:?}")]
    UnsupportedTransferEncoding(String),
    /// A content coding other than `identity` (we asked for `identity`).
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedContentEncoding(String),
    /// The body is longer than [`MAX_BODY_LEN`].
    #[error("response body longer than {MAX_BODY_LEN} bytes")]
    BodyTooLarge,
    /// A malformed chunk-size line, or one longer than [`MAX_CHUNK_LINE_LEN`].
    #[error("bad chunk size line at byte {offset}")]
    BadChunkSize {
        /// Offset in the response stream.
        offset: usize,
    },
    /// A chunk's data not followed by CRLF.
    #[error("chunk data not followed by CRLF at byte {offset}")]
    BadChunkEnd {
        /// Offset in the response stream.
        offset: usize,
    },
    /// Trailer lines longer than [`MAX_HEAD_LEN`] in all.
    #[error("chunked trailers longer than {MAX_HEAD_LEN} bytes")]
    TrailersTooLarge,
    /// The connection closed before the response was complete.
    #[error("connection closed at byte {offset} while reading the {during}")]
    UnexpectedEof {
        /// Bytes received in all.
        offset: usize,
        /// Which part was incomplete.
        during: &'static str,
    },
    /// The reader was used after it returned the response.
    #[error("response already complete")]
    Finished,
    /// A redirect status without a usable `Location`.
    #[error("redirect {0} without Location")]
    MissingLocation(u16),
    /// A `Location` that cannot be followed.
    #[error("bad redirect Location {location:?}: {error}")]
    BadLocation {
        /// The header's value.
        location: String,
        /// Why it cannot be used.
        error: UrlError,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

/// A complete response: what a tracker client needs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// What a response means for the request that got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the body to parse (announce or scrape reply).
    Body(Vec<u8>),
    /// 301, 302, 303, 307 or 308: request this URL instead (same `GET`).
    Redirect(Url),
    /// Any other status. The body may still hold a bencoded `failure reason`.
    Status {
        /// The status code.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
}

impl Response {
    /// Interprets the response to a request for `request_url`, after `redirects_followed`
    /// redirects for the same announce. A redirect is resolved against `request_url`; the
    /// redirect after [`MAX_REDIRECTS`] is [`HttpError::TooManyRedirects`].
    pub fn outcome(self, request_url: &Url, redirects_followed: u8) -> Result<Outcome, HttpError> {
        match self.status {
            200..=299 => Ok(Outcome::Body(self.body)),
            301 | 302 | 303 | 307 | 308 => {
                if redirects_followed >= MAX_REDIRECTS {
                    return Err(HttpError::TooManyRedirects);
                }
                let location = self
                    .location
                    .filter(|l| !l.trim().is_empty())
                    .ok_or(HttpError::MissingLocation(self.status))?;
                match request_url.join(&location) {
                    Ok(url) if url.scheme.is_http() => Ok(Outcome::Redirect(url)),
                    // A `udp://` URL is a tracker too, but not one a `GET` can be sent to.
                    Ok(url) => Err(HttpError::BadLocation {
                        location,
                        error: UrlError::UnsupportedScheme(url.scheme.as_str().to_owned()),
                    }),
                    Err(error) => Err(HttpError::BadLocation { location, error }),
                }
            }
            status => Ok(Outcome::Status {
                status,
                body: self.body,
            }),
        }
    }
}

/// Whether the reader needs more bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Feed more bytes (or call [`ResponseReader::finish`] at end of stream).
    NeedMore,
    /// The response is complete; bytes after it are ignored.
    Done(Response),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Length { remaining: usize },
    ChunkSize,
    ChunkData { remaining: usize },
    ChunkEnd,
    Trailers { seen: usize },
    UntilClose,
    Done,
}

/// What one step of [`ResponseReader::feed`] gives: `Some` progress to return, or `None`
/// when the state moved on and reading goes on with the bytes left.
type Step = Result<Option<Progress>, HttpError>;

/// Reads one HTTP/1.x response from bytes fed as they arrive.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
    /// Received bytes not yet consumed.
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`, for error messages.
    consumed: usize,
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

/// What the head says about the body.
struct Head {
    status: u16,
    location: Option<String>,
    framing: State,
}

fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_LEN {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(e) => return Err(HttpError::BadHead(e)),
    };
    if len > MAX_HEAD_LEN {
        return Err(HttpError::HeadTooLarge);
    }
    let status = response.code.unwrap_or(0);
    let mut location = None;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut other_coding = None;
    for h in response.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("location") {
            location = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // Repeated (or comma-joined) values must all agree (RFC 9112 section 6.3).
            for v in value.split(',').map(str::trim) {
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|_| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| HttpError::BadContentLength(value.to_owned()))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HttpError::BadContentLength(value.to_owned()));
                }
                content_length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if coding.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else if !coding.eq_ignore_ascii_case("identity") {
                    other_coding = Some(value.to_owned());
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-encoding")
            && !value.is_empty()
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(HttpError::UnsupportedContentEncoding(value.to_owned()));
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        State::Done
    } else if let Some(coding) = other_coding {
        return Err(HttpError::UnsupportedTransferEncoding(coding));
    } else if chunked {
        // Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3).
        State::ChunkSize
    } else if let Some(n) = content_length {
        if n > MAX_BODY_LEN {
            return Err(HttpError::BodyTooLarge);
        }
        State::Length { remaining: n }
    } else {
        State::UntilClose
    };
    Ok(Some((
        len,
        Head {
            status,
            location,
            framing,
        },
    )))
}

impl ResponseReader {
    /// A reader waiting for the status line.
    pub fn new() -> Self {
        ResponseReader {
            state: State::Head,
            buf: Vec::new(),
            consumed: 0,
            status: 0,
            location: None,
            body: Vec::new(),
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.consumed += n;
    }

    fn take_body(&mut self, n: usize) -> Result<(), HttpError> {
        if self.body.len() + n > MAX_BODY_LEN {
            return Err(HttpError::BodyTooLarge);
        }
        let n = n.min(self.buf.len());
        self.body.extend(self.buf.drain(..n));
        self.consumed += n;
        Ok(())
    }

    fn response(&mut self) -> Response {
        self.state = State::Done;
        self.buf = Vec::new();
        Response {
            status: self.status,
            location: self.location.take(),
            body: std::mem::take(&mut self.body),
        }
    }

    fn done(&mut self) -> Progress {
        Progress::Done(self.response())
    }

    /// Feeds bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, HttpError> {
        if self.state == State::Done {
            return Err(HttpError::Finished);
        }
        self.buf.extend_from_slice(data);
        loop {
            let step = match self.state {
                State::Done => return Err(HttpError::Finished),
                State::Head => self.read_head()?,
                State::Length { remaining } => self.read_length(remaining)?,
                State::ChunkSize => self.read_chunk_size()?,
                State::ChunkData { remaining } => self.read_chunk_data(remaining)?,
                State::ChunkEnd => self.read_chunk_end()?,
                State::Trailers { seen } => self.read_trailer(seen)?,
                State::UntilClose => {
                    let n = self.buf.len();
                    self.take_body(n)?;
                    Some(Progress::NeedMore)
                }
            };
            if let Some(progress) = step {
                return Ok(progress);
            }
        }
    }

    /// The status line and headers; an interim (1xx) response is skipped.
    fn read_head(&mut self) -> Step {
        let Some((len, head)) = parse_head(&self.buf)? else {
            return Ok(Some(Progress::NeedMore));
        };
        self.consume(len);
        if (100..=199).contains(&head.status) {
            // An interim response (100 Continue): the real one follows.
            return Ok(None);
        }
        self.status = head.status;
        self.location = head.location;
        self.state = head.framing;
        Ok((self.state == State::Done).then(|| self.done()))
    }

    /// Body bytes up to a `Content-Length`.
    fn read_length(&mut self, remaining: usize) -> Step {
        let n = remaining.min(self.buf.len());
        self.take_body(n)?;
        if n == remaining {
            return Ok(Some(self.done()));
        }
        self.state = State::Length {
            remaining: remaining - n,
        };
        Ok(Some(Progress::NeedMore))
    }

    /// A chunk-size line (at most [`MAX_CHUNK_LINE_LEN`]); size 0 starts the trailers.
    fn read_chunk_size(&mut self) -> Step {
        let bad_size = HttpError::BadChunkSize {
            offset: self.consumed,
        };
        match httparse::parse_chunk_size(&self.buf) {
            Ok(httparse::Status::Complete((len, size))) => {
                if len > MAX_CHUNK_LINE_LEN {
                    return Err(bad_size);
                }
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| self.body.len().saturating_add(*s) <= MAX_BODY_LEN)
                    .ok_or(HttpError::BodyTooLarge)?;
                self.consume(len);
                self.state = if size == 0 {
                    State::Trailers { seen: 0 }
                } else {
                    State::ChunkData { remaining: size }
                };
                Ok(None)
            }
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_CHUNK_LINE_LEN => Err(bad_size),
            Ok(httparse::Status::Partial) => Ok(Some(Progress::NeedMore)),
            Err(httparse::InvalidChunkSize) => Err(bad_size),
        }
    }

    /// A chunk's data.
    fn read_chunk_data(&mut self, remaining: usize) -> Step {
        let n = remaining.min(self.buf.len());
        self.take_body(n)?;
        if n < remaining {
            self.state = State::ChunkData {
                remaining: remaining - n,
            };
            return Ok(Some(Progress::NeedMore));
        }
        self.state = State::ChunkEnd;
        Ok(None)
    }

    /// The line end after a chunk's data: CRLF, or a bare LF from lenient servers.
    fn read_chunk_end(&mut self) -> Step {
        let len = match self.buf.as_slice() {
            [b'\n', ..] => 1,
            [b'\r', b'\n', ..] => 2,
            [] | [b'\r'] => return Ok(Some(Progress::NeedMore)),
            _ => {
                return Err(HttpError::BadChunkEnd {
                    offset: self.consumed,
                });
            }
        };
        self.consume(len);
        self.state = State::ChunkSize;
        Ok(None)
    }

    /// One trailer line (ignored, at most [`MAX_HEAD_LEN`] in all); an empty one ends the
    /// response.
    fn read_trailer(&mut self, seen: usize) -> Step {
        let Some(eol) = self.buf.iter().position(|&b| b == b'\n') else {
            if seen + self.buf.len() > MAX_HEAD_LEN {
                return Err(HttpError::TrailersTooLarge);
            }
            return Ok(Some(Progress::NeedMore));
        };
        let line_len = eol + 1;
        let empty = matches!(self.buf.get(..eol), Some([] | [b'\r']));
        self.consume(line_len);
        if empty {
            return Ok(Some(self.done()));
        }
        let seen = seen + line_len;
        if seen > MAX_HEAD_LEN {
            return Err(HttpError::TrailersTooLarge);
        }
        self.state = State::Trailers { seen };
        Ok(None)
    }

    /// Signals end of stream: completes a close-delimited body; anything else unfinished is
    /// [`HttpError::UnexpectedEof`].
    pub fn finish(&mut self) -> Result<Response, HttpError> {
        let during = match self.state {
            State::UntilClose => return Ok(self.response()),
            State::Done => return Err(HttpError::Finished),
            State::Head => "head",
            State::Length { .. } => "body",
            State::ChunkSize | State::ChunkData { .. } | State::ChunkEnd => "chunked body",
            State::Trailers { .. } => "trailers",
        };
        Err(HttpError::UnexpectedEof {
            offset: self.consumed + self.buf.len(),
            during,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// Feeds `parts` one by one; returns the response once done (or the first error).
    fn read(parts: &[&[u8]]) -> Result<Option<Response>, HttpError> {
        let mut r = ResponseReader::new();
        for p in parts {
            if let Progress::Done(resp) = r.feed(p)? {
                return Ok(Some(resp));
            }
        }
        Ok(None)
    }

    #[test]
    fn request_target_cannot_inject_headers() {
        let u = url("http://t/a\r\nEvil: 1 é");
        assert_eq!(u.path_and_query, "/a%0D%0AEvil:%201%20%C3%A9");
        let req = String::from_utf8(u.get_request("ua\r\nX: y")).unwrap();
        assert_eq!(
            req,
            "GET /a%0D%0AEvil:%201%20%C3%A9 HTTP/1.1\r\nHost: t\r\nUser-Agent: uaX: y\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn content_length_body_split_anywhere() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
        for cut in 0..full.len() {
            let (a, b) = full.split_at(cut);
            let r = read(&[a, b]).unwrap().unwrap();
            assert_eq!(
                (r.status, r.body.as_slice()),
                (200, &b"hello"[..]),
                "cut {cut}"
            );
        }
        // Bytes after the body are ignored.
        let r = read(&[b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nab"]).unwrap();
        assert_eq!(r.unwrap().body, b"a");
    }

    #[test]
    fn chunked_body_split_across_feeds() {
        let full: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n\
              4;ext=1\r\nd8:i\r\nA\r\nntervali60\r\n2\r\nee\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let want = b"d8:intervali60ee";
        // Every two-way split, and byte-by-byte.
        for cut in 0..full.len() {
            let (a, b) = full.split_at(cut);
            let r = read(&[a, b]).unwrap().unwrap();
            assert_eq!(r.body, want, "cut {cut}");
        }
        let mut reader = ResponseReader::new();
        let mut done = None;
        for byte in full {
            if let Progress::Done(r) = reader.feed(std::slice::from_ref(byte)).unwrap() {
                done = Some(r);
            }
        }
        assert_eq!(done.unwrap().body, want);
        assert_eq!(reader.feed(b"x"), Err(HttpError::Finished));
    }

    #[test]
    fn chunked_errors() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let off = head.len();
        assert_eq!(
            read(&[head, b"zz\r\n"]),
            Err(HttpError::BadChunkSize { offset: off })
        );
        assert_eq!(
            read(&[head, b"2\r\nabX"]),
            Err(HttpError::BadChunkEnd { offset: off + 5 })
        );
        let long_ext = format!("1;{}", "e".repeat(MAX_CHUNK_LINE_LEN));
        assert_eq!(
            read(&[head, long_ext.as_bytes()]),
            Err(HttpError::BadChunkSize { offset: off })
        );
        assert_eq!(read(&[head, b"FFFFFFFF\r\n"]), Err(HttpError::BodyTooLarge));
        assert_eq!(
            read(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"]),
            Err(HttpError::UnsupportedTransferEncoding(
                "gzip, chunked".into()
            ))
        );
        let mut r = ResponseReader::new();
        r.feed(head).unwrap();
        r.feed(b"3\r\nab").unwrap();
        assert_eq!(
            r.finish(),
            Err(HttpError::UnexpectedEof {
                offset: off + 5,
                during: "chunked body"
            })
        );
    }

    #[test]
    fn close_delimited_body_needs_eof() {
        let mut r = ResponseReader::new();
        assert_eq!(
            r.feed(b"HTTP/1.0 200 OK\r\n\r\nd8:interv"),
            Ok(Progress::NeedMore)
        );
        assert_eq!(r.feed(b"ali5ee"), Ok(Progress::NeedMore));
        assert_eq!(r.finish().unwrap().body, b"d8:intervali5ee");
        assert_eq!(r.finish(), Err(HttpError::Finished));

        let mut r = ResponseReader::new();
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        assert_eq!(
            r.finish(),
            Err(HttpError::UnexpectedEof {
                offset: 42,
                during: "body"
            })
        );
        assert_eq!(
            ResponseReader::new().finish(),
            Err(HttpError::UnexpectedEof {
                offset: 0,
                during: "head"
            })
        );
    }

    #[test]
    fn caps_and_bad_heads() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_LEN + 1
        );
        assert_eq!(read(&[big.as_bytes()]), Err(HttpError::BodyTooLarge));

        let mut r = ResponseReader::new();
        r.feed(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut result = Ok(Progress::NeedMore);
        for _ in 0..=(MAX_BODY_LEN / chunk.len()) {
            result = r.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::BodyTooLarge));

        let mut r = ResponseReader::new();
        r.feed(b"HTTP/1.1 200 OK\r\nX-Filler: ").unwrap();
        let filler = [b'a'; 1024];
        let mut result = Ok(Progress::NeedMore);
        for _ in 0..=(MAX_HEAD_LEN / filler.len()) {
            result = r.feed(&filler);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::HeadTooLarge));

        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            read(&[b"HTTP/1.1 200 OK\r\n", many.as_bytes()]),
            Err(HttpError::BadHead(httparse::Error::TooManyHeaders))
        );

        assert!(matches!(
            read(&[b"HTTQ/1.1 200 OK\r\n\r\n"]),
            Err(HttpError::BadHead(_))
        ));
        assert_eq!(
            read(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"]),
            Err(HttpError::BadContentLength("1, 2".into()))
        );
        assert_eq!(
            read(&[b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"]),
            Err(HttpError::BadContentLength("-1".into()))
        );
        assert_eq!(
            read(&[b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n"]),
            Err(HttpError::UnsupportedContentEncoding("gzip".into()))
        );
        let r = read(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"]);
        assert_eq!(r.unwrap().unwrap().body, b"ok");
    }

    #[test]
    fn interim_and_bodyless_statuses() {
        let r = read(&[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"]);
        assert_eq!(r.unwrap().unwrap().status, 204);
    }

    #[test]
    fn redirects_are_reported_and_limited() {
        let base = url("http://t.example/announce?info_hash=x");
        for status in [301u16, 302, 303, 307, 308] {
            let head = format!(
                "HTTP/1.1 {status} Moved\r\nLocation: /v2/announce?a=b\r\nContent-Length: 0\r\n\r\n"
            );
            let resp = read(&[head.as_bytes()]).unwrap().unwrap();
            assert_eq!(
                resp.clone().outcome(&base, 0),
                Ok(Outcome::Redirect(url("http://t.example/v2/announce?a=b")))
            );
            assert_eq!(
                resp.outcome(&base, MAX_REDIRECTS),
                Err(HttpError::TooManyRedirects)
            );
        }
        let resp = read(&[b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"])
            .unwrap()
            .unwrap();
        assert_eq!(resp.outcome(&base, 0), Err(HttpError::MissingLocation(302)));
        // A UDP tracker's URL parses, but a GET cannot follow it there.
        for (location, scheme) in [("gopher://x/", "gopher"), ("udp://x:1/", "udp")] {
            let head =
                format!("HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            let resp = read(&[head.as_bytes()]).unwrap().unwrap();
            assert_eq!(
                resp.outcome(&base, 0),
                Err(HttpError::BadLocation {
                    location: location.into(),
                    error: UrlError::UnsupportedScheme(scheme.into())
                })
            );
        }
        let resp = read(&[b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop"])
            .unwrap()
            .unwrap();
        assert_eq!(
            resp.outcome(&base, 0),
            Ok(Outcome::Status {
                status: 404,
                body: b"nop".to_vec()
            })
        );
    }

    proptest! {
        #[test]
        fn reader_never_panics(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        ) {
            let mut r = ResponseReader::new();
            for p in &parts {
                if r.feed(p).is_err() { break; }
            }
            let _ = r.finish();
        }

        #[test]
        fn reader_never_panics_after_valid_head(
            chunked in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..200),
            split in 0usize..200,
        ) {
            let head: &[u8] = if chunked {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
            };
            let mut r = ResponseReader::new();
            let (a, b) = tail.split_at(split.min(tail.len()));
            let _ = r.feed(head).and_then(|_| r.feed(a)).and_then(|_| r.feed(b));
            let _ = r.finish();
        }

        #[test]
        fn chunked_round_trip(body in proptest::collection::vec(any::<u8>(), 0..500),
                              sizes in proptest::collection::vec(1usize..50, 1..20),
                              cut in 0usize..700) {
            // Encode `body` in chunks of the given sizes, then read it back split at `cut`.
            let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let mut rest = body.as_slice();
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = tail;
                i += 1;
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let (a, b) = wire.split_at(cut.min(wire.len()));
            let got = read(&[a, b]).unwrap().unwrap();
            prop_assert_eq!(got.body, body);
        }
    }
}
