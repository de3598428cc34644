//! Conformance of file readers ([`bt_adapter::Torrent::file_reader`]), written once and run
//! on tokio and smol through each runtime's own read and seek traits ([`StreamRuntime`]):
//! a reader reads a whole file byte-exact while the torrent downloads from a seed of ours
//! on loopback, seeks back and forth, several read at once, dropping one releases it, and
//! the errors are typed.

use std::future::Future;
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use bt_adapter::{Error, ReaderRuntime, Session, Torrent, TorrentOptions};
use bt_proto::engine::MAX_READERS;
use bt_smol::Smol;
use bt_tokio::Tokio;
use futures_lite::future::zip;

use crate::conformance::running_seed;
use crate::swarm::*;

/// A runtime whose file readers the tests drive through its own traits.
pub trait StreamRuntime: TestRuntime + ReaderRuntime {
    /// Reads into `buf` through the runtime's read trait.
    fn read<'a>(
        r: &'a mut Self::FileReader,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a;
    /// Seeks through the runtime's seek trait.
    fn seek(
        r: &mut Self::FileReader,
        to: SeekFrom,
    ) -> impl Future<Output = std::io::Result<u64>> + Send + '_;
}

impl StreamRuntime for Tokio {
    fn read<'a>(
        r: &'a mut Self::FileReader,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a {
        tokio::io::AsyncReadExt::read(r, buf)
    }
    fn seek(
        r: &mut Self::FileReader,
        to: SeekFrom,
    ) -> impl Future<Output = std::io::Result<u64>> + Send + '_ {
        tokio::io::AsyncSeekExt::seek(r, to)
    }
}

impl StreamRuntime for Smol {
    fn read<'a>(
        r: &'a mut Self::FileReader,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a {
        futures_lite::AsyncReadExt::read(r, buf)
    }
    fn seek(
        r: &mut Self::FileReader,
        to: SeekFrom,
    ) -> impl Future<Output = std::io::Result<u64>> + Send + '_ {
        futures_lite::AsyncSeekExt::seek(r, to)
    }
}

/// Piece length of these scenarios: many pieces per file, so a reader waits for several.
const PIECE: u32 = 16 * 1024;

/// Scale of the payload (`standard_files`): its big file is about 1.6 MB, 100 pieces.
const SCALE: usize = 40_000;

/// Reads `len` bytes (fewer at the end of the file) with reads of at most `chunk`.
async fn read_n<R: StreamRuntime>(r: &mut R::FileReader, len: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0; chunk];
    while out.len() < len {
        let want = chunk.min(len - out.len());
        let n = R::read(r, &mut buf[..want]).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// A seed of ours with the standard payload, and a leecher session with the torrent added
/// and no peer yet (so readers open before anything is downloaded): the leecher's torrent,
/// and the seed's content directory.
struct Setup<R: bt_adapter::Runtime> {
    _dir: tempfile::TempDir,
    seed: Session<R>,
    leecher: Session<R>,
    t: Torrent<R>,
    content: PathBuf,
    /// The leecher's base directory.
    base: PathBuf,
}

async fn setup<R: StreamRuntime>() -> Setup<R> {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _) = running_seed::<R>(&seed_dir, SCALE, PIECE).await;
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let t = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    Setup {
        _dir: dir,
        seed,
        leecher,
        t,
        content: seed_dir.join("payload"),
        base,
    }
}

/// The index of the file at `path` (under the torrent's `payload` directory) in the
/// torrent, and its bytes at the seed.
fn file_of<R: bt_adapter::Runtime>(t: &Torrent<R>, content: &Path, path: &str) -> (usize, Vec<u8>) {
    let i = t
        .metainfo()
        .files()
        .iter()
        .position(|f| f.path.to_string() == format!("payload/{path}"))
        .unwrap();
    (i, std::fs::read(content.join(path)).unwrap())
}

impl<R: bt_adapter::Runtime> Setup<R> {
    async fn connect(&self) {
        self.t.add_peer(addr_of(&self.seed)).await.unwrap();
    }

