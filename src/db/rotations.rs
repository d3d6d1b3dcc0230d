//! PostgreSQL: the refresh rotations of many requests in one statement.
//!
//! Each refresh is one conditional `UPDATE` of its session's row. Run one
//! by one, every refresh costs PostgreSQL a round trip, a statement and a
//! commit, and the server a blocking thread and a pooled connection. The
//! lane is a thread of its own that takes every rotation queued at that
//! moment (at most `MAX_BATCH`, each session once) and runs them as one
//! statement (`sessions::rotate_many`): the rows and conditions are those of
//! the single statement, so of two concurrent uses of one token still
//! exactly one rotates, on this instance or any other. The statement commits
//! before it returns and each request is answered after that, so a `200` is
//! durable, as for every write.
//!
//! A rotation the lane could not do (no row matched: a replay, a racing tab,
//! an ended session; a second one for the same session in the batch; or a
//! failed statement, such as a deadlock with another instance's batch) is
//! answered `None`, and the caller takes the full path, which runs the
//! single statement again and decides what the token is. Only a lane that
//! cannot take more (its queue full, or no database) answers
//! `Unavailable` (a 503).

use std::{
    collections::HashSet,
    sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::{
    DbConn, MAX_WAIT, Pool,
    models::{Session, User},
    next_batch, run,
    sessions::{self, Rotation},
};
use crate::error::AppError;

/// The most rotations in one statement.
const MAX_BATCH: usize = 256;
/// Rotations waiting for the lane; beyond this a refresh gets a 503.
const QUEUE: usize = 4096;

type Answer = Result<Option<(Session, User)>, AppError>;

struct Job {
    rotation: Rotation,
    deadline: Instant,
    answer: oneshot::Sender<Answer>,
}

/// The lane: hand it a rotation, get the rotated session or `None`.
#[derive(Clone)]
pub struct Lane {
    jobs: SyncSender<Job>,
}

impl Lane {
    /// Starts the lane's thread on `pool` (a PostgreSQL pool).
    pub fn start(pool: Pool) -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("db-rotations".into())
            .spawn(move || lane_loop(&pool, &queue))?;
        Ok(Self { jobs })
    }

    /// Rotates one session if its row still matches; `None` when the caller
    /// must take the full path.
    pub async fn rotate(&self, rotation: Rotation) -> Answer {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            rotation,
            deadline: Instant::now() + MAX_WAIT,
            answer,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AppError::Unavailable),
            Err(TrySendError::Disconnected(_)) => return Ok(None),
        }
        // The lane answers every job; the timeout only guards against a
        // statement stuck beyond PostgreSQL's own statement timeout.
        match tokio::time::timeout(MAX_WAIT + Duration::from_secs(10), answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => Err(AppError::Unavailable),
        }
    }
}

fn lane_loop(pool: &Pool, queue: &Receiver<Job>) {
    while let Some(batch) = next_batch(queue, MAX_BATCH) {
        let now = Instant::now();
        let mut sessions = HashSet::new();
        let mut jobs = Vec::with_capacity(batch.len());
        for job in batch {
            if now > job.deadline || job.answer.is_closed() {
                let _ = job.answer.send(Err(AppError::Unavailable));
            } else if !sessions.insert(job.rotation.session_id.clone()) {
                // The same session twice: the full path decides the second.
                let _ = job.answer.send(Ok(None));
            } else {
                jobs.push(job);
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let rotations: Vec<Rotation> = jobs.iter().map(|job| job.rotation.clone()).collect();
        for (job, answer) in jobs.into_iter().zip(rotate_all(pool, &rotations)) {
            let _ = job.answer.send(answer);
        }
    }
}

/// One answer per rotation, in order.
fn rotate_all(pool: &Pool, rotations: &[Rotation]) -> Vec<Answer> {
    let mut pooled = match pool.get() {
        Ok(pooled) => pooled,
        Err(e) => {
            tracing::warn!(error = %e, "refresh rotations found no database connection");
            return rotations
                .iter()
                .map(|_| Err(AppError::Unavailable))
                .collect();
        }
    };
    let rotated = run(&mut pooled, |conn| match conn {
        DbConn::Pg(pg) => Ok(sessions::rotate_many(pg, rotations)?),
        // Never started on SQLite; the full path would do.
        DbConn::Sqlite(_) => Ok(Vec::new()),
    });
    let mut answers: Vec<Answer> = rotations.iter().map(|_| Ok(None)).collect();
    match rotated {
        Ok(rows) => {
            for (i, session, user) in rows {
                if let Some(answer) = answers.get_mut(i) {
                    *answer = Ok(Some((session, user)));
                }
            }
        }
        // A lost server: each request's full path answers for itself (a
        // 503 while it is gone, logged there).
        Err(AppError::Unavailable) => {}
        // Anything else (a deadlock with another instance's batch) leaves
        // each rotation to the single statement of the full path.
        Err(e) => tracing::warn!(
            error = %e,
            rotations = rotations.len(),
            "a batch of refresh rotations failed; each takes the full path"
        ),
    }
    answers
}
