//! Instants as microseconds since the Unix epoch, parsed from RFC 3339.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds in one day.
pub const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// An instant in UTC with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an RFC 3339 timestamp (e.g. 2026-11-01T09:30:00Z)")]
pub struct TimestampError {
    value: String,
}

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp (`2026-11-01T00:00:00Z`, `...+07:00`,
    /// fractional seconds allowed). The common `YYYY-MM-DDTHH:MM:SSZ` shape
    /// takes a fast path; everything else goes through chrono.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        if let Some(ts) = parse_plain_utc(s.as_bytes()) {
            return Ok(ts);
        }
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Self(dt.timestamp_micros()))
            .map_err(|_| TimestampError { value: s.to_owned() })
    }

    /// This instant shifted by a (possibly fractional) number of days.
    pub fn minus_days(self, days: f64) -> Self {
        Self(self.0 - (days * MICROS_PER_DAY).round() as i64)
    }

    /// Days from `earlier` to `self`, fractional.
    pub fn days_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / MICROS_PER_DAY
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => write!(f, "@{}us", self.0),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly; `None` for anything else (the caller falls back).
fn parse_plain_utc(b: &[u8]) -> Option<Timestamp> {
    let b: &[u8; 20] = b.try_into().ok()?;
    // The separators and the digits are checked together, without a branch
    // per byte: every event line has a timestamp.
    let separators =
        (b[4] ^ b'-') | (b[7] ^ b'-') | (b[10] ^ b'T') | (b[13] ^ b':') | (b[16] ^ b':') | (b[19] ^ b'Z');
    let d = |i: usize| b[i].wrapping_sub(b'0');
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let not_digit = DIGITS.iter().fold(0u8, |acc, &i| acc | u8::from(d(i) > 9));
    if separators | not_digit != 0 {
        return None;
    }
    let two = |i: usize| i64::from(d(i)) * 10 + i64::from(d(i + 1));
    let year = two(0) * 100 + two(2);
    let (month, day) = (two(5), two(8));
    let (hour, min, sec) = (two(11), two(14), two(17));
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None; // leap seconds and odd values: let chrono decide
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp(
        (days * 86_400 + hour * 3600 + min * 60 + sec) * 1_000_000,
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expected_micros: Option<i64>) {
        assert_eq!(
            Timestamp::parse(input).ok().map(Timestamp::as_micros),
            expected_micros,
            "{input}"
        );
    }

    #[test]
    fn parses_rfc3339_shapes() {
        check("1970-01-01T00:00:00Z", Some(0));
        check("2026-11-01T00:00:00Z", Some(1_793_491_200_000_000));
        check("2026-11-01T07:00:00+07:00", Some(1_793_491_200_000_000));
        check("2026-11-01T00:00:00.5Z", Some(1_793_491_200_500_000));
        check("2024-02-29T12:00:00Z", Some(1_709_208_000_000_000));
        check("2023-02-29T12:00:00Z", None);
        check("2026-13-01T00:00:00Z", None);
        check("2026-11-01", None);
        check("yesterday", None);
        check("", None);
    }

    #[test]
    fn the_fast_path_refuses_any_other_byte_in_any_place() {
        let good = *b"2026-11-01T09:30:00Z";
        assert!(parse_plain_utc(&good).is_some());
        for at in 0..good.len() {
            for c in 0..=255u8 {
                let mut b = good;
                b[at] = c;
                let still_valid = c == good[at] || (good[at].is_ascii_digit() && c.is_ascii_digit());
                if !still_valid {
                    assert_eq!(parse_plain_utc(&b), None, "{:?}", String::from_utf8_lossy(&b));
                }
            }
        }
    }

    #[test]
    fn displays_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::parse("2026-11-01T07:00:00+07:00").unwrap().to_string(),
            "2026-11-01T00:00:00Z"
        );
    }

    proptest! {
        #[test]
        fn fast_path_agrees_with_chrono(secs in -2_000_000_000i64..8_000_000_000i64) {
            let dt = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let s = dt.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            prop_assert_eq!(parse_plain_utc(s.as_bytes()).map(Timestamp::as_micros), Some(secs * 1_000_000));
        }
    }
}
