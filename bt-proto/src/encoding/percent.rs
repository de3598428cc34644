//! Percent-encoding (RFC 3986 section 2.1): bytes a context must not carry as they are become
//! `%XX` (uppercase hex); decoding is strict, a `%` not followed by two hex digits is an error
//! that says where.
//!
//! Which bytes stay as they are depends on the context, so the encoder takes that rule:
//! [`is_unreserved`] for query values and magnet parameters (the form that parses back the
//! same everywhere), `u8::is_ascii_graphic` for an HTTP request target (keeps a URL's own
//! escapes and delimiters, and never lets a control byte through).
//!
//! ```
//! use bt_proto::encoding::percent::{self, Plus, is_unreserved};
//! let mut s = String::new();
//! percent::encode_into(&[0x12, 0x34, 0x56, b'x', b' ', b'~'], is_unreserved, &mut s);
//! assert_eq!(s, "%124Vx%20~");
//! assert_eq!(percent::decode("a+b%20c", Plus::Space).unwrap(), b"a b c");
//! assert_eq!(percent::decode("%2", Plus::Itself).unwrap_err().offset, 0);
//! ```

use super::hex;

/// Whether `b` is an RFC 3986 unreserved character (`A-Z a-z 0-9 - . _ ~`), the bytes any
/// URL component carries as they are.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` to `out`: each ASCII byte that `keep` accepts as it is, every other byte as
/// `%XX` in uppercase hex.
pub fn encode_into(bytes: &[u8], keep: impl Fn(u8) -> bool, out: &mut String) {
    out.reserve(bytes.len());
    for &b in bytes {
        if b.is_ascii() && keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex::upper_digit(b >> 4));
            out.push(hex::upper_digit(b));
        }
    }
}

/// `bytes` percent-encoded, as [`encode_into`] writes them.
pub fn encode(bytes: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::new();
    encode_into(bytes, keep, &mut out);
    out
}

/// What a `+` means to [`decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plus {
    /// A plus sign (RFC 3986).
    Itself,
    /// A space (HTML form encoding, as most clients write a magnet's `dn`).
    Space,
}

/// A `%` not followed by two hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad percent-escape at byte {offset}")]
pub struct BadEscape {
    /// Where the `%` is in the decoded text.
    pub offset: usize,
}

/// The bytes `s` encodes: `%XX` escapes decoded, `+` as `plus` says, everything else as is.
pub fn decode(s: &str, plus: Plus) -> Result<Vec<u8>, BadEscape> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes().enumerate();
    while let Some((offset, b)) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(|(_, c)| hex::digit_value(c));
                let lo = bytes.next().and_then(|(_, c)| hex::digit_value(c));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(BadEscape { offset }),
                }
            }
            b'+' if plus == Plus::Space => out.push(b' '),
            _ => out.push(b),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unreserved_bytes_stay_and_others_are_escaped_in_uppercase() {
        let all: Vec<u8> = (0..=255).collect();
        let s = encode(&all, is_unreserved);
        let kept: String = all
            .iter()
            .filter(|&&b| is_unreserved(b))
            .map(|&b| char::from(b))
            .collect();
        assert_eq!(s.len(), kept.len() + 3 * (256 - kept.len()));
        assert!(s.contains("%0A%0B") && s.contains("%FF") && s.contains("-.") && s.contains("~"));
    }

    #[test]
    fn a_keep_rule_can_never_keep_non_ascii() {
        assert_eq!(encode("é ".as_bytes(), |_| true), "%C3%A9 ");
        assert_eq!(encode(b"a%2F b", |b| b.is_ascii_graphic()), "a%2F%20b");
    }

    #[test]
    fn bad_escapes_say_where() {
        assert_eq!(decode("ab%zz", Plus::Itself), Err(BadEscape { offset: 2 }));
        assert_eq!(decode("abc%4", Plus::Itself), Err(BadEscape { offset: 3 }));
        assert_eq!(decode("%", Plus::Itself), Err(BadEscape { offset: 0 }));
        assert_eq!(decode("%é", Plus::Itself), Err(BadEscape { offset: 0 }));
        assert_eq!(decode("a+%2b", Plus::Itself).unwrap(), b"a++");
        assert_eq!(decode("a+%2b", Plus::Space).unwrap(), b"a +");
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = encode(&bytes, is_unreserved);
            prop_assert_eq!(decode(&s, Plus::Itself), Ok(bytes.clone()));
            prop_assert_eq!(decode(&s, Plus::Space), Ok(bytes));
        }
    }
}
