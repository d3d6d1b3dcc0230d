//! Login and registration limits (reference §6).
//!
//! Three counters, each per fixed window:
//! - failed logins per (client, username): at most `LOGIN_MAX_FAILURES`;
//!   usernames count without regard to case, unknown ones too;
//! - failed logins per client across usernames: `LOGIN_MAX_FAILURES_PER_IP`;
//! - registrations per client per hour: `REGISTER_MAX_PER_IP`.
//!
//! A client is its IP address, an IPv6 client its /64. The limits hold under
//! concurrency because an attempt is *reserved* before the password hash
//! runs: the counters include attempts in flight, so of any number sent at
//! once at most the limit are checked. A success refunds its reservation
//! (and clears the pair's count); an attempt that never reached the hash (the
//! client left, the hasher refused it) is refunded when its reservation is
//! dropped. Time comes from the injected clock.
//!
//! The counters live in the database (`limit_counters`), so every instance
//! serving one database counts together (reference §7). A reservation is one
//! upsert per counter: concurrent attempts serialise on the counter's row,
//! so each sees a distinct count; one over the limit rolls its own hits back.
//! Refunds of dropped reservations are queued without waiting. A counter's
//! key holds the client and, for logins, at most `ECHO_MAX_CHARS` of the
//! lower-cased username, hex-encoded (any bytes, bounded length). Old
//! counters are pruned with the sessions.

use std::net::IpAddr;

use diesel::Connection;

use crate::{
    clock::SharedClock,
    db::{Db, DbConn, limits},
    domain,
    error::AppError,
};

/// One hour: the registration window.
pub const REGISTER_WINDOW: i64 = 60 * 60;

/// The limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub max_failures_per_ip: u32,
    pub failure_window: i64,
    pub max_registrations: u32,
}

/// Why an attempt was refused, and for how long (seconds, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this (client, username).
    Pair { retry_after: u64 },
    /// Too many failures from this client across usernames.
    Client { retry_after: u64 },
    /// Too many registrations from this client this hour.
    Registrations { retry_after: u64 },
}

impl Refusal {
    pub fn retry_after(self) -> u64 {
        match self {
            Refusal::Pair { retry_after }
            | Refusal::Client { retry_after }
            | Refusal::Registrations { retry_after } => retry_after,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Refusal::Pair { .. } => "pair",
            Refusal::Client { .. } => "client",
            Refusal::Registrations { .. } => "registration",
        }
    }
}

/// Seconds until a window that began at `start` is over (at least 1).
fn retry(start: i64, window: i64, now: i64) -> u64 {
    (start + window - now).max(1) as u64
}

/// Inside a reservation: over a limit (its hits are rolled back), or a
/// database error.
enum Over {
    Limit(Refusal),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Over {
    fn from(e: diesel::result::Error) -> Self {
        Over::Db(e)
    }
}

fn pair_key(client: IpAddr, username: &str) -> String {
    let name = domain::echo(username).to_lowercase();
    format!("login:{client}:{}", hex::encode(name.as_bytes()))
}

fn client_key(client: IpAddr) -> String {
    format!("login-client:{client}")
}

fn registration_key(client: IpAddr) -> String {
    format!("register:{client}")
}

pub struct Throttle {
    limits: Limits,
    clock: SharedClock,
    db: Db,
}

impl Throttle {
    pub fn new(limits: Limits, clock: SharedClock, db: Db) -> Self {
        Self {
            limits: Limits {
                failure_window: limits.failure_window.max(1),
                ..limits
            },
            clock,
            db,
        }
    }

