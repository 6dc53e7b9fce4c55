//! `CommandSource` against real bash scripts written to a temporary directory: rows in CSV and
//! JSON lines, arguments without a shell, a hanging script (timeout, process group killed), a
//! failing script (status and stderr in the error), too much output, missing programs.

mod support;

use dwmon_command_source::{CommandSource, Format};
use dwmon_core::{FetchRequest, Fetched, Row, RowGetter, SourceError};
use std::time::Duration;
use support::{is_gone, quoted, script};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn fetch(source: &CommandSource, query: &str) -> Result<Fetched, SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "orders",
        query,
        source: "warehouse",
        extra: &extra,
    };
    source.get_rows(&request).await
}

fn query_message(error: SourceError) -> String {
    match error {
        SourceError::Query {
            source_name,
            message,
        } => {
            assert_eq!(source_name, "warehouse");
            message
        }
        other => panic!("want a query error, got {other:?}"),
    }
}

/// Waits (bounded) for the kernel to finish killing `pid`: SIGKILL is delivered
/// asynchronously, this is no time-dependent logic.
async fn assert_gone(pid: u32, what: &str) {
    for _ in 0..100 {
        if is_gone(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} (pid {pid}) is still running");
}

fn read_pid(path: &std::path::Path) -> Result<u32, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} was not written: {e}", path.display()))?;
    Ok(text.trim().parse()?)
}

#[tokio::test]
async fn csv_rows_are_read_and_bad_lines_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let rows = script(
        dir.path(),
        "rows.sh",
        r#"cat <<'ROWS'
id,dwmon_timestamp,dwmon_unique_key
1,1700000000,a
2,"2023-11-14 22:13:20","b, with ""quotes"""
3,yesterday,c
4,1700000060,
ROWS
"#,
    )?;
    let fetched = fetch(&CommandSource::new(Format::Csv), &quoted(&rows)).await?;
    assert_eq!(
        fetched.rows,
        [
            Row::new("a", 1_700_000_000),
            Row::new("b, with \"quotes\"", 1_700_000_000)
        ]
    );
    assert_eq!(fetched.rejected, 2);
    assert!(
        fetched.rejected_samples[0].starts_with("stdout line 4, row 3: dwmon_timestamp yesterday"),
        "{:?}",
        fetched.rejected_samples
    );
    assert_eq!(
        fetched.rejected_samples[1],
        "stdout line 5, row 4: dwmon_unique_key is NULL"
    );
    Ok(())
}

#[tokio::test]
async fn json_lines_are_read_and_bad_lines_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let rows = script(
        dir.path(),
        "rows.sh",
        r#"echo '{"dwmon_unique_key": "a", "dwmon_timestamp": 1700000000}'
echo 'oops'
echo '{"dwmon_unique_key": 7, "dwmon_timestamp": "2023-11-14T22:13:20Z", "extra": [1]}'
"#,
    )?;
    let fetched = fetch(&CommandSource::new(Format::JsonLines), &quoted(&rows)).await?;
    assert_eq!(
        fetched.rows,
        [Row::new("a", 1_700_000_000), Row::new("7", 1_700_000_000)]
    );
    assert_eq!(fetched.rejected, 1);
    assert!(
        fetched.rejected_samples[0].starts_with("stdout line 2, row 2: invalid JSON"),
        "{:?}",
        fetched.rejected_samples
    );
    Ok(())
}

