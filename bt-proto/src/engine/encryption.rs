//! Message stream encryption on the session's connections ([`crate::mse`]): which
//! connections start with an MSE handshake, the handshake itself between the connection's
//! bytes and the wire decoder, RC4 on what flows after it, and the fall back to plaintext
//! for a peer that does not answer MSE.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::fetching::swarm_of;
use super::{CloseReason, ConnEncryption, Session, TorrentId};
use crate::mse::{Cipher, Encryption, Established, Initiator, Methods, Responder};
use crate::{ConnId, InfoHash};

/// Where a connection is with encryption.
#[derive(Debug, Default)]
pub(crate) enum Crypto {
    /// Plaintext: from the first byte, or after an MSE handshake that selected it.
    #[default]
    Plain,
    /// Plaintext after an MSE handshake: the handshake was hidden, the payload is not.
    Obfuscated,
    /// Outgoing, not connected yet: it will open with MSE.
    WillInitiate,
    /// Incoming: its first bytes (kept here, fewer than the protocol string) tell a
    /// plaintext handshake from an MSE key.
    Sniffing(Vec<u8>),
    /// Our MSE handshake as the dialling side.
    Initiating(Box<Initiator>),
    /// Our MSE handshake as the accepting side.
    Responding(Box<Responder>),
    /// RC4 both ways.
    Rc4 {
        /// Encrypts what we send.
        send: Box<Cipher>,
        /// Decrypts what we receive.
        receive: Box<Cipher>,
    },
}

impl Crypto {
    /// How the connection's bytes look, as [`super::PeerInfo`] tells it.
    pub fn as_info(&self) -> ConnEncryption {
        match self {
            Crypto::Rc4 { .. } => ConnEncryption::Rc4,
            Crypto::Obfuscated => ConnEncryption::Obfuscated,
            _ => ConnEncryption::Plaintext,
        }
    }

    /// Whether an MSE handshake of ours is under way as the dialling side.
    pub fn is_initiating(&self) -> bool {
        matches!(self, Crypto::WillInitiate | Crypto::Initiating(_))
    }

    /// Encrypts what is about to be sent, if the connection uses RC4: the buffers in one.
    pub fn seal(&mut self, bufs: Vec<Bytes>) -> Vec<Bytes> {
        let Crypto::Rc4 { send, .. } = self else {
            return bufs;
        };
        let len = bufs.iter().map(Bytes::len).sum();
        if len == 0 {
            return bufs;
        }
        // Block payloads are shared (the disk's buffers), so they are copied: into one
        // buffer, the cipher writing each byte there as it goes.
        let mut all = BytesMut::zeroed(len);
        let mut at = 0;
        for b in &bufs {
            if let Some(dst) = all.get_mut(at..at + b.len()) {
                send.apply_to(b, dst);
            }
            at += b.len();
        }
        vec![all.freeze()]
    }

    /// The stage after a finished handshake.
    fn after(e: &mut Established) -> Crypto {
        match (e.send.take(), e.receive.take()) {
            (Some(send), Some(receive)) if e.method == Methods::RC4 => Crypto::Rc4 {
                send: Box::new(send),
                receive: Box::new(receive),
            },
            _ => Crypto::Obfuscated,
        }
    }
}

impl Session {
    /// Torrent `id` answers to `info_hash` (unless another of the same hash already
    /// does): in handshakes, plaintext or MSE.
    pub(super) fn index_info_hash(&mut self, info_hash: InfoHash, id: TorrentId) {
        self.by_info_hash.entry(info_hash).or_insert(id);
        self.mse_keys
            .insert(crate::mse::torrent_key(&info_hash), info_hash);
    }

    /// The encryption policy of torrent `id`: its own, or the session's.
    pub(super) fn encryption_for(&self, id: TorrentId) -> Encryption {
        self.encryption_of
            .get(&id)
            .copied()
            .unwrap_or(self.config.encryption)
    }

    /// How an outgoing connection of torrent `id` to `addr` starts.
    pub(super) fn crypto_for_dial(&mut self, id: TorrentId, addr: std::net::SocketAddr) -> Crypto {
        let policy = self.encryption_for(id);
        let plaintext_known = swarm_of(&mut self.torrents, &mut self.fetching, id)
            .is_some_and(|t| t.candidates.refused_mse(addr));
        match policy {
            Encryption::Disabled => Crypto::Plain,
            Encryption::Enabled if plaintext_known => Crypto::Plain,
            _ => Crypto::WillInitiate,
        }
    }

    /// How an incoming connection starts: its first bytes tell plaintext from MSE, unless
    /// no torrent of the session takes MSE (then they are BitTorrent or nothing).
    pub(super) fn crypto_for_accept(&self) -> Crypto {
        let any = self.config.encryption != Encryption::Disabled
            || self
                .encryption_of
                .values()
                .any(|e| *e != Encryption::Disabled);
        if any {
            Crypto::Sniffing(Vec::new())
        } else {
            Crypto::Plain
        }
    }

