//! Time windows of `time_window` conditions, in UTC, from the time the adapter hands in (never a
//! clock read here).

use crate::time::UnixSeconds;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const SECONDS_PER_DAY: u64 = 86_400;
/// 1970-01-01 was a Thursday: index 3 of [`DAY_NAMES`].
const EPOCH_WEEKDAY: u64 = 3;

/// `start` (inclusive) to `end` (exclusive), minutes after midnight UTC, on `days`. A window
/// whose start lies after its end spans midnight, and belongs to the day it starts on: Friday
/// 22:00–06:00 includes Saturday 03:00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeWindow {
    /// Monday first; all days when the configuration names none.
    days: [bool; 7],
    start: u32,
    end: u32,
}

impl TimeWindow {
    /// Errors name the field at fault (`days[1]`, `start`, `end`) and what is wrong with it.
    pub(crate) fn new(days: Option<&[String]>, start: &str, end: &str) -> Result<Self, (String, String)> {
        let mut set = [days.is_none(); 7];
        if let Some(days) = days {
            if days.is_empty() {
                return Err(("days".to_owned(), "must not be empty (omit it for every day)".to_owned()));
            }
            for (i, day) in days.iter().enumerate() {
                let field = format!("days[{i}]");
                let index = DAY_NAMES.iter().position(|name| name == day).ok_or_else(|| {
                    (field.clone(), format!("\"{day}\" is not one of mon, tue, wed, thu, fri, sat, sun"))
                })?;
                match set.get_mut(index) {
                    Some(slot) if !*slot => *slot = true,
                    _ => return Err((field, format!("\"{day}\" is listed twice"))),
                }
            }
        }
        let start = minutes(start).map_err(|why| ("start".to_owned(), why))?;
        let end = minutes(end).map_err(|why| ("end".to_owned(), why))?;
        if start == end {
            return Err(("end".to_owned(), "equals `start`: the window would be empty".to_owned()));
        }
        Ok(Self { days: set, start, end })
    }

    pub(crate) fn contains(&self, now: UnixSeconds) -> bool {
        let days_since_epoch = now.as_u64() / SECONDS_PER_DAY;
        let minute = u32::try_from(now.as_u64() % SECONDS_PER_DAY / 60).unwrap_or(0);
        let today = (days_since_epoch + EPOCH_WEEKDAY) % 7;
        let started_on = if self.start < self.end {
            (self.start..self.end).contains(&minute).then_some(today)
        } else if minute >= self.start {
            Some(today)
        } else if minute < self.end {
            Some((today + 6) % 7)
        } else {
            None
        };
        started_on.is_some_and(|day| usize::try_from(day).ok().and_then(|d| self.days.get(d)).copied().unwrap_or(false))
    }
}

/// `HH:MM`, 24-hour, two digits each.
fn minutes(text: &str) -> Result<u32, String> {
    let invalid = || format!("\"{text}\" is not a time of day as HH:MM (00:00 to 23:59)");
    let (hours, mins) = text.split_once(':').ok_or_else(invalid)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(mins) {
        return Err(invalid());
    }
    let (hours, mins): (u32, u32) = (hours.parse().map_err(|_| invalid())?, mins.parse().map_err(|_| invalid())?);
    if hours > 23 || mins > 59 {
        return Err(invalid());
    }
    Ok(hours * 60 + mins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Seconds since the epoch of `day` days after 1970-01-01 (a Thursday) at `hh:mm` UTC.
    fn at(day: u64, hh: u64, mm: u64) -> UnixSeconds {
        UnixSeconds(day * SECONDS_PER_DAY + hh * 3600 + mm * 60)
    }

    fn window(days: Option<&[&str]>, start: &str, end: &str) -> TimeWindow {
        let days: Option<Vec<String>> = days.map(|d| d.iter().map(|s| (*s).to_owned()).collect());
        TimeWindow::new(days.as_deref(), start, end).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn office_hours_with_end_exclusive() {
        let w = window(None, "09:00", "17:00");
        assert!(!w.contains(at(0, 8, 59)));
        assert!(w.contains(at(0, 9, 0)));
        assert!(w.contains(at(0, 16, 59)));
        assert!(!w.contains(at(0, 17, 0)));
        assert!(w.contains(UnixSeconds(9 * 3600 + 59)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn days_of_week_count_from_a_thursday() {
        let weekdays = window(Some(&["mon", "tue", "wed", "thu", "fri"]), "09:00", "17:00");
        assert!(weekdays.contains(at(0, 10, 0)), "1970-01-01 was a Thursday");
        assert!(weekdays.contains(at(1, 10, 0)), "Friday");
        assert!(!weekdays.contains(at(2, 10, 0)), "Saturday");
        assert!(!weekdays.contains(at(3, 10, 0)), "Sunday");
        assert!(weekdays.contains(at(4, 10, 0)), "Monday");
        // 2023-11-14 22:13:20 UTC, a Tuesday.
        assert!(!window(Some(&["tue"]), "09:00", "17:00").contains(UnixSeconds(1_700_000_000)));
        assert!(window(Some(&["tue"]), "22:00", "23:00").contains(UnixSeconds(1_700_000_000)));
        assert!(!window(Some(&["wed"]), "22:00", "23:00").contains(UnixSeconds(1_700_000_000)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn overnight_windows_belong_to_the_day_they_start() {
        let friday_night = window(Some(&["fri"]), "22:00", "06:00");
        assert!(friday_night.contains(at(1, 23, 0)), "Friday 23:00");
        assert!(friday_night.contains(at(2, 3, 0)), "Saturday 03:00");
        assert!(!friday_night.contains(at(2, 6, 0)), "Saturday 06:00, end exclusive");
        assert!(!friday_night.contains(at(1, 3, 0)), "Friday 03:00 belongs to Thursday's window");
        assert!(!friday_night.contains(at(2, 23, 0)), "Saturday 23:00");
        let nightly = window(None, "22:00", "00:00");
        assert!(nightly.contains(at(5, 23, 59)));
        assert!(!nightly.contains(at(5, 0, 0)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_bad_formats() {
        let err = |days: Option<&[&str]>, start: &str, end: &str| {
            let days: Option<Vec<String>> = days.map(|d| d.iter().map(|s| (*s).to_owned()).collect());
            TimeWindow::new(days.as_deref(), start, end).unwrap_err().0
        };
        assert_eq!(err(None, "9:00", "17:00"), "start");
        assert_eq!(err(None, "24:00", "17:00"), "start");
        assert_eq!(err(None, "09:60", "17:00"), "start");
        assert_eq!(err(None, "09:00", "17"), "end");
        assert_eq!(err(None, "09:00", "+1:00"), "end");
        assert_eq!(err(None, "09:00", "09:00"), "end");
        assert_eq!(err(Some(&[]), "09:00", "17:00"), "days");
        assert_eq!(err(Some(&["mon", "Tue"]), "09:00", "17:00"), "days[1]");
        assert_eq!(err(Some(&["mon", "mon"]), "09:00", "17:00"), "days[1]");
    }
}
