//! The README's library example is `bt-tokio/examples/progress.rs` word for word, and it
//! downloads a torrent from a seed on loopback: the README cannot show code that no longer
//! compiles, nor code that does not do what it says.

use bt_tests::swarm::{
    addr_of, assert_same_tree, loopback_session, run_on, standard_files, torrent_of, write_payload,
};
use bt_tokio::{Tokio, TorrentOptions};

// Its `main` is the example's own, not run here.
#[allow(dead_code)]
#[path = "../../bt-tokio/examples/progress.rs"]
mod progress;

/// The first Rust block after `heading` in `text`.
fn rust_block_after<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let (_, after) = text.split_once(heading)?;
    let (_, block) = after.split_once("```rust\n")?;
    Some(block.split_once("```\n")?.0)
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../bt-tokio/examples/progress.rs");
    assert_eq!(rust_block_after(readme, "## The library"), Some(example));
}

#[test]
fn the_readme_example_downloads_from_a_seed() {
    run_on::<Tokio, _>("readme example", async {
        let dir = tempfile::tempdir().unwrap();
        let seed_dir = dir.path().join("seed");
        let content = seed_dir.join("payload");
        write_payload(&content, &standard_files(20_000));
        let torrent = torrent_of::<Tokio>(&content, 32 * 1024, Vec::new()).await;
        let torrent_file = dir.path().join("payload.torrent");
        std::fs::write(&torrent_file, &torrent).unwrap();
        let seed = loopback_session::<Tokio>().await;
        let st = seed
            .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&seed_dir))
            .await
            .unwrap();
        st.wait_complete().await.unwrap();

        let leecher = loopback_session::<Tokio>().await;
        let base = dir.path().join("leech");
        progress::download(
            &leecher,
            torrent_file.to_str().unwrap(),
            base.to_str().unwrap(),
            vec![addr_of(&seed).to_string()],
        )
        .await
        .unwrap();
        assert_same_tree(&seed_dir, &base);
        leecher.shutdown().await;
        seed.shutdown().await;
    });
}
