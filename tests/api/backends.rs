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
