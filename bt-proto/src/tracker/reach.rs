//! Where a tracker may be asked: the rules that keep a torrent's tracker URLs, and the
//! redirects a tracker answers with, from turning an announce into a request of the
//! attacker's choosing against the local network (server-side request forgery), after
//! libtorrent's `ssrf_mitigation`.
//!
//! - An HTTP(S) tracker on a local address ([`is_local`]: loopback, private, link-local,
//!   unique-local ...) is asked only at the path `/announce`, with any query. Trackers run
//!   on a LAN or on the same host use that path; a router's or a local service's web
//!   interface lives elsewhere, so a torrent cannot send GETs of its choosing there.
//! - A redirect from a tracker on a global address to one on a local address is refused: a
//!   public tracker has no business sending us into the local network.
//! - A redirect from `https` to `http` is refused: the same query, a private tracker's
//!   passkey with it, would then cross the network in clear.
//!
//! Host names are resolved by the adapter, so it calls [`check_address`] with each address a
//! host resolves to before connecting to it; [`check_redirect`] needs no address and is part
//! of [`read_http_reply`](super::read_http_reply). UDP trackers (BEP 15) are exempt from the
//! path rule: no path is sent, and their fixed binary packets cannot speak another protocol
//! to a local service.
//!
//! ```
//! use bt_proto::tracker::reach::{check_address, is_local};
//! use bt_proto::tracker::{AnnounceError, Url};
//! assert!(is_local("192.168.1.1".parse().unwrap()) && !is_local("192.0.2.1".parse().unwrap()));
//! let router = Url::parse("http://192.168.1.1/cgi-bin/reboot").unwrap();
//! let refused = check_address(&router, "192.168.1.1".parse().unwrap(), None);
//! assert!(matches!(refused, Err(AnnounceError::LocalPath { .. })));
//! let lan = Url::parse("http://192.168.1.2:6969/announce?passkey=x").unwrap();
//! assert!(check_address(&lan, "192.168.1.2".parse().unwrap(), None).is_ok());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::exchange::AnnounceError;
use super::url::{Scheme, Url};

/// The only path a tracker on a local address is asked at.
pub const LOCAL_TRACKER_PATH: &str = "/announce";

/// Whether `ip` is on this host or a local network rather than the internet: unspecified
/// (which reaches this host), loopback, private (RFC 1918), shared (RFC 6598, carrier-grade
/// NAT), link-local, unique-local (RFC 4193) and site-local IPv6, and IPv4 addresses inside
/// IPv4-mapped or NAT64 (RFC 6052) IPv6 ones.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => is_local_v6(v6),
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    a == 0 || ip.is_loopback() || ip.is_private() || ip.is_link_local() || shared
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_local_v4(v4);
    }
    let [first, second, s2, s3, s4, s5, hi, lo] = ip.segments();
    // 64:ff9b::/96 (RFC 6052): a NAT64 gateway reaches the IPv4 address in the low 32 bits.
    if [first, second, s2, s3, s4, s5] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [h1, h2] = hi.to_be_bytes();
        let [l1, l2] = lo.to_be_bytes();
        return is_local_v4(Ipv4Addr::new(h1, h2, l1, l2));
    }
    let unique_local = first & 0xfe00 == 0xfc00;
    // fe80::/10 link-local, and fec0::/10 site-local (deprecated, still routed locally).
    let link_or_site_local = first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0;
    ip.is_loopback() || ip.is_unspecified() || unique_local || link_or_site_local
}

/// One request of an announce's chain (the first, then one per redirect followed): who was
/// asked, and whether at a local address. What [`check_address`] needs about the tracker
/// that redirected us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The tracker asked, as `host[:port]`.
    pub host: String,
    /// Whether it was asked at a local address ([`is_local`]).
    pub local: bool,
}

/// Whether the request to `url` may go to `ip`, one of the addresses its host resolved to.
/// `redirected_by` is the request that sent us here, `None` for the first. Returns the hop
/// to pass on if this request redirects in turn.
///
/// # Errors
/// [`AnnounceError::LocalPath`] for an HTTP(S) request to a local address at a path other
/// than [`LOCAL_TRACKER_PATH`]; [`AnnounceError::RedirectToLocal`] for a local address
/// reached by a redirect from a global one.
pub fn check_address(
    url: &Url,
    ip: IpAddr,
    redirected_by: Option<&Hop>,
) -> Result<Hop, AnnounceError> {
    let local = is_local(ip);
    let hop = Hop {
        host: url.authority(),
        local,
    };
    if !local {
        return Ok(hop);
    }
    if let Some(from) = redirected_by.filter(|from| !from.local) {
        return Err(AnnounceError::RedirectToLocal {
            from: from.host.clone(),
            to: hop.host,
            addr: ip,
        });
    }
    let path = url
        .path_and_query
        .split_once('?')
        .map_or(url.path_and_query.as_str(), |(path, _)| path);
    if url.scheme != Scheme::Udp && path != LOCAL_TRACKER_PATH {
        return Err(AnnounceError::LocalPath {
            host: hop.host,
            addr: ip,
        });
    }
    Ok(hop)
}

