//! The agent pool: one tunnel to **every** proxy of a cluster, so that losing a proxy costs a
//! leaf (or a tunnel node) nothing but the sessions that went through it.
//!
//! ```text
//!   seed: dial the cluster's address (a load balancer) ──▶ some proxy P1 answers
//!   P1 on the heartbeat channel: "proxies {P1 addr1, P2 addr2, P3 addr3}"
//!   pool: one slot per listed proxy ── dial addr2, addr3 directly (the load balancer if that fails)
//!         claim by the answering proxy's host UUID: a second tunnel to one proxy is closed
//!   P2 stops: "reconnect" ── the pool keeps P1, P3 and does not dial P2 until it is back
//! ```
//! Proxies repeat the list on every change and, with a pong, every 10s or keep-alive interval
//! (the longer); an agent forgets a proxy three repeats after the last list that named it (the
//! list's `ttl`), and then drops its tunnel to it (never its last tunnel).
//! Retries: the first at once (with up to 500ms of jitter), then linear 1s steps to
//! `max_backoff`, each jittered over 30–100% of its step, so that a thousand agents that lost
//! their proxies together do not come back together. An agent that holds a tunnel dials a proxy
//! new to it (or restarted) at a random moment within the spread the list carries (the sending
//! proxy's tunnels ÷ [`JOIN_RATE`](crate::tunnel::proxies::JOIN_RATE)): all its agents heard
//! of the newcomer at once, and dialling together they would fill its `max_startups`, refusing
//! the users a load balancer sends it meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::agent::{AgentConfig, NotEstablished, OnMessage, establish, serve};
use super::wire::Heartbeat;
use crate::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
use crate::tunnel::proxies::{Discovery, JOIN_SPREAD_MAX};

/// Test hook: proxies (host UUIDs, comma-separated) this agent never dials directly, as if a
/// firewall stood between them; a load balancer may still land on them.
pub const SKIP_PROXIES_ENV: &str = "TELEPORT_UNSTABLE_AGENT_SKIP_PROXIES";

/// What to dial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// The cluster's address (whatever proxy answers).
    Seed,
    /// One proxy, at the address it advertises.
    Proxy(String),
}

/// Retries of one target.
#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    next_at: Instant,
}

impl Backoff {
    fn new(now: Instant) -> Backoff {
        Backoff { failures: 0, next_at: now }
    }

    fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    fn failed(&mut self, now: Instant, max: Duration) {
        self.failures = self.failures.saturating_add(1);
        self.next_at = now + delay(self.failures, max);
    }

