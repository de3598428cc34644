//! Real .torrent files made by other clients (WebTorrent's test fixtures, MIT licence), parsed
//! and checked piece by piece against their content through the piece-to-file map.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::fs;
use std::path::Path;

use bt_proto::metainfo::create::{InputFile, TorrentBuilder};
use bt_proto::metainfo::{Metainfo, MetainfoError};
use bt_proto::{InfoHash, PieceHash, PieceIndex, sha1};
use bt_tests::fixtures_dir;

fn load(name: &str) -> Metainfo {
    let bytes = fs::read(fixtures_dir().join(name)).unwrap();
    Metainfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hash(hex: &str) -> InfoHash {
    hex.parse().unwrap()
}

/// Expected info-hashes. leaves and alice are given by the task; the others were computed
/// independently of this crate: a ten-line Python bencode scanner found the byte span of the
/// `info` value in each file and `hashlib.sha1` hashed that span.
const INFO_HASHES: &[(&str, &str)] = &[
    ("leaves.torrent", "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36"),
    ("alice.torrent", "722fe65b2aa26d14f35b4ad627d20236e481d924"),
    ("bunny.torrent", "af8f10f30bf9aefecf3686922bfa0d5bd290a395"),
    (
        "corrupt.torrent",
        "a8c5ba22839b4a22c99cc8197dcfcbf558ef1e09",
    ),
    ("folder.torrent", "b88da2caac6648e6c7d7687e3f89085f7e230e6b"),
    (
        "leaves-metadata.torrent",
        "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
    ),
    (
        "lots-of-numbers.torrent",
        "114ead6243792ba56297edbb9a78dfba84d4fc00",
    ),
    (
        "numbers.torrent",
        "89d97c2261a21b040cf11caa661a3ba7233bb7e6",
    ),
    ("sintel.torrent", "c334138ef5bfc2d568ea7324e0e2a3a7ec229bdd"),
];

#[test]
fn info_hashes_match_independent_computation() {
    for (file, hex) in INFO_HASHES {
        let m = load(file);
        assert_eq!(m.info_hash(), hash(hex), "{file}");
        // The same torrent rebuilt from its bare info dictionary (as BEP 9 delivers it).
        let again = Metainfo::from_info_bytes(m.info_bytes()).unwrap();
        assert_eq!(again.info_hash(), m.info_hash(), "{file}");
    }
}

/// Reads piece `piece` of `m` from files under `base`, zeros for padding. `None` if a file is
/// missing or short.
fn read_piece(m: &Metainfo, base: &Path, piece: PieceIndex) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for seg in m.piece_map().piece_segments(piece).unwrap() {
        let len = seg.len as usize;
        if seg.padding {
            out.resize(out.len() + len, 0);
            continue;
        }
        let path = base.join(m.files()[seg.file].path.to_path_buf());
        let data = fs::read(path).ok()?;
        let start = usize::try_from(seg.offset).unwrap();
        out.extend_from_slice(data.get(start..start + len)?);
    }
    Some(out)
}

/// Indexes of pieces whose content does not hash to the torrent's hash.
fn failing_pieces(m: &Metainfo, base: &Path) -> Vec<u32> {
    (0..m.piece_count())
        .filter(|&p| {
            let data = read_piece(m, base, PieceIndex(p));
            data.map(|d| PieceHash(sha1(&d))) != m.piece_hash(PieceIndex(p))
        })
        .collect()
}

#[test]
fn every_piece_of_the_content_verifies() {
    for file in [
        "alice.torrent",
        "leaves.torrent",
        "leaves-metadata.torrent",
        "numbers.torrent",
        "lots-of-numbers.torrent",
        "folder.torrent",
    ] {
        let m = load(file);
        assert!(m.piece_count() > 0);
        assert_eq!(
            failing_pieces(&m, &fixtures_dir()),
            Vec::<u32>::new(),
            "{file}"
        );
    }
}

