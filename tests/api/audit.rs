//! The audit log (reference §9): each event with its facts and never a
//! secret, written with its change; `/admin/audit` filtered and paged;
//! `/account/activity` with "a new device logged in"; `portcullis audit`;
//! retention.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[derive(Debug, Queryable)]
#[allow(dead_code)]
struct Event {
    id: i32,
    at: i64,
    event: String,
    actor_id: Option<i32>,
    actor_name: String,
    target_id: Option<i32>,
    target_name: String,
    ip: String,
    user_agent: String,
    session_id: Option<String>,
    detail: String,
}

fn events(app: &TestApp) -> Vec<Event> {
    use portcullis::db::schema::audit_events::dsl::*;
    audit_events.order(id.asc()).load(&mut app.db()).unwrap()
}

fn kinds(app: &TestApp) -> Vec<String> {
    events(app).into_iter().map(|e| e.event).collect()
}

fn user_id(app: &TestApp, name: &str) -> i32 {
    use portcullis::db::schema::users::dsl::*;
    users
        .filter(username.eq(name))
        .select(id)
        .first(&mut app.db())
        .unwrap()
}

#[actix_web::test]
async fn account_events_carry_who_where_and_which_session_and_no_secret() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let res = app.api_login("Alice", "wrong-password-1").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.api_login("nobody\u{7}", "wrong-password-2").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (access, refresh) = app.api_user("bob").await;
    // A replayed refresh token after the grace: reuse.
    app.bearer_post("/token/refresh", &refresh).await;
    app.clock.advance(30);
    app.bearer_post("/token/refresh", &refresh).await;
    let new = "A-different-passphrase-4";
    assert_redirect_to(&alice.change_password(PASSWORD, new).await, "/account");
    assert_redirect_to(
        &alice.post_form("/account/logout-everywhere", &[]).await,
        "/",
    );

    // The flood events are queued: wait (bounded) for them to land.
    for _ in 0..100 {
        if kinds(&app).iter().filter(|k| *k == "login_failed").count() == 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all = events(&app);
    let by = |kind: &'static str| all.iter().filter(move |e| e.event == kind);
    let alice_id = user_id(&app, "alice");

    let login = by("login_succeeded").next().expect("login_succeeded");
    assert_eq!(
        (login.target_id, login.target_name.as_str()),
        (Some(alice_id), "alice")
    );
    assert_eq!(login.ip, "127.0.0.1");
    assert!(login.session_id.is_some());
    assert!(
        login.detail.contains("pwd") && login.detail.contains("new device"),
        "{login:?}"
    );

    let failed: Vec<&Event> = by("login_failed").collect();
    assert_eq!(failed.len(), 2, "{all:?}");
    assert_eq!(failed[0].detail, "Alice", "the name as typed");
    assert_eq!(failed[0].target_id, Some(alice_id));
    assert_eq!(failed[1].detail, "nobody", "control characters dropped");
    assert_eq!(failed[1].target_id, None);

    let reuse = by("refresh_reuse_detected").next().expect("reuse");
    assert_eq!(reuse.target_name, "bob");
    let changed = by("password_changed").next().expect("password_changed");
    assert_eq!(changed.actor_id, Some(alice_id));
    assert!(by("logout_everywhere").next().is_some());

    // Never a secret.
    let text = format!("{all:?}");
    for secret in [
        PASSWORD,
        new,
        "wrong-password-1",
        access.as_str(),
        refresh.as_str(),
        SECRET,
    ] {
        assert!(!text.contains(secret), "the log holds a secret");
    }
}

