//! `bt download MAGNET`: the torrent is added by its magnet link, and the command says
//! "fetching metadata from N peers" until the metadata (so the name and size) is known; from
//! then on it is the download of a .torrent.

use std::path::PathBuf;

use bt_tokio::proto::magnet::{Magnet, MagnetPeer};
use bt_tokio::{MagnetOptions, Session, Torrent};

use crate::{Interrupt, Result};

/// How often the peer count is looked at while the metadata is fetched.
const FETCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Adds the magnet link `uri`, with `peers` (`HOST:PORT`) as more of its `x.pe` peers, to
/// download into `base`, and waits for its metadata, saying on stderr (unless `quiet`) how
/// many peers it is fetched from whenever that changes. Returns the torrent, or `None` on
/// Ctrl-C.
pub(crate) async fn fetch(
    session: &Session,
    uri: &str,
    base: PathBuf,
    peers: &[String],
    quiet: bool,
    interrupt: &mut Interrupt,
) -> Result<Option<Torrent>> {
    let mut link = Magnet::parse(uri).map_err(|e| format!("not a valid magnet link: {e}"))?;
    for p in peers {
        let peer: MagnetPeer = p
            .parse()
            .map_err(|_| format!("bad peer {p}: HOST:PORT expected"))?;
        link.peers.push(peer);
    }
    let mt = session
        .add_magnet(MagnetOptions::from_magnet(link).base_dir(base))
        .await?;
    // Kept by an earlier run: there at once (anything else takes round trips to peers).
    let kept = mt.metadata();
    let first = mt.stats().await?;
    if let Some(t) = kept {
        return Ok(Some(t));
    }
    if !quiet {
        eprintln!("fetching metadata from {} peers", first.peers);
    }
    // Ends only if the session does, with that error.
    let progress = async {
        let mut last = Some(first.peers);
        loop {
            let peers = match mt.stats().await {
                Ok(s) => s.peers,
                Err(e) => return e,
            };
            if !quiet && last != Some(peers) {
                eprintln!("fetching metadata from {peers} peers");
                last = Some(peers);
            }
            tokio::time::sleep(FETCH_POLL).await;
        }
    };
    tokio::select! {
        t = mt.wait_metadata() => Ok(Some(t?)),
        e = progress => Err(e.into()),
        () = interrupt.wait() => Ok(None),
    }
}
