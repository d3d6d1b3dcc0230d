use reqwest::StatusCode;

use crate::helpers::*;

#[actix_web::test]
async fn the_login_form_carries_a_safe_next() {
    let app = spawn_app().await;
    let html = app
        .client
        .get("/login?next=/account")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"next\" value=\"/account\""));
    assert!(html.contains("name=\"csrf_token\""));
    let html = app
        .client
        .get("/login?next=//evil.example")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"next\" value=\"\""),
        "an off-site next is dropped"
    );
}

#[actix_web::test]
async fn logging_in_sets_both_cookies_and_redirects_to_the_protected_page() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let res = app.client.login("alice", PASSWORD).await;
    assert_redirect_to(&res, "/protected");
    assert!(set_cookie(&res, "access_token").is_some());
    assert!(set_cookie(&res, "refresh_token").is_some());
}

#[actix_web::test]
async fn either_spelling_of_the_username_logs_in() {
    let app = spawn_app().await;
    app.logged_in_user("Alice").await;
    assert_redirect_to(&app.client.login("aLICE", PASSWORD).await, "/protected");
    let html = app.client.get("/protected").await.text().await.unwrap();
    assert!(
        html.contains("Logged in as Alice"),
        "shown as entered at registration"
    );
}

#[actix_web::test]
async fn login_follows_a_local_next_only() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let cases = [
        ("/account", "/account"),
        ("/admin?x=1", "/admin?x=1"),
        ("//evil.example", "/protected"),
        ("/\\evil.example", "/protected"),
        ("https://evil.example", "/protected"),
        ("/ok\u{7}bell", "/protected"),
        ("", "/protected"),
    ];
    for (next, expected) in cases {
        let client = app.new_client();
        let res = client
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_redirect_to(&res, expected);
    }
}

#[actix_web::test]
async fn wrong_password_unknown_user_and_disabled_account_get_the_same_401() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    app.logged_in_user("carol").await;
    let admin = app.logged_in_admin("root").await;
    // carol (user 2) is disabled by an admin; her password is right.
    assert_redirect_to(
        &admin.post_form("/admin/users/2/disable", &[]).await,
        "/admin",
    );
    let attempts = [
        ("wrong password", "alice", "not-the-password"),
        ("unknown user", "nobody", "not-the-password"),
        ("disabled account", "carol", PASSWORD),
    ];
    for (case, username, password) in attempts {
        let res = app.new_client().login(username, password).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert!(set_cookie(&res, "access_token").is_none(), "{case}");
        assert!(set_cookie(&res, "refresh_token").is_none(), "{case}");
        let html = res.text().await.unwrap();
        assert_eq!(
            login_error(&html).as_deref(),
            Some("Invalid username or password."),
            "{case}: the same message"
        );
        assert!(
            html.contains(&format!("value=\"{username}\"")),
            "{case}: username kept"
        );
        assert!(
            !html.contains(password) && !html.contains(&password.replace('&', "&amp;")),
            "{case}: password not echoed"
        );
    }
}

/// The message of the login form's error box.
fn login_error(html: &str) -> Option<String> {
    let start = html.find("id=\"login-error\"><p>")? + "id=\"login-error\"><p>".len();
    let end = html[start..].find("</p>")? + start;
    Some(html[start..end].to_owned())
}

#[actix_web::test]
async fn logout_revokes_the_session_and_expires_both_cookies() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    let refresh = client.cookie("refresh_token").unwrap();
    let res = client.post_form("/logout", &[]).await;
    assert_redirect_to(&res, "/");
    for name in ["access_token", "refresh_token"] {
        let cookie = set_cookie(&res, name).unwrap_or_else(|| panic!("{name} expired"));
        assert_eq!(cookie.get("max-age"), Some("0"), "{name}");
    }
    assert_eq!(
        client.get("/protected").await.status(),
        StatusCode::SEE_OTHER
    );
    let html = client.get("/").await.text().await.unwrap();
    assert!(html.contains("You have been logged out."));
    // The refresh token is revoked in the database, not only forgotten.
    assert_eq!(
        app.bearer_post("/token/refresh", &refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
