//! What the drivers of transmission, aria2, rtorrent and qBittorrent share: which client, a
//! running instance with its completion probe, and the byte-exact check of what it wrote.
//!
//! Every client runs with DHT, local peer discovery, PEX, UPnP and NAT-PMP off (except aria2's
//! DHT socket for a UDP announce, which never finds a node; see [`super::aria2`]), so the only
//! ways peers meet are the tracker and the wire; each gets a free listening port on a loopback
//! address of its own (see [`Client::ip`]).

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bt_adapter::Runtime;

use super::{Payload, Proc, fail, poll_until, verify};
use super::{aria2, qbittorrent, rtorrent, transmission};

/// A third-party client driven as a child process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// `transmission-cli` 3.00.
    Transmission,
    /// `aria2c` 1.36.
    Aria2,
    /// `rtorrent` 0.9.8 (libtorrent 0.13.8, not rasterbar's).
    Rtorrent,
    /// `qbittorrent-nox` 4.5 (libtorrent-rasterbar 2.0).
    Qbittorrent,
}

/// How the client treats message stream encryption (MSE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientEncryption {
    /// What the driver sets when a test does not ask (see each driver).
    #[default]
    Default,
    /// MSE with RC4 on every connection, both ways: a plaintext handshake, or plaintext
    /// after the MSE handshake, is refused. Only transmission's and aria2's drivers take it.
    Required,
}

/// What the client does with the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It has the data and seeds it.
    Seed,
    /// It downloads into an empty directory.
    Download,
}

impl Client {
    /// The name in `INTEROP` lines and messages.
    pub fn name(self) -> &'static str {
        match self {
            Client::Transmission => "transmission",
            Client::Aria2 => "aria2",
            Client::Rtorrent => "rtorrent",
            Client::Qbittorrent => "qbittorrent",
        }
    }

    /// The program on PATH.
    pub fn program(self) -> &'static str {
        match self {
            Client::Transmission => "transmission-cli",
            Client::Aria2 => "aria2c",
            Client::Rtorrent => "rtorrent",
            Client::Qbittorrent => "qbittorrent-nox",
        }
    }

    /// The loopback address the client listens and announces from; ours is 127.0.0.1.
    ///
    /// rtorrent (libtorrent 0.13) keeps one peer per IP address: the tracker lists the
    /// client itself beside us, both on 127.0.0.1, so the two collapse into one entry and,
    /// once the connection to itself fails ("is self"), it never tries us. A second loopback
    /// address keeps them apart. Linux routes all of 127.0.0.0/8 to `lo`, and the tracker
    /// sees the source address of the announce, so nothing else is needed. The others get
    /// addresses of their own too, so every test sees the client at an address that is not
    /// ours, as on a real network.
    pub fn ip(self) -> Ipv4Addr {
        match self {
            Client::Transmission => Ipv4Addr::new(127, 0, 0, 3),
            Client::Aria2 => Ipv4Addr::new(127, 0, 0, 4),
            Client::Rtorrent => Ipv4Addr::new(127, 0, 0, 2),
            Client::Qbittorrent => Ipv4Addr::new(127, 0, 0, 5),
        }
    }

    /// Whether the client connects to the peers a tracker gives it when they are on loopback.
    ///
    /// transmission 3.00 drops every such peer in 127.0.0.0/8 as a "martian" address (newer
    /// versions allow loopback, but only for incoming peers), so on loopback it only ever
    /// gets incoming connections: to download from us, we must dial it.
    pub fn dials_loopback_peers(self) -> bool {
        self != Client::Transmission
    }

    /// Whether the client creates the zero-length files of a torrent when it downloads.
    ///
    /// transmission 3.00, rtorrent 0.9.8 and qBittorrent 4.5 (libtorrent 2.0) create a file
    /// on its first write, and an empty file has none, so it never appears.
    pub fn creates_empty_files(self) -> bool {
        match self {
            Client::Transmission | Client::Rtorrent | Client::Qbittorrent => false,
            Client::Aria2 => true,
        }
    }

    /// Starts the client in `role` for `payload`, whose data is (or goes) under `data_dir`,
    /// with its configuration under `work` and its log in `log_dir`. `None` means skipped
    /// (the program is missing outside CI; see [`super::require`]).
    pub fn start(
        self,
        role: Role,
        payload: &Payload,
        data_dir: &Path,
        work: &Path,
        log_dir: &Path,
    ) -> Option<Running> {
        self.start_from(
            role,
            payload,
            None,
            ClientEncryption::Default,
            data_dir,
            work,
            log_dir,
        )
    }

    /// [`Client::start`] with the client's encryption set to `encryption`.
    pub fn start_with(
        self,
        role: Role,
        payload: &Payload,
        encryption: ClientEncryption,
        data_dir: &Path,
        work: &Path,
        log_dir: &Path,
    ) -> Option<Running> {
        assert!(
            encryption == ClientEncryption::Default
                || matches!(self, Client::Transmission | Client::Aria2),
            "only transmission's and aria2's drivers set encryption"
        );
        self.start_from(role, payload, None, encryption, data_dir, work, log_dir)
    }

    /// Starts the client downloading `payload` from the magnet link `magnet` (it fetches
    /// the metadata from its peers) instead of from the .torrent, as [`Client::start`] does
    /// otherwise. Only aria2's driver takes a magnet link so far; the others panic.
    pub fn start_magnet(
        self,
        payload: &Payload,
        magnet: &str,
        data_dir: &Path,
        work: &Path,
        log_dir: &Path,
    ) -> Option<Running> {
        assert_eq!(
            self,
            Client::Aria2,
            "only aria2 is driven from a magnet link"
        );
        let role = Role::Download;
        let enc = ClientEncryption::Default;
        self.start_from(role, payload, Some(magnet), enc, data_dir, work, log_dir)
    }

    // Private: the public starts above name what they vary, and fill in the rest.
    #[allow(clippy::too_many_arguments)]
    fn start_from(
        self,
        role: Role,
        payload: &Payload,
        magnet: Option<&str>,
        encryption: ClientEncryption,
        data_dir: &Path,
        work: &Path,
        log_dir: &Path,
    ) -> Option<Running> {
        let bin = super::require(self.program())?;
        let work = work.join(format!("{}-{}", self.name(), role.name()));
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(data_dir).unwrap();
        let listen = SocketAddr::from((self.ip(), free_port(self.ip())));
        let start = Start {
            bin,
            role,
            payload,
            data_dir,
            work: &work,
            log_dir,
            ip: self.ip(),
            listen,
            name: format!("{}-{}", self.name(), role.name()),
            magnet: magnet.map(str::to_string),
            encryption,
        };
        Some(match self {
            Client::Transmission => transmission::start(start),
            Client::Aria2 => aria2::start(start),
            Client::Rtorrent => rtorrent::start(start),
            Client::Qbittorrent => qbittorrent::start(start),
        })
    }
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Seed => "seed",
            Role::Download => "download",
        }
    }
}

