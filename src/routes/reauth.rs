//! `GET|POST /reauth?next=` for browsers: re-authentication before a
//! sensitive action (reference §8). The password (and the second factor
//! when it is on), or a passkey (`routes::passkeys`), renews the session's
//! `auth_time`; then back to `next`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{Identity, mfa::Reauth},
    error::AppError,
    views::{self, ReauthPage},
    web::{
        chrome::chrome,
        form::Form,
        guard::LiveUser,
        headers,
        redirect::{safe_next, see_other},
        session_cookies::{SessionChange, decide},
        state::AppState,
    },
};

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

fn next_of(next: Option<&str>) -> String {
    safe_next(next).unwrap_or("/account").to_owned()
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    identity: &Identity,
    next: String,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let second_factor = state.accounts.has_second_factor(identity.user_id.0).await?;
    views::render(
        status,
        &ReauthPage {
            chrome: chrome(req),
            username: identity.username.clone(),
            next,
            second_factor,
            error,
        },
    )
}

pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: LiveUser,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = next_of(query.next.as_deref());
    page(&req, &state, &user.identity, next, StatusCode::OK, None).await
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: LiveUser,
    form: Form<ReauthForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let next = next_of(Some(&form.next));
    let outcome = state
        .accounts
        .reauth_with_password(
            &state.client(&req),
            &user.identity,
            &form.password,
            &form.code,
        )
        .await?;
    let (status, message, retry_after) = match outcome {
        Reauth::Done(pair) => return Ok(decide(see_other(&next), SessionChange::Rotated(pair))),
        Reauth::SessionEnded => {
            return Err(AppError::LoginRequired { next });
        }
        Reauth::WrongPassword => (
            StatusCode::UNAUTHORIZED,
            "The password is not correct.".to_owned(),
            None,
        ),
        Reauth::WrongCode => (
            StatusCode::UNAUTHORIZED,
            "The code is not valid.".to_owned(),
            None,
        ),
        Reauth::Locked(refusal) => (
            StatusCode::TOO_MANY_REQUESTS,
            views::locked_out_text(refusal.retry_after()),
            Some(refusal.retry_after()),
        ),
    };
    let res = page(&req, &state, &user.identity, next, status, Some(message)).await?;
    Ok(match retry_after {
        Some(seconds) => headers::retry_after(res, seconds),
        None => res,
    })
}
