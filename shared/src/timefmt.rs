//! Time: the injectable clock, and the text formats Teleport prints.
//!
//! Teleport's CLIs print times with Go layouts (`RFC822`, `Mon Jan _2 15:04 UTC`, `RFC3339Nano`)
//! and durations with Go's `time.Duration.String()` (`4m48s`, `12h0m0s`). Users grep for these, so
//! we print the same shapes.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::error::{Error, Result};

/// A source of the current time, injected so tests can move it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock as a [`SharedClock`].
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// Seconds since the Unix epoch.
pub fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Nanoseconds since the Unix epoch, saturating.
pub fn unix_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// From seconds since the epoch; out-of-range values clamp to the epoch.
pub fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 with as many fractional digits as needed (Go's `RFC3339Nano`), always `Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_else(|_| "0001-01-01T00:00:00Z".into())
}

/// RFC 3339 to the whole second (for people reading a table, and SAML's instants).
pub fn rfc3339_secs(t: OffsetDateTime) -> String {
    rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}

/// Parses RFC 3339 text.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| Error::bad_parameter(format!("invalid time {s:?}: {e}, expected RFC 3339 such as 2024-01-02T15:04:05Z")))
}

/// Go's `time.RFC822` in UTC: `28 Apr 22 19:19 UTC` (used by `tctl tokens ls`).
pub fn rfc822(t: OffsetDateTime) -> String {
    let fmt = format_description!("[day] [month repr:short] [year repr:last_two] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// `Mon Jan _2 15:04 UTC` (used for `Last Heartbeat` columns).
pub fn heartbeat_stamp(t: OffsetDateTime) -> String {
    let fmt = format_description!("[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// `2022-04-29 03:07:22 +0000 UTC` (Go's default `time.Time.String()` without monotonic part).
pub fn go_time(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC");
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `4m48s`, `12h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Parses a Go-style duration: `90s`, `5m`, `1h30m`, `500ms`, `2h`. A bare number is seconds.
pub fn parse_duration(input: &str) -> Result<Duration> {
    let s = input.trim();
    let bad = || Error::bad_parameter(format!("invalid duration {input:?}: use a number with a unit, such as 30s, 5m, 1h or 1h30m"));
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        let secs = value * scale;
        if !secs.is_finite() || secs > 1e12 {
            return Err(bad());
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// Serde helpers for optional RFC 3339 timestamps (`metadata.expires`).
pub mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes as an RFC 3339 string.
    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        match v {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => super::parse_rfc3339(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde helpers for required RFC 3339 timestamps.
pub mod rfc3339_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes as an RFC 3339 string.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// Deserializes from an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// The zero time Go prints for an unset `time.Time`: `0001-01-01T00:00:00Z`.
pub fn go_zero_time() -> OffsetDateTime {
    time::macros::datetime!(0001-01-01 0:00 UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn go_duration_matches_go_strings() {
        assert_eq!(go_duration(Duration::from_secs(0)), "0s");
        assert_eq!(go_duration(Duration::from_secs(288)), "4m48s");
        assert_eq!(go_duration(Duration::from_secs(12 * 3600)), "12h0m0s");
        assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("5m").ok(), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("45").ok(), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("1.5s").ok(), Some(Duration::from_millis(1500)));
        for bad in ["", "m", "5x", "h5", "-5m", "5m-", "1e999h"] {
            let err = parse_duration(bad).err();
            assert!(err.is_some(), "{bad:?} should fail");
        }
    }

    #[test]
    fn go_layouts() {
        let t = datetime!(2022-04-28 19:19:05.5 UTC);
        assert_eq!(rfc822(t), "28 Apr 22 19:19 UTC");
        assert_eq!(heartbeat_stamp(datetime!(2022-04-02 09:05 UTC)), "Sat Apr  2 09:05 UTC");
        assert_eq!(rfc3339(t), "2022-04-28T19:19:05.5Z");
        assert_eq!(go_time(t), "2022-04-28 19:19:05 +0000 UTC");
        let back = parse_rfc3339("2022-04-29T19:45:35.052864534Z").ok();
        assert_eq!(back.map(rfc3339).as_deref(), Some("2022-04-29T19:45:35.052864534Z"));
        assert_eq!(rfc3339(go_zero_time()), "0001-01-01T00:00:00Z");
    }
}
