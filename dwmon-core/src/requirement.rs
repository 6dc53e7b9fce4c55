//! The requirement grammar (SPEC 3): one line of whitespace-separated options such as
//! `CHECKHOURS9-17 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180`.
//!
//! CONTRACT (other crates rely on these names): `FieldSet`, `Schedule` (pub fields),
//! `Requirement` (pub fields), `Requirement::parse`, `Requirement::horizon_minutes`,
//! `Display for Requirement` = canonical text, `RequirementError { column, .. }`.

/// A set of small integers (0..=63): the allowed values of one schedule field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldSet(pub u64);

impl FieldSet {
    /// The set `lo..=hi`.
    pub fn range(lo: u32, hi: u32) -> Self {
        let mut s = FieldSet(0);
        for v in lo..=hi.min(63) {
            s.insert(v);
        }
        s
    }

    /// Whether `v` is in the set.
    #[inline]
    pub fn contains(self, v: u32) -> bool {
        v < 64 && (self.0 >> v) & 1 == 1
    }

    /// Adds `v` (ignored when >= 64).
    pub fn insert(&mut self, v: u32) {
        if v < 64 {
            self.0 |= 1 << v;
        }
    }

    /// The values, ascending.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |v| self.contains(*v))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// When a requirement is checked: one [`FieldSet`] per calendar field, all matched on the
/// local wall-clock time of the minute (AND of all fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// Minutes of the hour, 0-59.
    pub minutes: FieldSet,
    /// Hours of the day, 0-23.
    pub hours: FieldSet,
    /// Days of the month, 1-31.
    pub days: FieldSet,
    /// Months, 1-12.
    pub months: FieldSet,
    /// Days of the week, 0 = Sunday .. 6 = Saturday (union of WEEKDAYS, WEEKENDS, CHECKWEEKDAYS).
    pub weekdays: FieldSet,
}

/// One requirement line: a schedule, inclusive count bounds and a window length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// When to check.
    pub schedule: Schedule,
    /// `MINNUM`.
    pub min: u64,
    /// `MAXNUM`.
    pub max: u64,
    /// `LOOKBACKSECONDS` (the window length `L`, >= 1).
    pub lookback_seconds: u64,
}

impl Requirement {
    /// The horizon `H = 10 * ceil(L / 60)` in minutes (SPEC 5): how far back a cycle still
    /// checks missed minutes.
    pub fn horizon_minutes(&self) -> i64 {
        10 * (self.lookback_seconds.div_ceil(60) as i64)
    }
}

/// A requirement line could not be parsed. `column` is 1-based within the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RequirementError {
    /// 1-based column of the offending option.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

impl Requirement {
    /// Parses one requirement line.
    ///
    /// # Errors
    /// A [`RequirementError`] naming the column and what was expected.
    pub fn parse(line: &str) -> Result<Requirement, RequirementError> {
        let _ = line;
        todo!("requirement parser")
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TODO canonical")
    }
}
