//! TLS for `https://` trackers (the `https` feature): rustls's sans-IO `ClientConnection`
//! driven over the runtime's TCP halves, so one piece of code serves every runtime.
//!
//! Trusted roots are webpki-roots' copy of Mozilla's list, compiled in: the same on every
//! machine, whether or not it has a system store (containers often lack one), and nothing
//! read from disk at run time. Roots for private trackers and tests are added with
//! `SessionBuilder::tracker_root_certificate`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::runtime::Runtime;

/// TLS bytes read from the socket per call: one full TLS record.
const TLS_READ: usize = 16 * 1024 + 256;

/// The client configuration of a session: webpki-roots plus `extra_roots` (DER).
///
/// Uses ring explicitly rather than the process-wide default provider, which would be
/// ambiguous (and a panic in rustls) in a program that also links aws-lc-rs.
pub(crate) fn client_config(extra_roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| e.to_string())?;
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client connection over a runtime's TCP stream.
pub(crate) struct TlsStream<R: Runtime> {
    rd: R::Reader,
    wr: R::Writer,
    conn: ClientConnection,
    /// TLS bytes received and not yet handed to rustls.
    pending: BytesMut,
    eof: bool,
}

impl<R: Runtime> TlsStream<R> {
    /// Starts a session with `host` (name or address literal) over the halves; the handshake
    /// runs as the first bytes are sent and received.
    pub(crate) fn new(
        rd: R::Reader,
        wr: R::Writer,
        config: Arc<ClientConfig>,
        host: &str,
    ) -> io::Result<Self> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsStream {
            rd,
            wr,
            conn,
            pending: BytesMut::with_capacity(TLS_READ),
            eof: false,
        })
    }

    /// Sends what rustls has queued (handshake messages, encrypted data).
    async fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut out = Vec::new();
            self.conn.write_tls(&mut out)?;
            R::write_all(&mut self.wr, &out).await?;
        }
        Ok(())
    }

    /// Sends `data` encrypted (after the handshake, which this drives if needed).
    pub(crate) async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)?;
        self.flush().await
    }

    /// Receives decrypted bytes into `out`; 0 at the end of the stream.
    pub(crate) async fn recv(&mut self, out: &mut BytesMut) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut chunk) {
                Ok(n) => {
                    out.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                // Closed without close_notify, as many HTTP servers do after the body: the
                // HTTP framing (Content-Length, then bencode) decides whether it is whole.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            if !self.pending.is_empty() {
                let n = self.conn.read_tls(&mut &self.pending[..])?;
                self.pending.advance(n);
                self.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                continue;
            }
            self.flush().await?;
            self.pending.reserve(TLS_READ);
            if R::read_buf(&mut self.rd, &mut self.pending).await? == 0 {
                self.eof = true;
                // An empty read tells rustls the peer has gone.
                self.conn.read_tls(&mut &[][..])?;
                self.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if self.conn.is_handshaking() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    ));
                }
            }
        }
    }
}
