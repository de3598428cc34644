//! `--max-download-rate RATE` and `--max-upload-rate RATE` of `bt download` and `bt seed`.
//!
//! RATE is bytes per second: a number, whole or with a fraction, and an optional suffix `K`,
//! `M` or `G` (either case), each 1024 times the one before, so `500K` is 512,000 bytes a
//! second and `1.5M` is 1,572,864. What a fraction leaves below one byte is dropped. `0` is
//! no limit. Anything else (a sign, a space, another suffix, a figure beyond 2^64) is refused
//! with one sentence, and the command exits with status 2 as for any bad argument.

use bt_tokio::{RateLimits, SessionBuilder};

/// The session's rate limits, as given on the command line.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct RateArgs {
    /// Download at most RATE bytes per second: a number with an optional suffix K, M or G
    /// (1024-based), as 500K or 1.5M; 0 is no limit.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "0")]
    max_download_rate: u64,
    /// Upload at most RATE bytes per second (as --max-download-rate).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, default_value = "0")]
    max_upload_rate: u64,
}

impl RateArgs {
    /// The limits these arguments give.
    pub(crate) fn limits(self) -> RateLimits {
        RateLimits {
            upload: self.max_upload_rate,
            download: self.max_download_rate,
        }
    }

    /// `builder` with these limits for its session.
    pub(crate) fn apply(self, builder: SessionBuilder) -> SessionBuilder {
        builder.rate_limits(self.limits())
    }
}

/// Digits of a fraction that count: 1024^3 has 10 digits, so a finer fraction cannot move
/// the result by a byte, and capping it keeps the arithmetic within `u128`.
const MAX_FRACTION_DIGITS: usize = 12;

/// Parses a RATE (see the module docs) into bytes per second.
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}` is not a rate: give bytes per second as a number with an optional \
             suffix K, M or G (1024-based), as 500K or 1.5M, or 0 for no limit"
        )
    };
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit: u128 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(bad()),
            };
            (text.get(..i).ok_or_else(bad)?, unit)
        }
        _ => (text, 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let fraction = fraction
        .get(..fraction.len().min(MAX_FRACTION_DIGITS))
        .unwrap_or("");
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    let bytes = whole
        .checked_mul(unit)
        .and_then(|w| w.checked_add(fraction * unit / scale))
        .ok_or_else(bad)?;
    u64::try_from(bytes).map_err(|_| bad())
}

/// A rate for people: bytes per second in the largest 1024-based unit it reaches, or
/// "unlimited" for 0.
pub(crate) fn show_rate(rate: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    if rate == 0 {
        return "unlimited".into();
    }
    for (name, size) in UNITS {
        if rate >= size {
            return format!("{:.1} {name}/s", rate as f64 / size as f64);
        }
    }
    format!("{rate} B/s")
}

/// Says on stderr which limits hold, if any does.
pub(crate) fn say_limits(limits: RateLimits) {
    if limits != RateLimits::NONE {
        eprintln!(
            "rate limits: download {}, upload {}",
            show_rate(limits.download),
            show_rate(limits.upload)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_with_and_without_suffixes() {
        for (text, bytes) in [
            ("0", 0),
            ("1", 1),
            ("1000", 1000),
            ("500K", 500 * 1024),
            ("500k", 500 * 1024),
            ("2M", 2 << 20),
            ("1.5M", 3 << 19),
            ("1.5m", 3 << 19),
            ("0.5K", 512),
            ("1G", 1 << 30),
            ("0G", 0),
            ("1.0009765625K", 1025),
            // Below a byte is dropped.
            ("1.9", 1),
            ("0.1", 0),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_rate(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_rate_is_refused_in_one_sentence() {
        for text in [
            "",
            "K",
            "-1",
            "+1",
            "1.",
            ".5",
            "1..2",
            "1.2.3",
            "1 M",
            " 1",
            "1e3",
            "1KB",
            "1MiB",
            "1T",
            "fast",
            "1,5M",
            "½",
            "18446744073709551616",
            "17179869184G",
        ] {
            let e = parse_rate(text).expect_err(text);
            assert!(e.contains(&format!("`{text}`")), "{e}");
            assert_eq!(e.matches(". ").count(), 0, "one sentence: {e}");
        }
    }

    #[test]
    fn rates_are_shown_in_their_unit() {
        assert_eq!(show_rate(0), "unlimited");
        assert_eq!(show_rate(512), "512 B/s");
        assert_eq!(show_rate(500 * 1024), "500.0 KiB/s");
        assert_eq!(show_rate(3 << 19), "1.5 MiB/s");
        assert_eq!(show_rate(1 << 30), "1.0 GiB/s");
    }
}
