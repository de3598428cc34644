//! How one announce ends, whatever the transport: the tracker's reply, or an
//! [`AnnounceError`] saying why there is none. Also the reading of an HTTP response to an
//! announce ([`read_http_reply`]), which decides between a reply, a redirect to follow and a
//! refusal, so an adapter only moves bytes.
//!
//! ```
//! use bt_proto::tracker::http::Response;
//! use bt_proto::tracker::{AnnounceError, Url, read_http_reply};
//! let url = Url::parse("http://t.example/announce").unwrap();
//! let refused = Response {
//!     status: 403,
//!     location: None,
//!     body: b"d14:failure reason12:unregisterede".to_vec(),
//! };
//! let error = read_http_reply(refused, &url, 0).unwrap_err();
//! assert_eq!(error.to_string(), "tracker refused: unregistered");
//! assert!(matches!(error, AnnounceError::Refused(_)));
//! ```

use std::net::IpAddr;
use std::time::Duration;

use super::announce::{AnnounceResponse, ReplyError, TrackerFailure};
use super::http::{HttpError, Outcome, Response};
use super::reach;
use super::udp::ClientError;
use super::url::{Url, UrlError};
use crate::IoFailure;

/// Why an announce got no usable reply. `host` fields name the tracker as `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The tracker URL cannot be used.
    #[error(transparent)]
    Url(UrlError),
    /// An `https://` tracker, in a build without the `https` feature.
    #[error("https trackers need the `https` feature")]
    HttpsNeedsFeature,
    /// The tracker's host name did not resolve to an address.
    #[error("resolve {host}: {error}")]
    Resolve {
        /// The tracker.
        host: String,
        /// Why.
        error: IoFailure,
    },
    /// No connection could be made to any of the tracker's addresses (or, for UDP, no socket
    /// set up for it).
    #[error("connect to {host}: {error}")]
    Connect {
        /// The tracker.
        host: String,
        /// Why (for the last address tried).
        error: IoFailure,
    },
    /// TLS failed: the handshake, the certificate, or the connection under it.
    #[error("TLS with {host}: {error}")]
    Tls {
        /// The tracker.
        host: String,
        /// Why.
        error: IoFailure,
    },
    /// Sending or receiving failed once connected.
    #[error("{host}: {error}")]
    Io {
        /// The tracker.
        host: String,
        /// Why.
        error: IoFailure,
    },
    /// No reply in this long (the adapter's deadline for one announce).
    #[error("no reply within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The HTTP response could not be read, or its redirects not followed.
    #[error(transparent)]
    Http(HttpError),
    /// An HTTP status that is neither success nor redirect, with no `failure reason`.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The tracker refused: a `failure reason` (HTTP) or an error packet (UDP).
    #[error(transparent)]
    Refused(TrackerFailure),
    /// The HTTP reply body is not a valid announce reply.
    #[error(transparent)]
    Reply(ReplyError),
    /// The UDP exchange failed (a malformed reply, or no answer to any retransmit).
    #[error(transparent)]
    Udp(ClientError),
    /// An HTTP(S) tracker on a local address, asked at a path other than `/announce`
    /// ([`reach`]).
    #[error("{host} is a local address ({addr}): a tracker there is only asked at /announce")]
    LocalPath {
        /// The tracker.
        host: String,
        /// The local address its host resolved to.
        addr: IpAddr,
    },
    /// A tracker on a global address redirected us to one on a local address
    /// ([`reach`]).
    #[error("redirect from {from} to {to} refused: {addr} is a local address")]
    RedirectToLocal {
        /// The tracker that redirected.
        from: String,
        /// Where it redirected to.
        to: String,
        /// The local address `to` resolved to.
        addr: IpAddr,
    },
    /// An `https` tracker redirected us to plain `http`, which would send the request (a
    /// passkey in it) unencrypted ([`reach`]).
    #[error("redirect from https://{from} to http://{to} refused: it would drop encryption")]
    InsecureRedirect {
        /// The tracker that redirected.
        from: String,
        /// Where it redirected to.
        to: String,
    },
}

impl From<UrlError> for AnnounceError {
    fn from(e: UrlError) -> Self {
        AnnounceError::Url(e)
    }
}

impl From<HttpError> for AnnounceError {
    fn from(e: HttpError) -> Self {
        AnnounceError::Http(e)
    }
}

impl From<ReplyError> for AnnounceError {
    /// A `failure reason` is a refusal; anything else is a malformed reply.
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::Failure(f) => AnnounceError::Refused(f),
            other => AnnounceError::Reply(other),
        }
    }
}

impl From<ClientError> for AnnounceError {
    /// A UDP tracker's error packet is a refusal, as a `failure reason` is over HTTP.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Tracker(reason) => AnnounceError::Refused(TrackerFailure { reason }),
            other => AnnounceError::Udp(other),
        }
    }
}

