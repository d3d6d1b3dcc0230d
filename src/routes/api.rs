//! The JSON face of the same paths (CONTRACT section 5), as the Flask
//! tutorial's client uses it. Tokens travel in bodies and the
//! `Authorization` header; these handlers never set cookies.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    auth::{
        accounts::{self, Login},
        guard::CurrentUser,
        sessions::TokenPair,
    },
    domain::{Password, Role, Username},
    error::AppError,
    request::bearer_token,
    state::AppState,
};

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn pair_json(pair: &TokenPair) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }))
}

pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let username = Username::parse(&body.username);
    let password = Password::parse(&body.password, &body.username);
    let (username, password) = match (username, password) {
        (Ok(u), Ok(p)) => (u, p),
        (u, p) => {
            let messages: Vec<String> = [
                u.err().map(|e| e.to_string()),
                p.err().map(|e| e.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            return Err(AppError::Validation(messages.join(" ")));
        }
    };
    let user = accounts::register(&state, username, password, Role::User).await?;
    tracing::info!(user_id = user.id, "user registered (API)");
    Ok(HttpResponse::Created().json(json!({ "id": user.id, "username": user.username })))
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, AppError> {
    let user = match accounts::check_login(&state, &req, &body.username, &body.password).await? {
        Login::Success(user) => user,
        Login::Failed => return Err(AppError::Unauthorized(accounts::LOGIN_FAILED.into())),
        Login::Locked { retry_after } => return Err(AppError::TooManyRequests { retry_after }),
    };
    let pair = accounts::open_session(&state, &req, user).await?;
    Ok(pair_json(&pair))
}

#[derive(Serialize)]
struct LoggedInAs {
    logged_in_as: String,
}

pub async fn protected(CurrentUser(user): CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(LoggedInAs {
        logged_in_as: user.username,
    })
}

fn required_refresh_token(req: &HttpRequest) -> Result<&str, AppError> {
    bearer_token(req.headers()).ok_or_else(|| {
        AppError::Unauthorized(
            "Missing refresh token: send Authorization: Bearer <refresh token>.".into(),
        )
    })
}

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = required_refresh_token(&req)?;
    let (pair, _user) = accounts::refresh(&state, token).await?;
    Ok(pair_json(&pair))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = required_refresh_token(&req)?;
    if !accounts::logout(&state, token).await? {
        return Err(AppError::Unauthorized(accounts::REFRESH_FAILED.into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