#[test]
fn corrupt_torrent_fails_pieces_10_and_20_of_leaves() {
    // corrupt.torrent describes the Leaves of Grass epub (same length and piece length; its
    // info has no name, so the name falls back to the info-hash) with two hashes altered.
    let m = load("corrupt.torrent");
    let leaves = load("leaves.torrent");
    assert_eq!(m.name(), m.info_hash().to_string());
    assert_eq!(m.size(), leaves.size());
    assert_eq!(m.piece_length(), leaves.piece_length());
    let dir = std::env::temp_dir().join(format!("bt-tests-corrupt-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::copy(
        fixtures_dir().join("Leaves of Grass by Walt Whitman.epub"),
        dir.join(m.files()[0].path.to_path_buf()),
    )
    .unwrap();
    let failing = failing_pieces(&m, &dir);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(failing, [10, 20]);
}

#[test]
fn missing_content_fails_verification() {
    let m = load("alice.torrent");
    let empty = std::env::temp_dir().join("bt-tests-no-such-dir");
    assert_eq!(failing_pieces(&m, &empty).len(), m.piece_count() as usize);
}

#[test]
fn accessors_on_real_torrents() {
    let alice = load("alice.torrent");
    assert_eq!(alice.name(), "alice.txt");
    assert!(alice.is_single_file());
    assert_eq!(alice.size(), 163_783);
    assert_eq!(alice.piece_length(), 16384);
    assert_eq!(alice.piece_count(), 10);
    assert_eq!(alice.last_piece_length(), 163_783 - 9 * 16384);
    // WebTorrent writes the creation date in milliseconds; it is kept as written.
    assert_eq!(alice.creation_date(), Some(1_452_468_725_091));
    assert!(alice.trackers().is_empty());
    assert!(!alice.is_private());

    let bunny = load("bunny.torrent");
    assert!(bunny.is_private());
    assert_eq!(bunny.created_by(), Some("uTorrent/3320"));
    assert_eq!(bunny.creation_date(), Some(1_387_309_701));
    assert_eq!(
        bunny.url_list(),
        [
            "http://distribution.bbb3d.renderfarming.net/video/mp4/bbb_sunflower_1080p_30fps_stereo_abl.mp4"
        ]
    );
    assert_eq!(bunny.size(), 434_839_491);
    assert_eq!(bunny.piece_count(), 830);

    let sintel = load("sintel.torrent");
    assert_eq!(
        sintel.name(),
        "Sintel.2010.4K.DMRip.x264.DD.DTS.SRT-MaLLIeHbKa.mkv"
    );
    assert_eq!(sintel.size(), 5_490_455_272);
    assert_eq!(sintel.piece_length(), 4 << 20);
    assert_eq!(sintel.piece_count(), 1310);
    assert_eq!(
        sintel.last_piece_length(),
        (5_490_455_272u64 - 1309 * (4 << 20)) as u32
    );
    assert_eq!(sintel.created_by(), Some("uTorrent/2040"));

    // An empty announce-list and no announce: no trackers.
    assert!(load("leaves-metadata.torrent").trackers().is_empty());

    let lots = load("lots-of-numbers.torrent");
    let paths: Vec<String> = lots.files().iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        paths,
        [
            "lots-of-numbers/big numbers/10.txt",
            "lots-of-numbers/big numbers/11.txt",
            "lots-of-numbers/big numbers/12.txt",
            "lots-of-numbers/small numbers/1.txt",
            "lots-of-numbers/small numbers/2.txt",
            "lots-of-numbers/small numbers/3.txt",
        ]
    );
    assert_eq!(
        lots.piece_map().file_pieces(5).unwrap().first,
        PieceIndex(0)
    );

    let magnet = load("leaves.torrent").magnet();
    assert_eq!(magnet.info_hash, hash(INFO_HASHES[0].1));
    assert_eq!(
        magnet.display_name.as_deref(),
        Some("Leaves of Grass by Walt Whitman.epub")
    );
}

/// Files of a fixture directory, as a caller enumerating the tree would list them.
fn enumerate(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<InputFile>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        prefix.push(name);
        if entry.file_type().unwrap().is_dir() {
            enumerate(&entry.path(), prefix, out);
        } else {
            out.push(InputFile::new(
                prefix.clone(),
                entry.metadata().unwrap().len(),
            ));
        }
        prefix.pop();
    }
}

