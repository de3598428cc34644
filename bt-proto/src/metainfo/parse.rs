//! Decoding and validating a `.torrent` into a [`Metainfo`]; the rules are listed in the
//! parent module's documentation.

use super::path::{self, FilePath};
use super::piece_map::{LayoutError, PieceMap};
use super::{FileAttr, FileEntry, MAX_FILES, MAX_TORRENT_SIZE, Metainfo, MetainfoError};
use crate::bencode::{self, Value};
use crate::tracker::MAX_TRACKER_URLS;
use crate::{InfoHash, sha1};
use std::collections::HashSet;

fn missing(field: impl Into<String>) -> MetainfoError {
    MetainfoError::Missing {
        field: field.into(),
    }
}

fn wrong_type(field: impl Into<String>, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        field: field.into(),
        expected,
    }
}

pub(super) fn parse_torrent(input: &[u8]) -> Result<Metainfo, MetainfoError> {
    check_size(input)?;
    let root = bencode::decode(input).map_err(MetainfoError::Bencode)?;
    if root.as_dict().is_none() {
        return Err(wrong_type("(top level)", "a dictionary"));
    }
    let info = root.get(b"info").ok_or_else(|| missing("info"))?;
    let mut m = parse_info(info)?;
    m.trackers = trackers(&root);
    m.url_list = url_list(&root);
    m.comment = text(&root, b"comment.utf-8").or_else(|| text(&root, b"comment"));
    m.created_by = text(&root, b"created by");
    m.creation_date = root.get(b"creation date").and_then(Value::as_int);
    Ok(m)
}

pub(super) fn parse_info_only(info: &[u8]) -> Result<Metainfo, MetainfoError> {
    check_size(info)?;
    let info = bencode::decode(info).map_err(MetainfoError::Bencode)?;
    parse_info(&info)
}

fn check_size(input: &[u8]) -> Result<(), MetainfoError> {
    if input.len() > MAX_TORRENT_SIZE {
        return Err(MetainfoError::TooLarge {
            size: input.len(),
            max: MAX_TORRENT_SIZE,
        });
    }
    Ok(())
}

/// Text of an optional field outside `info`: dropped if not a string, lossy if not UTF-8.
fn text(dict: &Value<'_>, key: &[u8]) -> Option<String> {
    dict.get(key)
        .and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// BEP 12 tiers, or `announce` as the one tier when there is no usable `announce-list`; at
/// most [`MAX_TRACKER_URLS`], the first ones in file order.
fn trackers(root: &Value<'_>) -> Vec<Vec<String>> {
    /// A URL not seen before, trimmed; `None` for anything else.
    /// (A set, not a list: a crafted torrent may list a million URLs.)
    fn take<'a>(url: &Value<'a>, seen: &mut HashSet<&'a str>) -> Option<String> {
        let url = url.as_str()?.trim();
        (!url.is_empty() && seen.insert(url)).then(|| url.to_owned())
    }
    let mut seen = HashSet::new();
    let mut tiers = Vec::new();
    for tier in root
        .get(b"announce-list")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        let room = MAX_TRACKER_URLS.saturating_sub(seen.len());
        let mut urls: Vec<String> = tier
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|u| take(u, &mut seen))
            .take(room)
            .collect();
        if !urls.is_empty() {
            urls.shrink_to_fit();
            tiers.push(urls);
        }
        if seen.len() >= MAX_TRACKER_URLS {
            break;
        }
    }
    if tiers.is_empty()
        && let Some(url) = root.get(b"announce").and_then(|u| take(u, &mut seen))
    {
        tiers.push(vec![url]);
    }
    // Kept for the torrent's life, in each of thousands of torrents: no room for growth.
    tiers.shrink_to_fit();
    tiers
}

/// BEP 19 web seeds: one string or a list of strings.
fn url_list(root: &Value<'_>) -> Vec<String> {
    let Some(v) = root.get(b"url-list") else {
        return Vec::new();
    };
    let one = v.as_str().map(|s| vec![s]);
    let many = || {
        v.as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect()
    };
    let mut seen = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for url in one.unwrap_or_else(many) {
        let url = url.trim();
        if !url.is_empty() && seen.insert(url) {
            out.push(url.to_owned());
        }
    }
    out
}

