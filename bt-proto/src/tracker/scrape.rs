//! HTTP scrape (BEP 48): the scrape URL derived from an announce URL, the request query with
//! several info-hashes, and the bencoded reply both ways.
//!
//! ```
//! use bt_proto::InfoHash;
//! use bt_proto::tracker::scrape::{scrape_request_url, scrape_url};
//!
//! let url = scrape_url("http://t.example/x/announce.php?passkey=1").unwrap();
//! assert_eq!(url, "http://t.example/x/scrape.php?passkey=1");
//! let full = scrape_request_url(&url, &[InfoHash([0xaa; 20])]);
//! assert!(full.starts_with("http://t.example/x/scrape.php?passkey=1&info_hash=%AA%AA"));
//! assert_eq!(scrape_url("http://t.example/tracker"), None);
//! ```

use std::collections::BTreeMap;

use super::announce::{
    FieldProblem, QueryError, ReplyError, append_query, check_failure, decode_reply_dict, opt_u32,
    query_pairs,
};
use crate::InfoHash;
use crate::bencode::Bencode;
use crate::encoding::percent::{encode_into, is_unreserved};

/// Swarm counts for one torrent (HTTP keys in brackets, UDP fields in the same order as BEP 15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScrapeStats {
    /// Peers with the whole torrent (`complete`).
    pub seeders: u32,
    /// Times the torrent was downloaded to the end (`downloaded`).
    pub completed: u32,
    /// Peers still downloading (`incomplete`).
    pub leechers: u32,
}

/// The scrape URL for an announce URL (BEP 48): when the last path segment starts with
/// `announce`, that word becomes `scrape` and everything else stays. `None` when there is no
/// such segment (the tracker does not support scrape) or the URL is not `http(s)`.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let scheme_len = ["http://", "https://"].iter().find_map(|scheme| {
        let head = announce_url.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then_some(scheme.len())
    })?;
    // The query may itself contain `/`; only the path counts.
    let path_end = announce_url.find(['?', '#']).unwrap_or(announce_url.len());
    let before_query = announce_url.get(..path_end)?;
    let slash = before_query.rfind('/')?;
    if slash < scheme_len {
        return None;
    }
    let last = before_query.get(slash + 1..)?;
    let rest = last.strip_prefix("announce")?;
    let tail = announce_url.get(path_end..)?;
    let mut out = String::with_capacity(announce_url.len());
    out.push_str(before_query.get(..=slash)?);
    out.push_str("scrape");
    out.push_str(rest);
    out.push_str(tail);
    Some(out)
}

/// The scrape request URL: `scrape_url` (which may carry a query) followed by one
/// `info_hash=` parameter per torrent.
pub fn scrape_request_url(scrape_url: &str, info_hashes: &[InfoHash]) -> String {
    let mut q = String::with_capacity(info_hashes.len() * 71);
    for (i, h) in info_hashes.iter().enumerate() {
        if i > 0 {
            q.push('&');
        }
        q.push_str("info_hash=");
        encode_into(h.as_bytes(), is_unreserved, &mut q);
    }
    append_query(scrape_url, &q)
}

/// The info-hashes of a scrape query, as a tracker receives it (the part after `?`), in
/// order. Other parameters are ignored; no `info_hash` at all is an empty list (a full scrape).
pub fn parse_scrape_query(query: &str) -> Result<Vec<InfoHash>, QueryError> {
    query_pairs(query)?
        .into_iter()
        .filter(|(name, _)| *name == "info_hash")
        .map(|(_, raw)| {
            <[u8; 20]>::try_from(raw.as_slice())
                .map(InfoHash)
                .map_err(|_| QueryError::Invalid {
                    param: "info_hash",
                    value: String::from_utf8_lossy(&raw).into_owned(),
                })
        })
        .collect()
}

/// A scrape reply: counts per torrent.
///
/// ```
/// use bt_proto::InfoHash;
/// use bt_proto::tracker::{ScrapeResponse, ScrapeStats};
///
/// let mut reply = ScrapeResponse::default();
/// reply.files.insert(InfoHash([1; 20]), ScrapeStats { seeders: 2, completed: 9, leechers: 3 });
/// assert_eq!(ScrapeResponse::decode(&reply.encode()), Ok(reply));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// The `files` dictionary, keyed by info-hash.
    pub files: BTreeMap<InfoHash, ScrapeStats>,
}

impl ScrapeResponse {
    /// Parses a reply body. A `failure reason` gives [`ReplyError::Failure`]; a `files` key
    /// that is not 20 bytes is an error; a missing count is 0 (some trackers omit
    /// `downloaded`); a missing `files` is an empty reply.
    pub fn decode(body: &[u8]) -> Result<Self, ReplyError> {
        let dict = decode_reply_dict(body)?;
        check_failure(&dict)?;
        let mut files = BTreeMap::new();
        let Some(files_v) = dict.get(b"files") else {
            return Ok(ScrapeResponse { files });
        };
        let entries = files_v.as_dict().ok_or(ReplyError::Field {
            field: "files",
            offset: files_v.offset(),
            problem: FieldProblem::WrongType("a dictionary"),
        })?;
        for (key, stats_v) in entries {
            // The key's own offset is not kept by the decoder; its value's is the nearest.
            let hash = <[u8; 20]>::try_from(*key).map_err(|_| ReplyError::Field {
                field: "files",
                offset: stats_v.offset(),
                problem: FieldProblem::WrongLength {
                    found: key.len(),
                    expected: 20,
                },
            })?;
            if stats_v.as_dict().is_none() {
                return Err(ReplyError::Field {
                    field: "files",
                    offset: stats_v.offset(),
                    problem: FieldProblem::WrongType("a dictionary"),
                });
            }
            let stats = ScrapeStats {
                seeders: opt_u32(stats_v, "complete")?.unwrap_or(0),
                completed: opt_u32(stats_v, "downloaded")?.unwrap_or(0),
                leechers: opt_u32(stats_v, "incomplete")?.unwrap_or(0),
            };
            files.insert(InfoHash(hash), stats);
        }
        Ok(ScrapeResponse { files })
    }

