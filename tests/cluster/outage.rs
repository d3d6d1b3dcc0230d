//! The PostgreSQL server goes away under an instance and comes back
//! (reference §7): requests that need it get `503` (JSON for the API, a page
//! for a browser) quickly, nothing panics, the process stays up, requests
//! that need no database go on working, and once the server is back requests
//! succeed again.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::{harness::*, pg};

/// Each answer during the outage comes well within the contract's 30 s.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// How long the instance may take to serve again once the server is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

type Seen = Arc<Mutex<Vec<(Instant, u16)>>>;

/// Sends `request` in a loop until `stop`, recording each status (0: no answer).
fn load(
    stop: Arc<AtomicBool>,
    request: impl Fn() -> reqwest::RequestBuilder + 'static,
) -> (Seen, actix_web::rt::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let task = actix_web::rt::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let status = match request().send().await {
                Ok(res) => res.status().as_u16(),
                Err(_) => 0,
            };
            record.lock().expect("lock").push((Instant::now(), status));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (seen, task)
}

/// Waits until every loop recorded `status` after `since`.
async fn until_seen(loads: &[&Seen], status: u16, since: Instant, bound: Duration, what: &str) {
    let deadline = Instant::now() + bound;
    loop {
        let all = loads.iter().all(|seen| {
            seen.lock()
                .expect("lock")
                .iter()
                .any(|&(at, s)| at > since && s == status)
        });
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no {status} within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn timed(request: reqwest::RequestBuilder) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = request.send().await.expect("an answer");
    (res, started.elapsed())
}

async fn assert_api_503(request: reqwest::RequestBuilder, what: &str) {
    let (res, took) = timed(request).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(took < ANSWER_BOUND, "{what}: answered after {took:?}");
    let body: Value = res.json().await.expect("a JSON body");
    assert!(body["error"].is_string(), "{what}: {body}");
}

fn assert_healthy(instance: &mut Instance) {
    assert!(instance.alive(), "the instance exited");
    let log = instance.log_text();
    assert!(!log.contains("panicked"), "a panic in the log");
    assert!(!log.contains("status=500"), "a 500 in the log");
}

#[actix_web::test]
async fn requests_get_503_while_the_database_is_down_and_succeed_once_it_is_back() {
    let test = "requests_get_503_while_the_database_is_down_and_succeed_once_it_is_back";
    // It runs with the PostgreSQL run (a test cluster configured), but on a
    // cluster of its own, which it stops and starts.
    if test_cluster(test).is_none() || !PgCluster::available(test) {
        return;
    }
    let cluster = PgCluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = pg::fresh_database(&cluster.base);
    let mut app = Instance::start(dir.path(), "a", &url, &[]).await;
    let http = api_client(None);
    register(&http, &app.base, "hana").await;
    let pair = login_pair(&http, &app.base, "hana").await;
    let browser = browser();
    form_login(&browser, &app.base, "hana").await;
    let res = browser
        .get(app.url("/account"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "the account page");

    // Light load: two loops of logins (they need the database) and one of
    // Bearer pages (they do not).
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..2 {
        let (http, url) = (http.clone(), app.url("/login"));
        loops.push(load(stop.clone(), move || {
            http.post(&url)
                .json(&serde_json::json!({ "username": "hana", "password": PASSWORD }))
        }));
    }
    let (page, url, access) = (http.clone(), app.url("/protected"), pair.access.clone());
    loops.push(load(stop.clone(), move || {
        page.get(&url).bearer_auth(&access)
    }));
    let logins = [&loops[0].0, &loops[1].0];
    let start = Instant::now();
    until_seen(&logins, 200, start, ANSWER_BOUND, "logins before").await;
    until_seen(&[&loops[2].0], 200, start, ANSWER_BOUND, "pages before").await;

    cluster.stop();
    let down = Instant::now();
    assert_api_503(
        http.post(app.url("/token/refresh"))
            .bearer_auth(&pair.refresh),
        "a refresh",
    )
    .await;
    assert_api_503(
        http.post(app.url("/login"))
            .json(&serde_json::json!({ "username": "hana", "password": PASSWORD })),
        "an API login",
    )
    .await;
    let (res, took) = timed(browser.get(app.url("/account"))).await;
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the account page"
    );
    assert!(took < ANSWER_BOUND, "the account page after {took:?}");
    let html_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    assert!(html_type, "the account page's 503 is a page");
    let html = res.text().await.expect("body");
    assert!(html.contains("<html"), "a rendered page: {html}");
    // The load's logins get 503 too; a page that needs no database still opens.
    until_seen(&logins, 503, down, ANSWER_BOUND * 2, "logins during").await;
    let (res, took) = timed(http.get(app.url("/protected")).bearer_auth(&pair.access)).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a Bearer page during the outage"
    );
    assert!(
        took < Duration::from_secs(1),
        "a Bearer page after {took:?}"
    );
    assert_healthy(&mut app);

    cluster.restart();
    let up = Instant::now();
    let deadline = up + RECOVERY_BOUND;
    loop {
        let res = http
            .post(app.url("/token/refresh"))
            .bearer_auth(&pair.refresh)
            .send()
            .await
            .expect("an answer");
        match res.status() {
            StatusCode::OK => break,
            StatusCode::SERVICE_UNAVAILABLE if Instant::now() < deadline => {}
            other => panic!("refresh after the restart: {other} ({:?})", up.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_seen(&logins, 200, up, RECOVERY_BOUND, "logins after").await;
    let res = browser
        .get(app.url("/account"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "the account page after");

    stop.store(true, Ordering::Relaxed);
    for (n, (seen, task)) in loops.into_iter().enumerate() {
        task.await.expect("load loop");
        let statuses: Vec<u16> = seen.lock().expect("lock").iter().map(|s| s.1).collect();
        let allowed: &[u16] = if n < 2 { &[200, 503] } else { &[200] };
        assert!(
            statuses.iter().all(|s| allowed.contains(s)),
            "load loop {n}: only {allowed:?} expected, got {statuses:?}"
        );
    }
    assert_healthy(&mut app);
}
