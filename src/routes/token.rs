//! `POST /token/refresh` for browsers: rotates the token cookies.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::{
    auth::accounts::{REFRESH_FAILED, RefreshError},
    error::AppError,
    web::{
        session_cookies::{self, SessionChange, decide},
        state::AppState,
    },
};

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = session_cookies::refresh_cookie(&req).unwrap_or_default();
    match state.accounts.refresh(&state.client(&req), &token).await {
        Ok(refreshed) => Ok(decide(
            HttpResponse::NoContent().finish(),
            SessionChange::Rotated(refreshed.pair),
        )),
        // A refused refresh also expires the cookies, so the browser stops
        // presenting them.
        Err(RefreshError::Refused) => Ok(decide(
            HttpResponse::from_error(AppError::Unauthorized(REFRESH_FAILED.into())),
            SessionChange::Dropped,
        )),
        Err(RefreshError::Failed(e)) => Err(e),
    }
}
