//! What a leaf serves its root through the tunnel the leaf dialled: its API, its *registered*
//! nodes, and a place to drop the root's locks. Nothing here dials an address that is not a
//! registered node.
//!
//! Every request names the user it is for and their address ([`Origin`]), which the leaf can
//! believe only because the root's proxy is the one peer that can open channels on this tunnel.
//! The leaf uses it to:
//! - audit who connected, from where, to which node (`session.connect`);
//! - refuse a root's user a lock stops (the root's locks, replicated here, and the leaf's own);
//! - count each root user's connections: at most `per_source_max_startups` through the tunnel at
//!   once, and the mapped roles' `max_connections` in the leaf's state;
//! - serve its API's unauthenticated endpoints (password login, invites, joins, the trust
//!   handshake) only to direct callers, never through the tunnel (`crate::api`).

use std::sync::Arc;

use serde_json::json;
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::resource::Lock;
use shared::resource::lock::Subject;
use tokio::io::AsyncReadExt;

use super::router::Router;
use crate::audit::codes;
use crate::limits::{Limiter, Source};
use crate::live::{Live, LiveEntry};
use crate::tunnel::agent::TunnelService;
use crate::tunnel::{Origin, Target, TunnelRequest, write_err, write_ok};

/// Largest lock list a root may send (JSON).
const MAX_LOCKS_BODY: u64 = 4 * 1024 * 1024;

/// What the leaf shares between the tunnels to all its roots.
pub struct LeafShared {
    /// Routing to registered nodes and the API.
    pub router: Arc<Router>,
    /// Connections served for roots' users, for locks to end.
    pub live: Arc<Live>,
    /// Connection limits (the leaf's own).
    pub limiter: Arc<Limiter>,
    /// This cluster's Kubernetes service, if this process runs one.
    pub kube: Option<Arc<crate::access::kube::engine::KubeEngine>>,
    /// This cluster's app service, if this process runs one.
    pub app: Option<Arc<crate::access::app::engine::AppEngine>>,
    /// This cluster's database service, if this process runs one.
    pub db: Option<Arc<crate::access::db::engine::DbEngine>>,
}

/// The service behind the tunnel to one root.
pub struct LeafService {
    /// Shared state.
    pub shared: Arc<LeafShared>,
    /// The root this tunnel goes to: it may speak only for its own users.
    pub root: String,
}

impl TunnelService for LeafService {
    fn serve(&self, req: TunnelRequest, mut stream: russh::ChannelStream<russh::client::Msg>) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        let root = self.root.clone();
        Box::pin(async move {
            if let Some(o) = &req.origin
                && o.cluster != root
            {
                tracing::warn!(root = %root, claimed = %o.cluster, "refused a request the root made for another cluster's user");
                let _ = write_err(&mut stream, &Error::access_denied("a root cluster may only connect its own users")).await;
                return;
            }
            match req.target {
                Target::Api => {
                    if write_ok(&mut stream).await.is_ok() {
                        shared.router.api.serve(Box::new(stream), None, req.origin).await;
                    }
                }
                Target::Locks => receive_locks(&shared, &root, stream).await,
                Target::Kube | Target::App | Target::Db => serve_with_cert(&shared, &root, req.target, req.origin, stream).await,
                Target::Node { host, port } => serve_node(&shared, &root, &host, port, req.origin, stream).await,
                Target::Ssh => {
                    tracing::warn!(root = %root, "refused a tunnel request for a node's own SSH at a leaf proxy");
                    let _ = write_err(&mut stream, &Error::bad_parameter("unsupported tunnel target")).await;
                }
            }
        })
    }
}

/// Counts a root's user as a source of its own (one user cannot take every place), or tells
/// the root why not.
async fn admit(shared: &LeafShared, caller: &str, stream: &mut russh::ChannelStream<russh::client::Msg>) -> Option<crate::limits::Permit> {
    match shared.limiter.admit(Source::Caller(caller.to_string())) {
        Ok(p) => Some(p),
        Err(r) => {
            let msg = format!("too many connections at once through the trusted cluster tunnel for {caller} ({r:?}); try again shortly");
            let _ = write_err(stream, &Error::limit_exceeded(msg)).await;
            None
        }
    }
}

/// Hands a root's Kubernetes client, app session or database client to this cluster's service for it, with the
/// user's certificate the root's proxy received: the service verifies it against the root's
/// user CA and decides with the mapped roles.
async fn serve_with_cert(
    shared: &LeafShared,
    root: &str,
    target: Target,
    origin: Option<Origin>,
    mut stream: russh::ChannelStream<russh::client::Msg>,
) {
    let cert = origin.as_ref().and_then(Origin::cert_der);
    let (Some(o), Some(cert)) = (origin, cert) else {
        let msg = format!("a {} request through the tunnel must carry the user's certificate", target.encode());
        let _ = write_err(&mut stream, &Error::access_denied(msg)).await;
        return;
    };
    let Some(permit) = admit(shared, &o.caller(), &mut stream).await else { return };
    if write_ok(&mut stream).await.is_err() {
        return;
    }
    let fwd = crate::access::cluster::Forwarded { cert, addr: o.addr, via_root: Some(root.to_string()) };
    let router = &shared.router;
    match target {
        Target::App => {
            crate::access::app::front::serve_in_cluster(&router.auth, router.dialer.as_ref(), shared.app.as_ref(), Box::new(stream), fwd)
                .await
        }
        Target::Db => {
            crate::access::db::front::serve_in_cluster(
                &router.auth,
                router.dialer.as_ref(),
                shared.db.as_ref(),
                Box::new(stream),
                fwd,
                None,
            )
            .await
        }
        _ => {
            crate::access::kube::front::serve_in_cluster(&router.auth, router.dialer.as_ref(), shared.kube.as_ref(), Box::new(stream), fwd)
                .await
        }
    }
    drop(permit);
}

