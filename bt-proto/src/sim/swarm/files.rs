//! Each node's files on the simulated disk: a torrent's content put there or read back, and
//! the block reads and piece writes a session asks for, through bt-proto's own read and
//! write plans.
//!
//! The content put on seeds is kept once in a [`Library`]: a piece a leecher stores that
//! equals it is written as slices of it, so a thousand leechers of one torrent hold one copy,
//! and its SHA-1 is taken once, as every host hashing the same bytes gets the same answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{DATA_DIR, Node, NodeId, Swarm};
use crate::engine::{StorageError, TorrentId};
use crate::metainfo::Metainfo;
use crate::sim::disk::MemDisk;
use crate::storage::{FileWrite, fill_from_plan, read_plan, verify_blocks, write_plan};
use crate::{InfoHash, PieceHash, PieceIndex};

/// The files put on seeds, by torrent and file index (the first content put for a file),
/// and whether pieces equal to them matched a piece hash.
#[derive(Debug, Default)]
pub(super) struct Library {
    files: BTreeMap<(InfoHash, usize), Bytes>,
    verdicts: BTreeMap<(InfoHash, PieceIndex, [u8; 20]), bool>,
}

impl Library {
    /// The library's copy of `bytes` as file `file` of `torrent` if it holds the same bytes,
    /// else `bytes` (kept as that file's copy if it has none yet).
    fn share(&mut self, torrent: InfoHash, file: usize, bytes: &[u8]) -> Bytes {
        match self.files.get(&(torrent, file)) {
            Some(kept) if kept[..] == *bytes => kept.clone(),
            Some(_) => Bytes::copy_from_slice(bytes),
            None => {
                let kept = Bytes::copy_from_slice(bytes);
                self.files.insert((torrent, file), kept.clone());
                kept
            }
        }
    }

    /// The writes of `plan` as slices of the library's files, if the plan's bytes equal
    /// them (`None` if any differ or the library lacks a file).
    fn shared_writes(&self, torrent: InfoHash, plan: &[FileWrite]) -> Option<Vec<FileWrite>> {
        plan.iter()
            .map(|w| {
                let kept = self.files.get(&(torrent, w.file))?;
                let start = usize::try_from(w.offset).ok()?;
                let len: usize = w.bufs.iter().map(Bytes::len).sum();
                let same = kept.get(start..start.checked_add(len)?)?;
                let mut rest = same;
                for buf in &w.bufs {
                    let (head, tail) = rest.split_at_checked(buf.len())?;
                    // A block received as the sender's slice of the library is the library's
                    // bytes where they lie: no comparison needed.
                    if head.as_ptr() != buf.as_ptr() && head != &buf[..] {
                        return None;
                    }
                    rest = tail;
                }
                Some(FileWrite {
                    file: w.file,
                    offset: w.offset,
                    bufs: vec![kept.slice(start..start + len)],
                })
            })
            .collect()
    }
}

impl Swarm {
    /// Piece `piece` of `torrent` as `node`'s disk holds it: the `span` (offset, length)
    /// of it a block names, or all of it.
    pub(super) fn read_piece(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        span: Option<(u32, u32)>,
    ) -> Result<Bytes, StorageError> {
        let (host, meta) = node_torrent(&self.nodes, node, torrent)?;
        let (offset, length) = span.unwrap_or((0, meta.piece_len(piece).unwrap_or(0)));
        read_bytes(&mut self.disk, host, meta, piece, offset, length)
    }

    /// Checks `blocks` against `hash` and, if they match, writes them to `node`'s disk as
    /// piece `piece` of `torrent`: `Ok(false)` on a mismatch. Blocks equal to the library's
    /// content are written as slices of it, and hashed once for all nodes.
    pub(super) fn verify_and_store(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        hash: &PieceHash,
        blocks: &[Bytes],
    ) -> Result<bool, StorageError> {
        let known = node_torrent(&self.nodes, node, torrent)
            .ok()
            .and_then(|(host, meta)| {
                let plan = write_plan(meta.piece_map(), piece, blocks).ok()?;
                // A piece with padding has bytes no file holds: those are compared by hashing.
                let planned: usize = plan.iter().flat_map(|w| &w.bufs).map(Bytes::len).sum();
                let whole: usize = blocks.iter().map(Bytes::len).sum();
                let ih = meta.info_hash();
                let shared = (planned == whole)
                    .then(|| self.library.shared_writes(ih, &plan))
                    .flatten()?;
                Some((host, ih, shared))
            });
        let ok = match &known {
            Some((_, ih, _)) => *self
                .library
                .verdicts
                .entry((*ih, piece, hash.0))
                .or_insert_with(|| verify_blocks(blocks, hash)),
            None => verify_blocks(blocks, hash),
        };
        if !ok {
            return Ok(false);
        }
        let (host, meta) = node_torrent(&self.nodes, node, torrent)?;
        let plan = match known {
            Some((_, _, shared)) => shared,
            None => write_plan(meta.piece_map(), piece, blocks)
                .map_err(|e| StorageError::Backend(e.to_string()))?,
        };
        write_planned(&mut self.disk, host, meta, plan).map(|()| true)
    }

