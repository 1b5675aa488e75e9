//! When a digest of waiting alerts goes out: pure policy, unit-tested without I/O.
//!
//! Callers pass the instant to start from, so a schedule can be checked against
//! any moment (a DST change, a restart after days) without a clock.

use std::fmt;
use std::time::Duration;

use chrono::{
    DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Utc,
};
use chrono_tz::Tz;

/// When a digest goes out: every `interval`, or at fixed local times of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSchedule {
    /// Periods of `interval` aligned on the Unix epoch (UTC): "1h" sends at every full hour.
    Every(Duration),
    /// At these times of day (sorted, deduplicated, at least one) in `timezone`.
    At { times: Vec<NaiveTime>, timezone: Tz },
}

/// Why a configured schedule cannot be used; the texts are shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid time of day \"{0}\": expected HH:MM")]
    InvalidTime(String),
    #[error("unknown time zone \"{0}\"")]
    UnknownTimeZone(String),
    #[error("no times of day given: expected at least one, such as \"08:00\"")]
    NoTimes,
    #[error("digest interval {} is under one second", humantime::format_duration(*.0))]
    IntervalTooShort(Duration),
    /// Periods are counted in whole seconds since the epoch; a fraction would
    /// make two schedules that send at the same instants look different.
    #[error("digest interval {} is not a whole number of seconds", humantime::format_duration(*.0))]
    FractionalInterval(Duration),
}

/// Days searched after the local date of `since`: every listed time exists at
/// least once a day except in a gap, and no zone skips more than one day.
const SEARCH_DAYS: u64 = 3;

/// Longest DST (or zone change) gap bridged, in minutes: Samoa skipped a whole day in 2011.
const MAX_GAP_MINUTES: i64 = 26 * 60;

impl DigestSchedule {
    /// `digest_at = ["08:00", "17:00"]` with `timezone = "Europe/Berlin"` (None: UTC).
    ///
    /// Times are sorted and deduplicated so that the same list in another
    /// order names the same schedule (and [`key`](Self::key)).
    pub fn at(times: &[String], timezone: Option<&str>) -> Result<DigestSchedule, DigestError> {
        let mut parsed = times
            .iter()
            .map(|text| parse_time(text).ok_or_else(|| DigestError::InvalidTime(text.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort_unstable();
        parsed.dedup();
        if parsed.is_empty() {
            return Err(DigestError::NoTimes);
        }
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| DigestError::UnknownTimeZone(name.to_owned()))?,
        };
        Ok(DigestSchedule::At {
            times: parsed,
            timezone,
        })
    }

    /// `digest = "1h"` already parsed to a Duration; zero or under one second is an error.
    pub fn every(interval: Duration) -> Result<DigestSchedule, DigestError> {
        if interval < Duration::from_secs(1) {
            return Err(DigestError::IntervalTooShort(interval));
        }
        if interval.subsec_nanos() != 0 {
            return Err(DigestError::FractionalInterval(interval));
        }
        Ok(DigestSchedule::Every(interval))
    }

    /// The first send time strictly after `since`: the end of the digest period that holds `since`.
    ///
    /// Never panics: an instant past chrono's range saturates at its end.
    pub fn next_after(&self, since: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            DigestSchedule::Every(interval) => next_multiple(*interval, since),
            DigestSchedule::At { times, timezone } => next_local(times, *timezone, since),
        }
    }

    /// A short stable text naming the schedule, stored with each waiting delivery
    /// so that waiting alerts are grouped by schedule: "every 3600s" or "at 08:00,17:00 Europe/Berlin".
    ///
    /// Stored in the database: changing this format orphans waiting deliveries.
    pub fn key(&self) -> String {
        match self {
            DigestSchedule::Every(interval) => format!("every {}s", interval.as_secs()),
            DigestSchedule::At { times, timezone } => {
                format!("at {} {}", join_times(times, ","), timezone.name())
            }
        }
    }
}

impl fmt::Display for DigestSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestSchedule::Every(interval) => {
                write!(f, "every {}", humantime::format_duration(*interval))
            }
            DigestSchedule::At { times, timezone } => {
                write!(f, "at {} ({})", join_times(times, ", "), timezone.name())
            }
        }
    }
}

/// "HH:MM" or "H:MM"; seconds are refused since a digest to the second means nothing.
pub(super) fn parse_time(text: &str) -> Option<NaiveTime> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !(1..=2).contains(&hours.len()) || minutes.len() != 2 || !digits(hours) || !digits(minutes) {
        return None;
    }
    NaiveTime::from_hms_opt(hours.parse().ok()?, minutes.parse().ok()?, 0)
}