#[tokio::test]
async fn arguments_are_split_without_a_shell() -> TestResult {
    let dir = tempfile::tempdir()?;
    let echo = script(
        dir.path(),
        "echo-args.sh",
        r#"echo dwmon_unique_key,dwmon_timestamp
for arg in "$@"; do printf '"%s",1\n' "${arg//\"/\"\"}"; done
printf '%s,2\n' "$DWMON_CHECKER" "$DWMON_SOURCE"
"#,
    )?;
    let query = format!(
        "{} 'single $HOME' \"double \\\"q\\\" $HOME\" back\\ slash *.none \\\n  next-line # a comment",
        quoted(&echo)
    );
    let fetched = fetch(&CommandSource::new(Format::Csv), &query).await?;
    let keys: Vec<&str> = fetched.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "single $HOME",
            "double \"q\" $HOME",
            "back slash",
            "*.none",
            "next-line",
            "orders",
            "warehouse"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_program_is_found_in_path_and_relative_paths_in_the_working_dir() -> TestResult {
    let fetched = fetch(
        &CommandSource::new(Format::Csv),
        "printf 'dwmon_unique_key,dwmon_timestamp\\nk,5\\n'",
    )
    .await?;
    assert_eq!(fetched.rows, [Row::new("k", 5)]);

    let dir = tempfile::tempdir()?;
    script(
        dir.path(),
        "rows.sh",
        "echo dwmon_unique_key,dwmon_timestamp\necho \"$(pwd -P)\",6\n",
    )?;
    let source = CommandSource::builder(Format::Csv)
        .working_dir(dir.path())
        .build()?;
    let fetched = fetch(&source, "./rows.sh").await?;
    let expected = dir.path().canonicalize()?.display().to_string();
    assert_eq!(fetched.rows, [Row::new(expected, 6)]);
    Ok(())
}

#[tokio::test]
async fn a_hanging_command_times_out_and_its_process_group_is_killed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pids = dir.path().join("pids");
    let hang = script(
        dir.path(),
        "hang.sh",
        r#"sleep 300 &
echo "$$ $!" > "$1.tmp" && mv "$1.tmp" "$1"
echo dwmon_unique_key,dwmon_timestamp
wait
"#,
    )?;
    // Long enough for bash to start and write its pids on a loaded machine.
    let source = CommandSource::builder(Format::Csv)
        .timeout(Duration::from_secs(3))
        .build()?;
    let error = fetch(&source, &format!("{} {}", quoted(&hang), quoted(&pids)))
        .await
        .unwrap_err();
    assert_eq!(error, SourceError::Timeout { millis: 3_000 });
    let text = std::fs::read_to_string(&pids)?;
    let (script_pid, sleep_pid) = text.trim().split_once(' ').ok_or("bad pid file")?;
    assert_gone(script_pid.parse()?, "the script").await;
    assert_gone(sleep_pid.parse()?, "its sleep grandchild").await;
    Ok(())
}

#[tokio::test]
async fn a_fetch_dropped_half_way_kills_the_process_group() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pids = dir.path().join("pids");
    let hang = script(
        dir.path(),
        "hang.sh",
        "sleep 300 &\necho \"$$ $!\" > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\nwait\n",
    )?;
    // The engine's own fetch timeout (or a shutdown) drops the fetch before the source's.
    let query = format!("{} {}", quoted(&hang), quoted(&pids));
    let source = CommandSource::new(Format::Csv);
    let outer = tokio::time::timeout(Duration::from_secs(2), fetch(&source, &query)).await;
    assert!(outer.is_err(), "the script hangs: {outer:?}");
    let text = std::fs::read_to_string(&pids)?;
    let (script_pid, sleep_pid) = text.trim().split_once(' ').ok_or("bad pid file")?;
    assert_gone(script_pid.parse()?, "the script").await;
    assert_gone(sleep_pid.parse()?, "its sleep grandchild").await;
    Ok(())
}

#[tokio::test]
async fn what_a_command_leaves_running_is_killed_when_it_ends() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pid_file = dir.path().join("pid");
    let leaver = script(
        dir.path(),
        "leaver.sh",
        r#"sleep 300 >/dev/null 2>&1 &
echo "$!" > "$1"
echo dwmon_unique_key,dwmon_timestamp
echo a,1
"#,
    )?;
    let query = format!("{} {}", quoted(&leaver), quoted(&pid_file));
    let fetched = fetch(&CommandSource::new(Format::Csv), &query).await?;
    assert_eq!(fetched.rows, [Row::new("a", 1)]);
    assert_gone(read_pid(&pid_file)?, "the background sleep").await;
    Ok(())
}

