//! The attack suite (reference §4, §6): each security claim backed by a test that
//! attacks the running app, on the cookie and the Bearer path where both apply.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::net::{IpAddr, Ipv4Addr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use diesel::RunQueryDsl;
use helpers::*;
use portcullis::db::DbConn;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn user_count(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db();
    diesel::sql_query("SELECT COUNT(*) AS n FROM users")
        .get_result::<N>(&mut conn)
        .unwrap()
        .n
}

// ---------------------------------------------------------------- tokens

fn valid_claims() -> Value {
    json!({
        "sub": "1", "username": "alice", "role": "user", "type": "access",
        "iat": now(), "exp": now() + 600, "jti": "attack", "sid": "attack",
    })
}

fn hmac(alg: &str, claims: &Value, key: &[u8]) -> String {
    jwt::signed(alg, claims, key)
}

/// A token with an arbitrary header (RS256, ES256, …) but an HMAC-SHA256
/// signature made with the server's key: the classic key-confusion forgery.
fn forged_header(header: &Value, claims: &Value) -> String {
    jwt::hmac_token("HS256", header, claims, SECRET.as_bytes())
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let res = app.bearer_get("/protected", token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}: Bearer");
    let browser = app.new_client();
    browser.set_cookie("access_token", token);
    let res = browser.get("/protected").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}: cookie");
}

#[actix_web::test]
async fn forged_and_malformed_tokens_are_refused_on_both_paths() {
    let app = spawn_app().await;
    app.api_user("alice").await;
    let claims = valid_claims();
    // The control: a correctly signed token is accepted on both paths.
    let good = hmac("HS256", &claims, SECRET.as_bytes());
    assert_eq!(
        app.bearer_get("/protected", &good).await.status(),
        StatusCode::OK
    );

    for alg in ["none", "None", "NONE", "nOnE"] {
        assert_refused(
            &app,
            &unsigned(&json!({"alg": alg, "typ": "JWT"}), &claims),
            alg,
        )
        .await;
        // "none" with a (meaningless) signature attached.
        let with_sig = format!("{}{}", unsigned(&json!({"alg": alg}), &claims), "c2ln");
        assert_refused(&app, &with_sig, &format!("{alg} + signature")).await;
    }
    let (head_payload, _) = good.rsplit_once('.').unwrap();
    assert_refused(&app, &format!("{head_payload}."), "empty signature").await;
    assert_refused(&app, head_payload, "no signature part").await;
    assert_refused(
        &app,
        &hmac("HS256", &claims, b"another-key-another-key-another-key!"),
        "another key",
    )
    .await;
    assert_refused(&app, &hmac("HS384", &claims, SECRET.as_bytes()), "HS384").await;
    assert_refused(&app, &hmac("HS512", &claims, SECRET.as_bytes()), "HS512").await;
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        let token = forged_header(&json!({"alg": alg, "typ": "JWT"}), &claims);
        assert_refused(&app, &token, &format!("{alg} header, HMAC signature")).await;
    }
    let zero_sig = format!(
        "{}.{}.{}",
        B64.encode(json!({"alg":"ES256"}).to_string()),
        B64.encode(claims.to_string()),
        B64.encode([0u8; 64])
    );
    assert_refused(&app, &zero_sig, "ES256 r = s = 0").await;

    // Payload tampered under the original signature: become admin, or someone else.
    let (head, rest) = good.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    for (key, value) in [
        ("role", json!("admin")),
        ("sub", json!("2")),
        ("exp", json!(now() + 99_999)),
    ] {
        let mut tampered = claims.clone();
        tampered[key] = value;
        let token = format!("{head}.{}.{sig}", B64.encode(tampered.to_string()));
        assert_refused(&app, &token, &format!("tampered {key}")).await;
    }

    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 60);
    assert_refused(&app, &hmac("HS256", &expired, SECRET.as_bytes()), "expired").await;
    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(now() + 600);
    assert_refused(
        &app,
        &hmac("HS256", &not_yet, SECRET.as_bytes()),
        "nbf in the future",
    )
    .await;
    for missing in ["exp", "type", "sub"] {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(missing);
        assert_refused(
            &app,
            &hmac("HS256", &c, SECRET.as_bytes()),
            &format!("missing {missing}"),
        )
        .await;
    }
    for wrong in [json!("refresh"), json!("ACCESS"), json!(""), json!(1)] {
        let mut c = claims.clone();
        c["type"] = wrong.clone();
        assert_refused(
            &app,
            &hmac("HS256", &c, SECRET.as_bytes()),
            &format!("type {wrong}"),
        )
        .await;
    }
    let long = format!("Bearer {}", "A".repeat(10_000));
    let junk: [&[u8]; 8] = [
        b"Bearer",
        b"Bearer a",
        b"Bearer a.b",
        b"bearer a.b.c",
        b"Bearer ....",
        b"Bearer \xff\xfe.\xff",
        b"BEARER   ",
        long.as_bytes(),
    ];
    for value in junk {
        let res = app
            .client
            .http
            .get(app.url("/protected"))
            .header(
                header::AUTHORIZATION,
                header::HeaderValue::from_bytes(value).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{:?}",
            String::from_utf8_lossy(&value[..value.len().min(20)])
        );
        assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    }
}

