//! Connection settings shared with dwmon's other PostgreSQL clients (the PostgreSQL store,
//! `dwmon-postgres-store`): a connection string parsed as the source parses it — libpq's
//! `sslmode` with a rustls connector, the environment (`PGPASSWORD`, the password file) — and
//! the string with its password masked for logs.

use crate::error::Result;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Parses `connection` (a `postgres://` URL or a `key=value` string) into the configuration
/// tokio-postgres connects with and the TLS connector its `sslmode` asks for. What the string
/// leaves out comes from libpq's variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
/// `PGPASSWORD`, `PGPASSFILE` / `~/.pgpass`); `name` says whose settings they are in errors.
///
/// # Errors
/// [`Error::InvalidConnection`](crate::Error::InvalidConnection) for a string that does not
/// parse (the message never shows the password), [`Error::Tls`](crate::Error::Tls) when the
/// TLS settings cannot be set up.
pub fn client_config(
    name: &str,
    connection: &str,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let options = crate::tls::split_options(name, connection)?;
    let config = crate::source::parse_config(name, &options.connection)?;
    let tls = crate::tls::connector(name, &options)?;
    Ok((config, tls))
}

/// `connection` with its password replaced by `***` (`postgres://u:***@host/db`,
/// `password=***`), for start lines and errors.
pub fn mask_password(connection: &str) -> String {
    crate::source::mask_password(connection)
}
