//! EventBridge schedule expressions: `cron(min hour dom month dow year)`, `rate(N unit)`
//! and `at(yyyy-mm-ddThh:mm:ss)`, parsed into an [`Expression`], and the next time one
//! fires after an instant in a time zone. Pure: no clock, no I/O.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Years EventBridge accepts in a cron expression.
const YEARS: std::ops::RangeInclusive<u32> = 1970..=2199;

/// A schedule expression that parsed.
#[derive(Debug, Clone)]
pub enum Expression {
    /// Fires at every matching minute, in the schedule's time zone.
    Cron(Box<Cron>),
    /// Fires every `every`, counted from the schedule's start.
    Rate { every: Duration },
    /// Fires once, at this wall-clock time in the schedule's time zone.
    At(NaiveDateTime),
}

/// What is wrong with a schedule's expression or time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("ScheduleExpression {expression:?}: {reason}")]
    Expression { expression: String, reason: String },
    #[error("ScheduleExpressionTimezone {0:?}: not an IANA time zone name (such as Europe/Paris)")]
    Timezone(String),
}

/// Parses `cron(...)`, `rate(...)` or `at(...)` as EventBridge does.
pub fn parse(expression: &str) -> Result<Expression, ExpressionError> {
    let refuse = |reason: String| ExpressionError::Expression {
        expression: expression.to_string(),
        reason,
    };
    let text = expression.trim();
    let (kind, inner) = text
        .strip_suffix(')')
        .and_then(|t| t.split_once('('))
        .ok_or_else(|| refuse("must be cron(...), rate(...) or at(...)".to_string()))?;
    match kind {
        "cron" => parse_cron(inner).map_err(refuse),
        "rate" => parse_rate(inner).map_err(refuse),
        "at" => parse_at(inner).map_err(refuse),
        _ => Err(refuse(
            "must be cron(...), rate(...) or at(...)".to_string(),
        )),
    }
}

/// An IANA time zone name; empty means UTC.
pub fn parse_timezone(name: &str) -> Result<Tz, ExpressionError> {
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    Tz::from_str(name).map_err(|_| ExpressionError::Timezone(name.to_string()))
}

/// The first time strictly after `after` at which the expression fires, or None when it
/// never fires again. For `rate`, `after` is the schedule's start or its last firing.
pub fn next_fire(expr: &Expression, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    match expr {
        Expression::Cron(cron) => cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Expression::Rate { every } => after.checked_add_signed(*every),
        Expression::At(local) => {
            let at = local_to_utc(local, tz)?;
            (at > after).then_some(at)
        }
    }
}

/// The last time at or before `now` at which the expression fired, counting from `start`
/// (a rate's origin); None when it has not fired since `start`.
pub fn last_fire(
    expr: &Expression,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let slot = match expr {
        Expression::Cron(cron) => cron
            .find_previous_occurrence(&now.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))?,
        Expression::Rate { every } => {
            let every_ms = every.num_milliseconds().max(1);
            let elapsed = (now - start).num_milliseconds();
            let slots = elapsed.div_euclid(every_ms);
            start.checked_add_signed(Duration::milliseconds(slots * every_ms))?
        }
        Expression::At(local) => local_to_utc(local, tz)?,
    };
    (slot > start && slot <= now).then_some(slot)
}

/// A wall-clock time in `tz`: the earlier of two in a repeated hour, and for a time the
/// clocks skip, the same distance past the gap's start.
fn local_to_utc(local: &NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
        LocalResult::None => tz
            .from_local_datetime(&(*local + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

fn parse_cron(inner: &str) -> Result<Expression, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron takes six fields (minutes hours day-of-month month day-of-week year), not {}",
            fields.len()
        ));
    }
    let (dom, dow, year) = (fields[2], fields[4], fields[5]);
    for (i, f) in fields.iter().enumerate() {
        if f.contains('?') && i != 2 && i != 4 {
            return Err(format!(
                "{}: ? is allowed only in day-of-month or day-of-week",
                NAMES[i]
            ));
        }
    }
    match (dom == "?", dow == "?") {
        (true, true) => {
            return Err("day-of-month and day-of-week: only one of them may be ?".into());
        }
        (false, false) => {
            return Err(
                "day-of-month and day-of-week: one of them must be ? (they cannot both be set)"
                    .into(),
            );
        }
        _ => {}
    }
    check_years(year)?;
    // croner wants the seconds first; EventBridge's day-of-week counts 1-7 from Sunday,
    // which is croner's Quartz mode.
    let pattern = format!("0 {}", fields.join(" "));
    let cron = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
        .parse(&pattern)
        .map_err(|e| format!("{e}"))?;
    Ok(Expression::Cron(Box::new(cron)))
}

