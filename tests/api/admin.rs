use reqwest::StatusCode;

use crate::helpers::*;

/// The id of `username` as the admin page lists it.
async fn user_id(admin: &Client, username: &str) -> String {
    let html = admin.get("/admin").await.text().await.unwrap();
    let at = html
        .find(&format!("<th scope=\"row\">{username}"))
        .expect("user listed");
    let row = html[..at].rfind("id=\"user-").expect("row id") + "id=\"user-".len();
    html[row..].split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn create_admin_then_the_admin_page_lists_every_user() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    let res = admin.get("/admin").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let rows = user_rows(&html);
    assert_eq!(
        rows.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["1", "2"],
        "exactly one row per user, in creation order"
    );
    for ((_, row), (username, role)) in rows.iter().zip([("alice", "user"), ("root", "admin")]) {
        assert!(
            row.contains(&format!("<th scope=\"row\">{username}")),
            "{username}'s row names them: {row}"
        );
        assert!(
            row.contains(&format!("<span class=\"badge badge-{role}\">{role}</span>")),
            "{username} is shown as {role}: {row}"
        );
        assert!(
            row.contains("<span class=\"status status-active\">active</span>"),
            "{username} is shown as active: {row}"
        );
        for label in ["Created", "Last login"] {
            let shown = cell(row, label);
            let when = chrono::NaiveDateTime::parse_from_str(&shown, "%Y-%m-%d %H:%M UTC")
                .unwrap_or_else(|e| panic!("{username} {label} {shown:?}: {e}"))
                .and_utc();
            let age = chrono::Utc::now() - when;
            assert!(
                age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::minutes(2),
                "{username} {label} is just now, not {shown}"
            );
        }
    }
    assert!(rows[1].1.contains("(you)"), "the admin's own row is marked");
    assert!(!rows[0].1.contains("(you)"));
}

/// The rows of the users table: (the N of `id="user-N"`, the row's HTML).
fn user_rows(html: &str) -> Vec<(String, String)> {
    html.split("<tr id=\"user-")
        .skip(1)
        .map(|rest| {
            let (id, row) = rest.split_once('"').expect("row id");
            let row = &row[..row.find("</tr>").expect("row end")];
            (id.to_owned(), row.to_owned())
        })
        .collect()
}

/// The text of the cell with `data-label="{label}"` in one row.
fn cell(row: &str, label: &str) -> String {
    let start = row
        .find(&format!("data-label=\"{label}\""))
        .unwrap_or_else(|| panic!("no {label} cell in {row}"));
    let text = &row[start..];
    let text = &text[text.find('>').expect("cell opens") + 1..];
    text[..text.find('<').expect("cell closes")]
        .trim()
        .to_owned()
}

#[actix_web::test]
async fn promoting_a_user_lets_them_reach_admin_pages_at_once() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    assert_eq!(alice.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let id = user_id(&admin, "alice").await;
    let res = admin
        .post_form(&format!("/admin/users/{id}/role"), &[("role", "admin")])
        .await;
    assert_redirect_to(&res, "/admin");
    assert!(
        admin
            .get("/admin")
            .await
            .text()
            .await
            .unwrap()
            .contains("alice is now an admin")
    );
    // The admin check reads the database, so alice's old access token suffices.
    assert_eq!(alice.get("/admin").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn demoting_an_admin_takes_admin_pages_away_at_once() {
    let app = spawn_app().await;
    let other = app.logged_in_admin("other").await;
    let admin = app.logged_in_admin("root").await;
    let id = user_id(&admin, "other").await;
    assert_eq!(other.get("/admin").await.status(), StatusCode::OK);
    assert_redirect_to(
        &admin
            .post_form(&format!("/admin/users/{id}/role"), &[("role", "user")])
            .await,
        "/admin",
    );
    assert_eq!(other.get("/admin").await.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_admin_cannot_demote_or_disable_themselves() {
    let app = spawn_app().await;
    app.logged_in_admin("second").await;
    let admin = app.logged_in_admin("root").await;
    let me = user_id(&admin, "root").await;
    let res = admin
        .post_form(&format!("/admin/users/{me}/role"), &[("role", "user")])
        .await;
    assert_redirect_to(&res, "/admin");
    let html = admin.get("/admin").await.text().await.unwrap();
    assert!(html.contains("cannot demote or disable your own account"));
    let res = admin
        .post_form(&format!("/admin/users/{me}/disable"), &[])
        .await;
    assert_redirect_to(&res, "/admin");
    assert_eq!(
        admin.get("/admin").await.status(),
        StatusCode::OK,
        "still an active admin"
    );
}

#[actix_web::test]
async fn an_unknown_role_or_user_is_refused_cleanly() {
    let app = spawn_app().await;
    let admin = app.logged_in_admin("root").await;
    let res = admin
        .post_form("/admin/users/1/role", &[("role", "superuser")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = admin
        .post_form("/admin/users/999/role", &[("role", "admin")])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = admin
        .post_form("/admin/users/abc/role", &[("role", "admin")])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_disabled_user_cannot_log_in_and_gets_the_generic_message() {
    let app = spawn_app().await;
    app.logged_in_user("alice").await;
    let admin = app.logged_in_admin("root").await;
    let id = user_id(&admin, "alice").await;
    assert_redirect_to(
        &admin
            .post_form(&format!("/admin/users/{id}/disable"), &[])
            .await,
        "/admin",
    );
    let res = app.new_client().login("alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid username or password.")
    );
    assert_eq!(
        app.api_login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Enabling again lets them log in (but revives no old session).
    assert_redirect_to(
        &admin
            .post_form(&format!("/admin/users/{id}/enable"), &[])
            .await,
        "/admin",
    );
    assert_redirect_to(
        &app.new_client().login("alice", PASSWORD).await,
        "/protected",
    );
}
