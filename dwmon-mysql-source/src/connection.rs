//! Parsing `mysql://` and `mariadb://` URLs: the `ssl-mode` and `ssl-ca` parameters are
//! dwmon's, everything else is handed to mysql_async; the password may come from `MYSQL_PWD`.

use crate::error::{Error, Result};
use mysql_async::{Opts, OptsBuilder, SslOpts};
use std::path::PathBuf;

/// TLS for one source, as MySQL's `--ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disabled,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Preferred,
    /// TLS or the connection fails; the certificate is not checked.
    Required,
    /// TLS; the certificate chains to `ssl-ca` (or Mozilla's roots). Meant to allow any host
    /// name, but mysql_async 0.37 misses rustls 0.23's name error, so the name is checked too.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate names the host.
    VerifyIdentity,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        let mode = match value.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => SslMode::Disabled,
            "PREFERRED" => SslMode::Preferred,
            "REQUIRED" => SslMode::Required,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
            _ => return None,
        };
        Some(mode)
    }
}

/// A parsed connection URL.
#[derive(Clone)]
pub(crate) struct Connection {
    /// Host, port, user, password, database and mysql_async's own parameters; no TLS yet.
    pub(crate) opts: OptsBuilder,
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_ca: Option<PathBuf>,
    /// The URL with any password masked, for messages.
    pub(crate) shown: String,
}

/// mysql_async's TLS parameters, replaced by `ssl-mode`.
const DRIVER_TLS_PARAMETERS: [&str; 4] = [
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];

