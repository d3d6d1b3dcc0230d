//! The database: connection pool, pragmas, embedded migrations, the runner
//! that takes async callers to blocking Diesel work, and one module of
//! synchronous queries per table. No actix types and no policy: what a row
//! means is decided in `auth`.

pub mod audit;
pub mod limits;
pub mod models;
pub mod passkeys;
pub mod reset_links;
pub mod rotations;
pub mod schema;
pub mod second_factor;
pub mod secrets;
pub mod sessions;
pub mod users;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use diesel::{
    connection::{AnsiTransactionManager, SimpleConnection, TransactionManager},
    prelude::*,
    r2d2::{CustomizeConnection, ManageConnection, R2D2Connection},
    result::DatabaseErrorKind,
    sql_query,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

use crate::{config::DatabaseUrl, error::AppError};

/// A connection to either backend. Queries are written once against it;
/// where the two differ (upserts, locks, the server's clock) a function
/// matches on the variant. SQLite comes last: it would accept any string.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs the same Diesel query on the concrete connection of either backend
/// (the body is compiled once per backend): for the hot paths, where going
/// through `DbConn` would rebuild the statement's SQL on every execution.
macro_rules! concrete {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use concrete;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub type Pool = diesel::r2d2::Pool<Manager>;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a writer waits for SQLite's lock before giving up (→ 503).
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// How long a request may wait for its turn at the database (→ 503): with
/// the pool's and the database's own timeouts after it, no request waits for
/// the database for more than 30 s.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// PostgreSQL: the longest a statement may run, or wait for a lock (→ 503).
const PG_STATEMENT_TIMEOUT_MS: u32 = 5_000;
/// PostgreSQL: how long connecting may take (an unreachable host).
const PG_CONNECT_TIMEOUT_S: u32 = 5;
/// PostgreSQL: the most statements an instance runs at once, 4 per core (a
/// local server's backends then share the cores with this process) and at
/// most 32. Each runs on a blocking thread with a pooled connection of its
/// own; more would only add runnable processes, and a page that needs no
/// database would wait behind them for a core (a login flood, BENCHMARKS.md).
/// The pool holds one more, for the refresh rotations (`rotations`):
/// instances × that must stay below the server's `max_connections`.
fn pg_slots() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(4 * cores).unwrap_or(32).clamp(4, 32)
}

/// Why the database could not be opened; always reported as a `DATABASE_URL`
/// problem, with any password masked.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting DATABASE_URL ({url}): {reason}")]
pub struct OpenError {
    /// The URL as shown: `DatabaseUrl`'s `Display`, password masked.
    pub url: String,
    pub reason: String,
}

/// A pooled connection, and whether it was found dead (the server went away
/// or restarted): then the pool drops it instead of handing it out again.
pub struct Pooled {
    conn: DbConn,
    broken: bool,
}

impl std::ops::Deref for Pooled {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// Opens connections of the configured backend (never guessing from the
/// string, as `DbConn::establish` would).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    fn connect_url(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
            DatabaseUrl::Postgres(url) => with_connect_timeout(url),
        }
    }
}

/// Adds libpq's `connect_timeout` unless the URL sets one: an unreachable
/// host then fails in seconds, not after the TCP timeout.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={PG_CONNECT_TIMEOUT_S}")
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let url = self.connect_url();
        let conn = match &self.url {
            DatabaseUrl::Sqlite(_) => diesel::SqliteConnection::establish(&url).map(DbConn::Sqlite),
            DatabaseUrl::Postgres(_) => diesel::PgConnection::establish(&url).map(DbConn::Pg),
        }
        .map_err(diesel::r2d2::Error::ConnectionError)?;
        Ok(Pooled {
            conn,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        conn.conn
            .ping()
            .map(drop)
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.broken || conn.conn.is_broken()
    }
}

#[derive(Debug)]
struct Setup;

