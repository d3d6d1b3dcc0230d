//! `/account`: the user's own page: sessions, log out everywhere, password
//! change. The page trusts the access token like any ordinary page; every
//! form takes `LiveUser`: the token's session must still be live
//! (reference §4.5).

use actix_session::Session;
use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use serde::Deserialize;

use crate::{
    auth::{
        Identity,
        accounts::PasswordChangeError,
        mfa::{CODE_WRONG, CodeRefused, TotpState},
    },
    domain::SessionId,
    error::AppError,
    views::{self, AccountPage, FormErrors, PasskeyRow, RecoveryCodesPage, SessionRow, TotpView},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        guard::{CurrentUser, LiveUser, RecentUser},
        headers,
        redirect::see_other,
        session_cookies::{SessionChange, decide},
        state::AppState,
    },
};

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(identity): CurrentUser,
) -> Result<HttpResponse, AppError> {
    render(
        &req,
        &state,
        &identity,
        StatusCode::OK,
        FormErrors::default(),
    )
    .await
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    identity: &Identity,
    status: StatusCode,
    errors: FormErrors,
) -> Result<HttpResponse, AppError> {
    let sessions = state
        .accounts
        .sessions_of(identity.user_id)
        .await?
        .into_iter()
        .map(|s| SessionRow::new(s, identity))
        .collect();
    let totp = match state
        .accounts
        .totp_state(identity.user_id.0, &identity.username)
        .await?
    {
        TotpState::Off => TotpView::Off,
        TotpState::Pending(enrolment) => TotpView::Pending {
            secret: enrolment.secret,
        },
        TotpState::On {
            recovery_codes_left,
        } => TotpView::On {
            recovery_codes_left,
        },
    };
    let passkeys = state
        .accounts
        .passkeys_of(identity.user_id)
        .await?
        .into_iter()
        .map(PasskeyRow::new)
        .collect();
    views::render(
        status,
        &AccountPage {
            chrome: chrome(req),
            username: identity.username.clone(),
            role: identity.role,
            sessions,
            totp,
            errors,
            passkeys,
        },
    )
}

/// Starts (or restarts) setting up TOTP: the page then shows the key.
pub async fn start_totp(
    state: web::Data<AppState>,
    session: Session,
    user: LiveUser,
) -> Result<HttpResponse, AppError> {
    if state.accounts.start_totp(&user.user).await?.is_none() {
        flash::push(
            &session,
            Level::Info,
            "Two-factor authentication is already on.",
        );
    }
    Ok(see_other("/account#totp-title"))
}

/// The pending key's `otpauth://` URI as a QR code (SVG), for the account
/// page's `<img>`. Nothing is pending: 404.
pub async fn totp_qr(state: web::Data<AppState>, user: LiveUser) -> Result<HttpResponse, AppError> {
    let TotpState::Pending(enrolment) = state
        .accounts
        .totp_state(user.user.id, &user.user.username)
        .await?
    else {
        return Err(AppError::NotFound);
    };
    let svg = views::qr_svg(&enrolment.uri)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(svg))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Turns TOTP on with a first valid code, then shows the recovery codes once.
pub async fn confirm_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: LiveUser,
    form: Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let outcome = state
        .accounts
        .confirm_totp(&state.client(&req), &user.user, &form.code)
        .await?;
    let mut errors = FormErrors::default();
    match outcome {
        Ok(codes) => views::ok(&RecoveryCodesPage {
            chrome: chrome(&req),
            codes: codes.0,
            first: true,
        }),
        Err(CodeRefused::NotPending) => {
            flash::push(
                &session,
                Level::Error,
                "Set up two-factor authentication first.",
            );
            Ok(see_other("/account"))
        }
        Err(CodeRefused::Wrong) => {
            errors.add("code", CODE_WRONG);
            render(
                &req,
                &state,
                &user.identity,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(CodeRefused::Locked(refusal)) => {
            errors.add("code", views::locked_out_text(refusal.retry_after()));
            let res = render(
                &req,
                &state,
                &user.identity,
                StatusCode::TOO_MANY_REQUESTS,
                errors,
            )
            .await?;
            Ok(headers::retry_after(res, refusal.retry_after()))
        }
    }
}

/// Turns the user's own TOTP off (a recent authentication needed).
pub async fn disable_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    RecentUser(user): RecentUser,
) -> Result<HttpResponse, AppError> {
    if state
        .accounts
        .disable_totp(&state.client(&req), &user.identity)
        .await?
    {
        flash::push(
            &session,
            Level::Success,
            "Two-factor authentication is off.",
        );
    }
    Ok(see_other("/account"))
}

