//! Parsers for command-line values: times, zones, engine limits and `--source NAME=URL`.

use chrono_tz::Tz;
use std::path::PathBuf;
use std::time::Duration;

/// The longest `--fetch-timeout`, in seconds: a day.
pub const MAX_FETCH_TIMEOUT_SECONDS: u64 = 86_400;

/// The largest `--concurrency`: checkers of one source fetched at the same time.
pub const MAX_CONCURRENCY: usize = 1024;

/// Parses `--fetch-timeout` (the config file's `fetch_timeout`): a duration from 1 s to 24 h,
/// in seconds or with a unit (`90`, `90s`, `5m`, `1h`).
///
/// # Errors
/// Zero, `forever`, more than 24 h, or not a duration; the message says what is accepted.
///
/// ```
/// use dwmon::args::parse_fetch_timeout;
/// use std::time::Duration;
/// assert_eq!(parse_fetch_timeout("90s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_fetch_timeout("5m"), Ok(Duration::from_secs(300)));
/// assert!(parse_fetch_timeout("0").is_err());
/// assert!(parse_fetch_timeout("2d").is_err());
/// ```
pub fn parse_fetch_timeout(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let accepted = "expected a duration from 1s to 24h, such as 30s, 5m or 1h";
    if value.eq_ignore_ascii_case("forever") {
        return Err(format!("a fetch must end: {accepted}"));
    }
    let digits = value.trim_end_matches(|c: char| !c.is_ascii_digit());
    if !digits.is_empty() && digits.bytes().all(|b| b == b'0') {
        return Err(format!(
            "{value:?} would abandon every fetch at once; {accepted}"
        ));
    }
    match dwmon_core::retention::parse_keep(value) {
        Ok(dwmon_core::retention::Keep::For(seconds)) => match u64::try_from(seconds) {
            Ok(seconds) if seconds <= MAX_FETCH_TIMEOUT_SECONDS => Ok(Duration::from_secs(seconds)),
            _ => Err(format!("{value:?} is longer than 24h; {accepted}")),
        },
        _ => Err(format!("{value:?}: {accepted}")),
    }
}

/// Parses `--concurrency` (the config file's `concurrency`): how many checkers of one source
/// are fetched and checked at the same time, 1 to [`MAX_CONCURRENCY`].
///
/// # Errors
/// Zero, more than [`MAX_CONCURRENCY`], or not a whole number.
///
/// ```
/// use dwmon::args::parse_concurrency;
/// assert_eq!(parse_concurrency("16"), Ok(16));
/// assert!(parse_concurrency("0").is_err());
/// assert!(parse_concurrency("100000").is_err());
/// ```
pub fn parse_concurrency(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let accepted = format!("expected a number of checkers from 1 to {MAX_CONCURRENCY}");
    match value.parse::<u64>() {
        Ok(0) => Err(format!("0 would fetch no checker at all; {accepted}")),
        Ok(n) => match usize::try_from(n) {
            Ok(n) if n <= MAX_CONCURRENCY => Ok(n),
            _ => Err(format!("{n} is more than {MAX_CONCURRENCY}; {accepted}")),
        },
        Err(_) => Err(format!("{value:?}: {accepted}")),
    }
}

/// Parses a time given as RFC 3339 (`2026-11-22T15:04:00Z`) or integer epoch seconds.
///
/// Epoch seconds are accepted from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z: the times
/// RFC 3339 can write, so every time dwmon prints can be read back.
///
/// # Errors
/// A message saying which forms and which range are accepted.
pub fn parse_time(value: &str) -> Result<i64, String> {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let value = value.trim();
    if let Ok(epoch) = value.parse::<i64>() {
        if !(FIRST..=LAST).contains(&epoch) {
            return Err(format!(
                "{value} is out of range; epoch seconds must be from {FIRST} (year 1) to \
                 {LAST} (year 9999){}",
                if epoch > LAST && epoch / 1000 <= LAST {
                    " (milliseconds? divide by 1000)"
                } else {
                    ""
                }
            ));
        }
        return Ok(epoch);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp())
        .map_err(|e| {
            format!("{value:?} is not a time ({e}); use RFC 3339 like 2026-11-22T15:04:00Z or epoch seconds")
        })
}

/// Parses an incident `T1..T2` (each RFC 3339 or epoch seconds, `T1 <= T2`).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_incident(value: &str) -> Result<(i64, i64), String> {
    let Some((start, end)) = value.split_once("..") else {
        return Err(format!(
            "{value:?} is not T1..T2 (e.g. 2026-11-20T14:00:00Z..2026-11-20T15:30:00Z)"
        ));
    };
    let (start, end) = (parse_time(start)?, parse_time(end)?);
    if end < start {
        return Err(format!("{value:?}: the end is before the start"));
    }
    Ok((start, end))
}

