//! Sessions (reference §4): rotation with reuse detection, the grace window,
//! implicit refresh, the account page and what ends a session.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn refresh_api(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app.bearer_post("/token/refresh", token).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn expired_access_token(sub: &str, username: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": sub, "username": username, "role": "user", "type": "access",
        "iat": now - 1000, "exp": now - 100, "jti": "old", "sid": "old",
    });
    jwt::signed("HS256", &claims, SECRET.as_bytes())
}

#[actix_web::test]
async fn replaying_a_rotated_token_after_the_grace_revokes_the_whole_family() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let (_, first) = app.api_user("alice").await;
    let (status, body) = refresh_api(&app, &first).await;
    assert_eq!(status, StatusCode::OK);
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh_api(&app, &second).await;
    assert_eq!(status, StatusCode::OK);
    let newest = body["refresh_token"].as_str().unwrap().to_owned();

    // The thief replays the first token: refused, and the family dies...
    assert_eq!(refresh_api(&app, &first).await.0, StatusCode::UNAUTHORIZED);
    // ...including the newest token, held by the legitimate client.
    assert_eq!(refresh_api(&app, &newest).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(live_sessions(&app, 1), 0);
}

#[actix_web::test]
async fn a_replay_inside_the_grace_window_gets_the_current_token_and_revokes_nothing() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "30")]).await;
    let (_, first) = app.api_user("alice").await;
    let (_, a) = refresh_api(&app, &first).await;
    let (status, b) = refresh_api(&app, &first).await;
    assert_eq!(status, StatusCode::OK, "the parallel tab is served");
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "both tabs hold the family's one live token"
    );
    assert_ne!(a["access_token"], b["access_token"]);
    let access = b["access_token"].as_str().unwrap();
    assert_eq!(
        app.bearer_get("/protected", access).await.status(),
        StatusCode::OK
    );
    assert_eq!(live_sessions(&app, 1), 1);
    // The shared successor still rotates normally.
    let (status, _) = refresh_api(&app, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn ten_concurrent_refreshes_of_one_token_never_fork_the_family() {
    for grace in ["0", "10"] {
        let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", grace)]).await;
        let (_, token) = app.api_user("alice").await;
        let results =
            futures_util::future::join_all((0..10).map(|_| refresh_api(&app, &token))).await;
        assert!(
            results.iter().all(|(s, _)| !s.is_server_error()),
            "grace {grace}: {results:?}"
        );
        let ok: Vec<&Value> = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, b)| b)
            .collect();
        assert!(!ok.is_empty(), "grace {grace}: the first refresh succeeds");
        let distinct: std::collections::HashSet<&str> = ok
            .iter()
            .map(|b| b["refresh_token"].as_str().unwrap())
            .collect();
        assert_eq!(distinct.len(), 1, "grace {grace}: one successor, never two");
        assert!(
            live_sessions(&app, 1) <= 1,
            "grace {grace}: at most one live family"
        );
        if grace == "10" {
            assert_eq!(ok.len(), 10, "inside the grace window every tab is served");
            assert_eq!(live_sessions(&app, 1), 1);
        } else {
            // No grace: the first use rotates, every other one is a replay of
            // a retired token, which is reuse and revokes the family.
            assert_eq!(ok.len(), 1, "grace 0: exactly one refresh succeeds");
            let refused = results
                .iter()
                .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
                .count();
            assert_eq!(refused, 9, "grace 0: the nine replays are refused");
            assert_eq!(
                live_sessions(&app, 1),
                0,
                "grace 0: the replays revoked the family"
            );
            let successor = ok[0]["refresh_token"].as_str().unwrap();
            assert_eq!(
                refresh_api(&app, successor).await.0,
                StatusCode::UNAUTHORIZED,
                "grace 0: the one successor died with its family"
            );
        }
    }
}

#[actix_web::test]
async fn an_expired_or_missing_access_cookie_is_refreshed_implicitly() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let old_refresh = browser.cookie("refresh_token").unwrap();
    browser.set_cookie("access_token", &expired_access_token("1", "alice"));
    let res = browser.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK);
    let access = set_cookie(&res, "access_token").expect("a fresh access cookie");
    let refresh = set_cookie(&res, "refresh_token").expect("a rotated refresh cookie");
    assert_ne!(refresh.value, old_refresh);
    assert_eq!(access.get("max-age"), Some("900"));
    assert!(res.text().await.unwrap().contains("Logged in as alice"));

    // The access cookie gone altogether: same.
    browser.set_cookie("access_token", "");
    let res = browser.get("/account").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "access_token").is_some());
}

