//! [`FileReader`]: the shared reader of a torrent's file ([`bt_adapter::streaming`]) with
//! the `futures-io` read and seek traits that smol uses.

use std::io::{self, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use smol::io::{AsyncBufRead, AsyncRead, AsyncSeek};

use crate::Smol;

/// A reader of one file of a torrent, in order, while it downloads
/// ([`crate::Torrent::file_reader`]): `futures_io::AsyncRead`, `AsyncBufRead` and
/// `AsyncSeek` (smol's `smol::io` traits). Only verified bytes are returned; a read waits
/// for them. Its other methods (position, length) are those of
/// [`bt_adapter::streaming::FileReader`].
///
/// ```no_run
/// # async fn f(torrent: bt_smol::Torrent) -> Result<(), Box<dyn std::error::Error>> {
/// use smol::io::{AsyncReadExt, AsyncSeekExt};
/// let mut reader = torrent.file_reader(0).await?;
/// reader.seek(std::io::SeekFrom::Start(1 << 20)).await?;
/// let mut buf = vec![0; 64 * 1024];
/// let n = reader.read(&mut buf).await?; // waits for the piece holding byte 1 MiB
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileReader(bt_adapter::streaming::FileReader<Smol>);

impl bt_adapter::ReaderRuntime for Smol {
    type FileReader = FileReader;
}

impl From<bt_adapter::streaming::FileReader<Smol>> for FileReader {
    fn from(r: bt_adapter::streaming::FileReader<Smol>) -> Self {
        FileReader(r)
    }
}

impl Deref for FileReader {
    type Target = bt_adapter::streaming::FileReader<Smol>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for FileReader {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl AsyncRead for FileReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_read(cx, buf)
    }
}

impl AsyncBufRead for FileReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().0.poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().0.consume(amt);
    }
}

impl AsyncSeek for FileReader {
    fn poll_seek(self: Pin<&mut Self>, _: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        // A seek does no I/O: the bytes are waited for by the next read.
        Poll::Ready(self.get_mut().0.seek(to))
    }
}
