//! Helpers for the end-to-end tests: run the real `dwmon` binary on temporary directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// 2026-11-23T09:00:00Z, a Monday.
pub const T0: i64 = 1_795_424_400;

/// A `dwmon` command with a clean environment (no RUST_LOG / DWMON_TZ from the caller).
pub fn dwmon() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dwmon"));
    command
        .env_remove("RUST_LOG")
        .env_remove("DWMON_TZ")
        .env_remove("DWMON_CONFIG")
        .env_remove("DWMON_LOG_FORMAT")
        .env_remove("DWMON_FETCH_TIMEOUT")
        .env_remove("DWMON_CONCURRENCY")
        .stdin(Stdio::null());
    command
}

/// Runs `dwmon ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    dwmon().args(args).output().expect("the dwmon binary runs")
}

/// The exit code (panics if killed by a signal).
pub fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("exited normally, not by a signal")
}

/// Stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates a token of `scope` (`read`, `write`, `ping:NAME`) in the store file with
/// `dwmon token create`, and returns it.
pub fn token(store: &str, scope: &str) -> String {
    let out = run(&["token", "create", "--store", store, "--scope", scope]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout parsed as JSON lines.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A temporary workspace: a checker directory, a source database with an `events (key, ts)`
/// table, and a store path.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("checkers")).expect("checkers dir");
        let source = rusqlite::Connection::open(dir.path().join("source.sqlite")).expect("source");
        source
            .execute_batch("CREATE TABLE events (key TEXT NOT NULL, ts INTEGER NOT NULL);")
            .expect("events table");
        Workspace { dir }
    }

    pub fn checkers(&self) -> PathBuf {
        self.dir.path().join("checkers")
    }

    pub fn checkers_arg(&self) -> String {
        self.checkers().display().to_string()
    }

    pub fn store(&self) -> String {
        self.dir.path().join("store.sqlite").display().to_string()
    }

    pub fn source_arg(&self) -> String {
        format!(
            "default=sqlite:{}",
            self.dir.path().join("source.sqlite").display()
        )
    }

    /// Writes `checkers/NAME.dwmon`.
    pub fn write_checker(&self, name: &str, text: &str) {
        std::fs::write(self.checkers().join(format!("{name}.dwmon")), text).expect("write checker");
    }

    /// Writes a checker counting the `events` table with one requirement line.
    pub fn events_checker(&self, name: &str, requirement: &str) {
        self.write_checker(
            name,
            &format!(
                "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
                 __REQUIREMENTS__\n{requirement}\n"
            ),
        );
    }

    /// Inserts `(key, ts)` rows into the source's `events` table.
    pub fn insert(&self, rows: &[(&str, i64)]) {
        let source =
            rusqlite::Connection::open(self.dir.path().join("source.sqlite")).expect("source");
        for (key, ts) in rows {
            source
                .execute(
                    "INSERT INTO events (key, ts) VALUES (?1, ?2)",
                    rusqlite::params![key, ts],
                )
                .expect("insert");
        }
    }

    /// `dwmon SUBCOMMAND --checkers .. --store .. --source SOURCE REST..` on this workspace.
    pub fn cycle(&self, subcommand: &str, source: &str, rest: &[&str]) -> Output {
        let (checkers, store) = (self.checkers_arg(), self.store());
        let mut args = vec![
            subcommand,
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            source,
        ];
        args.extend_from_slice(rest);
        run(&args)
    }

    /// `dwmon once --json` at `now` with this workspace's checkers, store and source.
    pub fn once(&self, now: i64, extra: &[&str]) -> Output {
        let now = now.to_string();
        let mut rest = vec!["--now", &now, "--json"];
        rest.extend_from_slice(extra);
        self.cycle("once", &self.source_arg(), &rest)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `dwmon serve --checkers CHECKERS --store STORE ARGS` over this workspace, listening on
    /// a loopback port ([`serve`]).
    pub fn serve(&self, args: &[&str]) -> Served {
        let (checkers, store) = (self.checkers_arg(), self.store());
        let mut all = vec!["--checkers", &checkers, "--store", &store];
        all.extend_from_slice(args);
        serve(&all, &[])
    }

    /// A token of each of `scopes` (`read`, `write`, `ping:NAME`, ...) in this workspace's
    /// store, made before the server starts as an operator would, then
    /// [`Workspace::serve`] with `args`: the server and the tokens, in the order of `scopes`.
    pub fn serve_with_tokens(&self, scopes: &[&str], args: &[&str]) -> (Served, Vec<String>) {
        let store = self.store();
        let tokens = scopes.iter().map(|scope| token(&store, scope)).collect();
        (self.serve(args), tokens)
    }
}

/// The `(checker, minute, status, count)` of each check line (error events skipped).
pub fn checks(lines: &[serde_json::Value]) -> Vec<(String, i64, String, u64)> {
    lines
        .iter()
        .filter(|l| l.get("requirement_index").is_some())
        .map(|l| {
            (
                l["checker"].as_str().unwrap_or_default().to_string(),
                l["minute"].as_i64().unwrap_or_default(),
                l["status"].as_str().unwrap_or_default().to_string(),
                l["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// A running `dwmon serve` on a loopback port the OS picked; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`, read from the "listening on http://..." log line.
    pub addr: std::net::SocketAddr,
    /// Stderr lines after the listening line.
    pub stderr: std::sync::mpsc::Receiver<String>,
}

impl Served {
    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let status = self.child.wait().expect("wait");
        status.code().expect("exited normally, not by a signal")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dwmon serve --listen 127.0.0.1:0 ARGS` and waits (up to 60 s) until it listens.
// The child is returned inside `Served`, whose `Drop` kills and waits for it.
#[allow(clippy::zombie_processes)]
pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    let mut command = dwmon();
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("dwmon serve starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let addr = addr.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
                    return Served {
                        child,
                        addr,
                        stderr: receiver,
                    };
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!("dwmon serve did not listen: {seen:#?}");
            }
        }
    }
}
