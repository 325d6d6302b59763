//! The auth service: the cluster's CAs, users, tokens, trust relationships and certificates.
//!
//! Everything here is policy-free with respect to *callers*: the authorizing facade
//! (`crate::authz`) decides who may call what; these functions do the work and enforce the
//! data rules (validation, immutability, atomicity).

pub mod apps;
pub mod appsession;
pub mod ca;
pub mod db;
pub mod kube;
pub mod leafview;
pub mod locks;
pub mod mfa;
pub mod nodes;
pub mod preference;
pub mod recordings;
pub mod requests;
pub mod rotation;
pub mod semaphore;
pub mod sessions;
pub mod status;
pub mod tokens;
pub mod trust;
pub mod trusted;
pub mod users;
pub mod websession;

use std::path::PathBuf;
use std::time::Duration;

use russh::keys::ssh_key::certificate::CertType;
use serde_json::json;
use shared::api::{CertsResponse, PublicKeys, TrustedCa};
use shared::certs::{self, CLOCK_SKEW, SshCertParams, TlsCertParams};
use shared::error::{Error, Result};
use shared::identity::{self, CertIdentity, HostIdentity, NO_LOGIN_PREFIX, UserIdentity};
use shared::rbac::AccessChecker;
use shared::resource::token::SystemRole;
use shared::resource::{CaType, CertAuthority, RemoteCluster, Role, User};
use shared::timefmt::SharedClock;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::services::{Services, keys};
use crate::storage::Op;

/// Default user certificate TTL.
pub const DEFAULT_USER_TTL: Duration = Duration::from_secs(12 * 3600);
/// Shortest user certificate TTL (short ones are useful for automation and tests).
pub const MIN_USER_TTL: Duration = Duration::from_secs(5);
/// Host certificates are long-lived; hosts renew them when the host CA rotates (`node/renew.rs`,
/// `POST /v1/hosts/renew`), not on a schedule.
pub const HOST_CERT_TTL: Duration = Duration::from_secs(5 * 365 * 86400);

/// Settings of the auth service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// This cluster's name.
    pub cluster_name: String,
    /// Where state lives.
    pub data_dir: PathBuf,
    /// Public web address `host:port` (invite links, `web_proxy_addr`).
    pub public_addr: String,
    /// Heartbeat interval of reverse tunnels.
    pub keep_alive_interval: Duration,
    /// Missed heartbeats before a tunnel is offline.
    pub keep_alive_count_max: u32,
    /// Remove leaves that have been offline this long (opt-in).
    pub offline_leaf_ttl: Option<Duration>,
    /// Skip TLS verification when dialing a root's web proxy (`teleport start --insecure`).
    pub insecure: bool,
    /// Static tokens from the config file (never expire).
    pub static_tokens: Vec<(SystemRole, String)>,
    /// This process's host UUID: its name among the cluster's proxies.
    pub proxy_id: String,
    /// `auth_service.authentication`, if the configuration file sets it.
    pub auth_preference: Option<shared::resource::auth_preference::AuthPreferenceSpec>,
}

impl AuthSettings {
    /// `keep_alive_interval × keep_alive_count_max`.
    pub fn offline_threshold(&self) -> Duration {
        self.keep_alive_interval * self.keep_alive_count_max.max(1)
    }
}

/// What a user certificate is for besides its holder: a leaf (`route`), one Kubernetes cluster or
/// database there, and approved access requests whose roles it carries.
#[derive(Debug, Clone, Default)]
pub struct CertScope {
    /// The cluster it routes to (`None`: this one).
    pub route: Option<String>,
    /// One Kubernetes cluster.
    pub kube: Option<String>,
    /// One database.
    pub db: Option<shared::identity::RouteToDatabase>,
    /// Approved access requests (their ids).
    pub requests: Vec<String>,
}

