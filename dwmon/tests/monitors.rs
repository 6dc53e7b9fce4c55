//! Monitors end to end: the demo binary runs the conversion-rate monitor over its two ad
//! checkers (simulated time), and `dwmon status` shows it like a checker.

use std::process::{Command, Stdio};

/// The monitor is BAD exactly while the scripted conversion-tracking outage (demo minutes 8
/// and 9) is in its 3-minute windows, at minutes 10 and 11, whatever the seed; each checker
/// alone stays GOOD; the records carry the verdict and their own idempotency keys.
#[test]
fn the_demo_runs_the_conversion_rate_monitor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keep = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
        .args([
            "--minutes",
            "13",
            "--speed",
            "600",
            "--json",
            "--seed",
            "4",
            "--dir",
        ])
        .arg(&keep)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    // The demo stops after 13 cycles; on a busy machine a late cycle also checks the minutes
    // it fell behind by, so there can be more than 13 checks. The story is in the first 13
    // demo minutes.
    let first = events
        .iter()
        .filter_map(|e| e["minute"].as_i64())
        .min()
        .expect("checks were printed");
    let of = |name: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["checker"] == name)
            .filter(|e| e["minute"].as_i64().is_some_and(|m| m < first + 13 * 60))
            .collect()
    };
    let monitor = of("monitor:conversion_rate");
    assert_eq!(monitor.len(), 13, "{text}");
    assert_eq!(monitor[0]["minute"].as_i64(), Some(first), "{text}");
    let bad: Vec<i64> = monitor
        .iter()
        .filter(|c| c["status"] != "GOOD")
        .map(|c| (c["minute"].as_i64().unwrap_or(0) - first) / 60)
        .collect();
    assert_eq!(bad, vec![10, 11], "{text}");
    let at_ten = monitor[10];
    assert_eq!(at_ten["status"], "BAD");
    assert_eq!(at_ten["monitor"]["value"].as_f64(), Some(6.0 / 90.0));
    assert_eq!(at_ten["monitor"]["inputs"][0]["checker"], "impressions");
    assert_eq!(at_ten["monitor"]["inputs"][0]["count"], 90);
    assert_eq!(at_ten["monitor"]["inputs"][1]["count"], 6);
    assert!(
        at_ten["monitor"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("conversion rate 6.7%")),
        "{at_ten}"
    );
    for checker in ["impressions", "conversions"] {
        let checks = of(checker);
        assert_eq!(checks.len(), 13, "{checker}: {text}");
        assert!(
            checks.iter().all(|c| c["status"] == "GOOD"),
            "{checker}: {text}"
        );
    }

    // `dwmon status` shows the monitor next to the checkers.
    let status = Command::new(env!("CARGO_BIN_EXE_dwmon"))
        .args(["status", "--store"])
        .arg(keep.join("store.sqlite"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("status runs");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("monitor:conversion_rate "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("#0:GOOD"), "{row}");
}
