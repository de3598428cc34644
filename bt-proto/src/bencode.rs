//! Bencode (BEP 3): strict decoding into borrowed values, canonical encoding.
//!
//! Decoding never recurses: nesting is kept on an explicit stack bounded by [`MAX_DEPTH`], so a
//! crafted file cannot overflow the call stack. Every decoded [`Value`] remembers the exact bytes
//! it was decoded from ([`Value::raw`]), which is how the info-hash is computed over the `info`
//! dictionary as found in the file, never over a re-encoding.
//!
//! Strictness: integers without leading zeros, no `-0`, no empty integers, no overflow of
//! `i64`; string lengths without leading zeros and within the input; dictionary keys are byte
//! strings and never repeated; no bytes after the top-level value. Unsorted keys are accepted
//! by [`decode`] (trackers in the wild emit them) and rejected by [`decode_strict`] and by
//! [`Value::check_canonical`], which metainfo applies to the `info` dictionary.
//!
//! ```
//! use bt_proto::bencode::{self, Bencode};
//! let v = bencode::decode(b"d3:cow3:moo4:spaml1:ai7eee").unwrap();
//! assert_eq!(v.get(b"cow").and_then(|v| v.as_str()), Some("moo"));
//! assert_eq!(v.get(b"spam").and_then(|v| v.as_list()).map(|l| l.len()), Some(2));
//! assert_eq!(v.to_owned().encode(), b"d3:cow3:moo4:spaml1:ai7eee");
//!
//! let built = Bencode::dict().with("b", 1).with("a", "x");
//! assert_eq!(built.encode(), b"d1:a1:x1:bi1ee");
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use nom::IResult;
use nom::character::complete::digit1;

/// Deepest nesting of lists and dictionaries accepted. libtorrent uses the same limit; real
/// torrents and tracker replies nest fewer than 10 levels.
pub const MAX_DEPTH: usize = 100;

/// Largest input accepted, in bytes. A v1 torrent of a multi-terabyte payload with small pieces
/// carries a `pieces` string of tens of megabytes; 128 MiB leaves room for that and no more.
pub const MAX_INPUT_LEN: usize = 128 * 1024 * 1024;

/// Most values (integers, strings, lists, dictionaries) in one input. Each decoded value costs
/// about 56 bytes, so this caps decoding memory near 110 MiB whatever the input; a torrent
/// with 200,000 files needs about 1.2 million values.
pub const MAX_VALUES: usize = 2_000_000;

/// Why a bencoded input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer or string length with a leading zero (`i03e`, `03:abc`).
    LeadingZero,
    /// The integer `-0`.
    NegativeZero,
    /// An integer with no digits (`ie`, `i-e`).
    EmptyInteger,
    /// An integer outside `i64`, or a string length outside `usize`.
    IntegerOverflow,
    /// A string whose declared length runs past the end of the input.
    StringPastEnd,
    /// A dictionary key that is not a byte string.
    KeyNotString,
    /// A dictionary key that appeared before in the same dictionary.
    DuplicateKey,
    /// A dictionary key that sorts before the previous one (strict mode only).
    UnsortedKey,
    /// Bytes after the end of the top-level value.
    TrailingBytes,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Input longer than [`MAX_INPUT_LEN`].
    TooLong,
    /// More values than [`MAX_VALUES`].
    TooManyValues,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEnd => f.write_str("input ends inside a value"),
            DecodeErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            DecodeErrorKind::LeadingZero => f.write_str("number with a leading zero"),
            DecodeErrorKind::NegativeZero => f.write_str("integer -0"),
            DecodeErrorKind::EmptyInteger => f.write_str("integer without digits"),
            DecodeErrorKind::IntegerOverflow => f.write_str("number too large"),
            DecodeErrorKind::StringPastEnd => f.write_str("string runs past the end of input"),
            DecodeErrorKind::KeyNotString => f.write_str("dictionary key is not a string"),
            DecodeErrorKind::DuplicateKey => f.write_str("duplicate dictionary key"),
            DecodeErrorKind::UnsortedKey => f.write_str("dictionary keys out of order"),
            DecodeErrorKind::TrailingBytes => f.write_str("bytes after the end of the value"),
            DecodeErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH}"),
            DecodeErrorKind::TooLong => write!(f, "input longer than {MAX_INPUT_LEN} bytes"),
            DecodeErrorKind::TooManyValues => write!(f, "more than {MAX_VALUES} values"),
        }
    }
}

