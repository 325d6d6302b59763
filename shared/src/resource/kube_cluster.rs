//! `kube_cluster` (v3): a Kubernetes cluster a `kubernetes_service` serves in this Teleport
//! cluster, heartbeated by that service (Teleport's `kube_server` with its cluster, folded into
//! one record: the name users type, the labels roles match, and who serves it).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata};
use crate::error::{Error, Result};

/// A Kubernetes cluster. `metadata.name` is the name `tsh kube login` takes; it expires unless
/// heartbeats renew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeCluster {
    /// Always `kube_cluster`.
    pub kind: String,
    /// `v3`.
    pub version: String,
    /// Name, labels (static and the latest dynamic values) and expiry.
    pub metadata: Metadata,
    /// Who serves it.
    pub spec: KubeClusterSpec,
}

/// Who serves a Kubernetes cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeClusterSpec {
    /// UUID of the process whose `kubernetes_service` serves it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    /// That process's host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Software version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Served by a process of its own, reached through its reverse tunnel (not the cluster
    /// process).
    #[serde(default, skip_serializing_if = "crate::resource::is_false")]
    pub tunnel: bool,
}

impl KubeCluster {
    /// A heartbeat record.
    pub fn new(name: &str, labels: super::LabelMap, spec: KubeClusterSpec, expires: OffsetDateTime) -> KubeCluster {
        let mut metadata = Metadata::named(name);
        metadata.labels = labels;
        metadata.expires = Some(expires);
        KubeCluster { kind: Kind::KubeCluster.as_str().into(), version: "v3".into(), metadata, spec }
    }

    /// Validates a record.
    pub fn check(&self) -> Result<()> {
        self.metadata.check(Kind::KubeCluster)?;
        if self.metadata.name.contains(char::is_whitespace) {
            return Err(Error::bad_parameter("kube_cluster names may not contain white space"));
        }
        Ok(())
    }
}
