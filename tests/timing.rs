//! Enumeration resistance (reference §6): an unknown user and a wrong
//! password get the same answer, and take the same time, at BCRYPT_COST=10.
//! Its own test binary so no other test competes for the CPU while it measures.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Instant;

use helpers::*;
use reqwest::StatusCode;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app_with(&[("BCRYPT_COST", "10"), ("LOGIN_MAX_FAILURES", "1000000")]).await;
    assert_eq!(
        app.api_register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );

    // Same status and byte-identical body on the API.
    let wrong = app.api_login("alice", "not-the-password").await;
    let unknown = app.api_login("nobody-here", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(wrong.bytes().await.unwrap(), unknown.bytes().await.unwrap());

    // On the form: identical apart from the CSRF token and the echoed username.
    let app = &app;
    let page = |name: &'static str| async move {
        let res = app.client.login(name, "not-the-password").await;
        let status = res.status();
        let html = res.text().await.unwrap();
        let token = meta_csrf(&html).unwrap();
        (
            status,
            html.replace(&token, "TOKEN")
                .replace(&format!("value=\"{name}\""), "value=\"NAME\""),
        )
    };
    let (wrong_status, wrong_html) = page("alice").await;
    let (unknown_status, unknown_html) = page("nobody-here").await;
    assert_eq!(wrong_status, unknown_status);
    assert_eq!(wrong_html, unknown_html);

    // Timing: interleaved samples, medians within 20 %.
    let mut known = Vec::new();
    let mut ghost = Vec::new();
    for i in 0..31 {
        for (name, samples) in [("alice", &mut known), ("nobody-here", &mut ghost)] {
            let started = Instant::now();
            let res = app.api_login(name, &format!("wrong-{i}")).await;
            samples.push(started.elapsed().as_secs_f64());
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let (k, g) = (median(known), median(ghost));
    let ratio = k.max(g) / k.min(g);
    println!(
        "median wrong password {:.1} ms, unknown user {:.1} ms, ratio {ratio:.3}",
        k * 1e3,
        g * 1e3
    );
    assert!(
        ratio <= 1.2,
        "medians differ by more than 20%: {k:.4}s vs {g:.4}s"
    );
}
