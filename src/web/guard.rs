//! The guard: who is making this request, and may they (reference §3, §4).
//!
//! `authenticate` (middleware) verifies the access token once per request:
//! for an API request from the `Authorization: Bearer` header only (cookies
//! are never looked at), for a browser from the `access_token` cookie. When a
//! browser's access cookie is missing or expired but it sent a refresh
//! cookie, nothing happens yet: the first extractor that needs the user
//! refreshes implicitly (so only requests that need a user rotate tokens, and
//! only after the CSRF check) and proposes the rotated cookies. After the
//! handler, `authenticate` hands the response to `session_cookies::apply`,
//! where the handler's own decision wins over that proposal.
//!
//! Handlers state what they need by taking an extractor: `MaybeUser`,
//! `CurrentUser` (trusts the access token), `LiveUser` (re-checked in the
//! database: account exists, enabled, the token's session still live) or
//! `AdminUser` (`LiveUser` with the admin role). A handler that takes
//! `AdminUser` cannot run for anyone else. Take one of them, not several.

use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use super::{
    face::Face,
    request::bearer_token,
    session_cookies::{self, SessionChange},
    state::AppState,
};
use crate::{
    auth::{Identity, accounts::RefreshError, tokens::TokenError},
    db::models::User,
    error::AppError,
};

/// Why a presented access token was not accepted, for the API's 401 message.
#[derive(Debug, Clone, Copy)]
struct Rejected(TokenError);

/// A browser's refresh cookie, waiting for an extractor that needs the user.
struct Refreshable(String);

/// An API request's Bearer token, verified as an access token only when an
/// extractor asks (`POST /token/refresh` and `/logout` carry a refresh token
/// there, which is never worth verifying as an access token).
struct Bearer(String);

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let face = Face::of_service(&req);
    match face {
        Face::Api => {
            if let Some(token) = bearer_token(req.headers()) {
                let token = Bearer(token.to_owned());
                req.extensions_mut().insert(token);
            }
        }
        Face::Browser | Face::Script => {
            let access = session_cookies::access_cookie(req.request());
            match access.map(|t| state.accounts.verify_access(&t)) {
                Some(Ok(identity)) => {
                    req.extensions_mut().insert(identity);
                }
                _ => {
                    if let Some(refresh) = session_cookies::refresh_cookie(req.request()) {
                        req.extensions_mut().insert(Refreshable(refresh));
                    }
                }
            }
        }
    }
    let mut res = next.call(req).await?;
    match face {
        Face::Browser | Face::Script => session_cookies::apply(&mut res, &state.cookies),
        // API responses never set a token cookie, whatever a handler did.
        Face::Api => session_cookies::remove_token_cookies(res.response_mut().headers_mut()),
    }
    Ok(res)
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))
}

/// The request's user, refreshing implicitly if the browser left that to us.
async fn identity(req: &HttpRequest) -> Result<Option<Identity>, AppError> {
    if let Some(identity) = req.extensions().get::<Identity>() {
        return Ok(Some(identity.clone()));
    }
    let bearer = req.extensions_mut().remove::<Bearer>();
    if let Some(Bearer(token)) = bearer {
        return match state(req)?.accounts.verify_access(&token) {
            Ok(identity) => {
                req.extensions_mut().insert(identity.clone());
                Ok(Some(identity))
            }
            Err(e) => {
                req.extensions_mut().insert(Rejected(e));
                Ok(None)
            }
        };
    }
    let Some(Refreshable(token)) = req.extensions_mut().remove::<Refreshable>() else {
        return Ok(None);
    };
    let state = state(req)?;
    match state.accounts.refresh(&state.client(req), &token).await {
        Ok(refreshed) => {
            req.extensions_mut().insert(refreshed.identity.clone());
            session_cookies::propose(req, SessionChange::Rotated(refreshed.pair));
            Ok(Some(refreshed.identity))
        }
        Err(RefreshError::Refused) => {
            session_cookies::propose(req, SessionChange::Dropped);
            Ok(None)
        }
        // The database is busy: a 503, and the cookies stay as they are.
        Err(RefreshError::Failed(e)) => Err(e),
    }
}

