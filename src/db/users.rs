//! Queries on `users`. Usernames compare without regard to case because the
//! column is `COLLATE NOCASE`.

use diesel::prelude::*;

use super::DbConn;

use super::{
    models::{NewUser, User},
    schema::users::dsl::*,
};
use crate::domain::Role;

pub fn create(
    conn: &mut DbConn,
    name: &str,
    hash: &str,
    new_role: Role,
    now: i64,
) -> QueryResult<User> {
    diesel::insert_into(users)
        .values(NewUser {
            username: name,
            password_hash: hash,
            role: new_role.as_str(),
            created_at: now,
        })
        // Columns, not `User::as_returning()`: see `sessions::rotate`.
        .returning(users::all_columns())
        .get_result::<User>(conn)
}

pub fn find(conn: &mut DbConn, user_id: i32) -> QueryResult<Option<User>> {
    // Every refresh and re-checked page reads this: on the concrete
    // connection (`db::concrete`).
    super::concrete!(conn, c => users
        .find(user_id)
        .select(User::as_select())
        .first(c)
        .optional())
}

pub fn find_by_username(conn: &mut DbConn, name: &str) -> QueryResult<Option<User>> {
    // No user has a NUL in their name (registration refuses control
    // characters), and PostgreSQL text cannot even hold one to compare.
    if name.contains('\0') {
        return Ok(None);
    }
    users
        .filter(username.eq(name))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<User>> {
    users.order(id.asc()).select(User::as_select()).load(conn)
}

pub fn record_login(conn: &mut DbConn, user_id: i32, now: i64) -> QueryResult<()> {
    diesel::update(users.find(user_id))
        .set(last_login_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// Returns whether a user with that id existed.
pub fn set_role(conn: &mut DbConn, user_id: i32, new_role: Role) -> QueryResult<bool> {
    diesel::update(users.find(user_id))
        .set(role.eq(new_role.as_str()))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn set_disabled(conn: &mut DbConn, user_id: i32, value: bool) -> QueryResult<bool> {
    diesel::update(users.find(user_id))
        .set(disabled.eq(value))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn set_password_hash(conn: &mut DbConn, user_id: i32, hash: &str) -> QueryResult<()> {
    diesel::update(users.find(user_id))
        .set(password_hash.eq(hash))
        .execute(conn)
        .map(drop)
}

/// Replaces the hash only if it is still `old` (a password change in the
/// meantime wins); returns whether it did.
pub fn replace_password_hash(
    conn: &mut DbConn,
    user_id: i32,
    old: &str,
    new: &str,
) -> QueryResult<bool> {
    diesel::update(users.find(user_id).filter(password_hash.eq(old)))
        .set(password_hash.eq(new))
        .execute(conn)
        .map(|n| n == 1)
}

/// Admins who can still act: enabled accounts with the admin role.
pub fn count_active_admins(conn: &mut DbConn) -> QueryResult<i64> {
    users
        .filter(role.eq(Role::Admin.as_str()))
        .filter(disabled.eq(false))
        .count()
        .get_result(conn)
}
