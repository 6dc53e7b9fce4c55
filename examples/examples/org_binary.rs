//! An organisation's own dwmon binary: its RowGetter and CheckHandler plugged into the engine
//! with the in-memory store. Runs three cycles at explicit instants and prints every event as
//! a JSON line. `cargo run -p dwmon-examples --example org_binary`
use dwmon::{
    async_trait, handler_fn, parse_checker, Engine, Event, FetchRequest, Fetched, HandlerError,
    MemoryStore, Row, RowGetter, SourceError,
};
use std::sync::Arc;

/// Our "warehouse": one order every 20 seconds. A real one would run `request.query`.
struct Warehouse;

#[async_trait]
impl RowGetter for Warehouse {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        match request.source {
            "warehouse" => Ok(Fetched::from_rows(
                (0..30)
                    .map(|i| Row::new(format!("order-{i}"), 1_700_000_000 + i * 20))
                    .collect(),
            )),
            other => Err(SourceError::UnknownSource {
                source_name: other.into(),
                known: vec!["warehouse".into()],
            }),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders = parse_checker(
        "new_orders.dwmon",
        "__QUERY__\nSELECT id AS dwmon_unique_key, ts AS dwmon_timestamp FROM orders\n__SOURCE__\nwarehouse\n\
         __REQUIREMENTS__\nCHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60\n",
    )?;
    // Our alerting: every event as a JSON line (a real one would page on BAD and ERROR).
    let alerts = handler_fn(|event: &Event| {
        let line = serde_json::to_string(event).map_err(|e| HandlerError::new(e.to_string()))?;
        println!("{line}");
        Ok(())
    });
    let engine = Engine::new(
        Arc::new(Warehouse),
        Arc::new(MemoryStore::new()),
        Arc::new(alerts),
    )
    .with_checkers(vec![orders]);
    // Explicit instants here; in production: `engine.run(&SystemClock, shutdown_signal).await`.
    for now in [1_700_000_405, 1_700_000_465, 1_700_000_700] {
        eprintln!("{}", engine.run_cycle(now).await.summary());
    }
    Ok(())
}