/// The answer to a request that needs a user and has none.
fn login_required(req: &HttpRequest) -> AppError {
    let face = Face::of(req);
    if face == Face::Script {
        return AppError::Unauthorized("Please log in again.".into());
    }
    if face.is_api() {
        let message = match req.extensions().get::<Rejected>() {
            Some(Rejected(TokenError::Expired)) => "The access token has expired.",
            Some(Rejected(TokenError::WrongType)) => {
                "An access token is required, not a refresh token."
            }
            Some(Rejected(TokenError::Invalid)) => "The access token is invalid.",
            None => "Missing access token: send Authorization: Bearer <token>.",
        };
        return AppError::Unauthorized(message.into());
    }
    let next = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    };
    AppError::LoginRequired { next }
}

type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AppError>>>>;

/// Anyone; `Some` when logged in.
pub struct MaybeUser(pub Option<Identity>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { identity(&req).await.map(MaybeUser) })
    }
}

/// A logged-in user, trusting the access token alone (ordinary pages).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Identity);

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match identity(&req).await? {
                Some(identity) => Ok(CurrentUser(identity)),
                None => Err(login_required(&req)),
            }
        })
    }
}

/// A logged-in user confirmed against the database: the account exists and
/// is enabled, and the token's session is still live. A token from an ended
/// session gets the login page (its cookies expired) or a 401, never the
/// handler.
pub struct LiveUser {
    pub identity: Identity,
    pub user: User,
    /// When the session last authenticated.
    pub auth_time: i64,
}

async fn live_user(req: &HttpRequest) -> Result<LiveUser, AppError> {
    let Some(identity) = identity(req).await? else {
        return Err(login_required(req));
    };
    match state(req)?.accounts.live_user(&identity).await? {
        Some(live) => Ok(LiveUser {
            identity,
            user: live.user,
            auth_time: live.auth_time,
        }),
        None => {
            tracing::info!(user_id = %identity.user_id, "refused: the token's session has ended");
            req.extensions_mut().remove::<Identity>();
            session_cookies::propose(req, SessionChange::Dropped);
            Err(login_required(req))
        }
    }
}

impl FromRequest for LiveUser {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { live_user(&req).await })
    }
}

/// An administrator, confirmed against the database on every request (role,
/// status and session): a demoted, disabled or logged-out admin loses access
/// at once, whatever their token says.
pub struct AdminUser {
    pub identity: Identity,
    pub user: User,
    pub auth_time: i64,
}

async fn admin_user(req: &HttpRequest) -> Result<AdminUser, AppError> {
    let LiveUser {
        identity,
        user,
        auth_time,
    } = live_user(req).await?;
    if !user.role.is_admin() {
        tracing::warn!(user_id = user.id, path = %req.path(), "refused: not an administrator");
        return Err(AppError::Forbidden(
            "This page is for administrators only.".into(),
        ));
    }
    Ok(AdminUser {
        identity,
        user,
        auth_time,
    })
}

/// Sends a session whose last authentication is older than `REAUTH_WINDOW`
/// to re-authenticate first (reference §8): a browser to `/reauth`, back to
/// the page the action was on; the API gets `403` `reauth_required`.
fn require_recent(req: &HttpRequest, auth_time: i64) -> Result<(), AppError> {
    if state(req)?.accounts.is_recent(auth_time) {
        return Ok(());
    }
    let next = if req.method() == actix_web::http::Method::GET {
        match req.uri().path_and_query() {
            Some(pq) => pq.as_str().to_owned(),
            None => req.path().to_owned(),
        }
    } else if req.path().starts_with("/admin") {
        "/admin".to_owned()
    } else {
        "/account".to_owned()
    };
    Err(AppError::ReauthRequired { next })
}

/// `LiveUser` who authenticated within `REAUTH_WINDOW`: for the sensitive
/// actions of `/account` (turning TOTP off, recovery codes, passkeys).
pub struct RecentUser(pub LiveUser);

impl FromRequest for RecentUser {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = live_user(&req).await?;
            require_recent(&req, user.auth_time)?;
            Ok(RecentUser(user))
        })
    }
}

/// `AdminUser` who authenticated within `REAUTH_WINDOW`: every admin action.
pub struct RecentAdmin(pub AdminUser);

impl FromRequest for RecentAdmin {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let admin = admin_user(&req).await?;
            require_recent(&req, admin.auth_time)?;
            Ok(RecentAdmin(admin))
        })
    }
}

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { admin_user(&req).await })
    }
}
