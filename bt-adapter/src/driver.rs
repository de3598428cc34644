//! The driver: one task that owns the engine's `Session` and does what it says.
//!
//! It waits on three things: commands from the API handles, inputs from connection tasks,
//! disk jobs and tracker tasks (one bounded queue), and a timer set to the engine's
//! `poll_timeout`. After each wake-up it drains every output and event. The driver never
//! blocks: disk work runs on the runtime's blocking pool, network work in tasks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bt_proto::ConnId;
use bt_proto::engine::{self, Event, Input, Output, ResumeSave, TorrentId, TorrentState};
use bt_proto::read_runs::{ReadRequest, read_runs};
use bt_proto::resume::ResumeData;
use bt_proto::rng::Rng;
use bt_proto::tracker::AnnounceEvent;

use crate::dht::DhtState;
use crate::disk::Storage;
use crate::disk_queue::DiskQueue;
use crate::events::Fanout;
use crate::lsd::LsdSockets;
use crate::messages::{AddCmd, Command, Msg, PieceCallback, Reply};
use crate::net::{self, ConnHandle, FREE_BUFFER_TTL, Origin};
use crate::resume::BeforeStamp::{self, Close, Flush};
use crate::resume::ResumeFile;
use crate::runtime::Runtime;
use crate::tracker::HttpClient;
use crate::udp::UdpPort;
use crate::{Error, HashcheckReport, resume};

mod magnet;
mod readers;
use magnet::MagnetCtx;

/// Inputs taken from the queue before the driver drains the engine's outputs: batching
/// amortises the drain without letting one busy peer delay timers for long.
const MAX_BATCH: usize = 256;

/// The shortest time between two timer wake-ups: a guard, so that a deadline the engine
/// reports but cannot act on (a past one would be a bug there) never turns the driver into a
/// busy loop, whatever the runtime's timer resolution.
pub const MIN_TIMER_INTERVAL: Duration = Duration::from_millis(1);

/// Disk reads for peers in flight at once, per session, each of at most
/// [`MAX_READ_RUN`](bt_proto::read_runs::MAX_READ_RUN) bytes: enough to keep fast peers fed (and the disk queue busy), few enough to bound the
/// memory of blocks read but not yet sent to 16 × 512 KiB = 8 MiB.
pub const MAX_CONCURRENT_READS: usize = 16;

/// Time a shutdown waits for disk jobs in flight and for `stopped` announces.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// What woke the driver.
enum Wake<R: Runtime> {
    Command(Option<Command>),
    Input(Msg<R>),
    Timer,
}

struct TorrentCtx {
    /// Its files; `None` while a torrent added by magnet link fetches its metadata (and
    /// after its layout was refused): nothing is read or written for it then.
    storage: Option<Arc<Storage>>,
    events: Arc<Fanout>,
    on_pass: Option<PieceCallback>,
    on_fail: Option<PieceCallback>,
    resume: Option<Arc<ResumeFile>>,
    hashchecks: Vec<Reply<HashcheckReport>>,
    /// `wait_complete` calls waiting for the torrent to complete, or to fail.
    completes: Vec<Reply<Result<(), Error>>>,
    /// What a torrent added by magnet link needs until its storage is laid out; boxed, as
    /// most torrents never have it and a session may hold thousands.
    magnet: Option<Box<MagnetCtx>>,
    span: tracing::Span,
}

impl TorrentCtx {
    fn new(
        storage: Option<Arc<Storage>>,
        events: Arc<Fanout>,
        on_pass: Option<PieceCallback>,
        on_fail: Option<PieceCallback>,
        resume_path: Option<Arc<Path>>,
        span: tracing::Span,
    ) -> Self {
        TorrentCtx {
            storage,
            events,
            on_pass,
            on_fail,
            resume: resume_path.map(|p| Arc::new(ResumeFile::new(p))),
            hashchecks: Vec::new(),
            completes: Vec::new(),
            magnet: None,
            span,
        }
    }
}

/// A torrent's event streams end with it: removed, or its session shut down (the driver
/// and its contexts dropped), though handles keep its fan-out alive.
impl Drop for TorrentCtx {
    fn drop(&mut self) {
        self.events.close();
    }
}

