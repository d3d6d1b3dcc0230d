//! PostgreSQL for test binaries: `#[path = "../support/pg.rs"] mod pg;`.
//!
//! `PORTCULLIS_TEST_DATABASE_URL` is a *base* URL without a database name
//! (`postgres://postgres@127.0.0.1:55432`, as `scripts/pg-cluster start`
//! prints); each test gets a database of its own from `fresh_database`. The
//! cluster is throwaway, so the databases are never dropped.
#![allow(dead_code)]

use diesel::{Connection, PgConnection, RunQueryDsl};

pub const BASE_URL_VAR: &str = "PORTCULLIS_TEST_DATABASE_URL";
pub const REQUIRE_VAR: &str = "PORTCULLIS_REQUIRE_POSTGRES";

/// Whether a missing PostgreSQL must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The base URL of the test cluster, or `None` (the caller skips or uses
/// SQLite). Panics when unset but `PORTCULLIS_REQUIRE_POSTGRES=1`.
pub fn base_url() -> Option<String> {
    match std::env::var(BASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ if required() => panic!(
            "{REQUIRE_VAR}=1 but {BASE_URL_VAR} is not set: start a cluster with \
             `scripts/pg-cluster start DIR PORT` and set {BASE_URL_VAR}=postgres://postgres@127.0.0.1:PORT"
        ),
        _ => None,
    }
}

/// `url` with its password, if any, replaced by `***`: for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Creates an empty database `portcullis_t_<16 hex>` on the cluster at
/// `base` and returns its URL.
pub fn fresh_database(base: &str) -> String {
    use rand::RngExt;
    let base = base.trim_end_matches('/');
    let bytes: [u8; 8] = rand::rng().random();
    let name = format!("portcullis_t_{}", hex::encode(bytes));
    let mut conn = PgConnection::establish(&format!("{base}/postgres")).unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test cluster at {}/postgres: {e}",
            redacted(base)
        )
    });
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    format!("{base}/{name}")
}
