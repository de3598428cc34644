//! Tracker URLs: `http://`, `https://` and `udp://`, parsed once into scheme, host, port and
//! request target, so an adapter connects and dispatches on [`Url::scheme`] without taking
//! the text apart itself.
//!
//! Parsing is strict where a URL reaches the network: no user information (never sent, so
//! refused rather than dropped), host names of host characters only, ports 1 to 65535 in
//! digits, at most [`MAX_URL_LEN`] bytes. The scheme is matched in any case; `udp` has no
//! default port.
//!
//! ```
//! use bt_proto::tracker::url::{Scheme, Url};
//! let u = Url::parse("UDP://Tracker.Example:1337/announce").unwrap();
//! assert_eq!((u.scheme, u.host.as_str(), u.port), (Scheme::Udp, "tracker.example", 1337));
//! assert_eq!(u.to_string(), "udp://tracker.example:1337/announce");
//! ```

use std::fmt;
use std::net::Ipv6Addr;

use crate::encoding::percent;

/// Longest URL accepted (as given, or in a `Location`); trackers use short URLs and servers
/// commonly refuse request lines over 8 KiB.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// How a tracker is reached. TLS for `https` is the adapter's job; the HTTP bytes are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
    /// `udp` (BEP 15), no default port.
    Udp,
}

impl Scheme {
    /// The port used when the URL has none; `None` for `udp`, whose URLs always name one.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Udp => None,
        }
    }

    /// `http`, `https` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Udp => "udp",
        }
    }

    /// Whether the tracker speaks HTTP (plain or over TLS), so a request is a `GET` and a
    /// redirect may be followed.
    pub fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }

    /// The scheme named `name`, in any case.
    fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Http, Scheme::Https, Scheme::Udp]
            .into_iter()
            .find(|s| name.eq_ignore_ascii_case(s.as_str()))
    }
}

