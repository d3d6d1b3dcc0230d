//! `app_secrets`: the development JWT key generated on first start.

use diesel::prelude::*;

use super::schema::app_secrets::dsl::*;

pub fn get(conn: &mut SqliteConnection, key: &str) -> QueryResult<Option<Vec<u8>>> {
    app_secrets.find(key).select(value).first(conn).optional()
}

/// Stores `candidate` unless a value exists; returns the value that is kept,
/// so two processes starting at once agree on one key.
pub fn get_or_insert(
    conn: &mut SqliteConnection,
    key: &str,
    candidate: &[u8],
) -> QueryResult<Vec<u8>> {
    diesel::insert_or_ignore_into(app_secrets)
        .values((name.eq(key), value.eq(candidate)))
        .execute(conn)?;
    app_secrets.find(key).select(value).first(conn)
}