/// Stores the lock list the root sends (bounded), answering OK or the reason.
async fn receive_locks(shared: &LeafShared, root: &str, mut stream: russh::ChannelStream<russh::client::Msg>) {
    if write_ok(&mut stream).await.is_err() {
        return;
    }
    let mut body = Vec::new();
    let read = (&mut stream).take(MAX_LOCKS_BODY + 1).read_to_end(&mut body).await;
    let stored = match read {
        Err(e) => Err(Error::connection_problem(format!("reading locks: {e}"))),
        Ok(_) if body.len() as u64 > MAX_LOCKS_BODY => Err(Error::bad_parameter("lock list too large")),
        Ok(_) => match serde_json::from_slice::<Vec<Lock>>(&body) {
            Ok(locks) => shared.router.auth.store_remote_locks(root, locks).await,
            Err(e) => Err(Error::bad_parameter(format!("malformed lock list: {e}"))),
        },
    };
    match stored {
        Ok(()) => {
            let _ = write_ok(&mut stream).await;
        }
        Err(e) => {
            tracing::warn!(root, error = %e, "refused the root cluster's locks");
            let _ = write_err(&mut stream, &e).await;
        }
    }
}

/// Connects a root's user to a registered node, after locks and limits.
async fn serve_node(
    shared: &LeafShared,
    root: &str,
    host: &str,
    port: Option<u16>,
    origin: Option<Origin>,
    mut stream: russh::ChannelStream<russh::client::Msg>,
) {
    let router = &shared.router;
    let auth = &router.auth;
    let caller = origin.as_ref().map(Origin::caller).unwrap_or_else(|| format!("unknown user@{root}"));
    let Some(permit) = admit(shared, &caller, &mut stream).await else { return };
    let checked: Result<(Option<crate::auth::semaphore::LeaseGuard>, Vec<String>)> = async {
        let Some(o) = &origin else { return Ok((None, vec![])) };
        // The roles that apply here: the root's roles as sent, and what they map to.
        let mut roles = o.roles.clone();
        let mapped = auth.map_roles(root, &o.roles).await.unwrap_or_default();
        roles.extend(mapped.iter().cloned());
        let s = Subject { user: Some(&o.user), roles: &roles, issued_at: o.issued_time(), ..Default::default() };
        auth.check_locks(&s, root).await?;
        let limit = if mapped.is_empty() {
            None
        } else {
            let rs = auth.services.roles(&mapped).await.unwrap_or_default();
            shared::rbac::AccessChecker::new(&rs, &Default::default()).max_connections()
        };
        let lease = match limit {
            Some(max) => Some(auth.acquire_lease("connection", &o.caller(), max, &o.user).await?),
            None => None,
        };
        Ok((lease, roles))
    }
    .await;
    let (_lease, roles) = match checked {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(caller = %caller, error = %e, "refused a connection request from the root cluster");
            let _ = write_err(&mut stream, &e).await;
            return;
        }
    };
    let dialed = match router.resolve_node(host, port).await {
        Ok(node) => {
            let mut o = origin.clone().unwrap_or_else(|| Origin {
                user: String::new(),
                cluster: root.to_string(),
                roles: vec![],
                addr: String::new(),
                issued_at: None,
                cert: None,
            });
            o.roles = roles.clone();
            match router.check_node_locks(&node, &o).await {
                Ok(()) => router.dial_node(&node, origin.as_ref()).await.map(|s| (node, s)),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let (node, target) = match dialed {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(target = %host, caller = %caller, error = %e, "refused a connection request from the root cluster");
            let _ = write_err(&mut stream, &e).await;
            return;
        }
    };
    auth.audit
        .emit(
            codes::TUNNEL_CONNECT,
            json!({"user": origin.as_ref().map(|o| o.user.clone()), "origin_cluster": root, "remote_roles": origin.as_ref().map(|o| o.roles.clone()),
                   "addr.remote": origin.as_ref().map(|o| o.addr.clone()), "server_id": node.metadata.name, "server_hostname": node.spec.hostname,
                   "via": "trusted cluster tunnel"}),
        )
        .await;
    if write_ok(&mut stream).await.is_err() {
        return;
    }
    let cut = Arc::new(tokio::sync::Notify::new());
    let _live = origin.as_ref().map(|o| {
        let cut = cut.clone();
        shared.live.register(LiveEntry {
            user: o.user.clone(),
            origin: root.to_string(),
            roles,
            login: None,
            issued_at: o.issued_time(),
            requests: Vec::new(),
            // The node ends the session itself with the lock's message, and a root's proxy
            // ends its user's connection a second after a lock of its own with the message in
            // its disconnect; cut here only after both had their chance, so the user reads why.
            end: Box::new(move |_why| {
                let cut = cut.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    cut.notify_one();
                });
            }),
        })
    });
    tokio::select! {
        _ = crate::tunnel::splice(&mut stream, target) => {}
        _ = cut.notified() => {}
    }
    drop(permit);
}
