//! `/account`: the user's own page: sessions, log out everywhere, password
//! change. The page trusts the access token like any ordinary page; every
//! form takes `LiveUser`: the token's session must still be live
//! (reference §4.5).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{Identity, accounts::PasswordChangeError},
    domain::SessionId,
    error::AppError,
    views::{self, AccountPage, FormErrors, PasskeyRow, SessionRow},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        guard::{CurrentUser, LiveUser},
        headers,
        redirect::see_other,
        session_cookies::{SessionChange, decide},
        state::AppState,
    },
};

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(identity): CurrentUser,
) -> Result<HttpResponse, AppError> {
    render(
        &req,
        &state,
        &identity,
        StatusCode::OK,
        FormErrors::default(),
    )
    .await
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    identity: &Identity,
    status: StatusCode,
    errors: FormErrors,
) -> Result<HttpResponse, AppError> {
    let sessions = state
        .accounts
        .sessions_of(identity.user_id)
        .await?
        .into_iter()
        .map(|s| SessionRow::new(s, identity))
        .collect();
    let passkeys = state
        .accounts
        .passkeys_of(identity.user_id)
        .await?
        .into_iter()
        .map(PasskeyRow::new)
        .collect();
    views::render(
        status,
        &AccountPage {
            chrome: chrome(req),
            username: identity.username.clone(),
            role: identity.role,
            sessions,
            errors,
            passkeys,
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// Keeps this session (its cookies unchanged) and ends every other one.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: LiveUser,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    if form.new_password != form.new_password_confirm {
        errors.add(
            "new_password_confirm",
            "The two new passwords do not match.",
        );
        return render(
            &req,
            &state,
            &user.identity,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
        )
        .await;
    }
    let outcome = state
        .accounts
        .change_password(
            &state.client(&req),
            &user.identity,
            &form.current_password,
            &form.new_password,
        )
        .await;
    match outcome {
        Ok(()) => {
            flash::push(
                &session,
                Level::Success,
                "Your password has been changed. Your other sessions have been logged out.",
            );
            Ok(see_other("/account"))
        }
        Err(e @ (PasswordChangeError::WrongCurrent | PasswordChangeError::Invalid(_))) => {
            match e {
                PasswordChangeError::Invalid(e) => errors.add("new_password", e.to_string()),
                _ => errors.add("current_password", "The current password is not correct."),
            }
            render(
                &req,
                &state,
                &user.identity,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(PasswordChangeError::Locked(refusal)) => {
            errors.add(
                "current_password",
                format!(
                    "Too many wrong passwords. Please try again in {}.",
                    views::wait_text(refusal.retry_after())
                ),
            );
            let res = render(
                &req,
                &state,
                &user.identity,
                StatusCode::TOO_MANY_REQUESTS,
                errors,
            )
            .await?;
            Ok(headers::retry_after(res, refusal.retry_after()))
        }
        // The session ended while the hash was computed: nothing changed.
        Err(PasswordChangeError::SessionEnded) => Ok(decide(
            HttpResponse::from_error(AppError::LoginRequired {
                next: "/account".into(),
            }),
            SessionChange::Dropped,
        )),
        Err(PasswordChangeError::Failed(e)) => Err(e),
    }
}

/// Ends one of the user's sessions; ending the current one logs this
/// browser out.
pub async fn end_session(
    state: web::Data<AppState>,
    session: Session,
    LiveUser { identity, .. }: LiveUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let target = SessionId(path.into_inner());
    let is_current = target == identity.session_id;
    let ended = state.accounts.end_session(identity.user_id, target).await?;
    if is_current {
        flash::push(&session, Level::Info, "You have been logged out.");
        return Ok(decide(see_other("/"), SessionChange::Ended));
    }
    if ended {
        flash::push(&session, Level::Success, "The session has been ended.");
    } else {
        flash::push(&session, Level::Error, "That session had already ended.");
    }
    Ok(see_other("/account"))
}

pub async fn logout_everywhere(
    state: web::Data<AppState>,
    session: Session,
    LiveUser { identity, .. }: LiveUser,
) -> Result<HttpResponse, AppError> {
    state.accounts.end_all_sessions(identity.user_id).await?;
    flash::push(
        &session,
        Level::Info,
        "You have been logged out everywhere.",
    );
    Ok(decide(see_other("/"), SessionChange::Ended))
}
