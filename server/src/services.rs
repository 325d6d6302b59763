//! Resource services: typed access to storage, one key layout for every kind.
//!
//! ```text
//! roles/<name>                       users/<name>          passwords/<name>
//! tokens/<token>                     usertokens/<token>    (invites and resets)
//! authorities/<type>/<cluster>       authorities_deactivated/<type>/<cluster>
//! trustedclusters/<name>             remoteclusters/<name> rcstatus/<name>   nodes/<uuid>
//! connectors/<kind>/<name>           cluster/name          cluster/host_id
//! locks/<name>                       remotelocks/<root>    (a root's locks, pushed to its leaves)
//! semaphores/<kind>/<key>            nodenames/<hostname>  (which node holds a hostname)
//! tunnelconns/<leaf>/<proxy>         (a proxy's live tunnel from a leaf; expires unless heartbeated)
//! proxies/<host_uuid>                (a live proxy process and its addresses; expires unless heartbeated)
//! cluster/auth_preference            mfa/<user>/<device id>   mfapending/<id>   (second factors)
//! ssorequests/<id>                   (an SSO login between tsh's request and the provider's callback)
//! websessions/<id>                   (a browser signed in to the web UI)
//! ```
//! Values are the resources' JSON. On read, the storage revision becomes `metadata.id`.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::error::{Error, Result};
use shared::resource::cluster::RemoteClusterStatus;
use shared::resource::connector::Connector;
use shared::resource::{
    AuthPreference, CaType, CertAuthority, Kind, Lock, Metadata, Node, ProvisionToken, Proxy, RemoteCluster, Role, TrustedCluster,
    TunnelConnection, User,
};

use crate::storage::{Backend, Item, Op};

/// Key prefixes.
pub mod keys {
    /// Roles.
    pub const ROLES: &str = "roles/";
    /// Users.
    pub const USERS: &str = "users/";
    /// Password hashes (kept apart from users so `tctl get users` can never show them).
    pub const PASSWORDS: &str = "passwords/";
    /// Join tokens.
    pub const TOKENS: &str = "tokens/";
    /// Invite and reset tokens.
    pub const USER_TOKENS: &str = "usertokens/";
    /// The one invite or reset token each user may hold (a newer one replaces it).
    pub const USER_TOKEN_OF: &str = "usertokenof/";
    /// Wrong second-factor codes of each user, and their lockout.
    pub const CODE_FAILURES: &str = "codefailures/";
    /// Active CAs.
    pub const AUTHORITIES: &str = "authorities/";
    /// Deactivated CAs (a disabled trust).
    pub const DEACTIVATED: &str = "authorities_deactivated/";
    /// Trusted clusters (leaf side).
    pub const TRUSTED_CLUSTERS: &str = "trustedclusters/";
    /// Remote clusters (root side).
    pub const REMOTE_CLUSTERS: &str = "remoteclusters/";
    /// Connection status of remote clusters, apart from the resource so that heartbeats never
    /// race label changes and can be written in batches.
    pub const REMOTE_CLUSTER_STATUS: &str = "rcstatus/";
    /// Nodes.
    pub const NODES: &str = "nodes/";
    /// Session recordings' metadata (their chunks are outside the keys: `Backend::put_chunk`).
    pub const RECORDINGS: &str = "recordings/";
    /// Live sessions others may join (expire unless their node refreshes them).
    pub const SESSION_TRACKERS: &str = "sessiontrackers/";
    /// SSO connectors.
    pub const CONNECTORS: &str = "connectors/";
    /// The cluster's own name.
    pub const CLUSTER_NAME: &str = "cluster/name";
    /// Locks of this cluster.
    pub const LOCKS: &str = "locks/";
    /// Locks of each trusted root, as the root last sent them (one record per root).
    pub const REMOTE_LOCKS: &str = "remotelocks/";
    /// Leases of counted resources (`max_connections`).
    pub const SEMAPHORES: &str = "semaphores/";
    /// Which node UUID holds a hostname (so a node cannot take another's name).
    pub const NODE_NAMES: &str = "nodenames/";
    /// Each proxy's live tunnel from each leaf.
    pub const TUNNEL_CONNS: &str = "tunnelconns/";
    /// Live proxy processes of this cluster.
    pub const PROXIES: &str = "proxies/";
    /// Kubernetes clusters, by name.
    pub const KUBE_CLUSTERS: &str = "kube_clusters/";
    /// Applications, by name.
    pub const APPS: &str = "apps/";
    /// Databases, by name.
    pub const DBS: &str = "dbs/";
    /// Access requests, by id (each expires with the access it grants).
    pub const ACCESS_REQUESTS: &str = "access_requests/";
    /// Which app services serve an app an admin defined: `app_servers/<app>/<host UUID>`.
    pub const APP_SERVERS: &str = "app_servers/";
    /// The cluster's authentication preference.
    pub const AUTH_PREFERENCE: &str = "cluster/auth_preference";
    /// Users' TOTP devices: `mfa/<user>/<id>`.
    pub const MFA_DEVICES: &str = "mfa/";
    /// Device registrations in progress.
    pub const MFA_PENDING: &str = "mfapending/";
    /// SSO logins in progress (10 minutes, used once).
    pub const SSO_REQUESTS: &str = "ssorequests/";
    /// Web UI sessions (expire with their certificate).
    pub const WEB_SESSIONS: &str = "websessions/";
    /// Application sessions (by the hash of their id; expire with their certificate).
    pub const APP_SESSIONS: &str = "appsessions/";
    /// The web CA every process of the cluster serves its generated certificate from.
    pub const WEB_CA: &str = "cluster/webca";

