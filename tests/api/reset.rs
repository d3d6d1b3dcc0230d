//! Password reset without email (reference §9): links from `/admin` and the
//! CLI, stored as hashes, 24 h, one use, a new one retires the old, using one
//! ends every session; wrong, used and expired links get the same 404.

use diesel::prelude::*;
use reqwest::StatusCode;

use crate::helpers::*;

const NEW_PASSWORD: &str = "Brand-new-passphrase-9";

fn user_id(app: &TestApp, name: &str) -> i32 {
    use portcullis::db::schema::users::dsl::*;
    users
        .filter(username.eq(name))
        .select(id)
        .first(&mut app.db())
        .unwrap()
}

/// The link's path, from the admin's one-time page.
async fn admin_link(app: &TestApp, admin: &Client, name: &str) -> String {
    let id = user_id(app, name);
    let res = admin
        .post_form(&format!("/admin/users/{id}/reset-link"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let url = page
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the link is shown")
        .to_owned();
    assert!(url.starts_with("http://localhost:8080/reset/"), "{url}");
    url.trim_start_matches("http://localhost:8080").to_owned()
}

async fn reset(client: &Client, path: &str, password: &str, confirm: &str) -> reqwest::Response {
    client
        .post_form(
            path,
            &[("password", password), ("password_confirm", confirm)],
        )
        .await
}

#[actix_web::test]
async fn an_admin_link_sets_the_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let (_, api_refresh) = {
        let res = app.api_login("alice", PASSWORD).await;
        let body: serde_json::Value = res.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let admin = app.logged_in_admin("root").await;
    let path = admin_link(&app, &admin, "alice").await;
    let token = path.trim_start_matches("/reset/");
    // Only a hash is stored.
    let stored: Vec<String> = {
        use portcullis::db::schema::reset_links::dsl::*;
        reset_links.select(token_hash).load(&mut app.db()).unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(token));

    let visitor = app.new_client();
    let form = visitor.get(&path).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("alice"));
    let res = reset(&visitor, &path, NEW_PASSWORD, "something-else-1").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = reset(&visitor, &path, "password123", "password123").await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validated like registration"
    );
    let res = reset(&visitor, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_redirect_to(&res, "/login");

    assert_eq!(live_sessions(&app, user_id(&app, "alice")), 0);
    assert_eq!(
        app.bearer_post("/token/refresh", &api_refresh)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_redirect_to(
        &alice.post_form("/account/logout-everywhere", &[]).await,
        "/login?next=%2Faccount%2Flogout-everywhere",
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    // Used: the same 404 as a wrong token.
    let used = visitor.get(&path).await;
    assert_eq!(used.status(), StatusCode::NOT_FOUND);
    let wrong = visitor.get("/reset/0123456789abcdef0123456789abcdef").await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let (used, wrong) = (used.text().await.unwrap(), wrong.text().await.unwrap());
    for page in [&used, &wrong] {
        assert!(
            page.contains("This password-reset link does not work"),
            "{page}"
        );
    }
    let res = reset(
        &visitor,
        &path,
        "Another-good-pass-7",
        "Another-good-pass-7",
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "a used link sets nothing"
    );
}

#[actix_web::test]
async fn links_expire_after_a_day_and_a_new_one_retires_the_old() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    let first = admin_link(&app, &admin, "alice").await;
    let second = admin_link(&app, &admin, "alice").await;
    let visitor = app.new_client();
    assert_eq!(
        visitor.get(&first).await.status(),
        StatusCode::NOT_FOUND,
        "retired"
    );
    assert_eq!(visitor.get(&second).await.status(), StatusCode::OK);
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(
        visitor.get(&second).await.status(),
        StatusCode::NOT_FOUND,
        "expired"
    );
    let res = reset(&visitor, &second, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn creating_a_link_needs_a_recent_authentication_and_the_cli_makes_one_too() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    app.clock.advance(601);
    let id = user_id(&app, "alice");
    let res = admin
        .post_form(&format!("/admin/users/{id}/reset-link"), &[])
        .await;
    assert_redirect_to(&res, "/reauth?next=%2Fadmin");
    assert!(
        app.bearer_get("/reset/whatever", "x").await.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "the API face of a page-only path is JSON"
    );

    let out = run_cli(&app.database_url, &["reset-link", "ALICE"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = url.trim_start_matches("http://localhost:8080").to_owned();
    assert!(path.starts_with("/reset/"), "{url}");
    let visitor = app.new_client();
    let res = reset(&visitor, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_redirect_to(&res, "/login");
    assert_eq!(
        app.api_login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let out = run_cli(&app.database_url, &["reset-link", "nobody"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named nobody"));
}
