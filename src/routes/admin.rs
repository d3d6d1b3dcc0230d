//! `/admin`: the user list and the admin actions. Every handler takes
//! `AdminUser`, which re-checks the role and status in the database.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::{
        accounts::{self, AdminAction},
        guard::AdminUser,
    },
    domain::Role,
    error::AppError,
    flash::{self, Level},
    routes::login::see_other,
    state::AppState,
    views::{self, AdminPage, AdminUserRow, Chrome},
};

pub async fn users(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
) -> Result<HttpResponse, AppError> {
    let rows = accounts::all_users(&state)
        .await?
        .into_iter()
        .map(|u| AdminUserRow {
            is_me: u.id == admin.user.id,
            id: u.id,
            username: u.username,
            role: u.role.to_string(),
            is_admin: u.role.is_admin(),
            disabled: u.disabled,
            created: views::timestamp(u.created_at),
            last_login: u
                .last_login_at
                .map_or_else(|| "never".into(), views::timestamp),
        })
        .collect();
    views::ok(&AdminPage {
        chrome: Chrome::for_request(&req),
        users: rows,
    })
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn act(
    state: web::Data<AppState>,
    session: Session,
    admin: AdminUser,
    target: i32,
    action: AdminAction,
) -> Result<HttpResponse, AppError> {
    match accounts::admin_act(&state, admin.user.id, target, action).await {
        Ok(username) => {
            tracing::info!(admin_id = admin.user.id, target_id = target, action = ?action, "admin action");
            let text = match action {
                AdminAction::SetRole(role) => format!(
                    "{username} is now {}.",
                    if role.is_admin() {
                        "an admin"
                    } else {
                        "a user"
                    }
                ),
                AdminAction::Disable => {
                    format!("{username} is disabled and logged out everywhere.")
                }
                AdminAction::Enable => format!("{username} is enabled again."),
                AdminAction::EndSessions => format!("All of {username}'s sessions have ended."),
            };
            flash::push(&session, Level::Success, text);
        }
        // A refused action is reported on the admin page, not as an error page.
        Err(AppError::Forbidden(message) | AppError::Conflict(message)) => {
            tracing::warn!(admin_id = admin.user.id, target_id = target, action = ?action, "admin action refused");
            flash::push(&session, Level::Error, message);
        }
        Err(e) => return Err(e),
    }
    Ok(see_other("/admin"))
}

pub async fn set_role(
    state: web::Data<AppState>,
    session: Session,
    admin: AdminUser,
    path: web::Path<i32>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let role: Role = form
        .role
        .parse()
        .map_err(|e: crate::domain::UnknownRole| AppError::BadRequest(e.to_string()))?;
    act(
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::SetRole(role),
    )
    .await
}

pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    admin: AdminUser,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::Disable,
    )
    .await
}

pub async fn enable(
    state: web::Data<AppState>,
    session: Session,
    admin: AdminUser,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::Enable,
    )
    .await
}

pub async fn end_sessions(
    state: web::Data<AppState>,
    session: Session,
    admin: AdminUser,
    path: web::Path<i32>,
) -> Result<HttpResponse, AppError> {
    act(
        state,
        session,
        admin,
        path.into_inner(),
        AdminAction::EndSessions,
    )
    .await
}
