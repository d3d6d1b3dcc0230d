//! Token rules (reference §4) over HTTP, on both the Bearer and the cookie path.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: &str, token_type: &str, exp_offset: i64) -> Value {
    json!({
        "sub": sub, "username": "alice", "role": "admin", "type": token_type,
        "iat": now(), "exp": now() + exp_offset, "jti": "forged", "sid": "forged",
    })
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jwt::signed("HS256", claims, key)
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

async fn refused_both_ways(app: &TestApp, token: &str, what: &str) {
    let res = app.bearer_get("/protected", token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what} (Bearer)");
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let browser = app.new_client();
    browser.set_cookie("access_token", token);
    let res = browser.get("/protected").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what} (cookie)");
}

#[actix_web::test]
async fn a_valid_access_token_works_both_ways() {
    let app = spawn_app().await;
    let (access, _) = app.api_user("alice").await;
    assert_eq!(
        app.bearer_get("/protected", &access).await.status(),
        StatusCode::OK
    );
    let browser = app.new_client();
    browser.set_cookie("access_token", &access);
    assert_eq!(browser.get("/protected").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_refresh_token_is_not_an_access_token_nor_the_reverse() {
    let app = spawn_app().await;
    let (access, refresh) = app.api_user("alice").await;
    refused_both_ways(&app, &refresh, "refresh as access").await;
    let res = app.bearer_post("/token/refresh", &access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "access as refresh");
    let res = app.bearer_post("/logout", &access).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "access as refresh for logout"
    );
}

#[actix_web::test]
async fn alg_none_another_key_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, _) = app.api_user("alice").await;
    let none = unsigned(
        &json!({"alg": "none", "typ": "JWT"}),
        &claims("1", "access", 600),
    );
    refused_both_ways(&app, &none, "alg none").await;
    let other_key = sign(
        &claims("1", "access", 600),
        b"some-other-key-that-is-32-bytes-long!!",
    );
    refused_both_ways(&app, &other_key, "another key").await;
    let expired = sign(&claims("1", "access", -60), SECRET.as_bytes());
    refused_both_ways(&app, &expired, "expired").await;
    let hs512 = jwt::signed("HS512", &claims("1", "access", 600), SECRET.as_bytes());
    refused_both_ways(&app, &hs512, "HS512 with the right key").await;
    // The control: the same claims, correctly signed, are accepted.
    let good = sign(&claims("1", "access", 600), SECRET.as_bytes());
    assert_eq!(
        app.bearer_get("/protected", &good).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn the_api_tells_an_expired_token_from_an_invalid_one() {
    let app = spawn_app().await;
    let expired = sign(&claims("1", "access", -60), SECRET.as_bytes());
    let body: Value = app
        .bearer_get("/protected", &expired)
        .await
        .json()
        .await
        .unwrap();
    assert!(body["error"].as_str().unwrap().contains("expired"));
}

#[actix_web::test]
async fn the_header_wins_over_cookies() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let (bob_access, _) = app.api_user("bob").await;
    let res = browser
        .http
        .get(browser.url("/protected"))
        .bearer_auth(&bob_access)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["logged_in_as"], "bob");
    // A bad header is not rescued by good cookies.
    let res = browser
        .http
        .get(browser.url("/protected"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn refresh_rotates_and_the_old_token_is_retired() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let (_, refresh) = app.api_user("alice").await;
    let res = app.bearer_post("/token/refresh", &refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let new_refresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    assert_eq!(body["token_type"], "Bearer");
    let new_access = body["access_token"].as_str().unwrap();
    assert_eq!(
        app.bearer_get("/protected", new_access).await.status(),
        StatusCode::OK
    );
    // The old token works once only.
    assert_eq!(
        app.bearer_post("/token/refresh", &refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn access_tokens_carry_the_contract_claims() {
    let app = spawn_app().await;
    let (access, refresh) = app.api_user("alice").await;
    for (token, kind) in [(&access, "access"), (&refresh, "refresh")] {
        let mut parts = token.split('.');
        let header: Value =
            serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        let claims: Value =
            serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(claims["type"], kind);
        assert_eq!(claims["username"], "alice");
        assert_eq!(claims["role"], "user");
        assert!(claims["sub"].is_string());
        for key in ["iat", "exp", "jti"] {
            assert!(!claims[key].is_null(), "{key}");
        }
    }
}
