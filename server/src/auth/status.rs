//! Connection status of leaf clusters, as the root sees them.
//!
//! Heartbeats arrive from every leaf every `keep_alive_interval`; with a thousand leaves that is
//! hundreds a second. They are kept in memory and written in one transaction per flush
//! (every 500 ms), under `rcstatus/<leaf>`, apart from the `remote_cluster` resource so that they
//! never conflict with `tctl update rc`. Reads merge the stored status, the unflushed heartbeats
//! and the offline threshold: a leaf is `online` only if it heartbeated within
//! `keep_alive_count_max × keep_alive_interval`. `last_heartbeat` only moves forward.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shared::error::Result;
use shared::resource::RemoteCluster;
use shared::resource::cluster::{RemoteClusterStatus, STATUS_OFFLINE, STATUS_ONLINE};
use time::OffsetDateTime;

use super::AuthServer;
use crate::process::Shutdown;
use crate::services::{encode, keys};
use crate::storage::Op;

/// How often buffered heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

impl AuthServer {
    /// Records a heartbeat (in memory; written by the flusher).
    pub fn record_heartbeat(&self, name: &str, at: OffsetDateTime) {
        if let Ok(mut h) = self.heartbeats.lock() {
            let e = h.entry(name.to_string()).or_insert(at);
            if at > *e {
                *e = at;
            }
        }
    }

