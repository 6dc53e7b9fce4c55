//! `lean-org`: an organisation's own dwmon runner, built on `dwmon` with its default features
//! off (the engine, the traits and the SQLite store only).
//!
//! - Its RowGetter, [`ExportFiles`], reads the JSON-lines exports an in-house job writes
//!   (`{"key": "order-1", "ts": 1700000000}` per line): a checker's `__QUERY__` is the file's
//!   name in the `--data` directory.
//! - Its CheckHandler, [`Journal`], prints every check as a JSON line on stdout and appends
//!   each BAD check and ERROR event to the `--incidents` file, where the on-call tooling picks
//!   them up.
//!
//! ```text
//! lean-org --checkers DIR --data DIR --store FILE --incidents FILE [--once EPOCH_SECONDS]
//! ```
//!
//! Without `--once` it runs a cycle every minute until SIGINT/SIGTERM.

use dwmon::engine::SystemClock;
use dwmon::sqlite::SqliteStore;
use dwmon::{
    async_trait, load_dir, CheckHandler, Engine, Event, FetchRequest, Fetched, HandlerError, Row,
    RowGetter, SourceError, Status,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Reads rows from JSON-lines export files: `__QUERY__` names a file in the data directory.
struct ExportFiles {
    dir: PathBuf,
}

#[async_trait]
impl RowGetter for ExportFiles {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let name = request.query.trim();
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(SourceError::Other(format!(
                "__QUERY__ must be an export file name in the data directory, not {name:?}"
            )));
        }
        let path = self.dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SourceError::Other(format!("cannot read {}: {e}", path.display())))?;
        let mut fetched = Fetched::default();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(line) {
                Some(row) => fetched.rows.push(row),
                // Counted and reported by the engine in one ERROR event.
                None => fetched.reject(format!(
                    "{name} line {}: not {{\"key\": TEXT, \"ts\": EPOCH_SECONDS}}",
                    number + 1
                )),
            }
        }
        Ok(fetched)
    }
}

fn parse_line(line: &str) -> Option<Row> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let key = value.get("key")?.as_str()?;
    let ts = value.get("ts")?.as_i64()?;
    Some(Row::new(key, ts))
}

/// Prints every check; appends BAD checks and ERROR events to the incidents file.
struct Journal {
    incidents: PathBuf,
    /// One writer at a time: lines from concurrent checkers never interleave.
    lock: Mutex<()>,
}

impl Journal {
    /// Appends one line to the incidents file.
    fn append(&self, line: &str) -> Result<(), HandlerError> {
        let path = self.incidents.display();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.incidents)
            .map_err(|e| HandlerError::new(format!("cannot open {path}")).with_source(e))?;
        writeln!(file, "{line}")
            .map_err(|e| HandlerError::new(format!("cannot append to {path}")).with_source(e))
    }
}

/// The event as one JSON line; an event that cannot be encoded never will be (permanent).
fn json_line(event: &Event) -> Result<String, HandlerError> {
    serde_json::to_string(event)
        .map_err(|e| HandlerError::permanent("cannot encode the event").with_source(e))
}

#[async_trait]
impl CheckHandler for Journal {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let line = json_line(event)?;
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Event::Check(_) = event {
            println!("{line}");
        }
        if event.status() != Status::Good {
            // A full disk or a missing directory: the engine retries the record later.
            self.append(&line)?;
        }
        Ok(())
    }

    async fn redeliver(&self, event: &Event, _failed_attempts: u32) -> Result<(), HandlerError> {
        // Printed on the first attempt already; only the incidents file failed.
        if event.status() == Status::Good {
            return Ok(());
        }
        let line = json_line(event)?;
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.append(&line)
    }
}

/// The command line.
struct Args {
    checkers: PathBuf,
    data: PathBuf,
    store: PathBuf,
    incidents: PathBuf,
    once: Option<i64>,
}

const USAGE: &str = "usage: lean-org --checkers DIR --data DIR --store FILE --incidents FILE \
                     [--once EPOCH_SECONDS]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut checkers, mut data, mut store, mut incidents, mut once) =
        (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--checkers" => checkers = Some(PathBuf::from(value()?)),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--store" => store = Some(PathBuf::from(value()?)),
            "--incidents" => incidents = Some(PathBuf::from(value()?)),
            "--once" => {
                let text = value()?;
                let now = text
                    .parse::<i64>()
                    .map_err(|_| format!("--once takes epoch seconds, not {text:?}"))?;
                once = Some(now);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let need =
        |value: Option<PathBuf>, flag: &str| value.ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        checkers: need(checkers, "--checkers")?,
        data: need(data, "--data")?,
        store: need(store, "--store")?,
        incidents: need(incidents, "--incidents")?,
        once,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let store = SqliteStore::open(&args.store)
        .map_err(|e| format!("cannot open the store {}: {e}", args.store.display()))?;
    let journal = Journal {
        incidents: args.incidents,
        lock: Mutex::new(()),
    };
    let dir = args.checkers.clone();
    let engine = Engine::new(
        Arc::new(ExportFiles { dir: args.data }),
        Arc::new(store),
        Arc::new(journal),
    )
    .with_loader(move || load_dir(&dir));
    engine
        .reload()
        .map_err(|e| format!("cannot read {}: {e}", args.checkers.display()))?;
    match args.once {
        Some(now) => {
            eprintln!("{}", engine.run_cycle(now).await.summary());
        }
        None => {
            let enough = Arc::new(tokio::sync::Notify::new());
            let stop = dwmon::shutdown::on_signal_or(enough)
                .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
            engine.run(&SystemClock, stop).await;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_need_a_text_key_and_integer_seconds() {
        assert_eq!(
            parse_line(r#"{"key": "o1", "ts": 1700000000}"#),
            Some(Row::new("o1", 1_700_000_000))
        );
        assert_eq!(parse_line(r#"{"key": 1, "ts": 1700000000}"#), None);
        assert_eq!(parse_line(r#"{"key": "o1", "ts": "yesterday"}"#), None);
        assert_eq!(parse_line("not json"), None);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert_eq!(args(&["--once"]).err().unwrap(), "--once needs a value");
        assert!(args(&["--checkers", "c"])
            .err()
            .unwrap()
            .contains("--data is required"));
        assert!(args(&["--bogus"])
            .err()
            .unwrap()
            .contains("unknown argument"));
        let bad = args(&[
            "--checkers",
            "c",
            "--data",
            "d",
            "--store",
            "s",
            "--incidents",
            "i",
            "--once",
            "x",
        ]);
        assert!(bad.err().unwrap().contains("epoch seconds"));
    }
}
