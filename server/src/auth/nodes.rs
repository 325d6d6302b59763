//! Nodes: joining with a token, heartbeats, and the bundle nodes use to authorize logins.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use shared::api::{JoinRequest, JoinResponse, NodeAuthzBundle};
use shared::error::{Error, Result};
use shared::identity::HostIdentity;
use shared::resource::token::SystemRole;
use shared::resource::{CaType, Node};

use super::{AuthServer, audit_codes};
use crate::services::keys;
use crate::storage::Op;

/// How long a heartbeated record (node, Kubernetes cluster, app) lives without a heartbeat, at
/// most.
pub const MAX_NODE_TTL: Duration = Duration::from_secs(3600);

/// The expiry a heartbeated record gets: the one it asks for when that is in the future and
/// within [`MAX_NODE_TTL`], else the longest allowed.
pub fn heartbeat_expiry(requested: Option<time::OffsetDateTime>, now: time::OffsetDateTime) -> time::OffsetDateTime {
    let max = now + MAX_NODE_TTL;
    match requested {
        Some(e) if e > now && e < max => e,
        _ => max,
    }
}

/// A registered address must be the heartbeat's own source address, or a name resolving to it.
async fn check_node_addr(hostname: &str, addr: &str, from: IpAddr) -> Result<()> {
    let from = from.to_canonical();
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let refuse = || {
        Error::access_denied(format!(
            "node {hostname:?} registered address {addr:?}, but its heartbeat comes from {from}; a node may only register \
             its own address: set teleport.advertise_ip to {from} (or join with --tunnel when the node is behind NAT)"
        ))
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if ip.to_canonical() == from { Ok(()) } else { Err(refuse()) };
    }
    let lookup = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host(format!("{host}:{port}"))).await;
    let resolves_to_caller = match lookup {
        Ok(Ok(mut addrs)) => addrs.any(|a| a.ip().to_canonical() == from),
        _ => false,
    };
    if resolves_to_caller { Ok(()) } else { Err(refuse()) }
}

/// Checks a host UUID (we generate them; joiners must send one in the same shape).
fn check_host_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::bad_parameter("invalid host_id: use a UUID"));
    }
    Ok(())
}

