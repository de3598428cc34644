//! The `bt` command (bt-tokio's example, built here as the `bt` binary of this crate): each
//! subcommand run as a process on small payloads, its exit code, output and files checked.
//! Output goes to pipes, so these runs also show that nothing is drawn when stdout and
//! stderr are not terminals.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bt_adapter::create::CreateOptions;
use bt_proto::bencode::Bencode;
use bt_proto::metainfo::Metainfo;
use bt_tests::child::{on_full_disk, output_within};
use bt_tests::swarm::{assert_same_tree, standard_files, tokio_runtime, write_payload};
use bt_tokio::Tokio;

const BT: &str = env!("CARGO_BIN_EXE_bt");

/// Bound on one command: a stall fails the test instead of hanging it. Generous for two busy
/// cores; no test asserts on speed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Piece length of the test payloads: a few dozen pieces.
const PIECE: u32 = 16 * 1024;

/// What a finished command left.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Its one JSON object.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", self.stdout))
    }

    /// The value of the `key: value` line of stdout.
    fn field(&self, key: &str) -> &str {
        let prefix = format!("{key}: ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{key}:` line in {:?}", self.stdout))
    }
}

/// Asserts that text written to a pipe holds no terminal drawing: no cursor moves, colours
/// or carriage returns (what progress bars are made of).
fn assert_plain(what: &str, text: &str) {
    assert!(
        !text.contains('\u{1b}') && !text.contains('\r'),
        "{what} has terminal control characters: {text:?}"
    );
}

