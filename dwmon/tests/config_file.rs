//! `--config dwmon.toml` / `DWMON_CONFIG` end to end: settings from the file, flags over the
//! file, `${VAR}` from the environment, and `dwmon check` validating everything.

mod common;
use common::*;
use std::path::{Path, PathBuf};

const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 LOOKBACKSECONDS60";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Writes `dwmon.toml` in the workspace and returns its path.
fn write_config(ws: &Workspace, text: &str) -> String {
    let path = ws.path().join("dwmon.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// A config naming the workspace's checkers, store and source by relative paths.
const RELATIVE: &str = "checkers = \"checkers\"\nstore = \"store.sqlite\"\n\
                        [sources]\ndefault = \"sqlite:source.sqlite\"\n";

#[test]
fn once_takes_checkers_store_and_sources_from_the_file() {
    let ws = Workspace::new();
    ws.events_checker("events", EVERY_MINUTE);
    ws.insert(&[("a", T0 - 10), ("b", T0 - 20)]);
    let config = write_config(&ws, RELATIVE);
    // Run from another directory: relative paths are relative to the file.
    let now = T0.to_string();
    let out = dwmon()
        .current_dir(std::env::temp_dir())
        .args(["--config", &config, "once", "--now", &now, "--json"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0, "GOOD".into(), 2)]
    );
    assert!(ws.path().join("store.sqlite").exists());
    // `status` finds the store through DWMON_CONFIG.
    let out = dwmon()
        .env("DWMON_CONFIG", &config)
        .args(["status", "--json"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("\"events\""), "{}", stdout(&out));
    // The file's time_zone is also the zone `status` shows times in, unless --tz says
    // otherwise.
    let config = write_config(&ws, &format!("time_zone = \"Europe/Paris\"\n{RELATIVE}"));
    let out = run(&["--config", &config, "status"]);
    assert!(
        stdout(&out).contains("LAST CHECK (Europe/Paris)"),
        "{}",
        stdout(&out)
    );
    let out = run(&["--config", &config, "status", "--tz", "UTC"]);
    assert!(
        stdout(&out).contains("LAST CHECK (UTC)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn flags_override_the_file_and_sources_merge_by_name() {
    let ws = Workspace::new();
    // `default` from the file points nowhere; `--source default=...` replaces it. `other`
    // only exists in the file and is still used.
    ws.events_checker("events", EVERY_MINUTE);
    ws.write_checker(
        "other",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __SOURCE__\nother\n__REQUIREMENTS__\n{EVERY_MINUTE}\n"
        ),
    );
    ws.insert(&[("a", T0 - 10)]);
    let config = write_config(
        &ws,
        "checkers = \"no-such-dir\"\nstore = \"unused/store.sqlite\"\n\
         time_zone = \"America/New_York\"\n\
         [sources]\ndefault = \"sqlite:missing.sqlite\"\nother = \"sqlite:source.sqlite\"\n",
    );
    let (checkers, store, now) = (ws.checkers_arg(), ws.store(), T0.to_string());
    let source = ws.source_arg();
    let args = [
        "--config",
        &config,
        "once",
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--source",
        &source,
        "--now",
        &now,
        "--json",
    ];
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    let mut found = checks(&lines);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("events".into(), T0, "GOOD".into(), 1),
            ("other".into(), T0, "GOOD".into(), 1)
        ]
    );
    // time_zone from the file, since no --tz was given.
    assert!(
        lines.iter().all(|l| l["timezone"] == "America/New_York"),
        "{lines:?}"
    );
    assert!(!ws.path().join("unused").exists());
    // --tz beats the file (a fresh store, so the minute is checked again).
    let fresh = ws.path().join("fresh.sqlite").display().to_string();
    let mut with_tz = args.to_vec();
    with_tz[6] = &fresh;
    with_tz.extend(["--tz", "Europe/Paris"]);
    let lines = json_lines(&run(&with_tz));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l["timezone"] == "Europe/Paris"),
        "{lines:?}"
    );
}

#[test]
fn variables_expand_from_the_environment() {
    let ws = Workspace::new();
    ws.events_checker("events", EVERY_MINUTE);
    ws.insert(&[("a", T0 - 10)]);
    let config = write_config(
        &ws,
        "checkers = \"checkers\"\nstore = \"${DWMON_TEST_STATE:-state}.sqlite\"\n\
         [sources]\ndefault = \"sqlite:${DWMON_TEST_SOURCE_FILE}\"\n",
    );
    let now = T0.to_string();
    let out = dwmon()
        .env("DWMON_TEST_SOURCE_FILE", "source.sqlite")
        .env_remove("DWMON_TEST_STATE")
        .args(["--config", &config, "once", "--now", &now, "--json"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(checks(&json_lines(&out)).len(), 1);
    assert!(ws.path().join("state.sqlite").exists());

    // Unset without a default: exit 2, naming the variable, file and line.
    let out = dwmon()
        .env_remove("DWMON_TEST_SOURCE_FILE")
        .args(["--config", &config, "once", "--now", &now])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: {config}:4:11: sources.default: environment variable DWMON_TEST_SOURCE_FILE \
             is not set (use ${{DWMON_TEST_SOURCE_FILE:-default}} for a default)"
        )
    );
}

