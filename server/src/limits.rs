//! Connection limits: what keeps one host from exhausting a process's file descriptors and
//! memory before it has proved who it is, and from holding more than its share after.
//!
//! Every accepted TCP connection (web port, tunnel port, node port, peer port) takes a
//! [`Permit`] first, and counts against its source (its address, or the user a proxy vouches
//! for) for its whole life. A connection is in one of three phases:
//!
//! ```text
//!   admit ──▶ Handshake ──authenticated()──▶ Authenticated   (SSH user/host auth, a verified
//!               │                                              client certificate)
//!               └──anonymous()──▶ Anonymous ──authenticated()─┘ (TLS done without a certificate:
//!                                                                 pages, /webapi/ping, sign-in)
//! ```
//! - **all connections:** at most `max_connections` in all (Teleport's
//!   `connection_limits.max_connections`; by default what the descriptor limit allows, which is
//!   the resource it guards: Teleport's fixed 15,000 made a root of 50,000 leaves need a setting
//!   its scaling guide has to teach) and `per_source_max_connections` from one source, whatever
//!   their phase. Unauthenticated connections stay bounded by the startup caps below;
//! - **handshakes:** at most `max_startups` in all and `per_source_max_startups` from one source
//!   (OpenSSH's `MaxStartups` and `PerSourceMaxStartups`); each gets `login_grace_time`
//!   (OpenSSH's `LoginGraceTime`) to authenticate or to finish its TLS handshake, then it is cut;
//! - **anonymous** connections (HTTPS without a client certificate, which may live as long as
//!   their client keeps them busy) have the same two caps, counted apart, so a flood of them
//!   cannot shut out the handshakes of users, nodes and tunnels, nor the anonymous requests of
//!   other sources;
//! - beyond `max_startups` (of either kind), only sources holding at most a few of that kind are
//!   still admitted, up to twice the cap: a flood from one or a few addresses does not lock out
//!   a user who holds none.
//!
//! `max_startups` is lowered to a quarter of `max_connections` and `per_source_max_startups` to
//! `max_startups`, so the handshake and anonymous ceilings together never exceed what the
//! descriptor limit allows.
//!
//! Connections that arrive over a reverse tunnel, or from a proxy that vouches for the user they
//! carry, are keyed by that user ([`Source::Caller`]), so one user's stalled connections count
//! against that user alone, never against everyone who comes through the same proxy. They are
//! bounded per user and by `max_connections`, not by the global startup caps: an authenticated
//! proxy already admitted them, and a leaf cannot see when its node authenticates one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default `max_connections`: no cap of its own, so [`ConnLimits::effective`] makes it what the
/// descriptor limit allows.
pub const DEFAULT_MAX_CONNECTIONS: usize = usize::MAX;
/// Below this many connections allowed by the descriptor limit, a process with the default
/// `max_connections` warns (Teleport's `LimiterMaxConnections`, the figure its users expect).
const WARN_BELOW: usize = 15_000;
/// Default cap on handshakes (and, apart, on anonymous connections) in all.
pub const DEFAULT_MAX_STARTUPS: usize = 3_750;
/// Default cap on handshakes (and, apart, on anonymous connections) from one source.
pub const DEFAULT_PER_SOURCE_MAX_STARTUPS: usize = 512;
/// Default cap on connections of every phase from one source.
pub const DEFAULT_PER_SOURCE_MAX_CONNECTIONS: usize = 2_048;
/// Default time to authenticate.
pub const DEFAULT_LOGIN_GRACE_TIME: Duration = Duration::from_secs(30);
/// Default cap on channels one SSH connection may have open (sessions, subsystems, forwards).
pub const DEFAULT_MAX_CHANNELS: usize = 64;
/// Connections of one kind a source may hold and still be admitted once `max_startups` is
/// reached.
const FAIR_SHARE: usize = 4;
/// Descriptors kept back for listeners, storage, logs and outgoing connections.
const FD_RESERVE: u64 = 256;

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Handshakes in all; anonymous connections in all (each).
    pub max_startups: usize,
    /// Handshakes from one source; anonymous connections from one source (each).
    pub per_source_max_startups: usize,
    /// Connections of every phase from one source.
    pub per_source_max_connections: usize,
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
            per_source_max_connections: DEFAULT_PER_SOURCE_MAX_CONNECTIONS,
            login_grace_time: DEFAULT_LOGIN_GRACE_TIME,
            max_channels: DEFAULT_MAX_CHANNELS,
        }
    }
}

