//! Adapter scenarios at the edges, generic over the runtime (run on tokio and smol by
//! `tests/tests/edges.rs`): tracker URLs and redirects that the SSRF rules refuse, checked
//! against real loopback HTTP servers that record every request; a listening port already
//! in use; peers over IPv6 loopback; one session seeding and downloading many torrents.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bt_adapter::{AnnounceError, Error, Event, Runtime, Session, TorrentOptions};
use bt_proto::bencode::Bencode;
use tokio::net::TcpListener;

use crate::swarm::{
    addr_of, assert_same_tree, loopback_builder, loopback_session, standard_files, torrent_of,
    write_payload,
};
use crate::tracker::serve_http;
#[cfg(feature = "https")]
use crate::tracker::serve_https;

/// A loopback HTTP server (on tokio) that records the request line of every request it gets
/// and answers each with the same response.
pub struct Probe {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The request lines received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records the request line of `head` in `requests`.
fn record(requests: &Mutex<Vec<String>>, head: &[u8]) {
    let head = String::from_utf8_lossy(head);
    let line = head.lines().next().unwrap_or_default().to_string();
    requests.lock().unwrap().push(line);
}

impl Probe {
    /// A server answering every request with `response` (a whole HTTP response).
    pub async fn start(response: Vec<u8>) -> Probe {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = serve_http(listener, move |head, _| {
            record(&seen, head);
            response.clone()
        });
        Probe {
            port,
            requests,
            task,
        }
    }

    /// The same over TLS (`https://localhost:PORT`), with a fresh self-signed certificate:
    /// the server and the certificate (DER) a client must trust.
    #[cfg(feature = "https")]
    pub async fn start_https(response: Vec<u8>) -> (Probe, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let (certificate, task) = serve_https(listener, move |head, _| {
            record(&seen, head);
            response.clone()
        });
        let probe = Probe {
            port,
            requests,
            task,
        };
        (probe, certificate)
    }

    /// A server that answers like a tracker: an announce reply with no peers.
    pub async fn tracker() -> Probe {
        let body = Bencode::dict()
            .with("interval", 1800)
            .with("peers", Vec::<u8>::new())
            .encode();
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        Probe::start(response).await
    }

    /// A server that redirects every request to `location`.
    pub async fn redirect(location: &str) -> Probe {
        Probe::start(redirect_to(location)).await
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Asserts that it was asked, and only with request lines starting with `prefix`.
    pub fn assert_asked_only(&self, prefix: &str) {
        let requests = self.requests();
        assert!(!requests.is_empty(), "never asked");
        for r in &requests {
            assert!(r.starts_with(prefix), "{r}");
        }
    }
}

/// A response redirecting to `location`.
fn redirect_to(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// How the first announce of a small torrent whose one tracker is `url` ends, on a fresh
/// loopback session: `Ok` if the tracker answered.
pub async fn first_announce<R: Runtime>(url: &str) -> Result<(), AnnounceError> {
    first_announce_on(loopback_session::<R>().await, url).await
}

/// [`first_announce`] on `session`, which it shuts down.
pub async fn first_announce_on<R: Runtime>(
    session: Session<R>,
    url: &str,
) -> Result<(), AnnounceError> {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("payload");
    write_payload(&content, &[("a.bin", 1000)]);
    let torrent = torrent_of::<R>(&content, 16 * 1024, vec![url.to_string()]).await;
    let mut events = session.events();
    // Started without data: it announces at once.
    let _t = session
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(dir.path().join("dl")))
        .await
        .unwrap();
    let outcome = loop {
        match events.next().await.unwrap().unwrap() {
            Event::TrackerError { error, .. } => break Err(error),
            Event::TrackerReply { .. } => break Ok(()),
            _ => {}
        }
    };
    session.shutdown().await;
    outcome
}

/// A tracker URL on a local address is asked only at `/announce` (a query may follow); any
/// other path is refused before a connection is made, whether the host is an address or a
/// name that resolves to one.
pub async fn local_tracker_only_at_announce<R: Runtime>() {
    let probe = Probe::tracker().await;
    let port = probe.port;
    let loopback = IpAddr::from(Ipv4Addr::LOCALHOST);
    for path in ["/admin", "/", "/announce/x", "/cgi-bin/reboot?announce"] {
        let error = first_announce::<R>(&format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            AnnounceError::LocalPath {
                host: format!("127.0.0.1:{port}"),
                addr: loopback,
            },
            "{path}"
        );
        assert!(error.to_string().contains("local address"), "{error}");
    }
    let error = first_announce::<R>(&format!("http://localhost:{port}/admin"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AnnounceError::LocalPath { addr, .. } if addr.is_loopback()),
        "{error:?}"
    );
    assert_eq!(probe.requests(), Vec::<String>::new(), "nothing was sent");

    first_announce::<R>(&format!("http://127.0.0.1:{port}/announce?passkey=abc"))
        .await
        .unwrap();
    // `started`, then `stopped` at shutdown.
    probe.assert_asked_only("GET /announce?passkey=abc&info_hash=");
}

/// A redirect is judged as the request it leads to: into a local address it is followed
/// only to `/announce`.
pub async fn redirect_to_local_only_at_announce<R: Runtime>() {
    let target = Probe::tracker().await;
    let to_admin = Probe::redirect(&format!("http://127.0.0.1:{}/admin", target.port)).await;
    let error = first_announce::<R>(&format!("http://127.0.0.1:{}/announce", to_admin.port))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        AnnounceError::LocalPath {
            host: format!("127.0.0.1:{}", target.port),
            addr: Ipv4Addr::LOCALHOST.into(),
        }
    );
    assert_eq!(to_admin.requests().len(), 1);
    assert!(target.requests().is_empty(), "{:?}", target.requests());