#[test]
fn a_typo_in_the_file_is_an_error_with_its_position() {
    let ws = Workspace::new();
    let config = write_config(&ws, "checkers = \"checkers\"\nstroe = \"s.sqlite\"\n");
    let out = run(&["--config", &config, "status"]);
    assert_eq!(code(&out), 2);
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("error: {config}:2:1: unknown field `stroe`")),
        "{message}"
    );
    // `check` reports it as a finding.
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).starts_with(&format!("{config}:2:1: unknown field `stroe`")),
        "{}",
        stdout(&out)
    );
    // A missing file.
    let out = run(&["--config", "/nonexistent/dwmon.toml", "status"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot read config file /nonexistent/dwmon.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_password_in_the_file_never_reaches_a_message() {
    let ws = Workspace::new();
    ws.events_checker("events", EVERY_MINUTE);
    let config = write_config(
        &ws,
        "checkers = \"checkers\"\n[sources]\nwh = \"postgress://dwmon:${PW}@db/x\"\n",
    );
    let out = dwmon()
        .env("PW", "hunter2")
        .args(["--config", &config, "check"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains(&format!("{config}:3:6: sources.wh: ")),
        "{text}"
    );

    // A valid URL whose password (from the environment, so not percent-encoded) holds URL
    // delimiters: the fetch errors of an unreachable server never show any of it.
    let config = write_config(
        &ws,
        "checkers = \"checkers\"\nstore = \"s.sqlite\"\n[sources]\n\
         default = \"postgres://dwmon:${PW}@127.0.0.1:9/x?connect_timeout=2\"\n",
    );
    let now = T0.to_string();
    for password in ["hun/ter2", "hun?ter2", "hun@ter2", "hun#ter2"] {
        let out = dwmon()
            .env("PW", password)
            .args(["--config", &config, "once", "--now", &now, "-v"])
            .output()
            .expect("runs");
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains("ERROR"), "{text}");
        assert!(!text.contains("ter2"), "{password}: {text}");
    }
}

#[test]
fn check_passes_the_unmodified_examples() {
    let config = examples().join("dwmon.toml").display().to_string();
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("2 checkers OK\n"), "{text}");
    assert!(text.contains("alerts config"), "{text}");
}

/// A copy of `examples/` (config, alerts config, checkers) in a temporary directory.
fn copy_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("checkers")).expect("mkdir");
    for file in ["dwmon.toml", "alerts.json"] {
        std::fs::copy(examples().join(file), dir.path().join(file)).expect("copy");
    }
    for entry in std::fs::read_dir(examples().join("checkers")).expect("examples") {
        let entry = entry.expect("entry");
        std::fs::copy(
            entry.path(),
            dir.path().join("checkers").join(entry.file_name()),
        )
        .expect("copy");
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("write");
}

#[test]
fn check_catches_routing_typos_in_the_examples() {
    let dir = copy_examples();
    let config = dir.path().join("dwmon.toml").display().to_string();
    let applications = dir.path().join("checkers/new_applications.dwmon");
    let executions = dir.path().join("checkers/new_executions.dwmon");
    // A typo'd channel, then a webhook name and a Slack channel the alerts config lacks.
    edit(
        &applications,
        r#""alert": "growth-oncall@example.com""#,
        r#""alert": {"webhok": "https://hooks.example.com/x"}"#,
    );
    edit(
        &executions,
        r#""alert": "devops@example.com""#,
        r##""alert": {"webhook": ["ops", "https://:8080/x"], "slack": "#data"}"##,
    );
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with(
            "new_applications.dwmon:14:30: __EXTRA__ \"alert\": unknown key \"webhok\""
        ),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("new_executions.dwmon:15:")
                && l.contains("slack #data: the alerts config has no \"slack\" section")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains(
            "webhook ops: not an http(s) URL and no webhook of \
                                         that name"
        )),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("webhook https://:8080: not a valid URL")),
        "{text}"
    );

    // An email route without an SMTP server.
    let dir = copy_examples();
    let config = dir.path().join("dwmon.toml").display().to_string();
    edit(&dir.path().join("alerts.json"), "\"smtp\"", "\"_smtp\"");
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("unknown field `_smtp`"),
        "{}",
        stdout(&out)
    );
    std::fs::write(dir.path().join("alerts.json"), "{}").expect("write");
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(
            "new_executions.dwmon:15:63: __EXTRA__ \"alert\": email devops@example.com: the \
             alerts config has no \"smtp\" section"
        ),
        "{text}"
    );
}

