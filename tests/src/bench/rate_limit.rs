//! `--only rate_limit`: how closely a rate limit holds on real sockets. A loopback transfer
//! (seeder and leecher processes, as the `loopback` part) of [`LIMIT`] × the sizes'
//! `rate_limit_secs` bytes, once with the seeder's upload limited and once with the
//! leecher's download limited, on each runtime; the achieved rate (payload bytes over the
//! time from the first dial to the last verified piece) is reported against the limit, over
//! the whole transfer and past the bucket's first burst (100 ms of the limit, which a full
//! bucket lets through at once: about 1 % of a 10 s transfer).
//!
//! Unlimited, the same transfer runs at hundreds of MB/s here, so any time beyond a few
//! tens of milliseconds is the limiter's.

use std::fs;
use std::path::Path;

use bt_proto::token_bucket::BURST;
use serde_json::{Value, json};

use super::{MIB, PIECE_LENGTH, Proc, Rt, Sizes, make_payload};

/// The limit of both runs: 20 MiB/s, well below what loopback carries here (hundreds of
/// MB/s) and well above what one 16 KiB block in debt or the bucket's 100 ms burst can skew.
pub const LIMIT: u64 = 20 * MIB;

/// A block: the last transfer a bucket's tokens let start, leaving it in debt.
const BLOCK: u64 = 16 * 1024;

/// What the part adds to the table and to the JSON.
pub(super) struct Part {
    /// (bench, figure, target) rows.
    pub rows: Vec<(String, String, String)>,
    /// The part's figures.
    pub json: Value,
}

/// Which side carries the limit.
#[derive(Clone, Copy)]
enum Side {
    /// The seeder's upload.
    Upload,
    /// The leecher's download.
    Download,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Upload => "upload",
            Side::Download => "download",
        }
    }
}

/// One transfer with `side` limited to [`LIMIT`]; returns its seconds.
fn limited_once(
    exe: &Path,
    rt: Rt,
    torrent: &Path,
    seed_dir: &Path,
    work: &Path,
    side: Side,
) -> Result<f64, String> {
    let limit = LIMIT.to_string();
    let (seed_extra, leech_extra) = match side {
        Side::Upload => (vec!["--max-upload-rate".into(), limit], vec![]),
        Side::Download => (vec![], vec!["--max-download-rate".into(), limit]),
    };
    let leech_dir = work.join(format!("rate-leech-{}", rt.name()));
    let _ = fs::remove_dir_all(&leech_dir);
    let seeder = Proc::spawn(exe, rt, "seed", torrent, seed_dir, &seed_extra)?;
    let mut leecher = Proc::spawn(exe, rt, "leech", torrent, &leech_dir, &leech_extra)?;
    leecher.add_peer(seeder.port)?;
    // The leecher says `done` once every piece has passed its hash check: the copy is whole.
    let secs = leecher.expect_secs("done")?;
    leecher.stop()?;
    seeder.stop()?;
    fs::remove_dir_all(&leech_dir).map_err(|e| e.to_string())?;
    Ok(secs)
}

/// Runs the part on each of `runtimes`.
pub(super) fn run(exe: &Path, runtimes: &[Rt], s: Sizes, work: &Path) -> Result<Part, String> {
    let bytes = LIMIT * s.rate_limit_secs;
    // What a full bucket lets through at once: its burst and the block started in debt.
    let burst = (u128::from(LIMIT) * BURST.as_nanos() / 1_000_000_000) as u64 + BLOCK;
    let p = make_payload(&work.join("rate-seed"), "rate", bytes, PIECE_LENGTH)?;
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for &rt in runtimes {
        for side in [Side::Upload, Side::Download] {
            let secs = limited_once(exe, rt, &p.torrent, seed_dir, work, side)?;
            let rate = bytes as f64 / secs;
            let share = rate / LIMIT as f64;
            // The bucket's first burst comes at once; past it, the rate is the limiter's.
            let steady = bytes.saturating_sub(burst) as f64 / secs / LIMIT as f64;
            rows.push((
                format!("rate limit {} {}: MiB/s at 20", rt.name(), side.name()),
                format!(
                    "{:.2} ({:.1}%, {:.1}%)",
                    rate / MIB as f64,
                    100.0 * share,
                    100.0 * steady
                ),
                "100% (all, past the burst)".to_string(),
            ));
            all.push(json!({
                "runtime": rt.name(), "side": side.name(), "limit": LIMIT, "bytes": bytes,
                "secs": secs, "bytes_per_sec": rate, "share_of_limit": share,
                "share_of_limit_past_burst": steady,
            }));
        }
    }
    let _ = fs::remove_dir_all(work.join("rate-seed"));
    Ok(Part {
        rows,
        json: Value::Array(all),
    })
}
