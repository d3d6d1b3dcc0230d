//! The audit log (reference §9): who did what to whom, when, from where.
//!
//! An event is written by the same database write as the change it
//! describes (`Note::write` inside the closure given to `Db::write`), so an
//! acknowledged action's event survives `kill -9`, and a change that rolls
//! back leaves no event. Failed and refused logins change nothing, so their
//! events are queued without waiting (`Db::write_detached`); on SQLite they
//! join the writer's next batch, so a flood of them costs the pages little.
//! No event holds a password, code, token, key or cookie value: the only
//! free text is the username as typed at a failed login, truncated.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
        mpsc::{RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
};

use super::{Client, Identity};
use crate::{
    db::{
        Db, DbConn,
        audit::{self, NewRow, Row},
    },
    error::AppError,
};

/// Longest user agent kept, in characters.
const USER_AGENT_CHARS: usize = 200;
/// Longest username kept as typed (failed logins), in characters.
const TYPED_NAME_CHARS: usize = 64;
/// Events a page lists at once.
pub const PAGE_SIZE: i64 = 50;

macro_rules! events {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The kinds of event, by their names in reference §9.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Event { $($variant),* }

        impl Event {
            pub const ALL: &[Event] = &[$(Event::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Event::$variant => $name),* }
            }
        }
    };
}

events! {
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    LoginLocked => "login_locked",
    MfaFailed => "mfa_failed",
    Logout => "logout",
    SessionEnded => "session_ended",
    LogoutEverywhere => "logout_everywhere",
    RefreshReuseDetected => "refresh_reuse_detected",
    PasswordChanged => "password_changed",
    PasswordResetLinkCreated => "password_reset_link_created",
    PasswordReset => "password_reset",
    TotpEnabled => "totp_enabled",
    TotpDisabled => "totp_disabled",
    RecoveryCodesRegenerated => "recovery_codes_regenerated",
    RecoveryCodeUsed => "recovery_code_used",
    PasskeyAdded => "passkey_added",
    PasskeyRemoved => "passkey_removed",
    RoleChanged => "role_changed",
    UserDisabled => "user_disabled",
    UserEnabled => "user_enabled",
    SessionsTerminated => "sessions_terminated",
}

impl Event {
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.as_str() == name)
    }
}

fn truncated(text: &str, chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(chars)
        .collect()
}

/// A user agent as events keep it.
pub fn stored_user_agent(user_agent: &str) -> String {
    truncated(user_agent, USER_AGENT_CHARS)
}

/// One event, built where the facts are and written in the transaction of
/// the change.
#[derive(Debug, Clone)]
pub struct Note(NewRow);

impl Note {
    pub fn new(event: Event, now: i64) -> Self {
        Note(NewRow {
            at: now,
            event: event.as_str().to_owned(),
            actor_id: None,
            actor_name: String::new(),
            target_id: None,
            target_name: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            session_id: None,
            detail: String::new(),
        })
    }

    /// Where the request came from.
    pub fn from(mut self, client: &Client) -> Self {
        self.0.ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
        self.0.user_agent = stored_user_agent(&client.user_agent);
        self
    }

    /// The user who acted, and their session.
    pub fn by(mut self, who: &Identity) -> Self {
        self.0.actor_id = Some(who.user_id.0);
        self.0.actor_name = who.username.clone();
        self.0.session_id = Some(who.session_id.0.clone());
        self
    }

    pub fn actor(mut self, id: i32, name: &str) -> Self {
        self.0.actor_id = Some(id);
        self.0.actor_name = name.to_owned();
        self
    }

    pub fn target(mut self, id: i32, name: &str) -> Self {
        self.0.target_id = Some(id);
        self.0.target_name = name.to_owned();
        self
    }

    /// A user acting on their own account.
    pub fn user(self, id: i32, name: &str) -> Self {
        self.actor(id, name).target(id, name)
    }

    pub fn session(mut self, id: &str) -> Self {
        self.0.session_id = Some(id.to_owned());
        self
    }

    pub fn detail(mut self, text: &str) -> Self {
        self.0.detail = truncated(text, TYPED_NAME_CHARS);
        self
    }

    /// Appends the event (inside the caller's transaction).
    pub fn write(&self, conn: &mut DbConn) -> Result<(), AppError> {
        Ok(audit::insert(conn, &self.0)?)
    }
}

/// Events that describe no change (failed and refused logins, wrong codes),
/// queued in memory and written in batches by a thread of their own: a flood
/// of them costs one transaction per batch, not one per event, and never
/// holds a request or a pooled connection. Bounded: when a flood outruns the
/// database, the excess is counted (`portcullis_audit_dropped_total`) and
/// logged, not queued without end.
pub struct AuditQueue {
    events: SyncSender<Note>,
    /// Events that found the queue full, counted by kind (and the time of
    /// the first): the writer records each kind's count as one event, so a
    /// flood is still in the log, as a number.
    overflow: Arc<Mutex<HashMap<String, (u64, i64)>>>,
}

