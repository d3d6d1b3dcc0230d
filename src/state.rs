//! `AppState`: what every handler shares (settings, pool, keys), and the two
//! bridges from async handlers to blocking work: the database and bcrypt.

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use actix_web::web;
use diesel::SqliteConnection;
use tokio::sync::{Semaphore, oneshot};

use crate::{
    auth::{throttle::LoginThrottle, tokens::TokenKeys},
    clock::SharedClock,
    config::Config,
    db::Pool,
    error::AppError,
};

pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub keys: TokenKeys,
    pub login_throttle: LoginThrottle,
    pub clock: SharedClock,
    /// SQLite has one writer at a time, and pooled connections that race for
    /// its lock sleep in its busy handler (1, 2, 5, 10... ms): under load that
    /// costs far more than the work (p99 of refresh over 300 ms). Database
    /// work takes turns on `db_turn` instead; the busy timeout still covers
    /// other processes (the CLI) holding the lock. `db_slots` lets only a few
    /// requests wait for their turn on blocking threads (the rest wait as
    /// futures): the next one is ready the moment the lock is free, without
    /// 64 threads thrashing over it. Measured in BENCHMARKS.md.
    db_turn: Arc<Mutex<()>>,
    db_slots: Semaphore,
    /// bcrypt's own threads: at most one per core, so a login flood queues
    /// here, and at idle CPU priority, so it never delays the workers that
    /// serve pages (they preempt it at once) yet uses every idle cycle.
    bcrypt_pool: BcryptPool,
}

impl AppState {
    pub fn new(config: Config, pool: Pool, keys: TokenKeys, clock: SharedClock) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let login_throttle =
            LoginThrottle::new(config.login_max_failures, config.login_failure_window);
        Self {
            login_throttle,
            config,
            pool,
            keys,
            clock,
            db_turn: Arc::default(),
            db_slots: Semaphore::new(2 * cores),
            bcrypt_pool: BcryptPool::new(cores),
        }
    }

    /// Runs Diesel work on the blocking pool (getting the connection included:
    /// it can wait for SQLite's lock).
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let turn = self.db_turn.clone();
        let _slot = self
            .db_slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        web::block(move || {
            let _turn = turn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Runs bcrypt on `bcrypt_pool`, waiting in its queue for a free thread.
    pub async fn bcrypt<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(jobs) = &self.bcrypt_pool.jobs else {
            // No thread could be started: the shared blocking pool still works.
            return Ok(web::block(work).await?);
        };
        let (done, result) = oneshot::channel();
        jobs.send(Box::new(move || {
            let _ = done.send(work());
        }))
        .map_err(|_| AppError::internal(anyhow::anyhow!("the bcrypt threads stopped")))?;
        result
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("a bcrypt job panicked")))
    }
}

type BcryptJob = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run bcrypt jobs in arrival order.
struct BcryptPool {
    jobs: Option<mpsc::Sender<BcryptJob>>,
}

impl BcryptPool {
    fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<BcryptJob>();
        let queue = Arc::new(Mutex::new(queue));
        let started = (0..threads)
            .filter(|i| {
                let queue = queue.clone();
                std::thread::Builder::new()
                    .name(format!("bcrypt-{i}"))
                    .spawn(move || {
                        idle_priority();
                        loop {
                            // The guard is dropped before the job runs.
                            let next = queue.lock().map(|q| q.recv());
                            let Ok(Ok(job)) = next else {
                                return; // the app, and with it the sender, is gone
                            };
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    })
                    .is_ok()
            })
            .count();
        Self {
            jobs: (started > 0).then_some(jobs),
        }
    }
}

/// Moves the calling thread to `SCHED_IDLE`: it runs only when no normal
/// thread wants the core, and a waking worker preempts it at once. An
/// unprivileged thread may lower its priority but never raise it again, hence
/// dedicated threads. On failure it keeps normal priority: slower pages
/// during a login flood, not an error.
#[cfg(target_os = "linux")]
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid `sched_param`
    // that outlives the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::warn!("cannot lower the bcrypt threads' CPU priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn idle_priority() {}
