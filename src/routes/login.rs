//! `GET|POST /login` and `POST /logout` for browsers.

use actix_session::Session;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use serde::Deserialize;

use crate::{
    auth::{
        accounts::{self, Login},
        cookies,
    },
    error::AppError,
    flash::{self, Level},
    routes::safe_next,
    state::AppState,
    views::{self, Chrome, LoginPage},
};

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

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
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(query.next.as_deref())
        .unwrap_or_default()
        .to_owned();
    views::ok(&LoginPage {
        chrome: Chrome::for_request(&req),
        username: String::new(),
        next,
        error: None,
    })
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let outcome = accounts::check_login(&state, &req, &form.username, &form.password).await?;
    let (status, message, retry_after) = match outcome {
        Login::Success(user) => {
            flash::push(
                &session,
                Level::Success,
                format!("Welcome back, {}.", user.username),
            );
            let pair = accounts::open_browser_session(&state, &req, user).await?;
            let target = safe_next(Some(&form.next)).unwrap_or("/protected");
            let mut res = see_other(target);
            cookies::set_pair(&mut res, &pair, &state.config);
            return Ok(res);
        }
        Login::Failed => (
            StatusCode::UNAUTHORIZED,
            accounts::LOGIN_FAILED.to_owned(),
            None,
        ),
        Login::Locked { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed attempts. Please try again in {}.",
                wait_text(retry_after)
            ),
            Some(retry_after),
        ),
    };
    let mut res = views::render(
        status,
        &LoginPage {
            chrome: Chrome::for_request(&req),
            username: form.username.chars().take(64).collect(),
            next: safe_next(Some(&form.next)).unwrap_or_default().to_owned(),
            error: Some(message),
        },
    )?;
    if let Some(seconds) = retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    Ok(res)
}

fn wait_text(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".into(),
        2..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// Revokes the session behind the refresh cookie (if any) and expires both
/// cookies. Works for a visitor whose access token already expired.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if let Some(refresh) = req.cookie(cookies::REFRESH) {
        // An invalid or foreign token has nothing to revoke; logging out still succeeds.
        match accounts::logout(&state, refresh.value()).await {
            Ok(_) | Err(AppError::Unauthorized(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(id) = req.extensions().get::<crate::auth::guard::Identity>() {
        tracing::info!(user_id = id.user_id, "logged out");
    }
    flash::push(&session, Level::Info, "You have been logged out.");
    let mut res = see_other("/");
    cookies::clear_pair(&mut res, &state.config);
    Ok(res)
}
