//! `trusted_cluster` (v2, stored on the leaf) and `remote_cluster` (v3, stored on the root)
//! (reference §2.1, §2.2).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata, is_empty_vec};
use crate::error::{Error, Result};

/// One `role_map` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// Remote role name, glob or `^regex$`.
    pub remote: String,
    /// Local roles, with `$1` expansion.
    #[serde(default)]
    pub local: Vec<String>,
}

impl std::fmt::Display for RoleMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.remote, crate::rolemap::go_list(&self.local))
    }
}

/// A trust relationship from this (leaf) cluster to a root cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedCluster {
    /// Always `trusted_cluster`.
    pub kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// The root cluster's name (corrected to the root's real name on creation).
    pub metadata: Metadata,
    /// Where the root is and how roles map.
    pub spec: TrustedClusterSpec,
}

fn v2() -> String {
    "v2".into()
}

/// The body of a trusted cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedClusterSpec {
    /// Whether the trust is active.
    pub enabled: bool,
    /// Legacy form of `role_map: [{remote: "*", local: roles}]`.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub roles: Vec<String>,
    /// The invitation token from the root.
    #[serde(default)]
    pub token: String,
    /// The root's web address (`host:port`), used as `https://host:port`.
    #[serde(default)]
    pub web_proxy_addr: String,
    /// The root's reverse tunnel address; defaults to `web_proxy_addr`.
    #[serde(default)]
    pub tunnel_addr: String,
    /// How root roles become leaf roles.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub role_map: Vec<RoleMapping>,
}

/// The default web port when an address has none.
pub const DEFAULT_WEB_PORT: u16 = 3080;

/// Adds `:port` to a bare host.
pub fn with_default_port(addr: &str, port: u16) -> String {
    let a = addr.trim();
    if a.starts_with('[') {
        if a.contains("]:") { a.to_string() } else { format!("{a}:{port}") }
    } else if a.matches(':').count() == 1 {
        a.to_string()
    } else if a.contains(':') {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

/// Checks `host:port`.
pub fn check_addr(field: &str, addr: &str) -> Result<()> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| Error::bad_parameter(format!("{field}: {addr:?} is not host:port")))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(Error::bad_parameter(format!("{field}: {addr:?} is not host:port, such as root.example.com:3080")));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(Error::bad_parameter(format!("{field}: invalid port in {addr:?}"))),
    }
}

impl TrustedCluster {
    /// Validates the resource and fills in defaults (reference §2.1, §3.1).
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.kind != Kind::TrustedCluster.as_str() {
            return Err(Error::bad_parameter(format!("expected kind trusted_cluster, got {:?}", self.kind)));
        }
        if self.version != "v2" {
            return Err(Error::bad_parameter(format!("unsupported trusted_cluster version {:?}, use v2", self.version)));
        }
        self.metadata.check(Kind::TrustedCluster)?;
        let s = &mut self.spec;
        if !s.roles.is_empty() && !s.role_map.is_empty() {
            return Err(Error::bad_parameter("should set either 'roles' or 'role_map', not both"));
        }
        if s.roles.is_empty() && s.role_map.is_empty() {
            return Err(Error::bad_parameter("missing 'role_map' parameter"));
        }
        crate::rolemap::parse_role_map(&self.combined_mapping())?;
        let s = &mut self.spec;
        if s.web_proxy_addr.trim().is_empty() {
            return Err(Error::bad_parameter(
                "missing parameter web_proxy_addr: set it to the root proxy's address, such as root.example.com:3080",
            ));
        }
        s.web_proxy_addr = with_default_port(&s.web_proxy_addr, DEFAULT_WEB_PORT);
        check_addr("web_proxy_addr", &s.web_proxy_addr)?;
        if s.tunnel_addr.trim().is_empty() {
            s.tunnel_addr = s.web_proxy_addr.clone();
        }
        let web_port = s.web_proxy_addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(DEFAULT_WEB_PORT);
        s.tunnel_addr = with_default_port(&s.tunnel_addr, web_port);
        check_addr("tunnel_addr", &s.tunnel_addr)?;
        if s.token.trim().is_empty() {
            return Err(Error::bad_parameter(
                "missing parameter token: run 'tctl tokens add --type=trusted_cluster' on the root and paste the token",
            ));
        }
        Ok(())
    }

    /// The effective role map: `roles` as `{remote: "*", local: roles}`, else `role_map`.
    pub fn combined_mapping(&self) -> Vec<RoleMapping> {
        if !self.spec.roles.is_empty() {
            vec![RoleMapping { remote: "*".into(), local: self.spec.roles.clone() }]
        } else {
            self.spec.role_map.clone()
        }
    }
}

