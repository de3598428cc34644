//! The interop harness: real clients and a real tracker (opentracker) on loopback, driven as
//! child processes, against our `bt` sessions.
//!
//! Every external program is found with [`require`]: outside CI a missing one skips the test
//! with a visible `SKIPPED:` line, in CI ([`in_ci`]) it fails the test. Every child is a
//! [`Proc`]: its output goes to a log file that [`fail`] attaches to the panic message, and it
//! is stopped by PID when dropped. Figures are printed as `INTEROP ...` lines by [`report`],
//! never asserted.

pub mod aria2;
pub mod clients;
pub mod libtorrent;
pub mod magnet;
pub mod qbittorrent;
pub mod rtorrent;
pub mod transmission;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bt_adapter::{Encryption, Runtime, Session, SessionBuilder, Torrent, TorrentOptions};
use bt_proto::bencode;
use bt_proto::engine::{Event, PeerInfo};
use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::create::{InputFile, TorrentBuilder};
use bt_proto::{InfoHash, PieceIndex};
use sha1::{Digest, Sha1};

use crate::swarm::{pseudo_random, sleep, standard_files};

/// True in CI ([`means_ci`] of the `CI` variable): a missing client is then a failure, never
/// a skip.
pub fn in_ci() -> bool {
    means_ci(std::env::var_os("CI").as_deref())
}

/// Whether a value of the `CI` environment variable means CI: any value but empty, `false`
/// and `0` (services set `true` or `1`). `.ci/run` has the same rule in bash (`is_ci`).
pub fn means_ci(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Says `what` is missing: a panic in CI, a visible skip message otherwise.
fn missing(what: &str) {
    if in_ci() {
        panic!("{what} is not installed; CI installs it in .ci/run (CI set makes this a failure)");
    }
    eprintln!("SKIPPED: {what} not installed");
}

/// Finds `program` on PATH (or as given, if it contains a `/`). Outside CI, `None` with a
/// visible `SKIPPED: <program> not installed` on stderr; in CI a panic saying what is missing.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        missing(program);
    }
    found
}

/// The Python that Debian's `python3-*` modules are built for. A `python3` earlier on PATH
/// (pyenv, a venv) would not see them, so it is named by its full path.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Checks that [`SYSTEM_PYTHON`] can import `module`, with the same rules as [`require`].
pub fn require_python_module(module: &str) -> Option<()> {
    require(SYSTEM_PYTHON)?;
    if !python_module_present(module) {
        missing(&format!("python3 module {module} (for {SYSTEM_PYTHON})"));
        return None;
    }
    Some(())
}

/// Whether [`SYSTEM_PYTHON`] can import `module`; quietly false if it cannot (or is not
/// there), for callers with their own rule about a missing module (the bench).
pub fn python_module_present(module: &str) -> bool {
    Command::new(SYSTEM_PYTHON)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How long a child is given to exit after SIGTERM before it is killed.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// Lines of a child's log quoted in a failure message: enough to show what it did last,
/// short enough to read; the whole log stays on disk at the path quoted with it.
const LOG_TAIL_LINES: usize = 150;

/// A child process whose stdout and stderr go to a log file; stopped by PID (SIGTERM, then
/// SIGKILL after [`TERM_GRACE`]) when dropped.
pub struct Proc {
    name: String,
    child: Child,
    log_path: PathBuf,
    status: Option<ExitStatus>,
    /// Logs the program writes itself (not to stdout/stderr), quoted beside its output.
    own_logs: Vec<PathBuf>,
}

/// Sends `signal` (a name such as `TERM`) to `pid` through the shell's `kill` builtin, which
/// every POSIX shell has, so neither `procps` nor unsafe FFI is needed.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .stderr(Stdio::null())
        .status();
}

