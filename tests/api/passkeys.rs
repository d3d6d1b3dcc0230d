//! Passkeys (reference §8) over HTTP: the script's JSON endpoints (options,
//! refusals, CSRF, re-authentication), ceremonies used once and for 300 s,
//! rename and remove for the owner only, and that no other JSON request is
//! authenticated by cookies. The ceremonies with a real authenticator are in
//! the browser tests.

use portcullis::{
    clock::Clock,
    db::{
        passkeys::{self, Ceremony, NewPasskey},
        users,
    },
};
use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

const SCRIPT_PATHS: [&str; 6] = [
    "/account/passkeys/register/start",
    "/account/passkeys/register/finish",
    "/login/passkey/start",
    "/login/passkey/finish",
    "/reauth/passkey/start",
    "/reauth/passkey/finish",
];

/// Posts JSON as the site's script does: the browser's cookies, and the
/// CSRF token in `X-CSRF-Token` when given.
async fn script_post(client: &Client, path: &str, body: Value, csrf: Option<&str>) -> Response {
    let mut req = client
        .http
        .post(client.url(path))
        .header(header::ACCEPT, "application/json")
        .json(&body);
    if let Some(token) = csrf {
        req = req.header("X-CSRF-Token", token);
    }
    req.send().await.expect("request")
}

/// `script_post` with the session's current token.
async fn script(client: &Client, path: &str, body: Value) -> Response {
    let token = client.csrf_token().await;
    script_post(client, path, body, Some(&token)).await
}

async fn json_of(res: Response) -> Value {
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "JSON answer, got {ct}");
    res.json().await.expect("JSON body")
}

fn user_id(app: &TestApp, name: &str) -> i32 {
    users::find_by_username(&mut app.db(), name)
        .expect("query")
        .expect("user exists")
        .id
}

/// A stored passkey row for `user` (rename and remove never read its JSON).
fn planted_passkey(app: &TestApp, user: i32, credential: &str, name: &str) -> i32 {
    let mut conn = app.db();
    passkeys::insert(
        &mut conn,
        &NewPasskey {
            user_id: user,
            credential_id: credential,
            user_handle: "00000000-0000-4000-8000-000000000000",
            name,
            passkey: "{}",
            created_at: app.clock.now(),
        },
    )
    .expect("insert");
    passkeys::find_by_credential(&mut conn, credential)
        .expect("query")
        .expect("row")
        .id
}

fn passkey_name(app: &TestApp, credential: &str) -> Option<String> {
    passkeys::find_by_credential(&mut app.db(), credential)
        .expect("query")
        .map(|row| row.name)
}

fn ceremony_exists(app: &TestApp, id: &str) -> bool {
    use diesel::prelude::*;
    use portcullis::db::schema::webauthn_ceremonies as w;
    let mut conn = app.db();
    w::table
        .filter(w::id.eq(id))
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count")
        == 1
}