impl AuthServer {
    /// A node joins with a `node` token and gets its host certificates.
    pub async fn join(&self, req: JoinRequest, from: &str) -> Result<JoinResponse> {
        if SystemRole::parse(&req.role).ok() != Some(SystemRole::Node) {
            return Err(Error::bad_parameter("only nodes join with tokens; role must be \"Node\""));
        }
        check_host_id(&req.host_id)?;
        if req.nodename.is_empty()
            || req.nodename.len() > 253
            || req.nodename.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(Error::bad_parameter("invalid nodename"));
        }
        shared::names::check_name("node name", &req.nodename)?;
        if req.additional_principals.len() > 32
            || req.additional_principals.iter().any(|p| p.len() > 253 || p.contains(char::is_whitespace))
        {
            return Err(Error::bad_parameter("invalid additional principals"));
        }
        if let Err(reason) = self.validate_token(&req.token, SystemRole::Node).await {
            tracing::warn!(from, nodename = %req.nodename, reason = %reason, "node join refused");
            return Err(Error::access_denied("the join token is invalid or has expired; create one with 'tctl tokens add --type=node'"));
        }
        let host = HostIdentity { host_id: req.host_id.clone(), nodename: req.nodename.clone(), role: SystemRole::Node };
        let certs = self.host_certs(&host, &req.keys, &req.additional_principals).await?;
        self.audit
            .emit(
                audit_codes::INSTANCE_JOIN,
                json!({"host_id": req.host_id, "node_name": req.nodename, "role": "Node", "addr.remote": from, "success": true}),
            )
            .await;
        Ok(JoinResponse { host_id: req.host_id, certs })
    }

    /// Stores a node heartbeat; the record expires unless renewed.
    ///
    /// A node cannot choose where the proxy dials: a heartbeat that arrives over the network
    /// (`from`) must register an address that is the connection's own (or a name resolving to
    /// it), so a node token cannot point the proxy at another host. And a node cannot take a
    /// hostname another live node holds.
    pub async fn upsert_node(&self, mut node: Node, host_id: &str, from: Option<IpAddr>) -> Result<()> {
        if node.metadata.name != host_id {
            return Err(Error::access_denied("a node can only heartbeat for itself"));
        }
        node.check()?;
        if node.spec.use_tunnel {
            node.spec.addr.clear();
        } else if let Some(ip) = from {
            check_node_addr(&node.spec.hostname, &node.spec.addr, ip).await?;
        }
        node.metadata.expires = Some(heartbeat_expiry(node.metadata.expires, self.clock.now()));
        let key = keys::node(&node.metadata.name);
        let name_key = keys::node_name(&node.spec.hostname);
        let expires = node.metadata.expires.map(|e| e.unix_timestamp());
        let claim = host_id.as_bytes().to_vec();
        let conflict = Error::compare_failed("the node record changed concurrently; the next heartbeat will try again");
        crate::services::retry_cas(3, conflict, || async {
            let name_op = match self.services.backend.get(&name_key).await? {
                Some(item) if item.value != claim => {
                    let holder = String::from_utf8_lossy(&item.value).to_string();
                    return Err(Error::already_exists(format!(
                        "node name {:?} is already registered by node {holder}; give this node another name (teleport.nodename or --nodename)",
                        node.spec.hostname
                    )));
                }
                Some(item) => Op::CompareAndSwap { key: name_key.clone(), value: claim.clone(), expires, expected: item.revision },
                None => Op::Create { key: name_key.clone(), value: claim.clone(), expires },
            };
            self.services.apply_racing(vec![name_op, self.services.put_op(&key, &node)?]).await.map(|_| ())
        })
        .await
    }

    /// Removes a node record (a node shutting down cleanly), and its claim on its hostname.
    pub async fn delete_node(&self, host_id: &str) -> Result<()> {
        let key = keys::node(host_id);
        let mut ops = vec![Op::DeleteIfExists { key: key.clone() }];
        if let Some(n) = self.services.get::<Node>(&key).await? {
            let name_key = keys::node_name(&n.value.spec.hostname);
            if self.services.backend.get(&name_key).await?.is_some_and(|i| i.value == host_id.as_bytes()) {
                ops.push(Op::DeleteIfExists { key: name_key });
            }
        }
        self.services.apply(ops).await?;
        Ok(())
    }

    /// What nodes need to decide logins. Its generation is a hash of its content, so it is the
    /// same from every process of the cluster: a node that asks with `after` equal to the
    /// current generation waits (up to `wait`) until the content changes.
    pub async fn node_authz_bundle(&self, after: u64, wait: Duration) -> Result<NodeAuthzBundle> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut changes = self.authz_changes();
            let bundle = self.build_authz_bundle().await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if bundle.generation != after || left.is_zero() {
                return Ok(bundle);
            }
            let _ = tokio::time::timeout(left, changes.changed()).await;
        }
    }

    async fn build_authz_bundle(&self) -> Result<NodeAuthzBundle> {
        let user_cas = self.trusted_cas().await?.for_nodes();
        let mut roles = self.all_roles().await?;
        for r in &mut roles {
            r.metadata.id = None;
        }
        let mut b = NodeAuthzBundle {
            generation: 0,
            cluster_name: self.cluster_name().into(),
            user_cas,
            roles,
            locks: self.lock_set().await?,
            host_ca: Some(self.own_ca(CaType::Host).await?.without_secrets()),
        };
        b.generation = bundle_generation(&b);
        Ok(b)
    }
}

/// A bundle's generation: a hash of everything in it but the generation. Never 0 (a node asks
/// with 0 for "whatever you have").
fn bundle_generation(b: &NodeAuthzBundle) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&(&b.cluster_name, &b.user_cas, &b.roles, &b.locks, &b.host_ca)).unwrap_or_default().hash(&mut h);
    h.finish().max(1)
}
