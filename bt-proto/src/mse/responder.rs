//! The accepting side (B) of an MSE handshake.

use super::cipher::{Cipher, hash};
use super::dh::{KeyPair, PUBLIC_KEY_LEN};
use super::initiator::{Step, random_pad};
use super::{Established, MAX_INITIAL_PAYLOAD, MAX_PAD_LEN, Methods, MseError, VC, sync};
use crate::InfoHash;
use crate::rng::Rng;

/// `HASH('req2', SKEY)` for torrent `info_hash`: how an initiator names the torrent it
/// wants (xor `HASH('req3', S)`). A session keeps these for its torrents, so that an
/// incoming handshake finds its torrent with one lookup.
pub fn torrent_key(info_hash: &InfoHash) -> [u8; 20] {
    hash(b"req2", &[&info_hash.0])
}

/// The ciphers once the torrent is known, and what its policy accepts.
#[derive(Debug)]
struct Keyed {
    info_hash: InfoHash,
    accept: Methods,
    send: Cipher,
    receive: Cipher,
}

/// Where the handshake is.
#[derive(Debug)]
enum State {
    /// Waiting for the initiator's public key.
    PeerKey,
    /// Looking for `HASH('req1', S)` past the initiator's padding.
    Req1 { secret: [u8; PUBLIC_KEY_LEN] },
    /// Reading which torrent it wants.
    Torrent { secret: [u8; PUBLIC_KEY_LEN] },
    /// Reading VC, `crypto_provide` and `len(PadC)`.
    Provide(Keyed),
    /// Skipping PadC.
    PadC {
        keyed: Keyed,
        offered: Methods,
        len: usize,
    },
    /// Reading `len(IA)`.
    IaLen { keyed: Keyed, offered: Methods },
    /// Reading the initial payload.
    Ia {
        keyed: Keyed,
        offered: Methods,
        len: usize,
    },
    /// Finished or failed: nothing more is read.
    Over,
}

