//! The routing table saved between runs, so that a restart does not start from nothing:
//! our id and the nodes of the table, as a bencoded dictionary (`id`, and `nodes` and
//! `nodes6` in the compact form KRPC uses).
//!
//! ```
//! use bt_proto::dht::NodeId;
//! use bt_proto::dht::krpc::NodeInfo;
//! use bt_proto::dht::saved::SavedTable;
//! let saved = SavedTable {
//!     id: NodeId([1; 20]),
//!     nodes: vec![NodeInfo { id: NodeId([2; 20]), addr: "192.0.2.5:6881".parse().unwrap() }],
//! };
//! assert_eq!(SavedTable::decode(&saved.encode()), Ok(saved));
//! ```

use super::NodeId;
use super::krpc::{NodeInfo, decode_nodes, encode_nodes};
use crate::bencode::{self, Bencode, Value};
use crate::compact::Family;

/// Nodes kept per family when reading a saved table: a full table holds 8 per bucket and
/// rarely more than 30 buckets fill; this bounds a damaged or hostile file.
pub const MAX_SAVED_NODES: usize = 1024;

/// Largest saved table read: [`MAX_SAVED_NODES`] of each family, with room to spare.
pub const MAX_SAVED_LEN: usize = 128 * 1024;

/// A saved table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTable {
    /// Our id: kept, so that the nodes that know us find us where they expect.
    pub id: NodeId,
    /// The table's nodes.
    pub nodes: Vec<NodeInfo>,
}

/// Why a saved table cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SavedTableError {
    /// Longer than [`MAX_SAVED_LEN`].
    #[error("saved DHT table of {0} bytes")]
    TooLong(usize),
    /// Not bencode.
    #[error(transparent)]
    Bencode(#[from] bencode::DecodeError),
    /// A field missing or malformed.
    #[error("saved DHT table has no valid `{0}`")]
    Bad(&'static str),
}

impl SavedTable {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Bencode::dict()
            .with("id", self.id.0.to_vec())
            .with("nodes", encode_nodes(&self.nodes, Family::V4))
            .with("nodes6", encode_nodes(&self.nodes, Family::V6))
            .encode()
    }

    /// Reads a saved table.
    pub fn decode(bytes: &[u8]) -> Result<Self, SavedTableError> {
        if bytes.len() > MAX_SAVED_LEN {
            return Err(SavedTableError::TooLong(bytes.len()));
        }
        let v = bencode::decode(bytes)?;
        let id = v
            .get(b"id")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or(SavedTableError::Bad("id"))?;
        let mut nodes = Vec::new();
        for (key, family, name) in [
            (&b"nodes"[..], Family::V4, "nodes"),
            (&b"nodes6"[..], Family::V6, "nodes6"),
        ] {
            let raw = v.get(key).and_then(Value::as_bytes).unwrap_or_default();
            let got =
                decode_nodes(raw, family, MAX_SAVED_NODES).ok_or(SavedTableError::Bad(name))?;
            nodes.extend(got.into_iter().filter(super::usable));
        }
        Ok(SavedTable {
            id: NodeId(id),
            nodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_round_trip_and_bad_files_are_refused() {
        let saved = SavedTable {
            id: NodeId([3; 20]),
            nodes: vec![
                NodeInfo {
                    id: NodeId([4; 20]),
                    addr: "198.51.100.4:6881".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId([6; 20]),
                    addr: "[2001:db8::6]:6881".parse().unwrap(),
                },
            ],
        };
        assert_eq!(SavedTable::decode(&saved.encode()), Ok(saved));
        assert_eq!(
            SavedTable::decode(b"d2:id3:abce"),
            Err(SavedTableError::Bad("id"))
        );
        assert_eq!(
            SavedTable::decode(b"d2:id20:abcdefghij01234567895:nodes3:abce"),
            Err(SavedTableError::Bad("nodes"))
        );
        assert!(SavedTable::decode(&vec![b'd'; MAX_SAVED_LEN + 1]).is_err());
    }
}
