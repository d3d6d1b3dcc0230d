use reqwest::StatusCode;

use crate::helpers::*;

#[actix_web::test]
async fn create_admin_reads_the_password_from_stdin_and_the_admin_can_log_in() {
    let app = spawn_app().await;
    let out = app.create_admin("root", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("root"));
    let admin = app.new_client();
    assert_redirect_to(&admin.login("root", PASSWORD).await, "/protected");
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn create_admin_validates_like_registration() {
    let app = spawn_app().await;
    for (name, password, reason) in [
        ("ro", PASSWORD, "username"),
        ("root", "password123", "common"),
        ("root", "short", "at least 8"),
    ] {
        let out = app.create_admin(name, password);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one-line reason: {stderr}"
        );
    }
    assert!(app.create_admin("root", PASSWORD).status.success());
    let again = app.create_admin("ROOT", PASSWORD);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[actix_web::test]
async fn promote_gives_an_existing_user_the_admin_role() {
    let app = spawn_app().await;
    let alice = app.logged_in_user("alice").await;
    let out = run_cli(&app.database_url, &["promote", "ALICE"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(alice.get("/admin").await.status(), StatusCode::OK);
    let missing = run_cli(&app.database_url, &["promote", "nobody"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user named nobody"));
}

#[test]
fn help_lists_the_subcommands_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        &dir.path().join("x.db").display().to_string(),
        &["--help"],
        None,
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "create-admin", "promote"] {
        assert!(text.contains(sub), "{sub}");
    }
    assert!(
        !dir.path().join("x.db").exists(),
        "--help touches no database"
    );
}
