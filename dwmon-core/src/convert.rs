//! Conversion rules shared by every row source: how a `dwmon_unique_key` becomes a `String`
//! and a `dwmon_timestamp` becomes Unix epoch seconds, and which values are rejected.
//!
//! Sources (PostgreSQL, SQLite, an organisation's own) read their driver's values and hand them
//! to these functions, so that `1700000000`, `1700000000.9`, `'1700000000'` and
//! `'2023-11-14 22:13:20'` mean the same instant everywhere, and a value that cannot be an
//! instant is rejected with the same words everywhere.
//!
//! | value | result |
//! |---|---|
//! | integer | epoch seconds, as is |
//! | float / decimal | epoch seconds, floored (`1700000000.9` -> `1700000000`, `-0.5` -> `-1`, rejected as negative) |
//! | text holding an integer or a decimal (`'1700000000'`, SQLite's `strftime('%s','now')`) | as the number |
//! | text holding a date-time: `YYYY-MM-DD HH:MM:SS[.f]` (or `T`), taken as UTC; RFC 3339 with an offset; `YYYY-MM-DD` (midnight UTC) | that instant |
//! | NULL, NaN, infinity, other text | rejected |
//! | before 1970 (negative) | rejected |
//! | after the year 5000 as seconds | rejected; a hint says whether it looks like milliseconds, microseconds or nanoseconds |

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Name of the key column every result set must have.
pub const KEY_COLUMN: &str = "dwmon_unique_key";

/// Name of the timestamp column every result set must have.
pub const TIMESTAMP_COLUMN: &str = "dwmon_timestamp";

/// The latest accepted epoch: `5000-01-01T00:00:00Z`. Larger "seconds" are almost always
/// milliseconds (or finer) by mistake.
pub const MAX_EPOCH: i64 = 95_617_584_000;

/// How many characters of an offending value a rejection reason shows.
const SHOWN_VALUE_CHARS: usize = 40;

/// Why a value cannot be used as a key or a timestamp. The row is rejected and counted; the
/// fetch goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// SQL NULL.
    #[error("is NULL")]
    Null,
    /// Before 1970-01-01T00:00:00Z.
    #[error("is negative (before 1970)")]
    Negative,
    /// Larger than [`MAX_EPOCH`], and dividing by 1000 gives a plausible epoch.
    #[error("is after the year 5000 as seconds: it looks like milliseconds; divide by 1000 in the query")]
    LooksLikeMilliseconds,
    /// Larger than [`MAX_EPOCH`], and dividing by 1,000,000 gives a plausible epoch.
    #[error("is after the year 5000 as seconds: it looks like microseconds; divide by 1000000 in the query")]
    LooksLikeMicroseconds,
    /// Larger than [`MAX_EPOCH`], and dividing by 10^9 gives a plausible epoch.
    #[error("is after the year 5000 as seconds: it looks like nanoseconds; divide by 1000000000 in the query")]
    LooksLikeNanoseconds,
    /// After the year 5000 (a date-time value, or a number no unit explains).
    #[error("is after the year 5000")]
    TooFarInFuture,
    /// NaN or an infinity.
    #[error("is not a finite number")]
    NotFinite,
    /// Text that is neither a number nor a date-time.
    #[error(
        "is not epoch seconds (integer or decimal) nor a UTC date-time like '2024-05-01 12:00:00'"
    )]
    Unparsable,
    /// A value of a kind that has no timestamp reading (e.g. a BLOB).
    #[error("is a {0}, which cannot be read as a timestamp")]
    WrongType(String),
}

/// Validates epoch seconds: `0 <= seconds <= MAX_EPOCH`, with a unit hint for larger values.
///
/// # Errors
/// [`ValueError::Negative`], or for values after the year 5000 one of
/// [`ValueError::LooksLikeMilliseconds`], [`ValueError::LooksLikeMicroseconds`],
/// [`ValueError::LooksLikeNanoseconds`] or [`ValueError::TooFarInFuture`].
pub fn epoch_from_i64(seconds: i64) -> Result<i64, ValueError> {
    if seconds < 0 {
        Err(ValueError::Negative)
    } else if seconds <= MAX_EPOCH {
        Ok(seconds)
    } else if seconds / 1_000 <= MAX_EPOCH {
        Err(ValueError::LooksLikeMilliseconds)
    } else if seconds / 1_000_000 <= MAX_EPOCH {
        Err(ValueError::LooksLikeMicroseconds)
    } else if seconds / 1_000_000_000 <= MAX_EPOCH {
        Err(ValueError::LooksLikeNanoseconds)
    } else {
        Err(ValueError::TooFarInFuture)
    }
}

