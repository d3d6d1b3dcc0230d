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
//! The tables are in memory and bounded: at `MAX_ENTRIES` a table first drops
//! entries whose window has passed, then the oldest. To push a victim's entry
//! out, an attacker would have to pay for that many hashes within a window,
//! from more addresses than the per-client budget allows one to use. A
//! poisoned lock is recovered, never skipped: the throttle fails closed.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Mutex, MutexGuard, PoisonError},
};

use crate::{clock::SharedClock, domain};

pub const MAX_ENTRIES: usize = 100_000;

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

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: i64,
    count: u32,
}

/// A bounded table of windowed counters.
struct Table<K> {
    window: i64,
    entries: HashMap<K, Counter>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(window: i64) -> Self {
        Self {
            window: window.max(1),
            entries: HashMap::new(),
        }
    }

    /// The live count for `key` (0 once its window has passed).
    fn count(&self, key: &K, now: i64) -> (u32, i64) {
        match self.entries.get(key) {
            Some(c) if now - c.window_start < self.window => {
                (c.count, c.window_start + self.window - now)
            }
            _ => (0, self.window),
        }
    }

    fn add(&mut self, key: K, now: i64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.make_room(now);
        }
        let window = self.window;
        let c = self.entries.entry(key).or_insert(Counter {
            window_start: now,
            count: 0,
        });
        if now - c.window_start >= window {
            *c = Counter {
                window_start: now,
                count: 0,
            };
        }
        c.count = c.count.saturating_add(1);
    }

    /// Gives back one unit (a reservation that was not used).
    fn refund(&mut self, key: &K) {
        if let Some(c) = self.entries.get_mut(key) {
            c.count = c.count.saturating_sub(1);
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn make_room(&mut self, now: i64) {
        let window = self.window;
        self.entries.retain(|_, c| now - c.window_start < window);
        if self.entries.len() >= MAX_ENTRIES {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, c)| c.window_start)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
    }
}

fn retry(left: i64) -> u64 {
    left.max(1) as u64
}

struct State {
    pairs: Table<(IpAddr, String)>,
    clients: Table<IpAddr>,
    registrations: Table<IpAddr>,
}

pub struct Throttle {
    limits: Limits,
    clock: SharedClock,
    state: Mutex<State>,
}

impl Throttle {
    pub fn new(limits: Limits, clock: SharedClock) -> Self {
        Self {
            state: Mutex::new(State {
                pairs: Table::new(limits.failure_window),
                clients: Table::new(limits.failure_window),
                registrations: Table::new(REGISTER_WINDOW),
            }),
            limits,
            clock,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves one login attempt (or a current-password check) for
    /// `username` from `ip`, or says why not and for how long.
    pub fn reserve_login(&self, ip: IpAddr, username: &str) -> Result<LoginAttempt<'_>, Refusal> {
        let client = domain::client_key(ip);
        let pair = (client, domain::echo(username).to_lowercase());
        let now = self.clock.now();
        let mut state = self.state();
        let (failures, left) = state.pairs.count(&pair, now);
        if failures >= self.limits.max_failures {
            return Err(Refusal::Pair {
                retry_after: retry(left),
            });
        }
        let (failures, left) = state.clients.count(&client, now);
        if failures >= self.limits.max_failures_per_ip {
            return Err(Refusal::Client {
                retry_after: retry(left),
            });
        }
        state.pairs.add(pair.clone(), now);
        state.clients.add(client, now);
        Ok(LoginAttempt {
            throttle: self,
            pair,
            settled: false,
        })
    }

    /// Reserves one registration from `ip`.
    pub fn reserve_registration(&self, ip: IpAddr) -> Result<Registration<'_>, Refusal> {
        let client = domain::client_key(ip);
        let now = self.clock.now();
        let mut state = self.state();
        let (count, left) = state.registrations.count(&client, now);
        if count >= self.limits.max_registrations {
            return Err(Refusal::Registrations {
                retry_after: retry(left),
            });
        }
        state.registrations.add(client, now);
        Ok(Registration {
            throttle: self,
            client,
            settled: false,
        })
    }

    /// How many (client, username) pairs are tracked (for tests and metrics).
    pub fn tracked_pairs(&self) -> usize {
        self.state().pairs.entries.len()
    }
}

/// A reserved login attempt. Say how it went; dropping it unsettled means
/// the password was never checked, and refunds it.
pub struct LoginAttempt<'a> {
    throttle: &'a Throttle,
    pair: (IpAddr, String),
    settled: bool,
}

impl LoginAttempt<'_> {
    /// A wrong password: the reservation stays counted.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The right password: the pair's count is cleared and this attempt
    /// refunded from the client's budget.
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut state = self.throttle.state();
        state.pairs.clear(&self.pair);
        state.clients.refund(&self.pair.0);
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let mut state = self.throttle.state();
            state.pairs.refund(&self.pair);
            state.clients.refund(&self.pair.0);
        }
    }
}

