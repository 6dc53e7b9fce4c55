//! `--fetch-timeout` and `--concurrency` (and the config file's `fetch_timeout` and
//! `concurrency`) on `once`, `run` and `serve`, through the real binary: bad values are
//! refused with a clear message before anything runs, and a good one reaches the engine.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

/// A workspace whose one checker reads a command source whose program takes 30 s.
fn slow_workspace() -> Workspace {
    let ws = Workspace::new();
    let path = ws.path().join("slow.sh");
    std::fs::write(&path, "#!/bin/bash\nexec sleep 30\n").expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    ws.write_checker(
        "slow",
        &format!(
            "__QUERY__\n'{}'\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM3 LOOKBACKSECONDS60\n",
            path.display()
        ),
    );
    ws
}

#[test]
fn zero_and_absurd_values_are_refused_by_once_run_and_serve() {
    let ws = Workspace::new();
    ws.events_checker(
        "orders",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60",
    );
    let cases = [
        ("--fetch-timeout", "0", "would abandon every fetch at once"),
        ("--fetch-timeout", "0s", "would abandon every fetch at once"),
        ("--fetch-timeout", "2d", "longer than 24h"),
        ("--fetch-timeout", "forever", "a fetch must end"),
        (
            "--fetch-timeout",
            "soon",
            "expected a duration from 1s to 24h",
        ),
        ("--concurrency", "0", "0 would fetch no checker at all"),
        ("--concurrency", "5000", "5000 is more than 1024"),
        (
            "--concurrency",
            "lots",
            "expected a number of checkers from 1 to 1024",
        ),
    ];
    for subcommand in ["once", "run", "serve"] {
        for (flag, value, message) in cases {
            let out = ws.cycle(subcommand, &ws.source_arg(), &[flag, value]);
            let err = stderr(&out);
            assert_eq!(code(&out), 2, "{subcommand} {flag} {value}: {err}");
            assert!(
                err.contains(&format!("invalid value '{value}' for '{flag} "))
                    && err.contains(message),
                "{subcommand} {flag} {value}: {err}"
            );
        }
    }
    // The config file's keys are checked the same way, with their position.
    let config = ws.path().join("dwmon.toml");
    std::fs::write(&config, "fetch_timeout = \"60s\"\nconcurrency = 0\n").expect("config");
    let config = config.display().to_string();
    for subcommand in ["once", "run", "serve"] {
        let out = ws.cycle(subcommand, &ws.source_arg(), &["--config", &config]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{subcommand}: {err}");
        assert!(
            err.contains("dwmon.toml:2:15: concurrency: 0 would fetch no checker at all"),
            "{subcommand}: {err}"
        );
    }
}

#[test]
fn the_help_of_once_run_and_serve_documents_both_flags() {
    for subcommand in ["once", "run", "serve"] {
        let out = run(&[subcommand, "--help"]);
        assert_eq!(code(&out), 0);
        let help = stdout(&out);
        for text in [
            "--fetch-timeout <DURATION>",
            "from 1s to 24h",
            "--concurrency <N>",
            "from 1 to 1024",
            "DWMON_FETCH_TIMEOUT",
            "DWMON_CONCURRENCY",
        ] {
            assert!(
                help.contains(text),
                "{subcommand} --help lacks {text:?}:\n{help}"
            );
        }
    }
}

/// The fetch is abandoned after the flag's (or the file's) timeout, not the default 60 s.
#[test]
fn a_fetch_timeout_from_the_flag_or_the_config_file_reaches_the_engine() {
    let ws = slow_workspace();
    let config = ws.path().join("dwmon.toml");
    std::fs::write(&config, "fetch_timeout = \"1s\"\nconcurrency = 2\n").expect("config");
    let config = config.display().to_string();
    let now = T0.to_string();
    for how in [
        vec!["--fetch-timeout", "1s", "--concurrency", "1"],
        vec!["--config", config.as_str()],
    ] {
        let started = std::time::Instant::now();
        let mut rest = vec!["--allow-command-sources", "--now", &now, "--json"];
        rest.extend_from_slice(&how);
        let out = ws.cycle("once", "warehouse=command:csv?timeout=60", &rest);
        assert_eq!(code(&out), 0, "{how:?}: {}", stderr(&out));
        let lines = json_lines(&out);
        let errors: Vec<&serde_json::Value> =
            lines.iter().filter(|l| l["status"] == "ERROR").collect();
        assert_eq!(errors.len(), 1, "{how:?}: {lines:?}");
        let message = errors[0]["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("timed out after 1000 ms"),
            "{how:?}: {message}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{how:?}: once waited for the program ({:?})",
            started.elapsed()
        );
    }
}