    /// The bencoded reply, as a tracker sends it.
    pub fn encode(&self) -> Vec<u8> {
        let mut files = Bencode::dict();
        for (hash, s) in &self.files {
            files.insert(
                hash.as_bytes(),
                Bencode::dict()
                    .with("complete", s.seeders)
                    .with("downloaded", s.completed)
                    .with("incomplete", s.leechers),
            );
        }
        Bencode::dict().with("files", files).encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::TrackerFailure;
    use proptest::prelude::*;

    #[test]
    fn scrape_url_derivation() {
        let cases = [
            ("http://t.example/announce", Some("http://t.example/scrape")),
            (
                "http://t.example:6969/x/announce",
                Some("http://t.example:6969/x/scrape"),
            ),
            (
                "http://t.example/announce.php",
                Some("http://t.example/scrape.php"),
            ),
            (
                "http://t.example/announce?k=a/announce",
                Some("http://t.example/scrape?k=a/announce"),
            ),
            (
                "HTTPS://t.example/announce#f",
                Some("HTTPS://t.example/scrape#f"),
            ),
            ("http://t.example/a", None),
            ("http://t.example/announce/x", None),
            ("http://t.example/x%064announce", None),
            ("http://announce", None),
            ("http://t.example/?announce", None),
            ("udp://t.example:80/announce", None),
            ("", None),
        ];
        for (announce, want) in cases {
            assert_eq!(scrape_url(announce).as_deref(), want, "{announce}");
        }
    }

    #[test]
    fn request_url_with_several_hashes() {
        let url = scrape_request_url(
            "http://t.example/scrape?passkey=z",
            &[InfoHash([0x01; 20]), InfoHash([b'a'; 20])],
        );
        let first = "%01".repeat(20);
        let second = "a".repeat(20);
        assert_eq!(
            url,
            format!("http://t.example/scrape?passkey=z&info_hash={first}&info_hash={second}")
        );
        let query = url.split_once('?').unwrap().1;
        assert_eq!(
            parse_scrape_query(query),
            Ok(vec![InfoHash([0x01; 20]), InfoHash([b'a'; 20])])
        );
        assert!(matches!(
            parse_scrape_query("info_hash=abc"),
            Err(QueryError::Invalid {
                param: "info_hash",
                ..
            })
        ));
    }

    #[test]
    fn reply_parse() {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[7; 20]);
        body.extend_from_slice(
            b"d8:completei5e10:downloadedi50e10:incompletei10e4:name1:xee5:flagsdee",
        );
        let r = ScrapeResponse::decode(&body).unwrap();
        assert_eq!(
            r.files.get(&InfoHash([7; 20])),
            Some(&ScrapeStats {
                seeders: 5,
                completed: 50,
                leechers: 10
            })
        );
        assert_eq!(r.files.len(), 1);
    }

    #[test]
    fn reply_rejects() {
        assert!(matches!(
            ScrapeResponse::decode(b"d5:filesd3:abcdeee"),
            Err(ReplyError::Field {
                field: "files",
                problem: FieldProblem::WrongLength {
                    found: 3,
                    expected: 20
                },
                ..
            })
        ));
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[7; 20]);
        body.extend_from_slice(b"d8:completei-5eeee");
        assert!(matches!(
            ScrapeResponse::decode(&body),
            Err(ReplyError::Field {
                field: "complete",
                ..
            })
        ));
        assert!(matches!(
            ScrapeResponse::decode(b"d5:filesi1ee"),
            Err(ReplyError::Field {
                field: "files",
                problem: FieldProblem::WrongType(_),
                ..
            })
        ));
        assert_eq!(
            ScrapeResponse::decode(b"d14:failure reason3:no!e"),
            Err(ReplyError::Failure(TrackerFailure {
                reason: "no!".into()
            }))
        );
        assert_eq!(ScrapeResponse::decode(b"de"), Ok(ScrapeResponse::default()));
    }

    proptest! {
        #[test]
        fn reply_round_trip(files in proptest::collection::btree_map(
            any::<[u8; 20]>().prop_map(InfoHash),
            any::<(u32, u32, u32)>().prop_map(|(s, c, l)| ScrapeStats { seeders: s, completed: c, leechers: l }),
            0..20,
        )) {
            let r = ScrapeResponse { files };
            prop_assert_eq!(ScrapeResponse::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn query_round_trip(hashes in proptest::collection::vec(any::<[u8; 20]>().prop_map(InfoHash), 0..10)) {
            let url = scrape_request_url("http://t/scrape", &hashes);
            let query = url.split_once('?').map_or("", |(_, q)| q);
            prop_assert_eq!(parse_scrape_query(query), Ok(hashes));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), s in ".{0,100}") {
            let _ = ScrapeResponse::decode(&bytes);
            let _ = scrape_url(&s);
            let _ = parse_scrape_query(&s);
        }
    }
}
