//! The [`Session`]: one listening port, one driver task, many torrents.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::dht::{self, DhtOptions, DhtState, DhtStatus};
use crate::disk::Storage;
use crate::driver::Driver;
use crate::events::{Events, Fanout};
use crate::handle::{Handle, Shared};
use crate::lsd::{LsdInterface, LsdSockets};
use crate::magnet::MagnetTorrent;
use crate::messages::{AddCmd, AddMagnetCmd, Command, MetadataSlot, Msg, reply};
use crate::options::{MagnetOptions, TorrentOptions};
use crate::runtime::Runtime;
use crate::torrent::Torrent;
use crate::tracker::HttpClient;
use crate::udp::UdpPort;
use crate::{Error, layout, resume};
use bt_proto::PeerId;
use bt_proto::engine::DEFAULT_RESUME_SAVE_INTERVAL;
use bt_proto::engine::{self, Config, Transports};
use bt_proto::lsd::LsdGroup;
use bt_proto::magnet::MagnetPeer;
use bt_proto::metainfo::Metainfo;
use bt_proto::mse::Encryption;
use bt_proto::peer_id::ClientVersion;
use bt_proto::storage::metadata_path;

/// Commands queued to the driver: API calls are rare and each waits for its answer.
const COMMAND_QUEUE: usize = 64;

/// Inputs queued to the driver (reads, disk results, announces). When it is full, readers
/// stop reading: this is the back-pressure that bounds memory under a fast peer.
pub const INPUT_QUEUE: usize = 1024;

/// 64 random bits from the standard library's per-process random keys (seeded by the OS),
/// mixed with the time and a counter, so no extra dependency is needed for peer ids and seeds.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

/// A fresh peer id of this client (Azureus style, 12 random characters).
pub(crate) fn random_peer_id() -> PeerId {
    let a = random_u64().to_le_bytes();
    let b = random_u64().to_le_bytes();
    let mut r = [0u8; 12];
    for (i, slot) in r.iter_mut().enumerate() {
        *slot = if i < 8 {
            a.get(i).copied().unwrap_or(0)
        } else {
            b.get(i - 8).copied().unwrap_or(0)
        };
    }
    PeerId::generate(r, ClientVersion::CURRENT)
}

/// A change to the engine's configuration.
type ConfigFn = Box<dyn FnOnce(&mut Config) + Send>;

