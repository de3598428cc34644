//! The conformance suite of `bt_tests::conformance`, the hostile-disk scenarios of
//! `bt_tests::hostile_disk` and the hostile peers of `bt_tests::adversary`, run on each runtime, and swarms mixing the two (a tokio seed with
//! smol leechers, and the reverse).

use bt_smol::Smol;
use bt_tests::adversary as adv;
use bt_tests::api;
use bt_tests::conformance as c;
use bt_tests::dht;
use bt_tests::encryption as enc;
use bt_tests::hostile_disk as hd;
use bt_tests::limits;
use bt_tests::local_discovery as lsd;
use bt_tests::magnet;
use bt_tests::swarm::run_on;
use bt_tests::tracker::{http_tracker, udp_tracker};
use bt_tests::utp;
use bt_tokio::Tokio;

/// One `#[test]` per scenario for the runtime `$rt`.
macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn event_streams_end_with_the_torrent_and_the_session() {
                run_on::<$rt, _>("event streams end", api::event_streams_end::<$rt>());
            }

            #[test]
            fn a_subscription_before_adding_sees_the_first_events() {
                run_on::<$rt, _>("subscribe", api::subscribe_before_start::<$rt>());
            }

            #[test]
            fn a_lagging_subscriber_is_told_what_it_missed() {
                run_on::<$rt, _>(
                    "lagged",
                    api::a_lagging_subscriber_is_told_what_it_missed::<$rt>(),
                );
            }

            #[test]
            fn peers_given_with_the_options_are_dialled() {
                run_on::<$rt, _>("initial peers", api::initial_peers::<$rt>());
            }

            #[test]
            fn transfer() {
                run_on::<$rt, _>("transfer", c::transfer::<$rt, $rt>());
            }

            #[test]
            fn states() {
                run_on::<$rt, _>("states", c::states::<$rt>());
            }

            #[test]
            fn hashcheck_after_corruption() {
                run_on::<$rt, _>("hashcheck", c::hashcheck::<$rt>());
            }

            #[test]
            fn path_traversal_refused() {
                run_on::<$rt, _>("traversal", c::traversal::<$rt>());
            }

            #[test]
            fn forged_blocks_are_not_taken() {
                run_on::<$rt, _>("forged blocks", adv::forged_blocks::<$rt>());
            }

            #[test]
            fn a_connection_flood_does_not_keep_a_leecher_out() {
                run_on::<$rt, _>("connection flood", adv::connection_flood::<$rt>());
            }

            #[test]
            fn restart_from_resume_data() {
                run_on::<$rt, _>("resume", c::resume::<$rt>());
            }

            #[test]
            fn restart_after_crash() {
                run_on::<$rt, _>(
                    "crash",
                    c::crash_restart::<$rt>(env!("CARGO_BIN_EXE_crash_leecher")),
                );
            }

            #[test]
            fn full_disk_fails_the_torrent_until_room_is_made() {
                run_on::<$rt, _>(
                    "full disk",
                    hd::full_disk::<$rt>(env!("CARGO_BIN_EXE_full_disk_leecher")),
                );
            }

            #[test]
            fn planted_symlinks_lead_nowhere_outside() {
                run_on::<$rt, _>("planted symlinks", hd::planted_symlinks::<$rt>());
            }

            #[test]
            fn hostile_layouts_refused() {
                run_on::<$rt, _>("hostile layouts", hd::hostile_layouts::<$rt>());
            }

            #[test]
            fn http_tracker_brings_peers_together() {
                run_on::<$rt, _>("http tracker", async {
                    c::swarm_through::<$rt>(http_tracker().await).await
                });
            }

            #[test]
            fn two_sessions_find_each_other_by_local_discovery() {
                run_on::<$rt, _>(
                    "local discovery",
                    lsd::two_sessions_find_each_other::<$rt, $rt>(),
                );
            }

            #[test]
            fn a_magnet_link_completes_through_the_dht() {
                run_on::<$rt, _>(
                    "dht magnet",
                    dht::magnet_completes_through_the_dht::<$rt, $rt>(),
                );
            }

            #[test]
            fn a_restart_takes_up_the_saved_dht_table() {
                run_on::<$rt, _>(
                    "dht restart",
                    dht::a_restart_takes_up_the_saved_table::<$rt>(),
                );
            }

            #[test]
            fn a_read_only_dht_node_answers_nothing() {
                run_on::<$rt, _>(
                    "dht read-only",
                    dht::a_read_only_node_answers_nothing::<$rt>(),
                );
            }

            #[test]
            fn a_session_runs_on_without_its_dht_socket() {
                run_on::<$rt, _>("no dht socket", dht::a_taken_udp_port_is_not_fatal::<$rt>());
            }

            #[test]
            fn a_session_runs_on_without_its_lsd_socket() {
                run_on::<$rt, _>("no lsd socket", lsd::unavailable_lsd_is_not_fatal::<$rt>());
            }

            #[test]
            fn magnet_through_a_tracker() {
                run_on::<$rt, _>("magnet, tracker", async {
                    magnet::through_tracker::<$rt>(http_tracker().await).await
                });
            }

            #[test]
            fn magnet_from_a_peer_host_name() {
                run_on::<$rt, _>("magnet, x.pe", magnet::from_peer_only::<$rt>());
            }

            #[test]
            fn magnet_restart_does_not_fetch_the_metadata_again() {
                run_on::<$rt, _>("magnet restart", magnet::restart::<$rt>());
            }

            #[test]
            fn magnet_metadata_that_cannot_be_laid_out_is_refused() {
                run_on::<$rt, _>("magnet refused", magnet::refused_metadata::<$rt>());
            }

            #[test]
            fn encryption_required_on_both_sides_is_rc4() {
                run_on::<$rt, _>(
                    "encryption required",
                    enc::required_on_both_sides::<$rt, $rt>(),
                );
            }

            #[test]
            fn encryption_enabled_falls_back_to_plaintext() {
                run_on::<$rt, _>(
                    "encryption fall back",
                    enc::enabled_falls_back_to_plaintext::<$rt, $rt>(),
                );
            }

            #[test]
            fn encryption_required_against_disabled_moves_nothing() {
                run_on::<$rt, _>(
                    "encryption mismatch",
                    enc::required_against_disabled_moves_nothing::<$rt, $rt>(),
                );
            }

            #[test]
            fn utp_only_on_both_sides() {
                run_on::<$rt, _>("utp only", utp::utp_only_on_both_sides::<$rt, $rt>());
            }

            #[test]
            fn both_transports_serve_a_utp_only_leecher() {
                run_on::<$rt, _>(
                    "utp leecher, both seed",
                    utp::both_serves_a_utp_only_leecher::<$rt, $rt>(),
                );
            }

            #[test]
            fn the_udp_port_opens_when_needed() {
                run_on::<$rt, _>("udp port", utp::the_udp_port_opens_when_needed::<$rt>());
            }

            #[test]
            fn a_taken_udp_port_fails_a_utp_only_session() {
                run_on::<$rt, _>(
                    "utp port taken",
                    utp::a_taken_udp_port_fails_a_utp_only_session::<$rt>(),
                );
            }

            #[test]
            fn a_peer_given_by_host_name() {
                run_on::<$rt, _>("peer by host name", c::peer_by_host_name::<$rt>());
            }

            #[test]
            fn pex_can_be_switched_off() {
                run_on::<$rt, _>("pex switch", magnet::pex_switch::<$rt>());
            }

            #[test]
            fn udp_tracker_brings_peers_together() {
                run_on::<$rt, _>("udp tracker", async {
                    c::swarm_through::<$rt>(udp_tracker().await).await
                });
            }

            #[test]
            fn a_session_rate_limit_set_at_run_time_holds() {
                run_on::<$rt, _>(
                    "session rate limit",
                    limits::session_limit_set_at_run_time::<$rt>(),
                );
            }

            #[test]
            fn a_torrent_rate_limit_holds() {
                run_on::<$rt, _>("torrent rate limit", limits::torrent_limit::<$rt>());
            }

            #[test]
            fn one_active_download_queues_the_other() {
                run_on::<$rt, _>("queue", limits::queue_of_two::<$rt>());
            }
        }
    };
}

