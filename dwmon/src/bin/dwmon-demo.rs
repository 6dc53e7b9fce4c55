//! `dwmon-demo`: dwmon on a throwaway fake datastore, with no setup. See `dwmon-demo --help`.

use clap::Parser;
use dwmon::demo::{backfill, create_source, ConversionRate, Generator, Rates};
use dwmon::printer::{Format, PrintingHandler};
use dwmon::{Engine, EngineConfig, SimClock, Store, StoreView};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` for the demo's own words (banner, summary, hints): stdout, or stderr with
/// `--json` so that stdout holds nothing but JSON lines.
macro_rules! say {
    ($json:expr) => {{
        use std::io::Write as _;
        if $json {
            let _ = writeln!(std::io::stderr());
        } else {
            let _ = writeln!(std::io::stdout());
        }
    }};
    ($json:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        if $json {
            let _ = writeln!(std::io::stderr(), $($arg)*);
        } else {
            let _ = writeln!(std::io::stdout(), $($arg)*);
        }
    }};
}

/// The sample checkers in the repository, found at compile time.
const DEFAULT_CHECKERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/checkers");

/// The same sample checkers, built into the binary: used when the demo runs away from its
/// source tree (an installed or copied binary) and `DEFAULT_CHECKERS` is gone.
const EMBEDDED_CHECKERS: [(&str, &str); 2] = [
    (
        "new_applications.dwmon",
        include_str!("../../../examples/checkers/new_applications.dwmon"),
    ),
    (
        "new_executions.dwmon",
        include_str!("../../../examples/checkers/new_executions.dwmon"),
    ),
];

/// The two checkers the demo's `conversion_rate` monitor reads (`examples/monitors`), built
/// into the binary and written next to the demo's files.
const AD_CHECKERS: [(&str, &str); 2] = [
    (
        "conversions.dwmon",
        include_str!("../../../examples/monitors/conversions.dwmon"),
    ),
    (
        "impressions.dwmon",
        include_str!("../../../examples/monitors/impressions.dwmon"),
    ),
];

/// A checker of the same executions through a command source: its query is a program, the
/// `sqlite3` client printing CSV, run in the demo's directory. Added when `sqlite3` is in PATH.
const COMMAND_CHECKER: (&str, &str) = (
    "executions_via_sqlite3.dwmon",
    "__QUERY__
sqlite3 -init /dev/null -readonly -csv -header source.sqlite
  'SELECT execution_id AS dwmon_unique_key, ts AS dwmon_timestamp
   FROM model_executions ORDER BY ts DESC LIMIT 10000'
__SOURCE__
shell
__REQUIREMENTS__
# As new_executions, through a command source: 5 to 20 executions in the last 3 minutes.
CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180
",
);

/// A checker of the same applications through an HTTP JSON API that the demo itself serves on
/// 127.0.0.1 (see [`serve_applications`]): the HTTP source follows its `next` links.
const HTTP_CHECKER: (&str, &str) = (
    "applications_via_http.dwmon",
    "__QUERY__
GET /applications?per_page=100
rows: $.applications
key: id
timestamp: created_at
next: $.next
max-pages: 10
__SOURCE__
api
__REQUIREMENTS__
# As new_applications, through an HTTP JSON API (pages of 100, newest first).
CHECKHOURS0-23 CHECKMINUTES*/5 WEEKENDS WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS600
CHECKHOURS9-17 CHECKMINUTES0 WEEKDAYS MINNUM20 MAXNUM400 LOOKBACKSECONDS3600
",
);

/// Serves `GET /applications?per_page=100&page=N` on 127.0.0.1 (a free port) until the demo
/// ends: `{"applications": [{"id", "created_at"}, ...], "next": URL or null}`, newest first,
/// read from the demo's SQLite source. Returns the base URL.
async fn serve_applications(source: PathBuf) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let source = source.clone();
            tokio::spawn(async move {
                let _ = answer_applications(stream, source).await;
            });
        }
    });
    Ok(base)
}

/// One request on one connection (`Connection: close`).
async fn answer_applications(
    stream: tokio::net::TcpStream,
    source: PathBuf,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut reader = tokio::io::BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let page: u64 = target
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page = if target.starts_with("/applications") {
        tokio::task::spawn_blocking(move || applications_page(&source, page))
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let (status, body) = match page {
        Some(body) => ("200 OK", body),
        None => (
            "500 Internal Server Error",
            r#"{"error": "no such page"}"#.to_string(),
        ),
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Page `page` (from 1) of the applications, 100 a page, newest first, as JSON.
fn applications_page(source: &Path, page: u64) -> rusqlite::Result<String> {
    const PER_PAGE: u64 = 100;
    let db =
        rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = db.prepare(
        "SELECT application_id, created_at FROM applications
         ORDER BY created_at DESC, application_id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = statement
        .query_map([PER_PAGE + 1, (page - 1) * PER_PAGE], |row| {
            Ok(serde_json::json!({"id": row.get::<_, i64>(0)?, "created_at": row.get::<_, i64>(1)?}))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = (rows.len() as u64 > PER_PAGE)
        .then(|| format!("/applications?per_page={PER_PAGE}&page={}", page + 1));
    let page: Vec<_> = rows.into_iter().take(PER_PAGE as usize).collect();
    Ok(serde_json::json!({"applications": page, "next": next}).to_string())
}

/// Whether `program` is an executable file in one of PATH's directories.
fn in_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// How far ahead the demo writes rows when it ends, so the tour's next commands (`dwmon once`
/// a few minutes later) see data arriving as the README says.
const LEAVE_AHEAD_SECONDS: i64 = 3600;
/// The minute of the scripted stall (see `dwmon::demo::Rates::new`).
const STALL_MINUTE: u64 = 5;

/// The first minute of the scripted conversion-tracking outage.
const CONVERSION_OUTAGE: i64 = Rates::CONVERSION_OUTAGE_MINUTES.start;

/// Enough demo minutes for the stall to empty new_executions' 3-minute window and recover.
const STORY_MINUTES: u64 = 12;

/// dwmon on a fake datastore: an SQLite file with model_executions and applications tables,
/// background writers inserting records at a realistic random rate, and the monitor checking
/// the sample checkers every (simulated) minute.
#[derive(Debug, Parser)]
#[command(
    name = "dwmon-demo",
    version,
    after_help = "With no flags the demo runs --fast --minutes 15: fifteen simulated minutes in \
        about fifteen seconds, ending at the current time. The model pipeline stalls at minute 5, \
        so new_executions turns BAD, then recovers. It ends with `dwmon status`.\n\n\
        Examples:\n  cargo run --release --bin dwmon-demo\n  \
        cargo run --release --bin dwmon-demo -- --dir /tmp/dwmon-demo --minutes 30\n  \
        cargo run --release --bin dwmon-demo -- --realtime"
)]
struct Args {
    /// One simulated minute per real second (the default unless --realtime).
    #[arg(long, conflicts_with = "realtime")]
    fast: bool,
    /// Real time: one cycle per wall-clock minute.
    #[arg(long)]
    realtime: bool,
    /// Stop after N cycles (default: 15 when fast; until Ctrl-C with --realtime).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    minutes: Option<u64>,
    /// Checker directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CHECKERS)]
    checkers: PathBuf,
    /// Keep the fake source (DIR/source.sqlite) and the store (DIR/store.sqlite) in DIR instead
    /// of a throwaway temporary directory; earlier demo files there are replaced.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Random seed, for a repeatable run (the banner shows each run's seed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print events as JSON lines on stdout (the banner and the summary go to stderr).
    #[arg(long)]
    json: bool,
    /// Simulated seconds per real second in fast mode (default 60; for tests).
    #[arg(long, value_name = "N", hide = true, default_value_t = 60.0, value_parser = dwmon::args::parse_speed)]
    speed: f64,
    /// Zone for schedules and office hours.
    #[arg(long = "tz", value_name = "ZONE", default_value = "UTC", value_parser = dwmon::args::parse_zone)]
    tz: chrono_tz::Tz,
}

fn main() -> ExitCode {
    let args = Args::parse();
    dwmon::app::main_with(
        0,
        async move { demo(args).await.map(|()| ExitCode::SUCCESS) },
    )
}

async fn demo(args: Args) -> Result<(), String> {
    let fast = !args.realtime;
    let minutes = args.minutes.or(fast.then_some(15));
    let seed = args.seed.unwrap_or_else(rand::random);

    // Where the files go: a throwaway directory unless --dir.
    let temp;
    let dir: &Path = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            for file in ["source.sqlite", "store.sqlite"] {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.join(format!("{file}{suffix}")));
                }
            }
            dir
        }
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            temp.path()
        }
    };
    let source_path = dir.join("source.sqlite");
    let store_path = dir.join("store.sqlite");

    // Simulated time: fast runs end at about the current time, so `dwmon once` can continue.
    let wall = chrono::Utc::now().timestamp();
    let (start, speed) = match (fast, minutes) {
        (true, Some(n)) => (
            dwmon::minute_floor(wall) - 60 * i64::try_from(n).unwrap_or(0) + 3,
            args.speed,
        ),
        (true, None) => (wall, args.speed),
        (false, _) => (wall, 1.0),
    };
    let plan_minutes = usize::try_from(minutes.unwrap_or(7 * 1440)).unwrap_or(7 * 1440);
    let mut rng = StdRng::seed_from_u64(seed);
    let rates = Rates::new(start, plan_minutes, args.tz, &mut rng);

    let mut connection =
        create_source(&source_path).map_err(|e| format!("cannot create the demo source: {e}"))?;
    let history = backfill(&mut connection, &rates)
        .map_err(|e| format!("cannot fill the demo source: {e}"))?;
    drop(connection);

    let store: Arc<dyn Store> =
        Arc::new(dwmon::sqlite::SqliteStore::open(&store_path).map_err(|e| e.to_string())?);
    // `__SOURCE__ default` reads the SQLite file; `__SOURCE__ shell` runs the checker's
    // query as a program in the demo's directory (the command source).
    let shell = dwmon::command_source::CommandSource::builder(dwmon::command_source::Format::Csv)
        .working_dir(dir)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    // `__SOURCE__ api` reads the same applications through an HTTP JSON API served here.
    let api_base = serve_applications(source_path.clone())
        .await
        .map_err(|e| format!("cannot serve the demo's HTTP API: {e}"))?;
    let api = dwmon::http_source::HttpSource::builder()
        .source_with_base("api", &api_base)
        .and_then(|builder| builder.timeout(std::time::Duration::from_secs(10)).build())
        .map_err(|e| e.to_string())?;
    let source = Arc::new(
        dwmon::routing::RoutingSource::new()
            .route("default", dwmon::sqlite::SqliteSource::new(&source_path))
            .route("shell", shell)
            .route("api", api),
    );
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    let checkers = if args.checkers == Path::new(DEFAULT_CHECKERS) && !args.checkers.is_dir() {
        // Away from the source tree: write the built-in samples next to the demo's files.
        let embedded = dir.join("checkers");
        std::fs::create_dir_all(&embedded)
            .map_err(|e| format!("cannot create {}: {e}", embedded.display()))?;
        for (name, text) in EMBEDDED_CHECKERS {
            std::fs::write(embedded.join(name), text)
                .map_err(|e| format!("cannot write {}: {e}", embedded.join(name).display()))?;
        }
        embedded
    } else {
        args.checkers.clone()
    };
    let checkers_dir = std::fs::canonicalize(&checkers).unwrap_or(checkers);
    let shown_checkers = checkers_dir.display().to_string();
    let command_dir = if in_path("sqlite3") {
        let command_dir = dir.join("command-checkers");
        let (name, text) = COMMAND_CHECKER;
        std::fs::create_dir_all(&command_dir)
            .and_then(|()| std::fs::write(command_dir.join(name), text))
            .map_err(|e| format!("cannot write {}: {e}", command_dir.display()))?;
        Some(command_dir)
    } else {
        None
    };
    let ad_dir = dir.join("ad-checkers");
    std::fs::create_dir_all(&ad_dir)
        .and_then(|()| {
            AD_CHECKERS
                .iter()
                .try_for_each(|(name, text)| std::fs::write(ad_dir.join(name), text))
        })
        .map_err(|e| format!("cannot write {}: {e}", ad_dir.display()))?;
    let shown_monitor = format!(
        "conversion_rate: conversions / impressions over 3 minutes at least 10% (checkers in {})",
        ad_dir.display()
    );
    let http_dir = dir.join("http-checkers");
    std::fs::create_dir_all(&http_dir)
        .and_then(|()| std::fs::write(http_dir.join(HTTP_CHECKER.0), HTTP_CHECKER.1))
        .map_err(|e| format!("cannot write {}: {e}", http_dir.display()))?;
    let shown_http = format!(
        "{} reads the applications from an HTTP JSON API at {api_base} (see docs/SOURCES.md)",
        http_dir.join(HTTP_CHECKER.0).display()
    );
    let shown_command = match &command_dir {
        Some(command_dir) => format!(
            "{} reads the executions with the sqlite3 client (see docs/SOURCES.md)",
            command_dir.join(COMMAND_CHECKER.0).display()
        ),
        None => "install the sqlite3 client to also see a checker whose query is a program \
                 (docs/SOURCES.md)"
            .to_string(),
    };
    let load = move || {
        let mut report = dwmon::load_dir(&checkers_dir)?;
        for extra_dir in command_dir.iter().chain([&http_dir, &ad_dir]) {
            let extra = dwmon::load_dir(extra_dir)?;
            report.checkers.extend(extra.checkers);
            report.errors.extend(extra.errors);
        }
        report.checkers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(report)
    };
    let first =
        load().map_err(|e| format!("cannot read checker directory {shown_checkers}: {e}"))?;
    let engine = Engine::new(
        source,
        Arc::clone(&store),
        Arc::new(PrintingHandler::new(format, None).colored_if_terminal()),
    )
    .with_config(EngineConfig {
        default_zone: args.tz,
        ..EngineConfig::default()
    })
    // Keep the back-filled history, so `dwmon histogram` has a shape to show and `dwmon
    // suggest` weeks to learn from.
    .with_purger(Arc::new(dwmon::purger::KeepEverything))
    .with_monitors(vec![Arc::new(ConversionRate)])
    .with_loader(load);

    let json = args.json;
    say!(json, "dwmon demo");
    say!(
        json,
        "  checkers  {shown_checkers} ({} loaded)",
        first.checkers.len()
    );
    say!(
        json,
        "  source    {} ({history} rows of history; new rows keep arriving)",
        source_path.display()
    );
    say!(json, "  command   {shown_command}");
    say!(json, "  http      {shown_http}");
    say!(json, "  monitor   {shown_monitor}");
    say!(json, "  store     {}", store_path.display());
    match (fast, minutes) {
        (true, Some(n)) => {
            say!(
                json,
                "  time      {n} simulated minutes, one per second (seed {seed})"
            )
        }
        (true, None) => {
            say!(
                json,
                "  time      one simulated minute per second until Ctrl-C (seed {seed})"
            )
        }
        (false, Some(n)) => say!(json, "  time      real time, {n} minutes (seed {seed})"),
        (false, None) => say!(json, "  time      real time until Ctrl-C (seed {seed})"),
    }
    if minutes.is_none_or(|n| n >= STORY_MINUTES) {
        say!(
            json,
            "  story     the model pipeline stalls at minute {STALL_MINUTE}: watch new_executions \
             turn BAD, then recover; conversion tracking breaks at minute {CONVERSION_OUTAGE}: \
             watch monitor:conversion_rate turn BAD"
        );
    } else {
        say!(
            json,
            "  story     the model pipeline stalls at minute {STALL_MINUTE}: run \
             --minutes {STORY_MINUTES} or more to see new_executions turn BAD and recover"
        );
    }
    say!(json);

    let clock = SimClock::new(start, speed);
    let generator = Generator::start(source_path.clone(), rates, clock);
    let enough = Arc::new(tokio::sync::Notify::new());
    let shutdown = dwmon::shutdown::on_signal_or(Arc::clone(&enough)).map_err(|e| e.to_string())?;
    let mut cycles = 0u64;
    engine
        .run_with(&clock, shutdown, |_| {
            cycles += 1;
            if minutes.is_some_and(|n| cycles >= n) {
                enough.notify_one();
            }
        })
        .await;
    let generated = generator
        .stop_leaving(LEAVE_AHEAD_SECONDS)
        .map_err(|e| format!("cannot write the rows ahead: {e}"))?;

    say!(json);
    say!(
        json,
        "{cycles} cycles, {generated} new records generated (including the next {} minutes' \
         rows, written ahead so that commands run after the demo see rows arriving). Status:",
        LEAVE_AHEAD_SECONDS / 60
    );
    let statuses = store.status().await.map_err(|e| e.to_string())?;
    let table = dwmon::status::status_table(&statuses, args.tz);
    if json {
        eprint!("{table}");
    } else {
        out!("{table}");
    }
    if args.dir.is_some() {
        say!(json);
        say!(json, "The files are kept. Try:");
        say!(json, "  dwmon status --store {}", store_path.display());
        say!(
            json,
            "  dwmon histogram --store {} --checker new_applications --since 604800",
            store_path.display()
        );
        say!(
            json,
            "  dwmon once --checkers {} --store {} --source default=sqlite:{}",
            shown_checkers,
            store_path.display(),
            source_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_checkers_are_the_repository_samples_and_valid() {
        let on_disk = dwmon::load_dir(Path::new(DEFAULT_CHECKERS)).expect("samples");
        assert!(on_disk.errors.is_empty(), "{:?}", on_disk.errors);
        let mut names: Vec<String> = Vec::new();
        for (file, text) in EMBEDDED_CHECKERS {
            let checker = dwmon::parse_checker(file, text).expect("valid sample");
            let from_disk = on_disk
                .checkers
                .iter()
                .find(|c| c.name == checker.name)
                .expect("the same file is in examples/checkers");
            assert_eq!(checker.requirements, from_disk.requirements);
            names.push(checker.name);
        }
        assert_eq!(names.len(), on_disk.checkers.len());
    }

    #[test]
    fn the_http_checker_is_valid_and_reads_like_new_applications() {
        let (file, text) = HTTP_CHECKER;
        let checker = dwmon::parse_checker(file, text).expect("valid");
        assert_eq!(dwmon::http_source::check_query(&checker.query), Ok(()));
        let (file, text) = EMBEDDED_CHECKERS[0];
        let applications = dwmon::parse_checker(file, text).expect("valid");
        assert_eq!(checker.requirements, applications.requirements);
    }
}