/// A new set of recovery codes, shown once (a recent authentication needed).
pub async fn regenerate_recovery_codes(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    RecentUser(user): RecentUser,
) -> Result<HttpResponse, AppError> {
    match state
        .accounts
        .regenerate_recovery_codes(&state.client(&req), &user.identity)
        .await?
    {
        Some(codes) => views::ok(&RecoveryCodesPage {
            chrome: chrome(&req),
            codes: codes.0,
            first: false,
        }),
        None => {
            flash::push(
                &session,
                Level::Error,
                "Turn on two-factor authentication first.",
            );
            Ok(see_other("/account"))
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// Keeps this session (its cookies unchanged) and ends every other one.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: LiveUser,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    if form.new_password != form.new_password_confirm {
        errors.add(
            "new_password_confirm",
            "The two new passwords do not match.",
        );
        return render(
            &req,
            &state,
            &user.identity,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
        )
        .await;
    }
    let outcome = state
        .accounts
        .change_password(
            &state.client(&req),
            &user.identity,
            &form.current_password,
            &form.new_password,
        )
        .await;
    match outcome {
        Ok(()) => {
            flash::push(
                &session,
                Level::Success,
                "Your password has been changed. Your other sessions have been logged out.",
            );
            Ok(see_other("/account"))
        }
        Err(e @ (PasswordChangeError::WrongCurrent | PasswordChangeError::Invalid(_))) => {
            match e {
                PasswordChangeError::Invalid(e) => errors.add("new_password", e.to_string()),
                _ => errors.add("current_password", "The current password is not correct."),
            }
            render(
                &req,
                &state,
                &user.identity,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(PasswordChangeError::Locked(refusal)) => {
            errors.add(
                "current_password",
                format!(
                    "Too many wrong passwords. Please try again in {}.",
                    views::wait_text(refusal.retry_after())
                ),
            );
            let res = render(
                &req,
                &state,
                &user.identity,
                StatusCode::TOO_MANY_REQUESTS,
                errors,
            )
            .await?;
            Ok(headers::retry_after(res, refusal.retry_after()))
        }
        // The session ended while the hash was computed: nothing changed.
        Err(PasswordChangeError::SessionEnded) => Ok(decide(
            HttpResponse::from_error(AppError::LoginRequired {
                next: "/account".into(),
            }),
            SessionChange::Dropped,
        )),
        Err(PasswordChangeError::Failed(e)) => Err(e),
    }
}

/// Ends one of the user's sessions; ending the current one logs this
/// browser out.
pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    LiveUser { identity, .. }: LiveUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let target = SessionId(path.into_inner());
    let is_current = target == identity.session_id;
    let ended = state
        .accounts
        .end_session(&state.client(&req), &identity, target)
        .await?;
    if is_current {
        flash::push(&session, Level::Info, "You have been logged out.");
        return Ok(decide(see_other("/"), SessionChange::Ended));
    }
    if ended {
        flash::push(&session, Level::Success, "The session has been ended.");
    } else {
        flash::push(&session, Level::Error, "That session had already ended.");
    }
    Ok(see_other("/account"))
}

pub async fn logout_everywhere(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    LiveUser { identity, .. }: LiveUser,
) -> Result<HttpResponse, AppError> {
    state
        .accounts
        .end_all_sessions(&state.client(&req), &identity)
        .await?;
    flash::push(
        &session,
        Level::Info,
        "You have been logged out everywhere.",
    );
    Ok(decide(see_other("/"), SessionChange::Ended))
}
