//! Routing `__SOURCE__` names to [`RowGetter`]s: the built-in `sqlite:`, `postgres://` and
//! `command:` sources given with `--source NAME=URL`, and the application's own RowGetter.

use crate::args::{SourceSpec, SourceUrl};
use async_trait::async_trait;
use dwmon_core::routing::RoutingSource;
use dwmon_core::{FetchRequest, Fetched, RowGetter, RowSink, SourceError};
use std::sync::Arc;

/// A [`RowGetter`] that hands each request to the source registered for its name (a
/// [`RoutingSource`] built from `--source NAME=URL`), else to a fallback (an organisation's
/// own RowGetter), else fails with [`SourceError::UnknownSource`].
#[derive(Clone, Default)]
pub struct Router {
    routes: RoutingSource,
    fallback: Option<Arc<dyn RowGetter>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes `name` to `getter` (replacing an earlier one of the same name).
    pub fn route(self, name: impl Into<String>, getter: Arc<dyn RowGetter>) -> Self {
        let name = name.into();
        self.route_as(name.clone(), getter, name)
    }

    /// Routes `name` to `getter`, which is asked for its source `target` instead.
    pub fn route_as(
        mut self,
        name: impl Into<String>,
        getter: Arc<dyn RowGetter>,
        target: impl Into<String>,
    ) -> Self {
        self.routes.insert(name.into(), getter, target.into());
        self
    }

    /// Sends every source name without a route to `getter`.
    pub fn fallback(mut self, getter: Arc<dyn RowGetter>) -> Self {
        self.fallback = Some(getter);
        self
    }

    /// Whether no request can be served at all.
    pub fn is_empty(&self) -> bool {
        self.routes.names().is_empty() && self.fallback.is_none()
    }
}

#[async_trait]
impl RowGetter for Router {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        match &self.fallback {
            Some(fallback) if !self.routes.names().iter().any(|n| n == request.source) => {
                fallback.get_rows(request).await
            }
            _ => self.routes.get_rows(request).await,
        }
    }

    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        match &self.fallback {
            Some(fallback) if !self.routes.names().iter().any(|n| n == request.source) => {
                fallback.get_rows_batched(request, sink).await
            }
            _ => self.routes.get_rows_batched(request, sink).await,
        }
    }
}

/// Adds the built-in source a `--source NAME=URL` argument names to `router`.
///
/// An SQLite file is opened read-only at each fetch, so a missing file is reported per checker
/// (an `ERROR` event) rather than stopping the runner.
///
/// A PostgreSQL, MySQL or MariaDB source gets a small pool of read-only connections; a server
/// that is down is likewise reported per checker at fetch time.
///
/// An HTTP source (`http`, or a base URL) reads JSON APIs; its checkers' queries are request
/// specs (see `docs/SOURCES.md`).
///
/// # Errors
/// When a PostgreSQL or MySQL URL is invalid or its pool cannot be set up, or an HTTP base
/// URL is invalid.
pub fn add_source(router: Router, spec: &SourceSpec) -> Result<Router, crate::Error> {
    add_source_sized(router, spec, None)
}

/// [`add_source`] with `pool_size` connections for a PostgreSQL or MySQL source (the engine's
/// concurrent fetches per source, `EngineConfig::max_concurrent_checkers`; 0 acts as 1) instead
/// of their default 8.
///
/// # Errors
/// As [`add_source`].
pub fn add_source_pooled(
    router: Router,
    spec: &SourceSpec,
    pool_size: usize,
) -> Result<Router, crate::Error> {
    add_source_sized(router, spec, Some(pool_size.max(1)))
}

