//! Simple pages: home, the protected page, health, and the 404 fallback.

use actix_web::{HttpRequest, HttpResponse};

use crate::{
    auth::guard::CurrentUser,
    error::AppError,
    views::{self, Chrome, HomePage, ProtectedPage},
};

pub async fn home(req: HttpRequest) -> Result<HttpResponse, AppError> {
    views::ok(&HomePage {
        chrome: Chrome::for_request(&req),
    })
}

pub async fn protected(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, AppError> {
    views::ok(&ProtectedPage {
        chrome: Chrome::for_request(&req),
        username: user.username,
        role: user.role.to_string(),
    })
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
