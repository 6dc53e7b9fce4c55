//! `HttpSource` runs the shared source conformance suite (`dwmon_core::conformance`): each case's
//! rows are served as a JSON array by a loopback server started in the test.

mod support;

use async_trait::async_trait;
use dwmon_core::conformance::{self, Fixture, Sample};
use dwmon_core::RowGetter;
use dwmon_http_source::HttpSource;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use support::{Reply, Request, Server};

struct Http {
    source: HttpSource,
    server: Server,
    /// The JSON body of `/case/N` is `pages[N]`.
    pages: Arc<Mutex<Vec<Value>>>,
}

fn value(sample: &Sample) -> Value {
    match sample {
        Sample::Null => Value::Null,
        Sample::Int(n) => json!(n),
        Sample::Text(s) => json!(s),
    }
}

#[async_trait]
impl Fixture for Http {
    fn getter(&self) -> &dyn RowGetter {
        &self.source
    }

    async fn query_for(&self, rows: &[(Sample, Sample)]) -> Result<String, String> {
        // A NULL key is a missing field, a NULL timestamp an explicit null: both are rejected.
        let objects: Vec<Value> = rows
            .iter()
            .map(|(key, timestamp)| {
                let mut object = Map::new();
                if *key != Sample::Null {
                    object.insert("dwmon_unique_key".into(), value(key));
                }
                object.insert("dwmon_timestamp".into(), value(timestamp));
                Value::Object(object)
            })
            .collect();
        let mut pages = self.pages.lock().map_err(|e| e.to_string())?;
        pages.push(Value::Array(objects));
        Ok(format!(
            "GET {}",
            self.server.url(&format!("/case/{}", pages.len() - 1))
        ))
    }

    fn failing_query(&self) -> String {
        format!("GET {}", self.server.url("/broken"))
    }
}

#[tokio::test]
async fn http_source_passes_the_conformance_suite() -> Result<(), Box<dyn std::error::Error>> {
    let pages: Arc<Mutex<Vec<Value>>> = Arc::default();
    let served = pages.clone();
    let server = Server::start(move |request: &Request| {
        let page = request
            .target
            .strip_prefix("/case/")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| served.lock().unwrap().get(n).cloned());
        match page {
            Some(page) => Reply::json(page),
            None => Reply::status(500, "no such case"),
        }
    })
    .await;
    let fixture = Http {
        source: HttpSource::new()?,
        server,
        pages,
    };
    conformance::run_all(&fixture).await?;
    Ok(())
}
