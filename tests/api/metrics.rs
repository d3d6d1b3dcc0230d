//! Metrics for operators (reference §6): Prometheus text on a listener of
//! its own, off unless `METRICS_BIND_ADDR` is set, never a secret. The
//! recorder is one per process, so counts here are lower bounds.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[actix_web::test]
async fn metrics_are_served_on_their_own_listener_and_count_what_matters() {
    let app = spawn_app_with(&[
        ("METRICS_BIND_ADDR", "127.0.0.1:0"),
        ("LOGIN_MAX_FAILURES", "1"),
    ])
    .await;
    let url = app.metrics_url.clone().expect("metrics on");
    let body: Value = app
        .api_register("alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["username"], "alice");
    let tokens: Value = app.api_login("alice", PASSWORD).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.bearer_get("/protected", &access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.bearer_post("/token/refresh", &refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.api_login("alice", "wrong-password-1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    for (series, at_least) in [
        (
            r#"portcullis_http_requests_total{route="/protected",method="GET",status="200"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{route="/login",method="POST",status="429"}"#,
            1.0,
        ),
        (r#"portcullis_logins_total{outcome="success"}"#, 1.0),
        (r#"portcullis_logins_total{outcome="failed"}"#, 1.0),
        (r#"portcullis_logins_total{outcome="locked"}"#, 1.0),
        (r#"portcullis_throttle_refusals_total{kind="pair"}"#, 1.0),
        (r#"portcullis_refresh_total{outcome="rotated"}"#, 1.0),
        ("portcullis_hash_duration_seconds_count", 3.0),
        ("portcullis_hash_queue_capacity", 4.0),
    ] {
        let value = sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(value >= at_least, "{series} = {value}");
    }
    assert!(text.contains("portcullis_http_request_duration_seconds_bucket{route=\"/protected\""));
    assert!(sample(&text, "portcullis_hash_queue_depth").is_some());
    // Never a secret, never a path a client chose.
    for secret in [PASSWORD, &access, &refresh, SECRET] {
        assert!(!text.contains(secret));
    }
    // The app's own listener does not serve them.
    assert_eq!(
        app.client.get("/metrics").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn without_the_setting_there_is_no_metrics_listener() {
    let app = spawn_app().await;
    assert!(app.metrics_url.is_none());
}
