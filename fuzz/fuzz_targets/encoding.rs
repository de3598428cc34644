//! The small text codecs of `bt_proto::encoding`: nothing panics, and what one side writes
//! the other reads back.
//!
//! The input is fed to each codec: hex (`digit_value`, `decode_array`, `upper_digit` and
//! `Lower`), base32 (20-byte digests), percent-encoding (with both `+` rules and both keep
//! rules the crate uses), and the escaping for print (`printable::escape`, read back by the
//! unescaper below).
#![no_main]

use std::borrow::Cow;

use bt_proto::encoding::percent::{self, Plus, is_unreserved};
use bt_proto::encoding::printable::{escape, needs_escape};
use bt_proto::encoding::{base32, hex};
use libfuzzer_sys::fuzz_target;

fn check_hex(data: &[u8]) {
    for &b in data {
        assert_eq!(hex::digit_value(b).is_some(), b.is_ascii_hexdigit());
        if let Some(v) = hex::digit_value(b) {
            assert_eq!(hex::upper_digit(v), char::from(b.to_ascii_uppercase()));
        }
    }
    let prefix = data.get(..40).unwrap_or(data);
    if let Some(bytes) = hex::decode_array::<20>(prefix) {
        assert!(prefix.iter().all(u8::is_ascii_hexdigit));
        let lower = hex::Lower(&bytes).to_string();
        assert_eq!(lower, String::from_utf8_lossy(prefix).to_ascii_lowercase());
        assert_eq!(hex::decode_array::<20>(lower.as_bytes()), Some(bytes));
    } else {
        assert!(prefix.len() != 40 || !prefix.iter().all(u8::is_ascii_hexdigit));
    }
    if let Some(bytes) = data.first_chunk::<20>() {
        let lower = hex::Lower(bytes).to_string();
        assert_eq!(lower.len(), 40);
        assert_eq!(hex::decode_array::<20>(lower.as_bytes()), Some(*bytes));
    }
}

fn check_base32(data: &[u8]) {
    let text = String::from_utf8_lossy(data.get(..32).unwrap_or(data));
    if let Some(bytes) = base32::decode(&text) {
        // Every digit carries exactly five bits, so the uppercase text comes back.
        assert_eq!(base32::encode(&bytes), text.to_ascii_uppercase());
    }
    if let Some(bytes) = data.first_chunk::<20>() {
        let written = base32::encode(bytes);
        assert_eq!(written.len(), base32::DIGEST_DIGITS);
        assert_eq!(base32::decode(&written), Some(*bytes));
        assert_eq!(base32::decode(&written.to_ascii_lowercase()), Some(*bytes));
    }
}

fn check_percent(data: &[u8]) {
    for keep in [is_unreserved as fn(u8) -> bool, |b: u8| {
        b.is_ascii_graphic() && b != b'%'
    }] {
        let written = percent::encode(data, keep);
        assert!(written.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(percent::decode(&written, Plus::Itself).as_deref(), Ok(data));
        if !written.contains('+') {
            assert_eq!(percent::decode(&written, Plus::Space).as_deref(), Ok(data));
        }
    }
    let text = String::from_utf8_lossy(data);
    match percent::decode(&text, Plus::Itself) {
        Ok(bytes) => {
            let again = percent::encode(&bytes, is_unreserved);
            assert_eq!(percent::decode(&again, Plus::Itself), Ok(bytes.clone()));
            let spaced = percent::decode(&text, Plus::Space).unwrap();
            assert_eq!(spaced.len(), bytes.len());
        }
        Err(e) => {
            assert_eq!(text.as_bytes().get(e.offset), Some(&b'%'));
            assert_eq!(percent::decode(&text, Plus::Space), Err(e));
        }
    }
}

/// Reads [`escape`]'s output back: `\\`, `\t`, `\n`, `\r` and `\u{hex}`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                assert_eq!(chars.next(), Some('{'), "{s:?}");
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).unwrap();
                out.push(char::from_u32(code).unwrap());
            }
            other => panic!("unknown escape {other:?} in {s:?}"),
        }
    }
    out
}

fn check_printable(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let escaped = escape(&text);
    assert!(
        escaped.chars().all(|c| c == '\\' || !needs_escape(c)),
        "{escaped:?}"
    );
    assert_eq!(
        matches!(escaped, Cow::Borrowed(_)),
        !text.chars().any(needs_escape)
    );
    assert_eq!(unescape(&escaped), text);
}

fuzz_target!(|data: &[u8]| {
    check_hex(data);
    check_base32(data);
    check_percent(data);
    check_printable(data);
});