/// Starts `bt ARGS` with its output to pipes. A `download` or `seed` runs with `--no-lsd`,
/// and with `--no-dht` unless it names its DHT bootstrap node: the tests here share torrents
/// and run side by side, and must meet only the peers they give each other (and send
/// nothing to the public DHT routers).
fn spawn_bt(args: &[&str]) -> Child {
    let alone = matches!(args.first(), Some(&"download" | &"seed"));
    let own_dht = args.contains(&"--dht-bootstrap");
    Command::new(BT)
        .args(args)
        .args(alone.then_some("--no-lsd"))
        .args((alone && !own_dht).then_some("--no-dht"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `bt ARGS` to the end (within [`COMMAND_TIMEOUT`]).
fn bt(args: &[&str]) -> Run {
    finish(spawn_bt(args), args)
}

/// Waits for the `bt ARGS` process `child` to end (within [`COMMAND_TIMEOUT`]).
fn finish(child: Child, args: &[&str]) -> Run {
    let out = output_within(child, COMMAND_TIMEOUT, &format!("bt {args:?}"));
    let run = Run {
        status: out.status,
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert_plain("stdout", &run.stdout);
    assert_plain("stderr", &run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// Makes `dir/payload` (the standard layout at `scale`) and its torrent with the library,
/// written to `dir/t.torrent`: the payload, the torrent file, its metainfo.
fn payload_and_torrent(dir: &Path, scale: usize) -> (PathBuf, String, Metainfo) {
    let content = dir.join("payload");
    write_payload(&content, &standard_files(scale));
    let bytes = library_torrent(&content, CreateOptions::default());
    let file = dir.join("t.torrent");
    std::fs::write(&file, &bytes).unwrap();
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    (content, file.to_str().unwrap().to_string(), meta)
}

fn library_torrent(content: &Path, opts: CreateOptions) -> Vec<u8> {
    tokio_runtime()
        .block_on(bt_adapter::create::create_torrent::<Tokio>(
            content,
            CreateOptions {
                piece_length: Some(PIECE),
                ..opts
            },
        ))
        .unwrap()
}

#[test]
fn info_prints_the_fields_and_refuses_a_bad_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file, meta) = payload_and_torrent(dir.path(), 2_000);
    let file = file.as_str();

    let run = bt(&["info", file]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.field("name"), "payload");
    assert_eq!(run.field("size"), format!("{} bytes", meta.size()));
    assert_eq!(run.field("piece_length"), PIECE.to_string());
    assert_eq!(run.field("pieces"), meta.piece_count().to_string());
    assert_eq!(run.field("private"), "false");
    assert_eq!(run.field("files"), "6");
    let hash = run.field("info_hash");
    assert_eq!(hash, meta.info_hash().to_string());
    assert!(hash.len() == 40 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));

    let json = bt(&["info", file, "--json"]).json();
    assert_eq!(json["info_hash"], meta.info_hash().to_string());
    assert_eq!(json["size"], meta.size());
    assert_eq!(json["pieces"], meta.piece_count());
    assert_eq!(json["files"].as_array().unwrap().len(), 6);

    // Not a torrent: a non-zero exit and one sentence saying why, nothing on stdout.
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"d4:infoi3ee").unwrap();
    let run = bt(&["info", bad.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(run.stdout.is_empty());
    let line = run.stderr.trim();
    assert!(
        line.starts_with("error: ")
            && line.contains("is not a valid torrent")
            && !line.contains('\n'),
        "{line}"
    );
    let missing = bt(&["info", dir.path().join("nothing").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);
}

#[test]
fn info_reads_a_magnet_link_and_seed_says_it_needs_a_torrent() {
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let link = format!(
        "magnet:?xt=urn:btih:{hash}&dn=Some%20name%1B%5B2J&tr=http%3A%2F%2Ft.example%2Fannounce\
         &x.pe=1.2.3.4:6881&x.pe=host.example:51413"
    );
    let run = bt(&["info", &link]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.field("info_hash"), hash);
    assert_eq!(run.field("tracker"), "http://t.example/announce");
    assert_printable("magnet info", &run.stdout);
    assert!(run.field("name").starts_with("Some name"), "{}", run.stdout);
    let peers: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("peer: "))
        .collect();
    assert_eq!(peers, ["1.2.3.4:6881", "host.example:51413"]);

    let json = bt(&["info", &link, "--json"]).json();
    assert_eq!(json["info_hash"], hash);
    assert_eq!(json["peers"].as_array().unwrap().len(), 2);
    assert_eq!(json["trackers"][0], "http://t.example/announce");

    let bad = bt(&["info", "magnet:?xt=urn:btih:0123"]);
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
    assert!(
        bad.stderr.contains("not a valid magnet link"),
        "{}",
        bad.stderr
    );

    // Seeding needs the file list a link lacks: a sentence says so, and where to get it.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let seed = bt(&["seed", &link, out]);
    assert!(!seed.status.success());
    assert!(
        seed.stderr.contains("not a magnet link") && seed.stderr.contains("bt download"),
        "{}",
        seed.stderr
    );
}

/// `bt download MAGNET --peer ...` fetches the metadata from the peer, says so, downloads,
/// and gives the summary a .torrent gets; run again, it takes the metadata it kept and
/// fetches nothing.
#[test]
fn download_a_magnet_link_from_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, meta) = payload_and_torrent(dir.path(), 3_000);
    let down = dir.path().join("down");
    let down_str = down.to_str().unwrap();
    let seeder = Seeder::start(&torrent, dir.path());
    let peer = format!("localhost:{}", seeder.port);
    let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash());
    let args = [
        "download", &link, "-o", down_str, "--peer", &peer, "--json", "--no-pex",
    ];

    let run = bt(&args);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("fetching metadata from"),
        "{}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(json["info_hash"], meta.info_hash().to_string());
    assert_eq!(json["name"], meta.name());
    assert_eq!(json["size"], meta.size());
    assert_eq!(json["pieces_verified"], meta.piece_count());
    assert_eq!(json["pieces_total"], meta.piece_count());
    assert_eq!(json["downloaded"], meta.size());
    assert_eq!(json["hash_failures"], 0);
    assert_same_tree(&content, &down.join("payload"));

    let again = bt(&args);
    assert!(again.status.success(), "{}", again.stderr);
    assert!(
        !again.stderr.contains("fetching metadata"),
        "{}",
        again.stderr
    );
    assert_eq!(again.json()["downloaded"], 0);
    assert_eq!(again.json()["pieces_verified"], meta.piece_count());
}

/// Asserts that `text` holds nothing a terminal acts on or hides: no control character but
/// newlines, no C1 control, no bidirectional override.
fn assert_printable(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202e}')
        .collect();
    assert!(bad.is_empty(), "{what} prints {bad:?} raw: {text:?}");
}

