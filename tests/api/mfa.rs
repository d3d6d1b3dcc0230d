//! The second factor (reference §5 and §8): TOTP enrolment, the two-step
//! login on both faces, recovery codes, "each code once", wrong codes as
//! failed logins, re-authentication, and the admin's switch. Codes are
//! computed here from the secret the page shows, at the app's clock.

use portcullis::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::helpers::*;

fn between<'a>(html: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    html.split(start)
        .skip(1)
        .filter_map(|rest| rest.split(end).next())
        .collect()
}

/// The code an authenticator app shows for `secret` at the app's time,
/// `offset` seconds from now.
fn code(app: &TestApp, secret: &str, offset: i64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::try_from_base32(secret).expect("base32 secret"))
        .build()
        .expect("totp");
    totp.generate((app.clock.now() + offset) as u64).to_string()
}

/// Moves the app to the next 30-second step, so a fresh code exists.
fn next_step(app: &TestApp) {
    app.clock.advance(30);
}

struct Enrolled {
    secret: String,
    recovery: Vec<String>,
}

/// Turns TOTP on for a logged-in browser, as a user would.
async fn enrol(app: &TestApp, client: &Client) -> Enrolled {
    let res = client.post_form("/account/totp/start", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = client.get("/account").await.text().await.unwrap();
    let secret = between(&page, "<code class=\"totp-secret\">", "</code>")
        .first()
        .expect("the page shows the key")
        .to_string();
    let res = client
        .post_form("/account/totp/confirm", &[("code", &code(app, &secret, 0))])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let recovery: Vec<String> = between(&page, "<li><code>", "</code>")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery.len(), 10, "ten recovery codes, shown once");
    next_step(app);
    Enrolled { secret, recovery }
}

