//! Opening hours: parsing the schedule's strings and deciding whether a
//! schedule is open at an instant.
//!
//! Times are local wall-clock times in the schedule's timezone, so a
//! `08:00-20:00` range stays 08:00-20:00 local across daylight-saving
//! changes. Ranges are half-open (`20:00` itself is closed) and never cross
//! midnight: a night shift is two ranges on two days, `24:00` closing the
//! first. The caller passes the instant; nothing here reads the clock.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::model::Schedule;

/// A problem with one schedule value; the checker turns these into
/// diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid time range \"{0}\"")]
    BadRange(String),
    #[error("time range \"{0}\" ends before it starts")]
    EndsBeforeStart(String),
    #[error("invalid holiday \"{0}\"")]
    BadHoliday(String),
    #[error("unknown timezone \"{0}\"")]
    UnknownTimezone(String),
}

/// Minutes since local midnight, `0..=1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Minute(pub u16);

/// A parsed `HH:MM-HH:MM` range, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRange {
    pub start: Minute,
    pub end: Minute,
}

impl OpenRange {
    /// Whether two ranges of one day share at least a minute.
    pub fn overlaps(&self, other: &OpenRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn contains(&self, minute: Minute) -> bool {
        self.start <= minute && minute < self.end
    }
}

/// Parses `HH:MM-HH:MM` (two digits each, `24:00` allowed as the end only).
pub fn parse_range(text: &str) -> Result<OpenRange, ScheduleError> {
    let bad = || ScheduleError::BadRange(text.to_string());
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start = parse_clock(start.trim(), false).ok_or_else(bad)?;
    let end = parse_clock(end.trim(), true).ok_or_else(bad)?;
    if end <= start {
        return Err(ScheduleError::EndsBeforeStart(text.to_string()));
    }
    Ok(OpenRange { start, end })
}

fn parse_clock(text: &str, may_be_midnight_end: bool) -> Option<Minute> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<u16> {
        let (a, b) = (bytes[i], bytes[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u16::from(a - b'0') * 10 + u16::from(b - b'0'))
    };
    let (hours, minutes) = (two(0)?, two(3)?);
    if hours == 24 && minutes == 0 && may_be_midnight_end {
        return Some(Minute(1440));
    }
    (hours < 24 && minutes < 60).then_some(Minute(hours * 60 + minutes))
}

/// Parses a `YYYY-MM-DD` holiday.
pub fn parse_holiday(text: &str) -> Result<NaiveDate, ScheduleError> {
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err(ScheduleError::BadHoliday(text.to_string()));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ScheduleError::BadHoliday(text.to_string()))
}

/// Looks up an IANA timezone name.
pub fn parse_timezone(text: &str) -> Result<Tz, ScheduleError> {
    text.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimezone(text.to_string()))
}

/// Whether the schedule is open at `at`: not a holiday (in its timezone)
/// and inside one of that weekday's ranges.
///
/// A schedule the checker would reject (unknown timezone) is treated as
/// closed, and unparsable ranges or holidays are ignored; `load_flow`
/// never returns such a schedule.
pub fn is_open(schedule: &Schedule, at: DateTime<Utc>) -> bool {
    let Ok(tz) = parse_timezone(&schedule.timezone) else {
        return false;
    };
    let local = at.with_timezone(&tz);
    let date = local.date_naive();
    if schedule
        .holidays
        .iter()
        .filter_map(|h| parse_holiday(h).ok())
        .any(|h| h == date)
    {
        return false;
    }
    // Minute of the local wall clock; seconds are dropped, so 19:59:59 is
    // still inside a range ending 20:00.
    let minute = Minute((local.hour() * 60 + local.minute()) as u16);
    ranges_for(schedule, local.weekday())
        .iter()
        .filter_map(|r| parse_range(r).ok())
        .any(|r| r.contains(minute))
}

fn ranges_for(schedule: &Schedule, day: Weekday) -> &[String] {
    let weekly = &schedule.weekly;
    match day {
        Weekday::Mon => &weekly.mon,
        Weekday::Tue => &weekly.tue,
        Weekday::Wed => &weekly.wed,
        Weekday::Thu => &weekly.thu,
        Weekday::Fri => &weekly.fri,
        Weekday::Sat => &weekly.sat,
        Weekday::Sun => &weekly.sun,
    }
}