    /// Writes a torrent's content onto a node's disk, as a seed would have it.
    pub fn put_content(&mut self, node: NodeId, meta: &Metainfo, content: &[u8]) {
        let addr = self.addr(node);
        for (i, f) in meta.files().iter().enumerate() {
            if f.is_padding() {
                continue;
            }
            let start = usize::try_from(f.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(f.length).unwrap_or(usize::MAX));
            let bytes = content.get(start..end).unwrap_or_default();
            let bytes = self.library.share(meta.info_hash(), i, bytes);
            let _ = self.disk.insert_bytes(addr, &node_path(f), bytes);
        }
    }

    /// A node's copy of a torrent's content (missing bytes as zeros, padding as zeros).
    pub fn content(&self, node: NodeId, meta: &Metainfo) -> Vec<u8> {
        let addr = self.addr(node);
        let mut out = Vec::new();
        for f in meta.files() {
            let len = usize::try_from(f.length).unwrap_or(0);
            let mut bytes = if f.is_padding() {
                Vec::new()
            } else {
                // Read past the fault injection: what is on the disk, as a test sees it.
                self.disk.contents(addr, &node_path(f)).unwrap_or_default()
            };
            bytes.resize(len, 0);
            out.extend_from_slice(&bytes);
        }
        out
    }
}

fn node_path(f: &crate::metainfo::FileEntry) -> PathBuf {
    crate::storage::file_path(Path::new(DATA_DIR), f)
}

/// `node`'s address (its host on the simulated disk) and the metainfo of its torrent
/// `torrent`.
fn node_torrent(
    nodes: &[Node],
    node: NodeId,
    torrent: TorrentId,
) -> Result<(SocketAddr, &Metainfo), StorageError> {
    nodes
        .get(node.0)
        .and_then(|n| Some((n.addr, n.metas.get(&torrent)?)))
        .ok_or_else(|| StorageError::Backend("unknown torrent".into()))
}

fn read_bytes(
    disk: &mut MemDisk,
    host: SocketAddr,
    meta: &Metainfo,
    piece: PieceIndex,
    offset: u32,
    length: u32,
) -> Result<Bytes, StorageError> {
    let segs = read_plan(meta.piece_map(), piece, offset, length)
        .map_err(|e| StorageError::Backend(e.to_string()))?;
    let read = |disk: &mut MemDisk, seg: &crate::metainfo::piece_map::Segment| {
        let f = meta
            .files()
            .get(seg.file)
            .ok_or_else(|| StorageError::Backend("no such file".into()))?;
        disk.read_bytes(host, &node_path(f), seg.offset, seg.len as usize)
            .map_err(|e| StorageError::Backend(e.to_string()))
    };
    let short =
        || StorageError::Backend("short read, or the read plan does not cover the block".into());
    // A block within one file: the disk's own slice, no copy.
    if let [seg] = segs.as_slice()
        && !seg.padding
    {
        let bytes = read(disk, seg)?;
        return if bytes.len() == length as usize {
            Ok(bytes)
        } else {
            Err(short())
        };
    }
    let mut out = Vec::with_capacity(length as usize);
    let complete = fill_from_plan(&segs, length as usize, &mut out, |seg, buf| {
        buf.extend_from_slice(&read(disk, seg)?);
        Ok(())
    })?;
    if !complete {
        return Err(short());
    }
    Ok(Bytes::from(out))
}

/// Carries out a piece's writes, file by file.
fn write_planned(
    disk: &mut MemDisk,
    host: SocketAddr,
    meta: &Metainfo,
    plan: Vec<FileWrite>,
) -> Result<(), StorageError> {
    for w in plan {
        let f = meta
            .files()
            .get(w.file)
            .ok_or_else(|| StorageError::Backend("no such file".into()))?;
        let data = match <[Bytes; 1]>::try_from(w.bufs) {
            Ok([one]) => one,
            Err(bufs) => Bytes::from(bufs.concat()),
        };
        disk.write_bytes(host, &node_path(f), w.offset, data)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
    }
    Ok(())
}
