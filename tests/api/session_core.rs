//! The session core (reference §3, §4, §5): the handler's decision about the
//! token cookies is final, the CSRF token changes with the login state, the
//! re-checked routes refuse tokens of ended sessions, and page-only paths
//! answer API requests in JSON without cookies.

use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::helpers::*;

/// Every `Set-Cookie` name appears at most once.
#[track_caller]
fn assert_no_cookie_twice(res: &reqwest::Response) {
    let names: Vec<String> = set_cookies(res).into_iter().map(|c| c.name).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "a cookie set twice: {names:?}");
}

/// Both token cookies expired by this response.
#[track_caller]
fn assert_logged_out_by(res: &reqwest::Response) {
    for name in ["access_token", "refresh_token"] {
        assert_eq!(
            set_cookie(res, name).map(|c| c.get("max-age").map(str::to_owned)),
            Some(Some("0".into())),
            "{name} expired"
        );
    }
    assert_no_cookie_twice(res);
}

/// The id of the session marked "this device" on an account page.
fn this_session_id(html: &str) -> String {
    let row = html
        .split("<tr")
        .find(|r| r.contains("this device"))
        .expect("the current session is listed");
    let at = row.find("/account/sessions/").expect("an end button") + "/account/sessions/".len();
    row[at..].split('/').next().unwrap().to_owned()
}

/// Who the browser is on `/protected`, or `None` when sent to log in.
async fn who(browser: &Client) -> Option<String> {
    let res = browser.get("/protected").await;
    assert_no_cookie_twice(&res);
    if res.status() == StatusCode::SEE_OTHER {
        return None;
    }
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let marker = "<p class=\"big\">Logged in as ";
    let at = html.find(marker)? + marker.len();
    Some(html[at..].split('<').next()?.trim().to_owned())
}

/// Moves the server's clock past the access token's lifetime (and leeway).
fn expire_access(app: &TestApp) {
    app.clock.advance(900 + 30);
}

#[actix_web::test]
async fn log_out_everywhere_with_an_expired_access_cookie_logs_this_browser_out() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let token = browser.csrf_token().await;
    expire_access(&app);
    // The form was loaded before the access token expired.
    let res = browser
        .post_form_raw("/account/logout-everywhere", &[("csrf_token", &token)])
        .await;
    assert_redirect_to(&res, "/");
    assert_logged_out_by(&res);
    assert_eq!(who(&browser).await, None);
    assert_eq!(live_sessions(&app, 1), 0);
}

#[actix_web::test]
async fn ending_the_current_session_with_an_expired_access_cookie_logs_this_browser_out() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let html = browser.get("/account").await.text().await.unwrap();
    let id = this_session_id(&html);
    let token = meta_csrf(&html).unwrap();
    expire_access(&app);
    let res = browser
        .post_form_raw(
            &format!("/account/sessions/{id}/end"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_redirect_to(&res, "/");
    assert_logged_out_by(&res);
    assert_eq!(who(&browser).await, None);
}

#[actix_web::test]
async fn logging_in_as_bob_while_holding_alices_cookies_makes_the_browser_bob() {
    let app = spawn_app().await;
    app.logged_in_user("bob").await;
    let browser = app.logged_in_user("alice").await;
    expire_access(&app);
    let res = browser.login("bob", PASSWORD).await;
    assert_redirect_to(&res, "/protected");
    assert_no_cookie_twice(&res);
    assert_eq!(who(&browser).await.as_deref(), Some("bob"));
    assert_eq!(live_sessions(&app, 2), 0, "alice's replaced session ended");
    assert_eq!(
        live_sessions(&app, 1),
        2,
        "bob's first browser and this one"
    );
}

#[actix_web::test]
async fn registering_while_holding_another_users_cookies_makes_the_browser_the_new_user() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    expire_access(&app);
    let res = browser.register("carol", PASSWORD).await;
    assert_redirect_to(&res, "/protected");
    assert_no_cookie_twice(&res);
    assert_eq!(who(&browser).await.as_deref(), Some("carol"));
    assert_eq!(live_sessions(&app, 1), 0);
}

#[actix_web::test]
async fn logging_in_while_holding_a_revoked_refresh_cookie_works() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let refresh = browser.cookie("refresh_token").unwrap();
    assert_eq!(
        app.bearer_post("/logout", &refresh).await.status(),
        StatusCode::NO_CONTENT
    );
    expire_access(&app);
    let res = browser.login("alice", PASSWORD).await;
    assert_redirect_to(&res, "/protected");
    let new = set_cookie(&res, "refresh_token").expect("a new refresh cookie");
    assert_ne!(new.get("max-age"), Some("0"));
    assert_no_cookie_twice(&res);
    assert_eq!(who(&browser).await.as_deref(), Some("alice"));
}

