//! `--source NAME=command:...` end to end: checkers whose `__QUERY__` is a script, run by
//! `dwmon once` only with `--allow-command-sources` (or `DWMON_ALLOW_COMMAND_SOURCES=1`).

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

/// Writes an executable bash script `NAME` into the workspace and returns its path.
fn script(ws: &Workspace, name: &str, body: &str) -> String {
    let path = ws.path().join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

/// A workspace with a `rows` checker reading a CSV script through `__SOURCE__ warehouse`, and a
/// `broken` checker whose script fails.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    let rows = script(
        &ws,
        "rows.sh",
        &format!(
            "echo dwmon_unique_key,dwmon_timestamp\nfor i in 1 2 3; do echo \"k$i,$(({T0} - i * 10))\"; done\n"
        ),
    );
    let broken = script(&ws, "broken.sh", "echo 'bq: access denied' >&2\nexit 2\n");
    for (name, program) in [("rows", &rows), ("broken", &broken)] {
        ws.write_checker(
            name,
            &format!(
                "__QUERY__\n'{program}' --since 60\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
                 CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM3 MAXNUM3 LOOKBACKSECONDS60\n"
            ),
        );
    }
    ws
}

#[test]
fn once_runs_command_sources_when_allowed() {
    let ws = workspace();
    let now = T0.to_string();
    let out = ws.cycle(
        "once",
        "warehouse=command:csv?timeout=20",
        &["--allow-command-sources", "--now", &now, "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(checks(&lines), vec![("rows".into(), T0, "GOOD".into(), 3)]);
    let errors: Vec<_> = lines.iter().filter(|l| l["status"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert_eq!(errors[0]["checker"], "broken");
    let message = errors[0]["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("exited with status 2; stderr: bq: access denied"),
        "{message}"
    );
}

#[test]
fn the_environment_variable_allows_command_sources_too() {
    let ws = workspace();
    std::fs::remove_file(ws.checkers().join("broken.dwmon")).expect("remove");
    let (checkers, store, now) = (ws.checkers_arg(), ws.store(), T0.to_string());
    let out = dwmon()
        .env("DWMON_ALLOW_COMMAND_SOURCES", "1")
        .args(["once", "--checkers", &checkers, "--store", &store])
        .args(["--source", "warehouse=command:", "--now", &now, "--json"])
        .output()
        .expect("dwmon runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("rows".into(), T0, "GOOD".into(), 3)]
    );
}

#[test]
fn command_sources_are_refused_unless_allowed() {
    let ws = workspace();
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    for allow in [None, Some("0")] {
        let mut command = dwmon();
        command.env_remove("DWMON_ALLOW_COMMAND_SOURCES");
        if let Some(value) = allow {
            command.env("DWMON_ALLOW_COMMAND_SOURCES", value);
        }
        let out = command
            .args(["once", "--checkers", &checkers, "--store", &store])
            .args(["--source", "warehouse=command:csv"])
            .output()
            .expect("dwmon runs");
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let message = stderr(&out);
        assert!(
            message.starts_with("error: --source warehouse: command:csv runs the programs"),
            "{message}"
        );
        assert!(message.contains("--allow-command-sources"), "{message}");
        assert!(
            message.contains("DWMON_ALLOW_COMMAND_SOURCES=1"),
            "{message}"
        );
        assert_eq!(stdout(&out), "", "nothing ran");
    }
}

#[test]
fn an_invalid_command_url_is_an_operational_error() {
    let ws = workspace();
    let out = ws.cycle(
        "once",
        "warehouse=command:xml",
        &["--allow-command-sources"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("unknown output format \"xml\"; use command:csv or command:jsonl"),
        "{message}"
    );
}

#[test]
fn a_config_file_can_allow_command_sources() {
    let ws = workspace();
    std::fs::remove_file(ws.checkers().join("broken.dwmon")).expect("remove");
    let config = ws.path().join("dwmon.toml");
    let (checkers, store, now) = (ws.checkers_arg(), ws.store(), T0.to_string());
    for (allow, expected) in [("true", 0), ("false", 2)] {
        std::fs::write(
            &config,
            format!(
                "checkers = {checkers:?}\nstore = {store:?}\nallow_command_sources = {allow}\n\
                 [sources]\nwarehouse = \"command:csv\"\n"
            ),
        )
        .expect("write config");
        let out = dwmon()
            .env_remove("DWMON_ALLOW_COMMAND_SOURCES")
            .arg("--config")
            .arg(&config)
            .args(["once", "--now", &now, "--json"])
            .output()
            .expect("dwmon runs");
        assert_eq!(code(&out), expected, "{allow}: {}", stderr(&out));
        if expected == 0 {
            assert_eq!(
                checks(&json_lines(&out)),
                vec![("rows".into(), T0, "GOOD".into(), 3)]
            );
        } else {
            assert!(
                stderr(&out).contains("--allow-command-sources"),
                "{}",
                stderr(&out)
            );
        }
    }
}