/// B's side: answers with its key, finds the torrent and the method, and takes the
/// initiator's initial payload.
#[derive(Debug)]
pub struct Responder {
    keys: KeyPair,
    pad: Vec<u8>,
    state: State,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Responder {
    /// A handshake; what it may select depends on the torrent the initiator names (see
    /// [`Responder::receive`]).
    pub fn new(rng: &mut Rng) -> Self {
        let keys = KeyPair::random(rng);
        Responder::with_keys(rng, keys)
    }

    /// The same with a given key pair (tests and fixed vectors).
    pub fn with_keys(rng: &mut Rng, keys: KeyPair) -> Self {
        Responder {
            keys,
            pad: random_pad(rng),
            state: State::PeerKey,
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Bytes received; `find` names the torrent whose [`torrent_key`] is given, if it is
    /// one of ours, and the methods its policy accepts ([`super::Encryption::accept`]).
    /// `Ok(Some)` once the handshake is over (its last bytes wait in
    /// [`Responder::take_output`]), `Ok(None)` while more are needed.
    pub fn receive(
        &mut self,
        data: &[u8],
        find: impl Fn(&[u8; 20]) -> Option<(InfoHash, Methods)>,
    ) -> Result<Option<Established>, MseError> {
        self.input.extend_from_slice(data);
        loop {
            let state = std::mem::replace(&mut self.state, State::Over);
            match self.step(state, &find)? {
                Step::Next(s) => self.state = s,
                Step::Wait(s) => {
                    self.state = s;
                    return Ok(None);
                }
                Step::Done(e) => return Ok(Some(e)),
            }
        }
    }

    fn step(
        &mut self,
        state: State,
        find: &impl Fn(&[u8; 20]) -> Option<(InfoHash, Methods)>,
    ) -> Result<Step<State>, MseError> {
        match state {
            State::PeerKey => {
                let Some(theirs) = sync::take::<PUBLIC_KEY_LEN>(&mut self.input) else {
                    return Ok(Step::Wait(State::PeerKey));
                };
                let secret = self.keys.secret(&theirs)?;
                self.output.extend(self.keys.public());
                self.output.append(&mut self.pad);
                Ok(Step::Next(State::Req1 { secret }))
            }
            State::Req1 { secret } => match sync::find(&self.input, &hash(b"req1", &[&secret]))? {
                None => Ok(Step::Wait(State::Req1 { secret })),
                Some(at) => {
                    self.input.drain(..at + 20);
                    Ok(Step::Next(State::Torrent { secret }))
                }
            },
            State::Torrent { secret } => self.torrent(secret, find),
            State::Provide(keyed) => self.provide(keyed),
            State::PadC {
                mut keyed,
                offered,
                len,
            } => {
                if self.input.len() < len {
                    return Ok(Step::Wait(State::PadC {
                        keyed,
                        offered,
                        len,
                    }));
                }
                let mut pad: Vec<u8> = self.input.drain(..len).collect();
                keyed.receive.apply(&mut pad);
                Ok(Step::Next(State::IaLen { keyed, offered }))
            }
            State::IaLen { mut keyed, offered } => {
                let Some(mut raw) = sync::take::<2>(&mut self.input) else {
                    return Ok(Step::Wait(State::IaLen { keyed, offered }));
                };
                keyed.receive.apply(&mut raw);
                let len = usize::from(u16::from_be_bytes(raw));
                if len > MAX_INITIAL_PAYLOAD {
                    return Err(MseError::PayloadTooLong(len));
                }
                Ok(Step::Next(State::Ia {
                    keyed,
                    offered,
                    len,
                }))
            }
            State::Ia {
                keyed,
                offered,
                len,
            } => {
                if self.input.len() < len {
                    return Ok(Step::Wait(State::Ia {
                        keyed,
                        offered,
                        len,
                    }));
                }
                self.finish(keyed, offered, len).map(Step::Done)
            }
            State::Over => Ok(Step::Wait(State::Over)),
        }
    }

    /// Which torrent the initiator wants: `HASH('req2', SKEY)`, unmasked.
    fn torrent(
        &mut self,
        secret: [u8; PUBLIC_KEY_LEN],
        find: &impl Fn(&[u8; 20]) -> Option<(InfoHash, Methods)>,
    ) -> Result<Step<State>, MseError> {
        let Some(named) = sync::take::<20>(&mut self.input) else {
            return Ok(Step::Wait(State::Torrent { secret }));
        };
        let req3 = hash(b"req3", &[&secret]);
        let mut key = [0u8; 20];
        for ((k, n), r) in key.iter_mut().zip(named).zip(req3) {
            *k = n ^ r;
        }
        let (info_hash, accept) = find(&key).ok_or(MseError::UnknownTorrent)?;
        Ok(Step::Next(State::Provide(Keyed {
            info_hash,
            accept,
            send: Cipher::b_to_a(&secret, &info_hash),
            receive: Cipher::a_to_b(&secret, &info_hash),
        })))
    }

    /// The start of the encrypted part: VC, `crypto_provide`, `len(PadC)`.
    fn provide(&mut self, mut keyed: Keyed) -> Result<Step<State>, MseError> {
        let Some(mut head) = sync::take::<14>(&mut self.input) else {
            return Ok(Step::Wait(State::Provide(keyed)));
        };
        keyed.receive.apply(&mut head);
        let [v0, v1, v2, v3, v4, v5, v6, v7, p0, p1, p2, p3, l0, l1] = head;
        if [v0, v1, v2, v3, v4, v5, v6, v7] != VC {
            return Err(MseError::BadVc);
        }
        let offered = Methods(u32::from_be_bytes([p0, p1, p2, p3]));
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len > MAX_PAD_LEN {
            return Err(MseError::PadTooLong(len));
        }
        Ok(Step::Next(State::PadC {
            keyed,
            offered,
            len,
        }))
    }

    /// The initial payload is in: select the method, answer, and hand over the stream.
    fn finish(
        &mut self,
        mut keyed: Keyed,
        offered: Methods,
        len: usize,
    ) -> Result<Established, MseError> {
        let mut initial_payload: Vec<u8> = self.input.drain(..len).collect();
        keyed.receive.apply(&mut initial_payload);
        let common = offered.and(keyed.accept);
        // Plaintext when both are allowed: the handshake is hidden either way, and RC4
        // costs CPU on every byte. A policy that requires RC4 accepts nothing else.
        let method = if common.contains(Methods::PLAINTEXT) {
            Methods::PLAINTEXT
        } else if common.contains(Methods::RC4) {
            Methods::RC4
        } else {
            return Err(MseError::NoCommonMethod {
                offered: offered.0,
                accepted: keyed.accept.0,
            });
        };
        let mut answer = VC.to_vec();
        answer.extend(method.0.to_be_bytes());
        // len(PadD) = 0, like PadC: reserved.
        answer.extend(0u16.to_be_bytes());
        keyed.send.apply(&mut answer);
        self.output.extend(answer);
        let mut rest = std::mem::take(&mut self.input);
        let rc4 = method == Methods::RC4;
        if rc4 {
            keyed.receive.apply(&mut rest);
        }
        Ok(Established {
            info_hash: keyed.info_hash,
            method,
            send: rc4.then_some(keyed.send),
            receive: rc4.then_some(keyed.receive),
            initial_payload,
            rest,
        })
    }
}
