//! `https://` trackers. With the `https` feature (`cargo test -p bt-tests --features https
//! --test https`): a TLS test tracker with a self-signed certificate brings peers together
//! on each runtime once the certificate is trusted, and is refused while it is not; its
//! redirect to plain http is refused. Without
//! it: an https tracker is a tracker error saying so, never a panic.

use bt_adapter::tracker::AnnounceError;
use bt_smol::Smol;
use bt_tests::conformance as c;
use bt_tests::swarm::{loopback_session, run_on};
use bt_tokio::Tokio;

/// The https scenarios for the runtime `$rt`.
macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;

            #[cfg(feature = "https")]
            #[test]
            fn https_tracker_brings_peers_together() {
                run_on::<$rt, _>("https tracker", async {
                    c::swarm_through::<$rt>(bt_tests::tracker::https_tracker().await).await
                });
            }

            #[cfg(feature = "https")]
            #[test]
            fn untrusted_certificate_is_refused() {
                run_on::<$rt, _>("untrusted https tracker", async {
                    let tracker = bt_tests::tracker::https_tracker().await;
                    let session = loopback_session::<$rt>().await;
                    let error = c::first_tracker_error(session, &tracker.url).await;
                    assert!(matches!(error, AnnounceError::Tls { .. }), "{error:?}");
                    assert!(error.to_string().contains("certificate"), "{error}");
                    assert_eq!(*tracker.announces.lock().unwrap(), 0);
                });
            }

            #[cfg(feature = "https")]
            #[test]
            fn a_redirect_from_https_to_http_is_refused() {
                run_on::<$rt, _>(
                    "https to http redirect",
                    bt_tests::edges::https_redirect_to_http_refused::<$rt>(),
                );
            }

            #[cfg(feature = "https")]
            #[test]
            fn a_root_certificate_that_does_not_parse_is_an_error() {
                run_on::<$rt, _>("bad root", async {
                    let err = bt_tests::swarm::loopback_builder::<$rt>()
                        .tracker_root_certificate(b"not a certificate".to_vec())
                        .start()
                        .await
                        .unwrap_err();
                    assert!(matches!(err, bt_adapter::Error::Certificate(_)), "{err}");
                });
            }

            #[cfg(not(feature = "https"))]
            #[test]
            fn https_tracker_needs_the_feature() {
                run_on::<$rt, _>("https without the feature", async {
                    let session = loopback_session::<$rt>().await;
                    let error =
                        c::first_tracker_error(session, "https://localhost:1/announce").await;
                    assert_eq!(error, AnnounceError::HttpsNeedsFeature);
                    assert_eq!(error.to_string(), "https trackers need the `https` feature");
                });
            }
        }
    };
}

suite!(tokio, Tokio);
suite!(smol, Smol);
