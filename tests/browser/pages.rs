//! A tour of every page, logged out, as a user and as an admin, with and
//! without validation errors: each one is audited (see `audit.rs`) and
//! photographed.

use crate::{audit, driver::Driver, helpers::*};

#[actix_web::test]
async fn every_page_a_visitor_sees_passes_the_audit() {
    let Some(driver) = Driver::start("audit_anonymous_pages") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;

    b.goto(&app.url("/")).await;
    audit::page(&b, "home").await;

    b.goto(&app.url("/login")).await;
    audit::page(&b, "login").await;

    b.fill_login("nobody", "wrong-password").await;
    b.wait_for_path("/login").await;
    assert!(
        b.text(".error-summary")
            .await
            .contains("Invalid username or password.")
    );
    audit::page(&b, "login-error").await;

    b.goto(&app.url("/register")).await;
    audit::page(&b, "register").await;

    b.type_into("#username", "x!").await;
    b.type_into("#password", "short").await;
    b.type_into("#password_confirm", "other").await;
    b.click("form[action='/register'] button[type=submit]")
        .await;
    b.wait_for_path("/register").await;
    assert_eq!(b.find_all(".field-error").await.len(), 3);
    audit::page(&b, "register-errors").await;

    b.goto(&app.url("/no/such/page")).await;
    assert_eq!(b.text(".status-code").await, "404");
    audit::page(&b, "not-found").await;
    b.close().await;
}

#[actix_web::test]
async fn every_page_a_user_sees_passes_the_audit() {
    let Some(driver) = Driver::start("audit_user_pages") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.register(&app.addr, "alice", PASSWORD).await;
    audit::page(&b, "protected").await;

    b.goto(&app.url("/")).await;
    audit::page(&b, "home-logged-in").await;

    b.goto(&app.url("/account")).await;
    audit::page(&b, "account").await;

    b.type_into("#current_password", "not-my-password").await;
    b.type_into("#new_password", "alice").await;
    b.type_into("#new_password_confirm", "alice").await;
    b.click("form[action='/account/password'] button[type=submit]")
        .await;
    b.find(".error-summary").await;
    assert!(!b.find_all(".field-error").await.is_empty());
    audit::page(&b, "account-errors").await;

    b.goto(&app.url("/admin")).await;
    assert_eq!(b.text(".status-code").await, "403");
    audit::page(&b, "forbidden").await;

    b.click("header form[action='/logout'] button").await;
    b.wait_for_path("/").await;
    b.find(".flash").await;
    audit::page(&b, "logged-out").await;
    b.close().await;
}

#[actix_web::test]
async fn the_admin_page_passes_the_audit() {
    let Some(driver) = Driver::start("audit_admin_page") else {
        return;
    };
    let app = spawn_app().await;
    app.admin_exists("root");
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            app.api_register(name, PASSWORD).await.status(),
            reqwest::StatusCode::CREATED
        );
    }
    let b = driver.browser().await;
    b.login(&app.addr, "root", PASSWORD).await;
    b.goto(&app.url("/admin")).await;
    audit::page(&b, "admin").await;

    // Disable carol with her row's small form: the page shows the flash and
    // the new status.
    b.click("button[aria-label='Disable carol']").await;
    b.wait_for_path("/admin").await;
    b.find(".flash").await;
    b.find("button[aria-label='Enable carol']").await;
    audit::page(&b, "admin-after-action").await;
    b.close().await;
}

/// Guards the audit itself: planted problems must be caught, or a silent
/// axe would make every other audit pass.
#[actix_web::test]
async fn the_audit_catches_planted_accessibility_problems() {
    let Some(driver) = Driver::start("audit_self_check") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.goto(&app.url("/login")).await;
    b.js("const img = document.createElement('img');
          img.src = '/static/img/portcullis.svg';
          document.querySelector('main').append(img);
          document.querySelector('label[for=password]').remove();
          document.documentElement.removeAttribute('lang');")
        .await;
    if let Some(found) = audit::serious_findings(&b).await {
        for expected in ["image-alt", "label", "html-has-lang"] {
            assert!(
                found.iter().any(|id| id == expected),
                "axe missed {expected}: {found:?}"
            );
        }
    }
    b.close().await;
}