/// A rejected input: what was wrong and at which byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What the problem was.
    pub kind: DecodeErrorKind,
}

/// The shape and contents of a decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `i42e`
    Int(i64),
    /// `4:spam`, borrowed from the input.
    Bytes(&'a [u8]),
    /// `l...e`
    List(Vec<Value<'a>>),
    /// `d...e`, entries in input order.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// A decoded value borrowing from its input, with the span it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    kind: Kind<'a>,
    raw: &'a [u8],
    offset: usize,
}

impl<'a> Value<'a> {
    /// The shape and contents.
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// The exact bytes this value was decoded from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Byte offset of this value in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries in input order, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match &self.kind {
            Kind::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// An owned copy, for keeping or re-encoding canonically.
    pub fn to_owned(&self) -> Bencode {
        // Iterative so a deep value cannot overflow the stack here either.
        enum Step<'v, 'a> {
            Visit(&'v Value<'a>),
            BuildList(usize),
            BuildDict(Vec<&'a [u8]>),
        }
        let mut steps = vec![Step::Visit(self)];
        let mut built: Vec<Bencode> = Vec::new();
        while let Some(step) = steps.pop() {
            match step {
                Step::Visit(v) => match &v.kind {
                    Kind::Int(i) => built.push(Bencode::Int(*i)),
                    Kind::Bytes(b) => built.push(Bencode::Bytes(b.to_vec())),
                    Kind::List(items) => {
                        steps.push(Step::BuildList(items.len()));
                        steps.extend(items.iter().rev().map(Step::Visit));
                    }
                    Kind::Dict(entries) => {
                        steps.push(Step::BuildDict(entries.iter().map(|(k, _)| *k).collect()));
                        steps.extend(entries.iter().rev().map(|(_, v)| Step::Visit(v)));
                    }
                },
                Step::BuildList(n) => {
                    let items = built.split_off(built.len().saturating_sub(n));
                    built.push(Bencode::List(items));
                }
                Step::BuildDict(keys) => {
                    let values = built.split_off(built.len().saturating_sub(keys.len()));
                    let map = keys.into_iter().map(<[u8]>::to_vec).zip(values).collect();
                    built.push(Bencode::Dict(map));
                }
            }
        }
        built.pop().unwrap_or(Bencode::List(Vec::new()))
    }

    /// Checks that every dictionary inside this value has its keys sorted and unique, as the
    /// canonical form requires (the `info` dictionary of a torrent must be canonical).
    pub fn check_canonical(&self) -> Result<(), DecodeError> {
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            match &v.kind {
                Kind::Int(_) | Kind::Bytes(_) => {}
                Kind::List(items) => stack.extend(items.iter()),
                Kind::Dict(entries) => {
                    for pair in entries.windows(2) {
                        if let [(a, _), (b, value)] = pair
                            && a >= b
                        {
                            // The key starts just before its value; report at the key.
                            let offset = value.offset.saturating_sub(key_len(b));
                            let kind = if a == b {
                                DecodeErrorKind::DuplicateKey
                            } else {
                                DecodeErrorKind::UnsortedKey
                            };
                            return Err(DecodeError { offset, kind });
                        }
                    }
                    stack.extend(entries.iter().map(|(_, v)| v));
                }
            }
        }
        Ok(())
    }
}

/// Encoded length of a byte-string key (`len:bytes`).
fn key_len(key: &[u8]) -> usize {
    key.len() + key.len().to_string().len() + 1
}

/// Decodes exactly one value that spans the whole input. Unsorted dictionary keys are accepted.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let (value, used) = Decoder::new(input, false).run()?;
    if used != input.len() {
        return Err(DecodeError {
            offset: used,
            kind: DecodeErrorKind::TrailingBytes,
        });
    }
    Ok(value)
}

/// Like [`decode`], but unsorted dictionary keys anywhere are an error too, so whatever this
/// accepts re-encodes to exactly the input.
pub fn decode_strict(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let (value, used) = Decoder::new(input, true).run()?;
    if used != input.len() {
        return Err(DecodeError {
            offset: used,
            kind: DecodeErrorKind::TrailingBytes,
        });
    }
    Ok(value)
}

