//! Helpers for the adapter tests, generic over the runtime: a way to run a test on each
//! runtime, deterministic payloads on disk, torrents made from them, sessions on loopback, and
//! comparisons of what ended up on disk.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bt_adapter::create::{CreateOptions, create_torrent};
use bt_adapter::runtime::timeout_at;
use bt_adapter::{Runtime, Session, SessionBuilder, Torrent};
use bt_proto::rng::Rng;
use bt_smol::Smol;
use bt_tokio::Tokio;

/// A runtime a test can run on.
pub trait TestRuntime: Runtime {
    /// The runtime's name in messages.
    const NAME: &'static str;
    /// Runs `f` to completion on this runtime.
    fn block_on<T>(f: impl Future<Output = T>) -> T;
}

/// A tokio runtime as the tests use it: two workers, like the machines the tests run on.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl TestRuntime for Tokio {
    const NAME: &'static str = "tokio";
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio_runtime().block_on(f)
    }
}

impl TestRuntime for Smol {
    const NAME: &'static str = "smol";
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        // The test trackers (and tokio peers in mixed swarms) run on a tokio runtime beside.
        let rt = tokio_runtime();
        let _guard = rt.enter();
        smol::block_on(f)
    }
}

/// Runs the test `f` on `R` with [`TEST_TIMEOUT`]; a tokio runtime is entered too, so tokio
/// sessions and the test trackers can run beside `R`'s.
pub fn run_on<R: TestRuntime, F: Future<Output = ()> + Send>(what: &str, f: F) {
    let what = format!("{what} on {}", R::NAME);
    R::block_on(bounded::<R, _>(&what, f))
}

/// Every test's bound: a stall fails the test instead of hanging it. Generous, because two
/// busy cores in debug builds are slow; no test asserts on speed.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `f` with [`TEST_TIMEOUT`], panicking with `what` if it stalls.
pub async fn bounded<R: Runtime, T>(what: &str, f: impl Future<Output = T> + Send) -> T {
    match timeout_at::<R, _>(R::now() + TEST_TIMEOUT, f).await {
        Some(v) => v,
        None => panic!("timed out: {what}"),
    }
}

/// Sleeps on `R`'s timer.
pub async fn sleep<R: Runtime>(d: Duration) {
    R::sleep_until(R::now() + d).await;
}

/// Deterministic pseudo-random bytes, different for each `seed` (bt-proto's seeded [`Rng`],
/// the one payload generator of the tests, the benches and the demo).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    Rng::seed_from_u64(seed).fill(&mut out);
    out
}

/// Writes files (path relative to `root`, length) of pseudo-random content under `root`.
pub fn write_payload(root: &Path, files: &[(&str, usize)]) {
    for (i, (rel, len)) in files.iter().enumerate() {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pseudo_random(*len, i as u64 + 1)).unwrap();
    }
}

/// A multi-file layout: nested folders, a file spanning pieces, an empty file, small files.
pub fn standard_files(scale: usize) -> Vec<(&'static str, usize)> {
    vec![
        ("big.bin", 40 * scale + 123),
        ("docs/readme.txt", 1000),
        ("docs/empty", 0),
        ("docs/deep/nested/data.bin", 13 * scale + 7),
        ("media/a.bin", 3 * scale),
        ("media/b.bin", 1),
    ]
}

/// Makes the torrent of the directory `content` (named after it).
pub async fn torrent_of<R: Runtime>(
    content: &Path,
    piece_length: u32,
    trackers: Vec<String>,
) -> Vec<u8> {
    create_torrent::<R>(
        content,
        CreateOptions {
            piece_length: Some(piece_length),
            trackers,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A session listening on loopback only, on an OS-chosen port.
pub async fn loopback_session<R: Runtime>() -> Session<R> {
    loopback_builder::<R>().start().await.unwrap()
}

/// The builder of [`loopback_session`], for tests that configure more.
pub fn loopback_builder<R: Runtime>() -> SessionBuilder<R> {
    Session::builder()
        .listen_ip([127, 0, 0, 1].into())
        .config(crate::loopback_limits)
}

/// The loopback address of a session's port.
pub fn addr_of<R: Runtime>(session: &Session<R>) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], session.port()))
}

/// Every regular file under `root`, relative path and content, sorted; `.bt` is skipped.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_name() == ".bt" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Asserts that the two directories hold the same files with the same bytes.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (e, a) = (tree(expected), tree(actual));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&e), names(&a), "file lists differ");
    for ((p, x), (_, y)) in e.iter().zip(&a) {
        assert!(x == y, "{} differs", p.display());
    }
}

/// Polls `f` every 20 ms until it returns `Some`.
pub async fn until<R: Runtime, T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return v;
        }
        sleep::<R>(Duration::from_millis(20)).await;
    }
}

/// Waits until the torrent has at least one connected peer.
pub async fn until_connected<R: Runtime>(t: &Torrent<R>) {
    until::<R, _, _, _>(|| async { (!t.peers().await.unwrap().is_empty()).then_some(()) }).await
}