    /// A tunnel that was up dropped: retry at once (jittered), then back off again.
    fn lost(&mut self, now: Instant) {
        self.failures = 1;
        self.next_at = now + delay(1, Duration::ZERO);
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The wait after `failures` failures in a row: up to 500ms after the first, then `failures-1`
/// seconds (at most `max`) spread over 30–100% of that.
pub fn delay(failures: u32, max: Duration) -> Duration {
    let mut rng = rand::rng();
    if failures <= 1 {
        return Duration::from_millis(rng.random_range(0..=500));
    }
    let step = Duration::from_secs(u64::from(failures - 1)).min(max.max(Duration::from_secs(1)));
    step.mul_f64(rng.random_range(0.3..=1.0))
}

/// A moment within `spread`, uniformly (at once for none).
fn jitter(spread: Duration) -> Duration {
    if spread.is_zero() {
        return Duration::ZERO;
    }
    spread.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// A proxy the pool was told about.
#[derive(Debug, Clone)]
struct Known {
    addr: String,
    started: i64,
    expires: Instant,
}

/// One attempt, and once it is up, one tunnel.
struct Slot {
    target: Target,
    /// The proxy it reached, once claimed.
    proxy: Option<String>,
    stop: ShutdownTrigger,
}

enum Event {
    /// Slot `id` reached `proxy`; may it keep the tunnel?
    Claim { id: u64, proxy: String, reply: oneshot::Sender<bool> },
    /// Slot `id` never came up (or was refused as a duplicate).
    Failed { id: u64, error: Option<String> },
    /// Slot `id` was up and dropped.
    Ended { id: u64 },
    /// A proxy's message on slot `id`.
    Message { id: u64, msg: Heartbeat },
}

struct Pool {
    cfg: AgentConfig,
    tx: mpsc::UnboundedSender<Event>,
    known: HashMap<String, Known>,
    /// Proxies that said they are stopping, with the start time they had.
    leaving: HashMap<String, (i64, Instant)>,
    slots: HashMap<u64, Slot>,
    backoff: HashMap<Target, Backoff>,
    next_id: u64,
    skip: Vec<String>,
    tasks: tokio::task::JoinSet<()>,
}

/// Keeps one tunnel to every proxy of `cfg.server_cluster` until `shutdown`.
pub async fn run(cfg: AgentConfig, mut shutdown: Shutdown) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let skip = std::env::var(SKIP_PROXIES_ENV).map(|v| v.split(',').map(|s| s.trim().to_string()).collect()).unwrap_or_default();
    let mut pool = Pool {
        cfg,
        tx,
        known: HashMap::new(),
        leaving: HashMap::new(),
        slots: HashMap::new(),
        backoff: HashMap::new(),
        next_id: 0,
        skip,
        tasks: tokio::task::JoinSet::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        pool.reconcile(Instant::now());
        tokio::select! {
            _ = shutdown.wait() => break,
            ev = rx.recv() => match ev {
                Some(ev) => pool.handle(ev, Instant::now()),
                None => break,
            },
            _ = tick.tick() => {}
            Some(_) = pool.tasks.join_next(), if !pool.tasks.is_empty() => {}
        }
    }
    for slot in pool.slots.values() {
        slot.stop.trigger();
    }
    let all = async { while pool.tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), all).await.is_err() {
        pool.tasks.abort_all();
    }
}

impl Pool {
    fn claimed(&self, proxy: &str) -> bool {
        self.slots.values().any(|s| s.proxy.as_deref() == Some(proxy))
    }

    fn in_flight(&self, target: &Target) -> bool {
        self.slots.values().any(|s| s.proxy.is_none() && &s.target == target)
    }

    fn connected(&self) -> usize {
        self.slots.values().filter(|s| s.proxy.is_some()).count()
    }

    fn backoff(&mut self, target: &Target, now: Instant) -> &mut Backoff {
        self.backoff.entry(target.clone()).or_insert_with(|| Backoff::new(now))
    }

    /// The proxies the pool wants a tunnel to.
    fn desired(&self) -> Vec<String> {
        let mut d: Vec<String> = self.known.keys().filter(|p| !self.leaving.contains_key(*p)).cloned().collect();
        d.sort();
        d
    }

    fn reconcile(&mut self, now: Instant) {
        self.known.retain(|_, k| k.expires > now);
        self.leaving.retain(|_, (_, until)| *until > now);
        let desired = self.desired();
        for p in &desired {
            let target = Target::Proxy(p.clone());
            if self.claimed(p) || self.in_flight(&target) {
                continue;
            }
            let b = self.backoff(&target, now).clone();
            if !b.due(now) {
                continue;
            }
            // Its own address first; every other failure, the load balancer (it may be the
            // only way in, as behind a NAT), which lands wherever it likes.
            let direct = self.known.get(p).map(|k| k.addr.clone()).filter(|a| !a.is_empty());
            let addr = match direct {
                Some(a) if !self.skip.contains(p) && (b.failures < 2 || b.failures % 2 == 1) => a,
                _ => self.cfg.addr.clone(),
            };
            self.spawn(target, addr);
        }
        let none_up = self.connected() == 0;
        let all_failing = desired.iter().all(|p| self.backoff.get(&Target::Proxy(p.clone())).is_some_and(|b| b.failures > 0));
        if none_up && (desired.is_empty() || all_failing) && !self.in_flight(&Target::Seed) && self.backoff(&Target::Seed, now).due(now) {
            let addr = self.cfg.addr.clone();
            self.spawn(Target::Seed, addr);
        }
        // Tunnels to proxies nobody lists any more go, but never the last one.
        if !self.known.is_empty() {
            let stale: Vec<u64> = self
                .slots
                .iter()
                .filter(|(_, s)| s.proxy.as_ref().is_some_and(|p| !self.known.contains_key(p) && !self.leaving.contains_key(p)))
                .map(|(id, _)| *id)
                .collect();
            let mut up = self.connected();
            for id in stale {
                if up <= 1 {
                    break;
                }
                if let Some(s) = self.slots.get(&id) {
                    tracing::info!(tunnel = %self.cfg.name, proxy = ?s.proxy, "dropping the tunnel to a proxy that left the cluster");
                    s.stop.trigger();
                    up -= 1;
                }
            }
        }
    }