/// Parses `mysql://user:password@host:port/db?ssl-mode=...` (or `mariadb://`). `env` reads
/// environment variables (`MYSQL_PWD` when the URL has no password).
pub(crate) fn parse(
    name: &str,
    connection: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Connection> {
    let invalid = |message: String| Error::InvalidConnection {
        source_name: name.to_string(),
        message,
    };
    let rest = connection
        .strip_prefix("mysql://")
        .or_else(|| connection.strip_prefix("mariadb://"))
        .ok_or_else(|| invalid("the URL must start with mysql:// or mariadb://".to_string()))?;
    // The url crate's messages ("invalid port number") never echo the input.
    let mut url =
        url::Url::parse(&format!("mysql://{rest}")).map_err(|e| invalid(format!("{e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".to_string()));
    }
    let mut ssl_mode = SslMode::Preferred;
    let mut ssl_ca = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "ssl_mode" | "sslmode" => {
                ssl_mode = SslMode::parse(&value).ok_or_else(|| {
                    invalid(format!(
                        "unsupported ssl-mode {value:?}; use DISABLED, PREFERRED, REQUIRED, \
                         VERIFY_CA or VERIFY_IDENTITY"
                    ))
                })?;
            }
            "ssl-ca" | "ssl_ca" => ssl_ca = Some(PathBuf::from(value.as_ref())),
            driver if DRIVER_TLS_PARAMETERS.contains(&driver) => {
                return Err(invalid(format!(
                    "parameter {driver} is not supported; use ssl-mode=DISABLED|PREFERRED|\
                     REQUIRED|VERIFY_CA|VERIFY_IDENTITY"
                )));
            }
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let opts = Opts::from_url(url.as_str()).map_err(|e| invalid(driver_url_error(&e)))?;
    let has_password = opts.pass().is_some_and(|p| !p.is_empty());
    let mut opts = OptsBuilder::from_opts(opts);
    if !has_password {
        if let Some(password) = env("MYSQL_PWD").filter(|p| !p.is_empty()) {
            opts = opts.pass(Some(password));
        }
    }
    Ok(Connection {
        opts,
        ssl_mode,
        ssl_ca,
        shown: mask_password(connection),
    })
}

/// mysql_async's URL error, without anything that could be the password (its messages name
/// parameters and their values; the password is never a parameter).
fn driver_url_error(error: &mysql_async::UrlError) -> String {
    match error {
        mysql_async::UrlError::Invalid => "invalid or incomplete URL".to_string(),
        other => other.to_string(),
    }
}

impl Connection {
    /// The driver options for TLS `with_tls` (the `PREFERRED` fallback connects without).
    pub(crate) fn opts(&self, with_tls: bool) -> OptsBuilder {
        let ssl = match self.ssl_mode {
            _ if !with_tls => None,
            SslMode::Disabled => None,
            SslMode::Preferred | SslMode::Required => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
            SslMode::VerifyCa | SslMode::VerifyIdentity => {
                let mut ssl = SslOpts::default()
                    .with_danger_skip_domain_validation(self.ssl_mode == SslMode::VerifyCa);
                if let Some(ca) = &self.ssl_ca {
                    ssl = ssl
                        .with_root_certs(vec![ca.clone().into()])
                        .with_disable_built_in_roots(true);
                }
                Some(ssl)
            }
        };
        self.opts.clone().ssl_opts(ssl)
    }
}

/// `mysql://user:secret@host/db` -> `mysql://user:***@host/db`. The user name ends at the first
/// `:` before the first `@`; everything from there to the last `@` is hidden, so a password
/// holding an unencoded `/`, `?` or `@` never shows.
pub(crate) fn mask_password(connection: &str) -> String {
    let Some((scheme, rest)) = connection.split_once("://") else {
        return connection.to_string();
    };
    let (Some(first_at), Some(last_at)) = (rest.find('@'), rest.rfind('@')) else {
        return connection.to_string();
    };
    match rest[..first_at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[last_at..]),
        None => connection.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn urls_are_parsed() -> Result<()> {
        let c = parse(
            "a",
            "mariadb://reader:s%40cret@db.internal:3307/app?ssl-mode=verify_identity&ssl-ca=/etc/ca.pem",
            &no_env,
        )?;
        let opts = Opts::from(c.opts(true));
        assert_eq!(opts.ip_or_hostname(), "db.internal");
        assert_eq!(opts.tcp_port(), 3307);
        assert_eq!(opts.user(), Some("reader"));
        assert_eq!(opts.pass(), Some("s@cret"));
        assert_eq!(opts.db_name(), Some("app"));
        assert_eq!(c.ssl_mode, SslMode::VerifyIdentity);
        assert_eq!(c.ssl_ca, Some(PathBuf::from("/etc/ca.pem")));
        let ssl = opts.ssl_opts().ok_or(Error::NoSources)?;
        assert!(!ssl.skip_domain_validation());
        assert!(ssl.disable_built_in_roots());

        let plain = parse(
            "a",
            "mysql://root@127.0.0.1/test?ssl-mode=DISABLED",
            &no_env,
        )?;
        assert_eq!(plain.ssl_mode, SslMode::Disabled);
        assert!(Opts::from(plain.opts(true)).ssl_opts().is_none());
        let default = parse("a", "mysql://root@127.0.0.1/test", &no_env)?;
        assert_eq!(default.ssl_mode, SslMode::Preferred);
        assert_eq!(Opts::from(default.opts(true)).tcp_port(), 3306);
        assert!(Opts::from(default.opts(false)).ssl_opts().is_none());
        let required = Opts::from(default.opts(true));
        let ssl = required.ssl_opts().ok_or(Error::NoSources)?;
        assert!(ssl.accept_invalid_certs());
        Ok(())
    }

    #[test]
    fn the_password_may_come_from_mysql_pwd() -> Result<()> {
        let env = |var: &str| (var == "MYSQL_PWD").then(|| "from-env".to_string());
        let c = parse("a", "mysql://u@h/d", &env)?;
        assert_eq!(Opts::from(c.opts(false)).pass(), Some("from-env"));
        let c = parse("a", "mysql://u:in-url@h/d", &env)?;
        assert_eq!(Opts::from(c.opts(false)).pass(), Some("in-url"));
        Ok(())
    }

    #[test]
    fn invalid_urls_say_what_is_wrong_without_the_password() {
        let cases = [
            ("postgres://u:hunter2@h/d", "mysql://"),
            ("mysql://u:hunter2@h:99999/d", "port"),
            ("mysql://u:hunter2@h/d?ssl-mode=sometimes", "ssl-mode"),
            ("mysql://u:hunter2@h/d?require_ssl=true", "require_ssl"),
            ("mysql://u:hunter2@h/d?nonsense=1", "nonsense"),
            ("mysql://u:hunter2@/d", "host"),
            // An unencoded / in the password: the URL is not understood, and not echoed.
            ("mysql://u:hunter2/x@h/d", "port"),
        ];
        for (url, named) in cases {
            let error = match parse("a", url, &no_env) {
                Ok(_) => panic!("{url} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(error.contains(named), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("mysql://u:secret@h:3306/d?ssl-mode=REQUIRED"),
            "mysql://u:***@h:3306/d?ssl-mode=REQUIRED"
        );
        assert_eq!(mask_password("mariadb://u@h/d"), "mariadb://u@h/d");
        for url in [
            "mysql://u:se/cret@h/d",
            "mysql://u:se?cret@h/d",
            "mysql://u:se@cret@h/d",
        ] {
            assert_eq!(mask_password(url), "mysql://u:***@h/d");
        }
    }
}
