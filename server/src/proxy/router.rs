//! Where a proxied connection may go. The proxy connects users to *registered* nodes of its own
//! cluster, to a leaf cluster through that leaf's tunnel (if the user may see the leaf), or to a
//! cluster's API; a leaf answers its root only with its own registered nodes and its API.
//! Nothing here dials an address that is not a registered node: the guide's warning that a
//! compromised root could make a leaf connect anywhere does not apply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::client::{BoxFuture, BoxStream};
use shared::error::{Code, Error, Result};
use shared::identity::UserIdentity;
use shared::rbac::AccessChecker;
use shared::resource::Node;
use shared::subsystem::ProxyRequest;

use crate::auth::AuthServer;
use crate::tunnel::{Origin, Target, TunnelKey, TunnelRequest};

/// Serves this cluster's HTTPS API over an in-process stream.
pub trait ApiStreamServer: Send + Sync + 'static {
    /// Serves one connection: from `peer`, or through a tunnel for `origin`.
    fn serve(&self, stream: BoxStream, peer: Option<SocketAddr>, origin: Option<Origin>) -> BoxFuture<'static, ()>;
}

/// Routes proxied connections.
pub struct Router {
    /// The auth service (nodes, remote clusters, roles).
    pub auth: Arc<AuthServer>,
    /// Tunnels held here, else by a peer proxy.
    pub dialer: Arc<dyn super::dial::Dialer>,
    /// The in-process API.
    pub api: Arc<dyn ApiStreamServer>,
    /// This proxy's host credentials, to vouch with for the users it brings to nodes.
    pub creds: crate::ssh::LiveCreds,
}

/// Nodes matching `host[:port]`: by UUID, by hostname, or by registered address (tunnel nodes
/// have no address and match by UUID or hostname only).
pub fn match_nodes<'a>(nodes: &'a [Node], host: &str, port: Option<u16>) -> Vec<&'a Node> {
    if let Some(n) = nodes.iter().find(|n| n.metadata.name == host) {
        return vec![n];
    }
    let port_ok = |n: &Node| match (port, n.spec.use_tunnel) {
        (None, _) | (_, true) => true,
        (Some(p), false) => n.spec.addr.rsplit_once(':').and_then(|(_, x)| x.parse::<u16>().ok()) == Some(p),
    };
    let mut out: Vec<&Node> = nodes.iter().filter(|n| n.spec.hostname == host && port_ok(n)).collect();
    for n in nodes.iter().filter(|n| !n.spec.use_tunnel) {
        let (h, _) = n.spec.addr.rsplit_once(':').unwrap_or((n.spec.addr.as_str(), ""));
        let h = h.trim_start_matches('[').trim_end_matches(']');
        if h == host && port_ok(n) && !out.iter().any(|o| o.metadata.name == n.metadata.name) {
            out.push(n);
        }
    }
    out
}

impl Router {
    fn cluster(&self) -> &str {
        self.auth.cluster_name()
    }

    /// `node.cluster` as OpenSSH users write it through `ssh -J` (the names `tsh config` gives):
    /// the node and the cluster, when the suffix is this cluster or a leaf it knows. Whether the
    /// user may see that leaf is [`Router::route_user`]'s to decide.
    pub async fn split_cluster(&self, host: &str) -> Option<(String, String)> {
        for (i, _) in host.match_indices('.') {
            let (node, cluster) = (&host[..i], &host[i + 1..]);
            if node.is_empty() || cluster.is_empty() {
                continue;
            }
            if cluster == self.cluster() || matches!(self.auth.services.remote_cluster(cluster).await, Ok(Some(_))) {
                return Some((node.to_string(), cluster.to_string()));
            }
        }
        None
    }

