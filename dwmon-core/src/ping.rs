//! Push checkers (docs/FORMAT.md, "Push checkers"): a checker whose `__SOURCE__` is `push`
//! has no query; its rows are the pings `dwmon serve` receives, each of one [`PingKind`].
//!
//! Pings of each kind are stored as first-seen rows of their own series in the [`Store`]:
//! successes under the checker's name (so every view of a checker's rows shows them), the
//! other kinds under `NAME~fail`, `NAME~start`, `NAME~log` ([`series`]). A requirement counts
//! the kind its `PINGS<KIND>` option names (default `PINGSSUCCESS`).
//!
//! [`Store`]: crate::Store

use crate::{Checker, CheckerStatus};

/// The `__SOURCE__` of a push checker.
pub const PUSH_SOURCE: &str = "push";

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum PingKind {
    /// The job succeeded: `/ping/TOKEN`, or exit status 0.
    #[default]
    Success,
    /// The job failed: `/ping/TOKEN/fail`, or an exit status 1-255.
    Fail,
    /// The job started: `/ping/TOKEN/start`.
    Start,
    /// A message only, no verdict: `/ping/TOKEN/log`.
    Log,
}

impl PingKind {
    /// Every kind, in the order above.
    pub const ALL: [PingKind; 4] = [
        PingKind::Success,
        PingKind::Fail,
        PingKind::Start,
        PingKind::Log,
    ];