#[actix_web::test]
async fn admin_actions_name_the_admin_and_the_target() {
    let app = spawn_app().await;
    app.logged_in_user("carol").await;
    let admin = app.logged_in_admin("root").await;
    let carol = user_id(&app, "carol");
    for (path, fields) in [
        (
            format!("/admin/users/{carol}/role"),
            vec![("role", "admin")],
        ),
        (format!("/admin/users/{carol}/role"), vec![("role", "user")]),
        (format!("/admin/users/{carol}/disable"), vec![]),
        (format!("/admin/users/{carol}/enable"), vec![]),
        (format!("/admin/users/{carol}/sessions/end"), vec![]),
        (format!("/admin/users/{carol}/reset-link"), vec![]),
    ] {
        let res = admin.post_form(&path, &fields).await;
        assert!(
            res.status().is_redirection() || res.status() == StatusCode::OK,
            "{path}"
        );
    }
    let root = user_id(&app, "root");
    let admin_events: Vec<Event> = events(&app)
        .into_iter()
        .filter(|e| e.actor_id == Some(root) && e.target_id == Some(carol))
        .collect();
    let names: Vec<&str> = admin_events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "role_changed",
            "role_changed",
            "user_disabled",
            "user_enabled",
            "sessions_terminated",
            "password_reset_link_created"
        ]
    );
    assert_eq!(admin_events[0].detail, "role admin");
    assert!(
        admin_events
            .iter()
            .all(|e| e.actor_name == "root" && e.target_name == "carol")
    );
    // A refused action is not an event.
    let before = events(&app).len();
    admin
        .post_form(&format!("/admin/users/{root}/disable"), &[])
        .await;
    assert_eq!(events(&app).len(), before);
}

#[actix_web::test]
async fn the_admin_audit_page_filters_and_pages() {
    let app = spawn_app().await;
    let admin = app.logged_in_admin("root").await;
    for i in 0..60 {
        app.api_login(&format!("ghost{i}"), "wrong-password-1")
            .await;
    }
    app.logged_in_user("alice").await;
    for _ in 0..100 {
        if kinds(&app).iter().filter(|k| *k == "login_failed").count() == 60 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let page = admin.get("/admin/audit").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<code>login_").count(), 50, "50 a page");
    assert!(
        html.find("alice").unwrap() < html.find("ghost").unwrap(),
        "newest first"
    );
    let older = html
        .split("href=\"/admin/audit?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older events")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let next = admin
        .get(&format!("/admin/audit?{older}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(next.contains("ghost0"), "the oldest on the second page");

    let only = admin
        .get("/admin/audit?event=login_succeeded&user=ALICE")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(only.matches("<code>login_succeeded</code>").count(), 1);
    assert!(!only.contains("<code>login_failed</code>"));
    let res = admin.get("/admin/audit?event=nonsense").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = admin.get("/admin/audit?before=x").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Not for users.
    let alice = app.new_client();
    alice.login("alice", PASSWORD).await;
    assert_eq!(
        alice.get("/admin/audit").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn a_user_sees_their_own_activity_and_new_devices() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    app.logged_in_user("bob").await;
    app.api_login("alice", "wrong-password-1").await;
    // Another browser: a new device.
    let phone = Client::new(&app.addr);
    let res = phone
        .http
        .post(app.url("/login"))
        .header("user-agent", "Mozilla/5.0 (iPhone) Safari/605.1")
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for _ in 0..100 {
        if kinds(&app).contains(&"login_failed".to_owned()) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let page = alice.get("/account/activity").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("A new device logged in"));
    assert!(html.contains("Safari on iOS"));
    assert!(html.contains("Failed login"));
    assert!(!html.contains("bob"), "only her own events");
    let api = app.api_user("carol").await.0;
    let res = app.bearer_get("/account/activity", &api).await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[actix_web::test]
async fn the_cli_prints_json_lines_oldest_first_and_old_events_are_pruned() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    app.logged_in_user("bob").await;
    let out = run_cli(&app.database_url, &["audit"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["target"], "alice", "oldest first");
    assert_eq!(lines[1]["event"], "login_succeeded");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    let out = run_cli(&app.database_url, &["audit", "--user", "bob"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let out = run_cli(
        &app.database_url,
        &["audit", "--since", "2999-01-01T00:00:00Z"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    let out = run_cli(&app.database_url, &["audit", "--since", "yesterday"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));

    // An event older than AUDIT_RETENTION_DAYS goes at the next pruning
    // (start-up, here); a recent one stays.
    {
        use portcullis::db::schema::audit_events::dsl::*;
        diesel::update(audit_events.filter(target_name.eq("alice")))
            .set(at.eq(at - 3 * 24 * 3600))
            .execute(&mut app.db())
            .unwrap();
    }
    let _later = spawn_app_with(&[
        ("DATABASE_URL", &app.database_url),
        ("AUDIT_RETENTION_DAYS", "2"),
    ])
    .await;
    let names: Vec<String> = events(&app).into_iter().map(|e| e.target_name).collect();
    assert_eq!(names, ["bob"]);
}
