//! The driver: one task that owns the engine's `Session` and does what it says.
//!
//! It waits on three things: commands from the API handles, inputs from connection tasks,
//! disk jobs and tracker tasks (one bounded queue), and a timer set to the engine's
//! `poll_timeout`. After each wake-up it drains every output and event. The driver never
//! blocks: disk work runs on the blocking pool, network work in tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bt_proto::engine::{
    self, AddTorrent, CheckScope, Event, Input, Output, TorrentId, TorrentState,
};
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;
use bt_proto::rng::Rng;
use bt_proto::tracker::AnnounceEvent;
use bt_proto::{ConnId, PieceIndex};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::disk::Storage;
use crate::net::{self, ConnHandle, Origin};
use crate::{Error, HashcheckReport, resume};

/// Inputs taken from the queue before the driver drains the engine's outputs: batching
/// amortises the drain without letting one busy peer delay timers for long.
const MAX_BATCH: usize = 256;

/// Block reads for peers in flight at once, per session: enough to keep fast peers fed, few
/// enough to bound the memory of blocks read but not yet sent.
pub const MAX_CONCURRENT_READS: usize = 64;

/// Time a shutdown waits for disk jobs in flight and for `stopped` announces.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// A callback taking a piece index.
pub(crate) type PieceCallback = Arc<dyn Fn(PieceIndex) + Send + Sync>;

/// A job run on the engine by the driver, for the API's queries and simple commands.
pub(crate) type Job = Box<dyn FnOnce(&mut engine::Session, std::time::Instant) + Send>;

/// What the connection, disk and tracker tasks send the driver.
pub(crate) enum Msg {
    /// Something for the engine.
    Input(Input),
    /// A disk job finished with this input for the engine.
    Disk(Input),
    /// A disk job with nothing for the engine (closing files, saving resume data) finished.
    DiskDone,
    /// The listener accepted a connection.
    Accepted(TcpStream, SocketAddr),
}

/// Everything the driver needs to add a torrent.
pub(crate) struct AddCmd {
    pub(crate) meta: Metainfo,
    pub(crate) add: AddTorrent,
    pub(crate) storage: Arc<Storage>,
    /// Pieces to check once added; the torrent starts (if it is to) after the check.
    pub(crate) check: Option<CheckScope>,
    pub(crate) resume_path: Option<PathBuf>,
    pub(crate) on_pass: Option<PieceCallback>,
    pub(crate) on_fail: Option<PieceCallback>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) reply: oneshot::Sender<Result<TorrentId, Error>>,
}

/// What the API handles ask the driver.
pub(crate) enum Command {
    Add(Box<AddCmd>),
    /// Run a job on the engine (it replies itself).
    Run(Job),
    SetState {
        id: TorrentId,
        state: TorrentState,
        reply: oneshot::Sender<bool>,
    },
    Hashcheck {
        id: TorrentId,
        scope: CheckScope,
        reply: oneshot::Sender<HashcheckReport>,
    },
    WaitComplete {
        id: TorrentId,
        reply: oneshot::Sender<()>,
    },
    Resume {
        id: TorrentId,
        save: bool,
        reply: oneshot::Sender<Result<(ResumeData, Option<PathBuf>), Error>>,
    },
    Remove {
        id: TorrentId,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: Option<oneshot::Sender<()>>,
    },
}

struct TorrentCtx {
    storage: Arc<Storage>,
    events: broadcast::Sender<Event>,
    on_pass: Option<PieceCallback>,
    on_fail: Option<PieceCallback>,
    resume_path: Option<PathBuf>,
    hashchecks: Vec<oneshot::Sender<HashcheckReport>>,
    completes: Vec<oneshot::Sender<()>>,
    /// The state to enter when the check started at add time is done.
    after_check: Option<TorrentState>,
    span: tracing::Span,
}

/// The driver's state; see the module docs.
pub(crate) struct Driver {
    session: engine::Session,
    conns: HashMap<ConnId, ConnHandle>,
    torrents: HashMap<TorrentId, TorrentCtx>,
    inputs: mpsc::Sender<Msg>,
    session_events: broadcast::Sender<Event>,
    check_sem: Arc<Semaphore>,
    store_sem: Arc<Semaphore>,
    read_sem: Arc<Semaphore>,
    pending_disk: usize,
    stop_announces: JoinSet<()>,
    listeners: Vec<AbortHandle>,
    deferred: Vec<Input>,
    rng: Rng,
    user_agent: String,
}

