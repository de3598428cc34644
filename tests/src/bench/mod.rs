//! The performance suite behind `cargo run --release -p bt-tests --bin bench`: loopback
//! transfers (seeder and leecher as separate processes, on tokio and on smol), a 1 + 8 swarm,
//! hashcheck next to single-core SHA-1, torrent creation, idle connections, and start-up to
//! first byte. It prints a table and writes the same figures as JSON.
//!
//! Each child process is this same binary run as `bench child ...` ([`child`]); it reports
//! its own CPU time and peak RSS from `/proc/self` (the kernel's counters that `getrusage`
//! reads too), so every figure is per process. Linux only: it reads `/proc`.

pub mod child;
pub mod dht;
pub mod efficiency;
mod libtorrent;
mod loopback;
pub mod peers;
mod rate_limit;
pub mod scale;
pub mod sim;
mod stream;
pub mod utp_sim;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bt_proto::rng::Rng;
use bt_proto::wire::{Handshake, Reserved};
use bt_proto::{InfoHash, PeerId};
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Piece length of every bench torrent but the small one: the 4 MiB.
const PIECE_LENGTH: u32 = 4 * 1024 * 1024;

/// How long a child may take to say a line before the bench gives up on it: generous, so a
/// loaded machine makes figures slow rather than the run fail.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Seed of the payload files' bytes: fixed, so every run moves the same data.
const PAYLOAD_SEED: u64 = 0x2545_f491_4f6c_dd1d;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Sizes of one run of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Loopback transfer payload (also the one hashchecked and made into a torrent).
    pub loopback: u64,
    /// Runs of each loopback transfer (the median is reported).
    pub runs: usize,
    /// Swarm payload.
    pub swarm: u64,
    /// Leechers in the swarm.
    pub swarm_leechers: usize,
    /// Idle connections opened to one seeder.
    pub idle_conns: usize,
    /// Seconds each rate-limited transfer lasts at its limit (`rate_limit`).
    pub rate_limit_secs: u64,
    /// Seeding torrents in one session (`scale`).
    pub scale_torrents: usize,
    /// Seconds that session idles while its CPU time is measured.
    pub scale_idle_secs: u64,
}

impl Sizes {
    /// The sizes.
    pub const FULL: Sizes = Sizes {
        loopback: GIB,
        runs: 3,
        swarm: 512 * MIB,
        swarm_leechers: 8,
        idle_conns: 2000,
        rate_limit_secs: 10,
        scale_torrents: 10_000,
        scale_idle_secs: 30,
    };
    /// A quick look (a minute or so): small payloads, one run each.
    pub const QUICK: Sizes = Sizes {
        loopback: 128 * MIB,
        runs: 1,
        swarm: 64 * MIB,
        swarm_leechers: 8,
        idle_conns: 1000,
        rate_limit_secs: 3,
        scale_torrents: 1000,
        scale_idle_secs: 10,
    };
}

/// CPU time and peak memory of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User CPU seconds.
    pub user: f64,
    /// System CPU seconds.
    pub sys: f64,
    /// Peak resident set, bytes.
    pub max_rss: u64,
}

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, 100 on every Linux platform.
const USER_HZ: f64 = 100.0;

/// The `Name:  N kB` field of a `/proc/*/status` text, in bytes.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The resident set of process `pid` now, bytes.
pub fn rss_of(pid: u32) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(err)?;
    status_kb(&status, "VmRSS:").ok_or_else(|| "no VmRSS in /proc status".to_string())
}

impl Usage {
    /// This process's usage so far.
    pub fn of_self() -> Result<Usage, String> {
        Usage::of_proc("self")
    }

    /// The usage so far of process `pid` (a child of the bench, measured from outside).
    pub fn of_pid(pid: u32) -> Result<Usage, String> {
        Usage::of_proc(&pid.to_string())
    }

