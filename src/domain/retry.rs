//! When a failed delivery is attempted again: pure policy, unit-tested without I/O.
//!
//! Also reads the `Retry-After` header, since a sink's answer is one of the inputs.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Wait before the first retry.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between two attempts that herald chooses itself.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60 * 60);
/// Longest `Retry-After` obeyed. A server asking for days is broken or hostile; past
/// this the delivery would be dead by `alerts.give_up` (24h by default) anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The wait before the next attempt of a delivery.
///
/// `attempt` counts the attempts made so far, including the one that just failed
/// (0 is read as 1). The nominal backoff starts at [`FIRST_RETRY_DELAY`] and doubles
/// per attempt up to [`MAX_RETRY_DELAY`]. "Equal jitter" then picks a wait between
/// 50% and 100% of it (`jitter` in `[0, 1)`, supplied by the caller, out-of-range
/// values clamped): many deliveries failing together (a sink outage) spread out
/// when it comes back, yet the wait never collapses to zero. The result never goes
/// below [`FIRST_RETRY_DELAY`] nor above [`MAX_RETRY_DELAY`].
///
/// A server's `Retry-After` is a floor, capped at [`MAX_RETRY_AFTER`]: herald never
/// asks again before the receiver allows it.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let doublings = attempt.max(1) - 1;
    let nominal = 1u32
        .checked_shl(doublings)
        .and_then(|factor| FIRST_RETRY_DELAY.checked_mul(factor))
        .map_or(MAX_RETRY_DELAY, |delay| delay.min(MAX_RETRY_DELAY));
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let jittered = nominal
        .mul_f64(0.5 + 0.5 * jitter)
        .clamp(FIRST_RETRY_DELAY, MAX_RETRY_DELAY);
    match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, as a wait from
/// `now`. A date in the past means "now". Unparseable values are ignored.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// IMF-fixdate, plus the two obsolete forms recipients must still accept (RFC 9110 §5.6.7).
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    const OBSOLETE: [&str; 2] = ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"];
    OBSOLETE
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOUR: u64 = 3600;

    #[test]
    fn delay_table() {
        fn check(attempt: u32, retry_after: Option<u64>, jitter: f64, expected_ms: u64) {
            assert_eq!(
                retry_delay(attempt, retry_after.map(Duration::from_secs), jitter),
                Duration::from_millis(expected_ms),
                "attempt={attempt} retry_after={retry_after:?} jitter={jitter}"
            );
        }
        // The first retry waits 1s whatever the jitter.
        check(0, None, 0.0, 1_000);
        check(1, None, 0.0, 1_000);
        check(1, None, 0.99, 1_000);
        // Doubling, with the wait between half and all of the nominal backoff.
        check(2, None, 0.0, 1_000);
        check(2, None, 0.5, 1_500);
        check(3, None, 0.0, 2_000);
        check(3, None, 0.5, 3_000);
        check(5, None, 0.5, 12_000);
        check(11, None, 0.0, 512_000);
        // Capped at one hour, however many attempts.
        check(12, None, 0.0, 1_024_000);
        check(13, None, 0.0, 1_800_000);
        check(20, None, 0.0, 1_800_000);
        check(20, None, 0.5, 2_700_000);
        check(40, None, 0.0, 1_800_000);
        check(u32::MAX, None, 0.0, 1_800_000);
        // Out-of-range jitter is clamped, never a panic or an overflow.
        check(20, None, 7.0, HOUR * 1000);
        check(20, None, -1.0, 1_800_000);
        check(20, None, f64::NAN, 1_800_000);
        // Retry-After is a floor, not a ceiling.
        check(1, Some(2), 0.0, 2_000);
        check(1, Some(0), 0.0, 1_000);
        check(12, Some(10), 0.0, 1_024_000);
        check(1, Some(2 * HOUR), 0.0, 2 * HOUR * 1000);
        // An absurd Retry-After is capped at a day.
        check(1, Some(30 * 24 * HOUR), 0.0, 24 * HOUR * 1000);
    }

    #[test]
    fn delay_stays_within_bounds_for_any_jitter() {
        for attempt in 0..70 {
            for step in 0..100 {
                let delay = retry_delay(attempt, None, f64::from(step) / 100.0);
                assert!(delay >= FIRST_RETRY_DELAY && delay <= MAX_RETRY_DELAY);
            }
        }
    }

    #[test]
    fn retry_after_values() {
        fn check(value: &str, expected: Option<u64>) {
            let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
            assert_eq!(
                parse_retry_after(value, now),
                expected.map(Duration::from_secs),
                "Retry-After: {value}"
            );
        }
        check("120", Some(120));
        check(" 2 ", Some(2));
        check("0", Some(0));
        check("Wed, 21 Oct 2015 07:30:00 GMT", Some(120));
        check("Wednesday, 21-Oct-15 07:29:00 GMT", Some(60));
        check("Wed Oct 21 07:28:30 2015", Some(30));
        // Already past: no wait, not an error.
        check("Wed, 21 Oct 2015 07:00:00 GMT", Some(0));
        check("-5", None);
        check("1.5", None);
        check("soon", None);
        check("", None);
        check("99999999999999999999999", None);
    }
}