fn event_torrent(e: &Event) -> Option<TorrentId> {
    match e {
        Event::HashPassed { torrent, .. }
        | Event::HashFailed { torrent, .. }
        | Event::PieceChecked { torrent, .. }
        | Event::HashcheckDone { torrent, .. }
        | Event::StateChanged { torrent, .. }
        | Event::PeerConnected { torrent, .. }
        | Event::PeerBanned { torrent, .. }
        | Event::TrackerReply { torrent, .. }
        | Event::TrackerWarning { torrent, .. }
        | Event::TrackerError { torrent, .. }
        | Event::Complete { torrent }
        | Event::StorageFailed { torrent, .. } => Some(*torrent),
        Event::PeerDisconnected { torrent, .. } => *torrent,
    }
}

impl Driver {
    pub(crate) fn new(
        session: engine::Session,
        inputs: mpsc::Sender<Msg>,
        session_events: broadcast::Sender<Event>,
        listeners: Vec<AbortHandle>,
        rng_seed: u64,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let user_agent = session.config().client_name.replace(' ', "/");
        Driver {
            session,
            conns: HashMap::new(),
            torrents: HashMap::new(),
            inputs,
            session_events,
            check_sem: Arc::new(Semaphore::new(cores)),
            store_sem: Arc::new(Semaphore::new(cores)),
            read_sem: Arc::new(Semaphore::new(MAX_CONCURRENT_READS)),
            pending_disk: 0,
            stop_announces: JoinSet::new(),
            listeners,
            deferred: Vec::new(),
            rng: Rng::seed_from_u64(rng_seed),
            user_agent,
        }
    }