/// The fastest `--speed`: a simulated year in about 30 real seconds. Faster clocks pass
/// the end of representable time within a cycle and would silently check nothing.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// Parses `--speed`: simulated seconds per real second, a number > 0 and at most
/// [`MAX_SPEED`].
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_speed(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 && speed <= MAX_SPEED => Ok(speed),
        _ => Err(format!(
            "{value:?} is not a speed; expected a number > 0 and at most {MAX_SPEED} of \
             simulated seconds per real second, e.g. 60"
        )),
    }
}

/// Parses `--ping-rate`: pings per second per token, a finite number > 0.
///
/// # Errors
/// A message saying what is expected.
pub fn parse_ping_rate(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{value:?} is not a ping rate; expected pings per second per token, a number > 0, \
             e.g. 100 or 0.5"
        )),
    }
}

/// Parses an IANA zone name such as `America/New_York`.
///
/// # Errors
/// A message naming the unknown zone.
pub fn parse_zone(value: &str) -> Result<Tz, String> {
    if value.trim().is_empty() {
        return Err(
            "the time zone is empty (is DWMON_TZ set to an empty value?); use an IANA name \
             like Europe/Paris or UTC"
                .to_string(),
        );
    }
    value.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone {value:?}; use an IANA name like Europe/Paris or UTC")
    })
}

/// Where a named source's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `sqlite:PATH`: an SQLite database file, opened read-only.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`: a PostgreSQL server.
    Postgres(String),
    /// `command:csv`, `command:jsonl` (options `?timeout=SECONDS&max_output_bytes=N`):
    /// checkers' `__QUERY__` is a program to run; only with `--allow-command-sources`.
    Command(String),
    /// `http` or `http?OPTIONS` (checkers' request lines carry absolute URLs; options
    /// `timeout=SECONDS&max_response_bytes=N&max_redirects=N&ca_file=PATH`), or an
    /// `http(s)://` base URL that relative request lines resolve against: an HTTP JSON API.
    Http(String),
    /// `mysql://...` or `mariadb://...`: a MySQL or MariaDB server.
    Mysql(String),
}

impl SourceUrl {
    /// The cargo feature of the `dwmon` crate that brings this kind of source (`sqlite`,
    /// `postgres`, `mysql`, `http`; `cli` for the command source).
    pub fn feature(&self) -> &'static str {
        match self {
            SourceUrl::Sqlite(_) => "sqlite",
            SourceUrl::Postgres(_) => "postgres",
            SourceUrl::Command(_) => "cli",
            SourceUrl::Http(_) => "http",
            SourceUrl::Mysql(_) => "mysql",
        }
    }
}

/// One `--source NAME=URL` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The `__SOURCE__` name checkers use (`default` when they have none).
    pub name: String,
    /// Where it points.
    pub url: SourceUrl,
}

/// `scheme://user:secret@host/...` with the password shown as `***`, for messages.
///
/// Like libpq and tokio-postgres, the user name ends at the first `:` before the first `@`;
/// everything from there to the last `@` is hidden, so a password holding an unencoded `/`,
/// `?` or `@` (easy to get from a `${VAR}` in the config file) never shows.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (Some(first_at), Some(last_at)) = (rest.find('@'), rest.rfind('@')) else {
        return url.to_string();
    };
    match rest[..first_at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[last_at..]),
        None => url.to_string(),
    }
}

