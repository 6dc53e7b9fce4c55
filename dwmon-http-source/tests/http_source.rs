//! `HttpSource` against real loopback HTTP servers started in each test.

mod support;

use dwmon_core::SourceError;
use dwmon_http_source::HttpSource;
use serde_json::json;
use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;
use support::{fetch, pairs, Reply, Request, Server};

type TestResult = Result<(), Box<dyn Error>>;

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000;

fn source() -> HttpSource {
    HttpSource::new().expect("default source")
}

fn query_message(error: &SourceError) -> &str {
    match error {
        SourceError::Query { message, .. } | SourceError::Connection { message, .. } => message,
        other => panic!("want a query or connection error, got {other:?}"),
    }
}

/// `/items?page=N` for N in 1..=pages: two rows per page, `next` in the body and in a Link
/// header, none on the last page.
fn paginated(pages: u32) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |request: &Request| {
        let page: u32 = request
            .param("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let rows: Vec<_> = (0..2)
            .map(|i| json!({"id": format!("p{page}-{i}"), "at": T + i64::from(page)}))
            .collect();
        let next = (page < pages).then(|| format!("/items?page={}", page + 1));
        let reply = Reply::json(json!({"items": rows, "links": {"next": next}}));
        match next {
            Some(next) => reply.header(
                "link",
                &format!(
                    "<{}{next}>; rel=\"next\", <{}/items?page={pages}>; rel=\"last\"",
                    request.base, request.base
                ),
            ),
            None => reply,
        }
    }
}

mod responses {
    use super::*;

    #[tokio::test]
    async fn a_top_level_array_becomes_rows() -> TestResult {
        let server = Server::start(|_| {
            Reply::json(json!([
                {"id": 1, "created_at": "2023-11-14T22:13:20Z", "title": "x"},
                {"id": 2, "created_at": 1_700_000_060},
                {"id": "three", "created_at": "1700000120"},
            ]))
        })
        .await;
        let query = format!(
            "GET {}\nkey: id\ntimestamp: created_at",
            server.url("/repos/o/r/issues?state=all")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(
            pairs(&fetched),
            [
                ("1".into(), T),
                ("2".into(), T + 60),
                ("three".into(), T + 120)
            ]
        );
        assert_eq!(fetched.rejected, 0);
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "GET");
        assert_eq!(requests[0].target, "/repos/o/r/issues?state=all");
        assert_eq!(requests[0].headers["accept"], "application/json");
        assert!(requests[0].headers["user-agent"].starts_with("dwmon/"));
        Ok(())
    }

