//! Connection status of leaf clusters, as the root sees them, whichever of the root's
//! processes holds each leaf's tunnel.
//!
//! Each proxy heartbeats one presence record per leaf it holds a tunnel from:
//! `tunnelconns/<leaf>/<proxy>` (Teleport's `tunnel_connection`), live while its heartbeat is
//! less than `keep_alive_count_max × keep_alive_interval` old, kept an hour longer so that an
//! offline leaf still shows when it was last heard from. Heartbeats arrive
//! from every leaf every `keep_alive_interval`, so they are kept in memory and written in one
//! transaction per flush (every 500 ms). A leaf is `online` while any proxy's record is live;
//! `last_heartbeat` is the newest of them, or, once none is left, the last one written to
//! `rcstatus/<leaf>` when a tunnel ended (apart from the `remote_cluster` resource, so that
//! heartbeats never conflict with `tctl update rc`). `last_heartbeat` only moves forward.
//! A proxy that dies leaves records that expire by themselves; one that restarts removes its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shared::error::Result;
use shared::resource::cluster::{RemoteClusterStatus, STATUS_OFFLINE, STATUS_ONLINE};
use shared::resource::{RemoteCluster, TunnelConnection};
use time::OffsetDateTime;

use super::AuthServer;
use crate::services::{encode, keys};
use crate::shutdown::Shutdown;
use crate::storage::Op;

