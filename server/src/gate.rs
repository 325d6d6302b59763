//! Gates in front of expensive work that a caller without credentials can start: checking a
//! password (argon2id: ~19 MiB and tens of milliseconds of CPU each), an SSO exchange (a request
//! to the identity provider, a signature check).
//!
//! A gate lets at most `running` pieces of work run at once and at most `queued` more wait for a
//! place, each for at most `wait`; anything beyond that is refused at once with a 429 that says
//! the server is busy. So the memory and CPU such work can take are bounded by the gate, whatever
//! the number of callers and addresses, and a flood gets quick refusals instead of a growing
//! queue. Per-address rate limits (`api::ratelimit`) sit in front of every gate.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use shared::error::{Error, Result};
use tokio::sync::{Semaphore, SemaphorePermit};

/// One gate.
pub struct Gate {
    /// What it guards, for messages ("password checks").
    what: &'static str,
    slots: Semaphore,
    waiting: AtomicUsize,
    queued: usize,
    wait: Duration,
    refused: AtomicU64,
}

/// Holds a place in a gate; dropping it gives the place back.
pub struct Pass<'a>(#[allow(dead_code)] SemaphorePermit<'a>);

impl Gate {
    /// A gate for `what` with `running` places (at least one), a queue of `queued` and a
    /// longest wait of `wait`.
    pub fn new(what: &'static str, running: usize, queued: usize, wait: Duration) -> Gate {
        Gate { what, slots: Semaphore::new(running.max(1)), waiting: AtomicUsize::new(0), queued, wait, refused: AtomicU64::new(0) }
    }

    /// Places for work that should take at most about half of this machine's cores.
    pub fn half_the_cores() -> usize {
        std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1)
    }

    fn busy(&self) -> Error {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Error::limit_exceeded(format!("the server is busy with other {}; try again in a few seconds", self.what))
    }

    /// A place to run in: at once, after a bounded wait, or a "busy" refusal.
    pub async fn enter(&self) -> Result<Pass<'_>> {
        if let Ok(p) = self.slots.try_acquire() {
            return Ok(Pass(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queued {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self.busy());
        }
        let got = tokio::time::timeout(self.wait, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(Pass(p)),
            _ => Err(self.busy()),
        }
    }

    /// Callers refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn runs_a_few_queues_a_few_and_refuses_the_rest_at_once() {
        let gate = Arc::new(Gate::new("tests", 2, 3, Duration::from_secs(5)));
        let (a, b) = (gate.enter().await, gate.enter().await);
        assert!(a.is_ok() && b.is_ok());
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let g = gate.clone();
            waiters.push(tokio::spawn(async move { g.enter().await.map(|_| ()) }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = std::time::Instant::now();
        let e = gate.enter().await.err().map(|e| e.message).unwrap_or_default();
        assert!(t.elapsed() < Duration::from_millis(50), "refused at once");
        assert_eq!(e, "the server is busy with other tests; try again in a few seconds");
        drop((a, b));
        for w in waiters {
            assert!(w.await.is_ok_and(|r| r.is_ok()), "the queued ones run once places free up");
        }
        assert_eq!(gate.refused(), 1);
    }

    #[tokio::test]
    async fn a_wait_is_bounded() {
        let gate = Gate::new("tests", 1, 8, Duration::from_millis(50));
        let _held = gate.enter().await;
        assert!(gate.enter().await.is_err(), "refused after the longest wait");
    }
}
