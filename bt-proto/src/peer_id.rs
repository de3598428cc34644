//! Peer ids: generating ours, and naming the client behind someone else's.
//!
//! Ours is Azureus style (BEP 20): `-`, the client code [`CLIENT_CODE`], one digit of major
//! version, two of minor, `S` (stable) or `U` (unstable), `-`, then 12 random URL-safe
//! characters: 20 bytes that need no escaping in a tracker URL. The randomness is an input,
//! like everywhere in this crate.
//!
//! Other clients' ids are decoded for display only (a peer can claim any id): Azureus style
//! with a table of well-known codes, Mainline style (`M4-20-8-`), aria2 (`A2-1-36-0-`), Shad0w
//! style (`S58B-----`), old BitComet (`exbc`), XBT and Tixati; anything else is "unknown" with
//! the id's first bytes shown escaped.

use std::fmt;

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while_m_n},
    combinator::map_res,
};

use crate::PeerId;
use crate::encoding::{hex, percent};

/// Our two-letter Azureus-style client code: `Sx` (for "sans-IO").
///
/// Chosen because no client list consulted uses it in any letter case: BEP 20's table, the
/// tables of Transmission (`libtransmission/clients.cc`) and BiglyBT
/// (`BTPeerIDByteDecoderDefinitions.java`), which between them cover over a hundred codes
/// (`SB`, `SD`, `SP`, `SS`, `ST`, `st`, `SZ`, `S~` ... but no `SX`/`Sx`). A code of its own
/// lets trackers and peers tell this library apart from the client it may be embedded next to.
pub const CLIENT_CODE: [u8; 2] = *b"Sx";

/// The name other clients' ids decode to when they carry [`CLIENT_CODE`].
pub const CLIENT_NAME: &str = "bt";

/// The 64 characters of the random part: letters, digits, `-` and `_`, all unreserved in
/// URLs (RFC 3986), so the id goes into a tracker query unescaped. 64 is a power of two, so
/// uniform random bytes give uniform characters.
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A version that does not fit the id's one major and two minor digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The major version has more than one digit.
    #[error("major version {0} does not fit the peer id's one digit (0..=9)")]
    Major(u8),
    /// The minor version has more than two digits.
    #[error("minor version {0} does not fit the peer id's two digits (0..=99)")]
    Minor(u8),
}

/// Our version as written into the peer id: `major.minor`, stable or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientVersion {
    major: u8,
    minor: u8,
    stable: bool,
}

impl ClientVersion {
    /// This crate's version. Pre-1.0 releases are marked unstable.
    pub const CURRENT: ClientVersion = ClientVersion {
        major: 0,
        minor: 1,
        stable: false,
    };

    /// A version with `major` in 0..=9 and `minor` in 0..=99.
    pub fn new(major: u8, minor: u8, stable: bool) -> Result<Self, VersionError> {
        if major > 9 {
            return Err(VersionError::Major(major));
        }
        if minor > 99 {
            return Err(VersionError::Minor(minor));
        }
        Ok(ClientVersion {
            major,
            minor,
            stable,
        })
    }

    /// The major version, 0..=9.
    pub fn major(self) -> u8 {
        self.major
    }

    /// The minor version, 0..=99.
    pub fn minor(self) -> u8 {
        self.minor
    }

    /// Whether this is a stable release.
    pub fn stable(self) -> bool {
        self.stable
    }
}

impl PeerId {
    /// Our peer id for `version`, its random part drawn from `random` (12 uniformly random
    /// bytes from the engine's seeded RNG).
    ///
    /// ```
    /// use bt_proto::PeerId;
    /// use bt_proto::peer_id::ClientVersion;
    /// let version = ClientVersion::new(1, 2, true).unwrap();
    /// let id = PeerId::generate([0, 1, 2, 3, 4, 5, 6, 7, 62, 63, 64, 255], version);
    /// assert_eq!(&id.0, b"-Sx102S-ABCDEFGH-_A_");
    /// assert_eq!(id.client().to_string(), "bt 1.2");
    /// ```
    pub fn generate(random: [u8; 12], version: ClientVersion) -> PeerId {
        let [c0, c1] = CLIENT_CODE;
        let mut id = [
            b'-',
            c0,
            c1,
            b'0' + version.major,
            b'0' + version.minor / 10,
            b'0' + version.minor % 10,
            if version.stable { b'S' } else { b'U' },
            b'-',
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        for (slot, r) in id.iter_mut().skip(8).zip(random) {
            *slot = URL_SAFE.get(usize::from(r & 63)).copied().unwrap_or(b'-');
        }
        PeerId(id)
    }

    /// The client this id claims to come from, for display.
    pub fn client(&self) -> ClientInfo {
        identify(self)
    }
}

/// Who a peer id says its client is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// The client's name, e.g. `qBittorrent`; `unknown` when the id follows no known scheme.
    pub name: String,
    /// Its version, e.g. `4.6.3`; may be empty. For an unknown client, the first 8 bytes of
    /// the id (where clients put their mark; the rest is random by convention), printable
    /// ASCII kept and other bytes as `%XX`.
    pub version: String,
}

