//! Queries on `audit_events` (reference §9). What to record is decided in
//! `auth::audit`; this appends, lists and prunes.

use diesel::prelude::*;

use super::{DbConn, schema::audit_events as a};

/// An event as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = a, check_for_backend(crate::db::MultiBackend))]
pub struct Row {
    pub id: i32,
    pub at: i64,
    pub event: String,
    pub actor_id: Option<i32>,
    pub actor_name: String,
    pub target_id: Option<i32>,
    pub target_name: String,
    pub ip: String,
    pub user_agent: String,
    pub session_id: Option<String>,
    pub detail: String,
}

/// An event to append.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = a)]
pub struct NewRow {
    pub at: i64,
    pub event: String,
    pub actor_id: Option<i32>,
    pub actor_name: String,
    pub target_id: Option<i32>,
    pub target_name: String,
    pub ip: String,
    pub user_agent: String,
    pub session_id: Option<String>,
    pub detail: String,
}

pub fn insert(conn: &mut DbConn, row: &NewRow) -> QueryResult<()> {
    diesel::insert_into(a::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Appends many events in one statement (the queue's batches).
pub fn insert_many(conn: &mut DbConn, rows: &[NewRow]) -> QueryResult<()> {
    // A multi-row INSERT does not go through the MultiConnection: on the
    // concrete connection of either backend (`db::concrete`).
    super::concrete!(conn, c => diesel::insert_into(a::table)
        .values(rows)
        .execute(c)
        .map(drop))
}

/// Which events a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Events whose actor or target is this user.
    pub user_id: Option<i32>,
    pub event: Option<String>,
    /// Only events with a smaller id (the next page).
    pub before: Option<i32>,
    /// Only events at or after this time.
    pub since: Option<i64>,
}

/// Newest first, at most `limit`.
pub fn newest(conn: &mut DbConn, filter: &Filter, limit: i64) -> QueryResult<Vec<Row>> {
    let mut query = a::table.select(Row::as_select()).into_boxed();
    if let Some(user) = filter.user_id {
        query = query.filter(a::actor_id.eq(user).or(a::target_id.eq(user)));
    }
    if let Some(event) = &filter.event {
        query = query.filter(a::event.eq(event.clone()));
    }
    if let Some(before) = filter.before {
        query = query.filter(a::id.lt(before));
    }
    if let Some(since) = filter.since {
        query = query.filter(a::at.ge(since));
    }
    query.order(a::id.desc()).limit(limit).load(conn)
}

/// Oldest first, every matching event (the CLI).
pub fn oldest_first(conn: &mut DbConn, filter: &Filter) -> QueryResult<Vec<Row>> {
    let mut rows = newest(conn, filter, i64::MAX)?;
    rows.reverse();
    Ok(rows)
}

/// Whether the user has logged in before from this user agent.
pub fn known_device(conn: &mut DbConn, user_id: i32, user_agent: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(logins_from(user_id, user_agent))).get_result(conn)
}

/// The user's successful logins from `user_agent`: what the partial index
/// `audit_events_known_devices` holds.
#[diesel::dsl::auto_type]
fn logins_from<'a>(user_id: i32, user_agent: &'a str) -> _ {
    a::table
        .filter(a::target_id.eq(user_id))
        .filter(successful_login())
        .filter(a::user_agent.eq(user_agent))
}

#[allow(non_camel_case_types)]
type successful_login = diesel::expression::SqlLiteral<diesel::sql_types::Bool>;

/// The index's own `WHERE`, literally: as a bound value the planners could
/// not tell that a query's `event = $1` is that one (SQLite's prepared
/// statements, PostgreSQL's generic plans), and would read every event of
/// the user.
fn successful_login() -> successful_login {
    diesel::dsl::sql("event = 'login_succeeded'")
}

/// Deletes events older than `before`.
pub fn prune(conn: &mut DbConn, before: i64) -> QueryResult<usize> {
    diesel::delete(a::table.filter(a::at.lt(before))).execute(conn)
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{Integer, Text};

    use super::*;

    #[derive(QueryableByName)]
    struct Step {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// The known-device look-up reads the partial index, not every event
    /// of the user (a user whose name a flood of failed logins targets has
    /// many).
    #[test]
    fn the_known_device_look_up_uses_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::DatabaseUrl::Sqlite(dir.path().join("a.db"));
        let pool = super::super::open(&url).unwrap();
        let mut pooled = pool.get().unwrap();
        let DbConn::Sqlite(conn) = &mut **pooled else {
            unreachable!("a SQLite URL")
        };
        let query = diesel::select(diesel::dsl::exists(logins_from(1, "agent")));
        let shown = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string();
        let sql = shown.split(" -- binds").next().unwrap();
        let plan: Vec<Step> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .bind::<Integer, _>(1)
            .bind::<Text, _>("agent")
            .load(conn)
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.detail.contains("INDEX audit_events_known_devices")),
            "{sql}: {:?}",
            plan.iter().map(|s| &s.detail).collect::<Vec<_>>()
        );
    }
}
