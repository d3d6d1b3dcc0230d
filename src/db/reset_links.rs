//! Queries on `reset_links`: one live password-reset link per user, stored
//! as the SHA-256 of its token (reference §9).

use diesel::prelude::*;

use super::{DbConn, schema::reset_links as r};

/// Replaces the user's link (a new one retires the old).
pub fn replace(
    conn: &mut DbConn,
    user_id: i32,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> QueryResult<()> {
    diesel::delete(r::table.filter(r::user_id.eq(user_id))).execute(conn)?;
    diesel::insert_into(r::table)
        .values((
            r::user_id.eq(user_id),
            r::token_hash.eq(token_hash),
            r::created_at.eq(now),
            r::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

/// The user whose unexpired link this is.
pub fn user_of(conn: &mut DbConn, token_hash: &str, now: i64) -> QueryResult<Option<i32>> {
    r::table
        .filter(r::token_hash.eq(token_hash))
        .filter(r::expires_at.gt(now))
        .select(r::user_id)
        .first(conn)
        .optional()
}

/// Uses a link: `true` once (the row goes).
pub fn take(conn: &mut DbConn, token_hash: &str, now: i64) -> QueryResult<bool> {
    diesel::delete(
        r::table
            .filter(r::token_hash.eq(token_hash))
            .filter(r::expires_at.gt(now)),
    )
    .execute(conn)
    .map(|n| n == 1)
}

/// Deletes links that expired before `before`.
pub fn prune(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(r::table.filter(r::expires_at.le(before))).execute(conn)
}
