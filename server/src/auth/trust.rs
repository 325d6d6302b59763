//! Trust between clusters (reference §1).
//!
//! ```text
//!  leaf admin: tctl create trusted_cluster.yaml
//!        |
//!  leaf auth  --POST https://<web_proxy_addr>/webapi/trustedclusters/validate-->  root auth
//!             {token, [leaf host CA], teleport_version}        checks token, version, CA,
//!                                                              names; stores remote_cluster
//!             <--------------- {[root host CA, root user CA]}  and the leaf host CA
//!  stores root CAs (user CA + role_map) and trusted_cluster, in one transaction;
//!  its tunnel manager then dials the root's tunnel_addr.
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use shared::api::{ValidateTrustedClusterRequest, ValidateTrustedClusterResponse, path};
use shared::client::{ApiClient, ServerTrust};
use shared::error::{Code, Error, Kind, Result};
use shared::resource::token::SystemRole;
use shared::resource::{CaType, CertAuthority, LabelMap, RemoteCluster, TrustedCluster};

use super::{AuthServer, audit_codes};
use crate::services::{Versioned, keys};
use crate::storage::Op;

/// What the leaf admin sees for every token or access failure (the root logs the reason).
pub const TOKEN_REJECTED: &str = "access denied: the cluster token has been rejected";
/// What the leaf admin sees when the root's HTTPS certificate is not trusted.
pub const MISCONFIGURED_TLS: &str = "the trusted cluster uses misconfigured HTTP/TLS certificate.";

/// Every CA type a trust relationship may have stored under a cluster name.
const ALL_CA_TYPES: [CaType; 5] = [CaType::User, CaType::Host, CaType::Db, CaType::Openssh, CaType::Jwt];

/// Result of creating or updating a trusted cluster.
#[derive(Debug, Clone)]
pub struct TrustOutcome {
    /// The stored name (the root's real name).
    pub name: String,
    /// True when new.
    pub created: bool,
    /// Warnings for the admin.
    pub warnings: Vec<String>,
}

fn encode_ca(ca: &CertAuthority) -> Result<String> {
    let mut ca = ca.without_secrets();
    ca.metadata.id = None;
    let json = serde_json::to_vec(&ca).map_err(|e| Error::internal(e.to_string()))?;
    Ok(B64.encode(json))
}

fn decode_ca(b64: &str) -> Result<CertAuthority> {
    let bytes = B64.decode(b64.trim()).map_err(|e| Error::bad_parameter(format!("certificate authority is not base64: {e}")))?;
    let ca: CertAuthority = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_parameter(format!("certificate authority is not a cert_authority resource: {e}")))?;
    ca.check()?;
    Ok(ca)
}

/// The version rule the guide states and Teleport leaves unchecked: a leaf may be the root's
/// version or up to one major version behind, never newer.
pub fn check_versions(root: &str, leaf: &str) -> Result<()> {
    if leaf.trim().is_empty() {
        return Err(Error::bad_parameter(format!(
            "the leaf cluster did not report its version; this root cluster runs {root} and accepts leaf clusters from {}.0.0 to {root}",
            shared::version::major(root).unwrap_or(1).saturating_sub(1)
        )));
    }
    let l =
        shared::version::parse_semver(leaf).ok_or_else(|| Error::bad_parameter(format!("failed to parse Teleport version: {leaf:?}")))?;
    let r = shared::version::parse_semver(root).ok_or_else(|| Error::internal(format!("bad own version {root:?}")))?;
    if l > r {
        return Err(Error::bad_parameter(format!(
            "leaf cluster version {leaf} is newer than root cluster version {root}; upgrade the root cluster first"
        )));
    }
    if l.0 + 1 < r.0 {
        return Err(Error::bad_parameter(format!(
            "leaf cluster version {leaf} is more than one major version behind root cluster version {root}; upgrade the leaf cluster to at least {}.0.0",
            r.0 - 1
        )));
    }
    Ok(())
}