/// How often buffered heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Up to this many heartbeats in a flush, each leaf is looked up by its key; above, all are listed.
const LOOKUPS_PER_FLUSH: usize = 256;

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
        if let Ok(mut w) = self.written.lock() {
            w.remove(name);
        }
    }

    fn pending(&self) -> HashMap<String, OffsetDateTime> {
        self.heartbeats.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// This process's name among the cluster's proxies.
    pub fn proxy_id(&self) -> &str {
        &self.settings.proxy_id
    }

    /// The names of every leaf, read from the keys alone.
    async fn leaf_names(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .services
            .backend
            .list(keys::REMOTE_CLUSTERS)
            .await?
            .into_iter()
            .filter_map(|i| i.key.strip_prefix(keys::REMOTE_CLUSTERS).map(str::to_string))
            .collect())
    }

    /// Every live tunnel connection, of every proxy.
    pub async fn tunnel_connections(&self) -> Result<Vec<TunnelConnection>> {
        let (now, threshold) = (self.clock.now(), self.settings.offline_threshold());
        Ok(self.tunnel_records().await?.into_iter().filter(|c| now - c.spec.last_heartbeat <= threshold).collect())
    }

    /// Every stored tunnel record, live or recently dead.
    async fn tunnel_records(&self) -> Result<Vec<TunnelConnection>> {
        if let Some(copy) = self.leaf_view.current(&self.services).await? {
            return Ok(copy.live_conns(self.clock.now()).cloned().collect());
        }
        self.services.list(keys::TUNNEL_CONNS).await
    }

    fn presence_op(&self, leaf: &str, at: OffsetDateTime) -> Result<Op> {
        let expires = at + self.settings.offline_threshold() + Duration::from_secs(3600);
        let conn = TunnelConnection::new(self.proxy_id(), leaf, at, expires);
        self.services.put_op(&keys::tunnel_conn(leaf, self.proxy_id()), &conn)
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
        // Only leaves that still exist get a record. A flush holds one heartbeat per leaf every
        // keep_alive_interval: a few leaves are looked up one by one, many in one listing (a
        // listing of all 10,000 every 500 ms was most of an idle root's CPU).
        let existing: std::collections::HashSet<String> = if pending.len() <= LOOKUPS_PER_FLUSH {
            let mut found = std::collections::HashSet::new();
            for (name, _) in &pending {
                if self.services.backend.get(&format!("{}{name}", keys::REMOTE_CLUSTERS)).await?.is_some() {
                    found.insert(name.clone());
                }
            }
            found
        } else {
            self.leaf_names().await?
        };
        let mut ops = Vec::new();
        let mut wrote = Vec::new();
        {
            // A record never goes back in time (heartbeats can arrive out of order).
            let written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, at) in &pending {
                if existing.contains(name) {
                    let at = written.get(name).filter(|m| *m > at).copied().unwrap_or(*at);
                    ops.push(self.presence_op(name, at)?);
                    wrote.push((name.clone(), at));
                }
            }
        }
        let n = ops.len();
        if n > 0 {
            self.services.apply(ops).await?;
            if let Ok(mut w) = self.written.lock() {
                w.extend(wrote);
            }
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

    /// This proxy's tunnel from `name` ended: its presence record goes (other proxies' stay),
    /// and the last heartbeat is kept for `tctl get rc`.
    pub async fn tunnel_closed(&self, name: &str) -> Result<()> {
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(()); // leave_tunnels writes them all at once
        }
        let pending = self.heartbeats.lock().ok().and_then(|mut h| h.remove(name));
        let key = keys::tunnel_conn(name, self.proxy_id());
        let mine = self.services.get::<TunnelConnection>(&key).await?.map(|c| c.value.spec.last_heartbeat);
        if self.services.remote_cluster(name).await?.is_none() {
            self.services.apply(vec![Op::DeleteIfExists { key }]).await?;
            return Ok(());
        }
        // This leaf's row only: a stop closes every tunnel at once, and listing all N statuses
        // for each made a stop of a root with 10,000 leaves take 14 s.
        let stored = self.services.remote_cluster_status(name).await?;
        let mut last = stored.map(|s| s.last_heartbeat).unwrap_or_else(shared::timefmt::go_zero_time);
        for t in [pending, mine].into_iter().flatten() {
            if t > last {
                last = t;
            }
        }
        let status = RemoteClusterStatus { connection: STATUS_OFFLINE.into(), last_heartbeat: last };
        self.services
            .apply(vec![
                Op::DeleteIfExists { key },
                Op::Put { key: keys::remote_cluster_status(name), value: encode(&status)?, expires: None },
            ])
            .await?;
        Ok(())
    }

    /// This process is stopping: the tunnels it closes from now on leave their records to
    /// [`AuthServer::leave_tunnels`].
    pub fn begin_leaving(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The last step of a stop: every presence record of this proxy goes and each of its leaves
    /// keeps its newest heartbeat as an offline status, in one transaction (one per tunnel made a
    /// stop with 10,000 leaves take 5 s, while their agents' backoff grew).
    pub async fn leave_tunnels(&self) -> Result<()> {
        self.begin_leaving();
        let pending = self.heartbeats.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        let rcs = self.leaf_names().await?;
        let mut stored = self.services.remote_cluster_statuses().await?;
        let mut ops = Vec::new();
        // Each leaf's newest heartbeat here: from this proxy's records, then from what the
        // flusher had not written yet.
        let mut mine: HashMap<String, OffsetDateTime> = HashMap::new();
        for c in self.tunnel_records().await? {
            if c.spec.proxy_name == self.proxy_id() {
                ops.push(Op::DeleteIfExists { key: keys::tunnel_conn(&c.spec.cluster_name, self.proxy_id()) });
                mine.insert(c.spec.cluster_name, c.spec.last_heartbeat);
            }
        }
        for (name, at) in pending {
            let e = mine.entry(name).or_insert(at);
            *e = (*e).max(at);
        }
        for (name, at) in mine {
            if !rcs.contains(&name) {
                continue;
            }
            let last = stored.remove(&name).map_or(at, |s| s.last_heartbeat.max(at));
            let status = RemoteClusterStatus { connection: STATUS_OFFLINE.into(), last_heartbeat: last };
            ops.push(Op::Put { key: keys::remote_cluster_status(&name), value: encode(&status)?, expires: None });
        }
        if !ops.is_empty() {
            self.services.apply(ops).await?;
        }
        Ok(())
    }

    /// At start this proxy holds no tunnel: its records from an earlier run go (other proxies'
    /// stay). Statuses of removed leaves are cleaned up.
    pub async fn reset_remote_statuses(&self) -> Result<()> {
        let rcs = self.leaf_names().await?;
        let mut ops = Vec::new();
        for name in self.services.remote_cluster_statuses().await?.into_keys() {
            if !rcs.contains(&name) {
                ops.push(Op::DeleteIfExists { key: keys::remote_cluster_status(&name) });
            }
        }
        for c in self.tunnel_records().await? {
            if c.spec.proxy_name == self.proxy_id() {
                ops.push(Op::DeleteIfExists { key: keys::tunnel_conn(&c.spec.cluster_name, self.proxy_id()) });
            }
        }
        if !ops.is_empty() {
            self.services.apply(ops).await?;
        }
        Ok(())
    }

    /// `tctl status`: the tunnels this process keeps to each trusted root (disabled trusts
    /// included), and those every leaf keeps to this cluster's proxies.
    pub async fn tunnel_status(&self) -> Result<shared::api::TunnelStatusResponse> {
        use shared::api::{InboundTunnels, OutboundTunnel, ProxyTunnel};
        let now = self.clock.now();
        let mut roots = Vec::new();
        for tc in self.services.list::<shared::resource::TrustedCluster>(keys::TRUSTED_CLUSTERS).await? {
            let name = tc.metadata.name.clone();
            roots.push(match self.agents.get(&name) {
                Some(s) if tc.spec.enabled => s.report(&name, now),
                _ => OutboundTunnel {
                    cluster: name,
                    tunnel_addr: tc.spec.tunnel_addr.clone(),
                    state: if tc.spec.enabled { "starting".into() } else { "disabled".into() },
                    ..Default::default()
                },
            });
        }
        let threshold = self.settings.offline_threshold();
        // Each leaf's live records, grouped once (not a pass over all records per leaf).
        let mut live: HashMap<String, Vec<ProxyTunnel>> = HashMap::new();
        for c in self.tunnel_records().await? {
            if now - c.spec.last_heartbeat <= threshold {
                let t = ProxyTunnel { proxy: c.spec.proxy_name, since: None, last_heartbeat: Some(c.spec.last_heartbeat) };
                live.entry(c.spec.cluster_name).or_default().push(t);
            }
        }
        let mut leaves = Vec::new();
        for rc in self.remote_clusters().await? {
            let mut proxies = live.remove(&rc.metadata.name).unwrap_or_default();
            proxies.sort_by(|a, b| a.proxy.cmp(&b.proxy));
            let last = rc.status.last_heartbeat;
            leaves.push(InboundTunnels {
                cluster: rc.metadata.name.clone(),
                status: rc.status.connection.clone(),
                last_heartbeat: (last > shared::timefmt::go_zero_time()).then_some(last),
                proxies,
            });
        }
        Ok(shared::api::TunnelStatusResponse { proxy: self.proxy_id().into(), roots, leaves })
    }

    /// Every remote cluster with its live status: from the copy in memory where there is one
    /// ([`super::leafview`]), else from three listings.
    pub async fn remote_clusters(&self) -> Result<Vec<RemoteCluster>> {
        let now = self.clock.now();
        let pending = self.pending();
        if let Some(copy) = self.leaf_view.current(&self.services).await? {
            let conns = copy.live_conns(now).map(|c| (c.spec.cluster_name.as_str(), c.spec.last_heartbeat));
            let newest = newest_heartbeats(conns, &pending);
            return Ok(copy
                .leaves
                .values()
                .map(|rc| self.with_status(rc.clone(), copy.stored.get(&rc.metadata.name).cloned(), &newest, now))
                .collect());
        }
        let all: Vec<RemoteCluster> = self.services.list(keys::REMOTE_CLUSTERS).await?;
        let mut stored = self.services.remote_cluster_statuses().await?;
        let conns = self.tunnel_records().await?;
        let newest = newest_heartbeats(conns.iter().map(|c| (c.spec.cluster_name.as_str(), c.spec.last_heartbeat)), &pending);
        Ok(all
            .into_iter()
            .map(|rc| {
                let status = stored.remove(&rc.metadata.name);
                self.with_status(rc, status, &newest, now)
            })
            .collect())
    }

    /// `rc` with its live status: online while a heartbeat is newer than the offline threshold;
    /// the last heartbeat is the newest of the stored one and every proxy's.
    fn with_status(
        &self,
        mut rc: RemoteCluster,
        stored: Option<RemoteClusterStatus>,
        newest: &HashMap<&str, OffsetDateTime>,
        now: OffsetDateTime,
    ) -> RemoteCluster {
        let mut status = stored.unwrap_or_default();
        status.connection = STATUS_OFFLINE.into();
        if let Some(at) = newest.get(rc.metadata.name.as_str()) {
            if *at > status.last_heartbeat {
                status.last_heartbeat = *at;
            }
            if now - *at <= self.settings.offline_threshold() {
                status.connection = STATUS_ONLINE.into();
            }
        }
        rc.status = status;
        rc
    }
}

