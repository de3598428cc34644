//! How the block reads the engine asks for ([`crate::engine::Output::ReadBlock`]) are merged
//! into disk reads: consecutive blocks of one piece for one connection are read with one call,
//! each block then a slice of the run's bytes.
//!
//! ```
//! use bt_proto::picker::Block;
//! use bt_proto::read_runs::{ReadRequest, read_runs};
//! use bt_proto::{ConnId, PieceIndex};
//! # use bt_proto::engine::TorrentId;
//! let (torrent, conn, piece) = (TorrentId(0), ConnId(1), PieceIndex(2));
//! let reads: Vec<ReadRequest> = [0, 16384, 32768]
//!     .map(|offset| ReadRequest { torrent, conn, block: Block::new(piece, offset, 16384) })
//!     .into();
//! let runs = read_runs(&reads);
//! assert_eq!(runs.len(), 1);
//! assert_eq!((runs[0].offset, runs[0].len), (0, 3 * 16384));
//! ```

use std::ops::Range;

use bytes::Bytes;

use crate::engine::TorrentId;
use crate::picker::Block;
use crate::storage::StorageError;
use crate::{ConnId, PieceIndex};

/// Bytes read by one disk job for one peer: consecutive blocks it asked for are read with one
/// call on the blocking pool, not one each. 512 KiB is the engine's default of 32 block reads
/// in flight per peer, so a fast peer's whole batch is usually one job.
pub const MAX_READ_RUN: u32 = 512 * 1024;

/// One block read the engine asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The torrent.
    pub torrent: TorrentId,
    /// The connection that asked for the block.
    pub conn: ConnId,
    /// The block.
    pub block: Block,
}

/// Consecutive blocks of one piece for one connection, read with one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRun {
    /// The torrent.
    pub torrent: TorrentId,
    /// The connection the blocks are for.
    pub conn: ConnId,
    /// The piece.
    pub piece: PieceIndex,
    /// Where the first block starts in the piece.
    pub offset: u32,
    /// Bytes of all the blocks: at most [`MAX_READ_RUN`] (or one block's length, if larger).
    pub len: u32,
    /// The blocks in the order asked for, each starting where the one before ends.
    pub blocks: Vec<Block>,
}

impl ReadRun {
    /// Where `block` lies in the run's bytes.
    pub fn range_of(&self, block: &Block) -> Range<usize> {
        let start = block.offset.saturating_sub(self.offset) as usize;
        start..start.saturating_add(block.length as usize)
    }

    /// Each block with its part of the run's read: its bytes, sliced from the run's (no
    /// copy); [`StorageError::ShortRead`] where the run's bytes end before the block's do;
    /// the run's error for every block if the read failed.
    pub fn split<'a>(
        &'a self,
        read: &'a Result<Bytes, StorageError>,
    ) -> impl Iterator<Item = (Block, Result<Bytes, StorageError>)> + 'a {
        self.blocks.iter().map(move |block| {
            let data = read.as_ref().map_err(Clone::clone).and_then(|data| {
                let range = self.range_of(block);
                if range.end > data.len() {
                    return Err(StorageError::ShortRead {
                        piece: block.piece,
                        offset: block.offset,
                        wanted: block.length,
                        got: data.len().saturating_sub(range.start),
                    });
                }
                Ok(data.slice(range))
            });
            (*block, data)
        })
    }

    /// Whether `next` continues this run: same torrent, connection and piece, starting where
    /// the run ends, and keeping it within [`MAX_READ_RUN`].
    fn extends_to(&self, next: &ReadRequest) -> bool {
        next.torrent == self.torrent
            && next.conn == self.conn
            && next.block.piece == self.piece
            && self.offset.checked_add(self.len) == Some(next.block.offset)
            && self.len.saturating_add(next.block.length) <= MAX_READ_RUN
    }
}

