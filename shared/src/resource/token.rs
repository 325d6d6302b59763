//! `token` (v2): a provision token that lets a node or a leaf cluster join (reference §1.3, §2.4).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata};
use crate::error::{Error, Result};

/// A join token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionToken {
    /// Always `token`.
    pub kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// The token value is the name; `expires` bounds it.
    pub metadata: Metadata,
    /// What the token allows.
    pub spec: TokenSpec,
}

fn v2() -> String {
    "v2".into()
}

fn token_method() -> String {
    "token".into()
}

/// The body of a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// System roles this token grants: `Trusted_cluster`, `Node`, ...
    pub roles: Vec<String>,
    /// Only `token` is supported.
    #[serde(default = "token_method")]
    pub join_method: String,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_labels: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_name: Option<String>,
}

/// Roles of the processes and tokens of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SystemRole {
    /// The cluster administrator (tctl on the auth host).
    Admin,
    /// The auth service.
    Auth,
    /// A proxy.
    Proxy,
    /// An SSH node.
    Node,
    /// A leaf joining as a trusted cluster (tokens only).
    #[serde(rename = "Trusted_cluster")]
    TrustedCluster,
}

impl SystemRole {
    /// Teleport's stored spelling: `Trusted_cluster`, `Node`, `Proxy`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            SystemRole::Admin => "Admin",
            SystemRole::Auth => "Auth",
            SystemRole::Proxy => "Proxy",
            SystemRole::Node => "Node",
            SystemRole::TrustedCluster => "Trusted_cluster",
        }
    }

    /// The spelling in `tctl tokens ls`: `trusted_cluster`, `Node`.
    pub fn display(self) -> &'static str {
        match self {
            SystemRole::TrustedCluster => "trusted_cluster",
            other => other.as_str(),
        }
    }

    /// Parses case-insensitively; `trustedcluster` is accepted too (reference §1.3).
    pub fn parse(s: &str) -> Result<SystemRole> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(SystemRole::Admin),
            "auth" => Ok(SystemRole::Auth),
            "proxy" => Ok(SystemRole::Proxy),
            "node" => Ok(SystemRole::Node),
            "trusted_cluster" | "trustedcluster" => Ok(SystemRole::TrustedCluster),
            _ => Err(Error::bad_parameter(format!("unknown token type {s:?}; supported types: trusted_cluster, node"))),
        }
    }
}

impl fmt::Display for SystemRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProvisionToken {
    /// A token for `roles` that expires at `expires`.
    pub fn new(value: &str, roles: &[SystemRole], expires: Option<time::OffsetDateTime>) -> ProvisionToken {
        let mut metadata = Metadata::named(value);
        metadata.expires = expires;
        ProvisionToken {
            kind: Kind::Token.as_str().into(),
            version: v2(),
            metadata,
            spec: TokenSpec {
                roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
                join_method: token_method(),
                suggested_labels: None,
                bot_name: None,
            },
        }
    }

    /// Validates the token and normalises role spelling.
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.kind != Kind::Token.as_str() {
            return Err(Error::bad_parameter(format!("expected kind token, got {:?}", self.kind)));
        }
        self.metadata.check(Kind::Token)?;
        if self.spec.roles.is_empty() {
            return Err(Error::bad_parameter("provisioning token is missing roles"));
        }
        let mut roles = Vec::new();
        for r in &self.spec.roles {
            let role = SystemRole::parse(r)?;
            if !matches!(role, SystemRole::TrustedCluster | SystemRole::Node | SystemRole::Proxy) {
                return Err(Error::bad_parameter(format!("a token cannot grant the {role} role")));
            }
            roles.push(role.as_str().to_string());
        }
        self.spec.roles = roles;
        if self.spec.join_method != "token" {
            return Err(Error::bad_parameter(format!("join method {:?} is not supported; only \"token\" is", self.spec.join_method)));
        }
        Ok(())
    }

    /// The system roles this token grants.
    pub fn system_roles(&self) -> Vec<SystemRole> {
        self.spec.roles.iter().filter_map(|r| SystemRole::parse(r).ok()).collect()
    }

    /// Whether the token grants `role`.
    pub fn grants(&self, role: SystemRole) -> bool {
        self.system_roles().contains(&role)
    }
}