    /// Reserves one login attempt (or a current-password check) for
    /// `username` from `ip`, or says why not and for how long.
    pub async fn reserve_login(
        &self,
        ip: IpAddr,
        username: &str,
    ) -> Result<Result<LoginAttempt, Refusal>, AppError> {
        let client = domain::client_key(ip);
        let pair = pair_key(client, username);
        let client = client_key(client);
        let now = self.clock.now();
        let Limits {
            max_failures,
            max_failures_per_ip,
            failure_window: window,
            ..
        } = self.limits;
        let (p, c) = (pair.clone(), client.clone());
        // `write_each`: on PostgreSQL the read below is a statement of its
        // own (one round trip, no transaction around it) and `reserve` its
        // own transaction; on SQLite all of it is one job of the writer.
        let reserved = self
            .db
            .write_each(move |conn| {
                // A client already over a limit (a locked-out flood) is
                // refused on a read: the hits below would only be rolled
                // back. Exact, as their own check is: at the limit, nothing
                // more can pass. On SQLite in the writer's queue, so it sees
                // every refund queued before it; on PostgreSQL it sees every
                // committed one, as the hits do.
                let counts = limits::current(conn, &[&p, &c], now, window)?;
                let full = |key: &str, max: u32| {
                    counts
                        .iter()
                        .find(|(k, count)| k == key && count.hits >= max as i32)
                        .map(|(_, count)| retry(count.window_start, window, now))
                };
                if let Some(retry_after) = full(&p, max_failures) {
                    return Ok(Err(Refusal::Pair { retry_after }));
                }
                if let Some(retry_after) = full(&c, max_failures_per_ip) {
                    return Ok(Err(Refusal::Client { retry_after }));
                }
                reserve(conn, |conn| {
                    let pair = limits::hit(conn, &p, now, window)?;
                    if pair.hits > max_failures as i32 {
                        return Err(Over::Limit(Refusal::Pair {
                            retry_after: retry(pair.window_start, window, now),
                        }));
                    }
                    let client = limits::hit(conn, &c, now, window)?;
                    if client.hits > max_failures_per_ip as i32 {
                        return Err(Over::Limit(Refusal::Client {
                            retry_after: retry(client.window_start, window, now),
                        }));
                    }
                    Ok((pair.window_start, client.window_start))
                })
            })
            .await?;
        Ok(reserved.map(|(pair_window, client_window)| LoginAttempt {
            db: self.db.clone(),
            pair,
            pair_window,
            client,
            client_window,
            settled: false,
        }))
    }

    /// Reserves one registration from `ip`.
    pub async fn reserve_registration(
        &self,
        ip: IpAddr,
    ) -> Result<Result<Registration, Refusal>, AppError> {
        let key = registration_key(domain::client_key(ip));
        let now = self.clock.now();
        let max = self.limits.max_registrations as i32;
        let k = key.clone();
        let reserved = self
            .db
            .write(move |conn| {
                reserve(conn, |conn| {
                    let count = limits::hit(conn, &k, now, REGISTER_WINDOW)?;
                    if count.hits > max {
                        return Err(Over::Limit(Refusal::Registrations {
                            retry_after: retry(count.window_start, REGISTER_WINDOW, now),
                        }));
                    }
                    Ok(count.window_start)
                })
            })
            .await?;
        Ok(reserved.map(|window| Registration {
            db: self.db.clone(),
            key,
            window,
            settled: false,
        }))
    }

    /// The longest window: counters older than this are over.
    pub fn longest_window(&self) -> i64 {
        self.limits.failure_window.max(REGISTER_WINDOW)
    }
}

/// Runs a reservation in a savepoint of its own, so a refused one leaves no
/// hits behind.
fn reserve<T>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, Over>,
) -> Result<Result<T, Refusal>, AppError> {
    match conn.transaction(work) {
        Ok(value) => Ok(Ok(value)),
        Err(Over::Limit(refusal)) => Ok(Err(refusal)),
        Err(Over::Db(e)) => Err(e.into()),
    }
}

/// Deletes counters whose windows are over (with the sessions' pruning).
pub fn prune(conn: &mut DbConn, now: i64, longest_window: i64) -> Result<usize, AppError> {
    Ok(limits::prune(conn, now - longest_window)?)
}

/// A reserved login attempt. Say how it went; dropping it unsettled means
/// the password was never checked, and refunds it.
pub struct LoginAttempt {
    db: Db,
    pair: String,
    pair_window: i64,
    client: String,
    client_window: i64,
    settled: bool,
}

