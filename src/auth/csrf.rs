//! CSRF protection (CONTRACT section 3): a random token in the session cookie,
//! echoed by every form as `csrf_token` (or by scripts as `X-CSRF-Token`).
//!
//! The check runs as middleware over every state-changing request that could
//! ride on the browser's cookies, so a new route is protected without
//! remembering to be. Requests with an `Authorization` header or a JSON body
//! are exempt: the auth layer never authenticates those by cookie, and a
//! cross-site page cannot send either without a CORS preflight we never grant.

use actix_session::{Session, SessionExt};
use actix_web::{
    HttpMessage,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{CONTENT_TYPE, COOKIE},
    },
    middleware::Next,
    web::{Bytes, BytesMut},
};
use futures_util::StreamExt;
use subtle::ConstantTimeEq;

use crate::{
    error::AppError,
    request::{has_bearer, has_json_body, is_api_request},
};

const SESSION_KEY: &str = "csrf";
pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Form bodies larger than this are refused before any handler sees them.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The session's CSRF token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(existing)) = session.get::<String>(SESSION_KEY) {
        return existing;
    }
    let fresh = super::random_id();
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
    // An API request that sends no cookie at all has no ambient authority to
    // abuse; its handler answers from the Authorization header alone.
    let cookieless_api = is_api_request(req.head()) && !headers.contains_key(COOKIE);
    state_changing && !has_bearer(headers) && !has_json_body(headers) && !cookieless_api
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
        None if is_urlencoded_form(&req) => {
            // Errors are answered here, as responses, so the error middleware
            // still has the request to render its page.
            let body = match read_body(&mut req).await {
                Ok(body) => body,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            let token = match form_field(&body, FORM_FIELD) {
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
        tracing::warn!(path = %req.path(), "CSRF check failed");
        return Ok(req.error_response(AppError::Csrf).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn is_urlencoded_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

async fn read_body(req: &mut ServiceRequest) -> Result<Bytes, AppError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| AppError::BadRequest(format!("Could not read the request body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Finds one field of an urlencoded body. Stricter than the usual parsers,
/// which replace invalid UTF-8 silently: a body that does not decode to valid
/// UTF-8 is a 400, so no handler ever sees a mangled value.
fn form_field(body: &[u8], name: &str) -> Result<Option<String>, AppError> {
    let malformed = || AppError::BadRequest("The form data is malformed.".into());
    let mut found = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let key = percent_decode(kv.next().unwrap_or_default()).ok_or_else(malformed)?;
        let value = percent_decode(kv.next().unwrap_or_default()).ok_or_else(malformed)?;
        if found.is_none() && key == name {
            found = Some(value);
        }
    }
    Ok(found)
}

/// `application/x-www-form-urlencoded` decoding; `None` for a bad escape or invalid UTF-8.
fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_among_other_fields() {
        let body = b"username=alice&csrf_token=abc123&password=x";
        assert_eq!(
            form_field(body, FORM_FIELD).unwrap().as_deref(),
            Some("abc123")
        );
        assert_eq!(form_field(b"username=alice", FORM_FIELD).unwrap(), None);
    }

    #[test]
    fn decodes_escapes_and_plus_signs() {
        let body = b"csrf_token=a%2Bb+c%C3%A9";
        assert_eq!(
            form_field(body, FORM_FIELD).unwrap().as_deref(),
            Some("a+b c\u{e9}")
        );
    }

    #[test]
    fn malformed_form_bodies_are_bad_requests() {
        let bad: [&[u8]; 4] = [b"a=%ff%fe", b"a=%zz", b"a=%4", b"csrf_token=\xff"];
        for body in bad {
            assert!(
                matches!(form_field(body, FORM_FIELD), Err(AppError::BadRequest(_))),
                "{body:?}"
            );
        }
    }
}
