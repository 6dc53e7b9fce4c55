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

/// What a ping says. Serialized as `success`, `fail`, `start` or `log`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
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

/// The `__EXTRA__` key that makes a push checker per-host: `"per_host": true`.
pub const PER_HOST_KEY: &str = "per_host";

/// Joins a per-host checker's name and a host into the sub-check's name: `NAME@HOST`
/// (`@` is not allowed in checker file names, so no sub-check is ever a real checker).
pub const HOST_SEPARATOR: char = '@';

/// The name of `host`'s sub-check of the per-host checker `checker`.
///
/// ```
/// assert_eq!(dwmon_core::ping::host_check_name("heartbeat", "web1"), "heartbeat@web1");
/// ```
pub fn host_check_name(checker: &str, host: &str) -> String {
    format!("{checker}{HOST_SEPARATOR}{host}")
}

/// `host`'s sub-check of the per-host `template`: the same requirements, zone and source,
/// named `NAME@HOST`, with `"host": HOST` (and without `"per_host"`) in its `__EXTRA__`, so
/// handlers and alerts name the host.
pub fn host_check(template: &Checker, host: &str) -> Checker {
    let mut extra = match &template.extra {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    extra.remove(PER_HOST_KEY);
    extra.insert("host".into(), serde_json::Value::String(host.to_string()));
    Checker {
        name: host_check_name(&template.name, host),
        extra: serde_json::Value::Object(extra),
        ..template.clone()
    }
}

/// `checkers` with a sub-check ([`host_check`]) for each `(checker, host)` of `hosts` whose
/// checker is a loaded per-host push checker (hosts of other checkers are left out), sorted
/// by name. The per-host checkers themselves stay: they are what pings and events name,
/// and the engine never checks them (only their hosts).
///
/// ```
/// use dwmon_core::ping::with_hosts;
/// let text = "__SOURCE__\npush\n__REQUIREMENTS__\n\
///             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS120\n\
///             __EXTRA__\n{\"per_host\": true}\n";
/// let beat = dwmon_core::parse_checker("beat.dwmon", text)?;
/// let hosts = [("beat".to_string(), "web1".to_string()), ("gone".to_string(), "x".to_string())];
/// let names: Vec<String> = with_hosts(vec![beat], &hosts).into_iter().map(|c| c.name).collect();
/// assert_eq!(names, ["beat", "beat@web1"]);
/// # Ok::<(), dwmon_core::CheckerFileError>(())
/// ```
pub fn with_hosts(mut checkers: Vec<Checker>, hosts: &[(String, String)]) -> Vec<Checker> {
    let templates: std::collections::HashMap<&str, &Checker> = checkers
        .iter()
        .filter(|c| c.is_push() && c.per_host())
        .map(|c| (c.name.as_str(), c))
        .collect();
    let subs: Vec<Checker> = hosts
        .iter()
        .filter_map(|(checker, host)| templates.get(checker.as_str()).map(|t| host_check(t, host)))
        .collect();
    checkers.extend(subs);
    checkers.sort_by(|a, b| a.name.cmp(&b.name));
    checkers.dedup_by(|a, b| a.name == b.name);
    checkers
}

impl Checker {
    /// Whether this is a per-host push checker (`"per_host": true` in `__EXTRA__`): each host
    /// that sends it heartbeats gets a sub-check of its own ([`with_hosts`]).
    pub fn per_host(&self) -> bool {
        self.extra
            .get(PER_HOST_KEY)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// For a host's sub-check (`NAME@HOST`): the per-host checker's name and the host.
    pub fn host(&self) -> Option<(&str, &str)> {
        self.name.split_once(HOST_SEPARATOR)
    }

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
        for option in [
            "MINDURATION10",
            "MAXDURATION60",
            "MINDURATION1 MAXDURATION2",
        ] {
            let pull = parse_checker(
                "orders.dwmon",
                &format!("__QUERY__\nSELECT 1\n__REQUIREMENTS__\n# MAXDURATION9\n{REQ} {option}\n"),
            )
            .unwrap_err();
            assert_eq!(
                (pull.kind, pull.line, pull.column),
                (CheckerFileErrorKind::Push, 5, REQ.len() + 2),
                "{option}"
            );
            assert!(pull.message.contains("DURATION judges the runs"), "{pull}");
        }
        let timed = parse_checker(
            "job.dwmon",
            &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{REQ} MINDURATION5 MAXDURATION60\n"),
        )
        .expect("a push checker with run duration bounds");
        assert_eq!(
            (
                timed.requirements[0].min_duration,
                timed.requirements[0].max_duration
            ),
            (Some(5), Some(60))
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

    fn beat(extra: &str) -> Result<Checker, crate::CheckerFileError> {
        parse_checker(
            "beat.dwmon",
            &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{extra}\n"),
        )
    }

    #[test]
    fn per_host_is_a_boolean_of_push_checkers_only() -> Result<(), crate::CheckerFileError> {
        assert!(beat(r#"{"per_host": true}"#)?.per_host());
        assert!(!beat(r#"{"per_host": false}"#)?.per_host());
        assert!(!beat("{}")?.per_host());
        let not_bool = beat("{\"team\": 1,\n \"per_host\": \"yes\"}").unwrap_err();
        assert_eq!(
            (not_bool.kind, not_bool.line, not_bool.column),
            (CheckerFileErrorKind::Push, 7, 2),
            "{not_bool}"
        );
        let pull = parse_checker(
            "orders.dwmon",
            &format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{{\"per_host\": true}}\n"),
        )
        .unwrap_err();
        assert_eq!((pull.kind, pull.line), (CheckerFileErrorKind::Push, 6));
        Ok(())
    }

    #[test]
    fn a_host_check_is_the_template_named_for_its_host() -> Result<(), crate::CheckerFileError> {
        let template = beat(r#"{"per_host": true, "alert": "ops"}"#)?;
        let web1 = host_check(&template, "web1");
        assert_eq!(web1.name, "beat@web1");
        assert_eq!(web1.host(), Some(("beat", "web1")));
        assert_eq!(template.host(), None);
        assert!(web1.is_push() && !web1.per_host());
        assert_eq!(
            web1.extra,
            serde_json::json!({"alert": "ops", "host": "web1"})
        );
        assert_eq!(web1.requirements, template.requirements);
        let other = beat("{}")?;
        let other = Checker {
            name: "plain".into(),
            ..other
        };
        let hosts = [
            ("beat".to_string(), "web2".to_string()),
            ("beat".to_string(), "web1".to_string()),
            ("plain".to_string(), "web1".to_string()),
            ("beat".to_string(), "web1".to_string()),
        ];
        let names: Vec<String> = with_hosts(vec![other, template], &hosts)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["beat", "beat@web1", "beat@web2", "plain"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_host_whose_heartbeats_stop_is_bad_on_its_own() -> Result<(), crate::CheckerFileError>
    {
        use crate::testutil::{RecordingHandler, ScriptedSource};
        use crate::{Engine, MemoryStore, Row, RowStore, Status};
        use std::sync::Arc;
        const T0: i64 = 1_800_000_000;
        let template = parse_checker(
            "beat.dwmon",
            "__SOURCE__\npush\n__REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS120\n\
             __EXTRA__\n{\"per_host\": true}\n",
        )?;
        let hosts = [
            ("beat".to_string(), "web1".to_string()),
            ("beat".to_string(), "web2".to_string()),
        ];
        let store = Arc::new(MemoryStore::new());
        let handler = Arc::new(RecordingHandler::new());
        let engine = Engine::new(
            Arc::new(ScriptedSource::new()),
            store.clone(),
            handler.clone(),
        )
        .with_checkers(with_hosts(vec![template], &hosts));
        // A beat 30 s before each minute's cycle; web2's stop after T0 + 30.
        for i in 0..5 {
            let t = T0 + 60 * i - 30;
            let mut beating = vec!["web1"];
            if i < 2 {
                beating.push("web2");
            }
            for host in beating {
                let row = Row::new(format!("{host}-{t}"), t);
                store
                    .insert_first_seen(&host_check_name("beat", host), &[row])
                    .await
                    .expect("stored");
            }
            engine.run_cycle(t + 35).await;
        }
        let checks = handler.checks();
        assert!(
            checks.iter().all(|c| c.checker != "beat"),
            "the template is never checked"
        );
        let of = |name: &str| -> Vec<(i64, Status)> {
            checks
                .iter()
                .filter(|c| c.checker == name)
                .map(|c| (c.minute - T0, c.status))
                .collect()
        };
        let good = Status::Good;
        assert_eq!(
            of("beat@web1"),
            [(0, good), (60, good), (120, good), (180, good), (240, good)]
        );
        assert_eq!(
            of("beat@web2"),
            [
                (0, good),
                (60, good),
                (120, good),
                (180, Status::Bad),
                (240, Status::Bad)
            ],
            "web2's last beat (T0 + 30) leaves the 120 s window at T0 + 150"
        );
        assert_eq!(
            checks
                .iter()
                .find(|c| c.status == Status::Bad)
                .map(|c| c.extra.clone()),
            Some(serde_json::json!({"host": "web2"})),
            "the BAD check names its host"
        );
        Ok(())
    }

    #[test]
    fn series_keep_successes_under_the_checker_name() {
        assert_eq!(series("a", PingKind::Success), "a");
        assert_eq!(series("a", PingKind::Start), "a~start");
        assert_eq!(series("a", PingKind::Log), "a~log");
    }
}
