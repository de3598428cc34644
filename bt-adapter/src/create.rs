//! Making a `.torrent` from a file or directory on disk: the layout and encoding are
//! `bt_proto::metainfo::create`'s; this module walks the directory and hashes the pieces on
//! every core (one range of pieces per blocking job).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bt_proto::PieceIndex;
use bt_proto::metainfo::create::{InputFile, TorrentBuilder, TorrentPlan};
use bt_proto::storage::fill_from_plan;

use crate::Error;
use crate::disk::read_append_at;

/// Bytes of pieces a hashing worker takes at a time: large enough that taking one costs
/// nothing, small enough that the workers finish together.
const RANGE_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes read and hashed at a time: fits a core's L2 cache, so each byte read is hashed from
/// cache rather than memory.
const HASH_CHUNK: usize = 256 * 1024;
use crate::runtime::Runtime;

/// What to put in a new torrent besides the content.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker URLs, one tier each.
    pub trackers: Vec<String>,
    /// Piece length; `None` picks one from the size.
    pub piece_length: Option<u32>,
    /// Mark the torrent private (BEP 27).
    pub private: bool,
    /// A comment.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
}

fn read_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::ReadContent {
        path: path.to_path_buf(),
        source,
    }
}

/// Every regular file under `dir`, as path components relative to it and a length. Symlinks
/// are skipped: a torrent holds what is in the directory, not what it points at.
fn walk(dir: &Path) -> Result<Vec<(Vec<String>, PathBuf, u64)>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), Vec::<String>::new())];
    while let Some((d, prefix)) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(read_err(&d))? {
            let entry = entry.map_err(read_err(&d))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(read_err(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut comps = prefix.clone();
            comps.push(name);
            if ft.is_dir() {
                stack.push((path, comps));
            } else if ft.is_file() {
                let len = entry.metadata().map_err(read_err(&path))?.len();
                out.push((comps, path, len));
            }
        }
    }
    Ok(out)
}

fn panicked(path: &Path) -> Error {
    Error::ReadContent {
        path: path.to_path_buf(),
        source: io::Error::other("a hashing worker panicked"),
    }
}

/// Builds the torrent of `path` (a file or a directory) and returns its bytes.
pub async fn create_torrent<R: Runtime>(
    path: impl AsRef<Path>,
    opts: CreateOptions,
) -> Result<Vec<u8>, Error> {
    let path = path.as_ref().to_path_buf();
    let (plan, sources) = {
        let p = path.clone();
        R::unblock(move || plan(&p, &opts))
            .await
            .ok_or_else(|| panicked(&path))??
    };
    let plan = Arc::new(plan);
    let sources = Arc::new(sources);
    let count = plan.piece_count();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // One worker per core, each taking the next range of pieces until none is left: a core
    // that is busy elsewhere hashes fewer ranges instead of holding up the end.
    let per = u32::try_from(RANGE_BYTES / u64::from(plan.piece_length().max(1)))
        .unwrap_or(u32::MAX)
        .max(1);
    let ranges = count.div_ceil(per);
    let next = Arc::new(AtomicU32::new(0));
    let workers = workers.min(ranges as usize);
    // Each worker is a task of its own, so that all start now (an `unblock` future does
    // nothing until polled: awaiting them in turn would hash on one core at a time).
    let (tx, rx) = async_channel::bounded(workers.max(1));
    for _ in 0..workers {
        let (plan, sources, next, tx) = (plan.clone(), sources.clone(), next.clone(), tx.clone());
        R::detach(R::spawn(async move {
            let done = R::unblock(move || {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ranges {
                        return Ok(done);
                    }
                    let first = i * per;
                    let n = per.min(count - first);
                    done.push((i, hash_range(&plan, &sources, PieceIndex(first), n)?));
                }
            })
            .await;
            let _ = tx.send(done).await;
        }));
    }
    drop(tx);
    let mut parts: Vec<(u32, Vec<bt_proto::PieceHash>)> = Vec::new();
    for _ in 0..workers {
        let done: Result<_, Error> = rx
            .recv()
            .await
            .ok()
            .flatten()
            .ok_or_else(|| panicked(&path))?;
        parts.extend(done?);
    }
    parts.sort_by_key(|(i, _)| *i);
    let hashes: Vec<_> = parts.into_iter().flat_map(|(_, h)| h).collect();
    Ok(plan.build(&hashes)?)
}