/// The auth service.
pub struct AuthServer {
    /// Storage access.
    pub services: Services,
    /// Settings.
    pub settings: AuthSettings,
    /// Audit log.
    pub audit: AuditLog,
    /// Clock.
    pub clock: SharedClock,
    /// Bumped (in this process) whenever something a node's login decisions depend on may have
    /// changed; waiting nodes then recompute their bundle. Nothing outside this process sees it.
    authz_gen: watch::Sender<u64>,
    /// Heartbeats heard by this process and not yet written (`status.rs` reads them,
    /// `tunnel::presence` writes them).
    heartbeats: std::sync::Mutex<std::collections::HashMap<String, time::OffsetDateTime>>,
    /// The leaves, their statuses and presence records, kept in memory for listings.
    leaf_view: leafview::LeafView,
    /// The user CAs accepted here (one rule, one copy).
    trusted_cas: trusted::TrustedCasCopy,
    /// Password hashing, behind its gate.
    pub passwords: users::Passwords,
}

/// The principals a user certificate lists: the logins the roles allow, or one that matches no
/// Unix account when they allow none (an empty list would mean "any login" to OpenSSH).
pub fn cert_logins(checker: &AccessChecker) -> Vec<String> {
    let mut logins = checker.allowed_logins();
    if logins.is_empty() {
        logins.push(format!("{NO_LOGIN_PREFIX}{}", uuid::Uuid::new_v4()));
    }
    logins
}

impl AuthServer {
    /// Builds the service (call [`AuthServer::init`] next).
    pub fn new(services: Services, settings: AuthSettings, audit: AuditLog, clock: SharedClock) -> AuthServer {
        AuthServer {
            services,
            settings,
            audit,
            clock,
            authz_gen: watch::channel(1).0,
            heartbeats: Default::default(),
            leaf_view: Default::default(),
            trusted_cas: Default::default(),
            passwords: Default::default(),
        }
    }

    /// The user CAs whose certificates this cluster accepts now ([`trusted`]).
    pub async fn trusted_cas(&self) -> Result<std::sync::Arc<trusted::TrustedCas>> {
        self.trusted_cas.current(&self.services, self.cluster_name()).await
    }