/// Everything a driver needs to start its client.
pub(crate) struct Start<'a> {
    /// The program, as found on PATH.
    pub bin: PathBuf,
    /// Seed or download.
    pub role: Role,
    /// What to seed or download.
    pub payload: &'a Payload,
    /// Holds (or will hold) `payload.name`.
    pub data_dir: &'a Path,
    /// The client's own directory: configuration, session state, the completion marker.
    pub work: &'a Path,
    /// Where the process's output goes.
    pub log_dir: &'a Path,
    /// The loopback address the client uses ([`Client::ip`]).
    pub ip: Ipv4Addr,
    /// Where the client listens for peers: `ip` and a free port.
    pub listen: SocketAddr,
    /// The process name, for its log.
    pub name: String,
    /// A magnet link to download from instead of the payload's .torrent (aria2 only).
    pub magnet: Option<String>,
    /// The client's encryption policy.
    pub encryption: ClientEncryption,
}

impl Start<'_> {
    /// The file a client's completion hook creates.
    pub fn marker(&self) -> PathBuf {
        self.work.join("finished")
    }
}

/// How a running client says it has finished downloading.
pub(crate) enum Done {
    /// A hook of the client creates this file.
    Marker(PathBuf),
    /// The process exits with success.
    Exit,
    /// Never: the client seeds until stopped.
    Never,
}

/// A client running as a child process, stopped by PID when dropped.
pub struct Running {
    /// The process (its own log files, if any, are quoted with its output).
    pub proc: Proc,
    done: Done,
    own_logs: Vec<PathBuf>,
    started: Instant,
    relaunch: Option<Relaunch>,
}

/// How long after its start a client that exits on its own, with success, is started
/// again (see [`Running::relaunch_early_exit`]): its startup race happens in its first
/// second; seconds more cover a loaded machine.
const EARLY_EXIT: Duration = Duration::from_secs(10);

