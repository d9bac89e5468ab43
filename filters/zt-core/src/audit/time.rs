//! RFC 3339 timestamps (UTC, milliseconds) without a date library: the civil-from-days
//! conversion of Howard Hinnant's `chrono`-compatible algorithms, proleptic Gregorian.

/// `2026-11-23T19:56:31.123Z` for nanoseconds since the Unix epoch.
pub fn rfc3339_millis(unix_ns: u64) -> String {
    let millis = unix_ns / 1_000_000;
    let seconds = millis / 1000;
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        millis % 1000
    )
}

/// Year, month (1-12), day (1-31) of a count of days since 1970-01-01 (never negative here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century divisible by 400) 12:34:56.789
        assert_eq!(rfc3339_millis(951_827_696_789_000_000), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339_millis(1_795_463_791_123_456_789), "2026-11-23T19:56:31.123Z");
        // The last millisecond of 2100 (not a leap year) and the first of 2101.
        assert_eq!(rfc3339_millis(4_133_980_799_999_000_000), "2100-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_millis(4_133_980_800_000_000_000), "2101-01-01T00:00:00.000Z");
    }
}