#[actix_web::test]
async fn a_token_in_the_query_string_is_ignored() {
    let app = spawn_app().await;
    let (access, _) = app.api_user("alice").await;
    for param in ["access_token", "token", "jwt", "authorization"] {
        let res = app
            .client
            .get(&format!("/protected?{param}={access}"))
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{param}");
        let res = app
            .client
            .http
            .get(app.url(&format!("/protected?{param}={access}")))
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{param}");
    }
}

#[actix_web::test]
async fn a_deleted_user_gets_no_new_tokens_and_no_admin_pages() {
    let app = spawn_app().await;
    let admin = app.logged_in_admin("root").await;
    let body: Value = app.api_login("root", PASSWORD).await.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
    let mut conn = app.db();
    if let DbConn::Sqlite(_) = conn {
        diesel::sql_query("PRAGMA foreign_keys = ON")
            .execute(&mut conn)
            .unwrap();
    }
    diesel::sql_query("DELETE FROM users WHERE username = 'root'")
        .execute(&mut conn)
        .unwrap();
    // The admin page re-reads the user: gone, so the browser (whose access
    // token is still valid) is sent to log in and its token cookies expire.
    let res = admin.get("/admin").await;
    assert_redirect_to(&res, "/login?next=%2Fadmin");
    assert_eq!(
        set_cookie(&res, "refresh_token").unwrap().get("max-age"),
        Some("0")
    );
    assert_eq!(
        app.bearer_post("/token/refresh", &refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let browser = app.new_client();
    browser.set_cookie("refresh_token", &refresh);
    assert_eq!(
        browser.get("/protected").await.status(),
        StatusCode::SEE_OTHER
    );
}

// ---------------------------------------------------------------- throttling

#[actix_web::test]
async fn too_many_failures_lock_the_pair_even_for_the_right_password() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3"), ("LOGIN_FAILURE_WINDOW", "600")]).await;
    app.api_user("alice").await;
    for _ in 0..3 {
        assert_eq!(
            app.api_login("alice", "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = app.api_login("ALICE", PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password too, any case"
    );
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry));
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());

    // The HTML form is locked too, with a page and Retry-After.
    let res = app.client.login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );

    // Other usernames from this IP are unaffected.
    app.api_user("bob").await;
    assert_eq!(
        app.api_login("bob", PASSWORD).await.status(),
        StatusCode::OK
    );

    // The same username from another address is unaffected.
    let elsewhere = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let res = elsewhere
        .post(app.url("/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn unknown_usernames_count_and_a_success_resets_the_count() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    for _ in 0..2 {
        assert_eq!(
            app.api_login("ghost", "whatever-pw").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.api_login("ghost", "whatever-pw").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    app.api_user("alice").await;
    assert_eq!(
        app.api_login("alice", "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.api_login("alice", "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK,
        "count was reset"
    );
}

#[actix_web::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let untrusted = spawn_app_with(&[("LOGIN_MAX_FAILURES", "1")]).await;
    let login = |app: &TestApp, xff: &str| {
        app.client
            .http
            .post(app.url("/login"))
            .header("X-Forwarded-For", xff)
            .json(&json!({"username": "alice", "password": "wrong-password"}))
            .send()
    };
    assert_eq!(
        login(&untrusted, "10.0.0.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&untrusted, "10.0.0.2").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a forged X-Forwarded-For from an untrusted peer changes nothing"
    );

    let trusted = spawn_app_with(&[
        ("LOGIN_MAX_FAILURES", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(
        login(&trusted, "10.0.0.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&trusted, "10.0.0.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(&trusted, "10.0.0.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "behind a trusted proxy, each client has its own count"
    );
}

// ---------------------------------------------------------------- bodies and hostile input

#[actix_web::test]
async fn bodies_over_16_kib_are_refused_with_413() {
    let app = spawn_app().await;
    let big = "x".repeat(17 * 1024);
    let res = app
        .client
        .post_form("/login", &[("username", &big), ("password", "x")])
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<meta name=\"csrf-token\""),
        "a page for browsers"
    );
    let res = app
        .client
        .http
        .post(app.url("/login"))
        .json(&json!({"username": big, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
}

#[actix_web::test]
async fn malformed_bodies_are_400_in_the_right_face() {
    let app = spawn_app().await;
    let token = app.client.csrf_token().await;
    for body in [
        format!("username=%ff%fe&csrf_token={token}"),
        format!("csrf_token={token}&username=%zz"),
    ] {
        let res = app
            .client
            .http
            .post(app.url("/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("<meta name=\"csrf-token\"")
        );
    }
    let invalid_utf8: Vec<u8> = b"{\"username\": \"\xff\xfe\", \"password\": \"x\"}".to_vec();
    for body in [
        b"{".to_vec(),
        b"{\"username\": [1,2]}".to_vec(),
        invalid_utf8,
    ] {
        let res = app
            .client
            .http
            .post(app.url("/register"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    }
}

const HOSTILE: &[&str] = &[
    "' OR '1'='1",
    "admin'--",
    "\"; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "nul\u{0}byte",
    "\u{202e}evil",
    "ａｄｍｉｎ",
    "аdmin",
    "../../etc/passwd",
    "%00%0d%0a",
];

fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    values.push("a".repeat(10_000));
    values.push("<script>".repeat(1_000));
    values
}

/// Hostile values that are nevertheless valid passwords register `newuser`
/// once (a password may contain anything printable); every other request is
/// invalid and must create nobody.
fn users_expected(before: i64) -> i64 {
    let any_valid = hostile_values()
        .iter()
        .any(|v| portcullis::domain::Password::parse(v, "newuser").is_ok());
    before + i64::from(any_valid)
}

fn assert_not_reflected(html: &str, value: &str, context: &str) {
    for raw in ["<script>", "<img src=x"] {
        if value.contains(raw) {
            assert!(!html.contains(raw), "{context}: {raw} reflected unescaped");
        }
    }
}

#[actix_web::test]
async fn hostile_form_input_never_errors_is_never_reflected_and_creates_nobody() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("victim").await;
    let before = user_count(&app);
    for value in hostile_values() {
        let v = value.as_str();
        let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/register",
                vec![
                    ("username", v),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                ],
            ),
            (
                "/register",
                vec![
                    ("username", "newuser"),
                    ("password", v),
                    ("password_confirm", v),
                ],
            ),
            (
                "/login",
                vec![("username", v), ("password", v), ("next", v)],
            ),
            (
                "/account/password",
                vec![
                    ("current_password", v),
                    ("new_password", v),
                    ("new_password_confirm", v),
                ],
            ),
            ("/admin/users/1/role", vec![("role", v)]),
        ];
        for (path, fields) in attempts {
            let client = if path.starts_with("/account") || path.starts_with("/admin") {
                &browser
            } else {
                &app.client
            };
            let res = client.post_form(path, &fields).await;
            let status = res.status();
            assert!(!status.is_server_error(), "{path} {v:.30}: {status}");
            let html = res.text().await.unwrap();
            assert_not_reflected(&html, v, path);
        }
        let res = app
            .client
            .get(&format!("/login?next={}", urlencode(v)))
            .await;
        assert!(!res.status().is_server_error());
        assert_not_reflected(&res.text().await.unwrap(), v, "login next");
    }
    assert_eq!(
        user_count(&app),
        users_expected(before),
        "no user created by an invalid request"
    );
    // The victim's password still works: no hostile request changed it.
    assert_eq!(
        app.api_login("victim", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn hostile_api_input_never_errors_and_creates_nobody() {
    let app = spawn_app().await;
    let before = user_count(&app);
    for value in hostile_values() {
        for body in [
            json!({"username": value, "password": PASSWORD}),
            json!({"username": "newuser", "password": value}),
            json!({"username": value, "password": value}),
            json!({"username": 123, "password": null}),
        ] {
            for path in ["/register", "/login"] {
                let res = app
                    .client
                    .http
                    .post(app.url(path))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                assert!(!status.is_server_error(), "{path}: {status}");
                let text = res.text().await.unwrap();
                assert!(
                    serde_json::from_str::<Value>(&text).is_ok(),
                    "JSON answer: {text:.80}"
                );
            }
        }
        if reqwest::header::HeaderValue::from_str(&value).is_ok() {
            let res = app.bearer_get("/protected", &value).await;
            assert!(!res.status().is_server_error());
        }
    }
    assert_eq!(user_count(&app), users_expected(before));
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

// ---------------------------------------------------------------- headers, errors, logs

#[actix_web::test]
async fn every_html_and_auth_response_forbids_caching_and_framing() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let responses = vec![
        browser.get("/").await,
        browser.get("/account").await,
        app.api_login("alice", PASSWORD).await,
        browser.post_form("/token/refresh", &[]).await,
        app.new_client().login("alice", "wrong-password").await,
    ];
    for res in responses {
        let h = res.headers();
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{}", res.url());
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("content-security-policy"));
    }
}

#[actix_web::test]
async fn a_locked_database_is_a_503_not_a_500() {
    let app = spawn_app().await;
    let mut conn = app.db();
    // SQLite: the whole file; PostgreSQL: the table every registration reads.
    let lock = match conn {
        DbConn::Sqlite(_) => "BEGIN EXCLUSIVE",
        DbConn::Pg(_) => "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE",
    };
    diesel::connection::SimpleConnection::batch_execute(&mut conn, lock).unwrap();
    let res = app.api_register("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let res = app.client.register("bob", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<meta name=\"csrf-token\"")
    );
    diesel::sql_query("ROLLBACK").execute(&mut conn).unwrap();
    assert_eq!(
        app.api_register("alice", PASSWORD).await.status(),
        StatusCode::CREATED,
        "nothing lost, retry works"
    );
}

#[actix_web::test]
async fn logs_at_trace_level_never_contain_passwords_tokens_cookies_or_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = BinaryServer::start_logging_to(
        dir.path(),
        &[("JWT_SECRET_KEY", SECRET), ("RUST_LOG", "trace")],
        Some(&log),
    )
    .await;
    let mut secrets = vec![
        SECRET.to_owned(),
        PASSWORD.to_owned(),
        "Wr0ng-Guess-pw".to_owned(),
    ];

    // Browser: register, a failed login, login, refresh, logout.
    let browser = Client::new(&server.base);
    assert_redirect_to(&browser.register("alice", PASSWORD).await, "/protected");
    assert_eq!(
        browser.login("alice", "Wr0ng-Guess-pw").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_redirect_to(&browser.login("alice", PASSWORD).await, "/protected");
    secrets.push(browser.cookie("access_token").unwrap());
    secrets.push(browser.cookie("refresh_token").unwrap());
    secrets.push(browser.cookie("portcullis_session").unwrap());
    secrets.push(browser.csrf_token().await);
    let res = browser.post_form("/token/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    secrets.extend(set_cookies(&res).into_iter().map(|c| c.value));
    assert_redirect_to(&browser.post_form("/logout", &[]).await, "/");

    // API: login, protected, refresh, a reused token, logout.
    let tokens = server.api_login("alice", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    reqwest::Client::new()
        .get(format!("{}/protected", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let rotated: Value = server
        .bearer_post("/token/refresh", &refresh)
        .await
        .json()
        .await
        .unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    server.bearer_post("/logout", &new_refresh).await;
    secrets.extend([
        access,
        refresh,
        new_refresh,
        rotated["access_token"].as_str().unwrap().to_owned(),
    ]);
    assert!(server.stop("TERM").success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("login succeeded"),
        "the log was captured: {} bytes",
        text.len()
    );
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        // Tokens are long; a distinctive slice is enough to catch a leak.
        let probe = &secret[secret.len().saturating_sub(24)..];
        assert!(
            !text.contains(probe),
            "a secret leaked into the log: …{probe}"
        );
    }
    assert!(!text.to_ascii_lowercase().contains("authorization: bearer"));
}

#[actix_web::test]
async fn a_panicking_handler_gets_the_500_page_and_the_worker_survives() {
    use actix_web::{HttpResponse, web};
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route(
            "/boom",
            web::get().to(|| async { panic!("boom") as HttpResponse }),
        )
        .route(
            "/ok",
            web::get().to(|| async { HttpResponse::Ok().body("fine") }),
        );
    }
    // The shipped app and its whole middleware stack, plus two test routes.
    let app = spawn_app_with_routes(&[("COOKIE_SECURE", "true")], Some(routes)).await;
    let addr = app.addr.trim_start_matches("http://").to_owned();
    let http = reqwest::Client::new();
    let res = http
        .get(format!("http://{addr}/boom"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors")
    );
    assert!(
        res.headers().contains_key("strict-transport-security"),
        "the panic page has every security header, HSTS included"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("Something went wrong on our side."));
    assert!(
        html.contains("<html lang=\"en\">"),
        "the 500 page in the layout"
    );
    let res = http
        .get(format!("http://{addr}/boom"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    for _ in 0..3 {
        let res = http.get(format!("http://{addr}/ok")).send().await.unwrap();
        assert_eq!(
            res.text().await.unwrap(),
            "fine",
            "the workers are still serving"
        );
    }
}