/// How many times a client is started again after an early exit: the race is rare, twice
/// in a row would be news.
const RELAUNCHES: u32 = 2;

/// A command's program, arguments and environment, to start it again.
pub(crate) struct Relaunch {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    name: String,
    log_dir: PathBuf,
    left: u32,
}

impl Relaunch {
    /// What `cmd` runs, started as `name` with its log in `log_dir`.
    pub(crate) fn of(cmd: &Command, name: &str, log_dir: &Path) -> Relaunch {
        Relaunch {
            program: cmd.get_program().to_owned(),
            args: cmd.get_args().map(OsString::from).collect(),
            envs: cmd
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(OsString::from)))
                .collect(),
            name: name.to_string(),
            log_dir: log_dir.to_path_buf(),
            left: RELAUNCHES,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }
}

impl Running {
    pub(crate) fn new(mut proc: Proc, done: Done, own_logs: Vec<PathBuf>) -> Self {
        for log in &own_logs {
            proc.also_log(log.clone());
        }
        Running {
            proc,
            done,
            own_logs,
            started: Instant::now(),
            relaunch: None,
        }
    }

    /// Starts the process again as `relaunch` says, up to [`RELAUNCHES`] times, when it
    /// exits with success within [`EARLY_EXIT`] of its start without having finished (seen
    /// by [`Running::finished`]): for a client with a startup race that makes it exit
    /// (transmission-cli, see [`super::transmission`]).
    pub(crate) fn relaunch_early_exit(mut self, relaunch: Relaunch) -> Self {
        self.relaunch = Some(relaunch);
        self
    }

    /// Whether its output or one of its own log files has a line containing `needle`.
    pub fn log_has(&self, needle: &str) -> bool {
        let own = self
            .own_logs
            .iter()
            .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned());
        std::iter::once(self.proc.log())
            .chain(own)
            .any(|log| log.contains(needle))
    }

    /// Whether the client reports its download finished; an error if it exited otherwise
    /// (a seed never exits on its own).
    pub fn finished(&mut self) -> Result<bool, String> {
        if let Done::Marker(p) = &self.done
            && p.exists()
        {
            return Ok(true);
        }
        match self.proc.exited() {
            None => Ok(false),
            Some(s) if s.success() && matches!(self.done, Done::Exit) => Ok(true),
            Some(s) => {
                let early = s.success() && self.started.elapsed() < EARLY_EXIT;
                if let Some(r) = self.relaunch.as_mut().filter(|r| early && r.left > 0) {
                    r.left -= 1;
                    eprintln!(
                        "RELAUNCHED: {} exited ({s}) {:.1} s after its start (log {})",
                        self.proc.name(),
                        self.started.elapsed().as_secs_f64(),
                        self.proc.log_path().display()
                    );
                    self.proc = Proc::spawn(&r.name, r.command(), &r.log_dir);
                    self.started = Instant::now();
                    return Ok(false);
                }
                Err(format!("{} exited: {s}", self.proc.name()))
            }
        }
    }

    /// Waits up to `deadline` for [`Running::finished`], on `R`'s timer; fails the test (with
    /// the logs of the client and of `others`) on an early exit or at the deadline.
    pub async fn wait_finished<R: Runtime>(&mut self, deadline: Duration, others: &[&Proc]) {
        let mut err = None;
        let ok = poll_until::<R>(deadline, || match self.finished() {
            Ok(done) => done,
            Err(e) => {
                err = Some(e);
                true
            }
        })
        .await;
        if let Some(e) = err {
            self.fail(&e, others);
        }
        if !ok {
            let what = format!("{} did not finish within {deadline:?}", self.proc.name());
            self.fail(&what, others);
        }
    }

    /// Fails the test with `what` and the logs of the client and of `others`.
    pub fn fail(&self, what: &str, others: &[&Proc]) -> ! {
        let mut procs = vec![&self.proc];
        procs.extend_from_slice(others);
        fail(what, &procs)
    }

    /// Stops the client now (it is also stopped on drop).
    pub fn stop(&mut self) {
        self.proc.stop();
    }
}

