//! The database: connection pool, pragmas, embedded migrations, the runner
//! that takes async callers to blocking Diesel work, and one module of
//! synchronous queries per table. No actix types and no policy: what a row
//! means is decided in `auth`.

pub mod models;
pub mod refresh_tokens;
pub mod schema;
pub mod secrets;
pub mod users;

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use diesel::{
    connection::SimpleConnection,
    prelude::*,
    r2d2::{ConnectionManager, CustomizeConnection},
    sql_query,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

use crate::error::AppError;

pub type Pool = diesel::r2d2::Pool<ConnectionManager<SqliteConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a writer waits for SQLite's lock before giving up (→ 503).
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// How long a request may wait for its turn at the database (→ 503): with
/// the pool's and SQLite's own timeouts below it, no request waits for the
/// database for more than 30 s.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// Why the database could not be opened; always reported as a `DATABASE_URL` problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting DATABASE_URL ({path}): {reason}")]
pub struct OpenError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // `batch_execute`, not `sql_query`: a prepared statement runs only the
        // first of several statements and silently drops the rest.
        // synchronous=NORMAL in WAL mode survives a process crash (kill -9);
        // only a power loss can drop the last transactions.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) the SQLite file, applies the embedded
/// migrations and returns a pool.
pub fn open(path: &Path) -> Result<Pool, OpenError> {
    let shown = path.display().to_string();
    let fail = |reason: String| OpenError {
        path: shown.clone(),
        reason,
    };
    let url = path
        .to_str()
        .ok_or_else(|| fail("the path is not valid UTF-8".into()))?;
    if url.is_empty() || url == ":memory:" {
        return Err(fail(
            "must be a file path; each pooled connection would get its own in-memory database"
                .into(),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(fail(format!(
                "directory {} does not exist",
                parent.display()
            )));
        }
    }

    // WAL is set once, on a single connection, before the pool opens several at
    // once: set per connection on a fresh file it races into "database is locked".
    let mut conn = SqliteConnection::establish(url).map_err(|e| fail(e.to_string()))?;
    sql_query(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
        .execute(&mut conn)
        .map_err(|e| fail(e.to_string()))?;
    // The first real read: a file that is not a database fails here.
    sql_query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .map_err(|e| fail(e.to_string()))?;
    sql_query("PRAGMA foreign_keys = ON")
        .execute(&mut conn)
        .map_err(|e| fail(e.to_string()))?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|e| fail(format!("migrations failed: {e}")))?;
    drop(conn);

    diesel::r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .map_err(|e| fail(e.to_string()))
}

/// The database runner: the pool plus the rules for reaching it from async
/// code. Every timestamp in the database is Unix seconds from the app's clock.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// SQLite has one writer at a time, and pooled connections that race for
    /// its lock sleep in its busy handler (1, 2, 5, 10... ms): under load that
    /// costs far more than the work (p99 of refresh over 300 ms). Database
    /// work takes turns on `turn` instead; the busy timeout still covers
    /// other processes (the CLI) holding the lock. `slots` lets only a few
    /// requests wait for their turn on blocking threads (the rest wait as
    /// futures): the next one is ready the moment the lock is free, without
    /// 64 threads thrashing over it. Measured in BENCHMARKS.md.
    turn: Arc<Mutex<()>>,
    slots: Arc<Semaphore>,
}

impl Db {
    pub fn new(pool: Pool) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            pool,
            turn: Arc::default(),
            slots: Arc::new(Semaphore::new(2 * cores)),
        }
    }

    /// Runs Diesel work on the blocking pool (getting the connection
    /// included: it can wait for SQLite's lock). A request that cannot start
    /// its work within `MAX_WAIT` gets `Unavailable` (a 503) instead.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + MAX_WAIT;
        let _slot = tokio::time::timeout(MAX_WAIT, self.slots.acquire())
            .await
            .map_err(|_| AppError::Unavailable)?
            .map_err(|e| AppError::Internal(e.into()))?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.blocking_until(deadline, work)).await?
    }

    /// Runs Diesel work on this thread (start-up, the CLI, the blocking pool).
    pub fn blocking<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError>,
    {
        self.blocking_until(Instant::now() + MAX_WAIT, work)
    }

    fn blocking_until<T, F>(&self, deadline: Instant, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError>,
    {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        // Each turn is short and only a few threads wait here, but a caller
        // whose deadline passed while waiting gets its 503 without the work.
        if Instant::now() > deadline {
            return Err(AppError::Unavailable);
        }
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        value: i64,
    }

    fn pragma(conn: &mut SqliteConnection, name: &str) -> i64 {
        sql_query(format!("SELECT (SELECT * FROM pragma_{name}()) AS value"))
            .get_result::<Value>(conn)
            .map(|v| v.value)
            .unwrap()
    }

    #[test]
    fn every_pooled_connection_gets_all_its_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&dir.path().join("p.db")).unwrap();
        let mut conns: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
        for conn in conns.iter_mut() {
            assert_eq!(pragma(conn, "foreign_keys"), 1);
            assert_eq!(pragma(conn, "synchronous"), 1, "NORMAL");
            assert_eq!(pragma(conn, "busy_timeout"), i64::from(BUSY_TIMEOUT_MS));
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error_naming_database_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = open(&path).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"));
    }
}
