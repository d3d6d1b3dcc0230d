//! THE route table. Each path lists its faces: the JSON handler (guarded by
//! `api`, CONTRACT section 5) before the HTML handler that serves browsers.

mod account;
mod admin;
mod api;
mod login;
mod pages;
mod register;
mod static_files;
mod token;

use actix_web::{
    guard::{self, Guard},
    web,
};

use crate::request::is_api_request;

fn api() -> impl Guard {
    guard::fn_guard(|ctx| is_api_request(ctx.head()))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/healthz", web::get().to(pages::healthz))
        .service(
            web::resource("/register")
                .route(web::get().to(register::register_form))
                .route(web::post().guard(api()).to(api::register))
                .route(web::post().to(register::register)),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login::login_form))
                .route(web::post().guard(api()).to(api::login))
                .route(web::post().to(login::login)),
        )
        .service(
            web::resource("/logout")
                .route(web::post().guard(api()).to(api::logout))
                .route(web::post().to(login::logout)),
        )
        .service(
            web::resource("/protected")
                .route(web::get().guard(api()).to(api::protected))
                .route(web::get().to(pages::protected)),
        )
        .service(
            web::resource("/token/refresh")
                .route(web::post().guard(api()).to(api::refresh))
                .route(web::post().to(token::refresh)),
        )
        .route("/account", web::get().to(account::show))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/sessions/{id}/end",
            web::post().to(account::end_session),
        )
        .route(
            "/account/logout-everywhere",
            web::post().to(account::logout_everywhere),
        )
        .route("/admin", web::get().to(admin::users))
        .route("/admin/users/{id}/role", web::post().to(admin::set_role))
        .route("/admin/users/{id}/disable", web::post().to(admin::disable))
        .route("/admin/users/{id}/enable", web::post().to(admin::enable))
        .route(
            "/admin/users/{id}/sessions/end",
            web::post().to(admin::end_sessions),
        )
        .route("/static/{path:.*}", web::get().to(static_files::serve))
        .default_service(web::to(pages::not_found));
}

/// Percent-encodes a value for a query string.
pub fn encode_query_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// `next` is followed only when it is a local path: it starts with `/`, the
/// next character is not `/` or `\` (which browsers read as another host),
/// and it has no control characters.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let mut chars = next.chars();
    let local = chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'));
    (local && !next.chars().any(char::is_control)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_safe_redirect_targets() {
        for ok in ["/", "/protected", "/account?tab=1", "/a/b//c"] {
            assert_eq!(safe_next(Some(ok)), Some(ok));
        }
        for bad in [
            "",
            "protected",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/x\r\nLocation: //evil",
            "/\tx",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("/account?x=1&y"),
            "%2Faccount%3Fx%3D1%26y"
        );
    }
}
