//! The default [`CheckHandler`]: every check record and error event to stdout, as a readable
//! line or as one JSON object per line (the field names of docs/FORMAT.md and README "How a cycle works").

use async_trait::async_trait;
use dwmon_core::{CheckHandler, Event, HandlerError, Status};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One aligned line per event for people.
    #[default]
    Human,
    /// One JSON object per line for scripts.
    Json,
}

/// Counts of the events seen, by status (shared, so a command can ask after the cycle).
#[derive(Debug, Default)]
pub struct Tally {
    good: AtomicU64,
    bad: AtomicU64,
    error: AtomicU64,
}

impl Tally {
    /// Adds one event of `status`.
    pub fn add(&self, status: Status) {
        let counter = match status {
            Status::Good => &self.good,
            Status::Bad => &self.bad,
            Status::Error | Status::Missed => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(good, bad, error)` so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.good.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
            self.error.load(Ordering::Relaxed),
        )
    }

    /// Whether any BAD or ERROR event was seen.
    pub fn any_not_good(&self) -> bool {
        let (_, bad, error) = self.counts();
        bad + error > 0
    }
}

/// Prints each event to stdout, then forwards it to an optional inner handler; counts statuses.
pub struct PrintingHandler {
    format: Format,
    print: bool,
    color: bool,
    inner: Option<Arc<dyn CheckHandler>>,
    tally: Arc<Tally>,
}

impl PrintingHandler {
    /// A handler printing in `format`; when `inner` is given, events are also handed to it
    /// after printing (and its failure is the delivery's failure, so the engine retries it;
    /// the retry is not printed again).
    pub fn new(format: Format, inner: Option<Arc<dyn CheckHandler>>) -> Self {
        PrintingHandler {
            format,
            print: true,
            color: false,
            inner,
            tally: Arc::new(Tally::default()),
        }
    }

    /// Turns printing off (only the inner handler and the tally see events).
    pub fn quiet(mut self) -> Self {
        self.print = false;
        self
    }

    /// Colours the status of readable lines when stdout is a terminal (and `NO_COLOR` is
    /// unset).
    pub fn colored_if_terminal(mut self) -> Self {
        use std::io::IsTerminal;
        self.color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        self
    }

    /// The shared status counts.
    pub fn tally(&self) -> Arc<Tally> {
        Arc::clone(&self.tally)
    }
}

/// Prints each record once: on its first delivery, before the inner handler runs (printing
/// cannot fail), so that a record the engine retries because the inner handler or an alert
/// channel failed is not printed again — [`CheckHandler::redeliver`] only forwards it.
#[async_trait]
impl CheckHandler for PrintingHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.show(event);
        match &self.inner {
            Some(inner) => inner.handle(event).await,
            None => Ok(()),
        }
    }

    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        match &self.inner {
            Some(inner) => inner.redeliver(event, failed_attempts).await,
            None => Ok(()),
        }
    }

    /// Without an inner handler the printer is one target; with one, printing is the target
    /// `print` and the inner handler `handler` (or `handler/TARGET` for its own targets), so
    /// a failing inner handler never holds back the printed lines.
    fn targets(&self, event: &Event) -> Vec<String> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let own = inner.targets(event);
        let mut targets = vec![PRINT_TARGET.to_string()];
        if own.is_empty() {
            targets.push(INNER_TARGET.to_string());
        } else {
            targets.extend(own.into_iter().map(|t| format!("{INNER_TARGET}/{t}")));
        }
        targets
    }

    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        let (head, rest) = target.split_once('/').unwrap_or((target, ""));
        match (head, &self.inner) {
            (PRINT_TARGET, Some(_)) => {
                // Printed on the first attempt of the record only.
                if failed_attempts == 0 {
                    self.show(event);
                }
                Ok(())
            }
            (INNER_TARGET, Some(inner)) => inner.deliver_to(rest, event, failed_attempts).await,
            // Without an inner handler: the printer itself.
            (_, None) if target.is_empty() => {
                if failed_attempts == 0 {
                    self.handle(event).await
                } else {
                    self.redeliver(event, failed_attempts).await
                }
            }
            // A target of an earlier configuration: nothing is owed to it.
            _ => Ok(()),
        }
    }

    async fn gave_up(&self, target: &str, event: &Event) {
        if let (Some((INNER_TARGET, rest)), Some(inner)) = (target.split_once('/'), &self.inner) {
            inner.gave_up(rest, event).await;
        }
    }
}

/// The delivery target of the printed line, next to an inner handler.
const PRINT_TARGET: &str = "print";
/// The delivery target of the inner handler.
const INNER_TARGET: &str = "handler";

impl PrintingHandler {
    /// Counts and (unless quiet) prints one event.
    fn show(&self, event: &Event) {
        self.tally.add(event.status());
        if self.print {
            let mut line = format_event(event, self.format);
            if self.color && self.format == Format::Human {
                line = colorize(&line, event.status());
            }
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) must not make deliveries fail forever.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
}

/// One line for `event` in `format`.
pub fn format_event(event: &Event, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(event)
            .unwrap_or_else(|e| format!(r#"{{"error":"cannot serialize event: {e}"}}"#)),
        Format::Human => match event {
            Event::Check(c) if dwmon_core::monitor::is_monitor_record(&c.checker) => format!(
                "{}  {:<5} {}  {}",
                c.minute_local,
                c.status.as_str(),
                c.checker,
                c.monitor.as_ref().map_or_else(
                    || "not judged: the minute left the horizon".to_string(),
                    |m| one_line(&m.message)
                )
            ),
            Event::Check(c) => format!(
                "{}  {:<5} {}#{}  count={} want {} to {} in last {}s",
                c.minute_local,
                c.status.as_str(),
                c.checker,
                c.requirement_index,
                c.count,
                c.min,
                c.max,
                c.lookback_seconds
            ),
            Event::Error(e) => format!(
                "{}  {:<5} {}  {}",
                e.minute_local,
                e.status.as_str(),
                e.checker,
                one_line(&e.error)
            ),
        },
    }
}

/// Wraps the status word of a readable line in ANSI colours (green, red, yellow).
fn colorize(line: &str, status: Status) -> String {
    let code = match status {
        Status::Good => "32",
        Status::Bad => "31;1",
        Status::Error | Status::Missed => "33;1",
    };
    let word = status.as_str();
    line.replacen(word, &format!("\x1b[{code}m{word}\x1b[0m"), 1)
}

/// The most characters of an error message a table row or a readable event line shows.
pub(crate) const MAX_SHOWN_ERROR_CHARS: usize = 300;

/// `text` on one line (whitespace runs, newlines included, become one space), cut to
/// [`MAX_SHOWN_ERROR_CHARS`] characters: a source error quoting a multi-line or huge query
/// must not break a table or a line-per-event output. The JSON forms keep the full text.
pub(crate) fn one_line(text: &str) -> String {
    let mut line = String::new();
    for (count, word) in text.split_whitespace().enumerate() {
        if count > 0 {
            line.push(' ');
        }
        line.push_str(word);
        if line.len() > 4 * MAX_SHOWN_ERROR_CHARS {
            break;
        }
    }
    match line.char_indices().nth(MAX_SHOWN_ERROR_CHARS) {
        Some((end, _)) => {
            line.truncate(end);
            line.push_str(" [...]");
            line
        }
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::{CheckRecord, ErrorEvent};

    fn record(status: Status) -> Event {
        Event::Check(CheckRecord {
            checker: "new_executions".into(),
            requirement_index: 0,
            requirement:
                "CHECKMINUTES* CHECKHOURS* WEEKDAYS WEEKENDS MINNUM5 MAXNUM20 LOOKBACKSECONDS180"
                    .into(),
            minute: 1_795_359_840,
            minute_local: "2026-11-22T15:04:00+00:00".into(),
            timezone: "UTC".into(),
            lookback_seconds: 180,
            count: 3,
            min: 5,
            max: 20,
            status,
            extra: serde_json::json!({"team": "ml"}),
            monitor: None,
            runs: None,
        })
    }

    #[test]
    fn human_lines_say_status_checker_and_bounds() {
        assert_eq!(
            format_event(&record(Status::Bad), Format::Human),
            "2026-11-22T15:04:00+00:00  BAD   new_executions#0  count=3 want 5 to 20 in last 180s"
        );
        let error = Event::Error(ErrorEvent {
            checker: "broken".into(),
            minute: 60,
            minute_local: "1970-01-01T00:01:00+00:00".into(),
            timezone: "UTC".into(),
            status: Status::Error,
            error: "broken.dwmon:2:1: boom".into(),
            extra: serde_json::json!({}),
            kind: dwmon_core::ErrorKind::CheckerFile,
        });
        assert_eq!(
            format_event(&error, Format::Human),
            "1970-01-01T00:01:00+00:00  ERROR broken  broken.dwmon:2:1: boom"
        );
    }

    #[test]
    fn colours_wrap_only_the_status_word() {
        let line = format_event(&record(Status::Bad), Format::Human);
        let colored = colorize(&line, Status::Bad);
        assert!(colored.contains("\x1b[31;1mBAD\x1b[0m"));
        assert_eq!(
            colored.replace("\x1b[31;1m", "").replace("\x1b[0m", ""),
            line
        );
    }

    #[test]
    fn json_lines_have_the_spec_field_names() -> Result<(), serde_json::Error> {
        let line = format_event(&record(Status::Good), Format::Json);
        let value: serde_json::Value = serde_json::from_str(&line)?;
        for field in [
            "checker",
            "requirement_index",
            "requirement",
            "minute",
            "minute_local",
            "timezone",
            "lookback_seconds",
            "count",
            "min",
            "max",
            "status",
            "extra",
        ] {
            assert!(value.get(field).is_some(), "missing {field} in {line}");
        }
        assert_eq!(value["status"], "GOOD");
        Ok(())
    }

    #[tokio::test]
    async fn the_tally_counts_statuses_and_the_inner_handler_sees_events() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let inner = dwmon_core::handler_fn(move |e: &Event| {
            sink.lock()
                .map_err(|_| HandlerError::new("poisoned"))?
                .push(e.status());
            Ok(())
        });
        let handler = PrintingHandler::new(Format::Json, Some(Arc::new(inner))).quiet();
        handler.handle(&record(Status::Good)).await.unwrap();
        handler.handle(&record(Status::Bad)).await.unwrap();
        assert_eq!(handler.tally().counts(), (1, 1, 0));
        assert!(handler.tally().any_not_good());
        assert_eq!(*seen.lock().unwrap(), vec![Status::Good, Status::Bad]);
    }

    #[tokio::test]
    async fn a_redelivered_record_is_counted_and_printed_once() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let failing = dwmon_core::handler_fn(move |_: &Event| {
            seen.fetch_add(1, Ordering::SeqCst);
            Err(HandlerError::new("webhook down"))
        });
        let handler = PrintingHandler::new(Format::Json, Some(Arc::new(failing))).quiet();
        let event = record(Status::Bad);
        assert!(handler.handle(&event).await.is_err());
        assert!(handler.redeliver(&event, 1).await.is_err());
        assert!(handler.redeliver(&event, 2).await.is_err());
        assert_eq!(handler.tally().counts(), (0, 1, 0), "shown once");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the inner handler sees every attempt"
        );
    }
}