    /// Runs until shut down (a `Shutdown` command, or every handle dropped).
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inputs: mpsc::Receiver<Msg>,
    ) {
        let mut shutdown_reply = None;
        loop {
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            let timer = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                c = commands.recv() => match c {
                    Some(Command::Shutdown { reply }) => {
                        shutdown_reply = reply;
                        break;
                    }
                    Some(c) => self.command(c),
                    None => break,
                },
                Some(m) = inputs.recv() => {
                    self.msg(m);
                    for _ in 0..MAX_BATCH {
                        match inputs.try_recv() {
                            Ok(m) => self.msg(m),
                            Err(_) => break,
                        }
                    }
                }
                () = timer => self.session.handle_timeout(Instant::now().into_std()),
            }
            self.drain();
        }
        self.shutdown(&mut inputs).await;
        if let Some(r) = shutdown_reply {
            let _ = r.send(());
        }
    }

    /// Stops gracefully: lets disk jobs finish, stops every torrent (announcing `stopped`,
    /// closing connections, flushing files and saving resume data), waits for that within
    /// [`SHUTDOWN_DEADLINE`], then drops every connection and the listeners.
    async fn shutdown(&mut self, inputs: &mut mpsc::Receiver<Msg>) {
        for l in &self.listeners {
            l.abort();
        }
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        let now = Instant::now().into_std();
        for id in self.session.torrent_ids() {
            if self
                .session
                .stats(id)
                .is_some_and(|s| s.state == TorrentState::Started)
            {
                self.session.set_state(now, id, TorrentState::Paused);
            }
        }
        self.drain();
        self.wait_idle(inputs, deadline).await;
        let now = Instant::now().into_std();
        for id in self.session.torrent_ids() {
            self.session.set_state(now, id, TorrentState::Stopped);
        }
        self.drain();
        self.wait_idle(inputs, deadline).await;
        for (_, c) in self.conns.drain() {
            c.abort();
        }
        self.stop_announces.abort_all();
    }

    /// Handles inputs until no disk job or `stopped` announce is in flight, or `deadline`.
    async fn wait_idle(&mut self, inputs: &mut mpsc::Receiver<Msg>, deadline: Instant) {
        while self.pending_disk > 0 || !self.stop_announces.is_empty() {
            tokio::select! {
                Some(m) = inputs.recv() => self.msg(m),
                Some(_) = self.stop_announces.join_next(), if !self.stop_announces.is_empty() => {}
                () = tokio::time::sleep_until(deadline) => return,
            }
            self.drain();
        }
    }

    fn msg(&mut self, m: Msg) {
        let now = Instant::now().into_std();
        match m {
            Msg::Input(input) => self.session.handle(now, input),
            Msg::Disk(input) => {
                self.pending_disk = self.pending_disk.saturating_sub(1);
                self.session.handle(now, input);
            }
            Msg::DiskDone => self.pending_disk = self.pending_disk.saturating_sub(1),
            Msg::Accepted(stream, addr) => {
                let conn = self.session.accept(now, addr);
                let h = net::spawn_conn(conn, addr, Origin::Accepted(stream), self.inputs.clone());
                self.conns.insert(conn, h);
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now().into_std();
        match c {
            Command::Add(add) => self.add(*add),
            Command::Run(job) => job(&mut self.session, now),
            Command::SetState { id, state, reply } => {
                let known = self.session.stats(id).is_some();
                if let Some(ctx) = self.torrents.get_mut(&id) {
                    // The user decides now, not the check started at add time.
                    ctx.after_check = None;
                }
                self.session.set_state(now, id, state);
                let _ = reply.send(known);
            }
            Command::Hashcheck { id, scope, reply } => {
                if let Some(ctx) = self.torrents.get_mut(&id) {
                    ctx.hashchecks.push(reply);
                    self.session.hashcheck(id, scope);
                }
            }
            Command::WaitComplete { id, reply } => {
                if let Some(ctx) = self.torrents.get_mut(&id) {
                    if self.session.stats(id).is_some_and(|s| s.complete) {
                        let _ = reply.send(());
                    } else {
                        ctx.completes.push(reply);
                    }
                }
            }
            Command::Resume { id, save, reply } => self.resume(id, save, reply),
            Command::Remove { id, reply } => {
                self.session.set_state(now, id, TorrentState::Stopped);
                self.drain();
                self.session.remove_torrent(now, id);
                self.torrents.remove(&id);
                let _ = reply.send(());
            }
            // Handled by `run`.
            Command::Shutdown { .. } => {}
        }
    }

    fn add(&mut self, cmd: AddCmd) {
        let info_hash = cmd.meta.info_hash();
        if self.session.find(&info_hash).is_some() {
            let _ = cmd.reply.send(Err(Error::Duplicate(info_hash)));
            return;
        }
        let now = Instant::now().into_std();
        let mut add = cmd.add;
        let target = add.state;
        let after_check = match (&cmd.check, target) {
            (Some(_), TorrentState::Started) => {
                // Nothing is requested or announced before the check has found what is
                // already there. (Stopped rather than Paused: the engine starts announcing
                // only on a change from Stopped to Started.)
                add.state = TorrentState::Stopped;
                Some(TorrentState::Started)
            }
            _ => None,
        };
        let span = tracing::info_span!("torrent", %info_hash);
        let id = self.session.add_torrent(now, cmd.meta, add);
        self.torrents.insert(
            id,
            TorrentCtx {
                storage: cmd.storage,
                events: cmd.events,
                on_pass: cmd.on_pass,
                on_fail: cmd.on_fail,
                resume_path: cmd.resume_path,
                hashchecks: Vec::new(),
                completes: Vec::new(),
                after_check,
                span,
            },
        );
        if let Some(scope) = cmd.check {
            self.session.hashcheck(id, scope);
        }
        let _ = cmd.reply.send(Ok(id));
    }

    /// Flushes the torrent's files, stamps them and hands back (and with `save` writes) its
    /// resume data, on the blocking pool.
    fn resume(
        &mut self,
        id: TorrentId,
        save: bool,
        reply: oneshot::Sender<Result<(ResumeData, Option<PathBuf>), Error>>,
    ) {
        let (Some(ctx), Some(data)) = (
            self.torrents.get(&id),
            self.session.resume_data(id, Vec::new()),
        ) else {
            let _ = reply.send(Err(Error::NoSuchTorrent));
            return;
        };
        let storage = ctx.storage.clone();
        let path = if save { ctx.resume_path.clone() } else { None };
        tokio::task::spawn_blocking(move || {
            let result = resume::snapshot(&storage, data, false).and_then(|data| {
                if let Some(p) = &path {
                    resume::write(p, &data)?;
                }
                Ok((data, path))
            });
            let _ = reply.send(result);
        });
    }

    /// Drains the engine: every output done, every event delivered, until it is quiet.
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(o) = self.session.poll_output() {
                busy = true;
                self.output(o);
            }
            while let Some(e) = self.session.poll_event() {
                busy = true;
                self.event(e);
            }
            if !self.deferred.is_empty() {
                busy = true;
                let now = Instant::now().into_std();
                for input in std::mem::take(&mut self.deferred) {
                    self.session.handle(now, input);
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn spawn_disk<F>(&mut self, sem: &Arc<Semaphore>, job: F)
    where
        F: FnOnce() -> Msg + Send + 'static,
    {
        self.pending_disk += 1;
        let sem = sem.clone();
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let msg = tokio::task::spawn_blocking(job)
                .await
                .unwrap_or(Msg::DiskDone);
            drop(permit);
            let _ = tx.send(msg).await;
        });
    }

    fn output(&mut self, o: Output) {
        match o {
            Output::Connect { conn, addr } => {
                let h = net::spawn_conn(conn, addr, Origin::Connect(addr), self.inputs.clone());
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
            } => {
                let Some(storage) = self.torrents.get(&torrent).map(|t| t.storage.clone()) else {
                    return;
                };
                let sem = self.read_sem.clone();
                self.spawn_disk(&sem, move || {
                    let data = storage.read_block(&block);
                    Msg::Disk(Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        data,
                    })
                });
            }
            Output::VerifyAndStore {
                torrent,
                piece,
                hash,
                blocks,
            } => {
                let Some(storage) = self.torrents.get(&torrent).map(|t| t.storage.clone()) else {
                    return;
                };
                let sem = self.store_sem.clone();
                self.spawn_disk(&sem, move || {
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
                let Some(storage) = self.torrents.get(&torrent).map(|t| t.storage.clone()) else {
                    return;
                };
                let sem = self.check_sem.clone();
                self.spawn_disk(&sem, move || {
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
                let ua = self.user_agent.clone();
                let tx = self.inputs.clone();
                if request.event == Some(AnnounceEvent::Stopped) {
                    // Nobody waits for the answer; shutdown waits (briefly) for the send.
                    self.stop_announces.spawn(async move {
                        let _ = crate::tracker::announce(&url, &request, &ua, seed).await;
                    });
                } else {
                    tokio::spawn(async move {
                        let result = crate::tracker::announce(&url, &request, &ua, seed).await;
                        let input = Input::Announced {
                            torrent,
                            url,
                            result,
                        };
                        let _ = tx.send(Msg::Input(input)).await;
                    });
                }
            }
            Output::CloseFiles { torrent } => {
                let Some(ctx) = self.torrents.get(&torrent) else {
                    return;
                };
                let storage = ctx.storage.clone();
                let path = ctx.resume_path.clone();
                let data = self.session.resume_data(torrent, Vec::new());
                let sem = self.store_sem.clone();
                self.spawn_disk(&sem, move || {
                    if let Err(e) = storage.close() {
                        tracing::warn!("closing files: {e}");
                    }
                    if let (Some(path), Some(data)) = (path, data) {
                        let saved = resume::snapshot(&storage, data, true)
                            .and_then(|d| resume::write(&path, &d));
                        if let Err(e) = saved {
                            tracing::warn!("saving resume data: {e}");
                        }
                    }
                    Msg::DiskDone
                });
            }
        }
    }

    fn event(&mut self, e: Event) {
        let Some(id) = event_torrent(&e) else {
            let _ = self.session_events.send(e);
            return;
        };
        let Some(ctx) = self.torrents.get_mut(&id) else {
            let _ = self.session_events.send(e);
            return;
        };
        let _enter = ctx.span.enter();
        tracing::debug!(event = ?e);
        let (pass, fail) = (ctx.on_pass.clone(), ctx.on_fail.clone());
        let mut start_now = None;
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
                let report = HashcheckReport {
                    verified: *verified,
                    total: *total,
                };
                for w in ctx.hashchecks.drain(..) {
                    let _ = w.send(report);
                }
                start_now = ctx.after_check.take();
            }
            Event::Complete { .. } => {
                for w in ctx.completes.drain(..) {
                    let _ = w.send(());
                }
            }
            Event::StorageFailed { error, .. } => {
                tracing::warn!("storage failed: {error}");
            }
            _ => {}
        }
        let _ = ctx.events.send(e.clone());
        drop(_enter);
        let _ = self.session_events.send(e);
        if let Some(state) = start_now {
            self.session.set_state(Instant::now().into_std(), id, state);
        }
    }
}