/// A browser user with TOTP on (and logged in).
async fn user_with_totp(app: &TestApp, name: &str) -> (Client, Enrolled) {
    let client = app.logged_in_user(name).await;
    let enrolled = enrol(app, &client).await;
    (client, enrolled)
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

async fn api_mfa_token(app: &TestApp, name: &str) -> String {
    let res = app.api_login(name, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code"
    );
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

async fn api_second_step(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.client
        .http
        .post(app.url("/login/mfa"))
        .json(&json!({"mfa_token": token, "code": code}))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn enrolment_shows_the_key_and_a_qr_code_and_needs_a_valid_code() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    let page = client.get("/account").await.text().await.unwrap();
    assert!(page.contains("Set up two-factor authentication"));
    assert!(client.get("/account/totp/qr.svg").await.status() == StatusCode::NOT_FOUND);
    client.post_form("/account/totp/start", &[]).await;
    let page = client.get("/account").await.text().await.unwrap();
    let secret = between(&page, "<code class=\"totp-secret\">", "</code>")[0].to_owned();
    assert_eq!(
        Secret::try_from_base32(&secret).unwrap().as_bytes().len(),
        20
    );
    assert!(page.contains("src=\"/account/totp/qr.svg\""));
    let qr = client.get("/account/totp/qr.svg").await;
    assert_eq!(qr.status(), StatusCode::OK);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
    // A wrong code does not turn it on.
    let wrong = if code(&app, &secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = client
        .post_form("/account/totp/confirm", &[("code", wrong)])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "still a password login");
    // The right one does.
    let res = client
        .post_form(
            "/account/totp/confirm",
            &[("code", &code(&app, &secret, 0))],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = client.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("10 of your recovery codes are unused"),
        "{page}"
    );
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "now two steps");
}

#[actix_web::test]
async fn the_browser_login_goes_through_the_code_step_and_keeps_next() {
    let app = spawn_app().await;
    let (_, enrolled) = user_with_totp(&app, "alice").await;
    let browser = app.new_client();
    let res = browser
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_redirect_to(&res, "/login/mfa");
    assert!(set_cookie(&res, "access_token").is_none(), "no tokens yet");
    assert!(browser.cookie("refresh_token").is_none());
    let form = browser.get("/login/mfa").await.text().await.unwrap();
    assert!(form.contains("name=\"code\""));
    let before = meta_csrf(&form).unwrap();
    let res = browser.post_form("/login/mfa", &[("code", "12345x")]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = browser
        .post_form("/login/mfa", &[("code", &code(&app, &enrolled.secret, 0))])
        .await;
    assert_redirect_to(&res, "/account");
    assert!(set_cookie(&res, "access_token").is_some());
    let page = browser.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    let after = meta_csrf(&page.text().await.unwrap()).unwrap();
    assert_ne!(
        before, after,
        "the CSRF token is renewed at the second step"
    );
    // The step is over: the form is not offered again.
    assert_redirect_to(&browser.get("/login/mfa").await, "/login");
}

#[actix_web::test]
async fn the_api_login_has_two_steps_and_the_token_carries_amr() {
    let app = spawn_app().await;
    let (_, enrolled) = user_with_totp(&app, "alice").await;
    let token = api_mfa_token(&app, "alice").await;
    let res = api_second_step(&app, &token, "000000x").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = api_second_step(&app, &token, &code(&app, &enrolled.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let pair: Value = res.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["amr"], json!(["pwd", "otp"]));
    assert_eq!(c["auth_time"], json!(app.clock.now()));
    assert_eq!(
        app.bearer_get("/protected", access).await.status(),
        StatusCode::OK
    );
    // The mfa_token works once.
    next_step(&app);
    let res = api_second_step(&app, &token, &code(&app, &enrolled.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A password-only login says pwd.
    let (access, _) = app.api_user("bob").await;
    assert_eq!(claims(&access)["amr"], json!(["pwd"]));
}

#[actix_web::test]
async fn an_mfa_token_expires_after_300_seconds_and_names_one_user() {
    let app = spawn_app().await;
    let (_, alice) = user_with_totp(&app, "alice").await;
    let (_, bob) = user_with_totp(&app, "bob").await;
    let token = api_mfa_token(&app, "alice").await;
    // Bob's code is not Alice's.
    let res = api_second_step(&app, &token, &code(&app, &bob.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.clock.advance(301);
    let res = api_second_step(&app, &token, &code(&app, &alice.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "expired");
    let fresh = api_mfa_token(&app, "alice").await;
    let res = api_second_step(&app, &fresh, &code(&app, &alice.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_code_is_accepted_once_even_when_sent_twice_at_once() {
    let app = spawn_app().await;
    let (_, enrolled) = user_with_totp(&app, "alice").await;
    let now = code(&app, &enrolled.secret, 0);
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(api_mfa_token(&app, "alice").await);
    }
    let attempts = tokens.iter().map(|t| api_second_step(&app, t, &now));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "one of the same code wins: {statuses:?}");
    // Replaying the accepted code later fails too, while it is still valid.
    let token = api_mfa_token(&app, "alice").await;
    let res = api_second_step(&app, &token, &now).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An earlier code than the last accepted one is refused as well.
    let res = api_second_step(&app, &token, &code(&app, &enrolled.secret, -30)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    next_step(&app);
    let res = api_second_step(&app, &token, &code(&app, &enrolled.secret, 0)).await;
    assert_eq!(res.status(), StatusCode::OK, "the next step's code works");
}

#[actix_web::test]
async fn recovery_codes_work_once_and_regenerating_retires_them() {
    let app = spawn_app().await;
    let (client, enrolled) = user_with_totp(&app, "alice").await;
    let first = &enrolled.recovery[0];
    let token = api_mfa_token(&app, "alice").await;
    let typed = first.to_uppercase().replace('-', " ");
    let res = api_second_step(&app, &token, &typed).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "typed in capitals with spaces"
    );
    let pair: Value = res.json().await.unwrap();
    assert_eq!(
        claims(pair["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "rec"])
    );
    let token = api_mfa_token(&app, "alice").await;
    let res = api_second_step(&app, &token, first).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "used once");
    let page = client.get("/account").await.text().await.unwrap();
    assert!(page.contains("9 of your recovery codes are unused"));
    // New codes: the old set stops working.
    let res = client.post_form("/account/recovery-codes", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let fresh: Vec<&str> = between(&page, "<li><code>", "</code>");
    assert_eq!(fresh.len(), 10);
    let res = api_second_step(&app, &token, &enrolled.recovery[1]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "retired");
    let res = api_second_step(&app, &token, fresh[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn wrong_codes_count_as_failed_logins() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let (_, enrolled) = user_with_totp(&app, "alice").await;
    let token = api_mfa_token(&app, "alice").await;
    for _ in 0..2 {
        let res = api_second_step(&app, &token, "999999x").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A correct password does not reset the count of wrong codes.
    let token = api_mfa_token(&app, "alice").await;
    let res = api_second_step(&app, &token, "999999x").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = api_second_step(&app, &token, &code(&app, &enrolled.secret, 0)).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked, the right code included"
    );
    assert!(res.headers().contains_key("retry-after"));
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn turning_totp_off_needs_a_recent_authentication() {
    let app = spawn_app().await;
    let (client, enrolled) = user_with_totp(&app, "alice").await;
    app.clock.advance(601);
    let res = client.post_form("/account/totp/disable", &[]).await;
    assert_redirect_to(&res, "/reauth?next=%2Faccount");
    let res = client.post_form("/account/recovery-codes", &[]).await;
    assert_redirect_to(&res, "/reauth?next=%2Faccount");
    let form = client
        .get("/reauth?next=%2Faccount")
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("name=\"password\"") && form.contains("name=\"code\""));
    // The password alone is not enough with TOTP on.
    let res = client
        .post_form("/reauth", &[("password", PASSWORD), ("next", "/account")])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post_form(
            "/reauth",
            &[
                ("password", "wrong-password-1"),
                ("code", &code(&app, &enrolled.secret, 0)),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post_form(
            "/reauth",
            &[
                ("password", PASSWORD),
                ("code", &code(&app, &enrolled.secret, 0)),
                ("next", "/account"),
            ],
        )
        .await;
    assert_redirect_to(&res, "/account");
    let access = client.cookie("access_token").expect("a new access token");
    assert_eq!(claims(&access)["auth_time"], json!(app.clock.now()));
    assert_eq!(claims(&access)["amr"], json!(["pwd", "otp"]));
    let res = client.post_form("/account/totp/disable", &[]).await;
    assert_redirect_to(&res, "/account");
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "TOTP is off");
}

#[actix_web::test]
async fn an_admin_turns_a_users_totp_off_and_ends_their_sessions() {
    let app = spawn_app().await;
    let (user, _) = user_with_totp(&app, "alice").await;
    let admin = app.logged_in_admin("root").await;
    let page = admin.get("/admin").await.text().await.unwrap();
    assert!(page.contains("Turn off 2FA"));
    let id = {
        use diesel::prelude::*;
        use portcullis::db::schema::users::dsl::*;
        let mut conn = app.db();
        users
            .filter(username.eq("alice"))
            .select(id)
            .first::<i32>(&mut conn)
            .unwrap()
    };
    // Every admin action needs a recent authentication.
    app.clock.advance(601);
    let res = admin
        .post_form(&format!("/admin/users/{id}/totp/disable"), &[])
        .await;
    assert_redirect_to(&res, "/reauth?next=%2Fadmin");
    let res = admin
        .post_form("/reauth", &[("password", PASSWORD), ("next", "/admin")])
        .await;
    assert_redirect_to(&res, "/admin");
    let res = admin
        .post_form(&format!("/admin/users/{id}/totp/disable"), &[])
        .await;
    assert_redirect_to(&res, "/admin");
    assert_eq!(live_sessions(&app, id), 0, "her sessions ended");
    let refresh = user.cookie("refresh_token").unwrap();
    let res = app.bearer_post("/token/refresh", &refresh).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.api_login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "a password login again");
}
