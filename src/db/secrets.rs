//! `app_secrets`: the development JWT key generated on first start.

use diesel::prelude::*;

use super::DbConn;

use super::schema::app_secrets::dsl::*;

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<Vec<u8>>> {
    app_secrets.find(key).select(value).first(conn).optional()
}

/// Stores `candidate` unless a value exists; returns the value that is kept,
/// so two processes starting at once agree on one key.
pub fn get_or_insert(conn: &mut DbConn, key: &str, candidate: &[u8]) -> QueryResult<Vec<u8>> {
    let row = (name.eq(key), value.eq(candidate));
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(app_secrets)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_or_ignore_into(app_secrets)
            .values(row)
            .execute(lite)?,
    };
    app_secrets.find(key).select(value).first(conn)
}
