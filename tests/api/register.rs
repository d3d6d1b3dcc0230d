use reqwest::StatusCode;

use crate::helpers::*;

#[actix_web::test]
async fn the_registration_form_has_every_field_and_a_csrf_token() {
    let app = spawn_app().await;
    let res = app.client.get("/register").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    for field in [
        "name=\"username\"",
        "name=\"password\"",
        "name=\"password_confirm\"",
        "name=\"csrf_token\"",
    ] {
        assert!(html.contains(field), "missing {field}");
    }
    let token = meta_csrf(&html).unwrap();
    assert!(html.contains(&format!("name=\"csrf_token\" value=\"{token}\"")));
}

#[actix_web::test]
async fn registering_logs_in_and_redirects_to_the_protected_page() {
    let app = spawn_app().await;
    let res = app.client.register("alice", PASSWORD).await;
    assert_redirect_to(&res, "/protected");
    assert!(set_cookie(&res, "access_token").is_some());
    assert!(set_cookie(&res, "refresh_token").is_some());
    let page = app.client.get("/protected").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Logged in as alice"));
    assert!(
        html.contains("Welcome, alice"),
        "flash message shown after the redirect"
    );
}

#[actix_web::test]
async fn invalid_input_is_a_422_that_states_each_problem_and_keeps_the_username() {
    let app = spawn_app().await;
    let res = app
        .client
        .post_form(
            "/register",
            &[
                ("username", "al"),
                ("password", "short"),
                ("password_confirm", "different"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"al\""), "username kept");
    assert!(html.contains("at least 3 characters"));
    assert!(html.contains("at least 8 characters"));
    assert!(html.contains("do not match"));
    assert!(!html.contains("value=\"short\""), "password never echoed");
    assert!(!html.contains("different"), "confirmation never echoed");
}

#[actix_web::test]
async fn common_passwords_and_the_username_as_password_are_refused() {
    let app = spawn_app().await;
    for (user, pw) in [
        ("alice", "password123"),
        ("alice", "qwertyuiop"),
        ("bobby_tables", "bobby_tables"),
    ] {
        let res = app.client.register(user, pw).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{pw}");
    }
    // A random password that is on no list is fine whatever its strength.
    assert_redirect_to(
        &app.client.register("alice", "q7Zp2xKw").await,
        "/protected",
    );
}

#[actix_web::test]
async fn passwords_over_72_bytes_are_refused_not_truncated() {
    let app = spawn_app().await;
    let long = "k3".repeat(37);
    let res = app.client.register("alice", &long).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("at most 72 bytes"));
}

#[actix_web::test]
async fn a_taken_username_in_another_case_is_a_409_with_the_form() {
    let app = spawn_app().await;
    assert_redirect_to(&app.client.register("Alice", PASSWORD).await, "/protected");
    let other = app.new_client();
    let res = other.register("aLiCe", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(set_cookie(&res, "access_token").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains("already taken"));
    assert!(html.contains("value=\"aLiCe\""));
}

#[actix_web::test]
async fn twenty_concurrent_registrations_of_one_name_yield_exactly_one_user() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            let name = if i % 2 == 0 { "racer" } else { "RACER" };
            app.api_register(name, PASSWORD).await.status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert_eq!(conflicts, 19, "{statuses:?}");
    assert!(statuses.iter().all(|s| !s.is_server_error()));
}

#[actix_web::test]
async fn the_username_is_escaped_when_shown_back() {
    let app = spawn_app().await;
    let res = app
        .client
        .post_form(
            "/register",
            &[
                ("username", "<script>alert(1)</script>"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
}
