//! The extension protocol's messages (BEP 10), as pure codecs: the extension handshake, and
//! the two extensions the engine speaks over it, metadata exchange (`ut_metadata`, BEP 9) and
//! peer exchange (`ut_pex`, BEP 11).
//!
//! Each extension is named in the handshake's `m` dictionary with the message id its sender
//! wants to receive it under; ids are chosen by each side for itself. Ours are
//! [`UT_METADATA_ID`] and [`UT_PEX_ID`], constants, so an incoming extended message is routed
//! by its id alone. Every decoder here takes the payload of one EXTENDED message (already
//! bounded by [`crate::wire::MAX_EXTENDED_LEN`]) and answers a value or a typed error; none
//! panics on any input.
//!
//! ```
//! use bt_proto::extensions::{ExtensionHandshake, UT_METADATA_ID};
//!
//! let ours = ExtensionHandshake {
//!     ut_metadata: Some(UT_METADATA_ID),
//!     metadata_size: Some(31_235),
//!     ..Default::default()
//! };
//! let bytes = ours.encode();
//! assert_eq!(ExtensionHandshake::decode(&bytes).unwrap(), ours);
//! ```

mod handshake;
pub mod ut_metadata;
pub mod ut_pex;

pub use handshake::{ExtensionHandshake, ExtensionHandshakeError, MAX_CLIENT_NAME};

/// The extension handshake's own message id (BEP 10).
pub const HANDSHAKE_ID: u8 = 0;

/// The message id under which we receive `ut_metadata` messages. Any non-zero byte would do;
/// 1 and 2 are the ids every client we know chooses for its first extensions.
pub const UT_METADATA_ID: u8 = 1;

/// The message id under which we receive `ut_pex` messages.
pub const UT_PEX_ID: u8 = 2;

/// The name of metadata exchange in `m` (BEP 9).
pub const UT_METADATA: &str = "ut_metadata";

/// The name of peer exchange in `m` (BEP 11).
pub const UT_PEX: &str = "ut_pex";
