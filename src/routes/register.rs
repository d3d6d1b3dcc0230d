//! `GET|POST /register`: the registration form.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{accounts, cookies},
    domain::{Password, Role, Username},
    error::AppError,
    flash::{self, Level},
    routes::login::see_other,
    state::AppState,
    views::{self, Chrome, FormErrors, RegisterPage},
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

pub async fn register_form(req: HttpRequest) -> Result<HttpResponse, AppError> {
    views::ok(&RegisterPage {
        chrome: Chrome::for_request(&req),
        username: String::new(),
        errors: FormErrors::default(),
    })
}

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<RegisterForm>,
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
            form.username,
            errors,
        );
    };

    let user = match accounts::register(&state, username, password, Role::User).await {
        Ok(user) => user,
        Err(AppError::Conflict(message)) => {
            let mut errors = FormErrors::default();
            errors.add("username", message);
            return rerender(&req, StatusCode::CONFLICT, form.username, errors);
        }
        Err(e) => return Err(e),
    };
    tracing::info!(user_id = user.id, "user registered");
    let welcome = format!("Welcome, {}! Your account is ready.", user.username);
    let pair = accounts::open_browser_session(&state, &req, user).await?;
    flash::push(&session, Level::Success, welcome);
    let mut res = see_other("/protected");
    cookies::set_pair(&mut res, &pair, &state.config);
    Ok(res)
}

fn rerender(
    req: &HttpRequest,
    status: StatusCode,
    username: String,
    errors: FormErrors,
) -> Result<HttpResponse, AppError> {
    // Keep what was typed as the username (length-capped); never echo passwords.
    let username = username.chars().take(64).collect();
    views::render(
        status,
        &RegisterPage {
            chrome: Chrome::for_request(req),
            username,
            errors,
        },
    )
}