/// The driver's state; see the module docs.
pub(crate) struct Driver<R: Runtime> {
    session: engine::Session,
    conns: HashMap<ConnId, ConnHandle<R>>,
    /// Boxed: the table of a session with thousands of torrents then holds pointers, and
    /// growing it moves and briefly doubles pointers rather than contexts of 150 bytes.
    torrents: HashMap<TorrentId, Box<TorrentCtx>>,
    inputs: Sender<Msg<R>>,
    session_events: Arc<Fanout>,
    checks: Arc<DiskQueue<Msg<R>>>,
    stores: Arc<DiskQueue<Msg<R>>>,
    reads_queue: Arc<DiskQueue<Msg<R>>>,
    pending_disk: usize,
    pending_stops: usize,
    stop_announces: Vec<R::Task>,
    listeners: Vec<R::Task>,
    deferred: Vec<Input>,
    /// Block reads the engine asked for during this drain, grouped into runs at its end.
    reads: Vec<ReadRequest>,
    rng: Rng,
    http: Arc<HttpClient>,
    lsd: LsdSockets<R>,
    dht: DhtState<R>,
    /// The session's UDP port, for the DHT and uTP; `None` when neither runs or it did not
    /// open.
    udp: Option<UdpPort<R>>,
    /// Streaming readers dropped, to close in the engine.
    dropped_readers: crate::messages::DroppedReaders,
}

