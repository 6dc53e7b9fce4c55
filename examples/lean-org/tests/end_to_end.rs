//! `lean-org` end to end: the real binary on temporary directories, its own source (export
//! files) and handler (stdout + incidents file) over an SQLite store.

use std::path::Path;
use std::process::{Command, Output};

/// 2023-11-14T22:14:00Z, a minute.
const T: i64 = 1_700_000_040;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["checkers", "data"] {
            std::fs::create_dir(dir.path().join(sub)).expect("dir");
        }
        std::fs::write(
            dir.path().join("checkers/orders.dwmon"),
            "__QUERY__\norders.jsonl\n__REQUIREMENTS__\n\
             CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60\n",
        )
        .expect("checker");
        Setup { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn export(&self, text: &str) {
        std::fs::write(self.dir.path().join("data/orders.jsonl"), text).expect("export");
    }

    /// One cycle at `now`, with the incidents file at `incidents`.
    fn once_with(&self, now: i64, incidents: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lean-org"))
            .args(["--checkers", &self.path("checkers")])
            .args(["--data", &self.path("data")])
            .args(["--store", &self.path("store.sqlite")])
            .args(["--incidents", incidents])
            .args(["--once", &now.to_string()])
            .output()
            .expect("lean-org runs")
    }

    fn once(&self, now: i64) -> Output {
        self.once_with(now, &self.path("incidents.jsonl"))
    }

    fn incidents(&self) -> Vec<serde_json::Value> {
        lines(&std::fs::read_to_string(self.path("incidents.jsonl")).unwrap_or_default())
    }
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `(minute, status, count)` of each check printed on stdout.
fn checks(output: &Output) -> Vec<(i64, String, u64)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    lines(&String::from_utf8_lossy(&output.stdout))
        .iter()
        .map(|c| {
            (
                c["minute"].as_i64().unwrap(),
                c["status"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn checks_go_to_stdout_and_bad_ones_to_the_incidents_file() {
    let setup = Setup::new();
    setup.export(&format!(
        "{{\"key\": \"o1\", \"ts\": {}}}\n{{\"key\": \"o2\", \"ts\": {}}}\n",
        T - 30,
        T - 20
    ));
    assert_eq!(checks(&setup.once(T + 5)), [(T, "GOOD".into(), 2)]);
    assert!(setup.incidents().is_empty(), "nothing to report");

    // The next minute: no new orders (the old ones are remembered, not counted again).
    assert_eq!(checks(&setup.once(T + 65)), [(T + 60, "BAD".into(), 0)]);
    let incidents = setup.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["minute"], T + 60);
    assert_eq!(incidents[0]["status"], "BAD");
}

#[test]
fn rejected_lines_are_reported_as_an_error_incident() {
    let setup = Setup::new();
    setup.export(&format!(
        "{{\"key\": \"o1\", \"ts\": {}}}\nnot json\n{{\"key\": \"o2\", \"ts\": {}}}\n",
        T - 30,
        T - 20
    ));
    assert_eq!(checks(&setup.once(T + 5)), [(T, "GOOD".into(), 2)]);
    let incidents = setup.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["status"], "ERROR");
    let error = incidents[0]["error"].as_str().unwrap();
    assert!(error.contains("orders.jsonl line 2"), "{error}");
}

#[test]
fn an_incident_that_cannot_be_written_is_retried_from_the_store() {
    let setup = Setup::new();
    setup.export("");
    // The incidents directory is missing: the BAD check is printed, its incident fails.
    let missing = setup.path("no-such-dir/incidents.jsonl");
    assert_eq!(
        checks(&setup.once_with(T + 5, &missing)),
        [(T, "BAD".into(), 0)]
    );
    assert!(!Path::new(&missing).exists());

    // Next cycle, with a writable file: the owed incident arrives first, then the new one;
    // the owed check is not printed again.
    assert_eq!(checks(&setup.once(T + 65)), [(T + 60, "BAD".into(), 0)]);
    let minutes: Vec<i64> = setup
        .incidents()
        .iter()
        .map(|i| i["minute"].as_i64().unwrap())
        .collect();
    assert_eq!(minutes, [T, T + 60]);
}