impl LoginAttempt {
    /// Neither a failure nor a success: a right password whose second factor
    /// is still to come. The attempt is refunded (before the answer, so the
    /// next attempt sees it), but the pair's count stays: only a completed
    /// login clears it, so a known password cannot reset the count of wrong
    /// codes.
    pub async fn deferred(mut self) {
        self.settled = true;
        let (pair, pair_window) = (std::mem::take(&mut self.pair), self.pair_window);
        let (client, client_window) = (std::mem::take(&mut self.client), self.client_window);
        let refunded = self
            .db
            .write(move |conn| {
                limits::refund(conn, &pair, pair_window)?;
                Ok(limits::refund(conn, &client, client_window)?)
            })
            .await;
        if let Err(e) = refunded {
            tracing::warn!(error = %e, "refunding a login counter failed");
        }
    }

    /// A wrong password: the reservation stays counted.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The right password: the pair's count is cleared and this attempt
    /// refunded from the client's budget (before the answer, so the next
    /// attempt sees it).
    pub async fn succeeded(mut self) {
        self.settled = true;
        let (pair, client, window) = (
            std::mem::take(&mut self.pair),
            std::mem::take(&mut self.client),
            self.client_window,
        );
        let cleared = self
            .db
            .write(move |conn| {
                limits::clear(conn, &pair)?;
                Ok(limits::refund(conn, &client, window)?)
            })
            .await;
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "clearing a login counter failed");
        }
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if !self.settled {
            let (pair, pair_window) = (std::mem::take(&mut self.pair), self.pair_window);
            let (client, client_window) = (std::mem::take(&mut self.client), self.client_window);
            self.db.write_detached(move |conn| {
                limits::refund(conn, &pair, pair_window)?;
                Ok(limits::refund(conn, &client, client_window)?)
            });
        }
    }
}

/// A reserved registration. `done` once its hash ran (whatever the
/// outcome: a taken name costs the same); dropped unsettled, it is refunded.
pub struct Registration {
    db: Db,
    key: String,
    window: i64,
    settled: bool,
}

impl Registration {
    pub fn done(mut self) {
        self.settled = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.settled {
            let (key, window) = (std::mem::take(&mut self.key), self.window);
            self.db
                .write_detached(move |conn| Ok(limits::refund(conn, &key, window)?));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        clock::{Clock, OffsetClock},
        config::DatabaseUrl,
    };

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const OTHER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    struct Fixture {
        t: Throttle,
        db: Db,
        clock: Arc<OffsetClock>,
        _dir: tempfile::TempDir,
    }

    fn throttle(max: u32, per_ip: u32, window: i64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&DatabaseUrl::Sqlite(dir.path().join("t.db"))).unwrap();
        let clock = OffsetClock::new();
        let limits = Limits {
            max_failures: max,
            max_failures_per_ip: per_ip,
            failure_window: window,
            max_registrations: 2,
        };
        Fixture {
            t: Throttle::new(limits, clock.clone(), db.clone()),
            db,
            clock,
            _dir: dir,
        }
    }

    impl Fixture {
        async fn login(&self, ip: IpAddr, name: &str) -> Result<LoginAttempt, Refusal> {
            self.t
                .reserve_login(ip, name)
                .await
                .expect("the database answers")
        }

        async fn fail(&self, ip: IpAddr, name: &str) {
            self.login(ip, name).await.expect("allowed").failed();
        }

        async fn register(&self, ip: IpAddr) -> Result<Registration, Refusal> {
            self.t
                .reserve_registration(ip)
                .await
                .expect("the database answers")
        }

