//! The checker files under `examples/` are valid, and the command-source example really
//! finds a fresh dump (a real `sh` and `find` on a temporary directory).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

fn examples(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(dir)
}

#[test]
fn the_example_checkers_are_valid() {
    for dir in ["checkers", "sources"] {
        let dir = examples(dir).display().to_string();
        let out = run(&["check", "--checkers", &dir]);
        assert_eq!(code(&out), 0, "{dir}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn the_command_source_example_counts_the_last_nights_dump() {
    let ws = Workspace::new();
    std::fs::copy(
        examples("sources").join("command_backups.dwmon"),
        ws.checkers().join("command_backups.dwmon"),
    )
    .expect("copy the example");
    // The example's 07:00 check, on the last 07:00 UTC before now: `find -mmin` reads the
    // real clock, so the check minute must be near it.
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let seven = 7 * 3600;
    let check = (wall - seven).div_euclid(86_400) * 86_400 + seven;
    let dumps = ws.path().join("dumps");
    std::fs::create_dir(&dumps).expect("dumps dir");
    for (name, age) in [("nightly.dump", 3600), ("older.dump", 2 * 86_400 - 7200)] {
        let file = std::fs::File::create(dumps.join(name)).expect("dump");
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs((check - age) as u64);
        file.set_modified(modified).expect("set mtime");
    }
    std::fs::write(dumps.join("notes.txt"), "not a dump").expect("other file");

    let (checkers, now) = (ws.checkers_arg(), check.to_string());
    let once = |backup_dir: &Path, store: &str| {
        let store = ws.path().join(store).display().to_string();
        dwmon()
            .env("BACKUP_DIR", backup_dir)
            .args(["once", "--checkers", &checkers, "--store", &store, "--json"])
            .args(["--source", "backups=command:csv", "--allow-command-sources"])
            .args(["--now", &now])
            .output()
            .expect("dwmon runs")
    };
    let out = once(&dumps, "store.sqlite");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("command_backups".into(), check, "GOOD".into(), 1)],
        "{}",
        stdout(&out)
    );

    // No such directory: find fails, and its stderr is in the checker's ERROR event.
    let out = once(&ws.path().join("missing"), "other-store.sqlite");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "ERROR");
    let message = lines[0]["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("`sh` exited with status 1; stderr: find:")
            && message.contains("No such file or directory"),
        "{message}"
    );
}
