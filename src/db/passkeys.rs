//! Queries on `passkeys` (a user's WebAuthn credentials) and
//! `webauthn_ceremonies` (a ceremony between its start and its finish). What
//! a credential proves is decided in `auth::passkeys`; nothing here parses
//! the stored JSON.

use diesel::prelude::*;

use super::{
    DbConn,
    schema::{passkeys as p, webauthn_ceremonies as w},
};

/// A stored passkey. `passkey` is webauthn-rs's `Passkey` as JSON.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = p, check_for_backend(crate::db::MultiBackend))]
pub struct PasskeyRow {
    pub id: i32,
    pub user_id: i32,
    pub credential_id: String,
    pub user_handle: String,
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = p)]
pub struct NewPasskey<'a> {
    pub user_id: i32,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub created_at: i64,
}

/// A ceremony in progress: `state` is webauthn-rs's state as JSON.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = w, check_for_backend(crate::db::MultiBackend))]
pub struct Ceremony {
    pub id: String,
    pub user_id: Option<i32>,
    pub kind: String,
    pub state: String,
    pub name: String,
    pub expires_at: i64,
}

pub fn of_user(conn: &mut DbConn, user_id: i32) -> QueryResult<Vec<PasskeyRow>> {
    p::table
        .filter(p::user_id.eq(user_id))
        .order((p::created_at.asc(), p::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

pub fn find_by_credential(
    conn: &mut DbConn,
    credential_id: &str,
) -> QueryResult<Option<PasskeyRow>> {
    p::table
        .filter(p::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConn, row: &NewPasskey<'_>) -> QueryResult<()> {
    diesel::insert_into(p::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Stores the credential after a use (its counter, backup state) and when.
pub fn record_use(conn: &mut DbConn, id: i32, passkey: &str, now: i64) -> QueryResult<()> {
    diesel::update(p::table.find(id))
        .set((p::passkey.eq(passkey), p::last_used_at.eq(now)))
        .execute(conn)
        .map(drop)
}

/// Renames one of the user's passkeys; `false` if it is not theirs.
pub fn rename(conn: &mut DbConn, user_id: i32, id: i32, name: &str) -> QueryResult<bool> {
    diesel::update(p::table.filter(p::id.eq(id)).filter(p::user_id.eq(user_id)))
        .set(p::name.eq(name))
        .execute(conn)
        .map(|n| n == 1)
}

/// The name of one of the user's passkeys.
pub fn name_of(conn: &mut DbConn, user_id: i32, id: i32) -> QueryResult<Option<String>> {
    p::table
        .filter(p::user_id.eq(user_id))
        .filter(p::id.eq(id))
        .select(p::name)
        .first(conn)
        .optional()
}

/// Removes one of the user's passkeys; `false` if it is not theirs.
pub fn remove(conn: &mut DbConn, user_id: i32, id: i32) -> QueryResult<bool> {
    diesel::delete(p::table.filter(p::id.eq(id)).filter(p::user_id.eq(user_id)))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn insert_ceremony(conn: &mut DbConn, ceremony: &Ceremony) -> QueryResult<()> {
    diesel::insert_into(w::table)
        .values(ceremony)
        .execute(conn)
        .map(drop)
}

/// Takes a live ceremony of `kind` for `user_id` (`None` for a login): it
/// is deleted as it is read, so of two finishes with one id only one gets
/// it. The delete's row count decides, not the select (no RETURNING through
/// `DbConn`).
pub fn take_ceremony(
    conn: &mut DbConn,
    id: &str,
    kind: &str,
    user_id: Option<i32>,
    now: i64,
) -> QueryResult<Option<Ceremony>> {
    let found: Option<Ceremony> = w::table
        .find(id)
        .select(Ceremony::as_select())
        .first(conn)
        .optional()?;
    let Some(ceremony) = found else {
        return Ok(None);
    };
    let taken = diesel::delete(w::table.find(id)).execute(conn)? == 1;
    let fits = ceremony.kind == kind && ceremony.user_id == user_id && ceremony.expires_at > now;
    Ok((taken && fits).then_some(ceremony))
}

/// Deletes ceremonies that were started and never finished.
pub fn prune_ceremonies(conn: &mut DbConn, now: i64) -> QueryResult<usize> {
    diesel::delete(w::table.filter(w::expires_at.le(now))).execute(conn)
}