/// Events the queue holds.
const QUEUE_CAPACITY: usize = 10_000;
/// Events one transaction writes at most.
const BATCH: usize = 500;

impl AuditQueue {
    pub fn start(db: Db) -> Self {
        Self::with_capacity(db, QUEUE_CAPACITY)
    }

    fn with_capacity(db: Db, capacity: usize) -> Self {
        let (events, queued) = sync_channel::<Note>(capacity);
        let overflow: Arc<Mutex<HashMap<String, (u64, i64)>>> = Arc::default();
        let counted = overflow.clone();
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                loop {
                    let mut rows: Vec<NewRow> = Vec::new();
                    match queued.recv_timeout(std::time::Duration::from_secs(1)) {
                        Ok(first) => rows.push(first.0),
                        Err(RecvTimeoutError::Timeout) => {}
                        // The accounts (the sender) were dropped.
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    while rows.len() < BATCH {
                        match queued.try_recv() {
                            Ok(note) => rows.push(note.0),
                            Err(_) => break,
                        }
                    }
                    let summaries: Vec<NewRow> = counted
                        .lock()
                        .map(|mut c| c.drain().collect::<Vec<_>>())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(event, (n, at))| NewRow {
                            event,
                            detail: format!("{n} more not recorded one by one (queue full)"),
                            ..Note::new(Event::LoginFailed, at).0
                        })
                        .collect();
                    rows.extend(summaries);
                    if rows.is_empty() {
                        continue;
                    }
                    // Off any runtime, this runs here and now (PostgreSQL)
                    // or joins the writer thread's queue (SQLite).
                    db.write_detached(move |conn| Ok(audit::insert_many(conn, &rows)?));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the audit writer thread did not start");
        }
        AuditQueue { events, overflow }
    }

    pub fn push(&self, note: Note) {
        if let Err(TrySendError::Full(note) | TrySendError::Disconnected(note)) =
            self.events.try_send(note)
        {
            if let Ok(mut counts) = self.overflow.lock() {
                let entry = counts.entry(note.0.event).or_insert((0, note.0.at));
                entry.0 += 1;
            }
            metrics::counter!("portcullis_audit_dropped_total").increment(1);
            static WARNED: AtomicI64 = AtomicI64::new(0);
            let now = chrono::Utc::now().timestamp();
            if WARNED.swap(now, Ordering::Relaxed) != now {
                tracing::warn!("audit queue full: failed-login events are recorded as counts");
            }
        }
    }
}

/// An event as pages and the CLI show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub id: i32,
    /// Unix seconds.
    pub at: i64,
    pub event: String,
    pub actor_id: Option<i32>,
    pub actor: String,
    pub target_id: Option<i32>,
    pub target: String,
    pub ip: String,
    pub user_agent: String,
    pub session_id: Option<String>,
    pub detail: String,
}

impl From<Row> for Entry {
    fn from(r: Row) -> Self {
        Entry {
            id: r.id,
            at: r.at,
            event: r.event,
            actor_id: r.actor_id,
            actor: r.actor_name,
            target_id: r.target_id,
            target: r.target_name,
            ip: r.ip,
            user_agent: r.user_agent,
            session_id: r.session_id,
            detail: r.detail,
        }
    }
}

/// What to list: by username (any case), event name, and before an id.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub user: Option<String>,
    pub event: Option<Event>,
    pub before: Option<i32>,
    pub since: Option<i64>,
}

/// A page of events, newest first, and the id to ask `before` for the next.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub older: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_beyond_the_queue_is_recorded_as_counts() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::DatabaseUrl::Sqlite(dir.path().join("a.db"));
        let db = Db::open(&url).unwrap();
        let queue = AuditQueue::with_capacity(db.clone(), 8);
        let sent = 20_000;
        for _ in 0..sent {
            queue.push(Note::new(Event::LoginLocked, 1).detail("alice"));
        }
        // Every event lands, one by one or in a count (bounded wait).
        let mut recorded = 0;
        for _ in 0..200 {
            recorded = db
                .read(|conn| {
                    let rows = audit::oldest_first(conn, &audit::Filter::default())?;
                    Ok(rows
                        .iter()
                        .map(|r| match r.detail.split_once(" more not recorded") {
                            Some((n, _)) => n.parse::<u64>().unwrap_or(0),
                            None => 1,
                        })
                        .sum::<u64>())
                })
                .await
                .unwrap();
            if recorded == sent {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(recorded, sent);
    }

    #[test]
    fn every_event_name_parses_back() {
        assert_eq!(Event::ALL.len(), 21);
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(*e));
        }
        assert_eq!(Event::parse("nope"), None);
    }

    #[test]
    fn free_text_is_truncated_and_loses_control_characters() {
        let n = Note::new(Event::LoginFailed, 0).detail(&format!("a\nb{}", "x".repeat(100)));
        assert_eq!(n.0.detail.chars().count(), 64);
        assert!(n.0.detail.starts_with("abx"));
    }
}
