//! `AppError`, the one error type, its conversions and its JSON face.
//!
//! This is the bottom of the house: it imports nothing from the crate. The
//! browser face (an error page in the site's layout, the login redirect) is
//! given to error responses by `web::error_pages`, which reads the `AppError`
//! back out of the response.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A page needs a logged-in user: browsers go to the login form and come
    /// back to `next`; the API gets a 401.
    #[error("Please log in to see this page.")]
    LoginRequired { next: String },
    #[error("{0}")]
    Forbidden(String),
    /// A sensitive action, and the session's last authentication is older
    /// than `REAUTH_WINDOW`: browsers go to `/reauth?next=`.
    #[error("Please confirm it is you: this action needs a recent authentication.")]
    ReauthRequired { next: String },
    #[error("The form has expired or did not come from this site. Please try again.")]
    Csrf,
    #[error("This page does not exist.")]
    NotFound,
    /// A path that has a page but no JSON face (reference §5).
    #[error("There is no JSON API at this path: it is a page for browsers.")]
    NoApi,
    #[error("{0}")]
    Conflict(String),
    #[error("The request body is too large.")]
    PayloadTooLarge,
    #[error("Too many attempts. Please try again later.")]
    TooManyRequests { retry_after: u64 },
    #[error("The service is busy. Please try again in a moment.")]
    Unavailable,
    /// More work is queued than can be done soon (password hashing): refused
    /// at once rather than kept waiting.
    #[error("The service is busy. Please try again in a few seconds.")]
    Overloaded { retry_after: u64 },
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
            // The server went away (PostgreSQL stopped or restarted), or a
            // transaction lost a race it can retry: 503, never a 500.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure,
                _,
            ) => AppError::Unavailable,
            // SQLite gave up waiting for the write lock (busy_timeout), or
            // PostgreSQL cancelled a statement past its statement or lock
            // timeout: the request can be retried, so it is a 503.
            Error::DatabaseError(_, ref info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy")
                    || info.message().starts_with("canceling statement due to")
                    || info.message().contains("deadlock detected") =>
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

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
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
            AppError::Unauthorized(_) | AppError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf | AppError::ReauthRequired { .. } => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound | AppError::NoApi => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable | AppError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON face. The headers set here (`WWW-Authenticate`,
    /// `Retry-After`) are kept when the browser face replaces the body.
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            AppError::Unauthorized(_) | AppError::LoginRequired { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::TooManyRequests { retry_after } | AppError::Overloaded { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            AppError::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        match self {
            AppError::ReauthRequired { .. } => res.json(serde_json::json!({
                "error": self.to_string(),
                "reauth_required": true,
            })),
            _ => res.json(serde_json::json!({ "error": self.to_string() })),
        }
    }
}