/// Configures and starts a [`Session`].
pub struct SessionBuilder<R: Runtime> {
    port: u16,
    ip: Option<IpAddr>,
    peer_id: Option<PeerId>,
    seed: Option<u64>,
    tune: Vec<ConfigFn>,
    resume_interval: Option<Duration>,
    lsd_interface: LsdInterface,
    dht: DhtOptions,
    #[cfg(feature = "https")]
    tracker_roots: Vec<Vec<u8>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> std::fmt::Debug for SessionBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("port", &self.port)
            .field("ip", &self.ip)
            .field("peer_id", &self.peer_id)
            .field("seed", &self.seed)
            .field("resume_interval", &self.resume_interval)
            .field("lsd_interface", &self.lsd_interface)
            .field("dht", &self.dht)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> SessionBuilder<R> {
    /// The port to listen on; 0 (the default) lets the OS pick one ([`Session::port`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Listen on this address only (default: every address, IPv6 and IPv4).
    pub fn listen_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Our peer id (default: a fresh random one of this client).
    pub fn peer_id(mut self, peer_id: PeerId) -> Self {
        self.peer_id = Some(peer_id);
        self
    }

    /// Seed of the engine's random choices (default: random). Fixing it makes runs easier to
    /// compare; it does not make a networked run deterministic.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Changes the engine's configuration (limits, timeouts, ...); applied in order.
    pub fn config(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tune.push(Box::new(f));
        self
    }

    /// Local service discovery (BEP 14) on or off (default on, [`Config::lsd`]): torrents
    /// that are not private are announced on the local network, and peers announcing them
    /// there are dialled. If its sockets cannot be opened, the session runs without it (a
    /// warning is logged; [`Session::local_discovery`] says what was opened).
    pub fn lsd(self, on: bool) -> Self {
        self.config(move |c| c.lsd = on)
    }

    /// Where local service discovery runs (default: both groups, on the interfaces the
    /// system routes multicast through).
    pub fn lsd_interface(mut self, interface: LsdInterface) -> Self {
        self.lsd_interface = interface;
        self
    }

    /// The DHT (BEP 5): on by default ([`DhtOptions::default`]: the public mainline routers
    /// to bootstrap from, no state file), as in every common client, so that a magnet link
    /// with only an info-hash, or a torrent whose trackers are dead, finds peers. It runs
    /// on the session's UDP port, on the listening port's number; if that cannot be opened
    /// the session runs without it (a warning logged; [`Session::dht_port`] says). Sets [`Config::dht`]
    /// and [`Config::dht_read_only`] (before [`SessionBuilder::config`] changes, which may
    /// switch it off).
    pub fn dht(mut self, opts: DhtOptions) -> Self {
        self.dht = opts;
        self
    }

    /// How often each torrent's resume data is saved while pieces are being verified
    /// (default [`DEFAULT_RESUME_SAVE_INTERVAL`]); `None` saves only when a torrent completes or
    /// stops. What a crash loses is at most this long of downloading.
    pub fn resume_save_interval(mut self, every: Option<Duration>) -> Self {
        self.resume_interval = every;
        self
    }

    /// Also trusts this root certificate (DER) for `https://` trackers, besides the
    /// webpki-roots list: for a private tracker with its own certificate authority, or a
    /// test tracker with a self-signed certificate. A certificate that does not parse makes
    /// [`SessionBuilder::start`] fail with [`Error::Certificate`].
    #[cfg(feature = "https")]
    pub fn tracker_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tracker_roots.push(der.into());
        self
    }

    /// Message stream encryption for every connection of the session (default
    /// [`Encryption::Enabled`], as libtorrent: both kinds accepted, MSE tried first on
    /// outgoing connections with a fall back to plaintext; see [`Config::encryption`]).
    /// [`Encryption::Required`] reaches only the peers that speak it, with RC4.
    pub fn encryption(self, policy: Encryption) -> Self {
        self.config(move |c| c.encryption = policy)
    }

    /// The transports of peer connections (default [`Transports::Both`], as libtorrent and
    /// Transmission: uTP to the peers known to speak it, TCP otherwise and when uTP fails;
    /// see [`Config::transports`]). uTP runs on the session's UDP port, the one the DHT uses,
    /// on the TCP listener's port number. With [`Transports::Utp`] the session opens no TCP
    /// listener and makes no TCP connection, [`Session::port`] is the UDP port, and
    /// [`SessionBuilder::start`] fails if that port cannot be opened; with `Both`, a UDP
    /// port that cannot be opened leaves TCP alone (a warning logged).
    pub fn transports(self, transports: Transports) -> Self {
        self.config(move |c| c.transports = transports)
    }

    /// Peer exchange (BEP 11) on or off for every torrent of the session (default: on; see
    /// [`Config::pex`]).
    pub fn pex(self, enabled: bool) -> Self {
        self.config(move |c| c.pex = enabled)
    }

