//! `bench`: the performance suite (see `bt_tests::bench`).
//!
//! ```text
//! cargo run --release -p bt-tests --bin bench -- [--quick] [--json OUT.json] [--dir WORK]
//!     [--only loopback,rc4,utp,swarm,hashcheck,idle,first,dht,rate_limit,stream,utp_sim,sim,scale,efficiency,peers]
//!     [--runtime tokio,smol]
//! ```
//!
//! `--only rate_limit` measures how closely a 20 MiB/s upload limit, and a download limit,
//! hold on a loopback transfer (the part is in the default run too).
//!
//! `--only scale` measures one session of 10,000 seeding torrents whose tracker never
//! answers (1,000 and 10 idle seconds with `--quick`): time to add them all, resident memory
//! beyond the empty session, and CPU time while idle (see `bt_tests::bench::scale`).
//!
//! `--only efficiency` runs 1 seed and 10, 100 and 500 leechers on the simulator (and the
//! 100 with 1 % loss, and with 20 % of leechers leaving on completion) and reports each
//! swarm's last and mean completion against the fluid bound T_min (Kumar and Ross, 2006;
//! see `bt_tests::bench::efficiency`).
//!
//! `--only peers` connects 200 and 2,000 interested leechers to one seeding engine, fed as
//! the simulator feeds it, and reports the memory each connection adds and the wall time of
//! one choke round (see `bt_tests::bench::peers`); `--only idle` holds the 2,000 as real
//! idle connections on loopback.
//!
//! `--quick` runs small payloads once each (about a minute); the default is the issue's
//! sizes (1 GiB loopback, three runs each on tokio and smol; several minutes). The work
//! directory (default: `bench-work-PID` under the system temp dir, so that two benches run
//! at once never rewrite or remove each other's payloads under a seeder) holds payloads of
//! a few GiB and is removed at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bt_adapter::Transports;
use bt_proto::engine::RateLimits;
use bt_tests::bench::{self, Options, Rt, Sizes, child};

fn usage() -> String {
    "usage: bench [--quick] [--json OUT] [--dir WORK] [--only a,b] [--runtime tokio,smol]\n       \
     bench child seed|leech tokio|smol TORRENT DIR [--max-connections N] [--encryption-required]\n       \
     [--transport tcp|utp|both]\n       \
     bench child scale tokio|smol TORRENTS_DIR DATA_DIR"
        .to_string()
}

fn child_main(args: &[String], started: Instant) -> Result<(), String> {
    if let [role, rt, torrents, data] = args
        && role == "scale"
    {
        let rt = Rt::parse(rt).ok_or_else(usage)?;
        return bench::scale::run_child(rt, torrents.into(), data.into());
    }
    let [role, rt, torrent, dir, rest @ ..] = args else {
        return Err(usage());
    };
    let role = match role.as_str() {
        "seed" => child::Role::Seed,
        "leech" => child::Role::Leech,
        _ => return Err(usage()),
    };
    let rt = Rt::parse(rt).ok_or_else(usage)?;
    let mut rate_limits = RateLimits::NONE;
    let mut max_connections = None;
    let mut encryption_required = false;
    let mut transports = Transports::Both;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--max-upload-rate" | "--max-download-rate" => {
                let n = it.next().and_then(|n| n.parse().ok()).ok_or_else(usage)?;
                match flag.as_str() {
                    "--max-upload-rate" => rate_limits.upload = n,
                    _ => rate_limits.download = n,
                }
            }
            "--max-connections" => {
                let n = it.next().ok_or_else(usage)?;
                max_connections = Some(n.parse().map_err(|_| usage())?);
            }
            "--encryption-required" => encryption_required = true,
            "--transport" => {
                transports = match it.next().map(String::as_str) {
                    Some("tcp") => Transports::Tcp,
                    Some("utp") => Transports::Utp,
                    Some("both") => Transports::Both,
                    _ => return Err(usage()),
                };
            }
            _ => return Err(usage()),
        }
    }
    let args = child::ChildArgs {
        role,
        torrent: PathBuf::from(torrent),
        dir: PathBuf::from(dir),
        rate_limits,
        max_connections,
        encryption_required,
        transports,
    };
    bench::run_child(rt, args, started)
}

fn suite_main(args: &[String]) -> Result<(), String> {
    let mut opts = Options {
        sizes: Sizes::FULL,
        work: std::env::temp_dir().join(format!("bench-work-{}", std::process::id())),
        json: PathBuf::from("bench.json"),
        only: Vec::new(),
        runtimes: vec![Rt::Tokio, Rt::Smol],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(usage);
        match a.as_str() {
            "--quick" => opts.sizes = Sizes::QUICK,
            "--json" => opts.json = PathBuf::from(value()?),
            "--dir" => opts.work = PathBuf::from(value()?),
            "--only" => opts.only = value()?.split(',').map(str::to_string).collect(),
            "--runtime" => {
                opts.runtimes = value()?
                    .split(',')
                    .map(|r| Rt::parse(r).ok_or_else(usage))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(usage()),
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let result = bench::run(&exe, &opts);
    let _ = std::fs::remove_dir_all(&opts.work);
    result.map(drop)
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((first, rest)) if first == "child" => child_main(rest, started),
        _ => suite_main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
