//! `dwmon token create|list|rotate|revoke`: the tokens of push checkers and the API, kept
//! in their own tables of the `--store` file (see [`dwmon_server::tokens`]).

use crate::cli::{TokenAction, TokenArgs};
use crate::{App, Error, Result};
use dwmon_server::tokens::{IssuedToken, Scope, SqliteTokenStore, TokenInfo, TokenStore};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The token store of the `--store` file; the dwmon store is opened (created) first, since
/// it refuses a new file that already holds tables of others.
pub(crate) fn token_store_for(path: &Path) -> Result<SqliteTokenStore> {
    crate::commands::open_sqlite_store(path)?;
    Ok(SqliteTokenStore::open(path)?)
}

/// `dwmon token ...`.
pub(crate) async fn token(_app: &App, args: &TokenArgs) -> Result<ExitCode> {
    let path = args.store.as_deref().ok_or_else(|| {
        Error::Usage("dwmon token needs --store FILE: tokens are kept in the store file".into())
    })?;
    let tokens = token_store_for(path)?;
    let now = chrono::Utc::now().timestamp();
    let mut out = std::io::stdout().lock();
    match &args.action {
        TokenAction::Create { scope, label } => {
            let scope = Scope::parse(scope)?;
            let label = label.replace(['\n', '\r'], " ");
            let issued = tokens.create(scope, &label, now).await?;
            print_issued(&mut out, &issued);
        }
        TokenAction::Rotate { id } => {
            let issued = tokens.rotate(id, now).await?;
            print_issued(&mut out, &issued);
        }
        TokenAction::Revoke { id } => {
            tokens.revoke(id).await?;
            let _ = writeln!(out, "revoked token {id}");
        }
        TokenAction::List { json } => {
            for info in tokens.list().await? {
                let _ = if *json {
                    writeln!(out, "{}", info_json(&info))
                } else {
                    writeln!(out, "{}", info_line(&info))
                };
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_issued(out: &mut impl std::io::Write, issued: &IssuedToken) {
    // The token on a line of its own (scripts: `TOKEN=$(dwmon token create ... | head -1)`),
    // the explanation on stderr.
    let _ = writeln!(out, "{}", issued.token.expose());
    eprintln!(
        "token {} ({}{}): shown once, only its hash is stored",
        issued.info.id,
        issued.info.scope,
        if issued.info.label.is_empty() {
            String::new()
        } else {
            format!(", {:?}", issued.info.label)
        }
    );
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

fn info_line(info: &TokenInfo) -> String {
    let rotated = info
        .rotated_at
        .map(|t| format!("  rotated {}", rfc3339(t)))
        .unwrap_or_default();
    format!(
        "{}  {}  {}  created {}{rotated}  {}",
        info.id,
        info.masked(),
        info.scope,
        rfc3339(info.created_at),
        info.label
    )
}

fn info_json(info: &TokenInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.id,
        "token": info.masked(),
        "scope": info.scope.to_string(),
        "label": info.label,
        "created_at": info.created_at,
        "rotated_at": info.rotated_at,
    })
}
