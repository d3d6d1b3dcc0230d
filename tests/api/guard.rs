use reqwest::{StatusCode, header};

use crate::helpers::*;

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_login_with_next() {
    let app = spawn_app().await;
    for (path, next) in [
        ("/protected", "%2Fprotected"),
        ("/account", "%2Faccount"),
        ("/admin", "%2Fadmin"),
        ("/protected?tab=a&b=1", "%2Fprotected%3Ftab%3Da%26b%3D1"),
    ] {
        let res = app.client.get(path).await;
        assert_redirect_to(&res, &format!("/login?next={next}"));
    }
}

#[actix_web::test]
async fn after_login_the_visitor_lands_where_they_were_going() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let client = app.new_client();
    let res = client.get("/account").await;
    let to = location(&res).unwrap().to_owned();
    let html = client.get(&to).await.text().await.unwrap();
    assert!(html.contains("name=\"next\" value=\"/account\""));
    let res = client
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(client.get("/account").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_logged_in_user_sees_the_protected_page() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    let res = client.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Logged in as alice"));
}

#[actix_web::test]
async fn a_user_without_the_admin_role_gets_a_403_page() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    let res = client.get("/admin").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("administrators only"));
    // Alice (user 1) tries to promote herself: refused by the role check,
    // not by the CSRF check (which also answers 403), and nothing changed.
    let res = client
        .post_form("/admin/users/1/role", &[("role", "admin")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    assert!(html.contains("administrators only"), "{html}");
    assert!(!html.contains("did not come from this site"), "{html}");
    assert_eq!(
        role_and_status(&app, 1),
        ("user".to_owned(), false),
        "alice is still a user"
    );
    assert_eq!(client.get("/admin").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn api_requests_without_a_token_get_401_json_with_www_authenticate() {
    let app = spawn_app().await;
    let res = app
        .client
        .http
        .get(app.url("/protected"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        "Missing access token: send Authorization: Bearer <token>."
    );
}

#[actix_web::test]
async fn a_bearer_user_token_cannot_reach_admin_pages() {
    let app = spawn_app().await;
    let (access, _) = app.api_user("alice").await;
    let res = app.bearer_get("/admin", &access).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].is_string());
}
