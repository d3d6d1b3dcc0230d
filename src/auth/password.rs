//! bcrypt hashing and verification, and `Hasher`, the threads they run on.
//! The free functions are CPU-bound on purpose and must only run on those
//! threads (never on an async worker).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, mpsc},
};

use tokio::sync::oneshot;

use crate::{domain::Password, error::AppError};

/// Hashes and verifies passwords at one cost, on bcrypt's own threads.
pub struct Hasher {
    cost: u32,
    pool: BcryptPool,
}

impl Hasher {
    /// One thread per core: a login flood queues here instead of taking the
    /// workers that serve pages.
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cost,
            pool: BcryptPool::new(cores),
        }
    }

    pub async fn hash(&self, password: Password) -> Result<String, AppError> {
        let cost = self.cost;
        self.run(move || hash(&password, cost))
            .await?
            .map_err(AppError::internal)
    }

    /// Checks an attempt; `None` (an unknown user) still costs one hash.
    pub async fn verify(&self, attempt: &str, hash: Option<String>) -> Result<bool, AppError> {
        let (cost, attempt) = (self.cost, attempt.to_owned());
        self.run(move || verify(&attempt, hash.as_deref(), cost))
            .await
    }

    /// Runs bcrypt work on the pool, waiting in its queue for a free thread.
    async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(jobs) = &self.pool.jobs else {
            // No thread could be started: the shared blocking pool still works.
            return Ok(tokio::task::spawn_blocking(work).await?);
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

pub fn hash(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` is at most 72 bytes, so bcrypt uses all of it. (The
    // `non_truncating_*` variants count bcrypt's trailing NUL and would refuse
    // a 72-byte password the contract accepts.)
    bcrypt::hash(password.expose(), cost)
}

/// Checks a login attempt. `hash` is `None` for an unknown user: we still pay
/// for a full bcrypt verification against a dummy hash of the same cost, so
/// response time does not reveal whether the username exists.
pub fn verify(attempt: &str, hash: Option<&str>, cost: u32) -> bool {
    let Some(hash) = hash else {
        let _ = bcrypt::verify(attempt.as_bytes(), &dummy_hash(cost));
        return false;
    };
    // A login attempt over 72 bytes cannot match a password we accepted;
    // refusing it here keeps bcrypt from comparing a truncated prefix.
    if attempt.len() > crate::domain::PASSWORD_MAX_BYTES {
        let _ = bcrypt::verify(b"", hash);
        return false;
    }
    bcrypt::verify(attempt.as_bytes(), hash).unwrap_or(false)
}

fn dummy_hash(cost: u32) -> String {
    static DUMMIES: OnceLock<Mutex<HashMap<u32, String>>> = OnceLock::new();
    let map = DUMMIES.get_or_init(Default::default);
    if let Some(hash) = map.lock().ok().and_then(|m| m.get(&cost).cloned()) {
        return hash;
    }
    let fresh = bcrypt::hash(crate::auth::random_id(), cost).unwrap_or_default();
    if let Ok(mut m) = map.lock() {
        m.entry(cost).or_insert_with(|| fresh.clone());
    }
    fresh
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let pw = Password::parse("xK9#mQ2v-long", "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify("xK9#mQ2v-long", Some(&h), 4));
        assert!(!verify("xK9#mQ2v-lonG", Some(&h), 4));
        assert!(!verify("", Some(&h), 4));
    }

    #[test]
    fn unknown_users_never_verify() {
        assert!(!verify("anything", None, 4));
    }

    #[test]
    fn an_attempt_longer_than_72_bytes_never_matches_its_prefix() {
        let exactly_72 = "k3".repeat(36);
        let pw = Password::parse(&exactly_72, "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify(&exactly_72, Some(&h), 4));
        assert!(!verify(&format!("{exactly_72}extra"), Some(&h), 4));
    }
}
