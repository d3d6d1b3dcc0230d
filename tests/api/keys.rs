//! Signing keys (reference §1 and §4): every token names its key in `kid`,
//! `JWT_PREVIOUS_KEYS` verify but never sign, an unknown `kid` is refused,
//! and the cookie session has its own key. The rotation is done as an
//! operator would: restart on the same database with the new key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use portcullis::auth::tokens::key_id;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_KEY: &str = "the-next-signing-key-also-at-least-32-bytes";

fn header(token: &str) -> Value {
    let part = token.split('.').next().expect("a JWT");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("header")
}

async fn pair(app: &TestApp, name: &str) -> (String, String) {
    app.api_user(name).await
}

#[actix_web::test]
async fn every_token_names_its_key_without_revealing_it() {
    let app = spawn_app().await;
    let (access, refresh) = pair(&app, "alice").await;
    for token in [&access, &refresh] {
        let h = header(token);
        assert_eq!(h["alg"], "HS256");
        let kid = h["kid"].as_str().expect("kid");
        assert_eq!(kid, key_id(SECRET.as_bytes()));
        assert!(!kid.contains(SECRET) && !SECRET.contains(kid));
    }
    // An unknown kid is refused, even with a valid signature.
    let claims: Value =
        serde_json::from_slice(&B64.decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let forged = jwt::hmac_token(
        "HS256",
        &json!({"alg": "HS256", "typ": "JWT", "kid": "0000000000000000"}),
        &claims,
        SECRET.as_bytes(),
    );
    assert_eq!(
        app.bearer_get("/protected", &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let right_kid = jwt::hmac_token(
        "HS256",
        &json!({"alg": "HS256", "typ": "JWT", "kid": key_id(SECRET.as_bytes())}),
        &claims,
        SECRET.as_bytes(),
    );
    assert_eq!(
        app.bearer_get("/protected", &right_kid).await.status(),
        StatusCode::OK,
        "the control: the same token with the right kid"
    );
}

#[actix_web::test]
async fn rotating_the_key_keeps_old_tokens_working_until_they_expire() {
    let before = spawn_app().await;
    let (access, refresh) = pair(&before, "alice").await;
    let browser = before.logged_in_user("bob").await;

    // The operator restarts with the new key, the old one as previous.
    let after = spawn_app_with(&[
        ("DATABASE_URL", &before.database_url),
        ("JWT_SECRET_KEY", NEW_KEY),
        ("JWT_PREVIOUS_KEYS", SECRET),
    ])
    .await;
    let res = after.bearer_get("/protected", &access).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "an old access token still works"
    );
    let res = after.bearer_post("/token/refresh", &refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "an old refresh token rotates");
    let new: Value = res.json().await.unwrap();
    let new_access = new["access_token"].as_str().unwrap();
    let new_refresh = new["refresh_token"].as_str().unwrap().to_owned();
    for token in [new_access, new_refresh.as_str()] {
        assert_eq!(
            header(token)["kid"],
            key_id(NEW_KEY.as_bytes()),
            "signed with the new key"
        );
    }
    // A browser keeps its session and its forms (the session key is its own).
    let browser = Client {
        base: after.addr.clone(),
        ..browser
    };
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
    let res = browser.post_form("/account/logout-everywhere", &[]).await;
    assert_redirect_to(&res, "/");

    // Once the old key is dropped, tokens signed with it stop working.
    let later = spawn_app_with(&[
        ("DATABASE_URL", &before.database_url),
        ("JWT_SECRET_KEY", NEW_KEY),
    ])
    .await;
    assert_eq!(
        later.bearer_get("/protected", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        later.bearer_get("/protected", new_access).await.status(),
        StatusCode::OK
    );
    let res = later.bearer_post("/token/refresh", &new_refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
}
