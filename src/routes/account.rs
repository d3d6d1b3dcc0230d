//! `/account`: the user's own page: sessions, log out everywhere, password change.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{
        accounts::{self, PasswordChangeError},
        cookies,
        guard::CurrentUser,
    },
    error::AppError,
    flash::{self, Level},
    routes::login::see_other,
    state::AppState,
    views::{self, AccountPage, Chrome, FormErrors, SessionRow},
};

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    render(&req, &state, user, StatusCode::OK, FormErrors::default()).await
}

async fn render(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    status: StatusCode,
    errors: FormErrors,
) -> Result<HttpResponse, AppError> {
    let sessions = accounts::sessions_of(state, user.user_id)
        .await?
        .into_iter()
        .map(|f| SessionRow {
            current: f.id == user.session_id,
            device: views::device_name(&f.user_agent),
            ip: if f.ip.is_empty() {
                "unknown".into()
            } else {
                f.ip
            },
            started: views::timestamp(f.created_at),
            last_used: views::timestamp(f.last_used_at),
            id: f.id,
        })
        .collect();
    views::render(
        status,
        &AccountPage {
            chrome: Chrome::for_request(req),
            username: user.username,
            role: user.role.to_string(),
            sessions,
            errors,
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

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    if form.new_password != form.new_password_confirm {
        errors.add(
            "new_password_confirm",
            "The two new passwords do not match.",
        );
        return render(&req, &state, user, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    let id = &user.0;
    let outcome = accounts::change_password(
        &state,
        id.user_id,
        &form.current_password,
        &form.new_password,
        id.session_id.clone(),
    )
    .await;
    match outcome {
        Ok(()) => {
            tracing::info!(
                user_id = id.user_id,
                "password changed; other sessions ended"
            );
            flash::push(
                &session,
                Level::Success,
                "Your password has been changed. Your other sessions have been logged out.",
            );
            Ok(see_other("/account"))
        }
        Err(PasswordChangeError::WrongCurrent) => {
            errors.add("current_password", "The current password is not correct.");
            render(&req, &state, user, StatusCode::UNPROCESSABLE_ENTITY, errors).await
        }
        Err(PasswordChangeError::Invalid(e)) => {
            errors.add("new_password", e.to_string());
            render(&req, &state, user, StatusCode::UNPROCESSABLE_ENTITY, errors).await
        }
        Err(PasswordChangeError::Other(e)) => Err(e),
    }
}

pub async fn end_session(
    state: web::Data<AppState>,
    session: Session,
    CurrentUser(user): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let target = path.into_inner();
    let is_current = target == user.session_id;
    if accounts::end_session(&state, user.user_id, target).await? {
        tracing::info!(
            user_id = user.user_id,
            "session ended from the account page"
        );
        if is_current {
            flash::push(&session, Level::Info, "You have been logged out.");
            let mut res = see_other("/");
            cookies::clear_pair(&mut res, &state.config);
            return Ok(res);
        }
        flash::push(&session, Level::Success, "The session has been ended.");
    } else {
        flash::push(&session, Level::Error, "That session had already ended.");
    }
    Ok(see_other("/account"))
}

pub async fn logout_everywhere(
    state: web::Data<AppState>,
    session: Session,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, AppError> {
    let ended = accounts::end_sessions(&state, user.user_id, None).await?;
    tracing::info!(
        user_id = user.user_id,
        sessions = ended,
        "logged out everywhere"
    );
    flash::push(
        &session,
        Level::Info,
        "You have been logged out everywhere.",
    );
    let mut res = see_other("/");
    cookies::clear_pair(&mut res, &state.config);
    Ok(res)
}
