//! `/admin`: the user list and the admin actions. Every handler takes
//! `AdminUser`, which re-checks role, status and session in the database;
//! the action itself checks the actor again inside its transaction.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::accounts::{AdminAction, AdminActionError},
    domain::{Role, UnknownRole, UserId},
    error::AppError,
    views::{self, AdminPage, AdminUserRow, ResetLinkPage},
    web::{
        chrome::chrome,
        flash::{self, Level},
        form::Form,
        guard::{AdminUser, RecentAdmin},
        redirect::see_other,
        state::AppState,
    },
};

pub async fn users(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
) -> Result<HttpResponse, AppError> {
    let with_totp = state.accounts.users_with_totp().await?;
    let rows = state
        .accounts
        .all_users()
        .await?
        .into_iter()
        .map(|u| {
            let totp = with_totp.contains(&u.id);
            AdminUserRow::new(u, admin.user.id, totp)
        })
        .collect();
    views::ok(&AdminPage {
        chrome: chrome(&req),
        users: rows,
    })
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// What the admin page says after an action.
fn done_message(action: AdminAction, username: &str) -> String {
    match action {
        AdminAction::SetRole(Role::Admin) => format!("{username} is now an admin."),
        AdminAction::SetRole(Role::User) => format!("{username} is now a user."),
        AdminAction::Disable => format!("{username} is disabled and logged out everywhere."),
        AdminAction::Enable => format!("{username} is enabled again."),
        AdminAction::EndSessions => format!("All of {username}'s sessions have ended."),
        AdminAction::DisableTotp => format!(
            "Two-factor authentication is off for {username}, and their sessions have ended."
        ),
    }
}

async fn act(
    req: &HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    RecentAdmin(admin): RecentAdmin,
    target: i32,
    action: AdminAction,
) -> Result<HttpResponse, AppError> {
    match state
        .accounts
        .admin_act(&state.client(req), &admin.identity, UserId(target), action)
        .await
    {
        Ok(username) => flash::push(&session, Level::Success, done_message(action, &username)),
        // A refused action is reported on the admin page, not as an error page.
        Err(e @ (AdminActionError::OwnAccount | AdminActionError::LastAdmin)) => {
            flash::push(&session, Level::Error, e.to_string())
        }
        Err(AdminActionError::NotFound) => return Err(AppError::NotFound),
        Err(e @ AdminActionError::NotAllowed) => return Err(AppError::Forbidden(e.to_string())),
        Err(AdminActionError::Failed(e)) => return Err(e),
    }
    Ok(see_other("/admin"))
}

pub async fn set_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    admin: RecentAdmin,
    path: web::Path<i32>,
    form: Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let role: Role = form
        .role
        .parse()
        .map_err(|e: UnknownRole| AppError::BadRequest(e.to_string()))?;
    act(
        &req,
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::SetRole(role),
    )
    .await
}

pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    admin: RecentAdmin,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        &req,
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::Disable,
    )
    .await
}

pub async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    admin: RecentAdmin,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        &req,
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::Enable,
    )
    .await
}

pub async fn end_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    admin: RecentAdmin,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        &req,
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::EndSessions,
    )
    .await
}

/// Turns a user's TOTP off (they lost their authenticator) and ends their
/// sessions.
pub async fn disable_totp(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    admin: RecentAdmin,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        &req,
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::DisableTotp,
    )
    .await
}

/// A one-time password-reset link for the user, shown once.
pub async fn reset_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    RecentAdmin(admin): RecentAdmin,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    let Some((username, token)) = state
        .accounts
        .reset_link_by_admin(
            &state.client(&req),
            &admin.identity,
            UserId(path.into_inner()),
        )
        .await?
    else {
        return Err(AppError::NotFound);
    };
    views::ok(&ResetLinkPage {
        chrome: chrome(&req),
        username,
        link: state.accounts.public_url(&format!("/reset/{}", token.0)),
    })
}