impl Proc {
    /// Starts `cmd` as `name`, its output in `log_dir/<name>.log` (a number is added to the
    /// name if that log exists already).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        fs::create_dir_all(log_dir).unwrap();
        let mut log_path = log_dir.join(format!("{name}.log"));
        let mut n = 1;
        while log_path.exists() {
            n += 1;
            log_path = log_dir.join(format!("{name}-{n}.log"));
        }
        let log = File::create(&log_path).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_string(),
            child,
            log_path,
            status: None,
            own_logs: Vec::new(),
        }
    }

    /// Quotes the log file `path`, which the program writes itself, beside its output in
    /// failure messages.
    pub fn also_log(&mut self, path: PathBuf) {
        self.own_logs.push(path);
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the child wrote so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// Where the log is.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Stops the child: SIGTERM, then SIGKILL after [`TERM_GRACE`]. Returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.exited().is_none() {
            signal(self.pid(), "TERM");
            let deadline = Instant::now() + TERM_GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.exited().is_none() {
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
            }
        }
        self.status
    }

    /// The last [`LOG_TAIL_LINES`] lines of the log and of each of the program's own logs,
    /// headed by the name, path and exit status as last seen (a client that dies by a signal
    /// may write nothing: the status is then all there is to go on).
    fn tail(&self) -> String {
        let status = self
            .status
            .map_or("not exited".to_string(), |s| format!("exited: {s}"));
        std::iter::once(&self.log_path)
            .chain(&self.own_logs)
            .map(|path| {
                let log = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
                let lines: Vec<&str> = log.lines().collect();
                let from = lines.len().saturating_sub(LOG_TAIL_LINES);
                format!(
                    "----- {} (pid {}, {status}, log {}, last {} of {} lines) -----\n{}",
                    self.name,
                    self.pid(),
                    path.display(),
                    lines.len() - from,
                    lines.len(),
                    lines.get(from..).unwrap_or_default().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Panics with `what` and the log of each of `procs`.
pub fn fail(what: &str, procs: &[&Proc]) -> ! {
    let logs: Vec<String> = procs.iter().map(|p| p.tail()).collect();
    panic!("{what}\n{}", logs.join("\n"))
}

/// Polls `f` every 50 ms until it returns true (then true) or `deadline` passes (then false).
/// Blocking: for code outside an async runtime.
pub fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_until`] for async code: sleeps on `R`'s timer between polls.
pub async fn poll_until<R: Runtime>(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        sleep::<R>(Duration::from_millis(50)).await;
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now (the OS picks it for TCP).
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Attempts at starting opentracker: another process may take the port between
/// [`free_port`] and opentracker's bind.
const TRACKER_ATTEMPTS: usize = 5;

/// How long opentracker gets to start listening or to apply a new whitelist.
const TRACKER_READY: Duration = Duration::from_secs(10);

/// The announce URL flavour a test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    /// HTTP announce.
    Http,
    /// UDP announce (BEP 15).
    Udp,
}

impl fmt::Display for Announce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Announce::Http => "http",
            Announce::Udp => "udp",
        })
    }
}

/// opentracker on 127.0.0.1, a free port, HTTP and UDP on the same port.
///
/// Quirks of Debian's opentracker (0.0~git20210823): it is built with a whitelist
/// (`WANT_ACCESSLIST_WHITE`), so an info-hash not listed is refused ("Requested download is
/// not authorized"): every torrent is added with [`Tracker::allow`], which rewrites the list
/// and sends SIGHUP (the reload happens on a thread a little later, so `allow` probes until
/// the hash is accepted). Run as root it chroots into its `-d` directory and drops to user
/// `nobody`, so the list is named relative to that directory and the directory and list must
/// be world-readable. Its announce interval is ~30 minutes: clients announce once at start,
/// so a seed must be registered before a leecher's first announce ([`Tracker::wait_seeders`]).
pub struct Tracker {
    proc: Proc,
    port: u16,
    dir: PathBuf,
    allowed: Mutex<Vec<InfoHash>>,
}

/// The whitelist file, relative to the tracker's directory (see [`Tracker`]).
const WHITELIST: &str = "whitelist.txt";

impl Tracker {
    /// Starts opentracker with its log in `log_dir`. `None` means skipped (see [`require`]).
    pub fn start(log_dir: &Path) -> Option<Tracker> {
        let bin = require("opentracker")?;
        let mut last = None;
        for _ in 0..TRACKER_ATTEMPTS {
            let port = free_port();
            let dir = log_dir.join(format!("opentracker-{port}"));
            fs::create_dir_all(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
            let list = dir.join(WHITELIST);
            fs::write(&list, "").unwrap();
            fs::set_permissions(&list, fs::Permissions::from_mode(0o644)).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()])
                .args(["-P", &port.to_string(), "-w", WHITELIST, "-d"])
                .arg(&dir);
            let mut proc = Proc::spawn("opentracker", cmd, log_dir);
            let up = wait_until(TRACKER_READY, || {
                proc.exited().is_some() || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && proc.exited().is_none() {
                return Some(Tracker {
                    proc,
                    port,
                    dir,
                    allowed: Mutex::new(Vec::new()),
                });
            }
            last = Some(proc);
        }
        match last {
            Some(p) => fail("opentracker did not start", &[&p]),
            None => unreachable!("at least one attempt"),
        }
    }

    /// `http://127.0.0.1:PORT/announce`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// `udp://127.0.0.1:PORT`
    pub fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}", self.port)
    }

    /// The URL of `announce`'s flavour.
    pub fn url(&self, announce: Announce) -> String {
        match announce {
            Announce::Http => self.http_url(),
            Announce::Udp => self.udp_url(),
        }
    }

    /// The tracker process (for [`fail`]).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// One HTTP GET of `target` on the tracker; the body, or an error string.
    fn get(&self, target: &str) -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TRACKER_READY))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {target} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).map_err(|e| e.to_string())?;
        let at = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no HTTP header end")?;
        Ok(reply.split_off(at + 4))
    }

    /// Lets the tracker serve `info_hash` (see [`Tracker`] for why), returning once it does.
    pub fn allow(&self, info_hash: InfoHash) {
        let mut allowed = self.allowed.lock().unwrap();
        allowed.push(info_hash);
        let text: String = allowed.iter().map(|h| format!("{h}\n")).collect();
        fs::write(self.dir.join(WHITELIST), text).unwrap();
        signal(self.proc.pid(), "HUP");
        // A probe announce from a made-up peer, withdrawn at once with `stopped` (a stopped
        // announce is answered even for a hash not listed, so it proves nothing by itself).
        let q = |event: &str| {
            format!(
                "/announce?info_hash={}&peer_id=-PROBE0-000000000000&port=9&uploaded=0\
                 &downloaded=0&left=1&compact=1&event={event}",
                url_bytes(info_hash.as_bytes())
            )
        };
        let ok = wait_until(TRACKER_READY, || {
            self.get(&q("started"))
                .is_ok_and(|b| !b.windows(7).any(|w| w == b"failure"))
        });
        let _ = self.get(&q("stopped"));
        if !ok {
            fail(
                &format!("opentracker did not accept {info_hash} after reloading its whitelist"),
                &[&self.proc],
            );
        }
    }

    /// Seeders and leechers the tracker knows for `info_hash`, from an HTTP scrape.
    pub fn scrape(&self, info_hash: InfoHash) -> Option<(u64, u64)> {
        let body = self
            .get(&format!(
                "/scrape?info_hash={}",
                url_bytes(info_hash.as_bytes())
            ))
            .ok()?;
        let v = bencode::decode(&body).ok()?;
        let files = v.get(b"files")?;
        let t = files.get(info_hash.as_bytes())?;
        let n = |k: &[u8]| t.get(k).and_then(|x| x.as_int()).map(|x| x as u64);
        Some((n(b"complete")?, n(b"incomplete")?))
    }

    /// Waits until the tracker counts at least `n` seeders of `info_hash`; false on timeout.
    pub async fn wait_seeders<R: Runtime>(&self, info_hash: InfoHash, n: u64) -> bool {
        poll_until::<R>(TRACKER_READY, || {
            self.scrape(info_hash).is_some_and(|(c, _)| c >= n)
        })
        .await
    }
}