/// What an HTTP response to an announce asks of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpReply {
    /// The tracker answered.
    Announced(AnnounceResponse),
    /// Send the same request to this URL instead (a redirect, resolved).
    Redirect(Url),
}

/// Reads the response to an announce sent to `request_url` after `redirects_followed`
/// redirects ([`Response::outcome`]): a 2xx body is the reply; a redirect is the URL to ask
/// instead, unless it leaves `https` for `http` ([`reach::check_redirect`]); any other status is [`AnnounceError::Refused`] when its body holds a bencoded
/// `failure reason` (trackers explain a refusal so, whatever status they send it with), else
/// [`AnnounceError::Status`]. A `failure reason` in a 2xx body is a refusal too.
pub fn read_http_reply(
    response: Response,
    request_url: &Url,
    redirects_followed: u8,
) -> Result<HttpReply, AnnounceError> {
    match response.outcome(request_url, redirects_followed)? {
        Outcome::Body(body) => Ok(HttpReply::Announced(AnnounceResponse::decode(&body)?)),
        Outcome::Redirect(next) => {
            reach::check_redirect(request_url, &next)?;
            Ok(HttpReply::Redirect(next))
        }
        Outcome::Status { status, body } => Err(match AnnounceResponse::decode(&body) {
            Err(ReplyError::Failure(f)) => AnnounceError::Refused(f),
            _ => AnnounceError::Status(status),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::udp::UdpError;

    fn url() -> Url {
        Url::parse("http://t.example/announce").unwrap()
    }

    fn response(status: u16, location: Option<&str>, body: &[u8]) -> Response {
        Response {
            status,
            location: location.map(str::to_owned),
            body: body.to_vec(),
        }
    }

    fn refused(reason: &str) -> AnnounceError {
        AnnounceError::Refused(TrackerFailure {
            reason: reason.into(),
        })
    }

    #[test]
    fn a_success_body_is_the_reply_or_a_refusal() {
        let ok = read_http_reply(response(200, None, b"d8:intervali60ee"), &url(), 0);
        assert!(matches!(ok, Ok(HttpReply::Announced(r)) if r.interval == Duration::from_secs(60)));
        let no = read_http_reply(response(200, None, b"d14:failure reason2:noe"), &url(), 0);
        assert_eq!(no, Err(refused("no")));
        let bad = read_http_reply(response(200, None, b"<html>"), &url(), 0);
        assert!(matches!(
            bad,
            Err(AnnounceError::Reply(ReplyError::Bencode(_)))
        ));
    }

    #[test]
    fn another_status_is_a_refusal_when_it_says_why() {
        let why = read_http_reply(response(403, None, b"d14:failure reason3:bane"), &url(), 0);
        assert_eq!(why, Err(refused("ban")));
        let html = read_http_reply(response(404, None, b"<h1>Not Found</h1>"), &url(), 0);
        assert_eq!(html, Err(AnnounceError::Status(404)));
        assert_eq!(html.unwrap_err().to_string(), "HTTP status 404");
    }

    #[test]
    fn redirects_are_followed_until_the_limit() {
        let moved = response(302, Some("/v2"), b"");
        assert_eq!(
            read_http_reply(moved.clone(), &url(), 0),
            Ok(HttpReply::Redirect(
                Url::parse("http://t.example/v2").unwrap()
            ))
        );
        assert_eq!(
            read_http_reply(moved, &url(), crate::tracker::http::MAX_REDIRECTS),
            Err(AnnounceError::Http(HttpError::TooManyRedirects))
        );
    }

    #[test]
    fn an_https_tracker_may_not_redirect_to_http() {
        let secure = Url::parse("https://t.example/announce?passkey=secret").unwrap();
        let down = response(301, Some("http://t.example/announce?passkey=secret"), b"");
        assert_eq!(
            read_http_reply(down, &secure, 0),
            Err(AnnounceError::InsecureRedirect {
                from: "t.example".into(),
                to: "t.example".into(),
            })
        );
        let relative = response(302, Some("/v2?passkey=secret"), b"");
        assert_eq!(
            read_http_reply(relative, &secure, 0),
            Ok(HttpReply::Redirect(
                Url::parse("https://t.example/v2?passkey=secret").unwrap()
            ))
        );
        let up = response(302, Some("https://t.example/announce"), b"");
        assert!(matches!(
            read_http_reply(up, &url(), 0),
            Ok(HttpReply::Redirect(u)) if u.scheme == crate::tracker::Scheme::Https
        ));
    }

    #[test]
    fn a_udp_error_packet_is_a_refusal() {
        assert_eq!(
            AnnounceError::from(ClientError::Tracker("gone".into())),
            refused("gone")
        );
        let bad = ClientError::Protocol(UdpError::BadProtocolId { found: 1 });
        assert_eq!(AnnounceError::from(bad.clone()), AnnounceError::Udp(bad));
    }
}
