//! Queries on `totp_secrets`, `recovery_codes` and `mfa_challenges`
//! (reference §8). What a code means is decided in `auth::mfa`; the
//! statements here are the conditional ones that make "once" hold under
//! concurrency: of two requests with the same code, one updates the row.

use diesel::prelude::*;

use super::{
    DbConn,
    schema::{mfa_challenges as ch, recovery_codes as rc, totp_secrets as ts},
};

/// A user's TOTP secret and whether it is on.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ts, check_for_backend(crate::db::MultiBackend))]
pub struct Totp {
    pub user_id: i32,
    /// Base32, as the authenticator app is given it.
    pub secret: String,
    /// `None` while the enrolment waits for its first valid code.
    pub enabled_at: Option<i64>,
    pub last_step: i64,
    pub created_at: i64,
}

pub fn totp(conn: &mut DbConn, user_id: i32) -> QueryResult<Option<Totp>> {
    ts::table
        .find(user_id)
        .select(Totp::as_select())
        .first(conn)
        .optional()
}

/// Whether the user has TOTP on.
pub fn totp_enabled(conn: &mut DbConn, user_id: i32) -> QueryResult<bool> {
    ts::table
        .filter(ts::user_id.eq(user_id))
        .filter(ts::enabled_at.is_not_null())
        .count()
        .get_result::<i64>(conn)
        .map(|n| n == 1)
}

/// The users with TOTP on.
pub fn users_with_totp(conn: &mut DbConn) -> QueryResult<Vec<i32>> {
    ts::table
        .filter(ts::enabled_at.is_not_null())
        .select(ts::user_id)
        .load(conn)
}

/// Starts (or restarts) an enrolment with a new secret, unless TOTP is
/// already on; returns whether it did.
pub fn start_enrolment(
    conn: &mut DbConn,
    user_id: i32,
    secret: &str,
    now: i64,
) -> QueryResult<bool> {
    let pending = diesel::update(
        ts::table
            .filter(ts::user_id.eq(user_id))
            .filter(ts::enabled_at.is_null()),
    )
    .set((
        ts::secret.eq(secret),
        ts::last_step.eq(0),
        ts::created_at.eq(now),
    ))
    .execute(conn)?;
    if pending == 1 {
        return Ok(true);
    }
    if totp(conn, user_id)?.is_some() {
        return Ok(false); // on already
    }
    diesel::insert_into(ts::table)
        .values((
            ts::user_id.eq(user_id),
            ts::secret.eq(secret),
            ts::last_step.eq(0),
            ts::created_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Turns a pending enrolment on with its first accepted step; `false` when
/// it was not pending (or that step is not newer than the last).
pub fn enable(conn: &mut DbConn, user_id: i32, step: i64, now: i64) -> QueryResult<bool> {
    diesel::update(
        ts::table
            .filter(ts::user_id.eq(user_id))
            .filter(ts::enabled_at.is_null())
            .filter(ts::last_step.lt(step)),
    )
    .set((ts::enabled_at.eq(now), ts::last_step.eq(step)))
    .execute(conn)
    .map(|n| n == 1)
}

/// Accepts `step` for an enabled secret if no later or equal step was
/// accepted before: each code works once, and of two requests with the same
/// code exactly one gets `true`.
pub fn accept_step(conn: &mut DbConn, user_id: i32, step: i64) -> QueryResult<bool> {
    diesel::update(
        ts::table
            .filter(ts::user_id.eq(user_id))
            .filter(ts::enabled_at.is_not_null())
            .filter(ts::last_step.lt(step)),
    )
    .set(ts::last_step.eq(step))
    .execute(conn)
    .map(|n| n == 1)
}

/// Turns TOTP off: the secret and every recovery code go. Returns whether
/// it was on (or pending).
pub fn remove_totp(conn: &mut DbConn, user_id: i32) -> QueryResult<bool> {
    diesel::delete(rc::table.filter(rc::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(ts::table.filter(ts::user_id.eq(user_id)))
        .execute(conn)
        .map(|n| n == 1)
}

/// Replaces the user's recovery codes with these hashes.
pub fn replace_recovery_codes(
    conn: &mut DbConn,
    user_id: i32,
    hashes: &[String],
    now: i64,
) -> QueryResult<()> {
    diesel::delete(rc::table.filter(rc::user_id.eq(user_id))).execute(conn)?;
    // One row at a time: a batch insert does not go through the
    // MultiConnection (and ten rows in one transaction cost little).
    for hash in hashes {
        diesel::insert_into(rc::table)
            .values((
                rc::user_id.eq(user_id),
                rc::code_hash.eq(hash.as_str()),
                rc::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Uses one unused recovery code of the user by its hash; `true` once.
pub fn use_recovery_code(
    conn: &mut DbConn,
    user_id: i32,
    hash: &str,
    now: i64,
) -> QueryResult<bool> {
    diesel::update(
        rc::table
            .filter(rc::user_id.eq(user_id))
            .filter(rc::code_hash.eq(hash))
            .filter(rc::used_at.is_null()),
    )
    .set(rc::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// How many of the user's recovery codes are still unused.
pub fn recovery_codes_left(conn: &mut DbConn, user_id: i32) -> QueryResult<i64> {
    rc::table
        .filter(rc::user_id.eq(user_id))
        .filter(rc::used_at.is_null())
        .count()
        .get_result(conn)
}

pub fn create_challenge(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: i32,
    now: i64,
    expires_at: i64,
) -> QueryResult<()> {
    diesel::insert_into(ch::table)
        .values((
            ch::token_hash.eq(token_hash),
            ch::user_id.eq(user_id),
            ch::created_at.eq(now),
            ch::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

/// The user an unused, unexpired challenge is for.
pub fn challenge_user(conn: &mut DbConn, token_hash: &str, now: i64) -> QueryResult<Option<i32>> {
    ch::table
        .filter(ch::token_hash.eq(token_hash))
        .filter(ch::used_at.is_null())
        .filter(ch::expires_at.gt(now))
        .select(ch::user_id)
        .first(conn)
        .optional()
}

/// Marks a challenge used; `true` once.
pub fn use_challenge(conn: &mut DbConn, token_hash: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        ch::table
            .filter(ch::token_hash.eq(token_hash))
            .filter(ch::used_at.is_null())
            .filter(ch::expires_at.gt(now)),
    )
    .set(ch::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Deletes challenges that expired before `before`.
pub fn prune_challenges(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(ch::table.filter(ch::expires_at.le(before))).execute(conn)
}