#[test]
fn info_escapes_what_the_torrent_says() {
    // Names and paths may not hold C0 controls (the metainfo refuses them), but C1 ones (CSI
    // is ESC [ in one character) and bidirectional overrides get through; the fields outside
    // `info` may hold anything.
    let name = "name\u{9b}2J\u{202e}txt.exe";
    let comment = "comment\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nforged: line";
    let created_by = "maker\u{1b}[31m";
    let tracker = "http://t.example/announce?\u{1b}[1m";
    let path = "file\u{9b}1m";
    let info = Bencode::dict()
        .with(
            "files",
            vec![
                Bencode::dict()
                    .with("length", 1)
                    .with("path", vec![Bencode::from(path)]),
            ],
        )
        .with("name", name)
        .with("piece length", 16384)
        .with("pieces", &[0u8; 20][..]);
    let bytes = Bencode::dict()
        .with("announce", tracker)
        .with("comment", comment)
        .with("created by", created_by)
        .with("info", info)
        .encode();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.torrent");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap();

    let run = bt(&["info", file]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_printable("info", &run.stdout);
    assert_eq!(run.field("name"), "name\\u{9b}2J\\u{202e}txt.exe");
    assert_eq!(
        run.field("comment"),
        "comment\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r\\nforged: line"
    );
    assert_eq!(run.field("created_by"), "maker\\u{1b}[31m");
    assert_eq!(
        run.field("tracker"),
        "[0] http://t.example/announce?\\u{1b}[1m"
    );
    assert!(!run.stdout.contains("\nforged"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("  name\\u{9b}2J\\u{202e}txt.exe/file\\u{9b}1m (1 bytes)"),
        "{}",
        run.stdout
    );

    // JSON keeps the exact text, with those characters as \u escapes.
    let run = bt(&["info", file, "--json"]);
    assert_printable("info --json", &run.stdout);
    let json = run.json();
    assert_eq!(json["name"], name);
    assert_eq!(json["comment"], comment);
    assert_eq!(json["created_by"], created_by);
    assert_eq!(json["trackers"][0][0], tracker);
    assert_eq!(json["files"][0]["path"], format!("{name}/{path}"));
}

#[test]
fn create_makes_the_torrent_the_library_makes() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("payload");
    write_payload(&content, &standard_files(2_000));
    let out = dir.path().join("made.torrent");
    let run = bt(&[
        "create",
        content.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-t",
        "http://tracker.example/announce",
        "--piece-length",
        &PIECE.to_string(),
        "--private",
        "--comment",
        "made by the test",
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    let made = Metainfo::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(run.field("info_hash"), made.info_hash().to_string());
    assert!(made.is_private());
    assert_eq!(made.comment(), Some("made by the test"));
    assert_eq!(made.piece_length(), PIECE);
    assert_eq!(
        made.trackers(),
        vec![vec!["http://tracker.example/announce".to_string()]]
    );
    // The info dictionary (what the hash covers) is the library's, byte for byte.
    let library = library_torrent(
        &content,
        CreateOptions {
            private: true,
            ..Default::default()
        },
    );
    assert_eq!(
        made.info_hash(),
        Metainfo::from_bytes(&library).unwrap().info_hash()
    );
}

/// A `bt seed` process; killed when dropped.
struct Seeder {
    child: Option<Child>,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Seeder {
    fn start(torrent: &str, dir: &Path) -> Seeder {
        Seeder::start_on(torrent, dir, 0)
    }

    /// A seeder listening on `port` (0: any free one).
    fn start_on(torrent: &str, dir: &Path, port: u16) -> Seeder {
        Seeder::start_with(torrent, dir, port, &[])
    }

    /// A seeder listening on `port`, with more arguments.
    fn start_with(torrent: &str, dir: &Path, port: u16, more: &[&str]) -> Seeder {
        let port = port.to_string();
        let mut args = vec!["seed", torrent, dir.to_str().unwrap(), "--port", &port];
        args.extend_from_slice(more);
        let mut child = spawn_bt(&args);
        // It says its port once it has checked its data and started; the rest of its
        // output is collected for the end.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let (port_tx, port_rx) = mpsc::channel();
        let (rest_tx, rest_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(p) = line
                    .trim()
                    .strip_prefix("seeding on port ")
                    .and_then(|r| r.split(' ').next())
                {
                    let _ = port_tx.send(p.parse::<u16>().unwrap());
                }
                seen.push_str(&line);
                line.clear();
            }
            let _ = err.read_to_string(&mut seen);
            let _ = rest_tx.send(seen);
        });
        let Ok(port) = port_rx.recv_timeout(COMMAND_TIMEOUT) else {
            let _ = child.kill();
            panic!("bt seed did not start");
        };
        Seeder {
            child: Some(child),
            port,
            stderr: rest_rx,
        }
    }

    /// Stops it as Ctrl-C would; returns its exit status, stdout and stderr.
    fn interrupt(mut self) -> Run {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            let _ = tx.send((child.wait(), out));
        });
        let (status, stdout) = rx
            .recv_timeout(COMMAND_TIMEOUT)
            .unwrap_or_else(|_| panic!("bt seed did not stop on SIGINT"));
        let stderr = self.stderr.recv_timeout(COMMAND_TIMEOUT).unwrap();
        Run {
            status: status.unwrap(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn seed_download_resume_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, meta) = payload_and_torrent(dir.path(), 5_000);
    let torrent = torrent.as_str();
    let down = dir.path().join("down");
    let down_str = down.to_str().unwrap();

    let seeder = Seeder::start(torrent, dir.path());
    let peer = format!("127.0.0.1:{}", seeder.port);

    // First run: everything comes, byte-exact, exit 0.
    let run = bt(&[
        "download", torrent, "-o", down_str, "--peer", &peer, "--json",
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["info_hash"], meta.info_hash().to_string());
    assert_eq!(json["pieces_verified"], meta.piece_count());
    assert_eq!(json["pieces_total"], meta.piece_count());
    assert_eq!(json["downloaded"], meta.size());
    assert_eq!(json["hash_failures"], 0);
    assert_eq!(json["peers_banned"], 0);
    assert!(json["seconds"].as_f64().unwrap() > 0.0);
    assert_same_tree(&content, &down.join("payload"));

    // Second run: resumes from what the first saved; nothing comes again.
    let run = bt(&[
        "download", torrent, "-o", down_str, "--peer", &peer, "--json",
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["downloaded"], 0);
    assert_eq!(json["pieces_verified"], meta.piece_count());

    // The seed served it all and stops cleanly on Ctrl-C.
    let seed_run = seeder.interrupt();
    assert!(seed_run.status.success(), "{}", seed_run.stderr);
    let total = meta.piece_count();
    assert!(
        seed_run
            .stdout
            .contains(&format!("payload: {total}/{total} pieces verified")),
        "{}",
        seed_run.stdout
    );
    assert_plain("seed stderr", &seed_run.stderr);

    // Check: complete, then one flipped byte.
    let run = bt(&["check", torrent, down_str]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("{total}/{total} pieces verified")),
        "{}",
        run.stdout
    );
    let victim = down.join("payload").join("big.bin");
    let mut data = std::fs::read(&victim).unwrap();
    data[1000] ^= 0x40;
    std::fs::write(&victim, &data).unwrap();
    let run = bt(&["check", torrent, down_str, "--json"]);
    assert!(!run.status.success());
    let json = run.json();
    assert_eq!(json["pieces_total"], total);
    assert_eq!(json["pieces_verified"], total - 1);
    assert_eq!(json["hash_failures"], 1, "the piece with the flipped byte");
    assert_eq!(json["peers_banned"], 0);
}

/// A fresh payload of `scale`, seeded with `seed_flags`; once `before` looked at the seed,
/// downloaded from it alone with `download_flags` and `--json`, checked complete and
/// byte-exact. The download's run, the seed's (stopped cleanly) and the torrent.
fn seed_then_download(
    scale: usize,
    seed_flags: &[&str],
    before: impl FnOnce(&Seeder),
    download_flags: &[&str],
) -> (Run, Run, Metainfo) {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, meta) = payload_and_torrent(dir.path(), scale);
    let down = dir.path().join("down");
    let seeder = Seeder::start_with(&torrent, dir.path(), 0, seed_flags);
    before(&seeder);
    let peer = format!("127.0.0.1:{}", seeder.port);
    let mut args = vec![
        "download",
        &torrent,
        "-o",
        down.to_str().unwrap(),
        "--peer",
        &peer,
    ];
    args.extend_from_slice(download_flags);
    args.push("--json");
    let run = bt(&args);
    assert!(run.status.success(), "{}", run.stderr);
    let verified = run.json().get("pieces_verified").and_then(|v| v.as_u64());
    assert_eq!(verified, Some(u64::from(meta.piece_count())));
    assert_same_tree(&content, &down.join("payload"));
    let seed_run = seeder.interrupt();
    assert!(seed_run.status.success(), "{}", seed_run.stderr);
    (run, seed_run, meta)
}

/// `--encryption required` on both sides: the download completes over RC4, byte-exact.
#[test]
fn seed_and_download_with_encryption_required() {
    let required = ["--encryption", "required"];
    seed_then_download(2_000, &required, |_| {}, &required);
}

/// `--transport utp` on both sides: the seed listens on its UDP port only, and the download
/// completes over uTP, byte-exact.
#[test]
fn seed_and_download_over_utp_only() {
    let utp = ["--transport", "utp"];
    let no_tcp = |seeder: &Seeder| {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", seeder.port)).is_err(),
            "a uTP-only seed listens for TCP"
        );
    };
    seed_then_download(2_000, &utp, no_tcp, &utp);
}

/// Copies the tree under `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A port nothing listens on just now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn download_counts_hash_failures_and_bans_from_a_corrupt_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, meta) = payload_and_torrent(dir.path(), 5_000);
    let torrent = torrent.as_str();
    // The corrupt seed checks a good copy of the data, then one byte of it changes under it:
    // it serves that piece wrong from then on.
    let bad_dir = dir.path().join("bad");
    copy_tree(&content, &bad_dir.join("payload"));
    let bad = Seeder::start(torrent, &bad_dir);
    let victim = bad_dir.join("payload").join("big.bin");
    let mut data = std::fs::read(&victim).unwrap();
    data[70_000] ^= 0x01;
    std::fs::write(&victim, &data).unwrap();

    // The leecher knows the good seed from the start, on another loopback address (a ban is
    // per address), but the good seed starts only once a piece from the corrupt one failed;
    // the leecher redials it then.
    let good_port = free_port();
    let down = dir.path().join("down");
    let mut leecher = spawn_bt(&[
        "download",
        torrent,
        "-o",
        down.to_str().unwrap(),
        "--peer",
        &format!("127.0.0.1:{}", bad.port),
        "--peer",
        &format!("127.0.0.2:{good_port}"),
        "--json",
    ]);
    let mut err = BufReader::new(leecher.stderr.take().unwrap());
    let (failed_tx, failed_rx) = mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("failed its hash check") {
                let _ = failed_tx.send(());
            }
            seen.push_str(&line);
            line.clear();
        }
        seen
    });
    if failed_rx.recv_timeout(COMMAND_TIMEOUT).is_err() {
        let _ = leecher.kill();
        panic!("no piece failed: {}", stderr.join().unwrap());
    }
    let good = Seeder::start_on(torrent, dir.path(), good_port);

    let (tx, rx) = mpsc::channel();
    let pid = leecher.id();
    std::thread::spawn(move || {
        let _ = tx.send(leecher.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(COMMAND_TIMEOUT) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("the download did not finish: {}", stderr.join().unwrap());
    };
    let out = out.unwrap();
    let stderr = stderr.join().unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_plain("stderr", &stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pieces_verified"], meta.piece_count(), "{stderr}");
    let failures = json["hash_failures"].as_u64().unwrap();
    assert!(failures >= 1, "{json}");
    assert_eq!(
        stderr.matches("failed its hash check").count() as u64,
        failures,
        "{stderr}"
    );
    assert_eq!(
        json["peers_banned"], 1,
        "the corrupt seed's address: {stderr}"
    );
    assert!(stderr.contains("banned 127.0.0.1:"), "{stderr}");
    assert_same_tree(&content, &down.join("payload"));
    drop((bad, good));
}

/// A download onto a disk too small for one of its files ends, instead of waiting for ever,
/// with a non-zero exit and one sentence naming the file and the system's error; run again
/// with room, it finishes.
#[test]
fn download_onto_a_full_disk_names_the_file_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, _) = payload_and_torrent(dir.path(), 5_000);
    let torrent = torrent.as_str();
    let down = dir.path().join("down");
    let down_str = down.to_str().unwrap();
    let seeder = Seeder::start(torrent, dir.path());
    let peer = format!("127.0.0.1:{}", seeder.port);
    let args = ["download", torrent, "-o", down_str, "--peer", &peer];

    // Room for every file but big.bin (200,123 bytes).
    let full = on_full_disk(BT, 128 * 1024)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = finish(full, &args);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let big = down.join("payload").join("big.bin");
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("File too large"))
        .collect();
    let efbig = std::io::Error::from(rustix::io::Errno::FBIG);
    assert_eq!(
        said,
        [format!(
            "error: storage error: cannot create {}: {efbig}",
            big.display()
        )],
        "{}",
        run.stderr
    );

    let run = bt(&args);
    assert!(run.status.success(), "{}", run.stderr);
    assert_same_tree(&content, &down.join("payload"));
}