impl CustomizeConnection<Pooled, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, pooled: &mut Pooled) -> Result<(), diesel::r2d2::Error> {
        // `batch_execute`, not `sql_query`: a prepared statement runs only the
        // first of several statements and silently drops the rest.
        let setup = match pooled.conn {
            // synchronous=NORMAL in WAL mode survives a process crash (kill -9);
            // only a power loss can drop the last transactions.
            DbConn::Sqlite(_) => format!(
                "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON;"
            ),
            // A statement stuck on a lock or a slow server gives up (→ 503)
            // well within the 30 s any request may wait for the database.
            DbConn::Pg(_) => format!(
                "SET statement_timeout = {PG_STATEMENT_TIMEOUT_MS}; \
                 SET lock_timeout = {PG_STATEMENT_TIMEOUT_MS}; SET TIME ZONE 'UTC';"
            ),
        };
        pooled
            .conn
            .batch_execute(&setup)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens the database of `DATABASE_URL` (creating a SQLite file if needed),
/// applies the embedded migrations of its backend and returns a pool.
pub fn open(url: &DatabaseUrl) -> Result<Pool, OpenError> {
    let shown = url.to_string();
    let fail = |reason: String| OpenError {
        url: shown.clone(),
        reason,
    };
    let manager = Manager { url: url.clone() };
    let builder = diesel::r2d2::Pool::builder()
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(Setup));
    let builder = match url {
        DatabaseUrl::Sqlite(path) => {
            prepare_sqlite(path).map_err(fail)?;
            builder.max_size(8)
        }
        DatabaseUrl::Postgres(_) => {
            let mut conn = diesel::PgConnection::establish(&manager.connect_url())
                // libpq's message names host and port, never the password.
                .map_err(|e| fail(e.to_string().trim().to_owned()))?;
            conn.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map_err(|e| fail(format!("migrations failed: {e}")))?;
            // A ping per checkout would cost a round trip per query; a
            // connection found dead is marked broken instead (`Pooled`).
            builder.max_size(pg_slots() + 1).test_on_check_out(false)
        }
    };
    builder.build(manager).map_err(|e| fail(e.to_string()))
}

/// One connection of the configured backend, outside any pool (tools and
/// tests that look at the database directly).
pub fn connect(url: &DatabaseUrl) -> ConnectionResult<DbConn> {
    Manager { url: url.clone() }
        .connect()
        .map(|pooled| pooled.conn)
        .map_err(|e| match e {
            diesel::r2d2::Error::ConnectionError(e) => e,
            other => ConnectionError::BadConnection(other.to_string()),
        })
}

/// Checks the path, sets WAL once and applies the migrations, on a single
/// connection before the pool opens several at once (WAL set per connection
/// on a fresh file races into "database is locked").
fn prepare_sqlite(path: &Path) -> Result<(), String> {
    let url = path.to_str().ok_or("the path is not valid UTF-8")?;
    if url.is_empty() || url == ":memory:" {
        return Err(
            "must be a file path; each pooled connection would get its own in-memory database"
                .into(),
        );
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(format!("directory {} does not exist", parent.display()));
    }
    let mut conn = diesel::SqliteConnection::establish(url).map_err(|e| e.to_string())?;
    sql_query(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    // The first real read: a file that is not a database fails here.
    sql_query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    sql_query("PRAGMA foreign_keys = ON")
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| format!("migrations failed: {e}"))?;
    Ok(())
}

/// Whether an error means the connection is gone (the server stopped or
/// restarted): the request gets a 503 and the connection is not reused.
pub fn is_connection_lost(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// The database runner: how async code reaches Diesel.
///
/// Reads run on pooled connections, on the blocking pool, side by side.
///
/// Writes on SQLite go to one writer thread that owns a connection: it takes
/// every write queued at that moment and runs them in one `BEGIN IMMEDIATE`
/// transaction, each job in a savepoint of its own (a failing job rolls back
/// alone), and answers them only after the `COMMIT`, so a success is durable
/// before it is reported (`kill -9` right after loses nothing). SQLite has
/// one writer at a time anyway; a single thread that never contends for the
/// lock, and commits many writes at once under load, is the fastest way to
/// use it (measured in BENCHMARKS.md). Other processes (the CLI) still meet
/// the busy timeout.
///
/// Writes on PostgreSQL run like reads, each in its own transaction: the
/// server locks rows, so writers to different rows proceed side by side and
/// the conditional statements (a rotation, a counter) serialise on their row.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    /// SQLite only: the writer thread's queue.
    writes: Option<std::sync::mpsc::Sender<WriteJob>>,
    /// How many jobs may wait on blocking threads at once.
    slots: Arc<Semaphore>,
    /// PostgreSQL only: refresh rotations, batched (`rotations`).
    rotations: Option<rotations::Lane>,
}

/// A write, run by the writer thread inside its batch; it returns how to
/// deliver its result once the batch's fate (committed or not) is known.
type WriteJob = Box<dyn FnOnce(&mut DbConn) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce(bool) + Send>;

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 256;