/// The local time at `at` in the schedule's timezone, for reasons and
/// logs ("2025-03-09 01:30 EST"); UTC if the timezone is unknown.
pub fn local_time_label(schedule: &Schedule, at: DateTime<Utc>) -> String {
    match parse_timezone(&schedule.timezone) {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => at.format("%a %Y-%m-%d %H:%M UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::model::Weekly;
    use chrono::TimeZone;

    fn office() -> Schedule {
        let weekdays = vec!["08:00-20:00".to_string()];
        Schedule {
            timezone: "America/New_York".into(),
            weekly: Weekly {
                mon: weekdays.clone(),
                tue: weekdays.clone(),
                wed: weekdays.clone(),
                thu: weekdays.clone(),
                fri: weekdays,
                sat: vec!["09:00-13:00".into()],
                sun: vec![],
            },
            holidays: vec!["2025-12-25".into()],
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn parses_ranges_and_rejects_bad_ones() {
        assert_eq!(
            parse_range("08:00-20:00"),
            Ok(OpenRange {
                start: Minute(480),
                end: Minute(1200)
            })
        );
        assert_eq!(parse_range("22:00-24:00").map(|r| r.end), Ok(Minute(1440)));
        for bad in [
            "8:00-20:00",
            "08:00",
            "08:00-20:60",
            "24:00-24:00",
            "08h00-20h00",
            "08:00-25:00",
        ] {
            assert_eq!(
                parse_range(bad),
                Err(ScheduleError::BadRange(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_range("20:00-08:00"),
            Err(ScheduleError::EndsBeforeStart("20:00-08:00".into()))
        );
        assert_eq!(
            parse_range("09:00-09:00"),
            Err(ScheduleError::EndsBeforeStart("09:00-09:00".into()))
        );
    }

    #[test]
    fn parses_holidays_strictly() {
        assert!(parse_holiday("2025-12-25").is_ok());
        for bad in ["25-12-2025", "2025-2-3", "2025-02-30", "2025/12/25"] {
            assert!(parse_holiday(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn open_in_local_hours_not_utc_hours() {
        // Tuesday 2025-01-07: New York is UTC-5 (EST).
        assert!(!is_open(&office(), utc(2025, 1, 7, 12, 59))); // 07:59 local
        assert!(is_open(&office(), utc(2025, 1, 7, 13, 0))); // 08:00 local
        assert!(is_open(&office(), utc(2025, 1, 8, 0, 59))); // 19:59 local
        assert!(!is_open(&office(), utc(2025, 1, 8, 1, 0))); // 20:00 local
                                                             // Saturday morning only, Sunday closed.
        assert!(is_open(&office(), utc(2025, 1, 11, 14, 0))); // Sat 09:00
        assert!(!is_open(&office(), utc(2025, 1, 11, 18, 0))); // Sat 13:00
        assert!(!is_open(&office(), utc(2025, 1, 12, 15, 0))); // Sun 10:00
    }

    #[test]
    fn local_opening_time_holds_across_dst() {
        // 2025-03-10 (Monday) is the first weekday after the spring-forward
        // on 2025-03-09: 08:00 EDT is 12:00 UTC, not 13:00.
        assert!(!is_open(&office(), utc(2025, 3, 7, 12, 30))); // Fri 07:30 EST
        assert!(is_open(&office(), utc(2025, 3, 10, 12, 30))); // Mon 08:30 EDT
        assert!(is_open(&office(), utc(2025, 3, 10, 23, 59))); // Mon 19:59 EDT
        assert!(!is_open(&office(), utc(2025, 3, 11, 0, 0))); // Mon 20:00 EDT
                                                              // Back to EST after 2025-11-02.
        assert!(!is_open(&office(), utc(2025, 11, 3, 12, 30))); // Mon 07:30 EST
        assert!(is_open(&office(), utc(2025, 11, 3, 13, 0))); // Mon 08:00 EST
    }

    #[test]
    fn ranges_touching_midnight() {
        let mut night = office();
        night.weekly.fri = vec!["22:00-24:00".into()];
        night.weekly.sat = vec!["00:00-06:00".into()];
        // Fri 23:59 EST is Sat 04:59 UTC; Sat 00:00 EST is Sat 05:00 UTC.
        assert!(is_open(&night, utc(2025, 1, 11, 4, 59)));
        assert!(is_open(&night, utc(2025, 1, 11, 5, 0)));
        assert!(is_open(&night, utc(2025, 1, 11, 10, 59))); // Sat 05:59
        assert!(!is_open(&night, utc(2025, 1, 11, 11, 0))); // Sat 06:00
        assert!(!is_open(&night, utc(2025, 1, 11, 2, 59))); // Fri 21:59
    }

    #[test]
    fn holidays_are_local_dates() {
        // 2025-12-25 is a Thursday: 10:00 local would be open.
        assert!(!is_open(&office(), utc(2025, 12, 25, 15, 0)));
        // Friday 2025-12-26 10:00 local is open again.
        assert!(is_open(&office(), utc(2025, 12, 26, 15, 0)));
        // 00:30 UTC on the 25th is still Wednesday 19:30 in New York: the
        // holiday is the local date, so this is a normal open evening.
        assert!(is_open(&office(), utc(2025, 12, 25, 0, 30)));
    }

    #[test]
    fn unknown_timezone_counts_as_closed() {
        let mut broken = office();
        broken.timezone = "Mars/Olympus".into();
        assert!(!is_open(&broken, utc(2025, 1, 7, 15, 0)));
        assert_eq!(
            parse_timezone("America/NewYork"),
            Err(ScheduleError::UnknownTimezone("America/NewYork".into()))
        );
    }

    #[test]
    fn label_shows_local_time_and_zone() {
        assert_eq!(
            local_time_label(&office(), utc(2025, 7, 1, 16, 5)),
            "Tue 2025-07-01 12:05 EDT"
        );
    }
}
