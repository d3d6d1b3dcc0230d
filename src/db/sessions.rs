//! Queries on `sessions` (one row per login) and `legacy_refresh_tokens`
//! (refresh tokens issued before sessions became one row). What a row means
//! for a presented token is decided in `auth::refresh`.

use diesel::prelude::*;

use super::DbConn;

use super::{
    models::Session,
    schema::{legacy_refresh_tokens as legacy, sessions as s, users},
};

pub fn insert(conn: &mut DbConn, session: &Session) -> QueryResult<()> {
    diesel::insert_into(s::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Session>> {
    s::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// The rotation: moves `id` from `generation` to the next one, if that is
/// still its generation, it is live and its user is enabled. One statement,
/// so of two concurrent uses of one token exactly one rotates.
pub fn rotate(
    conn: &mut DbConn,
    id: &str,
    user_id: i32,
    generation: i64,
    now: i64,
    expires_at: i64,
) -> QueryResult<Option<Session>> {
    let enabled = users::table
        .filter(users::id.eq(user_id))
        .filter(users::disabled.eq(false));
    diesel::update(
        s::table
            .filter(s::id.eq(id))
            .filter(s::user_id.eq(user_id))
            .filter(s::generation.eq(generation))
            .filter(s::revoked_at.is_null())
            .filter(s::expires_at.gt(now))
            .filter(diesel::dsl::exists(enabled)),
    )
    .set((
        s::generation.eq(s::generation + 1),
        s::last_used_at.eq(now),
        s::rotated_at.eq(now),
        s::expires_at.eq(expires_at),
    ))
    // Columns, not `Session::as_returning()`: a `SelectBy` is built for one
    // backend and cannot go through `DbConn`.
    .returning(s::all_columns)
    .get_result::<Session>(conn)
    .optional()
}

pub fn touch(conn: &mut DbConn, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(s::table.find(id))
        .set(s::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// The session and generation a pre-upgrade refresh token (by `jti`) had.
pub fn legacy_token(conn: &mut DbConn, jti: &str) -> QueryResult<Option<(String, i64)>> {
    legacy::table
        .find(jti)
        .select((legacy::session_id, legacy::generation))
        .first(conn)
        .optional()
}

/// Revokes one session if it belongs to `user_id` and is not revoked yet;
/// returns whether it did.
pub fn revoke(conn: &mut DbConn, id: &str, user_id: i32, now: i64) -> QueryResult<bool> {
    diesel::update(
        s::table
            .filter(s::id.eq(id))
            .filter(s::user_id.eq(user_id))
            .filter(s::revoked_at.is_null()),
    )
    .set(s::revoked_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Revokes every live session of a user, except `keep` if given; returns how many.
pub fn revoke_all(
    conn: &mut DbConn,
    user_id: i32,
    keep: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    let query = s::table
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null());
    match keep {
        Some(keep) => diesel::update(query.filter(s::id.ne(keep)))
            .set(s::revoked_at.eq(now))
            .execute(conn),
        None => diesel::update(query)
            .set(s::revoked_at.eq(now))
            .execute(conn),
    }
}

/// Whether `id` is a live session of `user_id`: not revoked, not expired.
pub fn is_live(conn: &mut DbConn, id: &str, user_id: i32, now: i64) -> QueryResult<bool> {
    s::table
        .filter(s::id.eq(id))
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n == 1)
}

/// The user's live sessions, most recently used first.
pub fn active(conn: &mut DbConn, user_id: i32, now: i64) -> QueryResult<Vec<Session>> {
    s::table
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .order(s::last_used_at.desc())
        .select(Session::as_select())
        .load(conn)
}

/// Deletes sessions that ended (revoked or expired) before `ended_before`,
/// and pre-upgrade tokens past their expiry. Recently ended sessions are
/// kept so a replayed token is still recognised as reuse (and logged)
/// rather than as an unknown token.
pub fn prune(conn: &mut DbConn, now: i64, ended_before: i64) -> QueryResult<usize> {
    let tokens = diesel::delete(legacy::table.filter(legacy::expires_at.le(now))).execute(conn)?;
    let sessions = diesel::delete(
        s::table.filter(
            s::revoked_at
                .le(ended_before)
                .or(s::expires_at.le(ended_before)),
        ),
    )
    .execute(conn)?;
    Ok(tokens + sessions)
}