/// Whether a tracker at `from` may redirect us to `to`: never from `https` to `http`.
///
/// # Errors
/// [`AnnounceError::InsecureRedirect`] for a downgrade.
pub fn check_redirect(from: &Url, to: &Url) -> Result<(), AnnounceError> {
    if from.scheme == Scheme::Https && to.scheme != Scheme::Https {
        return Err(AnnounceError::InsecureRedirect {
            from: from.authority(),
            to: to.authority(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn local_and_global_addresses() {
        let local = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.1.1",
            "64:ff9b::10.0.0.1",
        ];
        for a in local {
            assert!(is_local(ip(a)), "{a} is local");
        }
        let global = [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "192.169.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "169.255.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "fbff::1",
            "ff02::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::10.0.0.1",
        ];
        for a in global {
            assert!(!is_local(ip(a)), "{a} is global");
        }
    }

    #[test]
    fn a_local_tracker_is_asked_only_at_announce() {
        let allowed = [
            "http://127.0.0.1:6969/announce",
            "http://127.0.0.1:6969/announce?passkey=abc&info_hash=x",
            "https://localhost/announce",
            // UDP sends no path.
            "udp://127.0.0.1:6969",
            "udp://127.0.0.1:6969/anything",
        ];
        for u in allowed {
            let hop = check_address(&url(u), ip("127.0.0.1"), None).unwrap();
            assert!(hop.local, "{u}");
        }
        let refused = [
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/admin?announce",
            "http://127.0.0.1:8080/announce/",
            "http://127.0.0.1:8080/announce.php",
            "http://127.0.0.1:8080/%61nnounce",
            "http://127.0.0.1:8080/a/../announce2",
        ];
        for u in refused {
            assert_eq!(
                check_address(&url(u), ip("127.0.0.1"), None),
                Err(AnnounceError::LocalPath {
                    host: "127.0.0.1:8080".into(),
                    addr: ip("127.0.0.1"),
                }),
                "{u}"
            );
        }
        // A name is judged by the address it resolved to.
        let named = url("http://tracker.example/admin");
        assert!(check_address(&named, ip("10.0.0.7"), None).is_err());
        let hop = check_address(&named, ip("192.0.2.7"), None).unwrap();
        assert_eq!(
            hop,
            Hop {
                host: "tracker.example".into(),
                local: false
            }
        );
    }

    #[test]
    fn a_global_tracker_may_not_redirect_into_the_local_network() {
        let public = Hop {
            host: "tracker.example".into(),
            local: false,
        };
        let lan = Hop {
            host: "10.0.0.1:6969".into(),
            local: true,
        };
        let target = url("http://10.0.0.2/announce");
        assert_eq!(
            check_address(&target, ip("10.0.0.2"), Some(&public)),
            Err(AnnounceError::RedirectToLocal {
                from: "tracker.example".into(),
                to: "10.0.0.2".into(),
                addr: ip("10.0.0.2"),
            })
        );
        assert!(check_address(&target, ip("10.0.0.2"), Some(&lan)).is_ok());
        let away = url("http://other.example/anything");
        assert!(check_address(&away, ip("192.0.2.9"), Some(&public)).is_ok());
        assert!(check_address(&away, ip("192.0.2.9"), Some(&lan)).is_ok());
    }

    #[test]
    fn https_never_redirects_to_http() {
        let secure = url("https://t.example/announce?passkey=secret");
        assert_eq!(
            check_redirect(&secure, &url("http://t.example/announce?passkey=secret")),
            Err(AnnounceError::InsecureRedirect {
                from: "t.example".into(),
                to: "t.example".into(),
            })
        );
        assert!(check_redirect(&secure, &url("https://u.example:8443/a")).is_ok());
        let plain = url("http://t.example/announce");
        assert!(check_redirect(&plain, &url("https://t.example/announce")).is_ok());
        assert!(check_redirect(&plain, &url("http://u.example/announce")).is_ok());
        let message = check_redirect(&secure, &url("http://t.example:81/"))
            .unwrap_err()
            .to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
