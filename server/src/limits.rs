//! Connection limits: what keeps one host from exhausting a process's file descriptors and
//! memory before it has proved who it is.
//!
//! Every accepted TCP connection (web port, tunnel port, node port) takes a [`Permit`] first:
//! - beyond `max_connections` in all (Teleport's `connection_limits.max_connections`, 15,000 by
//!   default, lowered to what the file descriptor limit allows) a connection is refused at once,
//!   with a log line, so descriptors never run out;
//! - until it has authenticated (SSH) or finished its TLS handshake, a connection is
//!   *unauthenticated*: at most `max_startups` of those in all and `per_source_max_startups` from
//!   one address (OpenSSH's `MaxStartups` and `PerSourceMaxStartups`); beyond that it is refused;
//! - an unauthenticated connection gets `login_grace_time` (OpenSSH's `LoginGraceTime`) to send
//!   its banner, do the key exchange and authenticate; then it is cut.
//!
//! Connections that arrive over a reverse tunnel have no address and no descriptor of their
//! own; they take a permit keyed by the caller the tunnel names, counted the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default `max_connections` (Teleport's `LimiterMaxConnections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 15_000;
/// Default cap on unauthenticated connections in all.
pub const DEFAULT_MAX_STARTUPS: usize = 4_096;
/// Default cap on unauthenticated connections from one address.
pub const DEFAULT_PER_SOURCE_MAX_STARTUPS: usize = 512;
/// Default time to authenticate.
pub const DEFAULT_LOGIN_GRACE_TIME: Duration = Duration::from_secs(30);
/// Default cap on channels one SSH connection may have open (sessions, subsystems, forwards).
pub const DEFAULT_MAX_CHANNELS: usize = 64;
/// Unauthenticated connections a source may hold and still be admitted once `max_startups`
/// is reached.
const FAIR_SHARE: usize = 4;
/// Descriptors kept back for listeners, storage, logs and outgoing connections.
const FD_RESERVE: u64 = 256;

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Unauthenticated connections, in all.
    pub max_startups: usize,
    /// Unauthenticated connections from one source.
    pub per_source_max_startups: usize,
    /// Time from accept to authentication.
    pub login_grace_time: Duration,
    /// Channels per SSH connection (every kind).
    pub max_channels: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_startups: DEFAULT_MAX_STARTUPS,
            per_source_max_startups: DEFAULT_PER_SOURCE_MAX_STARTUPS,
            login_grace_time: DEFAULT_LOGIN_GRACE_TIME,
            max_channels: DEFAULT_MAX_CHANNELS,
        }
    }
}

/// Raises the soft file descriptor limit to the hard one (as Go programs, Teleport among them,
/// do at start) and returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                return hard;
            }
            soft
        }
        Err(_) => 1024,
    }
}

