//! Time as the stores and the API carry it: [`Millis`], milliseconds since the Unix epoch, and
//! its RFC 3339 text forms.
//!
//! Which clock a `Millis` came from (the backend's or this host's) is the caller's business and
//! is said where the value is stored; this module only converts. It never reads a backend's
//! clock, and [`now_millis`] is this host's clock, for the stores that have no other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A duration in milliseconds, saturating: a lease of centuries is still "forever", not a
/// negative number.
pub fn duration_ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// A file time (an mtime the filesystem stamped) in milliseconds; before the epoch is negative.
pub fn system_time_ms(t: SystemTime) -> Millis {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

/// This host's clock.
pub fn now_millis() -> Millis {
    system_time_ms(SystemTime::now())
}

/// RFC 3339 UTC with second precision (`2024-11-26T10:30:00Z`): the API's and the CLI's form.
pub fn rfc3339(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// RFC 3339 UTC with milliseconds (`2024-11-26T10:30:00.123Z`): agents' report timestamps.
pub fn rfc3339_ms(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_732_617_000_000), "2024-11-26T10:30:00Z");
        assert_eq!(rfc3339(1_732_617_000_999), "2024-11-26T10:30:00Z");
        assert_eq!(rfc3339_ms(1_732_617_000_042), "2024-11-26T10:30:00.042Z");
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let t = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(system_time_ms(t), -1_500);
        assert_eq!(duration_ms(Duration::MAX), Millis::MAX);
    }
}
