//! Working hours, for SLA timers such as "contacted within 4 working hours".
//!
//! A [`WorkingCalendar`] is the same opening hours on each working day of the
//! week, in one fixed UTC offset (no daylight saving: a team that changes its
//! clocks changes its calendar). Working time is the union of the half-open
//! intervals `[opening, closing)` of the working days, in local time.
//!
//! - [`WorkingCalendar::add_working`] is a deadline: the first moment by which
//!   the given working minutes have elapsed since `start`. Time outside working
//!   hours does not count, so a start on a Saturday counts from Monday's
//!   opening, and a deadline that falls exactly at a closing time *is* that
//!   closing time (Friday 16:00 plus one working hour is Friday 17:00, not
//!   Monday 09:00). Zero minutes is `start` itself.
//! - [`WorkingCalendar::working_minutes_between`] is the working time between
//!   two moments, in whole minutes (rounded down). The two agree:
//!   `working_minutes_between(a, add_working(a, m)) == m`.
//!
//! A calendar with no working time at all (no working day, or a closing time
//! not after the opening) would never let a deadline pass. [`WorkingCalendar::parse`]
//! refuses one; a value built by hand that has none is treated as *always
//! working*, so a timer on it still ends (minutes are wall-clock minutes).
//!
//! Like the rest of the core, nothing here reads the clock: moments are arguments.

use crate::time::Timestamp;

const MINUTE: i128 = 60_000_000;
const MINUTES_PER_DAY: u32 = 24 * 60;
const DAY: i128 = MINUTES_PER_DAY as i128 * MINUTE;
const WEEK: i128 = 7 * DAY;
/// The largest UTC offset accepted, in minutes (as ISO 8601 and most libraries allow).
const MAX_OFFSET_MINUTES: i32 = 18 * 60;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Working hours: which days of the week, from when to when, in which UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkingCalendar {
    /// Local time minus UTC, in minutes (`+07:00` is 420).
    pub utc_offset_minutes: i32,
    /// Which days are working days, Monday first.
    pub days: [bool; 7],
    /// Opening time, in minutes after local midnight.
    pub start_minute: u32,
    /// Closing time, in minutes after local midnight, after `start_minute`;
    /// 1440 (24:00) closes at the next midnight.
    pub end_minute: u32,
}

impl Default for WorkingCalendar {
    /// Monday to Friday, 09:00 to 17:00 UTC.
    fn default() -> Self {
        WorkingCalendar {
            utc_offset_minutes: 0,
            days: [true, true, true, true, true, false, false],
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        }
    }
}

impl WorkingCalendar {
    /// Reads a calendar as a person writes it:
    ///
    /// - `days`: day names (`mon`..`sun`, or in full, any case) and ranges of
    ///   them, separated by commas: `"mon-fri"`, `"mon,tue,thu"`,
    ///   `"mon-wed,fri"`. A range may wrap around the week: `"sun-thu"`.
    /// - `hours`: `"HH:MM-HH:MM"`, e.g. `"09:00-17:00"`; the closing time may be
    ///   `24:00` and must be after the opening (overnight hours are not supported).
    /// - `utc_offset`: `"Z"` (or `"UTC"`), or `±HH:MM`, `±HHMM`, `±HH`:
    ///   `"+07:00"`, `"-05:30"`.
    ///
    /// The error names the argument, the value and what is wrong with it.
    pub fn parse(days: &str, hours: &str, utc_offset: &str) -> Result<WorkingCalendar, String> {
        let days = parse_days(days)?;
        let (start_minute, end_minute) = parse_hours(hours)?;
        let utc_offset_minutes = parse_offset(utc_offset)?;
        Ok(WorkingCalendar {
            utc_offset_minutes,
            days,
            start_minute,
            end_minute,
        })
    }

    /// The moment when `minutes` of working time have elapsed after `start`
    /// (see the module docs): counting begins at `start`, or at the next
    /// opening when `start` is outside working hours.
    pub fn add_working(&self, start: Timestamp, minutes: u64) -> Timestamp {
        let mut remaining = i128::from(minutes) * MINUTE;
        if remaining == 0 {
            return start;
        }
        if !self.has_working_time() {
            return to_timestamp(i128::from(start.as_micros()) + remaining);
        }
        let per_week = self.working_per_week();
        let mut t = self.local(start);
        loop {
            let (open, close) = self.interval_from(t);
            if remaining <= close - open {
                return self.utc(open + remaining);
            }
            remaining -= close - open;
            t = close;
            // Whole weeks at once; the last (partial) one is walked day by
            // day, so a deadline at a closing time stays there.
            if remaining > per_week {
                let weeks = (remaining - 1) / per_week;
                t += weeks * WEEK;
                remaining -= weeks * per_week;
            }
        }
    }