    let location = format!("http://127.0.0.1:{}/announce?passkey=1", target.port);
    let to_tracker = Probe::redirect(&location).await;
    first_announce::<R>(&format!("http://127.0.0.1:{}/announce", to_tracker.port))
        .await
        .unwrap();
    target.assert_asked_only("GET /announce?passkey=1 ");
}

/// An https tracker may not redirect to plain http: the request, passkey and all, would go
/// unencrypted. Nothing reaches the http server.
#[cfg(feature = "https")]
pub async fn https_redirect_to_http_refused<R: Runtime>() {
    let plain = Probe::tracker().await;
    let location = format!("http://127.0.0.1:{}/announce?passkey=secret", plain.port);
    let (secure, certificate) = Probe::start_https(redirect_to(&location)).await;
    let session = loopback_builder::<R>()
        .tracker_root_certificate(certificate)
        .start()
        .await
        .unwrap();
    let url = format!("https://localhost:{}/announce?passkey=secret", secure.port);
    let error = first_announce_on(session, &url).await.unwrap_err();
    assert_eq!(
        error,
        AnnounceError::InsecureRedirect {
            from: format!("localhost:{}", secure.port),
            to: format!("127.0.0.1:{}", plain.port),
        }
    );
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(!secure.requests().is_empty());
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
}

/// Asserts that `err` is [`Error::Listen`] for `port`, held by another socket.
fn assert_port_in_use(err: &Error, port: u16) {
    let Error::Listen { port: p, source } = err else {
        panic!("not a listen error: {err:?}");
    };
    assert_eq!((*p, source.kind()), (port, ErrorKind::AddrInUse), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

/// A port another socket holds is a typed error naming it, on a chosen address and on every
/// address alike.
pub async fn port_in_use<R: Runtime>() {
    let first = loopback_session::<R>().await;
    let port = first.port();
    let err = loopback_builder::<R>().port(port).start().await;
    assert_port_in_use(&err.unwrap_err(), port);
    // Every address (IPv6 and IPv4), while the port is held on IPv4 loopback.
    let err = Session::<R>::builder().port(port).start().await;
    assert_port_in_use(&err.unwrap_err(), port);
    // The first session still serves its port.
    std::net::TcpStream::connect(addr_of(&first)).unwrap();
    first.shutdown().await;
}

/// A seed and a leecher on `::1` only: the torrent moves over IPv6, byte for byte.
pub async fn ipv6_loopback_transfer<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(3_000));
    let torrent = torrent_of::<R>(&content, 16 * 1024, Vec::new()).await;
    let v6 = || {
        Session::<R>::builder()
            .listen_ip(Ipv6Addr::LOCALHOST.into())
            .dht(bt_adapter::DhtOptions::off())
    };
    let seed = v6().start().await.unwrap();
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    let mut seed_events = st.events();
    let leecher = v6().start().await.unwrap();
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    lt.add_peer(SocketAddr::from((Ipv6Addr::LOCALHOST, seed.port())))
        .await
        .unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    assert!(st.uploaded().await.unwrap() >= st.size());
    // The seed saw the leecher connect from ::1.
    let from = loop {
        if let Event::PeerConnected { addr, .. } = seed_events.next().await.unwrap().unwrap() {
            break addr;
        }
    };
    assert_eq!(from.ip(), Ipv6Addr::LOCALHOST);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// Torrents in the many-torrents scenario.
pub const MANY: usize = 50;

/// One session seeds [`MANY`] small torrents and another downloads them all at once over
/// its one listening port, each byte-exact.
pub async fn many_torrents<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let mut torrents = Vec::new();
    for i in 0..MANY {
        let content = seed_dir.join(format!("t{i:02}"));
        // Sizes differ, so no two torrents share an info-hash; some end mid-piece.
        write_payload(&content, &[("data.bin", 20_000 + i * 1_237), ("x/y", i)]);
        torrents.push(torrent_of::<R>(&content, 16 * 1024, Vec::new()).await);
    }
    let seed = loopback_session::<R>().await;
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let mut handles = Vec::new();
    for torrent in &torrents {
        let st = seed
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        st.wait_complete().await.unwrap();
        let lt = leecher
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base))
            .await
            .unwrap();
        handles.push((st, lt));
    }
    for (_, lt) in &handles {
        lt.add_peer(addr_of(&seed)).await.unwrap();
    }
    for (_, lt) in &handles {
        lt.wait_complete().await.unwrap();
    }
    assert_same_tree(&seed_dir, &base);
    let mut names: Vec<&str> = Vec::new();
    for (st, lt) in &handles {
        assert_eq!(lt.left().await.unwrap(), 0);
        assert_eq!(st.name(), lt.name());
        names.push(lt.name());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), MANY);
    leecher.shutdown().await;
    seed.shutdown().await;
}
