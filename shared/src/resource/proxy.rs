//! `proxy` (v2): one live proxy process of a cluster, heartbeated by itself into the shared
//! state (Teleport's `ServerV2` of kind `proxy`). Leaves and tunnel nodes learn this list over
//! their tunnels and keep one tunnel to each; peers dial one another at `peer_addr`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata};

/// A proxy process. `metadata.name` is its host UUID; it expires unless heartbeats renew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Always `proxy`.
    pub kind: String,
    /// `v2`.
    pub version: String,
    /// UUID and expiry.
    pub metadata: Metadata,
    /// How to reach it.
    pub spec: ProxySpec,
}

/// Where a proxy is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// The machine's name (`teleport.nodename`).
    pub hostname: String,
    /// `host:port` where agents (leaves, tunnel nodes) reach this process itself, not the load
    /// balancer in front of all of them.
    pub addr: String,
    /// `host:port` where the other proxies of the cluster forward to this one; empty when it
    /// has no peers (one process on SQLite).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_addr: String,
    /// The address users reach the cluster at (`proxy_service.public_addr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_addrs: Vec<String>,
    /// Software version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// When this process started (Unix seconds): tells a restarted process from the one that
    /// said goodbye.
    #[serde(default)]
    pub started: i64,
}

impl Proxy {
    /// A proxy record.
    pub fn new(host_id: &str, spec: ProxySpec, expires: OffsetDateTime) -> Proxy {
        let mut metadata = Metadata::named(host_id);
        metadata.expires = Some(expires);
        Proxy { kind: Kind::Proxy.as_str().into(), version: "v2".into(), metadata, spec }
    }
}