/// Hashes a plan's files read from `root`, zeros for padding.
fn hash_plan(
    plan: &bt_proto::metainfo::create::TorrentPlan,
    inputs: &[InputFile],
    root: &Path,
) -> Vec<PieceHash> {
    let mut hasher = plan.hasher();
    for f in plan.files() {
        match f.source {
            Some(i) => {
                let rel: std::path::PathBuf = inputs[i].path.iter().collect();
                hasher.update(&fs::read(root.join(rel)).unwrap());
            }
            None => hasher.update_zeros(f.length),
        }
    }
    hasher.finish().unwrap()
}

#[test]
fn creating_from_the_content_reproduces_the_original_info_hashes() {
    // Our creation sorts files by path and writes only the info keys these torrents have, so
    // the same content and piece length give the same info dictionary byte for byte.
    for (dir, torrent) in [
        ("numbers", "numbers.torrent"),
        ("lots-of-numbers", "lots-of-numbers.torrent"),
        ("folder", "folder.torrent"),
    ] {
        let root = fixtures_dir().join(dir);
        let mut inputs = Vec::new();
        enumerate(&root, &mut Vec::new(), &mut inputs);
        let plan = TorrentBuilder::multi_file(dir, inputs.clone())
            .piece_length(16384)
            .plan()
            .unwrap();
        let bytes = plan.build(&hash_plan(&plan, &inputs, &root)).unwrap();
        assert_eq!(
            Metainfo::from_bytes(&bytes).unwrap().info_hash(),
            load(torrent).info_hash(),
            "{dir}"
        );
    }
    for (file, torrent) in [
        ("alice.txt", "alice.torrent"),
        ("Leaves of Grass by Walt Whitman.epub", "leaves.torrent"),
    ] {
        let data = fs::read(fixtures_dir().join(file)).unwrap();
        let plan = TorrentBuilder::single_file(file, data.len() as u64)
            .plan()
            .unwrap();
        // Small files get the smallest automatic piece length, as these torrents used.
        assert_eq!(plan.piece_length(), 16384);
        let mut hasher = plan.hasher();
        hasher.update(&data);
        let bytes = plan.build(&hasher.finish().unwrap()).unwrap();
        assert_eq!(
            Metainfo::from_bytes(&bytes).unwrap().info_hash(),
            load(torrent).info_hash(),
            "{file}"
        );
    }
}

#[test]
fn hostile_edits_of_a_real_torrent_are_rejected() {
    let bytes = fs::read(fixtures_dir().join("numbers.torrent")).unwrap();
    let replace = |from: &[u8], to: &[u8]| -> Vec<u8> {
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = bytes[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&bytes[at + from.len()..]);
        out
    };
    // Same-length substitutions keep the bencode valid.
    let traversal = replace(b"5:1.txt", b"5:..txt");
    assert!(
        Metainfo::from_bytes(&traversal).is_ok(),
        "..txt is a plain name"
    );
    let traversal = replace(b"4:pathl5:1.txte", b"4:pathl2:..1:xe");
    assert!(matches!(
        Metainfo::from_bytes(&traversal),
        Err(MetainfoError::UnsafePath { .. })
    ));
    let slash = replace(b"5:1.txt", b"5:a/txt");
    assert!(matches!(
        Metainfo::from_bytes(&slash),
        Err(MetainfoError::UnsafePath { .. })
    ));
    let dup = replace(b"5:2.txt", b"5:1.txt");
    assert!(matches!(
        Metainfo::from_bytes(&dup),
        Err(MetainfoError::PathClash(_))
    ));
    let huge = replace(b"6:lengthi1e", b"6:lengthi9999999999999e");
    assert_eq!(
        Metainfo::from_bytes(&huge).unwrap_err(),
        MetainfoError::PieceCountMismatch {
            expected: (9_999_999_999_999u64 + 2 + 3).div_ceil(16384),
            found: 1
        }
    );
}
