//! What differs between the backends, checked on the one this run uses
//! (reference §7): periodic work runs in one process at a time, and the
//! clock every instance counts by is the database server's.

use diesel::{Connection, result::Error};
use portcullis::db::{self, DbConn};

use crate::helpers::*;

const KEY: i64 = 0x7465_7374; // any key; not one the app uses

#[actix_web::test]
async fn periodic_work_runs_in_one_process_at_a_time() {
    let app = spawn_app().await;
    let mut first = app.db();
    let mut second = app.db();
    let postgres = matches!(first, DbConn::Pg(_));
    first
        .transaction::<_, Error, _>(|first| {
            let held = db::exclusively(first, KEY, |_| Ok::<_, Error>("ran"))?;
            assert_eq!(held, Some("ran"));
            // While the first holds the lock (its transaction is open), the
            // second skips the work on PostgreSQL; SQLite has one process.
            let skipped = second.transaction::<_, Error, _>(|second| {
                db::exclusively(second, KEY, |_| Ok::<_, Error>("ran too"))
            })?;
            if postgres {
                assert_eq!(skipped, None, "another process holds the lock");
            } else {
                assert_eq!(skipped, Some("ran too"));
            }
            Ok(())
        })
        .unwrap();
    // Released with the first transaction.
    let after = second
        .transaction::<_, Error, _>(|second| {
            db::exclusively(second, KEY, |_| Ok::<_, Error>("ran"))
        })
        .unwrap();
    assert_eq!(after, Some("ran"));
}

#[actix_web::test]
async fn the_clock_skew_is_measured_from_the_database_server() {
    let app = spawn_app().await;
    let mut conn = app.db();
    // The server runs on this machine here: no skew, to the second.
    let skew = db::clock_skew(&mut conn).unwrap();
    assert!((-1..=1).contains(&skew), "{skew}");
}

/// PostgreSQL's batched rotation (`db::rotations`) is the single rotation
/// statement once per row: a row rotates only at its current generation,
/// while live and its user enabled, and each result names its row.
#[actix_web::test]
async fn a_batch_of_rotations_rotates_exactly_the_rows_that_match() {
    use diesel::prelude::*;
    use portcullis::db::{schema::sessions as s, sessions::Rotation};
    let app = spawn_app().await;
    let mut conn = app.db();
    let DbConn::Pg(pg) = &mut conn else {
        println!("SQLite: batched rotations are PostgreSQL's only; nothing to check");
        return;
    };
    for name in ["batch_a", "batch_b", "batch_c"] {
        app.api_user(name).await;
    }
    let rows: Vec<(String, i32, i64, i64)> = s::table
        .select((s::id, s::user_id, s::generation, s::expires_at))
        .order(s::user_id)
        .load(pg)
        .unwrap();
    let [a, b, c] = &rows[..] else {
        panic!("three sessions: {rows:?}")
    };
    portcullis::db::users::set_disabled(&mut app.db(), c.1, true).unwrap();
    // Any time at which all three are still live.
    let now = rows.iter().map(|row| row.3).min().unwrap() - 60;
    let rotation = |row: &(String, i32, i64, i64), generation| Rotation {
        session_id: row.0.clone(),
        user_id: row.1,
        generation,
        now,
        expires_at: now + 3600,
        max_lifetime: 30 * 86400,
    };
    let done = portcullis::db::sessions::rotate_many(
        pg,
        &[
            rotation(b, b.2 - 1), // an older generation: a replay
            rotation(a, a.2),     // current: rotates
            rotation(c, c.2),     // its user disabled
            Rotation {
                user_id: a.1 + 1000, // not its user
                ..rotation(b, b.2)
            },
        ],
    )
    .unwrap();
    assert_eq!(done.len(), 1, "only one row matched");
    let (index, session, user) = &done[0];
    assert_eq!(*index, 1, "the result names its row");
    assert_eq!((&session.id, session.generation), (&a.0, a.2 + 1));
    assert_eq!(user.id, a.1);
    let after: Vec<i64> = s::table
        .select(s::generation)
        .order(s::user_id)
        .load(pg)
        .unwrap();
    assert_eq!(
        after,
        vec![a.2 + 1, b.2, c.2],
        "the others are as they were"
    );
}
