//! Two-factor authentication in the browser: setting TOTP up from the
//! account page (the QR code loads as an image), the recovery codes, the
//! code step of a login, and re-authentication before turning it off. Every
//! new page and state passes the audit. Codes come from the key the page
//! shows, at the app's (injected) clock.

use portcullis::clock::Clock;
use totp_rs::{Algorithm, Builder, Secret};

use crate::{audit, driver::Driver, helpers::*};

fn code(app: &TestApp, secret: &str) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::try_from_base32(secret).expect("base32"))
        .build()
        .expect("totp")
        .generate(app.clock.now() as u64)
        .to_string()
}

#[actix_web::test]
async fn a_user_sets_up_totp_logs_in_with_a_code_and_turns_it_off() {
    let Some(driver) = Driver::start("second_factor") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.register(&app.addr, "alice", PASSWORD).await;

    b.goto(&app.url("/account")).await;
    audit::page(&b, "account-totp-off").await;
    b.click("form[action='/account/totp/start'] button").await;
    let secret = b.text(".totp-secret").await;
    let qr = b
        .js("const img = document.querySelector('img.qr');
             return img.complete && img.naturalWidth > 0;")
        .await;
    assert_eq!(qr, true, "the QR code loads as an image");
    audit::page(&b, "account-totp-pending").await;

    b.type_into("#code", "000000").await;
    b.click("form[action='/account/totp/confirm'] button").await;
    b.find("#code-error").await;
    audit::page(&b, "account-totp-wrong-code").await;

    b.type_into("#code", &code(&app, &secret)).await;
    b.click("form[action='/account/totp/confirm'] button").await;
    assert_eq!(b.find_all(".recovery-codes li").await.len(), 10);
    audit::page(&b, "recovery-codes").await;
    app.clock.advance(30);

    b.click("header form[action='/logout'] button").await;
    b.goto(&app.url("/login?next=%2Faccount")).await;
    b.fill_login("alice", PASSWORD).await;
    b.wait_for_path("/login/mfa").await;
    audit::page(&b, "login-mfa").await;
    b.type_into("#code", "123").await;
    b.click("form[action='/login/mfa'] button").await;
    b.find(".error-summary").await;
    audit::page(&b, "login-mfa-error").await;
    b.type_into("#code", &code(&app, &secret)).await;
    b.click("form[action='/login/mfa'] button").await;
    b.wait_for_path("/account").await;
    audit::page(&b, "account-totp-on").await;

    // Later: turning it off asks who is there first.
    app.clock.advance(601);
    b.click("form[action='/account/totp/disable'] button").await;
    b.wait_for_path("/reauth?next=%2Faccount").await;
    audit::page(&b, "reauth").await;
    b.type_into("#password", PASSWORD).await;
    b.type_into("#code", &code(&app, &secret)).await;
    b.click("form[action='/reauth'] button[type=submit]").await;
    b.wait_for_path("/account").await;
    b.click("form[action='/account/totp/disable'] button").await;
    b.wait_for_path("/account").await;
    assert!(
        b.text(".flash")
            .await
            .contains("Two-factor authentication is off")
    );
    b.find("form[action='/account/totp/start']").await;
    b.close().await;
}
