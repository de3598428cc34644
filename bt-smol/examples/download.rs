//! `download FILE.torrent [-o DIR] [--port N] [--peer HOST:PORT]...` on smol: downloads a
//! torrent into DIR (default: the current directory), printing progress as plain lines, and
//! shuts down gracefully (stopped announced, files flushed, resume data saved) when complete.
//!
//! ```text
//! cargo run -p bt-smol --example download -- debian.iso.torrent -o downloads --peer 10.0.0.2:6881
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bt_smol::{Session, TorrentOptions};

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

const USAGE: &str = "usage: download FILE.torrent [-o DIR] [--port N] [--peer HOST:PORT]...";

struct Args {
    torrent: PathBuf,
    dir: PathBuf,
    port: u16,
    peers: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut torrent = None;
    let mut dir = PathBuf::from(".");
    let mut port = 0;
    let mut peers = Vec::new();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-o" | "--output" => dir = value(&a)?.into(),
            "--port" => port = value(&a)?.parse().map_err(|e| format!("bad --port: {e}"))?,
            "--peer" => peers.push(value(&a)?),
            "-h" | "--help" => return Err(USAGE.into()),
            _ if torrent.is_none() && !a.starts_with('-') => torrent = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}\n{USAGE}")),
        }
    }
    let torrent = torrent.ok_or(USAGE)?;
    Ok(Args {
        torrent,
        dir,
        port,
        peers,
    })
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let session = Session::builder().port(args.port).start().await?;
    let t = session
        .add_torrent(TorrentOptions::from_path(&args.torrent).base_dir(&args.dir))
        .await?;
    println!(
        "{}: {} bytes in {} pieces, info-hash {}, listening on port {}",
        t.name(),
        t.size(),
        t.metainfo().piece_count(),
        t.infohash(),
        session.port()
    );
    for p in &args.peers {
        let (host, port) = p
            .rsplit_once(':')
            .ok_or_else(|| format!("peer {p} is not HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|e| format!("peer {p}: {e}"))?;
        let addr = smol::net::resolve((host, port))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("peer {p} has no address"))?;
        t.add_peer(addr).await?;
    }
    loop {
        let s = t.stats().await?;
        let done = t.size().saturating_sub(s.left);
        println!(
            "{:5.1}%  {done}/{} bytes  {} peers  down {} B  up {} B",
            100.0 * done as f64 / t.size().max(1) as f64,
            t.size(),
            s.peers,
            s.downloaded,
            s.uploaded
        );
        if s.complete {
            break;
        }
        smol::Timer::after(PROGRESS_EVERY).await;
    }
    println!("complete; shutting down");
    session.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match smol::block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
