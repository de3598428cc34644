//! The `scale` part: what a session of many seeding torrents costs when nothing happens.
//!
//! The bench makes `n` single-piece torrents of 16 KiB each (distinct payloads, their
//! `.torrent` files and resume data saying the piece is verified, so adding checks nothing),
//! all announcing to one HTTP tracker that reads each request and never answers: every
//! announce costs the client its full time-out, the worst a dead tracker does. (A port
//! nothing listens on would refuse at once, which is an answer, and cheap.) Creating all that
//! is not measured.
//!
//! A child process (`bench child scale RT TORRENTS DATA`) starts an empty session and says
//! `port`; the bench reads its resident set, tells it `add`, and the child adds every torrent
//! one after another (as an application with a list would) and says `added SECS`. The bench
//! then reads the child's CPU time, waits the idle seconds, and reads its CPU time and
//! resident set again. The child is killed at the end: shutting down is not measured.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bt_adapter::{Runtime, Session, TorrentOptions};
use bt_proto::Bitfield;
use bt_proto::metainfo::create::TorrentBuilder;
use bt_proto::resume::{FileStamp, ResumeData};
use bt_proto::rng::Rng;
use bt_proto::storage::resume_path;
use serde_json::{Value, json};

use super::child::{Line, say, stdin_lines};
use super::{MIB, PAYLOAD_SEED, Proc, Rt, Usage, err, rss_of};

/// Size of each torrent's one file and one piece: the smallest piece, so the payloads of
/// 10,000 torrents are 160 MiB of disk and the figures are the session's, not the data's.
const PAYLOAD: usize = 16 * 1024;

/// How long the empty session runs before its resident set is read: its start-up
/// allocations are done by then.
const SETTLE: Duration = Duration::from_secs(1);

