//! A small tracker for tests, HTTP, UDP and HTTPS, built on bt-proto's tracker codecs: it
//! remembers every announcing peer (source address, announced port) per torrent in the
//! simulator's [`TrackerRegistry`] and answers each announce with the others.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_proto::sim::tracker::TrackerRegistry;
use bt_proto::tracker::udp::{self, CompactPeers, ConnectResponse, ConnectionId, Request};
use bt_proto::tracker::{AnnounceRequest, AnnounceResponse, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What a tracker's connections share: who announced, and how many announces came.
#[derive(Clone, Default)]
struct Shared {
    registry: Arc<Mutex<TrackerRegistry>>,
    announces: Arc<Mutex<usize>>,
}

impl Shared {
    /// Counts and records the announce `req` from `from`; the other peers of its torrent.
    fn announce(&self, req: &AnnounceRequest, from: SocketAddr) -> Vec<SocketAddr> {
        *self.announces.lock().unwrap() += 1;
        self.registry.lock().unwrap().announce(from, req).peers
    }
}

/// Whether `head` holds a whole request head (or more than a test tracker reads).
fn head_done(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= 16384
}

/// The HTTP reply to the request whose head is `head`, from `from`: the announce recorded
/// and answered with the other peers, or a tracker failure.
fn http_reply(head: &[u8], from: SocketAddr, shared: &Shared) -> Vec<u8> {
    let line = String::from_utf8_lossy(head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let target = line.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map(|x| x.1).unwrap_or("");
    let body = match AnnounceRequest::from_query(query) {
        Ok(req) => {
            let peers = shared.announce(&req, from);
            AnnounceResponse {
                interval: Duration::from_secs(60),
                min_interval: None,
                warning: None,
                tracker_id: None,
                complete: None,
                incomplete: None,
                peers: peers.into_iter().map(Peer::from_addr).collect(),
            }
            .encode()
        }
        Err(e) => bt_proto::tracker::TrackerFailure {
            reason: e.to_string(),
        }
        .encode(),
    };
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    reply
}

/// A running test tracker; it stops when dropped.
pub struct TestTracker {
    /// The announce URL.
    pub url: String,
    /// Announces received.
    pub announces: Arc<Mutex<usize>>,
    /// The root certificate (DER) a client must trust to reach it, for an https tracker
    /// (which exists only with the `https` feature, like the field).
    #[cfg(feature = "https")]
    pub root_certificate: Option<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an HTTP tracker on loopback.
pub async fn http_tracker() -> TestTracker {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let shared = Shared::default();
    let announces = shared.announces.clone();
    let task = serve_http(listener, move |head, from| http_reply(head, from, &shared));
    TestTracker {
        url,
        announces,
        #[cfg(feature = "https")]
        root_certificate: None,
        task,
    }
}

/// Serves plain HTTP on `listener`, answering each request head with `respond(head, from)`
/// and closing the connection.
pub fn serve_http(
    listener: TcpListener,
    respond: impl Fn(&[u8], SocketAddr) -> Vec<u8> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, from)) = listener.accept().await else {
                return;
            };
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head_done(&head) {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = respond(&head, from);
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// Starts a UDP tracker (BEP 15) on loopback.
pub async fn udp_tracker() -> TestTracker {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", socket.local_addr().unwrap());
    let shared = Shared::default();
    let announces = shared.announces.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let reply = match Request::decode(&buf[..n]) {
                Ok(Request::Connect(c)) => ConnectResponse {
                    transaction_id: c.transaction_id,
                    connection_id: ConnectionId(0x1234_5678),
                }
                .encode(),
                Ok(Request::Announce(a)) => {
                    let req = AnnounceRequest {
                        info_hash: a.info_hash,
                        peer_id: a.peer_id,
                        port: a.port,
                        uploaded: a.uploaded,
                        downloaded: a.downloaded,
                        left: a.left,
                        event: a.event,
                        numwant: a.num_want,
                        key: Some(a.key),
                        tracker_id: None,
                        ip: None,
                    };
                    let peers = shared
                        .announce(&req, from)
                        .into_iter()
                        .filter_map(|p| match p {
                            SocketAddr::V4(v4) => Some(v4),
                            SocketAddr::V6(_) => None,
                        })
                        .collect();
                    udp::AnnounceResponse {
                        transaction_id: a.transaction_id,
                        interval: Duration::from_secs(60),
                        leechers: 0,
                        seeders: 0,
                        peers: CompactPeers::V4(peers),
                    }
                    .encode()
                }
                _ => continue,
            };
            let _ = socket.send_to(&reply, from).await;
        }
    });
    TestTracker {
        url,
        announces,
        #[cfg(feature = "https")]
        root_certificate: None,
        task,
    }
}

/// Starts an HTTPS tracker on loopback, `https://localhost:PORT/announce`, with a fresh
/// self-signed certificate for `localhost` ([`TestTracker::root_certificate`]).
#[cfg(feature = "https")]
pub async fn https_tracker() -> TestTracker {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/announce",
        listener.local_addr().unwrap().port()
    );
    let shared = Shared::default();
    let announces = shared.announces.clone();
    let (cert_der, task) = serve_https(listener, move |head, from| http_reply(head, from, &shared));
    TestTracker {
        url,
        announces,
        root_certificate: Some(cert_der),
        task,
    }
}

/// Serves HTTPS on `listener` with a fresh self-signed certificate for `localhost`, answering
/// each request head with `respond(head, from)`; returns the certificate (DER) and the task.
/// Connections are served by rustls over blocking sockets on tokio's blocking pool.
#[cfg(feature = "https")]
pub fn serve_https(
    listener: TcpListener,
    respond: impl Fn(&[u8], SocketAddr) -> Vec<u8> + Send + Sync + 'static,
) -> (Vec<u8>, tokio::task::JoinHandle<()>) {
    use std::io::{Read, Write};

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .unwrap(),
    );
    let respond = Arc::new(respond);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                return;
            };
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            let (respond, config) = (respond.clone(), config.clone());
            tokio::task::spawn_blocking(move || {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head_done(&head) {
                    match tls.read(&mut buf) {
                        // A client that refused the certificate ends here.
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = respond(&head, from);
                let _ = tls.write_all(&reply);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (cert_der, task)
}
