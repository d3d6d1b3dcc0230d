//! bcrypt hashing and verification, and `Hasher`, the threads they run on
//! and the rules for getting a turn (reference §6).
//!
//! Hashing is admitted only while the machine can do it soon: the queue is
//! bounded by what the threads can hash within `ADMIT_SECONDS` (the hash
//! time is a moving average of the hashes done, starting from an estimate
//! at start-up, so a busier machine admits fewer); beyond that an attempt is
//! refused at once
//! (`AppError::Overloaded`, a 503 with `Retry-After`). A job whose caller has
//! gone (the client disconnected, or gave up after `MAX_WAIT`) is skipped,
//! not hashed. The threads run at `SCHED_BATCH`: normal weight, so other
//! CPU-heavy work on the machine slows logins but never stops them, yet no
//! wake-up preemption, so the workers that serve pages get the core first.
//! The free functions are CPU-bound on purpose and must only run on these
//! threads (never on an async worker).

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::Connection;
use crate::{domain::Password, error::AppError};

/// The queue holds what the threads can hash within this many seconds.
pub const ADMIT_SECONDS: f64 = 4.0;

/// The longest a caller waits for its hash to start.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// How often a caller waiting for its hash checks that its client is still
/// connected.
const CLIENT_CHECK: Duration = Duration::from_millis(50);

/// Bounds on the queue whatever the measurement says.
const MIN_QUEUE: usize = 4;
const MAX_QUEUE: usize = 4096;

/// Hashes and verifies passwords at one cost, on bcrypt's own threads.
pub struct Hasher {
    cost: u32,
    threads: usize,
    pool: BcryptPool,
    /// Jobs admitted and not yet answered (queued or running).
    in_queue: Arc<AtomicUsize>,
    /// How long one hash takes, in nanoseconds: an estimate at start-up,
    /// then a moving average of the hashes actually done, so the queue
    /// follows what the machine can do now (a busy machine hashes slower).
    hash_nanos: Arc<AtomicU64>,
    /// The unknown-user dummy, at `cost`: the pool's first job computes it.
    dummy: Arc<OnceLock<String>>,
    /// When a refusal was last logged (seconds since start), so a flood of
    /// refusals writes one warning a second, not one per request.
    refusal_logged: AtomicU64,
    started: Instant,
}

/// A snapshot for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct HasherLoad {
    pub in_queue: usize,
    pub capacity: usize,
    pub hash_time: Duration,
}

