//! `bt`: a BitTorrent command line on bt-tokio.
//!
//! With no arguments it runs a demo on loopback: a few hundred MiB of generated files, one
//! seeding session and three leeching sessions in this process over real TCP sockets, a
//! progress bar per leecher, every byte verified at the end, and the throughput printed.
//!
//! ```text
//! bt                                   # the loopback demo
//! bt info FILE.torrent [--json]
//! bt create PATH -o OUT.torrent [-t URL]... [--piece-length N] [--private] [--comment C]
//! bt download FILE.torrent|MAGNET [-o DIR] [--port N] [--no-lsd] [--no-pex]
//!             [--no-dht] [--dht-bootstrap HOST:PORT]... [--peer HOST:PORT]... [--seed] [--json]
//! bt seed FILE.torrent DIR [--port N] [--no-lsd] [--no-pex] [--no-dht]
//!             [--dht-bootstrap HOST:PORT]...
//! ```
//!
//! `download` and `seed` also take `--max-download-rate RATE` and `--max-upload-rate RATE`:
//! bytes per second with an optional suffix K, M or G, 1024-based (`500K`, `1.5M`); 0, the
//! default, is no limit (see `rate`).
//!
//! `download` and `seed` run the DHT unless `--no-dht` is given, and keep its routing table
//! in DIR/.bt/dht.dat between runs.
//!
//! ```text
//! bt check FILE.torrent DIR [--json]
//! bt cat FILE.torrent FILE [-o DIR] [--peer HOST:PORT]...   # one file to stdout as it comes
//! ```
//!
//! Text that comes from a torrent or a tracker (names, paths, comments, URLs, tracker
//! messages, errors quoting them) is printed through `escape`, so it cannot drive the
//! terminal; JSON output writes those characters as `\u` escapes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bt_tokio::create::{CreateOptions, create_torrent};
use bt_tokio::proto::encoding::printable::{escape, needs_escape};
use bt_tokio::proto::magnet::Magnet;
use bt_tokio::proto::metainfo::Metainfo;
use bt_tokio::proto::rng::Rng;
use bt_tokio::proto::storage::RESUME_DIR;
use bt_tokio::{
    DhtOptions, Encryption, Event, Session, Torrent, TorrentOptions, TorrentState, Transports,
};
use clap::{Parser, Subcommand};

mod cat;
mod magnet;
mod rate;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "bt",
    version,
    about = "BitTorrent on tokio (no command: a loopback demo)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Print only errors and the final result.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log more (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show what a .torrent or a magnet link holds.
    Info {
        /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:...`).
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Make a .torrent of a file or directory.
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Where to write the .torrent.
        #[arg(short, long)]
        out: PathBuf,
        /// A tracker URL (repeat for more, one tier each).
        #[arg(short = 't', long = "tracker")]
        trackers: Vec<String>,
        /// Piece length in bytes (default: picked from the size).
        #[arg(long)]
        piece_length: Option<u32>,
        /// Mark the torrent private.
        #[arg(long)]
        private: bool,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Download a torrent (rerun to resume).
    Download {
        /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:...`): its metadata is
        /// fetched from peers first, and kept in DIR/.bt for the next run.
        file: PathBuf,
        /// Directory to download into (default: the current one).
        #[arg(short = 'o', long = "out")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        net: Net,
        /// A peer to connect to (repeat for more).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Keep seeding once complete, until Ctrl-C.
        #[arg(long)]
        seed: bool,
        /// Download pieces in order from the start, rather than rarest first.
        #[arg(long)]
        sequential: bool,
        /// Print one JSON object at the end.
        #[arg(long)]
        json: bool,
    },
    /// Check the data in DIR, then seed it until Ctrl-C.
    Seed {
        /// The .torrent file.
        file: PathBuf,
        /// The directory holding the data.
        dir: PathBuf,
        #[command(flatten)]
        net: Net,
    },
    /// Verify the data in DIR against the torrent.
    Check {
        /// The .torrent file.
        file: PathBuf,
        /// The directory holding the data.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write one file of a torrent to stdout in order as it downloads (into DIR: rerun to
    /// resume).
    Cat {
        /// The .torrent file.
        file: PathBuf,
        /// The file: its index as `bt info` lists the files (from 0), or its path there.
        #[arg(value_name = "FILE")]
        which: String,
        /// Directory to download into (default: the current one).
        #[arg(short = 'o', long = "out")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        net: Net,
        /// A peer to connect to (repeat for more).
        #[arg(long = "peer")]
        peers: Vec<String>,
    },
    /// The loopback demo (also what `bt` alone runs).
    Demo {
        /// Payload size in MiB.
        #[arg(long, default_value_t = 256)]
        size_mib: u64,
        /// Leeching sessions.
        #[arg(long, default_value_t = 3)]
        leechers: usize,
    },
}