impl Db {
    /// Opens `DATABASE_URL` (see `open`) and starts the runner.
    pub fn open(url: &DatabaseUrl) -> Result<Self, OpenError> {
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        Ok(Self::new(open(url)?, backend))
    }

    pub fn new(pool: Pool, backend: Backend) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let writes = (backend == Backend::Sqlite).then(|| {
            let (writes, queue) = std::sync::mpsc::channel::<WriteJob>();
            let writer_pool = pool.clone();
            let spawned = std::thread::Builder::new()
                .name("db-writer".into())
                .spawn(move || write_loop(&writer_pool, &queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the database writer thread");
            }
            writes
        });
        let slots = match backend {
            Backend::Sqlite => 4 * cores,
            // One blocking thread per connection: more would only wait inside
            // the pool (a futex storm); the rest wait here, without a thread.
            Backend::Postgres => pg_slots() as usize,
        };
        let rotations = (backend == Backend::Postgres)
            .then(|| rotations::Lane::start(pool.clone()))
            .and_then(|started| {
                started
                    .map_err(|e| tracing::error!(error = %e, "cannot start the rotations thread"))
                    .ok()
            });
        Self {
            pool,
            backend,
            writes,
            slots: Arc::new(Semaphore::new(slots)),
            rotations,
        }
    }

    /// PostgreSQL: the lane that runs concurrent refresh rotations as one
    /// statement. `None` on SQLite, whose writer thread batches every write.
    pub fn rotations(&self) -> Option<&rotations::Lane> {
        self.rotations.as_ref()
    }

    /// Runs a read on a pooled connection, on the blocking pool. A request
    /// that cannot start within `MAX_WAIT` gets `Unavailable` (a 503).
    pub async fn read<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        self.on_pool(work).await
    }

    /// Runs a write in a transaction and answers once it is committed. A
    /// write that cannot start within `MAX_WAIT` gets `Unavailable` (a 503)
    /// and is not done.
    pub async fn write<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(writes) = &self.writes else {
            return self.on_pool(|conn| conn.transaction(work)).await;
        };
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
        writes
            .send(job)
            .map_err(|_| AppError::internal(anyhow::anyhow!("the database writer stopped")))?;
        // The writer answers every job; the timeout only guards against a
        // writer stuck in SQLite's own waits (busy timeout, a slow disk).
        match tokio::time::timeout(MAX_WAIT + Duration::from_secs(10), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(AppError::Unavailable),
        }
    }

    /// Queues a write whose caller does not wait (a refund from `Drop`): on
    /// SQLite behind the writes already queued, on PostgreSQL on the
    /// blocking pool. A failure is logged.
    pub fn write_detached<F>(&self, work: F)
    where
        F: FnOnce(&mut DbConn) -> Result<(), AppError> + Send + 'static,
    {
        let work = move |conn: &mut DbConn| {
            if let Err(e) = conn.transaction(work) {
                tracing::warn!(error = %e, "a background write failed");
            }
        };
        if let Some(writes) = &self.writes {
            let job: WriteJob = Box::new(move |conn| {
                work(conn);
                Box::new(|_| {})
            });
            let _ = writes.send(job);
            return;
        }
        let pool = self.pool.clone();
        let detached = move || match pool.get() {
            Ok(mut pooled) => {
                let _ = run(&mut pooled, |conn| {
                    work(conn);
                    Ok(())
                });
            }
            Err(e) => tracing::warn!(error = %e, "a background write found no connection"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(detached)),
            Err(_) => detached(),
        }
    }

    /// A write whose statements need not commit together (each is atomic
    /// by itself, and a later one only follows from what an earlier one
    /// returned): on PostgreSQL each commits alone, which saves the two round
    /// trips of `BEGIN`/`COMMIT` on the hot path (a refresh); on SQLite it
    /// is `write`. Answered once committed, as `write`.
    pub async fn write_each<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        match self.backend {
            Backend::Postgres => self.on_pool(work).await,
            Backend::Sqlite => self.write(work).await,
        }
    }

    async fn on_pool<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = Instant::now() + MAX_WAIT;
        let _slot = tokio::time::timeout(MAX_WAIT, self.slots.acquire())
            .await
            .map_err(|_| AppError::Unavailable)?
            .map_err(|e| AppError::Internal(e.into()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            if Instant::now() > deadline {
                return Err(AppError::Unavailable);
            }
            let mut pooled = pool.get()?;
            run(&mut pooled, work)
        })
        .await?
    }

    /// Runs Diesel work on this thread, on a pooled connection (start-up and
    /// the CLI; writes here are auto-committed statements).
    pub fn blocking<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, AppError>,
    {
        let mut pooled = self.pool.get()?;
        run(&mut pooled, work)
    }
}

