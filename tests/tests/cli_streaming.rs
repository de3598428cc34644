//! `bt cat` and `bt download --sequential` run as processes. `cat`: one file of a torrent
//! to stdout, byte-exact, from a seed of ours on loopback (a library session in this
//! process); a rerun writes it from what the first downloaded; a FILE not in the torrent
//! exits 2 with one sentence and does nothing. `--sequential`: the download completes
//! byte-exact.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bt_adapter::create::{CreateOptions, create_torrent};
use bt_adapter::{Session, TorrentOptions};
use bt_proto::metainfo::Metainfo;
use bt_tests::child::output_within;
use bt_tests::swarm::{
    assert_same_tree, loopback_session, standard_files, tokio_runtime, write_payload,
};
use bt_tokio::Tokio;

const BT: &str = env!("CARGO_BIN_EXE_bt");

/// Bound on one command: a stall fails the test instead of hanging it. Generous for two busy
/// cores; no test asserts on speed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Piece length of the payload: dozens of pieces per file.
const PIECE: u32 = 16 * 1024;

/// Runs `bt ARGS` (no LSD, no DHT: the tests meet only the peers they give) to the end.
fn bt(args: &[&str]) -> Output {
    let child = Command::new(BT)
        .args(args)
        .args(["--no-lsd", "--no-dht"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_within(child, COMMAND_TIMEOUT, &format!("bt {args:?}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The payload under `dir/payload` and its torrent at `dir/t.torrent`.
fn payload_and_torrent(dir: &Path) -> (String, Metainfo) {
    let content = dir.join("payload");
    write_payload(&content, &standard_files(20_000));
    let bytes = tokio_runtime()
        .block_on(create_torrent::<Tokio>(
            &content,
            CreateOptions {
                piece_length: Some(PIECE),
                ..Default::default()
            },
        ))
        .unwrap();
    let file = dir.join("t.torrent");
    std::fs::write(&file, &bytes).unwrap();
    (
        file.to_str().unwrap().to_string(),
        Metainfo::from_bytes(&bytes).unwrap(),
    )
}

/// A loopback session seeding `torrent` from `dir`, its data checked complete.
async fn seed_of(torrent: &str, dir: &Path) -> Session<Tokio> {
    let s = loopback_session::<Tokio>().await;
    let t = s
        .add_torrent(TorrentOptions::from_path(torrent).base_dir(dir))
        .await
        .unwrap();
    t.wait_complete().await.unwrap();
    s
}

#[test]
fn cat_writes_one_file_byte_exact_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, meta) = payload_and_torrent(dir.path());
    let content = dir.path().join("payload");
    // The seed: a library session on a runtime whose workers run beside the processes.
    let rt = tokio_runtime();
    let seed = rt.block_on(seed_of(&torrent, dir.path()));
    let peer = format!("127.0.0.1:{}", seed.port());
    let down = dir.path().join("down");
    let down_str = down.to_str().unwrap();

    // By path, as `bt info` prints it.
    let out = bt(&[
        "cat",
        &torrent,
        "payload/big.bin",
        "-o",
        down_str,
        "--peer",
        &peer,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let big = std::fs::read(content.join("big.bin")).unwrap();
    assert!(
        out.stdout == big,
        "{} bytes out of {}",
        out.stdout.len(),
        big.len()
    );

    // By index, as `bt info` lists the files.
    let (index, path) = meta
        .files()
        .iter()
        .filter(|f| !f.is_padding())
        .enumerate()
        .find(|(_, f)| f.path.to_string() == "payload/docs/deep/nested/data.bin")
        .map(|(i, f)| (i, f.path.to_string()))
        .unwrap();
    let out = bt(&[
        "cat",
        &torrent,
        &index.to_string(),
        "-o",
        down_str,
        "--peer",
        &peer,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout == std::fs::read(dir.path().join(&path)).unwrap(),
        "{path}"
    );

    // Again, with no peer at all: what the first run verified is written from disk.
    rt.block_on(seed.shutdown());
    let out = bt(&["cat", &torrent, "payload/big.bin", "-o", down_str]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout == big,
        "the rerun wrote {} bytes",
        out.stdout.len()
    );
}

#[test]
fn cat_refuses_a_file_not_in_the_torrent_or_a_magnet_link_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, meta) = payload_and_torrent(dir.path());
    let down = dir.path().join("down");
    let listed = meta.files().iter().filter(|f| !f.is_padding()).count();
    let past = listed.to_string();
    let magnet = format!("magnet:?xt=urn:btih:{}", meta.info_hash());
    let out = bt(&["cat", &magnet, "0", "-o", down.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a magnet link"),
        "{}",
        stderr(&out)
    );
    for (file, says) in [
        (past.as_str(), format!("no file {listed}")),
        ("nope.bin", "no file `nope.bin`".to_string()),
        ("big.bin", "no file `big.bin`".to_string()),
        ("payload/docs", "no file `payload/docs`".to_string()),
    ] {
        let out = bt(&["cat", &torrent, file, "-o", down.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&says), "{file}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        assert!(out.stdout.is_empty(), "{file}");
        assert!(!down.exists(), "{file}: {} made", down.display());
    }
}

#[test]
fn download_sequential_completes_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, _) = payload_and_torrent(dir.path());
    let rt = tokio_runtime();
    let seed = rt.block_on(seed_of(&torrent, dir.path()));
    let peer = format!("127.0.0.1:{}", seed.port());
    let down = dir.path().join("down");
    let out = bt(&[
        "download",
        &torrent,
        "-o",
        down.to_str().unwrap(),
        "--peer",
        &peer,
        "--sequential",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_tree(&dir.path().join("payload"), &down.join("payload"));
    rt.block_on(seed.shutdown());
}
