//! The fields of BEP 15 packets: big-endian integers read in order with the offset kept for
//! errors, and counts written as the signed 32-bit integers the wire has.

use std::time::Duration;

use super::{Action, UdpError};

/// Reads big-endian fields in order, tracking the offset for error messages.
pub(super) struct Reader<'a> {
    /// The packet being decoded, for errors; set as the kind becomes known.
    pub(super) what: &'static str,
    packet: &'a [u8],
    /// Where the next field starts.
    pub(super) offset: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(what: &'static str, packet: &'a [u8]) -> Self {
        Reader {
            what,
            packet,
            offset: 0,
        }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], UdpError> {
        let too_short = UdpError::TooShort {
            what: self.what,
            len: self.packet.len(),
            min: self.offset + N,
        };
        let rest = self.packet.get(self.offset..).ok_or(too_short.clone())?;
        let (head, _) = rest.split_first_chunk::<N>().ok_or(too_short)?;
        self.offset += N;
        Ok(*head)
    }

    pub(super) fn u16(&mut self) -> Result<u16, UdpError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32, UdpError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn u64(&mut self) -> Result<u64, UdpError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A signed 32-bit count that must not be negative.
    pub(super) fn count(&mut self, field: &'static str) -> Result<u32, UdpError> {
        let offset = self.offset;
        let value = self.array().map(i32::from_be_bytes)?;
        u32::try_from(value).map_err(|_| UdpError::Negative {
            field,
            offset,
            value,
        })
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.packet.get(self.offset..).unwrap_or_default()
    }

    /// The rest of the packet split into `N`-byte entries.
    pub(super) fn entries<const N: usize>(
        &self,
    ) -> Result<impl Iterator<Item = &'a [u8; N]>, UdpError> {
        let rest = self.rest();
        let (entries, tail) = rest.as_chunks::<N>();
        if !tail.is_empty() {
            return Err(UdpError::RaggedEntries {
                what: self.what,
                offset: self.offset,
                len: rest.len(),
                entry: N,
            });
        }
        Ok(entries.iter())
    }

    pub(super) fn action(&mut self) -> Result<Action, UdpError> {
        let offset = self.offset;
        let code = self.u32()?;
        Action::from_code(code).ok_or(UdpError::UnknownAction { code, offset })
    }
}

/// Writes a count as the non-negative `int32_t` the wire wants, saturating at `i32::MAX`.
pub(super) fn put_count(out: &mut Vec<u8>, n: u32) {
    let n = n.min(i32::MAX as u32);
    out.extend_from_slice(&n.to_be_bytes());
}

pub(super) fn put_secs(out: &mut Vec<u8>, d: Duration) {
    put_count(out, u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
}
