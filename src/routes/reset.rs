//! `GET|POST /reset/{token}`: setting a new password through a one-time
//! link an administrator made (reference §9). A wrong, used or expired token
//! gets the same `404` page.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::reset::ResetError,
    error::AppError,
    views::{self, FormErrors, ResetPage},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        redirect::see_other,
        state::AppState,
    },
};

/// One answer for a token that does not (or no longer) work.
const LINK_INVALID: &str = "This password-reset link does not work: it is wrong, used or expired. Ask an administrator for a new one.";

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    views::error_page(chrome(req), StatusCode::NOT_FOUND, LINK_INVALID)
}

pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(username) = state.accounts.reset_link_user(&token).await? else {
        return Ok(not_found(&req));
    };
    views::ok(&ResetPage {
        chrome: chrome(&req),
        username,
        token: token.into_inner(),
        errors: FormErrors::default(),
    })
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    let Some(username) = state.accounts.reset_link_user(&token).await? else {
        return Ok(not_found(&req));
    };
    let mut errors = FormErrors::default();
    if form.password != form.password_confirm {
        errors.add("password_confirm", "The two passwords do not match.");
    } else {
        match state
            .accounts
            .reset_password(&state.client(&req), &token, &form.password)
            .await
        {
            Ok(_) => {
                flash::push(
                    &session,
                    Level::Success,
                    "Your password has been set, and every session of your account has ended. Please log in.",
                );
                return Ok(see_other("/login"));
            }
            Err(ResetError::NotFound) => return Ok(not_found(&req)),
            Err(ResetError::Invalid(e)) => errors.add("password", e.to_string()),
            Err(ResetError::Failed(e)) => return Err(e),
        }
    }
    views::render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ResetPage {
            chrome: chrome(&req),
            username,
            token: token.into_inner(),
            errors,
        },
    )
}
