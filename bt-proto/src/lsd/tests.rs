use proptest::prelude::*;

use super::*;

fn hash(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

fn announce(group: LsdGroup, hashes: &[InfoHash], cookie: Option<&str>) -> Announce {
    Announce {
        group,
        port: 6881,
        info_hashes: hashes.to_vec(),
        cookie: cookie.map(str::to_string),
    }
}

const LIBTORRENT_STYLE: &[u8] = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n\
Port: 51413\r\nInfohash: D2474E86C95B19B8BCFDB92BC12C9D44667CFA36\r\ncookie: 1a2b3c\r\n\r\n\r\n";

#[test]
fn round_trips_on_both_groups() {
    for group in LsdGroup::ALL {
        let a = announce(group, &[hash(1), hash(2)], Some("0badcafe"));
        assert_eq!(Announce::decode(&a.encode()), Ok(a));
    }
    let a = announce(LsdGroup::V4, &[hash(3)], None);
    assert_eq!(Announce::decode(&a.encode()), Ok(a));
}

#[test]
fn reads_another_clients_announce() {
    let a = Announce::decode(LIBTORRENT_STYLE).unwrap();
    assert_eq!(a.group, LsdGroup::V4);
    assert_eq!(a.port, 51413);
    assert_eq!(
        a.info_hashes,
        vec!["d2474e86c95b19b8bcfdb92bc12c9d44667cfa36".parse().unwrap()]
    );
    assert_eq!(a.cookie.as_deref(), Some("1a2b3c"));
    // Header names in any case, unknown headers ignored, no trailing blank line.
    let other = b"BT-SEARCH * HTTP/1.1\r\nhost: [FF15::EFC0:988F]:6771\r\nPORT: 1\r\n\
X-Whatever: yes\r\ninfohash: 0101010101010101010101010101010101010101\r\n\r\n";
    let a = Announce::decode(other).unwrap();
    assert_eq!((a.group, a.port, a.cookie), (LsdGroup::V6, 1, None));
}

#[test]
fn the_fullest_announce_fits_the_limit() {
    let hashes: Vec<InfoHash> = (0..MAX_LSD_INFOHASHES as u8).map(hash).collect();
    let cookie = "f".repeat(MAX_LSD_COOKIE_LEN);
    let mut a = announce(LsdGroup::V6, &hashes, Some(&cookie));
    a.port = 65535;
    let bytes = a.encode();
    assert!(bytes.len() <= MAX_LSD_MESSAGE_LEN, "{} bytes", bytes.len());
    assert_eq!(Announce::decode(&bytes), Ok(a));
}

#[test]
fn refuses_truncated_and_oversized() {
    let full = announce(LsdGroup::V4, &[hash(1)], Some("c")).encode();
    for cut in 0..full.len() - 4 {
        let r = Announce::decode(&full[..cut]);
        assert!(r.is_err(), "cut at {cut}: {r:?}");
    }
    let mut long = LIBTORRENT_STYLE.to_vec();
    long.resize(MAX_LSD_MESSAGE_LEN + 1, b'\n');
    assert_eq!(
        Announce::decode(&long),
        Err(LsdError::TooLong(MAX_LSD_MESSAGE_LEN + 1))
    );
}

/// `LIBTORRENT_STYLE` with `from` replaced by `to`.
fn altered(from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(LIBTORRENT_STYLE.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[test]
fn refuses_what_is_not_an_announce() {
    let cases: &[(&str, &str, LsdError)] = &[
        ("BT-SEARCH", "M-SEARCH", LsdError::NotBtSearch),
        ("* HTTP", "/ HTTP", LsdError::NotBtSearch),
        ("HTTP/1.1", "HTTP/1.0", LsdError::NotBtSearch),
        (
            "239.192.152.143:6771",
            "239.192.152.143:80",
            LsdError::WrongHost,
        ),
        ("Host: 239.192.152.143:6771\r\n", "", LsdError::WrongHost),
        ("51413", "0", LsdError::BadPort),
        ("51413", "65536", LsdError::BadPort),
        ("51413", "+5141", LsdError::BadPort),
        ("51413", "", LsdError::BadPort),
        ("Port: 51413\r\n", "", LsdError::BadPort),
        ("D2474E86C95B", "X2474E86C95B", LsdError::BadInfohash),
        ("Infohash: D2", "Infohash: D", LsdError::BadInfohash),
        ("Infohash:", "X-Infohash:", LsdError::NoInfohash),
        (
            "cookie: 1a2b3c\r\n",
            "cookie: a\r\ncookie: b\r\n",
            LsdError::Repeated("cookie"),
        ),
        (
            "Port: 51413\r\n",
            "Port: 1\r\nPort: 2\r\n",
            LsdError::Repeated("Port"),
        ),
        ("1a2b3c", "1a 2b", LsdError::BadCookie),
        ("\r\n\r\n\r\n", "\r\n\r\nhello", LsdError::TrailingData),
    ];
    for (from, to, error) in cases {
        assert_eq!(
            Announce::decode(&altered(from, to)).as_ref(),
            Err(error),
            "{from:?} -> {to:?}"
        );
    }
    assert!(matches!(
        Announce::decode(b"BT-SEARCH * HTTP/1.1\r\nHost\r\n\r\n"),
        Err(LsdError::Malformed(_))
    ));
}

#[test]
fn bounds_the_info_hashes() {
    let line = |i: u8| format!("Infohash:{}\r\n", hash(i));
    let head = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 1\r\n";
    let many: String = (0..=MAX_LSD_INFOHASHES as u8).map(line).collect();
    let msg = format!("{head}{many}\r\n");
    assert_eq!(
        Announce::decode(msg.as_bytes()),
        Err(LsdError::TooManyInfohashes)
    );
    // Repeats count once.
    let repeated: String = (0..=MAX_LSD_INFOHASHES as u8).map(|_| line(7)).collect();
    let msg = format!("{head}{repeated}\r\n");
    assert_eq!(
        Announce::decode(msg.as_bytes()).unwrap().info_hashes,
        [hash(7)]
    );
    // Too many header lines for the parser is malformed, not a crash.
    let junk: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("X{i}: y\r\n"))
        .collect();
    let msg = format!("{head}{}{junk}\r\n", line(1));
    assert!(matches!(
        Announce::decode(msg.as_bytes()),
        Err(LsdError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = Announce::decode(&data);
    }

    #[test]
    fn any_announce_within_the_limits_round_trips(
        v6 in any::<bool>(),
        port in 1u16..,
        hashes in proptest::collection::btree_set(any::<[u8; 20]>(), 1..=MAX_LSD_INFOHASHES),
        cookie in proptest::option::of("[!-~]{0,16}"),
    ) {
        let a = Announce {
            group: if v6 { LsdGroup::V6 } else { LsdGroup::V4 },
            port,
            info_hashes: hashes.into_iter().map(InfoHash).collect(),
            cookie,
        };
        let bytes = a.encode();
        prop_assert!(bytes.len() <= MAX_LSD_MESSAGE_LEN);
        prop_assert_eq!(Announce::decode(&bytes), Ok(a));
    }
}
