//! Reading `dwmon_unique_key` and `dwmon_timestamp` from PostgreSQL's binary row format.
//!
//! The reader for each column is chosen once per fetch from the column's type (so an
//! unsupported type fails the fetch with a hint to cast, instead of rejecting every row), then
//! each value is decoded from its raw bytes and handed to [`dwmon_core::convert`].

use dwmon_core::convert::{self, ValueError};
use std::fmt::Write;
use tokio_postgres::types::{FromSql, Kind, Type};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const POSTGRES_EPOCH_SECONDS: i64 = 946_684_800;

/// A column value's raw binary bytes, whatever its type (`None` for NULL).
pub(crate) struct Raw<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// How a column's values are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// text, varchar, char(n), name, unknown, citext, enums: UTF-8.
    Text,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Bool,
    Uuid,
    /// `timestamp` and `timestamptz`: microseconds since 2000-01-01 (UTC).
    Timestamp,
    Date,
    Json,
    Jsonb,
    Bytea,
}

impl Reader {
    /// The reader for a column type, resolving domains to their base type.
    pub(crate) fn for_type(ty: &Type) -> Option<Reader> {
        if let Kind::Domain(base) = ty.kind() {
            return Reader::for_type(base);
        }
        if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" {
            return Some(Reader::Text);
        }
        let reader = match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Reader::Text,
            Type::INT2 => Reader::Int2,
            Type::INT4 => Reader::Int4,
            Type::INT8 => Reader::Int8,
            Type::OID => Reader::Oid,
            Type::FLOAT4 => Reader::Float4,
            Type::FLOAT8 => Reader::Float8,
            Type::NUMERIC => Reader::Numeric,
            Type::BOOL => Reader::Bool,
            Type::UUID => Reader::Uuid,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Reader::Timestamp,
            Type::DATE => Reader::Date,
            Type::JSON => Reader::Json,
            Type::JSONB => Reader::Jsonb,
            Type::BYTEA => Reader::Bytea,
            _ => return None,
        };
        Some(reader)
    }

    /// Whether values of this reader can be timestamps (booleans, uuids, json, bytea cannot).
    pub(crate) fn reads_timestamps(self) -> bool {
        !matches!(
            self,
            Reader::Bool | Reader::Uuid | Reader::Json | Reader::Jsonb | Reader::Bytea
        )
    }

    /// The key's text form.
    pub(crate) fn key(self, raw: &[u8]) -> Result<String, String> {
        let text = match self {
            Reader::Text | Reader::Json => utf8(raw)?.to_string(),
            Reader::Jsonb => match raw.split_first() {
                Some((1, json)) => utf8(json)?.to_string(),
                _ => return Err("unknown jsonb version".to_string()),
            },
            Reader::Int2 => i16::from_be_bytes(fixed(raw)?).to_string(),
            Reader::Int4 => i32::from_be_bytes(fixed(raw)?).to_string(),
            Reader::Int8 => i64::from_be_bytes(fixed(raw)?).to_string(),
            Reader::Oid => u32::from_be_bytes(fixed(raw)?).to_string(),
            Reader::Float4 => convert::key_from_f64(f64::from(f32::from_be_bytes(fixed(raw)?))),
            Reader::Float8 => convert::key_from_f64(f64::from_be_bytes(fixed(raw)?)),
            Reader::Numeric => numeric_text(raw)?,
            Reader::Bool => (fixed::<1>(raw)? != [0]).to_string(),
            Reader::Uuid => uuid::Uuid::from_bytes(fixed(raw)?).to_string(),
            Reader::Timestamp => {
                let micros = i64::from_be_bytes(fixed(raw)?);
                match micros {
                    i64::MAX => "infinity".to_string(),
                    i64::MIN => "-infinity".to_string(),
                    _ => {
                        let unix = micros
                            .checked_add(POSTGRES_EPOCH_SECONDS * 1_000_000)
                            .and_then(chrono::DateTime::from_timestamp_micros)
                            .ok_or("timestamp out of range")?;
                        unix.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                    }
                }
            }
            Reader::Date => {
                let days = i32::from_be_bytes(fixed(raw)?);
                match date_seconds(days) {
                    Some(seconds) => chrono::DateTime::from_timestamp(seconds, 0)
                        .map(|d| d.date_naive().to_string())
                        .ok_or("date out of range")?,
                    None if days > 0 => "infinity".to_string(),
                    None => "-infinity".to_string(),
                }
            }
            Reader::Bytea => raw.iter().fold(String::from("\\x"), |mut text, byte| {
                let _ = write!(text, "{byte:02x}");
                text
            }),
        };
        Ok(text)
    }

    /// The timestamp as epoch seconds, and how to show the value if it is rejected.
    pub(crate) fn timestamp(self, raw: &[u8]) -> Result<i64, (ValueError, String)> {
        let malformed = |message: String| (ValueError::WrongType(message.clone()), message);
        match self {
            Reader::Int2 | Reader::Int4 | Reader::Int8 | Reader::Oid => {
                let value = match self {
                    Reader::Int2 => fixed(raw).map(|b| i64::from(i16::from_be_bytes(b))),
                    Reader::Int4 => fixed(raw).map(|b| i64::from(i32::from_be_bytes(b))),
                    Reader::Oid => fixed(raw).map(|b| i64::from(u32::from_be_bytes(b))),
                    _ => fixed(raw).map(i64::from_be_bytes),
                }
                .map_err(malformed)?;
                convert::epoch_from_i64(value).map_err(|e| (e, value.to_string()))
            }
            Reader::Float4 | Reader::Float8 => {
                let value = if self == Reader::Float4 {
                    fixed(raw).map(|b| f64::from(f32::from_be_bytes(b)))
                } else {
                    fixed(raw).map(f64::from_be_bytes)
                }
                .map_err(malformed)?;
                convert::epoch_from_f64(value).map_err(|e| (e, value.to_string()))
            }
            Reader::Numeric => {
                let text = numeric_text(raw).map_err(malformed)?;
                let result = if text.bytes().any(|b| b.is_ascii_digit()) {
                    convert::epoch_from_decimal(&text)
                } else {
                    Err(ValueError::NotFinite)
                };
                result.map_err(|e| (e, text))
            }
            Reader::Text => {
                let text = utf8(raw).map_err(malformed)?;
                convert::epoch_from_text(text).map_err(|e| (e, format!("'{text}'")))
            }
            Reader::Timestamp => {
                let micros = i64::from_be_bytes(fixed(raw).map_err(malformed)?);
                let seconds = match micros {
                    i64::MAX => Err((ValueError::TooFarInFuture, "infinity".to_string())),
                    i64::MIN => Err((ValueError::Negative, "-infinity".to_string())),
                    _ => Ok(micros.div_euclid(1_000_000) + POSTGRES_EPOCH_SECONDS),
                }?;
                convert::epoch_from_instant(seconds).map_err(|e| (e, self.shown(raw)))
            }
            Reader::Date => {
                let days = i32::from_be_bytes(fixed(raw).map_err(malformed)?);
                match date_seconds(days) {
                    Some(seconds) => {
                        convert::epoch_from_instant(seconds).map_err(|e| (e, self.shown(raw)))
                    }
                    None if days > 0 => Err((ValueError::TooFarInFuture, "infinity".into())),
                    None => Err((ValueError::Negative, "-infinity".into())),
                }
            }
            Reader::Bool | Reader::Uuid | Reader::Json | Reader::Jsonb | Reader::Bytea => {
                Err(malformed(format!("{self:?}")))
            }
        }
    }

    /// How a rejected value is shown: its key text form, or a placeholder.
    fn shown(self, raw: &[u8]) -> String {
        self.key(raw)
            .unwrap_or_else(|_| "(undecodable)".to_string())
    }
}