/// Decodes one value at the start of `input` and returns it with the number of bytes it used;
/// what follows is left to the caller (BEP 9 metadata pieces follow their dictionary).
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    Decoder::new(input, false).run()
}

/// A container being filled while decoding.
enum Frame<'a> {
    List {
        start: usize,
        items: Vec<Value<'a>>,
    },
    Dict {
        start: usize,
        entries: Vec<(&'a [u8], Value<'a>)>,
        /// The key read and waiting for its value.
        pending_key: Option<&'a [u8]>,
        /// Set once keys arrived out of order, so duplicates need a set to be found.
        seen: Option<HashSet<&'a [u8]>>,
    },
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    strict: bool,
    values: usize,
}

impl<'a> Decoder<'a> {
    fn new(input: &'a [u8], strict: bool) -> Self {
        Decoder {
            input,
            pos: 0,
            strict,
            values: 0,
        }
    }

    fn err(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset, kind }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(self.err(self.pos, DecodeErrorKind::UnexpectedEnd))
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn span(&self, start: usize) -> &'a [u8] {
        self.input.get(start..self.pos).unwrap_or_default()
    }

    fn count_value(&mut self, at: usize) -> Result<(), DecodeError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(self.err(at, DecodeErrorKind::TooManyValues));
        }
        Ok(())
    }

    fn run(mut self) -> Result<(Value<'a>, usize), DecodeError> {
        if self.input.len() > MAX_INPUT_LEN {
            return Err(self.err(MAX_INPUT_LEN, DecodeErrorKind::TooLong));
        }
        let mut stack: Vec<Frame<'a>> = Vec::new();
        loop {
            let start = self.pos;
            let byte = self.peek()?;

            // Inside a dictionary waiting for a key, only a key or the end may come.
            if let Some(Frame::Dict {
                pending_key: pending @ None,
                ..
            }) = stack.last_mut()
                && byte != b'e'
            {
                if !byte.is_ascii_digit() {
                    return Err(self.err(start, DecodeErrorKind::KeyNotString));
                }
                let key = self.string()?;
                *pending = Some(key);
                continue;
            }

            let value = match byte {
                b'i' => {
                    let n = self.integer()?;
                    Value {
                        kind: Kind::Int(n),
                        raw: self.span(start),
                        offset: start,
                    }
                }
                b'0'..=b'9' => {
                    let s = self.string()?;
                    Value {
                        kind: Kind::Bytes(s),
                        raw: self.span(start),
                        offset: start,
                    }
                }
                b'l' | b'd' => {
                    stack.push(self.open(start, byte, stack.len())?);
                    continue;
                }
                b'e' => self.close(start, stack.pop())?,
                other => return Err(self.err(start, DecodeErrorKind::UnexpectedByte(other))),
            };

            match stack.last_mut() {
                None => return Ok((value, self.pos)),
                Some(parent) => self.add(parent, start, value)?,
            }
        }
    }

    /// Opens the list or dictionary whose first byte, `byte`, is at `start`, `depth`
    /// containers deep.
    fn open(&mut self, start: usize, byte: u8, depth: usize) -> Result<Frame<'a>, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(self.err(start, DecodeErrorKind::TooDeep));
        }
        self.count_value(start)?;
        self.pos += 1;
        Ok(if byte == b'l' {
            Frame::List {
                start,
                items: Vec::new(),
            }
        } else {
            Frame::Dict {
                start,
                entries: Vec::new(),
                pending_key: None,
                seen: None,
            }
        })
    }

    /// The value `frame` makes, ended by the `e` at `at`.
    fn close(&mut self, at: usize, frame: Option<Frame<'a>>) -> Result<Value<'a>, DecodeError> {
        self.pos += 1;
        match frame {
            Some(Frame::List { start, items }) => Ok(Value {
                kind: Kind::List(items),
                raw: self.span(start),
                offset: start,
            }),
            Some(Frame::Dict {
                start,
                entries,
                pending_key: None,
                ..
            }) => Ok(Value {
                kind: Kind::Dict(entries),
                raw: self.span(start),
                offset: start,
            }),
            // A key with no value, or `e` at top level.
            Some(Frame::Dict { .. }) | None => {
                Err(self.err(at, DecodeErrorKind::UnexpectedByte(b'e')))
            }
        }
    }

    /// Adds `value`, which started at `start`, to the container being filled: an item of a
    /// list, or the value of a dictionary's pending key, whose order and uniqueness are
    /// checked here.
    fn add(
        &self,
        parent: &mut Frame<'a>,
        start: usize,
        value: Value<'a>,
    ) -> Result<(), DecodeError> {
        let (entries, pending_key, seen) = match parent {
            Frame::List { items, .. } => {
                items.push(value);
                return Ok(());
            }
            Frame::Dict {
                entries,
                pending_key,
                seen,
                ..
            } => (entries, pending_key, seen),
        };
        let Some(key) = pending_key.take() else {
            return Err(self.err(start, DecodeErrorKind::KeyNotString));
        };
        let key_at = start.saturating_sub(key_len(key));
        let in_order = entries.last().is_none_or(|(last, _)| *last < key);
        if let Some(seen) = seen {
            if !seen.insert(key) {
                return Err(self.err(key_at, DecodeErrorKind::DuplicateKey));
            }
        } else if !in_order {
            if entries.last().is_some_and(|(last, _)| *last == key) {
                return Err(self.err(key_at, DecodeErrorKind::DuplicateKey));
            }
            if self.strict {
                return Err(self.err(key_at, DecodeErrorKind::UnsortedKey));
            }
            let mut set: HashSet<&'a [u8]> = entries.iter().map(|(k, _)| *k).collect();
            if !set.insert(key) {
                return Err(self.err(key_at, DecodeErrorKind::DuplicateKey));
            }
            *seen = Some(set);
        }
        entries.push((key, value));
        Ok(())
    }

    /// `i<digits>e` at `self.pos`.
    fn integer(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.count_value(start)?;
        self.pos += 1; // 'i'
        let negative = self.rest().first() == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let digits_at = self.pos;
        let digits = self.digits()?;
        if digits.is_empty() {
            return Err(self.err(digits_at, self.end_or(DecodeErrorKind::EmptyInteger)));
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(self.err(digits_at, DecodeErrorKind::LeadingZero));
        }
        if negative && digits == b"0" {
            return Err(self.err(start, DecodeErrorKind::NegativeZero));
        }
        let mut n: i64 = 0;
        for &d in digits {
            let d = i64::from(d - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(d)
                    } else {
                        n.checked_add(d)
                    }
                })
                .ok_or(self.err(digits_at, DecodeErrorKind::IntegerOverflow))?;
        }
        match self.peek()? {
            b'e' => {
                self.pos += 1;
                Ok(n)
            }
            other => Err(self.err(self.pos, DecodeErrorKind::UnexpectedByte(other))),
        }
    }

    /// `<len>:<bytes>` at `self.pos`.
    fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.count_value(start)?;
        let digits = self.digits()?;
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(self.err(start, DecodeErrorKind::LeadingZero));
        }
        let mut len: usize = 0;
        for &d in digits {
            len = len
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
                .ok_or(self.err(start, DecodeErrorKind::IntegerOverflow))?;
        }
        match self.peek()? {
            b':' => self.pos += 1,
            other => return Err(self.err(self.pos, DecodeErrorKind::UnexpectedByte(other))),
        }
        let body = self
            .rest()
            .get(..len)
            .ok_or(self.err(start, DecodeErrorKind::StringPastEnd))?;
        self.pos += len;
        Ok(body)
    }

    /// The run of ASCII digits at `self.pos` (possibly empty).
    fn digits(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = self.rest();
        let parsed: IResult<&[u8], &[u8]> = digit1(rest);
        let digits = match parsed {
            Ok((_, digits)) => digits,
            // No digit here (an empty run), or the input ended inside the run.
            Err(_) if rest.is_empty() => {
                return Err(self.err(self.pos, DecodeErrorKind::UnexpectedEnd));
            }
            Err(_) => &[],
        };
        self.pos += digits.len();
        Ok(digits)
    }

    /// `kind`, unless the input simply ended here.
    fn end_or(&self, kind: DecodeErrorKind) -> DecodeErrorKind {
        if self.pos >= self.input.len() {
            DecodeErrorKind::UnexpectedEnd
        } else {
            kind
        }
    }
}

