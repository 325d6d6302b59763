//! Tunnel presence, written: each proxy heartbeats one record per leaf it holds a tunnel from
//! (`tunnelconns/<leaf>/<proxy>`, Teleport's `tunnel_connection`), and records a leaf's last
//! heartbeat as its offline status when the tunnel ends (`rcstatus/<leaf>`). What the records
//! mean and how the listings read them: `auth::status`.
//!
//! Heartbeats arrive from every leaf every `keep_alive_interval`, so the tunnel server hands
//! them to the auth service's buffer (where listings see them at once) and [`Presence::flush`]
//! writes them in one transaction every [`FLUSH_EVERY`]. A record never moves back in time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use shared::error::Result;
use shared::resource::TunnelConnection;
use shared::resource::cluster::{RemoteClusterStatus, STATUS_OFFLINE};
use time::OffsetDateTime;

use crate::auth::AuthServer;
use crate::services::{encode, keys};
use crate::shutdown::Shutdown;
use crate::storage::Op;

/// How often buffered heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Up to this many heartbeats in a flush, each leaf is looked up by its key; above, all are listed.
const LOOKUPS_PER_FLUSH: usize = 256;

/// This proxy's presence records.
pub struct Presence {
    auth: Arc<AuthServer>,
    /// The newest heartbeat this process wrote for each leaf (it alone writes its own records),
    /// so that a flush never moves one back in time without reading them.
    written: std::sync::Mutex<HashMap<String, OffsetDateTime>>,
    /// Set when this process stops: its tunnels' records then go in one batch
    /// ([`Presence::leave`]) instead of one transaction per tunnel.
    leaving: AtomicBool,
}

impl Presence {
    /// The writer of this proxy's records.
    pub fn new(auth: Arc<AuthServer>) -> Arc<Presence> {
        Arc::new(Presence { auth, written: Default::default(), leaving: AtomicBool::new(false) })
    }

    /// Leaf `name` registered a tunnel here, so it exists (the tunnel server checked its
    /// `remote_cluster` as it authenticated it): its heartbeats need no lookup. Without this,
    /// the first heartbeat of each of 19,000 leaves that had just connected came 300 to a flush,
    /// and each such flush listed every leaf: half a core for the first half-minute.
    pub fn registered(&self, name: &str) {
        if let Ok(mut w) = self.written.lock() {
            w.entry(name.to_string()).or_insert(OffsetDateTime::UNIX_EPOCH);
        }
    }

    /// A heartbeat from leaf `name`, heard now (by this cluster's clock: a leaf cannot move it).
    pub fn heard(&self, name: &str) {
        self.auth.record_heartbeat(name, self.auth.clock.now());
    }

    fn presence_op(&self, leaf: &str, at: OffsetDateTime) -> Result<Op> {
        let expires = at + self.auth.settings.offline_threshold() + Duration::from_secs(3600);
        let conn = TunnelConnection::new(self.auth.proxy_id(), leaf, at, expires);
        self.auth.services.put_op(&keys::tunnel_conn(leaf, self.auth.proxy_id()), &conn)
    }

