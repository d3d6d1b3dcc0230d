//! The JSON face of the same paths (reference §5), as the Flask
//! tutorial's client uses it. Tokens travel in bodies and the
//! `Authorization` header; these handlers never set cookies.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    auth::{
        Method,
        accounts::{LOGIN_FAILED, Login, REFRESH_FAILED, RefreshError, RegisterError},
        mfa::{CODE_WRONG, MFA_EXPIRED, SecondStep},
        tokens::TokenPair,
    },
    domain::{Password, Role, Username},
    error::AppError,
    views::Rendered,
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
        Login::SecondFactor { mfa_token, .. } => {
            let mut res = HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(json!({
                    "error": MFA_REQUIRED,
                    "mfa_required": true,
                    "mfa_token": mfa_token,
                }));
            // The body is final: not an error for `error_pages` to restate.
            res.extensions_mut().insert(Rendered);
            return Ok(res);
        }
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

const MFA_REQUIRED: &str =
    "A second factor is required: POST /login/mfa with this mfa_token and a code.";

#[derive(Deserialize)]
pub struct SecondStepBody {
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    code: String,
}

/// `POST /login/mfa` for the API: the second step of a login (reference §5).
pub async fn login_mfa(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SecondStepBody>,
) -> Result<HttpResponse, AppError> {
    let client = state.client(&req);
    match state
        .accounts
        .complete_second_step(&client, &body.mfa_token, &body.code)
        .await?
    {
        SecondStep::Success { user, methods } => {
            let pair = state
                .accounts
                .open_session(&client, &user, &methods, None)
                .await?;
            Ok(pair_json(&pair))
        }
        SecondStep::Wrong => Err(AppError::Unauthorized(CODE_WRONG.into())),
        SecondStep::Expired => Err(AppError::Unauthorized(MFA_EXPIRED.into())),
        SecondStep::Locked(refusal) => Err(AppError::TooManyRequests {
            retry_after: refusal.retry_after(),
        }),
    }
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
    match state.accounts.refresh(&state.client(&req), token).await {
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
    if !state.accounts.logout(&state.client(&req), token).await? {
        return Err(AppError::Unauthorized(REFRESH_FAILED.into()));
    }
    Ok(HttpResponse::NoContent().finish())
}