/// An owned bencode value for building messages and files. Dictionaries are ordered maps, so
/// [`Bencode::encode`] always writes the canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bencode {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Bencode>),
    /// A dictionary with byte-string keys.
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    /// An empty dictionary, to fill with [`Bencode::with`].
    pub fn dict() -> Self {
        Bencode::Dict(BTreeMap::new())
    }

    /// This dictionary with `key` set to `value` (a no-op on anything but a dictionary).
    pub fn with(mut self, key: impl AsRef<[u8]>, value: impl Into<Bencode>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value` if this is a dictionary; returns whether it was one.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<Bencode>) -> bool {
        match self {
            Bencode::Dict(map) => {
                map.insert(key.as_ref().to_vec(), value.into());
                true
            }
            _ => false,
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Iterative for the same reason decoding is: depth is not bounded by the type.
        enum Step<'v> {
            Value(&'v Bencode),
            Key(&'v [u8]),
            End,
        }
        let mut steps = vec![Step::Value(self)];
        while let Some(step) = steps.pop() {
            match step {
                Step::End => out.push(b'e'),
                Step::Key(k) => write_bytes(out, k),
                Step::Value(Bencode::Int(i)) => {
                    out.push(b'i');
                    out.extend_from_slice(i.to_string().as_bytes());
                    out.push(b'e');
                }
                Step::Value(Bencode::Bytes(b)) => write_bytes(out, b),
                Step::Value(Bencode::List(items)) => {
                    out.push(b'l');
                    steps.push(Step::End);
                    steps.extend(items.iter().rev().map(Step::Value));
                }
                Step::Value(Bencode::Dict(map)) => {
                    out.push(b'd');
                    steps.push(Step::End);
                    for (k, v) in map.iter().rev() {
                        steps.push(Step::Value(v));
                        steps.push(Step::Key(k));
                    }
                }
            }
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Bencode::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Bencode::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value under `key`, if this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Bencode> {
        match self {
            Bencode::Dict(map) => map.get(key),
            _ => None,
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl From<i64> for Bencode {
    fn from(i: i64) -> Self {
        Bencode::Int(i)
    }
}

impl From<u32> for Bencode {
    fn from(i: u32) -> Self {
        Bencode::Int(i64::from(i))
    }
}

impl From<i32> for Bencode {
    fn from(i: i32) -> Self {
        Bencode::Int(i64::from(i))
    }
}

impl From<u16> for Bencode {
    fn from(i: u16) -> Self {
        Bencode::Int(i64::from(i))
    }
}

impl From<&str> for Bencode {
    fn from(s: &str) -> Self {
        Bencode::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Bencode {
    fn from(s: String) -> Self {
        Bencode::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Bencode {
    fn from(b: &[u8]) -> Self {
        Bencode::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Bencode {
    fn from(b: Vec<u8>) -> Self {
        Bencode::Bytes(b)
    }
}

impl From<Vec<Bencode>> for Bencode {
    fn from(items: Vec<Bencode>) -> Self {
        Bencode::List(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind_of(input: &[u8]) -> DecodeErrorKind {
        decode(input).unwrap_err().kind
    }

    #[test]
    fn decodes_each_type_with_spans() {
        let input = b"d4:infod6:lengthi-12ee4:listl0:i0eee";
        let v = decode(input).unwrap();
        let info = v.get(b"info").unwrap();
        assert_eq!(info.raw(), b"d6:lengthi-12ee");
        assert_eq!(info.offset(), 7);
        assert_eq!(info.get(b"length").unwrap().as_int(), Some(-12));
        let list = v.get(b"list").unwrap().as_list().unwrap();
        assert_eq!(list[0].as_bytes(), Some(&b""[..]));
        assert_eq!(list[1].as_int(), Some(0));
        assert_eq!(v.raw(), &input[..]);
        assert_eq!(v.to_owned().encode(), input);
    }

    #[test]
    fn integer_rules() {
        assert_eq!(kind_of(b"i03e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind_of(b"i-03e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind_of(b"i-0e"), DecodeErrorKind::NegativeZero);
        assert_eq!(kind_of(b"ie"), DecodeErrorKind::EmptyInteger);
        assert_eq!(kind_of(b"i-e"), DecodeErrorKind::EmptyInteger);
        assert_eq!(
            kind_of(b"i9223372036854775808e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert_eq!(kind_of(b"i12"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"i1x"), DecodeErrorKind::UnexpectedByte(b'x'));
        assert_eq!(kind_of(b"i"), DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn string_rules() {
        assert_eq!(kind_of(b"03:abc"), DecodeErrorKind::LeadingZero);
        assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));
        let err = decode(b"5:abc").unwrap_err();
        assert_eq!((err.offset, err.kind), (0, DecodeErrorKind::StringPastEnd));
        assert_eq!(
            kind_of(b"99999999999999999999999:a"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(kind_of(b"3abc"), DecodeErrorKind::UnexpectedByte(b'a'));
        assert_eq!(kind_of(b"3"), DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn structure_rules() {
        let err = decode(b"i1ei2e").unwrap_err();
        assert_eq!((err.offset, err.kind), (3, DecodeErrorKind::TrailingBytes));
        assert_eq!(kind_of(b"e"), DecodeErrorKind::UnexpectedByte(b'e'));
        assert_eq!(kind_of(b""), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"l"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"di1ei2ee"), DecodeErrorKind::KeyNotString);
        assert_eq!(kind_of(b"d1:ae"), DecodeErrorKind::UnexpectedByte(b'e'));
        assert_eq!(kind_of(b"x"), DecodeErrorKind::UnexpectedByte(b'x'));
        let (v, used) = decode_prefix(b"d1:ai1ee<binary>").unwrap();
        assert_eq!((v.get(b"a").unwrap().as_int(), used), (Some(1), 8));
    }

    #[test]
    fn key_order_and_duplicates() {
        let err = decode(b"d1:bi1e1:bi2ee").unwrap_err();
        assert_eq!((err.offset, err.kind), (7, DecodeErrorKind::DuplicateKey));
        // Unsorted is accepted leniently, but a later duplicate is still found.
        let v = decode(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(
            v.check_canonical().unwrap_err().kind,
            DecodeErrorKind::UnsortedKey
        );
        assert_eq!(
            kind_of(b"d1:bi1e1:ai2e1:bi3ee"),
            DecodeErrorKind::DuplicateKey
        );
        let err = decode_strict(b"d1:bi1e1:ai2ee").unwrap_err();
        assert_eq!((err.offset, err.kind), (7, DecodeErrorKind::UnsortedKey));
        // Nested: the inner dictionary is checked too.
        let v = decode(b"d4:infod1:zi0e1:yi0eee").unwrap();
        assert_eq!(
            v.get(b"info").unwrap().check_canonical().unwrap_err().kind,
            DecodeErrorKind::UnsortedKey
        );
    }

    #[test]
    fn nesting_limit_without_recursion() {
        let deep_ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(decode(&deep_ok).is_ok());
        let too_deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(kind_of(&too_deep), DecodeErrorKind::TooDeep);
        // A million opening brackets: rejected quickly, no stack overflow.
        assert_eq!(kind_of(&vec![b'l'; 1_000_000]), DecodeErrorKind::TooDeep);
    }

    #[test]
    fn value_count_limit() {
        let mut input = vec![b'l'];
        for _ in 0..=MAX_VALUES {
            input.extend_from_slice(b"0:");
        }
        input.push(b'e');
        assert_eq!(kind_of(&input), DecodeErrorKind::TooManyValues);
    }

    #[test]
    fn builder_encodes_canonically() {
        let v = Bencode::dict()
            .with("zeta", Bencode::List(vec![1i64.into(), "x".into()]))
            .with("alpha", -5i64)
            .with(b"\x00bin".as_slice(), Bencode::dict());
        assert_eq!(v.encode(), b"d4:\x00binde5:alphai-5e4:zetali1e1:xee");
    }

    fn arb_bencode() -> impl Strategy<Value = Bencode> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Bencode::Int),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bencode::Bytes),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Bencode::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..8),
                    inner,
                    0..8
                )
                .prop_map(Bencode::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(v in arb_bencode()) {
            let bytes = v.encode();
            let decoded = decode_strict(&bytes).unwrap();
            prop_assert_eq!(decoded.raw(), &bytes[..]);
            prop_assert!(decoded.check_canonical().is_ok());
            prop_assert_eq!(decoded.to_owned(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = decode_strict(&bytes) {
                // Whatever strict decoding accepts is canonical: it re-encodes to itself.
                prop_assert_eq!(v.to_owned().encode(), bytes.clone());
            }
            let _ = decode_prefix(&bytes);
        }

        #[test]
        fn mutated_encodings_never_panic(v in arb_bencode(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = v.encode();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(v) = decode_strict(&bytes) {
                prop_assert_eq!(v.to_owned().encode(), bytes.clone());
            }
        }
    }
}
