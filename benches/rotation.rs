//! The physical limit of refresh rotation on this machine: the same SQL on
//! the same schema as `POST /token/refresh` (the conditional UPDATE of the
//! session's generation, then reading the user), one transaction per
//! rotation, over one SQLite connection with the app's pragmas (through the
//! app's `DbConn`, as the app runs it), no HTTP, no tokens. `bench/run.sh` runs it; alone:
//!
//!     cargo bench --bench rotation -- [SECONDS] [SESSIONS]
//!
//! Prints `rotations=N seconds=S per_s=R` for one transaction per rotation
//! (the limit of a runner that commits each write alone), then
//! `batched_per_s=R` for one transaction per pass over all sessions (the
//! limit of the app's writer thread, which commits what is queued together).

use std::time::{Duration, Instant};

use diesel::Connection;
use portcullis::{
    config::DatabaseUrl,
    db::{self, DbConn, models::Session, sessions, users},
    domain::Role,
};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let count: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);

    let dir = tempfile::tempdir().expect("temp dir");
    let url = DatabaseUrl::Sqlite(dir.path().join("rotation.db"));
    let pool = db::open(&url).expect("database");
    let mut conn = pool.get().expect("connection");
    let user = users::create(&mut conn, "bench_user", "x", Role::User, 0).expect("user");
    let now = chrono::Utc::now().timestamp();
    let ttl = 14 * 24 * 3600;
    let mut generations: Vec<(String, i64)> = (0..count)
        .map(|i| {
            let session = Session {
                id: format!("session-{i}"),
                user_id: user.id,
                generation: 1,
                created_at: now,
                last_used_at: now,
                rotated_at: now,
                expires_at: now + ttl,
                user_agent: "bench".into(),
                ip: "127.0.0.1".into(),
                revoked_at: None,
                auth_time: now,
                amr: "pwd".into(),
            };
            sessions::insert(&mut conn, &session).expect("session");
            (session.id, 1)
        })
        .collect();

    let rotate = |c: &mut DbConn, id: &str, generation: &mut i64| {
        let row = sessions::rotate(c, id, user.id, *generation, now, now + ttl, 30 * 24 * 3600)?;
        let user = users::find(c, user.id)?;
        let (row, _user) = row.zip(user).expect("the current generation rotates");
        *generation = row.generation;
        Ok::<_, diesel::result::Error>(())
    };

    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut rotations = 0u64;
    while Instant::now() < deadline {
        for (id, generation) in generations.iter_mut() {
            conn.transaction(|c| rotate(c, id, generation))
                .expect("rotation");
            rotations += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    print!(
        "rotations={rotations} seconds={elapsed:.3} per_s={:.0}",
        rotations as f64 / elapsed
    );

    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut batched = 0u64;
    while Instant::now() < deadline {
        conn.transaction(|c| {
            for (id, generation) in generations.iter_mut() {
                rotate(c, id, generation)?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .expect("rotations");
        batched += generations.len() as u64;
    }
    println!(
        " batched_per_s={:.0}",
        batched as f64 / started.elapsed().as_secs_f64()
    );
}
