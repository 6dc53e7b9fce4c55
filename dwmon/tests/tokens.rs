//! `dwmon token create|list|rotate|revoke` on a store file.

mod common;

use common::*;

#[test]
fn tokens_are_shown_once_listed_masked_rotated_and_revoked() {
    let ws = Workspace::new();
    let store = ws.store();
    let created = run(&[
        "token",
        "create",
        "--store",
        &store,
        "--scope",
        "ping:backup",
        "--label",
        "nightly",
    ]);
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let token = stdout(&created).trim().to_string();
    assert!(token.starts_with("dw_") && token.len() == 46, "{token}");
    let id = token[3..13].to_string();

    let listed = run(&["token", "list", "--store", &store, "--json"]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let secret = &token[14..];
    assert!(
        !stdout(&listed).contains(secret),
        "list never shows the secret"
    );
    let lines = json_lines(&listed);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], id.as_str());
    assert_eq!(lines[0]["scope"], "ping:backup");
    assert_eq!(lines[0]["label"], "nightly");
    assert_eq!(lines[0]["token"], format!("dw_{id}_…").as_str());

    let rotated = run(&["token", "rotate", &id, "--store", &store]);
    assert_eq!(code(&rotated), 0, "{}", stderr(&rotated));
    let new_token = stdout(&rotated).trim().to_string();
    assert_ne!(new_token, token);
    assert!(new_token.starts_with(&format!("dw_{id}_")));

    let revoked = run(&["token", "revoke", &id, "--store", &store]);
    assert_eq!(code(&revoked), 0, "{}", stderr(&revoked));
    assert_eq!(stdout(&run(&["token", "list", "--store", &store])), "");
    let again = run(&["token", "revoke", &id, "--store", &store]);
    assert_eq!(code(&again), 2);
    assert!(
        stderr(&again).contains("no token with id"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_bad_scope_or_a_missing_store_is_a_usage_error() {
    let ws = Workspace::new();
    let store = ws.store();
    let bad = run(&["token", "create", "--store", &store, "--scope", "admin"]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("unknown token scope \"admin\""),
        "{}",
        stderr(&bad)
    );
    let no_store = run(&["token", "list"]);
    assert_eq!(code(&no_store), 2);
    assert!(
        stderr(&no_store).contains("--store FILE"),
        "{}",
        stderr(&no_store)
    );
}

fn api_get(url: &str, token: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers");
        answer.status().as_u16()
    })
}

/// Polls `status_of` every 20 ms until it is `wanted`; how long that took (at most 10 s).
fn time_until(wanted: u16, status_of: impl Fn() -> u16) -> std::time::Duration {
    let started = std::time::Instant::now();
    while status_of() != wanted {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still not {wanted}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    started.elapsed()
}

/// `dwmon serve` caches verified tokens (`CachedTokens`): a revocation or rotation by
/// another process (`dwmon token revoke|rotate`) takes effect within its 1 s recheck. The
/// deterministic bound is tested in `dwmon-server` with a paused clock; here the real
/// processes, with slack for a loaded machine.
#[test]
fn serve_accepts_the_stores_tokens_and_a_revoked_one_stops_within_a_second() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    ws.write_checker(
        "job",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    let (checkers, store, source) = (ws.checkers_arg(), ws.store(), ws.source_arg());
    let create = |scope: &str| {
        let out = run(&["token", "create", "--store", &store, "--scope", scope]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let (read, ping, rotated) = (create("read"), create("ping:events"), create("ping:job"));
    let now = T0.to_string();
    let served = serve(
        &[
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            &source,
            "--now",
            &now,
        ],
        &[],
    );
    let url = served.url("/api/v1/checkers");
    let ping_url = |token: &str| served.url(&format!("/ping/{token}"));
    let ping_get = |token: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(ping_url(token))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout)
            .parse::<u16>()
            .unwrap_or(0)
    };
    assert_eq!(api_get(&url, &read), 200);
    assert_eq!(api_get(&url, &ping), 401, "a ping token is no API token");
    assert_eq!(ping_get(&rotated), 200);
    assert_eq!(api_get(&url, &read), 200, "now from the cache");
    assert_eq!(ping_get(&rotated), 200, "now from the cache");

    let revoked = run(&["token", "revoke", &read[3..13], "--store", &store]);
    assert_eq!(code(&revoked), 0, "{}", stderr(&revoked));
    let waited = time_until(401, || api_get(&url, &read));
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "{waited:?}"
    );

    let out = run(&["token", "rotate", &rotated[3..13], "--store", &store]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let fresh = stdout(&out).trim().to_string();
    let waited = time_until(404, || ping_get(&rotated));
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "{waited:?}"
    );
    assert_eq!(ping_get(&fresh), 200, "the new secret works");
    assert_eq!(served.terminate(), 0);
}