#[actix_web::test]
async fn registration_options_require_a_discoverable_credential_and_user_verification() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let res = script(
        &alice,
        "/account/passkeys/register/start",
        json!({ "name": "  Laptop  " }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json_of(res).await;
    assert!(body["ceremony"].as_str().is_some_and(|c| c.len() >= 32));
    let options = &body["publicKey"];
    let selection = &options["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["requireResidentKey"], true, "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(options["user"]["name"], "alice");
    assert_eq!(options["rp"]["id"], "localhost");
    assert!(options["challenge"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(ceremony_exists(
        &app,
        body["ceremony"].as_str().unwrap_or_default()
    ));
}

#[actix_web::test]
async fn a_passkey_needs_a_name_of_at_most_64_characters() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    for name in ["", "   ", &"x".repeat(65)] {
        let res = script(
            &alice,
            "/account/passkeys/register/start",
            json!({ "name": name }),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(json_of(res).await["error"].is_string());
    }
}

#[actix_web::test]
async fn login_options_ask_for_user_verification_and_no_autofill() {
    let app = spawn_app().await;
    let visitor = app.new_client();
    let res = script(&visitor, "/login/passkey/start", json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json_of(res).await;
    assert!(body["ceremony"].is_string());
    assert!(body.get("mediation").is_none(), "{body}");
    assert_eq!(body["publicKey"]["userVerification"], "required");
    assert_eq!(body["publicKey"]["rpId"], "localhost");
}

#[actix_web::test]
async fn a_bogus_credential_is_refused_in_json_and_uses_up_the_ceremony() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;

    let start = json_of(
        script(
            &alice,
            "/account/passkeys/register/start",
            json!({ "name": "Laptop" }),
        )
        .await,
    )
    .await;
    let ceremony = start["ceremony"].as_str().unwrap_or_default().to_owned();
    for credential in [json!({ "id": "nope" }), json!("garbage"), json!(null)] {
        let res = script(
            &alice,
            "/account/passkeys/register/finish",
            json!({ "ceremony": ceremony, "credential": credential }),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(json_of(res).await["error"].is_string());
    }
    assert!(
        !ceremony_exists(&app, &ceremony),
        "taken by the first finish"
    );

    let visitor = app.new_client();
    let start = json_of(script(&visitor, "/login/passkey/start", json!({})).await).await;
    let ceremony = start["ceremony"].as_str().unwrap_or_default().to_owned();
    assert!(ceremony_exists(&app, &ceremony));
    let credential = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA",
                      "signature": "AAAA", "userHandle": "AAAA" }
    });
    let res = script(
        &visitor,
        "/login/passkey/finish",
        json!({ "ceremony": ceremony, "credential": credential }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, "access_token").is_none());
    assert!(json_of(res).await["error"].is_string());
    assert!(!ceremony_exists(&app, &ceremony));

    // Not even a body webauthn-rs could read: still a JSON 4xx.
    let res = script(&visitor, "/login/passkey/finish", json!([1, 2, 3])).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert!(json_of(res).await["error"].is_string());
}

#[actix_web::test]
async fn a_ceremony_is_taken_once_for_its_kind_and_user_within_300_seconds() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    app.logged_in_user("bob").await;
    let (alice, bob) = (user_id(&app, "alice"), user_id(&app, "bob"));
    let mut conn = app.db();
    let now = app.clock.now();
    let ceremony = |id: &str, user_id: Option<i32>, kind: &str| Ceremony {
        id: id.to_owned(),
        user_id,
        kind: kind.to_owned(),
        state: "{}".to_owned(),
        name: String::new(),
        expires_at: now + 300,
    };
    for c in [
        ceremony("fresh", Some(alice), "register"),
        ceremony("bobs", Some(alice), "register"),
        ceremony("kind", Some(alice), "register"),
        ceremony("other-kind", Some(alice), "register"),
        ceremony("late", Some(alice), "register"),
        ceremony("login", None, "login"),
    ] {
        passkeys::insert_ceremony(&mut conn, &c).expect("insert");
    }
    let take = |conn: &mut _, id, kind, user, at| {
        passkeys::take_ceremony(conn, id, kind, user, at)
            .expect("query")
            .is_some()
    };
    assert!(take(&mut conn, "fresh", "register", Some(alice), now + 299));
    assert!(!take(
        &mut conn,
        "fresh",
        "register",
        Some(alice),
        now + 299
    ));
    assert!(!take(&mut conn, "bobs", "register", Some(bob), now));
    // Each refusal consumes the ceremony, so each case has its own.
    assert!(!take(&mut conn, "kind", "reauth", Some(alice), now));
    assert!(!take(&mut conn, "other-kind", "login", None, now));
    assert!(!take(&mut conn, "late", "register", Some(alice), now + 300));
    assert!(!take(&mut conn, "login", "login", Some(alice), now));
    assert!(!take(&mut conn, "nothing", "login", None, now));
}

#[actix_web::test]
async fn every_passkey_endpoint_refuses_a_request_without_the_csrf_header() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let visitor = app.new_client();
    visitor.get("/login").await;
    for client in [&alice, &visitor] {
        for path in SCRIPT_PATHS {
            for csrf in [None, Some("not-the-token")] {
                let res = script_post(client, path, json!({ "name": "x" }), csrf).await;
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} {csrf:?}");
                assert!(set_cookie(&res, "access_token").is_none());
                let body = json_of(res).await;
                assert!(
                    body["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("expired"))
                );
            }
        }
    }
}

