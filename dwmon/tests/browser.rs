//! The status page in a real browser: headless Chromium (Debian `chromium`) driven by
//! Playwright (`tests/browser`, `npm ci` there) against a real `dwmon serve`. `.ci/run`
//! installs both; elsewhere the test is skipped with a notice when they are missing.

mod common;

use common::*;

#[test]
fn the_status_page_works_in_headless_chromium() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    let chromium = std::env::var("DWMON_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = root.join("node_modules/playwright-core").is_dir()
        && std::path::Path::new(&chromium).is_file();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium or tests/browser/node_modules missing (.ci/run installs them)"
        );
        eprintln!("SKIPPED: needs /usr/bin/chromium and `npm ci` in tests/browser");
        return;
    }
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    ws.write_checker(
        "hostile",
        "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events -- \"><img src=x onerror=alert('query')>\n\
         __REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM10 LOOKBACKSECONDS60\n\
         __EXTRA__\n{\"note\": \"<script>alert('extra')</script>\", \"x\": \"\\\"><img src=x onerror=alert('extra2')>\"}\n",
    );
    // A push checker whose ping body is hostile (sent once the server is up).
    ws.write_checker(
        "job",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM10 LOOKBACKSECONDS60\n",
    );
    // One row in events' first window only: GOOD at T0, BAD a (simulated) minute later.
    ws.insert(&[("a", T0 - 30)]);
    let (source, now) = (ws.source_arg(), T0.to_string());
    let (served, tokens) = ws.serve_with_tokens(
        &["read", "write", "ping:job"],
        &["--source", &source, "--now", &now, "--speed", "20"],
    );
    let (read, write, ping) = (&tokens[0], &tokens[1], &tokens[2]);
    let sent = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
        ])
        .arg("done <script>alert('ping')</script> \"><img src=x onerror=alert('ping2')>")
        .arg(served.url(&format!("/ping/{ping}")))
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&sent.stdout),
        "200",
        "the hostile ping"
    );
    let shots = ws.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("status_page.mjs"))
        .args([
            served.url(""),
            read.clone(),
            write.clone(),
            shots.display().to_string(),
        ])
        .env("DWMON_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("browser checks passed"), "{said}");
    for shot in ["status-1280.png", "status-360.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
    if let Ok(dir) = std::env::var("DWMON_SCREENSHOT_DIR") {
        for shot in ["status-1280.png", "status-360.png"] {
            std::fs::copy(shots.join(shot), std::path::Path::new(&dir).join(shot)).unwrap();
        }
    }
    assert_eq!(served.terminate(), 0);
}
