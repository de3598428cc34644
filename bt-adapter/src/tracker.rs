//! Announces over the network: HTTP through `bt_proto::tracker::http` (the bytes) and the
//! runtime (DNS, the socket, the timeout), HTTPS the same over rustls (the `https` feature),
//! UDP through `bt_proto::tracker::udp::UdpTrackerClient` (its retransmit schedule) and the
//! runtime's UDP socket. Each announce is one task; its result, a reply or a typed
//! [`AnnounceError`], goes back to the engine as `Input::Announced`. Every HTTP(S) request
//! connects only to addresses that `bt_proto::tracker::reach` allows: a local tracker only
//! at `/announce`, no redirect from a global address into the local network or from
//! `https` to `http`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bt_proto::IoFailure;
use bt_proto::rng::Rng;
use bt_proto::tracker::http::{MAX_REDIRECTS, Progress, Response, ResponseReader};
use bt_proto::tracker::reach::{self, Hop};
use bt_proto::tracker::udp::{
    self, Action, AddressFamily, ClientError, UdpError, UdpJob, UdpTrackerClient,
};
use bt_proto::tracker::url::{Scheme, Url, UrlError};
use bt_proto::tracker::{AnnounceRequest, AnnounceResponse, HttpReply, read_http_reply};
use bytes::BytesMut;

use crate::runtime::{Runtime, timeout_at};

pub use bt_proto::tracker::AnnounceError;

/// Time for one HTTP request (DNS, connect, request, whole reply); trackers answer in well
/// under a second when they are up.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time for one UDP announce, retransmits included. BEP 15's full schedule runs for hours;
/// the engine has its own retry schedule and other trackers to try, so one announce stops
/// after the first retransmits (at 0, 15 and 45 seconds).
pub const UDP_DEADLINE: Duration = Duration::from_secs(60);

/// Largest datagram read from a UDP tracker: a reply with 200 IPv6 peers is under 4 KiB.
const UDP_RECV_BUF: usize = 8 * 1024;

/// What HTTP(S) announces of a session share.
#[derive(Clone)]
pub(crate) struct HttpClient {
    pub(crate) user_agent: String,
    #[cfg(feature = "https")]
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// Announces `request` to `url` and returns the reply or why there is none.
pub(crate) async fn announce<R: Runtime>(
    client: Arc<HttpClient>,
    url: &str,
    request: &AnnounceRequest,
    seed: u64,
) -> Result<AnnounceResponse, AnnounceError> {
    let parsed = Url::parse(url)?;
    match parsed.scheme {
        Scheme::Udp => udp_announce::<R>(&parsed, request, seed).await,
        Scheme::Http | Scheme::Https => {
            let deadline = R::now() + HTTP_TIMEOUT;
            timeout_at::<R, _>(deadline, http_announce::<R>(&client, url, request))
                .await
                .unwrap_or(Err(AnnounceError::Timeout(HTTP_TIMEOUT)))
        }
    }
}

/// The tracker's addresses, as the runtime resolves its host; none is an error.
async fn resolve<R: Runtime>(url: &Url) -> Result<Vec<SocketAddr>, AnnounceError> {
    let addrs =
        R::resolve(url.host.clone(), url.port)
            .await
            .map_err(|e| AnnounceError::Resolve {
                host: url.authority(),
                error: e.into(),
            })?;
    if addrs.is_empty() {
        return Err(no_address(url));
    }
    Ok(addrs)
}

/// The tracker's host resolved to no address.
fn no_address(url: &Url) -> AnnounceError {
    AnnounceError::Resolve {
        host: url.authority(),
        error: IoFailure::new(io::ErrorKind::NotFound, "no address"),
    }
}

async fn http_announce<R: Runtime>(
    client: &HttpClient,
    url: &str,
    request: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    let mut url = Url::parse(&request.to_url(url))?;
    let mut redirects = 0u8;
    // The request that redirected us, for the SSRF rules of the next one.
    let mut redirected_by = None;
    loop {
        let (response, hop) = http_get::<R>(client, &url, redirected_by.as_ref()).await?;
        match read_http_reply(response, &url, redirects)? {
            HttpReply::Announced(reply) => return Ok(reply),
            HttpReply::Redirect(next) => {
                url = next;
                redirects = redirects.saturating_add(1).min(MAX_REDIRECTS);
                redirected_by = Some(hop);
            }
        }
    }
}

/// One HTTP exchange's connection: plain TCP, or TLS over it.
enum Conn<R: Runtime> {
    Plain(R::Reader, R::Writer),
    #[cfg(feature = "https")]
    Tls(Box<crate::tls::TlsStream<R>>),
}

impl<R: Runtime> Conn<R> {
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(_, wr) => R::write_all(wr, data).await,
            #[cfg(feature = "https")]
            Conn::Tls(t) => t.send(data).await,
        }
    }

    async fn recv(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Conn::Plain(rd, _) => R::read_buf(rd, buf).await,
            #[cfg(feature = "https")]
            Conn::Tls(t) => t.recv(buf).await,
        }
    }
}

