//! The dialling side (A) of an MSE handshake.

use super::cipher::{Cipher, hash};
use super::dh::{KeyPair, PUBLIC_KEY_LEN};
use super::{Established, MAX_INITIAL_PAYLOAD, MAX_PAD_LEN, Methods, MseError, VC, sync};
use crate::InfoHash;
use crate::rng::Rng;

/// Where the handshake is.
#[derive(Debug)]
enum State {
    /// Waiting for the responder's public key.
    PeerKey,
    /// Looking for the responder's encrypted VC past its padding.
    Vc {
        pattern: [u8; 8],
        send: Cipher,
        receive: Cipher,
    },
    /// Reading `crypto_select` and `len(PadD)`.
    Select { send: Cipher, receive: Cipher },
    /// Skipping PadD.
    PadD {
        method: Methods,
        len: usize,
        send: Cipher,
        receive: Cipher,
    },
    /// Finished or failed: nothing more is read.
    Over,
}

/// A's side: sends its key, then the torrent's hashes and the initial payload, and reads
/// the method the responder selected.
#[derive(Debug)]
pub struct Initiator {
    keys: KeyPair,
    info_hash: InfoHash,
    offer: Methods,
    initial_payload: Vec<u8>,
    state: State,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Initiator {
    /// A handshake for torrent `info_hash` offering `offer`, carrying `initial_payload`
    /// (the BitTorrent handshake) encrypted in its third message. Its first message (our
    /// key and random padding) waits in [`Initiator::take_output`].
    pub fn new(
        rng: &mut Rng,
        info_hash: InfoHash,
        offer: Methods,
        initial_payload: Vec<u8>,
    ) -> Result<Self, MseError> {
        let keys = KeyPair::random(rng);
        Initiator::with_keys(rng, keys, info_hash, offer, initial_payload)
    }

    /// The same with a given key pair (tests and fixed vectors).
    pub fn with_keys(
        rng: &mut Rng,
        keys: KeyPair,
        info_hash: InfoHash,
        offer: Methods,
        initial_payload: Vec<u8>,
    ) -> Result<Self, MseError> {
        if initial_payload.len() > MAX_INITIAL_PAYLOAD {
            return Err(MseError::PayloadTooLong(initial_payload.len()));
        }
        let mut output = keys.public().to_vec();
        output.extend(random_pad(rng));
        Ok(Initiator {
            keys,
            info_hash,
            offer,
            initial_payload,
            state: State::PeerKey,
            input: Vec::new(),
            output,
        })
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Bytes received. `Ok(Some)` once the handshake is over (its last bytes may still
    /// wait in [`Initiator::take_output`]), `Ok(None)` while more are needed.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Established>, MseError> {
        self.input.extend_from_slice(data);
        loop {
            let state = std::mem::replace(&mut self.state, State::Over);
            match self.step(state) {
                Ok(Step::Next(s)) => self.state = s,
                Ok(Step::Wait(s)) => {
                    self.state = s;
                    return Ok(None);
                }
                Ok(Step::Done(e)) => return Ok(Some(e)),
                Err(e) => return Err(e),
            }
        }
    }

    fn step(&mut self, state: State) -> Result<Step<State>, MseError> {
        match state {
            State::PeerKey => self.peer_key(),
            State::Vc {
                pattern,
                send,
                mut receive,
            } => match sync::find(&self.input, &pattern)? {
                None => Ok(Step::Wait(State::Vc {
                    pattern,
                    send,
                    receive,
                })),
                Some(at) => {
                    let mut vc: Vec<u8> = self.input.drain(..at + VC.len()).skip(at).collect();
                    receive.apply(&mut vc);
                    Ok(Step::Next(State::Select { send, receive }))
                }
            },
            State::Select { send, mut receive } => {
                let Some(mut head) = sync::take::<6>(&mut self.input) else {
                    return Ok(Step::Wait(State::Select { send, receive }));
                };
                receive.apply(&mut head);
                let [s0, s1, s2, s3, l0, l1] = head;
                let method = Methods(u32::from_be_bytes([s0, s1, s2, s3]));
                let single = method == Methods::PLAINTEXT || method == Methods::RC4;
                if !single || !self.offer.contains(method) {
                    return Err(MseError::BadSelect(method.0));
                }
                let len = usize::from(u16::from_be_bytes([l0, l1]));
                if len > MAX_PAD_LEN {
                    return Err(MseError::PadTooLong(len));
                }
                Ok(Step::Next(State::PadD {
                    method,
                    len,
                    send,
                    receive,
                }))
            }
            State::PadD {
                method,
                len,
                send,
                mut receive,
            } => {
                if self.input.len() < len {
                    return Ok(Step::Wait(State::PadD {
                        method,
                        len,
                        send,
                        receive,
                    }));
                }
                let mut pad: Vec<u8> = self.input.drain(..len).collect();
                receive.apply(&mut pad);
                Ok(Step::Done(self.established(method, send, receive)))
            }
            State::Over => Ok(Step::Wait(State::Over)),
        }
    }

    /// The responder's key: the secret, and our third message.
    fn peer_key(&mut self) -> Result<Step<State>, MseError> {
        let Some(theirs) = sync::take::<PUBLIC_KEY_LEN>(&mut self.input) else {
            return Ok(Step::Wait(State::PeerKey));
        };
        let secret = self.keys.secret(&theirs)?;
        let skey = self.info_hash;
        let mut send = Cipher::a_to_b(&secret, &skey);
        let mut pattern = VC;
        Cipher::b_to_a(&secret, &skey).apply(&mut pattern);
        let receive = Cipher::b_to_a(&secret, &skey);
        self.output.extend(hash(b"req1", &[&secret]));
        let req2 = hash(b"req2", &[&skey.0]);
        let req3 = hash(b"req3", &[&secret]);
        self.output
            .extend(req2.iter().zip(req3).map(|(a, b)| a ^ b));
        let mut encrypted = VC.to_vec();
        encrypted.extend(self.offer.0.to_be_bytes());
        // len(PadC) = 0: PadC is reserved for extensions nobody defined.
        encrypted.extend(0u16.to_be_bytes());
        let ia_len = u16::try_from(self.initial_payload.len()).unwrap_or(u16::MAX);
        encrypted.extend(ia_len.to_be_bytes());
        encrypted.append(&mut self.initial_payload);
        send.apply(&mut encrypted);
        self.output.extend(encrypted);
        Ok(Step::Next(State::Vc {
            pattern,
            send,
            receive,
        }))
    }

    fn established(&mut self, method: Methods, send: Cipher, mut receive: Cipher) -> Established {
        let mut rest = std::mem::take(&mut self.input);
        let rc4 = method == Methods::RC4;
        if rc4 {
            receive.apply(&mut rest);
        }
        Established {
            info_hash: self.info_hash,
            method,
            send: rc4.then_some(send),
            receive: rc4.then_some(receive),
            initial_payload: Vec::new(),
            rest,
        }
    }
}

/// What one step of a handshake did.
pub(super) enum Step<S, E = Established> {
    /// Moved on; try the next step.
    Next(S),
    /// Needs more bytes.
    Wait(S),
    /// Finished.
    Done(E),
}

/// 0 to [`MAX_PAD_LEN`] random bytes: the padding that hides the handshake's lengths.
pub(super) fn random_pad(rng: &mut Rng) -> Vec<u8> {
    let len = rng.index(MAX_PAD_LEN + 1);
    let mut pad = vec![0u8; len];
    rng.fill(&mut pad);
    pad
}
