//! The seed's histogram: stored first-seen rows counted by weekday x hour in a zone, as a text
//! table and as an SVG heat map, to help choose `MINNUM`/`MAXNUM`.

use chrono::{Datelike, Timelike};
use chrono_tz::Tz;
use dwmon_core::svg::{Anchor, Svg};
use std::fmt::Write;

/// Row labels, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Counts by `[weekday (Mon = 0)][hour]` in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// The counts.
    pub cells: [[u64; 24]; 7],
    /// The zone the cells are in.
    pub zone: Tz,
}

impl Histogram {
    /// Buckets epoch-second `timestamps` by their local weekday and hour in `zone`.
    pub fn from_timestamps(timestamps: &[i64], zone: Tz) -> Self {
        let mut cells = [[0u64; 24]; 7];
        for &ts in timestamps {
            let Some(utc) = chrono::DateTime::from_timestamp(ts, 0) else {
                continue;
            };
            let local = utc.with_timezone(&zone);
            let day = local.weekday().num_days_from_monday() as usize;
            let hour = local.hour() as usize;
            cells[day][hour] += 1;
        }
        Histogram { cells, zone }
    }

    /// Total rows counted.
    pub fn total(&self) -> u64 {
        self.cells.iter().flatten().sum()
    }

    /// The largest cell.
    pub fn max(&self) -> u64 {
        self.cells.iter().flatten().copied().max().unwrap_or(0)
    }

    /// A table: one line per weekday, one column per hour, with row totals.
    pub fn to_table(&self) -> String {
        let width = self.max().to_string().len().max(2);
        let mut out = String::new();
        let _ = write!(out, "{:4}", "");
        for hour in 0..24 {
            let _ = write!(out, " {hour:>width$}");
        }
        let _ = writeln!(out, " {:>7}", "total");
        for (day, row) in self.cells.iter().enumerate() {
            let _ = write!(out, "{:4}", WEEKDAYS[day]);
            for count in row {
                let _ = write!(out, " {count:>width$}");
            }
            let _ = writeln!(out, " {:>7}", row.iter().sum::<u64>());
        }
        out
    }

    /// An SVG heat map (weekday rows x hour columns, darker = more rows), self-contained.
    pub fn to_svg(&self, title: &str) -> String {
        const CELL: usize = 28;
        const LEFT: usize = 48;
        const TOP: usize = 56;
        let width = LEFT + 24 * CELL + 16;
        let height = TOP + 7 * CELL + 40;
        let max = self.max().max(1) as f64;
        let mut svg = Svg::new(width as f64, height as f64);
        svg.heading(
            LEFT as f64,
            title,
            &format!(
                "rows by weekday and hour ({}), {} rows, darkest = {}",
                self.zone.name(),
                self.total(),
                self.max()
            ),
        );
        for hour in 0..24 {
            let x = LEFT + hour * CELL + CELL / 2;
            svg.text(
                x as f64,
                (TOP + 7 * CELL + 14) as f64,
                Anchor::Middle,
                &hour.to_string(),
            );
        }
        for (day, row) in self.cells.iter().enumerate() {
            let y = TOP + day * CELL;
            svg.text(
                (LEFT - 6) as f64,
                (y + CELL / 2 + 4) as f64,
                Anchor::End,
                WEEKDAYS[day],
            );
            for (hour, &count) in row.iter().enumerate() {
                let x = LEFT + hour * CELL;
                // White (0) to dark blue (max), linear in the count.
                let t = count as f64 / max;
                let channel = |light: f64, dark: f64| (light + (dark - light) * t).round() as u8;
                let fill = format!(
                    "#{:02x}{:02x}{:02x}",
                    channel(247.0, 8.0),
                    channel(251.0, 48.0),
                    channel(255.0, 107.0)
                );
                let _ = writeln!(
                    svg,
                    r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#dddddd"><title>{} {hour:02}:00 — {count}</title></rect>"##,
                    WEEKDAYS[day]
                );
            }
        }
        svg.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 is a Monday.
    const MONDAY_0900_UTC: i64 = 1_795_424_400;

    #[test]
    fn rows_land_in_their_local_weekday_and_hour() {
        let ts = [
            MONDAY_0900_UTC,
            MONDAY_0900_UTC + 59,
            MONDAY_0900_UTC + 3600,
            MONDAY_0900_UTC + 86_400,
        ];
        let utc = Histogram::from_timestamps(&ts, chrono_tz::UTC);
        assert_eq!(utc.cells[0][9], 2);
        assert_eq!(utc.cells[0][10], 1);
        assert_eq!(utc.cells[1][9], 1);
        assert_eq!(utc.total(), 4);
        // 09:00 UTC is 04:00 in New York (EST, UTC-5).
        let ny = Histogram::from_timestamps(&ts, chrono_tz::America::New_York);
        assert_eq!(ny.cells[0][4], 2);
    }

    #[test]
    fn the_table_has_a_line_per_weekday_with_totals() {
        let h = Histogram::from_timestamps(&[MONDAY_0900_UTC], chrono_tz::UTC);
        let table = h.to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 8);
        assert!(lines[1].starts_with("Mon"));
        assert!(lines[1].trim_end().ends_with(" 1"));
        assert!(lines[7].starts_with("Sun"));
    }

    #[test]
    fn the_svg_has_one_cell_per_weekday_hour_and_escapes_the_title() {
        let h = Histogram::from_timestamps(&[MONDAY_0900_UTC], chrono_tz::UTC);
        let svg = h.to_svg("a<b");
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect x=").count(), 7 * 24);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
