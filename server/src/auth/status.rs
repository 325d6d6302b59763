//! Connection status of leaf clusters, as the root sees them, whichever of the root's
//! processes holds each leaf's tunnel: the listings read it here; `tunnel::presence` writes it.
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

use shared::error::Result;
use shared::resource::cluster::{RemoteClusterStatus, STATUS_OFFLINE, STATUS_ONLINE};
use shared::resource::{RemoteCluster, TunnelConnection};
use time::OffsetDateTime;

use super::AuthServer;
use crate::services::keys;

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
        self.take_heartbeat(name);
    }

    /// Takes the pending heartbeat of `name`, if any (the writer is `tunnel::presence`).
    pub fn take_heartbeat(&self, name: &str) -> Option<OffsetDateTime> {
        self.heartbeats.lock().ok().and_then(|mut h| h.remove(name))
    }

    /// Takes every pending heartbeat.
    pub fn take_heartbeats(&self) -> HashMap<String, OffsetDateTime> {
        self.heartbeats.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default()
    }

    fn pending(&self) -> HashMap<String, OffsetDateTime> {
        self.heartbeats.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// This process's name among the cluster's proxies.
    pub fn proxy_id(&self) -> &str {
        &self.settings.proxy_id
    }

    /// The names of every leaf, read from the keys alone.
    pub async fn leaf_names(&self) -> Result<std::collections::HashSet<String>> {
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
    pub async fn tunnel_records(&self) -> Result<Vec<TunnelConnection>> {
        if let Some(copy) = self.leaf_view.current(&self.services).await? {
            return Ok(copy.live_conns(self.clock.now()).cloned().collect());
        }
        self.services.list(keys::TUNNEL_CONNS).await
    }

    /// `tctl status`: the tunnels this process keeps to each trusted root (disabled trusts
    /// included; `outbound` reports the live agent pool to a root, which the proxy keeps), and
    /// those every leaf keeps to this cluster's proxies.
    pub async fn tunnel_status(
        &self,
        outbound: &(dyn Fn(&str, OffsetDateTime) -> Option<shared::api::OutboundTunnel> + Sync),
    ) -> Result<shared::api::TunnelStatusResponse> {
        use shared::api::{InboundTunnels, OutboundTunnel, ProxyTunnel};
        let now = self.clock.now();
        let mut roots = Vec::new();
        for tc in self.services.list::<shared::resource::TrustedCluster>(keys::TRUSTED_CLUSTERS).await? {
            let name = tc.metadata.name.clone();
            roots.push(match outbound(&name, now) {
                Some(report) if tc.spec.enabled => report,
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