/// A reserved registration. `done` once its hash ran (whatever the
/// outcome: a taken name costs the same); dropped unsettled, it is refunded.
pub struct Registration<'a> {
    throttle: &'a Throttle,
    client: IpAddr,
    settled: bool,
}

impl Registration<'_> {
    pub fn done(mut self) {
        self.settled = true;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.state().registrations.refund(&self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::OffsetClock;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const OTHER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn throttle(max: u32, per_ip: u32, window: i64) -> (Throttle, Arc<OffsetClock>) {
        let clock = OffsetClock::new();
        let limits = Limits {
            max_failures: max,
            max_failures_per_ip: per_ip,
            failure_window: window,
            max_registrations: 2,
        };
        (Throttle::new(limits, clock.clone()), clock)
    }

    fn fail(t: &Throttle, ip: IpAddr, name: &str) {
        t.reserve_login(ip, name).expect("allowed").failed();
    }

    #[test]
    fn locks_a_pair_after_the_allowed_failures_until_the_window_passes() {
        let (t, clock) = throttle(3, 100, 60);
        for _ in 0..3 {
            fail(&t, IP, "alice");
        }
        let refused = t.reserve_login(IP, "ALICE").err().expect("locked");
        assert!(matches!(refused, Refusal::Pair { .. }));
        assert!((59..=60).contains(&refused.retry_after()));
        clock.advance(30);
        assert!(t.reserve_login(IP, "alice").err().unwrap().retry_after() <= 30);
        clock.advance(31);
        assert!(t.reserve_login(IP, "alice").is_ok());
    }

    #[test]
    fn attempts_in_flight_count_so_a_burst_checks_at_most_the_limit() {
        let (t, _) = throttle(3, 100, 60);
        let held: Vec<_> = (0..10)
            .filter_map(|_| t.reserve_login(IP, "alice").ok())
            .collect();
        assert_eq!(held.len(), 3, "only three reserved at once");
        drop(held); // none was checked: all refunded
        assert!(t.reserve_login(IP, "alice").is_ok());
    }

    #[test]
    fn a_success_clears_the_pair_and_refunds_the_client() {
        let (t, _) = throttle(2, 4, 60);
        fail(&t, IP, "alice");
        t.reserve_login(IP, "alice").unwrap().succeeded();
        fail(&t, IP, "alice");
        assert!(
            t.reserve_login(IP, "alice").is_ok(),
            "cleared by the success"
        );
        // The client's budget: 1 + 1 failures, the success refunded, one held now.
        fail(&t, IP, "bob");
        fail(&t, IP, "carol");
        assert!(matches!(
            t.reserve_login(IP, "dave").err(),
            Some(Refusal::Client { .. })
        ));
    }

    #[test]
    fn one_client_has_a_budget_across_usernames() {
        let (t, _) = throttle(10, 5, 60);
        for i in 0..5 {
            fail(&t, IP, &format!("user{i}"));
        }
        let refused = t.reserve_login(IP, "someone-new").err().unwrap();
        assert!(matches!(refused, Refusal::Client { .. }));
        assert!(t.reserve_login(OTHER_IP, "someone-new").is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let (t, _) = throttle(2, 100, 60);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        fail(&t, a, "alice");
        fail(&t, b, "alice");
        assert!(t.reserve_login(a, "alice").is_err());
        assert!(t.reserve_login(other, "alice").is_ok());
    }

    #[test]
    fn registrations_are_limited_per_client_per_hour() {
        let (t, clock) = throttle(10, 100, 60);
        t.reserve_registration(IP).unwrap().done();
        t.reserve_registration(IP).unwrap().done();
        let refused = t.reserve_registration(IP).err().unwrap();
        assert!(matches!(refused, Refusal::Registrations { .. }));
        drop(t.reserve_registration(OTHER_IP).unwrap()); // refunded
        t.reserve_registration(OTHER_IP).unwrap().done();
        clock.advance(REGISTER_WINDOW);
        assert!(t.reserve_registration(IP).is_ok());
    }

    #[test]
    fn a_poisoned_lock_keeps_the_throttle_on() {
        let (t, _) = throttle(1, 100, 60);
        fail(&t, IP, "alice");
        let t = Arc::new(t);
        let poisoner = t.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.state.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(t.state.is_poisoned());
        assert!(t.reserve_login(IP, "alice").is_err(), "still locked");
    }

    #[test]
    fn memory_stays_bounded_when_usernames_are_cycled() {
        let (t, clock) = throttle(5, u32::MAX, 60);
        for i in 0..(MAX_ENTRIES + 10) {
            fail(&t, IP, &format!("user{i}"));
        }
        assert!(t.tracked_pairs() <= MAX_ENTRIES);
        clock.advance(61);
        assert!(t.reserve_login(IP, "user0").is_ok());
    }
}
