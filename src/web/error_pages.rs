//! The browser face of errors, and the last line of defence.
//!
//! `render_errors` gives every error response its final face: JSON for API
//! requests (the `AppError`'s own), a page in the site's layout for browsers,
//! and for `LoginRequired` a redirect to the login form. It also covers
//! errors that are not ours (a 405, an extractor's 400) and catches panics,
//! so no client ever sees a bare text error or a dropped connection.

use std::panic::AssertUnwindSafe;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
    web,
};
use futures_util::FutureExt;

use super::{chrome::chrome, face::Face, headers, redirect, state::AppState};
use crate::{
    error::AppError,
    views::{self, Chrome, Rendered},
};

/// How long a refusal under load (503) is held before it is sent.
pub const REFUSAL_PACE: std::time::Duration = std::time::Duration::from_millis(25);

/// A handler panicked. The request is gone by then, so this renders the 500
/// page without the session's data (no user in the nav, no flash).
#[derive(Debug, thiserror::Error)]
#[error("Something went wrong on our side.")]
struct Panicked {
    face: Face,
    secure: bool,
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = match self.face {
            Face::Api | Face::Script => HttpResponse::InternalServerError()
                .json(serde_json::json!({ "error": self.to_string() })),
            Face::Browser => views::error_page(
                Chrome::anonymous(),
                StatusCode::INTERNAL_SERVER_ERROR,
                &self.to_string(),
            ),
        };
        // The security-headers middleware only sees successful returns.
        headers::insert_into(&mut res, self.secure);
        res
    }
}

/// Gives every error response its face, and turns a panic into a 500.
///
/// Middleware inside this one report errors as responses
/// (`ServiceRequest::error_response`), not as `Err`, so the request is still
/// at hand here to render the page with its session.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // No clone of the request may be held across the call: routing needs
    // sole ownership of it.
    let face = Face::of_service(&req);
    let secure = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.cookies.secure);
    let path = req.path().to_owned();
    let res = match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => return Err(err),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, path = %path, "handler panicked");
            return Err(Panicked { face, secure }.into());
        }
    };

    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res.response().extensions().contains::<Rendered>()
    {
        return Ok(res);
    }
    let app_error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>());
    if let Some(AppError::LoginRequired { next }) = app_error
        && face == Face::Browser
    {
        let location = redirect::login_url(next);
        let (req, old) = res.into_parts();
        let redirect = redirect::see_other(&location);
        return Ok(ServiceResponse::new(req, keep_headers(&old, redirect)));
    }
    if let Some(AppError::ReauthRequired { next }) = app_error {
        if face == Face::Browser {
            let location = redirect::reauth_url(next);
            let (req, old) = res.into_parts();
            let redirect = redirect::see_other(&location);
            return Ok(ServiceResponse::new(req, keep_headers(&old, redirect)));
        }
        // The JSON faces get the error's own JSON, `reauth_required` included.
        return Ok(res);
    }
    // A refusal under load is expected and counted (metrics, one warning a
    // second from the hasher): logging each one would let a flood fill the log.
    let expected = matches!(app_error, Some(AppError::Overloaded { .. }));
    if expected {
        // Paced, not queued: the answer still comes at once for a person,
        // but a client that retries in a tight loop gets a few dozen a
        // second per connection instead of thousands, which would take the
        // CPU from the pages and from the hashing itself.
        actix_web::rt::time::sleep(REFUSAL_PACE).await;
    }
    if status.is_server_error() && !expected {
        match res.response().error() {
            Some(e) => tracing::error!(status = status.as_u16(), error = ?e, "request failed"),
            None => tracing::error!(status = status.as_u16(), "request failed"),
        }
    }
    // For errors that are not ours, a 4xx message is safe to show (it describes
    // the client's own input); a 5xx cause never is.
    let message = match (app_error, res.response().error()) {
        (Some(e), _) => Some(e.to_string()),
        (None, Some(e)) if status.is_client_error() => Some(e.to_string()),
        _ => None,
    };

    let (req, old) = res.into_parts();
    let new = error_body(&req, face, status, message.as_deref());
    Ok(ServiceResponse::new(req, keep_headers(&old, new)))
}

/// Carries the headers set on the way out (expired cookies, `Retry-After`,
/// `WWW-Authenticate`) over to the replacement response.
fn keep_headers(old: &HttpResponse, mut new: HttpResponse) -> HttpResponse {
    let own: Vec<header::HeaderName> = new.headers().keys().cloned().collect();
    for (name, value) in old.headers() {
        // Several Set-Cookie headers may coexist; any other header the new
        // response already has is its own.
        let replaced = own.contains(name) && name != header::SET_COOKIE;
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !replaced {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    new
}

/// The body of an error response in the request's face.
fn error_body(
    req: &HttpRequest,
    face: Face,
    status: StatusCode,
    message: Option<&str>,
) -> HttpResponse {
    let fallback = status.canonical_reason().unwrap_or("Error");
    let message = message.unwrap_or(match status.as_u16() {
        404 => "This page does not exist.",
        500 => "Something went wrong on our side.",
        _ => fallback,
    });
    match face {
        Face::Api | Face::Script => {
            let mut res = HttpResponse::build(status).json(serde_json::json!({ "error": message }));
            res.extensions_mut().insert(Rendered);
            res
        }
        Face::Browser => views::error_page(chrome(req), status, message),
    }
}