/// The newest heartbeat of each leaf, from any proxy's record or this one's buffer.
fn newest_heartbeats<'a>(
    conns: impl Iterator<Item = (&'a str, OffsetDateTime)>,
    pending: &'a HashMap<String, OffsetDateTime>,
) -> HashMap<&'a str, OffsetDateTime> {
    let mut newest: HashMap<&str, OffsetDateTime> = HashMap::new();
    for (leaf, at) in conns.chain(pending.iter().map(|(k, v)| (k.as_str(), *v))) {
        let e = newest.entry(leaf).or_insert(at);
        if at > *e {
            *e = at;
        }
    }
    newest
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
        let audit =
            AuditLog::open(Arc::new(crate::audit::BackendAudit(backend.clone())), &dir, "root", clock.clone() as SharedClock).unwrap();
        let settings = AuthSettings {
            cluster_name: "root".into(),
            data_dir: dir,
            public_addr: "root:3080".into(),
            keep_alive_interval: Duration::from_secs(60),
            keep_alive_count_max: 3,
            offline_leaf_ttl: None,
            insecure: false,
            static_tokens: vec![],
            proxy_id: "proxy-a".into(),
            auth_preference: None,
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
        a.tunnel_closed("leaf").await.unwrap();
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: t2 });
        a.record_heartbeat("leaf", t2);
        a.flush_heartbeats().await.unwrap();
        a.reset_remote_statuses().await.unwrap();
        assert_eq!(status(&a).await.connection, "offline");
        // Another proxy's tunnel keeps the leaf online when this one's ends.
        let other = TunnelConnection::new("proxy-b", "leaf", t2, t2 + Duration::from_secs(180));
        a.services.apply(vec![a.services.put_op(&keys::tunnel_conn("leaf", "proxy-b"), &other).unwrap()]).await.unwrap();
        a.record_heartbeat("leaf", t2);
        a.flush_heartbeats().await.unwrap();
        a.tunnel_closed("leaf").await.unwrap();
        assert_eq!(status(&a).await.connection, "online", "proxy-b still holds a tunnel");
        a.reset_remote_statuses().await.unwrap();
        assert_eq!(a.tunnel_connections().await.unwrap().len(), 1, "a restart removes only this proxy's records");
        // Heartbeats of a removed leaf are not written.
        a.services.apply(vec![Op::Delete { key: format!("{}leaf", keys::REMOTE_CLUSTERS) }]).await.unwrap();
        a.record_heartbeat("leaf", t2);
        assert_eq!(a.flush_heartbeats().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_stop_writes_every_leafs_status_in_one_batch_and_big_flushes_list() {
        let clock = Arc::new(Manual(AtomicI64::new(1_700_000_000)));
        let a = server(clock.clone());
        // More leaves than one flush looks up one by one, so the listing branch runs too.
        let n = LOOKUPS_PER_FLUSH + 10;
        let ops: Vec<Op> = (0..n)
            .map(|i| {
                let rc = RemoteCluster::new(&format!("leaf{i}"), Default::default());
                a.services.create_op(&format!("{}leaf{i}", keys::REMOTE_CLUSTERS), &rc).unwrap()
            })
            .collect();
        a.services.apply(ops).await.unwrap();
        let t = clock.now();
        for i in 0..n {
            a.record_heartbeat(&format!("leaf{i}"), t);
        }
        a.record_heartbeat("removed", t);
        assert_eq!(a.flush_heartbeats().await.unwrap(), n, "every existing leaf, not the removed one");
        // Few: looked up by key; one heartbeat not yet flushed when the stop begins.
        let t2 = t + Duration::from_secs(30);
        a.record_heartbeat("leaf0", t2);
        assert_eq!(a.flush_heartbeats().await.unwrap(), 1);
        let t3 = t2 + Duration::from_secs(30);
        a.record_heartbeat("leaf1", t3);
        // Stopping: closed tunnels write nothing one by one; the batch writes them all.
        a.begin_leaving();
        a.tunnel_closed("leaf0").await.unwrap();
        assert_eq!(a.tunnel_connections().await.unwrap().len(), n, "nothing written per tunnel while leaving");
        a.leave_tunnels().await.unwrap();
        assert!(a.tunnel_connections().await.unwrap().is_empty(), "this proxy's records are gone");
        let all = a.remote_clusters().await.unwrap();
        assert_eq!(all.len(), n);
        for rc in all {
            let want = match rc.metadata.name.as_str() {
                "leaf0" => t2,
                "leaf1" => t3,
                _ => t,
            };
            assert_eq!(rc.status, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: want }, "{}", rc.metadata.name);
        }
    }
}
