//! Resume data: nothing panics decoding it against a real torrent; accepted data
//! round-trips; `trusted_pieces` trusts exactly the saved pieces whose files are unchanged.
//!
//! The first input byte gives the number of change-plan bytes that follow it (at most 8);
//! each file takes 2 bits of the plan: keep its stamp, change its length, change its mtime,
//! or make it vanish. Bit 7 of the first byte also drops the last file from the current list.
//! The rest is the resume data.
#![no_main]

use bt_proto::PieceIndex;
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::{FileStamp, ResumeData};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static TORRENT: LazyLock<Metainfo> = LazyLock::new(|| {
    Metainfo::from_bytes(include_bytes!(
        "../../tests/fixtures/webtorrent/numbers.torrent"
    ))
    .expect("the fixture parses")
});

fn files_of(m: &Metainfo, p: PieceIndex) -> Vec<usize> {
    m.piece_map()
        .piece_segments(p)
        .expect("piece in range")
        .map(|s| s.file)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let m = &*TORRENT;
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(head & 0x0f).min(8).min(rest.len());
    let (plan, bytes) = rest.split_at(n);

    let Ok(saved) = ResumeData::decode(bytes, m.info_hash(), m.piece_count(), m.files().len())
    else {
        return;
    };
    assert_eq!(saved.info_hash, m.info_hash());
    assert_eq!(saved.pieces.len(), m.piece_count());
    assert_eq!(saved.files.len(), m.files().len());
    let again = ResumeData::decode(
        &saved.encode(),
        m.info_hash(),
        m.piece_count(),
        m.files().len(),
    );
    assert_eq!(
        again.as_ref(),
        Ok(&saved),
        "resume data does not round-trip"
    );

    let mut plan_bits = plan.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut current: Vec<Option<FileStamp>> = saved
        .files
        .iter()
        .map(|f| {
            let change = plan_bits & 3;
            plan_bits >>= 2;
            match (change, f) {
                (_, None) | (0, _) => *f,
                (1, Some(s)) => Some(FileStamp {
                    length: s.length.wrapping_add(1),
                    ..*s
                }),
                (2, Some(s)) => Some(FileStamp {
                    mtime_secs: s.mtime_secs.wrapping_sub(1),
                    ..*s
                }),
                _ => None,
            }
        })
        .collect();
    if head & 0x80 != 0 {
        current.pop();
    }

    let trusted = saved.trusted_pieces(&current, |p| files_of(m, p));
    assert_eq!(trusted.len(), saved.pieces.len());
    for i in 0..m.piece_count() {
        let p = PieceIndex(i);
        let expected = saved.pieces.get(p)
            && files_of(m, p).iter().all(|&f| {
                let was = saved.files.get(f).copied().flatten();
                was.is_some() && current.get(f).copied().flatten() == was
            });
        assert_eq!(trusted.get(p), expected, "piece {i}");
    }
});