impl ConnLimits {
    /// The limits in force under `fd_limit` descriptors: `max_connections` lowered to what they
    /// allow, the startup caps to a quarter of that, the per-source caps below the totals.
    pub fn effective(mut self, fd_limit: u64) -> ConnLimits {
        let allowed = usize::try_from(fd_limit.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX);
        self.max_connections = self.max_connections.min(allowed);
        self.max_startups = self.max_startups.min(self.max_connections / 4).max(1);
        self.per_source_max_startups = self.per_source_max_startups.min(self.max_startups);
        self.per_source_max_connections = self.per_source_max_connections.min(self.max_connections);
        self
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

/// Where a connection comes from, for the per-source caps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A TCP peer.
    Addr(std::net::IpAddr),
    /// A user a reverse tunnel or a vouching proxy names (`user@cluster`).
    Caller(String),
    /// Unknown (in-process streams); not counted per source.
    Unknown,
}

impl Source {
    /// Whether the global startup caps count this source (everything but vouched callers).
    fn global(&self) -> bool {
        !matches!(self, Source::Caller(_))
    }
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
    /// `per_source_max_connections` reached for this source.
    PerSourceConnections,
    /// The anonymous connections' share (`max_startups`, `per_source_max_startups`) is taken.
    Anonymous,
}

const REFUSALS: [Refusal; 5] =
    [Refusal::MaxConnections, Refusal::MaxStartups, Refusal::PerSource, Refusal::PerSourceConnections, Refusal::Anonymous];

impl Refusal {
    /// The setting that refused, as metrics and log lines name it.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxStartups => "max_startups",
            Refusal::PerSource => "per_source_max_startups",
            Refusal::PerSourceConnections => "per_source_max_connections",
            Refusal::Anonymous => "anonymous",
        }
    }
}

/// A connection's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Handshake = 0,
    Anonymous = 1,
    Authenticated = 2,
}

impl Phase {
    fn of(v: u8) -> Phase {
        match v {
            0 => Phase::Handshake,
            1 => Phase::Anonymous,
            _ => Phase::Authenticated,
        }
    }
}

/// What one source holds.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    all: usize,
    handshakes: usize,
    anonymous: usize,
}

