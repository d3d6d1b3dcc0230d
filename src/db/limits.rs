//! Queries on `limit_counters`: windowed counters shared by every process on
//! the database (the limits of reference §6). What is counted, and the
//! limits themselves, are decided in `auth::throttle`.

use diesel::{dsl::case_when, prelude::*};

use super::{DbConn, schema::limit_counters as c};

/// A counter after a hit: how many in its window, and when that window began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub hits: i32,
    pub window_start: i64,
}

/// Adds one to `key`'s count, first starting a new window at `now` if the
/// counter's window (of `window` seconds) is over; returns the count after.
/// One statement: concurrent hits on one key serialise on its row, so each
/// sees a distinct count.
pub fn hit(conn: &mut DbConn, key: &str, now: i64, window: i64) -> QueryResult<Count> {
    let stale = now - window;
    // The same statement for both backends; only the upsert's type differs,
    // so it cannot go through `DbConn` itself.
    macro_rules! upsert {
        ($conn:expr) => {
            diesel::insert_into(c::table)
                .values((c::key.eq(key), c::window_start.eq(now), c::hits.eq(1)))
                .on_conflict(c::key)
                .do_update()
                .set((
                    c::hits.eq(case_when(
                        c::window_start.le(stale),
                        1_i32.into_sql::<diesel::sql_types::Integer>(),
                    )
                    .otherwise(c::hits + 1)),
                    c::window_start.eq(case_when(
                        c::window_start.le(stale),
                        now.into_sql::<diesel::sql_types::BigInt>(),
                    )
                    .otherwise(c::window_start)),
                ))
                .returning((c::hits, c::window_start))
                .get_result::<(i32, i64)>($conn)
        };
    }
    let (hits, window_start) = match conn {
        DbConn::Pg(pg) => upsert!(pg)?,
        DbConn::Sqlite(lite) => upsert!(lite)?,
    };
    Ok(Count { hits, window_start })
}

/// The counts of `keys` whose windows (of `window` seconds) are not over at
/// `now`, without counting anything: one read.
pub fn current(
    conn: &mut DbConn,
    keys: &[&str],
    now: i64,
    window: i64,
) -> QueryResult<Vec<(String, Count)>> {
    let rows: Vec<(String, i32, i64)> = c::table
        .filter(c::key.eq_any(keys))
        .filter(c::window_start.gt(now - window))
        .select((c::key, c::hits, c::window_start))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(key, hits, window_start)| (key, Count { hits, window_start }))
        .collect())
}

/// Gives one back, if the counter is still in the window it was taken in.
pub fn refund(conn: &mut DbConn, key: &str, window_start: i64) -> QueryResult<()> {
    diesel::update(
        c::table
            .filter(c::key.eq(key))
            .filter(c::window_start.eq(window_start))
            .filter(c::hits.gt(0)),
    )
    .set(c::hits.eq(c::hits - 1))
    .execute(conn)
    .map(drop)
}

pub fn clear(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    diesel::delete(c::table.find(key)).execute(conn).map(drop)
}

/// Deletes counters whose window began at or before `before`.
pub fn prune(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(c::table.filter(c::window_start.le(before))).execute(conn)
}

/// How many counters exist (tests and metrics).
pub fn tracked(conn: &mut DbConn) -> QueryResult<i64> {
    c::table.count().get_result(conn)
}
