//! A client may hit any instance for any request; revocations, rotation and
//! the login limits hold across instances (reference §7), directly and
//! through nginx.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::harness::*;

macro_rules! cluster_or_skip {
    ($test:literal) => {
        match test_cluster($test) {
            Some(base) => base,
            None => return,
        }
    };
}

#[actix_web::test]
async fn login_on_one_instance_refresh_on_another() {
    let pg = cluster_or_skip!("login_on_one_instance_refresh_on_another");
    let s = Stack::start(&pg, &[], false).await;
    let http = api_client(None);
    register(&http, &s.b.base, "alice").await;
    let first = login_pair(&http, &s.a.base, "alice").await;

    let res = bearer_post(&http, &s.b.url("/token/refresh"), &first.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "refresh on B of A's login");
    let second = Pair::from_json(&res.json().await.expect("json"));
    assert_ne!(second.refresh, first.refresh, "a new refresh token");
    assert_ne!(second.access, first.access, "a new access token");

    let res = bearer_get(&http, &s.a.url("/protected"), &second.access).await;
    assert_eq!(res.status(), StatusCode::OK, "B's access token on A");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, json!({ "logged_in_as": "alice" }));
    // And B's refresh token rotates on A.
    let res = bearer_post(&http, &s.a.url("/token/refresh"), &second.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "B's refresh token on A");
}

#[actix_web::test]
async fn a_logout_on_one_instance_holds_on_the_other_at_once() {
    let pg = cluster_or_skip!("a_logout_on_one_instance_holds_on_the_other_at_once");
    let s = Stack::start(&pg, &[], false).await;
    let http = api_client(None);
    register(&http, &s.a.base, "bob").await;
    for (one, other) in [(&s.a, &s.b), (&s.b, &s.a)] {
        let pair = login_pair(&http, &one.base, "bob").await;
        // Each instance has seen the session before the logout.
        let res = bearer_post(&http, &other.url("/token/refresh"), &pair.refresh).await;
        assert_eq!(res.status(), StatusCode::OK);
        let pair = Pair::from_json(&res.json().await.expect("json"));

        let res = bearer_post(&http, &one.url("/logout"), &pair.refresh).await;
        assert_eq!(
            res.status(),
            StatusCode::NO_CONTENT,
            "logout on {}",
            one.name
        );
        let res = bearer_post(&http, &other.url("/token/refresh"), &pair.refresh).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "a token logged out on {} refreshes on {}",
            one.name,
            other.name
        );
        let res = bearer_post(&http, &one.url("/token/refresh"), &pair.refresh).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn one_refresh_token_at_two_instances_at_once_rotates_once() {
    let pg = cluster_or_skip!("one_refresh_token_at_two_instances_at_once_rotates_once");
    let s = Stack::start(&pg, &[], false).await;
    // One client per instance, connected before the race starts, so the two
    // requests leave at the same moment.
    let (to_a, to_b) = (api_client(None), api_client(None));
    for (http, i) in [(&to_a, &s.a), (&to_b, &s.b)] {
        let res = http.get(i.url("/healthz")).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::OK);
    }
    register(&to_a, &s.a.base, "carol").await;
    let (url_a, url_b) = (s.a.url("/token/refresh"), s.b.url("/token/refresh"));
    for round in 0..8 {
        let pair = login_pair(&to_a, &s.a.base, "carol").await;
        let (ra, rb) = tokio::join!(
            bearer_post(&to_a, &url_a, &pair.refresh),
            bearer_post(&to_b, &url_b, &pair.refresh),
        );
        // Within REFRESH_REUSE_GRACE the second presenter gets the session's
        // current refresh token, the one the first received: one rotation.
        assert_eq!(
            (ra.status(), rb.status()),
            (StatusCode::OK, StatusCode::OK),
            "round {round}"
        );
        let pa = Pair::from_json(&ra.json().await.expect("json"));
        let pb = Pair::from_json(&rb.json().await.expect("json"));
        assert_eq!(
            pa.refresh, pb.refresh,
            "round {round}: two different refresh tokens from one"
        );
        assert_ne!(pa.refresh, pair.refresh);
        for (access, i) in [(&pa.access, &s.b), (&pb.access, &s.a)] {
            let res = bearer_get(&to_a, &i.url("/protected"), access).await;
            assert_eq!(res.status(), StatusCode::OK, "round {round}");
        }
        // The one new refresh token rotates once more, on either instance.
        let res = bearer_post(&to_b, &s.b.url("/token/refresh"), &pa.refresh).await;
        assert_eq!(res.status(), StatusCode::OK, "round {round}: the new token");
    }
}

async fn assert_locked(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry = res
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry.is_some_and(|s| s > 0),
        "{what}: Retry-After {retry:?}"
    );
}

#[actix_web::test]
async fn the_login_limit_counts_across_instances() {
    let pg = cluster_or_skip!("the_login_limit_counts_across_instances");
    let s = Stack::start(&pg, &[("LOGIN_MAX_FAILURES", "3")], false).await;
    let http = api_client(None);
    register(&http, &s.a.base, "dave").await;
    for i in [&s.a, &s.b, &s.a] {
        let res = login(&http, &i.base, "dave", "wrong-password-1").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "on {}", i.name);
    }
    // The fourth attempt, on either instance, the right password included.
    assert_locked(login(&http, &s.b.base, "dave", PASSWORD).await, "B").await;
    assert_locked(login(&http, &s.a.base, "Dave", PASSWORD).await, "A").await;
}