impl fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} {}", self.name, self.version)
        }
    }
}

/// How an Azureus-style client writes its version into the 4 characters after its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `a.b.c.d`, each character a digit (`A`=10 ... `Z`=35, `a`=36 ...).
    Four,
    /// `a.b.c`; the fourth character is a build tag, not shown.
    Three,
    /// BitComet, FlashGet: `0176` is 1.76 (the first digit is unused).
    SkipOneMajorTwoMinor,
    /// WebTorrent: two decimal digits of major, two of minor: `0102` is 1.2.
    TwoMajorTwoMinor,
    /// µTorrent and BitTorrent 6+: hex digits `a.b.c`, then a build letter (`B` beta).
    UTorrent,
    /// Transmission's three schemes over time (see [`transmission_version`]).
    Transmission,
    /// Ours: one major digit, two minor digits, `S` or `U`.
    Ours,
    /// No version information.
    None,
}

/// Azureus-style codes (BEP 20 and the client lists of Transmission and BiglyBT, checked
/// against the clients' own documentation where they have any).
const AZUREUS: &[(&[u8; 2], &str, Style)] = &[
    (b"7T", "aTorrent", Style::Four),
    (b"AG", "Ares", Style::Three),
    (b"A~", "Ares", Style::Three),
    (b"AR", "Arctic", Style::Four),
    (b"AT", "Artemis", Style::Four),
    (b"AV", "Avicora", Style::Four),
    (b"AX", "BitPump", Style::Four),
    (b"AZ", "Vuze", Style::Four),
    (b"BB", "BitBuddy", Style::Four),
    (b"BC", "BitComet", Style::SkipOneMajorTwoMinor),
    (b"BE", "BitTorrent SDK", Style::Four),
    (b"BF", "Bitflu", Style::None),
    (b"BG", "BTG", Style::Four),
    (b"BI", "BiglyBT", Style::Four),
    (b"BL", "BitLord", Style::Four),
    (b"BN", "Baidu Netdisk", Style::None),
    (b"BR", "BitRocket", Style::Four),
    (b"BS", "BTSlave", Style::Four),
    (b"BT", "BitTorrent", Style::UTorrent),
    (b"BW", "BitTorrent Web", Style::UTorrent),
    (b"BX", "BittorrentX", Style::Four),
    (b"CD", "Enhanced CTorrent", Style::Four),
    (b"CT", "CTorrent", Style::Four),
    (b"DE", "Deluge", Style::Three),
    (b"DP", "Propagate Data Client", Style::Four),
    (b"EB", "EBit", Style::Four),
    (b"ES", "Electric Sheep", Style::Three),
    (b"FC", "FileCroc", Style::Four),
    (b"FD", "Free Download Manager", Style::Three),
    (b"FG", "FlashGet", Style::SkipOneMajorTwoMinor),
    (b"FT", "FoxTorrent", Style::Four),
    (b"FW", "FrostWire", Style::Three),
    (b"FX", "Freebox BitTorrent", Style::Four),
    (b"GR", "GetRight", Style::Four),
    (b"GS", "GSTorrent", Style::Four),
    (b"HL", "Halite", Style::Three),
    (b"HN", "Hydranode", Style::Four),
    (b"KG", "KGet", Style::Four),
    (b"KT", "KTorrent", Style::Three),
    (b"LC", "LeechCraft", Style::Four),
    (b"LH", "LH-ABC", Style::Four),
    (b"LP", "Lphant", Style::Four),
    (b"LT", "libtorrent (Rasterbar)", Style::Three),
    (b"lt", "libTorrent (rTorrent)", Style::Three),
    (b"LW", "LimeWire", Style::None),
    (b"MG", "MediaGet", Style::Four),
    (b"MO", "MonoTorrent", Style::Four),
    (b"MP", "MooPolice", Style::Three),
    (b"MR", "Miro", Style::Four),
    (b"MT", "MoonlightTorrent", Style::Four),
    (b"NE", "BT Next Evolution", Style::Three),
    (b"NX", "Net Transport", Style::Four),
    (b"OS", "OneSwarm", Style::Four),
    (b"OT", "OmegaTorrent", Style::Four),
    (b"PD", "Pando", Style::Four),
    (b"PI", "PicoTorrent", Style::Three),
    (b"qB", "qBittorrent", Style::Three),
    (b"QD", "QQDownload", Style::Four),
    (b"QT", "Qt 4 Torrent example", Style::Four),
    (b"rQ", "rqbit", Style::Three),
    (b"RT", "Retriever", Style::Four),
    (b"RZ", "RezTorrent", Style::Four),
    (b"SB", "Swiftbit", Style::Four),
    (b"SD", "Thunder (Xunlei)", Style::Four),
    (b"SM", "SoMud", Style::Four),
    (b"SP", "BitSpirit", Style::Three),
    (b"SS", "SwarmScope", Style::Four),
    (b"ST", "SymTorrent", Style::Four),
    (b"st", "SharkTorrent", Style::Four),
    (b"SZ", "Shareaza", Style::Four),
    (b"S~", "Shareaza (beta)", Style::Four),
    (b"Sx", CLIENT_NAME, Style::Ours),
    (b"TN", "Torrent .NET", Style::Four),
    (b"TR", "Transmission", Style::Transmission),
    (b"TS", "Torrentstorm", Style::Four),
    (b"TT", "TuoTu", Style::Three),
    (b"TX", "Tixati", Style::Four),
    (b"UE", "µTorrent Embedded", Style::UTorrent),
    (b"UL", "uLeecher!", Style::Four),
    (b"UM", "µTorrent Mac", Style::UTorrent),
    (b"UT", "µTorrent", Style::UTorrent),
    (b"UW", "µTorrent Web", Style::UTorrent),
    (b"VG", "Vagaa", Style::Four),
    (b"WT", "BitLet", Style::Four),
    (b"WW", "WebTorrent", Style::TwoMajorTwoMinor),
    (b"WY", "FireTorrent", Style::Four),
    (b"XF", "Xfplay", Style::Four),
    (b"XL", "Xunlei", Style::Four),
    (b"XS", "XSwifter", Style::Four),
    (b"XT", "XanTorrent", Style::Four),
    (b"XX", "Xtorrent", Style::Four),
    (b"ZO", "Zona", Style::Four),
    (b"ZT", "ZipTorrent", Style::Four),
];