/// `bt seed` and `bt download MAGNET` of a link with only the info-hash, given no tracker
/// and no peer, each bootstrapping its DHT from the other, meet through the DHT; both keep
/// their routing table in DIR/.bt/dht.dat. The leecher's port is chosen first so that the
/// seed can name it. The seed's first search finds nobody; the leecher's announce to the
/// seed's node makes the seed dial it at once (a fraction of a second on loopback, where
/// waiting for the seed's next search would take [`bt_proto::engine::DHT_SEARCH_RETRY`]).
#[test]
fn a_magnet_link_completes_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent, meta) = payload_and_torrent(dir.path(), 2_000);
    let leecher_port = free_port();
    let seeder = Seeder::start_with(
        &torrent,
        dir.path(),
        0,
        &["--dht-bootstrap", &format!("127.0.0.1:{leecher_port}")],
    );
    let down = dir.path().join("down");
    let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash());
    let run = bt(&[
        "download",
        &link,
        "-o",
        down.to_str().unwrap(),
        "--port",
        &leecher_port.to_string(),
        "--dht-bootstrap",
        &format!("127.0.0.1:{}", seeder.port),
        "--json",
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.json()["pieces_verified"], meta.piece_count());
    assert_same_tree(&content, &down.join("payload"));
    let seed_run = seeder.interrupt();
    assert!(seed_run.status.success(), "{}", seed_run.stderr);
    for base in [down.as_path(), dir.path()] {
        let saved = std::fs::read(base.join(".bt").join("dht.dat"))
            .unwrap_or_else(|e| panic!("{}: {e}; seeder: {}", base.display(), seed_run.stderr));
        let table = bt_proto::dht::saved::SavedTable::decode(&saved).unwrap();
        assert_eq!(table.nodes.len(), 1, "{table:?}");
    }
}