/// The DHT's routing table, in the base directory's resume directory, so the next run
/// does not start from the routers alone.
const DHT_STATE_FILE: &str = "dht.dat";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How a downloading or seeding session meets peers.
#[derive(Debug, Clone, clap::Args)]
struct Net {
    /// Port to listen on (default: any free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[command(flatten)]
    rates: rate::RateArgs,
    /// No local service discovery (BEP 14): do not announce the torrent on the local network
    /// nor dial the peers announced there.
    #[arg(long)]
    no_lsd: bool,
    /// No peer exchange (BEP 11): peers are told of no others, and what they tell is
    /// ignored.
    #[arg(long)]
    no_pex: bool,
    /// No DHT (BEP 5): no UDP socket, no lookups; a magnet link then needs a tracker or a
    /// peer.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to bootstrap from (repeat for more); replaces the public mainline routers.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    dht_bootstrap: Vec<String>,
    /// Message stream encryption: `enabled` accepts both and tries it first on outgoing
    /// connections; `required` talks only to peers that encrypt (RC4); `disabled` never.
    #[arg(long, value_enum, default_value_t = EncryptionArg::Enabled)]
    encryption: EncryptionArg,
    /// Transports of peer connections: `both` uses uTP with the peers known to speak it and
    /// TCP otherwise; `utp` listens on the UDP port only (the port is then a UDP port);
    /// `tcp` never uses uTP.
    #[arg(long, value_enum, default_value_t = TransportArg::Both)]
    transport: TransportArg,
}

/// `--transport`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TransportArg {
    Tcp,
    Utp,
    Both,
}

impl From<TransportArg> for Transports {
    fn from(a: TransportArg) -> Self {
        match a {
            TransportArg::Tcp => Transports::Tcp,
            TransportArg::Utp => Transports::Utp,
            TransportArg::Both => Transports::Both,
        }
    }
}

/// `--encryption`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EncryptionArg {
    Disabled,
    Enabled,
    Required,
}

impl From<EncryptionArg> for Encryption {
    fn from(a: EncryptionArg) -> Self {
        match a {
            EncryptionArg::Disabled => Encryption::Disabled,
            EncryptionArg::Enabled => Encryption::Enabled,
            EncryptionArg::Required => Encryption::Required,
        }
    }
}

