//! The accounts boundary: registering, checking a login, starting and ending
//! sessions, changing passwords. HTML and JSON handlers both call these, so
//! the two faces of a path cannot drift apart.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::{HttpRequest, web};

use super::{
    password,
    sessions::{self, Device, Issuer, Refused, TokenPair},
    tokens::Claims,
};
use crate::{
    db::{models::User, users},
    domain::{Password, Role, Username},
    error::AppError,
    request,
    state::AppState,
};

/// Creates a user with a new bcrypt hash. A taken name (in any case) is a `Conflict`.
pub async fn register(
    state: &web::Data<AppState>,
    username: Username,
    password: Password,
    role: Role,
) -> Result<User, AppError> {
    let now = state.clock.now();
    let cost = state.config.bcrypt_cost;
    let hash = state
        .bcrypt(move || password::hash(&password, cost))
        .await?
        .map_err(AppError::internal)?;
    state
        .db(move |conn| {
            users::create(conn, username.as_str(), &hash, role, now).map_err(|e| {
                match AppError::from(e) {
                    AppError::Conflict(_) => {
                        AppError::Conflict("That username is already taken.".into())
                    }
                    other => other,
                }
            })
        })
        .await
}

/// The one message for an unknown user, a wrong password and a disabled
/// account, so the answer does not tell them apart.
pub const LOGIN_FAILED: &str = "Invalid username or password.";

/// The outcome of a login attempt.
pub enum Login {
    Success(User),
    /// Wrong password, unknown user or disabled account: one answer for all.
    Failed,
    /// Too many failures for this (client IP, username): try again later.
    Locked {
        retry_after: u64,
    },
}