    async fn shutdown(self) {
        self.leecher.shutdown().await;
        self.seed.shutdown().await;
    }
}

/// A reader opened before any piece is downloaded reads its whole file, byte-exact, as the
/// pieces arrive; a read at the end returns 0.
pub async fn reads_a_file_while_it_downloads<R: StreamRuntime>() {
    let s = setup::<R>().await;
    let (file, expected) = file_of(&s.t, &s.content, "big.bin");
    let mut r = s.t.file_reader(file).await.unwrap();
    assert_eq!(r.file_len(), expected.len() as u64);
    assert_eq!(s.t.bitfield().await.unwrap().count(), 0, "nothing yet");
    s.connect().await;
    let got = read_n::<R>(&mut r, usize::MAX, 10_000).await;
    assert!(
        got == expected,
        "{} bytes read, {} expected",
        got.len(),
        expected.len()
    );
    assert_eq!(R::read(&mut r, &mut [0; 16]).await.unwrap(), 0);
    assert_eq!(r.position(), expected.len() as u64);
    drop(r);
    s.t.wait_complete().await.unwrap();
    s.shutdown().await;
}

/// Seeks forward, backward, from the end, past the end and before the start: each read is
/// byte-exact at its new position.
pub async fn seeks_and_reads<R: StreamRuntime>() {
    let s = setup::<R>().await;
    let (file, expected) = file_of(&s.t, &s.content, "big.bin");
    let len = expected.len();
    let mut r = s.t.file_reader(file).await.unwrap();
    s.connect().await;
    // Forward to the middle, before anything there is downloaded.
    let middle = len / 2 + 1_234;
    assert_eq!(
        R::seek(&mut r, SeekFrom::Start(middle as u64))
            .await
            .unwrap(),
        middle as u64
    );
    let got = read_n::<R>(&mut r, 50_000, 7_000).await;
    assert!(got == expected[middle..middle + 50_000], "at the middle");
    // Backward, across pieces.
    let back = R::seek(&mut r, SeekFrom::Current(-100_000)).await.unwrap() as usize;
    assert_eq!(back, middle + 50_000 - 100_000);
    let got = read_n::<R>(&mut r, 30_000, 30_000).await;
    assert!(got == expected[back..back + 30_000], "after seeking back");
    // Forward within what the last read may have buffered.
    let ahead = R::seek(&mut r, SeekFrom::Current(10)).await.unwrap() as usize;
    let got = read_n::<R>(&mut r, 100, 100).await;
    assert!(
        got == expected[ahead..ahead + 100],
        "after a short seek forward"
    );
    // The last bytes, from the end.
    R::seek(&mut r, SeekFrom::End(-77)).await.unwrap();
    let got = read_n::<R>(&mut r, 1_000, 1_000).await;
    assert!(got == expected[len - 77..], "the last bytes");
    // Back to the start.
    R::seek(&mut r, SeekFrom::Start(0)).await.unwrap();
    assert!(read_n::<R>(&mut r, 5_000, 5_000).await == expected[..5_000]);
    // Past the end reads nothing; before the start is refused and moves nothing.
    R::seek(&mut r, SeekFrom::End(10)).await.unwrap();
    assert_eq!(R::read(&mut r, &mut [0; 16]).await.unwrap(), 0);
    let e = R::seek(&mut r, SeekFrom::Current(-(len as i64) - 11))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(r.position(), len as u64 + 10);
    drop(r);
    s.shutdown().await;
}

/// Three readers at once, on two files and two places of one, each byte-exact.
pub async fn several_readers_at_once<R: StreamRuntime>() {
    let s = setup::<R>().await;
    let (big, big_bytes) = file_of(&s.t, &s.content, "big.bin");
    let (nested, nested_bytes) = file_of(&s.t, &s.content, "docs/deep/nested/data.bin");
    let mut a = s.t.file_reader(big).await.unwrap();
    let mut b = s.t.file_reader(big).await.unwrap();
    let mut c = s.t.file_reader(nested).await.unwrap();
    let half = big_bytes.len() / 2;
    R::seek(&mut b, SeekFrom::Start(half as u64)).await.unwrap();
    s.connect().await;
    let ((ga, gb), gc) = zip(
        zip(
            read_n::<R>(&mut a, half, 8_192),
            read_n::<R>(&mut b, usize::MAX, 20_000),
        ),
        read_n::<R>(&mut c, usize::MAX, 4_096),
    )
    .await;
    assert!(ga == big_bytes[..half], "first half");
    assert!(gb == big_bytes[half..], "second half");
    assert!(gc == nested_bytes, "the nested file");
    drop((a, b, c));
    s.shutdown().await;
}

