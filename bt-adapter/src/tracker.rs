//! Announces over the network: HTTP through `bt_proto::tracker::http` (the bytes) and the
//! runtime (DNS, the socket, the timeout), HTTPS the same over rustls (the `https` feature),
//! UDP through `bt_proto::tracker::udp::UdpTrackerClient`
//! (its retransmit schedule) and the runtime's UDP socket. Each announce is one task; its result goes
//! back to the engine as `Input::Announced`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bt_proto::rng::Rng;
use bt_proto::tracker::http::{MAX_REDIRECTS, Outcome, Progress, ResponseReader};
use bt_proto::tracker::udp::{self, AddressFamily, UdpJob, UdpTrackerClient};
use bt_proto::tracker::url::{Scheme, Url, UrlError};
use bt_proto::tracker::{AnnounceRequest, AnnounceResponse};
use bytes::BytesMut;

use crate::runtime::{Runtime, timeout_at};

/// Time for one HTTP request (DNS, connect, request, whole reply); trackers answer in well
/// under a second when they are up.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time for one UDP announce, retransmits included. BEP 15's full schedule runs for hours;
/// the engine has its own retry schedule and other trackers to try, so one announce stops
/// after the first retransmits (at 0, 15 and 45 seconds).
pub const UDP_DEADLINE: Duration = Duration::from_secs(60);

/// Largest datagram read from a UDP tracker: a reply with 200 IPv6 peers is under 4 KiB.
const UDP_RECV_BUF: usize = 8 * 1024;

/// Why an announce got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// An `https://` tracker, in a build without the `https` feature.
    #[error("https trackers need the `https` feature")]
    HttpsNeedsFeature,
    /// Anything else: the network, the tracker's reply, its refusal.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for AnnounceError {
    fn from(s: String) -> Self {
        AnnounceError::Failed(s)
    }
}

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
    let parsed = Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme {
        Scheme::Udp => Ok(udp_announce::<R>(&parsed, request, seed).await?),
        Scheme::Http | Scheme::Https => {
            let deadline = R::now() + HTTP_TIMEOUT;
            match timeout_at::<R, _>(deadline, http_announce::<R>(&client, url, request)).await {
                Some(r) => r,
                None => Err(format!("no reply within {} s", HTTP_TIMEOUT.as_secs()).into()),
            }
        }
    }
}

async fn http_announce<R: Runtime>(
    client: &HttpClient,
    url: &str,
    request: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    let mut url = Url::parse(&request.to_url(url)).map_err(|e| e.to_string())?;
    let mut redirects = 0u8;
    loop {
        if url.scheme == Scheme::Https && cfg!(not(feature = "https")) {
            return Err(AnnounceError::HttpsNeedsFeature);
        }
        let response = http_get::<R>(client, &url).await?;
        match response
            .outcome(&url, redirects)
            .map_err(|e| e.to_string())?
        {
            Outcome::Body(body) => {
                return Ok(AnnounceResponse::decode(&body).map_err(|e| e.to_string())?);
            }
            Outcome::Redirect(next) => {
                url = next;
                redirects = redirects.saturating_add(1).min(MAX_REDIRECTS);
            }
            Outcome::Status { status, body } => {
                // A tracker may explain a refusal in a bencoded `failure reason`.
                return Err(match AnnounceResponse::decode(&body) {
                    Err(e @ bt_proto::tracker::announce::ReplyError::Failure(_)) => e.to_string(),
                    _ => format!("HTTP status {status}"),
                }
                .into());
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
    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(_, wr) => R::write_all(wr, data).await,
            #[cfg(feature = "https")]
            Conn::Tls(t) => t.send(data).await,
        }
    }

    async fn recv(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Conn::Plain(rd, _) => R::read_buf(rd, buf).await,
            #[cfg(feature = "https")]
            Conn::Tls(t) => t.recv(buf).await,
        }
    }
}

async fn http_get<R: Runtime>(
    client: &HttpClient,
    url: &Url,
) -> Result<bt_proto::tracker::http::Response, String> {
    let connect_err = |e: std::io::Error| format!("connect to {}: {e}", url.authority());
    let addrs = R::resolve(url.host.clone(), url.port)
        .await
        .map_err(connect_err)?;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        match R::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or_else(|| connect_err(last))?;
    let (rd, wr) = R::split(stream);
    let mut conn = match url.scheme {
        Scheme::Http => Conn::<R>::Plain(rd, wr),
        #[cfg(feature = "https")]
        Scheme::Https => Conn::Tls(Box::new(
            crate::tls::TlsStream::new(rd, wr, client.tls.clone(), &url.host)
                .map_err(|e| format!("TLS with {}: {e}", url.authority()))?,
        )),
        #[cfg(not(feature = "https"))]
        Scheme::Https => return Err(AnnounceError::HttpsNeedsFeature.to_string()),
        // Not reached: only HTTP(S) URLs are announced to over HTTP, and redirects stay there.
        Scheme::Udp => return Err(UrlError::UnsupportedScheme("udp".into()).to_string()),
    };
    let io_err = |e: std::io::Error| match url.scheme {
        Scheme::Https => format!("TLS with {}: {e}", url.authority()),
        Scheme::Http | Scheme::Udp => e.to_string(),
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
            return reader.finish().map_err(|e| e.to_string());
        }
        if let Progress::Done(r) = reader.feed(&buf).map_err(|e| e.to_string())? {
            return Ok(r);
        }
    }
}

async fn udp_announce<R: Runtime>(
    url: &Url,
    request: &AnnounceRequest,
    seed: u64,
) -> Result<AnnounceResponse, String> {
    let host = &url.host;
    let addr = R::resolve(host.clone(), url.port)
        .await
        .map_err(|e| format!("resolve {host}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
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
        .map_err(|e| e.to_string())?;
    let mut rng = Rng::seed_from_u64(seed);
    let mut client = UdpTrackerClient::new(family);
    let start = R::now();
    let deadline = start + UDP_DEADLINE;
    client
        .start(UdpJob::Announce(request.clone()), start, &mut rng)
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; UDP_RECV_BUF];
    loop {
        while let Some(packet) = client.poll_transmit() {
            R::udp_send(&socket, &packet)
                .await
                .map_err(|e| e.to_string())?;
        }
        match client.poll_event() {
            Some(udp::client::Event::Announced(reply)) => return Ok(reply.into()),
            Some(udp::client::Event::Failed(e)) => return Err(e.to_string()),
            Some(udp::client::Event::Scraped(_)) => return Err("unexpected scrape reply".into()),
            None => {}
        }
        let wake = client.poll_timeout().map_or(deadline, |t| t.min(deadline));
        match timeout_at::<R, _>(wake, R::udp_recv(&socket, &mut buf)).await {
            Some(r) => {
                let n = r.map_err(|e| e.to_string())?;
                let packet = buf.get(..n).unwrap_or_default();
                client.handle_datagram(packet, R::now(), &mut rng);
            }
            None => {
                if R::now() >= deadline {
                    return Err(format!("no reply within {} s", UDP_DEADLINE.as_secs()));
                }
                client.handle_timeout(R::now(), &mut rng);
            }
        }
    }
}
