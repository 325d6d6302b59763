//! Nodes: joining with a token, heartbeats, and the bundle nodes use to authorize logins.

use std::time::Duration;

use serde_json::json;
use shared::api::{JoinRequest, JoinResponse, NodeAuthzBundle, TrustedUserCa};
use shared::error::{Error, Result};
use shared::identity::HostIdentity;
use shared::resource::token::SystemRole;
use shared::resource::{CaType, Node};

use super::{AuthServer, audit_codes};
use crate::services::keys;
use crate::storage::Op;

/// How long a node record lives without a heartbeat, at most.
pub const MAX_NODE_TTL: Duration = Duration::from_secs(3600);

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
        if req.additional_principals.len() > 32
            || req.additional_principals.iter().any(|p| p.len() > 253 || p.contains(char::is_whitespace))
        {
            return Err(Error::bad_parameter("invalid additional principals"));
        }
        if let Err(reason) = self.validate_token(&req.token, SystemRole::Node).await {
            tracing::warn!(from, nodename = %req.nodename, reason, "node join refused");
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
    pub async fn upsert_node(&self, mut node: Node, host_id: &str) -> Result<()> {
        if node.metadata.name != host_id {
            return Err(Error::access_denied("a node can only heartbeat for itself"));
        }
        node.check()?;
        let now = self.clock.now();
        let max = now + MAX_NODE_TTL;
        node.metadata.expires = Some(match node.metadata.expires {
            Some(e) if e > now && e < max => e,
            _ => max,
        });
        let key = format!("{}{}", keys::NODES, node.metadata.name);
        self.services.apply(vec![self.services.put_op(&key, &node)?]).await?;
        Ok(())
    }

    /// Removes a node record (a node shutting down cleanly).
    pub async fn delete_node(&self, host_id: &str) -> Result<()> {
        self.services.apply(vec![Op::DeleteIfExists { key: format!("{}{host_id}", keys::NODES) }]).await?;
        Ok(())
    }

    /// What nodes need to decide logins. Waits (up to `wait`) for a change when `after` is the
    /// current generation, so nodes learn of a disabled trust within milliseconds.
    pub async fn node_authz_bundle(&self, after: u64, wait: Duration) -> Result<NodeAuthzBundle> {
        let generation = if after == self.authz_generation() { self.wait_authz_change(after, wait).await } else { self.authz_generation() };
        let mut user_cas = Vec::new();
        for ca in self.services.cas_of_type(CaType::User).await? {
            let is_own = ca.metadata.name == self.cluster_name();
            if !is_own && self.services.trusted_cluster(&ca.metadata.name).await?.is_none() {
                // A user CA without a trust relationship (should not happen) is never trusted.
                continue;
            }
            user_cas.push(TrustedUserCa {
                cluster_name: ca.metadata.name.clone(),
                ssh_public_keys: ca.ssh_public_keys().iter().map(shared::certs::authorized_key).collect(),
                role_map: if is_own { vec![] } else { ca.combined_mapping() },
            });
        }
        Ok(NodeAuthzBundle { generation, cluster_name: self.cluster_name().into(), user_cas, roles: self.all_roles().await? })
    }
}