    fn spawn(&mut self, target: Target, addr: String) {
        self.next_id += 1;
        let id = self.next_id;
        let (stop, stopped) = shutdown_pair();
        self.slots.insert(id, Slot { target, proxy: None, stop });
        let (cfg, tx) = (self.cfg.clone(), self.tx.clone());
        self.tasks.spawn(slot(cfg, id, addr, tx, stopped));
    }

    fn handle(&mut self, ev: Event, now: Instant) {
        let max = self.cfg.max_backoff;
        match ev {
            Event::Claim { id, proxy, reply } => {
                let Some(target) = self.slots.get(&id).map(|s| s.target.clone()) else {
                    let _ = reply.send(false);
                    return;
                };
                let dup = proxy.is_empty() || self.claimed(&proxy);
                if dup {
                    tracing::debug!(tunnel = %self.cfg.name, proxy = %proxy, "already connected to this proxy; closing the extra tunnel");
                    let _ = reply.send(false);
                    return;
                }
                if let Some(s) = self.slots.get_mut(&id) {
                    s.proxy = Some(proxy.clone());
                }
                self.cfg.status.connected(&proxy, self.cfg.clock.now());
                // Whatever was dialled, reaching `proxy` is success for `proxy`.
                self.backoff(&Target::Proxy(proxy.clone()), now).reset();
                if target == Target::Seed || target == Target::Proxy(proxy.clone()) {
                    self.backoff(&target, now).reset();
                } else {
                    // The load balancer sent us elsewhere: the wanted proxy is still missing.
                    self.backoff(&target, now).failed(now, max);
                }
                let ttl = Duration::from_secs(crate::tunnel::proxies::DISCOVERY_TTL.as_secs());
                self.known.entry(proxy).or_insert(Known { addr: String::new(), started: 0, expires: now + ttl });
                let _ = reply.send(true);
            }
            Event::Failed { id, error } => {
                if let Some(s) = self.slots.remove(&id) {
                    let b = self.backoff(&s.target, now);
                    b.failed(now, max);
                    let (n, retry_in) = (b.failures, b.next_at.saturating_duration_since(now));
                    if let Some(e) = error {
                        let retry = format!("{:.1}s", retry_in.as_secs_f64());
                        if n <= 2 || n.is_multiple_of(20) {
                            tracing::warn!(tunnel = %self.cfg.name, target = ?s.target, attempt = n, error = %e, retry_in = %retry, "tunnel connection failed");
                        } else {
                            tracing::debug!(tunnel = %self.cfg.name, target = ?s.target, attempt = n, error = %e, retry_in = %retry, "tunnel connection failed");
                        }
                        self.cfg.status.failed(&e, self.cfg.clock.now(), retry_in);
                    }
                }
            }
            Event::Ended { id } => {
                if let Some(s) = self.slots.remove(&id) {
                    let target = s.proxy.clone().map(Target::Proxy).unwrap_or(s.target);
                    tracing::info!(tunnel = %self.cfg.name, proxy = ?s.proxy, "tunnel disconnected; reconnecting");
                    if let Some(p) = &s.proxy {
                        self.cfg.status.disconnected(p);
                    }
                    self.backoff(&target, now).lost(now);
                    self.backoff(&Target::Seed, now).lost(now);
                }
            }
            Event::Message { id, msg } => match msg {
                Heartbeat::Proxies(d) => self.learn(d, now),
                Heartbeat::Cas(cas) => {
                    if let Some(sink) = &self.cfg.on_cas {
                        sink(cas);
                    }
                }
                Heartbeat::Reconnect => {
                    if let Some(p) = self.slots.get(&id).and_then(|s| s.proxy.clone()) {
                        let started = self.known.get(&p).map(|k| k.started).unwrap_or_default();
                        tracing::info!(tunnel = %self.cfg.name, proxy = %p, "the proxy is stopping; keeping the other tunnels");
                        self.leaving.insert(p, (started, now + Duration::from_secs(60)));
                    }
                }
                // Pings, pongs and keep-alives are the agent's own business.
                Heartbeat::Ping(_) | Heartbeat::Pong | Heartbeat::KeepAlive { .. } => {}
            },
        }
    }