    /// This cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.settings.cluster_name
    }

    /// First start: record the cluster name, create the CAs and preset roles. Later starts:
    /// check the name and reuse everything. Safe when several processes start together on an
    /// empty database: each create is `Create`, and whoever loses a race uses what the winner
    /// made (so there is exactly one user CA and one host CA).
    pub async fn init(&self) -> Result<()> {
        let name = self.cluster_name().to_string();
        let created =
            self.services.apply(vec![Op::Create { key: keys::CLUSTER_NAME.into(), value: name.clone().into_bytes(), expires: None }]).await;
        match created {
            Ok(_) => {}
            Err(e) if e.is(shared::Kind::AlreadyExists) => {
                let stored = self.services.backend.get(keys::CLUSTER_NAME).await?.map(|i| String::from_utf8_lossy(&i.value).to_string());
                if stored.as_deref() != Some(name.as_str()) {
                    return Err(Error::bad_parameter(format!(
                        "the cluster state belongs to cluster {:?}, but the configuration names {name:?}; set cluster_name: {} \
                         or use another data_dir (or database)",
                        stored.clone().unwrap_or_default(),
                        stored.unwrap_or_default()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        for t in [CaType::User, CaType::Host, CaType::Db, CaType::Jwt] {
            if self.services.ca(t, &name, false).await?.is_none() {
                let ca = ca::new_ca(t, &name, self.clock.now())?;
                match self.services.apply(vec![self.services.create_op(&keys::ca(t, &name), &ca)?]).await {
                    Ok(_) => tracing::info!(ca = %ca.id(), "created certificate authority"),
                    Err(e) if e.is(shared::Kind::AlreadyExists) => tracing::debug!(ca = %ca.id(), "another process created the CA first"),
                    Err(e) => return Err(e),
                }
            }
        }
        self.init_auth_preference(self.settings.auth_preference.as_ref()).await?;
        for role in shared::resource::role::presets() {
            let key = keys::role(&role.metadata.name);
            if self.services.backend.get(&key).await?.is_none() {
                match self.services.apply(vec![self.services.create_op(&key, &role)?]).await {
                    Ok(_) => {}
                    Err(e) if e.is(shared::Kind::AlreadyExists) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// This cluster's own CA with its private keys.
    pub async fn own_ca(&self, t: CaType) -> Result<CertAuthority> {
        self.services
            .ca(t, self.cluster_name(), false)
            .await?
            .ok_or_else(|| Error::internal(format!("the {t} certificate authority of this cluster is missing")))
    }

    /// This cluster's host CA, as clients need it.
    pub async fn own_trusted_host_ca(&self) -> Result<TrustedCa> {
        Ok(Self::trusted_ca(&self.own_ca(CaType::Host).await?.without_secrets()))
    }

    /// Public material of a CA for clients.
    pub fn trusted_ca(ca: &CertAuthority) -> TrustedCa {
        TrustedCa {
            cluster_name: ca.metadata.name.clone(),
            ca_type: ca.spec.ca_type.to_string(),
            ssh_public_keys: ca.ssh_public_keys().iter().map(certs::authorized_key).collect(),
            tls_certs: ca.tls_certs_pem(),
        }
    }

    /// Builds the access checker for a local user.
    pub async fn checker_for_user(&self, user: &User) -> Result<AccessChecker> {
        let roles = self.services.roles(&user.spec.roles).await?;
        Ok(AccessChecker::new(&roles, &user.spec.traits))
    }

    /// The roles that apply here to the holder of a certificate `issuer` signed, and their
    /// checker: a user of this cluster gets their certificate's roles; a trusted root's user
    /// gets what the root's `role_map` maps their roles to (never their root roles), with
    /// `logins` replaced by the certificate's principals.
    pub async fn access_for(&self, u: &UserIdentity, issuer: &str) -> Result<(Vec<String>, AccessChecker)> {
        if issuer == self.cluster_name() {
            let roles = self
                .services
                .roles(&u.roles)
                .await
                .map_err(|e| Error::access_denied(format!("{}; sign in again to refresh your roles", e.message)))?;
            return Ok((u.roles.clone(), AccessChecker::new(&roles, &u.traits)));
        }
        let cas = self.trusted_cas().await?;
        let ca =
            cas.user_ca(issuer).ok_or_else(|| Error::access_denied(format!("certificates of cluster {issuer:?} are not trusted here")))?;
        let mapped = shared::rolemap::map_roles(&ca.role_map, &u.roles).map_err(|e| {
            Error::access_denied(format!(
                "failed to map roles for remote user {:?} from cluster {issuer:?} with remote roles {}: {}",
                u.username,
                shared::rolemap::go_list(&u.roles),
                e.message
            ))
        })?;
        if mapped.is_empty() {
            return Err(shared::rolemap::no_roles_mapped_api(&u.username, issuer, &u.roles));
        }
        let roles = self.services.roles(&mapped).await?;
        Ok((mapped, AccessChecker::new(&roles, &u.remote_traits())))
    }

    /// Remote clusters the checker may see (cluster_labels), with live status.
    pub async fn visible_remote_clusters(&self, checker: &AccessChecker) -> Result<Vec<RemoteCluster>> {
        Ok(self.remote_clusters().await?.into_iter().filter(|rc| checker.check_cluster(&rc.metadata.labels).is_ok()).collect())
    }

    /// Issues user certificates for `user` (after the caller was authenticated).
    pub async fn user_certs(&self, user: &User, keys: &PublicKeys, ttl: Duration, route: Option<String>) -> Result<CertsResponse> {
        self.user_certs_for(user, keys, ttl, CertScope { route, ..Default::default() }).await
    }

    /// [`AuthServer::user_certs`] for one Kubernetes cluster of the target cluster as well
    /// (`tsh kube credentials`). A root cannot know a leaf's Kubernetes clusters: the leaf
    /// checks the name, as it decides everything else about its own resources.
    pub async fn user_certs_for(&self, user: &User, keys: &PublicKeys, ttl: Duration, scope: CertScope) -> Result<CertsResponse> {
        let CertScope { route, kube, db, requests } = scope;
        // The roles of approved access requests join the user's own, for as long as the
        // requests last.
        let (extra, until) =
            if requests.is_empty() { (Vec::new(), None) } else { self.usable_requests(&user.metadata.name, &requests).await? };
        let mut user = user.clone();
        for r in extra {
            if !user.spec.roles.contains(&r) {
                user.spec.roles.push(r);
            }
        }
        let user = &user;
        let ttl = match until {
            Some(u) => ttl.min(Duration::from_secs(u64::try_from((u - self.clock.now()).whole_seconds()).unwrap_or(0))),
            None => ttl,
        };
        // No certificate under a lock: one issued now would work the moment the lock lifts,
        // whatever the lock meant to stop until then.
        self.check_issuance_locks(&user.metadata.name, &user.spec.roles).await?;
        let checker = self.checker_for_user(user).await?;
        let route = route.filter(|r| !r.is_empty() && r != self.cluster_name());
        let kube = kube.filter(|k| !k.is_empty());
        if let Some(k) = &kube {
            shared::names::check_name("kubernetes cluster name", k)?;
            if route.is_none() {
                self.kube_cluster_for(&checker, k).await?;
            }
        }
        if let Some(d) = &db {
            shared::names::check_name("database name", &d.service_name)?;
            if d.protocol != "postgres" {
                return Err(Error::bad_parameter(format!("database protocol {:?} is not supported; use postgres", d.protocol)));
            }
            if kube.is_some() {
                return Err(Error::bad_parameter("a certificate is for one Kubernetes cluster or one database, not both"));
            }
        }
        if let Some(r) = &route {
            let visible = match self.services.remote_cluster(r).await? {
                Some(rc) => checker.check_cluster(&rc.value.metadata.labels).is_ok(),
                None => false,
            };
            if !visible {
                return Err(Error::not_found(format!("remote cluster {r:?} not found")).with_code(shared::Code::ClusterNotFound));
            }
        }
        let logins = cert_logins(&checker);
        let ttl = if until.is_some() {
            ttl.min(checker.max_session_ttl())
        } else {
            ttl.clamp(MIN_USER_TTL, checker.max_session_ttl().max(MIN_USER_TTL))
        };
        let id = UserIdentity {
            username: user.metadata.name.clone(),
            roles: user.spec.roles.clone(),
            traits: user.spec.traits.clone(),
            logins: logins.clone(),
            kubernetes_cluster: kube,
            route_to_app: None,
            route_to_database: db,
            active_requests: requests,
            kubernetes_users: checker.kubernetes_users(None),
            kubernetes_groups: checker.kubernetes_groups(None),
            route_to_cluster: route,
        };
        let now = self.clock.now();
        let user_ca = ca::signer(&self.own_ca(CaType::User).await?)?;
        let ssh_pub = certs::parse_authorized_key(keys.ssh_public_key.as_bytes())?;
        let ssh_cert = certs::sign_ssh_cert(
            &user_ca.ssh,
            &ssh_pub,
            &SshCertParams {
                cert_type: CertType::User,
                key_id: id.username.clone(),
                principals: logins,
                extensions: identity::user_ssh_extensions(&id, checker.port_forwarding(), checker.forward_agent()),
                not_before: now - CLOCK_SKEW,
                not_after: now + ttl,
            },
        )?;
        let tls_cert = certs::sign_tls_cert(
            &user_ca.tls_cert,
            &user_ca.tls_key,
            &keys.tls_public_key,
            &TlsCertParams {
                common_name: id.username.clone(),
                organization: self.cluster_name().into(),
                sans: vec![],
                identity_json: Some(CertIdentity::User(id.clone()).to_json()),
                client: true,
                server: false,
                not_before: now - CLOCK_SKEW,
                not_after: now + ttl,
            },
        )?;
        // The root's host CA only: a leaf's comes when a client first needs it (`GET
        // /v1/hostcas?cluster=`), so that a sign-in costs the same with 50,000 leaves as with one.
        let host_cas = vec![self.own_trusted_host_ca().await?];
        Ok(CertsResponse {
            username: id.username,
            cluster_name: self.cluster_name().into(),
            ssh_cert: certs::ssh_cert_line(&ssh_cert),
            tls_cert,
            host_cas,
        })
    }

    /// Host CAs of this cluster and of every leaf `checker` may see.
    pub async fn visible_host_cas(&self, checker: &AccessChecker) -> Result<Vec<TrustedCa>> {
        let mut host_cas = vec![self.own_trusted_host_ca().await?];
        for rc in self.visible_remote_clusters(checker).await? {
            if let Some(ca) = self.services.ca(CaType::Host, &rc.metadata.name, false).await? {
                host_cas.push(Self::trusted_ca(&ca));
            }
        }
        Ok(host_cas)
    }

    /// The host CA of `cluster` (this one, or a leaf `checker` may see); none for a cluster
    /// unknown or hidden alike. Reads that leaf's records only.
    pub async fn visible_host_ca(&self, checker: &AccessChecker, cluster: &str) -> Result<Option<TrustedCa>> {
        if cluster == self.cluster_name() {
            return Ok(Some(self.own_trusted_host_ca().await?));
        }
        let Some(rc) = self.services.remote_cluster(cluster).await? else { return Ok(None) };
        if checker.check_cluster(&rc.value.metadata.labels).is_err() {
            return Ok(None);
        }
        Ok(self.services.ca(CaType::Host, cluster, false).await?.map(|ca| Self::trusted_ca(&ca)))
    }

    /// Issues host certificates (nodes, proxies, the admin identity).
    pub async fn host_certs(&self, host: &HostIdentity, keys: &PublicKeys, extra_principals: &[String]) -> Result<CertsResponse> {
        let cluster = self.cluster_name().to_string();
        let principals = if host.role == SystemRole::Admin {
            vec![host.host_id.clone()]
        } else {
            identity::host_principals(&host.host_id, &host.nodename, &cluster, extra_principals)
        };
        let now = self.clock.now();
        let host_ca = ca::signer(&self.own_ca(CaType::Host).await?)?;
        let ssh_pub = certs::parse_authorized_key(keys.ssh_public_key.as_bytes())?;
        let ssh_cert = certs::sign_ssh_cert(
            &host_ca.ssh,
            &ssh_pub,
            &SshCertParams {
                cert_type: CertType::Host,
                key_id: host.host_id.clone(),
                principals: principals.clone(),
                extensions: identity::host_ssh_extensions(host.role, &cluster),
                not_before: now - CLOCK_SKEW,
                not_after: now + HOST_CERT_TTL,
            },
        )?;
        let mut sans: Vec<String> = principals.iter().filter(|p| !p.contains(' ')).cloned().collect();
        sans.push(certs::CLUSTER_LOCAL_NAME.into());
        if host.role == SystemRole::Proxy {
            sans.push(shared::kube::PROXY_SNI.into());
        }
        sans.push(cluster.clone());
        sans.dedup();
        let tls_cert = certs::sign_tls_cert(
            &host_ca.tls_cert,
            &host_ca.tls_key,
            &keys.tls_public_key,
            &TlsCertParams {
                common_name: host.host_id.clone(),
                organization: cluster.clone(),
                sans,
                identity_json: Some(CertIdentity::Host(host.clone()).to_json()),
                client: true,
                server: true,
                not_before: now - CLOCK_SKEW,
                not_after: now + HOST_CERT_TTL,
            },
        )?;
        Ok(CertsResponse {
            username: host.host_id.clone(),
            cluster_name: cluster,
            ssh_cert: certs::ssh_cert_line(&ssh_cert),
            tls_cert,
            host_cas: vec![self.own_trusted_host_ca().await?],
        })
    }

    /// New host certificates for `host` (the caller, authenticated by its current ones) under
    /// this cluster's host CA as it signs now, with the principals of its current SSH
    /// certificate, which must be its own and signed by a key this cluster still trusts.
    pub async fn renew_host_certs(&self, host: &HostIdentity, req: &shared::api::RenewHostRequest) -> Result<CertsResponse> {
        let cert = certs::parse_ssh_cert(&req.ssh_cert)?;
        let ca = self.own_ca(CaType::Host).await?;
        certs::check_ssh_cert(&cert, &ca.ssh_public_keys(), CertType::Host, None, self.clock.now())
            .map_err(|r| Error::access_denied(format!("the host certificate to renew was refused: {r}")))?;
        let (role, _) = identity::host_from_ssh_cert(&cert)?;
        if cert.key_id() != host.host_id || role != host.role {
            return Err(Error::access_denied("a host can only renew its own certificates"));
        }
        let issued = self.host_certs(host, &req.keys, cert.valid_principals()).await?;
        tracing::info!(host_id = %host.host_id, role = %host.role, "renewed host certificates under the rotated host CA");
        Ok(issued)
    }

    /// Password login: checks the password and, as the cluster's preference asks, a TOTP code;
    /// then issues certificates.
    pub async fn login(&self, req: shared::api::LoginRequest, client_ip: Option<String>) -> Result<CertsResponse> {
        let pref = self.auth_preference().await?;
        if !pref.spec.allow_local_auth {
            return Err(Error::access_denied(
                "local users cannot sign in to this cluster; sign in through its SSO connector (tsh login --auth=NAME)",
            ));
        }
        let mode = pref.second_factor();
        let wrong = if mode.enabled() { mfa::BAD_CREDENTIALS } else { "invalid username or password" };
        let clipped = crate::audit::clip(&req.username, crate::audit::MAX_UNTRUSTED);
        let failed = |why: &str| json!({"user": clipped, "method": "local", "success": false, "error": why, "addr.remote": client_ip});
        // Nothing longer than a user name or a password can be is looked up or hashed.
        if req.username.len() > shared::resource::MAX_NAME_LEN || req.password.len() > users::MAX_PASSWORD {
            self.audit.emit(audit_codes::USER_LOGIN_FAILED, failed("username or password too long")).await;
            return Err(Error::bad_parameter("username or password too long"));
        }
        let user = self.services.user(&req.username).await.ok();
        let hash = match &user {
            Some(_) => self.services.backend.get(&keys::password(&req.username)).await?,
            None => None,
        };
        let ok = self.passwords.verify(&req.password, hash.as_ref().map(|h| String::from_utf8_lossy(&h.value).to_string())).await?;
        let user = match (ok, user) {
            (true, Some(u)) => u.value,
            _ => {
                self.audit.emit(audit_codes::USER_LOGIN_FAILED, failed(wrong)).await;
                return Err(Error::access_denied(wrong));
            }
        };
        if let Err(e) = self.check_second_factor(&user.metadata.name, req.otp_token.as_deref(), mode).await {
            if !e.has(shared::Code::OtpRequired) {
                self.audit.emit(audit_codes::USER_LOGIN_FAILED, failed(&e.message)).await;
            }
            return Err(e);
        }
        let ttl = if req.ttl_seconds == 0 { DEFAULT_USER_TTL } else { Duration::from_secs(req.ttl_seconds) };
        let certs = self.user_certs(&user, &req.keys, ttl, req.route_to_cluster.clone()).await?;
        let mut event = json!({"user": user.metadata.name, "method": "local", "success": true, "addr.remote": client_ip});
        if mode.enabled() && req.otp_token.is_some() {
            event["second_factor"] = json!("otp");
        }
        self.audit.emit(audit_codes::USER_LOGIN, event).await;
        Ok(certs)
    }

    /// Roles of this cluster.
    pub async fn all_roles(&self) -> Result<Vec<Role>> {
        self.services.list(keys::ROLES).await
    }

    /// Wakes nodes waiting for a change of what they authorize with.
    pub fn authz_changed(&self) {
        self.authz_gen.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver that sees every later [`AuthServer::authz_changed`]; take it *before*
    /// reading what it guards, so that no change can fall between the read and the wait.
    pub fn authz_changes(&self) -> watch::Receiver<u64> {
        self.authz_gen.subscribe()
    }

    /// Wakes waiting nodes whenever CAs, roles, trust or locks change, whichever process of the
    /// cluster changed them (and after every gap in the feed). Runs until `shutdown`.
    pub async fn run_authz_watcher(self: std::sync::Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        let prefixes = [keys::AUTHORITIES, keys::DEACTIVATED, keys::ROLES, keys::TRUSTED_CLUSTERS, keys::LOCKS, keys::REMOTE_LOCKS];
        let me = self.clone();
        crate::follow::follow(self.services.backend.clone(), &prefixes, shutdown, move |_| {
            me.authz_changed();
            std::future::ready(())
        })
        .await;
    }
}

pub use crate::audit::codes as audit_codes;
