//! The flows a person goes through, typed and clicked in headless Chromium.

use std::time::{Duration, Instant};

use fantoccini::key::Key;

use crate::{driver::Driver, helpers::*};

#[actix_web::test]
async fn registering_by_typing_lands_on_protected_and_a_reload_stays_logged_in() {
    let Some(driver) = Driver::start("register_and_reload") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;

    b.goto(&app.url("/")).await;
    b.click("main a[href='/register']").await;
    b.wait_for_path("/register").await;
    b.type_into("#username", "Alice.B").await;
    b.type_into("#password", PASSWORD).await;
    b.type_into("#password_confirm", PASSWORD).await;
    b.click("form[action='/register'] button[type=submit]")
        .await;
    b.wait_for_path("/protected").await;
    assert_eq!(b.text("main h1").await, "Protected page");
    assert!(b.text("main").await.contains("Logged in as Alice.B"));
    assert!(b.text(".flash").await.contains("Welcome, Alice.B"));
    assert_eq!(b.text("header .nav-user").await, "Alice.B");
    assert_eq!(b.text("header .badge").await.to_lowercase(), "user");

    b.client.refresh().await.expect("reload");
    b.wait_for_path("/protected").await;
    assert!(b.text("main").await.contains("Logged in as Alice.B"));
    // The flash was shown once and is gone.
    assert!(b.find_all(".flash").await.is_empty());
    b.close().await;
}

#[actix_web::test]
async fn page_scripts_cannot_read_either_token_cookie() {
    let Some(driver) = Driver::start("httponly_tokens") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.register(&app.addr, "carol", PASSWORD).await;

    let seen_by_scripts = b.js("return document.cookie;").await;
    let seen_by_scripts = seen_by_scripts.as_str().unwrap_or_default();
    assert!(
        !seen_by_scripts.contains("access_token"),
        "{seen_by_scripts}"
    );
    assert!(
        !seen_by_scripts.contains("refresh_token"),
        "{seen_by_scripts}"
    );
    // The browser does hold them, marked HttpOnly.
    for name in ["access_token", "refresh_token"] {
        let cookie = b
            .client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("the browser holds {name}: {e}"));
        assert_eq!(cookie.http_only(), Some(true), "{name} is HttpOnly");
    }
    b.close().await;
}

#[actix_web::test]
async fn the_log_out_button_ends_the_session() {
    let Some(driver) = Driver::start("log_out_button") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.register(&app.addr, "dave", PASSWORD).await;

    b.click("header form[action='/logout'] button").await;
    b.wait_for_path("/").await;
    assert!(b.text(".flash").await.contains("You have been logged out."));
    assert!(b.find_all("header .nav-user").await.is_empty());
    assert_eq!(b.cookie_value("access_token").await, None);
    assert_eq!(b.cookie_value("refresh_token").await, None);

    b.goto(&app.url("/protected")).await;
    b.wait_for_path("/login?next=%2Fprotected").await;
    b.close().await;
}

#[actix_web::test]
async fn a_logged_out_visit_to_account_comes_back_there_after_logging_in() {
    let Some(driver) = Driver::start("next_after_login") else {
        return;
    };
    let app = spawn_app().await;
    assert_eq!(
        app.api_register("erin", PASSWORD).await.status(),
        reqwest::StatusCode::CREATED
    );
    let b = driver.browser().await;

    b.goto(&app.url("/account")).await;
    b.wait_for_path("/login?next=%2Faccount").await;
    assert_eq!(b.text("main h1").await, "Log in");
    b.fill_login("erin", PASSWORD).await;
    b.wait_for_path("/account").await;
    assert_eq!(b.text("main h1").await, "Your account");
    assert!(b.text("main").await.contains("erin"));
    b.close().await;
}