/// Percent-encodes every byte (what an info-hash in a tracker query needs).
fn url_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("%{x:02X}")).collect()
}

/// The shape of a test payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One file.
    Single,
    /// Nested folders, a file spanning pieces, an empty file, small files
    /// ([`standard_files`]).
    Multi,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Single => "single",
            Layout::Multi => "multi",
        })
    }
}

/// A payload on disk with its torrent and the SHA-1 of every file.
#[derive(Clone, Debug)]
pub struct Payload {
    /// The torrent's name: the file (single) or top directory (multi) under the data dir.
    pub name: String,
    /// The .torrent bytes.
    pub torrent: Vec<u8>,
    /// Where the .torrent was written.
    pub torrent_path: PathBuf,
    /// Every file: path relative to the data dir (so starting with `name`), length, SHA-1.
    pub files: Vec<(PathBuf, u64, [u8; 20])>,
    /// The parsed torrent.
    pub meta: Metainfo,
}

impl Payload {
    /// The info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.meta.info_hash()
    }

    /// Total bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }

    /// Flips one byte in the middle of the largest file under `dir` and returns the piece
    /// that byte is in.
    pub fn corrupt(&self, dir: &Path) -> PieceIndex {
        let (index, file) = self
            .meta
            .files()
            .iter()
            .enumerate()
            .max_by_key(|(_, f)| f.length)
            .unwrap();
        let path = dir.join(&self.files[index].0);
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let at = file.length / 2;
        let mut b = [0u8; 1];
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        b[0] ^= 0x5a;
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&b).unwrap();
        f.sync_all().unwrap();
        PieceIndex(((file.offset + at) / u64::from(self.meta.piece_length())) as u32)
    }
}