    fn learn(&mut self, d: Discovery, now: Instant) {
        let ttl = Duration::from_secs(d.ttl.clamp(5, 600));
        // Holding a tunnel, this agent is in no hurry for a proxy new to it: every agent of the
        // proxy that sent the list heard of it in the same instant.
        let spread = if self.connected() > 0 { Duration::from_millis(d.spread_ms).min(JOIN_SPREAD_MAX) } else { Duration::ZERO };
        for p in d.proxies {
            // A proxy that said goodbye and came back (a new start time) is wanted again.
            if self.leaving.get(&p.name).is_some_and(|(started, _)| *started != p.started) {
                self.leaving.remove(&p.name);
            }
            // A proxy that restarted, or one not heard of before, is dialled within the spread
            // (at once without one), whatever a backoff had reached.
            let restarted = self.known.get(&p.name).is_some_and(|k| k.started != 0 && k.started != p.started);
            let new = !self.known.contains_key(&p.name);
            if (restarted || new) && !self.claimed(&p.name) {
                let b = self.backoff.entry(Target::Proxy(p.name.clone())).or_insert_with(|| Backoff::new(now));
                b.failures = 0;
                b.next_at = now + jitter(spread);
            }
            self.known.insert(p.name, Known { addr: p.addr, started: p.started, expires: now + ttl });
        }
    }
}

/// One tunnel's life: dial, claim, serve until it drops or the pool stops it.
async fn slot(cfg: AgentConfig, id: u64, addr: String, tx: mpsc::UnboundedSender<Event>, mut stop: Shutdown) {
    tracing::debug!(tunnel = %cfg.name, addr = %addr, "tunnel dial");
    let claim = |proxy: String| {
        let (reply, answer) = oneshot::channel();
        let sent = tx.send(Event::Claim { id, proxy, reply }).is_ok();
        async move { sent && answer.await.unwrap_or(false) }
    };
    let est = tokio::select! {
        _ = stop.wait() => {
            let _ = tx.send(Event::Failed { id, error: None });
            return;
        }
        r = establish(&cfg, &addr, claim) => r,
    };
    let est = match est {
        Ok(e) => e,
        Err(NotEstablished::Failed(e)) => {
            let _ = tx.send(Event::Failed { id, error: Some(format!("{addr}: {e}")) });
            return;
        }
        Err(NotEstablished::Duplicate(_)) => {
            let _ = tx.send(Event::Failed { id, error: None });
            return;
        }
    };
    let msgs = tx.clone();
    let on_message: OnMessage = Arc::new(move |msg| {
        let _ = msgs.send(Event::Message { id, msg });
    });
    serve(&cfg, est, on_message, &mut stop).await;
    let _ = tx.send(Event::Ended { id });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_jittered_and_grow() {
        let max = Duration::from_secs(8);
        for n in 0..100 {
            assert!(delay(n, max) <= max, "{n}");
        }
        assert!((0..50).all(|_| delay(1, max) <= Duration::from_millis(500)), "the first retry is at once");
        let samples: Vec<Duration> = (0..20).map(|_| delay(6, max)).collect();
        assert!(samples.iter().any(|s| *s != samples[0]), "jitter expected");
        assert!(samples.iter().all(|s| *s >= Duration::from_millis(1500) && *s <= Duration::from_secs(5)));
        // A join's moment lies within its spread, and varies; none at once.
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let joins: Vec<Duration> = (0..20).map(|_| jitter(Duration::from_secs(20))).collect();
        assert!(joins.iter().all(|j| *j <= Duration::from_secs(20)) && joins.iter().any(|j| *j != joins[0]), "{joins:?}");
    }
}