    /// The usage of `/proc/{proc}`.
    fn of_proc(proc: &str) -> Result<Usage, String> {
        let stat = fs::read_to_string(format!("/proc/{proc}/stat")).map_err(err)?;
        // Fields after the command name (which may hold spaces, hence the last ')').
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or("bad /proc/*/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
        let tick = |i: usize| -> Result<f64, String> {
            let v: f64 = fields
                .get(i)
                .ok_or("short /proc/*/stat")?
                .parse()
                .map_err(err)?;
            Ok(v / USER_HZ)
        };
        let status = fs::read_to_string(format!("/proc/{proc}/status")).map_err(err)?;
        Ok(Usage {
            user: tick(11)?,
            sys: tick(12)?,
            max_rss: status_kb(&status, "VmHWM:").ok_or("no VmHWM in /proc status")?,
        })
    }

    pub(super) fn to_json(self) -> Value {
        json!({"user": self.user, "sys": self.sys, "max_rss": self.max_rss})
    }

    fn from_json(v: &Value) -> Option<Usage> {
        Some(Usage {
            user: v.get("user")?.as_f64()?,
            sys: v.get("sys")?.as_f64()?,
            max_rss: v.get("max_rss")?.as_u64()?,
        })
    }

    /// User and system CPU seconds.
    pub fn cpu(self) -> f64 {
        self.user + self.sys
    }
}

/// The async runtime a child or an in-process bench runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// bt-tokio, on a multi-threaded tokio runtime.
    Tokio,
    /// bt-smol, on smol's global executor.
    Smol,
}

impl Rt {
    /// The name used on command lines and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Rt::Tokio => "tokio",
            Rt::Smol => "smol",
        }
    }

    /// The runtime called `s`.
    pub fn parse(s: &str) -> Option<Rt> {
        match s {
            "tokio" => Some(Rt::Tokio),
            "smol" => Some(Rt::Smol),
            _ => None,
        }
    }
}

/// Runs a child process's role to the end on `rt`.
pub fn run_child(rt: Rt, args: child::ChildArgs, started: Instant) -> Result<(), String> {
    match rt {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(err)?
            .block_on(child::run::<bt_tokio::Tokio>(args, started)),
        Rt::Smol => smol::block_on(child::run::<bt_smol::Smol>(args, started)),
    }
}

/// A running child process of the bench.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

impl Proc {
    fn spawn(
        exe: &Path,
        rt: Rt,
        role: &str,
        torrent: &Path,
        dir: &Path,
        extra: &[String],
    ) -> Result<Proc, String> {
        let mut child = Command::new(exe)
            .arg("child")
            .arg(role)
            .arg(rt.name())
            .arg(torrent)
            .arg(dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", exe.display()))?;
        let lines = read_lines(child.stdout.take().ok_or("no stdout")?);
        let mut p = Proc {
            stdin: child.stdin.take(),
            child,
            lines,
            port: 0,
        };
        let port = p.expect("port")?;
        p.port = port.parse().map_err(err)?;
        Ok(p)
    }

    /// The rest of the next line starting with `word`; other lines are skipped.
    fn expect(&mut self, word: &str) -> Result<String, String> {
        expect_line(&self.lines, self.child.id(), word)
    }

    fn expect_secs(&mut self, word: &str) -> Result<f64, String> {
        self.expect(word)?.parse().map_err(err)
    }

    fn tell(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}").map_err(err)?;
        stdin.flush().map_err(err)
    }

    fn add_peer(&mut self, port: u16) -> Result<(), String> {
        self.tell(&format!("peer 127.0.0.1:{port}"))
    }

    /// Stops the child and returns its usage.
    fn stop(mut self) -> Result<Usage, String> {
        self.tell("stop")?;
        let usage = self.expect("usage")?;
        let _ = self.child.wait();
        let v: Value = serde_json::from_str(&usage).map_err(err)?;
        Usage::from_json(&v).ok_or_else(|| format!("bad usage line: {usage}"))
    }
}

