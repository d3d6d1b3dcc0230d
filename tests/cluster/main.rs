//! Several instances of the real binary on one database (reference §7):
//! real processes, real PostgreSQL, real nginx with deploy/nginx.conf.
//!
//! PostgreSQL: `PORTCULLIS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT`
//! (a base URL; `scripts/pg-cluster start DIR PORT` prints one), each test on
//! a fresh database. Without it the tests say SKIPPED and pass, unless
//! `PORTCULLIS_REQUIRE_POSTGRES=1`; likewise a missing `/usr/sbin/nginx`
//! unless `PORTCULLIS_REQUIRE_NGINX=1`. The outage test also starts a
//! cluster of its own with scripts/pg-cluster, to stop it.

#[path = "../support/pg.rs"]
mod pg;

mod flows;
mod harness;
mod outage;
