//! The audit log, a user's activity and the password-reset link in the
//! browser: an admin makes a link from the users page, the user sets a new
//! password with it and logs in; every new page passes the audit.

use crate::{audit, driver::Driver, helpers::*};

#[actix_web::test]
async fn an_admin_resets_a_password_and_reads_the_audit_log() {
    let Some(driver) = Driver::start("admin_tools") else {
        return;
    };
    let app = spawn_app().await;
    app.admin_exists("root");
    assert_eq!(
        app.api_register("carol", PASSWORD).await.status(),
        reqwest::StatusCode::CREATED
    );
    app.api_login("carol", "not-her-password").await;
    let b = driver.browser().await;
    b.login(&app.addr, "root", PASSWORD).await;
    b.goto(&app.url("/admin")).await;
    b.click("button[aria-label='Create a password reset link for carol']")
        .await;
    let link = b.text(".reset-link code").await;
    audit::page(&b, "admin-reset-link").await;
    let path = link
        .strip_prefix("http://localhost:8080")
        .expect("under PUBLIC_ORIGIN")
        .to_owned();

    b.goto(&app.url("/admin/audit")).await;
    assert!(
        b.text("table.audit")
            .await
            .contains("password_reset_link_created")
    );
    audit::page(&b, "admin-audit").await;
    b.type_into("#user", "carol").await;
    b.click("form.filters button").await;
    assert!(b.path().await.starts_with("/admin/audit?user=carol"));
    assert!(b.text("table.audit").await.contains("login_failed"));
    audit::page(&b, "admin-audit-filtered").await;

    // Carol, in another browser, sets a new password with the link.
    let carol = driver.browser().await;
    carol.goto(&app.url(&path)).await;
    audit::page(&carol, "reset-form").await;
    carol.type_into("#password", "short").await;
    carol.type_into("#password_confirm", "short").await;
    carol.click("form button[type=submit]").await;
    carol.find(".error-summary").await;
    audit::page(&carol, "reset-form-errors").await;
    let new = "Carols-new-passphrase-1";
    carol.type_into("#password", new).await;
    carol.type_into("#password_confirm", new).await;
    carol.click("form button[type=submit]").await;
    carol.wait_for_path("/login").await;
    carol.fill_login("carol", new).await;
    carol.wait_for_path("/protected").await;

    carol.goto(&app.url("/account/activity")).await;
    let activity = carol.text("table.activity").await;
    assert!(
        activity.contains("Password reset through a link"),
        "{activity}"
    );
    assert!(activity.contains("Failed login"));
    audit::page(&carol, "account-activity").await;

    // The link is spent.
    carol.goto(&app.url(&path)).await;
    assert_eq!(carol.text(".status-code").await, "404");
    audit::page(&carol, "reset-link-spent").await;
    carol.close().await;
    b.close().await;
}
