//! Per-address token buckets for the unauthenticated endpoints (login, join, the trust
//! handshake): guessing passwords or tokens from one address gets a clear 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use shared::error::{Error, Result};

/// Which endpoint class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Password login.
    Login,
    /// Node join.
    Join,
    /// Trusted cluster validation.
    Validate,
    /// Password setting with a token.
    Password,
    /// Identity providers' answers (SSO callbacks, SAML's ACS).
    Sso,
    /// Second-factor codes checked for a signed-in user (device registration).
    Mfa,
}

impl Class {
    fn limits(self) -> (f64, f64) {
        // (burst, refill per second)
        match self {
            Class::Login => (30.0, 5.0),
            Class::Join => (30.0, 5.0),
            Class::Validate => (10.0, 1.0),
            Class::Password => (10.0, 1.0),
            Class::Sso => (30.0, 5.0),
            Class::Mfa => (10.0, 0.5),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limiter.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(Class, String), Bucket>>,
}

impl RateLimiter {
    /// Takes one token for `(class, key)` (an address, or a tunnel caller); `LimitExceeded`
    /// when none are left. A poisoned lock refuses (fails closed).
    pub fn check(&self, class: Class, key: &str) -> Result<()> {
        let (burst, rate) = class.limits();
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else {
            return Err(Error::limit_exceeded("too many requests; try again in a few seconds"));
        };
        if map.len() > 100_000 {
            map.retain(|_, b| now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry((class, key.to_string())).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(Error::limit_exceeded("too many requests from this address; wait a few seconds and try again"));
        }
        b.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses() {
        let l = RateLimiter::default();
        let ip = "127.0.0.9";
        for _ in 0..10 {
            assert!(l.check(Class::Validate, ip).is_ok());
        }
        let e = l.check(Class::Validate, ip).unwrap_err();
        assert_eq!(e.kind, shared::Kind::LimitExceeded);
        assert!(l.check(Class::Validate, "127.0.0.10").is_ok(), "other addresses are not affected");
        assert!(l.check(Class::Login, ip).is_ok(), "other classes are not affected");
    }
}
