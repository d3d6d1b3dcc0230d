//! Simple pages: home, the protected page, health, and the 404 fallback.

use actix_web::{HttpRequest, HttpResponse};

use crate::{
    error::AppError,
    views::{self, HomePage, ProtectedPage},
    web::{
        chrome::chrome,
        guard::{CurrentUser, MaybeUser},
    },
};

/// `MaybeUser` so a browser with only a refresh cookie sees itself logged in.
pub async fn home(req: HttpRequest, _: MaybeUser) -> Result<HttpResponse, AppError> {
    views::ok(&HomePage {
        chrome: chrome(&req),
    })
}

pub async fn protected(
    req: HttpRequest,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, AppError> {
    views::ok(&ProtectedPage {
        chrome: chrome(&req),
        username: user.username,
        role: user.role,
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
