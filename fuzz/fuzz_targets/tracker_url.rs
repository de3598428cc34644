//! Tracker URLs (`http`, `https`, `udp`) and where they may be asked: nothing panics, parsed
//! URLs print as URLs that parse back to themselves, a URL never adds a request header,
//! references resolve to URLs of the same kinds, and the SSRF rules of
//! `bt_proto::tracker::reach` decide as they say.
//!
//! The input is a flags byte (bit 0: the address is IPv6; bits 1 and 2: no redirect, a
//! redirect from a local tracker, or one from a global tracker), 16 address bytes (the first
//! 4 for IPv4), then text: a URL, and after the first newline a reference to resolve
//! against it (a `Location`).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bt_proto::tracker::AnnounceError;
use bt_proto::tracker::reach::{Hop, LOCAL_TRACKER_PATH, check_address, check_redirect, is_local};
use bt_proto::tracker::url::{MAX_URL_LEN, Scheme, Url};
use libfuzzer_sys::fuzz_target;

/// What every parsed URL satisfies.
fn check_url(url: &Url) {
    assert!(!url.host.is_empty());
    assert_ne!(url.port, 0);
    assert!(url.path_and_query.starts_with('/'), "{url:?}");
    // Nothing a request line may not carry: no control, space or non-ASCII byte.
    assert!(
        url.path_and_query.bytes().all(|b| b.is_ascii_graphic()),
        "{url:?}"
    );
    let written = url.to_string();
    if written.len() <= MAX_URL_LEN {
        assert_eq!(Url::parse(&written).as_ref(), Ok(url), "{written:?}");
    }
    if url.scheme.is_http() {
        let request = url.get_request("fuzz");
        assert!(request.ends_with(b"\r\n\r\n"));
        // The request line and the headers we write, nothing more.
        let lines = request.split(|&b| b == b'\n').count();
        assert_eq!(lines, 7, "{:?}", String::from_utf8_lossy(&request));
    }
}

/// The address the input names.
fn address(ipv6: bool, bytes: [u8; 16]) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        let [a, b, c, d, ..] = bytes;
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }
}

/// The SSRF rules, against what they promise.
fn check_reach(url: &Url, ip: IpAddr, redirected_by: Option<&Hop>) {
    let local = is_local(ip);
    if let IpAddr::V4(v4) = ip {
        assert_eq!(local, is_local(IpAddr::V6(v4.to_ipv6_mapped())), "{ip}");
    }
    let path = url.path_and_query.split('?').next().unwrap_or_default();
    match check_address(url, ip, redirected_by) {
        Ok(hop) => {
            assert_eq!(hop.local, local);
            assert_eq!(hop.host, url.authority());
            if local {
                assert!(redirected_by.is_none_or(|h| h.local), "{redirected_by:?}");
                assert!(
                    url.scheme == Scheme::Udp || path == LOCAL_TRACKER_PATH,
                    "{url}"
                );
            }
        }
        Err(AnnounceError::RedirectToLocal { addr, .. }) => {
            assert!(local && addr == ip);
            assert!(redirected_by.is_some_and(|h| !h.local));
        }
        Err(AnnounceError::LocalPath { addr, host }) => {
            assert!(local && addr == ip && host == url.authority());
            assert!(url.scheme != Scheme::Udp && path != LOCAL_TRACKER_PATH);
        }
        Err(other) => panic!("check_address gave {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&ip_bytes, text)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let ip = address(flags & 1 != 0, ip_bytes);
    let hop = match flags >> 1 & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
    .map(|local| Hop {
        host: "redirector.example".into(),
        local,
    });
    let text = String::from_utf8_lossy(text);
    let (base, reference) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(url) = Url::parse(base) else {
        return;
    };
    check_url(&url);
    check_reach(&url, ip, hop.as_ref());
    if let Ok(joined) = url.join(reference) {
        check_url(&joined);
        check_reach(&joined, ip, hop.as_ref());
        let downgrade = url.scheme == Scheme::Https && joined.scheme != Scheme::Https;
        assert_eq!(check_redirect(&url, &joined).is_err(), downgrade);
    }
});
