//! `GET|POST /register`: the registration form.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{Method, accounts::RegisterError},
    domain::{self, Password, Role, Username},
    error::AppError,
    views::{self, FormErrors, RegisterPage},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        guard::MaybeUser,
        headers,
        redirect::see_other,
        session_cookies::{self, SessionChange, decide},
        state::AppState,
    },
};

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn register_form(req: HttpRequest, _: MaybeUser) -> Result<HttpResponse, AppError> {
    views::ok(&RegisterPage {
        chrome: chrome(&req),
        username: String::new(),
        errors: FormErrors::default(),
    })
}

/// A new account logs the browser in as it, replacing any session the
/// browser's cookies named.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: Form<RegisterForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    let username =
        Username::parse(&form.username).map_err(|e| errors.add("username", e.to_string()));
    let password = Password::parse(&form.password, &form.username)
        .map_err(|e| errors.add("password", e.to_string()));
    if form.password != form.password_confirm {
        errors.add("password_confirm", "The two passwords do not match.");
    }
    let (Ok(username), Ok(password), true) = (username, password, errors.is_empty()) else {
        return rerender(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.username,
            errors,
        );
    };

    let user = match state
        .accounts
        .register(Some(&state.client(&req)), username, password, Role::User)
        .await
    {
        Ok(user) => user,
        Err(e @ RegisterError::UsernameTaken) => {
            let mut errors = FormErrors::default();
            errors.add("username", e.to_string());
            return rerender(&req, StatusCode::CONFLICT, &form.username, errors);
        }
        Err(RegisterError::TooMany(refusal)) => {
            let mut errors = FormErrors::default();
            errors.add(
                "username",
                format!(
                    "Too many new accounts from your network. Please try again in {}.",
                    views::wait_text(refusal.retry_after())
                ),
            );
            let res = rerender(&req, StatusCode::TOO_MANY_REQUESTS, &form.username, errors)?;
            return Ok(headers::retry_after(res, refusal.retry_after()));
        }
        Err(RegisterError::Failed(e)) => return Err(e),
    };
    let replacing = session_cookies::refresh_cookie(&req);
    let pair = state
        .accounts
        .open_session(
            &state.client(&req),
            &user,
            &[Method::Password],
            replacing.as_deref(),
        )
        .await?;
    flash::push(
        &session,
        Level::Success,
        format!("Welcome, {}! Your account is ready.", user.username),
    );
    Ok(decide(see_other("/protected"), SessionChange::Opened(pair)))
}

fn rerender(
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    errors: FormErrors,
) -> Result<HttpResponse, AppError> {
    // Keep what was typed as the username (length-capped); never echo passwords.
    views::render(
        status,
        &RegisterPage {
            chrome: chrome(req),
            username: domain::echo(username),
            errors,
        },
    )
}
