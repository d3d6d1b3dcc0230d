//! `GET|POST /login` and `POST /logout` for browsers.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use super::mfa;
use crate::{
    auth::{
        Method,
        accounts::{LOGIN_FAILED, Login},
    },
    domain,
    error::AppError,
    views::{self, LoginPage},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        guard::MaybeUser,
        headers,
        redirect::{safe_next, see_other},
        session_cookies::{self, SessionChange, decide},
        state::AppState,
    },
};

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login_form(
    req: HttpRequest,
    _: MaybeUser,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(query.next.as_deref())
        .unwrap_or_default()
        .to_owned();
    views::ok(&LoginPage {
        chrome: chrome(&req),
        username: String::new(),
        next,
        error: None,
    })
}

/// A correct password opens a new session, replacing whatever session the
/// browser's refresh cookie named (another user's included): the browser is
/// now this user, and nothing else.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let client = state.client(&req);
    let outcome = state
        .accounts
        .check_login(&client, &form.username, &form.password)
        .await?;
    let (status, message, retry_after) = match outcome {
        Login::Success(user) => {
            let replacing = session_cookies::refresh_cookie(&req);
            let pair = state
                .accounts
                .open_session(&client, &user, &[Method::Password], replacing.as_deref())
                .await?;
            flash::push(
                &session,
                Level::Success,
                format!("Welcome back, {}.", user.username),
            );
            let target = safe_next(Some(&form.next)).unwrap_or("/protected");
            return Ok(decide(see_other(target), SessionChange::Opened(pair)));
        }
        Login::SecondFactor { mfa_token, .. } => {
            let next = safe_next(Some(&form.next)).unwrap_or_default().to_owned();
            mfa::remember(&session, mfa_token, next);
            return Ok(see_other("/login/mfa"));
        }
        Login::Failed => (StatusCode::UNAUTHORIZED, LOGIN_FAILED.to_owned(), None),
        Login::Locked(refusal) => (
            StatusCode::TOO_MANY_REQUESTS,
            views::locked_out_text(refusal.retry_after()),
            Some(refusal.retry_after()),
        ),
    };
    let res = views::render(
        status,
        &LoginPage {
            chrome: chrome(&req),
            username: domain::echo(&form.username),
            next: safe_next(Some(&form.next)).unwrap_or_default().to_owned(),
            error: Some(message),
        },
    )?;
    Ok(match retry_after {
        Some(seconds) => headers::retry_after(res, seconds),
        None => res,
    })
}

/// Ends the session behind the refresh cookie (if any) and expires both
/// cookies. Works for a visitor whose access token already expired, and for
/// one whose cookies name nothing: logging out always succeeds.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if let Some(refresh) = session_cookies::refresh_cookie(&req) {
        state.accounts.logout(&state.client(&req), &refresh).await?;
    }
    flash::push(&session, Level::Info, "You have been logged out.");
    Ok(decide(see_other("/"), SessionChange::Ended))
}