    /// The working time from `a` to `b`, in whole minutes (rounded down); 0
    /// when `b` is not after `a`.
    pub fn working_minutes_between(&self, a: Timestamp, b: Timestamp) -> u64 {
        if b <= a {
            return 0;
        }
        if !self.has_working_time() {
            return to_minutes(i128::from(b.as_micros()) - i128::from(a.as_micros()));
        }
        let (a, b) = (self.local(a), self.local(b));
        let weeks = (b - a) / WEEK;
        let mut total = weeks * self.working_per_week();
        let a = a + weeks * WEEK;
        for day in a.div_euclid(DAY)..=b.div_euclid(DAY) {
            if let Some((open, close)) = self.hours_on(day) {
                total += (close.min(b) - open.max(a)).max(0);
            }
        }
        to_minutes(total)
    }

    /// Is `t` inside working hours (opening included, closing excluded)?
    /// Always true for a calendar with no working time (see the module docs).
    pub fn is_working_time(&self, t: Timestamp) -> bool {
        if !self.has_working_time() {
            return true;
        }
        let t = self.local(t);
        self.hours_on(t.div_euclid(DAY))
            .is_some_and(|(open, close)| (open..close).contains(&t))
    }

    /// At least one working day with the closing time after the opening.
    fn has_working_time(&self) -> bool {
        self.days.contains(&true) && self.start_minute < self.end_minute.min(MINUTES_PER_DAY)
    }

    /// Working microseconds in one week.
    fn working_per_week(&self) -> i128 {
        let working_days = self.days.iter().filter(|&&d| d).count() as i128;
        working_days * self.day_length()
    }

    fn day_length(&self) -> i128 {
        i128::from(
            self.end_minute
                .min(MINUTES_PER_DAY)
                .saturating_sub(self.start_minute),
        ) * MINUTE
    }

    /// The working interval of a local day (days since 1970-01-01), in local
    /// microseconds, or `None` on a day off.
    fn hours_on(&self, day: i128) -> Option<(i128, i128)> {
        // 1970-01-01 was a Thursday: 3 days after a Monday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        self.days[weekday].then(|| {
            let open = day * DAY + i128::from(self.start_minute) * MINUTE;
            (open, open + self.day_length())
        })
    }

    /// The working interval containing local moment `t`, cut to start at `t`,
    /// or else the next one. Needs some working time.
    fn interval_from(&self, t: i128) -> (i128, i128) {
        let mut day = t.div_euclid(DAY);
        loop {
            if let Some((open, close)) = self.hours_on(day).filter(|&(_, close)| t < close) {
                return (open.max(t), close);
            }
            day += 1;
        }
    }

    fn local(&self, t: Timestamp) -> i128 {
        i128::from(t.as_micros()) + i128::from(self.utc_offset_minutes) * MINUTE
    }

    fn utc(&self, local: i128) -> Timestamp {
        to_timestamp(local - i128::from(self.utc_offset_minutes) * MINUTE)
    }
}

/// Microseconds to a timestamp, saturating far past the year 290,000.
fn to_timestamp(micros: i128) -> Timestamp {
    Timestamp::from_micros(micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

fn to_minutes(micros: i128) -> u64 {
    u64::try_from(micros / MINUTE).unwrap_or(u64::MAX)
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    let error = |why: String| format!("working days `{text}`: {why}");
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(error(if text.trim().is_empty() {
                "no working day given (e.g. mon-fri)".to_owned()
            } else {
                "an empty entry between commas".to_owned()
            }));
        }
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (day_index(a).map_err(&error)?, day_index(b).map_err(&error)?),
            None => {
                let d = day_index(item).map_err(&error)?;
                (d, d)
            }
        };
        // Ranges may wrap around the week: sun-thu is sun, mon, tue, wed, thu.
        let mut d = first;
        loop {
            days[d] = true;
            if d == last {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(days)
}

fn day_index(name: &str) -> Result<usize, String> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    (0..7)
        .find(|&i| lower == DAY_NAMES[i] || lower == DAY_FULL_NAMES[i])
        .ok_or_else(|| {
            format!(
                "`{name}` is not a day of the week (expected one of {})",
                DAY_NAMES.join(", ")
            )
        })
}

fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    let error = |why: &str| format!("working hours `{text}`: {why}");
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| error("expected opening and closing times as HH:MM-HH:MM, e.g. 09:00-17:00"))?;
    let start = clock_minutes(start.trim())
        .filter(|&m| m < MINUTES_PER_DAY)
        .ok_or_else(|| error("the opening time is not a time of day HH:MM (00:00 to 23:59)"))?;
    let end = clock_minutes(end.trim())
        .ok_or_else(|| error("the closing time is not a time of day HH:MM (00:00 to 24:00)"))?;
    if end <= start {
        return Err(error(
            "the closing time must be after the opening time (overnight hours are not supported)",
        ));
    }
    Ok((start, end))
}