/// Validates an instant read from a native date-time type (Postgres `timestamptz`, ...), given
/// as epoch seconds: the same range as [`epoch_from_i64`], without unit hints (a date-time has
/// no unit to get wrong).
///
/// # Errors
/// [`ValueError::Negative`] before 1970, [`ValueError::TooFarInFuture`] after the year 5000.
pub fn epoch_from_instant(seconds: i64) -> Result<i64, ValueError> {
    if seconds < 0 {
        Err(ValueError::Negative)
    } else if seconds > MAX_EPOCH {
        Err(ValueError::TooFarInFuture)
    } else {
        Ok(seconds)
    }
}

/// Floors a float epoch to whole seconds, then validates it like [`epoch_from_i64`].
///
/// # Errors
/// [`ValueError::NotFinite`] for NaN and infinities, otherwise as [`epoch_from_i64`].
pub fn epoch_from_f64(seconds: f64) -> Result<i64, ValueError> {
    if !seconds.is_finite() {
        return Err(ValueError::NotFinite);
    }
    let floored = seconds.floor();
    if floored < 0.0 {
        return Err(ValueError::Negative);
    }
    // 9.2e18 is far beyond every unit hint; saturate instead of wrapping.
    if floored >= i64::MAX as f64 {
        return Err(ValueError::TooFarInFuture);
    }
    epoch_from_i64(floored as i64)
}

/// Reads exact decimal text (`"1700000000"`, `"-3"`, `"+1700000000.75"`) as floored epoch
/// seconds, without going through a float (so no precision is lost). This is also how a
/// PostgreSQL `numeric` is read.
///
/// # Errors
/// [`ValueError::Unparsable`] when the text is not `[+-]digits[.digits]` (or `.digits`),
/// otherwise as [`epoch_from_i64`].
pub fn epoch_from_decimal(text: &str) -> Result<i64, ValueError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(ValueError::Unparsable);
    }
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    let digits = whole.trim_start_matches('0');
    if negative && (!digits.is_empty() || has_fraction) {
        return Err(ValueError::Negative);
    }
    // u128 holds 38 digits; anything longer (or past i64) is beyond every unit hint.
    let magnitude: u128 = if digits.is_empty() {
        0
    } else if digits.len() > 38 {
        return Err(ValueError::TooFarInFuture);
    } else {
        digits.parse().map_err(|_| ValueError::Unparsable)?
    };
    let floored = i64::try_from(magnitude).map_err(|_| ValueError::TooFarInFuture)?;
    epoch_from_i64(floored)
}

/// Reads a text timestamp: an integer or decimal epoch (floored), a float in exponent form, or
/// a date-time (see the module table; without an offset it is taken as UTC). Surrounding
/// whitespace is ignored.
///
/// # Errors
/// [`ValueError::Unparsable`] for anything else, otherwise as [`epoch_from_i64`] (numbers) or
/// [`epoch_from_instant`] (date-times).
pub fn epoch_from_text(text: &str) -> Result<i64, ValueError> {
    let text = text.trim();
    match epoch_from_decimal(text) {
        Err(ValueError::Unparsable) => {}
        other => return other,
    }
    if let Some(seconds) = parse_date_time(text) {
        return epoch_from_instant(seconds);
    }
    // "1.7e9", "NaN", "inf": only texts that look numeric, so a word like "infinite" is
    // reported as unparsable rather than as not finite.
    if text.bytes().any(|b| b.is_ascii_digit()) || is_special_float(text) {
        if let Ok(value) = text.parse::<f64>() {
            return epoch_from_f64(value);
        }
    }
    Err(ValueError::Unparsable)
}

fn is_special_float(text: &str) -> bool {
    let unsigned = text.trim_start_matches(['+', '-']);
    ["nan", "inf", "infinity"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word))
}

