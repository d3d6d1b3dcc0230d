use reqwest::{StatusCode, header};

use crate::helpers::*;

#[actix_web::test]
async fn health_check_answers_ok() {
    let app = spawn_app().await;
    let res = app.client.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[actix_web::test]
async fn the_home_page_links_to_login_and_register_or_to_the_protected_pages() {
    let app = spawn_app().await;
    let html = app.client.get("/").await.text().await.unwrap();
    assert!(html.contains("href=\"/login\"") && html.contains("href=\"/register\""));
    assert!(html.contains("<meta name=\"csrf-token\""));
    let client = app.logged_in_user("alice").await;
    let html = client.get("/").await.text().await.unwrap();
    assert!(html.contains("href=\"/protected\""));
    assert!(html.contains("alice"), "nav shows who is logged in");
}

#[actix_web::test]
async fn static_css_is_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app.client.get("/static/css/site.css").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(res.text().await.unwrap().contains("prefers-color-scheme"));
    assert_eq!(
        app.client.get("/static/css/nope.css").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client.get("/static/../Cargo.toml").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn unknown_paths_get_a_404_page_in_the_layout() {
    let app = spawn_app().await;
    let res = app.client.get("/no/such/page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<meta name=\"csrf-token\""),
        "rendered in the layout"
    );
    assert!(html.contains("404"));
}

#[actix_web::test]
async fn a_wrong_method_is_a_rendered_error_not_a_bare_one() {
    let app = spawn_app().await;
    let res = app
        .client
        .http
        .delete(app.url("/login"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<meta name=\"csrf-token\"")
    );
}

#[actix_web::test]
async fn html_responses_carry_the_security_headers() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    for path in ["/", "/login", "/protected", "/nope"] {
        let res = client.get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("referrer-policy"));
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}

#[actix_web::test]
async fn token_cookies_have_exactly_the_contract_attributes() {
    let app = spawn_app().await;
    let res = app.client.register("alice", PASSWORD).await;
    let access = set_cookie(&res, "access_token").unwrap();
    assert!(access.has("httponly"));
    assert_eq!(access.get("samesite"), Some("Lax"));
    assert_eq!(access.get("path"), Some("/"));
    assert_eq!(access.get("max-age"), Some("900"));
    assert!(
        !access.has("secure"),
        "COOKIE_SECURE defaults to false in development"
    );

    let refresh = set_cookie(&res, "refresh_token").unwrap();
    assert!(refresh.has("httponly"));
    assert_eq!(refresh.get("samesite"), Some("Strict"));
    assert_eq!(refresh.get("max-age"), Some("1209600"));
    assert!(!refresh.has("secure"));

    let session = set_cookie(&res, "portcullis_session")
        .or(set_cookie(&app.client.get("/").await, "portcullis_session"))
        .expect("session cookie");
    assert!(session.has("httponly"));
    assert_eq!(session.get("samesite"), Some("Lax"));
}

