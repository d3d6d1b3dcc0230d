//! `GET|POST /login/mfa` for browsers: the second step of a login
//! (reference §8). The password step left the `mfa_token` and `next` in the
//! encrypted cookie session; a valid code completes the login as
//! `POST /login` would have.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::{Deserialize, Serialize};

use crate::{
    auth::mfa::{CODE_WRONG, MFA_EXPIRED, SecondStep},
    error::AppError,
    views::{self, MfaPage},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        headers,
        redirect::{safe_next, see_other},
        session_cookies::{self, SessionChange, decide},
        state::AppState,
    },
};

const KEY: &str = "mfa";

/// The second step in progress, in the cookie session.
#[derive(Serialize, Deserialize)]
struct Pending {
    token: String,
    next: String,
}

/// Keeps the second step of a login for `/login/mfa`.
pub fn remember(session: &Session, token: String, next: String) {
    // A session that cannot be written sends the user to log in again.
    let _ = session.insert(KEY, Pending { token, next });
}

fn pending(session: &Session) -> Option<Pending> {
    session.get::<Pending>(KEY).ok().flatten()
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn form(req: HttpRequest, session: Session) -> Result<HttpResponse, AppError> {
    if pending(&session).is_none() {
        return Ok(see_other("/login"));
    }
    views::ok(&MfaPage {
        chrome: chrome(&req),
        error: None,
    })
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let Some(step) = pending(&session) else {
        flash::push(&session, Level::Error, MFA_EXPIRED);
        return Ok(see_other("/login"));
    };
    let client = state.client(&req);
    let outcome = state
        .accounts
        .complete_second_step(&client, &step.token, &form.code)
        .await?;
    let (status, message, retry_after) = match outcome {
        SecondStep::Success { user, methods } => {
            session.remove(KEY);
            let replacing = session_cookies::refresh_cookie(&req);
            let pair = state
                .accounts
                .open_session(&client, &user, &methods, replacing.as_deref())
                .await?;
            flash::push(
                &session,
                Level::Success,
                format!("Welcome back, {}.", user.username),
            );
            let target = safe_next(Some(&step.next)).unwrap_or("/protected");
            return Ok(decide(see_other(target), SessionChange::Opened(pair)));
        }
        SecondStep::Expired => {
            session.remove(KEY);
            flash::push(&session, Level::Error, MFA_EXPIRED);
            return Ok(see_other("/login"));
        }
        SecondStep::Wrong => (StatusCode::UNAUTHORIZED, CODE_WRONG.to_owned(), None),
        SecondStep::Locked(refusal) => (
            StatusCode::TOO_MANY_REQUESTS,
            views::locked_out_text(refusal.retry_after()),
            Some(refusal.retry_after()),
        ),
    };
    let res = views::render(
        status,
        &MfaPage {
            chrome: chrome(&req),
            error: Some(message),
        },
    )?;
    Ok(match retry_after {
        Some(seconds) => headers::retry_after(res, seconds),
        None => res,
    })
}