/// A date-time text as epoch seconds (floored), or `None` when it is not one.
fn parse_date_time(text: &str) -> Option<i64> {
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Some(with_offset.timestamp());
    }
    let without_z = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .unwrap_or(text);
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(without_z, format) {
            return Some(naive.and_utc().timestamp());
        }
    }
    // PostgreSQL's text form of timestamptz: `2024-05-01 12:00:00+00` (minutes optional).
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(with_offset) = DateTime::parse_from_str(text, format) {
            return Some(with_offset.timestamp());
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// The text form of a float key: Rust's shortest round-trip form (`1.5`, `2` for `2.0`).
pub fn key_from_f64(value: f64) -> String {
    value.to_string()
}

/// The positions of [`KEY_COLUMN`] and [`TIMESTAMP_COLUMN`] among a result set's column names.
///
/// An exact match wins; otherwise the names are compared ignoring ASCII case (SQLite keeps the
/// case the query wrote). When a name appears twice, the first one is used.
pub fn find_columns<S: AsRef<str>>(names: &[S]) -> Option<(usize, usize)> {
    let position = |wanted: &str| {
        names
            .iter()
            .position(|name| name.as_ref() == wanted)
            .or_else(|| {
                names
                    .iter()
                    .position(|name| name.as_ref().eq_ignore_ascii_case(wanted))
            })
    };
    Some((position(KEY_COLUMN)?, position(TIMESTAMP_COLUMN)?))
}

/// The reason recorded for a rejected row, e.g.
/// `row 7: dwmon_timestamp 1700000000000 is after the year 5000 as seconds: it looks like
/// milliseconds; divide by 1000 in the query`.
///
/// `row` is 1-based; `value` is how the offending value is shown (`None` for NULL), cut to 40
/// characters.
pub fn rejection(row: u64, column: &str, value: Option<&str>, error: &ValueError) -> String {
    match value {
        None => format!("row {row}: {column} {error}"),
        Some(value) => {
            let mut shown: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
            if value.chars().nth(SHOWN_VALUE_CHARS).is_some() {
                shown.push_str("...");
            }
            format!("row {row}: {column} {shown} {error}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_validated() {
        assert_eq!(epoch_from_i64(0), Ok(0));
        assert_eq!(epoch_from_i64(1_700_000_000), Ok(1_700_000_000));
        assert_eq!(epoch_from_i64(MAX_EPOCH), Ok(MAX_EPOCH));
        assert_eq!(epoch_from_i64(-1), Err(ValueError::Negative));
        assert_eq!(
            epoch_from_i64(1_700_000_000_000),
            Err(ValueError::LooksLikeMilliseconds)
        );
        assert_eq!(
            epoch_from_i64(1_700_000_000_000_000),
            Err(ValueError::LooksLikeMicroseconds)
        );
        assert_eq!(
            epoch_from_i64(1_700_000_000_000_000_000),
            Err(ValueError::LooksLikeNanoseconds)
        );
        assert_eq!(
            epoch_from_i64(i64::MAX),
            Err(ValueError::LooksLikeNanoseconds)
        );
    }

    #[test]
    fn max_epoch_is_the_year_5000() {
        let year_5000 = NaiveDate::from_ymd_opt(5000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp());
        assert_eq!(year_5000, Some(MAX_EPOCH));
    }

    #[test]
    fn floats_are_floored() {
        assert_eq!(epoch_from_f64(1_700_000_000.9), Ok(1_700_000_000));
        assert_eq!(epoch_from_f64(0.2), Ok(0));
        assert_eq!(epoch_from_f64(-0.5), Err(ValueError::Negative));
        assert_eq!(epoch_from_f64(f64::NAN), Err(ValueError::NotFinite));
        assert_eq!(epoch_from_f64(f64::INFINITY), Err(ValueError::NotFinite));
        assert_eq!(epoch_from_f64(1e300), Err(ValueError::TooFarInFuture));
        assert_eq!(
            epoch_from_f64(1_700_000_000_000.5),
            Err(ValueError::LooksLikeMilliseconds)
        );
    }

    #[test]
    fn decimals_are_floored_exactly() {
        assert_eq!(epoch_from_decimal("1700000000"), Ok(1_700_000_000));
        assert_eq!(epoch_from_decimal("1700000000.999999"), Ok(1_700_000_000));
        assert_eq!(epoch_from_decimal("+1700000000.5"), Ok(1_700_000_000));
        assert_eq!(epoch_from_decimal("0.0"), Ok(0));
        assert_eq!(epoch_from_decimal(".5"), Ok(0));
        assert_eq!(epoch_from_decimal("-0.0"), Ok(0));
        assert_eq!(epoch_from_decimal("-0.5"), Err(ValueError::Negative));
        assert_eq!(epoch_from_decimal("-3"), Err(ValueError::Negative));
        assert_eq!(
            epoch_from_decimal("1700000000000"),
            Err(ValueError::LooksLikeMilliseconds)
        );
        assert_eq!(
            epoch_from_decimal("1700000000000000000"),
            Err(ValueError::LooksLikeNanoseconds)
        );
        assert_eq!(
            epoch_from_decimal("123456789012345678901234567890"),
            Err(ValueError::TooFarInFuture)
        );
        assert_eq!(
            epoch_from_decimal(&"9".repeat(50)),
            Err(ValueError::TooFarInFuture)
        );
        for bad in ["", ".", "-", "1.2.3", "12a", " 1", "1e9", "abc"] {
            assert_eq!(
                epoch_from_decimal(bad),
                Err(ValueError::Unparsable),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn texts() {
        // SQLite's strftime('%s','now') returns text.
        assert_eq!(epoch_from_text("1700000000"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text(" 1700000000 \n"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text("1700000000.75"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text("1.7e9"), Ok(1_700_000_000));
        // SQLite's datetime('now') form, taken as UTC.
        assert_eq!(epoch_from_text("2023-11-14 22:13:20"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text("2023-11-14T22:13:20.9"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(
            epoch_from_text("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000)
        );
        assert_eq!(epoch_from_text("2023-11-14 22:13:20+00"), Ok(1_700_000_000));
        assert_eq!(epoch_from_text("2023-11-14 22:13"), Ok(1_699_999_980));
        assert_eq!(epoch_from_text("2023-11-14"), Ok(1_699_920_000));
        assert_eq!(epoch_from_text("NaN"), Err(ValueError::NotFinite));
        assert_eq!(epoch_from_text("-inf"), Err(ValueError::NotFinite));
        assert_eq!(epoch_from_text("-5"), Err(ValueError::Negative));
        assert_eq!(
            epoch_from_text("1969-12-31 23:59:59"),
            Err(ValueError::Negative)
        );
        assert_eq!(
            epoch_from_text("6000-01-01"),
            Err(ValueError::TooFarInFuture)
        );
        assert_eq!(
            epoch_from_text("1700000000000"),
            Err(ValueError::LooksLikeMilliseconds)
        );
        for bad in ["", "yesterday", "infinite", "2023-13-01", "12:00", "0x10"] {
            assert_eq!(epoch_from_text(bad), Err(ValueError::Unparsable), "{bad:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn text_never_panics(text in any::<String>()) {
                let _ = epoch_from_text(&text);
                let _ = epoch_from_decimal(&text);
            }

            #[test]
            fn integer_text_reads_like_the_integer(value in any::<i64>()) {
                prop_assert_eq!(epoch_from_text(&value.to_string()), epoch_from_i64(value));
                prop_assert_eq!(epoch_from_decimal(&value.to_string()), epoch_from_i64(value));
            }

            #[test]
            fn decimals_floor_like_floats(whole in 0i64..MAX_EPOCH, fraction in 0u32..1_000_000) {
                let text = format!("{whole}.{fraction:06}");
                prop_assert_eq!(epoch_from_decimal(&text), Ok(whole));
                prop_assert_eq!(epoch_from_text(&text), Ok(whole));
                prop_assert_eq!(epoch_from_decimal(&format!("-{text}")).is_err(), whole > 0 || fraction > 0);
            }

            #[test]
            fn date_times_read_back(seconds in 0i64..MAX_EPOCH) {
                let Some(instant) = DateTime::from_timestamp(seconds, 0) else {
                    return Ok(());
                };
                let printed = instant.format("%Y-%m-%d %H:%M:%S").to_string();
                prop_assert_eq!(epoch_from_text(&printed), Ok(seconds));
                prop_assert_eq!(epoch_from_text(&instant.to_rfc3339()), Ok(seconds));
            }
        }
    }

    #[test]
    fn float_keys() {
        assert_eq!(key_from_f64(1.5), "1.5");
        assert_eq!(key_from_f64(2.0), "2");
    }

    #[test]
    fn columns_are_found_by_name() {
        assert_eq!(
            find_columns(&["x", "dwmon_timestamp", "dwmon_unique_key"]),
            Some((2, 1))
        );
        assert_eq!(
            find_columns(&["DWMON_UNIQUE_KEY", "Dwmon_Timestamp"]),
            Some((0, 1))
        );
        assert_eq!(
            find_columns(&["DWMON_UNIQUE_KEY", "dwmon_unique_key", "dwmon_timestamp"]),
            Some((1, 2))
        );
        assert_eq!(find_columns(&["dwmon_unique_key", "ts"]), None);
        assert_eq!(find_columns::<&str>(&[]), None);
    }

    #[test]
    fn rejection_reasons_name_row_column_and_value() {
        assert_eq!(
            rejection(3, KEY_COLUMN, None, &ValueError::Null),
            "row 3: dwmon_unique_key is NULL"
        );
        let reason = rejection(
            7,
            TIMESTAMP_COLUMN,
            Some("1700000000000"),
            &ValueError::LooksLikeMilliseconds,
        );
        assert!(reason.starts_with("row 7: dwmon_timestamp 1700000000000 is after the year 5000"));
        assert!(reason.contains("milliseconds"));
        let long = "x".repeat(100);
        let reason = rejection(1, TIMESTAMP_COLUMN, Some(&long), &ValueError::Unparsable);
        assert!(reason.contains(&format!("{}...", "x".repeat(40))));
        assert!(!reason.contains(&"x".repeat(41)));
    }
}