    /// Finds exactly one registered node of this cluster.
    pub async fn resolve_node(&self, host: &str, port: Option<u16>) -> Result<Node> {
        let nodes = self.auth.services.nodes().await?;
        let found = match_nodes(&nodes, host, port);
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::not_found(format!(
                "node {host:?} is not found in cluster {:?}; the proxy only connects to registered nodes (see tsh ls)",
                self.cluster()
            ))
            .with_code(Code::NodeNotFound)),
            many => Err(Error::bad_parameter(format!(
                "ambiguous host {host:?} matches {} nodes ({}); connect by node UUID instead",
                many.len(),
                many.iter().map(|n| n.metadata.name.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Connects to a registered node (directly, or through its own tunnel, telling it for whom).
    pub async fn dial_node(&self, node: &Node, origin: Option<&Origin>) -> Result<BoxStream> {
        if node.spec.use_tunnel {
            let req = TunnelRequest { target: Target::Ssh, origin: origin.cloned() };
            return self.dialer.dial(&TunnelKey::Node(node.metadata.name.clone()), &req).await.map_err(|e| {
                if e.has(Code::TunnelOffline) {
                    Error::connection_problem(format!("node {} is offline", node.spec.hostname)).with_code(Code::TunnelOffline)
                } else {
                    e
                }
            });
        }
        let addr = node.spec.addr.clone();
        let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| Error::connection_problem(format!("node {} ({addr}) did not answer in time", node.spec.hostname)))?
            .map_err(|e| Error::connection_problem(format!("node {} ({addr}) is offline: {e}", node.spec.hostname)))?;
        shared::tuning::set_nodelay(&tcp);
        let mut tcp = tcp;
        if let Some(o) = origin {
            // Tell the node whom this connection carries, so its limits count that user, not
            // everyone this proxy brings (`tunnel::vouch`).
            let creds = self.creds.current();
            let line = crate::tunnel::vouch::encode(o, &node.metadata.name, &creds.key, &creds.cert, self.auth.clock.now())?;
            tokio::io::AsyncWriteExt::write_all(&mut tcp, line.as_bytes())
                .await
                .map_err(|e| Error::connection_problem(format!("node {} ({addr}): {e}", node.spec.hostname)))?;
        }
        Ok(Box::new(tcp))
    }

    /// Refuses `origin`'s user a node that a lock with a `server_id` or `node` target covers,
    /// with the lock's message (locks on the user alone were checked when they signed in, with
    /// their certificate's issue time); the node checks again itself.
    pub async fn check_node_locks(&self, node: &Node, origin: &Origin) -> Result<()> {
        let mut set = self.auth.lock_set().await?;
        let on_nodes = |l: &shared::resource::Lock| !l.spec.target.node.is_empty() || !l.spec.target.server_id.is_empty();
        set.local.retain(on_nodes);
        for r in &mut set.remote {
            r.locks.retain(on_nodes);
        }
        let s = shared::resource::lock::Subject {
            user: Some(&origin.user),
            roles: &origin.roles,
            server_id: Some(&node.metadata.name),
            node_name: Some(&node.spec.hostname),
            ..Default::default()
        };
        match set.find(&s, &origin.cluster, self.auth.clock.now()) {
            Some(lock) => Err(shared::error::Error::access_denied(lock.refusal()).with_code(Code::Locked)),
            None => Ok(()),
        }
    }

    /// This cluster's API over an in-process stream.
    pub fn api_stream(&self, peer: Option<SocketAddr>) -> BoxStream {
        let (client, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(self.api.serve(Box::new(server), peer, None));
        Box::new(client)
    }

    /// Routes a user's `proxy:` request. `issued_here` is true for users of this cluster (only
    /// they may be routed on to leaf clusters).
    pub async fn route_user(
        &self,
        user: &UserIdentity,
        issued_here: bool,
        issued_at: Option<time::OffsetDateTime>,
        req: &ProxyRequest,
        peer: Option<SocketAddr>,
    ) -> Result<BoxStream> {
        let local = self.cluster().to_string();
        let cluster = req.cluster.clone().unwrap_or_else(|| local.clone());
        let origin = Origin {
            user: user.username.clone(),
            cluster: if issued_here { local.clone() } else { String::new() },
            roles: user.roles.clone(),
            addr: peer.map(|p| p.to_string()).unwrap_or_default(),
            issued_at: issued_at.map(|t| t.unix_timestamp()),
            cert: None,
        };
        if cluster == local {
            if req.host.is_empty() {
                return Ok(self.api_stream(peer));
            }
            let node = self.resolve_node(&req.host, req.port).await?;
            self.check_node_locks(&node, &origin).await?;
            return self.dial_node(&node, Some(&origin)).await;
        }
        // A leaf: visible only to users of this cluster whose roles match its labels. Unknown
        // and forbidden look the same.
        let hidden = || Error::not_found(format!("cluster {cluster:?} is not found")).with_code(Code::ClusterNotFound);
        if !issued_here {
            return Err(hidden());
        }
        let rc = self.auth.services.remote_cluster(&cluster).await?.ok_or_else(hidden)?;
        let roles = self.auth.services.roles(&user.roles).await.map_err(|_| hidden())?;
        let checker = AccessChecker::new(&roles, &user.traits);
        checker.check_cluster(&rc.value.metadata.labels).map_err(|_| hidden())?;
        let target = if req.host.is_empty() { Target::Api } else { Target::Node { host: req.host.clone(), port: req.port } };
        self.dialer.dial(&TunnelKey::Cluster(cluster), &TunnelRequest { target, origin: Some(origin) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uuid: &str, host: &str, addr: &str, tunnel: bool) -> Node {
        Node::new(uuid, host, addr, tunnel, Default::default())
    }

    #[test]
    fn matching() {
        let nodes = vec![
            node("u1", "db1", "127.0.0.5:3022", false),
            node("u2", "db2", "", true),
            node("u3", "dup", "127.0.0.6:3022", false),
            node("u4", "dup", "127.0.0.7:3022", false),
        ];
        let ids = |v: Vec<&Node>| v.iter().map(|n| n.metadata.name.clone()).collect::<Vec<_>>();
        assert_eq!(ids(match_nodes(&nodes, "db1", None)), vec!["u1"]);
        assert_eq!(ids(match_nodes(&nodes, "db1", Some(3022))), vec!["u1"]);
        assert!(match_nodes(&nodes, "db1", Some(22)).is_empty());
        assert_eq!(ids(match_nodes(&nodes, "u2", None)), vec!["u2"]);
        assert_eq!(ids(match_nodes(&nodes, "db2", Some(22))), vec!["u2"]);
        assert_eq!(ids(match_nodes(&nodes, "127.0.0.5", Some(3022))), vec!["u1"]);
        assert_eq!(match_nodes(&nodes, "dup", None).len(), 2);
        assert!(match_nodes(&nodes, "10.0.0.1", Some(22)).is_empty(), "unregistered addresses never match");
        assert!(match_nodes(&nodes, "", None).is_empty());
    }
}