    /// Drops a pending heartbeat (the leaf was removed).
    pub fn forget_heartbeat(&self, name: &str) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.remove(name);
        }
    }

    fn pending(&self) -> HashMap<String, OffsetDateTime> {
        self.heartbeats.lock().map(|h| h.clone()).unwrap_or_default()
    }

    async fn stored_statuses(&self) -> Result<HashMap<String, RemoteClusterStatus>> {
        let items = self.services.backend.list(keys::REMOTE_CLUSTER_STATUS).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let name = i.key.strip_prefix(keys::REMOTE_CLUSTER_STATUS)?.to_string();
                serde_json::from_slice::<RemoteClusterStatus>(&i.value).ok().map(|s| (name, s))
            })
            .collect())
    }

    /// Writes buffered heartbeats in one transaction; returns how many.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        let pending: Vec<(String, OffsetDateTime)> = match self.heartbeats.lock() {
            Ok(mut h) => h.drain().collect(),
            Err(_) => return Ok(0),
        };
        if pending.is_empty() {
            return Ok(0);
        }
        let stored = self.stored_statuses().await?;
        let existing: std::collections::HashSet<String> = self
            .services
            .backend
            .list(keys::REMOTE_CLUSTERS)
            .await?
            .into_iter()
            .filter_map(|i| i.key.strip_prefix(keys::REMOTE_CLUSTERS).map(str::to_string))
            .collect();
        let mut ops = Vec::new();
        for (name, at) in &pending {
            if !existing.contains(name) {
                continue;
            }
            let last = stored.get(name).map(|s| s.last_heartbeat).filter(|t| t > at).unwrap_or(*at);
            let status = RemoteClusterStatus { connection: STATUS_ONLINE.into(), last_heartbeat: last };
            ops.push(Op::Put { key: format!("{}{name}", keys::REMOTE_CLUSTER_STATUS), value: encode(&status)?, expires: None });
        }
        let n = ops.len();
        if n > 0 {
            self.services.apply(ops).await?;
        }
        Ok(n)
    }

    /// Flushes heartbeats every [`FLUSH_EVERY`] until shutdown, and once more at the end.
    pub async fn run_heartbeat_flusher(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.wait() => {
                    let _ = self.flush_heartbeats().await;
                    return;
                }
                _ = tokio::time::sleep(FLUSH_EVERY) => {
                    if let Err(e) = self.flush_heartbeats().await {
                        tracing::warn!(error = %e, "cannot write heartbeats");
                    }
                }
            }
        }
    }

    /// Marks a leaf offline at once (its tunnel closed or stopped heartbeating).
    pub async fn mark_offline(&self, name: &str) -> Result<()> {
        let pending = self.heartbeats.lock().ok().and_then(|mut h| h.remove(name));
        if self.services.remote_cluster(name).await?.is_none() {
            return Ok(());
        }
        let stored = self.stored_statuses().await?.remove(name);
        let mut last = stored.map(|s| s.last_heartbeat).unwrap_or_else(shared::timefmt::go_zero_time);
        if let Some(p) = pending
            && p > last
        {
            last = p;
        }
        let status = RemoteClusterStatus { connection: STATUS_OFFLINE.into(), last_heartbeat: last };
        self.services
            .apply(vec![Op::Put { key: format!("{}{name}", keys::REMOTE_CLUSTER_STATUS), value: encode(&status)?, expires: None }])
            .await?;
        Ok(())
    }

    /// At start no tunnel is connected: every leaf is offline until it dials back in. Statuses
    /// of removed leaves are cleaned up.
    pub async fn reset_remote_statuses(&self) -> Result<()> {
        let rcs: std::collections::HashSet<String> =
            self.services.list::<RemoteCluster>(keys::REMOTE_CLUSTERS).await?.into_iter().map(|rc| rc.metadata.name).collect();
        let mut ops = Vec::new();
        for (name, mut status) in self.stored_statuses().await? {
            let key = format!("{}{name}", keys::REMOTE_CLUSTER_STATUS);
            if !rcs.contains(&name) {
                ops.push(Op::DeleteIfExists { key });
            } else if status.connection != STATUS_OFFLINE {
                status.connection = STATUS_OFFLINE.into();
                ops.push(Op::Put { key, value: encode(&status)?, expires: None });
            }
        }
        if !ops.is_empty() {
            self.services.apply(ops).await?;
        }
        Ok(())
    }

    /// Every remote cluster with its live status.
    pub async fn remote_clusters(&self) -> Result<Vec<RemoteCluster>> {
        let all: Vec<RemoteCluster> = self.services.list(keys::REMOTE_CLUSTERS).await?;
        let mut stored = self.stored_statuses().await?;
        let pending = self.pending();
        let now = self.clock.now();
        let threshold = self.settings.offline_threshold();
        Ok(all
            .into_iter()
            .map(|mut rc| {
                let name = rc.metadata.name.clone();
                let mut status = stored.remove(&name).unwrap_or_default();
                if let Some(p) = pending.get(&name) {
                    status.connection = STATUS_ONLINE.into();
                    if *p > status.last_heartbeat {
                        status.last_heartbeat = *p;
                    }
                }
                if status.connection == STATUS_ONLINE && now - status.last_heartbeat > threshold {
                    status.connection = STATUS_OFFLINE.into();
                }
                rc.status = status;
                rc
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use shared::timefmt::{Clock, SharedClock, from_unix};

    use super::*;
    use crate::audit::AuditLog;
    use crate::auth::AuthSettings;
    use crate::services::Services;
    use crate::storage::memory::MemoryBackend;

    #[derive(Debug)]
    struct Manual(AtomicI64);
    impl Clock for Manual {
        fn now(&self) -> OffsetDateTime {
            from_unix(self.0.load(Ordering::SeqCst))
        }
    }

    fn server(clock: Arc<Manual>) -> AuthServer {
        let backend = Arc::new(MemoryBackend::new(clock.clone() as SharedClock));
        let dir = std::env::temp_dir().join(format!("tp-status-{}-{}", std::process::id(), shared::certs::random_hex(4)));
        let audit = AuditLog::open(backend.clone(), &dir, "root", clock.clone() as SharedClock).unwrap();
        let settings = AuthSettings {
            cluster_name: "root".into(),
            data_dir: dir,
            public_addr: "root:3080".into(),
            keep_alive_interval: Duration::from_secs(60),
            keep_alive_count_max: 3,
            insecure: false,
            static_tokens: vec![],
        };
        AuthServer::new(Services::new(backend), settings, audit, clock as SharedClock)
    }

    async fn status(a: &AuthServer) -> RemoteClusterStatus {
        a.remote_clusters().await.unwrap().remove(0).status
    }

    #[tokio::test]
    async fn remote_cluster_status_follows_heartbeats() {
        let clock = Arc::new(Manual(AtomicI64::new(1_700_000_000)));
        let a = server(clock.clone());
        let rc = RemoteCluster::new("leaf", Default::default());
        a.services.apply(vec![a.services.create_op(&format!("{}leaf", keys::REMOTE_CLUSTERS), &rc).unwrap()]).await.unwrap();
        // No tunnel: offline, zero heartbeat.
        let s = status(&a).await;
        assert_eq!((s.connection.as_str(), s.last_heartbeat), ("offline", shared::timefmt::go_zero_time()));
        // A heartbeat: online at once, even before it is written.
        let t = clock.now();
        a.record_heartbeat("leaf", t);
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "online".into(), last_heartbeat: t });
        assert_eq!(a.flush_heartbeats().await.unwrap(), 1);
        assert_eq!(status(&a).await.last_heartbeat, t);
        // A newer heartbeat moves it forward; an older one never moves it back.
        let t2 = t + Duration::from_secs(60);
        a.record_heartbeat("leaf", t2);
        a.flush_heartbeats().await.unwrap();
        a.record_heartbeat("leaf", t);
        a.flush_heartbeats().await.unwrap();
        assert_eq!(status(&a).await.last_heartbeat, t2);
        // Silence longer than count_max × interval: offline, heartbeat kept.
        clock.0.fetch_add(60 + 3 * 60 + 1, Ordering::SeqCst);
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: t2 });
        // Explicitly offline (tunnel closed), and reset at start.
        clock.0.store(t2.unix_timestamp(), Ordering::SeqCst);
        assert_eq!(status(&a).await.connection, "online");
        a.mark_offline("leaf").await.unwrap();
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: t2 });
        a.record_heartbeat("leaf", t2);
        a.flush_heartbeats().await.unwrap();
        a.reset_remote_statuses().await.unwrap();
        assert_eq!(status(&a).await.connection, "offline");
        // Heartbeats of a removed leaf are not written.
        a.services.apply(vec![Op::Delete { key: format!("{}leaf", keys::REMOTE_CLUSTERS) }]).await.unwrap();
        a.record_heartbeat("leaf", t2);
        assert_eq!(a.flush_heartbeats().await.unwrap(), 0);
    }
}