const NAMES: [&str; 6] = [
    "minutes",
    "hours",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// Every number in the year field must be one EventBridge accepts; a step is not a year.
fn check_years(field: &str) -> Result<(), String> {
    for part in field.split(',') {
        let range = part.split('/').next().unwrap_or(part);
        for n in range.split('-').filter(|n| *n != "*") {
            let year: u32 = n
                .parse()
                .map_err(|_| format!("year: {n:?} is not a year"))?;
            if !YEARS.contains(&year) {
                return Err(format!(
                    "year: {year} is outside {}-{}",
                    YEARS.start(),
                    YEARS.end()
                ));
            }
        }
    }
    Ok(())
}

fn parse_rate(inner: &str) -> Result<Expression, String> {
    let mut words = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err("rate takes a value and a unit, as in rate(5 minutes)".into());
    };
    let value: i64 = value
        .parse()
        .map_err(|_| format!("rate: {value:?} is not a whole number"))?;
    if value < 1 {
        return Err(format!("rate: the value must be at least 1, not {value}"));
    }
    let (singular, one) = match unit {
        "minute" => (true, Duration::minutes(1)),
        "minutes" => (false, Duration::minutes(1)),
        "hour" => (true, Duration::hours(1)),
        "hours" => (false, Duration::hours(1)),
        "day" => (true, Duration::days(1)),
        "days" => (false, Duration::days(1)),
        other => {
            return Err(format!(
                "rate: unit {other:?} must be minute(s), hour(s) or day(s)"
            ));
        }
    };
    if singular && value != 1 {
        return Err(format!("rate: with {value}, the unit is plural ({unit}s)"));
    }
    if !singular && value == 1 {
        return Err(format!(
            "rate: with 1, the unit is singular ({})",
            unit.trim_end_matches('s')
        ));
    }
    let every = one
        .checked_mul(i32::try_from(value).map_err(|_| format!("rate: {value} is too large"))?)
        .ok_or_else(|| format!("rate: {value} {unit} is too long"))?;
    Ok(Expression::Rate { every })
}