/// The lines `stdout` prints, read on a thread of their own.
fn read_lines(stdout: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// The rest of the next line of process `pid` starting with `word`; other lines are
/// skipped. An error after [`CHILD_TIMEOUT`], or when the process has ended.
fn expect_line(
    lines: &std::sync::mpsc::Receiver<String>,
    pid: u32,
    word: &str,
) -> Result<String, String> {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .map_err(|_| format!("child {pid} never said `{word}`"))?;
        if let Some(rest) = line.strip_prefix(word) {
            return Ok(rest.trim().to_string());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A child still running here is a bench that failed half-way: do not leave it behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes `len` bytes of pseudo-random data to `path` (random, so no layer can shortcut it).
fn write_payload(path: &Path, len: u64) -> Result<(), String> {
    let mut f = File::create(path).map_err(err)?;
    let mut rng = Rng::seed_from_u64(PAYLOAD_SEED);
    let mut chunk = vec![0u8; 4 * MIB as usize];
    let mut left = len;
    while left > 0 {
        rng.fill(&mut chunk);
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(chunk.get(..n).unwrap_or_default())
            .map_err(err)?;
        left -= n as u64;
    }
    f.sync_all().map_err(err)
}

/// Reads the whole file once, so that it is in the page cache.
fn warm(path: &Path) -> Result<(), String> {
    let mut f = File::open(path).map_err(err)?;
    let mut buf = vec![0u8; 4 * MIB as usize];
    while f.read(&mut buf).map_err(err)? > 0 {}
    Ok(())
}

/// A payload file `name` of `len` bytes in `seed_dir`, and its torrent, made by the
/// adapter's `create_torrent`.
struct Payload {
    torrent: PathBuf,
    file: PathBuf,
    info_hash: InfoHash,
}

/// Makes the torrent of `file` on tokio's blocking pool; returns it and the seconds taken.
fn create(file: &Path, piece_length: u32) -> Result<(Vec<u8>, f64), String> {
    let opts = bt_tokio::create::CreateOptions {
        piece_length: Some(piece_length),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(err)?;
    let t = Instant::now();
    let bytes = rt
        .block_on(bt_tokio::create::create_torrent(file, opts))
        .map_err(err)?;
    Ok((bytes, t.elapsed().as_secs_f64()))
}

fn make_payload(
    seed_dir: &Path,
    name: &str,
    len: u64,
    piece_length: u32,
) -> Result<Payload, String> {
    fs::create_dir_all(seed_dir).map_err(err)?;
    let file = seed_dir.join(name);
    write_payload(&file, len)?;
    warm(&file)?;
    let (bytes, _) = create(&file, piece_length)?;
    let meta = bt_proto::metainfo::Metainfo::from_bytes(&bytes).map_err(err)?;
    let torrent = seed_dir.join(format!("{name}.torrent"));
    fs::write(&torrent, &bytes).map_err(err)?;
    Ok(Payload {
        torrent,
        file,
        info_hash: meta.info_hash(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn swarm(exe: &Path, rt: Rt, p: &Payload, work: &Path, leechers: usize) -> Result<Value, String> {
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let seeder = Proc::spawn(exe, rt, "seed", &p.torrent, seed_dir, &[])?;
    let mut procs = Vec::new();
    for i in 0..leechers {
        let dir = work.join(format!("swarm-{i}"));
        let _ = fs::remove_dir_all(&dir);
        procs.push(Proc::spawn(exe, rt, "leech", &p.torrent, &dir, &[])?);
    }
    let ports: Vec<u16> = procs.iter().map(|p| p.port).collect();
    let t = Instant::now();
    for (i, proc) in procs.iter_mut().enumerate() {
        proc.add_peer(seeder.port)?;
        // Each pair connects once: the later leecher dials the earlier ones.
        for port in ports.iter().take(i) {
            proc.add_peer(*port)?;
        }
    }
    let mut times = Vec::new();
    for proc in procs.iter_mut() {
        times.push(proc.expect_secs("done")?);
    }
    let all = t.elapsed().as_secs_f64();
    let mut leech_cpu = 0.0;
    let mut max_rss = 0;
    for proc in procs {
        let u = proc.stop()?;
        leech_cpu += u.cpu();
        max_rss = max_rss.max(u.max_rss);
    }
    let seeder_usage = seeder.stop()?;
    for i in 0..leechers {
        let _ = fs::remove_dir_all(work.join(format!("swarm-{i}")));
    }
    let total = p_size(p)? * leechers as u64;
    Ok(json!({
        "runtime": rt.name(),
        "leechers": leechers,
        "bytes": p_size(p)?,
        "all_complete_secs": all,
        "aggregate_mb_s": mb_per_s(total, all),
        "slowest_leecher_secs": times.iter().copied().fold(0.0, f64::max),
        "seeder": seeder_usage.to_json(),
        "leechers_cpu_secs": leech_cpu,
        "leecher_max_rss": max_rss,
    }))
}

fn p_size(p: &Payload) -> Result<u64, String> {
    Ok(fs::metadata(&p.file).map_err(err)?.len())
}

/// Single-core SHA-1 speed, bytes per second, over `len` bytes in memory.
fn sha1_single_core(len: usize) -> f64 {
    let buf = vec![0x5au8; 4 * MIB as usize];
    let t = Instant::now();
    let mut done = 0;
    let mut acc = 0u8;
    while done < len {
        acc ^= bt_proto::sha1(&buf)[0];
        done += buf.len();
    }
    std::hint::black_box(acc);
    done as f64 / t.elapsed().as_secs_f64()
}

/// Hashchecks the payload in this process on `rt` (files warm in the page cache).
fn hashcheck(rt: Rt, p: &Payload) -> Result<f64, String> {
    warm(&p.file)?;
    let dir = p
        .file
        .parent()
        .ok_or("payload has no directory")?
        .to_path_buf();
    let torrent = p.torrent.clone();
    let run = async move {
        let session = bt_tokio::Session::builder()
            .listen_ip(Ipv4Addr::LOCALHOST.into())
            .config(crate::loopback_limits)
            .start()
            .await
            .map_err(err)?;
        let t = session
            .add_torrent(
                bt_tokio::TorrentOptions::from_path(&torrent)
                    .base_dir(&dir)
                    .resume(false)
                    .verify_existing(false)
                    .state(bt_tokio::TorrentState::Stopped),
            )
            .await
            .map_err(err)?;
        let start = Instant::now();
        let report = t.hashcheck().await.map_err(err)?;
        let secs = start.elapsed().as_secs_f64();
        session.shutdown().await;
        if report.verified != report.total {
            return Err(format!("{} of {} verified", report.verified, report.total));
        }
        Ok(secs)
    };
    match rt {
        Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(err)?
            .block_on(run),
        // The hashcheck path is the adapter's, the same for both runtimes: one is enough.
        Rt::Smol => Err("hashcheck is measured on tokio".into()),
    }
}

/// Opens `n` connections to a seeder, each sending a handshake for `info_hash`, and returns
/// the seeder's extra resident memory once they are all idle.
fn idle_connections(
    exe: &Path,
    rt: Rt,
    p: &Payload,
    n: usize,
) -> Result<(u64, u64, usize), String> {
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let limit = vec!["--max-connections".to_string(), (n + 16).to_string()];
    let seeder = Proc::spawn(exe, rt, "seed", &p.torrent, seed_dir, &limit)?;
    // Let the session settle before the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_of(seeder.child.id())?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, seeder.port));
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).map_err(err)?;
        let mut id = [b'-'; 20];
        id[..8].copy_from_slice(b"-BENCH0-");
        id[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        let hs = Handshake {
            reserved: Reserved::NONE,
            info_hash: p.info_hash,
            peer_id: PeerId(id),
        };
        s.write_all(&hs.encode()).map_err(err)?;
        conns.push(s);
    }
    // Each connection gets the seeder's handshake and bitfield: read them, so that every
    // connection is known to be established and idle.
    let mut alive = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for s in conns.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        if matches!(s.read(&mut buf), Ok(k) if k > 0) {
            alive += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_of(seeder.child.id())?;
    let _ = seeder.stop()?;
    drop(conns);
    Ok((before, after, alive))
}

/// Start-up to first byte: a leecher process of a small torrent (1 MiB, 64 KiB pieces) from
/// its start to its first verified piece, the seeder already running.
fn first_byte(exe: &Path, rt: Rt, work: &Path) -> Result<f64, String> {
    let p = make_payload(&work.join("small-seed"), "small", MIB, 64 * 1024)?;
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let seeder = Proc::spawn(exe, rt, "seed", &p.torrent, seed_dir, &[])?;
    let leech_dir = work.join("small-leech");
    let _ = fs::remove_dir_all(&leech_dir);
    // The leecher's clock runs from its own process start: spawn, runtime, session, add.
    let mut leecher = Proc::spawn(exe, rt, "leech", &p.torrent, &leech_dir, &[])?;
    leecher.add_peer(seeder.port)?;
    let first = leecher.expect_secs("first")?;
    leecher.expect("done")?;
    leecher.stop()?;
    seeder.stop()?;
    let _ = fs::remove_dir_all(&leech_dir);
    Ok(first)
}

/// Options of a suite run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sizes.
    pub sizes: Sizes,
    /// Working directory (payloads and downloads; needs about 3 payloads of space).
    pub work: PathBuf,
    /// Where to write the JSON.
    pub json: PathBuf,
    /// Only the parts named (empty: all): loopback, rc4, utp, swarm, hashcheck, idle, first,
    /// dht, rate_limit, stream, utp_sim, sim, scale, efficiency, peers.
    pub only: Vec<String>,
    /// Runtimes to run the process benches on.
    pub runtimes: Vec<Rt>,
}

/// Runs the suite; prints the table as it goes and writes the JSON at the end.
pub fn run(exe: &Path, opts: &Options) -> Result<Value, String> {
    let want = |name: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == name);
    let work = &opts.work;
    fs::create_dir_all(work).map_err(err)?;
    let s = opts.sizes;
    let mut out = json!({"sizes": {
        "loopback": s.loopback, "runs": s.runs, "swarm": s.swarm,
        "idle_conns": s.idle_conns, "rate_limit_secs": s.rate_limit_secs,
        "scale_torrents": s.scale_torrents, "scale_idle_secs": s.scale_idle_secs,
    }});
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |name: String, value: String, target: &str| {
        println!("{name:<44} {value:>18}   {target}");
        rows.push((name, value, target.to_string()));
    };
    println!("{:<44} {:>18}   target", "bench", "figure");

    let loopback_parts = ["hashcheck", "loopback", "rc4", "utp", "idle"];
    if loopback_parts.iter().any(|p| want(p)) {
        let p = make_payload(&work.join("seed"), "payload", s.loopback, PIECE_LENGTH)?;
        if want("hashcheck") {
            // Creation and hashcheck of the loopback payload (warm cache), the 1 GiB.
            let sha = sha1_single_core(GIB as usize);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let size = p_size(&p)?;
            let secs = hashcheck(Rt::Tokio, &p)?;
            let rate = size as f64 / secs;
            // Creation again, timed, on the warm file (median of three).
            let mut creates = Vec::new();
            for _ in 0..3 {
                creates.push(create(&p.file, PIECE_LENGTH)?.1);
            }
            let create_secs = median(creates);
            row(
                "sha1 single core (MB/s)".into(),
                format!("{:.0}", sha / 1e6),
                "",
            );
            row(
                format!("hashcheck {} MiB warm (MB/s)", size / MIB),
                format!(
                    "{:.0} ({:.0}%)",
                    rate / 1e6,
                    100.0 * rate / (sha * cores as f64)
                ),
                "≥ 80% of cores × sha1",
            );
            row(
                format!("create torrent {} MiB (s)", size / MIB),
                format!("{create_secs:.3}"),
                "≤ 0.45 s per GiB",
            );
            out["hashcheck"] = json!({
                "bytes": size, "secs": secs, "mb_s": rate / 1e6,
                "sha1_single_core_mb_s": sha / 1e6, "cores": cores,
                "fraction_of_cores_x_sha1": rate / (sha * cores as f64),
            });
            out["create"] = json!({"bytes": size, "secs": create_secs});
        }
        if want("loopback") {
            let v = loopback::plain(exe, &opts.runtimes, s.runs, &p, work)?;
            for (name, value, target) in v.rows {
                row(name, value, target);
            }
            out["loopback"] = v.json;
        }
        // The same transfer with encryption required on both sides, RC4 on every byte; and
        // over uTP only.
        for variant in loopback::VARIANTS {
            if want(variant.part) {
                let v = loopback::variant(exe, &opts.runtimes, s.runs, &p, work, &variant, &out)?;
                for (name, value, target) in v.rows {
                    row(name, value, target);
                }
                out[variant.json_key] = v.json;
            }
        }
        if want("idle") {
            let mut all = Vec::new();
            for &rt in &opts.runtimes {
                let (before, after, alive) = idle_connections(exe, rt, &p, s.idle_conns)?;
                let extra = after.saturating_sub(before);
                row(
                    format!(
                        "{} idle conns, {}: extra RSS (MiB)",
                        s.idle_conns,
                        rt.name()
                    ),
                    format!("{:.1}", extra as f64 / MIB as f64),
                    "≤ 32",
                );
                all.push(json!({
                    "runtime": rt.name(), "connections": s.idle_conns, "answered": alive,
                    "rss_before": before, "rss_after": after, "extra_rss": extra,
                }));
            }
            out["idle"] = Value::Array(all);
        }
    }
    if want("swarm") {
        let p = make_payload(&work.join("swarm-seed"), "swarm", s.swarm, PIECE_LENGTH)?;
        let mut all = Vec::new();
        for &rt in &opts.runtimes {
            let v = swarm(exe, rt, &p, work, s.swarm_leechers)?;
            row(
                format!(
                    "swarm 1+{} × {} MiB, {}: aggregate (MB/s)",
                    s.swarm_leechers,
                    s.swarm / MIB,
                    rt.name()
                ),
                format!("{:.0}", v["aggregate_mb_s"].as_f64().unwrap_or(f64::NAN)),
                "",
            );
            row(
                format!("swarm, {}: all complete (s)", rt.name()),
                format!("{:.2}", v["all_complete_secs"].as_f64().unwrap_or(f64::NAN)),
                "",
            );
            all.push(v);
        }
        out["swarm"] = Value::Array(all);
    }
    if want("dht") {
        let v = dht::lookups(1000, 100, 1);
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        row(
            "DHT 1000 nodes: lookups finding the 8 closest (%)".into(),
            format!("{:.0}", 100.0 * f("exact_k_closest_fraction")),
            "",
        );
        row(
            "DHT 1000 nodes: queries per lookup (median/p95)".into(),
            format!("{}/{}", f("queries_median"), f("queries_p95")),
            "",
        );
        row(
            "DHT 1000 nodes: hops per lookup (median/p95)".into(),
            format!("{}/{}", f("hops_median"), f("hops_p95")),
            "",
        );
        out["dht"] = v;
    }
    if want("rate_limit") {
        let part = rate_limit::run(exe, &opts.runtimes, s, work)?;
        for (name, value, target) in part.rows {
            row(name, value, &target);
        }
        out["rate_limit"] = part.json;
    }
    if want("utp_sim") {
        let scale = if s.loopback < Sizes::FULL.loopback {
            bt_proto::sim::utp::figures::Scale::quick()
        } else {
            bt_proto::sim::utp::figures::Scale::full()
        };
        let v = utp_sim::figures(scale);
        let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let link = format!(
            "{} Mbit/s {} ms",
            scale.rate * 8 / 1_000_000,
            scale.latency.as_millis()
        );
        for u in v["single_flow"].as_array().into_iter().flatten() {
            row(
                format!(
                    "uTP {link}: {} % loss, dup, jitter (% of link)",
                    100.0 * f(&u["loss"])
                ),
                format!("{:.1}", 100.0 * f(&u["share"])),
                ">= 90",
            );
        }
        let two = &v["two_flows"];
        row(
            format!("uTP {link}: two flows (% each, Jain)"),
            format!(
                "{:.1}/{:.1} {:.3}",
                100.0 * f(&two["shares"][0]),
                100.0 * f(&two["shares"][1]),
                f(&two["jain"])
            ),
            "40-60 each",
        );
        let t = &v["next_to_tcp"];
        row(
            format!("uTP {link}: next to TCP (uTP/TCP %, queue ms)"),
            format!(
                "{:.1}/{:.1} {:.0}",
                100.0 * f(&t["utp_share"]),
                100.0 * f(&t["tcp_share"]),
                f(&t["utp_queuing_delay_ms"])
            ),
            "uTP yields",
        );
        out["utp_sim"] = v;
    }
    if want("sim") {
        let (hundred, thousand) = if s.loopback < Sizes::FULL.loopback {
            sim::QUICK
        } else {
            (sim::HUNDRED, sim::THOUSAND)
        };
        let v = sim::figures(hundred, thousand)?;
        let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let (h, k) = (&v["sim"], &v["sim_1000"]);
        row(
            format!(
                "sim 1+{} × {} MiB: payload per wall second (MB/s)",
                hundred.leechers,
                hundred.size / MIB
            ),
            format!("{:.0}", f(&h["mb_per_s"])),
            "≥ 1000",
        );
        row(
            format!(
                "sim 1+{} × {} MiB: wall time (s)",
                thousand.leechers,
                thousand.size / MIB
            ),
            format!("{:.1}", f(&k["wall_secs"])),
            "< 60",
        );
        out["sim"] = v["sim"].clone();
        out["sim_1000"] = v["sim_1000"].clone();
    }
    if want("efficiency") {
        let scenarios = if s.loopback < Sizes::FULL.loopback {
            efficiency::quick_scenarios()
        } else {
            efficiency::scenarios()
        };
        let (rows, v) = efficiency::figures(&scenarios)?;
        for (name, value, target) in rows {
            row(name, value, &target);
        }
        out["efficiency"] = v;
    }
    if want("first") {
        let mut all = Vec::new();
        for &rt in &opts.runtimes {
            let mut runs = Vec::new();
            for _ in 0..3 {
                runs.push(first_byte(exe, rt, work)?);
            }
            let t = median(runs.clone());
            row(
                format!("start-up to first byte, {} (s)", rt.name()),
                format!("{t:.3}"),
                "≤ 0.1",
            );
            all.push(json!({"runtime": rt.name(), "secs_median": t, "runs": runs}));
        }
        out["first_byte"] = Value::Array(all);
    }
    if want("stream") {
        // A file as large as the loopback payload, in the same 4 MiB pieces: a film.
        let p = make_payload(&work.join("stream-seed"), "movie", s.loopback, PIECE_LENGTH)?;
        let mut all = Vec::new();
        for &rt in &opts.runtimes {
            let mut runs = Vec::new();
            for _ in 0..s.runs.max(3) {
                runs.push(stream::stream_first_byte(exe, rt, &p, work)?);
            }
            let t = median(runs.clone());
            row(
                format!("file_reader: first byte of the middle, {} (s)", rt.name()),
                format!("{t:.3}"),
                "",
            );
            all.push(json!({"runtime": rt.name(), "secs_median": t, "runs": runs}));
        }
        out["stream_first_byte"] = Value::Array(all);
    }
    if want("scale") {
        let idle = Duration::from_secs(s.scale_idle_secs);
        let mut all = Vec::new();
        for &rt in &opts.runtimes {
            let f = scale::run(exe, rt, work, s.scale_torrents, idle)?;
            for (name, value, target) in f.rows {
                row(name, value, target);
            }
            all.push(f.json);
        }
        // The first runtime's figures at the top, in the shape; every runtime's in
        // `runs`.
        let mut first = all.first().cloned().unwrap_or(Value::Null);
        first["runs"] = Value::Array(all);
        out["scale"] = first;
    }
    if want("peers") {
        let (all, json) = peers::run(&[s.idle_conns / 10, s.idle_conns])?;
        for m in &all {
            row(
                format!(
                    "{} leechers on one engine: RSS per conn (KiB)",
                    m.connections
                ),
                format!("{:.1}", m.rss_per_conn / 1024.0),
                "",
            );
            row(
                format!("{} leechers on one engine: choke round (ms)", m.connections),
                format!("{:.3}", m.round_secs * 1e3),
                "",
            );
        }
        out["peers"] = json;
    }
    out["table"] = Value::Array(
        rows.into_iter()
            .map(|(n, v, t)| json!({"bench": n, "figure": v, "target": t}))
            .collect(),
    );
    fs::write(&opts.json, serde_json::to_string_pretty(&out).map_err(err)?).map_err(err)?;
    println!("JSON written to {}", opts.json.display());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\tbench\nVmHWM:\t   30512 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_kb(status, "VmHWM:"), Some(30512 * 1024));
        assert_eq!(status_kb(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn own_usage_grows_with_work() {
        let before = Usage::of_self().unwrap();
        let mut x = 0u64;
        let t = Instant::now();
        // Busy until the CPU time moves (a clock tick is 10 ms), however loaded the machine;
        // 10 s without a tick would mean the counters are not read.
        let mut after = before;
        while after.cpu() <= before.cpu() && t.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = Usage::of_self().unwrap();
        }
        assert!(after.cpu() > before.cpu(), "{before:?} -> {after:?}");
        assert!(after.max_rss > 0);
    }

    #[test]
    fn median_is_the_middle_run() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
