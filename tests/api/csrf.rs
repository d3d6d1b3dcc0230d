use reqwest::StatusCode;

use crate::helpers::*;

/// Every cookie-authenticated form refuses a missing or wrong token with 403.
#[actix_web::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token() {
    let app = spawn_app().await;
    let admin = app.logged_in_admin("root").await;
    let bob = app.logged_in_user("bob").await;
    let forms: [(&str, Vec<(&str, &str)>); 11] = [
        (
            "/register",
            vec![
                ("username", "carol"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        ),
        ("/login", vec![("username", "bob"), ("password", PASSWORD)]),
        ("/logout", vec![]),
        ("/token/refresh", vec![]),
        (
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", "n3w-Passw0rd!"),
                ("new_password_confirm", "n3w-Passw0rd!"),
            ],
        ),
        ("/account/logout-everywhere", vec![]),
        ("/account/sessions/x/end", vec![]),
        ("/admin/users/2/role", vec![("role", "admin")]),
        ("/admin/users/2/disable", vec![]),
        ("/admin/users/2/enable", vec![]),
        ("/admin/users/2/sessions/end", vec![]),
    ];
    for (path, fields) in &forms {
        let missing = admin.post_form_raw(path, fields).await;
        assert_eq!(
            missing.status(),
            StatusCode::FORBIDDEN,
            "{path} without a token"
        );
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "0123456789abcdef0123456789abcdef"));
        let res = admin.post_form_raw(path, &wrong).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("did not come from this site")
        );
    }
    // Nothing happened: carol does not exist, bob is still a user and logged in as before.
    assert_eq!(
        app.api_login("carol", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The admin was not logged out, nor logged in as bob, nor given a new password.
    let page = admin.get("/admin").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<span class=\"you\">(you)</span>")
    );
    // bob (user 2): not promoted, not disabled, his one session not ended.
    assert_eq!(
        role_and_status(&app, 2),
        ("user".to_owned(), false),
        "bob is still an active user"
    );
    assert_eq!(live_sessions(&app, 2), 1, "bob's session was not ended");
    assert_eq!(bob.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let res = bob.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Logged in as bob"));
    assert_eq!(
        bob.post_form("/token/refresh", &[]).await.status(),
        StatusCode::NO_CONTENT,
        "bob's refresh token still works"
    );
    assert_eq!(
        app.api_login("root", PASSWORD).await.status(),
        StatusCode::OK,
        "the admin's password is unchanged"
    );
}

#[actix_web::test]
async fn another_sessions_token_is_refused() {
    let app = spawn_app().await;
    let other = app.new_client().csrf_token().await;
    let client = app.new_client();
    let _own = client.csrf_token().await;
    let res = client
        .post_form_raw(
            "/register",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("csrf_token", &other),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_x_csrf_token_header_is_accepted() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    let token = client.csrf_token().await;
    let res = client
        .http
        .post(client.url("/token/refresh"))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(&res, "access_token").is_some());
}

#[actix_web::test]
async fn requests_authenticated_by_a_header_alone_are_exempt() {
    let app = spawn_app().await;
    let (_, refresh) = app.api_user("alice").await;
    let res = app.bearer_post("/logout", &refresh).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}
