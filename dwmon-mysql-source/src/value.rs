//! Reading `dwmon_unique_key` and `dwmon_timestamp` from MySQL's binary row format.
//!
//! The kind of each column is chosen once per fetch from its metadata (so an unsupported type
//! fails the fetch with a hint to cast, instead of rejecting every row), then each value is
//! handed to [`dwmon_core::convert`].

use dwmon_core::convert::{self, ValueError};
use mysql_async::consts::ColumnType;
use mysql_async::{Column, Value};

/// The `binary` character set: BINARY, VARBINARY and BLOB columns.
const BINARY_CHARSET: u16 = 63;

/// How a column's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TINYINT .. BIGINT (signed or unsigned).
    Integer,
    /// YEAR.
    Year,
    /// BIT(n): a big-endian unsigned integer.
    Bit,
    /// DECIMAL: exact decimal text.
    Decimal,
    /// FLOAT, DOUBLE.
    Float,
    /// DATETIME and TIMESTAMP (read in the session time zone, `+00:00`).
    DateTime,
    /// DATE.
    Date,
    /// TIME (a duration, never a timestamp).
    Time,
    /// CHAR, VARCHAR, TEXT, ENUM, SET, JSON.
    Text,
    /// BINARY, VARBINARY, BLOB: read as UTF-8.
    Binary,
    /// The type of a bare `NULL`: every value is NULL.
    Null,
}

impl Kind {
    /// The kind of a result column; `None` for types dwmon cannot read (GEOMETRY, VECTOR...).
    pub(crate) fn for_column(column: &Column) -> Option<Kind> {
        use ColumnType::*;
        let kind = match column.column_type() {
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG => Kind::Integer,
            MYSQL_TYPE_YEAR => Kind::Year,
            MYSQL_TYPE_BIT => Kind::Bit,
            MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
            MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => Kind::Float,
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2 => Kind::DateTime,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Kind::Date,
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Kind::Time,
            MYSQL_TYPE_NULL => Kind::Null,
            MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB => {
                if column.character_set() == BINARY_CHARSET {
                    Kind::Binary
                } else {
                    Kind::Text
                }
            }
            MYSQL_TYPE_ENUM | MYSQL_TYPE_SET | MYSQL_TYPE_JSON => Kind::Text,
            MYSQL_TYPE_GEOMETRY
            | MYSQL_TYPE_VECTOR
            | MYSQL_TYPE_UNKNOWN
            | MYSQL_TYPE_TYPED_ARRAY => return None,
        };
        Some(kind)
    }

    /// Whether values of this kind can be timestamps (TIME, YEAR and BIT cannot).
    pub(crate) fn reads_timestamps(self) -> bool {
        !matches!(self, Kind::Time | Kind::Year | Kind::Bit)
    }

    /// The key's text form; `Err` says why the value cannot be a key.
    pub(crate) fn key(self, value: &Value) -> Result<String, String> {
        let text = match value {
            Value::NULL => return Err(ValueError::Null.to_string()),
            Value::Int(n) => n.to_string(),
            Value::UInt(n) => n.to_string(),
            Value::Float(f) => convert::key_from_f64(f64::from(*f)),
            Value::Double(f) => convert::key_from_f64(*f),
            Value::Bytes(bytes) if self == Kind::Bit => bit_value(bytes)?.to_string(),
            Value::Bytes(bytes) => utf8(bytes)?.to_string(),
            Value::Date(y, mo, d, h, mi, s, micros) => {
                if self == Kind::Date {
                    format!("{y:04}-{mo:02}-{d:02}")
                } else {
                    format!(
                        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z",
                        fraction(*micros)
                    )
                }
            }
            Value::Time(negative, days, h, mi, s, micros) => {
                let hours = u64::from(*days) * 24 + u64::from(*h);
                format!(
                    "{}{hours:02}:{mi:02}:{s:02}{}",
                    if *negative { "-" } else { "" },
                    fraction(*micros)
                )
            }
        };
        Ok(text)
    }

