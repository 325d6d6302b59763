//! `node` (v2): an SSH server registered in a cluster (reference §7.2).

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata, is_false};
use crate::error::{Error, Result};

/// An SSH node. `metadata.name` is its UUID; it expires unless heartbeats renew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Always `node`.
    pub kind: String,
    /// `teleport`.
    #[serde(default)]
    pub sub_kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// UUID, labels and expiry.
    pub metadata: Metadata,
    /// Where it is.
    pub spec: NodeSpec,
}

fn v2() -> String {
    "v2".into()
}

/// Where a node is and how to reach it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node name users type (`tsh ssh visitor@<hostname>`).
    pub hostname: String,
    /// `host:port` it listens on; empty for tunnel nodes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// Reached over its reverse tunnel.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_tunnel: bool,
    /// Software version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl Node {
    /// A node record.
    pub fn new(uuid: &str, hostname: &str, addr: &str, use_tunnel: bool, labels: super::LabelMap) -> Node {
        let mut metadata = Metadata::named(uuid);
        metadata.labels = labels;
        Node {
            kind: Kind::Node.as_str().into(),
            sub_kind: "teleport".into(),
            version: v2(),
            metadata,
            spec: NodeSpec { hostname: hostname.into(), addr: addr.into(), use_tunnel, version: crate::version::VERSION.into() },
        }
    }

    /// Validates a heartbeat.
    pub fn check(&self) -> Result<()> {
        self.metadata.check(Kind::Node)?;
        if self.spec.hostname.is_empty() {
            return Err(Error::bad_parameter("node is missing spec.hostname"));
        }
        if self.spec.hostname.len() > 253 || self.spec.hostname.contains('/') {
            return Err(Error::bad_parameter("node spec.hostname must be at most 253 characters without '/'"));
        }
        crate::names::check_name("node name", &self.spec.hostname)?;
        if !self.spec.use_tunnel {
            super::cluster::check_addr("spec.addr", &self.spec.addr)?;
        }
        Ok(())
    }

    /// What `tsh ls` prints in the Address column.
    pub fn display_addr(&self) -> String {
        if self.spec.use_tunnel { "⟵ Tunnel".into() } else { self.spec.addr.clone() }
    }
}
