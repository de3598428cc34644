//! The DHT's side of the adapter: its options, the bootstrap routers resolved in the
//! background, and the routing table kept in a state file. Its datagrams go through the
//! session's UDP port ([`crate::udp`], on the port number of its TCP listener, as libtorrent
//! does). What to send and what to believe is the engine's ([`bt_proto::dht`]); this module
//! only moves bytes.
//!
//! A UDP port that cannot be opened (the port taken for UDP, no such address) is logged and
//! left out: the session works on without the DHT, as it does without a tracker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_channel::Sender;
use bt_proto::dht::saved::{MAX_SAVED_LEN, SavedTable};

use crate::messages::Msg;
use crate::runtime::Runtime;

/// The routers of the public mainline DHT that clients bootstrap from when they know no
/// node: those libtorrent, Transmission and µTorrent use.
pub const DEFAULT_DHT_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// The largest datagram read, kept here under its old name: see [`crate::udp`].
pub use crate::udp::MAX_DATAGRAM;

/// How often the routing table is saved while the session runs (and once more at
/// shutdown): a crash loses at most this long of the table's changes, which are slow.
pub const DHT_SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Largest state file read: what [`SavedTable::decode`] accepts; a longer one is not read.
pub const MAX_DHT_STATE_FILE: u64 = MAX_SAVED_LEN as u64;

/// How the session runs the DHT (BEP 5); see [`crate::SessionBuilder::dht`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtOptions {
    enabled: bool,
    read_only: bool,
    bootstrap: Vec<String>,
    state_file: Option<PathBuf>,
}

impl Default for DhtOptions {
    /// On, answering queries, bootstrapping from [`DEFAULT_DHT_ROUTERS`], with no state
    /// file.
    fn default() -> Self {
        DhtOptions {
            enabled: true,
            read_only: false,
            bootstrap: DEFAULT_DHT_ROUTERS.iter().map(|s| s.to_string()).collect(),
            state_file: None,
        }
    }
}

impl DhtOptions {
    /// No DHT: no UDP socket, no node, no DHT bit in handshakes.
    pub fn off() -> Self {
        DhtOptions {
            enabled: false,
            ..DhtOptions::default()
        }
    }

    /// The nodes to bootstrap from, as `host:port` (names are resolved in the background;
    /// one that does not resolve is logged and skipped). Replaces the defaults; an empty
    /// list bootstraps from the state file and peers' PORT messages only.
    pub fn bootstrap<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Self {
        self.bootstrap = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Where the routing table is kept between runs: read at start (a missing, unreadable
    /// or bad file is ignored, with a warning for the last two), written atomically every
    /// [`DHT_SAVE_INTERVAL`] and at shutdown (unless the table is empty: a run that met no
    /// node keeps the last one's).
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Read-only (BEP 43): the node asks, never answers, and others keep it out of their
    /// tables. For integrators who only look up.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Whether the DHT runs.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn routers(&self) -> &[String] {
        &self.bootstrap
    }

    pub(crate) fn state(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }
}

/// What the session's DHT node is at ([`crate::Session::dht_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DhtStatus {
    /// Its id.
    pub id: bt_proto::dht::NodeId,
    /// Nodes in its routing table.
    pub nodes: usize,
    /// Peers that other nodes announced to it, for every torrent.
    pub stored_peers: usize,
    /// What it dropped.
    pub stats: bt_proto::dht::node::DhtStats,
}

impl DhtStatus {
    /// The status of `node`.
    pub(crate) fn of(node: &bt_proto::dht::node::Node) -> Self {
        DhtStatus {
            id: node.id(),
            nodes: node.table().len(),
            stored_peers: node.stored_peers(),
            stats: node.stats(),
        }
    }
}

/// The session's DHT state file and its save timer (the node's datagrams go through the
/// session's [`crate::udp`] port).
pub(crate) struct DhtState<R: Runtime> {
    timer: Option<R::Task>,
    state_file: Option<PathBuf>,
}

impl<R: Runtime> Default for DhtState<R> {
    fn default() -> Self {
        DhtState {
            timer: None,
            state_file: None,
        }
    }
}