    /// Binds the ports and starts the driver on the runtime.
    pub async fn start(self) -> Result<Session<R>, Error> {
        #[cfg(feature = "https")]
        let tls = crate::tls::client_config(&self.tracker_roots).map_err(Error::Certificate)?;
        let peer_id = self.peer_id.unwrap_or_else(random_peer_id);
        let seed = self.seed.unwrap_or_else(random_u64);
        let mut config = Config::new(peer_id, self.port, seed);
        config.resume_save_interval = self.resume_interval;
        config.dht = self.dht.is_enabled();
        config.dht_read_only = self.dht.is_read_only();
        config.encryption = Encryption::Enabled;
        self.tune.into_iter().for_each(|f| f(&mut config));
        let listen_error = |source| Error::Listen {
            port: self.port,
            source,
        };
        let listeners = if config.transports.tcp() {
            crate::net::bind::<R>(self.ip, self.port)
                .await
                .map_err(listen_error)?
        } else {
            Vec::new()
        };
        let tcp_port = listeners.first().and_then(|l| R::local_addr(l).ok());
        let (cmd_tx, cmd_rx) = async_channel::bounded(COMMAND_QUEUE);
        let (in_tx, in_rx) = async_channel::bounded::<Msg<R>>(INPUT_QUEUE);
        let udp = open_udp::<R>(
            &mut config,
            self.ip,
            tcp_port.map_or(self.port, |a| a.port()),
            &in_tx,
        )
        .map_err(listen_error)?;
        let port = tcp_port
            .map(|a| a.port())
            .or(udp.as_ref().map(UdpPort::port));
        config.listen_port = port.unwrap_or(self.port);
        let saved = match self.dht.state().filter(|_| config.dht) {
            Some(path) => R::unblock(dht::loader(path)).await.flatten(),
            None => None,
        };
        if let Some(saved) = &saved {
            config.dht_id = config.dht_id.or(Some(saved.id));
        }
        let http = Arc::new(HttpClient {
            user_agent: config.client_name.replace(' ', "/"),
            #[cfg(feature = "https")]
            tls,
        });
        let events = Arc::new(Fanout::default());
        let lsd = if config.lsd {
            LsdSockets::open(self.lsd_interface, &in_tx)
        } else {
            LsdSockets::default()
        };
        let lsd_groups = lsd.groups();
        let dht_port = config.dht.then_some(config.listen_port);
        let dht_state = if config.dht {
            dht::bootstrap::<R>(self.dht.routers(), &in_tx);
            DhtState::new(self.dht.state().map(|p| p.to_path_buf()), &in_tx)
        } else {
            DhtState::default()
        };
        let accepts = listeners
            .into_iter()
            .map(|l| R::spawn(crate::net::accept_loop::<R>(l, in_tx.clone())))
            .collect();
        let dht_on = config.dht;
        let port = config.listen_port;
        let mut engine = engine::Session::new(config);
        if dht_on {
            // The node starts now, from its saved nodes: the routers follow as their names
            // resolve.
            let saved = saved.map(|t| t.nodes).unwrap_or_default();
            engine.dht_bootstrap(R::now(), &[], &saved);
        }
        let driver = Driver::new(
            engine,
            in_tx,
            events.clone(),
            accepts,
            seed ^ 0x9e37_79b9_7f4a_7c15,
            http,
        )
        .with_lsd(lsd)
        .with_udp(dht_state, udp);
        let task = R::spawn(driver.run(cmd_rx, in_rx));
        Ok(Session {
            shared: Arc::new(Shared {
                commands: cmd_tx,
                peer_id,
                port,
            }),
            events,
            driver: Some(task),
            lsd_groups,
            dht_port,
        })
    }
}

/// Opens the session's UDP port on `port` when the DHT or uTP needs it. One that does not
/// open is an error when uTP is the only transport (the session could reach nobody);
/// otherwise it is logged and what needs it is switched off in `config`, so that the node
/// does not tell peers (PORT) of a port nobody answers on, nor the engine dial over uTP.
fn open_udp<R: Runtime>(
    config: &mut Config,
    ip: Option<IpAddr>,
    port: u16,
    inputs: &async_channel::Sender<Msg<R>>,
) -> std::io::Result<Option<UdpPort<R>>> {
    if !config.dht && !config.transports.utp() {
        return Ok(None);
    }
    match UdpPort::open(ip, port, inputs) {
        Ok(udp) => Ok(Some(udp)),
        Err(e) if config.transports == Transports::Utp => Err(e),
        Err(e) => {
            tracing::warn!(port, "UDP port did not open: no DHT, no uTP: {e}");
            config.dht = false;
            if config.transports.utp() {
                config.transports = Transports::Tcp;
            }
            Ok(None)
        }
    }
}

