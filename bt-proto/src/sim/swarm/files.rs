//! Each node's files on the simulated disk: a torrent's content put there or read back, and
//! the block reads and piece writes a session asks for, through bt-proto's own read and
//! write plans.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{DATA_DIR, Node, NodeId, Swarm};
use crate::PieceIndex;
use crate::engine::{StorageError, TorrentId};
use crate::metainfo::Metainfo;
use crate::sim::disk::MemDisk;
use crate::storage::{fill_from_plan, read_plan, write_plan};

impl Swarm {
    /// Piece `piece` of `torrent` as `node`'s disk holds it: the `span` (offset, length)
    /// of it a block names, or all of it.
    pub(super) fn read_piece(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        span: Option<(u32, u32)>,
    ) -> Result<Vec<u8>, StorageError> {
        let (host, meta) = node_torrent(&self.nodes, node, torrent)?;
        let (offset, length) = span.unwrap_or((0, meta.piece_len(piece).unwrap_or(0)));
        read_bytes(&mut self.disk, host, meta, piece, offset, length)
    }

    /// Writes `blocks` to `node`'s disk as piece `piece` of `torrent`.
    pub(super) fn store_piece(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        blocks: &[Bytes],
    ) -> Result<(), StorageError> {
        let (host, meta) = node_torrent(&self.nodes, node, torrent)?;
        write_piece(&mut self.disk, host, meta, piece, blocks)
    }

    /// Writes a torrent's content onto a node's disk, as a seed would have it.
    pub fn put_content(&mut self, node: NodeId, meta: &Metainfo, content: &[u8]) {
        let addr = self.addr(node);
        for f in meta.files() {
            if f.is_padding() {
                continue;
            }
            let start = usize::try_from(f.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(f.length).unwrap_or(usize::MAX));
            let bytes = content.get(start..end).unwrap_or_default().to_vec();
            let _ = self.disk.insert(addr, &node_path(f), bytes);
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
                self.disk
                    .contents(addr, &node_path(f))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
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
) -> Result<Vec<u8>, StorageError> {
    let segs = read_plan(meta.piece_map(), piece, offset, length)
        .map_err(|e| StorageError::Backend(e.to_string()))?;
    let mut out = Vec::with_capacity(length as usize);
    let complete = fill_from_plan(&segs, length as usize, &mut out, |seg, buf| {
        let f = meta
            .files()
            .get(seg.file)
            .ok_or_else(|| StorageError::Backend("no such file".into()))?;
        let bytes = disk
            .read(host, &node_path(f), seg.offset, seg.len as usize)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        buf.extend_from_slice(&bytes);
        Ok(())
    })?;
    if !complete {
        return Err(StorageError::Backend(
            "short read, or the read plan does not cover the block".into(),
        ));
    }
    Ok(out)
}

fn write_piece(
    disk: &mut MemDisk,
    host: SocketAddr,
    meta: &Metainfo,
    piece: PieceIndex,
    blocks: &[Bytes],
) -> Result<(), StorageError> {
    let plan = write_plan(meta.piece_map(), piece, blocks)
        .map_err(|e| StorageError::Backend(e.to_string()))?;
    for w in plan {
        let f = meta
            .files()
            .get(w.file)
            .ok_or_else(|| StorageError::Backend("no such file".into()))?;
        let data: Vec<u8> = w.bufs.concat();
        disk.write(host, &node_path(f), w.offset, &data)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
    }
    Ok(())
}
