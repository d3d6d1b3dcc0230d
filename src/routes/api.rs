//! The JSON face of the same paths (reference §5), as the Flask
//! tutorial's client uses it. Tokens travel in bodies and the
//! `Authorization` header; these handlers never set cookies.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    auth::{
        Method,
        accounts::{LOGIN_FAILED, Login, REFRESH_FAILED, RefreshError, RegisterError},
        tokens::TokenPair,
    },
    domain::{Password, Role, Username},
    error::AppError,
    web::{guard::CurrentUser, request::bearer_token, state::AppState},
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
    req: HttpRequest,
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
    let user = match state
        .accounts
        .register(Some(&state.client(&req)), username, password, Role::User)
        .await
    {
        Ok(user) => user,
        Err(e @ RegisterError::UsernameTaken) => return Err(AppError::Conflict(e.to_string())),
        Err(RegisterError::TooMany(refusal)) => {
            return Err(AppError::TooManyRequests {
                retry_after: refusal.retry_after(),
            });
        }
        Err(RegisterError::Failed(e)) => return Err(e),
    };
    Ok(HttpResponse::Created().json(json!({ "id": user.id, "username": user.username })))
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, AppError> {
    let client = state.client(&req);
    let user = match state
        .accounts
        .check_login(&client, &body.username, &body.password)
        .await?
    {
        Login::Success(user) => user,
        Login::Failed => return Err(AppError::Unauthorized(LOGIN_FAILED.into())),
        Login::Locked(refusal) => {
            return Err(AppError::TooManyRequests {
                retry_after: refusal.retry_after(),
            });
        }
    };
    let pair = state
        .accounts
        .open_session(&client, &user, &[Method::Password], None)
        .await?;
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
    match state.accounts.refresh(token).await {
        Ok(refreshed) => Ok(pair_json(&refreshed.pair)),
        Err(RefreshError::Refused) => Err(AppError::Unauthorized(REFRESH_FAILED.into())),
        Err(RefreshError::Failed(e)) => Err(e),
    }
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = required_refresh_token(&req)?;
    if !state.accounts.logout(token).await? {
        return Err(AppError::Unauthorized(REFRESH_FAILED.into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