/// Where a field sits, so its name (`info.files[3].length`) is only formatted for an error.
#[derive(Clone, Copy)]
enum Scope {
    Info,
    File(usize),
}

impl Scope {
    fn field(self, key: &str) -> String {
        match self {
            Scope::Info => format!("info.{key}"),
            Scope::File(i) => format!("info.files[{i}].{key}"),
        }
    }
}

fn int(dict: &Value<'_>, key: &str, scope: Scope) -> Result<Option<i64>, MetainfoError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v
            .as_int()
            .map(Some)
            .ok_or_else(|| wrong_type(scope.field(key), "an integer")),
    }
}

/// A file length: a non-negative integer.
fn length(dict: &Value<'_>, scope: Scope) -> Result<u64, MetainfoError> {
    let value = int(dict, "length", scope)?.ok_or_else(|| missing(scope.field("length")))?;
    u64::try_from(value).map_err(|_| MetainfoError::NegativeLength {
        field: scope.field("length"),
        value,
    })
}

fn attr(dict: &Value<'_>, scope: Scope) -> Result<FileAttr, MetainfoError> {
    match dict.get(b"attr") {
        None => Ok(FileAttr::default()),
        Some(v) => v
            .as_bytes()
            .map(FileAttr::from_letters)
            .ok_or_else(|| wrong_type(scope.field("attr"), "a string")),
    }
}

/// `name.utf-8` when it is valid UTF-8, else `name` decoded lossily, else `None`.
fn name(info: &Value<'_>) -> Result<Option<String>, MetainfoError> {
    if let Some(s) = info.get(b"name.utf-8").and_then(Value::as_str) {
        return Ok(Some(s.to_owned()));
    }
    match info.get(b"name") {
        None => Ok(None),
        Some(v) => v
            .as_bytes()
            .map(|b| Some(String::from_utf8_lossy(b).into_owned()))
            .ok_or_else(|| wrong_type("info.name", "a string")),
    }
}

/// A file's components: `path.utf-8` when it is a list of UTF-8 strings, else `path`
/// decoded lossily.
fn components(file: &Value<'_>, scope: Scope) -> Result<Vec<String>, MetainfoError> {
    let field = || scope.field("path");
    if let Some(list) = file.get(b"path.utf-8").and_then(Value::as_list) {
        let utf8: Option<Vec<String>> =
            list.iter().map(|c| c.as_str().map(str::to_owned)).collect();
        if let Some(c) = utf8 {
            return Ok(c);
        }
    }
    let list = file
        .get(b"path")
        .ok_or_else(|| missing(field()))?
        .as_list()
        .ok_or_else(|| wrong_type(field(), "a list of strings"))?;
    list.iter()
        .map(|c| {
            c.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| wrong_type(field(), "a list of strings"))
        })
        .collect()
}

fn unsafe_path(field: &str, components: &[String], reason: path::PathError) -> MetainfoError {
    MetainfoError::UnsafePath {
        field: field.to_owned(),
        path: components.join("/"),
        reason,
    }
}