    /// The timestamp as epoch seconds, or why not and how to show the value.
    pub(crate) fn timestamp(self, value: &Value) -> Result<i64, (ValueError, Option<String>)> {
        let shown = || self.key(value).ok();
        match value {
            Value::NULL => Err((ValueError::Null, None)),
            Value::Int(n) => convert::epoch_from_i64(*n).map_err(|e| (e, shown())),
            Value::UInt(n) => i64::try_from(*n)
                .map_err(|_| ValueError::TooFarInFuture)
                .and_then(convert::epoch_from_i64)
                .map_err(|e| (e, shown())),
            Value::Float(f) => convert::epoch_from_f64(f64::from(*f)).map_err(|e| (e, shown())),
            Value::Double(f) => convert::epoch_from_f64(*f).map_err(|e| (e, shown())),
            Value::Bytes(bytes) => {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return Err((
                        ValueError::WrongType("binary string that is not UTF-8".to_string()),
                        None,
                    ));
                };
                let seconds = if self == Kind::Decimal {
                    convert::epoch_from_decimal(text)
                } else {
                    convert::epoch_from_text(text)
                };
                seconds.map_err(|e| (e, Some(format!("'{text}'"))))
            }
            Value::Date(y, mo, d, h, mi, s, _micros) => {
                // Zero dates (0000-00-00) and other invalid dates MySQL may store are rejected.
                let instant =
                    chrono::NaiveDate::from_ymd_opt(i32::from(*y), u32::from(*mo), u32::from(*d))
                        .and_then(|date| {
                            date.and_hms_opt(u32::from(*h), u32::from(*mi), u32::from(*s))
                        });
                match instant {
                    Some(instant) => convert::epoch_from_instant(instant.and_utc().timestamp())
                        .map_err(|e| (e, shown())),
                    None => Err((ValueError::Unparsable, shown())),
                }
            }
            Value::Time(..) => Err((ValueError::WrongType("TIME".to_string()), shown())),
        }
    }
}

/// `.123456` for microseconds, or nothing for whole seconds.
fn fraction(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("is not valid UTF-8 ({e})"))
}

/// A BIT(n) value: up to 8 big-endian bytes.
fn bit_value(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() > 8 {
        return Err(format!("is a BIT value of {} bytes", bytes.len()));
    }
    Ok(bytes
        .iter()
        .fold(0_u64, |value, byte| (value << 8) | u64::from(*byte)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(Kind::Integer.key(&Value::Int(-7)).as_deref(), Ok("-7"));
        assert_eq!(
            Kind::Integer.key(&Value::UInt(u64::MAX)).as_deref(),
            Ok("18446744073709551615")
        );
        assert_eq!(Kind::Float.key(&Value::Double(2.0)).as_deref(), Ok("2"));
        assert_eq!(
            Kind::Decimal
                .key(&Value::Bytes(b"12.50".to_vec()))
                .as_deref(),
            Ok("12.50")
        );
        assert_eq!(
            Kind::Bit.key(&Value::Bytes(vec![1, 0])).as_deref(),
            Ok("256")
        );
        assert!(Kind::Binary.key(&Value::Bytes(vec![0xff, 0xfe])).is_err());
        assert_eq!(
            Kind::DateTime
                .key(&Value::Date(2024, 5, 1, 12, 0, 3, 250_000))
                .as_deref(),
            Ok("2024-05-01T12:00:03.250000Z")
        );
        assert_eq!(
            Kind::Date
                .key(&Value::Date(2024, 5, 1, 0, 0, 0, 0))
                .as_deref(),
            Ok("2024-05-01")
        );
        assert_eq!(
            Kind::Time.key(&Value::Time(true, 1, 2, 3, 4, 0)).as_deref(),
            Ok("-26:03:04")
        );
        assert!(Kind::Text.key(&Value::NULL).is_err());
    }

    #[test]
    fn timestamps() {
        let t = |kind: Kind, value: Value| kind.timestamp(&value).map_err(|(e, _)| e);
        assert_eq!(
            t(Kind::Integer, Value::Int(1_700_000_000)),
            Ok(1_700_000_000)
        );
        assert_eq!(t(Kind::Integer, Value::Int(-1)), Err(ValueError::Negative));
        assert_eq!(
            t(Kind::Integer, Value::UInt(u64::MAX)),
            Err(ValueError::TooFarInFuture)
        );
        assert_eq!(
            t(Kind::Integer, Value::Int(1_700_000_000_000)),
            Err(ValueError::LooksLikeMilliseconds)
        );
        assert_eq!(
            t(Kind::Decimal, Value::Bytes(b"1700000000.999999".to_vec())),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(Kind::Float, Value::Double(1_700_000_000.9)),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(Kind::Text, Value::Bytes(b"2023-11-14 22:13:20".to_vec())),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(
                Kind::Text,
                Value::Bytes(b"2023-11-14T23:13:20+01:00".to_vec())
            ),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(Kind::Text, Value::Bytes(b"1700000000".to_vec())),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(
                Kind::DateTime,
                Value::Date(2023, 11, 14, 22, 13, 20, 999_999)
            ),
            Ok(1_700_000_000)
        );
        assert_eq!(
            t(Kind::DateTime, Value::Date(0, 0, 0, 0, 0, 0, 0)),
            Err(ValueError::Unparsable)
        );
        assert_eq!(t(Kind::Text, Value::NULL), Err(ValueError::Null));
        assert!(t(Kind::Binary, Value::Bytes(vec![0xff])).is_err());
        assert!(t(Kind::Text, Value::Time(false, 0, 1, 0, 0, 0)).is_err());
    }
}
