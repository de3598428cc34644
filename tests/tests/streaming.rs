//! File readers (`bt_tests::streaming`) on tokio and on smol, each through its runtime's own
//! read and seek traits.

use bt_smol::Smol;
use bt_tests::streaming as st;
use bt_tests::swarm::run_on;
use bt_tokio::Tokio;

/// One `#[test]` per scenario for the runtime `$rt`.
macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn reads_a_file_while_it_downloads() {
                run_on::<$rt, _>(
                    "read while downloading",
                    st::reads_a_file_while_it_downloads::<$rt>(),
                );
            }

            #[test]
            fn seeks_and_reads() {
                run_on::<$rt, _>("seeks", st::seeks_and_reads::<$rt>());
            }

            #[test]
            fn several_readers_at_once() {
                run_on::<$rt, _>("several readers", st::several_readers_at_once::<$rt>());
            }

            #[test]
            fn dropping_a_reader_releases_it() {
                run_on::<$rt, _>("drop", st::dropping_a_reader_releases_it::<$rt>());
            }

            #[test]
            fn stop_and_removal_end_a_wait() {
                run_on::<$rt, _>("stop and removal", st::stop_and_removal_end_a_wait::<$rt>());
            }
        }
    };
}

suite!(tokio, Tokio);
suite!(smol, Smol);
