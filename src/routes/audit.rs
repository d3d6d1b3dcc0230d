//! `GET /admin/audit` (every event, filtered by `user` and `event`, paged
//! with `before`) and `GET /account/activity` (the user's own), reference §9.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::audit::{Event, Query},
    error::AppError,
    views::{self, ActivityPage, AuditPage, AuditRow},
    web::{
        chrome::chrome,
        guard::{AdminUser, LiveUser},
        redirect::encode_query_value,
        state::AppState,
    },
};

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    event: String,
    before: Option<i32>,
}

pub async fn admin_log(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: AdminUser,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let AuditQuery {
        user,
        event,
        before,
    } = query.into_inner();
    let (user, event) = (user.trim().to_owned(), event.trim().to_owned());
    let kind =
        match event.as_str() {
            "" => None,
            name => Some(Event::parse(name).ok_or_else(|| {
                AppError::BadRequest(format!("There is no event named {name:?}."))
            })?),
        };
    let page = state
        .accounts
        .audit_page(Query {
            user: (!user.is_empty()).then(|| user.clone()),
            event: kind,
            before,
            since: None,
        })
        .await?;
    let older = page.older.map(|id| {
        format!(
            "user={}&event={}&before={id}",
            encode_query_value(&user),
            encode_query_value(&event)
        )
    });
    views::ok(&AuditPage {
        chrome: chrome(&req),
        rows: page.entries.into_iter().map(AuditRow::new).collect(),
        user,
        event,
        events: Event::ALL.iter().map(|e| e.as_str()).collect(),
        older,
    })
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    before: Option<i32>,
}

pub async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: LiveUser,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, AppError> {
    let page = state
        .accounts
        .activity_of(user.user.id, query.before)
        .await?;
    views::ok(&ActivityPage {
        chrome: chrome(&req),
        rows: page.entries.into_iter().map(AuditRow::new).collect(),
        older: page.older.map(|id| format!("before={id}")),
    })
}