/// Through nginx the client is the address nginx saw (in X-Forwarded-For),
/// whatever X-Forwarded-For the client sent.
#[actix_web::test]
async fn through_nginx_the_limit_counts_the_real_client() {
    let pg = cluster_or_skip!("through_nginx_the_limit_counts_the_real_client");
    if !nginx_available("through_nginx_the_limit_counts_the_real_client") {
        return;
    }
    let s = Stack::start(&pg, &[("LOGIN_MAX_FAILURES", "3")], true).await;
    let nginx = &s.nginx().base;
    let client = Ipv4Addr::new(127, 0, 0, 7);
    let via = api_client(Some(client));
    register(&via, nginx, "erin").await;
    for n in 1..=3 {
        let res = via
            .post(format!("{nginx}/login"))
            .header("X-Forwarded-For", format!("203.0.113.{n}"))
            .json(&json!({ "username": "erin", "password": "wrong-password-1" }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let res = via
        .post(format!("{nginx}/login"))
        .header("X-Forwarded-For", "198.51.100.1")
        .json(&json!({ "username": "erin", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_locked(res, "through nginx, with yet another forged address").await;

    // Directly from the trusted proxy's address: X-Forwarded-For is believed.
    let direct = api_client(None);
    for i in [&s.a, &s.b] {
        let res = direct
            .post(i.url("/login"))
            .header("X-Forwarded-For", client.to_string())
            .json(&json!({ "username": "erin", "password": PASSWORD }))
            .send()
            .await
            .expect("request");
        assert_locked(res, &format!("as {client} on {}", i.name)).await;
    }
    // The forged addresses were never charged, nor was another client.
    let res = direct
        .post(s.a.url("/login"))
        .header("X-Forwarded-For", "203.0.113.1")
        .json(&json!({ "username": "erin", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "as the forged 203.0.113.1");
    let other = api_client(Some(Ipv4Addr::new(127, 0, 0, 8)));
    let res = login(&other, nginx, "erin", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "another client through nginx");
}

#[actix_web::test]
async fn a_browser_through_nginx_is_served_by_both_instances() {
    let pg = cluster_or_skip!("a_browser_through_nginx_is_served_by_both_instances");
    if !nginx_available("a_browser_through_nginx_is_served_by_both_instances") {
        return;
    }
    let s = Stack::start(&pg, &[], true).await;
    let nginx = s.nginx();
    register(&api_client(None), &nginx.base, "frank").await;

    let browser = browser();
    form_login(&browser, &nginx.base, "frank").await;

    for n in 0..6 {
        let res = browser
            .get(nginx.url("/protected"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK, "page {n} through nginx");
        let html = res.text().await.expect("body");
        assert!(html.contains("Logged in as frank"), "page {n}");
    }
    // nginx spread the pages over both instances.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let served = [&s.a, &s.b].map(|i| logged_requests(i, "GET", "/protected"));
        if served.iter().all(|&n| n > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "GET /protected served by A and B: {served:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // nginx refuses a body over 16 KiB itself, as the instances would; a
    // body of exactly 16 KiB reaches them.
    let big = format!("{{\"username\":\"{}\"}}", "x".repeat(20 * 1024));
    let res = api_client(None)
        .post(nginx.url("/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.expect("a JSON error");
    assert!(body["error"].is_string(), "{body}");
    let padding = 16 * 1024 - r#"{"username":"","password":"x"}"#.len();
    let exact = format!(r#"{{"username":"{}","password":"x"}}"#, "u".repeat(padding));
    assert_eq!(exact.len(), 16 * 1024);
    let res = api_client(None)
        .post(nginx.url("/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(exact)
        .send()
        .await
        .expect("request");
    assert_ne!(
        res.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "16 KiB exactly"
    );
    assert!(res.status().is_client_error(), "{}", res.status());
}

/// Pruning runs on one instance at a time (reference §7): while another
/// process holds the pruning lock, an instance starting up skips its
/// start-up pruning and leaves the rows alone; once the lock is free, the
/// next one prunes them.
#[actix_web::test]
async fn pruning_runs_on_one_instance_at_a_time() {
    use diesel::{Connection, PgConnection, RunQueryDsl, connection::SimpleConnection};
    let pg = cluster_or_skip!("pruning_runs_on_one_instance_at_a_time");
    let url = crate::pg::fresh_database(&pg);
    let dir = tempfile::tempdir().expect("temp dir");
    let debug = [("RUST_LOG", "info,portcullis=debug")];
    // The first instance creates the schema.
    let first = Instance::start(dir.path(), "first", &url, &debug).await;
    let mut other = PgConnection::establish(&url).expect("the test database");
    // A limit counter whose window ended long ago: the pruning deletes it.
    other
        .batch_execute("INSERT INTO limit_counters (key, window_start, hits) VALUES ('old', 0, 1)")
        .expect("insert");
    let counters = |conn: &mut PgConnection| {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(*) AS n FROM limit_counters WHERE key = 'old'")
            .get_result::<N>(conn)
            .expect("count")
            .n
    };
    // Another instance is pruning: it holds the lock in an open transaction.
    let mut holder = PgConnection::establish(&url).expect("the test database");
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({});",
            portcullis::auth::accounts::PRUNE_LOCK
        ))
        .expect("the lock");
    let second = Instance::start(dir.path(), "second", &url, &debug).await;
    assert!(
        second
            .log_text()
            .contains("pruning skipped: another instance is pruning"),
        "{}",
        second.log_text()
    );
    assert_eq!(counters(&mut other), 1, "left alone while the lock is held");
    holder.batch_execute("COMMIT").expect("release");
    let third = Instance::start(dir.path(), "third", &url, &debug).await;
    assert!(
        !third.log_text().contains("pruning skipped"),
        "{}",
        third.log_text()
    );
    assert_eq!(counters(&mut other), 0, "pruned once the lock is free");
    drop((first, second, third));
}
