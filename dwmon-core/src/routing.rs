//! [`RoutingSource`]: several [`RowGetter`]s of different kinds behind one, chosen by the
//! checker's `__SOURCE__` name.

use crate::source::{FetchRequest, Fetched, RowGetter, RowSink, SourceError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One route: the getter that serves a source name, and the name it knows that source by.
#[derive(Clone)]
struct Route {
    getter: Arc<dyn RowGetter>,
    target: String,
}

/// Routes each fetch to the [`RowGetter`] registered for the checker's `__SOURCE__` name.
///
/// This is how an organisation (or the `dwmon` command line's `--source NAME=URL`) puts a
/// PostgreSQL warehouse, an SQLite file and its own API behind the single `RowGetter` the engine
/// takes. A name nobody registered fails that checker's fetch with
/// [`SourceError::UnknownSource`] listing the known names; other checkers are unaffected.
///
/// ```
/// use dwmon_core::routing::RoutingSource;
/// use dwmon_core::{FetchRequest, Row, RowGetter, SourceError};
/// # use async_trait::async_trait;
/// # use dwmon_core::Fetched;
/// # struct Fixed(i64);
/// # #[async_trait]
/// # impl RowGetter for Fixed {
/// #     async fn get_rows(&self, _: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
/// #         Ok(Fetched::from_rows(vec![Row::new("k", self.0)]))
/// #     }
/// # }
///
/// // In real code: a PostgresSource and an SqliteSource.
/// let sources = RoutingSource::new()
///     .route("warehouse", Fixed(1_700_000_000))
///     // Checkers saying `__SOURCE__ default` read what the getter calls "demo".
///     .route_as("default", Fixed(1_600_000_000), "demo");
///
/// let extra = serde_json::json!({});
/// let request = FetchRequest { checker: "c", query: "SELECT 1", source: "warehouse", extra: &extra };
/// let fetched = futures::executor::block_on(sources.get_rows(&request)).unwrap();
/// assert_eq!(fetched.rows, vec![Row::new("k", 1_700_000_000)]);
///
/// let request = FetchRequest { source: "nope", ..request };
/// let error = futures::executor::block_on(sources.get_rows(&request)).unwrap_err();
/// assert!(matches!(error, SourceError::UnknownSource { .. }));
/// ```
#[derive(Clone, Default)]
pub struct RoutingSource {
    routes: BTreeMap<String, Route>,
}

impl std::fmt::Debug for RoutingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.routes
                    .iter()
                    .map(|(name, route)| (name, &route.target)),
            )
            .finish()
    }
}

impl RoutingSource {
    /// A router with no routes (every fetch fails with [`SourceError::UnknownSource`]).
    pub fn new() -> Self {
        RoutingSource::default()
    }

    /// Sends checkers whose `__SOURCE__` is `name` to `getter`, which is asked for the same
    /// name. A later route for the same name replaces the earlier one.
    pub fn route(self, name: impl Into<String>, getter: impl RowGetter + 'static) -> Self {
        let name = name.into();
        let target = name.clone();
        self.route_as(name, getter, target)
    }

    /// Sends checkers whose `__SOURCE__` is `name` to `getter`, asking it for source `target`
    /// instead (e.g. route `AWS` to a getter whose only source is `default`).
    pub fn route_as(
        mut self,
        name: impl Into<String>,
        getter: impl RowGetter + 'static,
        target: impl Into<String>,
    ) -> Self {
        self.insert(name.into(), Arc::new(getter), target.into());
        self
    }

    /// Like [`RoutingSource::route_as`], for a getter already shared (e.g. one pool serving
    /// several names), without consuming the router.
    pub fn insert(&mut self, name: String, getter: Arc<dyn RowGetter>, target: String) {
        self.routes.insert(name, Route { getter, target });
    }

    /// The routed source names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }
}

/// The entry for a checker's `__SOURCE__` name among a getter's named sources, or
/// [`SourceError::UnknownSource`] listing the names it has (sorted, as the map keeps them).
///
/// # Errors
/// [`SourceError::UnknownSource`] when `source` is not a key of `sources`.
pub fn pick<'m, T>(sources: &'m BTreeMap<String, T>, source: &str) -> Result<&'m T, SourceError> {
    sources
        .get(source)
        .ok_or_else(|| SourceError::UnknownSource {
            source_name: source.to_string(),
            known: sources.keys().cloned().collect(),
        })
}

#[async_trait]
impl RowGetter for RoutingSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let route = pick(&self.routes, request.source)?;
        let forwarded = FetchRequest {
            source: &route.target,
            ..*request
        };
        route.getter.get_rows(&forwarded).await
    }

    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let route = pick(&self.routes, request.source)?;
        let forwarded = FetchRequest {
            source: &route.target,
            ..*request
        };
        route.getter.get_rows_batched(&forwarded, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Row;

    /// Answers with one row whose key is the source name it was asked for.
    struct Echo;

    #[async_trait]
    impl RowGetter for Echo {
        async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
            Ok(Fetched::from_rows(vec![Row::new(request.source, 1)]))
        }
    }

    fn fetch(router: &RoutingSource, source: &str) -> Result<Fetched, SourceError> {
        let extra = serde_json::json!({});
        let request = FetchRequest {
            checker: "c",
            query: "q",
            source,
            extra: &extra,
        };
        futures::executor::block_on(router.get_rows(&request))
    }

    #[test]
    fn routes_by_name_and_renames() -> Result<(), SourceError> {
        let router = RoutingSource::new()
            .route("pg", Echo)
            .route_as("AWS", Echo, "default");
        assert_eq!(fetch(&router, "pg")?.rows, vec![Row::new("pg", 1)]);
        assert_eq!(fetch(&router, "AWS")?.rows, vec![Row::new("default", 1)]);
        assert_eq!(router.names(), vec!["AWS".to_string(), "pg".to_string()]);
        Ok(())
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let router = RoutingSource::new().route("b", Echo).route("a", Echo);
        assert_eq!(
            fetch(&router, "c"),
            Err(SourceError::UnknownSource {
                source_name: "c".into(),
                known: vec!["a".into(), "b".into()],
            })
        );
        assert_eq!(
            fetch(&router, "c").unwrap_err().to_string(),
            "unknown source \"c\" (known: a, b)"
        );
    }
}
