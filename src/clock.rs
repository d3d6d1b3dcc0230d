//! Time, injected. Everything that compares a timestamp (token expiry, the
//! refresh grace window, session expiry, pruning) asks a `Clock`, so tests
//! move time forward instead of sleeping. Imports nothing from the crate.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

/// Unix seconds, UTC.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// The real time plus an offset that tests move forward (never backward), so
/// a test can step past a token's lifetime without waiting for it.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
}

impl OffsetClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds.max(0), Ordering::SeqCst);
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.offset()
    }
}

/// Another clock plus a skew that can be re-measured while running: the
/// database server's clock, as seen from here (several instances of one
/// database then agree on the time, whatever their own clocks say).
pub struct SkewedClock {
    inner: SharedClock,
    skew: AtomicI64,
}

impl SkewedClock {
    pub fn new(inner: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            inner,
            skew: AtomicI64::new(0),
        })
    }

    pub fn skew(&self) -> i64 {
        self.skew.load(Ordering::Relaxed)
    }

    pub fn set_skew(&self, seconds: i64) {
        self.skew.store(seconds, Ordering::Relaxed);
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> i64 {
        self.inner.now() + self.skew()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_forward_only() {
        let clock = OffsetClock::new();
        let before = clock.now();
        clock.advance(3600);
        assert!(clock.now() >= before + 3600);
        clock.advance(-7200);
        assert!(clock.now() >= before + 3600);
    }

    #[test]
    fn a_skewed_clock_adds_its_skew_to_the_inner_clock() {
        let inner = OffsetClock::new();
        let skewed = SkewedClock::new(inner.clone());
        skewed.set_skew(-120);
        let now = inner.now();
        assert!((now - 121..=now - 119).contains(&skewed.now()));
        inner.advance(60);
        assert!((now - 61..=now - 59).contains(&skewed.now()));
    }
}