/// Shad0w-style first characters (BitTornado and its relatives).
const SHADOW: &[(u8, &str)] = &[
    (b'A', "ABC"),
    (b'O', "Osprey Permaseed"),
    (b'Q', "BTQueue"),
    (b'R', "Tribler"),
    (b'S', "Shad0w"),
    (b'T', "BitTornado"),
    (b'U', "UPnP NAT Bit Torrent"),
];

/// The digits of Shad0w-style versions, in value order.
const SHADOW_DIGITS: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-";

/// The client and version an id names when it follows a known scheme (`qBittorrent
/// 4.6.3`), else the id in hexadecimal.
///
/// ```
/// use bt_proto::PeerId;
/// assert_eq!(PeerId(*b"-qB4630-abcdefghijkl").to_string(), "qBittorrent 4.6.3");
/// assert_eq!(PeerId([0xff; 20]).to_string(), "ff".repeat(20));
/// ```
impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = identify(self);
        if c.name == "unknown" {
            for b in self.0 {
                write!(f, "{b:02x}")?;
            }
            return Ok(());
        }
        if c.version.is_empty() {
            write!(f, "{}", c.name)
        } else {
            write!(f, "{} {}", c.name, c.version)
        }
    }
}

/// Names the client behind a peer id (same as [`PeerId::client`]).
///
/// ```
/// use bt_proto::PeerId;
/// let id = PeerId(*b"-qB4630-k8hj0wgej6ch");
/// assert_eq!(id.client().to_string(), "qBittorrent 4.6.3");
/// let id = PeerId(*b"M7-4-0--9a3c4b2e1d0f");
/// assert_eq!(id.client().to_string(), "Mainline 7.4.0");
/// ```
pub fn identify(id: &PeerId) -> ClientInfo {
    let bytes = &id.0;
    azureus(bytes)
        .or_else(|| mainline(bytes))
        .or_else(|| aria2(bytes))
        .or_else(|| bitcomet_old(bytes))
        .or_else(|| xbt(bytes))
        .or_else(|| tixati(bytes))
        .or_else(|| shadow(bytes))
        .unwrap_or_else(|| ClientInfo {
            name: "unknown".into(),
            version: escape(bytes.get(..8).unwrap_or_default()),
        })
}

