//! The token cookies and their exact attributes (CONTRACT section 3).

use actix_web::{
    HttpResponse,
    cookie::{Cookie, SameSite, time::Duration},
};

use super::sessions::TokenPair;
use crate::config::Config;

pub const ACCESS: &str = "access_token";
pub const REFRESH: &str = "refresh_token";

fn build(
    name: &'static str,
    value: String,
    max_age: i64,
    same_site: SameSite,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(secure)
        .max_age(Duration::seconds(max_age))
        .finish()
}

/// Sets both token cookies on a response.
pub fn set_pair<B>(res: &mut HttpResponse<B>, pair: &TokenPair, config: &Config) {
    let access = build(
        ACCESS,
        pair.access_token.clone(),
        config.access_token_ttl,
        SameSite::Lax,
        config.cookie_secure,
    );
    // Strict: a refresh is never triggered by another site's link or form.
    let refresh = build(
        REFRESH,
        pair.refresh_token.clone(),
        config.refresh_token_ttl,
        SameSite::Strict,
        config.cookie_secure,
    );
    for cookie in [access, refresh] {
        // Only fails for a malformed cookie, which these never are.
        let _ = res.add_cookie(&cookie);
    }
}

/// Expires both token cookies (`Max-Age=0`).
pub fn clear_pair<B>(res: &mut HttpResponse<B>, config: &Config) {
    for (name, same_site) in [(ACCESS, SameSite::Lax), (REFRESH, SameSite::Strict)] {
        let _ = res.add_cookie(&build(
            name,
            String::new(),
            0,
            same_site,
            config.cookie_secure,
        ));
    }
}