/// Writes a deterministic payload of about `size` bytes under `dir/<name>`, its torrent (one
/// tracker, `announce`) at `dir/<name>.torrent`, and returns it with the SHA-1 of every file.
pub fn make_payload(
    dir: &Path,
    name: &str,
    layout: Layout,
    size: u64,
    piece_length: u32,
    announce: &str,
) -> Payload {
    // (path components below the torrent's directory, content seed, length)
    let files: Vec<(Vec<String>, u64, u64)> = match layout {
        Layout::Single => vec![(Vec::new(), 1, size)],
        Layout::Multi => {
            // standard_files(scale) totals 56 * scale + 1131 bytes.
            let scale = (size.saturating_sub(1131) / 56).max(1) as usize;
            standard_files(scale)
                .into_iter()
                .enumerate()
                .map(|(i, (p, len))| {
                    (
                        p.split('/').map(str::to_string).collect(),
                        i as u64 + 1,
                        len as u64,
                    )
                })
                .collect()
        }
    };
    let builder = match layout {
        Layout::Single => TorrentBuilder::single_file(name, size),
        Layout::Multi => TorrentBuilder::multi_file(
            name,
            files
                .iter()
                .map(|(p, _, len)| InputFile::new(p.clone(), *len)),
        ),
    };
    let plan = builder
        .tracker_tier([announce])
        .piece_length(piece_length)
        .plan()
        .unwrap();
    let mut hasher = plan.hasher();
    let mut out = Vec::new();
    // The plan's order (sorted), which is the order of the bytes in the torrent.
    for pf in plan.files() {
        let Some(src) = pf.source else {
            continue;
        };
        let (comps, seed, len) = &files[src];
        let data = pseudo_random(*len as usize, *seed);
        let rel = comps.iter().fold(PathBuf::from(name), |p, c| p.join(c));
        let path = dir.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &data).unwrap();
        hasher.update(&data);
        out.push((rel, *len, Sha1::digest(&data).into()));
    }
    let torrent = plan.build(&hasher.finish().unwrap()).unwrap();
    let torrent_path = dir.join(format!("{name}.torrent"));
    fs::write(&torrent_path, &torrent).unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    Payload {
        name: name.to_string(),
        torrent,
        torrent_path,
        files: out,
        meta,
    }
}

/// Length and SHA-1 of a file, read in chunks.
fn file_digest(path: &Path) -> std::io::Result<(u64, [u8; 20])> {
    let mut f = File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((len, h.finalize().into()));
        }
        len += n as u64;
        h.update(buf.get(..n).unwrap_or_default());
    }
}

/// Byte-exact check of what a client wrote under `dir`: every file of the payload, by length
/// and SHA-1.
pub fn verify(payload: &Payload, dir: &Path) -> Result<(), String> {
    for (rel, len, sha) in &payload.files {
        let path = dir.join(rel);
        let (l, s) = file_digest(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if l != *len {
            return Err(format!("{}: {l} bytes, expected {len}", rel.display()));
        }
        if s != *sha {
            return Err(format!("{}: SHA-1 differs", rel.display()));
        }
    }
    Ok(())
}

/// What one transfer did, for the throughput line and the assertions about it.
#[derive(Clone, Debug, Default)]
pub struct TransferReport {
    /// Payload bytes the downloader ended up with.
    pub bytes: u64,
    /// Seconds from start to complete.
    pub secs: f64,
    /// Pieces that failed their hash check on our side.
    pub hash_failures: Vec<PieceIndex>,
    /// Peers our side banned.
    pub banned: Vec<SocketAddr>,
    /// Our side's peers when the transfer completed.
    pub peers: Vec<PeerInfo>,
}

impl TransferReport {
    /// Megabytes (10^6 bytes) per second.
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(1e-9)
    }
}

/// Prints the `INTEROP <client> <direction> <announce> <layout>: N MB/s` line.
pub fn report(
    client: &str,
    direction: &str,
    announce: Announce,
    layout: Layout,
    r: &TransferReport,
) {
    eprintln!(
        "INTEROP {client} {direction} {announce} {layout}: {:.1} MB/s ({} bytes in {:.2} s)",
        r.mbps(),
        r.bytes,
        r.secs
    );
}

