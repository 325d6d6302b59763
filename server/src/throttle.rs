//! Log lines a caller can cause at will (a refused channel, a browser's CSP report, a bad vouch)
//! are written at most once per interval, with the number left out since the last one, so that
//! nobody can fill the log or spend the process's time writing it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One kind of log line, throttled.
pub struct Throttle {
    every: Duration,
    last: Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl Throttle {
    /// At most one line every `every`.
    pub const fn new(every: Duration) -> Throttle {
        Throttle { every, last: Mutex::new(None), skipped: AtomicU64::new(0) }
    }

    /// `Some(lines left out since the last one)` when a line may be written now.
    pub fn allow(&self) -> Option<u64> {
        let Ok(mut last) = self.last.lock() else { return None };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.skipped.swap(0, Ordering::Relaxed))
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let t = Throttle::new(Duration::from_millis(50));
        assert_eq!(t.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(t.allow(), None);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.allow(), Some(1000), "the next line says how many were left out");
    }
}