#[actix_web::test]
async fn implicit_refresh_works_once_the_clock_passes_the_access_ttl() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let before = browser.cookie("refresh_token").unwrap();
    // The browser still sends the access cookie, but by the server's clock it
    // has expired: the page is served as alice with rotated cookies.
    app.clock.advance(900 + 10);
    let res = browser.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = set_cookie(&res, "refresh_token").expect("a rotated refresh cookie");
    assert_ne!(rotated.value, before);
    assert!(res.text().await.unwrap().contains("Logged in as alice"));
}

#[actix_web::test]
async fn a_revoked_refresh_cookie_sends_the_browser_to_login_and_expires_the_cookies() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let refresh = browser.cookie("refresh_token").unwrap();
    assert_eq!(
        app.bearer_post("/logout", &refresh).await.status(),
        StatusCode::NO_CONTENT
    );
    browser.set_cookie("access_token", &expired_access_token("1", "alice"));
    let res = browser.get("/protected").await;
    assert_redirect_to(&res, "/login?next=%2Fprotected");
    for name in ["access_token", "refresh_token"] {
        assert_eq!(
            set_cookie(&res, name).unwrap().get("max-age"),
            Some("0"),
            "{name}"
        );
    }
    // A garbage refresh cookie is treated the same way.
    let browser = app.new_client();
    browser.set_cookie("refresh_token", "garbage");
    let res = browser.get("/protected").await;
    assert_redirect_to(&res, "/login?next=%2Fprotected");
    assert_eq!(
        set_cookie(&res, "refresh_token").unwrap().get("max-age"),
        Some("0")
    );
}