fn join_times(times: &[NaiveTime], separator: &str) -> String {
    times
        .iter()
        .map(|time| time.format("%H:%M").to_string())
        .collect::<Vec<_>>()
        .join(separator)
}

/// The next multiple of `interval` seconds since the epoch after `since`; a
/// `since` on a boundary belongs to the period it starts.
fn next_multiple(interval: Duration, since: DateTime<Utc>) -> DateTime<Utc> {
    let step = i128::from(interval.as_secs().max(1));
    let start = i128::from(since.timestamp()).div_euclid(step) * step;
    i64::try_from(start + step)
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The earliest listed local time after `since`. The day before the local
/// date is searched too, since a fall-back across midnight can put a later
/// instant on an earlier local date.
fn next_local(times: &[NaiveTime], timezone: Tz, since: DateTime<Utc>) -> DateTime<Utc> {
    // Not `with_timezone(..).date_naive()`, which panics past chrono's range.
    let utc = since.naive_utc();
    let offset = timezone.offset_from_utc_datetime(&utc).fix();
    let today = utc.checked_add_offset(offset).unwrap_or(utc).date();
    let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    (0..=SEARCH_DAYS + 1)
        .filter_map(|offset| first.checked_add_days(Days::new(offset)))
        .flat_map(|date: NaiveDate| times.iter().map(move |time| date.and_time(*time)))
        .filter_map(|local| resolve(timezone, local))
        .filter(|instant| *instant > since)
        .min()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The instant a local time is sent at. An ambiguous time (fall-back) is sent
/// once, at its earlier instant; a time in a gap (spring-forward) at the first
/// instant after the gap, so that no day's digest is skipped.
fn resolve(timezone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=MAX_GAP_MINUTES).find_map(|minutes| {
        let shifted = local.checked_add_signed(TimeDelta::minutes(minutes))?;
        match timezone.from_local_datetime(&shifted) {
            LocalResult::Single(instant) => Some(instant.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, later) => Some(earlier.min(later).with_timezone(&Utc)),
            LocalResult::None => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(times: &[&str], timezone: Option<&str>) -> DigestSchedule {
        let times: Vec<String> = times.iter().map(|time| (*time).to_owned()).collect();
        DigestSchedule::at(&times, timezone).unwrap()
    }

    fn at_error(times: &[&str], timezone: Option<&str>) -> String {
        let times: Vec<String> = times.iter().map(|time| (*time).to_owned()).collect();
        DigestSchedule::at(&times, timezone)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hourly_sends_at_the_next_full_hour() {
        let hourly = DigestSchedule::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            hourly.next_after(utc("2025-05-01T10:15:30Z")),
            utc("2025-05-01T11:00:00Z")
        );
        assert_eq!(
            hourly.next_after(utc("2025-05-01T10:59:59.999Z")),
            utc("2025-05-01T11:00:00Z")
        );
        assert_eq!(
            hourly.next_after(utc("2025-05-01T23:30:00Z")),
            utc("2025-05-02T00:00:00Z")
        );
    }

    #[test]
    fn hourly_since_exactly_on_a_boundary_sends_at_the_next_one() {
        let hourly = DigestSchedule::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            hourly.next_after(utc("2025-05-01T10:00:00Z")),
            utc("2025-05-01T11:00:00Z")
        );
        assert_eq!(
            hourly.next_after(utc("1970-01-01T00:00:00Z")),
            utc("1970-01-01T01:00:00Z")
        );
        assert_eq!(
            hourly.next_after(utc("1969-12-31T23:30:00Z")),
            utc("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn ninety_minutes_align_on_the_epoch() {
        let schedule = DigestSchedule::every(Duration::from_secs(90 * 60)).unwrap();
        assert_eq!(
            schedule.next_after(utc("2025-05-01T00:00:00Z")),
            utc("2025-05-01T01:30:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-05-01T02:00:00Z")),
            utc("2025-05-01T03:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-05-01T03:00:00Z")),
            utc("2025-05-01T04:30:00Z")
        );
    }

    #[test]
    fn two_times_of_day_in_utc() {
        let schedule = at(&["17:00", "08:00"], None);
        assert_eq!(
            schedule.next_after(utc("2025-05-01T07:59:59Z")),
            utc("2025-05-01T08:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-05-01T08:00:00Z")),
            utc("2025-05-01T17:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-05-01T17:00:00.5Z")),
            utc("2025-05-02T08:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-12-31T23:00:00Z")),
            utc("2026-01-01T08:00:00Z")
        );
    }

    #[test]
    fn berlin_local_times_follow_winter_and_summer_time() {
        let schedule = at(&["08:00", "17:00"], Some("Europe/Berlin"));
        assert_eq!(
            schedule.next_after(utc("2025-01-15T00:00:00Z")),
            utc("2025-01-15T07:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-01-15T07:00:00Z")),
            utc("2025-01-15T16:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-07-15T00:00:00Z")),
            utc("2025-07-15T06:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-07-15T16:00:00Z")),
            utc("2025-07-16T06:00:00Z")
        );
        // 23:30 UTC is already the next local day in Berlin.
        assert_eq!(
            schedule.next_after(utc("2025-07-15T23:30:00Z")),
            utc("2025-07-16T06:00:00Z")
        );
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_is_sent_when_the_gap_ends() {
        // 2025-03-30 in Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let schedule = at(&["02:30"], Some("Europe/Berlin"));
        assert_eq!(
            schedule.next_after(utc("2025-03-29T12:00:00Z")),
            utc("2025-03-30T01:00:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-03-30T01:00:00Z")),
            utc("2025-03-31T00:30:00Z")
        );
    }

    #[test]
    fn an_ambiguous_time_in_the_fall_back_is_sent_once_at_the_earlier_instant() {
        // 2025-10-26 in Berlin: 03:00 CEST falls back to 02:00 CET, so 02:30
        // happens at 00:30 and again at 01:30 UTC.
        let schedule = at(&["02:30"], Some("Europe/Berlin"));
        assert_eq!(
            schedule.next_after(utc("2025-10-25T12:00:00Z")),
            utc("2025-10-26T00:30:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-10-26T00:30:00Z")),
            utc("2025-10-27T01:30:00Z")
        );
        assert_eq!(
            schedule.next_after(utc("2025-10-26T01:00:00Z")),
            utc("2025-10-27T01:30:00Z")
        );
    }

    #[test]
    fn the_end_of_time_saturates_instead_of_panicking() {
        let end = DateTime::<Utc>::MAX_UTC;
        let hourly = DigestSchedule::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(hourly.next_after(end), end);
        assert_eq!(
            at(&["08:00"], Some("Pacific/Kiritimati")).next_after(end),
            end
        );
        let huge = DigestSchedule::every(Duration::from_secs(u64::MAX)).unwrap();
        assert_eq!(huge.next_after(utc("2025-05-01T00:00:00Z")), end);
    }

    #[test]
    fn times_accept_one_or_two_hour_digits_and_are_sorted_and_deduplicated() {
        let schedule = at(&["17:00", "8:00", "08:00"], None);
        let expected = vec![
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        ];
        assert_eq!(
            schedule,
            DigestSchedule::At {
                times: expected,
                timezone: Tz::UTC
            }
        );
    }

    #[test]
    fn errors_name_the_offending_value() {
        assert_eq!(
            at_error(&["25:00"], None),
            "invalid time of day \"25:00\": expected HH:MM"
        );
        for bad in [
            "08:00:00", "8:0", "08:60", "", " 08:00", "+8:00", "0800", "008:00",
        ] {
            assert_eq!(
                at_error(&[bad], None),
                format!("invalid time of day \"{bad}\": expected HH:MM")
            );
        }
        assert_eq!(
            at_error(&["08:00"], Some("Europe/Berln")),
            "unknown time zone \"Europe/Berln\""
        );
        assert_eq!(
            at_error(&[], None),
            "no times of day given: expected at least one, such as \"08:00\""
        );
        assert_eq!(
            DigestSchedule::every(Duration::ZERO)
                .unwrap_err()
                .to_string(),
            "digest interval 0s is under one second"
        );
        assert_eq!(
            DigestSchedule::every(Duration::from_millis(500))
                .unwrap_err()
                .to_string(),
            "digest interval 500ms is under one second"
        );
        assert_eq!(
            DigestSchedule::every(Duration::from_millis(1500))
                .unwrap_err()
                .to_string(),
            "digest interval 1s 500ms is not a whole number of seconds"
        );
    }

    #[test]
    fn keys_are_stable_and_display_is_for_people() {
        let hourly = DigestSchedule::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(hourly.key(), "every 3600s");
        assert_eq!(hourly.to_string(), "every 1h");
        let berlin = at(&["17:00", "08:00"], Some("Europe/Berlin"));
        assert_eq!(berlin.key(), "at 08:00,17:00 Europe/Berlin");
        assert_eq!(berlin.to_string(), "at 08:00, 17:00 (Europe/Berlin)");
        assert_eq!(at(&["8:00"], None).key(), "at 08:00 UTC");
    }
}
