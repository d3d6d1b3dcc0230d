//! The guard: who is making this request, and may they.
//!
//! `authenticate` (middleware) verifies the access token once per request,
//! from the `Authorization` header if there is one (it wins over cookies),
//! else from the `access_token` cookie, and leaves an `Identity` in the
//! request extensions. When a browser's access cookie is missing or expired
//! but its refresh cookie is valid, it refreshes implicitly: the request goes
//! on as that user and the response carries the new cookies.
//!
//! Handlers state what they need by taking an extractor: `MaybeUser`,
//! `CurrentUser` or `AdminUser`. A handler that takes `AdminUser` cannot run
//! for anyone else, and the admin check re-reads the user from the database.

use std::future::{Ready, ready};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    web,
};
use futures_util::future::LocalBoxFuture;

use super::{
    cookies,
    sessions::{self, Issuer},
    tokens::{Claims, TokenError, TokenType},
};
use crate::{
    db::{self, models::User},
    domain::Role,
    error::AppError,
    request::{bearer_token, has_bearer, has_json_body, is_api_request},
    state::AppState,
};

/// The authenticated user, as the access token describes them.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: i32,
    pub username: String,
    pub role: Role,
    /// The session (refresh-token family) the token was issued for.
    pub session_id: String,
}

impl From<&Claims> for Option<Identity> {
    fn from(claims: &Claims) -> Self {
        Some(Identity {
            user_id: claims.user_id()?,
            username: claims.username.clone(),
            role: claims.role,
            session_id: claims.sid.clone(),
        })
    }
}

/// Why a presented access token was not accepted, for the API's 401 message.
#[derive(Debug, Clone, Copy)]
struct Rejected(TokenError);

/// What the implicit refresh decided, applied to the response.
enum CookieUpdate {
    Set(sessions::TokenPair),
    Clear,
}

pub async fn authenticate(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let mut update = None;

    if has_bearer(req.headers()) {
        // The header wins: cookies are not even looked at.
        match bearer_token(req.headers()).map(|t| state.keys.verify(t, TokenType::Access)) {
            Some(Ok(claims)) => insert_identity(&req, &claims),
            Some(Err(e)) => {
                req.extensions_mut().insert(Rejected(e));
            }
            None => {
                req.extensions_mut().insert(Rejected(TokenError::Invalid));
            }
        }
    } else if !has_json_body(req.headers()) {
        // JSON bodies are exempt from CSRF, so they must not ride on cookies.
        let access = req.cookie(cookies::ACCESS).map(|c| c.value().to_owned());
        match access.map(|t| state.keys.verify(&t, TokenType::Access)) {
            Some(Ok(claims)) => insert_identity(&req, &claims),
            _ if wants_implicit_refresh(&req) => {
                if let Some(refresh) = req.cookie(cookies::REFRESH).map(|c| c.value().to_owned()) {
                    update = implicit_refresh(&state, &req, refresh).await;
                }
            }
            _ => {}
        }
    }

    let mut res = next.call(req).await?;
    match update {
        Some(CookieUpdate::Set(pair)) => {
            cookies::set_pair(res.response_mut(), &pair, &state.config)
        }
        Some(CookieUpdate::Clear) => cookies::clear_pair(res.response_mut(), &state.config),
        None => {}
    }
    Ok(res)
}

fn insert_identity(req: &ServiceRequest, claims: &Claims) {
    if let Some(identity) = Option::<Identity>::from(claims) {
        req.extensions_mut().insert(identity);
    }
}

/// Browsers only, and not for the routes that handle the refresh cookie
/// themselves or for static files.
fn wants_implicit_refresh(req: &ServiceRequest) -> bool {
    let path = req.path();
    !is_api_request(req.head())
        && !path.starts_with("/static/")
        && !matches!(path, "/token/refresh" | "/logout" | "/healthz")
}

async fn implicit_refresh(
    state: &web::Data<AppState>,
    req: &ServiceRequest,
    refresh: String,
) -> Option<CookieUpdate> {
    let now = state.clock.now();
    let Ok(claims) = state.keys.verify(&refresh, TokenType::Refresh) else {
        return Some(CookieUpdate::Clear);
    };
    let st = state.clone();
    let result = state
        .db(move |conn| sessions::refresh(conn, Issuer::new(&st.keys, &st.config), &claims, now))
        .await;
    match result {
        Ok(Ok((pair, user))) => {
            req.extensions_mut().insert(Identity {
                user_id: user.id,
                username: user.username,
                role: user.role,
                session_id: pair.session_id.clone(),
            });
            Some(CookieUpdate::Set(pair))
        }
        Ok(Err(_refused)) => Some(CookieUpdate::Clear),
        // The database is busy: leave the cookies alone, the next request retries.
        Err(e) => {
            tracing::warn!(error = %e, "implicit refresh failed");
            None
        }
    }
}

/// Anyone; `Some` when logged in.
pub struct MaybeUser(pub Option<Identity>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(MaybeUser(req.extensions().get::<Identity>().cloned())))
    }
}

/// A logged-in user (trusting the access token alone).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Identity);

fn require_identity(req: &HttpRequest) -> Result<Identity, AppError> {
    if let Some(identity) = req.extensions().get::<Identity>() {
        return Ok(identity.clone());
    }
    if is_api_request(req.head()) {
        let message = match req.extensions().get::<Rejected>() {
            Some(Rejected(TokenError::Expired)) => "The access token has expired.",
            Some(Rejected(TokenError::WrongType)) => {
                "An access token is required, not a refresh token."
            }
            Some(Rejected(TokenError::Invalid)) => "The access token is invalid.",
            None => "Missing access token: send Authorization: Bearer <token>.",
        };
        return Err(AppError::Unauthorized(message.into()));
    }
    let next = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    };
    Err(AppError::LoginRequired { next })
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(require_identity(req).map(CurrentUser))
    }
}

/// An administrator, confirmed against the database on every request: a
/// demoted or disabled admin loses access at once, whatever their token says.
pub struct AdminUser {
    pub identity: Identity,
    pub user: User,
}

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let identity = require_identity(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let identity = identity?;
            let state =
                state.ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))?;
            let id = identity.user_id;
            let user = state.db(move |conn| Ok(db::users::find(conn, id)?)).await?;
            match user {
                Some(user) if user.role.is_admin() && !user.disabled => {
                    Ok(AdminUser { identity, user })
                }
                _ => Err(AppError::Forbidden(
                    "This page is for administrators only.".into(),
                )),
            }
        })
    }
}