        async fn counters(&self) -> i64 {
            self.db
                .read(|conn| Ok(limits::tracked(conn)?))
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn locks_a_pair_after_the_allowed_failures_until_the_window_passes() {
        let f = throttle(3, 100, 60);
        for _ in 0..3 {
            f.fail(IP, "alice").await;
        }
        let refused = f.login(IP, "ALICE").await.err().expect("locked");
        assert!(matches!(refused, Refusal::Pair { .. }));
        assert!((59..=60).contains(&refused.retry_after()));
        f.clock.advance(30);
        assert!(f.login(IP, "alice").await.err().unwrap().retry_after() <= 30);
        f.clock.advance(31);
        assert!(f.login(IP, "alice").await.is_ok());
    }

    #[tokio::test]
    async fn attempts_in_flight_count_so_a_burst_checks_at_most_the_limit() {
        let f = throttle(3, 100, 60);
        let burst = (0..10).map(|_| f.t.reserve_login(IP, "alice"));
        let held: Vec<_> = futures_util::future::join_all(burst)
            .await
            .into_iter()
            .filter_map(|r| r.expect("the database answers").ok())
            .collect();
        assert_eq!(held.len(), 3, "only three reserved at once");
        drop(held); // none was checked: all refunded (queued before the next)
        assert!(f.login(IP, "alice").await.is_ok());
    }

    #[tokio::test]
    async fn a_success_clears_the_pair_and_refunds_the_client() {
        let f = throttle(2, 4, 60);
        f.fail(IP, "alice").await;
        f.login(IP, "alice").await.unwrap().succeeded().await;
        f.fail(IP, "alice").await;
        assert!(f.login(IP, "alice").await.is_ok(), "cleared by the success");
        // The client's budget: 1 + 1 failures, the success refunded, the
        // attempt just dropped refunded too.
        f.fail(IP, "bob").await;
        f.fail(IP, "carol").await;
        assert!(matches!(
            f.login(IP, "dave").await.err(),
            Some(Refusal::Client { .. })
        ));
    }

    #[tokio::test]
    async fn one_client_has_a_budget_across_usernames() {
        let f = throttle(10, 5, 60);
        for i in 0..5 {
            f.fail(IP, &format!("user{i}")).await;
        }
        let refused = f.login(IP, "someone-new").await.err().unwrap();
        assert!(matches!(refused, Refusal::Client { .. }));
        assert!(f.login(OTHER_IP, "someone-new").await.is_ok());
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64() {
        let f = throttle(2, 100, 60);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        f.fail(a, "alice").await;
        f.fail(b, "alice").await;
        assert!(f.login(a, "alice").await.is_err());
        assert!(f.login(other, "alice").await.is_ok());
    }

    #[tokio::test]
    async fn registrations_are_limited_per_client_per_hour() {
        let f = throttle(10, 100, 60);
        f.register(IP).await.unwrap().done();
        f.register(IP).await.unwrap().done();
        let refused = f.register(IP).await.err().unwrap();
        assert!(matches!(refused, Refusal::Registrations { .. }));
        drop(f.register(OTHER_IP).await.unwrap()); // refunded
        f.register(OTHER_IP).await.unwrap().done();
        f.clock.advance(REGISTER_WINDOW);
        assert!(f.register(IP).await.is_ok());
    }

    #[tokio::test]
    async fn any_typed_username_makes_a_bounded_key() {
        let f = throttle(1, 100, 60);
        let odd = format!("nul\0{}", "x".repeat(10_000));
        f.fail(IP, &odd).await;
        assert!(f.login(IP, &odd).await.is_err(), "counted like any other");
        assert!(pair_key(IP, &odd).len() < 2 * 4 * 64 + 8 * 32 * 2);
    }

    #[tokio::test]
    async fn counters_whose_window_is_over_are_pruned() {
        let f = throttle(5, 100, 60);
        for i in 0..20 {
            f.fail(IP, &format!("user{i}")).await;
        }
        f.register(IP).await.unwrap().done();
        assert_eq!(
            f.counters().await,
            22,
            "20 pairs, the client, the registrations"
        );
        let longest = f.t.longest_window();
        let now = f.clock.now();
        let pruned =
            f.db.write(move |conn| prune(conn, now, longest))
                .await
                .unwrap();
        assert_eq!(pruned, 0, "every window is still open");
        f.clock.advance(REGISTER_WINDOW + 1);
        let now = f.clock.now();
        let pruned =
            f.db.write(move |conn| prune(conn, now, longest))
                .await
                .unwrap();
        assert_eq!(pruned, 22);
        assert!(f.login(IP, "user0").await.is_ok());
    }
}
