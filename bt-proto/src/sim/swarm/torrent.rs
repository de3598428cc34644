//! Torrents with deterministic content, for scenarios.

use super::TRACKER_URL;
use crate::metainfo::Metainfo;
use crate::metainfo::create::{InputFile, TorrentBuilder};
use crate::rng::Rng;

/// Why [`make_torrent`] could not build a torrent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MakeTorrentError {
    /// The layout was refused.
    #[error(transparent)]
    Create(#[from] crate::metainfo::create::CreateError),
    /// The built torrent did not parse back.
    #[error(transparent)]
    Parse(#[from] crate::metainfo::MetainfoError),
}

/// Builds a torrent (announcing to [`TRACKER_URL`]) of files with deterministic content from
/// `seed`: `(path, length)` pairs, `/` separating directories. Returns it with the content.
pub fn make_torrent(
    files: &[(&str, u64)],
    piece_length: u32,
    seed: u64,
) -> Result<(Metainfo, Vec<u8>), MakeTorrentError> {
    build(files, piece_length, seed, false)
}

/// [`make_torrent`], marked private (BEP 27): its peers come from the tracker only.
pub fn make_private_torrent(
    files: &[(&str, u64)],
    piece_length: u32,
    seed: u64,
) -> Result<(Metainfo, Vec<u8>), MakeTorrentError> {
    build(files, piece_length, seed, true)
}

fn build(
    files: &[(&str, u64)],
    piece_length: u32,
    seed: u64,
    private: bool,
) -> Result<(Metainfo, Vec<u8>), MakeTorrentError> {
    let mut rng = Rng::seed_from_u64(seed);
    let single = files.len() == 1 && !files.iter().any(|(p, _)| p.contains('/'));
    let builder = match files.first() {
        Some((name, len)) if single => TorrentBuilder::single_file(*name, *len),
        _ => TorrentBuilder::multi_file(
            "swarm",
            files.iter().map(|(p, l)| InputFile::new(p.split('/'), *l)),
        ),
    };
    let plan = builder
        .tracker_tier([TRACKER_URL])
        .piece_length(piece_length)
        .private(private)
        .plan()?;
    // Content in the plan's file order (sorted by path), zeros for padding.
    let mut content = Vec::new();
    for f in plan.files() {
        let mut bytes = vec![0u8; usize::try_from(f.length).unwrap_or(0)];
        if !f.padding {
            rng.fill(&mut bytes);
        }
        content.extend_from_slice(&bytes);
    }
    let mut hasher = plan.hasher();
    hasher.update(&content);
    let bytes = plan.build(&hasher.finish()?)?;
    let meta = Metainfo::from_bytes(&bytes)?;
    Ok((meta, content))
}