/// Counts connections against [`ConnLimits`].
pub struct Limiter {
    limits: ConnLimits,
    open: AtomicUsize,
    handshakes: AtomicUsize,
    anonymous: AtomicUsize,
    per_source: Mutex<HashMap<Source, Held>>,
    refused: [AtomicU64; REFUSALS.len()],
    timed_out: AtomicU64,
    admitted: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter with `limits` made [`ConnLimits::effective`] for `fd_limit` descriptors.
    pub fn new(limits: ConnLimits, fd_limit: u64) -> Arc<Limiter> {
        let effective = limits.effective(fd_limit);
        let lowered = if limits.max_connections == DEFAULT_MAX_CONNECTIONS {
            effective.max_connections < WARN_BELOW
        } else {
            effective.max_connections < limits.max_connections
        };
        if lowered {
            tracing::warn!(
                max_connections = (limits.max_connections != DEFAULT_MAX_CONNECTIONS).then_some(limits.max_connections),
                fd_limit,
                max_startups = effective.max_startups,
                "the file descriptor limit allows at most {} connections; using that as max_connections \
                 (raise LimitNOFILE / ulimit -n to allow more)",
                effective.max_connections
            );
        }
        Arc::new(Limiter {
            limits: effective,
            open: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            anonymous: AtomicUsize::new(0),
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

    /// Admits a new connection from `source` in its handshake, or refuses it (and logs why, at
    /// most every few seconds so that a flood cannot flood the log too).
    pub fn admit(self: &Arc<Self>, source: Source) -> Result<Permit, Refusal> {
        let refused = self.try_admit(&source);
        if let Err(r) = refused {
            self.refuse(r, &source);
        }
        refused
            .map(|()| Permit { mark: AuthMark { limiter: self.clone(), source, phase: Arc::new(AtomicU8::new(Phase::Handshake as u8)) } })
    }

    fn refuse(&self, r: Refusal, source: &Source) {
        if let Some(i) = REFUSALS.iter().position(|x| *x == r) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
        self.warn_refused(r, source);
    }

    /// The startup rule shared by handshakes and anonymous connections: `n` of that kind are
    /// open in all, `held` by this source.
    fn startup_room(&self, n: usize, held: usize) -> bool {
        let max = self.limits.max_startups;
        n < max.saturating_mul(2) && (n < max || held <= FAIR_SHARE) && held < self.limits.per_source_max_startups
    }

    fn try_admit(&self, source: &Source) -> Result<(), Refusal> {
        let Ok(mut per) = self.per_source.lock() else {
            return Err(Refusal::MaxConnections);
        };
        if self.open.load(Ordering::SeqCst) >= self.limits.max_connections {
            return Err(Refusal::MaxConnections);
        }
        let held = per.get(source).copied().unwrap_or_default();
        let counted = *source != Source::Unknown;
        if counted && held.all >= self.limits.per_source_max_connections {
            return Err(Refusal::PerSourceConnections);
        }
        let n = if source.global() { self.handshakes.load(Ordering::SeqCst) } else { 0 };
        if !self.startup_room(n, if counted { held.handshakes } else { 0 }) {
            return Err(if counted && held.handshakes >= self.limits.per_source_max_startups {
                Refusal::PerSource
            } else {
                Refusal::MaxStartups
            });
        }
        if counted {
            let h = per.entry(source.clone()).or_default();
            h.all += 1;
            h.handshakes += 1;
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        if source.global() {
            self.handshakes.fetch_add(1, Ordering::SeqCst);
        }
        self.admitted.fetch_add(1, Ordering::Relaxed);
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
        let (open, handshakes, anonymous) = self.phases();
        let (limit, setting) = match r {
            Refusal::MaxConnections => (self.limits.max_connections, "max_connections"),
            Refusal::MaxStartups => (self.limits.max_startups, "max_startups"),
            Refusal::PerSource => (self.limits.per_source_max_startups, "per_source_max_startups"),
            Refusal::PerSourceConnections => (self.limits.per_source_max_connections, "per_source_max_connections"),
            Refusal::Anonymous => (self.limits.max_startups, "max_startups"),
        };
        tracing::warn!(
            ?source,
            open,
            handshakes,
            anonymous,
            "refusing new connections: {} ({limit}) reached; raise teleport.connection_limits.{setting} if this load is expected \
             (refusals are counted in teleport_connections_refused_total)",
            r.label(),
        );
    }

    /// Moves one connection of `source` from phase `from` to `to` in the counts.
    fn leave(&self, source: &Source, from: Phase, closing: bool) {
        if source.global() {
            match from {
                Phase::Handshake => {
                    self.handshakes.fetch_sub(1, Ordering::SeqCst);
                }
                Phase::Anonymous => {
                    self.anonymous.fetch_sub(1, Ordering::SeqCst);
                }
                Phase::Authenticated => {}
            }
        }
        if *source == Source::Unknown {
            return;
        }
        let Ok(mut per) = self.per_source.lock() else { return };
        if let Some(h) = per.get_mut(source) {
            match from {
                Phase::Handshake => h.handshakes = h.handshakes.saturating_sub(1),
                Phase::Anonymous => h.anonymous = h.anonymous.saturating_sub(1),
                Phase::Authenticated => {}
            }
            if closing {
                h.all = h.all.saturating_sub(1);
            }
            if h.all == 0 {
                per.remove(source);
            }
        }
    }

    /// Takes a place among the anonymous connections for `source`, if there is one.
    fn enter_anonymous(&self, source: &Source) -> Result<(), Refusal> {
        let Ok(mut per) = self.per_source.lock() else { return Err(Refusal::Anonymous) };
        let counted = *source != Source::Unknown;
        let held = if counted { per.get(source).map(|h| h.anonymous).unwrap_or(0) } else { 0 };
        let n = if source.global() { self.anonymous.load(Ordering::SeqCst) } else { 0 };
        if !self.startup_room(n, held) {
            return Err(Refusal::Anonymous);
        }
        if counted && let Some(h) = per.get_mut(source) {
            h.anonymous += 1;
        }
        if source.global() {
            self.anonymous.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// (open, unauthenticated) connections now: unauthenticated counts handshakes and
    /// anonymous connections.
    pub fn counts(&self) -> (usize, usize) {
        let (open, h, a) = self.phases();
        (open, h + a)
    }

    /// (open, in their handshake, anonymous) connections now.
    pub fn phases(&self) -> (usize, usize, usize) {
        (self.open.load(Ordering::SeqCst), self.handshakes.load(Ordering::SeqCst), self.anonymous.load(Ordering::SeqCst))
    }

    /// What `source` holds now: (all, handshakes, anonymous).
    pub fn held_by(&self, source: &Source) -> (usize, usize, usize) {
        let h = self.per_source.lock().ok().and_then(|m| m.get(source).copied()).unwrap_or_default();
        (h.all, h.handshakes, h.anonymous)
    }

    /// Refusals so far, by reason, and connections cut by `login_grace_time`.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> =
            REFUSALS.iter().zip(&self.refused).map(|(r, n)| (r.label(), n.load(Ordering::Relaxed))).collect();
        out.push(("login_grace_time", self.timed_out.load(Ordering::Relaxed)));
        out
    }
}

/// One admitted connection. Dropping it gives its places back.
pub struct Permit {
    mark: AuthMark,
}

/// A cheap handle for moving a connection out of its handshake from inside its handler.
#[derive(Clone)]
pub struct AuthMark {
    limiter: Arc<Limiter>,
    source: Source,
    phase: Arc<AtomicU8>,
}

impl AuthMark {
    /// The connection authenticated: it leaves the handshake (or anonymous) counts and is not
    /// cut by `login_grace_time`; it still counts against its source.
    pub fn authenticated(&self) {
        let from = Phase::of(self.phase.swap(Phase::Authenticated as u8, Ordering::SeqCst));
        if from != Phase::Authenticated {
            self.limiter.leave(&self.source, from, false);
        }
    }

    /// The TLS handshake finished without a client certificate: the connection leaves the
    /// handshake counts for the anonymous ones (and is no longer cut by `login_grace_time`), or
    /// is refused when their share is taken.
    pub fn anonymous(&self) -> Result<(), Refusal> {
        if Phase::of(self.phase.load(Ordering::SeqCst)) != Phase::Handshake {
            return Ok(());
        }
        if let Err(r) = self.limiter.enter_anonymous(&self.source) {
            self.limiter.refuse(r, &self.source);
            return Err(r);
        }
        if self.phase.compare_exchange(Phase::Handshake as u8, Phase::Anonymous as u8, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.limiter.leave(&self.source, Phase::Handshake, false);
        } else {
            // Authenticated meanwhile: give the anonymous place back.
            self.limiter.leave(&self.source, Phase::Anonymous, false);
        }
        Ok(())
    }

    /// A TLS handshake ended, with a client certificate or without: authenticated, or anonymous;
    /// false when the connection is refused (the anonymous share is taken).
    pub fn tls_done(&self, with_cert: bool) -> bool {
        if with_cert {
            self.authenticated();
            true
        } else {
            self.anonymous().is_ok()
        }
    }

    fn in_handshake(&self) -> bool {
        Phase::of(self.phase.load(Ordering::SeqCst)) == Phase::Handshake
    }
}

impl Permit {
    /// A handle to mark the end of the handshake with.
    pub fn mark(&self) -> AuthMark {
        self.mark.clone()
    }

    /// Where the connection comes from.
    pub fn source(&self) -> &Source {
        &self.mark.source
    }

    /// Resolves when `login_grace_time` has passed in the handshake (never, once out of it).
    pub async fn grace_expired(&self) {
        tokio::time::sleep(self.mark.limiter.limits.login_grace_time).await;
        if !self.mark.in_handshake() {
            std::future::pending::<()>().await;
        }
        self.mark.limiter.timed_out.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(source = ?self.mark.source, "connection did not authenticate within login_grace_time; closing it");
    }

    /// The limiter this permit counts in.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.mark.limiter
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let from = Phase::of(self.mark.phase.swap(Phase::Authenticated as u8, Ordering::SeqCst));
        self.mark.limiter.leave(&self.mark.source, from, true);
        self.mark.limiter.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts on `listener` until `shutdown`: each connection the limits admit (a refused one is
/// closed at once, before anything is read) goes to `serve` with its permit, in a task of its
/// own; `what` names the listener in the log of a failed accept.
pub async fn accept_until<F, Fut>(
    listener: tokio::net::TcpListener,
    limiter: Arc<Limiter>,
    mut shutdown: crate::shutdown::Shutdown,
    what: &'static str,
    serve: F,
) where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr, Permit) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = limiter.admit(Source::Addr(peer.ip())) else { continue };
                    shared::tuning::set_nodelay(&tcp);
                    tokio::spawn(serve(tcp, peer, permit));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
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
                per_source_max_connections: max,
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
        let l = limiter(100, 25, 2);
        let a1 = l.admit(ip("127.0.0.5")).ok();
        let a2 = l.admit(ip("127.0.0.5")).ok();
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(l.admit(ip("127.0.0.5")).err(), Some(Refusal::PerSource));
        assert!(l.admit(ip("127.0.0.6")).is_ok(), "another source is admitted");
        // Authenticating frees the handshake place, not the connection.
        if let Some(p) = &a1 {
            p.mark().authenticated();
        }
        let a3 = l.admit(ip("127.0.0.5"));
        assert!(a3.is_ok());
        assert_eq!(l.counts(), (3, 2));
        assert_eq!(l.held_by(&ip("127.0.0.5")), (3, 2, 0), "the authenticated connection still counts against its source");
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
        assert!(l.admit(ip("10.9.9.9")).is_err(), "the flooding source is refused");
        let quiet = l.admit(ip("10.1.1.1"));
        assert!(quiet.is_ok(), "a source holding nothing still gets in");
        let more: Vec<Permit> = (0..20).filter_map(|i| l.admit(ip(&format!("10.2.0.{i}"))).ok()).collect();
        assert_eq!(more.len(), 7, "twice max_startups is the ceiling");
        assert_eq!(l.refusals()[1].1 + l.refusals()[2].1, 14);
    }

    #[test]
    fn total_caps_refuse_and_count() {
        let l = limiter(4, 1, 10);
        let a = l.admit(ip("10.0.0.1"));
        let b = l.admit(ip("10.0.0.2"));
        assert_eq!(l.admit(ip("10.0.0.3")).err(), Some(Refusal::MaxStartups));
        if let (Ok(a), Ok(b)) = (&a, &b) {
            a.mark().authenticated();
            b.mark().authenticated();
        }
        let c = l.admit(ip("10.0.0.3"));
        let d = l.admit(ip("10.0.0.4"));
        assert!(c.is_ok() && d.is_ok());
        assert_eq!(l.admit(ip("10.0.0.5")).err(), Some(Refusal::MaxConnections));
        assert_eq!(l.refusals()[0].1, 1);
        assert_eq!(l.refusals()[1].1, 1);
        drop((a, b, c, d));
        assert_eq!(l.counts(), (0, 0));
    }

    #[test]
    fn vouched_callers_count_per_user_not_in_the_global_caps() {
        let l = limiter(100, 25, 2);
        let _flood: Vec<Permit> = (0..25).filter_map(|i| l.admit(ip(&format!("10.0.1.{i}"))).ok()).collect();
        let a = l.admit(Source::Caller("alice@root".into()));
        let b = l.admit(Source::Caller("alice@root".into()));
        assert!(a.is_ok() && b.is_ok(), "max_startups does not apply to vouched callers");
        assert_eq!(l.admit(Source::Caller("alice@root".into())).err(), Some(Refusal::PerSource));
        assert!(l.admit(Source::Caller("bob@root".into())).is_ok(), "bob is not held back by alice");
        assert_eq!(l.counts().1, 25, "callers are not in the global count");
    }

    #[test]
    fn the_fd_limit_lowers_every_cap_with_max_connections() {
        let l = Limiter::new(ConnLimits::default(), 1024);
        let e = l.limits();
        assert_eq!(e.max_connections, 1024 - 256);
        assert_eq!(e.max_startups, 192, "a quarter of max_connections");
        assert_eq!(e.per_source_max_startups, 192);
        // The attack run's figures: a descriptor limit of 2,000.
        let e = ConnLimits::default().effective(2000);
        assert_eq!((e.max_connections, e.max_startups, e.per_source_max_startups), (1744, 436, 436));
        assert!(2 * e.max_startups * 2 <= e.max_connections, "both ceilings together fit");
        let e = ConnLimits::default().effective(1 << 20);
        assert_eq!(e.max_connections, (1 << 20) - 256, "by default, what the descriptor limit allows");
        assert_eq!((e.max_startups, e.per_source_max_startups), (DEFAULT_MAX_STARTUPS, DEFAULT_PER_SOURCE_MAX_STARTUPS));
        let set = ConnLimits { max_connections: 15_000, ..Default::default() }.effective(1 << 20);
        assert_eq!(set.max_connections, 15_000, "a configured cap stays");
    }

    #[test]
    fn anonymous_connections_count_for_their_whole_life_and_leave_room_for_others() {
        // The finding: one address held 1,000 anonymous HTTPS connections at the defaults.
        let l = Limiter::new(ConnLimits::default(), 1 << 20);
        let attacker = ip("10.6.6.6");
        let mut held = Vec::new();
        for _ in 0..1000 {
            let Ok(p) = l.admit(attacker.clone()) else { continue };
            if p.mark().anonymous().is_ok() {
                held.push(p);
            }
        }
        assert_eq!(held.len(), DEFAULT_PER_SOURCE_MAX_STARTUPS, "one address holds at most per_source_max_startups anonymous connections");
        assert_eq!(l.phases(), (512, 0, 512));
        assert!(l.refusals().iter().any(|(k, n)| *k == "anonymous" && *n == 488), "{:?}", l.refusals());
        // Another address still pings, and an SSH user still gets through its handshake.
        let ping = l.admit(ip("10.1.1.1")).expect("admitted");
        assert!(ping.mark().anonymous().is_ok());
        let ssh = l.admit(ip("10.1.1.2")).expect("admitted");
        ssh.mark().authenticated();
        // A certificate holder on an anonymous connection (a client certificate renegotiated in
        // the HTTP layer is not a thing; this is the order of events for web sessions made
        // later) leaves the anonymous count.
        held[0].mark().authenticated();
        assert_eq!(l.phases().2, 512);
        drop(held);
        drop(ping);
        drop(ssh);
        assert_eq!(l.phases(), (0, 0, 0));
    }

    #[test]
    fn anonymous_floods_from_several_addresses_leave_quiet_sources_a_way_in() {
        let l = limiter(400, 100, 40);
        let mut held = Vec::new();
        for i in 0..10 {
            for _ in 0..40 {
                if let Ok(p) = l.admit(ip(&format!("10.7.0.{i}")))
                    && p.mark().anonymous().is_ok()
                {
                    held.push(p);
                }
            }
        }
        // Two sources fill max_startups; the third is cut there, and each later one gets only
        // a fair share (FAIR_SHARE + 1) before it is refused too.
        assert_eq!(held.len(), 40 + 40 + 20 + 7 * (FAIR_SHARE + 1), "{}", held.len());
        assert!(held.len() < 200);
        let quiet = l.admit(ip("10.8.0.1")).expect("a handshake place");
        assert!(quiet.mark().anonymous().is_ok(), "a source holding nothing is still served");
    }

    #[test]
    fn per_source_max_connections_bounds_authenticated_connections_too() {
        let l = Limiter::new(ConnLimits { per_source_max_connections: 10, ..Default::default() }, 1 << 20);
        let held: Vec<Permit> = (0..20)
            .filter_map(|_| {
                let p = l.admit(ip("10.3.3.3")).ok()?;
                p.mark().authenticated();
                Some(p)
            })
            .collect();
        assert_eq!(held.len(), 10);
        assert_eq!(l.admit(ip("10.3.3.3")).err(), Some(Refusal::PerSourceConnections));
        assert!(l.admit(ip("10.3.3.4")).is_ok());
    }

    #[tokio::test]
    async fn grace_time_cuts_only_connections_in_their_handshake() {
        let l = limiter(40, 10, 10);
        let Ok(p) = l.admit(ip("10.0.0.1")) else { panic!("admitted") };
        assert!(with_grace(&p, std::future::pending()).await, "cut after the grace time");
        let Ok(p) = l.admit(ip("10.0.0.1")) else { panic!("admitted") };
        p.mark().authenticated();
        let done = with_grace(&p, tokio::time::sleep(Duration::from_millis(150))).await;
        assert!(!done, "an authenticated connection runs on");
        let Ok(p) = l.admit(ip("10.0.0.1")) else { panic!("admitted") };
        assert!(p.mark().anonymous().is_ok());
        let done = with_grace(&p, tokio::time::sleep(Duration::from_millis(150))).await;
        assert!(!done, "an anonymous HTTPS connection is bounded by its caps, not the grace time");
        assert_eq!(l.refusals().last().map(|r| r.1), Some(1));
    }
}
