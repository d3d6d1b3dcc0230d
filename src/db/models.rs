//! Rows as Diesel reads and writes them, and their conversion into domain types.

use diesel::prelude::*;

use super::schema::{sessions, users};
use crate::domain::Role;

/// A stored user. `role` is already a `Role`: the column's CHECK constraint
/// keeps any other text out, and a row that somehow holds one reads as `user`,
/// the role with least power.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(crate::db::MultiBackend))]
pub struct User {
    pub id: i32,
    pub username: String,
    pub password_hash: String,
    #[diesel(deserialize_as = RoleColumn)]
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// The hash stays out of logs and panics.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Reads the `role` text column into a `Role`.
pub struct RoleColumn(Role);

impl<DB> diesel::deserialize::Queryable<diesel::sql_types::Text, DB> for RoleColumn
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
{
    type Row = String;
    fn build(row: String) -> diesel::deserialize::Result<Self> {
        Ok(RoleColumn(row.parse().unwrap_or(Role::User)))
    }
}

impl From<RoleColumn> for Role {
    fn from(value: RoleColumn) -> Self {
        value.0
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub created_at: i64,
}

/// One session: a login and every rotation since (reference §4).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(crate::db::MultiBackend))]
pub struct Session {
    pub id: String,
    pub user_id: i32,
    pub generation: i64,
    pub created_at: i64,
    pub last_used_at: i64,
    pub rotated_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub ip: String,
    pub revoked_at: Option<i64>,
    /// When the user last proved who they are in this session (the login,
    /// or a re-authentication since), and how (`amr`, space-separated).
    pub auth_time: i64,
    pub amr: String,
}
