//! The protocol's small text codecs, each written once: hex (info-hashes and ids), RFC 4648
//! base32 (magnet info-hashes), percent-encoding (tracker queries, magnet links, HTTP
//! request targets), and escaping for print (text from torrents and trackers on a terminal).
//!
//! Written here rather than taken from `hex`, `data-encoding` or `percent-encoding`: each is a
//! few dozen lines, and the parsers that use them need what those crates do not give, such as
//! a percent-decoder that refuses a malformed escape and says where (`percent-encoding` passes
//! it through as text), which the fuzzed parsers report in their typed errors.

pub mod base32;
pub mod hex;
pub mod percent;
pub mod printable;