/// Checks a username and password for a client. A locked-out pair is refused
/// before any work; otherwise one bcrypt verification always runs, against a
/// dummy hash when the user does not exist, so timing does not reveal which
/// usernames exist.
pub async fn check_login(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    username: &str,
    attempt: &str,
) -> Result<Login, AppError> {
    let ip = request::client_ip(req, &state.config.trusted_proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(retry_after) = state.login_throttle.check(ip, username) {
        tracing::warn!(client_ip = %ip, "login refused: too many failures");
        return Ok(Login::Locked { retry_after });
    }
    let name = username.to_owned();
    let user = state
        .db(move |conn| Ok(users::find_by_username(conn, &name)?))
        .await?;
    let cost = state.config.bcrypt_cost;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let attempt = attempt.to_owned();
    let valid = state
        .bcrypt(move || password::verify(&attempt, hash.as_deref(), cost))
        .await?;
    match user.filter(|u| valid && !u.disabled) {
        Some(user) => {
            state.login_throttle.record_success(ip, username);
            tracing::info!(user_id = user.id, client_ip = %ip, "login succeeded");
            Ok(Login::Success(user))
        }
        None => {
            state.login_throttle.record_failure(ip, username);
            tracing::info!(client_ip = %ip, "login failed");
            Ok(Login::Failed)
        }
    }
}

/// Starts a session for a user who just logged in or registered.
pub async fn open_session(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    user: User,
) -> Result<TokenPair, AppError> {
    let now = state.clock.now();
    let device = Device {
        user_agent: request::user_agent(req),
        ip: request::client_ip(req, &state.config.trusted_proxies)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
    };
    let st = state.clone();
    let pair = state
        .db(move |conn| {
            sessions::start(conn, Issuer::new(&st.keys, &st.config), &user, device, now)
        })
        .await?;
    Ok(pair)
}

/// Starts a session for a browser, first ending the session whose refresh
/// cookie it still carries (logging in again replaces it; it must not linger
/// in the sessions list).
pub async fn open_browser_session(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    user: User,
) -> Result<TokenPair, AppError> {
    if let Some(old) = req.cookie(super::cookies::REFRESH) {
        match logout(state, old.value()).await {
            Ok(_) | Err(AppError::Unauthorized(_)) => {}
            Err(e) => return Err(e),
        }
    }
    open_session(state, req, user).await
}

pub const REFRESH_FAILED: &str =
    "The refresh token is invalid, expired or revoked. Please log in again.";

/// Verifies a refresh token and rotates it.
pub async fn refresh(
    state: &web::Data<AppState>,
    token: &str,
) -> Result<(TokenPair, User), AppError> {
    let now = state.clock.now();
    let claims = verify_refresh(state, token)?;
    let st = state.clone();
    let outcome = state
        .db(move |conn| sessions::refresh(conn, Issuer::new(&st.keys, &st.config), &claims, now))
        .await?;
    // Every refusal (unknown, expired, revoked, reused) gets the same answer;
    // `sessions::refresh` has already logged a reuse.
    outcome.map_err(|_: Refused| AppError::Unauthorized(REFRESH_FAILED.into()))
}

fn verify_refresh(state: &AppState, token: &str) -> Result<Claims, AppError> {
    state
        .keys
        .verify(token, super::tokens::TokenType::Refresh)
        .map_err(|_| AppError::Unauthorized(REFRESH_FAILED.into()))
}

/// Ends the session a refresh token belongs to. `Ok(false)` when the token is
/// not one of ours.
pub async fn logout(state: &web::Data<AppState>, token: &str) -> Result<bool, AppError> {
    let now = state.clock.now();
    let claims = verify_refresh(state, token)?;
    let ended = state
        .db(move |conn| sessions::end_by_token(conn, &claims, now))
        .await?;
    Ok(ended)
}

/// The user's live sessions, newest use first.
pub async fn sessions_of(
    state: &web::Data<AppState>,
    user_id: i32,
) -> Result<Vec<crate::db::models::Family>, AppError> {
    let now = state.clock.now();
    state
        .db(move |conn| {
            Ok(crate::db::refresh_tokens::active_families(
                conn, user_id, now,
            )?)
        })
        .await
}

/// Ends one of the user's own sessions.
pub async fn end_session(
    state: &web::Data<AppState>,
    user_id: i32,
    session_id: String,
) -> Result<bool, AppError> {
    let now = state.clock.now();
    state
        .db(move |conn| sessions::end(conn, user_id, &session_id, now))
        .await
}

/// Ends every session of the user except `keep`.
pub async fn end_sessions(
    state: &web::Data<AppState>,
    user_id: i32,
    keep: Option<String>,
) -> Result<usize, AppError> {
    let now = state.clock.now();
    state
        .db(move |conn| sessions::end_all(conn, user_id, keep.as_deref(), now))
        .await
}

/// Why a password change was refused, field by field.
pub enum PasswordChangeError {
    WrongCurrent,
    Invalid(crate::domain::PasswordError),
    Other(AppError),
}

/// Changes the password after checking the current one, then ends every other
/// session: whoever else knew the old password is logged out.
pub async fn change_password(
    state: &web::Data<AppState>,
    user_id: i32,
    current: &str,
    new: &str,
    keep_session: String,
) -> Result<(), PasswordChangeError> {
    let now = state.clock.now();
    let other = PasswordChangeError::Other;
    let user = state
        .db(move |conn| Ok(users::find(conn, user_id)?))
        .await
        .map_err(other)?
        .ok_or(PasswordChangeError::Other(AppError::Unauthorized(
            "Your account no longer exists.".into(),
        )))?;
    let new = Password::parse(new, &user.username).map_err(PasswordChangeError::Invalid)?;
    let cost = state.config.bcrypt_cost;
    let (hash, attempt) = (user.password_hash.clone(), current.to_owned());
    let verified = state
        .bcrypt(move || password::verify(&attempt, Some(&hash), cost))
        .await
        .map_err(other)?;
    if !verified {
        return Err(PasswordChangeError::WrongCurrent);
    }
    let new_hash = state
        .bcrypt(move || password::hash(&new, cost))
        .await
        .map_err(other)?
        .map_err(|e| PasswordChangeError::Other(AppError::internal(e)))?;
    state
        .db(move |conn| {
            conn.immediate_transaction(|conn| {
                users::set_password_hash(conn, user_id, &new_hash)?;
                sessions::end_all(conn, user_id, Some(&keep_session), now)?;
                Ok(())
            })
        })
        .await
        .map_err(other)
}

/// What an administrator can do to a user.
#[derive(Debug, Clone, Copy)]
pub enum AdminAction {
    SetRole(Role),
    Disable,
    Enable,
    EndSessions,
}

/// Applies an admin action in one transaction, so the "last admin" check
/// cannot race another admin's action. Returns the target's username.
pub async fn admin_act(
    state: &web::Data<AppState>,
    actor_id: i32,
    target_id: i32,
    action: AdminAction,
) -> Result<String, AppError> {
    let now = state.clock.now();
    state
        .db(move |conn| {
            conn.immediate_transaction(|conn| {
                let target = users::find(conn, target_id)?.ok_or(AppError::NotFound)?;
                let removes_admin = target.role.is_admin()
                    && !target.disabled
                    && matches!(
                        action,
                        AdminAction::SetRole(Role::User) | AdminAction::Disable
                    );
                if removes_admin && target_id == actor_id {
                    return Err(AppError::Forbidden(
                        "You cannot demote or disable your own account.".into(),
                    ));
                }
                if removes_admin && users::count_active_admins(conn)? <= 1 {
                    return Err(AppError::Conflict(
                        "The last administrator cannot be removed.".into(),
                    ));
                }
                match action {
                    AdminAction::SetRole(role) => {
                        users::set_role(conn, target_id, role)?;
                    }
                    AdminAction::Disable => {
                        if target_id == actor_id {
                            return Err(AppError::Forbidden(
                                "You cannot disable your own account.".into(),
                            ));
                        }
                        users::set_disabled(conn, target_id, true)?;
                        sessions::end_all(conn, target_id, None, now)?;
                    }
                    AdminAction::Enable => {
                        users::set_disabled(conn, target_id, false)?;
                    }
                    AdminAction::EndSessions => {
                        sessions::end_all(conn, target_id, None, now)?;
                    }
                }
                Ok(target.username)
            })
        })
        .await
}

/// Every user, for the admin page.
pub async fn all_users(state: &web::Data<AppState>) -> Result<Vec<User>, AppError> {
    state.db(|conn| Ok(users::list(conn)?)).await
}