#[test]
fn check_finds_unconfigured_sources_and_with_connect_unreachable_ones() {
    let ws = Workspace::new();
    ws.events_checker("events", EVERY_MINUTE);
    ws.write_checker(
        "elsewhere",
        &format!("__QUERY__\nSELECT 1\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n{EVERY_MINUTE}\n"),
    );
    let config = write_config(&ws, RELATIVE);
    let out = run(&["--config", &config, "check"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stdout(&out),
        "elsewhere.dwmon:4:1: __SOURCE__ \"warehouse\" is not a configured source \
         (configured: default)\n"
    );
    std::fs::remove_file(ws.checkers().join("elsewhere.dwmon")).expect("rm");

    // --connect: the source answers, the store does not exist yet but can be created.
    let out = run(&["--config", &config, "check", "--connect"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("source default: answers"), "{text}");
    assert!(text.contains("store.sqlite: does not exist yet"), "{text}");

    // A missing source file, and a store file that is not a dwmon store.
    std::fs::write(ws.path().join("store.sqlite"), "not a database").expect("write");
    let missing = format!("default=sqlite:{}", ws.path().join("gone.sqlite").display());
    let out = run(&[
        "--config",
        &config,
        "check",
        "--connect",
        "--source",
        &missing,
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("gone.sqlite does not exist"), "{text}");
    assert!(text.contains("store "), "{text}");
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server of the tests (see `postgres_source.rs` for the rules).
fn postgres() -> Option<String> {
    use std::io::Write;
    let configured = std::env::var("DWMON_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if configured.is_some() || in_ci {
        return Some(configured.unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string()));
    }
    let timeout = std::time::Duration::from_secs(2);
    let reachable = "127.0.0.1:5432"
        .parse()
        .is_ok_and(|addr| std::net::TcpStream::connect_timeout(&addr, timeout).is_ok());
    if reachable {
        return Some(DEFAULT_POSTGRES_URL.to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the config file PostgreSQL test needs DWMON_TEST_POSTGRES_URL=postgres://... \
         (or a server on 127.0.0.1:5432)"
    );
    None
}

#[test]
fn a_postgres_source_from_the_file_with_the_url_in_the_environment() {
    let Some(url) = postgres() else { return };
    let ws = Workspace::new();
    ws.write_checker(
        "pg_rows",
        &format!(
            "__QUERY__\nSELECT 'k' || g AS dwmon_unique_key, {T0} - g * 10 AS dwmon_timestamp \
             FROM generate_series(1, 2) AS g\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
             {EVERY_MINUTE}\n"
        ),
    );
    // The whole URL (user, password, host) comes from the environment, as a service's
    // EnvironmentFile would give it.
    let config = write_config(
        &ws,
        "checkers = \"checkers\"\nstore = \"store.sqlite\"\n\
         [sources]\nwarehouse = \"${DWMON_TEST_WAREHOUSE_URL}\"\n",
    );
    let out = dwmon()
        .env("DWMON_TEST_WAREHOUSE_URL", &url)
        .args(["--config", &config, "check", "--connect"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("source warehouse: answers"),
        "{}",
        stdout(&out)
    );
    let now = T0.to_string();
    let out = dwmon()
        .env("DWMON_TEST_WAREHOUSE_URL", &url)
        .args(["--config", &config, "once", "--now", &now, "--json"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("pg_rows".into(), T0, "GOOD".into(), 2)]
    );
    // A server that is not there is a finding of `check --connect`.
    let out = dwmon()
        .env(
            "DWMON_TEST_WAREHOUSE_URL",
            "postgres://postgres:hunter2@127.0.0.1:9/test?connect_timeout=2",
        )
        .args(["--config", &config, "check", "--connect"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("warehouse"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn the_service_example_keeps_the_password_in_the_environment() {
    let config = examples().join("systemd/dwmon.toml").display().to_string();
    let checkers = examples().join("checkers").display().to_string();
    let out = dwmon()
        .env("DWMON_PG_PASSWORD", "hunter2")
        .args(["--config", &config, "check", "--checkers", &checkers])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(!stdout(&out).contains("hunter2"));
    let out = dwmon()
        .env_remove("DWMON_PG_PASSWORD")
        .args(["--config", &config, "check", "--checkers", &checkers])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("environment variable DWMON_PG_PASSWORD is not set"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn help_documents_the_config_file() {
    let text = stdout(&run(&["--help"]));
    assert!(text.contains("--config <FILE>"), "{text}");
    assert!(text.contains("[env: DWMON_CONFIG="), "{text}");
    assert!(
        text.contains("Example: --config /etc/dwmon/dwmon.toml"),
        "{text}"
    );
    let text = stdout(&run(&["check", "--help"]));
    assert!(text.contains("--connect"), "{text}");
    assert!(
        text.contains("dwmon check --config /etc/dwmon/dwmon.toml --connect"),
        "{text}"
    );
}
