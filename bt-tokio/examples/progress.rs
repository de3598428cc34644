//! `progress FILE.torrent DIR [HOST:PORT]...`: downloads into DIR from the peers given and
//! those its trackers, the DHT and peer exchange find, printing progress.
use bt_tokio::{Event, Session, TorrentOptions};

#[tokio::main]
async fn main() -> Result<(), bt_tokio::Error> {
    let mut args = std::env::args().skip(1);
    let (Some(torrent), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: progress FILE.torrent DIR [HOST:PORT]...");
        std::process::exit(2);
    };
    let session = Session::builder().port(6881).start().await?;
    download(&session, &torrent, &dir, args.collect()).await?;
    session.shutdown().await; // announces `stopped`, flushes files, saves resume data
    Ok(())
}

/// Adds the torrent at `path` to `session`, with its files under `dir`, dials `peers` (its
/// trackers, the DHT and peer exchange find others) and prints progress until it completes.
pub async fn download(
    session: &Session,
    path: &str,
    dir: &str,
    peers: Vec<String>,
) -> Result<(), bt_tokio::Error> {
    let mut opts = TorrentOptions::from_path(path).base_dir(dir);
    // Subscribed before adding: the check of files already on disk is seen too.
    let mut events = opts.subscribe();
    let torrent = session.add_torrent(opts).await?;
    println!(
        "{} ({} bytes), info-hash {}",
        torrent.name(),
        torrent.size(),
        torrent.infohash()
    );
    for peer in peers {
        torrent.add_peer(peer).await?; // "HOST:PORT", or a SocketAddr
    }
    let watched = torrent.clone();
    // The stream ends when the torrent is removed or the session shuts down.
    tokio::spawn(async move {
        while let Some(item) = events.next().await {
            match item {
                Ok(Event::HashPassed { .. } | Event::PieceChecked { ok: true, .. }) => {
                    let Ok(s) = watched.stats().await else { break };
                    println!(
                        "{:5.1} %  {:>9} B/s  {} peers",
                        s.progress * 100.0,
                        s.download_rate,
                        s.peers
                    );
                }
                Ok(Event::Complete { .. }) => println!("complete"),
                Ok(_) => {}
                // Fell behind by n events: a count kept from events would be short now.
                Err(lagged) => eprintln!("{lagged}"),
            }
        }
    });
    torrent.wait_complete().await
}