/// Whether a TCP connection to `addr` opens within 3 seconds.
async fn probe(addr: &str) -> std::result::Result<(), String> {
    match tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in 3s".into()),
    }
}

impl AuthServer {
    // ------------------------------------------------------------------ root side

    /// Root side of the handshake. Access failures come back as `AccessDenied` with the precise
    /// reason; the HTTP layer replaces them with [`TOKEN_REJECTED`].
    pub async fn validate_trusted_cluster(&self, req: ValidateTrustedClusterRequest, from: &str) -> Result<ValidateTrustedClusterResponse> {
        match self.validate_inner(&req).await {
            Ok((leaf, resp)) => {
                self.audit
                    .emit(audit_codes::TRUSTED_CLUSTER_VALIDATE, json!({"remote_cluster": leaf, "addr.remote": from, "success": true}))
                    .await;
                tracing::info!(leaf = %leaf, from, "trusted cluster validated");
                Ok(resp)
            }
            Err(e) => {
                tracing::warn!(from, error = %e, "Trusted cluster validation failed");
                self.audit
                    .emit(audit_codes::TRUSTED_CLUSTER_VALIDATE_FAILED, json!({"addr.remote": from, "success": false, "error": e.message}))
                    .await;
                Err(e)
            }
        }
    }

    async fn validate_inner(&self, req: &ValidateTrustedClusterRequest) -> Result<(String, ValidateTrustedClusterResponse)> {
        // 1. The token.
        let token = self.validate_token(&req.token, SystemRole::TrustedCluster).await.map_err(|e| {
            if e.has(Code::RoleMismatch) {
                e
            } else {
                tracing::debug!(reason = %e, "invalid cluster token");
                Error::access_denied("the remote server denied access: invalid cluster token").with_code(Code::TokenRejected)
            }
        })?;
        // 2. Versions (the guide's prerequisite).
        check_versions(shared::version::VERSION, &req.teleport_version)?;
        // 3. Exactly one CA, of type host, self-consistent.
        if req.certificate_authorities.len() != 1 {
            return Err(Error::access_denied(format!(
                "expected exactly one certificate authority, received {}",
                req.certificate_authorities.len()
            )));
        }
        let b64 = &req.certificate_authorities[0];
        if b64.len() > 64 * 1024 {
            return Err(Error::access_denied("certificate authority is too large"));
        }
        let mut ca = decode_ca(b64).map_err(|e| Error::access_denied(e.message))?;
        if ca.spec.ca_type != CaType::Host {
            return Err(Error::access_denied(format!(
                "expected host certificate authority, received CA with type {:?}",
                ca.spec.ca_type.as_str()
            )));
        }
        ca.spec.roles.clear();
        ca.spec.role_map.clear();
        ca = ca.without_secrets();
        let leaf = ca.metadata.name.clone();
        if leaf == self.cluster_name() {
            return Err(Error::access_denied(format!("remote cluster has same name as this cluster: {leaf}")));
        }
        for pem in ca.tls_certs_pem() {
            let (_, org) = shared::certs::cert_subject(&pem).map_err(|e| Error::access_denied(e.message))?;
            if org.is_empty() {
                return Err(Error::access_denied("CA certificate subject organization is invalid"));
            }
            if org != leaf {
                return Err(Error::access_denied("the subject organization of a CA certificate does not match the cluster name of the CA"));
            }
        }
        if self.services.trusted_cluster(&leaf).await?.is_some() {
            return Err(Error::access_denied(format!("remote cluster has same name as trusted cluster: {leaf}")));
        }
        // 4. A registered name keeps its CA: a different CA under the same name is refused.
        let ca_key = keys::ca(CaType::Host, &leaf);
        let existing_ca = self.services.ca(CaType::Host, &leaf, false).await?;
        let mut ops = Vec::new();
        match &existing_ca {
            Some(old) if !super::ca::same_public_keys(old, &ca) => {
                return Err(Error::access_denied(format!(
                    "a leaf cluster named {leaf:?} is already registered with a different certificate authority"
                )));
            }
            Some(_) => {}
            None => ops.push(self.services.create_op(&ca_key, &ca)?),
        }
        if self.services.remote_cluster(&leaf).await?.is_none() {
            let mut labels: LabelMap = token.metadata.labels.clone();
            labels.retain(|k, _| !k.starts_with("teleport.dev/"));
            let rc = RemoteCluster::new(&leaf, labels);
            ops.push(self.services.create_op(&keys::remote_cluster(&leaf), &rc)?);
        }
        if !ops.is_empty() {
            self.services.apply(ops).await.map_err(|e| {
                if e.is(Kind::AlreadyExists) {
                    Error::access_denied(format!("leaf cluster {leaf:?} is being registered concurrently"))
                } else {
                    e
                }
            })?;
        }
        let cas = vec![encode_ca(&self.own_ca(CaType::Host).await?)?, encode_ca(&self.own_ca(CaType::User).await?)?];
        Ok((leaf, ValidateTrustedClusterResponse { certificate_authorities: cas }))
    }