suite!(tokio, Tokio);
suite!(smol, Smol);

/// Twenty kills in a row, the leecher alternately on tokio and smol.
#[test]
fn twenty_crashes_in_a_row() {
    run_on::<Tokio, _>(
        "crash loop",
        bt_tests::crash_loop::crash_loop::<Tokio>(env!("CARGO_BIN_EXE_crash_leecher")),
    );
}

#[test]
fn tokio_seed_smol_leechers() {
    run_on::<Smol, _>("tokio seed, smol leechers", c::transfer::<Tokio, Smol>());
}

#[test]
fn smol_seed_tokio_leechers() {
    run_on::<Tokio, _>("smol seed, tokio leechers", c::transfer::<Smol, Tokio>());
}

#[test]
fn tokio_seed_smol_leecher_encryption_required() {
    run_on::<Smol, _>(
        "encryption required, tokio seed, smol leecher",
        enc::required_on_both_sides::<Tokio, Smol>(),
    );
}

#[test]
fn tokio_and_smol_sessions_find_each_other_by_local_discovery() {
    run_on::<Smol, _>(
        "local discovery, tokio seed, smol leecher",
        lsd::two_sessions_find_each_other::<Tokio, Smol>(),
    );
}

#[test]
fn tokio_and_smol_sessions_find_each_other_through_the_dht() {
    run_on::<Smol, _>(
        "dht magnet, tokio seed, smol leecher",
        dht::magnet_completes_through_the_dht::<Tokio, Smol>(),
    );
}

#[test]
fn tokio_seed_smol_leecher_over_utp() {
    run_on::<Smol, _>(
        "utp only, tokio seed, smol leecher",
        utp::utp_only_on_both_sides::<Tokio, Smol>(),
    );
}
