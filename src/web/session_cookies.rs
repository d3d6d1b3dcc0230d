//! The one owner of the token cookies (reference §3).
//!
//! Handlers never write a token cookie. They attach a `SessionChange` to
//! their response (`decide`); the guard may propose one of its own for the
//! request (an implicit refresh, or cookies that name no live session). After
//! the handler, `apply` writes exactly one set of token cookies: the
//! handler's decision if it made one — final, whatever the browser sent —
//! else the guard's proposal. Any token cookie some other code path put on
//! the response is removed first, so no response sets a cookie twice.
//! Opening or ending a session also renews the CSRF token.

use actix_session::SessionExt;
use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration},
    dev::ServiceResponse,
    http::header::{self, HeaderValue},
};

use super::csrf;
use crate::auth::tokens::TokenPair;

pub const ACCESS: &str = "access_token";
pub const REFRESH: &str = "refresh_token";
/// The names with `COOKIE_SECURE` on: the `__Host-` prefix makes the browser
/// insist on `Secure`, `Path=/` and no `Domain`, so a sibling subdomain
/// cannot plant a token cookie (reference §3).
pub const HOST_ACCESS: &str = "__Host-access_token";
pub const HOST_REFRESH: &str = "__Host-refresh_token";

/// What a response does to the browser's session.
#[derive(Debug)]
pub enum SessionChange {
    /// A login or registration: both cookies set, a new CSRF token.
    Opened(TokenPair),
    /// The same session with rotated tokens: both cookies set.
    Rotated(TokenPair),
    /// The user ended the session (logout, log out everywhere, ending the
    /// current session): both cookies expired, a new CSRF token.
    Ended,
    /// The browser's cookies name no live session: both expired.
    Dropped,
}

/// The handler's decision, in the response extensions.
struct Decided(SessionChange);

/// The guard's proposal, in the request extensions.
struct Proposed(SessionChange);

/// Attaches the handler's decision about the token cookies to its response.
pub fn decide(mut res: HttpResponse, change: SessionChange) -> HttpResponse {
    res.extensions_mut().insert(Decided(change));
    res
}

/// The guard's own change for this request; any decision of the handler's
/// takes precedence.
pub(super) fn propose(req: &HttpRequest, change: SessionChange) {
    req.extensions_mut().insert(Proposed(change));
}

/// The cookies' attributes, from the settings, built once.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub secure: bool,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl CookiePolicy {
    /// The access and refresh cookies' names under this policy.
    pub fn names(&self) -> (&'static str, &'static str) {
        if self.secure {
            (HOST_ACCESS, HOST_REFRESH)
        } else {
            (ACCESS, REFRESH)
        }
    }

    fn cookie(&self, name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
        // Strict for the refresh cookie: a refresh is never triggered by
        // another site's link or form.
        let same_site = if name == self.names().1 {
            SameSite::Strict
        } else {
            SameSite::Lax
        };
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(same_site)
            .secure(self.secure)
            .max_age(Duration::seconds(max_age))
            .finish()
    }

    fn set_cookies(&self, change: &SessionChange) -> [Cookie<'static>; 2] {
        let (access, refresh) = self.names();
        match change {
            SessionChange::Opened(pair) | SessionChange::Rotated(pair) => [
                self.cookie(access, pair.access_token.clone(), self.access_ttl),
                self.cookie(refresh, pair.refresh_token.clone(), self.refresh_ttl),
            ],
            SessionChange::Ended | SessionChange::Dropped => [
                self.cookie(access, String::new(), 0),
                self.cookie(refresh, String::new(), 0),
            ],
        }
    }
}

/// Writes the request's one session change, if any, as `Set-Cookie`. Called
/// once per browser request, by the guard middleware, after the handler.
pub(super) fn apply<B>(res: &mut ServiceResponse<B>, policy: &CookiePolicy) {
    let decided = res
        .response_mut()
        .extensions_mut()
        .remove::<Decided>()
        .map(|d| d.0);
    let change = decided.or_else(|| {
        res.request()
            .extensions_mut()
            .remove::<Proposed>()
            .map(|p| p.0)
    });
    let Some(change) = change else {
        return;
    };
    if matches!(change, SessionChange::Opened(_) | SessionChange::Ended) {
        csrf::renew(&res.request().get_session());
    }
    let headers = res.response_mut().headers_mut();
    remove_token_cookies(headers);
    for cookie in policy.set_cookies(&change) {
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

/// Strips `Set-Cookie` headers for the token cookies (only `apply` writes them).
pub(super) fn remove_token_cookies(headers: &mut header::HeaderMap) {
    let is_token = |v: &HeaderValue| {
        let name = v
            .as_bytes()
            .split(|b| *b == b'=')
            .next()
            .unwrap_or_default();
        let name = name.trim_ascii();
        [ACCESS, REFRESH, HOST_ACCESS, HOST_REFRESH]
            .iter()
            .any(|n| name == n.as_bytes())
    };
    if !headers.get_all(header::SET_COOKIE).any(is_token) {
        return;
    }
    let keep: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .filter(|v| !is_token(v))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in keep {
        headers.append(header::SET_COOKIE, v);
    }
}

/// The token cookies' names for this app (the policy is app data).
fn names(req: &HttpRequest) -> (&'static str, &'static str) {
    req.app_data::<actix_web::web::Data<CookiePolicy>>()
        .map_or((ACCESS, REFRESH), |p| p.names())
}

/// The browser's refresh cookie, if it sent one (under this app's name only:
/// with `COOKIE_SECURE` on, a plain `refresh_token` is not ours).
pub fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(names(req).1).map(|c| c.value().to_owned())
}

/// The browser's access cookie, if it sent one.
pub fn access_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(names(req).0).map(|c| c.value().to_owned())
}
