//! Application access (reference `kube-app-db.md` §3). So far the service half's registration:
//! the apps of `app_service.apps` are heartbeated as `app` records with who serves them, and
//! listed to those whose (mapped) roles' `app_labels` match (`tctl get apps`, `tsh apps ls`).
//! The browser path, the leaf's decision and the JWT come next, in `front.rs` and `engine.rs`
//! as for Kubernetes.

pub mod engine;
pub mod front;
pub mod jwt;

use std::sync::Arc;
use std::time::Duration;

use shared::resource::App;

use crate::auth::AuthServer;
use crate::shutdown::Shutdown;

/// The app service of a cluster process.
pub struct AppService {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// The apps it serves.
    pub apps: Vec<App>,
    /// This process.
    pub host_id: String,
    /// This process's host name.
    pub hostname: String,
    /// How often the apps are heartbeated (they live three intervals).
    pub heartbeat: Duration,
}

impl AppService {
    /// Heartbeats every app until shutdown, then removes those it served.
    pub async fn run_heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            let expires = self.auth.clock.now() + self.heartbeat * 3;
            for a in &self.apps {
                let served = App::served(a.clone(), &self.host_id, &self.hostname, false, expires);
                if let Err(e) = self.auth.upsert_app_server(served, &self.host_id).await {
                    tracing::warn!(app = %a.metadata.name, error = %e, "cannot register the app; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.heartbeat) => {}
            }
        }
        for a in &self.apps {
            let key = crate::services::keys::app(&a.metadata.name);
            if let Ok(Some(v)) = self.auth.services.get::<App>(&key).await
                && v.value.spec.host_id == self.host_id
            {
                let _ = self.auth.services.apply(vec![crate::storage::Op::DeleteIfExists { key }]).await;
            }
        }
    }
}

/// The apps with their public addresses: their own, else `<name>.<proxy public host>` when that
/// host is a DNS name (Teleport's default), else none (reached by `tsh` alone).
pub fn with_public_addrs(apps: &[App], proxy_public_addr: &str) -> Vec<App> {
    let host = shared::app::host_only(proxy_public_addr);
    apps.iter()
        .cloned()
        .map(|mut a| {
            if a.spec.public_addr.is_empty() && shared::app::is_dns_name(&host) {
                a.spec.public_addr = format!("{}.{host}", a.metadata.name);
            }
            a
        })
        .collect()
}
