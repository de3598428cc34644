//! The `stream` part of the bench: time to the first byte of the middle of a file through
//! `Torrent::file_reader`, on loopback. A seeder process (a bench child) serves the
//! payload; the reader runs in the bench's own process on the runtime measured: it opens
//! a reader, seeks to the file's middle, and the clock runs from the peer being added to
//! the first byte read there (connection, handshake, the piece fetched first, its hash
//! check and the disk read).

use std::path::Path;
use std::time::Instant;

use bt_adapter::{ReaderRuntime, Session, TorrentOptions};

use super::{Payload, Proc, Rt, err};

/// One measurement on `R`: seconds from adding the seeder as a peer to the first byte of
/// the middle of the payload's file, read by a file reader opened and moved there before.
async fn first_middle_byte<R: ReaderRuntime>(
    torrent: &Path,
    dir: &Path,
    port: u16,
) -> Result<f64, String> {
    let session = Session::<R>::builder()
        .listen_ip(std::net::Ipv4Addr::LOCALHOST.into())
        .config(crate::loopback_limits)
        .start()
        .await
        .map_err(err)?;
    let t = session
        .add_torrent(
            TorrentOptions::from_path(torrent)
                .base_dir(dir)
                .resume(false)
                .verify_existing(false),
        )
        .await
        .map_err(err)?;
    let mut reader = t.file_reader(0).await.map_err(err)?;
    let middle = reader.file_len() / 2;
    reader.seek(std::io::SeekFrom::Start(middle)).map_err(err)?;
    let start = Instant::now();
    t.add_peer(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(err)?;
    let mut byte = [0u8; 1];
    let n = reader.read(&mut byte).await.map_err(err)?;
    let secs = start.elapsed().as_secs_f64();
    if n != 1 {
        return Err(format!("read {n} bytes at the middle"));
    }
    drop(reader);
    session.shutdown().await;
    Ok(secs)
}

/// Time to the first byte of the file's middle through a file reader on `rt` (one run,
/// a fresh download directory).
pub(super) fn stream_first_byte(
    exe: &Path,
    rt: Rt,
    p: &Payload,
    work: &Path,
) -> Result<f64, String> {
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let seeder = Proc::spawn(exe, rt, "seed", &p.torrent, seed_dir, &[])?;
    let dir = work.join(format!("stream-{}", rt.name()));
    let _ = std::fs::remove_dir_all(&dir);
    let secs = match rt {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(err)?
            .block_on(first_middle_byte::<bt_tokio::Tokio>(
                &p.torrent,
                &dir,
                seeder.port,
            )),
        Rt::Smol => smol::block_on(first_middle_byte::<bt_smol::Smol>(
            &p.torrent,
            &dir,
            seeder.port,
        )),
    }?;
    seeder.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(secs)
}