#[actix_web::test]
async fn adding_a_passkey_needs_a_recent_authentication() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let credential = "old-auth-credential";
    let id = planted_passkey(&app, user_id(&app, "alice"), credential, "Phone");
    app.clock.advance(601);
    let res = script(
        &alice,
        "/account/passkeys/register/start",
        json!({ "name": "Laptop" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = json_of(res).await;
    assert_eq!(body["reauth_required"], true, "{body}");

    // Removing one is the same, as a form: to /reauth and back to /account.
    let res = alice
        .post_form(&format!("/account/passkeys/{id}/remove"), &[])
        .await;
    assert_redirect_to(&res, "/reauth?next=%2Faccount");
    assert!(passkey_name(&app, credential).is_some());

    // Renaming one is not sensitive.
    let res = alice
        .post_form(
            &format!("/account/passkeys/{id}/rename"),
            &[("name", "Old phone")],
        )
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(passkey_name(&app, credential).as_deref(), Some("Old phone"));
}

#[actix_web::test]
async fn only_the_owner_renames_or_removes_a_passkey() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let mallory = app.logged_in_user("mallory").await;
    let id = planted_passkey(&app, user_id(&app, "alice"), "alices-key", "Laptop");

    let res = mallory
        .post_form(
            &format!("/account/passkeys/{id}/rename"),
            &[("name", "pwned")],
        )
        .await;
    assert_redirect_to(&res, "/account");
    let res = mallory
        .post_form(&format!("/account/passkeys/{id}/remove"), &[])
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(passkey_name(&app, "alices-key").as_deref(), Some("Laptop"));
    let page = mallory.get("/account").await.text().await.expect("body");
    assert!(page.contains("That passkey does not exist."));
    assert!(!page.contains("Laptop"));

    // A bad name changes nothing.
    for bad in ["  ", &"x".repeat(65)] {
        alice
            .post_form(&format!("/account/passkeys/{id}/rename"), &[("name", bad)])
            .await;
        assert_eq!(passkey_name(&app, "alices-key").as_deref(), Some("Laptop"));
    }
    let res = alice
        .post_form(
            &format!("/account/passkeys/{id}/rename"),
            &[("name", " Work laptop ")],
        )
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(
        passkey_name(&app, "alices-key").as_deref(),
        Some("Work laptop")
    );
    let page = alice.get("/account").await.text().await.expect("body");
    assert!(page.contains("Work laptop"), "listed on the account page");
    assert!(page.contains("never"), "not used yet");

    let res = alice
        .post_form(&format!("/account/passkeys/{id}/remove"), &[])
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(passkey_name(&app, "alices-key"), None);
}

#[actix_web::test]
async fn no_other_json_request_is_authenticated_by_cookies() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let token = alice.csrf_token().await;
    let id = planted_passkey(&app, user_id(&app, "alice"), "alices-key", "Laptop");

    // The account page itself, asked for in JSON with the cookies.
    let res = alice
        .http
        .get(alice.url("/account"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    json_of(res).await;
    let res = script_post(&alice, "/account", json!({}), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The account page's passkey forms, posted as JSON with the cookies.
    for action in ["rename", "remove"] {
        let res = script_post(
            &alice,
            &format!("/account/passkeys/{id}/{action}"),
            json!({ "name": "pwned" }),
            Some(&token),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{action}");
        json_of(res).await;
    }
    assert_eq!(passkey_name(&app, "alices-key").as_deref(), Some("Laptop"));

    // A script path with `Authorization` is the API's: the cookies are ignored.
    let res = alice
        .http
        .post(alice.url("/account/passkeys/register/start"))
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .header("X-CSRF-Token", &token)
        .json(&json!({ "name": "Laptop" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    json_of(res).await;

    // Without cookies the script's account endpoints answer 401 in JSON.
    let visitor = app.new_client();
    let visitor_token = visitor.csrf_token().await;
    for path in ["/account/passkeys/register/start", "/reauth/passkey/start"] {
        let res = script_post(&visitor, path, json!({ "name": "x" }), Some(&visitor_token)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.headers().get(header::LOCATION).is_none());
        json_of(res).await;
    }
}

#[actix_web::test]
async fn reauthentication_with_a_passkey_refuses_a_bogus_credential() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let start = script(&alice, "/reauth/passkey/start", json!({})).await;
    assert_eq!(start.status(), StatusCode::OK);
    let start = json_of(start).await;
    assert_eq!(start["publicKey"]["userVerification"], "required");
    let res = script(
        &alice,
        "/reauth/passkey/finish",
        json!({ "ceremony": start["ceremony"], "credential": {}, "next": "/account" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, "access_token").is_none());
    json_of(res).await;
    // Still logged in: a refused passkey ends nothing.
    assert_eq!(alice.get("/account").await.status(), StatusCode::OK);
}