/// Opens the connection for a request to `url`: TCP to the first address that accepts among
/// those the SSRF rules allow ([`reach::check_address`]), then TLS for `https`. Returns the
/// connection and the request's [`Hop`] for a redirect to be judged by.
async fn open<R: Runtime>(
    client: &HttpClient,
    url: &Url,
    redirected_by: Option<&Hop>,
) -> Result<(Conn<R>, Hop), AnnounceError> {
    match url.scheme {
        Scheme::Http => {}
        Scheme::Https if cfg!(feature = "https") => {}
        Scheme::Https => return Err(AnnounceError::HttpsNeedsFeature),
        // The dispatch sends udp:// elsewhere, and redirects stay within HTTP.
        Scheme::Udp => return Err(UrlError::UnsupportedScheme("udp".into()).into()),
    }
    let mut last = None;
    let mut refused = None;
    for addr in resolve::<R>(url).await? {
        let hop = match reach::check_address(url, addr.ip(), redirected_by) {
            Ok(hop) => hop,
            Err(e) => {
                refused.get_or_insert(e);
                continue;
            }
        };
        match R::connect(addr).await {
            Ok(stream) => {
                let (rd, wr) = R::split(stream);
                #[cfg(feature = "https")]
                if url.scheme == Scheme::Https {
                    let tls = crate::tls::TlsStream::new(rd, wr, client.tls.clone(), &url.host)
                        .map_err(|e| AnnounceError::Tls {
                            host: url.authority(),
                            error: e.into(),
                        })?;
                    return Ok((Conn::Tls(Box::new(tls)), hop));
                }
                #[cfg(not(feature = "https"))]
                let _ = client;
                return Ok((Conn::Plain(rd, wr), hop));
            }
            Err(e) => last = Some(e),
        }
    }
    // A failed connection says more than a refused address: it was the one allowed.
    Err(match (last, refused) {
        (Some(e), _) => AnnounceError::Connect {
            host: url.authority(),
            error: e.into(),
        },
        (None, Some(refused)) => refused,
        (None, None) => no_address(url),
    })
}

/// Sends `GET url` and reads the whole response; also returns the request's [`Hop`].
async fn http_get<R: Runtime>(
    client: &HttpClient,
    url: &Url,
    redirected_by: Option<&Hop>,
) -> Result<(Response, Hop), AnnounceError> {
    let (mut conn, hop) = open::<R>(client, url, redirected_by).await?;
    let io_err = |e: io::Error| {
        let (host, error) = (url.authority(), e.into());
        match url.scheme {
            Scheme::Https => AnnounceError::Tls { host, error },
            Scheme::Http | Scheme::Udp => AnnounceError::Io { host, error },
        }
    };
    conn.send(&url.get_request(&client.user_agent))
        .await
        .map_err(io_err)?;
    let mut reader = ResponseReader::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let n = conn.recv(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            return Ok((reader.finish()?, hop));
        }
        if let Progress::Done(r) = reader.feed(&buf)? {
            return Ok((r, hop));
        }
    }
}

async fn udp_announce<R: Runtime>(
    url: &Url,
    request: &AnnounceRequest,
    seed: u64,
) -> Result<AnnounceResponse, AnnounceError> {
    let host = url.authority();
    let io_err = |e: io::Error| AnnounceError::Io {
        host: host.clone(),
        error: e.into(),
    };
    // The first address only: the retransmit schedule, not other addresses, covers loss.
    let addr = resolve::<R>(url)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| no_address(url))?;
    let (local, family): (SocketAddr, _) = if addr.is_ipv4() {
        (([0, 0, 0, 0], 0).into(), AddressFamily::V4)
    } else {
        (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            AddressFamily::V6,
        )
    };
    let socket = R::udp_connect(local, addr)
        .await
        .map_err(|e| AnnounceError::Connect {
            host: host.clone(),
            error: e.into(),
        })?;
    let mut rng = Rng::seed_from_u64(seed);
    let mut client = UdpTrackerClient::new(family);
    let start = R::now();
    let deadline = start + UDP_DEADLINE;
    client.start(UdpJob::Announce(request.clone()), start, &mut rng)?;
    let mut buf = vec![0u8; UDP_RECV_BUF];
    loop {
        while let Some(packet) = client.poll_transmit() {
            R::udp_send(&socket, &packet).await.map_err(io_err)?;
        }
        match client.poll_event() {
            Some(udp::Event::Announced(reply)) => return Ok(reply.into()),
            Some(udp::Event::Failed(e)) => return Err(e.into()),
            Some(udp::Event::Scraped(_)) => {
                return Err(AnnounceError::Udp(ClientError::Protocol(
                    UdpError::UnexpectedAction {
                        expected: Action::Announce,
                        found: Action::Scrape,
                    },
                )));
            }
            None => {}
        }
        let wake = client.poll_timeout().map_or(deadline, |t| t.min(deadline));
        match timeout_at::<R, _>(wake, R::udp_recv(&socket, &mut buf)).await {
            Some(r) => {
                let n = r.map_err(io_err)?;
                let packet = buf.get(..n).unwrap_or_default();
                client.handle_datagram(packet, R::now(), &mut rng);
            }
            None => {
                if R::now() >= deadline {
                    return Err(AnnounceError::Timeout(UDP_DEADLINE));
                }
                client.handle_timeout(R::now(), &mut rng);
            }
        }
    }
}
