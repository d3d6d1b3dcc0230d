//! Reading and feeding the audit log through `Accounts`: the pages and the
//! CLI list events (`auth::audit` defines them), and events that describe
//! no change are queued without waiting.

use super::{
    accounts::Accounts,
    audit::{Entry, Note, PAGE_SIZE, Page, Query},
};
use std::sync::{
    atomic::{AtomicI64, Ordering},
    mpsc::{SyncSender, TrySendError, sync_channel},
};

use crate::{
    db::{
        Db, DbConn,
        audit::{self, Filter},
        users,
    },
    error::AppError,
};

/// Events that describe no change (failed and refused logins, wrong codes),
/// queued in memory and written in batches by a thread of their own: a flood
/// of them costs one transaction per batch, not one per event, and never
/// holds a request or a pooled connection. Bounded: when a flood outruns the
/// database, the excess is counted (`portcullis_audit_dropped_total`) and
/// logged, not queued without end.
pub struct AuditQueue {
    events: SyncSender<Note>,
}

/// Events the queue holds.
const QUEUE_CAPACITY: usize = 10_000;
/// Events one transaction writes at most.
const BATCH: usize = 500;

impl AuditQueue {
    pub fn start(db: Db) -> Self {
        let (events, queued) = sync_channel::<Note>(QUEUE_CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                // Ends when the accounts (the sender) are dropped.
                while let Ok(first) = queued.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match queued.try_recv() {
                            Ok(note) => batch.push(note),
                            Err(_) => break,
                        }
                    }
                    // Off any runtime, this runs here and now (PostgreSQL)
                    // or joins the writer thread's queue (SQLite).
                    db.write_detached(move |conn| {
                        for note in &batch {
                            note.write(conn)?;
                        }
                        Ok(())
                    });
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the audit writer thread did not start");
        }
        AuditQueue { events }
    }

    fn push(&self, note: Note) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.events.try_send(note)
        {
            metrics::counter!("portcullis_audit_dropped_total").increment(1);
            static WARNED: AtomicI64 = AtomicI64::new(0);
            let now = chrono::Utc::now().timestamp();
            if WARNED.swap(now, Ordering::Relaxed) != now {
                tracing::warn!("audit queue full: failed-login events are being dropped");
            }
        }
    }
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
                let mut rows = audit::newest(conn, &filter, PAGE_SIZE + 1)?;
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
                let mut rows = audit::newest(conn, &filter, PAGE_SIZE + 1)?;
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