/// Parses `NAME=URL` with URL `sqlite:PATH`, `postgres://...`, `mysql://...` (`mariadb://`), ...
/// Messages never show a
/// password the URL holds.
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_source(value: &str) -> Result<SourceSpec, String> {
    let Some((name, url)) = value.split_once('=') else {
        let value = mask_url(value);
        return Err(format!(
            "{value:?} is not NAME=URL (e.g. default=sqlite:data.sqlite or warehouse=postgres://user@host/db)"
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        let value = mask_url(value);
        return Err(format!("{value:?}: the source name before '=' is empty"));
    }
    let url = url.trim();
    let url = if let Some(path) = url.strip_prefix("sqlite://") {
        SourceUrl::Sqlite(PathBuf::from(path))
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        SourceUrl::Sqlite(PathBuf::from(path))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SourceUrl::Postgres(url.to_string())
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        SourceUrl::Mysql(url.to_string())
    } else if url.starts_with("command:") {
        SourceUrl::Command(url.to_string())
    } else if url == "http"
        || url == "http:"
        || url.starts_with("http?")
        || url.starts_with("http://")
        || url.starts_with("https://")
    {
        SourceUrl::Http(url.to_string())
    } else {
        let url = mask_url(url);
        return Err(format!(
            "{url:?}: unsupported URL; use sqlite:PATH, postgres://user:password@host/db, \
             mysql://user:password@host/db, command:csv, http or https://api.example.com/"
        ));
    };
    if matches!(&url, SourceUrl::Sqlite(p) if p.as_os_str().is_empty()) {
        return Err(format!("{value:?}: sqlite: needs a file path"));
    }
    Ok(SourceSpec {
        name: name.to_string(),
        url,
    })
}

/// Formats `minute` as RFC 3339 with the offset of `zone` (`2026-11-22T10:04:00-05:00`).
pub fn local_rfc3339(minute: i64, zone: Tz) -> String {
    match chrono::DateTime::from_timestamp(minute, 0) {
        Some(t) => t
            .with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => minute.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_epoch() {
        assert_eq!(parse_time("2026-11-22T15:04:00Z"), Ok(1_795_359_840));
        assert_eq!(parse_time("2026-11-22T10:04:00-05:00"), Ok(1_795_359_840));
        assert_eq!(parse_time("1795359840"), Ok(1_795_359_840));
        assert_eq!(parse_time("-60"), Ok(-60));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-11-22 15:04").is_err());
        // The range RFC 3339 can print; beyond it a clear error instead of silent no-ops.
        assert_eq!(parse_time("253402300799"), Ok(253_402_300_799));
        assert_eq!(parse_time("-62135596800"), Ok(-62_135_596_800));
        assert!(parse_time("253402300800").is_err());
        assert!(parse_time("-62135596801").is_err());
        assert!(parse_time("9223372036854775807").is_err());
        let millis = parse_time("1795359840000").unwrap_err();
        assert!(millis.contains("milliseconds"), "{millis}");
    }

    #[test]
    fn incidents_are_two_times() {
        assert_eq!(
            parse_incident("2026-11-22T15:04:00Z..1795360000"),
            Ok((1_795_359_840, 1_795_360_000))
        );
        for bad in ["2026-11-22T15:04:00Z", "1..x", "20..10", ".."] {
            assert!(parse_incident(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn speeds_are_positive_and_finite() {
        assert_eq!(parse_speed("60"), Ok(60.0));
        assert_eq!(parse_speed("0.5"), Ok(0.5));
        assert_eq!(parse_speed("1000000"), Ok(MAX_SPEED));
        for bad in ["0", "-5", "NaN", "inf", "fast", "", "1e308", "1000001"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(
            parse_zone("America/New_York"),
            Ok(chrono_tz::America::New_York)
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(parse_zone(" ").is_err_and(|e| e.contains("DWMON_TZ")));
    }

    #[test]
    fn sources_are_name_equals_url() {
        assert_eq!(
            parse_source("default=sqlite:/tmp/a.sqlite"),
            Ok(SourceSpec {
                name: "default".into(),
                url: SourceUrl::Sqlite("/tmp/a.sqlite".into())
            })
        );
        assert_eq!(
            parse_source("AWS=postgres://u@h/db").map(|s| s.url),
            Ok(SourceUrl::Postgres("postgres://u@h/db".into()))
        );
        assert_eq!(
            parse_source("w=command:jsonl?timeout=5").map(|s| s.url),
            Ok(SourceUrl::Command("command:jsonl?timeout=5".into()))
        );
        assert_eq!(
            parse_source("api=http?timeout=60").map(|s| s.url),
            Ok(SourceUrl::Http("http?timeout=60".into()))
        );
        assert_eq!(
            parse_source("gh=https://api.github.com").map(|s| s.url),
            Ok(SourceUrl::Http("https://api.github.com".into()))
        );
        assert_eq!(
            parse_source("shop=mariadb://u@h/db").map(|s| s.url),
            Ok(SourceUrl::Mysql("mariadb://u@h/db".into()))
        );
        assert_eq!(
            parse_source("shop=mysql://u@h:3306/db").map(|s| s.url),
            Ok(SourceUrl::Mysql("mysql://u@h:3306/db".into()))
        );
        for bad in ["default", "=sqlite:x", "a=oracle://x", "a=sqlite:"] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
        // Unencoded / ? @ in a password do not end it early.
        for url in [
            "postgres://u:se/cret@h/db",
            "postgres://u:se?cret@h/db",
            "postgres://u:se@cret@h/db",
        ] {
            assert_eq!(mask_url(url), "postgres://u:***@h/db");
        }
        assert_eq!(mask_url("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
        // A mistyped URL is never echoed with its password.
        for typo in ["w=postgress://u:hunter2@h/db", "=postgres://u:hunter2@h/db"] {
            let message = parse_source(typo).unwrap_err();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("u:***@h"), "{message}");
        }
    }

    #[test]
    fn local_times_carry_the_offset() {
        assert_eq!(
            local_rfc3339(1_795_359_840, chrono_tz::UTC),
            "2026-11-22T15:04:00+00:00"
        );
        assert_eq!(
            local_rfc3339(1_795_359_840, chrono_tz::America::New_York),
            "2026-11-22T10:04:00-05:00"
        );
    }
}
