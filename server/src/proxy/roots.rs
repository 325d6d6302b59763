//! The leaf side: one tunnel agent per *enabled* trusted cluster, started and stopped as
//! `trusted_cluster` resources change (following the change feed; a gap in it re-reads them all).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shared::resource::{CaType, TrustedCluster};

use super::leaf::{LeafService, LeafShared};
use crate::auth::AuthServer;
use crate::services::keys;
use crate::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
use crate::ssh::LiveCreds;
use crate::tunnel::agent::{AgentConfig, Announce, CaSource};

/// Keeps agents in step with trusted clusters.
pub struct TrustManager {
    /// The auth service (trusted clusters and root CAs).
    pub auth: Arc<AuthServer>,
    /// This proxy's host credentials.
    pub creds: LiveCreds,
    /// What the leaf serves to its roots.
    pub leaf: Arc<LeafShared>,
    /// Reconnect backoff cap.
    pub max_backoff: Duration,
    /// Where each pool reports its tunnels (`tctl status`).
    pub agents: Arc<crate::tunnel::state::AgentRegistry>,
}

struct Running {
    addr: String,
    stop: ShutdownTrigger,
}

impl TrustManager {
    /// This leaf's host CA, for its roots: sent at connect and after every change (its
    /// rotation), so a root trusts the leaf's new keys before the leaf uses them.
    fn announce(&self) -> Announce {
        let auth = self.auth.clone();
        Announce {
            message: Arc::new(move || {
                let auth = auth.clone();
                Box::pin(async move { crate::tunnel::cas_message(&auth, &[CaType::Host]).await })
            }),
            changes: self.auth.authz_changes(),
        }
    }

    /// Runs until `shutdown`: reconciles after every change to trusts or CAs (from any process
    /// of the cluster) and after every gap in the change feed.
    pub async fn run(self, shutdown: Shutdown) {
        let running: Arc<tokio::sync::Mutex<HashMap<String, Running>>> = Default::default();
        let me = Arc::new(self);
        let prefixes = [keys::TRUSTED_CLUSTERS, keys::AUTHORITIES, keys::DEACTIVATED];
        {
            let (me, running) = (me.clone(), running.clone());
            crate::follow::follow(me.auth.services.backend.clone(), &prefixes, shutdown, move |_| {
                let (me, running) = (me.clone(), running.clone());
                async move { me.reconcile(&mut *running.lock().await).await }
            })
            .await;
        }
        for (_, r) in running.lock().await.drain() {
            r.stop.trigger();
        }
    }

    async fn reconcile(&self, running: &mut HashMap<String, Running>) {
        let wanted: Vec<TrustedCluster> = match self.auth.services.list::<TrustedCluster>(keys::TRUSTED_CLUSTERS).await {
            Ok(all) => all.into_iter().filter(|tc| tc.spec.enabled).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read trusted clusters");
                return;
            }
        };
        let names: Vec<String> = running.keys().cloned().collect();
        for name in names {
            let keep =
                wanted.iter().any(|tc| tc.metadata.name == name && running.get(&name).is_some_and(|r| r.addr == tc.spec.tunnel_addr));
            if !keep && let Some(r) = running.remove(&name) {
                tracing::info!(root = %name, "stopping tunnel to root cluster");
                r.stop.trigger();
                self.agents.stop(&name);
            }
        }
        for tc in wanted {
            let name = tc.metadata.name.clone();
            if running.contains_key(&name) {
                continue;
            }
            let (stop, agent_shutdown) = shutdown_pair();
            let auth = self.auth.clone();
            let root = name.clone();
            let cas: CaSource = Arc::new(move || {
                let auth = auth.clone();
                let root = root.clone();
                Box::pin(async move {
                    Ok(auth.services.ca(CaType::Host, &root, false).await?.map(|ca| ca.ssh_public_keys()).unwrap_or_default())
                })
            });
            let cfg = AgentConfig {
                name: format!("tunnel to {name}"),
                addr: tc.spec.tunnel_addr.clone(),
                server_cluster: name.clone(),
                server_cas: cas,
                creds: self.creds.clone(),
                interval: self.auth.settings.keep_alive_interval,
                count_max: self.auth.settings.keep_alive_count_max,
                max_backoff: self.max_backoff,
                service: Arc::new(LeafService { shared: self.leaf.clone(), root: name.clone() }),
                clock: self.auth.clock.clone(),
                status: self.agents.start(&name, &tc.spec.tunnel_addr),
                announce: Some(self.announce()),
                source: None,
                on_cas: Some({
                    let (auth, root) = (self.auth.clone(), name.clone());
                    Arc::new(move |cas| {
                        let (auth, root) = (auth.clone(), root.clone());
                        tokio::spawn(async move {
                            if let Err(e) = auth.update_external_cas(&root, &[CaType::User, CaType::Host], cas).await {
                                tracing::warn!(root = %root, error = %e, "cannot store the root cluster's certificate authorities");
                            }
                        });
                    })
                }),
            };
            tracing::info!(root = %name, addr = %tc.spec.tunnel_addr, "starting tunnel to root cluster");
            tokio::spawn(crate::tunnel::pool::run(cfg, agent_shutdown));
            running.insert(name, Running { addr: tc.spec.tunnel_addr.clone(), stop });
        }
    }
}