    #[tokio::test]
    async fn missing_and_null_fields_are_rejected_rows_not_errors() -> TestResult {
        let server = Server::start(|_| {
            Reply::json(json!({"data": {"runs": [
                {"id": "a", "done": {"at": T}},
                {"done": {"at": T}},
                {"id": "c", "done": null},
                {"id": "d", "done": {"at": "soon"}},
                {"id": "e", "done": {"at": T + 1}},
            ]}}))
        })
        .await;
        let query = format!(
            "GET {}\nrows: $.data.runs\nkey: id\ntimestamp: done.at",
            server.url("/runs")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(pairs(&fetched), [("a".into(), T), ("e".into(), T + 1)]);
        assert_eq!(fetched.rejected, 3);
        assert_eq!(fetched.rejected_samples[0], "row 2: id is missing");
        assert_eq!(fetched.rejected_samples[1], "row 3: done.at is missing");
        assert!(
            fetched.rejected_samples[2].starts_with("row 4: done.at soon is not epoch seconds"),
            "{:?}",
            fetched.rejected_samples
        );
        Ok(())
    }

    #[tokio::test]
    async fn rows_that_are_not_an_array_fail_the_fetch() -> TestResult {
        let server = Server::start(|_| Reply::json(json!({"items": {"a": 1}}))).await;
        let url = server.url("/x");
        for (rows, wanted) in [
            (
                "$.items",
                "rows `$.items` is an object, not an array of objects",
            ),
            (
                "$.data",
                "rows `$.data` is not in the response (its top level is an object)",
            ),
        ] {
            let query = format!("GET {url}\nrows: {rows}");
            let error = fetch(&source(), "default", &query).await.unwrap_err();
            assert!(query_message(&error).contains(wanted), "{error}");
            assert!(
                query_message(&error).contains(&format!("page 1 ({url})")),
                "{error}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn malformed_json_names_the_page() -> TestResult {
        let server = Server::start(|request: &Request| {
            if request.param("page").is_some() {
                Reply::status(200, "[{\"id\": 1,")
            } else {
                Reply::json(json!({"items": [], "next": "/list?page=2"}))
            }
        })
        .await;
        let query = format!("GET {}\nrows: $.items\nnext: $.next", server.url("/list"));
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
        let message = query_message(&error);
        assert!(
            message.contains(&format!(
                "page 2 ({}): the response is not valid JSON: EOF while parsing",
                server.url("/list?page=2")
            )),
            "{message}"
        );
        assert!(message.starts_with("checker \"api_check\": "), "{message}");
        Ok(())
    }

    #[tokio::test]
    async fn a_server_error_shows_the_status_and_a_short_escaped_body() -> TestResult {
        let body = format!("upstream \u{1b}[31mfailed\n{}", "x".repeat(5000));
        let server = Server::start(move |_| Reply::status(503, &body)).await;
        let query = format!("GET {}", server.url("/items"));
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
        let message = query_message(&error);
        assert!(
            message.contains(": HTTP 503 Service Unavailable: upstream \\u{1b}[31mfailed\\nxxx"),
            "{message}"
        );
        assert!(
            !message.contains('\u{1b}') && !message.contains('\n'),
            "{message}"
        );
        assert!(message.ends_with("x..."), "{message}");
        assert!(message.len() < 400, "{} chars: {message}", message.len());
        Ok(())
    }

    #[tokio::test]
    async fn a_post_sends_its_body_and_headers() -> TestResult {
        let server = Server::start(|request: &Request| {
            let asked: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
            Reply::json(json!({"hits": [{"id": asked["status"], "ts": T}]}))
        })
        .await;
        let query = format!(
            "POST {}\nContent-Type: application/json\nX-Team: data\nrows: $.hits\nkey: id\n\
             timestamp: ts\nbody: {{\"status\":\n  \"done\"}}",
            server.url("/search")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(pairs(&fetched), [("done".into(), T)]);
        let request = &server.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, "{\"status\":\n  \"done\"}");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["x-team"], "data");
        Ok(())
    }
}

mod pagination {
    use super::*;

    #[tokio::test]
    async fn a_next_field_is_followed_to_the_last_page() -> TestResult {
        let server = Server::start(paginated(3)).await;
        let query = format!(
            "GET {}\nrows: $.items\nkey: id\ntimestamp: at\nnext: $.links.next",
            server.url("/items")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(fetched.rows.len(), 6);
        assert_eq!(pairs(&fetched)[5], ("p3-1".into(), T + 3));
        assert_eq!(
            server.targets(),
            ["/items", "/items?page=2", "/items?page=3"]
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_link_header_is_followed_up_to_max_pages() -> TestResult {
        let server = Server::start(paginated(50)).await;
        let query = format!(
            "GET {}\nrows: $.items\nkey: id\ntimestamp: at\nnext: link-header\nmax-pages: 4",
            server.url("/items")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(fetched.rows.len(), 8);
        assert_eq!(
            server.targets(),
            ["/items", "/items?page=2", "/items?page=3", "/items?page=4"]
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_default_page_limit_is_ten() -> TestResult {
        let server = Server::start(paginated(50)).await;
        let query = format!(
            "GET {}\nrows: $.items\nkey: id\ntimestamp: at\nnext: $.links.next",
            server.url("/items")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(fetched.rows.len(), 20);
        assert_eq!(server.requests().len(), 10);
        Ok(())
    }

    #[tokio::test]
    async fn rejected_rows_are_numbered_across_pages() -> TestResult {
        let server = Server::start(|request: &Request| match request.param("page") {
            None => Reply::json(json!({"items": [{"id": "a", "at": T}], "next": "?page=2"})),
            Some(_) => Reply::json(json!({"items": [{"id": "b"}]})),
        })
        .await;
        let query = format!(
            "GET {}\nrows: $.items\nkey: id\ntimestamp: at\nnext: $.next",
            server.url("/items")
        );
        let fetched = fetch(&source(), "default", &query).await?;
        assert_eq!(pairs(&fetched), [("a".into(), T)]);
        assert_eq!(fetched.rejected_samples, ["row 2: at is missing"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_next_link_to_another_host_is_refused() -> TestResult {
        let elsewhere = Server::start(|_| Reply::json(json!([]))).await;
        let target = elsewhere.url("/steal");
        let server =
            Server::start(move |_| Reply::json(json!({"items": [], "next": target.clone()}))).await;
        let query = format!(
            "GET {}\nAuthorization: Bearer abc\nrows: $.items\nnext: $.next",
            server.url("/items")
        );
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(
            query_message(&error)
                .contains("follows next links only on the same scheme, host and port"),
            "{error}"
        );
        assert!(elsewhere.requests().is_empty());
        Ok(())
    }
}

mod limits {
    use super::*;

    #[tokio::test]
    async fn a_server_that_never_answers_hits_the_timeout() -> TestResult {
        let server = Server::start(|_| Reply::Hang).await;
        let source = HttpSource::builder()
            .source("default")?
            .timeout(Duration::from_millis(300))
            .build()?;
        let started = std::time::Instant::now();
        let error = fetch(&source, "default", &format!("GET {}", server.url("/slow")))
            .await
            .unwrap_err();
        assert_eq!(error, SourceError::Timeout { millis: 300 });
        assert!(started.elapsed() < Duration::from_secs(5));
        Ok(())
    }

    #[tokio::test]
    async fn the_timeout_covers_every_page() -> TestResult {
        let server = Server::start(|request: &Request| match request.param("page") {
            None => Reply::json(json!({"items": [], "next": "?page=2"})),
            Some(_) => Reply::Hang,
        })
        .await;
        let source = HttpSource::builder()
            .source("default")?
            .timeout(Duration::from_millis(300))
            .build()?;
        let query = format!("GET {}\nrows: $.items\nnext: $.next", server.url("/items"));
        let error = fetch(&source, "default", &query).await.unwrap_err();
        assert_eq!(error, SourceError::Timeout { millis: 300 });
        assert_eq!(server.requests().len(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_off_at_the_default_limit() -> TestResult {
        let server = Server::start(|_| Reply::Endless).await;
        let error = fetch(
            &source(),
            "default",
            &format!("GET {}", server.url("/huge")),
        )
        .await
        .unwrap_err();
        assert!(
            query_message(&error)
                .contains("the response is larger than the limit of 16777216 bytes"),
            "{error}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() -> TestResult {
        let server =
            Server::start(|_| Reply::status(200, &format!("[{}]", " ".repeat(4096)))).await;
        let source = HttpSource::builder()
            .source("default")?
            .max_response_bytes(1024)
            .build()?;
        let error = fetch(&source, "default", &format!("GET {}", server.url("/big")))
            .await
            .unwrap_err();
        assert!(
            query_message(&error).contains("larger than the limit of 1024 bytes"),
            "{error}"
        );
        Ok(())
    }

    /// `/r/N` redirects to `/r/N+1` until N reaches `last`, which answers with one row.
    fn redirects(last: u32) -> impl Fn(&Request) -> Reply + Send + Sync {
        move |request: &Request| {
            let n: u32 = request
                .target
                .trim_start_matches("/r/")
                .parse()
                .unwrap_or(0);
            if n >= last {
                Reply::json(json!([{"dwmon_unique_key": "k", "dwmon_timestamp": T}]))
            } else {
                Reply::status(302, "").header("location", &format!("/r/{}", n + 1))
            }
        }
    }

    #[tokio::test]
    async fn redirects_are_followed_up_to_the_limit() -> TestResult {
        let server = Server::start(redirects(5)).await;
        let fetched = fetch(&source(), "default", &format!("GET {}", server.url("/r/0"))).await?;
        assert_eq!(pairs(&fetched), [("k".into(), T)]);
        assert_eq!(server.requests().len(), 6);

        let server = Server::start(redirects(6)).await;
        let error = fetch(&source(), "default", &format!("GET {}", server.url("/r/0")))
            .await
            .unwrap_err();
        assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
        assert!(
            query_message(&error).contains("more than 5 redirects"),
            "{error}"
        );
        assert_eq!(server.requests().len(), 6);

        let strict = HttpSource::builder()
            .source("default")?
            .max_redirects(0)
            .build()?;
        let error = fetch(&strict, "default", &format!("GET {}", server.url("/r/5")))
            .await
            .unwrap_err();
        assert!(
            query_message(&error).contains("more than 0 redirects"),
            "{error}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_refused() -> TestResult {
        let elsewhere = Server::start(|_| Reply::json(json!([]))).await;
        let location = elsewhere.url("/x");
        let server =
            Server::start(move |_| Reply::status(307, "").header("location", &location)).await;
        let query = format!("GET {}\nX-Api-Key: k", server.url("/items"));
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(
            query_message(&error)
                .contains("follows redirects only on the same scheme, host and port"),
            "{error}"
        );
        assert!(elsewhere.requests().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn only_http_urls_are_requested() -> TestResult {
        for url in ["file:///etc/passwd", "ftp://h/x"] {
            let error = fetch(&source(), "default", &format!("GET {url}"))
                .await
                .unwrap_err();
            assert!(
                query_message(&error).contains("is not an http:// or https:// URL"),
                "{error}"
            );
        }
        let error = fetch(&source(), "default", "GET /relative")
            .await
            .unwrap_err();
        assert!(
            query_message(&error).contains("a relative URL needs a source with a base URL"),
            "{error}"
        );
        Ok(())
    }
}

mod variables_and_secrets {
    use super::*;

    fn with_env(vars: &[(&str, &str)]) -> HttpSource {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HttpSource::builder()
            .source("default")
            .expect("source")
            .env_lookup(move |name| vars.get(name).cloned())
            .build()
            .expect("build")
    }

    #[tokio::test]
    async fn variables_expand_in_url_headers_and_body() -> TestResult {
        let server = Server::start(|_| Reply::json(json!([]))).await;
        let source = with_env(&[
            ("TOKEN", "s3cret-token"),
            ("TEAM", "data"),
            ("SINCE", "2026"),
        ]);
        let query = format!(
            "POST {}/items?since=${{SINCE}}\nAuthorization: Bearer ${{TOKEN}}\nbody: {{\"team\": \"${{TEAM}}\"}}",
            server.base
        );
        fetch(&source, "default", &query).await?;
        let request = &server.requests()[0];
        assert_eq!(request.target, "/items?since=2026");
        assert_eq!(request.headers["authorization"], "Bearer s3cret-token");
        assert_eq!(request.body, "{\"team\": \"data\"}");
        Ok(())
    }

    #[tokio::test]
    async fn an_unset_variable_is_an_error_naming_it_and_its_line() -> TestResult {
        let server = Server::start(|_| Reply::json(json!([]))).await;
        let source = with_env(&[("EMPTY", "")]);
        let query = format!(
            "GET {}\nAccept: application/json\nAuthorization: Bearer ${{API_TOKEN}}",
            server.url("/x")
        );
        let error = fetch(&source, "default", &query).await.unwrap_err();
        assert_eq!(
            query_message(&error),
            "checker \"api_check\": __QUERY__ line 3: environment variable API_TOKEN is not set"
        );
        let query = format!("GET {}?k=${{EMPTY}}", server.url("/x"));
        let error = fetch(&source, "default", &query).await.unwrap_err();
        assert!(query_message(&error).contains("line 1: environment variable EMPTY is empty"));
        assert!(server.requests().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn expanded_values_and_url_passwords_never_reach_messages() -> TestResult {
        // The server echoes the credentials it got, as some APIs do in their errors.
        let server = Server::start(|request: &Request| {
            let echoed = format!(
                "bad token {} for {}",
                request
                    .headers
                    .get("authorization")
                    .cloned()
                    .unwrap_or_default(),
                request.target
            );
            Reply::status(401, &echoed)
        })
        .await;
        let source = with_env(&[("TOKEN", "s3cret-token"), ("KEY", "k3y-value")]);
        let address = server.base.trim_start_matches("http://");
        let query = format!(
            "GET http://user:hunter2@{address}/x?api_key=${{KEY}}\nAuthorization: Bearer ${{TOKEN}}"
        );
        let error = fetch(&source, "default", &query).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("HTTP 401"), "{message}");
        assert!(message.contains("Bearer ${TOKEN}"), "{message}");
        assert!(message.contains("api_key=${KEY}"), "{message}");
        assert!(message.contains("user:***@"), "{message}");
        for secret in ["s3cret-token", "k3y-value", "hunter2"] {
            assert!(!message.contains(secret), "{secret} in {message}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_error_without_secrets() -> TestResult {
        let source = with_env(&[("KEY", "k3y-value")]);
        let error = fetch(
            &source,
            "default",
            "GET http://u:hunter2@127.0.0.1:9/x?key=${KEY}",
        )
        .await
        .unwrap_err();
        assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("cannot connect"), "{message}");
        assert!(
            !message.contains("hunter2") && !message.contains("k3y-value"),
            "{message}"
        );
        Ok(())
    }
}

mod routing {
    use super::*;

    #[tokio::test]
    async fn a_base_url_resolves_relative_targets_and_names_route() -> TestResult {
        let server =
            Server::start(|_| Reply::json(json!([{"dwmon_unique_key": 1, "dwmon_timestamp": T}])))
                .await;
        let source = HttpSource::builder()
            .source_with_base("api", &format!("{}/v2/", server.base))?
            .build()?;
        let fetched = fetch(&source, "api", "GET items?x=1").await?;
        assert_eq!(pairs(&fetched), [("1".into(), T)]);
        fetch(&source, "api", "GET /root").await?;
        assert_eq!(server.targets(), ["/v2/items?x=1", "/root"]);
        let error = fetch(&source, "other", "GET /x").await.unwrap_err();
        assert_eq!(
            error,
            SourceError::UnknownSource {
                source_name: "other".into(),
                known: vec!["api".into()]
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_spec_error_names_the_checker_and_line() -> TestResult {
        let error = fetch(&source(), "default", "GET http://127.0.0.1:9/\nnext: maybe")
            .await
            .unwrap_err();
        assert!(
            query_message(&error)
                .starts_with("checker \"api_check\": __QUERY__ line 2, column 7: "),
            "{error}"
        );
        Ok(())
    }
}

mod tls {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    /// A CA made for the test and an HTTPS server on 127.0.0.1 whose `localhost` certificate
    /// it signed, answering every request with one row. Returns the port and the CA's PEM.
    async fn https_server() -> Result<(u16, String), Box<dyn Error>> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let leaf =
            CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca, &ca_key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    continue;
                };
                // One request per connection; its head fits one read for this test.
                let mut buffer = vec![0; 16 * 1024];
                let _ = tls.read(&mut buffer).await;
                let body = format!(r#"[{{"dwmon_unique_key": "tls", "dwmon_timestamp": {T}}}]"#);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        Ok((port, ca.pem()))
    }

    #[tokio::test]
    async fn a_ca_file_is_trusted_besides_the_bundled_roots() -> TestResult {
        let (port, ca_pem) = https_server().await?;
        let query = format!("GET https://localhost:{port}/items");
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(error.to_string().contains("certificate"), "{error}");

        let mut ca_file = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut ca_file, ca_pem.as_bytes())?;
        let url = format!("http?ca_file={}&timeout=10", ca_file.path().display());
        let trusting = HttpSource::from_url("default", &url)?;
        let fetched = fetch(&trusting, "default", &query).await?;
        assert_eq!(pairs(&fetched), [("tls".into(), T)]);
        Ok(())
    }

    #[test]
    fn source_urls_and_their_mistakes() {
        assert!(HttpSource::from_url("a", "http").is_ok());
        assert!(HttpSource::from_url("a", "http?timeout=2.5&max_redirects=0").is_ok());
        for (url, wanted) in [
            (
                "http?timeout=soon",
                "timeout=soon is not a number of seconds",
            ),
            (
                "http?max_response_bytes=-1",
                "max_response_bytes=-1 is not a number",
            ),
            ("http?retries=3", "unknown option \"retries\""),
            ("httpx", "expected http, http?OPTIONS"),
            ("http?ca_file=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
            ("http?max_response_bytes=0", "max_response_bytes"),
        ] {
            let error = HttpSource::from_url("a", url).unwrap_err().to_string();
            assert!(error.contains(wanted), "{url}: {error}");
        }
        let error = HttpSource::builder()
            .root_certificates("inline", b"not a certificate")
            .unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    /// An HTTPS server with a self-signed certificate for `localhost`: the source must refuse
    /// it (certificates are verified against Mozilla's roots).
    #[tokio::test]
    async fn an_untrusted_certificate_is_refused() -> TestResult {
        let key = rcgen::KeyPair::generate()?;
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        let certificate = params.self_signed(&key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let handshakes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let result = acceptor.accept(stream).await.map(|_| ());
                seen.lock().unwrap().push(result.map_err(|e| e.to_string()));
            }
        });
        let query = format!("GET https://localhost:{port}/items");
        let error = fetch(&source(), "default", &query).await.unwrap_err();
        assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("certificate"), "{message}");
        assert!(handshakes.lock().unwrap().iter().all(Result::is_err));
        Ok(())
    }
}

mod unparsable_urls {
    use super::*;

    #[tokio::test]
    async fn a_password_that_breaks_the_url_is_still_masked() -> TestResult {
        let error = fetch(&source(), "default", "GET https://u:pa/ss?@127.0.0.1:9/x")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("invalid URL https://u:***@127.0.0.1:9/x"),
            "{message}"
        );
        assert!(!message.contains("pa/ss"), "{message}");
        let error = HttpSource::builder()
            .source_with_base("api", "https://u:pa/ss@h/")
            .unwrap_err();
        assert!(!error.to_string().contains("pa/ss"), "{error}");
        Ok(())
    }
}
