//! CSRF protection (reference §3): a random token in the session cookie,
//! echoed by every form as `csrf_token` (or by scripts as `X-CSRF-Token`).
//!
//! The check runs as middleware over every state-changing request that could
//! ride on the browser's cookies, so a new route is protected without
//! remembering to be. Requests with an `Authorization` header or a JSON body
//! are exempt: the guard never authenticates those by cookie, and a
//! cross-site page cannot send either without a CORS preflight we never grant.
//! The exception to the exception is the passkey script (`Face::Script`):
//! its JSON rides on the cookies, so it must send `X-CSRF-Token`.
//! The token is renewed whenever the login state changes
//! (`session_cookies::apply`), so a token seen before a login is refused after.

use actix_session::{Session, SessionExt};
use actix_web::{
    HttpMessage,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{Method, header::COOKIE},
    middleware::Next,
};
use subtle::ConstantTimeEq;

use super::{
    face::Face,
    form,
    request::{TrustedProxies, bearer_token, client_ip, has_json_body},
};
use crate::error::AppError;

const SESSION_KEY: &str = "csrf";
pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// The session's CSRF token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(existing)) = session.get::<String>(SESSION_KEY) {
        return existing;
    }
    renew(session)
}

/// Replaces the session's CSRF token with a fresh one (login state changed).
pub fn renew(session: &Session) -> String {
    let fresh = crate::auth::random_id();
    // A session that cannot be written keeps its old token: forms still work.
    let _ = session.insert(SESSION_KEY, &fresh);
    fresh
}

/// Compares in constant time so the token cannot be guessed byte by byte.
pub fn matches(session: &Session, presented: &str) -> bool {
    match session.get::<String>(SESSION_KEY) {
        Ok(Some(expected)) => {
            !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    }
}

fn needs_check(req: &ServiceRequest) -> bool {
    let state_changing = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let headers = req.headers();
    if Face::of_service(req) == Face::Script {
        return state_changing;
    }
    // An API request never rides on cookies (the guard ignores them for it),
    // so one that sends none has no ambient authority to abuse.
    let cookieless_api = Face::of_service(req).is_api() && !headers.contains_key(COOKIE);
    state_changing && bearer_token(headers).is_none() && !has_json_body(headers) && !cookieless_api
}

pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !needs_check(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let session = req.get_session();
    let from_header = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let presented = match from_header {
        Some(token) => token,
        None if form::is_urlencoded(req.headers()) => {
            // Errors are answered here, as responses, so the error middleware
            // still has the request to render its page.
            let body = match form::read_body(req.take_payload()).await {
                Ok(body) => body,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            let token = match form::field(&body, FORM_FIELD) {
                Ok(token) => token,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            // Put the body back for the handler's own `Form` extractor.
            req.set_payload(Payload::from(body));
            token.unwrap_or_default()
        }
        None => String::new(),
    };
    if !matches(&session, &presented) {
        let client_ip = req
            .app_data::<TrustedProxies>()
            .and_then(|trusted| client_ip(req.request(), &trusted.0))
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        tracing::warn!(path = %req.path(), client_ip = %client_ip, "CSRF check failed");
        return Ok(req.error_response(AppError::Csrf).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