/// The session holds at most `MAX_READERS` readers; dropping one releases its place (so its
/// engine reader is closed), and so does an open given up on before its answer; a file
/// index out of range is refused.
pub async fn dropping_a_reader_releases_it<R: StreamRuntime>() {
    let s = setup::<R>().await;
    let files = s.t.metainfo().files().len();
    let e = s.t.file_reader(files).await.unwrap_err();
    assert!(
        matches!(e, Error::NoSuchFile { file, files: n } if file == files && n == files),
        "{e}"
    );
    // Opens given up on before their answer leave no reader behind.
    for _ in 0..3 {
        let _ = futures_lite::future::poll_once(s.t.file_reader(0)).await;
    }
    let mut readers = Vec::new();
    for _ in 0..MAX_READERS {
        readers.push(s.t.file_reader(0).await.unwrap());
    }
    let e = s.t.file_reader(0).await.unwrap_err();
    assert!(matches!(e, Error::TooManyReaders), "{e}");
    drop(readers.pop());
    readers.push(s.t.file_reader(0).await.unwrap());
    drop(readers);
    let mut again: Vec<_> = Vec::new();
    for _ in 0..MAX_READERS {
        again.push(s.t.file_reader(1).await.unwrap());
    }
    drop(again);
    s.shutdown().await;
}

/// A reader waiting for bytes ends with [`Error::Stopped`] when the torrent is stopped, and
/// with [`Error::NoSuchTorrent`] when it is removed; bytes verified stay readable after a
/// stop; a file cut short on disk is an [`Error::Storage`].
pub async fn stop_and_removal_end_a_wait<R: StreamRuntime>() {
    let s = setup::<R>().await;
    let (file, expected) = file_of(&s.t, &s.content, "big.bin");
    let mut r = s.t.file_reader(file).await.unwrap();
    let (read, stopped) = zip(R::read(&mut r, &mut [0; 16]), s.t.stop()).await;
    stopped.unwrap();
    assert_eq!(inner(read.unwrap_err()), "Stopped");
    // Downloaded, then stopped: what is verified is still read.
    s.t.start().await.unwrap();
    s.connect().await;
    s.t.wait_complete().await.unwrap();
    s.t.stop().await.unwrap();
    let got = read_n::<R>(&mut r, usize::MAX, 65_536).await;
    assert!(got == expected);
    // A file cut short under the reader: a storage error, not short data.
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.base.join("payload/big.bin"))
        .unwrap()
        .set_len(1_000)
        .unwrap();
    R::seek(&mut r, SeekFrom::Start(500)).await.unwrap();
    assert_eq!(
        inner(R::read(&mut r, &mut [0; 4_096]).await.unwrap_err()),
        "Storage"
    );
    drop(r);
    // A wait on a torrent removed from under it.
    let fresh = setup::<R>().await;
    let mut r = fresh.t.file_reader(file).await.unwrap();
    let t = fresh.t.clone();
    let (read, ()) = zip(R::read(&mut r, &mut [0; 16]), async {
        t.remove().await.unwrap()
    })
    .await;
    assert_eq!(inner(read.unwrap_err()), "NoSuchTorrent");
    drop(r);
    fresh.shutdown().await;
    s.shutdown().await;
}

/// The [`Error`] variant an I/O error of a reader wraps, by name.
fn inner(e: std::io::Error) -> String {
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("not a bt error: {e}"));
    format!("{inner:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap()
        .to_string()
}
