//! `.torrent` parsing: nothing panics, and every accepted torrent is self-consistent.
//!
//! File lengths add up to the size, the piece count fits the size and piece length, each
//! piece's segments tile exactly its bytes across the files, every path is relative and
//! made of checked components, the info-hash is the SHA-1 of the stored info bytes, and those
//! bytes parse again (as BEP 9 metadata) to the same torrent.
#![no_main]

use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::path::{check_component, check_unique};
use bt_proto::{InfoHash, PieceIndex, sha1};
use libfuzzer_sys::fuzz_target;
use std::path::Component;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    check(&m);

    let again = Metainfo::from_info_bytes(m.info_bytes()).expect("accepted info parses alone");
    assert_eq!(again.info_hash(), m.info_hash());
    assert_eq!(again.files(), m.files());
    assert_eq!(again.piece_map(), m.piece_map());
    assert_eq!(again.name(), m.name());
    check(&again);
});

fn check(m: &Metainfo) {
    assert_eq!(m.info_hash(), InfoHash(sha1(m.info_bytes())));
    assert!(check_component(m.name()).is_ok(), "name {:?}", m.name());

    let files = m.files();
    assert!(!files.is_empty());
    let mut offset = 0u64;
    for f in files {
        assert_eq!(f.offset, offset, "files are not contiguous");
        offset = offset.checked_add(f.length).expect("size overflows");
        let comps = f.path.components();
        assert!(!comps.is_empty());
        for c in comps {
            assert!(
                check_component(c).is_ok(),
                "component {c:?} fails the check"
            );
        }
        let path = f.path.to_path_buf();
        assert!(path.is_relative(), "{path:?}");
        assert!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "{path:?} has a non-normal component"
        );
        if m.is_single_file() {
            assert_eq!(comps, [m.name()]);
        } else {
            assert_eq!(comps.first().map(String::as_str), Some(m.name()));
            assert!(comps.len() >= 2, "multi-file path without a file name");
        }
    }
    assert!(check_unique(files.iter().map(|f| &f.path)).is_ok());
    assert_eq!(offset, m.size(), "file lengths do not add up to the size");
    assert!(m.content_size() <= m.size());

    let map = m.piece_map();
    assert_eq!(map.file_count(), files.len());
    let pl = u64::from(m.piece_length());
    assert!(pl > 0);
    assert_eq!(u64::from(m.piece_count()), m.size().div_ceil(pl));
    assert_eq!(m.piece_map().total_length(), m.size());
    if m.piece_count() > 0 {
        let last = PieceIndex(m.piece_count() - 1);
        assert_eq!(m.piece_len(last), Some(m.last_piece_length()));
        assert_eq!(
            u64::from(last.0) * pl + u64::from(m.last_piece_length()),
            m.size()
        );
    }
    assert_eq!(m.piece_len(PieceIndex(m.piece_count())), None);
    assert_eq!(m.piece_hash(PieceIndex(m.piece_count())), None);

    for p in 0..m.piece_count() {
        let piece = PieceIndex(p);
        let len = m.piece_len(piece).expect("piece in range has a length");
        assert!(len > 0 && u64::from(len) <= pl);
        assert!(m.piece_hash(piece).is_some());
        let start = map
            .piece_offset(piece)
            .expect("piece in range has an offset");
        let mut pos = start;
        let mut sum = 0u64;
        for seg in map
            .piece_segments(piece)
            .expect("piece in range has segments")
        {
            let f = files.get(seg.file).expect("segment names a file");
            assert!(seg.len > 0, "empty segment");
            assert_eq!(f.offset + seg.offset, pos, "segments do not tile the piece");
            assert!(
                seg.offset + u64::from(seg.len) <= f.length,
                "segment past file end"
            );
            assert_eq!(seg.padding, f.is_padding());
            pos += u64::from(seg.len);
            sum += u64::from(seg.len);
        }
        assert_eq!(
            sum,
            u64::from(len),
            "segments of piece {p} do not sum to its length"
        );
    }

    for (i, f) in files.iter().enumerate() {
        match map.file_pieces(i) {
            None => assert_eq!(f.length, 0),
            Some(r) => {
                assert!(f.length > 0);
                assert_eq!(u64::from(r.first.0), f.offset / pl);
                assert_eq!(u64::from(r.last.0), (f.offset + f.length - 1) / pl);
                assert!(r.last.0 < m.piece_count());
            }
        }
    }
}