/// A URL that cannot be used for a tracker request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` at the start.
    #[error("URL has no scheme")]
    MissingScheme,
    /// A scheme other than `http`, `https` or `udp`.
    #[error("unsupported URL scheme {0:?}")]
    UnsupportedScheme(String),
    /// No port, for a scheme without a default (`udp`).
    #[error("URL has no port")]
    MissingPort,
    /// `user:password@` in the authority: never sent, so refused rather than dropped.
    #[error("URL has user information, which is not supported")]
    UserInfo,
    /// No host.
    #[error("URL has no host")]
    EmptyHost,
    /// A host with characters no host name or address has.
    #[error("invalid host {0:?}")]
    BadHost(String),
    /// A port that is not a number in 1..=65535.
    #[error("invalid port {0:?}")]
    BadPort(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL is {len} bytes, longer than {MAX_URL_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// A tracker URL (`http`, `https` or `udp`), split for connecting and requesting.
///
/// The path and query are kept as given except that bytes which may not appear in a request
/// line (controls, space, non-ASCII) are percent-encoded, so a URL can never inject headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    /// How the tracker is reached.
    pub scheme: Scheme,
    /// Host name (lowercased) or IP address; IPv6 without brackets.
    pub host: String,
    /// Port, the scheme's default if the URL has none.
    pub port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub path_and_query: String,
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `s`, percent-encoding the bytes that may not appear in a request target
/// (controls, space, non-ASCII); a URL's own escapes and delimiters stay as they are.
fn push_request_target(out: &mut String, s: &str) {
    percent::encode_into(s.as_bytes(), |b| b.is_ascii_graphic(), out);
}

/// RFC 3986 section 5.2.4 for an absolute path: resolves `.` and `..` segments.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A trailing `.` or `..` leaves the path ending in `/`.
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether `s` starts with a URI scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`).
fn scheme_prefix(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

impl Url {
    /// Parses an absolute `http://`, `https://` or `udp://` URL; the scheme in any case.
    ///
    /// ```
    /// use bt_proto::tracker::url::{Scheme, Url};
    /// let u = Url::parse("https://[2001:db8::1]/ann ounce#x").unwrap();
    /// assert_eq!(u.scheme, Scheme::Https);
    /// assert_eq!((u.host.as_str(), u.port), ("2001:db8::1", 443));
    /// assert_eq!(u.path_and_query, "/ann%20ounce");
    /// assert_eq!(u.to_string(), "https://[2001:db8::1]/ann%20ounce");
    /// ```
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong { len: s.len() });
        }
        let (scheme, rest) = scheme_prefix(s).ok_or(UrlError::MissingScheme)?;
        let scheme = Scheme::from_name(scheme)
            .ok_or_else(|| UrlError::UnsupportedScheme(scheme.to_owned()))?;
        let rest = rest.strip_prefix("//").ok_or(UrlError::MissingScheme)?;
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::BadHost(authority.to_owned()))?;
            let ip: Ipv6Addr = addr
                .parse()
                .map_err(|_| UrlError::BadHost(authority.to_owned()))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| UrlError::BadHost(authority.to_owned()))?,
                ),
            };
            (ip.to_string(), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(UrlError::EmptyHost);
            }
            if !host.bytes().all(is_host_char) {
                return Err(UrlError::BadHost(host.to_owned()));
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None | Some("") => scheme.default_port().ok_or(UrlError::MissingPort)?,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&n| n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| UrlError::BadPort(p.to_owned()))?,
        };
        let mut path_and_query = String::with_capacity(target.len() + 1);
        if !target.starts_with('/') {
            path_and_query.push('/');
        }
        push_request_target(&mut path_and_query, target);
        Ok(Url {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// The `Host` header value: the host (IPv6 in brackets) and the port unless it is the
    /// scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if Some(self.port) == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves a reference (a `Location` value) against this URL (RFC 3986 section 5.2):
    /// absolute, scheme-relative (`//host/p`), absolute-path, query-only and relative-path
    /// references.
    ///
    /// ```
    /// use bt_proto::tracker::url::Url;
    /// let base = Url::parse("http://t.example/a/b/announce?x=1").unwrap();
    /// assert_eq!(base.join("../c?y").unwrap().to_string(), "http://t.example/a/c?y");
    /// assert_eq!(base.join("//o.example/z").unwrap().to_string(), "http://o.example/z");
    /// assert_eq!(base.join("https://s.example/").unwrap().to_string(), "https://s.example/");
    /// ```
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        if reference.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong {
                len: reference.len(),
            });
        }
        let reference = reference.trim();
        let reference = reference.split_once('#').map_or(reference, |(r, _)| r);
        if scheme_prefix(reference).is_some() {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme.as_str()));
        }
        let (base_path, base_query) = self
            .path_and_query
            .split_once('?')
            .map_or((self.path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
        let (ref_path, ref_query) = reference
            .split_once('?')
            .map_or((reference, None), |(p, q)| (p, Some(q)));
        let (path, query) = if ref_path.is_empty() {
            (base_path.to_owned(), ref_query.or(base_query))
        } else if ref_path.starts_with('/') {
            (remove_dot_segments(ref_path), ref_query)
        } else {
            let dir = base_path
                .rfind('/')
                .map_or("/", |i| base_path.get(..=i).unwrap_or("/"));
            (remove_dot_segments(&format!("{dir}{ref_path}")), ref_query)
        };
        let mut target = path;
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        let mut joined = Url {
            path_and_query: String::with_capacity(target.len()),
            ..self.clone()
        };
        push_request_target(&mut joined.path_and_query, &target);
        Ok(joined)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path_and_query
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn url_parse_parts_and_defaults() {
        let u = url("http://Tracker.Example/announce");
        assert_eq!(
            u,
            Url {
                scheme: Scheme::Http,
                host: "tracker.example".into(),
                port: 80,
                path_and_query: "/announce".into()
            }
        );
        assert_eq!(url("HTTPS://t.example").port, 443);
        assert_eq!(url("https://t.example").path_and_query, "/");
        assert_eq!(url("http://t.example?x=1").path_and_query, "/?x=1");
        assert_eq!(url("http://t.example:/a").port, 80);
        assert_eq!(
            url("http://10.0.0.1:6969/a?b=c#frag").path_and_query,
            "/a?b=c"
        );
        assert_eq!(url("http://[::1]:8080/").host, "::1");
        assert_eq!(url("http://[::1]:8080/").authority(), "[::1]:8080");
        assert_eq!(url("http://t.example:80/").authority(), "t.example");
        assert_eq!(url("https://t.example:80/").authority(), "t.example:80");
    }

    #[test]
    fn url_parse_rejects() {
        let cases = [
            ("ftp://t:1/a", UrlError::UnsupportedScheme("ftp".into())),
            ("t.example/a", UrlError::MissingScheme),
            ("http:t.example", UrlError::MissingScheme),
            ("http://u:p@t/", UrlError::UserInfo),
            ("http:///a", UrlError::EmptyHost),
            ("http://:80/a", UrlError::EmptyHost),
            ("http://t:0/", UrlError::BadPort("0".into())),
            ("http://t:65536/", UrlError::BadPort("65536".into())),
            ("http://t:+8/", UrlError::BadPort("+8".into())),
            ("http://t\r\nX: y/", UrlError::BadHost("t\r\nX".into())),
            ("http://[::g]/", UrlError::BadHost("[::g]".into())),
            ("http://[::1]x/", UrlError::BadHost("[::1]x".into())),
        ];
        for (url, error) in cases {
            assert_eq!(Url::parse(url), Err(error), "{url:?}");
        }
        let long = format!("http://t/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(Url::parse(&long), Err(UrlError::TooLong { .. })));
    }

    #[test]
    fn udp_urls_name_their_port() {
        assert_eq!(
            url("udp://tracker.example:1337/announce"),
            Url {
                scheme: Scheme::Udp,
                host: "tracker.example".into(),
                port: 1337,
                path_and_query: "/announce".into()
            }
        );
        let v6 = url("UdP://[::1]:80");
        assert_eq!(
            (v6.scheme, v6.host.as_str(), v6.port),
            (Scheme::Udp, "::1", 80)
        );
        assert_eq!(v6.to_string(), "udp://[::1]:80/");
        assert_eq!(
            Url::parse("udp://tracker.example/announce"),
            Err(UrlError::MissingPort)
        );
        assert_eq!(Url::parse("udp://t:/a"), Err(UrlError::MissingPort));
        assert_eq!(Url::parse("udp://:80"), Err(UrlError::EmptyHost));
        assert_eq!(
            Url::parse("udp://h:99999"),
            Err(UrlError::BadPort("99999".into()))
        );
        assert!(Scheme::Udp.default_port().is_none() && !Scheme::Udp.is_http());
        assert!(Scheme::Http.is_http() && Scheme::Https.is_http());
    }

    #[test]
    fn join_references() {
        let base = url("http://t.example:8080/a/b/announce?x=1");
        let cases = [
            ("http://o.example/p", "http://o.example/p"),
            ("//o.example/p?q", "http://o.example/p?q"),
            ("/new", "http://t.example:8080/new"),
            ("/x/./y/../z", "http://t.example:8080/x/z"),
            ("c", "http://t.example:8080/a/b/c"),
            ("../c", "http://t.example:8080/a/c"),
            ("../../../../c", "http://t.example:8080/c"),
            ("..", "http://t.example:8080/a/"),
            ("?y=2", "http://t.example:8080/a/b/announce?y=2"),
            ("", "http://t.example:8080/a/b/announce?x=1"),
            ("#frag", "http://t.example:8080/a/b/announce?x=1"),
            ("a b", "http://t.example:8080/a/b/a%20b"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                want,
                "{reference}"
            );
        }
        assert_eq!(
            base.join("ftp://x/"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
    }

    proptest! {
        #[test]
        fn url_functions_never_panic(s in ".{0,80}", r in ".{0,80}") {
            if let Ok(u) = Url::parse(&s) {
                let _ = u.get_request("x");
                if let Ok(j) = u.join(&r) {
                    // A joined URL prints as a URL that parses back to itself.
                    prop_assert_eq!(Url::parse(&j.to_string()), Ok(j));
                }
            }
            let _ = Url::parse(&r);
        }
    }
}
