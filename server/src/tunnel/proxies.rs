//! The cluster's live proxy processes: each heartbeats its own `proxies/<host_uuid>` record
//! (every [`HEARTBEAT`], living [`RECORD_TTL`], so a dead process drops out within three
//! heartbeats) and follows everyone's, to tell its agents (leaves, tunnel nodes) where every
//! proxy is ([`Discovery`]) and to find a peer that holds a tunnel it lacks.
//!
//! ```text
//!   process A ── put proxies/A (addr, peer_addr, started) every 5s ──▶ shared state
//!   process B ── put proxies/B ...                                  ──▶
//!   each follows proxies/* ─▶ Discovery {A, B} ─▶ "proxies {...}" on every agent's heartbeat channel
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::error::Result;
use shared::resource::Proxy;
use shared::resource::proxy::ProxySpec;
use tokio::sync::watch;

use crate::auth::AuthServer;
use crate::services::keys;
use crate::shutdown::Shutdown;
use crate::storage::Op;

/// How often a proxy renews its record.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a record lives without renewal (three heartbeats).
pub const RECORD_TTL: Duration = Duration::from_secs(15);
/// How long an agent keeps a proxy it was told about without hearing of it again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(30);
/// How often, at least, a proxy repeats the list to each agent (besides on every change): with
/// the pong of a heartbeat, so at the keep-alive interval when that is longer.
pub const DISCOVERY_EVERY: Duration = Duration::from_secs(10);

/// Tunnels a proxy expects another to take per second when its agents, already holding a
/// tunnel to it, join that other one (new or restarted): about half of what one process
/// completes on two cores (bench/scale.md, ~1,000 reconnects a second), leaving room for users.
pub const JOIN_RATE: u64 = 500;
/// The longest an agent that holds a tunnel waits before dialling a proxy new to it.
pub const JOIN_SPREAD_MAX: Duration = Duration::from_secs(120);

/// Over how long agents already holding a tunnel to a proxy with `tunnels` spread their first
/// dials to a proxy new to them: all told in the same instant, they would all dial at once, and
/// the newcomer would refuse beyond `max_startups` (users among them) while it caught up.
pub fn join_spread(tunnels: usize) -> Duration {
    let ms = u64::try_from(tunnels).unwrap_or(u64::MAX).saturating_mul(1000) / JOIN_RATE;
    Duration::from_millis(ms).min(JOIN_SPREAD_MAX)
}

/// One proxy as agents need to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredProxy {
    /// Host UUID (the key id of its host certificate).
    pub name: String,
    /// Where to dial it directly.
    pub addr: String,
    /// When it started (a restarted process is a new one to an agent it told to move).
    #[serde(default)]
    pub started: i64,
}

/// What a proxy tells its agents: every live proxy of the cluster, and how long to believe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The proxies, sorted by name.
    pub proxies: Vec<DiscoveredProxy>,
    /// Seconds an agent keeps an entry it does not hear of again.
    pub ttl: u64,
    /// Milliseconds over which an agent that already holds a tunnel spreads its first dial to a
    /// proxy new to it or restarted ([`join_spread`]; absent: at once). An agent with no tunnel
    /// dials at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spread_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// This process in the registry, and what it knows of the others.
pub struct ProxyRegistry {
    auth: Arc<AuthServer>,
    spec: ProxySpec,
    tx: watch::Sender<Arc<Discovery>>,
    leaving: AtomicBool,
}

impl ProxyRegistry {
    /// The registry entry of this process (`spec.addr` is where agents dial it directly).
    pub fn new(auth: Arc<AuthServer>, spec: ProxySpec) -> Arc<ProxyRegistry> {
        let me = DiscoveredProxy { name: auth.proxy_id().to_string(), addr: spec.addr.clone(), started: spec.started };
        let (tx, _) = watch::channel(Arc::new(Discovery { proxies: vec![me], ttl: DISCOVERY_TTL.as_secs(), spread_ms: 0 }));
        Arc::new(ProxyRegistry { auth, spec, tx, leaving: AtomicBool::new(false) })
    }

    /// This process's host UUID.
    pub fn id(&self) -> &str {
        self.auth.proxy_id()
    }

    /// The current list, updated on every change.
    pub fn discovery(&self) -> watch::Receiver<Arc<Discovery>> {
        self.tx.subscribe()
    }

