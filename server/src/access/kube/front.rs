//! Kubernetes clients at a proxy: `kubectl` speaks TLS to the web port with the server name
//! [`shared::kube::PROXY_SNI`] (or to `kube_listen_addr`) and the certificate `tsh kube
//! credentials` gave it. The proxy ends the TLS, checks who the caller is and only that they
//! may see the cluster the certificate routes to (`cluster_labels`), and hands the connection
//! on: to this cluster's own Kubernetes service, or through that leaf's tunnel with the
//! certificate, which the leaf verifies and decides on itself. A root never runs Kubernetes
//! RBAC for a leaf's clusters and never fills in impersonation defaults.

use std::net::SocketAddr;
use std::sync::Arc;

use shared::client::BoxStream;
use shared::error::{Code, Error};
use shared::identity::Caller;

use super::engine::{Forwarded, KubeEngine, refuse};
use crate::auth::AuthServer;
use crate::authz::Authorizer;
use crate::proxy::dial::Dialer;
use crate::tunnel::{Origin, Target};

/// The proxy side of Kubernetes access.
pub struct KubeFront {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// Tunnels held here, else by a peer proxy.
    pub dialer: Arc<dyn Dialer>,
    /// This process's Kubernetes service, if it runs one.
    pub engine: Option<Arc<KubeEngine>>,
}

impl KubeFront {
    /// Serves one connection whose TLS this proxy ended; `cert` is the verified client
    /// certificate (DER), if any.
    pub async fn serve(self: Arc<Self>, stream: BoxStream, cert: Option<Vec<u8>>, peer: Option<SocketAddr>) {
        let addr = peer.map(|p| p.to_string()).unwrap_or_default();
        let Some(cert) = cert else {
            let msg = "a Kubernetes client needs a certificate: run 'tsh kube login <kube cluster>' and use the kubeconfig it writes";
            refuse(stream, 401, msg.into()).await;
            return;
        };
        match self.route(&cert, &addr).await {
            Ok(Route::Here) => {
                let fwd = Forwarded { cert, addr, via_root: None };
                serve_in_cluster(&self.auth, self.dialer.as_ref(), self.engine.as_ref(), stream, fwd).await
            }
            Ok(Route::Leaf(target)) => crate::tunnel::splice(stream, target).await,
            Err(e) => {
                tracing::info!(addr = %addr, error = %e, "refused a Kubernetes connection");
                let code = match e.kind {
                    shared::error::Kind::NotFound => 404,
                    shared::error::Kind::ConnectionProblem => 503,
                    shared::error::Kind::LimitExceeded => 429,
                    _ => 403,
                };
                refuse(stream, code, e.message).await;
            }
        }
    }

    async fn route(&self, der: &[u8], addr: &str) -> shared::error::Result<Route> {
        let peer = shared::certs::parse_peer_cert(der)?;
        let ctx = Authorizer::new(self.auth.clone()).context(&peer).await?;
        let local = self.auth.cluster_name().to_string();
        let identity = match ctx.caller {
            Caller::LocalUser(u) => u,
            Caller::RemoteUser { identity, .. } => {
                // A root's user at this cluster's own proxy: only for this cluster.
                return match identity.route_to_cluster.as_deref() {
                    Some(r) if r == local => Ok(Route::Here),
                    _ => Err(Error::access_denied("access denied: remote user can not access remote cluster")),
                };
            }
            Caller::Host(_) => return Err(Error::access_denied("[00] access denied")),
        };
        let cluster = match identity.route_to_cluster.as_deref() {
            None => return Ok(Route::Here),
            Some(c) if c == local => return Ok(Route::Here),
            Some(c) => c.to_string(),
        };
        let mut origin = Origin::with_cert(&identity.username, &local, &identity.roles, addr, der);
        origin.issued_at = Some(shared::identity::tls_cert_issued_at(peer.not_before).unix_timestamp());
        let stream = crate::access::dial_leaf(&self.auth, self.dialer.as_ref(), Some(&ctx.checker), &cluster, Target::Kube, origin).await?;
        Ok(Route::Leaf(stream))
    }
}

enum Route {
    Here,
    Leaf(BoxStream),
}

/// Hands a connection for one of this cluster's Kubernetes clusters (the one the certificate
/// names) to whoever serves it: this process's engine, or a Kubernetes service in a process of
/// its own through that process's tunnel (with the certificate, which it verifies itself).
pub async fn serve_in_cluster(auth: &AuthServer, dialer: &dyn Dialer, engine: Option<&Arc<KubeEngine>>, stream: BoxStream, fwd: Forwarded) {
    let who = fwd.claimed_user();
    let name = who.as_ref().and_then(|u| u.kubernetes_cluster.clone());
    if let Some(e) = engine
        && name.as_ref().is_none_or(|n| e.upstreams.contains_key(n))
    {
        // Here (or no name: the engine says what is wrong with the certificate).
        e.clone().serve(stream, fwd).await;
        return;
    }
    let not_found = || {
        format!(
            "kubernetes cluster {:?} not found in cluster {:?}; 'tsh kube ls' lists the ones you can reach",
            name.as_deref().unwrap_or_default(),
            auth.cluster_name()
        )
    };
    let record = match &name {
        Some(n) => auth.services.get::<shared::resource::KubeCluster>(&crate::services::keys::kube_cluster(n)).await.ok().flatten(),
        None => None,
    };
    let Some(k) = record.map(|r| r.value).filter(|k| k.spec.tunnel && k.metadata.expires.is_none_or(|e| e > auth.clock.now())) else {
        refuse(stream, 404, not_found()).await;
        return;
    };
    match crate::access::dial_agent(dialer, k.spec.host_id.clone(), Target::Kube, who, &fwd, auth.cluster_name()).await {
        Ok(target) => crate::tunnel::splice(stream, target).await,
        Err(e) => {
            let msg = if e.has(Code::TunnelOffline) {
                format!("the Kubernetes service of {:?} ({}) is offline", k.metadata.name, k.spec.hostname)
            } else {
                e.message
            };
            refuse(stream, 503, msg).await;
        }
    }
}
