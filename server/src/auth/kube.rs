//! Kubernetes clusters: heartbeats of the `kubernetes_service`, and which of them a caller may
//! see or reach (`kubernetes_labels` of their roles, mapped on a leaf).

use shared::error::{Code, Error, Result};
use shared::rbac::AccessChecker;
use shared::resource::KubeCluster;

use super::AuthServer;
use crate::services::keys;

impl AuthServer {
    /// Stores a heartbeat of a Kubernetes cluster this cluster's `kubernetes_service` in process
    /// `host_id` serves. A name another live service holds is refused (no service takes over
    /// another's clusters); an expired record is anyone's.
    pub async fn upsert_kube_cluster(&self, mut k: KubeCluster, host_id: &str) -> Result<()> {
        k.check()?;
        k.spec.host_id = host_id.to_string();
        if let Some(old) = self.services.get::<KubeCluster>(&keys::kube_cluster(&k.metadata.name)).await?
            && old.value.spec.host_id != host_id
            && old.value.metadata.expires.is_some_and(|e| e > self.clock.now())
        {
            return Err(Error::already_exists(format!(
                "kubernetes cluster {:?} is already served by {} ({}); give this one another name (kubernetes_service.kube_cluster_name)",
                k.metadata.name, old.value.spec.hostname, old.value.spec.host_id
            )));
        }
        k.metadata.expires = Some(super::nodes::heartbeat_expiry(k.metadata.expires, self.clock.now()));
        let op = self.services.put_op(&keys::kube_cluster(&k.metadata.name), &k)?;
        self.services.apply(vec![op]).await.map(|_| ())
    }

    /// Removes a Kubernetes cluster's record (its service stopping).
    pub async fn delete_kube_cluster(&self, name: &str) -> Result<()> {
        self.services.apply(vec![crate::storage::Op::DeleteIfExists { key: keys::kube_cluster(name) }]).await.map(|_| ())
    }

    /// Every registered Kubernetes cluster `checker` may reach (`None`: all of them), by name.
    pub async fn visible_kube_clusters(&self, checker: Option<&AccessChecker>) -> Result<Vec<KubeCluster>> {
        let mut all: Vec<KubeCluster> = self.services.list(keys::KUBE_CLUSTERS).await?;
        if let Some(c) = checker {
            all.retain(|k| c.check_kube_cluster(&k.metadata.labels).is_ok());
        }
        all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(all)
    }

    /// The Kubernetes cluster `name` of this cluster, if `checker` may reach it. Unknown and
    /// forbidden read the same, as Teleport says them.
    pub async fn kube_cluster_for(&self, checker: &AccessChecker, name: &str) -> Result<KubeCluster> {
        let not_found = || {
            Error::not_found(format!("kubernetes cluster {name:?} not found; 'tsh kube ls' lists the ones you can reach"))
                .with_code(Code::NodeNotFound)
        };
        let k = self.services.get::<KubeCluster>(&keys::kube_cluster(name)).await?.ok_or_else(not_found)?.value;
        checker.check_kube_cluster(&k.metadata.labels).map_err(|_| not_found())?;
        Ok(k)
    }
}
