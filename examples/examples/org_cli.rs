//! An organisation's own `dwmon` command: the full command line (check, schedule, once, run,
//! status, histogram) with its own RowGetter, handler and purger.
//! `cargo run -p dwmon-examples --example org_cli -- once --checkers DIR --store acme.sqlite`
use dwmon::{async_trait, handler_fn, App, Checker, Cutoffs, DefaultPurger, Event, FetchRequest};
use dwmon::{Fetched, HandlerError, Purger, Row, RowGetter, SourceError, Status};

/// Our warehouse API; a real one would run `request.query` against `request.source`.
struct Warehouse;

#[async_trait]
impl RowGetter for Warehouse {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let now = now
            .map_err(|e| SourceError::Other(e.to_string()))?
            .as_secs() as i64;
        let rows = (0..8).map(|i| {
            Row::new(
                format!("{}-{}", request.checker, now / 30 - i),
                now - i * 30,
            )
        });
        Ok(Fetched::from_rows(rows.collect()))
    }
}

/// Keeps a month of rows, never less than the window-safe minimum.
struct KeepAMonth;

impl Purger for KeepAMonth {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        Cutoffs {
            rows: Some((now - 30 * 86_400).min(DefaultPurger::cutoff(checker, now))),
            ..DefaultPurger.cutoffs(checker, now)
        }
    }
}

fn page_on_call(event: &Event) -> Result<(), HandlerError> {
    if event.status() != Status::Good {
        eprintln!("paging on-call about {}", event.idempotency_key());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    App::new()
        .name("acme-dwmon")
        .row_getter(Warehouse)
        .handler(handler_fn(page_on_call))
        .purger(KeepAMonth)
        .run_cli()
}
