//! The PostgreSQL run of the suite: with `PORTCULLIS_TEST_DATABASE_URL` set
//! to a server's base URL (`postgres://USER@HOST:PORT`, no database name),
//! every test app gets a database of its own on that server.

use diesel::{Connection, PgConnection, RunQueryDsl};

pub fn base_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ => None,
    }
}

/// Creates `portcullis_t_<random>` on the server and returns its URL.
pub fn fresh_database(base: &str) -> String {
    let mut admin = PgConnection::establish(&format!("{base}/postgres"))
        .expect("PORTCULLIS_TEST_DATABASE_URL: the server accepts connections");
    let name = format!("portcullis_t_{}", portcullis::auth::random_id());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("CREATE DATABASE");
    format!("{base}/{name}")
}
