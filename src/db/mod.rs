//! The database: connection pool, pragmas, embedded migrations, the runner
//! that takes async callers to blocking Diesel work, and one module of
//! synchronous queries per table. No actix types and no policy: what a row
//! means is decided in `auth`.

pub mod models;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod users;

use std::{
    path::Path,
    sync::Arc,
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
/// the pool's and SQLite's own timeouts after it, no request waits for the
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

/// The database runner: how async code reaches Diesel.
///
/// Reads run on pooled connections, on the blocking pool, side by side (WAL
/// lets readers proceed while one writer writes). Writes go to one writer
/// thread that owns a connection: it takes every write queued at that moment
/// and runs them in one `BEGIN IMMEDIATE` transaction, each job in a savepoint
/// of its own (a failing job rolls back alone), and answers them only after
/// the `COMMIT`, so a success is durable before it is reported (`kill -9`
/// right after loses nothing). SQLite has one writer at a time anyway; a
/// single thread that never contends for the lock, and commits many writes
/// at once under load, is the fastest way to use it (measured in
/// BENCHMARKS.md). Other processes (the CLI) still meet the busy timeout.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    writes: std::sync::mpsc::Sender<WriteJob>,
    /// How many reads may wait on blocking threads at once.
    read_slots: Arc<Semaphore>,
}

/// A write, run by the writer thread inside its batch; it returns how to
/// deliver its result once the batch's fate (committed or not) is known.
type WriteJob = Box<dyn FnOnce(&mut SqliteConnection) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce(bool) + Send>;

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 256;

impl Db {
    pub fn new(pool: Pool) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (writes, queue) = std::sync::mpsc::channel::<WriteJob>();
        let writer_pool = pool.clone();
        let spawned = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || write_loop(&writer_pool, &queue));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the database writer thread");
        }
        Self {
            pool,
            writes,
            read_slots: Arc::new(Semaphore::new(4 * cores)),
        }
    }

    /// Runs a read on a pooled connection, on the blocking pool. A request
    /// that cannot start within `MAX_WAIT` gets `Unavailable` (a 503).
    pub async fn read<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + MAX_WAIT;
        let _slot = tokio::time::timeout(MAX_WAIT, self.read_slots.acquire())
            .await
            .map_err(|_| AppError::Unavailable)?
            .map_err(|e| AppError::Internal(e.into()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            if Instant::now() > deadline {
                return Err(AppError::Unavailable);
            }
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Runs a write on the writer thread, in a transaction, and answers once
    /// it is committed. A write that cannot start within `MAX_WAIT` gets
    /// `Unavailable` (a 503) and is not done.
    pub async fn write<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + MAX_WAIT;
        let (done, answer) = tokio::sync::oneshot::channel::<Result<T, AppError>>();
        let job: WriteJob = Box::new(move |conn| {
            let result = if Instant::now() > deadline || done.is_closed() {
                Err(AppError::Unavailable)
            } else {
                conn.transaction(work)
            };
            Box::new(move |committed| {
                let _ = done.send(if committed {
                    result
                } else {
                    Err(AppError::Unavailable)
                });
            })
        });
        self.writes
            .send(job)
            .map_err(|_| AppError::internal(anyhow::anyhow!("the database writer stopped")))?;
        // The writer answers every job; the timeout only guards against a
        // writer stuck in SQLite's own waits (busy timeout, a slow disk).
        match tokio::time::timeout(MAX_WAIT + Duration::from_secs(10), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(AppError::Unavailable),
        }
    }

    /// Runs Diesel work on this thread, on a pooled connection (start-up,
    /// before any request; writes here are auto-committed statements).
    pub fn blocking<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError>,
    {
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }
}

/// The writer thread: batches of queued writes, one transaction each.
fn write_loop(pool: &Pool, queue: &std::sync::mpsc::Receiver<WriteJob>) {
    let mut conn = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            conn = pool.get().ok();
        }
        let Some(c) = conn.as_mut() else {
            // No connection: every write of this batch gets a 503.
            batch.into_iter().for_each(|job| drop(job));
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let mut deliveries = Vec::with_capacity(batch.len());
        let outcome = c.immediate_transaction(|c| -> Result<(), diesel::result::Error> {
            for job in batch.drain(..) {
                // A panicking job loses only its own answer (its caller gets
                // a 503); the writer and the rest of the batch carry on.
                if let Ok(deliver) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(c)))
                {
                    deliveries.push(deliver);
                }
            }
            Ok(())
        });
        let committed = outcome.is_ok();
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "a batch of writes was not committed");
            // The connection may be in a bad state: take a fresh one next time.
            conn = None;
        }
        // Jobs never run (BEGIN failed) are dropped here: their callers get 503.
        drop(batch);
        for deliver in deliveries {
            deliver(committed);
        }
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
