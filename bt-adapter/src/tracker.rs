//! Announces over the network: HTTP through `bt_proto::tracker::http` (the bytes) and the
//! runtime (DNS, the socket, the timeout), UDP through `bt_proto::tracker::udp::UdpTrackerClient`
//! (its retransmit schedule) and the runtime's UDP socket. Each announce is one task; its result goes
//! back to the engine as `Input::Announced`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::rng::Rng;
use bt_proto::tracker::http::{MAX_REDIRECTS, Outcome, Progress, ResponseReader, Scheme, Url};
use bt_proto::tracker::udp::{self, AddressFamily, Job, UdpTrackerClient};
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

/// Announces `request` to `url` and returns the reply or a sentence saying why there is none.
pub(crate) async fn announce<R: Runtime>(
    url: &str,
    request: &AnnounceRequest,
    user_agent: &str,
    seed: u64,
) -> Result<AnnounceResponse, String> {
    if url.starts_with("udp://") {
        udp_announce::<R>(url, request, seed).await
    } else {
        let deadline = Instant::now() + HTTP_TIMEOUT;
        match timeout_at::<R, _>(deadline, http_announce::<R>(url, request, user_agent)).await {
            Some(r) => r,
            None => Err(format!("no reply within {} s", HTTP_TIMEOUT.as_secs())),
        }
    }
}

async fn http_announce<R: Runtime>(
    url: &str,
    request: &AnnounceRequest,
    user_agent: &str,
) -> Result<AnnounceResponse, String> {
    let mut url = Url::parse(&request.to_url(url)).map_err(|e| e.to_string())?;
    let mut redirects = 0u8;
    loop {
        if url.scheme == Scheme::Https {
            return Err("https trackers are not supported by this build".into());
        }
        let response = http_get::<R>(&url, user_agent).await?;
        match response
            .outcome(&url, redirects)
            .map_err(|e| e.to_string())?
        {
            Outcome::Body(body) => {
                return AnnounceResponse::decode(&body).map_err(|e| e.to_string());
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
                });
            }
        }
    }
}

async fn http_get<R: Runtime>(
    url: &Url,
    user_agent: &str,
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
    let (mut rd, mut wr) = R::split(stream);
    R::write_all(&mut wr, &url.get_request(user_agent))
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = ResponseReader::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let n = R::read_buf(&mut rd, &mut buf)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return reader.finish().map_err(|e| e.to_string());
        }
        if let Progress::Done(r) = reader.feed(&buf).map_err(|e| e.to_string())? {
            return Ok(r);
        }
    }
}

/// `udp://host:port[/path]` → host and port.
fn udp_host_port(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("udp://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad UDP tracker URL {url}"))?;
        (host, after.strip_prefix(':').unwrap_or_default())
    } else {
        authority
            .rsplit_once(':')
            .ok_or_else(|| format!("UDP tracker URL {url} has no port"))?
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port in UDP tracker URL {url}"))?;
    if host.is_empty() {
        return Err(format!("UDP tracker URL {url} has no host"));
    }
    Ok((host.to_string(), port))
}

async fn udp_announce<R: Runtime>(
    url: &str,
    request: &AnnounceRequest,
    seed: u64,
) -> Result<AnnounceResponse, String> {
    let (host, port) = udp_host_port(url)?;
    let addr = R::resolve(host.clone(), port)
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
    let start = Instant::now();
    let deadline = start + UDP_DEADLINE;
    client
        .start(Job::Announce(request.clone()), start, &mut rng)
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
                client.handle_datagram(packet, Instant::now(), &mut rng);
            }
            None => {
                if Instant::now() >= deadline {
                    return Err(format!("no reply within {} s", UDP_DEADLINE.as_secs()));
                }
                client.handle_timeout(Instant::now(), &mut rng);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_urls() {
        assert_eq!(
            udp_host_port("udp://tracker.example:1337/announce").unwrap(),
            ("tracker.example".to_string(), 1337)
        );
        assert_eq!(
            udp_host_port("udp://[::1]:80").unwrap(),
            ("::1".to_string(), 80)
        );
        assert!(udp_host_port("udp://tracker.example/announce").is_err());
        assert!(udp_host_port("udp://:80").is_err());
        assert!(udp_host_port("udp://h:99999").is_err());
    }
}