/// Where a connection comes from, for the per-source cap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A TCP peer.
    Addr(std::net::IpAddr),
    /// A caller named by a reverse tunnel (`user@cluster`).
    Tunnel(String),
    /// Unknown (in-process streams); not counted per source.
    Unknown,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` reached.
    MaxConnections,
    /// `max_startups` reached.
    MaxStartups,
    /// `per_source_max_startups` reached for this source.
    PerSource,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxStartups => "max_startups",
            Refusal::PerSource => "per_source_max_startups",
        }
    }
}

/// Counts connections against [`ConnLimits`].
pub struct Limiter {
    limits: ConnLimits,
    open: AtomicUsize,
    unauthenticated: AtomicUsize,
    per_source: Mutex<HashMap<Source, usize>>,
    refused: [AtomicU64; 3],
    timed_out: AtomicU64,
    admitted: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter; `max_connections` is lowered to what `fd_limit` descriptors allow.
    pub fn new(mut limits: ConnLimits, fd_limit: u64) -> Arc<Limiter> {
        let allowed = usize::try_from(fd_limit.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX);
        if limits.max_connections > allowed {
            tracing::warn!(
                max_connections = limits.max_connections,
                fd_limit,
                "the file descriptor limit allows at most {allowed} connections; using that as max_connections \
                 (raise LimitNOFILE / ulimit -n to allow more)"
            );
            limits.max_connections = allowed;
        }
        Arc::new(Limiter {
            limits,
            open: AtomicUsize::new(0),
            unauthenticated: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            refused: Default::default(),
            timed_out: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// Admits a new connection from `source`, or refuses it (and logs why, at most every few
    /// seconds so that a flood cannot flood the log too). A connection from a TCP peer counts
    /// as unauthenticated until it is marked; one a tunnel brings for a root's user counts
    /// against that user's per-source cap for as long as it lives (the leaf cannot see when the
    /// node authenticates it).
    pub fn admit(self: &Arc<Self>, source: Source) -> Result<Permit, Refusal> {
        let unauth = !matches!(source, Source::Tunnel(_));
        let refused = self.try_admit(&source, unauth);
        if let Err(r) = refused {
            self.refused[r as usize].fetch_add(1, Ordering::Relaxed);
            self.warn_refused(r, &source);
        }
        refused.map(|()| Permit {
            limiter: self.clone(),
            source,
            authenticated: Arc::new(AtomicBool::new(false)),
            counted_unauthenticated: Arc::new(AtomicBool::new(unauth)),
            counted_source: Arc::new(AtomicBool::new(true)),
        })
    }

    fn try_admit(&self, source: &Source, unauth: bool) -> Result<(), Refusal> {
        let Ok(mut per) = self.per_source.lock() else {
            return Err(Refusal::MaxConnections);
        };
        if self.open.load(Ordering::SeqCst) >= self.limits.max_connections {
            return Err(Refusal::MaxConnections);
        }
        let held = per.get(source).copied().unwrap_or(0);
        if unauth {
            // Beyond max_startups only sources holding at most FAIR_SHARE unauthenticated
            // connections are still admitted, so a flood from many addresses does not lock out
            // a user who holds none; twice max_startups is the hard ceiling.
            let n = self.unauthenticated.load(Ordering::SeqCst);
            if n >= self.limits.max_startups.saturating_mul(2) || (n >= self.limits.max_startups && held >= FAIR_SHARE) {
                return Err(Refusal::MaxStartups);
            }
        }
        if *source != Source::Unknown {
            if held >= self.limits.per_source_max_startups {
                return Err(Refusal::PerSource);
            }
            *per.entry(source.clone()).or_insert(0) += 1;
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        if unauth {
            self.unauthenticated.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Connections admitted since the process started.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    fn warn_refused(&self, r: Refusal, source: &Source) {
        let Ok(mut last) = self.last_warning.lock() else { return };
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return;
        }
        *last = Some(Instant::now());
        let (open, unauth) = (self.open.load(Ordering::SeqCst), self.unauthenticated.load(Ordering::SeqCst));
        let limit = match r {
            Refusal::MaxConnections => self.limits.max_connections,
            Refusal::MaxStartups => self.limits.max_startups,
            Refusal::PerSource => self.limits.per_source_max_startups,
        };
        tracing::warn!(
            ?source,
            open,
            unauthenticated = unauth,
            "refusing new connections: {} ({limit}) reached; raise teleport.connection_limits.{} if this load is expected \
             (refusals are counted in teleport_connections_refused_total)",
            r.label(),
            r.label()
        );
    }

    fn leave_source(&self, source: &Source) {
        if *source != Source::Unknown
            && let Ok(mut per) = self.per_source.lock()
            && let Some(n) = per.get_mut(source)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(source);
            }
        }
    }

    /// (open, unauthenticated) connections now.
    pub fn counts(&self) -> (usize, usize) {
        (self.open.load(Ordering::SeqCst), self.unauthenticated.load(Ordering::SeqCst))
    }

    /// Refusals so far, by reason, and connections cut by `login_grace_time`.
    pub fn refusals(&self) -> [(&'static str, u64); 4] {
        [
            (Refusal::MaxConnections.label(), self.refused[0].load(Ordering::Relaxed)),
            (Refusal::MaxStartups.label(), self.refused[1].load(Ordering::Relaxed)),
            (Refusal::PerSource.label(), self.refused[2].load(Ordering::Relaxed)),
            ("login_grace_time", self.timed_out.load(Ordering::Relaxed)),
        ]
    }
}

/// One admitted connection. Dropping it gives its place back.
pub struct Permit {
    limiter: Arc<Limiter>,
    source: Source,
    authenticated: Arc<AtomicBool>,
    counted_unauthenticated: Arc<AtomicBool>,
    counted_source: Arc<AtomicBool>,
}

/// A cheap handle for marking a connection authenticated from inside its handler.
#[derive(Clone)]
pub struct AuthMark {
    limiter: Arc<Limiter>,
    source: Source,
    authenticated: Arc<AtomicBool>,
    counted_unauthenticated: Arc<AtomicBool>,
    counted_source: Arc<AtomicBool>,
}

impl Limiter {
    fn release(&self, source: &Source, unauth: &AtomicBool, in_source: &AtomicBool) {
        if unauth.swap(false, Ordering::SeqCst) {
            self.unauthenticated.fetch_sub(1, Ordering::SeqCst);
        }
        if in_source.swap(false, Ordering::SeqCst) {
            self.leave_source(source);
        }
    }
}

impl AuthMark {
    /// The connection authenticated: it no longer counts as unauthenticated and is not cut by
    /// `login_grace_time`.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::SeqCst);
        self.limiter.release(&self.source, &self.counted_unauthenticated, &self.counted_source);
    }
}

impl Permit {
    /// A handle to mark authentication with.
    pub fn mark(&self) -> AuthMark {
        AuthMark {
            limiter: self.limiter.clone(),
            source: self.source.clone(),
            authenticated: self.authenticated.clone(),
            counted_unauthenticated: self.counted_unauthenticated.clone(),
            counted_source: self.counted_source.clone(),
        }
    }

    /// Resolves when `login_grace_time` has passed without authentication (never, once
    /// authenticated).
    pub async fn grace_expired(&self) {
        tokio::time::sleep(self.limiter.limits.login_grace_time).await;
        if self.authenticated.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.limiter.timed_out.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(source = ?self.source, "connection did not authenticate within login_grace_time; closing it");
    }

    /// The limiter this permit counts in.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release(&self.source, &self.counted_unauthenticated, &self.counted_source);
        self.limiter.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `serve` until it ends, or cuts it (by dropping it) when `permit`'s grace time runs out
/// before authentication. Returns true when it was cut.
pub async fn with_grace<F: std::future::Future<Output = ()>>(permit: &Permit, serve: F) -> bool {
    tokio::select! {
        _ = serve => false,
        _ = permit.grace_expired() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize, startups: usize, per: usize) -> Arc<Limiter> {
        Limiter::new(
            ConnLimits {
                max_connections: max,
                max_startups: startups,
                per_source_max_startups: per,
                login_grace_time: Duration::from_millis(50),
                max_channels: 4,
            },
            1 << 20,
        )
    }

    fn ip(s: &str) -> Source {
        Source::Addr(s.parse().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])))
    }

    #[test]
    fn per_source_cap_leaves_other_sources_alone() {
        let l = limiter(100, 100, 2);
        let a1 = l.admit(ip("127.0.0.5")).ok();
        let a2 = l.admit(ip("127.0.0.5")).ok();
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(l.admit(ip("127.0.0.5")).err(), Some(Refusal::PerSource));
        assert!(l.admit(ip("127.0.0.6")).is_ok(), "another source is admitted");
        // Authenticating frees the unauthenticated place, not the connection.
        if let Some(p) = &a1 {
            p.mark().authenticated();
        }
        let a3 = l.admit(ip("127.0.0.5"));
        assert!(a3.is_ok());
        assert_eq!(l.counts(), (3, 2));
        drop(a3);
        drop(a1);
        drop(a2);
        assert_eq!(l.counts(), (0, 0));
        assert!(l.per_source.lock().map(|m| m.is_empty()).unwrap_or(false), "per-source memory is given back");
    }

    #[test]
    fn beyond_max_startups_only_quiet_sources_get_in() {
        let l = limiter(1000, 8, 100);
        let flood: Vec<Permit> = (0..8).filter_map(|_| l.admit(ip("10.9.9.9")).ok()).collect();
        assert_eq!(flood.len(), 8);
        assert_eq!(l.admit(ip("10.9.9.9")).err(), Some(Refusal::MaxStartups), "the flooding source is refused");
        let quiet = l.admit(ip("10.1.1.1"));
        assert!(quiet.is_ok(), "a source holding nothing still gets in");
        let more: Vec<Permit> = (0..20).filter_map(|i| l.admit(ip(&format!("10.2.0.{i}"))).ok()).collect();
        assert_eq!(more.len(), 7, "twice max_startups is the ceiling");
        assert_eq!(l.refusals()[1].1, 14);
    }

    #[test]
    fn total_caps_refuse_and_count() {
        let l = limiter(3, 1, 10);
        let a = l.admit(ip("10.0.0.1"));
        let b = l.admit(ip("10.0.0.2"));
        assert_eq!(l.admit(ip("10.0.0.3")).err(), Some(Refusal::MaxStartups));
        if let (Ok(a), Ok(b)) = (&a, &b) {
            a.mark().authenticated();
            b.mark().authenticated();
        }
        let c = l.admit(ip("10.0.0.3"));
        assert!(c.is_ok());
        assert_eq!(l.admit(ip("10.0.0.4")).err(), Some(Refusal::MaxConnections));
        assert_eq!(l.refusals()[0].1, 1);
        assert_eq!(l.refusals()[1].1, 1);
        drop((a, b, c));
        assert_eq!(l.counts(), (0, 0));
    }

    #[test]
    fn tunnel_callers_count_per_user_not_as_unauthenticated() {
        let l = limiter(100, 1, 2);
        let a = l.admit(Source::Tunnel("alice@root".into()));
        let b = l.admit(Source::Tunnel("alice@root".into()));
        assert!(a.is_ok() && b.is_ok(), "max_startups does not apply to tunnel callers");
        assert_eq!(l.admit(Source::Tunnel("alice@root".into())).err(), Some(Refusal::PerSource));
        assert!(l.admit(Source::Tunnel("bob@root".into())).is_ok());
        assert_eq!(l.counts().1, 0);
    }

    #[test]
    fn the_fd_limit_lowers_max_connections() {
        let l = Limiter::new(ConnLimits::default(), 1024);
        assert_eq!(l.limits().max_connections, 1024 - 256);
    }

    #[tokio::test]
    async fn grace_time_cuts_only_unauthenticated_connections() {
        let l = limiter(10, 10, 10);
        let Ok(p) = l.admit(ip("10.0.0.1")) else { panic!("admitted") };
        assert!(with_grace(&p, std::future::pending()).await, "cut after the grace time");
        let Ok(p) = l.admit(ip("10.0.0.1")) else { panic!("admitted") };
        p.mark().authenticated();
        let done = with_grace(&p, tokio::time::sleep(Duration::from_millis(150))).await;
        assert!(!done, "an authenticated connection runs on");
        assert_eq!(l.refusals()[3].1, 1);
    }
}