fn parse_info(info: &Value<'_>) -> Result<Metainfo, MetainfoError> {
    if info.as_dict().is_none() {
        return Err(wrong_type("info", "a dictionary"));
    }
    info.check_canonical()
        .map_err(MetainfoError::InfoNotCanonical)?;
    let info_hash = InfoHash(sha1(info.raw()));

    let piece_length =
        int(info, "piece length", Scope::Info)?.ok_or_else(|| missing("info.piece length"))?;
    let piece_length = u32::try_from(piece_length)
        .ok()
        .filter(|&l| l > 0 && l <= super::MAX_PIECE_LENGTH)
        .ok_or(MetainfoError::InvalidPieceLength {
            value: piece_length,
        })?;

    let pieces = info
        .get(b"pieces")
        .ok_or_else(|| missing("info.pieces"))?
        .as_bytes()
        .ok_or_else(|| wrong_type("info.pieces", "a string"))?;
    if !pieces.len().is_multiple_of(20) {
        return Err(MetainfoError::PiecesNotMultipleOf20 { len: pieces.len() });
    }

    let private = int(info, "private", Scope::Info)? == Some(1);

    let name = name(info)?.unwrap_or_else(|| info_hash.to_string());
    path::check_component(&name)
        .map_err(|reason| unsafe_path("info.name", std::slice::from_ref(&name), reason))?;

    let files = match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
        (None, None) => return Err(missing("info.length or info.files")),
        (Some(_), None) => vec![FileEntry {
            path: FilePath::new([name.clone()])
                .map_err(|reason| unsafe_path("info.name", std::slice::from_ref(&name), reason))?,
            length: length(info, Scope::Info)?,
            offset: 0,
            attr: attr(info, Scope::Info)?,
        }],
        (None, Some(list)) => multi_files(list, &name)?,
    };
    let single_file = info.get(b"length").is_some();

    let map = PieceMap::new(
        piece_length,
        files.iter().map(|f| (f.length, f.is_padding())),
    )
    .map_err(|e| match e {
        LayoutError::InvalidPieceLength(_) => MetainfoError::InvalidPieceLength {
            value: i64::from(piece_length),
        },
        LayoutError::TooLarge => MetainfoError::TotalTooLarge,
        LayoutError::Empty => MetainfoError::EmptyTorrent,
        LayoutError::TooManyPieces(count) => MetainfoError::TooManyPieces { count },
    })?;
    let found = (pieces.len() / 20) as u64;
    let expected = u64::from(map.piece_count());
    if found != expected {
        return Err(MetainfoError::PieceCountMismatch { expected, found });
    }

    path::check_unique(files.iter().filter(|f| !f.is_padding()).map(|f| &f.path))
        .map_err(MetainfoError::PathClash)?;

    // `pieces` is a slice of the info dictionary's bytes (the parser borrows, never
    // copies): its place there is where its address lies from the dictionary's.
    let raw = info.raw();
    let at = (pieces.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let pieces_at = at..at.saturating_add(pieces.len());
    if raw.get(pieces_at.clone()) != Some(pieces) {
        return Err(missing("info.pieces"));
    }
    Ok(Metainfo {
        info_hash,
        info_bytes: raw.to_vec(),
        name,
        single_file,
        pieces: pieces_at,
        files,
        map,
        private,
        trackers: Vec::new(),
        url_list: Vec::new(),
        comment: None,
        created_by: None,
        creation_date: None,
    })
}

