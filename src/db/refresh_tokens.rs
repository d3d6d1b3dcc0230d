//! Queries on `refresh_families` (one per login session) and `refresh_tokens`
//! (one per issued refresh token). The rotation logic that combines them lives
//! in `auth::sessions`.

use diesel::prelude::*;

use super::{
    models::{Family, RefreshTokenRow},
    schema::{refresh_families as fam, refresh_tokens as tok},
};

pub fn insert_family(conn: &mut SqliteConnection, family: &Family) -> QueryResult<()> {
    diesel::insert_into(fam::table)
        .values(family)
        .execute(conn)
        .map(drop)
}

pub fn insert_token(conn: &mut SqliteConnection, row: &RefreshTokenRow) -> QueryResult<()> {
    diesel::insert_into(tok::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_token(
    conn: &mut SqliteConnection,
    jti: &str,
) -> QueryResult<Option<(RefreshTokenRow, Family)>> {
    tok::table
        .inner_join(fam::table)
        .filter(tok::jti.eq(jti))
        .select((RefreshTokenRow::as_select(), Family::as_select()))
        .first(conn)
        .optional()
}

/// Marks a token used. Returns false when another request already did: the
/// `used_at IS NULL` condition makes this the atomic "consume".
pub fn mark_used(conn: &mut SqliteConnection, jti: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        tok::table
            .filter(tok::jti.eq(jti))
            .filter(tok::used_at.is_null()),
    )
    .set(tok::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// The family's current refresh token: unused and unexpired.
pub fn live_token(
    conn: &mut SqliteConnection,
    family_id: &str,
    now: i64,
) -> QueryResult<Option<RefreshTokenRow>> {
    tok::table
        .filter(tok::family_id.eq(family_id))
        .filter(tok::used_at.is_null())
        .filter(tok::expires_at.gt(now))
        .order(tok::issued_at.desc())
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch_family(conn: &mut SqliteConnection, family_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(fam::table.find(family_id))
        .set(fam::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// Whether `family_id` is a live session of `user_id`: not revoked, and its
/// current refresh token has not expired.
pub fn is_live(
    conn: &mut SqliteConnection,
    family_id: &str,
    user_id: i32,
    now: i64,
) -> QueryResult<bool> {
    let live = tok::table
        .filter(tok::family_id.eq(family_id))
        .filter(tok::used_at.is_null())
        .filter(tok::expires_at.gt(now));
    fam::table
        .filter(fam::id.eq(family_id))
        .filter(fam::user_id.eq(user_id))
        .filter(fam::revoked_at.is_null())
        .filter(diesel::dsl::exists(live))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n == 1)
}

/// Revokes one family if it belongs to `user_id`; returns whether it did.
pub fn revoke_family(
    conn: &mut SqliteConnection,
    family_id: &str,
    user_id: i32,
    now: i64,
) -> QueryResult<bool> {
    diesel::update(
        fam::table
            .filter(fam::id.eq(family_id))
            .filter(fam::user_id.eq(user_id))
            .filter(fam::revoked_at.is_null()),
    )
    .set(fam::revoked_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Revokes every live family of a user, except `keep` if given; returns how many.
pub fn revoke_user_families(
    conn: &mut SqliteConnection,
    user_id: i32,
    keep: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    let query = fam::table
        .filter(fam::user_id.eq(user_id))
        .filter(fam::revoked_at.is_null());
    match keep {
        Some(keep) => diesel::update(query.filter(fam::id.ne(keep)))
            .set(fam::revoked_at.eq(now))
            .execute(conn),
        None => diesel::update(query)
            .set(fam::revoked_at.eq(now))
            .execute(conn),
    }
}

/// The user's sessions that can still refresh: not revoked, with a live token.
pub fn active_families(
    conn: &mut SqliteConnection,
    user_id: i32,
    now: i64,
) -> QueryResult<Vec<Family>> {
    let live = tok::table
        .filter(tok::used_at.is_null())
        .filter(tok::expires_at.gt(now))
        .select(tok::family_id);
    fam::table
        .filter(fam::user_id.eq(user_id))
        .filter(fam::revoked_at.is_null())
        .filter(fam::id.eq_any(live))
        .order(fam::last_used_at.desc())
        .select(Family::as_select())
        .load(conn)
}

/// Deletes what can never be used again: tokens past expiry, and families that
/// were revoked before `revoked_before` or have no unexpired token left.
/// Recently revoked families are kept so a replayed token is still recognised
/// as reuse (and logged) rather than as an unknown token.
pub fn prune(conn: &mut SqliteConnection, now: i64, revoked_before: i64) -> QueryResult<usize> {
    let tokens = diesel::delete(tok::table.filter(tok::expires_at.le(now))).execute(conn)?;
    let with_tokens = tok::table.select(tok::family_id);
    let families = diesel::delete(
        fam::table.filter(
            fam::revoked_at
                .le(revoked_before)
                .or(fam::id.ne_all(with_tokens)),
        ),
    )
    .execute(conn)?;
    Ok(tokens + families)
}
