//! `POST /token/refresh` for browsers: rotates the refresh cookie.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::{
    auth::{accounts, cookies},
    error::AppError,
    state::AppState,
};

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = req
        .cookie(cookies::REFRESH)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    match accounts::refresh(&state, &token).await {
        Ok((pair, _user)) => {
            let mut res = HttpResponse::NoContent().finish();
            cookies::set_pair(&mut res, &pair, &state.config);
            Ok(res)
        }
        Err(e @ AppError::Unauthorized(_)) => {
            // A refused refresh also expires the cookies, so the browser stops
            // presenting them; the error middleware keeps these headers.
            let mut res = HttpResponse::from_error(e);
            cookies::clear_pair(&mut res, &state.config);
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
