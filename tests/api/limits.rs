//! The limits of reference §6 over HTTP: they hold under concurrency, count
//! per client across usernames, group an IPv6 client by its /64, limit
//! registrations, and count wrong current passwords as failed logins.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

/// A JSON login as the client `ip` behind a trusted proxy (`127.0.0.1`).
async fn login_from(app: &TestApp, ip: &str, username: &str, password: &str) -> StatusCode {
    app.client
        .http
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("request")
        .status()
}

async fn register_from(app: &TestApp, ip: &str, username: &str) -> reqwest::Response {
    app.client
        .http
        .post(app.url("/register"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("request")
}

#[actix_web::test]
async fn a_burst_of_wrong_passwords_checks_at_most_the_limit() {
    // Cost 8: each check takes milliseconds, so without a reservation the
    // whole burst would be checked before the first failure is counted.
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "5"), ("BCRYPT_COST", "8")]).await;
    assert_eq!(
        app.api_register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let burst =
        (0..40).map(|_| async { app.api_login("alice", "wrong-password-1").await.status() });
    let statuses = futures_util::future::join_all(burst).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked, 5, "exactly the limit was checked: {statuses:?}");
    assert_eq!(refused, 35);
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked, right password too"
    );
    assert!(res.headers().contains_key(header::RETRY_AFTER));
}

#[actix_web::test]
async fn one_client_spraying_many_usernames_is_stopped_by_its_budget() {
    let app = spawn_app_with(&[
        ("LOGIN_MAX_FAILURES_PER_IP", "5"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    app.api_register("victim", PASSWORD).await;
    for i in 0..5 {
        assert_eq!(
            login_from(&app, "198.51.100.7", &format!("user{i}"), "Password123").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Every further attempt from that client is refused, any username, the
    // right password included...
    assert_eq!(
        login_from(&app, "198.51.100.7", "victim", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...while another client is not affected.
    assert_eq!(
        login_from(&app, "198.51.100.8", "victim", PASSWORD).await,
        StatusCode::OK
    );
    // The browser face says so on the form, with Retry-After.
    let browser = app.new_client();
    let token = browser.csrf_token().await;
    let res = browser
        .http
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[
            ("username", "victim"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );
}

#[actix_web::test]
async fn an_ipv6_client_counts_by_its_64() {
    let app = spawn_app_with(&[
        ("LOGIN_MAX_FAILURES", "2"),
        ("TRUSTED_PROXIES", "127.0.0.0/8, ::1"),
    ])
    .await;
    app.api_register("alice", PASSWORD).await;
    // Two addresses of one /64 share one count.
    for ip in ["2001:db8:5:6::1", "2001:db8:5:6:ffff:1:2:3"] {
        assert_eq!(
            login_from(&app, ip, "alice", "wrong-password-1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&app, "2001:db8:5:6::99", "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The neighbouring /64 is another client.
    assert_eq!(
        login_from(&app, "2001:db8:5:7::1", "alice", PASSWORD).await,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn registrations_are_limited_per_client_per_hour() {
    let app = spawn_app_with(&[
        ("REGISTER_MAX_PER_IP", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    for i in 0..3 {
        assert_eq!(
            register_from(&app, "203.0.113.5", &format!("new{i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let res = register_from(&app, "203.0.113.5", "new3").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait));
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string());
    // A taken name still counts: it is an attempt like any other.
    assert_eq!(
        register_from(&app, "203.0.113.6", "new0").await.status(),
        StatusCode::CONFLICT
    );
    // Another client registers; the limited one may again an hour later.
    assert_eq!(
        register_from(&app, "203.0.113.6", "other").await.status(),
        StatusCode::CREATED
    );
    app.clock.advance(3600);
    assert_eq!(
        register_from(&app, "203.0.113.5", "new3").await.status(),
        StatusCode::CREATED
    );
    assert!(
        login_from(&app, "192.0.2.1", "new3", PASSWORD)
            .await
            .is_success()
    );
}

#[actix_web::test]
async fn the_registration_form_answers_429_too() {
    let app = spawn_app_with(&[("REGISTER_MAX_PER_IP", "1")]).await;
    assert_redirect_to(
        &app.new_client().register("first", PASSWORD).await,
        "/protected",
    );
    let res = app.new_client().register("second", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(res.text().await.unwrap().contains("Too many new accounts"));
}

#[actix_web::test]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let browser = app.logged_in_user("alice").await;
    let new = "n3w-Sh1ny-passphrase";
    for _ in 0..3 {
        let res = browser.change_password("not-my-password", new).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Locked: the right current password is refused too, on the form...
    let res = browser.change_password(PASSWORD, new).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Too many wrong passwords")
    );
    // ...and at the login of that user from this client.
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The window passes; the password never changed.
    app.clock.advance(900);
    assert_eq!(
        app.api_login("alice", new).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn a_login_rehashes_a_password_stored_at_another_cost() {
    let app = spawn_app_with(&[("BCRYPT_COST", "5")]).await;
    // An account made by an older configuration, at cost 4.
    let out = run_cli(&app.database_url, &["create-admin", "root"], Some(PASSWORD));
    assert!(out.status.success());
    assert_eq!(stored_cost(&app, "root"), 4);
    assert_eq!(
        app.api_login("root", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(stored_cost(&app, "root"), 5, "re-hashed at BCRYPT_COST");
    assert_eq!(
        app.api_login("root", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.api_login("root", "wrong-password-1").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn stored_cost(app: &TestApp, username: &str) -> u32 {
    use diesel::{RunQueryDsl, sql_types::Text};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    let mut conn = app.db();
    let row = diesel::sql_query(format!(
        "SELECT password_hash FROM users WHERE username = '{username}'"
    ))
    .get_result::<Row>(&mut conn)
    .unwrap();
    row.password_hash
        .split('$')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn an_ipv4_mapped_peer_is_its_ipv4_address() {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    let dual_stack = std::net::TcpListener::bind("[::]:0")
        .and_then(|listener| {
            let port = listener.local_addr()?.port();
            std::net::TcpStream::connect(("127.0.0.1", port))
        })
        .is_ok();
    if !dual_stack {
        eprintln!("SKIPPED: no dual-stack IPv6 listener on this machine");
        return;
    }
    let app = spawn_app_with(&[
        ("BIND_ADDR", "[::]:0"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("LOGIN_MAX_FAILURES", "1"),
    ])
    .await;
    app.api_register("alice", PASSWORD).await;
    // The peer ::ffff:127.0.0.1 is the trusted 127.0.0.1, so the forwarded
    // client is believed: two clients, two separate counts.
    assert_eq!(
        login_from(&app, "198.51.100.1", "alice", "wrong-password-1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&app, "198.51.100.1", "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, "198.51.100.2", "alice", PASSWORD).await,
        StatusCode::OK
    );
}