fn multi_files(list: &Value<'_>, name: &str) -> Result<Vec<FileEntry>, MetainfoError> {
    let list = list
        .as_list()
        .ok_or_else(|| wrong_type("info.files", "a list"))?;
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    if list.len() > MAX_FILES {
        return Err(MetainfoError::TooManyFiles { count: list.len() });
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    for (i, file) in list.iter().enumerate() {
        if file.as_dict().is_none() {
            return Err(wrong_type(format!("info.files[{i}]"), "a dictionary"));
        }
        let scope = Scope::File(i);
        let length = length(file, scope)?;
        let comps = components(file, scope)?;
        // Checked here first so the error can show the components as found.
        if let Err(reason) = comps.iter().try_for_each(|c| path::check_component(c)) {
            return Err(unsafe_path(&scope.field("path"), &comps, reason));
        }
        let path = FilePath::new(comps)
            .map_err(|reason| MetainfoError::UnsafePath {
                field: scope.field("path"),
                path: String::new(),
                reason,
            })?
            .under(name);
        let attr = attr(file, scope)?;
        files.push(FileEntry {
            path,
            length,
            offset,
            attr,
        });
        // Overflow is reported by the piece map with the whole layout; saturate until then.
        offset = offset.saturating_add(length);
    }
    // Kept for the torrent's life, in each of thousands of torrents: no room for growth.
    files.shrink_to_fit();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::super::path::{PathClash, PathError};
    use super::*;
    use crate::PieceIndex;
    use crate::bencode::{Bencode, DecodeErrorKind};
    use proptest::prelude::*;

    fn hashes(n: usize) -> Vec<u8> {
        (0..n * 20).map(|i| i as u8).collect()
    }

    fn file(len: i64, path: &[&str]) -> Bencode {
        Bencode::dict().with("length", len).with(
            "path",
            path.iter()
                .map(|c| Bencode::from(*c))
                .collect::<Vec<Bencode>>(),
        )
    }

    fn multi(files: Vec<Bencode>, piece_len: i64, pieces: usize) -> Bencode {
        Bencode::dict()
            .with("name", "dir")
            .with("piece length", piece_len)
            .with("pieces", hashes(pieces))
            .with("files", files)
    }

    fn single(len: i64, piece_len: i64, pieces: usize) -> Bencode {
        Bencode::dict()
            .with("name", "file.bin")
            .with("piece length", piece_len)
            .with("pieces", hashes(pieces))
            .with("length", len)
    }

    fn torrent(info: Bencode) -> Vec<u8> {
        Bencode::dict()
            .with("announce", "http://tracker.example/announce")
            .with("info", info)
            .encode()
    }

    fn parse(info: Bencode) -> Result<Metainfo, MetainfoError> {
        Metainfo::from_bytes(&torrent(info))
    }

    #[test]
    fn single_file_fields() {
        let bytes = Bencode::dict()
            .with("announce", "http://a/announce")
            .with("comment", "hi")
            .with("created by", "bt")
            .with("creation date", 1_700_000_000)
            .with("url-list", "http://seed/file.bin")
            .with("info", single(40_000, 16384, 3).with("private", 1))
            .encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.name(), "file.bin");
        assert!(m.is_single_file());
        assert_eq!(m.size(), 40_000);
        assert_eq!(m.piece_count(), 3);
        assert_eq!(m.last_piece_length(), 40_000 - 32768);
        assert_eq!(m.trackers(), [vec!["http://a/announce".to_owned()]]);
        assert_eq!(m.url_list(), ["http://seed/file.bin"]);
        assert!(m.is_private());
        assert_eq!(m.comment(), Some("hi"));
        assert_eq!(m.created_by(), Some("bt"));
        assert_eq!(m.creation_date(), Some(1_700_000_000));
        assert_eq!(m.files().len(), 1);
        assert_eq!(m.files()[0].path.to_string(), "file.bin");
        assert_eq!(m.piece_hash(PieceIndex(1)).unwrap().0[0], 20);
        assert_eq!(m.piece_hash(PieceIndex(3)), None);
        // The info-hash is over the info bytes as they are in the file.
        let info_start = bytes.windows(6).position(|w| w == b"4:info").unwrap() + 6;
        let info_end = info_start + m.info_bytes().len();
        assert_eq!(m.info_bytes(), &bytes[info_start..info_end]);
        assert!(bytes[info_end..].starts_with(b"8:url-list"));
        assert_eq!(m.info_hash(), InfoHash(sha1(m.info_bytes())));
        let again = Metainfo::from_info_bytes(m.info_bytes()).unwrap();
        assert_eq!(again.info_hash(), m.info_hash());
        assert!(again.trackers().is_empty());
    }

    #[test]
    fn multi_file_paths_offsets_and_utf8_preference() {
        let info = multi(
            vec![
                file(5, &["a", "x.txt"]),
                file(0, &["empty"]),
                file(7, &["b"]).with("path.utf-8", vec![Bencode::from("bé")]),
            ],
            4,
            3,
        )
        .with("name", "raw\u{ff}")
        .with("name.utf-8", "nom");
        let m = parse(info).unwrap();
        assert!(!m.is_single_file());
        assert_eq!(m.name(), "nom");
        let paths: Vec<String> = m.files().iter().map(|f| f.path.to_string()).collect();
        assert_eq!(paths, ["nom/a/x.txt", "nom/empty", "nom/bé"]);
        let offsets: Vec<u64> = m.files().iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [0, 5, 5]);
        assert_eq!(m.size(), 12);
    }

    #[test]
    fn non_utf8_names_are_decoded_lossily() {
        let info = single(1, 16384, 1).with("name", &b"caf\xe9"[..]);
        assert_eq!(parse(info).unwrap().name(), "caf\u{fffd}");
    }

    #[test]
    fn missing_name_falls_back_to_info_hash() {
        let mut info = single(1, 16384, 1);
        if let Bencode::Dict(d) = &mut info {
            d.remove(&b"name"[..]);
        }
        let m = parse(info).unwrap();
        assert_eq!(m.name(), m.info_hash().to_string());
    }

    #[test]
    fn tracker_urls_are_capped_in_file_order() {
        // 1000 tiers of three new URLs and one repeated from the tier before (or itself).
        let list: Vec<Bencode> = (0..1000u32)
            .map(|t| {
                let urls = [t, t + 1000, t + 2000, t.saturating_sub(1)];
                Bencode::from(
                    urls.iter()
                        .map(|u| Bencode::from(format!("udp://t{u}:1")))
                        .collect::<Vec<Bencode>>(),
                )
            })
            .collect();
        let bytes = Bencode::dict()
            .with("announce-list", list)
            .with("info", single(1, 16384, 1))
            .encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let kept: Vec<&String> = m.trackers().iter().flatten().collect();
        assert_eq!(kept.len(), MAX_TRACKER_URLS);
        assert_eq!(kept.iter().collect::<HashSet<_>>().len(), kept.len());
        // Whole tiers in file order, then the start of the tier that reaches the cap.
        let whole = MAX_TRACKER_URLS / 3;
        assert_eq!(m.trackers().len(), whole + 1);
        assert_eq!(
            m.trackers()[1],
            ["udp://t1:1", "udp://t1001:1", "udp://t2001:1"]
        );
        assert_eq!(m.trackers()[whole], [format!("udp://t{whole}:1")]);
    }

    #[test]
    fn announce_list_takes_precedence_and_is_cleaned() {
        let tiers = |t: &[&[&str]]| -> Bencode {
            t.iter()
                .map(|tier| {
                    Bencode::from(
                        tier.iter()
                            .map(|u| Bencode::from(*u))
                            .collect::<Vec<Bencode>>(),
                    )
                })
                .collect::<Vec<Bencode>>()
                .into()
        };
        let bytes = Bencode::dict()
            .with("announce", "http://ignored/announce")
            .with(
                "announce-list",
                tiers(&[
                    &["udp://a:1", "udp://b:2"],
                    &[],
                    &["udp://a:1", " "],
                    &["http://c/"],
                ]),
            )
            .with("info", single(1, 16384, 1))
            .encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(
            m.trackers(),
            [
                vec!["udp://a:1".to_owned(), "udp://b:2".to_owned()],
                vec!["http://c/".to_owned()]
            ]
        );
        // An announce-list with no URL falls back to announce.
        let bytes = Bencode::dict()
            .with("announce", "http://a/")
            .with("announce-list", tiers(&[&[]]))
            .with("info", single(1, 16384, 1))
            .encode();
        assert_eq!(
            Metainfo::from_bytes(&bytes).unwrap().trackers(),
            [vec!["http://a/".to_owned()]]
        );
    }

    #[test]
    fn malformed_optional_fields_outside_info_are_dropped() {
        let bytes = Bencode::dict()
            .with("announce", 5)
            .with("announce-list", "not a list")
            .with(
                "url-list",
                vec![Bencode::from("http://w/"), Bencode::from(3)],
            )
            .with("comment", vec![Bencode::from(1)])
            .with("creation date", "yesterday")
            .with("info", single(1, 16384, 1))
            .encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert!(m.trackers().is_empty());
        assert_eq!(m.url_list(), ["http://w/"]);
        assert_eq!(m.comment(), None);
        assert_eq!(m.creation_date(), None);
    }

    #[test]
    fn private_only_for_one() {
        for (v, want) in [(0, false), (1, true), (2, false)] {
            assert_eq!(
                parse(single(1, 16384, 1).with("private", v))
                    .unwrap()
                    .is_private(),
                want
            );
        }
        assert_eq!(
            parse(single(1, 16384, 1).with("private", "1")).unwrap_err(),
            wrong_type("info.private", "an integer")
        );
    }

    #[test]
    fn padding_files_are_flagged_and_exempt_from_clash_checks() {
        let pad = |len| file(len, &[".pad", "3"]).with("attr", "p");
        let info = multi(
            vec![
                file(5, &["a"]),
                pad(3),
                file(5, &["b"]).with("attr", "xh"),
                pad(3),
                file(1, &["c"]),
            ],
            8,
            3,
        );
        let m = parse(info).unwrap();
        let flags: Vec<bool> = m.files().iter().map(FileEntry::is_padding).collect();
        assert_eq!(flags, [false, true, false, true, false]);
        assert!(m.files()[2].attr.executable && m.files()[2].attr.hidden);
        assert_eq!(m.size(), 17);
        assert_eq!(m.content_size(), 11);
        let seg: Vec<_> = m
            .piece_map()
            .piece_segments(PieceIndex(0))
            .unwrap()
            .collect();
        assert!(seg[1].padding && !seg[0].padding);
    }

    // ---- hostile torrents: each rejected with its typed error ----

    #[test]
    fn path_traversal_forms_rejected() {
        let cases: &[(&[&str], PathError)] = &[
            (
                &["..", "etc", "passwd"],
                PathError::DotComponent("..".into()),
            ),
            (&["a", ".", "b"], PathError::DotComponent(".".into())),
            (&["a", ""], PathError::Empty),
            (&["/etc/passwd"], PathError::Separator('/')),
            (&["a/../../b"], PathError::Separator('/')),
            (&["..\\..\\windows"], PathError::Separator('\\')),
            (&["C:", "windows"], PathError::Colon),
            (&["C:\\windows"], PathError::Colon),
            (&["x\0y"], PathError::Nul),
            (&["bell\x07"], PathError::ControlChar(7)),
            (&["CON"], PathError::ReservedName("CON".into())),
            (&["com1.txt"], PathError::ReservedName("com1.txt".into())),
            (
                &["trailing."],
                PathError::TrailingDotOrSpace("trailing.".into()),
            ),
            (
                &["trailing "],
                PathError::TrailingDotOrSpace("trailing ".into()),
            ),
            (&[], PathError::NoComponents),
        ];
        for (path, reason) in cases {
            let err = parse(multi(vec![file(1, path)], 16384, 1)).unwrap_err();
            match err {
                MetainfoError::UnsafePath {
                    field, reason: r, ..
                } => {
                    assert_eq!(field, "info.files[0].path");
                    assert_eq!(&r, reason, "{path:?}");
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
        // The same rules apply to path.utf-8, which is preferred.
        let info = multi(
            vec![file(1, &["ok"]).with("path.utf-8", vec![Bencode::from("..")])],
            16384,
            1,
        );
        assert!(matches!(
            parse(info).unwrap_err(),
            MetainfoError::UnsafePath {
                reason: PathError::DotComponent(_),
                ..
            }
        ));
        // And to the name.
        for name in ["..", "a/b", "", "/", "C:"] {
            assert!(
                matches!(
                    parse(single(1, 16384, 1).with("name", name)).unwrap_err(),
                    MetainfoError::UnsafePath { ref field, .. } if field == "info.name"
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn duplicate_and_nested_paths_rejected() {
        let err = parse(multi(vec![file(1, &["a"]), file(1, &["a"])], 16384, 1)).unwrap_err();
        assert!(matches!(
            err,
            MetainfoError::PathClash(PathClash::Duplicate(_))
        ));
        let err = parse(multi(vec![file(1, &["a"]), file(1, &["a", "b"])], 16384, 1)).unwrap_err();
        assert!(matches!(
            err,
            MetainfoError::PathClash(PathClash::FileIsDirectory { .. })
        ));
    }

    #[test]
    fn sizes_rejected() {
        use MetainfoError::*;
        assert_eq!(
            parse(single(-1, 16384, 1)).unwrap_err(),
            NegativeLength {
                field: "info.length".into(),
                value: -1
            }
        );
        assert_eq!(
            parse(multi(vec![file(1, &["a"]), file(-5, &["b"])], 16384, 1)).unwrap_err(),
            NegativeLength {
                field: "info.files[1].length".into(),
                value: -5
            }
        );
        assert_eq!(
            parse(single(1 << 62, 1 << 20, 1)).unwrap_err(),
            TotalTooLarge
        );
        assert_eq!(
            parse(multi(
                vec![file(i64::MAX, &["a"]), file(i64::MAX, &["b"])],
                1 << 20,
                1
            ))
            .unwrap_err(),
            TotalTooLarge
        );
        assert_eq!(parse(single(0, 16384, 0)).unwrap_err(), EmptyTorrent);
        assert_eq!(
            parse(multi(vec![file(0, &["a"]), file(0, &["b"])], 16384, 0)).unwrap_err(),
            EmptyTorrent
        );
        assert_eq!(parse(multi(vec![], 16384, 0)).unwrap_err(), NoFiles);
        // 2^40 bytes in 1-byte pieces: more pieces than a u32 counts.
        assert_eq!(
            parse(single(1 << 40, 1, 0)).unwrap_err(),
            TooManyPieces { count: 1 << 40 }
        );
    }

    #[test]
    fn piece_fields_rejected() {
        use MetainfoError::*;
        assert_eq!(
            parse(single(40_000, 16384, 2)).unwrap_err(),
            PieceCountMismatch {
                expected: 3,
                found: 2
            }
        );
        assert_eq!(
            parse(single(40_000, 16384, 4)).unwrap_err(),
            PieceCountMismatch {
                expected: 3,
                found: 4
            }
        );
        assert_eq!(
            parse(single(1, 16384, 1).with("pieces", vec![0u8; 21])).unwrap_err(),
            PiecesNotMultipleOf20 { len: 21 }
        );
        for bad in [
            0,
            -16384,
            i64::from(super::super::MAX_PIECE_LENGTH) + 1,
            i64::MAX,
        ] {
            assert_eq!(
                parse(single(1, bad, 1)).unwrap_err(),
                InvalidPieceLength { value: bad }
            );
        }
        // Any positive length is allowed, power of two or not.
        assert_eq!(parse(single(100, 30, 4)).unwrap().piece_count(), 4);
    }

    #[test]
    fn structure_rejected() {
        use MetainfoError::{BothLengthAndFiles, TooLarge};
        assert_eq!(
            Metainfo::from_bytes(b"le").unwrap_err(),
            wrong_type("(top level)", "a dictionary")
        );
        assert_eq!(Metainfo::from_bytes(b"de").unwrap_err(), missing("info"));
        assert_eq!(
            Metainfo::from_bytes(b"d4:infoi1ee").unwrap_err(),
            wrong_type("info", "a dictionary")
        );
        let mut no_pieces = single(1, 16384, 1);
        if let Bencode::Dict(d) = &mut no_pieces {
            d.remove(&b"pieces"[..]);
        }
        assert_eq!(parse(no_pieces).unwrap_err(), missing("info.pieces"));
        let mut no_layout = single(1, 16384, 1);
        if let Bencode::Dict(d) = &mut no_layout {
            d.remove(&b"length"[..]);
        }
        assert_eq!(
            parse(no_layout).unwrap_err(),
            missing("info.length or info.files")
        );
        assert_eq!(
            parse(single(1, 16384, 1).with("files", vec![file(1, &["a"])])).unwrap_err(),
            BothLengthAndFiles
        );
        assert_eq!(
            parse(single(1, 16384, 1).with("piece length", "16384")).unwrap_err(),
            wrong_type("info.piece length", "an integer")
        );
        assert_eq!(
            parse(single(1, 16384, 1).with("name", 7)).unwrap_err(),
            wrong_type("info.name", "a string")
        );
        assert_eq!(
            parse(multi(vec![Bencode::from(1)], 16384, 1)).unwrap_err(),
            wrong_type("info.files[0]", "a dictionary")
        );
        assert_eq!(
            parse(multi(vec![file(1, &["a"]).with("path", 3)], 16384, 1)).unwrap_err(),
            wrong_type("info.files[0].path", "a list of strings")
        );
        assert_eq!(
            parse(multi(vec![Bencode::dict().with("length", 1)], 16384, 1)).unwrap_err(),
            missing("info.files[0].path")
        );
        assert!(matches!(
            Metainfo::from_bytes(b"d4:infod4:name1:ae").unwrap_err(),
            MetainfoError::Bencode(_)
        ));
        assert!(matches!(
            Metainfo::from_bytes(&vec![b'x'; MAX_TORRENT_SIZE + 1]).unwrap_err(),
            TooLarge { .. }
        ));
    }

    #[test]
    fn unsorted_info_keys_rejected_but_unsorted_top_level_allowed() {
        let info = b"d6:lengthi1e4:name1:a6:pieces20:aaaaaaaaaaaaaaaaaaaa12:piece lengthi16384ee";
        let mut bytes = b"d4:info".to_vec();
        bytes.extend_from_slice(info);
        bytes.push(b'e');
        assert!(matches!(
            Metainfo::from_bytes(&bytes).unwrap_err(),
            MetainfoError::InfoNotCanonical(e) if e.kind == DecodeErrorKind::UnsortedKey
        ));
        let sorted = b"d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let mut bytes = b"d4:info".to_vec();
        bytes.extend_from_slice(sorted);
        bytes.extend_from_slice(b"8:announce3:urle");
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info_bytes(), sorted);
        // Duplicate keys are already refused by the decoder.
        let dup = b"d4:infod6:lengthi1e6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        assert!(matches!(
            Metainfo::from_bytes(dup).unwrap_err(),
            MetainfoError::Bencode(e) if e.kind == DecodeErrorKind::DuplicateKey
        ));
    }

    #[test]
    fn deep_nesting_rejected() {
        let depth = bencode::MAX_DEPTH + 10;
        let mut bytes = b"d4:info".to_vec();
        bytes.extend(std::iter::repeat_n(b'l', depth));
        bytes.extend(std::iter::repeat_n(b'e', depth));
        bytes.push(b'e');
        assert!(matches!(
            Metainfo::from_bytes(&bytes).unwrap_err(),
            MetainfoError::Bencode(e) if e.kind == DecodeErrorKind::TooDeep
        ));
        // Deep but legal nesting inside an ignored info key still parses.
        let info = single(1, 16384, 1).with(
            "x-extra",
            (0..50).fold(Bencode::from(1), |v, _| Bencode::List(vec![v])),
        );
        assert!(parse(info).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Metainfo::from_bytes(&bytes);
            let _ = Metainfo::from_info_bytes(&bytes);
        }

        /// Mutations of a valid torrent: every outcome is Ok or a typed error, never a panic,
        /// and whatever parses has a consistent layout.
        #[test]
        fn mutated_torrents_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
        ) {
            let mut bytes = torrent(multi(
                vec![file(5, &["a", "b"]), file(0, &["c"]), file(30000, &["d"]).with("attr", "p")],
                16384,
                2,
            ));
            for (i, b) in edits {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
            if let Ok(m) = Metainfo::from_bytes(&bytes) {
                let total: u64 = m.files().iter().map(|f| f.length).sum();
                prop_assert_eq!(total, m.size());
                prop_assert!(m.piece_hash(PieceIndex(m.piece_count() - 1)).is_some());
            }
        }
    }
}