#[cfg_attr(
    not(any(feature = "postgres", feature = "mysql")),
    allow(unused_variables)
)]
fn add_source_sized(
    router: Router,
    spec: &SourceSpec,
    pool_size: Option<usize>,
) -> Result<Router, crate::Error> {
    match &spec.url {
        SourceUrl::Sqlite(path) => Ok(router.route_as(
            spec.name.clone(),
            Arc::new(dwmon_sqlite::SqliteSource::new(path)),
            "default",
        )),
        #[cfg(feature = "postgres")]
        SourceUrl::Postgres(url) => {
            let source = dwmon_postgres_source::PostgresSource::builder()
                .source(spec.name.clone(), url)
                .and_then(|builder| match pool_size {
                    Some(size) => builder.pool_size(size).build(),
                    None => builder.build(),
                })
                .map_err(|e| crate::Error::Source {
                    name: spec.name.clone(),
                    message: e.to_string(),
                })?;
            Ok(router.route(spec.name.clone(), Arc::new(source)))
        }
        SourceUrl::Command(_) => add_command_source(router, spec, false),
        #[cfg(feature = "http")]
        SourceUrl::Http(url) => {
            let source = dwmon_http_source::HttpSource::from_url(&spec.name, url).map_err(|e| {
                crate::Error::Source {
                    name: spec.name.clone(),
                    message: e.to_string(),
                }
            })?;
            Ok(router.route(spec.name.clone(), Arc::new(source)))
        }
        #[cfg(feature = "mysql")]
        SourceUrl::Mysql(url) => {
            let source = dwmon_mysql_source::MysqlSource::builder()
                .source(spec.name.clone(), url)
                .and_then(|builder| match pool_size {
                    Some(size) => builder.pool_size(size).build(),
                    None => builder.build(),
                })
                .map_err(|e| crate::Error::Source {
                    name: spec.name.clone(),
                    message: e.to_string(),
                })?;
            Ok(router.route(spec.name.clone(), Arc::new(source)))
        }
        #[allow(unreachable_patterns)]
        _ => Err(crate::Error::Source {
            name: spec.name.clone(),
            message: format!(
                "this program was built without {} sources (the `{}` feature of the dwmon \
                 crate)",
                spec.url.feature(),
                spec.url.feature()
            ),
        }),
    }
}

/// Adds a `--source NAME=command:...` source to `router` if `allowed` (the runner's
/// `--allow-command-sources`): its checkers' `__QUERY__` names a program that dwmon runs as
/// its own user, so it is never set up by default.
///
/// # Errors
/// When not `allowed` (saying how to allow it), or when the `command:` URL is invalid.
pub fn add_command_source(
    router: Router,
    spec: &SourceSpec,
    allowed: bool,
) -> Result<Router, crate::Error> {
    let SourceUrl::Command(url) = &spec.url else {
        return add_source(router, spec);
    };
    let error = |message: String| crate::Error::Source {
        name: spec.name.clone(),
        message,
    };
    if !allowed {
        return Err(error(format!(
            "{url} runs the programs named in checker files; command sources are off unless \
             allowed: pass --allow-command-sources (or set DWMON_ALLOW_COMMAND_SOURCES=1)"
        )));
    }
    let source =
        dwmon_command_source::CommandSource::from_url(url).map_err(|e| error(e.to_string()))?;
    Ok(router.route(spec.name.clone(), Arc::new(source)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::Row;

    struct Named(&'static str);

    #[async_trait]
    impl RowGetter for Named {
        async fn get_rows(&self, _: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
            Ok(Fetched::from_rows(vec![Row::new(self.0, 0)]))
        }
    }

    fn request(source: &str) -> FetchRequest<'_> {
        static EXTRA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
        FetchRequest {
            checker: "c",
            query: "SELECT 1",
            source,
            extra: EXTRA.get_or_init(|| serde_json::json!({})),
        }
    }

    #[tokio::test]
    async fn requests_go_to_their_source_then_the_fallback() -> Result<(), SourceError> {
        let router = Router::new().route("a", Arc::new(Named("from a")));
        assert_eq!(router.get_rows(&request("a")).await?.rows[0].key, "from a");
        let err = router.get_rows(&request("b")).await.unwrap_err();
        assert_eq!(
            err,
            SourceError::UnknownSource {
                source_name: "b".into(),
                known: vec!["a".into()]
            }
        );
        let router = router.fallback(Arc::new(Named("fallback")));
        assert_eq!(
            router.get_rows(&request("b")).await?.rows[0].key,
            "fallback"
        );
        Ok(())
    }

    /// Built without the PostgreSQL source (`cargo test -p dwmon --lib --no-default-features
    /// --features cli`): a `postgres://` source is refused with the feature to turn on.
    #[cfg(not(feature = "postgres"))]
    #[test]
    fn a_source_left_out_of_the_build_names_its_feature() {
        let spec = crate::args::parse_source("wh=postgres://u@db.example/x").unwrap();
        let Err(e) = add_source(Router::new(), &spec) else {
            panic!("a postgres source without the feature");
        };
        assert_eq!(
            e.to_string(),
            "--source wh: this program was built without postgres sources (the `postgres` \
             feature of the dwmon crate)"
        );
    }
}
