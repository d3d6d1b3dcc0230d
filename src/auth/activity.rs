//! Reading and feeding the audit log through `Accounts`: the pages and the
//! CLI list events (`auth::audit` defines them), and events that describe
//! no change are queued without waiting.

use super::{
    accounts::Accounts,
    audit::{Entry, Note, PAGE_SIZE, Page, Query},
};
use crate::{
    db::{
        DbConn,
        audit::{self, Filter},
        users,
    },
    error::AppError,
};

/// One page of events, newest first, and where the next one starts.
fn page_of(conn: &mut DbConn, filter: &Filter) -> Result<Page, AppError> {
    let mut rows = audit::newest(conn, filter, PAGE_SIZE + 1)?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let older = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page {
        entries: rows.into_iter().map(Entry::from).collect(),
        older,
    })
}

impl Accounts {
    /// Queues an event that describes no change (a failed or refused
    /// login): the caller does not wait for it.
    pub(super) fn note_detached(&self, note: Note) {
        self.audit_queue.push(note);
    }

    fn filter(conn: &mut DbConn, query: &Query) -> Result<Option<Filter>, AppError> {
        let user_id = match &query.user {
            None => None,
            Some(name) => match users::find_by_username(conn, name)? {
                Some(user) => Some(user.id),
                None => return Ok(None),
            },
        };
        Ok(Some(Filter {
            user_id,
            event: query.event.map(|e| e.as_str().to_owned()),
            before: query.before,
            since: query.since,
        }))
    }

    /// Events newest first, `PAGE_SIZE` at a time (`/admin/audit`).
    pub async fn audit_page(&self, query: Query) -> Result<Page, AppError> {
        self.db
            .read(move |conn| {
                let Some(filter) = Self::filter(conn, &query)? else {
                    return Ok(Page {
                        entries: Vec::new(),
                        older: None,
                    });
                };
                page_of(conn, &filter)
            })
            .await
    }

    /// A user's own events (`/account/activity`): as actor or target.
    pub async fn activity_of(&self, user_id: i32, before: Option<i32>) -> Result<Page, AppError> {
        self.db
            .read(move |conn| {
                let filter = Filter {
                    user_id: Some(user_id),
                    before,
                    ..Filter::default()
                };
                page_of(conn, &filter)
            })
            .await
    }

    /// Every matching event, oldest first (`portcullis audit`).
    pub async fn audit_export(&self, query: Query) -> Result<Vec<Entry>, AppError> {
        self.db
            .read(move |conn| {
                let Some(filter) = Self::filter(conn, &query)? else {
                    return Ok(Vec::new());
                };
                Ok(audit::oldest_first(conn, &filter)?
                    .into_iter()
                    .map(Entry::from)
                    .collect())
            })
            .await
    }
}
