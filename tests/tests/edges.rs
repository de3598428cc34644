//! The edge scenarios of `bt_tests::edges`, run on each runtime: tracker requests the SSRF
//! rules refuse (against real loopback servers).

use bt_smol::Smol;
use bt_tests::edges as e;
use bt_tests::swarm::run_on;
use bt_tokio::Tokio;

/// One `#[test]` per scenario for the runtime `$rt`.
macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn local_tracker_only_at_announce() {
                run_on::<$rt, _>(
                    "local tracker path",
                    e::local_tracker_only_at_announce::<$rt>(),
                );
            }

            #[test]
            fn redirect_to_local_only_at_announce() {
                run_on::<$rt, _>(
                    "redirect to local",
                    e::redirect_to_local_only_at_announce::<$rt>(),
                );
            }
        }
    };
}

suite!(tokio, Tokio);
suite!(smol, Smol);