    /// `success`, `fail`, `start` or `log`.
    pub fn as_str(self) -> &'static str {
        match self {
            PingKind::Success => "success",
            PingKind::Fail => "fail",
            PingKind::Start => "start",
            PingKind::Log => "log",
        }
    }

    /// The kind named `text` (`success`, `fail`, `start`, `log`).
    pub fn parse(text: &str) -> Option<PingKind> {
        PingKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for PingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The store series the pings of `kind` for checker `checker` are rows of: the checker's
/// own name for successes, `NAME~KIND` for the others (`~` is not allowed in checker names,
/// so no series is ever a real checker's).
///
/// ```
/// use dwmon_core::ping::{series, PingKind};
/// assert_eq!(series("backup", PingKind::Success), "backup");
/// assert_eq!(series("backup", PingKind::Fail), "backup~fail");
/// ```
pub fn series(checker: &str, kind: PingKind) -> String {
    match kind {
        PingKind::Success => checker.to_string(),
        other => format!("{checker}~{}", other.as_str()),
    }
}

/// The checker and kind of a ping-kind series name (`backup~fail` -> `("backup", Fail)`);
/// `None` for a checker's own name (successes) or any other name.
///
/// ```
/// use dwmon_core::ping::{parse_series, PingKind};
/// assert_eq!(parse_series("backup~fail"), Some(("backup", PingKind::Fail)));
/// assert_eq!(parse_series("backup"), None);
/// ```
pub fn parse_series(name: &str) -> Option<(&str, PingKind)> {
    let (checker, kind) = name.split_once('~')?;
    match PingKind::parse(kind)? {
        PingKind::Success => None,
        kind if !checker.is_empty() => Some((checker, kind)),
        _ => None,
    }
}

/// A store's status list with the ping-kind series folded into their checkers
/// ([`Store::status`](crate::Store::status) lists checkers, and a series is not one): each
/// `NAME~KIND` entry is removed, its stored rows added to `NAME`'s and its oldest row kept
/// if older (an entry for `NAME` is made when only other kinds were stored). Stores call it
/// on their status list; the order by name is kept.
pub fn fold_series(statuses: Vec<CheckerStatus>) -> Vec<CheckerStatus> {
    let (series, mut checkers): (Vec<CheckerStatus>, Vec<CheckerStatus>) = statuses
        .into_iter()
        .partition(|s| parse_series(&s.checker).is_some());
    for status in series {
        let Some((name, _)) = parse_series(&status.checker) else {
            continue;
        };
        let at = match checkers.binary_search_by(|c| c.checker.as_str().cmp(name)) {
            Ok(at) => at,
            Err(at) => {
                checkers.insert(
                    at,
                    CheckerStatus {
                        checker: name.to_string(),
                        ..CheckerStatus::default()
                    },
                );
                at
            }
        };
        let checker = &mut checkers[at];
        checker.stored_rows = checker.stored_rows.saturating_add(status.stored_rows);
        checker.oldest_row = match (checker.oldest_row, status.oldest_row) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    checkers
}

impl Checker {
    /// Whether this is a push checker (`__SOURCE__` `push`): its rows arrive over HTTP, no
    /// source is asked.
    pub fn is_push(&self) -> bool {
        self.source == PUSH_SOURCE
    }

    /// For a push checker, whether pings must be POSTs (`"post_only": true` in `__EXTRA__`):
    /// link previews and mail scanners follow GET links, and must not count as runs.
    pub fn post_only(&self) -> bool {
        self.extra
            .get("post_only")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker_file::{parse_checker, CheckerFileErrorKind};
    use crate::Requirement;

    const REQ: &str =
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM0 LOOKBACKSECONDS3600";

    #[test]
    fn pings_options_parse_print_back_and_default_to_success() -> Result<(), crate::RequirementError>
    {
        assert_eq!(Requirement::parse(REQ)?.pings, PingKind::Success);
        for kind in PingKind::ALL {
            let upper = kind.as_str().to_ascii_uppercase();
            let r = Requirement::parse(&format!("{REQ} PINGS{upper}"))?;
            assert_eq!(r.pings, kind);
            let printed = r.to_string();
            assert_eq!(
                printed.contains("PINGS"),
                kind != PingKind::Success,
                "{printed}"
            );
            assert_eq!(Requirement::parse(&printed)?, r);
        }
        for bad in ["PINGS", "PINGSfail", "PINGSFAILED", "PINGSFAIL PINGSLOG"] {
            let err = Requirement::parse(&format!("{REQ} {bad}")).unwrap_err();
            assert_eq!(
                err.column,
                REQ.len() + 2 + if bad.contains(' ') { 10 } else { 0 },
                "{bad}: {err}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_push_checker_has_no_query_and_only_push_checkers_take_pings_options() {
        let push = parse_checker(
            "canary.dwmon",
            &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{REQ} PINGSFAIL\n"),
        )
        .expect("a push checker without a query");
        assert!(push.is_push());
        assert!(!push.post_only());
        let with_query = parse_checker(
            "canary.dwmon",
            &format!("__SOURCE__\npush\n__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{REQ}\n"),
        )
        .unwrap_err();
        assert_eq!(
            (with_query.kind, with_query.line),
            (CheckerFileErrorKind::Push, 3)
        );
        let pull = parse_checker(
            "orders.dwmon",
            &format!("__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{REQ} PINGSFAIL\n"),
        )
        .unwrap_err();
        assert_eq!(
            (pull.kind, pull.line, pull.column),
            (CheckerFileErrorKind::Push, 4, REQ.len() + 2)
        );
        let missing =
            parse_checker("orders.dwmon", &format!("__REQUIREMENTS__\n{REQ}\n")).unwrap_err();
        assert_eq!(missing.kind, CheckerFileErrorKind::MissingSection);
        let post = parse_checker(
            "canary.dwmon",
            &format!(
                "__SOURCE__\npush\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{{\"post_only\": true}}\n"
            ),
        )
        .expect("valid");
        assert!(post.post_only());
    }

    fn status(name: &str, rows: u64, oldest: Option<i64>) -> CheckerStatus {
        CheckerStatus {
            checker: name.into(),
            stored_rows: rows,
            oldest_row: oldest,
            ..CheckerStatus::default()
        }
    }

    #[test]
    fn series_fold_into_their_checker_and_never_show_as_checkers() {
        let folded = fold_series(vec![
            status("a", 2, Some(50)),
            status("a~fail", 3, Some(40)),
            status("a~log", 1, None),
            status("b~start", 4, Some(70)),
            status("c", 1, Some(10)),
            status("d~unknown", 1, Some(10)),
        ]);
        let got: Vec<(&str, u64, Option<i64>)> = folded
            .iter()
            .map(|s| (s.checker.as_str(), s.stored_rows, s.oldest_row))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 6, Some(40)),
                ("b", 4, Some(70)),
                ("c", 1, Some(10)),
                // Not a ping series: kept as it is.
                ("d~unknown", 1, Some(10)),
            ]
        );
        assert_eq!(parse_series("~fail"), None);
        assert_eq!(parse_series("a~success"), None);
    }

    #[test]
    fn series_keep_successes_under_the_checker_name() {
        assert_eq!(series("a", PingKind::Success), "a");
        assert_eq!(series("a", PingKind::Start), "a~start");
        assert_eq!(series("a", PingKind::Log), "a~log");
    }
}
