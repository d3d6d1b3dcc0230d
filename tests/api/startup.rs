//! The real binary: no-configuration start, settings errors, the generated
//! development key, WAL, graceful shutdown.

use diesel::{Connection, RunQueryDsl, sqlite::SqliteConnection};
use reqwest::StatusCode;

use crate::helpers::*;

#[actix_web::test]
async fn runs_with_no_configuration_and_keeps_its_generated_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]).await;
    assert!(
        dir.path().join("portcullis.db").exists(),
        "the default database file is created"
    );
    let client = Client::new(&server.base);
    assert_redirect_to(&client.register("alice", PASSWORD).await, "/protected");
    // Templates and CSS are compiled in: this cwd has neither.
    assert_eq!(
        client.get("/static/css/site.css").await.status(),
        StatusCode::OK
    );
    assert!(server.stop("TERM").success(), "SIGTERM exits 0");

    let server = BinaryServer::start(dir.path(), &[]).await;
    let client2 = Client::new(&server.base);
    client2.set_cookie("access_token", &client.cookie("access_token").unwrap());
    let res = client2.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK, "a restart logs nobody out");
}

#[actix_web::test]
async fn the_database_runs_in_wal_mode_and_the_cli_works_beside_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]).await;
    let db = dir.path().join("portcullis.db");
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
    drop(conn);
    let out = run_cli(
        &db.display().to_string(),
        &["create-admin", "root"],
        Some(PASSWORD),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = Client::new(&server.base);
    assert_redirect_to(&client.login("root", PASSWORD).await, "/protected");
    assert_eq!(client.get("/admin").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_env_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=from-dotenv.db\nACCESS_TOKEN_TTL=123\n",
    )
    .unwrap();
    let server = BinaryServer::start(dir.path(), &[("ACCESS_TOKEN_TTL", "77")]).await;
    assert!(dir.path().join("from-dotenv.db").exists());
    let client = Client::new(&server.base);
    let res = client.register("alice", PASSWORD).await;
    assert_eq!(
        set_cookie(&res, "access_token").unwrap().get("max-age"),
        Some("77")
    );
}

#[test]
fn a_bad_value_is_a_startup_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("BCRYPT_COST", "99"),
        ("ACCESS_TOKEN_TTL", "soon"),
        ("BIND_ADDR", "not-an-address"),
        ("COOKIE_SECURE", "perhaps"),
        ("RUST_LOG", "info,=[bad"),
    ] {
        let out = refuses(dir.path(), &[(var, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn production_refuses_to_start_without_a_long_enough_key() {
    let dir = tempfile::tempdir().unwrap();
    for key in [None, Some("too-short")] {
        let mut env = vec![("APP_ENV", "production")];
        if let Some(key) = key {
            env.push(("JWT_SECRET_KEY", key));
        }
        let out = refuses(dir.path(), &env);
        assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET_KEY"));
    }
    // A long enough JWT key is not enough: the session key is separate.
    let key = "k".repeat(48);
    let out = refuses(
        dir.path(),
        &[("APP_ENV", "production"), ("JWT_SECRET_KEY", &key)],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSION_KEY"));
}

#[test]
fn an_unusable_database_is_a_startup_error_naming_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let not_sqlite = dir.path().join("notes.txt");
    std::fs::write(
        &not_sqlite,
        "this is not a database, just some text that is long enough".repeat(20),
    )
    .unwrap();
    let missing_dir = dir.path().join("no/such/dir/app.db");
    for path in [not_sqlite, missing_dir] {
        let out = refuses(dir.path(), &[("DATABASE_URL", path.to_str().unwrap())]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn an_unreachable_postgresql_server_is_a_startup_error_with_the_password_masked() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://portcullis:hunter2-secret@127.0.0.1:1/portcullis";
    let out = refuses(dir.path(), &[("DATABASE_URL", url)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(
        stderr.contains("postgres://portcullis:***@127.0.0.1:1/portcullis"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password is never shown: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Needs a server (`PORTCULLIS_TEST_DATABASE_URL`); skipped without one.
#[test]
fn a_missing_postgresql_database_or_a_refused_login_is_a_startup_error() {
    let Some(base) = std::env::var("PORTCULLIS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("skipped: PORTCULLIS_TEST_DATABASE_URL is not set");
        return;
    };
    let base = base.trim().trim_end_matches('/');
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("{base}/portcullis_no_such_database");
    // A role that does not exist: refused however the server authenticates.
    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let stranger = format!("{scheme}://no_such_role:wrong-password@{host}/postgres");
    for url in [missing, stranger] {
        let out = refuses(dir.path(), &[("DATABASE_URL", &url)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
        assert!(!stderr.contains("wrong-password"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[actix_web::test]
async fn ctrl_c_stops_gracefully_with_exit_code_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]).await;
    assert!(server.stop("INT").success(), "SIGINT exits 0");
}

#[actix_web::test]
async fn an_answered_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[("JWT_SECRET_KEY", SECRET)]).await;
    let credentials = serde_json::json!({"username": "alice", "password": PASSWORD});
    assert_eq!(
        server.post_json("/register", &credentials).await.status(),
        StatusCode::CREATED
    );
    let tokens = server.api_login("alice", PASSWORD).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        server.bearer_post("/logout", refresh).await.status(),
        StatusCode::NO_CONTENT
    );
    // A rotation answered with 200 is committed: its new token is the live one.
    let other = server.api_login("alice", PASSWORD).await;
    let before = other["refresh_token"].as_str().unwrap().to_owned();
    let res = server.bearer_post("/token/refresh", &before).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: serde_json::Value = res.json().await.unwrap();
    let after = rotated["refresh_token"].as_str().unwrap().to_owned();
    server.stop("KILL");

    let server = BinaryServer::start(dir.path(), &[("JWT_SECRET_KEY", SECRET)]).await;
    server.api_login("alice", PASSWORD).await; // the user survived
    let res = server.bearer_post("/token/refresh", refresh).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the revocation survived"
    );
    assert_eq!(
        server.bearer_post("/token/refresh", &after).await.status(),
        StatusCode::OK,
        "the rotation survived"
    );
    // So did the audit events written with those changes.
    let db = dir.path().join("portcullis.db");
    let out = run_cli(db.to_str().unwrap(), &["audit", "--user", "alice"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        events.starts_with(&[
            "login_succeeded".into(),
            "logout".into(),
            "login_succeeded".into()
        ]),
        "{events:?}"
    );
}