/// A place in the queue, taken before any other work for a request that will
/// need a hash (so a refusal costs nothing), freed when dropped.
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// One thread per core. The hash time is estimated from a hash at the
    /// cheapest cost (bcrypt's time doubles with each step of cost), so
    /// start-up stays fast; the dummy at `cost` is the pool's first job and
    /// the measurements refine the estimate. Fails (a start-up error) if
    /// bcrypt cannot hash.
    pub fn new(cost: u32) -> Result<Self, bcrypt::BcryptError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let started = Instant::now();
        bcrypt::hash(crate::auth::random_id(), 4)?;
        let estimate = started.elapsed().as_nanos() as f64 * 2f64.powi(cost as i32 - 4);
        let hasher = Self {
            cost,
            threads,
            pool: BcryptPool::new(threads),
            in_queue: Arc::default(),
            hash_nanos: Arc::new(AtomicU64::new(estimate.max(1e5) as u64)),
            dummy: Arc::default(),
            refusal_logged: AtomicU64::new(u64::MAX),
            started,
        };
        let (dummy, nanos) = (hasher.dummy.clone(), hasher.hash_nanos.clone());
        hasher.pool.submit(Box::new(move || {
            let started = Instant::now();
            dummy_hash(&dummy, cost);
            // The first real measurement replaces the estimate.
            let took = started.elapsed();
            nanos.store(
                took.as_nanos().min(u128::from(u64::MAX)) as u64,
                Ordering::Relaxed,
            );
        }));
        tracing::info!(
            cost,
            hash_ms = format!("{:.1}", estimate / 1e6),
            threads,
            queue = hasher.capacity(),
            "password hashing ready"
        );
        Ok(hasher)
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    fn hash_time(&self) -> Duration {
        Duration::from_nanos(self.hash_nanos.load(Ordering::Relaxed))
    }

    /// What the threads can hash within `ADMIT_SECONDS`, at the current
    /// hash time.
    fn capacity(&self) -> usize {
        let per_thread = ADMIT_SECONDS / self.hash_time().as_secs_f64();
        ((self.threads as f64 * per_thread) as usize).clamp(MIN_QUEUE, MAX_QUEUE)
    }

    pub fn load(&self) -> HasherLoad {
        HasherLoad {
            in_queue: self.in_queue.load(Ordering::Relaxed),
            capacity: self.capacity(),
            hash_time: self.hash_time(),
        }
    }

    /// Takes a place in the queue, or refuses at once (`Overloaded`, a 503
    /// with `Retry-After`) when it is full.
    pub fn admit(&self) -> Result<Admission, AppError> {
        let capacity = self.capacity();
        if self.in_queue.fetch_add(1, Ordering::AcqRel) >= capacity {
            self.in_queue.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("portcullis_hash_refusals_total").increment(1);
            let now = self.started.elapsed().as_secs();
            if self.refusal_logged.swap(now, Ordering::Relaxed) != now {
                tracing::warn!(queue = capacity, "password hashing refused: queue full");
            }
            return Err(self.overloaded());
        }
        Ok(Admission(self.in_queue.clone()))
    }

    pub async fn hash(
        &self,
        password: Password,
        caller: Option<Connection>,
    ) -> Result<String, AppError> {
        let cost = self.cost;
        self.run(self.admit()?, caller, move || hash(&password, cost))
            .await?
            .map_err(AppError::internal)
    }

    /// Hashes an attempt that just verified against a hash of another cost
    /// (it met the rules of its day; today's rules are not re-applied).
    pub async fn rehash(&self, verified: &str) -> Result<String, AppError> {
        let (cost, attempt) = (self.cost, verified.to_owned());
        self.run(self.admit()?, None, move || bcrypt::hash(attempt, cost))
            .await?
            .map_err(AppError::internal)
    }

    /// Checks an attempt; `None` (an unknown user) still costs one hash,
    /// against the dummy. `place` comes from `admit`.
    pub async fn verify(
        &self,
        place: Admission,
        attempt: &str,
        hash: Option<String>,
        caller: Option<Connection>,
    ) -> Result<bool, AppError> {
        let attempt = attempt.to_owned();
        let (dummy, cost) = (self.dummy.clone(), self.cost);
        self.run(place, caller, move || match &hash {
            Some(hash) => verify(&attempt, hash),
            None => {
                let _ = verify(&attempt, dummy_hash(&dummy, cost));
                false
            }
        })
        .await
    }

    /// Runs admitted bcrypt work on the pool. `caller` is the client's
    /// connection: if it has closed when the job's turn comes, the job is
    /// skipped. The place is the caller's until it has its answer or goes
    /// away (this future dropped): a job nobody waits for is no work.
    async fn run<T, F>(
        &self,
        _place: Admission,
        caller: Option<Connection>,
        work: F,
    ) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let deadline = Instant::now() + MAX_WAIT;
        let nanos = self.hash_nanos.clone();
        let job: BcryptJob = Box::new(move || {
            let abandoned = done.is_closed() || caller.is_some_and(Connection::gone);
            if abandoned || Instant::now() > deadline {
                metrics::counter!("portcullis_hash_skipped_total").increment(1);
                return; // nobody is waiting for this any more
            }
            let started = Instant::now();
            let value = work();
            record_hash_time(&nanos, started.elapsed());
            let _ = done.send(value);
        });
        if !self.pool.submit(job) {
            return Err(AppError::internal(anyhow::anyhow!(
                "the bcrypt threads stopped"
            )));
        }
        // actix does not drop a handler whose client disconnected, so the
        // wait itself watches the connection and gives the place back when
        // the client is gone (its job is then skipped when its turn comes).
        let limit = tokio::time::sleep(MAX_WAIT + 2 * self.hash_time());
        tokio::pin!(limit, result);
        let mut watch = tokio::time::interval(CLIENT_CHECK);
        loop {
            tokio::select! {
                answer = &mut result => {
                    // Err: the job was skipped (its deadline passed) or panicked.
                    return answer.map_err(|_| self.overloaded());
                }
                _ = &mut limit => return Err(self.overloaded()),
                _ = watch.tick() => {
                    if caller.is_some_and(Connection::gone) {
                        return Err(self.overloaded());
                    }
                }
            }
        }
    }

    fn overloaded(&self) -> AppError {
        AppError::Overloaded {
            retry_after: ADMIT_SECONDS.ceil() as u64,
        }
    }
}