/// How long one transfer of a test payload may take before the test fails. Far above what a
/// 64 MiB loopback transfer needs even on two busy cores in a debug build; it only turns a
/// stall into a failure with logs.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(150);

/// Events of our session that the interop tests look at.
#[derive(Default, Debug)]
struct Seen {
    hash_failures: Vec<PieceIndex>,
    banned: Vec<SocketAddr>,
    connected: Vec<SocketAddr>,
}

/// Our side (a `bt` session on `R`) holding one torrent.
pub struct Ours<R: Runtime> {
    /// The session.
    pub session: Session<R>,
    /// The torrent.
    pub torrent: Torrent<R>,
    seen: Arc<Mutex<Seen>>,
    started: Instant,
    ip: Ipv4Addr,
}

impl<R: Runtime> Ours<R> {
    /// A loopback session with `payload` added, its data under `dir` (checked if present),
    /// announcing to the torrent's tracker; `peers` are added directly as well.
    pub async fn start(payload: &Payload, dir: &Path, peers: &[SocketAddr]) -> Ours<R> {
        Ours::start_at(Ipv4Addr::LOCALHOST, payload, dir, peers).await
    }

    /// [`Ours::start`] listening on another loopback address (any of 127.0.0.0/8): peers are
    /// banned by IP, so a peer that should be told apart from the others needs its own.
    pub async fn start_at(
        ip: Ipv4Addr,
        payload: &Payload,
        dir: &Path,
        peers: &[SocketAddr],
    ) -> Ours<R> {
        Ours::start_with(ip, Encryption::default(), payload, dir, peers).await
    }

    /// [`Ours::start_at`] with the session's encryption policy `encryption` (the others
    /// start at the adapter's default, [`Encryption::Enabled`]).
    pub async fn start_with(
        ip: Ipv4Addr,
        encryption: Encryption,
        payload: &Payload,
        dir: &Path,
        peers: &[SocketAddr],
    ) -> Ours<R> {
        Ours::start_configured(ip, payload, dir, peers, |b| b.encryption(encryption)).await
    }

    /// [`Ours::start_at`] with the session's builder changed by `configure` (transports,
    /// say).
    pub async fn start_configured(
        ip: Ipv4Addr,
        payload: &Payload,
        dir: &Path,
        peers: &[SocketAddr],
        configure: impl FnOnce(SessionBuilder<R>) -> SessionBuilder<R>,
    ) -> Ours<R> {
        let builder = Session::builder()
            .listen_ip(ip.into())
            .config(crate::loopback_limits);
        let session = configure(builder).start().await.unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let mut events = session.events();
        R::detach(R::spawn(async move {
            while let Some(e) = events.next().await {
                let e = e.expect("the test reads every event");
                match e {
                    Event::HashFailed { piece, .. } => s.lock().unwrap().hash_failures.push(piece),
                    Event::PeerBanned { addr, .. } => s.lock().unwrap().banned.push(addr),
                    Event::PeerConnected { addr, .. } => s.lock().unwrap().connected.push(addr),
                    _ => {}
                }
            }
        }));
        let started = Instant::now();
        let torrent = session
            .add_torrent(TorrentOptions::from_bytes(payload.torrent.clone()).base_dir(dir))
            .await
            .unwrap();
        for p in peers {
            torrent.add_peer(*p).await.unwrap();
        }
        Ours {
            session,
            torrent,
            seen,
            started,
            ip,
        }
    }

