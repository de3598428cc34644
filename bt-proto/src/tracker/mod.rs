//! Tracker messages: HTTP announce and scrape (BEP 3, 7, 23, 48) with sans-IO HTTP/1.1
//! framing, and the UDP tracker protocol (BEP 15).
//!
//! Nothing here opens a socket or reads the clock. The caller parses the tracker's [`Url`] and
//! dispatches on its scheme. For HTTP(S) it turns an [`AnnounceRequest`] into a URL
//! ([`AnnounceRequest::to_url`]), that URL into request bytes ([`Url::get_request`]), feeds
//! the bytes it reads into an [`http::ResponseReader`], and reads the response with
//! [`read_http_reply`] (a reply, a redirect, or a typed [`AnnounceError`]). For `udp://`
//! trackers the [`udp`] module gives the packets, the retransmit schedule and a small client
//! state machine. Before connecting to an address a tracker's host resolved to, the caller
//! asks [`reach::check_address`] whether that request may go there (the SSRF rules).
//!
//! ```
//! use bt_proto::{InfoHash, PeerId};
//! use bt_proto::tracker::{AnnounceEvent, AnnounceRequest};
//!
//! let req = AnnounceRequest {
//!     info_hash: InfoHash([0xab; 20]),
//!     peer_id: PeerId(*b"-BT0100-abcdefghijkl"),
//!     port: 6881,
//!     uploaded: 0,
//!     downloaded: 0,
//!     left: 1000,
//!     event: Some(AnnounceEvent::Started),
//!     numwant: None,
//!     key: None,
//!     tracker_id: None,
//!     ip: None,
//! };
//! let url = req.to_url("http://tracker.example/announce?passkey=x");
//! assert!(url.starts_with("http://tracker.example/announce?passkey=x&info_hash=%AB%AB"));
//! assert!(url.ends_with("&compact=1&event=started"));
//! ```

use std::time::Duration;

pub mod announce;
pub mod exchange;
pub mod http;
pub mod reach;
pub mod scrape;
pub mod udp;
pub mod url;

pub use announce::{AnnounceRequest, AnnounceResponse, Peer, PeerAddr, ReplyError, TrackerFailure};
pub use exchange::{AnnounceError, HttpReply, read_http_reply};
pub use scrape::{ScrapeResponse, ScrapeStats, scrape_url};
pub use url::{Scheme, Url, UrlError};

/// Why a client announces (BEP 3 `event`); a regular re-announce has no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The first announce of a download.
    Started,
    /// The download finished (sent once, not when starting as a seed).
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The value of the HTTP `event` parameter: exactly `started`, `completed` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }

    /// The BEP 15 event code (0 is "none", so it is not produced here).
    pub fn udp_code(self) -> u32 {
        match self {
            AnnounceEvent::Completed => 1,
            AnnounceEvent::Started => 2,
            AnnounceEvent::Stopped => 3,
        }
    }

    /// The event for a BEP 15 code: `Ok(None)` for 0, `Err(code)` for an unknown code.
    pub fn from_udp_code(code: u32) -> Result<Option<Self>, u32> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(AnnounceEvent::Completed)),
            2 => Ok(Some(AnnounceEvent::Started)),
            3 => Ok(Some(AnnounceEvent::Stopped)),
            other => Err(other),
        }
    }
}

/// Most tracker URLs kept per torrent, over all its tiers; those after it in file order are
/// dropped where a torrent is read and where its announce schedule is made. Announces walk the
/// URLs one after another, so a torrent listing a million would make every round of
/// announces endless and fill the engine with bookkeeping. Real torrents list a few, the
/// public "tracker list" ones a hundred or two; libtorrent numbers tiers with one byte (256
/// at most), and its author prefers a limit per torrent to making more trackers scale.
pub const MAX_TRACKER_URLS: usize = 256;

/// Shortest wait between two announces we accept from a tracker. A tracker that says 0 (or 5)
/// would otherwise make us announce in a tight loop; a minute is what the fastest public
/// trackers ask for.
pub const MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(60);

/// Longest wait between two announces. Trackers forget a peer after a few missed intervals, so
/// waiting more than a few hours only loses the swarm; a tracker asking for days is broken.
pub const MAX_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);

/// The interval assumed when an HTTP reply has none (BEP 3 requires it, some trackers omit
/// it); half an hour is the common tracker default.
pub const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// How long to wait before the next regular announce, given what the tracker asked for.
///
/// The larger of `interval` and `min_interval`, clamped into
/// [`MIN_ANNOUNCE_INTERVAL`]..=[`MAX_ANNOUNCE_INTERVAL`]. Decoders keep the tracker's numbers
/// as sent; this is the one place where they become a schedule.
///
/// ```
/// use std::time::Duration;
/// use bt_proto::tracker::{announce_interval, MIN_ANNOUNCE_INTERVAL, MAX_ANNOUNCE_INTERVAL};
/// assert_eq!(announce_interval(Duration::ZERO, None), MIN_ANNOUNCE_INTERVAL);
/// assert_eq!(announce_interval(Duration::from_secs(1800), None), Duration::from_secs(1800));
/// assert_eq!(
///     announce_interval(Duration::from_secs(900), Some(Duration::from_secs(1200))),
///     Duration::from_secs(1200)
/// );
/// assert_eq!(announce_interval(Duration::from_secs(u32::MAX.into()), None), MAX_ANNOUNCE_INTERVAL);
/// ```
pub fn announce_interval(interval: Duration, min_interval: Option<Duration>) -> Duration {
    let wanted = match min_interval {
        Some(min) => interval.max(min),
        None => interval,
    };
    wanted.clamp(MIN_ANNOUNCE_INTERVAL, MAX_ANNOUNCE_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_strings_are_exact() {
        // The seed client sent `complete`; trackers ignore that, so the spelling matters.
        assert_eq!(AnnounceEvent::Started.as_str(), "started");
        assert_eq!(AnnounceEvent::Completed.as_str(), "completed");
        assert_eq!(AnnounceEvent::Stopped.as_str(), "stopped");
    }

    #[test]
    fn udp_event_codes_round_trip() {
        for e in [
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped,
        ] {
            assert_eq!(AnnounceEvent::from_udp_code(e.udp_code()), Ok(Some(e)));
        }
        assert_eq!(AnnounceEvent::Completed.udp_code(), 1);
        assert_eq!(AnnounceEvent::Started.udp_code(), 2);
        assert_eq!(AnnounceEvent::Stopped.udp_code(), 3);
        assert_eq!(AnnounceEvent::from_udp_code(0), Ok(None));
        assert_eq!(AnnounceEvent::from_udp_code(4), Err(4));
    }

    #[test]
    fn interval_is_clamped_to_named_bounds() {
        let s = Duration::from_secs;
        assert_eq!(announce_interval(s(1), None), MIN_ANNOUNCE_INTERVAL);
        assert_eq!(
            announce_interval(s(10 * 86400), None),
            MAX_ANNOUNCE_INTERVAL
        );
        assert_eq!(announce_interval(s(300), Some(s(30))), s(300));
        assert_eq!(announce_interval(s(30), Some(s(400))), s(400));
    }
}
