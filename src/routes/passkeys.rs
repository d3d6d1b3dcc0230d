//! Passkeys (reference §8): the JSON the site's script (`static/js/passkeys.js`)
//! exchanges with the server to add a passkey, sign in and re-authenticate
//! with one (`Face::Script`: cookies and `X-CSRF-Token`, JSON answers), and
//! the account page's forms to rename and remove one.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth::{
        Method,
        passkeys::{PasskeyError, PasskeyName},
    },
    error::AppError,
    web::{
        flash::{self, Level},
        form::Form,
        guard::{LiveUser, RecentUser},
        redirect::{safe_next, see_other},
        session_cookies::{self, SessionChange, decide},
        state::AppState,
    },
};

/// The one answer to a passkey that did not sign anyone in.
pub const PASSKEY_REFUSED: &str = "That passkey was not accepted. Please try again.";
const NOT_ADDED: &str = "The passkey could not be added. Please try again.";

#[derive(Deserialize)]
pub struct StartRegistration {
    #[serde(default)]
    name: String,
}

/// A ceremony's finish: its id, the browser's credential as JSON, and (for
/// a login or re-authentication) where to go next.
#[derive(Deserialize)]
pub struct Finish {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: serde_json::Value,
    #[serde(default)]
    next: String,
}

fn redirect_to(target: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "redirect": target }))
}

/// `POST /account/passkeys/register/start` `{"name"}`.
pub async fn register_start(
    state: web::Data<AppState>,
    RecentUser(user): RecentUser,
    body: web::Json<StartRegistration>,
) -> Result<HttpResponse, AppError> {
    let name = PasskeyName::parse(&body.name).map_err(|e| AppError::Validation(e.to_string()))?;
    let challenge = state
        .accounts
        .start_passkey_registration(&user.user, name)
        .await?;
    Ok(HttpResponse::Ok().json(challenge))
}

/// `POST /account/passkeys/register/finish` `{"ceremony", "credential"}`.
pub async fn register_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    RecentUser(user): RecentUser,
    body: web::Json<Finish>,
) -> Result<HttpResponse, AppError> {
    let Finish {
        ceremony,
        credential,
        ..
    } = body.into_inner();
    match state
        .accounts
        .finish_passkey_registration(&state.client(&req), &user.identity, &ceremony, credential)
        .await
    {
        Ok(added) => {
            flash::push(
                &session,
                Level::Success,
                format!("The passkey \u{201c}{}\u{201d} has been added.", added.name),
            );
            Ok(redirect_to("/account"))
        }
        Err(PasskeyError::Refused) => Err(AppError::BadRequest(NOT_ADDED.into())),
        Err(PasskeyError::Failed(e)) => Err(e),
    }
}

/// `POST /login/passkey/start`: anyone.
pub async fn login_start(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let challenge = state.accounts.start_passkey_login().await?;
    Ok(HttpResponse::Ok().json(challenge))
}

/// `POST /login/passkey/finish` `{"ceremony", "credential", "next"}`: opens a
/// session as a password login does (replacing the one the browser's refresh
/// cookie named). A passkey is two factors in one: no TOTP code follows.
pub async fn login_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<Finish>,
) -> Result<HttpResponse, AppError> {
    let Finish {
        ceremony,
        credential,
        next,
    } = body.into_inner();
    let user = match state
        .accounts
        .finish_passkey_login(&ceremony, credential)
        .await
    {
        Ok(user) => user,
        Err(PasskeyError::Refused) => return Err(AppError::Unauthorized(PASSKEY_REFUSED.into())),
        Err(PasskeyError::Failed(e)) => return Err(e),
    };
    let client = state.client(&req);
    let replacing = session_cookies::refresh_cookie(&req);
    let pair = state
        .accounts
        .open_session(&client, &user, &[Method::Passkey], replacing.as_deref())
        .await?;
    flash::push(
        &session,
        Level::Success,
        format!("Welcome back, {}.", user.username),
    );
    let target = safe_next(Some(&next)).unwrap_or("/protected");
    Ok(decide(redirect_to(target), SessionChange::Opened(pair)))
}

/// `POST /reauth/passkey/start`: the logged-in user.
pub async fn reauth_start(
    state: web::Data<AppState>,
    user: LiveUser,
) -> Result<HttpResponse, AppError> {
    let challenge = state
        .accounts
        .start_passkey_reauth(user.identity.user_id)
        .await?;
    Ok(HttpResponse::Ok().json(challenge))
}

/// `POST /reauth/passkey/finish` `{"ceremony", "credential", "next"}`: one of
/// the user's own passkeys renews the session's authentication.
pub async fn reauth_finish(
    state: web::Data<AppState>,
    session: Session,
    user: LiveUser,
    body: web::Json<Finish>,
) -> Result<HttpResponse, AppError> {
    let Finish {
        ceremony,
        credential,
        next,
    } = body.into_inner();
    match state
        .accounts
        .finish_passkey_reauth(user.identity.user_id, &ceremony, credential)
        .await
    {
        Ok(()) => {}
        Err(PasskeyError::Refused) => return Err(AppError::Unauthorized(PASSKEY_REFUSED.into())),
        Err(PasskeyError::Failed(e)) => return Err(e),
    }
    let Some(pair) = state
        .accounts
        .reauthenticated(&user.identity, &[Method::Passkey])
        .await?
    else {
        return Ok(decide(
            HttpResponse::from_error(AppError::Unauthorized("Please log in again.".into())),
            SessionChange::Dropped,
        ));
    };
    flash::push(&session, Level::Success, "Thank you: it is you.");
    let target = safe_next(Some(&next)).unwrap_or("/account");
    Ok(decide(redirect_to(target), SessionChange::Rotated(pair)))
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

/// `POST /account/passkeys/{id}/rename` (form: `name`).
pub async fn rename(
    state: web::Data<AppState>,
    session: Session,
    LiveUser { identity, .. }: LiveUser,
    path: web::Path<i32>,
    form: Form<RenameForm>,
) -> Result<HttpResponse, AppError> {
    match PasskeyName::parse(&form.into_inner().name) {
        Err(e) => flash::push(&session, Level::Error, e.to_string()),
        Ok(name) => {
            if state
                .accounts
                .rename_passkey(identity.user_id, path.into_inner(), name)
                .await?
            {
                flash::push(&session, Level::Success, "The passkey has been renamed.");
            } else {
                flash::push(&session, Level::Error, "That passkey does not exist.");
            }
        }
    }
    Ok(see_other("/account"))
}

/// `POST /account/passkeys/{id}/remove`: needs a recent authentication.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    RecentUser(user): RecentUser,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    if state
        .accounts
        .remove_passkey(&state.client(&req), &user.identity, path.into_inner())
        .await?
    {
        flash::push(&session, Level::Success, "The passkey has been removed.");
    } else {
        flash::push(&session, Level::Error, "That passkey does not exist.");
    }
    Ok(see_other("/account"))
}