/// A BitTorrent session: one listening port serving any number of torrents.
///
/// Dropping it without [`Session::shutdown`] starts a graceful shutdown in the background
/// (which needs the runtime to keep running to finish).
pub struct Session<R: Runtime> {
    shared: Arc<Shared>,
    events: Arc<Fanout>,
    driver: Option<R::Task>,
    /// The local service discovery groups joined.
    lsd_groups: Vec<LsdGroup>,
    /// The DHT's UDP port, if its socket opened.
    dht_port: Option<u16>,
}

impl<R: Runtime> std::fmt::Debug for Session<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("port", &self.shared.port)
            .field("peer_id", &self.shared.peer_id)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Session<R> {
    /// A builder with the defaults: OS-chosen port, random peer id and seed.
    pub fn builder() -> SessionBuilder<R> {
        SessionBuilder {
            port: 0,
            ip: None,
            peer_id: None,
            seed: None,
            tune: Vec::new(),
            resume_interval: Some(DEFAULT_RESUME_SAVE_INTERVAL),
            lsd_interface: LsdInterface::Default,
            dht: DhtOptions::default(),
            #[cfg(feature = "https")]
            tracker_roots: Vec::new(),
            runtime: PhantomData,
        }
    }

    /// The port we listen on: the TCP listener's, whose number the UDP port (DHT, uTP)
    /// shares; with uTP only ([`SessionBuilder::transports`]), the UDP port.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// The local service discovery groups the session joined: empty when LSD is off or its
    /// sockets could not be opened (then the session finds peers by other means only).
    pub fn local_discovery(&self) -> &[LsdGroup] {
        &self.lsd_groups
    }

    /// The UDP port of the DHT: the listening port's number, or `None` when the DHT is off
    /// or the UDP port could not be opened.
    pub fn dht_port(&self) -> Option<u16> {
        self.dht_port
    }

    /// Where the DHT node is: its id, the size of its routing table and what it dropped;
    /// `None` when the DHT is off or the node has not started yet (it starts with its
    /// bootstrap, at once).
    pub async fn dht_status(&self) -> Result<Option<DhtStatus>, Error> {
        let (tx, rx) = reply();
        let job = Box::new(move |s: &mut engine::Session, _| {
            let _ = tx.try_send(Ok(s.dht_node().map(DhtStatus::of)));
        });
        self.command(Command::Run(job), rx).await
    }

    /// Every event of every torrent of the session from now on, until the session shuts
    /// down: subscribed before a torrent is added, it sees that torrent's first events too
    /// (as [`TorrentOptions::subscribe`] does for one torrent).
    pub fn events(&self) -> Events {
        self.events.subscribe()
    }

    /// Adds a torrent: reads and validates it, refuses a layout its base directory cannot
    /// hold ([`Error::Layout`]), loads its resume data (trusting pieces whose files are
    /// unchanged, checking again those whose files changed), checks existing files when there
    /// is no resume data, and starts it in the state asked for (a torrent to be started starts
    /// once that check is done). The events of that check come before this returns: to see
    /// them, subscribe first ([`TorrentOptions::subscribe`]).
    pub async fn add_torrent(&self, opts: TorrentOptions) -> Result<Torrent<R>, Error> {
        let meta = opts.source.load::<R>().await?;
        self.add_metainfo(meta, &opts).await
    }

    /// Adds the torrent `meta` with `opts` (whose source is not read again).
    async fn add_metainfo<S>(
        &self,
        meta: Metainfo,
        opts: &TorrentOptions<S>,
    ) -> Result<Torrent<R>, Error> {
        let base = opts.base();
        let meta = Arc::new(meta);
        let storage = Arc::new(Storage::new(base.clone(), meta.clone()));
        let resume_file: Option<Arc<Path>> = opts.resume_file(&meta.info_hash()).map(Into::into);
        let (meta, storage, loaded, exists) = {
            let storage = storage.clone();
            let path = resume_file.clone();
            let verify = opts.verify_existing;
            R::unblock(move || {
                layout::check(&base, &meta)?;
                let loaded = path
                    .as_deref()
                    .and_then(|p| resume::load(p, &meta, &storage));
                let exists = loaded.is_none() && verify && storage.any_file_exists();
                Ok::<_, Error>((meta, storage, loaded, exists))
            })
            .await
            .ok_or(Error::SessionClosed)??
        };
        let mut add = opts.engine_options();
        if let Some((data, plan)) = loaded {
            add.uploaded = data.uploaded;
            add.downloaded = data.downloaded;
            if plan.trusted.count() > 0 {
                add.have = Some(plan.trusted);
            }
            if !plan.recheck.is_empty() {
                add.check = Some(engine::CheckScope::Pieces(plan.recheck));
            }
        } else if exists {
            add.check = Some(engine::CheckScope::All);
        }
        let tx = opts.fanout();
        let (reply, rx) = reply();
        let cmd = AddCmd {
            meta: meta.clone(),
            add,
            storage,
            resume_path: resume_file.clone(),
            on_pass: opts.on_hash_pass.clone(),
            on_fail: opts.on_hash_fail.clone(),
            events: tx.clone(),
            reply,
        };
        let id = self.command(Command::Add(Box::new(cmd)), rx).await?;
        let handle = Handle::new(id, self.shared.clone(), tx, resume_file);
        for &addr in &opts.peers {
            handle.add_peer(addr).await?;
        }
        Ok(Torrent::new(handle, meta))
    }

    /// Adds a torrent by magnet link ([`MagnetOptions::from_uri`] or
    /// [`MagnetOptions::from_magnet`]): it dials the link's `x.pe` peers (host names are
    /// resolved first), announces to its `tr` trackers, and fetches the metadata from peers.
    /// When the metadata arrives, the files are checked against the base directory as for a
    /// .torrent ([`Error::Layout`] from [`MagnetTorrent::wait_metadata`] if they cannot be
    /// laid out: the torrent stops and nothing is written), existing files are checked if
    /// `verify_existing` says so, and the metadata is kept beside the resume data as a
    /// .torrent ([`bt_proto::storage::metadata_path`]).
    ///
    /// Adding the same link again with the same resume file (the next run, say) finds that
    /// .torrent and adds the torrent from it, with its resume data, fetching nothing: the
    /// handle's [`MagnetTorrent::metadata`] is there at once and no
    /// [`crate::Event::MetadataReceived`] comes. The link's peers are added to it then too.
    /// With resume data off ([`TorrentOptions::resume`]), the metadata is neither kept nor
    /// looked for.
    ///
    /// With `verify_existing` (the default), every piece is checked once the metadata has
    /// arrived, as the file names are not known before: its
    /// [`crate::Event::PieceChecked`] events and hash callbacks come for a fresh download
    /// too (each missing piece failing, quickly). Switch it off for a directory known to
    /// hold none of the files.
    pub async fn add_magnet(&self, opts: MagnetOptions) -> Result<MagnetTorrent<R>, Error> {
        let magnet = opts.source.clone();
        let info_hash = magnet.info_hash;
        let base = opts.base();
        let resume_file: Option<Arc<Path>> = opts.resume_file(&info_hash).map(Into::into);
        let metadata_path = resume_file.as_deref().map(metadata_path);
        let (saved, ignores_case) = {
            let (path, base) = (metadata_path.clone(), base.clone());
            R::unblock(
                move || match path.and_then(|p| resume::load_metadata(&p, &info_hash)) {
                    Some(meta) => (Some(meta), false),
                    None => (None, layout::ignores_case(&base)),
                },
            )
            .await
            .ok_or(Error::SessionClosed)?
        };
        let slot = MetadataSlot::default();
        if let Some(meta) = saved {
            let t = self.add_metainfo(meta, &opts).await?;
            let (handle, meta) = t.parts();
            let _ = slot.set(meta.clone());
            add_link_peers(handle, magnet.peers);
            return Ok(MagnetTorrent::new(
                handle.clone(),
                info_hash,
                magnet.display_name,
                slot,
            ));
        }
        let add = engine::AddTorrent {
            // Whether any of its files is on disk is known only once their names are: a check
            // of files that are not there finds nothing, quickly.
            check: opts.verify_existing.then_some(engine::CheckScope::All),
            ..opts.engine_options()
        };
        let tx = opts.fanout();
        let (reply, rx) = reply();
        let cmd = AddMagnetCmd {
            magnet: magnet.clone(),
            add,
            base,
            ignores_case,
            resume_path: resume_file.clone(),
            metadata_path,
            metadata: slot.clone(),
            on_pass: opts.on_hash_pass.clone(),
            on_fail: opts.on_hash_fail.clone(),
            events: tx.clone(),
            reply,
        };
        let id = self.command(Command::AddMagnet(Box::new(cmd)), rx).await?;
        let handle = Handle::new(id, self.shared.clone(), tx, resume_file);
        for &addr in &opts.peers {
            handle.add_peer(addr).await?;
        }
        // The engine dials the link's literal addresses itself.
        let hosts = magnet.peers.into_iter();
        add_link_peers(
            &handle,
            hosts
                .filter(|p| matches!(p, MagnetPeer::Host { .. }))
                .collect(),
        );
        Ok(MagnetTorrent::new(
            handle,
            info_hash,
            magnet.display_name,
            slot,
        ))
    }

    /// Sends `c` to the driver and waits for its answer on `rx`.
    pub(crate) async fn command<T>(
        &self,
        c: Command,
        rx: async_channel::Receiver<Result<T, Error>>,
    ) -> Result<T, Error> {
        self.shared
            .commands
            .send(c)
            .await
            .map_err(|_| Error::SessionClosed)?;
        rx.recv().await.map_err(|_| Error::SessionClosed)?
    }

    /// Stops gracefully: `stopped` announced (within a short deadline), files flushed and
    /// closed, resume data written for every torrent. Returns when done.
    pub async fn shutdown(mut self) {
        let (reply, rx) = reply();
        if self
            .shared
            .commands
            .send(Command::Shutdown { reply: Some(reply) })
            .await
            .is_ok()
        {
            let _ = rx.recv().await;
        }
        if let Some(task) = self.driver.take() {
            R::join(task).await;
        }
        self.events.close();
    }
}

impl<R: Runtime> Drop for Session<R> {
    fn drop(&mut self) {
        if let Some(task) = self.driver.take() {
            let _ = self
                .shared
                .commands
                .try_send(Command::Shutdown { reply: None });
            R::detach(task);
        }
    }
}

/// Adds `peers` of a magnet link to the torrent of `handle`, in the background, resolving
/// host names first. A name that does not resolve is logged and skipped.
fn add_link_peers<R: Runtime>(handle: &Handle<R>, peers: Vec<MagnetPeer>) {
    if peers.is_empty() {
        return;
    }
    let handle = handle.clone();
    R::detach(R::spawn(async move {
        for peer in peers {
            let addrs = match peer {
                MagnetPeer::Addr(addr) => vec![addr],
                MagnetPeer::Host { host, port } => match R::resolve(host.clone(), port).await {
                    Ok(addrs) => addrs,
                    Err(e) => {
                        tracing::warn!("peer {host}:{port} of the magnet link: {e}");
                        continue;
                    }
                },
            };
            for addr in addrs {
                if handle.add_peer(addr).await.is_err() {
                    return;
                }
            }
        }
    }));
}
