//! The tutorial's JSON API, end to end, exactly as its client uses it.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

#[actix_web::test]
async fn the_tutorial_flow_works_end_to_end() {
    let app = spawn_app().await;
    let res = app.api_register("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(
        res.headers().get(header::SET_COOKIE).is_none(),
        "API responses set no cookies"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert!(body["id"].is_number());

    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let res = app.bearer_get("/protected", access).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "logged_in_as": "alice" })
    );

    let res = app.bearer_post("/token/refresh", refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    let rotated: Value = res.json().await.unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();

    let res = app.bearer_post("/logout", new_refresh).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(
        app.bearer_post("/token/refresh", new_refresh)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn api_errors_are_json_with_the_contract_statuses() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "al", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "alice", "password": "password123"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "alice"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "alice", "password": PASSWORD}),
            StatusCode::CREATED,
        ),
        (
            json!({"username": "ALICE", "password": PASSWORD}),
            StatusCode::CONFLICT,
        ),
    ];
    for (body, status) in cases {
        let res = app
            .client
            .http
            .post(app.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let json: Value = res.json().await.unwrap();
        if !status.is_success() {
            assert!(json["error"].is_string(), "{json}");
        }
    }
    let res = app.api_login("alice", "wrong-password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let unknown = app.api_login("nobody", "wrong-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.text().await.unwrap(),
        unknown.text().await.unwrap(),
        "same answer for both"
    );
}

#[actix_web::test]
async fn malformed_json_is_a_400_json_error() {
    let app = spawn_app().await;
    for body in ["{", "\"just a string\"", "{\"username\": 5}", "\u{0}"] {
        let res = app
            .client
            .http
            .post(app.url("/login"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let json: Value = res.json().await.unwrap();
        assert!(json["error"].is_string());
    }
}

#[actix_web::test]
async fn api_requests_never_get_redirects_or_html() {
    let app = spawn_app().await;
    let res = app
        .client
        .http
        .get(app.url("/admin"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let res = app
        .client
        .http
        .get(app.url("/nope"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
}

#[actix_web::test]
async fn logout_needs_a_refresh_token() {
    let app = spawn_app().await;
    let res = app
        .client
        .http
        .post(app.url("/logout"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.bearer_post("/logout", "not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