    /// Key functions, one per record kind: `keys::role("access")` is `roles/access`. Every key of
    /// the store is built here; nothing else writes a prefix and a name together.
    macro_rules! key_fns {
        ($($(#[$doc:meta])* $name:ident => $prefix:ident;)*) => {$(
            $(#[$doc])*
            pub fn $name(name: &str) -> String {
                format!("{}{name}", $prefix)
            }
        )*};
    }

    key_fns! {
        /// Key of an access request.
        access_request => ACCESS_REQUESTS;
        /// Key of a role.
        role => ROLES;
        /// Key of a user.
        user => USERS;
        /// Key of a user's password hash.
        password => PASSWORDS;
        /// Key of a join token.
        token => TOKENS;
        /// Key of a trusted cluster (leaf side).
        trusted_cluster => TRUSTED_CLUSTERS;
        /// Key of a remote cluster (root side).
        remote_cluster => REMOTE_CLUSTERS;
        /// Key of a node.
        node => NODES;
        /// Key of the node that holds a hostname.
        node_name => NODE_NAMES;
        /// Key of a lock.
        lock => LOCKS;
        /// Key of a root's locks as a leaf keeps them.
        remote_locks => REMOTE_LOCKS;
        /// Key of a device registration in progress.
        mfa_pending => MFA_PENDING;
        /// Key of an SSO login in progress.
        sso_request => SSO_REQUESTS;
        /// Key of a recording's metadata.
        recording => RECORDINGS;
        /// Key of a live session's tracker.
        session_tracker => SESSION_TRACKERS;
        /// Key of a proxy process's record.
        proxy => PROXIES;
        /// Key of a Kubernetes cluster.
        kube_cluster => KUBE_CLUSTERS;
        /// Key of an application.
        app => APPS;
        /// Key of a database.
        db => DBS;
        /// Key of a web session (by the hash of its id).
        web_session => WEB_SESSIONS;
        /// Key of an application session (by the hash of its id).
        app_session => APP_SESSIONS;
    }

    /// Key of an app service serving an app an admin defined.
    pub fn app_server(app: &str, host_id: &str) -> String {
        format!("{APP_SERVERS}{app}/{host_id}")
    }

    /// Key of an SSO connector.
    pub fn connector(kind: &str, name: &str) -> String {
        format!("{CONNECTORS}{kind}/{name}")
    }

    /// Prefix of the connectors of a kind.
    pub fn connectors_of(kind: &str) -> String {
        format!("{CONNECTORS}{kind}/")
    }

    /// Key of a counted resource's leases.
    pub fn semaphore(kind: &str, name: &str) -> String {
        format!("{SEMAPHORES}{kind}/{name}")
    }

    /// Key of a user's TOTP device.
    pub fn mfa_device(user: &str, id: &str) -> String {
        format!("{MFA_DEVICES}{user}/{id}")
    }

    /// Prefix of a user's TOTP devices.
    pub fn mfa_devices_of(user: &str) -> String {
        format!("{MFA_DEVICES}{user}/")
    }

    /// Prefix of the CAs of a type.
    pub fn cas_of(t: shared::resource::CaType) -> String {
        format!("{AUTHORITIES}{t}/")
    }

    /// Key of an invite or reset token.
    pub fn user_token(token: &str) -> String {
        format!("{USER_TOKENS}{token}")
    }

    /// Key of `user`'s wrong second-factor codes.
    pub fn code_failures(user: &str) -> String {
        format!("{CODE_FAILURES}{user}")
    }

    /// Key of the token `user` holds now.
    pub fn user_token_of(user: &str) -> String {
        format!("{USER_TOKEN_OF}{user}")
    }

    /// Key of `leaf`'s last status written when a tunnel ended.
    pub fn remote_cluster_status(leaf: &str) -> String {
        format!("{REMOTE_CLUSTER_STATUS}{leaf}")
    }

    /// Key of proxy `proxy`'s tunnel from `leaf`.
    pub fn tunnel_conn(leaf: &str, proxy: &str) -> String {
        format!("{TUNNEL_CONNS}{leaf}/{proxy}")
    }

    /// Key of a CA.
    pub fn ca(t: shared::resource::CaType, cluster: &str) -> String {
        format!("{AUTHORITIES}{t}/{cluster}")
    }
    /// Key of a deactivated CA.
    pub fn deactivated_ca(t: shared::resource::CaType, cluster: &str) -> String {
        format!("{DEACTIVATED}{t}/{cluster}")
    }
}

/// Runs `attempt` (read, decide, write with a compare-and-swap) until it does not fail with
/// `CompareFailed`, at most `attempts` times; then fails with `conflict`. The one loop for every
/// read-modify-write on shared records, whichever process writes beside us. An `attempt` that
/// means to refuse returns any other error, which ends the loop at once; one whose write creates
/// a record writes with [`Services::apply_racing`], so that losing that race is retried too.
pub async fn retry_cas<T, F, Fut>(attempts: usize, conflict: Error, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    for _ in 0..attempts {
        match attempt().await {
            Err(e) if e.is(shared::Kind::CompareFailed) => continue,
            done => return done,
        }
    }
    Err(conflict)
}

/// A value with its storage revision.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its revision.
    pub revision: i64,
}

/// Typed access to storage.
#[derive(Clone)]
pub struct Services {
    /// The backend.
    pub backend: Arc<dyn Backend>,
}

/// Serializes a value for storage.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::internal(format!("encoding: {e}")))
}