    /// `tctl update rc/<name> --set-labels/--set-ttl`.
    pub async fn update_remote_cluster(
        &self,
        name: &str,
        labels: Option<LabelMap>,
        ttl: Option<std::time::Duration>,
        actor: &str,
    ) -> Result<()> {
        let conflict = format!("remote cluster {name} has been updated by another client, try again");
        let rc = crate::services::retry_cas(5, Error::compare_failed(conflict), || async {
            let current = self.must_remote_cluster(name).await?;
            let mut rc = current.value.clone();
            if let Some(l) = &labels {
                for (k, v) in l {
                    if k.is_empty() || k.len() > 256 || v.len() > 1024 {
                        return Err(Error::bad_parameter(format!("invalid label {k:?}")));
                    }
                }
                rc.metadata.labels = l.clone();
            }
            if let Some(t) = ttl {
                rc.metadata.expires = Some(self.clock.now() + t);
            }
            let key = keys::remote_cluster(name);
            self.services.apply(vec![self.services.cas_op(&key, &rc, current.revision)?]).await?;
            Ok(rc)
        })
        .await?;
        self.audit.emit(audit_codes::REMOTE_CLUSTER_UPDATE, json!({"name": name, "user": actor, "labels": rc.metadata.labels})).await;
        Ok(())
    }

    async fn must_remote_cluster(&self, name: &str) -> Result<Versioned<RemoteCluster>> {
        self.services.remote_cluster(name).await?.ok_or_else(|| Error::not_found(format!("remote cluster {name:?} is not found")))
    }

    /// `tctl rm rc/<name>`: the remote cluster and every CA stored under its name, atomically.
    pub async fn delete_remote_cluster(&self, name: &str, actor: &str) -> Result<()> {
        if name == self.cluster_name() {
            return Err(Error::bad_parameter(format!("remote cluster {name:?} is the name of this root cluster and cannot be removed.")));
        }
        self.must_remote_cluster(name).await?;
        let mut ops = vec![Op::Delete { key: keys::remote_cluster(name) }, Op::DeleteIfExists { key: keys::remote_cluster_status(name) }];
        for t in ALL_CA_TYPES {
            ops.push(Op::DeleteIfExists { key: keys::ca(t, name) });
            ops.push(Op::DeleteIfExists { key: keys::deactivated_ca(t, name) });
        }
        self.services.apply(ops).await?;
        self.forget_heartbeat(name);
        self.audit.emit(audit_codes::REMOTE_CLUSTER_DELETE, json!({"name": name, "user": actor})).await;
        Ok(())
    }