fn info(name: &str, version: impl Into<String>) -> Option<ClientInfo> {
    Some(ClientInfo {
        name: name.into(),
        version: version.into(),
    })
}

/// Printable ASCII as is, anything else (and `%`) as `%XX`.
fn escape(bytes: &[u8]) -> String {
    percent::encode(bytes, |b| b.is_ascii_graphic() && b != b'%')
}

/// A version character: `0`-`9`, then `A`-`Z` for 10-35, then `a`-`z` for 36-61.
fn base62(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 36),
        _ => None,
    }
}

/// Decimal digits only (`str::parse` would also take a sign).
fn decimal(chars: &[u8]) -> Option<u32> {
    chars.iter().try_fold(0u32, |n, &c| {
        let digit = char::from(c).to_digit(10)?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

fn dotted(values: &[Option<u32>]) -> Option<String> {
    let parts: Option<Vec<String>> = values.iter().map(|v| v.map(|n| n.to_string())).collect();
    parts.map(|p| p.join("."))
}

fn build_suffix(c: u8) -> &'static str {
    match c {
        b'B' | b'b' => " (beta)",
        b'd' => " (debug)",
        b'X' | b'x' | b'Z' => " (dev)",
        _ => "",
    }
}

/// `-XXvvvv-`: the most common scheme.
fn azureus(id: &[u8; 20]) -> Option<ClientInfo> {
    let [b'-', c0, c1, v0, v1, v2, v3, b'-', ..] = *id else {
        return None;
    };
    let code = [c0, c1];
    let v = [v0, v1, v2, v3];
    if !code.iter().chain(&v).all(u8::is_ascii_graphic) {
        return None;
    }
    let Some(&(_, name, style)) = AZUREUS.iter().find(|(c, _, _)| **c == code) else {
        // An unlisted code still follows the scheme if its version is plain characters.
        if !v.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let version = dotted(&v.map(base62)).unwrap_or_default();
        return info(&format!("unknown ({})", escape(&code)), version);
    };
    let version = match style {
        Style::Four => dotted(&v.map(base62)),
        Style::Three => dotted(&[base62(v0), base62(v1), base62(v2)]),
        Style::SkipOneMajorTwoMinor => {
            let minor = decimal(&[v2, v3])?;
            base62(v1).map(|major| format!("{major}.{minor:02}"))
        }
        Style::TwoMajorTwoMinor => dotted(&[decimal(&[v0, v1]), decimal(&[v2, v3])]),
        Style::UTorrent => {
            let digit = |c: u8| hex::digit_value(c).map(u32::from);
            dotted(&[digit(v0), digit(v1), digit(v2)]).map(|s| s + build_suffix(v3))
        }
        Style::Transmission => transmission_version(v),
        Style::Ours => {
            let major = char::from(v0).to_digit(10);
            let minor = decimal(&[v1, v2]);
            let stability = match v3 {
                b'S' => Some(""),
                b'U' => Some(" (unstable)"),
                _ => None,
            };
            match (major, minor, stability) {
                (Some(a), Some(b), Some(s)) => Some(format!("{a}.{b}{s}")),
                _ => None,
            }
        }
        Style::None => Some(String::new()),
    };
    // A listed client with a malformed version is still that client.
    info(name, version.unwrap_or_else(|| escape(&v)))
}

/// Transmission: `-TR0006-` is 0.6, `-TR0072-` 0.72, `-TR133Z-` 1.33+ (before 3.00), and
/// since 3.00 base-62 major, minor, patch and a build letter: `-TR40aZ-` is 4.0.36 (dev).
fn transmission_version([v0, v1, v2, v3]: [u8; 4]) -> Option<String> {
    if [v0, v1, v2] == *b"000" {
        return Some(format!("0.{}", char::from(v3).to_digit(10)?));
    }
    if [v0, v1] == *b"00" {
        return Some(format!("0.{:02}", decimal(&[v2, v3])?));
    }
    let major = base62(v0)?;
    if major >= 3 {
        let suffix = match v3 {
            b'0' => "",
            b'B' => " (beta)",
            b'Z' => " (dev)",
            _ => return None,
        };
        return dotted(&[Some(major), base62(v1), base62(v2)]).map(|s| s + suffix);
    }
    let plus = if matches!(v3, b'Z' | b'X') { "+" } else { "" };
    Some(format!("{major}.{:02}{plus}", decimal(&[v1, v2])?))
}

/// `1-36-0-`: three numbers of up to three digits, each followed by a dash.
fn dashed_version(input: &[u8]) -> IResult<&[u8], String> {
    fn number(input: &[u8]) -> IResult<&[u8], u32> {
        map_res(take_while_m_n(1, 3, |c: u8| c.is_ascii_digit()), |d| {
            decimal(d).ok_or(())
        })
        .parse(input)
    }
    (number, tag("-"), number, tag("-"), number, tag("-"))
        .map(|(a, _, b, _, c, _)| format!("{a}.{b}.{c}"))
        .parse(input)
}

/// Mainline (BitTorrent before 6.0) and Queen Bee: `M4-20-8-`, `Q1-10-0-`.
fn mainline(id: &[u8; 20]) -> Option<ClientInfo> {
    let (&first, rest) = id.split_first()?;
    let name = match first {
        b'M' => "Mainline",
        b'Q' => "Queen Bee",
        _ => return None,
    };
    let (_, version) = dashed_version(rest).ok()?;
    info(name, version)
}

/// aria2: `A2-1-36-0-`, or `-aria2-` from versions that did not encode their version.
fn aria2(id: &[u8; 20]) -> Option<ClientInfo> {
    if id.starts_with(b"-aria2-") {
        return info("aria2", "");
    }
    let (_, version) = (tag("A2-"), dashed_version)
        .map(|(_, v)| v)
        .parse(&id[..])
        .ok()?;
    info("aria2", version)
}

/// BitComet before 0.59 (and BitLord, which marks `LORD` after the version): `exbc` then a
/// major and a minor version byte.
fn bitcomet_old(id: &[u8; 20]) -> Option<ClientInfo> {
    let [b'e', b'x', b'b', b'c', major, minor, l0, l1, l2, l3, ..] = *id else {
        return None;
    };
    let name = if [l0, l1, l2, l3] == *b"LORD" {
        "BitLord"
    } else {
        "BitComet"
    };
    info(name, format!("{major}.{minor:02}"))
}

/// XBT Client: `XBT054d-` is 0.5.4 (debug build).
fn xbt(id: &[u8; 20]) -> Option<ClientInfo> {
    let [b'X', b'B', b'T', a, b, c, flag, ..] = *id else {
        return None;
    };
    let digit = |x: u8| char::from(x).to_digit(10);
    let version = dotted(&[digit(a), digit(b), digit(c)])?;
    info(
        "XBT Client",
        version + if flag == b'd' { " (debug)" } else { "" },
    )
}

/// Tixati: `TIX0283-` is 2.83.
fn tixati(id: &[u8; 20]) -> Option<ClientInfo> {
    let [b'T', b'I', b'X', a, b, c, d, ..] = *id else {
        return None;
    };
    let (major, minor) = (decimal(&[a, b])?, decimal(&[c, d])?);
    info("Tixati", format!("{major}.{minor:02}"))
}

/// Shad0w style: a client letter, up to five version digits from [`SHADOW_DIGITS`] padded
/// with dashes to six characters, then `---` (single-torrent clients; other forms exist but
/// look too much like random bytes to claim).
fn shadow(id: &[u8; 20]) -> Option<ClientInfo> {
    let (&first, rest) = id.split_first()?;
    let &(_, name) = SHADOW.iter().find(|(c, _)| *c == first)?;
    let (head, tail) = rest.split_at_checked(5)?;
    if !tail.starts_with(b"---") {
        return None;
    }
    let digits = head.iter().position(|&c| c == b'-').unwrap_or(head.len());
    let (version, padding) = head.split_at(digits);
    if version.is_empty() || padding.iter().any(|&c| c != b'-') {
        return None;
    }
    let values: Vec<Option<u32>> = version
        .iter()
        .map(|c| {
            SHADOW_DIGITS
                .iter()
                .position(|d| d == c)
                .and_then(|p| u32::try_from(p).ok())
        })
        .collect();
    info(name, dotted(&values)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(prefix: &[u8]) -> PeerId {
        let mut bytes = *b"xxxxxxxxxxxxxxxxxxxx";
        bytes[..prefix.len()].copy_from_slice(prefix);
        PeerId(bytes)
    }

    fn client(prefix: &[u8]) -> String {
        id(prefix).client().to_string()
    }

    #[test]
    fn our_id_has_the_documented_shape() {
        let v = ClientVersion::new(0, 7, false).unwrap();
        let ours = PeerId::generate([0; 12], v);
        assert_eq!(&ours.0, b"-Sx007U-AAAAAAAAAAAA");
        let stable = ClientVersion::new(9, 99, true).unwrap();
        let ours = PeerId::generate([255; 12], stable);
        assert_eq!(&ours.0, b"-Sx999S-____________");
        assert_eq!(ours.client().to_string(), "bt 9.99");
        assert_eq!(
            PeerId::generate([1; 12], v).client(),
            ClientInfo {
                name: "bt".into(),
                version: "0.7 (unstable)".into()
            }
        );
    }

    #[test]
    fn versions_must_fit_their_digits() {
        assert_eq!(
            ClientVersion::new(10, 0, true),
            Err(VersionError::Major(10))
        );
        assert_eq!(
            ClientVersion::new(1, 100, true),
            Err(VersionError::Minor(100))
        );
        let v = ClientVersion::new(3, 45, true).unwrap();
        assert_eq!((v.major(), v.minor(), v.stable()), (3, 45, true));
    }

    #[test]
    fn current_version_matches_the_crate() {
        let v = ClientVersion::CURRENT;
        assert_eq!(
            v.major().to_string(),
            env!("CARGO_PKG_VERSION_MAJOR"),
            "update ClientVersion::CURRENT"
        );
        assert_eq!(v.minor().to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(v.stable(), v.major() >= 1);
    }

    #[test]
    fn our_code_is_not_a_known_clients() {
        let same_letters = AZUREUS
            .iter()
            .filter(|(c, _, _)| c.eq_ignore_ascii_case(&CLIENT_CODE))
            .count();
        assert_eq!(same_letters, 1, "only our own entry");
    }

    #[test]
    fn azureus_style_clients() {
        assert_eq!(client(b"-LT2090-"), "libtorrent (Rasterbar) 2.0.9");
        assert_eq!(client(b"-LT20A0-"), "libtorrent (Rasterbar) 2.0.10");
        assert_eq!(client(b"-lt0D80-"), "libTorrent (rTorrent) 0.13.8");
        assert_eq!(client(b"-qB4630-"), "qBittorrent 4.6.3");
        assert_eq!(client(b"-DE13F0-"), "Deluge 1.3.15");
        assert_eq!(client(b"-rQ8000-"), "rqbit 8.0.0");
        assert_eq!(client(b"-AZ5750-"), "Vuze 5.7.5.0");
        assert_eq!(client(b"-BC0176-"), "BitComet 1.76");
        assert_eq!(client(b"-UT3550-"), "µTorrent 3.5.5");
        assert_eq!(client(b"-UT355B-"), "µTorrent 3.5.5 (beta)");
        assert_eq!(client(b"-BT7a5W-"), "BitTorrent 7.10.5");
        assert_eq!(client(b"-WW0102-"), "WebTorrent 1.2");
        assert_eq!(client(b"-WW0016-"), "WebTorrent 0.16");
        assert_eq!(client(b"-WW+1+2-"), "WebTorrent +1+2");
        assert_eq!(client(b"-LW0001-"), "LimeWire");
    }

    #[test]
    fn transmission_versions_of_every_era() {
        assert_eq!(client(b"-TR0006-"), "Transmission 0.6");
        assert_eq!(client(b"-TR0072-"), "Transmission 0.72");
        assert_eq!(client(b"-TR1330-"), "Transmission 1.33");
        assert_eq!(client(b"-TR133Z-"), "Transmission 1.33+");
        assert_eq!(client(b"-TR4060-"), "Transmission 4.0.6");
        assert_eq!(client(b"-TR400B-"), "Transmission 4.0.0 (beta)");
        assert_eq!(client(b"-TR40aZ-"), "Transmission 4.0.36 (dev)");
        assert_eq!(client(b"-TR4A00-"), "Transmission 4.10.0");
    }

    #[test]
    fn unlisted_and_malformed_azureus_ids() {
        assert_eq!(
            id(b"-ZZ1234-").client(),
            ClientInfo {
                name: "unknown (ZZ)".into(),
                version: "1.2.3.4".into()
            }
        );
        // A known code with a version it does not follow keeps its name.
        assert_eq!(client(b"-TR4!!0-"), "Transmission 4!!0");
        // Not the scheme: no closing dash, or an unlisted code with odd version characters.
        assert_eq!(id(b"-ZZ1234x").client().name, "unknown");
        assert_eq!(id(b"-ZZ12.4-").client().name, "unknown");
    }

    #[test]
    fn mainline_aria2_and_other_schemes() {
        assert_eq!(client(b"M4-20-8-"), "Mainline 4.20.8");
        assert_eq!(client(b"M4-3-6--"), "Mainline 4.3.6");
        assert_eq!(client(b"Q1-10-0-"), "Queen Bee 1.10.0");
        assert_eq!(client(b"A2-1-36-0-"), "aria2 1.36.0");
        assert_eq!(client(b"-aria2-"), "aria2");
        assert_eq!(client(b"S58B-----"), "Shad0w 5.8.11");
        assert_eq!(client(b"T03A0----"), "BitTornado 0.3.10.0");
        assert_eq!(client(b"exbc\x00\x3aLORD"), "BitLord 0.58");
        assert_eq!(client(b"exbc\x00\x3a"), "BitComet 0.58");
        assert_eq!(client(b"XBT054d-"), "XBT Client 0.5.4 (debug)");
        assert_eq!(client(b"TIX0283-"), "Tixati 2.83");
        // Near misses are not claimed.
        assert_eq!(id(b"M4-20-8x").client().name, "unknown");
        assert_eq!(id(b"S58B-x---").client().name, "unknown");
        assert_eq!(id(b"S58B--x--").client().name, "unknown");
    }

    #[test]
    fn unknown_ids_show_their_first_bytes() {
        let mut raw = [0u8; 20];
        raw[..8].copy_from_slice(b"\x00ab%\xffZ9 ");
        let info = PeerId(raw).client();
        assert_eq!(info.name, "unknown");
        assert_eq!(info.version, "%00ab%25%FFZ9%20");
        assert_eq!(info.to_string(), "unknown %00ab%25%FFZ9%20");
    }

    proptest! {
        #[test]
        fn generated_ids_are_url_safe_and_parse_back(
            random in any::<[u8; 12]>(),
            major in 0u8..=9,
            minor in 0u8..=99,
            stable in any::<bool>(),
        ) {
            let v = ClientVersion::new(major, minor, stable).unwrap();
            let ours = PeerId::generate(random, v);
            let url_safe = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
            prop_assert!(ours.0.iter().all(url_safe));
            prop_assert_eq!(&ours.0[..3], b"-Sx");
            // The random part keeps all the entropy: distinct bytes mod 64 give distinct ids.
            for (r, c) in random.iter().zip(&ours.0[8..]) {
                prop_assert_eq!(URL_SAFE[usize::from(r & 63)], *c);
            }
            let info = ours.client();
            prop_assert_eq!(info.name, "bt");
            let expected = format!("{major}.{minor}{}", if stable { "" } else { " (unstable)" });
            prop_assert_eq!(info.version, expected);
        }

        #[test]
        fn any_id_gets_a_name(raw in any::<[u8; 20]>()) {
            let info = PeerId(raw).client();
            prop_assert!(!info.name.is_empty());
        }
    }
}