#[actix_web::test]
async fn a_form_left_open_past_the_access_ttl_still_changes_the_password() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let token = browser.csrf_token().await;
    let old_refresh = browser.cookie("refresh_token").unwrap();
    expire_access(&app);
    let new_password = "an0ther-Long-passw0rd";
    let res = browser
        .post_form_raw(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("new_password_confirm", new_password),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_redirect_to(&res, "/account");
    // The implicit refresh rotated the cookies and the handler kept them.
    let rotated = set_cookie(&res, "refresh_token").expect("rotated refresh cookie");
    assert_ne!(rotated.value, old_refresh);
    assert_ne!(rotated.get("max-age"), Some("0"));
    assert_no_cookie_twice(&res);
    assert_eq!(who(&browser).await.as_deref(), Some("alice"));
    assert_eq!(
        app.api_login("alice", new_password).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn the_csrf_token_changes_on_login_register_and_logout() {
    let app = spawn_app().await;
    app.logged_in_user("bob").await;
    let browser = app.new_client();
    for step in ["register", "logout", "login"] {
        let before = browser.csrf_token().await;
        let res = match step {
            "register" => browser.register("alice", PASSWORD).await,
            "logout" => browser.post_form("/logout", &[]).await,
            _ => browser.login("alice", PASSWORD).await,
        };
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{step}");
        let after = browser.csrf_token().await;
        assert_ne!(before, after, "{step} renews the CSRF token");
        // A form from before the change is refused after it.
        let res = browser
            .post_form_raw("/logout", &[("csrf_token", &before)])
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{step}: stale token");
    }
}

#[actix_web::test]
async fn an_implicit_refresh_keeps_the_csrf_token_so_open_forms_still_work() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let before = browser.csrf_token().await;
    expire_access(&app);
    assert_eq!(who(&browser).await.as_deref(), Some("alice"));
    assert_eq!(browser.csrf_token().await, before);
}

/// Alice's first browser, after her second browser logged out everywhere:
/// its access token is still valid by the clock, its session is not.
async fn browser_of_an_ended_session(app: &TestApp, username: &str, admin: bool) -> Client {
    let first = if admin {
        app.logged_in_admin(username).await
    } else {
        app.logged_in_user(username).await
    };
    let second = app.new_client();
    assert_redirect_to(&second.login(username, PASSWORD).await, "/protected");
    let res = second.post_form("/account/logout-everywhere", &[]).await;
    assert_redirect_to(&res, "/");
    first
}

#[actix_web::test]
async fn a_token_of_an_ended_session_opens_protected_but_not_the_account_forms() {
    let app = spawn_app().await;
    let browser = browser_of_an_ended_session(&app, "alice", false).await;
    // Ordinary pages trust the access token until it expires...
    assert_eq!(who(&browser).await.as_deref(), Some("alice"));
    // ...the account page too (it is an ordinary page)...
    assert_eq!(browser.get("/account").await.status(), StatusCode::OK);
    // ...the re-checked routes do not, and change nothing.
    let new_password = "an0ther-Long-passw0rd";
    let res = browser.change_password(PASSWORD, new_password).await;
    assert_redirect_to(&res, "/login?next=%2Faccount%2Fpassword");
    assert_eq!(
        app.api_login("alice", new_password).await.status(),
        StatusCode::UNAUTHORIZED,
        "the password did not change"
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn a_token_of_an_ended_admin_session_performs_no_admin_action() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await; // user 1
    let admin = browser_of_an_ended_session(&app, "root", true).await;
    let res = admin
        .post_form("/admin/users/1/role", &[("role", "admin")])
        .await;
    assert_redirect_to(&res, "/login?next=%2Fadmin%2Fusers%2F1%2Frole");
    assert_eq!(role_and_status(&app, 1).0, "user", "no changed row");
    let res = admin.get("/admin").await;
    assert_redirect_to(&res, "/login?next=%2Fadmin");
}

#[actix_web::test]
async fn api_requests_to_page_only_paths_get_json_errors_and_no_cookies() {
    let app = spawn_app().await;
    let (user_access, _) = app.api_user("alice").await;
    app.admin_exists("root");
    let body: Value = app.api_login("root", PASSWORD).await.json().await.unwrap();
    let admin_access = body["access_token"].as_str().unwrap().to_owned();
    // A browser's cookies ride along: they must not be used or renewed.
    let browser = app.logged_in_user("bob").await;
    let cases: [(&str, &str, Option<&str>, StatusCode); 10] = [
        ("GET", "/", None, StatusCode::NOT_FOUND),
        ("GET", "/login", None, StatusCode::NOT_FOUND),
        ("GET", "/register", None, StatusCode::NOT_FOUND),
        ("GET", "/account", None, StatusCode::UNAUTHORIZED),
        ("GET", "/account", Some(&user_access), StatusCode::NOT_FOUND),
        (
            "POST",
            "/account/logout-everywhere",
            Some(&user_access),
            StatusCode::NOT_FOUND,
        ),
        ("GET", "/admin", None, StatusCode::UNAUTHORIZED),
        ("GET", "/admin", Some(&user_access), StatusCode::FORBIDDEN),
        ("GET", "/admin", Some(&admin_access), StatusCode::NOT_FOUND),
        (
            "POST",
            "/admin/users/1/disable",
            Some(&admin_access),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, token, expected) in cases {
        let mut req = match method {
            "GET" => browser.http.get(app.url(path)),
            _ => browser.http.post(app.url(path)),
        }
        .header(header::ACCEPT, "application/json");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        let what = format!("{method} {path} with {token:?}");
        assert_eq!(res.status(), expected, "{what}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        assert!(set_cookies(&res).is_empty(), "{what}: no cookie");
        assert!(res.headers().get(header::LOCATION).is_none(), "{what}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}"
        );
    }
    assert_eq!(live_sessions(&app, 1), 1, "alice's session untouched");
    assert!(!role_and_status(&app, 1).1, "alice not disabled");
    assert_eq!(who(&browser).await.as_deref(), Some("bob"));
}

#[actix_web::test]
async fn cookies_never_authenticate_an_api_request() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let res = browser
        .http
        .get(app.url("/protected"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookies(&res).is_empty());
}

#[actix_web::test]
async fn invalid_utf8_in_a_form_body_is_a_400_even_with_the_csrf_header() {
    let app = spawn_app().await;
    let browser = app.new_client();
    let token = browser.csrf_token().await;
    let res = browser
        .http
        .post(app.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-csrf-token", &token)
        .body(b"username=caf\xe9&password=x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("malformed"));
    let res = browser
        .http
        .post(app.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-csrf-token", &token)
        .body("username=caf%E9&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "percent-encoded too");
}