fn event_torrent(e: &Event) -> Option<TorrentId> {
    e.torrent()
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(
        session: engine::Session,
        inputs: Sender<Msg<R>>,
        session_events: Arc<Fanout>,
        listeners: Vec<R::Task>,
        rng_seed: u64,
        http: Arc<HttpClient>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Driver {
            session,
            conns: HashMap::new(),
            torrents: HashMap::new(),
            checks: DiskQueue::new(cores, inputs.clone(), || Msg::DiskDone),
            stores: DiskQueue::new(cores, inputs.clone(), || Msg::DiskDone),
            reads_queue: DiskQueue::new(MAX_CONCURRENT_READS, inputs.clone(), || Msg::DiskDone),
            inputs,
            session_events,
            pending_disk: 0,
            pending_stops: 0,
            stop_announces: Vec::new(),
            listeners,
            deferred: Vec::new(),
            reads: Vec::new(),
            rng: Rng::seed_from_u64(rng_seed),
            http,
            lsd: LsdSockets::default(),
            dht: DhtState::default(),
            udp: None,
            dropped_readers: Default::default(),
        }
    }

    /// Carries out the engine's local service discovery on these sockets.
    pub(crate) fn with_lsd(mut self, lsd: LsdSockets<R>) -> Self {
        self.lsd = lsd;
        self
    }

    /// Keeps the DHT's table with `dht`, and sends the engine's datagrams through `udp`.
    pub(crate) fn with_udp(mut self, dht: DhtState<R>, udp: Option<UdpPort<R>>) -> Self {
        self.dht = dht;
        self.udp = udp;
        self
    }

    /// Runs until shut down (a `Shutdown` command, or every handle dropped).
    pub(crate) async fn run(mut self, commands: Receiver<Command>, inputs: Receiver<Msg<R>>) {
        let mut shutdown_reply = None;
        let mut last_timer: Option<Instant> = None;
        // When the receive-buffer pool is next trimmed; set while it holds buffers.
        let mut buffer_release: Option<Instant> = None;
        // What the engine was given before the driver ran (the DHT's first bootstrap).
        self.drain();
        loop {
            let engine_deadline = self
                .session
                .poll_timeout()
                .map(|t| last_timer.map_or(t, |l| t.max(l + MIN_TIMER_INTERVAL)));
            let deadline = match (engine_deadline, buffer_release) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Commands first, then inputs, then the timer: `or` polls in that order.
            let wake = futures_lite::future::or(
                async { Wake::Command(commands.recv().await.ok()) },
                futures_lite::future::or(
                    async {
                        match inputs.recv().await {
                            Ok(m) => Wake::Input(m),
                            Err(_) => std::future::pending().await,
                        }
                    },
                    async {
                        match deadline {
                            Some(t) => R::sleep_until(t).await,
                            None => std::future::pending().await,
                        }
                        Wake::Timer
                    },
                ),
            )
            .await;
            match wake {
                Wake::Command(Some(Command::Shutdown { reply })) => {
                    shutdown_reply = reply;
                    break;
                }
                Wake::Command(Some(c)) => self.command(c),
                Wake::Command(None) => break,
                Wake::Input(m) => {
                    self.msg(m);
                    for _ in 0..MAX_BATCH {
                        match inputs.try_recv() {
                            Ok(m) => self.msg(m),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Timer => {}
            }
            // The engine's deadline is checked on every wake-up, not only when the timer won
            // the race: under a steady stream of inputs the timer branch may never be polled
            // first, and request timeouts, choking rounds and keep-alives must not wait for a
            // quiet moment.
            let now = R::now();
            if engine_deadline.is_some_and(|t| t <= now) {
                last_timer = Some(now);
                self.session.handle_timeout(now);
            }
            if buffer_release.is_some_and(|t| t <= now) {
                buffer_release = net::release_free_buffers(now).then(|| now + FREE_BUFFER_TTL);
            } else if buffer_release.is_none() && net::buffers_pooled() {
                buffer_release = Some(now + FREE_BUFFER_TTL);
            }
            self.drain_outputs();
            if let Some(udp) = self.udp.as_mut() {
                udp.send_now().await;
            }
        }
        self.shutdown(&inputs).await;
        if let Some(r) = shutdown_reply {
            let _ = r.try_send(());
        }
    }

    /// Stops gracefully: lets disk jobs finish, stops every torrent (announcing `stopped`,
    /// closing connections, flushing files and saving resume data), waits for that within
    /// [`SHUTDOWN_DEADLINE`], then drops every connection and the listeners.
    async fn shutdown(&mut self, inputs: &Receiver<Msg<R>>) {
        for l in self.listeners.drain(..) {
            R::abort(l);
        }
        self.lsd.close();
        self.dht.close();
        self.dht.save(self.session.dht_saved()).await;
        // The UDP port stays open until the end: uTP connections close over it.
        let deadline = R::now() + SHUTDOWN_DEADLINE;
        let now = R::now();
        for id in self.session.torrent_ids() {
            if self
                .session
                .stats(id, now)
                .is_some_and(|s| s.state == TorrentState::Started)
            {
                self.session.set_state(now, id, TorrentState::Paused);
            }
        }
        self.drain();
        self.wait_idle(inputs, deadline).await;
        let now = R::now();
        for id in self.session.torrent_ids() {
            self.session.set_state(now, id, TorrentState::Stopped);
        }
        self.drain();
        self.wait_idle(inputs, deadline).await;
        for (_, c) in self.conns.drain() {
            c.abort();
        }
        for t in self.stop_announces.drain(..) {
            R::abort(t);
        }
        if let Some(udp) = self.udp.as_mut() {
            udp.close();
        }
    }

    /// Handles inputs until no disk job or `stopped` announce is in flight, or `deadline`.
    async fn wait_idle(&mut self, inputs: &Receiver<Msg<R>>, deadline: Instant) {
        while self.pending_disk > 0 || self.pending_stops > 0 {
            match crate::runtime::timeout_at::<R, _>(deadline, inputs.recv()).await {
                Some(Ok(m)) => self.msg(m),
                Some(Err(_)) | None => return,
            }
            self.drain();
        }
    }

    fn msg(&mut self, m: Msg<R>) {
        let now = R::now();
        match m {
            Msg::Input(input) => self.session.handle(now, input),
            Msg::Received(input, credit) => {
                self.session.handle(now, input);
                drop(credit);
            }
            Msg::Disk(input) => {
                self.pending_disk = self.pending_disk.saturating_sub(1);
                self.session.handle(now, input);
            }
            Msg::DiskMany(inputs) => {
                self.pending_disk = self.pending_disk.saturating_sub(1);
                for input in inputs {
                    self.session.handle(now, input);
                }
            }
            Msg::Written(conn) => {
                let bytes = self.conns.get(&conn).map_or(0, ConnHandle::take_written);
                if bytes > 0 {
                    self.session.handle(now, Input::Written { conn, bytes });
                }
            }
            Msg::DiskDone => self.pending_disk = self.pending_disk.saturating_sub(1),
            Msg::StopSent => self.pending_stops = self.pending_stops.saturating_sub(1),
            Msg::Accepted(stream, addr) => {
                let conn = self.session.accept(now, addr);
                let h =
                    net::spawn_conn::<R>(conn, addr, Origin::Accepted(stream), self.inputs.clone());
                self.conns.insert(conn, h);
            }
            Msg::Datagrams(datagrams) => {
                for (from, data) in datagrams {
                    self.session.handle(now, Input::Datagram { from, data });
                }
            }
            Msg::DhtBootstrap(routers) => self.session.dht_bootstrap(now, &routers, &[]),
            Msg::DhtSave => self.dht.save_later(self.session.dht_saved()),
        }
    }

    fn command(&mut self, c: Command) {
        let now = R::now();
        self.close_dropped_readers(now);
        match c {
            Command::OpenReader { id, file, reply } => {
                // Undelivered (the caller gave up), the reader's guard queues it for closing.
                let _ = reply.try_send(self.open_reader(now, id, file));
                self.close_dropped_readers(now);
            }
            Command::Add(add) => self.add(*add),
            Command::AddMagnet(add) => self.add_magnet(*add),
            Command::WaitMetadata { id, reply } => self.wait_metadata(id, reply),
            Command::Run(job) => job(&mut self.session, now),
            Command::SetState { id, state, reply } => {
                let answer = match self.refused(id, state) {
                    Some(e) => Err(e),
                    None if !self.session.has_torrent(id) => Err(Error::NoSuchTorrent),
                    None => {
                        self.session.set_state(now, id, state);
                        Ok(())
                    }
                };
                let _ = reply.try_send(answer);
            }
            Command::Hashcheck { id, scope, reply } => {
                if let Some(ctx) = self.torrents.get_mut(&id) {
                    ctx.hashchecks.push(reply);
                    self.session.hashcheck(now, id, scope);
                }
            }
            Command::WaitComplete { id, reply } => {
                let now = R::now();
                let (Some(ctx), Some(stats)) =
                    (self.torrents.get_mut(&id), self.session.stats(id, now))
                else {
                    return;
                };
                if stats.complete {
                    let _ = reply.try_send(Ok(()));
                } else if let Some(failure) = ctx.magnet.as_ref().and_then(|m| m.failure()) {
                    let _ = reply.try_send(Err(failure));
                } else if let Some(error) = stats.error {
                    let _ = reply.try_send(Err(Error::Storage(error)));
                } else {
                    ctx.completes.push(reply);
                }
            }
            Command::Resume { id, save, reply } => self.resume(id, save, reply),
            Command::Remove { id, reply } => {
                self.session.set_state(now, id, TorrentState::Stopped);
                self.drain();
                self.session.remove_torrent(now, id);
                self.torrents.remove(&id);
                let _ = reply.try_send(());
            }
            // Handled by `run`.
            Command::Shutdown { .. } => {}
        }
    }

    fn add(&mut self, cmd: AddCmd) {
        let info_hash = cmd.meta.info_hash();
        if self.session.torrent_by_info_hash(&info_hash).is_some() {
            let _ = cmd.reply.try_send(Err(Error::Duplicate(info_hash)));
            return;
        }
        let span = tracing::info_span!("torrent", %info_hash);
        // Its outputs (the add-time check) wait in the engine until the next drain, when the
        // context below is in place.
        let id = self.session.add_torrent(R::now(), cmd.meta, cmd.add);
        let ctx = TorrentCtx::new(
            Some(cmd.storage),
            cmd.events,
            cmd.on_pass,
            cmd.on_fail,
            cmd.resume_path,
            span,
        );
        self.torrents.insert(id, Box::new(ctx));
        let _ = cmd.reply.try_send(Ok(id));
    }

    /// Flushes the torrent's files, stamps them and hands back (and with `save` writes) its
    /// resume data, on the blocking pool.
    fn resume(
        &mut self,
        id: TorrentId,
        save: bool,
        reply: Reply<Result<(ResumeData, Option<PathBuf>), Error>>,
    ) {
        let (
            Some(ctx),
            Some(ResumeSave {
                data, generation, ..
            }),
        ) = (self.torrents.get(&id), self.session.resume_snapshot(id))
        else {
            let _ = reply.try_send(Err(Error::NoSuchTorrent));
            return;
        };
        let Some(storage) = ctx.storage.clone() else {
            let _ = reply.try_send(Err(Error::NoSuchTorrent));
            return;
        };
        let file = if save { ctx.resume.clone() } else { None };
        R::detach(R::spawn(async move {
            let result = R::unblock(move || {
                resume::save(&storage, data, generation, Flush, file.as_deref())
                    .map(|data| (data, file.map(|f| f.path().to_path_buf())))
            })
            .await;
            if let Some(result) = result {
                let _ = reply.try_send(result);
            }
        }));
    }

    /// Writes a resume snapshot the engine asked for, on the store queue (see
    /// [`resume::save`]): after flushing the torrent's files, or closing them (and so syncing
    /// them) when it stopped; with no snapshot, only closes them. Saves of one torrent may
    /// overlap; [`ResumeFile`] keeps the newest.
    fn save_resume(&mut self, torrent: TorrentId, save: Option<ResumeSave>, before: BeforeStamp) {
        let Some(ctx) = self.torrents.get(&torrent) else {
            return;
        };
        // A torrent fetching its metadata has no files to close and no pieces to save.
        let Some(storage) = ctx.storage.clone() else {
            return;
        };
        let file = ctx.resume.clone();
        if (file.is_none() || save.is_none()) && before == Flush {
            // Nothing to write, and nothing else asks for the flush.
            return;
        }
        let queue = self.stores.clone();
        self.spawn_disk(&queue, move || {
            let saved = match save {
                Some(save) => resume::save(
                    &storage,
                    save.data,
                    save.generation,
                    before,
                    file.as_deref(),
                )
                .map(drop),
                None => storage.close().map_err(Error::Storage),
            };
            if let Err(e) = saved {
                tracing::warn!("saving resume data or closing files: {e}");
            }
            Msg::DiskDone
        });
    }

    /// Drains the engine ([`Driver::drain_outputs`]) and hands its datagrams to the UDP
    /// port's sender.
    fn drain(&mut self) {
        self.drain_outputs();
        if let Some(udp) = self.udp.as_mut() {
            udp.flush();
        }
    }

    /// Drains the engine: every output done, every event delivered, until it is quiet.
    /// Datagrams wait in the UDP port until flushed.
    fn drain_outputs(&mut self) {
        loop {
            let mut busy = false;
            while let Some(o) = self.session.poll_output() {
                busy = true;
                self.output(o);
            }
            self.start_reads();
            while let Some(e) = self.session.poll_event() {
                busy = true;
                self.event(e);
            }
            if !self.deferred.is_empty() {
                busy = true;
                let now = R::now();
                for input in std::mem::take(&mut self.deferred) {
                    self.session.handle(now, input);
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// The files of `torrent`. A disk job for a torrent without them (one whose layout was
    /// refused as its metadata arrived, while the engine stops it) is dropped: nothing is
    /// written for it.
    fn storage_of(&self, torrent: TorrentId) -> Option<Arc<Storage>> {
        let storage = self.torrents.get(&torrent).and_then(|t| t.storage.clone());
        if storage.is_none() {
            tracing::debug!(?torrent, "disk job of a torrent without storage dropped");
        }
        storage
    }

    fn spawn_disk<F>(&mut self, queue: &Arc<DiskQueue<Msg<R>>>, job: F)
    where
        F: FnOnce() -> Msg<R> + Send + 'static,
    {
        self.pending_disk += 1;
        queue.spawn::<R>(Box::new(job));
    }

    /// Starts the block reads gathered in this drain: one disk job per run of consecutive
    /// blocks of one piece for one peer (see [`read_runs`]), each block then a
    /// slice of the run's buffer.
    fn start_reads(&mut self) {
        let runs = read_runs(&self.reads);
        self.reads.clear();
        for run in runs {
            let Some(storage) = self.storage_of(run.torrent) else {
                continue;
            };
            let queue = self.reads_queue.clone();
            self.spawn_disk(&queue, move || {
                let read = storage.read_run(run.piece, run.offset, run.len);
                let inputs = run
                    .split(&read)
                    .map(|(block, data)| Input::BlockRead {
                        torrent: run.torrent,
                        conn: run.conn,
                        block,
                        data,
                    })
                    .collect();
                Msg::DiskMany(inputs)
            });
        }
    }

    fn output(&mut self, o: Output) {
        match o {
            Output::Connect { conn, addr } => {
                let h =
                    net::spawn_conn::<R>(conn, addr, Origin::Connect(addr), self.inputs.clone());
                self.conns.insert(conn, h);
            }
            Output::Send { conn, bufs } => {
                if let Some(h) = self.conns.get(&conn)
                    && !h.send(bufs)
                {
                    tracing::debug!(%conn, "peer does not drain its writes; disconnecting");
                    if let Some(h) = self.conns.remove(&conn) {
                        h.abort();
                    }
                    self.deferred.push(Input::Closed { conn });
                }
            }
            Output::Close { conn, reason } => {
                tracing::debug!(%conn, ?reason, "closing");
                if let Some(h) = self.conns.remove(&conn) {
                    h.close();
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => self.reads.push(ReadRequest {
                torrent,
                conn,
                block,
            }),
            Output::VerifyAndStore {
                torrent,
                piece,
                hash,
                blocks,
            } => {
                let Some(storage) = self.storage_of(torrent) else {
                    return;
                };
                let queue = self.stores.clone();
                self.spawn_disk(&queue, move || {
                    let result = storage.store(piece, &hash, &blocks);
                    Msg::Disk(Input::PieceStored {
                        torrent,
                        piece,
                        result,
                    })
                });
            }
            Output::CheckPiece {
                torrent,
                piece,
                hash,
            } => {
                let Some(storage) = self.storage_of(torrent) else {
                    return;
                };
                let queue = self.checks.clone();
                self.spawn_disk(&queue, move || {
                    let ok = storage.check(piece, &hash);
                    Msg::Disk(Input::PieceChecked { torrent, piece, ok })
                });
            }
            Output::Announce {
                torrent,
                url,
                request,
            } => {
                let seed = self.rng.next_u64();
                let http = self.http.clone();
                let tx = self.inputs.clone();
                if request.event == Some(AnnounceEvent::Stopped) {
                    // Nobody waits for the answer; shutdown waits (briefly) for the send.
                    self.pending_stops += 1;
                    self.stop_announces.push(R::spawn(async move {
                        let _ = crate::tracker::announce::<R>(http, &url, &request, seed).await;
                        let _ = tx.send(Msg::StopSent).await;
                    }));
                } else {
                    R::detach(R::spawn(async move {
                        let result =
                            crate::tracker::announce::<R>(http, &url, &request, seed).await;
                        let input = Input::Announced {
                            torrent,
                            url,
                            result,
                        };
                        let _ = tx.send(Msg::Input(input)).await;
                    }));
                }
            }
            Output::SaveResume(save) => self.save_resume(save.torrent, Some(save), Flush),
            Output::CloseFiles { torrent, resume } => self.save_resume(torrent, resume, Close),
            Output::MetadataReceived { torrent } => self.metadata_received(torrent),
            o @ (Output::SendMulticast { .. } | Output::SendDatagram { .. }) => self.datagram(o),
        }
    }

    /// A datagram to send: local service discovery's, or the UDP port's (DHT and uTP).
    fn datagram(&mut self, o: Output) {
        match o {
            Output::SendMulticast { group, data } => self.lsd.send(group, data),
            Output::SendDatagram { to, data } => {
                if let Some(udp) = self.udp.as_mut() {
                    udp.send(to, data);
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, e: Event) {
        let Some(id) = event_torrent(&e) else {
            self.session_events.send(&e);
            return;
        };
        let Some(ctx) = self.torrents.get_mut(&id) else {
            self.session_events.send(&e);
            return;
        };
        let _enter = ctx.span.clone().entered();
        tracing::debug!(event = ?e);
        let (pass, fail) = (ctx.on_pass.clone(), ctx.on_fail.clone());
        match &e {
            Event::HashPassed { piece, .. }
            | Event::PieceChecked {
                piece, ok: true, ..
            } => {
                if let Some(f) = pass {
                    f(*piece);
                }
            }
            Event::HashFailed { piece, .. }
            | Event::PieceChecked {
                piece, ok: false, ..
            } => {
                if let Some(f) = fail {
                    f(*piece);
                }
            }
            Event::HashcheckDone {
                verified, total, ..
            } => {
                let report = HashcheckReport::new(*verified, *total);
                for w in ctx.hashchecks.drain(..) {
                    let _ = w.try_send(report);
                }
            }
            Event::Complete { .. } => {
                for w in ctx.completes.drain(..) {
                    let _ = w.try_send(Ok(()));
                }
            }
            Event::MetadataInvalid { error, .. } => {
                magnet::fail(ctx, magnet::Failure::Invalid(error.clone()));
            }
            // The torrent will not complete until it is started again: the waits end with
            // the error that put it there.
            Event::StateChanged {
                state: TorrentState::Failed,
                ..
            } => {
                if let Some(error) = self.session.stats(id, R::now()).and_then(|s| s.error) {
                    for w in ctx.completes.drain(..) {
                        let _ = w.try_send(Err(Error::Storage(error.clone())));
                    }
                }
            }
            _ => {}
        }
        ctx.events.send(&e);
        drop(_enter);
        self.session_events.send(&e);
    }
}