/// A port free for both TCP and UDP on `ip` right now (the OS picks it for TCP); clients
/// that open a UDP socket beside (transmission, qBittorrent) use the same number.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    loop {
        let tcp = TcpListener::bind((ip, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// Byte-exact check of what `client` downloaded under `dir`: every file by length and
/// SHA-1, except that an empty file may be missing where the client does not create them
/// ([`Client::creates_empty_files`]); if present it must be empty.
pub fn verify_written(client: Client, payload: &Payload, dir: &Path) -> Result<(), String> {
    if client.creates_empty_files() {
        return verify(payload, dir);
    }
    let mut written = payload.clone();
    written
        .files
        .retain(|(rel, len, _)| *len > 0 || fs::metadata(dir.join(rel)).is_ok());
    verify(&written, dir)
}

/// How long a client gets to check its (absent) data and announce: a few seconds at most
/// on two busy cores.
pub const TRACKER_WAIT: Duration = Duration::from_secs(30);

/// What a test with a client starts from: a temporary directory, the tracker, and the
/// payload under `tmp/<seed>` with the tracker allowing it.
pub struct Setup {
    /// The temporary directory.
    pub tmp: tempfile::TempDir,
    /// Where the processes' logs go.
    pub logs: PathBuf,
    /// The tracker.
    pub tracker: super::Tracker,
    /// The seed's data directory.
    pub seed_dir: PathBuf,
    /// The payload.
    pub p: Payload,
}

impl Setup {
    /// A payload of `size` bytes in pieces of `piece`, announced over `announce`; `None`
    /// when opentracker is missing outside CI (the test is skipped).
    pub fn new(
        seed: &str,
        announce: super::Announce,
        layout: super::Layout,
        size: u64,
        piece: u32,
    ) -> Option<Setup> {
        let tmp = tempfile::tempdir().ok()?;
        let logs = tmp.path().join("logs");
        let tracker = super::Tracker::start(&logs)?;
        let seed_dir = tmp.path().join(seed);
        let url = tracker.url(announce);
        let p = super::make_payload(&seed_dir, "payload", layout, size, piece, &url);
        tracker.allow(p.info_hash());
        Some(Setup {
            tmp,
            logs,
            tracker,
            seed_dir,
            p,
        })
    }

    /// Waits (up to [`TRACKER_WAIT`]) until the tracker counts client `c` as a seeder
    /// (`role` seed) or a leecher, polling the client meanwhile (an early exit is a
    /// failure, or a relaunch where the driver says so: see [`Running::finished`]). Fails
    /// the test otherwise.
    pub async fn wait_registered<R: Runtime>(&self, c: &mut Running, role: Role) {
        let ih = self.p.info_hash();
        let mut exited = None;
        let registered = poll_until::<R>(TRACKER_WAIT, || {
            if let Err(e) = c.finished() {
                exited = Some(e);
                return true;
            }
            self.tracker
                .scrape(ih)
                .is_some_and(|(seeders, leechers)| match role {
                    Role::Seed => seeders >= 1,
                    Role::Download => leechers >= 1,
                })
        })
        .await;
        if let Some(e) = exited {
            c.fail(&e, &[self.tracker.proc()]);
        }
        if !registered {
            c.fail(
                &format!("the tracker never counted the client ({role:?})"),
                &[self.tracker.proc()],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wait_until;
    use super::*;

    /// A process that exits with success at once is started again [`RELAUNCHES`] times,
    /// then its exit is an error; without a relaunch it is an error at once.
    #[test]
    fn an_early_exit_is_relaunched_then_fails() {
        let logs = tempfile::tempdir().unwrap();
        let cmd = || {
            let mut c = Command::new("sh");
            c.args(["-c", "exit 0"]);
            c
        };
        let relaunch = Relaunch::of(&cmd(), "quits", logs.path());
        let proc = Proc::spawn("quits", cmd(), logs.path());
        let mut r = Running::new(proc, Done::Never, Vec::new()).relaunch_early_exit(relaunch);
        let mut starts = 1;
        let err = loop {
            match r.finished() {
                Ok(false)
                    if r.proc
                        .log_path()
                        .ends_with(format!("quits-{}.log", starts + 1)) =>
                {
                    starts += 1
                }
                Ok(false) => std::thread::sleep(Duration::from_millis(10)),
                Ok(true) => panic!("a seed never finishes"),
                Err(e) => break e,
            }
        };
        assert_eq!(starts, 1 + RELAUNCHES as usize, "{err}");
        let proc = Proc::spawn("once", cmd(), logs.path());
        let mut once = Running::new(proc, Done::Never, Vec::new());
        assert!(wait_until(Duration::from_secs(10), || once
            .finished()
            .is_err()));
    }
}