    /// The address our session listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.session.port()))
    }

    /// Waits (up to [`TRANSFER_TIMEOUT`]) until every piece is verified; `None` on timeout.
    pub async fn wait_complete(&self) -> Option<TransferReport> {
        let done = bt_adapter::runtime::timeout_at::<R, _>(
            Instant::now() + TRANSFER_TIMEOUT,
            self.torrent.wait_complete(),
        )
        .await;
        match done {
            Some(r) => r.unwrap(),
            None => return None,
        }
        Some(self.report().await)
    }

    /// Every address a peer connection reached its handshake with, in order.
    pub fn peers_met(&self) -> Vec<SocketAddr> {
        self.seen.lock().unwrap().connected.clone()
    }

    /// Pieces that failed their hash check so far.
    pub fn hash_failures(&self) -> Vec<PieceIndex> {
        self.seen.lock().unwrap().hash_failures.clone()
    }

    /// The figures so far.
    pub async fn report(&self) -> TransferReport {
        let secs = self.started.elapsed().as_secs_f64();
        let peers = self.torrent.peers().await.unwrap_or_default();
        let seen = self.seen.lock().unwrap();
        TransferReport {
            bytes: self.torrent.size(),
            secs,
            hash_failures: seen.hash_failures.clone(),
            banned: seen.banned.clone(),
            peers,
        }
    }

    /// Waits until a tracker has answered our announce (so it knows us); false on timeout.
    pub async fn wait_announced(&self) -> bool {
        let end = Instant::now() + TRACKER_READY;
        while Instant::now() < end {
            let trackers = self.torrent.trackers().await.unwrap_or_default();
            // Every opentracker reply counts seeders, so a count means a reply came.
            if trackers
                .iter()
                .any(|x| x.last_error.is_none() && x.seeders.is_some())
            {
                return true;
            }
            sleep::<R>(Duration::from_millis(50)).await;
        }
        false
    }

    /// Our torrent's stats, trackers and peers, for a failure message.
    pub async fn describe(&self) -> String {
        let t = &self.torrent;
        format!(
            "stats {:?}\ntrackers {:?}\npeers {:?}\nhash failures {:?}\nengine {}",
            t.stats().await,
            t.trackers().await,
            t.peers().await,
            self.hash_failures(),
            t.debug_state().await.unwrap_or_default()
        )
    }

    /// Shuts the session down.
    pub async fn shutdown(self) {
        self.session.shutdown().await;
    }
}

/// Our side seeds `payload` from `dir` (which holds `dir/<name>`): returns once the data is
/// verified and the tracker has our announce. Panics (with `procs`' logs) otherwise.
pub async fn our_seed<R: Runtime>(payload: &Payload, dir: &Path, procs: &[&Proc]) -> Ours<R> {
    our_seed_with(Encryption::default(), payload, dir, procs).await
}

/// [`our_seed`] with the session's encryption policy `encryption`.
pub async fn our_seed_with<R: Runtime>(
    encryption: Encryption,
    payload: &Payload,
    dir: &Path,
    procs: &[&Proc],
) -> Ours<R> {
    let configure = |b: SessionBuilder<R>| b.encryption(encryption);
    our_seed_configured(payload, dir, procs, configure).await
}

/// [`our_seed`] with the session's builder changed by `configure`.
pub async fn our_seed_configured<R: Runtime>(
    payload: &Payload,
    dir: &Path,
    procs: &[&Proc],
    configure: impl FnOnce(SessionBuilder<R>) -> SessionBuilder<R>,
) -> Ours<R> {
    let ours = Ours::<R>::start_configured(Ipv4Addr::LOCALHOST, payload, dir, &[], configure).await;
    if ours.wait_complete().await.is_none() {
        fail("our seed did not verify its data", procs);
    }
    if !ours.wait_announced().await {
        fail("our seed's announce was not answered", procs);
    }
    ours
}

/// Our side downloads `payload` into `dir` from whoever the tracker (and `peers`) give,
/// checks it byte for byte and returns the figures; the session is shut down.
pub async fn our_download<R: Runtime>(
    payload: &Payload,
    dir: &Path,
    peers: &[SocketAddr],
    procs: &[&Proc],
) -> TransferReport {
    let ours = Ours::<R>::start(payload, dir, peers).await;
    let Some(r) = ours.wait_complete().await else {
        fail(
            &format!("our download did not complete: {}", ours.describe().await),
            procs,
        )
    };
    if let Err(e) = verify(payload, dir) {
        fail(&format!("our download differs: {e}"), procs);
    }
    ours.shutdown().await;
    r
}

/// Runs an async test body on a fresh tokio runtime (two workers, like CI), with a tokio
/// runtime entered for anything spawned beside.
pub fn run_tokio<F: Future<Output = ()>>(f: F) {
    crate::swarm::tokio_runtime().block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_ci_value_but_empty_false_or_zero_means_ci() {
        for on in ["true", "1", "yes", "TRUE", "False", "00", " "] {
            assert!(means_ci(Some(OsStr::new(on))), "CI={on:?}");
        }
        for off in ["", "false", "0"] {
            assert!(!means_ci(Some(OsStr::new(off))), "CI={off:?}");
        }
        assert!(!means_ci(None), "CI unset");
    }
}
