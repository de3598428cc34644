//! The seeding and leeching processes of the bench: one session each, on the runtime named on
//! the command line, driven by lines on stdin and reporting lines on stdout.
//!
//! Protocol (one line each):
//! - the child prints `port N` once its session listens and its torrent is ready (a seeder:
//!   checked and seeding);
//! - stdin `peer ADDR` adds a peer to the torrent (a leecher's clock starts at the first);
//! - a leecher prints `first T` when its first piece has passed its hash check (T: seconds
//!   since the process started) and `done T` when it is complete (T: seconds since the first
//!   peer line);
//! - stdin `stop` (or end of input) shuts the session down; the child then prints
//!   `usage {json}` with its CPU time and peak RSS, and exits.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bt_adapter::{Event, Runtime, Session, TorrentOptions, TorrentState, Transports};
use bt_proto::engine::RateLimits;

use super::{Usage, err};

/// A leecher still downloading this long after its first peer (the swarm takes about ten
/// seconds) prints the engine's state to stderr, so a rare stall explains itself.
const STALL_DUMP_AFTER: Duration = Duration::from_secs(20);

/// How often a stalled leecher prints its state again.
const STALL_DUMP_EVERY: Duration = Duration::from_secs(5);

/// What a child process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Checks the data, then serves it.
    Seed,
    /// Downloads into an empty directory, then serves what it has.
    Leech,
}

/// A child's command line.
#[derive(Debug, Clone)]
pub struct ChildArgs {
    /// Seeder or leecher.
    pub role: Role,
    /// The `.torrent` file.
    pub torrent: PathBuf,
    /// The data directory.
    pub dir: PathBuf,
    /// The session's rate limits (the bench's `rate_limit` part).
    pub rate_limits: RateLimits,
    /// Connections the session accepts (the idle-connections bench needs more than the
    /// default).
    pub max_connections: Option<usize>,
    /// Message stream encryption required (RC4 on every byte), for the bench's `rc4` part.
    pub encryption_required: bool,
    /// The transports of peer connections (uTP only for the bench's `utp` part).
    pub transports: Transports,
}

/// A line of the parent's on stdin.
pub(super) enum Line {
    Peer(SocketAddr),
    /// The scale part: add the torrents now.
    Add,
    Stop,
}

/// Lines from stdin, read on a thread of their own (stdin has no async form in std).
pub(super) fn stdin_lines() -> async_channel::Receiver<Line> {
    let (tx, rx) = async_channel::unbounded();
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let l = line.trim();
            let msg = match l.strip_prefix("peer ") {
                Some(a) => match a.parse() {
                    Ok(addr) => Line::Peer(addr),
                    Err(_) => continue,
                },
                None if l == "stop" => Line::Stop,
                None if l == "add" => Line::Add,
                None => continue,
            };
            if tx.send_blocking(msg).is_err() {
                return;
            }
        }
        let _ = tx.send_blocking(Line::Stop);
    });
    rx
}

pub(super) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs one child to the end; `started` is when the process started.
pub async fn run<R: Runtime>(args: ChildArgs, started: Instant) -> Result<(), String> {
    let max = args.max_connections;
    let required = args.encryption_required;
    let session = Session::<R>::builder()
        .listen_ip(Ipv4Addr::LOCALHOST.into())
        .rate_limits(args.rate_limits)
        .config(crate::loopback_limits)
        .config(move |c| {
            if required {
                c.encryption = bt_proto::mse::Encryption::Required;
            }
        })
        .transports(args.transports)
        .config(move |c| {
            if let Some(n) = max {
                c.max_incoming = n;
                c.max_incoming_handshakes = n;
                c.max_incoming_handshakes_per_host = n;
                c.max_connections_per_torrent = n;
                c.max_connections_per_host = n;
            }
        })
        .start()
        .await
        .map_err(err)?;
    let mut events = session.events();
    let opts = TorrentOptions::from_path(&args.torrent)
        .base_dir(&args.dir)
        .resume(false)
        .verify_existing(false)
        .state(match args.role {
            Role::Seed => TorrentState::Stopped,
            Role::Leech => TorrentState::Started,
        });
    let torrent = session.add_torrent(opts).await.map_err(err)?;
    if args.role == Role::Seed {
        let report = torrent.hashcheck().await.map_err(err)?;
        if report.verified != report.total {
            return Err(format!(
                "seeder: {} of {} pieces verified",
                report.verified, report.total
            ));
        }
        torrent.start().await.map_err(err)?;
    }
    say(&format!("port {}", session.port()));
    let lines = stdin_lines();
    let mut clock: Option<Instant> = None;
    let mut first_said = args.role == Role::Seed;
    let mut done_said = args.role == Role::Seed;
    loop {
        let next = futures_lite::future::or(
            async { Some(Ok(lines.recv().await)) },
            futures_lite::future::or(async { Some(Err(events.next().await)) }, async {
                R::sleep_until(Instant::now() + STALL_DUMP_EVERY).await;
                None
            }),
        )
        .await;
        let Some(next) = next else {
            if let Some(c) = clock
                && !done_said
                && c.elapsed() >= STALL_DUMP_AFTER
            {
                eprintln!(
                    "STALL {} at {:.1}s:\n{}",
                    std::process::id(),
                    c.elapsed().as_secs_f64(),
                    torrent.debug_state().await.unwrap_or_default()
                );
            }
            continue;
        };
        match next {
            Ok(Ok(Line::Peer(addr))) => {
                clock.get_or_insert_with(Instant::now);
                torrent.add_peer(addr).await.map_err(err)?;
            }
            Ok(Ok(Line::Stop)) | Ok(Err(_)) => break,
            Ok(Ok(Line::Add)) => {}
            Err(Some(Ok(Event::HashPassed { .. }))) if !first_said => {
                first_said = true;
                say(&format!("first {}", started.elapsed().as_secs_f64()));
            }
            Err(Some(Ok(Event::Complete { .. }))) if !done_said => {
                done_said = true;
                let t = clock.map_or(0.0, |c| c.elapsed().as_secs_f64());
                say(&format!("done {t}"));
            }
            Err(Some(Ok(Event::HashFailed { piece, .. }))) => {
                return Err(format!("piece {piece} failed its hash check"));
            }
            // A failed torrent chokes its peers and waits: say why now rather than leave the
            // bench to time out on a stalled transfer.
            Err(Some(Ok(Event::StorageFailed { error, .. }))) => {
                return Err(format!("{:?}: storage failed: {error}", args.role));
            }
            // The first piece or the completion may be among what was missed.
            Err(Some(Err(lagged))) => return Err(lagged.to_string()),
            Err(Some(Ok(_))) => {}
            Err(None) => break,
        }
    }
    session.shutdown().await;
    let usage = Usage::of_self().map_err(err)?;
    say(&format!("usage {}", usage.to_json()));
    Ok(())
}