fn decode<T: DeserializeOwned>(item: &Item) -> Result<T> {
    serde_json::from_slice(&item.value).map_err(|e| Error::internal(format!("corrupt record {}: {e}", item.key)))
}

/// Implemented by resources that carry [`Metadata`].
pub trait HasMetadata {
    /// The metadata.
    fn meta(&mut self) -> &mut Metadata;
}

macro_rules! has_metadata {
    ($($t:ty),*) => { $(impl HasMetadata for $t { fn meta(&mut self) -> &mut Metadata { &mut self.metadata } })* };
}
has_metadata!(
    Role,
    shared::resource::AccessRequest,
    shared::resource::KubeCluster,
    shared::resource::App,
    shared::resource::Db,
    User,
    ProvisionToken,
    TrustedCluster,
    RemoteCluster,
    CertAuthority,
    Node,
    Connector,
    Lock,
    TunnelConnection,
    Proxy,
    AuthPreference
);

/// Unix seconds of a metadata expiry.
pub fn expires_of(m: &Metadata) -> Option<i64> {
    m.expires.map(|t| t.unix_timestamp())
}

impl Services {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Backend>) -> Services {
        Services { backend }
    }

    /// Reads a resource by key (None if absent), with `metadata.id` set to its revision.
    pub async fn get<T: DeserializeOwned + HasMetadata>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        match self.backend.get(key).await? {
            None => Ok(None),
            Some(item) => {
                let mut v: T = decode(&item)?;
                v.meta().id = Some(item.revision);
                Ok(Some(Versioned { value: v, revision: item.revision }))
            }
        }
    }

    /// Reads a resource or fails with `NotFound(message)`.
    pub async fn must_get<T: DeserializeOwned + HasMetadata>(&self, key: &str, not_found: impl FnOnce() -> String) -> Result<Versioned<T>> {
        self.get(key).await?.ok_or_else(|| Error::not_found(not_found()))
    }

    /// Lists resources under a prefix.
    pub async fn list<T: DeserializeOwned + HasMetadata>(&self, prefix: &str) -> Result<Vec<T>> {
        let items = self.backend.list(prefix).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut v: T = decode(&item)?;
            v.meta().id = Some(item.revision);
            out.push(v);
        }
        Ok(out)
    }

    /// A `Put` op for a resource (id cleared: the revision lives in storage).
    pub fn put_op<T: Serialize + HasMetadata + Clone>(&self, key: &str, v: &T) -> Result<Op> {
        let mut v = v.clone();
        v.meta().id = None;
        let expires = expires_of(v.meta());
        Ok(Op::Put { key: key.into(), value: encode(&v)?, expires })
    }

    /// A `Create` op.
    pub fn create_op<T: Serialize + HasMetadata + Clone>(&self, key: &str, v: &T) -> Result<Op> {
        match self.put_op(key, v)? {
            Op::Put { key, value, expires } => Ok(Op::Create { key, value, expires }),
            other => Ok(other),
        }
    }

    /// A compare-and-swap op.
    pub fn cas_op<T: Serialize + HasMetadata + Clone>(&self, key: &str, v: &T, expected: i64) -> Result<Op> {
        match self.put_op(key, v)? {
            Op::Put { key, value, expires } => Ok(Op::CompareAndSwap { key, value, expires, expected }),
            other => Ok(other),
        }
    }

    /// Writes ops atomically.
    pub async fn apply(&self, ops: Vec<Op>) -> Result<i64> {
        self.backend.apply(ops).await
    }

    /// [`Services::apply`] for a write that read first: a record created meanwhile by someone
    /// else (`AlreadyExists` on a create) is a lost race, `CompareFailed`, like a changed one.
    pub async fn apply_racing(&self, ops: Vec<Op>) -> Result<i64> {
        self.backend.apply(ops).await.map_err(|e| if e.is(shared::Kind::AlreadyExists) { Error::compare_failed(e.message) } else { e })
    }

    // ---- typed helpers

    /// A role.
    pub async fn role(&self, name: &str) -> Result<Role> {
        Ok(self.must_get::<Role>(&keys::role(name), || format!("role {name:?} is not found")).await?.value)
    }

    /// Roles by name; a missing role is an error naming it.
    pub async fn roles(&self, names: &[String]) -> Result<Vec<Role>> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.role(n).await?);
        }
        Ok(out)
    }

    /// A user.
    pub async fn user(&self, name: &str) -> Result<Versioned<User>> {
        self.must_get(&keys::user(name), || format!("user {name:?} is not found")).await
    }

    /// A CA, active or not (`deactivated` selects which).
    pub async fn ca(&self, t: CaType, cluster: &str, deactivated: bool) -> Result<Option<CertAuthority>> {
        let key = if deactivated { keys::deactivated_ca(t, cluster) } else { keys::ca(t, cluster) };
        Ok(self.get::<CertAuthority>(&key).await?.map(|v| v.value))
    }

    /// All active CAs of a type.
    pub async fn cas_of_type(&self, t: CaType) -> Result<Vec<CertAuthority>> {
        self.list(&keys::cas_of(t)).await
    }

    /// A trusted cluster.
    pub async fn trusted_cluster(&self, name: &str) -> Result<Option<Versioned<TrustedCluster>>> {
        self.get(&keys::trusted_cluster(name)).await
    }

    /// A remote cluster.
    pub async fn remote_cluster(&self, name: &str) -> Result<Option<Versioned<RemoteCluster>>> {
        self.get(&keys::remote_cluster(name)).await
    }

    /// A leaf's stored status (`rcstatus/<leaf>`; apart from the resource, see `auth/status.rs`).
    /// A row that does not decode counts as none: the next tunnel event rewrites it.
    pub async fn remote_cluster_status(&self, leaf: &str) -> Result<Option<RemoteClusterStatus>> {
        Ok(self.backend.get(&keys::remote_cluster_status(leaf)).await?.and_then(|i| serde_json::from_slice(&i.value).ok()))
    }

    /// Every stored leaf status, by leaf name.
    pub async fn remote_cluster_statuses(&self) -> Result<std::collections::HashMap<String, RemoteClusterStatus>> {
        let items = self.backend.list(keys::REMOTE_CLUSTER_STATUS).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let name = i.key.strip_prefix(keys::REMOTE_CLUSTER_STATUS)?.to_string();
                serde_json::from_slice::<RemoteClusterStatus>(&i.value).ok().map(|s| (name, s))
            })
            .collect())
    }

    /// Registered nodes.
    pub async fn nodes(&self) -> Result<Vec<Node>> {
        self.list(keys::NODES).await
    }

    /// The key of a resource of `kind` named `name` (CAs: `<type>/<cluster>`).
    pub fn key_of(kind: Kind, name: &str) -> Result<String> {
        Ok(match kind {
            Kind::Role => keys::role(name),
            Kind::User => keys::user(name),
            Kind::Token => keys::token(name),
            Kind::TrustedCluster => keys::trusted_cluster(name),
            Kind::RemoteCluster => keys::remote_cluster(name),
            Kind::Node => keys::node(name),
            Kind::CertAuthority => {
                let (t, c) = name.split_once('/').ok_or_else(|| {
                    Error::bad_parameter(format!(
                        "certificate authority name {name:?} must be <type>/<cluster>, such as host/root.example.com"
                    ))
                })?;
                keys::ca(CaType::parse(t)?, c)
            }
            Kind::Github | Kind::Oidc | Kind::Saml => keys::connector(kind.as_str(), name),
            Kind::Lock => keys::lock(name),
            Kind::TunnelConnection => format!("{}{name}", keys::TUNNEL_CONNS),
            Kind::Proxy => keys::proxy(name),
            Kind::KubeCluster => keys::kube_cluster(name),
            Kind::App => keys::app(name),
            Kind::Db => keys::db(name),
            Kind::AuthPreference => keys::AUTH_PREFERENCE.into(),
        })
    }

    /// The prefix listing all resources of `kind`.
    pub fn prefix_of(kind: Kind) -> String {
        match kind {
            Kind::Role => keys::ROLES.into(),
            Kind::User => keys::USERS.into(),
            Kind::Token => keys::TOKENS.into(),
            Kind::TrustedCluster => keys::TRUSTED_CLUSTERS.into(),
            Kind::RemoteCluster => keys::REMOTE_CLUSTERS.into(),
            Kind::Node => keys::NODES.into(),
            Kind::CertAuthority => keys::AUTHORITIES.into(),
            Kind::Github | Kind::Oidc | Kind::Saml => keys::connectors_of(kind.as_str()),
            Kind::Lock => keys::LOCKS.into(),
            Kind::TunnelConnection => keys::TUNNEL_CONNS.into(),
            Kind::Proxy => keys::PROXIES.into(),
            Kind::KubeCluster => keys::KUBE_CLUSTERS.into(),
            Kind::App => keys::APPS.into(),
            Kind::Db => keys::DBS.into(),
            Kind::AuthPreference => keys::AUTH_PREFERENCE.into(),
        }
    }
}
