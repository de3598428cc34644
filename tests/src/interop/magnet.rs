//! Our side of the magnet-link interop tests: a download that starts from a magnet link
//! alone, fetching the metadata from a third-party client, checked like any other download.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use bt_adapter::runtime::timeout_at;
use bt_adapter::{Error, MagnetOptions, Runtime, Session, SessionBuilder};
use bt_proto::magnet::Magnet;

use super::{Payload, Proc, TRANSFER_TIMEOUT, TransferReport, fail, verify};

/// A magnet link to `payload` holding only its info-hash and the tracker `url`: nothing a
/// peer could not fetch.
pub fn bare_magnet(payload: &Payload, url: &str) -> Magnet {
    let mut link = Magnet::new(payload.info_hash());
    link.trackers = vec![url.to_string()];
    link
}

/// Our session downloads `payload` into `dir` from the magnet link `link` alone: fetches the
/// metadata (which must be the payload's, byte for byte), downloads, checks every file, and
/// returns the figures (timed from the add, the metadata fetch included). Fails the test
/// with `procs`' logs otherwise.
pub async fn our_magnet_download<R: Runtime>(
    payload: &Payload,
    link: Magnet,
    dir: &Path,
    procs: &[&Proc],
) -> TransferReport {
    let builder = Session::<R>::builder()
        .listen_ip(Ipv4Addr::LOCALHOST.into())
        .config(crate::loopback_limits);
    our_magnet_download_on(builder, payload, link, dir, TRANSFER_TIMEOUT, procs).await
}

/// [`our_magnet_download`] by a session started from `builder` (the DHT's tests give one
/// with the DHT on), failing if it has not completed `within` the add.
pub async fn our_magnet_download_on<R: Runtime>(
    builder: SessionBuilder<R>,
    payload: &Payload,
    link: Magnet,
    dir: &Path,
    within: Duration,
    procs: &[&Proc],
) -> TransferReport {
    let session = builder.start().await.unwrap();
    let started = Instant::now();
    let mt = session
        .add_magnet(MagnetOptions::from_magnet(link).base_dir(dir))
        .await
        .unwrap();
    let done = timeout_at::<R, _>(Instant::now() + within, async {
        let t = mt.wait_metadata().await?;
        t.wait_complete().await?;
        Ok::<_, Error>(t)
    })
    .await;
    let t = match done {
        Some(Ok(t)) => t,
        Some(Err(e)) => fail(&format!("our magnet download failed: {e}"), procs),
        None => fail(
            &format!(
                "our magnet download did not complete within {within:?}: {:?}, peers {:?}, \
                 DHT {:?}",
                mt.stats().await,
                mt.peers().await,
                session.dht_status().await
            ),
            procs,
        ),
    };
    if t.metainfo().info_bytes() != payload.meta.info_bytes() {
        fail("the metadata we fetched is not the torrent's", procs);
    }
    if let Err(e) = verify(payload, dir) {
        fail(&format!("our magnet download differs: {e}"), procs);
    }
    let report = TransferReport {
        bytes: payload.size(),
        secs: started.elapsed().as_secs_f64(),
        peers: t.peers().await.unwrap_or_default(),
        ..TransferReport::default()
    };
    session.shutdown().await;
    report
}
