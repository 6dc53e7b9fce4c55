//! A store file with damaged pages is never used without notice: `once` refuses a small one
//! at open (quick check) and `dwmon doctor` lists the damage of any store (exit 1).

mod common;
use common::*;
use std::io::{Seek, SeekFrom, Write};

const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM9 LOOKBACKSECONDS60";

#[test]
fn a_damaged_store_is_refused_by_once_and_reported_by_doctor() {
    let ws = Workspace::new();
    ws.events_checker("orders", EVERY_MINUTE);
    ws.insert(&[("a", T0 - 30)]);
    let out = ws.once(T0 + 5, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // `pause` creates the alert tables; a cycle without --alerts never reads them.
    let out = run(&["pause", "orders", "--store", &ws.store()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = run(&["doctor", "--store", &ws.store()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));

    // Overwrite the page holding the pause with garbage, as a bad disk sector would.
    let (page, page_size) = {
        let store = rusqlite::Connection::open(ws.store()).expect("store");
        let page: i64 = store
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'alert_pause'",
                [],
                |row| row.get(0),
            )
            .expect("alert_pause root page");
        let size: i64 = store
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .expect("page size");
        (u64::try_from(page).unwrap(), u64::try_from(size).unwrap())
    };
    assert!(
        !ws.path().join("store.sqlite-wal").exists(),
        "every commit is in the main file"
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(ws.store())
        .expect("store file");
    file.seek(SeekFrom::Start((page - 1) * page_size))
        .expect("seek");
    file.write_all(&vec![0xA5; usize::try_from(page_size).unwrap()])
        .expect("damage");
    drop(file);

    let out = ws.once(T0 + 65, &[]);
    assert_eq!(
        code(&out),
        2,
        "a damaged store is not used: {}",
        stdout(&out)
    );
    let message = stderr(&out);
    assert!(
        message.contains("damaged") && message.contains("dwmon doctor --store"),
        "{message}"
    );
    assert_eq!(stdout(&out), "", "no check was made");

    let out = run(&["doctor", "--store", &ws.store()]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("is damaged:"), "{report}");
    assert!(
        report.lines().count() >= 3,
        "names what is damaged: {report}"
    );

    let missing = ws.path().join("missing.sqlite").display().to_string();
    assert_eq!(code(&run(&["doctor", "--store", &missing])), 2);
}
