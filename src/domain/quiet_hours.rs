//! A sink's quiet hours: a daily stretch of local time in which its alerts
//! wait, to go out as one digest when the stretch ends.

use std::fmt;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::digest::{DigestSchedule, parse_time};

/// `quiet_hours = "22:00-07:00"` in a time zone: from the start (inclusive)
/// to the end (exclusive), across midnight when the end is the earlier time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
    timezone: Tz,
}

/// Why `quiet_hours` cannot be used; shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietHoursError {
    #[error("invalid quiet hours \"{0}\": expected a range such as \"22:00-07:00\"")]
    Invalid(String),
    #[error("quiet hours \"{0}\" start and end at the same time: give a stretch of the day")]
    Empty(String),
    #[error("unknown time zone \"{0}\"")]
    UnknownTimeZone(String),
}

impl QuietHours {
    /// `"22:00-07:00"` in `timezone` (None: UTC).
    pub fn parse(text: &str, timezone: Option<&str>) -> Result<QuietHours, QuietHoursError> {
        let invalid = || QuietHoursError::Invalid(text.to_owned());
        let (start, end) = text.split_once('-').ok_or_else(invalid)?;
        let start = parse_time(start.trim()).ok_or_else(invalid)?;
        let end = parse_time(end.trim()).ok_or_else(invalid)?;
        if start == end {
            return Err(QuietHoursError::Empty(text.to_owned()));
        }
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| QuietHoursError::UnknownTimeZone(name.to_owned()))?,
        };
        Ok(QuietHours {
            start,
            end,
            timezone,
        })
    }

    /// Whether `at` falls in the quiet stretch, read on the local clock (so a
    /// DST change moves the stretch with the wall clock).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone).time();
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }

    /// The digest the alerts held back go out in: at the stretch's end.
    pub fn digest(&self) -> DigestSchedule {
        DigestSchedule::At {
            times: vec![self.end],
            timezone: self.timezone,
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} ({})",
            self.start.format("%H:%M"),
            self.end.format("%H:%M"),
            self.timezone.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn a_stretch_across_midnight_holds_the_late_evening_and_the_early_morning() {
        let quiet = QuietHours::parse("22:00-07:00", None).unwrap();
        assert!(quiet.contains(utc("2026-12-05T22:00:00Z")));
        assert!(quiet.contains(utc("2026-12-05T23:59:59Z")));
        assert!(quiet.contains(utc("2026-12-06T03:00:00Z")));
        assert!(quiet.contains(utc("2026-12-06T06:59:59Z")));
        assert!(!quiet.contains(utc("2026-12-06T07:00:00Z")));
        assert!(!quiet.contains(utc("2026-12-05T12:00:00Z")));
        assert!(!quiet.contains(utc("2026-12-05T21:59:59Z")));
    }

    #[test]
    fn a_stretch_within_a_day() {
        let quiet = QuietHours::parse("12:00-13:30", None).unwrap();
        assert!(quiet.contains(utc("2026-12-05T12:45:00Z")));
        assert!(!quiet.contains(utc("2026-12-05T13:30:00Z")));
        assert!(!quiet.contains(utc("2026-12-05T11:59:00Z")));
    }

    #[test]
    fn local_time_follows_the_zone_and_its_summer_time() {
        let quiet = QuietHours::parse("22:00-07:00", Some("Europe/Berlin")).unwrap();
        // 21:30 UTC is 22:30 in Berlin in winter (quiet), 23:30 in summer.
        assert!(quiet.contains(utc("2026-12-05T21:30:00Z")));
        assert!(quiet.contains(utc("2026-07-05T21:30:00Z")));
        // 05:30 UTC is 06:30 in winter (quiet) but 07:30 in summer (not).
        assert!(quiet.contains(utc("2026-12-05T05:30:00Z")));
        assert!(!quiet.contains(utc("2026-07-05T05:30:00Z")));
    }

    #[test]
    fn what_waits_goes_out_when_the_stretch_ends() {
        let quiet = QuietHours::parse("22:00-07:00", Some("Europe/Berlin")).unwrap();
        let digest = quiet.digest();
        assert_eq!(
            digest.next_after(utc("2026-12-05T22:30:00Z")),
            utc("2026-12-06T06:00:00Z")
        );
        assert_eq!(digest.key(), "at 07:00 Europe/Berlin");
        assert_eq!(quiet.to_string(), "22:00-07:00 (Europe/Berlin)");
    }

    #[test]
    fn errors_name_the_offending_value() {
        for (text, zone, error) in [
            (
                "22:00",
                None,
                "invalid quiet hours \"22:00\": expected a range such as \"22:00-07:00\"",
            ),
            (
                "22:00-7",
                None,
                "invalid quiet hours \"22:00-7\": expected a range such as \"22:00-07:00\"",
            ),
            (
                "25:00-07:00",
                None,
                "invalid quiet hours \"25:00-07:00\": expected a range such as \"22:00-07:00\"",
            ),
            (
                "07:00-07:00",
                None,
                "quiet hours \"07:00-07:00\" start and end at the same time: give a stretch of the day",
            ),
            (
                "22:00-07:00",
                Some("Mars/Olympus"),
                "unknown time zone \"Mars/Olympus\"",
            ),
        ] {
            assert_eq!(
                QuietHours::parse(text, zone).unwrap_err().to_string(),
                error
            );
        }
    }
}
