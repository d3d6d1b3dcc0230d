//! Login throttling (reference §6): at most `LOGIN_MAX_FAILURES` failed
//! logins per (client IP, username) in a `LOGIN_FAILURE_WINDOW`; after that
//! every attempt on the pair is refused with 429 until the window passes, the
//! right password included. Usernames count without regard to case, and
//! unknown usernames count like known ones.
//!
//! The table is in memory and bounded: at `MAX_ENTRIES` it first drops
//! entries whose window has passed, then the oldest. An attacker cycling
//! through usernames can therefore not grow it without limit; to push a
//! victim's entry out they would have to pay for `MAX_ENTRIES` bcrypt
//! verifications within one window.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
}

pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<(IpAddr, String), Entry>>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window_seconds: i64) -> Self {
        Self::with_capacity(max_failures, window_seconds, MAX_ENTRIES)
    }

    pub fn with_capacity(max_failures: u32, window_seconds: i64, capacity: usize) -> Self {
        Self {
            max_failures,
            window: Duration::from_secs(window_seconds.max(1) as u64),
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(ip: IpAddr, username: &str) -> (IpAddr, String) {
        // Bounded so a 10 kB username cannot make a 10 kB key.
        (ip, crate::domain::echo(username).to_lowercase())
    }

    /// `Err(seconds)` when the pair is locked out: how long until it is not.
    pub fn check(&self, ip: IpAddr, username: &str) -> Result<(), u64> {
        self.check_at(ip, username, Instant::now())
    }

    pub fn check_at(&self, ip: IpAddr, username: &str, now: Instant) -> Result<(), u64> {
        let entries = self.entries();
        match entries.get(&Self::key(ip, username)) {
            Some(e) if e.failures >= self.max_failures => {
                let elapsed = now.saturating_duration_since(e.window_start);
                match self.window.checked_sub(elapsed) {
                    Some(left) if !left.is_zero() => Err(left.as_secs().max(1)),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: IpAddr, username: &str) {
        self.record_failure_at(ip, username, Instant::now());
    }

    pub fn record_failure_at(&self, ip: IpAddr, username: &str, now: Instant) {
        let mut entries = self.entries();
        let key = Self::key(ip, username);
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            self.make_room(&mut entries, now);
        }
        let window = self.window;
        let entry = entries.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
        });
        if now.saturating_duration_since(entry.window_start) >= window {
            *entry = Entry {
                window_start: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// A successful login clears the pair's count.
    pub fn record_success(&self, ip: IpAddr, username: &str) {
        self.entries().remove(&Self::key(ip, username));
    }

    fn make_room(&self, entries: &mut HashMap<(IpAddr, String), Entry>, now: Instant) {
        let window = self.window;
        entries.retain(|_, e| now.saturating_duration_since(e.window_start) < window);
        if entries.len() >= self.capacity {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.window_start)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
    }

    /// A panic elsewhere while holding the lock must not switch the throttle
    /// off: the table is still consistent (every update is one statement).
    fn entries(&self) -> MutexGuard<'_, HashMap<(IpAddr, String), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const OTHER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn locks_a_pair_after_the_allowed_failures_until_the_window_passes() {
        let t = LoginThrottle::new(3, 60);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check_at(IP, "alice", start).is_ok());
            t.record_failure_at(IP, "alice", start);
        }
        assert_eq!(t.check_at(IP, "alice", start), Err(60));
        assert_eq!(
            t.check_at(IP, "ALICE", start + Duration::from_secs(30)),
            Err(30)
        );
        assert!(
            t.check_at(IP, "alice", start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn other_usernames_and_other_ips_are_unaffected() {
        let t = LoginThrottle::new(1, 60);
        t.record_failure(IP, "alice");
        assert!(t.check(IP, "alice").is_err());
        assert!(t.check(IP, "bob").is_ok());
        assert!(t.check(OTHER_IP, "alice").is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let t = LoginThrottle::new(2, 60);
        t.record_failure(IP, "alice");
        t.record_success(IP, "Alice");
        t.record_failure(IP, "alice");
        assert!(t.check(IP, "alice").is_ok());
    }

    #[test]
    fn a_new_window_starts_the_count_again() {
        let t = LoginThrottle::new(2, 10);
        let start = Instant::now();
        t.record_failure_at(IP, "alice", start);
        t.record_failure_at(IP, "alice", start + Duration::from_secs(11));
        assert!(
            t.check_at(IP, "alice", start + Duration::from_secs(11))
                .is_ok()
        );
    }

    #[test]
    fn memory_stays_bounded_when_usernames_are_cycled() {
        let t = LoginThrottle::with_capacity(5, 60, 100);
        for i in 0..10_000 {
            t.record_failure(IP, &format!("user{i}"));
        }
        assert!(t.len() <= 100);
    }
}