    /// Writes buffered heartbeats in one transaction; returns how many.
    pub async fn flush(&self) -> Result<usize> {
        let pending: Vec<(String, OffsetDateTime)> = self.auth.take_heartbeats().into_iter().collect();
        if pending.is_empty() {
            return Ok(0);
        }
        // Only leaves that still exist get a record. A leaf whose tunnel registered here
        // ([`Presence::registered`]) or that was written before is known to exist until its
        // tunnel closes ([`Presence::closed`] forgets it; a removed leaf's tunnel is closed by
        // the tunnel server's watcher), so a flush reads nothing: a lookup per heartbeat was most
        // of an idle root's CPU at 3,000 leaves (a thread hand-off to the storage each). Others
        // (heartbeats with no tunnel here) are looked up one by one, or many in one listing.
        let (known, unknown): (Vec<_>, Vec<_>) = {
            let written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.iter().map(|(n, _)| n.clone()).partition(|n| written.contains_key(n))
        };
        let mut existing: std::collections::HashSet<String> = known.into_iter().collect();
        if unknown.len() <= LOOKUPS_PER_FLUSH {
            for name in unknown {
                if self.auth.services.backend.get(&keys::remote_cluster(&name)).await?.is_some() {
                    existing.insert(name);
                }
            }
        } else {
            let all = self.auth.leaf_names().await?;
            existing.extend(unknown.into_iter().filter(|n| all.contains(n)));
        }
        let mut ops = Vec::new();
        let mut wrote = Vec::new();
        let mut forgotten = Vec::new();
        {
            // A record never goes back in time (heartbeats can arrive out of order).
            let written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, at) in &pending {
                if !existing.contains(name) {
                    forgotten.push(name.clone());
                } else {
                    let at = written.get(name).filter(|m| *m > at).copied().unwrap_or(*at);
                    ops.push(self.presence_op(name, at)?);
                    wrote.push((name.clone(), at));
                }
            }
        }
        if let Ok(mut w) = self.written.lock() {
            for name in &forgotten {
                w.remove(name);
            }
        }
        let n = ops.len();
        if n > 0 {
            self.auth.services.apply(ops).await?;
            if let Ok(mut w) = self.written.lock() {
                w.extend(wrote);
            }
        }
        Ok(n)
    }

    /// Flushes heartbeats every [`FLUSH_EVERY`] until shutdown, and once more at the end.
    pub async fn run_flusher(self: Arc<Self>, shutdown: Shutdown) {
        crate::shutdown::every(FLUSH_EVERY, shutdown, || async {
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "cannot write heartbeats");
            }
        })
        .await;
        let _ = self.flush().await;
    }

    /// This proxy's tunnel from `name` ended: its presence record goes (other proxies' stay),
    /// and the last heartbeat is kept for `tctl get rc`.
    pub async fn closed(&self, name: &str) -> Result<()> {
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(()); // leave_tunnels writes them all at once
        }
        let pending = self.auth.take_heartbeat(name);
        if let Ok(mut w) = self.written.lock() {
            w.remove(name);
        }
        let key = keys::tunnel_conn(name, self.auth.proxy_id());
        let mine = self.auth.services.get::<TunnelConnection>(&key).await?.map(|c| c.value.spec.last_heartbeat);
        if self.auth.services.remote_cluster(name).await?.is_none() {
            self.auth.services.apply(vec![Op::DeleteIfExists { key }]).await?;
            return Ok(());
        }
        // This leaf's row only: a stop closes every tunnel at once, and listing all N statuses
        // for each made a stop of a root with 10,000 leaves take 14 s.
        let stored = self.auth.services.remote_cluster_status(name).await?;
        let mut last = stored.map(|s| s.last_heartbeat).unwrap_or_else(shared::timefmt::go_zero_time);
        for t in [pending, mine].into_iter().flatten() {
            if t > last {
                last = t;
            }
        }
        let status = RemoteClusterStatus { connection: STATUS_OFFLINE.into(), last_heartbeat: last };
        self.auth
            .services
            .apply(vec![
                Op::DeleteIfExists { key },
                Op::Put { key: keys::remote_cluster_status(name), value: encode(&status)?, expires: None },
            ])
            .await?;
        Ok(())
    }

    /// This process is stopping: the tunnels it closes from now on leave their records to
    /// [`Presence::leave`].
    pub fn begin_leaving(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The last step of a stop: every presence record of this proxy goes and each of its leaves
    /// keeps its newest heartbeat as an offline status, in one transaction (one per tunnel made a
    /// stop with 10,000 leaves take 5 s, while their agents' backoff grew).
    pub async fn leave(&self) -> Result<()> {
        self.begin_leaving();
        let pending = self.auth.take_heartbeats();
        let rcs = self.auth.leaf_names().await?;
        let mut stored = self.auth.services.remote_cluster_statuses().await?;
        let mut ops = Vec::new();
        // Each leaf's newest heartbeat here: from this proxy's records, then from what the
        // flusher had not written yet.
        let mut mine: HashMap<String, OffsetDateTime> = HashMap::new();
        for c in self.auth.tunnel_records().await? {
            if c.spec.proxy_name == self.auth.proxy_id() {
                ops.push(Op::DeleteIfExists { key: keys::tunnel_conn(&c.spec.cluster_name, self.auth.proxy_id()) });
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
            self.auth.services.apply(ops).await?;
        }
        Ok(())
    }

    /// At start this proxy holds no tunnel: its records from an earlier run go (other proxies'
    /// stay). Statuses of removed leaves are cleaned up.
    pub async fn reset(&self) -> Result<()> {
        let rcs = self.auth.leaf_names().await?;
        let mut ops = Vec::new();
        for name in self.auth.services.remote_cluster_statuses().await?.into_keys() {
            if !rcs.contains(&name) {
                ops.push(Op::DeleteIfExists { key: keys::remote_cluster_status(&name) });
            }
        }
        for c in self.auth.tunnel_records().await? {
            if c.spec.proxy_name == self.auth.proxy_id() {
                ops.push(Op::DeleteIfExists { key: keys::tunnel_conn(&c.spec.cluster_name, self.auth.proxy_id()) });
            }
        }
        if !ops.is_empty() {
            self.auth.services.apply(ops).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use shared::timefmt::{Clock, SharedClock, from_unix};

    use super::*;
    use crate::audit::AuditLog;
    use crate::auth::AuthSettings;
    use crate::services::Services;
    use crate::storage::memory::MemoryBackend;
    use shared::resource::RemoteCluster;

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
        let a = Arc::new(server(clock.clone()));
        let p = Presence::new(a.clone());
        let rc = RemoteCluster::new("leaf", Default::default());
        a.services.apply(vec![a.services.create_op(&format!("{}leaf", keys::REMOTE_CLUSTERS), &rc).unwrap()]).await.unwrap();
        // No tunnel: offline, zero heartbeat.
        let s = status(&a).await;
        assert_eq!((s.connection.as_str(), s.last_heartbeat), ("offline", shared::timefmt::go_zero_time()));
        // A heartbeat: online at once, even before it is written.
        let t = clock.now();
        a.record_heartbeat("leaf", t);
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "online".into(), last_heartbeat: t });
        assert_eq!(p.flush().await.unwrap(), 1);
        assert_eq!(status(&a).await.last_heartbeat, t);
        // A newer heartbeat moves it forward; an older one never moves it back.
        let t2 = t + Duration::from_secs(60);
        a.record_heartbeat("leaf", t2);
        p.flush().await.unwrap();
        a.record_heartbeat("leaf", t);
        p.flush().await.unwrap();
        assert_eq!(status(&a).await.last_heartbeat, t2);
        // Silence longer than count_max × interval: offline, heartbeat kept.
        clock.0.fetch_add(60 + 3 * 60 + 1, Ordering::SeqCst);
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: t2 });
        // Explicitly offline (tunnel closed), and reset at start.
        clock.0.store(t2.unix_timestamp(), Ordering::SeqCst);
        assert_eq!(status(&a).await.connection, "online");
        p.closed("leaf").await.unwrap();
        assert_eq!(status(&a).await, RemoteClusterStatus { connection: "offline".into(), last_heartbeat: t2 });
        a.record_heartbeat("leaf", t2);
        p.flush().await.unwrap();
        p.reset().await.unwrap();
        assert_eq!(status(&a).await.connection, "offline");
        // Another proxy's tunnel keeps the leaf online when this one's ends.
        let other = TunnelConnection::new("proxy-b", "leaf", t2, t2 + Duration::from_secs(180));
        a.services.apply(vec![a.services.put_op(&keys::tunnel_conn("leaf", "proxy-b"), &other).unwrap()]).await.unwrap();
        a.record_heartbeat("leaf", t2);
        p.flush().await.unwrap();
        p.closed("leaf").await.unwrap();
        assert_eq!(status(&a).await.connection, "online", "proxy-b still holds a tunnel");
        p.reset().await.unwrap();
        assert_eq!(a.tunnel_connections().await.unwrap().len(), 1, "a restart removes only this proxy's records");
        // Heartbeats of a removed leaf are not written.
        a.services.apply(vec![Op::Delete { key: format!("{}leaf", keys::REMOTE_CLUSTERS) }]).await.unwrap();
        a.record_heartbeat("leaf", t2);
        assert_eq!(p.flush().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_stop_writes_every_leafs_status_in_one_batch_and_big_flushes_list() {
        let clock = Arc::new(Manual(AtomicI64::new(1_700_000_000)));
        let a = Arc::new(server(clock.clone()));
        let p = Presence::new(a.clone());
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
        assert_eq!(p.flush().await.unwrap(), n, "every existing leaf, not the removed one");
        // Few: looked up by key; one heartbeat not yet flushed when the stop begins.
        let t2 = t + Duration::from_secs(30);
        a.record_heartbeat("leaf0", t2);
        assert_eq!(p.flush().await.unwrap(), 1);
        let t3 = t2 + Duration::from_secs(30);
        a.record_heartbeat("leaf1", t3);
        // Stopping: closed tunnels write nothing one by one; the batch writes them all.
        p.begin_leaving();
        p.closed("leaf0").await.unwrap();
        assert_eq!(a.tunnel_connections().await.unwrap().len(), n, "nothing written per tunnel while leaving");
        p.leave().await.unwrap();
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
