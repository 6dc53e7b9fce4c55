//! libpq's environment for connection strings: `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
//! `PGPASSWORD` and the password file (`PGPASSFILE`, default `~/.pgpass`), so a password
//! never needs to be written in a URL or on a command line.
//!
//! As in libpq, what the connection string says wins; a variable only fills what it leaves
//! out, and the password file is read only when neither gives a password.

use std::path::{Path, PathBuf};
use tokio_postgres::config::Host;

/// Fills what `config` leaves out from the environment (`env` looks a variable up).
pub(crate) fn apply(config: &mut tokio_postgres::Config, env: &dyn Fn(&str) -> Option<String>) {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        if let Some(hosts) = var("PGHOST") {
            for host in hosts.split(',') {
                config.host(host);
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(port) = var("PGPORT").and_then(|p| p.parse::<u16>().ok()) {
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        if let Some(user) = var("PGUSER").or_else(|| var("USER")) {
            config.user(user);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(db) = var("PGDATABASE") {
            config.dbname(db);
        }
    }
    if config.get_password().is_some() {
        return;
    }
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
        return;
    }
    let file = var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".pgpass")));
    let Some(file) = file else { return };
    if let Some(password) = from_passfile(config, &file) {
        config.password(password);
    }
}

/// The password of the first line of the password file matching `config`'s first host, port,
/// database and user. A file readable by group or others is ignored, as libpq does.
fn from_passfile(config: &tokio_postgres::Config, file: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                "password file has group or world access; ignored (chmod 0600 it)"
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    lookup(&text, &host, &port, db, user)
}

/// The `.pgpass` lookup: `host:port:database:user:password` lines, `*` matches anything,
/// `\:` and `\\` escape, `#` starts a comment line.
pub(crate) fn lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &str, value: &str| field == "*" || field == value;
            (matches(h, host) && matches(p, port) && matches(d, db) && matches(u, user))
                .then(|| password.clone())
        })
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text =
            "# comment\nother:5432:*:u:no\ndb.example:*:wh:dwmon:s3\\:cr\\\\et\n*:*:*:*:any\n";
        assert_eq!(
            lookup(text, "db.example", "5432", "wh", "dwmon").as_deref(),
            Some("s3:cr\\et")
        );
        assert_eq!(lookup(text, "x", "1", "d", "u").as_deref(), Some("any"));
        assert_eq!(lookup("h:5432:d:u:p\n", "h", "5433", "d", "u"), None);
    }

    #[test]
    fn variables_fill_only_what_the_url_leaves_out() {
        let mut config: tokio_postgres::Config = "postgres://alice@h1/db1".parse().unwrap();
        apply(
            &mut config,
            &env(&[
                ("PGHOST", "h2"),
                ("PGUSER", "bob"),
                ("PGPORT", "6543"),
                ("PGPASSWORD", "pw"),
            ]),
        );
        assert_eq!(config.get_hosts(), &[Host::Tcp("h1".into())]);
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
        let mut key_value: tokio_postgres::Config = "dbname=db1".parse().unwrap();
        apply(
            &mut key_value,
            &env(&[("PGHOST", "h2"), ("PGPORT", "6543")]),
        );
        assert_eq!(key_value.get_hosts(), &[Host::Tcp("h2".into())]);
        assert_eq!(key_value.get_ports(), &[6543]);
        let mut with_password: tokio_postgres::Config =
            "postgres://alice:url@h1/db1".parse().unwrap();
        apply(&mut with_password, &env(&[("PGPASSWORD", "pw")]));
        assert_eq!(with_password.get_password(), Some(&b"url"[..]));
    }

    #[test]
    fn the_password_file_is_read_when_no_password_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "h1:5432:db1:alice:fromfile\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let path = file.display().to_string();
        let mut config: tokio_postgres::Config = "postgres://alice@h1/db1".parse().unwrap();
        apply(&mut config, &env(&[("PGPASSFILE", &path)]));
        assert_eq!(config.get_password(), Some(&b"fromfile"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let mut open: tokio_postgres::Config = "postgres://alice@h1/db1".parse().unwrap();
            apply(&mut open, &env(&[("PGPASSFILE", &path)]));
            assert_eq!(
                open.get_password(),
                None,
                "a world-readable file is ignored"
            );
        }
    }
}