fn plan(path: &Path, opts: &CreateOptions) -> Result<(TorrentPlan, Vec<PathBuf>), Error> {
    let meta = fs::metadata(path).map_err(read_err(path))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut builder, sources) = if meta.is_dir() {
        let files = walk(path)?;
        let sources: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
        let inputs = files.into_iter().map(|(c, _, len)| InputFile::new(c, len));
        (TorrentBuilder::multi_file(name, inputs), sources)
    } else {
        (
            TorrentBuilder::single_file(name, meta.len()),
            vec![path.to_path_buf()],
        )
    };
    for t in &opts.trackers {
        builder = builder.tracker_tier([t.clone()]);
    }
    if let Some(n) = opts.piece_length {
        builder = builder.piece_length(n);
    }
    builder = builder.private(opts.private);
    if let Some(c) = &opts.comment {
        builder = builder.comment(c.clone());
    }
    if let Some(c) = &opts.created_by {
        builder = builder.created_by(c.clone());
    }
    if let Some(d) = opts.creation_date {
        builder = builder.creation_date(d);
    }
    Ok((builder.plan()?, sources))
}

fn hash_range(
    plan: &TorrentPlan,
    sources: &[PathBuf],
    first: PieceIndex,
    count: u32,
) -> Result<Vec<bt_proto::PieceHash>, Error> {
    let mut hasher = plan
        .range_hasher(first, count)
        .map_err(|e| Error::ReadContent {
            path: PathBuf::new(),
            source: io::Error::other(e),
        })?;
    let map = plan.piece_map();
    let mut open: HashMap<usize, File> = HashMap::new();
    let mut buf = Vec::with_capacity((plan.piece_length() as usize).min(HASH_CHUNK));
    // Each piece is read and hashed a chunk at a time, so that the hashing reads from cache.
    let chunks = (first.0..first.0 + count).flat_map(|p| {
        let len = map.piece_len(PieceIndex(p)).unwrap_or(0);
        (0..len)
            .step_by(HASH_CHUNK)
            .map(move |off| (PieceIndex(p), off, (len - off).min(HASH_CHUNK as u32)))
    });
    for (piece, offset, len) in chunks {
        buf.clear();
        let segs: Vec<_> = map
            .block_segments(piece, offset, len)
            .map(Iterator::collect)
            .unwrap_or_default();
        let complete = fill_from_plan(&segs, len as usize, &mut buf, |seg, dst| {
            let src = plan
                .files()
                .get(seg.file)
                .and_then(|f| f.source)
                .and_then(|s| sources.get(s))
                .ok_or_else(|| Error::ReadContent {
                    path: PathBuf::new(),
                    source: io::Error::other("file missing from plan"),
                })?;
            let file = match open.entry(seg.file) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    // Files are read in order: keep only the one being read open.
                    v.insert(File::open(src).map_err(read_err(src))?)
                }
            };
            read_append_at(file, dst, seg.len as usize, seg.offset).map_err(read_err(src))?;
            Ok::<(), Error>(())
        })?;
        if !complete {
            return Err(Error::ReadContent {
                path: PathBuf::new(),
                source: io::Error::other("piece layout does not cover the piece"),
            });
        }
        open.retain(|f, _| segs.last().is_some_and(|s| s.file == *f));
        hasher.update(&buf);
    }
    Ok(hasher.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_proto::metainfo::Metainfo;

    #[test]
    fn hashes_match_a_single_stream() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(root.join("a.bin"), &a).unwrap();
        fs::write(root.join("sub/empty"), b"").unwrap();
        fs::write(root.join("sub/deeper/b.bin"), &a[..33_333]).unwrap();
        let opts = CreateOptions {
            trackers: vec!["http://127.0.0.1:1/announce".into()],
            piece_length: Some(16 * 1024),
            private: true,
            comment: Some("c".into()),
            ..Default::default()
        };
        // Hashed in two ranges, as two workers would.
        let (plan, sources) = plan(&root, &opts).unwrap();
        let half = plan.piece_count() / 2;
        let mut hashes = hash_range(&plan, &sources, PieceIndex(0), half).unwrap();
        hashes.extend(
            hash_range(&plan, &sources, PieceIndex(half), plan.piece_count() - half).unwrap(),
        );
        let bytes = plan.build(&hashes).unwrap();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.name(), "content");
        assert!(m.is_private());
        assert_eq!(m.size(), 133_333);
        // The same content in one stream, in the torrent's file order.
        let mut all = Vec::new();
        for f in m.files() {
            let p = dir.path().join(f.path.to_path_buf());
            all.extend(fs::read(p).unwrap());
        }
        for p in 0..m.piece_count() {
            let start = p as usize * 16384;
            let end = (start + 16384).min(all.len());
            assert_eq!(
                m.piece_hash(PieceIndex(p)).unwrap().0,
                bt_proto::sha1(&all[start..end])
            );
        }
    }
}