/// The figures of the part on `rt`, with its table rows.
pub struct Figures {
    /// Rows for the table: name, figure, target.
    pub rows: Vec<(String, String, &'static str)>,
    /// The part's JSON.
    pub json: Value,
}

/// Runs the part: `n` torrents, `idle` seconds of idling, on `rt`.
pub fn run(exe: &Path, rt: Rt, work: &Path, n: usize, idle: Duration) -> Result<Figures, String> {
    let tracker = DeadTracker::start()?;
    let dir = work.join("scale");
    let _ = fs::remove_dir_all(&dir);
    let (torrents, data) = make_torrents(&dir, n, tracker.addr)?;
    let mut child = Proc::spawn(exe, rt, "scale", &torrents, &data, &[])?;
    let pid = child.child.id();
    std::thread::sleep(SETTLE);
    let empty = rss_of(pid)?;
    child.tell("add")?;
    let add_secs = child.expect_secs("added")?;
    let cpu_before = Usage::of_pid(pid)?;
    std::thread::sleep(idle);
    let usage = Usage::of_pid(pid)?;
    let full = rss_of(pid)?;
    let conns = tracker.accepted();
    drop(child);
    let _ = fs::remove_dir_all(&dir);
    let extra_mib = full.saturating_sub(empty) as f64 / MIB as f64;
    let cpu_per_30s = (usage.cpu() - cpu_before.cpu()) * 30.0 / idle.as_secs_f64();
    let name = rt.name();
    Ok(Figures {
        rows: vec![
            (
                format!("{n} torrents, {name}: all added (s)"),
                format!("{add_secs:.2}"),
                "≤ 2",
            ),
            (
                format!("{n} torrents, {name}: extra RSS (MiB)"),
                format!("{extra_mib:.1}"),
                "≤ 32",
            ),
            (
                format!("{n} torrents, {name}: idle CPU (s per 30 s)"),
                format!("{cpu_per_30s:.2}"),
                "≤ 0.25",
            ),
        ],
        json: json!({
            "runtime": name, "torrents": n, "add_secs": add_secs,
            "rss_empty": empty, "rss_after": full, "rss_extra_mib": extra_mib,
            "max_rss": usage.max_rss, "idle_secs": idle.as_secs_f64(),
            "idle_cpu_secs_per_30s": cpu_per_30s, "tracker_connections": conns,
        }),
    })
}

/// Writes `n` payloads, their torrents and their resume data under `dir`; returns the
/// directory of `.torrent` files and the data directory.
fn make_torrents(dir: &Path, n: usize, tracker: SocketAddr) -> Result<(PathBuf, PathBuf), String> {
    let torrents = dir.join("torrents");
    let data = dir.join("data");
    fs::create_dir_all(&torrents).map_err(err)?;
    fs::create_dir_all(&data).map_err(err)?;
    let url = format!("http://{tracker}/announce");
    let mut payload = vec![0u8; PAYLOAD];
    for i in 0..n {
        let name = format!("{i:05}");
        Rng::seed_from_u64(PAYLOAD_SEED ^ i as u64).fill(&mut payload);
        let file = data.join(&name);
        fs::write(&file, &payload).map_err(err)?;
        let plan = TorrentBuilder::single_file(&name, PAYLOAD as u64)
            .piece_length(PAYLOAD as u32)
            .tracker_tier([url.as_str()])
            .plan()
            .map_err(err)?;
        let mut hasher = plan.hasher();
        hasher.update(&payload);
        let bytes = plan.build(&hasher.finish().map_err(err)?).map_err(err)?;
        let meta = bt_proto::metainfo::Metainfo::from_bytes(&bytes).map_err(err)?;
        fs::write(torrents.join(format!("{name}.torrent")), &bytes).map_err(err)?;
        let resume = ResumeData {
            info_hash: meta.info_hash(),
            pieces: Bitfield::full(1),
            files: vec![Some(stamp(&file)?)],
            uploaded: 0,
            downloaded: 0,
        };
        let path = resume_path(&data, &meta.info_hash());
        fs::create_dir_all(path.parent().ok_or("resume path has no directory")?).map_err(err)?;
        fs::write(path, resume.encode()).map_err(err)?;
    }
    Ok((torrents, data))
}

/// The stamp resume data keeps of `file`: what the session compares when it loads it.
fn stamp(file: &Path) -> Result<FileStamp, String> {
    let m = fs::metadata(file).map_err(err)?;
    let mtime = m
        .modified()
        .map_err(err)?
        .duration_since(UNIX_EPOCH)
        .map_err(err)?;
    Ok(FileStamp {
        length: m.len(),
        mtime_secs: i64::try_from(mtime.as_secs()).map_err(err)?,
        mtime_nanos: mtime.subsec_nanos(),
    })
}

/// An HTTP tracker that takes connections, reads what comes and never answers; a connection
/// is let go when the client closes it. It counts the connections it took.
struct DeadTracker {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl DeadTracker {
    fn start() -> Result<DeadTracker, String> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        // The thread and its runtime live as long as the bench: the tracker is never asked
        // to stop, and its port is not reused.
        std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((mut s, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let mut sink = tokio::io::sink();
                        let _ = tokio::io::copy(&mut s, &mut sink).await;
                    });
                }
            });
        });
        Ok(DeadTracker { addr, accepted })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// The child of the part: an empty session on `R` that adds every `.torrent` in `torrents`
/// (data and resume data in `data`) when told `add`, then idles until told `stop`.
pub async fn child<R: Runtime>(torrents: PathBuf, data: PathBuf) -> Result<(), String> {
    let session = Session::<R>::builder()
        .listen_ip(Ipv4Addr::LOCALHOST.into())
        .config(crate::loopback_limits)
        .start()
        .await
        .map_err(err)?;
    let mut files: Vec<PathBuf> = fs::read_dir(&torrents)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    say(&format!("port {}", session.port()));
    let lines = stdin_lines();
    let mut kept = Vec::with_capacity(files.len());
    while let Ok(line) = lines.recv().await {
        match line {
            Line::Add => {
                let t = Instant::now();
                for f in &files {
                    let opts = TorrentOptions::from_path(f).base_dir(&data);
                    kept.push(session.add_torrent(opts).await.map_err(err)?);
                }
                say(&format!("added {}", t.elapsed().as_secs_f64()));
            }
            Line::Stop => break,
            Line::Peer(_) => {}
        }
    }
    session.shutdown().await;
    Ok(())
}

/// Runs the part's child to the end on `rt`.
pub fn run_child(rt: Rt, torrents: PathBuf, data: PathBuf) -> Result<(), String> {
    match rt {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(err)?
            .block_on(child::<bt_tokio::Tokio>(torrents, data)),
        Rt::Smol => smol::block_on(child::<bt_smol::Smol>(torrents, data)),
    }
}