impl Net {
    /// A session listening and discovering as asked, its DHT table kept under `base`
    /// ([`DHT_STATE_FILE`] in the resume directory, beside the metadata of magnet links).
    async fn start(self, base: &Path) -> Result<Session> {
        let dht = if self.no_dht {
            DhtOptions::off()
        } else {
            let state = base.join(RESUME_DIR).join(DHT_STATE_FILE);
            let opts = DhtOptions::default().state_file(state);
            if self.dht_bootstrap.is_empty() {
                opts
            } else {
                opts.bootstrap(self.dht_bootstrap)
            }
        };
        let builder = self
            .rates
            .apply(Session::builder())
            .port(self.port)
            .lsd(!self.no_lsd)
            .pex(!self.no_pex)
            .dht(dht)
            .encryption(self.encryption.into())
            .transports(self.transport.into());
        Ok(builder.start().await?)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, 2) => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let quiet = cli.quiet;
    let result = match cli.command.unwrap_or(Cmd::Demo {
        size_mib: 256,
        leechers: 3,
    }) {
        Cmd::Info { file, json } => info(&file, json),
        Cmd::Create {
            path,
            out,
            trackers,
            piece_length,
            private,
            comment,
        } => create(&path, &out, trackers, piece_length, private, comment).await,
        Cmd::Download {
            file,
            dir,
            net,
            peers,
            seed,
            sequential,
            json,
        } => {
            let how = Download {
                dir,
                net,
                peers,
                keep_seeding: seed,
                sequential,
                json,
                quiet,
            };
            download(&file, how).await
        }
        Cmd::Seed { file, dir, net } => seed(&file, &dir, net, quiet).await,
        Cmd::Check { file, dir, json } => check(&file, &dir, json).await,
        Cmd::Cat {
            file,
            which,
            dir,
            net,
            peers,
        } => {
            let how = cat::Cat {
                torrent: file,
                file: which,
                dir,
                net,
                peers,
                quiet,
            };
            cat::cat(how).await
        }
        Cmd::Demo { size_mib, leechers } => demo(size_mib, leechers, quiet).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", escape(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// The magnet link `arg` is, if it is one rather than a path.
fn as_magnet(arg: &Path) -> Option<&str> {
    arg.to_str().filter(|s| s.starts_with("magnet:"))
}

/// A .torrent path, not a magnet link: seeding and checking need the file list a link lacks.
fn torrent_path(file: &Path) -> Result<&Path> {
    if as_magnet(file).is_some() {
        return Err("seed and check take a .torrent file, not a magnet link: \
            `bt download` fetches a link's metadata and keeps it as DIR/.bt/<info-hash>.torrent"
            .into());
    }
    Ok(file)
}

fn load(file: &Path) -> Result<Metainfo> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok(Metainfo::from_bytes(&bytes)
        .map_err(|e| format!("{} is not a valid torrent: {e}", file.display()))?)
}

/// `value` as one line of JSON safe to print: the characters [`needs_escape`] names, which
/// serde_json writes raw (DEL, C1 controls, invisible format characters), become `\u`
/// escapes. They only occur inside strings, where an escape means the same character.
fn json_line(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if needs_escape(c) && c != '\\' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What a magnet link holds: the info-hash, and the name, trackers and peers it may add.
fn magnet_info(uri: &str, json: bool) -> Result<ExitCode> {
    let m = Magnet::parse(uri).map_err(|e| format!("not a valid magnet link: {e}"))?;
    let peers: Vec<String> = m.peers.iter().map(ToString::to_string).collect();
    if json {
        let obj = serde_json::json!({
            "info_hash": m.info_hash.to_string(),
            "name": m.display_name,
            "trackers": m.trackers,
            "peers": peers,
        });
        println!("{}", json_line(&obj));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &m.display_name {
        println!("name: {}", escape(name));
    }
    for url in &m.trackers {
        println!("tracker: {}", escape(url));
    }
    for peer in &peers {
        println!("peer: {}", escape(peer));
    }
    println!("info_hash: {}", m.info_hash);
    Ok(ExitCode::SUCCESS)
}

fn info(file: &Path, json: bool) -> Result<ExitCode> {
    if let Some(uri) = as_magnet(file) {
        return magnet_info(uri, json);
    }
    let m = load(file)?;
    let files: Vec<_> = m.files().iter().filter(|f| !f.is_padding()).collect();
    if json {
        let obj = serde_json::json!({
            "info_hash": m.info_hash().to_string(),
            "name": m.name(),
            "size": m.size(),
            "piece_length": m.piece_length(),
            "pieces": m.piece_count(),
            "private": m.is_private(),
            "trackers": m.trackers(),
            "comment": m.comment(),
            "created_by": m.created_by(),
            "files": files.iter().map(|f| serde_json::json!({"path": f.path.to_string(), "length": f.length})).collect::<Vec<_>>(),
        });
        println!("{}", json_line(&obj));
        return Ok(ExitCode::SUCCESS);
    }
    println!("name: {}", escape(m.name()));
    println!("size: {} bytes", m.size());
    println!("piece_length: {}", m.piece_length());
    println!("pieces: {}", m.piece_count());
    println!("private: {}", m.is_private());
    for (tier, urls) in m.trackers().iter().enumerate() {
        for u in urls {
            println!("tracker: [{tier}] {}", escape(u));
        }
    }
    if let Some(c) = m.comment() {
        println!("comment: {}", escape(c));
    }
    if let Some(c) = m.created_by() {
        println!("created_by: {}", escape(c));
    }
    println!("files: {}", files.len());
    for f in files {
        println!("  {} ({} bytes)", escape(&f.path.to_string()), f.length);
    }
    println!("info_hash: {}", m.info_hash());
    Ok(ExitCode::SUCCESS)
}

async fn create(
    path: &Path,
    out: &Path,
    trackers: Vec<String>,
    piece_length: Option<u32>,
    private: bool,
    comment: Option<String>,
) -> Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let opts = CreateOptions {
        trackers,
        piece_length,
        private,
        comment,
        created_by: Some(concat!("bt ", env!("CARGO_PKG_VERSION")).into()),
        creation_date: Some(now),
    };
    let bytes = create_torrent(path, opts).await?;
    std::fs::write(out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let m = Metainfo::from_bytes(&bytes)?;
    println!(
        "wrote {} ({} pieces of {} bytes)",
        out.display(),
        m.piece_count(),
        m.piece_length()
    );
    println!("info_hash: {}", m.info_hash());
    Ok(ExitCode::SUCCESS)
}

fn bar(multi: &MultiProgress, t: &Torrent, label: &str, quiet: bool) -> ProgressBar {
    let pb = multi.add(ProgressBar::new(t.size()));
    if quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Updates a bar from the torrent's stats until it is complete (or has failed).
async fn follow(t: Torrent, pb: ProgressBar) {
    loop {
        if let Ok(s) = t.stats().await {
            pb.set_position(t.size().saturating_sub(s.left));
            pb.set_message(format!("{} peers", s.peers));
            if s.complete {
                pb.finish_with_message("complete");
                return;
            }
            if s.state == TorrentState::Failed {
                pb.abandon_with_message("failed");
                return;
            }
        } else {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn add_peers(t: &Torrent, peers: &[String]) -> Result<()> {
    for p in peers {
        let addr = tokio::net::lookup_host(p.as_str())
            .await
            .map_err(|e| format!("cannot resolve peer {p}: {e}"))?
            .next()
            .ok_or_else(|| format!("peer {p} has no address"))?;
        t.add_peer(addr).await?;
    }
    Ok(())
}

/// How `bt download` runs.
struct Download {
    dir: Option<PathBuf>,
    net: Net,
    peers: Vec<String>,
    keep_seeding: bool,
    /// Pieces in order (`--sequential`).
    sequential: bool,
    json: bool,
    quiet: bool,
}

async fn download(file: &Path, how: Download) -> Result<ExitCode> {
    let Download {
        dir,
        net,
        peers,
        keep_seeding,
        sequential,
        json,
        quiet,
    } = how;
    let start = Instant::now();
    let base = dir.unwrap_or_else(|| ".".into());
    let session = net.start(&base).await?;
    let tally = tally(&session, quiet);
    let mut interrupt = Interrupt::new()?;
    let t = match as_magnet(file) {
        Some(uri) => {
            match magnet::fetch(&session, uri, base, &peers, quiet, &mut interrupt).await? {
                Some(fetched) => {
                    if sequential {
                        fetched.set_sequential(true).await?;
                    }
                    fetched
                }
                None => {
                    if !quiet {
                        eprintln!("interrupted before the metadata arrived");
                    }
                    session.shutdown().await;
                    return Ok(ExitCode::from(130));
                }
            }
        }
        None => {
            let t = session
                .add_torrent(
                    TorrentOptions::from_path(file)
                        .base_dir(base)
                        .sequential(sequential),
                )
                .await?;
            add_peers(&t, &peers).await?;
            t
        }
    };
    if !quiet {
        eprintln!(
            "{}: {} bytes, listening on port {}",
            escape(t.name()),
            t.size(),
            session.port()
        );
        rate::say_limits(session.rate_limits().await?);
    }
    let multi = MultiProgress::new();
    let pb = bar(&multi, &t, "download", quiet || json);
    let done = tokio::select! {
        (finished, ()) = async { tokio::join!(t.wait_complete(), follow(t.clone(), pb)) } => {
            if let Err(e) = finished {
                // The verified pieces are kept: shutting down saves them for the next run.
                session.shutdown().await;
                return Err(e.into());
            }
            true
        }
        () = interrupt.wait() => false,
    };
    if done && keep_seeding {
        if !quiet {
            eprintln!("complete; seeding until Ctrl-C");
        }
        interrupt.wait().await;
    }
    let last = t.stats().await?;
    let limits = session.rate_limits().await?;
    session.shutdown().await;
    let tally = tally.await?;
    let summary = Summary {
        hash_failures: tally.hash_failures,
        peers_banned: tally.peers_banned,
        limits,
    };
    report(&t, &last, summary, start, json, quiet);
    Ok(if last.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}

/// What a torrent's events said while a command ran.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// Downloaded pieces that failed their hash check.
    hash_failures: u64,
    /// Peers banned for sending data that failed.
    peers_banned: u64,
    /// Pieces a hashcheck found wrong or missing.
    failed_checks: u64,
}

/// Counts the session's events until it shuts down, and prints (unless `quiet`) the pieces
/// that fail, the peers banned for them and what its trackers say.
fn tally(session: &Session, quiet: bool) -> tokio::task::JoinHandle<Tally> {
    let mut events = session.events();
    tokio::spawn(async move {
        let mut tally = Tally::default();
        while let Some(e) = events.next().await {
            let e = match e {
                Ok(e) => e,
                Err(lagged) => {
                    // Counting goes on; the summary may be short by what was missed.
                    tracing::warn!("{lagged}");
                    continue;
                }
            };
            match e {
                Event::HashFailed { piece, peers, .. } => {
                    tally.hash_failures += 1;
                    if !quiet {
                        let from: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
                        eprintln!(
                            "piece {piece} failed its hash check (from {})",
                            from.join(", ")
                        );
                    }
                }
                Event::PeerBanned { addr, .. } => {
                    tally.peers_banned += 1;
                    if !quiet {
                        eprintln!("banned {}: it sent data that failed", addr.ip());
                    }
                }
                Event::PieceChecked { ok: false, .. } => tally.failed_checks += 1,
                Event::TrackerWarning { url, message, .. } if !quiet => {
                    eprintln!("tracker {}: warning: {}", escape(&url), escape(&message));
                }
                Event::TrackerError { url, error, .. } if !quiet => {
                    eprintln!("tracker {}: {}", escape(&url), escape(&error.to_string()));
                }
                _ => {}
            }
        }
        tally
    })
}

/// The data failures a summary reports.
#[derive(Clone, Copy, Debug)]
struct Summary {
    /// Pieces that failed their hash check.
    hash_failures: u64,
    /// Peers banned for it.
    peers_banned: u64,
    /// The session's rate limits at the end.
    limits: bt_tokio::RateLimits,
}

fn report(
    t: &Torrent,
    last: &bt_tokio::TorrentStats,
    failures: Summary,
    start: Instant,
    json: bool,
    quiet: bool,
) {
    let secs = start.elapsed().as_secs_f64();
    // This run's bytes, not the lifetime ones resume data carries.
    let (down, up) = (last.session_downloaded, last.session_uploaded);
    if json {
        let obj = serde_json::json!({
            "info_hash": t.infohash().to_string(),
            "name": t.name(),
            "size": t.size(),
            "pieces_verified": last.pieces_have,
            "pieces_total": last.pieces_total,
            "downloaded": down,
            "uploaded": up,
            "hash_failures": failures.hash_failures,
            "peers_banned": failures.peers_banned,
            "max_download_rate": failures.limits.download,
            "max_upload_rate": failures.limits.upload,
            "seconds": secs,
        });
        println!("{}", json_line(&obj));
    } else if !quiet || last.complete {
        println!(
            "{}: {}/{} pieces, {} bytes down, {} bytes up, {} hash failures, {} peers banned in {:.1} s",
            escape(t.name()),
            last.pieces_have,
            last.pieces_total,
            down,
            up,
            failures.hash_failures,
            failures.peers_banned,
            secs
        );
    }
}

/// Ctrl-C, caught from the moment this is made. `tokio::signal::ctrl_c()` installs its handler
/// only when first polled, so a SIGINT arriving just after we print "until Ctrl-C" would still
/// kill the process without a clean shutdown.
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl Interrupt {
    fn new() -> Result<Self> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        #[cfg(windows)]
        let signal = tokio::signal::windows::ctrl_c()?;
        Ok(Interrupt { signal })
    }

    /// Completes at the next Ctrl-C.
    async fn wait(&mut self) {
        self.signal.recv().await;
    }
}

async fn seed(file: &Path, dir: &Path, net: Net, quiet: bool) -> Result<ExitCode> {
    let session = net.start(dir).await?;
    let opts = TorrentOptions::from_path(torrent_path(file)?)
        .base_dir(dir)
        .verify_existing(false)
        .state(TorrentState::Paused);
    let t = session.add_torrent(opts).await?;
    let r = t.hashcheck().await?;
    println!(
        "{}: {}/{} pieces verified",
        escape(t.name()),
        r.verified,
        r.total
    );
    let mut interrupt = Interrupt::new()?;
    t.start().await?;
    if !quiet {
        rate::say_limits(session.rate_limits().await?);
        eprintln!("seeding on port {} until Ctrl-C", session.port());
    }
    interrupt.wait().await;
    session.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn check(file: &Path, dir: &Path, json: bool) -> Result<ExitCode> {
    let start = Instant::now();
    let session = Session::builder()
        .listen_ip([127, 0, 0, 1].into())
        .dht(DhtOptions::off())
        .start()
        .await?;
    let tally = tally(&session, true);
    let opts = TorrentOptions::from_path(torrent_path(file)?)
        .base_dir(dir)
        .resume(false)
        .verify_existing(false)
        .state(TorrentState::Stopped);
    let t = session.add_torrent(opts).await?;
    let r = t.hashcheck().await?;
    let stats = t.stats().await?;
    session.shutdown().await;
    // A check downloads nothing: its hash failures are the pieces on disk that failed.
    let failures = Summary {
        hash_failures: tally.await?.failed_checks,
        peers_banned: 0,
        limits: bt_tokio::RateLimits::NONE,
    };
    if json {
        report(&t, &stats, failures, start, true, false);
    } else {
        println!(
            "{}: {}/{} pieces verified",
            escape(t.name()),
            r.verified,
            r.total
        );
    }
    Ok(if r.verified == r.total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The demo's files: nested folders, a file spanning many pieces, an empty file.
fn demo_files(total: u64) -> Vec<(String, u64)> {
    let big = total / 2;
    let nested = total / 4 + 12_345;
    let small = 10_000;
    let rest = total.saturating_sub(big + nested + small);
    vec![
        ("big.bin".into(), big),
        ("a/b/c/nested.bin".into(), nested),
        ("a/notes.txt".into(), small),
        ("a/empty".into(), 0),
        ("media/clip.bin".into(), rest),
    ]
}

async fn demo(size_mib: u64, leechers: usize, quiet: bool) -> Result<ExitCode> {
    // From the start, so that Ctrl-C while the files are made still removes them.
    let mut interrupt = Interrupt::new()?;
    let tmp = tempfile::tempdir()?;
    let seed_dir = tmp.path().join("seed");
    let content = seed_dir.join("demo");
    let total = size_mib * 1024 * 1024;
    if !quiet {
        eprintln!("making {size_mib} MiB of files in {}", tmp.path().display());
    }
    let files = demo_files(total);
    {
        let content = content.clone();
        let files = files.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; 4 * 1024 * 1024];
            for (i, (rel, len)) in files.iter().enumerate() {
                let path = content.join(rel);
                if let Some(d) = path.parent() {
                    std::fs::create_dir_all(d)?;
                }
                let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
                // Random bytes, so no layer can shortcut the transfer; one seed per file.
                let mut rng = Rng::seed_from_u64(i as u64 + 1);
                let mut left = *len;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    let chunk = buf.get_mut(..k).unwrap_or_default();
                    rng.fill(chunk);
                    std::io::Write::write_all(&mut f, chunk)?;
                    left -= k as u64;
                }
                std::io::Write::flush(&mut f)?;
            }
            Ok(())
        })
        .await??;
    }
    let t0 = Instant::now();
    let torrent = create_torrent(&content, CreateOptions::default()).await?;
    let meta = Metainfo::from_bytes(&torrent)?;
    if !quiet {
        eprintln!(
            "torrent made in {:.2} s: {} pieces of {} KiB, info_hash {}",
            t0.elapsed().as_secs_f64(),
            meta.piece_count(),
            meta.piece_length() / 1024,
            meta.info_hash()
        );
    }
    // Every peer of the demo is 127.0.0.1: lift the engine's one-connection-per-host rule.
    let local = |b: bt_tokio::SessionBuilder| {
        // Its sessions meet through the peers given: nothing to ask the DHT.
        b.listen_ip([127, 0, 0, 1].into())
            .dht(DhtOptions::off())
            .config(move |c| {
                c.max_connections_per_host = leechers + 1;
                c.max_incoming_handshakes_per_host = leechers + 1;
            })
    };
    let seed = local(Session::builder()).start().await?;
    let st = seed
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&seed_dir)
                .resume(false),
        )
        .await?;
    st.wait_complete().await?;
    let seed_addr = std::net::SocketAddr::from(([127, 0, 0, 1], seed.port()));

    let multi = MultiProgress::new();
    let mut sessions = Vec::new();
    let mut bars = Vec::new();
    let start = Instant::now();
    for i in 0..leechers {
        let s = local(Session::builder()).start().await?;
        let base = tmp.path().join(format!("leecher{i}"));
        let t = s
            .add_torrent(
                TorrentOptions::from_bytes(torrent.clone())
                    .base_dir(&base)
                    .resume(false),
            )
            .await?;
        t.add_peer(seed_addr).await?;
        bars.push(tokio::spawn(follow(
            t.clone(),
            bar(&multi, &t, &format!("leecher {i}"), quiet),
        )));
        sessions.push((s, t, base));
    }
    for (_, t, _) in &sessions {
        for (other, _, _) in &sessions {
            if other.port() != t.port() {
                t.add_peer(std::net::SocketAddr::from(([127, 0, 0, 1], other.port())))
                    .await?;
            }
        }
    }
    let all = async {
        for (_, t, _) in &sessions {
            t.wait_complete().await?;
        }
        Ok::<(), bt_tokio::Error>(())
    };
    tokio::select! {
        r = all => r?,
        () = interrupt.wait() => return Err("interrupted".into()),
    }
    let secs = start.elapsed().as_secs_f64();
    for b in bars {
        let _ = b.await;
    }
    // Every byte of every leecher against the seed's files.
    for (_, _, base) in &sessions {
        for (rel, _) in &files {
            let a = std::fs::read(content.join(rel))?;
            let b = std::fs::read(base.join("demo").join(rel))?;
            if a != b {
                return Err(format!("{} differs in {}", rel, base.display()).into());
            }
        }
    }
    let moved = total as f64 * leechers as f64;
    println!(
        "{} leechers got {size_mib} MiB each from 1 seed in {secs:.2} s: {:.0} MiB/s in all, every byte verified",
        leechers,
        moved / secs / (1024.0 * 1024.0)
    );
    for (s, _, _) in sessions {
        s.shutdown().await;
    }
    seed.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