/// Runs `work` and marks the connection broken when the server went away
/// (`AppError::Unavailable` on PostgreSQL: a lost connection, or a timeout
/// after which the connection's state is not worth trusting).
fn run<T>(
    pooled: &mut Pooled,
    work: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let result = work(&mut pooled.conn);
    if matches!(result, Err(AppError::Unavailable)) && matches!(pooled.conn, DbConn::Pg(_)) {
        pooled.broken = true;
    }
    result
}

/// Waits for the next job, then takes every job queued behind it, `max` at
/// most; `None` once every sender is gone.
fn next_batch<T>(queue: &std::sync::mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let mut batch = vec![queue.recv().ok()?];
    while batch.len() < max {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// The writer thread (SQLite): batches of queued writes, one transaction each.
fn write_loop(pool: &Pool, queue: &std::sync::mpsc::Receiver<WriteJob>) {
    let mut conn = None;
    while let Some(mut batch) = next_batch(queue, MAX_BATCH) {
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
        let outcome = immediate_batch(&mut c.conn, |c| {
            for job in batch.drain(..) {
                // A panicking job loses only its own answer (its caller gets
                // a 503); the writer and the rest of the batch carry on.
                if let Ok(deliver) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(c)))
                {
                    deliveries.push(deliver);
                }
            }
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

/// `BEGIN IMMEDIATE`, the jobs (each `transaction` inside is a savepoint),
/// `COMMIT`; rolled back if the commit fails.
fn immediate_batch(
    conn: &mut DbConn,
    jobs: impl FnOnce(&mut DbConn),
) -> Result<(), diesel::result::Error> {
    let DbConn::Sqlite(inner) = conn else {
        return Err(diesel::result::Error::BrokenTransactionManager);
    };
    AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    jobs(conn);
    match DbConn::commit_transaction(conn) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = DbConn::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// Runs `work` only where no other process does it at the same moment:
/// on PostgreSQL under a transaction-scoped advisory lock (instances of one
/// database skip the work while another does it; returns `None`), on SQLite
/// (one process serving) directly. Call it inside a transaction.
pub fn exclusively<T, E: From<diesel::result::Error>>(
    conn: &mut DbConn,
    lock: i64,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<Option<T>, E> {
    if let DbConn::Pg(pg) = conn {
        #[derive(QueryableByName)]
        struct Got {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Got = sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(lock)
            .get_result(pg)?;
        if !got.locked {
            return Ok(None);
        }
    }
    work(conn).map(Some)
}

/// Waits until no other transaction holds `lock`, and holds it to the end of
/// this one: on PostgreSQL a transaction-scoped advisory lock, so decisions
/// that read several rows (the last admin) see every earlier one committed;
/// on SQLite nothing (the one writer already runs writes one at a time).
/// Call it inside a transaction.
pub fn serialize(conn: &mut DbConn, lock: i64) -> QueryResult<()> {
    if let DbConn::Pg(pg) = conn {
        sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(lock)
            .execute(pg)?;
    }
    Ok(())
}

/// How far the database server's clock is ahead of this machine's, in whole
/// seconds (0 on SQLite: the same machine). Instances add it to their own
/// time, so all of them count grace windows and expiry by one clock.
pub fn clock_skew(conn: &mut DbConn) -> QueryResult<i64> {
    let DbConn::Pg(pg) = conn else {
        return Ok(0);
    };
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        ms: i64,
    }
    let before = chrono::Utc::now().timestamp_millis();
    let now: Now =
        sql_query("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS ms")
            .get_result(pg)?;
    let after = chrono::Utc::now().timestamp_millis();
    let local = before + (after - before) / 2;
    Ok(((now.ms - local) as f64 / 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        value: i64,
    }

    fn sqlite(path: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite(path.to_path_buf())
    }

    fn pragma(conn: &mut Pooled, name: &str) -> i64 {
        sql_query(format!("SELECT (SELECT * FROM pragma_{name}()) AS value"))
            .get_result::<Value>(&mut conn.conn)
            .map(|v| v.value)
            .unwrap()
    }

    #[test]
    fn every_pooled_connection_gets_all_its_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&sqlite(&dir.path().join("p.db"))).unwrap();
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
        let err = open(&sqlite(&path)).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"));
    }
}