#[actix_web::test]
async fn cookie_secure_adds_the_secure_attribute_and_the_host_prefix_everywhere() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    // A client would not send Secure cookies back over plain http, so carry
    // the session cookie by hand and read the attributes from the headers.
    let page = app.client.get("/register").await;
    assert!(page.headers().contains_key("strict-transport-security"));
    assert!(set_cookie(&page, "portcullis_session").is_none());
    let session = set_cookie(&page, "__Host-portcullis_session").unwrap();
    assert!(session.has("secure"));
    assert_eq!(session.get("path"), Some("/"));
    assert!(!session.has("domain"));
    let token = meta_csrf(&page.text().await.unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(app.url("/register"))
        .header(
            header::COOKIE,
            format!("__Host-portcullis_session={}", session.value),
        )
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&res, "/protected");
    for name in ["access_token", "refresh_token"] {
        assert!(
            set_cookie(&res, name).is_none(),
            "{name} without the prefix"
        );
        let cookie = set_cookie(&res, &format!("__Host-{name}")).unwrap();
        assert!(cookie.has("secure"), "{name}");
        assert_eq!(cookie.get("path"), Some("/"), "{name}");
        assert!(!cookie.has("domain"), "{name}");
    }
    // Only the prefixed names are read back: a plain `access_token` (which a
    // sibling subdomain could plant) is not ours.
    let access = set_cookie(&res, "__Host-access_token").unwrap().value;
    let get = |cookie: String| {
        http.get(app.url("/protected"))
            .header(header::COOKIE, cookie)
            .send()
    };
    let res = get(format!("__Host-access_token={access}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = get(format!("access_token={access}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_repeat_visit_does_not_resend_the_session_cookie() {
    let app = spawn_app().await;
    let client = app.logged_in_user("alice").await;
    // The first page shows (and consumes) the welcome flash: the session changes.
    client.get("/protected").await;
    let res = client.get("/protected").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        set_cookies(&res).is_empty(),
        "nothing to set: {:?}",
        set_cookies(&res)
    );
}

/// The value of `attribute` on the `<input id="{id}">`, if it has one.
fn input_attribute(html: &str, id: &str, attribute: &str) -> Option<String> {
    let start = html
        .find(&format!("<input id=\"{id}\""))
        .unwrap_or_else(|| panic!("no input #{id}"));
    let tag = &html[start..start + html[start..].find('>').expect("tag end")];
    let at = tag.find(&format!(" {attribute}=\""))? + attribute.len() + 3;
    Some(tag[at..at + tag[at..].find('"')?].to_owned())
}

/// Whether the `.field` block holding `<label for="{id}">` is marked invalid.
fn field_is_invalid(html: &str, id: &str) -> bool {
    let label = html
        .find(&format!("<label for=\"{id}\">"))
        .unwrap_or_else(|| panic!("no label for #{id}"));
    let div = html[..label]
        .rfind("<div class=\"field")
        .expect("field block");
    html[div..label].starts_with("<div class=\"field invalid\"")
}

/// Checks each field's wiring: (id, its `aria-describedby`, invalid?), and
/// that every id it points at is on the page.
#[track_caller]
fn assert_fields(html: &str, page: &str, fields: &[(&str, Option<&str>, bool)]) {
    for (id, described_by, invalid) in fields {
        let actual = input_attribute(html, id, "aria-describedby");
        assert_eq!(
            actual.as_deref(),
            *described_by,
            "{page} #{id} aria-describedby"
        );
        for target in actual.iter().flat_map(|v| v.split(' ')) {
            assert_eq!(
                html.matches(&format!(" id=\"{target}\"")).count(),
                1,
                "{page} #{id} points at #{target}, which is on the page once"
            );
        }
        let aria_invalid = input_attribute(html, id, "aria-invalid");
        assert_eq!(
            aria_invalid.as_deref(),
            invalid.then_some("true"),
            "{page} #{id} aria-invalid"
        );
        assert_eq!(
            field_is_invalid(html, id),
            *invalid,
            "{page} #{id} .invalid"
        );
    }
}

#[actix_web::test]
async fn form_fields_are_described_by_their_hint_and_only_with_an_error_by_their_error() {
    let app = spawn_app().await;
    let client = app.new_client();
    let html = client.get("/register").await.text().await.unwrap();
    assert_fields(
        &html,
        "/register",
        &[
            ("username", Some("username-hint"), false),
            ("password", Some("password-hint"), false),
            ("password_confirm", None, false),
        ],
    );
    assert!(!html.contains("-error\""), "no error ids without errors");

    let res = client
        .post_form(
            "/register",
            &[
                ("username", "a b"),
                ("password", "short"),
                ("password_confirm", "other"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert_fields(
        &html,
        "/register with errors",
        &[
            ("username", Some("username-hint username-error"), true),
            ("password", Some("password-hint password-error"), true),
            ("password_confirm", Some("password_confirm-error"), true),
        ],
    );
    assert_eq!(
        input_attribute(&html, "username", "value").as_deref(),
        Some("a b")
    );
    assert_eq!(input_attribute(&html, "password", "value"), None);

    let browser = app.logged_in_user("alice").await;
    let html = browser.get("/account").await.text().await.unwrap();
    assert_fields(
        &html,
        "/account",
        &[
            ("current_password", None, false),
            ("new_password", Some("new_password-hint"), false),
            ("new_password_confirm", None, false),
        ],
    );
    let cases = [
        (
            PASSWORD,
            "n3w-Sh1ny-passphrasX",
            [
                ("current_password", None, false),
                ("new_password", Some("new_password-hint"), false),
                (
                    "new_password_confirm",
                    Some("new_password_confirm-error"),
                    true,
                ),
            ],
        ),
        (
            "wrong-current-pw",
            "n3w-Sh1ny-passphrase",
            [
                ("current_password", Some("current_password-error"), true),
                ("new_password", Some("new_password-hint"), false),
                ("new_password_confirm", None, false),
            ],
        ),
    ];
    for (current, confirm, fields) in cases {
        let res = browser
            .post_form(
                "/account/password",
                &[
                    ("current_password", current),
                    ("new_password", "n3w-Sh1ny-passphrase"),
                    ("new_password_confirm", confirm),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text().await.unwrap();
        assert_fields(&html, "/account with an error", &fields);
    }
}