/// Seconds since 1970 of a PostgreSQL date (days since 2000-01-01); `None` for +-infinity.
fn date_seconds(days: i32) -> Option<i64> {
    if days == i32::MAX || days == i32::MIN {
        return None;
    }
    Some(i64::from(days) * 86_400 + POSTGRES_EPOCH_SECONDS)
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("invalid UTF-8: {e}"))
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

/// The text form of a binary `numeric`, exactly as PostgreSQL prints it (`-12.340`, `NaN`,
/// `Infinity`): a header of four 16-bit fields (digit count, weight, sign, display scale) then
/// base-10000 digits.
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let field = |index: usize| -> Result<u16, String> {
        raw.get(index * 2..index * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric value too short".to_string())
    };
    let count = usize::from(field(0)?);
    let weight = i64::from(field(1)? as i16);
    let sign = field(2)?;
    let scale = usize::from(field(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".to_string()),
        0xD000 => return Ok("Infinity".to_string()),
        0xF000 => return Ok("-Infinity".to_string()),
        other => return Err(format!("unknown numeric sign {other:#x}")),
    }
    let digits: Vec<u16> = (0..count).map(|i| field(4 + i)).collect::<Result<_, _>>()?;
    let digit = |index: i64| -> u16 {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for index in 0..=weight {
            let group = digit(index);
            let _ = if index == 0 {
                write!(text, "{group}")
            } else {
                write!(text, "{group:04}")
            };
        }
    }
    if scale > 0 {
        let mut fraction = String::with_capacity(scale + 4);
        let mut index = weight + 1;
        while fraction.len() < scale {
            let _ = write!(fraction, "{:04}", digit(index));
            index += 1;
        }
        fraction.truncate(scale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(count: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        [count, weight as u16, sign, scale]
            .iter()
            .chain(digits)
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }

    #[test]
    fn numeric_text_forms() -> Result<(), String> {
        // 1700000000.75 = 17 0000 0000 . 7500
        let raw = numeric(4, 2, 0, 2, &[17, 0, 0, 7500]);
        assert_eq!(numeric_text(&raw)?, "1700000000.75");
        assert_eq!(numeric_text(&numeric(1, 0, 0x4000, 3, &[12]))?, "-12.000");
        assert_eq!(numeric_text(&numeric(1, -1, 0, 4, &[5]))?, "0.0005");
        assert_eq!(numeric_text(&numeric(1, -2, 0, 6, &[5]))?, "0.000000");
        assert_eq!(numeric_text(&numeric(0, 0, 0, 0, &[]))?, "0");
        assert_eq!(numeric_text(&numeric(1, 1, 0, 0, &[1]))?, "10000");
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[]))?, "NaN");
        assert!(numeric_text(&[0, 1]).is_err());
        assert!(numeric_text(&numeric(2, 0, 0, 0, &[1])).is_err());
        Ok(())
    }

    #[test]
    fn timestamps_before_2000_floor_correctly() {
        // 1999-12-31T23:59:59.5Z is -0.5 s from PostgreSQL's epoch.
        let raw = (-500_000_i64).to_be_bytes();
        assert_eq!(
            Reader::Timestamp.timestamp(&raw),
            Ok(POSTGRES_EPOCH_SECONDS - 1)
        );
        assert_eq!(
            Reader::Timestamp.key(&raw).as_deref(),
            Ok("1999-12-31T23:59:59.500Z")
        );
    }

    #[test]
    fn short_values_are_rejected_not_panicking() {
        assert!(Reader::Int8.key(&[1, 2]).is_err());
        assert!(Reader::Int8.timestamp(&[1, 2]).is_err());
        assert!(Reader::Jsonb.key(&[2, b'{', b'}']).is_err());
    }
}