    /// Whether this process is stopping (it tells its agents to move).
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    /// Writes (renews) this process's record.
    pub async fn heartbeat(&self) -> Result<()> {
        let expires = self.auth.clock.now() + RECORD_TTL;
        let record = Proxy::new(self.id(), self.spec.clone(), expires);
        let op = self.auth.services.put_op(&keys::proxy(self.id()), &record)?;
        self.auth.services.apply(vec![op]).await?;
        Ok(())
    }

    /// Leaves the registry: the record goes, so the other proxies stop listing this one, and
    /// the list this one sends no longer names itself.
    pub async fn leave(&self) {
        self.leaving.store(true, Ordering::SeqCst);
        self.refresh().await;
        let key = keys::proxy(self.id());
        if let Err(e) = self.auth.services.apply(vec![Op::DeleteIfExists { key }]).await {
            tracing::warn!(error = %e, "cannot remove this proxy from the registry; it expires in {}s", RECORD_TTL.as_secs());
        }
    }

    /// Heartbeats until `shutdown`. A failed write is retried at the next beat (the record
    /// outlives two failures).
    pub async fn run_heartbeat(self: Arc<Self>, shutdown: Shutdown) {
        let failing = std::sync::atomic::AtomicBool::new(false);
        crate::shutdown::now_and_every(HEARTBEAT, shutdown, || async {
            if self.is_leaving() {
                return;
            }
            match self.heartbeat().await {
                Ok(()) if failing.load(std::sync::atomic::Ordering::Relaxed) => {
                    tracing::info!("proxy heartbeat written again");
                    failing.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(()) => {}
                Err(e) if !failing.load(std::sync::atomic::Ordering::Relaxed) => {
                    tracing::warn!(error = %e, "cannot write this proxy's heartbeat");
                    failing.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => {}
            }
        })
        .await
    }

    /// Every live proxy record (this one's included).
    pub async fn live(&self) -> Result<Vec<Proxy>> {
        let now = self.auth.clock.now();
        let all: Vec<Proxy> = self.auth.services.list(keys::PROXIES).await?;
        Ok(all.into_iter().filter(|p| p.metadata.expires.is_none_or(|e| e > now)).collect())
    }

    /// The other live proxies that accept forwarded connections.
    pub async fn peers(&self) -> Result<Vec<Proxy>> {
        Ok(self.live().await?.into_iter().filter(|p| p.metadata.name != self.id() && !p.spec.peer_addr.is_empty()).collect())
    }

    async fn refresh(&self) {
        let mut proxies: Vec<DiscoveredProxy> = match self.live().await {
            Ok(all) => all
                .into_iter()
                .filter(|p| !p.spec.addr.is_empty())
                .map(|p| DiscoveredProxy { name: p.metadata.name, addr: p.spec.addr, started: p.spec.started })
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list proxies; keeping the last list");
                return;
            }
        };
        let me = self.id().to_string();
        proxies.retain(|p| p.name != me);
        if !self.is_leaving() {
            // This process is live whatever the state says (its first record may not be there yet).
            proxies.push(DiscoveredProxy { name: me, addr: self.spec.addr.clone(), started: self.spec.started });
        }
        proxies.sort_by(|a, b| a.name.cmp(&b.name));
        let next = Discovery { proxies, ttl: DISCOVERY_TTL.as_secs(), spread_ms: 0 };
        self.tx.send_if_modified(|cur| {
            if **cur == next {
                false
            } else {
                *cur = Arc::new(next);
                true
            }
        });
    }

    /// Keeps the list in step with the registry (from any process) until `shutdown`.
    pub async fn run_discovery(self: Arc<Self>, shutdown: Shutdown) {
        let me = self.clone();
        crate::follow::follow(self.auth.services.backend.clone(), &[keys::PROXIES], shutdown, move |_| {
            let me = me.clone();
            async move { me.refresh().await }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_is_spread_by_the_tunnels_that_would_make_it_and_bounded() {
        assert_eq!(join_spread(0), Duration::ZERO);
        assert_eq!(join_spread(2), Duration::from_millis(4));
        assert_eq!(join_spread(10_000), Duration::from_secs(20));
        assert_eq!(join_spread(usize::MAX), JOIN_SPREAD_MAX);
    }
}
