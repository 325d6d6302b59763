//! What each agent pool is doing, for `tctl status` on a leaf: per trusted root, the proxies
//! its tunnels reach and since when, or the last error and when it retries. Kept in memory by
//! the process that runs the pool (each process of an HA leaf runs its own).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::api::{OutboundTunnel, ProxyTunnel};
use time::OffsetDateTime;

/// One pool's state.
#[derive(Debug, Default)]
pub struct AgentStatus {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    addr: String,
    connected: BTreeMap<String, OffsetDateTime>,
    last_error: Option<(String, OffsetDateTime)>,
    failures: u32,
    next_retry: Option<OffsetDateTime>,
}

impl AgentStatus {
    /// A status nobody reads (tunnel nodes, the leaf simulator).
    pub fn detached() -> Arc<AgentStatus> {
        Arc::new(AgentStatus::default())
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut i) = self.inner.lock() {
            f(&mut i);
        }
    }

    /// A tunnel to `proxy` came up.
    pub fn connected(&self, proxy: &str, at: OffsetDateTime) {
        self.with(|i| {
            i.connected.insert(proxy.to_string(), at);
            i.failures = 0;
            i.next_retry = None;
        });
    }

    /// The tunnel to `proxy` dropped.
    pub fn disconnected(&self, proxy: &str) {
        self.with(|i| {
            i.connected.remove(proxy);
        });
    }

    /// An attempt failed; the pool retries after `retry_in`.
    pub fn failed(&self, error: &str, at: OffsetDateTime, retry_in: Duration) {
        self.with(|i| {
            i.last_error = Some((error.to_string(), at));
            i.failures = i.failures.saturating_add(1);
            i.next_retry = Some(at + retry_in);
        });
    }

    /// The state as the API reports it.
    pub fn report(&self, root: &str, now: OffsetDateTime) -> OutboundTunnel {
        let i = self.inner.lock().map(|i| i.clone()).unwrap_or_default();
        let state = if !i.connected.is_empty() { "connected" } else { "connecting" };
        OutboundTunnel {
            cluster: root.into(),
            tunnel_addr: i.addr,
            state: state.into(),
            proxies: i
                .connected
                .into_iter()
                .map(|(proxy, since)| ProxyTunnel { proxy, since: Some(since), last_heartbeat: None })
                .collect(),
            last_error: i.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: i.last_error.map(|(_, at)| at),
            failures: i.failures,
            retry_in_seconds: i.next_retry.map(|t| (t - now).whole_seconds().max(0)),
        }
    }
}

/// Every pool of this process, by the cluster it tunnels to.
#[derive(Debug, Default)]
pub struct AgentRegistry {
    pools: Mutex<BTreeMap<String, Arc<AgentStatus>>>,
}

impl AgentRegistry {
    /// A fresh status for a pool to `root` at `addr` (replacing an earlier one).
    pub fn start(&self, root: &str, addr: &str) -> Arc<AgentStatus> {
        let s = Arc::new(AgentStatus::default());
        s.with(|i| i.addr = addr.to_string());
        if let Ok(mut p) = self.pools.lock() {
            p.insert(root.to_string(), s.clone());
        }
        s
    }

    /// The pool to `root` stopped.
    pub fn stop(&self, root: &str) {
        if let Ok(mut p) = self.pools.lock() {
            p.remove(root);
        }
    }

    /// The pool to `root`, if one runs.
    pub fn get(&self, root: &str) -> Option<Arc<AgentStatus>> {
        self.pools.lock().ok().and_then(|p| p.get(root).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_tunnels_errors_and_the_next_retry() {
        let reg = AgentRegistry::default();
        let s = reg.start("root", "127.0.0.1:9");
        let t0 = OffsetDateTime::now_utc();
        s.failed("connection refused", t0, Duration::from_secs(3));
        let r = reg.get("root").unwrap().report("root", t0 + Duration::from_secs(1));
        assert_eq!((r.state.as_str(), r.failures, r.retry_in_seconds), ("connecting", 1, Some(2)));
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
        s.connected("p1", t0);
        let r = s.report("root", t0);
        assert_eq!((r.state.as_str(), r.proxies.len(), r.retry_in_seconds), ("connected", 1, None));
        assert_eq!(r.last_error.as_deref(), Some("connection refused"), "the last error stays for troubleshooting");
        s.disconnected("p1");
        assert_eq!(s.report("root", t0).state, "connecting");
        reg.stop("root");
        assert!(reg.get("root").is_none());
    }
}
