//! `AppError`, the one error type, and the one place it becomes a response.
//!
//! `AppError` renders itself as `{"error": …}` JSON. The `render_errors`
//! middleware then gives every error response its final face: JSON for API
//! requests, a page in the site's layout otherwise. It also covers errors that
//! are not ours (a 405, a body extractor's 400) and catches panics, so no
//! client ever sees a bare text error or a dropped connection.

use std::panic::AssertUnwindSafe;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
};
use futures_util::FutureExt;

use crate::{request::is_api_request, views};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A page needs a logged-in user: browsers go to the login form.
    #[error("Please log in to see this page.")]
    LoginRequired { next: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("The form has expired or did not come from this site. Please try again.")]
    Csrf,
    #[error("This page does not exist.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("The request body is too large.")]
    PayloadTooLarge,
    #[error("Too many attempts. Please try again later.")]
    TooManyRequests { retry_after: u64 },
    #[error("The service is busy. Please try again in a moment.")]
    Unavailable,
    #[error("Something went wrong on our side.")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict("That already exists.".into())
            }
            // SQLite gave up waiting for the write lock (busy_timeout): the
            // request can be retried, so it is a 503, not a 500.
            Error::DatabaseError(_, ref info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                AppError::Unavailable
            }
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(_: diesel::r2d2::PoolError) -> Self {
        // Every connection is busy past the pool's timeout.
        AppError::Unavailable
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            // The JSON face; browsers get a 303 from `error_response`.
            AppError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            AppError::Unauthorized(_) | AppError::LoginRequired { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::TooManyRequests { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            AppError::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        res.json(serde_json::json!({ "error": self.to_string() }))
    }
}

/// Marks a response whose body is final (a rendered form with its 422, an API
/// error already in JSON); `render_errors` leaves those alone.
#[derive(Clone, Copy)]
pub struct Rendered;

/// A handler panicked. The request is gone by then, so this renders the 500
/// page without the session's data (no user in the nav, no flash).
#[derive(Debug, thiserror::Error)]
#[error("Something went wrong on our side.")]
struct Panicked {
    api: bool,
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = if self.api {
            HttpResponse::InternalServerError()
                .json(serde_json::json!({ "error": self.to_string() }))
        } else {
            views::bare_error_page(StatusCode::INTERNAL_SERVER_ERROR, &self.to_string())
        };
        // The security-headers middleware only sees successful returns.
        for (name, value) in crate::startup::SECURITY_HEADERS {
            if let Ok(value) = header::HeaderValue::from_str(value) {
                res.headers_mut()
                    .insert(header::HeaderName::from_static(name), value);
            }
        }
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
    let api = is_api_request(req.head());
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
            return Err(Panicked { api }.into());
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
    if let Some(AppError::LoginRequired { next }) = app_error {
        if !is_api_request(res.request().head()) {
            let location = format!(
                "/login?next={}",
                crate::routes::encode_query_value(next.as_str())
            );
            let (req, old) = res.into_parts();
            let redirect = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
            return Ok(ServiceResponse::new(req, keep_headers(&old, redirect)));
        }
    }
    if status.is_server_error() {
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
    let new = error_body(&req, status, message.as_deref());
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
fn error_body(req: &HttpRequest, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let fallback = status.canonical_reason().unwrap_or("Error");
    let message = message.unwrap_or(match status.as_u16() {
        404 => "This page does not exist.",
        500 => "Something went wrong on our side.",
        _ => fallback,
    });
    let mut res = if is_api_request(req.head()) {
        HttpResponse::build(status).json(serde_json::json!({ "error": message }))
    } else {
        views::error_page(req, status, message)
    };
    res.extensions_mut().insert(Rendered);
    res
}
