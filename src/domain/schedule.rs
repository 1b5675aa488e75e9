//! When a feed is fetched next: pure policy, unit-tested without I/O.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// Longest back-off after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);

/// How far jitter moves a feed's next fetch, in thousandths of the wait: ±5 %.
pub const JITTER_PER_MILLE: u32 = 50;

/// The next fetch time of a feed.
///
/// `failures` counts consecutive failures including the one just recorded (0 after a
/// success). Each failure doubles the wait, capped at [`MAX_BACKOFF`] but never shorter
/// than the configured interval. A server's `Retry-After` is a floor: herald never asks
/// again before the publisher allows it.
///
/// `jitter`, uniform in `[0, 1)`, spreads the wait over ±[`JITTER_PER_MILLE`]‰ so
/// that feeds configured together drift apart instead of fetching in lockstep; 0.5
/// means no change.
pub fn next_fetch_at(
    now: DateTime<Utc>,
    interval: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> DateTime<Utc> {
    let base = if failures == 0 {
        interval
    } else {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        interval
            .checked_mul(factor)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
            .max(interval)
    };
    let per_mille =
        1000 - JITTER_PER_MILLE + (jitter.clamp(0.0, 1.0) * f64::from(2 * JITTER_PER_MILLE)) as u32;
    let base = base
        .checked_mul(per_mille)
        .map_or(MAX_BACKOFF, |scaled| scaled / 1000);
    let wait = retry_after.map_or(base, |hint| hint.max(base));
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| now.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn schedule_table() {
        let min = Duration::from_secs(60);
        let cases: &[(u32, Option<u64>, i64)] = &[
            (0, None, 60),
            (1, None, 120),
            (2, None, 240),
            (5, None, 60 * 32),
            (30, None, 86_400),
            (0, Some(600), 600),
            (1, Some(10), 120),
        ];
        for &(failures, retry_after, expected) in cases {
            let got = next_fetch_at(
                at(0),
                min,
                failures,
                retry_after.map(Duration::from_secs),
                0.5,
            );
            assert_eq!(
                got,
                at(expected),
                "failures={failures} retry_after={retry_after:?}"
            );
        }
    }

    #[test]
    fn interval_longer_than_cap_is_kept() {
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(next_fetch_at(at(0), week, 3, None, 0.5), at(7 * 86_400));
    }

    #[test]
    fn jitter_spreads_by_five_percent_and_never_undercuts_retry_after() {
        let interval = Duration::from_secs(1000);
        assert_eq!(next_fetch_at(at(0), interval, 0, None, 0.0), at(950));
        assert_eq!(next_fetch_at(at(0), interval, 0, None, 0.99), at(1049));
        let hint = Some(Duration::from_secs(2000));
        assert_eq!(next_fetch_at(at(0), interval, 0, hint, 0.0), at(2000));
    }
}