/// Connection status values.
pub const STATUS_ONLINE: &str = "online";
/// Connection status values.
pub const STATUS_OFFLINE: &str = "offline";

/// A leaf cluster as the root sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteCluster {
    /// Always `remote_cluster`.
    pub kind: String,
    /// `v3`.
    #[serde(default = "v3")]
    pub version: String,
    /// The leaf's name and labels.
    pub metadata: Metadata,
    /// Connection status.
    #[serde(default)]
    pub status: RemoteClusterStatus,
}

fn v3() -> String {
    "v3".into()
}

/// Connection status of a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteClusterStatus {
    /// `online` or `offline`.
    pub connection: String,
    /// Last heartbeat (Go zero time before any).
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub last_heartbeat: OffsetDateTime,
}

impl Default for RemoteClusterStatus {
    fn default() -> Self {
        RemoteClusterStatus { connection: STATUS_OFFLINE.into(), last_heartbeat: crate::timefmt::go_zero_time() }
    }
}

impl RemoteCluster {
    /// A new, offline remote cluster.
    pub fn new(name: &str, labels: super::LabelMap) -> RemoteCluster {
        let mut metadata = Metadata::named(name);
        metadata.labels = labels;
        RemoteCluster { kind: Kind::RemoteCluster.as_str().into(), version: v3(), metadata, status: RemoteClusterStatus::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(yaml: &str) -> Result<TrustedCluster> {
        let mut t: TrustedCluster = serde_yaml_ng::from_str(yaml).map_err(|e| Error::bad_parameter(e.to_string()))?;
        t.check_and_set_defaults()?;
        Ok(t)
    }

    const GUIDE: &str = "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: rootcluster.example.com\nspec:\n  enabled: true\n  token: abcd123-insecure-do-not-use-this\n  tunnel_addr: rootcluster.example.com:443\n  web_proxy_addr: rootcluster.example.com:443\n  role_map:\n    - remote: \"access\"\n      local: [\"visitor\"]\n";

    #[test]
    fn guide_yaml_parses() {
        let t = tc(GUIDE).map_err(|e| e.message);
        assert!(t.is_ok(), "{t:?}");
    }

    #[test]
    fn roles_and_role_map_rules() {
        let both = GUIDE.replace("  role_map:", "  roles: [x]\n  role_map:");
        assert_eq!(tc(&both).err().map(|e| e.message).as_deref(), Some("should set either 'roles' or 'role_map', not both"));
        let none = GUIDE.split("  role_map:").next().unwrap_or_default().to_string();
        assert_eq!(tc(&none).err().map(|e| e.message).as_deref(), Some("missing 'role_map' parameter"));
        let legacy = GUIDE.split("  role_map:").next().unwrap_or_default().to_string() + "  roles: [admin]\n";
        let t = tc(&legacy).ok();
        assert_eq!(t.map(|t| t.combined_mapping()), Some(vec![RoleMapping { remote: "*".into(), local: vec!["admin".into()] }]));
    }

    #[test]
    fn tunnel_addr_defaults_and_ports() {
        let y =
            GUIDE.replace("  tunnel_addr: rootcluster.example.com:443\n", "").replace("rootcluster.example.com:443", "root.example.com");
        let t = tc(&y).ok();
        assert_eq!(t.as_ref().map(|t| t.spec.web_proxy_addr.as_str()), Some("root.example.com:3080"));
        assert_eq!(t.as_ref().map(|t| t.spec.tunnel_addr.as_str()), Some("root.example.com:3080"));
        let bad = GUIDE.replace("web_proxy_addr: rootcluster.example.com:443", "web_proxy_addr: root:99999");
        assert!(tc(&bad).err().map(|e| e.message).unwrap_or_default().contains("invalid port"));
    }

    #[test]
    fn bad_role_map_is_rejected() {
        let y = GUIDE.replace("local: [\"visitor\"]", "local: [\"*\"]");
        assert_eq!(
            tc(&y).err().map(|e| e.message).as_deref(),
            Some("wildcard value is not supported for 'local' property of 'role_map' entry")
        );
    }

    #[test]
    fn remote_cluster_prints_go_zero_heartbeat() {
        let rc = RemoteCluster::new("leaf", Default::default());
        let y = serde_yaml_ng::to_string(&serde_json::to_value(&rc).unwrap_or_default()).unwrap_or_default();
        assert!(y.contains("last_heartbeat: 0001-01-01T00:00:00Z") || y.contains("last_heartbeat: '0001-01-01T00:00:00Z'"), "{y}");
        assert!(y.contains("connection: offline"), "{y}");
    }
}
