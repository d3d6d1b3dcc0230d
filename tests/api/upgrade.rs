//! Upgrading keeps sessions (reference §4): a database made by the release
//! that stored one row per refresh token is migrated in place at start-up;
//! every live session stays live, its current refresh token keeps working,
//! and its retired tokens, replayed after the upgrade, still revoke it.

use diesel::migration::MigrationSource;
use diesel::{Connection, RunQueryDsl, connection::SimpleConnection, sqlite::SqliteConnection};
use diesel_migrations::MigrationHarness;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The first migration after the release that stored a row per token.
const OLD_SCHEMA_BEFORE: &str = "2026-12-01";

/// A token exactly as the old release signed it: no `generation` claim.
fn old_refresh_token(jti: &str, sid: &str, iat: i64, exp: i64) -> String {
    let claims = json!({
        "sub": "1", "username": "alice", "role": "user", "type": "refresh",
        "iat": iat, "exp": exp, "jti": jti, "sid": sid,
    });
    jwt::signed("HS256", &claims, SECRET.as_bytes())
}

/// Builds the old schema with the old migrations and fills it as the old
/// release would have: alice, and three sessions.
fn old_database(path: &std::path::Path, now: i64) {
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let migrations =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&portcullis::db::SQLITE_MIGRATIONS)
            .unwrap();
    let old: Vec<_> = migrations
        .iter()
        .filter(|m| m.name().to_string().as_str() < OLD_SCHEMA_BEFORE)
        .collect();
    assert_eq!(
        old.len(),
        3,
        "the old release had three migrations: {:?}",
        migrations
            .iter()
            .map(|m| m.name().to_string())
            .collect::<Vec<_>>()
    );
    // Creates diesel's bookkeeping table, as the old release's start-up did.
    assert!(conn.applied_migrations().unwrap().is_empty());
    for m in old {
        conn.run_migration(&**m).unwrap();
    }
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let ttl = 14 * 24 * 3600;
    let sql = format!(
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
           VALUES (1, 'alice', '{hash}', 'user', 0, {t0});
         INSERT INTO refresh_families VALUES \
           ('live', 1, {t0}, {t2}, 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0', '10.0.0.1', NULL),
           ('robbed', 1, {t0}, {t2}, 'curl/8', '10.0.0.2', NULL),
           ('ended', 1, {t0}, {t1}, 'curl/8', '10.0.0.3', {t1});
         INSERT INTO refresh_tokens VALUES \
           ('live-1', 'live', 1, {t0}, {t0e}, {t1}),
           ('live-2', 'live', 1, {t1}, {t1e}, {t2}),
           ('live-3', 'live', 1, {t2}, {t2e}, NULL),
           ('robbed-1', 'robbed', 1, {t0}, {t0e}, {t1}),
           ('robbed-2', 'robbed', 1, {t1}, {t1e}, NULL),
           ('ended-1', 'ended', 1, {t0}, {t0e}, NULL);",
        t0 = now - 300,
        t1 = now - 200,
        t2 = now - 100,
        t0e = now - 300 + ttl,
        t1e = now - 200 + ttl,
        t2e = now - 100 + ttl,
    );
    conn.batch_execute(&sql).unwrap();
}

fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db();
    diesel::sql_query(sql).get_result::<N>(&mut conn).unwrap().n
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app.bearer_post("/token/refresh", token).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn an_old_database_is_upgraded_in_place_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let now = chrono::Utc::now().timestamp();
    old_database(&path, now);
    let ttl = 14 * 24 * 3600;
    let token = |jti: &str, sid: &str, iat: i64| old_refresh_token(jti, sid, iat, iat + ttl);

    let db = path.display().to_string();
    let app = spawn_app_with(&[("DATABASE_URL", &db), ("REFRESH_REUSE_GRACE", "0")]).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ('refresh_tokens', 'refresh_families')"
        ),
        0,
        "the old tables are gone"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM sessions"), 3);

    // The live session's current token still works, and keeps rotating.
    let (status, body) = refresh(&app, &token("live-3", "live", now - 100)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&app, &next).await;
    assert_eq!(status, StatusCode::OK);
    let newest = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        app.bearer_get("/protected", access).await.status(),
        StatusCode::OK
    );

    // A retired token of another session, replayed after the upgrade, is
    // reuse: that session ends, its current token with it.
    let (status, _) = refresh(&app, &token("robbed-1", "robbed", now - 300)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &token("robbed-2", "robbed", now - 200)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the robbed session is revoked"
    );
    // A session ended before the upgrade stays ended.
    let (status, _) = refresh(&app, &token("ended-1", "ended", now - 300)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The upgraded live session was untouched by all that, and a retired
    // token of it after the upgrade revokes it too.
    let (status, _) = refresh(&app, &token("live-2", "live", now - 200)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &newest).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reuse revoked the live session"
    );
    assert_eq!(live_sessions(&app, 1), 0);
    // Logging in works as ever, and storage stays one row per session.
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM sessions"), 4);
}

#[actix_web::test]
async fn an_upgraded_session_is_listed_and_its_old_token_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let now = chrono::Utc::now().timestamp();
    old_database(&path, now);
    let db = path.display().to_string();
    let app = spawn_app_with(&[("DATABASE_URL", &db)]).await;
    assert_eq!(live_sessions(&app, 1), 2, "live and robbed");
    let old = old_refresh_token("live-3", "live", now - 100, now - 100 + 14 * 24 * 3600);
    assert_eq!(
        app.bearer_post("/logout", &old).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(live_sessions(&app, 1), 1);
}

#[actix_web::test]
async fn a_thousand_refreshes_of_one_session_keep_one_row() {
    let app = spawn_app().await;
    let (_, mut token) = app.api_user("alice").await;
    for _ in 0..1000 {
        let (status, body) = refresh(&app, &token).await;
        assert_eq!(status, StatusCode::OK);
        token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM sessions"), 1);
}
