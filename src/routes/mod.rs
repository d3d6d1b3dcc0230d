//! THE route table. Each path lists its faces: the JSON face (guarded by
//! `face::Api`, reference §5) before the HTML face that serves browsers.
//! Paths that are pages only still list a JSON face: an error in JSON
//! (`no_api`), never a page, a redirect or a cookie.

mod account;
mod admin;
mod api;
mod audit;
mod login;
mod mfa;
mod no_api;
mod pages;
mod passkeys;
mod reauth;
mod register;
mod reset;
mod static_files;
mod token;

use actix_web::{FromRequest, Handler, Responder, Route, web};

use crate::web::face;

/// The JSON face of a path, for any method.
fn json<F, Args>(handler: F) -> Route
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::route().guard(face::Api).to(handler)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .route(json(no_api::anyone))
            .route(web::get().to(pages::home)),
    )
    .route("/healthz", web::get().to(pages::healthz))
    .service(
        web::resource("/register")
            .route(web::post().guard(face::Api).to(api::register))
            .route(json(no_api::anyone))
            .route(web::get().to(register::register_form))
            .route(web::post().to(register::register)),
    )
    .service(
        web::resource("/login")
            .route(web::post().guard(face::Api).to(api::login))
            .route(json(no_api::anyone))
            .route(web::get().to(login::login_form))
            .route(web::post().to(login::login)),
    )
    .service(
        web::resource("/login/mfa")
            .route(web::post().guard(face::Api).to(api::login_mfa))
            .route(json(no_api::anyone))
            .route(web::get().to(mfa::form))
            .route(web::post().to(mfa::submit)),
    )
    .service(
        web::resource("/reauth")
            .route(json(no_api::signed_in))
            .route(web::get().to(reauth::form))
            .route(web::post().to(reauth::submit)),
    )
    .service(
        web::resource("/logout")
            .route(web::post().guard(face::Api).to(api::logout))
            .route(web::post().to(login::logout)),
    )
    .service(
        web::resource("/protected")
            .route(web::get().guard(face::Api).to(api::protected))
            .route(web::get().to(pages::protected)),
    )
    .service(
        web::resource("/token/refresh")
            .route(web::post().guard(face::Api).to(api::refresh))
            .route(web::post().to(token::refresh)),
    )
    .service(
        web::resource("/account")
            .route(json(no_api::signed_in))
            .route(web::get().to(account::show)),
    )
    .service(
        web::resource("/account/password")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::change_password)),
    )
    .service(
        web::resource("/account/activity")
            .route(json(no_api::signed_in))
            .route(web::get().to(audit::activity)),
    )
    .service(
        web::resource("/admin/audit")
            .route(json(no_api::admin))
            .route(web::get().to(audit::admin_log)),
    )
    .service(
        web::resource("/account/totp/start")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::start_totp)),
    )
    .service(
        web::resource("/account/totp/qr.svg")
            .route(json(no_api::signed_in))
            .route(web::get().to(account::totp_qr)),
    )
    .service(
        web::resource("/account/totp/confirm")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::confirm_totp)),
    )
    .service(
        web::resource("/account/totp/disable")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::disable_totp)),
    )
    .service(
        web::resource("/account/recovery-codes")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::regenerate_recovery_codes)),
    )
    .service(
        web::resource("/account/sessions/{id}/end")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::end_session)),
    )
    .service(
        web::resource("/account/logout-everywhere")
            .route(json(no_api::signed_in))
            .route(web::post().to(account::logout_everywhere)),
    )
    .service(
        web::resource("/admin")
            .route(json(no_api::admin))
            .route(web::get().to(admin::users)),
    )
    .service(
        web::resource("/admin/users/{id}/role")
            .route(json(no_api::admin))
            .route(web::post().to(admin::set_role)),
    )
    .service(
        web::resource("/admin/users/{id}/disable")
            .route(json(no_api::admin))
            .route(web::post().to(admin::disable)),
    )
    .service(
        web::resource("/admin/users/{id}/enable")
            .route(json(no_api::admin))
            .route(web::post().to(admin::enable)),
    )
    .service(
        web::resource("/admin/users/{id}/totp/disable")
            .route(json(no_api::admin))
            .route(web::post().to(admin::disable_totp)),
    )
    .service(
        web::resource("/admin/users/{id}/reset-link")
            .route(json(no_api::admin))
            .route(web::post().to(admin::reset_link)),
    )
    .service(
        web::resource("/reset/{token}")
            .route(json(no_api::anyone))
            .route(web::get().to(reset::form))
            .route(web::post().to(reset::submit)),
    )
    .service(
        web::resource("/admin/users/{id}/sessions/end")
            .route(json(no_api::admin))
            .route(web::post().to(admin::end_sessions)),
    )
    // Passkeys (reference §8): the script's JSON (`face::Script`), then the
    // account page's forms.
    .service(
        web::resource("/account/passkeys/register/start")
            .route(web::post().guard(face::Script).to(passkeys::register_start))
            .route(json(no_api::signed_in)),
    )
    .service(
        web::resource("/account/passkeys/register/finish")
            .route(
                web::post()
                    .guard(face::Script)
                    .to(passkeys::register_finish),
            )
            .route(json(no_api::signed_in)),
    )
    .service(
        web::resource("/login/passkey/start")
            .route(web::post().guard(face::Script).to(passkeys::login_start))
            .route(json(no_api::anyone)),
    )
    .service(
        web::resource("/login/passkey/finish")
            .route(web::post().guard(face::Script).to(passkeys::login_finish))
            .route(json(no_api::anyone)),
    )
    .service(
        web::resource("/reauth/passkey/start")
            .route(web::post().guard(face::Script).to(passkeys::reauth_start))
            .route(json(no_api::signed_in)),
    )
    .service(
        web::resource("/reauth/passkey/finish")
            .route(web::post().guard(face::Script).to(passkeys::reauth_finish))
            .route(json(no_api::signed_in)),
    )
    .service(
        web::resource("/account/passkeys/{id}/rename")
            .route(json(no_api::signed_in))
            .route(web::post().to(passkeys::rename)),
    )
    .service(
        web::resource("/account/passkeys/{id}/remove")
            .route(json(no_api::signed_in))
            .route(web::post().to(passkeys::remove)),
    )
    .route("/static/{path:.*}", web::get().to(static_files::serve))
    .default_service(web::to(pages::not_found));
}