    /// Removes leaves that have been offline longer than `offline_leaf_ttl` (opt-in), with their
    /// CAs, auditing each (Teleport's #3871). Every process of the cluster runs it; a leaf
    /// removed by another process first is simply gone. Runs until `shutdown`.
    pub async fn run_offline_leaf_reaper(self: std::sync::Arc<Self>, mut shutdown: crate::shutdown::Shutdown) {
        let Some(ttl) = self.settings.offline_leaf_ttl else {
            shutdown.wait().await;
            return;
        };
        let every = (ttl / 4).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
        crate::shutdown::every(every, shutdown, || async {
            let Ok(leaves) = self.remote_clusters().await else { return };
            let now = self.clock.now();
            for rc in leaves {
                let since = rc.status.last_heartbeat;
                // Never connected (Go zero time): its age is unknown, so it stays.
                if rc.status.connection == shared::resource::cluster::STATUS_ONLINE || since.year() < 2000 {
                    continue;
                }
                let offline_for = now - since;
                if offline_for < time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX) {
                    continue;
                }
                let name = rc.metadata.name.clone();
                let actor = format!("system (offline_leaf_ttl: offline since {})", shared::timefmt::rfc3339(since));
                match self.delete_remote_cluster(&name, &actor).await {
                    Ok(()) => {
                        tracing::warn!(leaf = %name, offline_for = %offline_for, "removed a leaf cluster offline longer than offline_leaf_ttl")
                    }
                    Err(e) if e.is(Kind::NotFound) => {}
                    Err(e) => tracing::warn!(leaf = %name, error = %e, "could not remove a leaf offline longer than offline_leaf_ttl"),
                }
            }
        })
        .await
    }

    // ------------------------------------------------------------------ leaf side

    /// Where a trusted cluster's CAs live now (active or deactivated), by type.
    async fn find_ca(&self, t: CaType, name: &str) -> Result<Option<(CertAuthority, bool)>> {
        if let Some(ca) = self.services.ca(t, name, false).await? {
            return Ok(Some((ca, true)));
        }
        Ok(self.services.ca(t, name, true).await?.map(|ca| (ca, false)))
    }

    /// Every `local` role of the map must exist here unless it uses `$` expansion.
    async fn check_local_roles(&self, tc: &TrustedCluster) -> Result<()> {
        for m in tc.combined_mapping() {
            for local in &m.local {
                if shared::rolemap::uses_expansion(local) {
                    continue;
                }
                if self.services.get::<shared::resource::Role>(&keys::role(local)).await?.is_none() {
                    return Err(Error::not_found(format!(
                        "a role {local:?} referenced in a mapping {}:{} is not defined",
                        m.remote,
                        shared::rolemap::go_list(&m.local)
                    )));
                }
            }
        }
        Ok(())
    }

    /// `tctl create [-f] trusted_cluster.yaml` (and `tctl edit tc/...` with `expected`).
    pub async fn upsert_trusted_cluster(
        &self,
        mut tc: TrustedCluster,
        force: bool,
        expected: Option<i64>,
        actor: &str,
    ) -> Result<TrustOutcome> {
        tc.check_and_set_defaults()?;
        if tc.metadata.name == self.cluster_name() {
            return Err(Error::bad_parameter(format!(
                "trusted cluster {:?} has the name of this cluster; set metadata.name to the root cluster's name",
                tc.metadata.name
            )));
        }
        self.check_local_roles(&tc).await?;
        let existing = match self.services.trusted_cluster(&tc.metadata.name).await? {
            Some(e) => Some(e),
            None => {
                let all: Vec<TrustedCluster> = self.services.list(keys::TRUSTED_CLUSTERS).await?;
                match all.into_iter().find(|t| t.spec.web_proxy_addr == tc.spec.web_proxy_addr) {
                    Some(t) => self.services.trusted_cluster(&t.metadata.name).await?,
                    None => None,
                }
            }
        };
        let outcome = match existing {
            Some(current) => {
                if !force && expected.is_none() {
                    return Err(Error::already_exists(format!("trusted cluster {:?} already exists", current.value.metadata.name)));
                }
                self.update_trusted_cluster(current, tc, expected).await?
            }
            None => {
                if expected.is_some() {
                    return Err(Error::not_found(format!("trusted cluster {:?} is not found", tc.metadata.name)));
                }
                self.create_trusted_cluster(tc).await?
            }
        };
        self.audit.emit(audit_codes::TRUSTED_CLUSTER_CREATE, json!({"name": outcome.name, "user": actor})).await;
        Ok(outcome)
    }

    async fn update_trusted_cluster(
        &self,
        current: Versioned<TrustedCluster>,
        mut tc: TrustedCluster,
        expected: Option<i64>,
    ) -> Result<TrustOutcome> {
        let old = &current.value;
        let name = old.metadata.name.clone();
        let mut warnings = Vec::new();
        if tc.metadata.name != name {
            warnings
                .push(format!("trusted cluster {:?} resource has been renamed to match remote cluster name {name:?}", tc.metadata.name));
            tc.metadata.name = name.clone();
        }
        for (field, a, b) in [
            ("token", &old.spec.token, &tc.spec.token),
            ("web_proxy_address", &old.spec.web_proxy_addr, &tc.spec.web_proxy_addr),
            ("tunnel_addr", &old.spec.tunnel_addr, &tc.spec.tunnel_addr),
        ] {
            if a != b {
                return Err(Error::bad_parameter(format!(
                    "can not update {field} for existing leaf cluster, delete and re-create this leaf cluster with updated {field}"
                )));
            }
        }
        if old.spec.roles != tc.spec.roles && !old.spec.roles.is_empty() {
            return Err(Error::bad_parameter(
                "can not update roles for existing leaf cluster, delete and re-create this leaf cluster with updated roles",
            ));
        }
        let (Some((mut user_ca, user_active)), Some((host_ca, host_active))) =
            (self.find_ca(CaType::User, &name).await?, self.find_ca(CaType::Host, &name).await?)
        else {
            return Err(Error::not_found(format!(
                "the certificate authorities of trusted cluster {name:?} are missing; remove it with 'tctl rm tc/{name}' and create it again"
            )));
        };
        user_ca.spec.roles.clear();
        user_ca.spec.role_map = tc.combined_mapping();
        let mut ops = Vec::new();
        let enable = tc.spec.enabled;
        for (ca, active) in [(&user_ca, user_active), (&host_ca, host_active)] {
            let t = ca.spec.ca_type;
            if active != enable {
                ops.push(Op::Delete { key: if active { keys::ca(t, &name) } else { keys::deactivated_ca(t, &name) } });
            }
            let target = if enable { keys::ca(t, &name) } else { keys::deactivated_ca(t, &name) };
            ops.push(self.services.put_op(&target, ca)?);
        }
        let tc_key = keys::trusted_cluster(&name);
        ops.push(self.services.cas_op(&tc_key, &tc, expected.unwrap_or(current.revision))?);
        self.services.apply(ops).await.map_err(super::users::edit_conflict)?;
        tracing::info!(trusted_cluster = %name, enabled = enable, "trusted cluster updated");
        Ok(TrustOutcome { name, created: false, warnings })
    }

    async fn create_trusted_cluster(&self, mut tc: TrustedCluster) -> Result<TrustOutcome> {
        let root_cas = self.establish_trust(&tc).await?;
        let root = root_cas[0].metadata.name.clone();
        let mut warnings = Vec::new();
        if root != tc.metadata.name {
            warnings
                .push(format!("trusted cluster {:?} resource has been renamed to match remote cluster name {root:?}", tc.metadata.name));
            tc.metadata.name = root.clone();
        }
        if self.services.trusted_cluster(&root).await?.is_some() {
            return Err(Error::already_exists(format!("trusted cluster {root:?} already exists")));
        }
        let mut ops = Vec::new();
        for mut ca in root_cas {
            if !matches!(ca.spec.ca_type, CaType::User | CaType::Host) {
                continue;
            }
            ca.spec.roles.clear();
            ca.spec.role_map.clear();
            if ca.spec.ca_type == CaType::User {
                ca.spec.role_map = tc.combined_mapping();
            }
            let t = ca.spec.ca_type;
            if self.find_ca(t, &root).await?.is_some() {
                return Err(Error::already_exists(format!("cluster {root:?} already exists")));
            }
            let key = if tc.spec.enabled { keys::ca(t, &root) } else { keys::deactivated_ca(t, &root) };
            ops.push(self.services.create_op(&key, &ca)?);
        }
        ops.push(self.services.create_op(&keys::trusted_cluster(&root), &tc)?);
        self.services
            .apply(ops)
            .await
            .map_err(|e| if e.is(Kind::AlreadyExists) { Error::already_exists(format!("cluster {root:?} already exists")) } else { e })?;
        tracing::info!(trusted_cluster = %root, enabled = tc.spec.enabled, "trust established");
        if tc.spec.enabled
            && let Err(e) = probe(&tc.spec.tunnel_addr).await
        {
            tracing::warn!(tunnel_addr = %tc.spec.tunnel_addr, error = %e, "the root's tunnel address cannot be reached");
            warnings.push(format!(
                "cannot reach tunnel_addr {} now ({e}); this cluster keeps retrying: check tunnel_addr and the firewalls between the clusters, and see 'tctl status'",
                tc.spec.tunnel_addr
            ));
        }
        Ok(TrustOutcome { name: root, created: true, warnings })
    }

    /// Calls the root's validate endpoint and checks what comes back. Returns the root's host
    /// and user CAs (host first).
    async fn establish_trust(&self, tc: &TrustedCluster) -> Result<Vec<CertAuthority>> {
        let own_host = self.own_ca(CaType::Host).await?;
        let req = ValidateTrustedClusterRequest {
            token: tc.spec.token.clone(),
            certificate_authorities: vec![encode_ca(&own_host)?],
            teleport_version: shared::version::VERSION.into(),
        };
        let trust = if self.settings.insecure { ServerTrust::Insecure } else { ServerTrust::System };
        let client = ApiClient::direct(&tc.spec.web_proxy_addr, &trust, None)?;
        tracing::debug!(
            web_proxy_addr = %tc.spec.web_proxy_addr,
            insecure = self.settings.insecure,
            "asking the root cluster to validate the join token (POST {})",
            path::VALIDATE_TRUSTED_CLUSTER
        );
        let resp: ValidateTrustedClusterResponse = client.post(path::VALIDATE_TRUSTED_CLUSTER, &req).await.map_err(|e| {
            tracing::debug!(web_proxy_addr = %tc.spec.web_proxy_addr, error = %e, "the trust handshake failed");
            if e.has(Code::UntrustedServerCert) {
                tracing::warn!(error = %e, "root proxy TLS certificate is not trusted");
                Error::access_denied(format!(
                    "{MISCONFIGURED_TLS} Give the root's proxy a certificate this host trusts (proxy_service.https_keypairs), or, for testing only, start this cluster with --insecure"
                ))
            } else if e.has(Code::TokenRejected) {
                Error::access_denied(format!(
                    "{}; the token is wrong, expired or already used: ask the root's admin for a new one ('tctl tokens add --type=trusted_cluster --ttl=5m' on the root; the root's log says which)",
                    e.message
                ))
            } else if e.is(Kind::ConnectionProblem) {
                Error::connection_problem(format!(
                    "cannot reach the root cluster at https://{}: {}; check web_proxy_addr and that this cluster can connect to it",
                    tc.spec.web_proxy_addr, e.message
                ))
            } else {
                e
            }
        })?;
        let mut cas = Vec::new();
        for b64 in &resp.certificate_authorities {
            let ca = decode_ca(b64)
                .map_err(|e| Error::bad_parameter(format!("the root cluster sent an invalid certificate authority: {}", e.message)))?;
            for pem in ca.tls_certs_pem() {
                let (_, org) = shared::certs::cert_subject(&pem)?;
                if org == self.cluster_name() {
                    return Err(Error::bad_parameter("remote cluster name can not be the same as local cluster name"));
                }
                if org != ca.metadata.name {
                    return Err(Error::bad_parameter(
                        "the root cluster sent a certificate authority whose certificate names another cluster",
                    ));
                }
            }
            if ca.metadata.name == self.cluster_name() {
                return Err(Error::bad_parameter("remote cluster name can not be the same as local cluster name"));
            }
            cas.push(ca);
        }
        cas.sort_by_key(|c| if c.spec.ca_type == CaType::Host { 0 } else { 1 });
        let Some(first) = cas.first() else {
            return Err(Error::bad_parameter("the root cluster sent no certificate authorities"));
        };
        let root = first.metadata.name.clone();
        if cas.iter().any(|c| c.metadata.name != root) {
            return Err(Error::bad_parameter("the root cluster sent certificate authorities of different clusters"));
        }
        for t in [CaType::Host, CaType::User] {
            if !cas.iter().any(|c| c.spec.ca_type == t) {
                return Err(Error::bad_parameter(format!("the root cluster sent no {t} certificate authority")));
            }
        }
        Ok(cas)
    }

    /// `tctl rm tc/<name>`: the trusted cluster and every CA under its name, atomically.
    pub async fn delete_trusted_cluster(&self, name: &str, actor: &str) -> Result<()> {
        if name == self.cluster_name() {
            return Err(Error::bad_parameter(format!("trusted cluster {name:?} is the name of this root cluster and cannot be removed.")));
        }
        if self.services.trusted_cluster(name).await?.is_none() {
            return Err(Error::not_found(format!("trusted cluster {name:?} is not found")));
        }
        let mut ops = vec![Op::Delete { key: keys::trusted_cluster(name) }, Op::DeleteIfExists { key: keys::remote_locks(name) }];
        for t in ALL_CA_TYPES {
            ops.push(Op::DeleteIfExists { key: keys::ca(t, name) });
            ops.push(Op::DeleteIfExists { key: keys::deactivated_ca(t, name) });
        }
        self.services.apply(ops).await?;
        self.audit.emit(audit_codes::TRUSTED_CLUSTER_DELETE, json!({"name": name, "user": actor})).await;
        tracing::info!(trusted_cluster = %name, "trust removed");
        Ok(())
    }

    /// `tctl map-roles --cluster`: what a user of `cluster` with `roles` gets here.
    pub async fn map_roles(&self, cluster: &str, roles: &[String]) -> Result<Vec<String>> {
        let (ca, _) = self
            .find_ca(CaType::User, cluster)
            .await?
            .ok_or_else(|| Error::not_found(format!("trusted cluster {cluster:?} is not found")))?;
        let mapped = shared::rolemap::map_roles(&ca.combined_mapping(), roles).map_err(|e| {
            Error::bad_parameter(format!(
                "failed to map roles for user with remote roles {}: {}",
                shared::rolemap::go_list(roles),
                e.message
            ))
        })?;
        if mapped.is_empty() {
            return Err(shared::rolemap::no_roles_mapped_ssh(roles));
        }
        Ok(mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        assert!(check_versions("18.0.0", "18.0.0").is_ok());
        assert!(check_versions("18.2.0", "17.9.1").is_ok());
        let e = check_versions("18.0.0", "19.0.0").unwrap_err().message;
        assert!(e.contains("19.0.0") && e.contains("18.0.0") && e.contains("newer"), "{e}");
        let e = check_versions("18.0.0", "18.0.1").unwrap_err().message;
        assert!(e.contains("newer"), "{e}");
        let e = check_versions("18.0.0", "16.4.0").unwrap_err().message;
        assert!(e.contains("16.4.0") && e.contains("18.0.0") && e.contains("17.0.0"), "{e}");
        assert!(check_versions("18.0.0", "").unwrap_err().message.contains("did not report"));
        assert_eq!(check_versions("18.0.0", "x.y").unwrap_err().message, "failed to parse Teleport version: \"x.y\"");
    }
}