#[actix_web::test]
async fn two_tabs_refreshing_at_once_both_stay_logged_in() {
    let app = spawn_app().await;
    let first = app.logged_in_user("alice").await;
    let second = app.new_client();
    let expired = expired_access_token("1", "alice");
    for tab in [&first, &second] {
        tab.set_cookie("access_token", &expired);
    }
    second.set_cookie("refresh_token", &first.cookie("refresh_token").unwrap());
    let (a, b) = tokio::join!(first.get("/protected"), second.get("/protected"));
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    assert_eq!(live_sessions(&app, 1), 1);
    // Both tabs can keep going.
    for tab in [&first, &second] {
        tab.set_cookie("access_token", &expired);
        assert_eq!(tab.get("/protected").await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn the_cookie_refresh_endpoint_rotates_and_a_replay_is_refused() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let browser = app.logged_in_user("alice").await;
    let old = browser.cookie("refresh_token").unwrap();
    let res = browser.post_form("/token/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_ne!(set_cookie(&res, "refresh_token").unwrap().value, old);
    let thief = app.new_client();
    thief.set_cookie("refresh_token", &old);
    let res = thief.post_form("/token/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        set_cookie(&res, "refresh_token").unwrap().get("max-age"),
        Some("0")
    );
    // The replay killed the family: the victim's browser must log in again.
    let res = browser.post_form("/token/refresh", &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_refresh_rereads_the_user_so_a_new_role_shows_in_the_new_token() {
    let app = spawn_app().await;
    let (_, refresh) = app.api_user("alice").await;
    let out = run_cli(&app.database_url, &["promote", "alice"], None);
    assert!(out.status.success());
    let (status, body) = refresh_api(&app, &refresh).await;
    assert_eq!(status, StatusCode::OK);
    let access = body["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["role"], "admin");
}

#[actix_web::test]
async fn a_disabled_user_gets_no_new_tokens_and_their_sessions_end_at_once() {
    let app = spawn_app().await;
    let (_, api_refresh) = app.api_user("alice").await;
    let browser = app.new_client();
    assert_redirect_to(&browser.login("alice", PASSWORD).await, "/protected");
    let admin = app.logged_in_admin("root").await;
    assert_redirect_to(
        &admin.post_form("/admin/users/1/disable", &[]).await,
        "/admin",
    );
    assert_eq!(live_sessions(&app, 1), 0, "disabling ends every session");
    assert_eq!(
        refresh_api(&app, &api_refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    browser.set_cookie("access_token", &expired_access_token("1", "alice"));
    assert_eq!(
        browser.get("/protected").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Enabling again revives none of the old sessions.
    assert_redirect_to(
        &admin.post_form("/admin/users/1/enable", &[]).await,
        "/admin",
    );
    assert_eq!(
        refresh_api(&app, &api_refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn an_admin_can_end_all_of_a_users_sessions() {
    let app = spawn_app().await;
    let (_, refresh) = app.api_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    let res = admin.post_form("/admin/users/1/sessions/end", &[]).await;
    assert_redirect_to(&res, "/admin");
    assert!(
        admin
            .get("/admin")
            .await
            .text()
            .await
            .unwrap()
            .contains("sessions have ended")
    );
    assert_eq!(
        refresh_api(&app, &refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK,
        "not disabled"
    );
}

#[actix_web::test]
async fn the_account_page_lists_browser_and_api_sessions_and_marks_this_one() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    let html = browser.get("/account").await.text().await.unwrap();
    assert!(html.contains("alice"));
    assert!(html.contains("badge-user"), "role shown");
    assert_eq!(
        html.matches("/account/sessions/").count(),
        2,
        "both sessions listed"
    );
    assert_eq!(html.matches("this device").count(), 1);
    assert!(
        html.contains("Chrome on Linux"),
        "device from the user agent"
    );
    assert!(html.contains("127.0.0.1"));
    assert!(html.contains("Log out everywhere"));
    assert!(html.contains("name=\"current_password\""));
}

/// The id in the "end session" form of the current session ("this device").
fn this_session_id(html: &str) -> String {
    let row = html
        .split("<tr")
        .find(|r| r.contains("this device"))
        .expect("the current session");
    let at = row.find("/account/sessions/").expect("an end form") + "/account/sessions/".len();
    row[at..].split('/').next().unwrap().to_owned()
}

/// The id in the first "end session" form that is not the current one.
fn other_session_id(html: &str) -> String {
    html.split("<tr")
        .filter(|row| !row.contains("this device"))
        .find_map(|row| {
            let at = row.find("/account/sessions/")? + "/account/sessions/".len();
            Some(row[at..].split('/').next()?.to_owned())
        })
        .expect("another session")
}

#[actix_web::test]
async fn ending_one_session_from_the_account_page_revokes_only_that_one() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let (status, tokens) = {
        let res = app.api_login("alice", PASSWORD).await;
        (res.status(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    let html = browser.get("/account").await.text().await.unwrap();
    let other = other_session_id(&html);
    let res = browser
        .post_form(&format!("/account/sessions/{other}/end"), &[])
        .await;
    assert_redirect_to(&res, "/account");
    assert_eq!(
        refresh_api(&app, tokens["refresh_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(live_sessions(&app, 1), 1, "this session lives on");
    let html = browser.get("/account").await.text().await.unwrap();
    assert_eq!(html.matches("/account/sessions/").count(), 1);
    // Someone else's session id does nothing: bob names alice's live
    // session (this browser's), and it lives on.
    let alice_live = this_session_id(&html);
    let bob = app.logged_in_user("bob").await;
    assert_eq!(live_sessions(&app, 2), 1);
    let res = bob
        .post_form(&format!("/account/sessions/{alice_live}/end"), &[])
        .await;
    assert_redirect_to(&res, "/account");
    let bob_page = bob.get("/account").await;
    assert_eq!(bob_page.status(), StatusCode::OK, "bob is still logged in");
    let bob_page = bob_page.text().await.unwrap();
    assert!(
        bob_page.contains("That session had already ended."),
        "bob is told nothing was ended"
    );
    assert_eq!(
        bob_page.matches("/account/sessions/").count(),
        1,
        "bob's own session is listed, nobody else's"
    );
    assert_eq!(live_sessions(&app, 1), 1, "alice's session is still live");
    assert_eq!(live_sessions(&app, 2), 1, "bob's session is untouched");
    assert_eq!(
        browser.post_form("/token/refresh", &[]).await.status(),
        StatusCode::NO_CONTENT,
        "alice's refresh token still refreshes"
    );
    assert_eq!(
        bob.post_form("/token/refresh", &[]).await.status(),
        StatusCode::NO_CONTENT,
        "bob's refresh token still refreshes"
    );
}

#[actix_web::test]
async fn ending_the_current_session_logs_this_browser_out() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let html = browser.get("/account").await.text().await.unwrap();
    let id = this_session_id(&html);
    let res = browser
        .post_form(&format!("/account/sessions/{id}/end"), &[])
        .await;
    assert_redirect_to(&res, "/");
    assert_eq!(
        set_cookie(&res, "refresh_token").unwrap().get("max-age"),
        Some("0")
    );
    assert_eq!(live_sessions(&app, 1), 0);
}

#[actix_web::test]
async fn log_out_everywhere_ends_every_session_including_this_one() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let (_, api_refresh) = {
        let body: Value = app.api_login("alice", PASSWORD).await.json().await.unwrap();
        ((), body["refresh_token"].as_str().unwrap().to_owned())
    };
    let res = browser.post_form("/account/logout-everywhere", &[]).await;
    assert_redirect_to(&res, "/");
    assert_eq!(
        set_cookie(&res, "access_token").unwrap().get("max-age"),
        Some("0")
    );
    assert_eq!(live_sessions(&app, 1), 0);
    assert_eq!(
        refresh_api(&app, &api_refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.get("/account").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn changing_the_password_ends_other_sessions_and_keeps_this_one() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let body: Value = app.api_login("alice", PASSWORD).await.json().await.unwrap();
    let other_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let new = "n3w-Sh1ny-passphrase";
    let res = browser.change_password(PASSWORD, new).await;
    assert_redirect_to(&res, "/account");
    assert_eq!(
        refresh_api(&app, &other_refresh).await.0,
        StatusCode::UNAUTHORIZED,
        "other session ended"
    );
    assert_eq!(live_sessions(&app, 1), 1, "this session kept");
    // This browser can still refresh.
    assert_eq!(
        browser.post_form("/token/refresh", &[]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.api_login("alice", new).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_password_change_needs_the_current_password_and_follows_the_rules() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    let cases = [
        (
            "wrong-current-pw",
            "n3w-Sh1ny-passphrase",
            "n3w-Sh1ny-passphrase",
            "not correct",
        ),
        (PASSWORD, "password123", "password123", "too common"),
        (PASSWORD, "short", "short", "at least 8"),
        (
            PASSWORD,
            "n3w-Sh1ny-passphrase",
            "n3w-Sh1ny-passphrasf",
            "do not match",
        ),
    ];
    for (current, new, confirm, message) in cases {
        let res = browser
            .post_form(
                "/account/password",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("new_password_confirm", confirm),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        let html = res.text().await.unwrap();
        assert!(html.contains(message), "{message}");
        assert!(
            !html.contains(new) || new == "short",
            "passwords are not echoed"
        );
    }
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::OK,
        "unchanged"
    );
}

#[actix_web::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let a = app.logged_in_admin("first").await;
    let b = app.logged_in_admin("second").await;
    let (ra, rb) = tokio::join!(
        a.post_form("/admin/users/2/role", &[("role", "user")]),
        b.post_form("/admin/users/1/role", &[("role", "user")]),
    );
    // Whichever lands second finds its author already demoted (403) or the
    // target the last admin (303 with a refusal); never both demotions.
    for res in [&ra, &rb] {
        assert!(
            matches!(res.status(), StatusCode::SEE_OTHER | StatusCode::FORBIDDEN),
            "{}",
            res.status()
        );
    }
    let admins = [
        a.get("/admin").await.status(),
        b.get("/admin").await.status(),
    ];
    assert_eq!(
        admins.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{admins:?}"
    );
}

#[actix_web::test]
async fn logging_in_again_in_the_same_browser_replaces_its_session() {
    let app = spawn_app().await;
    let browser = app.logged_in_user("alice").await;
    assert_redirect_to(&browser.login("alice", PASSWORD).await, "/protected");
    assert_redirect_to(&browser.login("alice", PASSWORD).await, "/protected");
    assert_eq!(live_sessions(&app, 1), 1, "one browser, one session");
}

#[actix_web::test]
async fn a_session_ends_at_its_maximum_lifetime_however_often_it_is_refreshed() {
    let app = spawn_app_with(&[
        ("SESSION_MAX_LIFETIME", "3600"),
        ("REFRESH_TOKEN_TTL", "1800"),
        ("ACCESS_TOKEN_TTL", "600"),
    ])
    .await;
    let (_, mut refresh) = app.api_user("alice").await;
    for _ in 0..3 {
        app.clock.advance(1000);
        let res = app.bearer_post("/token/refresh", &refresh).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "refreshed within its lifetime"
        );
        let pair: Value = res.json().await.unwrap();
        refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    // 3000 s after the login: the refresh token's own TTL would reach 4800 s,
    // but the session ends at 3600 s.
    app.clock.advance(601);
    let res = app.bearer_post("/token/refresh", &refresh).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "past SESSION_MAX_LIFETIME"
    );
}
