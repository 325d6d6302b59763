//! The certificate authorities whose user certificates this cluster accepts, decided by one rule
//! and read from one place: this cluster's own user CA, and the active user CA of every cluster
//! it trusts (a `trusted_cluster` record; a disabled trust's CAs are under
//! `authorities_deactivated/` and so not among them). A root's CA carries its role map.
//!
//! Its readers: the proxy's SSH side (which key signed a user's certificate), the web port's TLS
//! client roots (with this cluster's own host CA), the API's check that a client certificate's
//! issuer is trusted now, role mapping for a root's users, and the nodes' bundle.
//!
//! Like [`super::leafview`], the set is a copy kept from the change feed in the shape of a
//! reflector store: a reader drains what the feed queued since the last read and reloads when a
//! CA or a trust changed (there are a handful; one scan is cheaper than bookkeeping). Nothing runs
//! between reads. Where the feed trails the commit (PostgreSQL), a copy could accept a CA another
//! process just disabled, so every read there reloads: the same reads as before, the same rule.

use std::sync::Arc;

use russh::keys::PublicKey;
use shared::api::TrustedUserCa;
use shared::certs;
use shared::error::Result;
use shared::resource::{CaType, CertAuthority, RoleMapping};
use tokio::sync::Mutex;

use crate::services::{Services, keys};
use crate::storage::{Watched, Watcher};

/// One accepted user CA.
#[derive(Debug, Clone)]
pub struct UserCa {
    /// The cluster that owns it.
    pub cluster: String,
    /// Whether it is this cluster's own.
    pub own: bool,
    /// Its active SSH keys.
    pub ssh_keys: Vec<PublicKey>,
    /// Its active TLS certificates (DER).
    pub tls_certs: Vec<Vec<u8>>,
    /// How its users' roles map to roles here (empty for this cluster's own).
    pub role_map: Vec<RoleMapping>,
}

/// The set, as of one read.
#[derive(Debug, Clone, Default)]
pub struct TrustedCas {
    /// Accepted user CAs, this cluster's own first.
    pub users: Vec<UserCa>,
    /// This cluster's own host CA's TLS certificates (DER): hosts of this cluster authenticate
    /// to its API with them.
    pub own_host_tls: Vec<Vec<u8>>,
}

impl TrustedCas {
    /// The accepted user CA of `cluster`.
    pub fn user_ca(&self, cluster: &str) -> Option<&UserCa> {
        self.users.iter().find(|c| c.cluster == cluster)
    }

    /// Every accepted SSH key with the CA it belongs to, for [`certs::check_ssh_cert`] (whose
    /// answer is an index into these lists).
    pub fn ssh_signers(&self) -> (Vec<PublicKey>, Vec<&UserCa>) {
        self.users.iter().flat_map(|ca| ca.ssh_keys.iter().map(move |k| (k.clone(), ca))).unzip()
    }

    /// The TLS roots client certificates must chain to: every accepted user CA and this
    /// cluster's own host CA.
    pub fn tls_client_roots(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.users.iter().flat_map(|c| c.tls_certs.iter()).chain(self.own_host_tls.iter())
    }

    /// The user CAs as a node's bundle carries them.
    pub fn for_nodes(&self) -> Vec<TrustedUserCa> {
        self.users
            .iter()
            .map(|ca| TrustedUserCa {
                cluster_name: ca.cluster.clone(),
                ssh_public_keys: ca.ssh_keys.iter().map(certs::authorized_key).collect(),
                role_map: ca.role_map.clone(),
                tls_certs: ca.tls_certs.iter().map(|der| certs::pem_encode("CERTIFICATE", der)).collect(),
            })
            .collect()
    }
}

/// The copy and the feed it follows.
#[derive(Default)]
pub struct TrustedCasCopy {
    state: Mutex<CopyState>,
}

#[derive(Default)]
struct CopyState {
    watcher: Option<Watcher>,
    current: Option<Arc<TrustedCas>>,
}