/// The dummy hash, computed once (the first caller computes it, others
/// wait for it).
fn dummy_hash(dummy: &OnceLock<String>, cost: u32) -> &str {
    dummy.get_or_init(|| {
        // Only an invalid cost fails, and the settings refuse those; were it
        // to fail, unknown users would answer faster than known ones.
        bcrypt::hash(crate::auth::random_id(), cost).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot compute the dummy password hash");
            String::new()
        })
    })
}

/// Folds one measured hash into the moving average (weight 1/8).
fn record_hash_time(nanos: &AtomicU64, took: Duration) {
    metrics::histogram!("portcullis_hash_duration_seconds").record(took.as_secs_f64());
    let took = took.as_nanos().min(u128::from(u64::MAX)) as u64;
    let _ = nanos.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(old - old / 8 + took / 8)
    });
}

pub fn hash(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` is at most 72 bytes, so bcrypt uses all of it. (The
    // `non_truncating_*` variants count bcrypt's trailing NUL and would refuse
    // a 72-byte password the contract accepts.)
    bcrypt::hash(password.expose(), cost)
}

/// Checks an attempt against a hash (for an unknown user, the dummy).
pub fn verify(attempt: &str, hash: &str) -> bool {
    // A login attempt over 72 bytes cannot match a password we accepted;
    // refusing it here keeps bcrypt from comparing a truncated prefix.
    if attempt.len() > crate::domain::PASSWORD_MAX_BYTES {
        let _ = bcrypt::verify(b"", hash);
        return false;
    }
    bcrypt::verify(attempt.as_bytes(), hash).unwrap_or(false)
}

/// The cost a stored hash was made with (`$2b$12$…` → 12).
pub fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

type BcryptJob = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run bcrypt jobs in arrival order.
struct BcryptPool {
    jobs: Option<mpsc::Sender<BcryptJob>>,
}

impl BcryptPool {
    /// Queues a job; without threads (none could be started) it runs on a
    /// thread of its own.
    fn submit(&self, job: BcryptJob) -> bool {
        match &self.jobs {
            Some(jobs) => jobs.send(job).is_ok(),
            None => {
                std::thread::spawn(job);
                true
            }
        }
    }

    fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<BcryptJob>();
        let queue = Arc::new(Mutex::new(queue));
        let started = (0..threads)
            .filter(|i| {
                let queue = queue.clone();
                std::thread::Builder::new()
                    .name(format!("bcrypt-{i}"))
                    .spawn(move || {
                        batch_priority();
                        loop {
                            // The guard is dropped before the job runs.
                            let next = queue
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .recv();
                            let Ok(job) = next else {
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

/// Moves the calling thread to `SCHED_BATCH`: the same share of the CPU as
/// any normal thread when both want it (so a busy machine slows logins, it
/// does not stop them, unlike `SCHED_IDLE`), but it never preempts a thread
/// that wakes up: a worker with a page to serve gets the core first. On
/// failure it keeps normal scheduling.
#[cfg(target_os = "linux")]
fn batch_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid `sched_param`
    // that outlives the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        tracing::warn!("cannot move the bcrypt threads to SCHED_BATCH");
    }
}

#[cfg(not(target_os = "linux"))]
fn batch_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let pw = Password::parse("xK9#mQ2v-long", "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify("xK9#mQ2v-long", &h));
        assert!(!verify("xK9#mQ2v-lonG", &h));
        assert!(!verify("", &h));
        assert_eq!(cost_of(&h), Some(4));
    }

    #[test]
    fn an_attempt_longer_than_72_bytes_never_matches_its_prefix() {
        let exactly_72 = "k3".repeat(36);
        let pw = Password::parse(&exactly_72, "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify(&exactly_72, &h));
        assert!(!verify(&format!("{exactly_72}extra"), &h));
    }

    #[actix_web::test]
    async fn unknown_users_never_verify_and_cost_a_hash() {
        let hasher = Hasher::new(4).unwrap();
        assert!(
            !hasher
                .verify(hasher.admit().unwrap(), "anything", None, None)
                .await
                .unwrap()
        );
        assert_eq!(hasher.dummy.get().and_then(|d| cost_of(d)), Some(4));
    }

    /// Occupies `n` queue places with jobs that wait until released.
    fn hold(
        hasher: &Arc<Hasher>,
        n: usize,
    ) -> (
        mpsc::Sender<()>,
        Vec<tokio::task::JoinHandle<Result<(), AppError>>>,
    ) {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let held = (0..n)
            .map(|_| {
                let (h, gate) = (hasher.clone(), gate.clone());
                actix_web::rt::spawn(async move {
                    let place = h.admit().unwrap();
                    h.run(place, None, move || {
                        let _ = gate.lock().unwrap().recv();
                    })
                    .await
                })
            })
            .collect();
        (release, held)
    }

    async fn until(mut done: impl FnMut() -> bool) {
        while !done() {
            tokio::task::yield_now().await;
        }
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_at_once_and_frees_its_places() {
        let hasher = Arc::new(Hasher::new(4).unwrap());
        // The start-up job (the dummy) is done: no hash completes while the
        // places are held, so the capacity stays what it is now.
        until(|| hasher.dummy.get().is_some() && hasher.load().in_queue == 0).await;
        let capacity = hasher.load().capacity;
        let (release, held) = hold(&hasher, capacity);
        until(|| hasher.load().in_queue == capacity).await;
        let refused = hasher.admit().map(drop);
        assert!(matches!(
            refused,
            Err(AppError::Overloaded { retry_after: 4 })
        ));
        for _ in 0..capacity {
            release.send(()).unwrap();
        }
        for job in held {
            job.await.unwrap().unwrap();
        }
        assert_eq!(hasher.load().in_queue, 0, "every place is free again");
        let place = hasher.admit().unwrap();
        assert!(hasher.run(place, None, || ()).await.is_ok());
    }

    #[actix_web::test]
    async fn a_job_whose_caller_left_is_skipped() {
        use futures_util::FutureExt;
        let hasher = Arc::new(Hasher::new(4).unwrap());
        until(|| hasher.dummy.get().is_some()).await;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (release, held) = hold(&hasher, threads);
        until(|| hasher.load().in_queue == threads).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let place = hasher.admit().unwrap();
        let mut abandoned =
            Box::pin(hasher.run(place, None, move || flag.store(true, Ordering::SeqCst)));
        assert!((&mut abandoned).now_or_never().is_none(), "queued");
        drop(abandoned); // the client went away
        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for job in held {
            job.await.unwrap().unwrap();
        }
        until(|| hasher.load().in_queue == 0).await;
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job never ran");
    }
}
