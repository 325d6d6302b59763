//! `tunnel_connection` (v2): a leaf's (or a tunnel node's) reverse tunnel to one proxy of the
//! cluster, heartbeated by that proxy (reference §2.5). A leaf is online while any proxy holds a
//! live one; with several proxies there is one per (proxy, leaf).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata};

/// A tunnel connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConnection {
    /// Always `tunnel_connection`.
    pub kind: String,
    /// `v2`.
    pub version: String,
    /// Name `<proxy>-<cluster>`, expiry.
    pub metadata: Metadata,
    /// Who holds whose tunnel.
    pub spec: TunnelConnectionSpec,
}

/// The body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConnectionSpec {
    /// The leaf (or, for a tunnel node, this cluster).
    pub cluster_name: String,
    /// The proxy holding the tunnel (its host UUID).
    pub proxy_name: String,
    /// When the proxy last heard from the tunnel.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub last_heartbeat: OffsetDateTime,
    /// `proxy` for a leaf's tunnel, `node` for a node's.
    #[serde(rename = "type")]
    pub kind: String,
}

impl TunnelConnection {
    /// Proxy `proxy`'s tunnel from `cluster`, last heard from at `at`, expiring at `expires`.
    pub fn new(proxy: &str, cluster: &str, at: OffsetDateTime, expires: OffsetDateTime) -> TunnelConnection {
        let mut metadata = Metadata::named(format!("{proxy}-{cluster}"));
        metadata.expires = Some(expires);
        TunnelConnection {
            kind: Kind::TunnelConnection.as_str().into(),
            version: "v2".into(),
            metadata,
            spec: TunnelConnectionSpec { cluster_name: cluster.into(), proxy_name: proxy.into(), last_heartbeat: at, kind: "proxy".into() },
        }
    }
}
