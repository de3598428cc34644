//! The driver's side of torrents added by magnet link: adding one with no storage, laying
//! its storage out when the engine says the metadata arrived ([`Output::MetadataReceived`],
//! before any disk job of the torrent), keeping the metadata beside the resume data, and
//! telling those waiting for the metadata how it went.
//!
//! [`Output::MetadataReceived`]: bt_proto::engine::Output::MetadataReceived

use std::path::PathBuf;
use std::sync::Arc;

use bt_proto::engine::{TorrentId, TorrentState};
use bt_proto::metainfo::{Metainfo, MetainfoError};
use bt_proto::storage::{LayoutError, check_layout};

use super::{Driver, TorrentCtx};
use crate::disk::Storage;
use crate::messages::{AddMagnetCmd, MetadataSlot, Msg, Reply};
use crate::runtime::Runtime;
use crate::{Error, resume};

/// Why a magnet torrent's metadata could not be used.
#[derive(Clone, Debug)]
pub(super) enum Failure {
    /// It is not a torrent this crate accepts (the engine stopped the torrent).
    Invalid(MetainfoError),
    /// Its files cannot be laid out under the base directory (the driver stopped the
    /// torrent, and it stays stopped: starting it again would write where it must not).
    Layout { base: PathBuf, source: LayoutError },
}

impl Failure {
    fn error(&self) -> Error {
        match self {
            Failure::Invalid(e) => Error::Metainfo(e.clone()),
            Failure::Layout { base, source } => Error::Layout {
                base: base.clone(),
                source: source.clone(),
            },
        }
    }
}

/// What a torrent added by magnet link needs until its storage is laid out.
pub(super) struct MagnetCtx {
    base: PathBuf,
    ignores_case: bool,
    metadata_path: Option<PathBuf>,
    /// Filled once the storage is laid out; the handles read it.
    slot: MetadataSlot,
    /// `wait_metadata` calls waiting.
    waits: Vec<Reply<Result<Arc<Metainfo>, Error>>>,
    failure: Option<Failure>,
}

impl MagnetCtx {
    /// The error that keeps the torrent from completing, if its metadata failed.
    pub(super) fn failure(&self) -> Option<Error> {
        self.failure.as_ref().map(Failure::error)
    }
}

/// Records that the metadata of the torrent of `ctx` failed, and tells whoever waits for its
/// metadata or its completion: neither will come.
pub(super) fn fail(ctx: &mut TorrentCtx, failure: Failure) {
    let Some(m) = ctx.magnet.as_mut() else {
        return;
    };
    for w in m.waits.drain(..) {
        let _ = w.try_send(Err(failure.error()));
    }
    for w in ctx.completes.drain(..) {
        let _ = w.try_send(Err(failure.error()));
    }
    m.failure = Some(failure);
}

impl<R: Runtime> Driver<R> {
    pub(super) fn add_magnet(&mut self, cmd: AddMagnetCmd) {
        let info_hash = cmd.magnet.info_hash;
        if self.session.torrent_by_info_hash(&info_hash).is_some() {
            let _ = cmd.reply.try_send(Err(Error::Duplicate(info_hash)));
            return;
        }
        let span = tracing::info_span!("torrent", %info_hash);
        let id = self.session.add_magnet(R::now(), &cmd.magnet, cmd.add);
        let mut ctx = TorrentCtx::new(
            None,
            cmd.events,
            cmd.on_pass,
            cmd.on_fail,
            cmd.resume_path,
            span,
        );
        ctx.magnet = Some(Box::new(MagnetCtx {
            base: cmd.base,
            ignores_case: cmd.ignores_case,
            metadata_path: cmd.metadata_path,
            slot: cmd.metadata,
            waits: Vec::new(),
            failure: None,
        }));
        self.torrents.insert(id, Box::new(ctx));
        let _ = cmd.reply.try_send(Ok(id));
    }

    /// Answers `reply` with the torrent's metainfo once its storage is laid out (at once if
    /// it is, or if its metadata failed).
    pub(super) fn wait_metadata(
        &mut self,
        id: TorrentId,
        reply: Reply<Result<Arc<Metainfo>, Error>>,
    ) {
        let Some(ctx) = self.torrents.get_mut(&id) else {
            let _ = reply.try_send(Err(Error::NoSuchTorrent));
            return;
        };
        match ctx.magnet.as_mut() {
            Some(m) => {
                if let Some(meta) = m.slot.get() {
                    let _ = reply.try_send(Ok(meta.clone()));
                } else if let Some(e) = m.failure() {
                    let _ = reply.try_send(Err(e));
                } else {
                    m.waits.push(reply);
                }
            }
            // A torrent added from a .torrent has had its metainfo from the start.
            None => {
                let meta = self.session.metainfo(id).cloned().map(Arc::new);
                let _ = reply.try_send(meta.ok_or(Error::NoSuchTorrent));
            }
        }
    }

    /// Why `id` may not enter `state`: a torrent whose layout was refused stays stopped.
    /// Starting one whose metadata was invalid fetches it again, so that failure is
    /// forgotten.
    pub(super) fn refused(&mut self, id: TorrentId, state: TorrentState) -> Option<Error> {
        let m = self.torrents.get_mut(&id)?.magnet.as_mut()?;
        match &m.failure {
            Some(f @ Failure::Layout { .. }) if state != TorrentState::Stopped => Some(f.error()),
            Some(Failure::Invalid(_)) if state != TorrentState::Stopped => {
                m.failure = None;
                None
            }
            _ => None,
        }
    }

    /// The metadata of `id` arrived: its files are checked against the base directory and
    /// its storage made, before any later output of the engine is carried out; the
    /// metadata is written beside the resume data. A layout that cannot be is refused: the
    /// torrent stops and nothing is written.
    pub(super) fn metadata_received(&mut self, id: TorrentId) {
        let Some(meta) = self.session.metainfo(id).cloned() else {
            return;
        };
        let Some(ctx) = self.torrents.get_mut(&id) else {
            return;
        };
        let Some(m) = ctx.magnet.as_mut() else {
            return;
        };
        let _enter = ctx.span.clone().entered();
        if let Err(source) = check_layout(&meta, m.ignores_case) {
            tracing::warn!("metadata refused: {source}");
            let base = m.base.clone();
            fail(ctx, Failure::Layout { base, source });
            self.session.set_state(R::now(), id, TorrentState::Stopped);
            return;
        }
        let meta = Arc::new(meta);
        ctx.storage = Some(Arc::new(Storage::new(m.base.clone(), meta.clone())));
        let _ = m.slot.set(meta.clone());
        for w in m.waits.drain(..) {
            let _ = w.try_send(Ok(meta.clone()));
        }
        let Some(path) = m.metadata_path.clone() else {
            return;
        };
        let bytes = meta.to_torrent_bytes();
        let queue = self.stores.clone();
        self.spawn_disk(&queue, move || {
            // Lost, it costs a new fetch on the next run, never wrong data.
            if let Err(e) = resume::write_atomic(&path, &bytes) {
                tracing::warn!("keeping the metadata: {e}");
            }
            Msg::DiskDone
        });
    }
}
