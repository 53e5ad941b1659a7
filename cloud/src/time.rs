//! Calendar arithmetic for the API: RFC 3339 timestamps, civil dates, and
//! the local days of a month in a time zone (IANA zones from the time-zone
//! database embedded by `jiff`, or fixed offsets).

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};

/// Time as `2026-11-24T12:00:00.000Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let mut out = String::with_capacity(24);
    write_rfc3339_ms(&mut out, ms);
    out
}

/// [`rfc3339_ms`] appended to `out` (playlists write thousands).
pub fn write_rfc3339_ms(out: &mut String, ms: u64) {
    use std::fmt::Write;
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    );
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's
/// algorithm, proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` to ms since 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        let first3: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = first3.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() => {
            let v = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    let t = ((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms;
    u64::try_from(t).ok()
}

/// Why a time zone of the API was refused (a 400 to the client).
#[derive(Debug, PartialEq, Eq)]
pub struct ZoneError(pub String);

/// The time zone named `name`: an IANA name (`Europe/Berlin`, `UTC`),
/// looked up in the embedded database, case-insensitively.
pub fn zone_named(name: &str) -> Result<TimeZone, ZoneError> {
    const WHAT: &str = "tz must be an IANA time zone name such as Europe/Berlin";
    // Names are short ASCII (the longest is 32 bytes): a longer one is not
    // echoed back.
    if name.is_empty() || name.len() > 64 || !name.is_ascii() {
        return Err(ZoneError(format!("{WHAT} (at most 64 ASCII characters)")));
    }
    TimeZone::get(name).map_err(|_| ZoneError(format!("unknown time zone {name:?}: {WHAT}")))
}

/// The zone of a fixed offset east of UTC, minutes (-840..=840).
pub fn zone_fixed(offset_min: i64) -> Result<TimeZone, ZoneError> {
    let bad = || ZoneError("tz_offset_min must be within -840..840 minutes".into());
    if offset_min.abs() > 14 * 60 {
        return Err(bad());
    }
    let secs = i32::try_from(offset_min * 60).map_err(|_| bad())?;
    Ok(TimeZone::fixed(
        Offset::from_seconds(secs).map_err(|_| bad())?,
    ))
}

/// The starts of the local days of month `m` of year `y` in `tz` and the
/// start of the next month, as ms since 1970 UTC (one more than the month
/// has days): day `i + 1` of the month is `[starts[i], starts[i + 1])`.
///
/// A day runs from local midnight to local midnight, so a day on which
/// the clocks change is 23 or 25 hours long. Where midnight does not exist
/// (zones that change at 00:00, such as America/Santiago), the day starts
/// when the clock jumps to; where it happens twice, at the first. `None`
/// past what a timestamp can hold (late 9999).
pub fn local_day_starts(y: i16, m: i8, tz: &TimeZone) -> Option<Vec<i64>> {
    let first = Date::new(y, m, 1).ok()?;
    let start = |d: Date| -> Option<i64> {
        Some(
            d.to_zoned_datetime(tz.clone())
                .ok()?
                .timestamp()
                .as_millisecond(),
        )
    };
    let n = first.days_in_month();
    let mut starts = Vec::with_capacity(usize::try_from(n).ok()? + 1);
    let mut day = first;
    for _ in 0..n {
        starts.push(start(day)?);
        day = day.tomorrow().ok()?;
    }
    starts.push(start(day)?);
    Some(starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        for d in [-1000, 0, 59, 60, 365, 11_016, 20_000, 100_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T06:13:20+08:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// UTC ms of a local civil time written as RFC 3339 with its offset.
    fn at(s: &str) -> i64 {
        parse_rfc3339(s).map(|v| v as i64).unwrap()
    }

    /// The lengths of a month's local days, hours.
    fn hours(starts: &[i64]) -> Vec<i64> {
        starts
            .windows(2)
            .map(|w| (w[1] - w[0]) / 3_600_000)
            .collect()
    }

    #[test]
    fn berlin_days_follow_the_march_and_october_changes() {
        let tz = zone_named("Europe/Berlin").unwrap();
        // 2025-03-30: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let m = local_day_starts(2025, 3, &tz).unwrap();
        assert_eq!(m.len(), 32);
        assert_eq!(m[0], at("2025-03-01T00:00:00+01:00"));
        assert_eq!(m[29], at("2025-03-30T00:00:00+01:00"));
        assert_eq!(m[30], at("2025-03-31T00:00:00+02:00"));
        assert_eq!(m[31], at("2025-04-01T00:00:00+02:00"));
        let h = hours(&m);
        assert_eq!(h[29], 23, "the change day");
        assert!(
            h.iter().enumerate().all(|(i, &x)| i == 29 || x == 24),
            "{h:?}"
        );
        // 2025-10-26: 03:00 CEST becomes 02:00 CET (01:00 UTC).
        let o = local_day_starts(2025, 10, &tz).unwrap();
        assert_eq!(o[0], at("2025-10-01T00:00:00+02:00"));
        assert_eq!(o[25], at("2025-10-26T00:00:00+02:00"));
        assert_eq!(o[26], at("2025-10-27T00:00:00+01:00"));
        assert_eq!(o[31], at("2025-11-01T00:00:00+01:00"));
        let h = hours(&o);
        assert_eq!(h[25], 25, "the change day");
        assert!(
            h.iter().enumerate().all(|(i, &x)| i == 25 || x == 24),
            "{h:?}"
        );
        // A month without a change: every day 24 h, at +01:00.
        let j = local_day_starts(2025, 1, &tz).unwrap();
        assert_eq!(j[0], at("2025-01-01T00:00:00+01:00"));
        assert!(hours(&j).iter().all(|&x| x == 24));
    }

    #[test]
    fn a_missing_midnight_starts_the_day_when_the_clock_jumps_to() {
        // America/Santiago: 2024-09-08 00:00 -04 became 01:00 -03.
        let tz = zone_named("America/Santiago").unwrap();
        let s = local_day_starts(2024, 9, &tz).unwrap();
        assert_eq!(s[7], at("2024-09-08T01:00:00-03:00"));
        assert_eq!(s[7] - s[6], 24 * 3_600_000);
        assert_eq!(s[8] - s[7], 23 * 3_600_000);
    }

    #[test]
    fn fixed_offsets_and_utc_have_24_h_days() {
        let s = local_day_starts(2023, 11, &zone_fixed(480).unwrap()).unwrap();
        assert_eq!(s[0], at("2023-11-01T00:00:00+08:00"));
        assert_eq!(s[30], at("2023-12-01T00:00:00+08:00"));
        assert!(hours(&s).iter().all(|&x| x == 24));
        let u = local_day_starts(2024, 2, &zone_named("UTC").unwrap()).unwrap();
        assert_eq!(u.len(), 30, "a leap February");
        assert_eq!(u[0], days_from_civil(2024, 2, 1) * 86_400_000);
        // The last month the API takes, and one a timestamp cannot end.
        let e = local_day_starts(9998, 12, &zone_named("Pacific/Kiritimati").unwrap()).unwrap();
        assert_eq!(e[31] - e[30], 86_400_000);
        assert_eq!(local_day_starts(9999, 12, &TimeZone::UTC), None);
    }

    #[test]
    fn zones_are_checked() {
        assert!(zone_named("europe/berlin").is_ok(), "case-insensitive");
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "../../etc/passwd",
            "Europe/Berlin\u{0}",
        ] {
            let e = zone_named(bad).unwrap_err();
            assert!(e.0.contains("IANA"), "{bad}: {e:?}");
        }
        let long = zone_named(&"A".repeat(1000)).unwrap_err().0;
        assert!(long.contains("IANA") && long.len() < 200, "{long}");
        assert!(zone_fixed(-840).is_ok() && zone_fixed(840).is_ok());
        assert!(zone_fixed(841).is_err() && zone_fixed(-841).is_err());
    }
}