impl TrustedCasCopy {
    /// The set as of now: every change that returned before this call is in it.
    pub async fn current(&self, services: &Services, cluster: &str) -> Result<Arc<TrustedCas>> {
        if !services.backend.feed_is_synchronous() {
            return Ok(Arc::new(load(services, cluster).await?));
        }
        let mut s = self.state.lock().await;
        let watcher = s.watcher.get_or_insert_with(|| services.backend.watch());
        let mut stale = false;
        while let Some(w) = watcher.try_next() {
            stale |= match w {
                Watched::Init | Watched::Resync => true,
                Watched::Event(e) => watched(&e.key),
            };
        }
        // A feed that is down promises nothing: read storage until it is back.
        if !services.backend.feed_live() {
            s.current = None;
            return Ok(Arc::new(load(services, cluster).await?));
        }
        if stale {
            s.current = None;
        }
        if let Some(c) = &s.current {
            return Ok(c.clone());
        }
        let fresh = Arc::new(load(services, cluster).await?);
        s.current = Some(fresh.clone());
        Ok(fresh)
    }
}

fn watched(key: &str) -> bool {
    key.starts_with(keys::AUTHORITIES) || key.starts_with(keys::TRUSTED_CLUSTERS)
}

/// The rule, read from storage.
async fn load(services: &Services, cluster: &str) -> Result<TrustedCas> {
    let mut users = Vec::new();
    for ca in services.cas_of_type(CaType::User).await? {
        let own = ca.metadata.name == cluster;
        // A user CA without a trust (a half-removed relationship) is never accepted.
        if !own && services.trusted_cluster(&ca.metadata.name).await?.is_none() {
            continue;
        }
        users.push(UserCa {
            cluster: ca.metadata.name.clone(),
            own,
            ssh_keys: ca.ssh_public_keys(),
            tls_certs: tls_ders(&ca),
            role_map: if own { vec![] } else { ca.combined_mapping() },
        });
    }
    users.sort_by_key(|c| !c.own);
    let own_host_tls = services.ca(CaType::Host, cluster, false).await?.map(|ca| tls_ders(&ca)).unwrap_or_default();
    Ok(TrustedCas { users, own_host_tls })
}

fn tls_ders(ca: &CertAuthority) -> Vec<Vec<u8>> {
    ca.tls_certs_pem().iter().filter_map(|pem| certs::first_pem_der(pem, "CERTIFICATE").ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBackend;
    use crate::storage::{BackendExt, Op};

    fn ca(name: &str, t: CaType) -> CertAuthority {
        crate::auth::ca::new_ca(t, name, time::OffsetDateTime::now_utc()).expect("a CA")
    }

    fn names(set: &TrustedCas) -> Vec<&str> {
        set.users.iter().map(|c| c.cluster.as_str()).collect()
    }

    #[tokio::test]
    async fn one_rule_read_through_a_copy_that_sees_every_returned_write() {
        let backend = Arc::new(MemoryBackend::new(shared::timefmt::system_clock()));
        let s = Services::new(backend.clone());
        for (name, t) in [("leaf", CaType::User), ("leaf", CaType::Host), ("root", CaType::User), ("stray", CaType::User)] {
            s.apply(vec![s.put_op(&keys::ca(t, name), &ca(name, t)).unwrap()]).await.unwrap();
        }
        let tc: shared::resource::TrustedCluster = serde_json::from_value(serde_json::json!({"kind": "trusted_cluster", "version": "v2",
            "metadata": {"name": "root"}, "spec": {"enabled": true, "token": "t", "web_proxy_addr": "root:3080"}}))
        .unwrap();
        s.apply(vec![s.put_op(&keys::trusted_cluster("root"), &tc).unwrap()]).await.unwrap();
        let copy = TrustedCasCopy::default();
        let set = copy.current(&s, "leaf").await.unwrap();
        assert_eq!(names(&set), ["leaf", "root"], "own first; a CA without a trust is not accepted");
        assert!(set.user_ca("root").is_some_and(|c| !c.own) && set.user_ca("stray").is_none());
        assert_eq!(set.ssh_signers().0.len(), 2);
        assert_eq!(set.tls_client_roots().count(), 3, "two user CAs and the own host CA");
        assert!(Arc::ptr_eq(&set, &copy.current(&s, "leaf").await.unwrap()), "nothing changed: the same copy");
        // Disabling a trust moves its CA away; the next read no longer accepts it.
        s.apply(vec![Op::Delete { key: keys::ca(CaType::User, "root") }]).await.unwrap();
        assert_eq!(names(&copy.current(&s, "leaf").await.unwrap()), ["leaf"]);
        backend.put("users/x", b"{}".to_vec(), None).await.unwrap();
        let again = copy.current(&s, "leaf").await.unwrap();
        assert!(Arc::ptr_eq(&again, &copy.current(&s, "leaf").await.unwrap()), "other changes do not reload");
    }
}