/// `--max-upload-rate` on the seed and `--max-download-rate` on the download: both commands
/// take a RATE with a suffix, the seed says its limit, the download's JSON reports its own,
/// and the transfer, byte-exact, takes at least what the seed's limit allows.
#[test]
fn seed_and_download_under_rate_limits() {
    let (run, seed_run, meta) = seed_then_download(
        5_000,
        &["--max-upload-rate", "128K"],
        |_| {},
        &["--max-download-rate", "1.5M"],
    );
    let json = run.json();
    assert_eq!(json["max_download_rate"], 3 << 19);
    assert_eq!(json["max_upload_rate"], 0);
    // What comes at once: the seed's bucket full at the start (at least one block) and the
    // block it starts in debt at the end. The rest comes at 128 KiB/s at most.
    let limit = 128 * 1024;
    let at_once = 2 * 16 * 1024;
    let least = (meta.size() - at_once) as f64 / limit as f64;
    let took = json["seconds"].as_f64().unwrap();
    assert!(
        took >= least,
        "{} bytes at {limit} B/s in {took} s",
        meta.size()
    );
    assert!(
        seed_run
            .stderr
            .contains("rate limits: download unlimited, upload 128.0 KiB/s"),
        "{}",
        seed_run.stderr
    );
}

/// A RATE that does not parse: exit status 2, as for any bad argument, with one sentence
/// naming it on stderr, and nothing done.
#[test]
fn a_bad_rate_is_refused_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent, _) = payload_and_torrent(dir.path(), 100);
    let down = dir.path().join("down");
    let down_str = down.to_str().unwrap();
    for (command, flag, rate) in [
        ("download", "--max-download-rate", "5X"),
        ("download", "--max-upload-rate", "1.5.M"),
        ("seed", "--max-upload-rate", "-1"),
        ("seed", "--max-download-rate", "fast"),
    ] {
        let flag_rate = format!("{flag}={rate}");
        let args: Vec<&str> = match command {
            "download" => vec![command, &torrent, "-o", down_str, &flag_rate],
            _ => vec![command, &torrent, down_str, &flag_rate],
        };
        let run = bt(&args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("`{rate}` is not a rate")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(!down.exists(), "{args:?} wrote {}", down.display());
    }
}
