//! [`FileReader`]: the shared reader of a torrent's file ([`bt_adapter::streaming`]) with
//! tokio's read and seek traits.

use std::io::{self, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncRead, AsyncSeek, ReadBuf};

use crate::Tokio;

/// A reader of one file of a torrent, in order, while it downloads
/// ([`crate::Torrent::file_reader`]): `tokio::io::AsyncRead`, `AsyncBufRead` and
/// `AsyncSeek`. Only verified bytes are returned; a read waits for them. Its other methods
/// (position, length) are those of [`bt_adapter::streaming::FileReader`].
///
/// ```no_run
/// # async fn f(torrent: bt_tokio::Torrent) -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::{AsyncReadExt, AsyncSeekExt};
/// let mut reader = torrent.file_reader(0).await?;
/// reader.seek(std::io::SeekFrom::Start(1 << 20)).await?;
/// let mut buf = vec![0; 64 * 1024];
/// let n = reader.read(&mut buf).await?; // waits for the piece holding byte 1 MiB
/// tokio::io::copy(&mut reader, &mut tokio::io::stdout()).await?; // the rest, as it comes
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileReader(bt_adapter::streaming::FileReader<Tokio>);

impl bt_adapter::ReaderRuntime for Tokio {
    type FileReader = FileReader;
}

impl From<bt_adapter::streaming::FileReader<Tokio>> for FileReader {
    fn from(r: bt_adapter::streaming::FileReader<Tokio>) -> Self {
        FileReader(r)
    }
}

impl Deref for FileReader {
    type Target = bt_adapter::streaming::FileReader<Tokio>;
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
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let reader = &mut self.get_mut().0;
        let data = ready!(reader.poll_fill_buf(cx))?;
        let n = data.len().min(buf.remaining());
        buf.put_slice(data.get(..n).unwrap_or_default());
        reader.consume(n);
        Poll::Ready(Ok(()))
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
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        self.get_mut().0.seek(to).map(drop)
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        // A seek does no I/O: the bytes are waited for by the next read.
        Poll::Ready(Ok(self.0.position()))
    }
}