impl<R: Runtime> DhtState<R> {
    /// Keeps the table in `state_file`, if any, starting the save timer.
    pub fn new(state_file: Option<PathBuf>, inputs: &Sender<Msg<R>>) -> Self {
        let timer = state_file
            .is_some()
            .then(|| R::spawn(save_timer::<R>(inputs.clone())));
        DhtState { timer, state_file }
    }

    /// Writes `table` to the state file, if there is one, on the blocking pool.
    /// The future borrows nothing of `self`, so the driver can await it.
    pub fn save(
        &self,
        table: Option<SavedTable>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        save_to::<R>(self.state_file.clone(), table)
    }

    /// Like [`DhtState::save`], in the background.
    pub fn save_later(&self, table: Option<SavedTable>) {
        if self.state_file.is_some() {
            R::detach(R::spawn(save_to::<R>(self.state_file.clone(), table)));
        }
    }

    /// Stops the save timer.
    pub fn close(&mut self) {
        if let Some(t) = self.timer.take() {
            R::abort(t);
        }
    }
}

/// Writes `table` to `path` atomically, on the blocking pool; a failure is logged. An empty
/// table is not written: a run that met no node (offline, say) keeps the last run's table,
/// whose nodes enter the table only as they answer.
async fn save_to<R: Runtime>(path: Option<PathBuf>, table: Option<SavedTable>) {
    let (Some(path), Some(table)) = (path, table.filter(|t| !t.nodes.is_empty())) else {
        return;
    };
    let written = R::unblock(move || {
        crate::resume::write_atomic(&path, &table.encode()).map(|()| (table.nodes.len(), path))
    })
    .await;
    match written {
        Some(Ok((nodes, path))) => {
            tracing::debug!(nodes, path = %path.display(), "DHT table saved")
        }
        Some(Err(e)) => tracing::warn!("saving the DHT table: {e}"),
        None => {}
    }
}

/// Asks the driver to save the table every [`DHT_SAVE_INTERVAL`].
async fn save_timer<R: Runtime>(inputs: Sender<Msg<R>>) {
    loop {
        R::sleep_until(R::now() + DHT_SAVE_INTERVAL).await;
        if inputs.send(Msg::DhtSave).await.is_err() {
            return;
        }
    }
}

/// Bootstraps the node from each router as its name resolves (in parallel: a router whose
/// name server is slow does not hold back the others).
pub(crate) fn bootstrap<R: Runtime>(routers: &[String], inputs: &Sender<Msg<R>>) {
    for router in routers {
        let router = router.clone();
        let tx = inputs.clone();
        R::detach(R::spawn(async move {
            let Some((host, port)) = split_host_port(&router) else {
                tracing::warn!("DHT bootstrap node {router:?} is not HOST:PORT; skipped");
                return;
            };
            match R::resolve(host.to_string(), port).await {
                Ok(routers) => {
                    let _ = tx.send(Msg::DhtBootstrap(routers)).await;
                }
                Err(e) => tracing::warn!("DHT bootstrap node {router}: {e}"),
            }
        }));
    }
}

/// `host:port`, `[v6]:port` or `v6-literal:port` split into the host and the port.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

/// [`load_state`] of `path`, to run on the blocking pool.
pub(crate) fn loader(path: &Path) -> impl FnOnce() -> Option<SavedTable> + Send + 'static {
    let path = path.to_path_buf();
    move || load_state(&path)
}

/// Reads the table saved at `path`: `None` when there is none (nothing logged) or it is too
/// large or does not decode (a warning: the node starts from its routers).
pub(crate) fn load_state(path: &Path) -> Option<SavedTable> {
    let len = std::fs::metadata(path).ok()?.len();
    if len > MAX_DHT_STATE_FILE {
        tracing::warn!(path = %path.display(), "DHT state file too large; ignored");
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(path = %path.display(), "DHT state file unreadable: {e}");
            return None;
        }
    };
    match SavedTable::decode(&bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(path = %path.display(), "DHT state file ignored: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split() {
        assert_eq!(
            split_host_port("router.bittorrent.com:6881"),
            Some(("router.bittorrent.com", 6881))
        );
        assert_eq!(split_host_port("[::1]:6881"), Some(("::1", 6881)));
        assert_eq!(split_host_port("127.0.0.1:1"), Some(("127.0.0.1", 1)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":6881"), None);
        assert_eq!(split_host_port("h:99999"), None);
    }
}