#[actix_web::test]
async fn a_validation_error_is_shown_beside_its_field() {
    let Some(driver) = Driver::start("validation_errors") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;

    b.goto(&app.url("/register")).await;
    b.type_into("#username", "frank").await;
    b.type_into("#password", "short").await;
    b.type_into("#password_confirm", "shorter").await;
    b.click("form[action='/register'] button[type=submit]")
        .await;
    b.wait_for_path("/register").await;
    b.find(".error-summary").await;

    // The message sits in the password's own field and the input points to it.
    let message = b.text(".field.invalid #password-error").await;
    assert!(message.contains("at least 8 characters"), "{message}");
    let password = b.find("#password").await;
    let described_by = password.attr("aria-describedby").await.expect("attr");
    assert!(
        described_by
            .unwrap_or_default()
            .split_whitespace()
            .any(|id| id == "password-error"),
        "#password is described by its error"
    );
    assert_eq!(
        password
            .attr("aria-invalid")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    let confirm = b.text(".field.invalid #password_confirm-error").await;
    assert!(confirm.contains("do not match"), "{confirm}");

    // The summary at the top lists each problem and links to its field.
    let summary_links = b.find_all(".error-summary a").await;
    let mut targets = Vec::new();
    for link in &summary_links {
        targets.push(link.attr("href").await.expect("href").unwrap_or_default());
    }
    assert!(targets.contains(&"#password".to_owned()), "{targets:?}");

    // The username is kept, the passwords are not echoed.
    assert_eq!(
        b.find("#username")
            .await
            .prop("value")
            .await
            .expect("value"),
        Some("frank".to_owned())
    );
    assert_eq!(
        password.prop("value").await.expect("value"),
        Some(String::new())
    );
    // The username field, which was fine, is not marked invalid.
    assert!(b.find_all(".field.invalid #username").await.is_empty());
    b.close().await;
}

/// The small form on `username`'s row of the admin table that promotes them.
fn promote_button(username: &str) -> String {
    format!("form[action$='/role'] button[aria-label='Promote {username} to admin']")
}

#[actix_web::test]
async fn an_admin_promotes_a_user_who_then_reaches_the_admin_page() {
    let Some(driver) = Driver::start("admin_promotes") else {
        return;
    };
    let app = spawn_app().await;
    app.admin_exists("root");

    let bob = driver.browser().await;
    bob.register(&app.addr, "bob", PASSWORD).await;
    bob.goto(&app.url("/admin")).await;
    assert!(bob.text("main").await.contains("administrators only"));
    assert_eq!(bob.text(".status-code").await, "403");

    let root = driver.browser().await;
    root.login(&app.addr, "root", PASSWORD).await;
    root.click("header a[href='/admin']").await;
    root.wait_for_path("/admin").await;
    let button = promote_button("bob");
    root.click(&button).await;
    root.wait_for_path("/admin").await;
    assert!(root.text(".flash").await.contains("bob is now an admin"));
    let bob_row = root.js(
        "return [...document.querySelectorAll('tbody tr')].find(r => r.querySelector('th').textContent.trim() === 'bob').querySelector('.badge').textContent.trim();",
    ).await;
    assert_eq!(bob_row, "admin");

    // Admin pages re-check the database: bob's next request gets in.
    bob.client.refresh().await.expect("reload");
    bob.wait_for_path("/admin").await;
    assert_eq!(bob.text("main h1").await, "Users");
    root.close().await;
    bob.close().await;
}

#[actix_web::test]
async fn an_expired_access_cookie_is_refreshed_without_typing_the_password() {
    let Some(driver) = Driver::start("implicit_refresh") else {
        return;
    };
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL", "2")]).await;
    let b = driver.browser().await;
    b.register(&app.addr, "gina", PASSWORD).await;
    let first_refresh = b
        .cookie_value("refresh_token")
        .await
        .expect("refresh cookie");

    // The access cookie has Max-Age=2: wait until the browser itself drops it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.cookie_value("access_token").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the browser never expired the access cookie"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.cookie_value("refresh_token").await.is_some());

    b.goto(&app.url("/protected")).await;
    b.wait_for_path("/protected").await;
    assert!(b.text("main").await.contains("Logged in as gina"));
    assert!(
        b.cookie_value("access_token").await.is_some(),
        "a fresh access cookie was set"
    );
    let second_refresh = b
        .cookie_value("refresh_token")
        .await
        .expect("refresh cookie");
    assert_ne!(first_refresh, second_refresh, "the refresh token rotated");
    b.close().await;
}

#[actix_web::test]
async fn keyboard_focus_is_always_visible() {
    let Some(driver) = Driver::start("visible_focus") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    b.goto(&app.url("/login")).await;

    let focusable = b
        .js("return document.querySelectorAll('a[href]:not([hidden]), button:not([hidden]), input:not([type=hidden]):not([hidden])').length;")
        .await
        .as_u64()
        .expect("count");
    assert!(focusable >= 5);
    let mut seen = Vec::new();
    for _ in 0..focusable {
        let active = b.client.active_element().await.expect("active element");
        active.send_keys(&Key::Tab.to_string()).await.expect("Tab");
        let focused = b
            .js(
                "const el = document.activeElement; const s = getComputedStyle(el);
                 return { what: el.tagName + ' ' + (el.id || el.textContent.trim()),
                          style: s.outlineStyle, width: parseFloat(s.outlineWidth) };",
            )
            .await;
        assert_eq!(focused["style"], "solid", "no focus outline on {focused}");
        assert!(
            focused["width"].as_f64().unwrap_or_default() >= 2.0,
            "thin focus outline on {focused}"
        );
        seen.push(focused["what"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("A Skip to content"),
        "the first Tab press focuses the skip link: {seen:?}"
    );
    assert!(seen.iter().any(|w| w == "INPUT password"), "{seen:?}");
    b.close().await;
}

#[actix_web::test]
async fn forms_tell_password_managers_what_each_field_is() {
    let Some(driver) = Driver::start("password_manager_hints") else {
        return;
    };
    let app = spawn_app().await;
    let b = driver.browser().await;
    // (page, field id, type, autocomplete, minlength, maxlength)
    let login = [
        ("username", "text", "username", None, Some("32")),
        ("password", "password", "current-password", None, Some("72")),
    ];
    let register = [
        ("username", "text", "username", Some("3"), Some("32")),
        (
            "password",
            "password",
            "new-password",
            Some("8"),
            Some("72"),
        ),
        (
            "password_confirm",
            "password",
            "new-password",
            Some("8"),
            Some("72"),
        ),
    ];
    let account = [
        (
            "current_password",
            "password",
            "current-password",
            None,
            Some("72"),
        ),
        (
            "new_password",
            "password",
            "new-password",
            Some("8"),
            Some("72"),
        ),
        (
            "new_password_confirm",
            "password",
            "new-password",
            Some("8"),
            Some("72"),
        ),
    ];
    for (path, fields) in [
        ("/login", &login[..]),
        ("/register", &register[..]),
        ("/account", &account[..]),
    ] {
        if path == "/account" {
            b.register(&app.addr, "hana", PASSWORD).await;
        }
        b.goto(&app.url(path)).await;
        b.wait_for_path(path).await;
        // The password rules are on this page before anything was typed.
        let hint = match path {
            "/register" => Some("#password-hint"),
            "/account" => Some("#new_password-hint"),
            _ => None,
        };
        if let Some(hint) = hint {
            let rules = b.text(hint).await;
            assert!(rules.contains("At least 8 characters"), "{path} {rules}");
            assert!(rules.contains("72 bytes"), "{path} {rules}");
        }
        for (id, kind, autocomplete, min, max) in fields {
            let input = b.find(&format!("#{id}")).await;
            let attr = |name: &'static str| {
                let input = input.clone();
                async move { input.attr(name).await.expect("attribute") }
            };
            assert_eq!(attr("type").await.as_deref(), Some(*kind), "{path} #{id}");
            assert_eq!(
                attr("autocomplete").await.as_deref(),
                Some(*autocomplete),
                "{path} #{id}"
            );
            assert!(attr("required").await.is_some(), "{path} #{id} required");
            assert_eq!(attr("minlength").await.as_deref(), *min, "{path} #{id}");
            assert_eq!(attr("maxlength").await.as_deref(), *max, "{path} #{id}");
            let label = b.text(&format!("label[for={id}]")).await;
            assert!(!label.is_empty(), "{path} #{id} has a visible label");
        }
    }
    b.close().await;
}