#[tokio::test]
async fn a_failing_command_reports_its_status_and_stderr() -> TestResult {
    let dir = tempfile::tempdir()?;
    let fail = script(
        dir.path(),
        "fail.sh",
        r#"echo dwmon_unique_key,dwmon_timestamp
echo a,1
echo "ERROR: table orders not found" >&2
printf 'colour \033[31mred\n' >&2
exit 3
"#,
    )?;
    let message = query_message(
        fetch(&CommandSource::new(Format::Csv), &quoted(&fail))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(
        message.contains("stderr: ERROR: table orders not found\\ncolour \\u{1b}[31mred"),
        "{message}"
    );
    assert!(!message.chars().any(char::is_control), "{message:?}");

    let noisy = script(
        dir.path(),
        "noisy.sh",
        "head -c 100000 /dev/zero | tr '\\0' x >&2\nexit 1\n",
    )?;
    let message = query_message(
        fetch(&CommandSource::new(Format::Csv), &quoted(&noisy))
            .await
            .unwrap_err(),
    );
    assert!(message.contains(&"x".repeat(2048)), "{message}");
    assert!(!message.contains(&"x".repeat(2049)), "cut to 2 KiB");
    assert!(message.contains("(97952 more bytes)"), "{message}");

    let killed = script(dir.path(), "killed.sh", "kill -TERM $$\n")?;
    let message = query_message(
        fetch(&CommandSource::new(Format::Csv), &quoted(&killed))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("was killed by signal 15"), "{message}");
    Ok(())
}

#[tokio::test]
async fn too_much_output_kills_the_command() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pid_file = dir.path().join("pid");
    let flood = script(
        dir.path(),
        "flood.sh",
        r#"echo "$$" > "$1"
echo dwmon_unique_key,dwmon_timestamp
yes a,1700000000
"#,
    )?;
    let source = CommandSource::builder(Format::Csv)
        .max_output_bytes(1 << 20)
        .build()?;
    let query = format!("{} {}", quoted(&flood), quoted(&pid_file));
    let message = query_message(fetch(&source, &query).await.unwrap_err());
    assert!(
        message.contains("printed more than 1048576 bytes on stdout and was killed"),
        "{message}"
    );
    assert_gone(read_pid(&pid_file)?, "the flooding script").await;
    Ok(())
}

#[tokio::test]
async fn programs_that_cannot_run_are_query_errors() -> TestResult {
    let source = CommandSource::new(Format::Csv);
    let message = query_message(
        fetch(&source, "dwmon-no-such-program --x")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        message,
        "cannot run `dwmon-no-such-program`: no such program in PATH"
    );
    let message = query_message(fetch(&source, "/nonexistent/rows.sh").await.unwrap_err());
    assert_eq!(message, "cannot run `/nonexistent/rows.sh`: no such file");

    let dir = tempfile::tempdir()?;
    let not_executable = dir.path().join("rows.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n")?;
    let message = query_message(fetch(&source, &quoted(&not_executable)).await.unwrap_err());
    assert!(message.contains("permission denied"), "{message}");

    let message = query_message(fetch(&source, "echo 'unclosed").await.unwrap_err());
    assert!(message.contains("never closed"), "{message}");
    let message = query_message(fetch(&source, "  # only a comment").await.unwrap_err());
    assert!(message.contains("names no program"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_csv_without_the_columns_fails_the_fetch() -> TestResult {
    let error = fetch(&CommandSource::new(Format::Csv), "echo key,ts")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        SourceError::MissingColumns {
            checker: "orders".into(),
            found: vec!["key".into(), "ts".into()]
        }
    );
    Ok(())
}
