//! The edge scenarios of `bt_tests::edges`, run on each runtime: tracker requests the SSRF
//! rules refuse (against real loopback servers), a port in use, IPv6 loopback, and a session
//! with many torrents.

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

            #[test]
            fn port_in_use_is_a_typed_error() {
                run_on::<$rt, _>("port in use", e::port_in_use::<$rt>());
            }

            #[test]
            fn transfer_over_ipv6_loopback() {
                run_on::<$rt, _>("ipv6 loopback", e::ipv6_loopback_transfer::<$rt>());
            }

            #[test]
            fn many_torrents_in_one_session() {
                run_on::<$rt, _>("many torrents", e::many_torrents::<$rt>());
            }
        }
    };
}

suite!(tokio, Tokio);
suite!(smol, Smol);