fn parse_at(inner: &str) -> Result<Expression, String> {
    let text = inner.trim();
    let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .filter(|_| text.len() == 19)
        .ok_or_else(|| format!("at: {text:?} is not a date and time as yyyy-mm-ddThh:mm:ss"))?;
    Ok(Expression::At(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    /// (expression, time zone, after, the next firing in UTC)
    #[rustfmt::skip]
    const NEXT: &[(&str, &str, &str, &str)] = &[
        // Every 10 minutes, on weekdays (2-6 = MON-FRI).
        ("cron(0/10 * ? * 2-6 *)", "", "2026-11-26T10:03:00Z", "2026-11-26T10:10:00Z"),
        ("cron(0/10 * ? * MON-FRI *)", "", "2026-11-27T23:55:00Z", "2026-11-30T00:00:00Z"),
        // 12:00 every day, from the exact minute it fires on.
        ("cron(0 12 * * ? *)", "", "2026-11-26T12:00:00Z", "2026-11-27T12:00:00Z"),
        // Day-of-week 1 is Sunday in EventBridge, not Monday.
        ("cron(0 8 ? * 1 *)", "", "2026-11-26T00:00:00Z", "2026-11-29T08:00:00Z"),
        ("cron(0 8 ? * SUN *)", "", "2026-11-26T00:00:00Z", "2026-11-29T08:00:00Z"),
        ("cron(0 8 ? * 7 *)", "", "2026-11-26T00:00:00Z", "2026-11-28T08:00:00Z"),
        // The last day of the month.
        ("cron(0 18 L * ? *)", "", "2026-11-26T00:00:00Z", "2026-11-30T18:00:00Z"),
        ("cron(0 18 L * ? *)", "", "2027-02-01T00:00:00Z", "2027-02-28T18:00:00Z"),
        // The weekday nearest the 15th (2026-11-15 is a Sunday).
        ("cron(0 9 15W * ? *)", "", "2026-11-01T00:00:00Z", "2026-11-16T09:00:00Z"),
        // The weekday nearest the 1st, never in the previous month (2026-08-01 is a Saturday).
        ("cron(0 9 1W AUG ? *)", "", "2026-07-01T00:00:00Z", "2026-08-03T09:00:00Z"),
        // The second Tuesday (3 = TUE) and the last Friday (6L) of the month.
        ("cron(0 10 ? * 3#2 *)", "", "2026-11-26T00:00:00Z", "2026-12-08T10:00:00Z"),
        ("cron(0 10 ? * 6L *)", "", "2026-11-01T00:00:00Z", "2026-11-27T10:00:00Z"),
        // Month names, lists and ranges.
        ("cron(30 6 1 JAN,JUL ? *)", "", "2026-11-26T00:00:00Z", "2027-01-01T06:30:00Z"),
        ("cron(15 10 ? MAR-APR MON *)", "", "2026-11-26T00:00:00Z", "2027-03-01T10:15:00Z"),
        // Years: a range that starts later, a single year.
        ("cron(0 0 1 1 ? 2028-2030)", "", "2026-11-26T00:00:00Z", "2028-01-01T00:00:00Z"),
        ("cron(0 0 29 2 ? 2032)", "", "2026-11-26T00:00:00Z", "2032-02-29T00:00:00Z"),
        // Time zones: 09:00 in Paris is 08:00 UTC in winter, 07:00 in summer.
        ("cron(0 9 * * ? *)", "Europe/Paris", "2026-11-26T10:00:00Z", "2026-11-27T08:00:00Z"),
        ("cron(0 9 * * ? *)", "Europe/Paris", "2026-07-01T10:00:00Z", "2026-07-02T07:00:00Z"),
        // Across the spring change in New York (2027-03-14): 08:00 EST, then 08:00 EDT.
        ("cron(0 8 * * ? *)", "America/New_York", "2027-03-12T14:00:00Z", "2027-03-13T13:00:00Z"),
        ("cron(0 8 * * ? *)", "America/New_York", "2027-03-13T14:00:00Z", "2027-03-14T12:00:00Z"),
        // 02:30 does not exist on that day in New York: it fires when the clocks jump to 03:00.
        ("cron(30 2 * * ? *)", "America/New_York", "2027-03-14T00:00:00Z", "2027-03-14T07:00:00Z"),
        // rate counts from the start or last firing.
        ("rate(5 minutes)", "", "2026-11-26T10:03:20Z", "2026-11-26T10:08:20Z"),
        ("rate(1 hour)", "", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z"),
        ("rate(2 days)", "", "2026-11-26T10:00:00Z", "2026-11-28T10:00:00Z"),
        // at() in a time zone; and in the hour Berlin repeats in autumn, the first one.
        ("at(2026-12-01T10:00:00)", "", "2026-11-26T10:00:00Z", "2026-12-01T10:00:00Z"),
        ("at(2026-12-01T10:00:00)", "Asia/Tokyo", "2026-11-26T10:00:00Z", "2026-12-01T01:00:00Z"),
        ("at(2026-10-25T02:30:00)", "Europe/Berlin", "2026-10-01T00:00:00Z", "2026-10-25T00:30:00Z"),
    ];

    #[test]
    fn next_firing_times() {
        for (expr, tz, after, want) in NEXT {
            let parsed = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let tz = parse_timezone(tz).unwrap_or_else(|e| panic!("{e}"));
            let next = next_fire(&parsed, utc(after), tz);
            assert_eq!(next, Some(utc(want)), "{expr} in {tz} after {after}");
        }
    }

    #[test]
    fn past_and_impossible_times_never_fire() {
        let at = parse("at(2026-01-01T00:00:00)").unwrap();
        assert_eq!(next_fire(&at, utc("2026-11-26T00:00:00Z"), Tz::UTC), None);
        let past_year = parse("cron(0 0 1 1 ? 2020)").unwrap();
        assert_eq!(
            next_fire(&past_year, utc("2026-11-26T00:00:00Z"), Tz::UTC),
            None
        );
    }

    #[test]
    fn the_last_slot_before_now() {
        let start = utc("2026-11-26T10:00:00Z");
        let now = utc("2026-11-26T10:17:30Z");
        let rate = parse("rate(5 minutes)").unwrap();
        assert_eq!(
            last_fire(&rate, start, now, Tz::UTC),
            Some(utc("2026-11-26T10:15:00Z"))
        );
        let cron = parse("cron(0/10 * * * ? *)").unwrap();
        assert_eq!(
            last_fire(&cron, start, now, Tz::UTC),
            Some(utc("2026-11-26T10:10:00Z"))
        );
        assert_eq!(last_fire(&cron, start, start, Tz::UTC), None);
        let at = parse("at(2026-11-26T10:12:00)").unwrap();
        assert_eq!(
            last_fire(&at, start, now, Tz::UTC),
            Some(utc("2026-11-26T10:12:00Z"))
        );
        assert_eq!(
            last_fire(&at, start, utc("2026-11-26T10:11:00Z"), Tz::UTC),
            None
        );
    }

    /// (expression, a part of the error)
    const REFUSED: &[(&str, &str)] = &[
        ("cron(0 12 1 * MON *)", "one of them must be ?"),
        ("cron(0 12 * * * *)", "one of them must be ?"),
        ("cron(0 12 ? * ? *)", "only one of them may be ?"),
        ("cron(0 0 12 * * ? *)", "six fields"),
        ("cron(0 12 * * ?)", "six fields"),
        ("cron(? 12 * * ? *)", "minutes: ?"),
        ("cron(0 12 * * ? 1969)", "year: 1969 is outside 1970-2199"),
        ("cron(0 12 * * ? 2026-2200)", "year: 2200"),
        ("cron(60 12 * * ? *)", ""),
        ("cron(0 24 * * ? *)", ""),
        ("cron(0 12 ? * 0 *)", ""),
        ("cron(0 12 ? * 8 *)", ""),
        ("cron(0 12 32 * ? *)", ""),
        ("cron(0 12 * 13 ? *)", ""),
        ("cron(0 12 * FOO ? *)", ""),
        ("rate(0 minutes)", "at least 1"),
        ("rate(-5 minutes)", "at least 1"),
        ("rate(1 minutes)", "singular (minute)"),
        ("rate(2 minute)", "plural (minutes)"),
        ("rate(5 seconds)", "unit \"seconds\""),
        ("rate(5)", "a value and a unit"),
        ("rate(five minutes)", "not a whole number"),
        ("at(2026-02-30T10:00:00)", "yyyy-mm-ddThh:mm:ss"),
        ("at(2026-12-01 10:00:00)", "yyyy-mm-ddThh:mm:ss"),
        ("at(2026-12-01T10:00)", "yyyy-mm-ddThh:mm:ss"),
        ("at(2026-12-01T25:00:00)", "yyyy-mm-ddThh:mm:ss"),
        (
            "every(5 minutes)",
            "must be cron(...), rate(...) or at(...)",
        ),
        ("0 12 * * ? *", "must be cron(...), rate(...) or at(...)"),
    ];

    #[test]
    fn refused_expressions_say_what_is_wrong() {
        for (expr, want) in REFUSED {
            match parse(expr) {
                Ok(e) => panic!("{expr}: accepted as {e:?}"),
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.starts_with(&format!("ScheduleExpression {expr:?}: ")),
                        "{text}"
                    );
                    assert!(text.contains(want), "{expr}: {text:?} lacks {want:?}");
                }
            }
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(parse_timezone("").unwrap(), Tz::UTC);
        assert_eq!(parse_timezone("Europe/Paris").unwrap(), Tz::Europe__Paris);
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err().to_string(),
            "ScheduleExpressionTimezone \"Mars/Olympus\": not an IANA time zone name (such as Europe/Paris)"
        );
    }
}