/// `H:MM` or `HH:MM`, up to `24:00`, as minutes after midnight.
fn clock_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let h = small_number(h, 1..=2)?;
    let m = small_number(m, 2..=2)?;
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

/// A number of `digits` ASCII digits (no sign, no spaces).
fn small_number(s: &str, digits: std::ops::RangeInclusive<usize>) -> Option<u32> {
    if !digits.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_offset(text: &str) -> Result<i32, String> {
    let error = |why: &str| format!("UTC offset `{text}`: {why}");
    let s = text.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let shape = "expected Z or a sign and hours and minutes, e.g. +07:00 or -05:30";
    let sign = match s.bytes().next() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(error(shape)),
    };
    let rest = &s[1..];
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "00"),
    };
    let (h, m) = small_number(h, 2..=2)
        .zip(small_number(m, 2..=2))
        .ok_or_else(|| error(shape))?;
    if m >= 60 {
        return Err(error("the minutes must be below 60"));
    }
    let minutes = (h * 60 + m) as i32;
    if minutes > MAX_OFFSET_MINUTES {
        return Err(error("the offset must be at most 18 hours either way"));
    }
    Ok(sign * minutes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn cal(days: &str, hours: &str, offset: &str) -> WorkingCalendar {
        WorkingCalendar::parse(days, hours, offset).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `start + minutes` under `calendar` is `expected`, and the minutes between agree.
    #[track_caller]
    fn check(calendar: &WorkingCalendar, start: &str, minutes: u64, expected: &str) {
        let end = calendar.add_working(ts(start), minutes);
        assert_eq!(end.to_string(), expected, "{start} + {minutes} min");
        assert_eq!(
            calendar.working_minutes_between(ts(start), end),
            minutes,
            "{start} .. {expected}"
        );
    }

    // 2026-10-30 is a Friday; 2026-11-02 a Monday.

    #[test]
    fn default_is_weekdays_nine_to_five_utc() {
        assert_eq!(WorkingCalendar::default(), cal("mon-fri", "09:00-17:00", "Z"));
    }

    #[test]
    fn adds_working_minutes() {
        let c = WorkingCalendar::default();
        for (start, minutes, expected) in [
            // Friday 16:00 + 4 working hours: one on Friday, three on Monday.
            ("2026-10-30T16:00:00Z", 240, "2026-11-02T12:00:00Z"),
            // A deadline at closing time is closing time.
            ("2026-10-30T16:00:00Z", 60, "2026-10-30T17:00:00Z"),
            ("2026-10-30T16:00:00Z", 61, "2026-11-02T09:01:00Z"),
            // Outside working hours: counting starts at the next opening.
            ("2026-10-31T10:00:00Z", 0, "2026-10-31T10:00:00Z"),
            ("2026-10-31T10:00:00Z", 1, "2026-11-02T09:01:00Z"),
            ("2026-10-31T10:00:00Z", 30, "2026-11-02T09:30:00Z"),
            ("2026-11-01T23:59:59Z", 480, "2026-11-02T17:00:00Z"),
            ("2026-11-02T06:00:00Z", 60, "2026-11-02T10:00:00Z"),
            ("2026-11-02T17:00:00Z", 60, "2026-11-03T10:00:00Z"),
            ("2026-11-02T09:00:00.5Z", 1, "2026-11-02T09:01:00.500Z"),
            // Whole weeks: 40 working hours a week.
            ("2026-11-02T09:00:00Z", 40 * 60, "2026-11-06T17:00:00Z"),
            ("2026-11-02T09:00:00Z", 40 * 60 + 1, "2026-11-09T09:01:00Z"),
            ("2026-11-04T12:00:00Z", 10 * 40 * 60, "2027-01-13T12:00:00Z"),
        ] {
            check(&c, start, minutes, expected);
        }
    }

    #[test]
    fn the_utc_offset_shifts_the_hours() {
        // 09:00-17:00 at +07:00 is 02:00-10:00 UTC.
        let hcm = cal("mon-fri", "09:00-17:00", "+07:00");
        check(&hcm, "2026-11-02T01:00:00Z", 60, "2026-11-02T03:00:00Z");
        check(&hcm, "2026-11-02T09:30:00Z", 60, "2026-11-03T02:30:00Z");
        // Friday 09:30 UTC is Friday 16:30 local: half an hour left, then Monday.
        check(&hcm, "2026-10-30T09:30:00Z", 240, "2026-11-02T05:30:00Z");
        // Sunday 20:00 UTC is already Monday 03:00 local.
        check(&hcm, "2026-11-01T20:00:00Z", 60, "2026-11-02T03:00:00Z");
        assert!(!hcm.is_working_time(ts("2026-11-02T10:00:00Z")));
        assert!(hcm.is_working_time(ts("2026-11-02T02:00:00Z")));
        // A negative, half-hour offset: 09:00-17:00 at -05:30 is 14:30-22:30 UTC.
        let west = cal("mon-fri", "09:00-17:00", "-05:30");
        check(&west, "2026-11-02T12:00:00Z", 60, "2026-11-02T15:30:00Z");
        // Friday 22:00 UTC is Friday 16:30 local.
        check(&west, "2026-10-30T22:00:00Z", 60, "2026-11-02T15:00:00Z");
    }

    #[test]
    fn odd_calendars() {
        // Sunday to Thursday, wrapping around the week.
        let c = cal("sun-thu", "08:00-16:00", "+03:00");
        assert_eq!(c.days, [true, true, true, true, false, false, true]);
        // Thursday 15:00 local (12:00 UTC) + 2 h: one on Thursday, one on Sunday.
        check(&c, "2026-10-29T12:00:00Z", 120, "2026-11-01T06:00:00Z");
        // Round the clock on two days: Monday 23:00 + 2 h is Tuesday 01:00.
        let c = cal("mon,tue", "00:00-24:00", "Z");
        check(&c, "2026-11-02T23:00:00Z", 120, "2026-11-03T01:00:00Z");
        check(&c, "2026-11-03T23:00:00Z", 120, "2026-11-09T01:00:00Z");
        // Every day round the clock is plain time.
        let c = cal("mon-sun", "00:00-24:00", "Z");
        check(
            &c,
            "2026-10-30T16:00:00Z",
            7 * 24 * 60 + 5,
            "2026-11-06T16:05:00Z",
        );
    }

    #[test]
    fn a_calendar_without_working_time_is_always_working() {
        for c in [
            WorkingCalendar {
                days: [false; 7],
                ..WorkingCalendar::default()
            },
            WorkingCalendar {
                start_minute: 600,
                end_minute: 600,
                ..WorkingCalendar::default()
            },
        ] {
            check(&c, "2026-10-31T10:00:00Z", 90, "2026-10-31T11:30:00Z");
            assert!(c.is_working_time(ts("2026-10-31T03:00:00Z")));
        }
    }

    #[test]
    fn minutes_between() {
        let c = WorkingCalendar::default();
        for (a, b, expected) in [
            ("2026-10-30T16:00:00Z", "2026-11-02T12:00:00Z", 240),
            ("2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z", 0),
            ("2026-11-02T12:00:00Z", "2026-10-30T16:00:00Z", 0),
            ("2026-11-02T09:00:00Z", "2026-11-02T09:00:59Z", 0),
            ("2026-11-02T09:00:00Z", "2026-11-02T09:01:00Z", 1),
            ("2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z", 2400),
            ("2026-11-02T00:00:00Z", "2026-11-09T12:00:00Z", 2580),
            ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 261 * 480),
        ] {
            assert_eq!(c.working_minutes_between(ts(a), ts(b)), expected, "{a} .. {b}");
        }
    }

    #[test]
    fn parses_what_people_write() {
        let c = cal(" Mon - Wed , FRIDAY ", " 8:30 - 17:45 ", "+0700");
        assert_eq!(c.days, [true, true, true, false, true, false, false]);
        assert_eq!((c.start_minute, c.end_minute), (510, 1065));
        assert_eq!(c.utc_offset_minutes, 420);
        for (offset, minutes) in [
            ("Z", 0),
            ("utc", 0),
            ("+00:00", 0),
            ("-05:30", -330),
            ("+14", 840),
        ] {
            assert_eq!(
                cal("mon", "09:00-17:00", offset).utc_offset_minutes,
                minutes,
                "{offset}"
            );
        }
        assert_eq!(
            cal("fri-mon", "09:00-17:00", "Z").days,
            [true, false, false, false, true, true, true]
        );
        assert_eq!(
            cal("tue-tue", "09:00-17:00", "Z").days,
            [false, true, false, false, false, false, false]
        );
    }

    #[test]
    fn parse_errors_name_what_is_wrong() {
        for (days, hours, offset, expected) in [
            ("", "09:00-17:00", "Z", "working days ``: no working day given"),
            (
                "mon,,fri",
                "09:00-17:00",
                "Z",
                "working days `mon,,fri`: an empty entry",
            ),
            ("mon-fxi", "09:00-17:00", "Z", "`fxi` is not a day of the week"),
            (
                "weekdays",
                "09:00-17:00",
                "Z",
                "`weekdays` is not a day of the week",
            ),
            (
                "mon-fri",
                "9-17",
                "Z",
                "working hours `9-17`: the opening time is not",
            ),
            (
                "mon-fri",
                "09:00",
                "Z",
                "working hours `09:00`: expected opening and closing",
            ),
            (
                "mon-fri",
                "09:00-25:00",
                "Z",
                "the closing time is not a time of day",
            ),
            ("mon-fri", "24:00-24:00", "Z", "the opening time is not"),
            ("mon-fri", "09:60-17:00", "Z", "the opening time is not"),
            ("mon-fri", "17:00-09:00", "Z", "overnight hours are not supported"),
            (
                "mon-fri",
                "09:00-09:00",
                "Z",
                "the closing time must be after the opening",
            ),
            (
                "mon-fri",
                "09:00-17:00",
                "07:00",
                "UTC offset `07:00`: expected Z or a sign",
            ),
            ("mon-fri", "09:00-17:00", "+7", "UTC offset `+7`: expected Z"),
            ("mon-fri", "09:00-17:00", "+07:75", "the minutes must be below 60"),
            ("mon-fri", "09:00-17:00", "+19:00", "at most 18 hours"),
            ("mon-fri", "09:00-17:00", "", "UTC offset ``"),
            ("mon-fri", "09:00-17:00", "+", "UTC offset `+`"),
        ] {
            let error = WorkingCalendar::parse(days, hours, offset).expect_err(expected);
            assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        }
    }

    #[test]
    fn weekdays_agree_with_chrono() {
        for day in -200_000i64..200_000 {
            let date = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap();
            let weekday = date.weekday().num_days_from_monday() as usize;
            let only = WorkingCalendar {
                days: std::array::from_fn(|i| i == weekday),
                ..WorkingCalendar::default()
            };
            assert!(only.hours_on(i128::from(day)).is_some(), "{date}");
        }
    }

    fn arb_calendar() -> impl Strategy<Value = WorkingCalendar> {
        (
            -MAX_OFFSET_MINUTES..=MAX_OFFSET_MINUTES,
            prop::array::uniform7(any::<bool>()).prop_filter("a working day", |d| d.contains(&true)),
            0..MINUTES_PER_DAY,
            1..=MINUTES_PER_DAY,
        )
            .prop_map(|(offset, days, a, b)| {
                let (start, end) = if a < b { (a, b) } else { (b - 1, a + 1) };
                WorkingCalendar {
                    utc_offset_minutes: offset,
                    days,
                    start_minute: start,
                    end_minute: end.min(MINUTES_PER_DAY),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn adding_and_measuring_agree(
            c in arb_calendar(),
            start in -4_000_000_000_000_000i64..4_000_000_000_000_000,
            minutes in prop_oneof![0u64..600, 0u64..5_000_000],
        ) {
            let a = Timestamp::from_micros(start);
            let end = c.add_working(a, minutes);
            prop_assert!(end >= a);
            prop_assert_eq!(c.working_minutes_between(a, end), minutes);
            if minutes > 0 {
                // The earliest such moment: a microsecond before, it is not there yet,
                // and that microsecond was working time.
                let before = Timestamp::from_micros(end.as_micros() - 1);
                prop_assert_eq!(c.working_minutes_between(a, before), minutes - 1);
                prop_assert!(c.is_working_time(before));
            }
        }

        #[test]
        fn more_minutes_never_end_sooner(c in arb_calendar(), start in 0i64..4_000_000_000_000_000, m in 0u64..20_000, extra in 0u64..20_000) {
            let a = Timestamp::from_micros(start);
            prop_assert!(c.add_working(a, m) <= c.add_working(a, m + extra));
        }
    }
}
