//! Reading a handshake: finding a synchronisation point (a known pattern after up to
//! [`MAX_PAD_LEN`] bytes of random padding), and taking fixed-size fields.

use super::{MAX_PAD_LEN, MseError};

/// Where `pattern` starts in `buf`, if it does within the padding allowed. `Ok(None)`:
/// not yet, more bytes may bring it; an error once the window has passed without it.
pub(super) fn find(buf: &[u8], pattern: &[u8]) -> Result<Option<usize>, MseError> {
    if let Some(at) = buf
        .windows(pattern.len())
        .take(MAX_PAD_LEN + 1)
        .position(|w| w == pattern)
    {
        return Ok(Some(at));
    }
    if buf.len() >= MAX_PAD_LEN + pattern.len() {
        return Err(MseError::NoSync);
    }
    Ok(None)
}

/// The next `N` bytes of `input`, taken out, if they have come.
pub(super) fn take<const N: usize>(input: &mut Vec<u8>) -> Option<[u8; N]> {
    let head: [u8; N] = input.get(..N)?.try_into().ok()?;
    input.drain(..N);
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_within_the_window_waits_short_of_it_and_fails_past_it() {
        let mut buf = vec![0xaa; MAX_PAD_LEN];
        buf.extend_from_slice(b"sync");
        assert_eq!(find(&buf, b"sync"), Ok(Some(MAX_PAD_LEN)));
        assert_eq!(find(&buf[..MAX_PAD_LEN + 3], b"sync"), Ok(None));
        let mut late = vec![0xaa; MAX_PAD_LEN + 1];
        late.extend_from_slice(b"sync");
        assert_eq!(find(&late, b"sync"), Err(MseError::NoSync));
        assert_eq!(find(b"sy", b"sync"), Ok(None));
    }
}
