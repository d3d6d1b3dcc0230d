//! Passkeys in Chromium with chromedriver's virtual authenticator (a CTAP2
//! platform authenticator with resident keys and user verification): add
//! one on /account, sign in with it on /login, a user the authenticator did
//! not verify is refused, a removed passkey stops working, and the account
//! page with a passkey passes the audit.
//!
//! Chromium refuses an IP address as relying party, so the app serves on
//! 127.0.0.1 while the browser uses `http://localhost:PORT`, which is also
//! its `PUBLIC_ORIGIN`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    audit,
    driver::{Browser, Driver, SessionCommand},
    helpers::*,
};

/// A W3C WebAuthn command (`session/{id}/webauthn/...`).
fn webauthn(path: &str, body: Value) -> SessionCommand {
    SessionCommand {
        path: format!("webauthn/{path}"),
        body,
    }
}

/// Adds a virtual authenticator to the current tab; returns its id.
async fn add_authenticator(b: &Browser) -> String {
    let answer = b
        .client
        .issue_cmd(webauthn(
            "authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            }),
        ))
        .await
        .expect("a virtual authenticator");
    answer
        .as_str()
        .or_else(|| answer["value"].as_str())
        .unwrap_or_else(|| panic!("authenticator id in {answer}"))
        .to_owned()
}

async fn set_user_verified(b: &Browser, authenticator: &str, verified: bool) {
    b.client
        .issue_cmd(webauthn(
            &format!("authenticator/{authenticator}/uv"),
            json!({ "isUserVerified": verified }),
        ))
        .await
        .expect("set user verification");
}

/// The app on a port of its own, for `http://localhost:PORT`.
async fn spawn_localhost_app() -> (TestApp, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let origin = format!("http://localhost:{port}");
    let app = spawn_app_with(&[
        ("BIND_ADDR", &bind),
        ("WEBAUTHN_RP_ID", "localhost"),
        ("PUBLIC_ORIGIN", &origin),
    ])
    .await;
    (app, origin)
}

/// Waits (bounded) until `css` holds an element whose text contains `text`.
async fn wait_for_text(b: &Browser, css: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let script = format!(
        "return [...document.querySelectorAll({css:?})].map(e => e.textContent).join('\\n');"
    );
    loop {
        let seen = b.client.execute(&script, Vec::new()).await.ok();
        let seen = seen
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if seen.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {text:?} in {css}, saw {seen:?} on {}",
            b.path().await
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn passkey_button_hidden(b: &Browser) -> bool {
    b.js("return document.querySelector('button[data-passkey=\"login\"]').hidden;")
        .await
        == Value::Bool(true)
}

async fn passkey_reauth_hidden(b: &Browser) -> bool {
    b.js("return document.querySelector(\"button[data-passkey='reauth']\").hidden;")
        .await
        == serde_json::Value::Bool(true)
}

async fn log_out(b: &Browser) {
    b.click("header form[action='/logout'] button").await;
    b.wait_for_path("/").await;
}

/// Clicks "Sign in with a passkey" on /login and waits for the status line
/// to say something (an error) or the browser to leave /login.
async fn try_passkey_login(b: &Browser, base: &str) -> String {
    b.goto(&format!("{base}/login")).await;
    assert!(!passkey_button_hidden(b).await, "the passkey button shows");
    b.find("button[data-passkey='login']")
        .await
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = b.path().await;
        if path != "/login" {
            return path;
        }
        let status = b
            .client
            .execute(
                "const s = document.querySelector('.passkey-status'); return s ? s.textContent : '';",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if !status.is_empty() && !status.starts_with("Follow") {
            return format!("refused: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the passkey login did not finish"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_passkey_added_on_the_account_page_signs_in_until_it_is_removed() {
    let Some(driver) = Driver::start("passkeys") else {
        return;
    };
    let (app, base) = spawn_localhost_app().await;
    let b = driver.browser().await;
    b.goto(&format!("{base}/")).await;
    let authenticator = add_authenticator(&b).await;

    b.register(&base, "alice", PASSWORD).await;
    b.goto(&format!("{base}/account")).await;
    b.type_into("#passkey-name", "Work laptop").await;
    b.find("form[data-passkey='register'] button[type=submit]")
        .await
        .click()
        .await
        .expect("click");
    wait_for_text(&b, ".flash", "has been added").await;
    assert_eq!(b.path().await, "/account");
    assert_eq!(b.text(".passkeys .passkey-name").await, "Work laptop");
    audit::page(&b, "account-passkeys").await;

    // With TOTP on too, the passkey still needs no code.
    b.click("form[action='/account/totp/start'] button").await;
    let secret = b.text(".totp-secret").await;
    let code = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&secret).expect("base32"))
        .build()
        .expect("totp")
        .generate(portcullis::clock::Clock::now(&*app.clock) as u64)
        .to_string();
    b.type_into("#code", &code).await;
    b.click("form[action='/account/totp/confirm'] button").await;
    assert_eq!(b.find_all(".recovery-codes li").await.len(), 10);

    // Signed out, the passkey alone signs in (no username, no password, no
    // TOTP code).
    log_out(&b).await;
    assert_eq!(try_passkey_login(&b, &base).await, "/protected");
    assert!(b.text("main").await.contains("Logged in as alice"));
    assert!(b.cookie_value("refresh_token").await.is_some());
    b.goto(&format!("{base}/account")).await;
    let last_used = b.text(".passkeys td[data-label='Last used']").await;
    assert_ne!(last_used, "never", "the login is recorded");

    // An authenticator that did not verify its user is refused.
    log_out(&b).await;
    set_user_verified(&b, &authenticator, false).await;
    let outcome = try_passkey_login(&b, &base).await;
    assert!(outcome.starts_with("refused"), "{outcome}");
    assert!(b.cookie_value("access_token").await.is_none());
    set_user_verified(&b, &authenticator, true).await;

    // Removing it needs a recent authentication: later, the passkey itself
    // confirms it is her on /reauth.
    assert_eq!(try_passkey_login(&b, &base).await, "/protected");
    app.clock.advance(601);
    b.goto(&format!("{base}/account")).await;
    b.click(".passkeys form[action$='/remove'] button").await;
    b.wait_for_path("/reauth?next=%2Faccount").await;
    assert!(!passkey_reauth_hidden(&b).await, "the passkey is offered");
    audit::page(&b, "reauth-passkey").await;
    b.find("button[data-passkey='reauth']")
        .await
        .click()
        .await
        .expect("click");
    b.wait_for_path("/account").await;

    // Removed, it no longer signs in (the authenticator still holds it).
    b.click(".passkeys form[action$='/remove'] button").await;
    wait_for_text(&b, ".flash", "has been removed").await;
    assert!(b.text(".passkeys").await.contains("No passkeys yet."));
    log_out(&b).await;
    let outcome = try_passkey_login(&b, &base).await;
    assert!(outcome.starts_with("refused"), "{outcome}");
    drop(app);
    b.close().await;
}

#[actix_web::test]
async fn the_passkey_button_stays_hidden_away_from_the_public_origin() {
    let Some(driver) = Driver::start("passkey_origin") else {
        return;
    };
    let (app, base) = spawn_localhost_app().await;
    let b = driver.browser().await;
    b.goto(&format!("{base}/login")).await;
    assert!(!passkey_button_hidden(&b).await, "shown on PUBLIC_ORIGIN");
    // The same server by its IP address: another origin.
    b.goto(&app.url("/login")).await;
    assert!(passkey_button_hidden(&b).await, "hidden elsewhere");
    b.close().await;
}