    /// An incoming handshake for torrent `id` (`info_hash`) may go on over `conn`: a
    /// plaintext one only where the torrent does not require encryption, an encrypted one
    /// only for the torrent its MSE handshake named.
    pub(super) fn check_encryption(
        &self,
        conn: ConnId,
        id: TorrentId,
        info_hash: &InfoHash,
    ) -> Result<(), CloseReason> {
        let Some(p) = self.peers.get(conn) else {
            return Ok(());
        };
        match p.mse_torrent {
            None if self.encryption_for(id) == Encryption::Required => {
                Err(CloseReason::EncryptionRequired)
            }
            Some(named) if named != *info_hash => Err(CloseReason::UnknownTorrent),
            _ => Ok(()),
        }
    }

    /// Our handshake `handshake` opens an outgoing connection: as the initial payload of an
    /// MSE handshake if the connection starts with one (true), else not at all (false: the
    /// caller sends it in plaintext).
    pub(super) fn start_mse(
        &mut self,
        conn: ConnId,
        info_hash: InfoHash,
        handshake: &[u8],
    ) -> bool {
        let torrent = self.peers.get(conn).and_then(|p| p.torrent);
        let offer = match torrent {
            Some(id) => self.encryption_for(id).offer(),
            None => self.config.encryption.offer(),
        };
        let Some(p) = self.peers.get_mut(conn) else {
            return false;
        };
        if !matches!(p.crypto, Crypto::WillInitiate) {
            return false;
        }
        match Initiator::new(&mut self.rng, info_hash, offer, handshake.to_vec()) {
            Ok(mut i) => {
                p.send_sealed(i.take_output());
                p.crypto = Crypto::Initiating(Box::new(i));
                true
            }
            // A handshake never exceeds the initial payload's limit; were it to, it goes
            // in plaintext.
            Err(_) => {
                p.crypto = Crypto::Plain;
                false
            }
        }
    }

    /// Bytes received on `conn`, through its encryption stage: the plaintext stream for the
    /// wire decoder, or `None` while an MSE handshake (or the first bytes' sniffing) holds
    /// them. A failed handshake closes the connection.
    pub(super) fn unseal(&mut self, now: Instant, conn: ConnId, data: Bytes) -> Option<Bytes> {
        match self.unseal_inner(conn, data) {
            Ok(d) => d,
            Err(reason) => {
                self.close(now, conn, reason);
                None
            }
        }
    }

    fn unseal_inner(&mut self, conn: ConnId, data: Bytes) -> Result<Option<Bytes>, CloseReason> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(None);
        };
        let data = match &mut p.crypto {
            Crypto::Plain | Crypto::Obfuscated | Crypto::WillInitiate => return Ok(Some(data)),
            Crypto::Rc4 { receive, .. } => {
                // In place where the bytes are ours alone; otherwise (an adapter's read
                // buffer still shares them) copied and deciphered in one pass.
                let m = match data.try_into_mut() {
                    Ok(mut m) => {
                        receive.apply(&mut m);
                        m
                    }
                    Err(shared) => {
                        let mut m = BytesMut::zeroed(shared.len());
                        receive.apply_to(&shared, &mut m);
                        m
                    }
                };
                return Ok(Some(m.freeze()));
            }
            Crypto::Sniffing(first) => {
                first.extend_from_slice(&data);
                // A plaintext handshake is checked against its torrent's policy once it
                // names it (`check_encryption`).
                match crate::mse::is_plaintext(first) {
                    None => return Ok(None),
                    Some(true) => {
                        let all = Bytes::from(std::mem::take(first));
                        p.crypto = Crypto::Plain;
                        return Ok(Some(all));
                    }
                    Some(false) => {
                        let all = std::mem::take(first);
                        let r = Responder::new(&mut self.rng);
                        p.crypto = Crypto::Responding(Box::new(r));
                        Bytes::from(all)
                    }
                }
            }
            Crypto::Initiating(_) | Crypto::Responding(_) => data,
        };
        // The torrent an initiator names, with what its policy accepts.
        let (keys, ids, own, default) = (
            &self.mse_keys,
            &self.by_info_hash,
            &self.encryption_of,
            self.config.encryption,
        );
        let find = |k: &[u8; 20]| {
            let info_hash = *keys.get(k)?;
            let id = ids.get(&info_hash)?;
            let policy = own.get(id).copied().unwrap_or(default);
            Some((info_hash, policy.accept()))
        };
        let (result, out) = match &mut p.crypto {
            Crypto::Initiating(i) => (i.receive(&data), i.take_output()),
            Crypto::Responding(r) => (r.receive(&data, find), r.take_output()),
            _ => return Ok(None),
        };
        p.send_sealed(out);
        match result {
            Ok(None) => Ok(None),
            Err(e) => Err(CloseReason::Encryption(e)),
            Ok(Some(mut e)) => {
                p.crypto = Crypto::after(&mut e);
                p.mse_torrent = Some(e.info_hash);
                let mut stream = e.initial_payload;
                stream.extend_from_slice(&e.rest);
                Ok(Some(Bytes::from(stream)))
            }
        }
    }
}