/// Merges `reads` into runs, in order: a run ends where the next read is for another torrent,
/// connection or piece, does not start where the run ends, or would take the run past
/// [`MAX_READ_RUN`]. Every read is in exactly one run, and runs keep the order of `reads`.
pub fn read_runs(reads: &[ReadRequest]) -> Vec<ReadRun> {
    let mut runs: Vec<ReadRun> = Vec::new();
    for read in reads {
        match runs.last_mut() {
            Some(run) if run.extends_to(read) => {
                run.len += read.block.length;
                run.blocks.push(read.block);
            }
            _ => runs.push(ReadRun {
                torrent: read.torrent,
                conn: read.conn,
                piece: read.block.piece,
                offset: read.block.offset,
                len: read.block.length,
                blocks: vec![read.block],
            }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u32 = 16 * 1024;

    fn read(torrent: u32, conn: u64, piece: u32, offset: u32) -> ReadRequest {
        ReadRequest {
            torrent: TorrentId(torrent),
            conn: ConnId(conn),
            block: Block::new(PieceIndex(piece), offset, BLOCK),
        }
    }

    /// The runs as (first read's index, number of reads).
    fn shape(reads: &[ReadRequest]) -> Vec<(u32, usize)> {
        read_runs(reads)
            .iter()
            .map(|r| (r.offset / BLOCK, r.blocks.len()))
            .collect()
    }

    #[test]
    fn nothing_to_read_makes_no_run() {
        assert!(read_runs(&[]).is_empty());
    }

    #[test]
    fn consecutive_blocks_of_one_piece_for_one_peer_are_one_run() {
        let reads: Vec<_> = (0..4).map(|i| read(0, 1, 2, i * BLOCK)).collect();
        let runs = read_runs(&reads);
        assert_eq!(
            runs,
            vec![ReadRun {
                torrent: TorrentId(0),
                conn: ConnId(1),
                piece: PieceIndex(2),
                offset: 0,
                len: 4 * BLOCK,
                blocks: reads.iter().map(|r| r.block).collect(),
            }]
        );
    }

    #[test]
    fn a_run_ends_at_another_torrent_conn_or_piece_a_gap_or_a_step_back() {
        let other_torrent_conn_piece = [
            read(0, 1, 2, 0),
            read(9, 1, 2, BLOCK),
            read(9, 7, 2, 2 * BLOCK),
            read(9, 7, 3, 3 * BLOCK),
        ];
        let gap_then_step_back = [
            read(0, 1, 2, 0),
            read(0, 1, 2, BLOCK),
            read(0, 1, 2, 3 * BLOCK),
            read(0, 1, 2, 2 * BLOCK),
        ];
        let cases = [
            (
                &other_torrent_conn_piece[..],
                vec![(0, 1), (1, 1), (2, 1), (3, 1)],
            ),
            (&gap_then_step_back[..], vec![(0, 2), (3, 1), (2, 1)]),
        ];
        for (reads, runs) in cases {
            assert_eq!(shape(reads), runs, "{reads:?}");
        }
    }

    #[test]
    fn a_run_ends_at_the_size_cap() {
        let per_run = (MAX_READ_RUN / BLOCK) as usize;
        let reads: Vec<_> = (0..2 * per_run as u32 + 1)
            .map(|i| read(0, 1, 2, i * BLOCK))
            .collect();
        let runs = read_runs(&reads);
        assert_eq!(
            runs.iter().map(|r| r.blocks.len()).collect::<Vec<_>>(),
            vec![per_run, per_run, 1]
        );
        assert!(runs.iter().all(|r| r.len <= MAX_READ_RUN));
    }

    #[test]
    fn order_is_kept_and_every_read_is_in_one_run() {
        let reads = [
            read(0, 1, 2, 0),
            read(0, 5, 2, 0),
            read(0, 1, 2, BLOCK),
            read(0, 5, 2, BLOCK),
        ];
        let runs = read_runs(&reads);
        let flat: Vec<(ConnId, Block)> = runs
            .iter()
            .flat_map(|r| r.blocks.iter().map(move |b| (r.conn, *b)))
            .collect();
        let want: Vec<(ConnId, Block)> = reads.iter().map(|r| (r.conn, r.block)).collect();
        assert_eq!(flat, want);
    }

    #[test]
    fn split_slices_each_block_and_flags_a_short_read() {
        let reads = [read(0, 1, 2, BLOCK), read(0, 1, 2, 2 * BLOCK)];
        let run = read_runs(&reads).remove(0);
        let data = Bytes::from((0..2 * BLOCK).map(|i| i as u8).collect::<Vec<u8>>());
        let whole = Ok(data.clone());
        let parts: Vec<_> = run.split(&whole).collect();
        assert_eq!(
            parts,
            vec![
                (reads[0].block, Ok(data.slice(..BLOCK as usize))),
                (reads[1].block, Ok(data.slice(BLOCK as usize..))),
            ]
        );
        let short = Ok(data.slice(..BLOCK as usize + 1));
        let parts: Vec<_> = run.split(&short).collect();
        assert_eq!(parts[0], (reads[0].block, Ok(data.slice(..BLOCK as usize))));
        assert_eq!(
            parts[1].1,
            Err(StorageError::ShortRead {
                piece: PieceIndex(2),
                offset: 2 * BLOCK,
                wanted: BLOCK,
                got: 1,
            })
        );
        let failed = Err(StorageError::Backend("gone".into()));
        assert!(run.split(&failed).all(|(_, d)| d == failed));
    }
}
