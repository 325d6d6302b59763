//! The REST contract between `tsh`/`tctl`/nodes/leaf clusters and a cluster's API: paths and
//! request/response bodies. The server and the client both use these types, so the two sides
//! cannot drift apart.
//!
//! Unauthenticated: `GET /webapi/ping`, `GET /webapi/find`, `POST /webapi/trustedclusters/validate`,
//! `PUT /webapi/users/password/token`, `GET /web/invite/{token}`, `POST /v1/auth/login`,
//! `POST /v1/join`. Everything else needs a client certificate.

use serde::{Deserialize, Serialize};

use crate::resource::{LabelMap, Node};
use crate::template::Traits;

/// Paths.
pub mod path {
    /// Cluster discovery (reference §7.7).
    pub const PING: &str = "/webapi/ping";
    /// Same as ping (Teleport's lighter variant).
    pub const FIND: &str = "/webapi/find";
    /// Trust handshake (reference §1.2).
    pub const VALIDATE_TRUSTED_CLUSTER: &str = "/webapi/trustedclusters/validate";
    /// Set a password with an invite or reset token.
    pub const SET_PASSWORD: &str = "/webapi/users/password/token";
    /// The invite page prefix: `/web/invite/<token>`.
    pub const INVITE_PAGE: &str = "/web/invite";
    /// Password login: key in, certificates out.
    pub const LOGIN: &str = "/v1/auth/login";
    /// New certificates for an authenticated user (route to another cluster, or renew).
    pub const REISSUE: &str = "/v1/auth/reissue";
    /// Who am I.
    pub const WHOAMI: &str = "/v1/whoami";
    /// Generic resources: `/v1/resources/<kind>[/<name>]`.
    pub const RESOURCES: &str = "/v1/resources";
    /// Users: `POST` adds with an invite; `/v1/users/<name>` `PATCH` updates; `/reset`.
    pub const USERS: &str = "/v1/users";
    /// Tokens: `POST` adds, `GET` lists, `/v1/tokens/<name>` `DELETE`.
    pub const TOKENS: &str = "/v1/tokens";
    /// `PATCH /v1/remoteclusters/<name>` (`tctl update rc`).
    pub const REMOTE_CLUSTERS: &str = "/v1/remoteclusters";
    /// `tsh clusters`.
    pub const CLUSTERS: &str = "/v1/clusters";
    /// `tsh ls`.
    pub const NODES: &str = "/v1/nodes";
    /// Node heartbeat (host identity).
    pub const NODE_HEARTBEAT: &str = "/v1/nodes/heartbeat";
    /// What a node needs to authorize logins (host identity): `?after=<generation>` long-polls.
    pub const NODE_AUTHZ: &str = "/v1/nodes/authz";
    /// `POST`: a Kubernetes service in a process of its own registers a cluster it serves.
    pub const KUBE_HEARTBEAT: &str = "/v1/kube/heartbeat";
    /// App sessions: `POST` creates one (a certificate for one app), `DELETE /v1/apps/sessions/<id>`
    /// ends it.
    pub const APP_SESSIONS: &str = "/v1/apps/sessions";
    /// `POST`: an app service in a process of its own registers an app it serves.
    pub const APP_HEARTBEAT: &str = "/v1/apps/heartbeat";
    /// `POST`: a database service in a process of its own renews a database it serves.
    pub const DB_HEARTBEAT: &str = "/v1/dbs/heartbeat";
    /// `POST`: a database service's client certificate for a database user.
    pub const DB_CLIENT_CERT: &str = "/v1/dbs/client-cert";
    /// An app service in a process of its own: `GET` the apps an admin defined (for its
    /// `resources` selectors), `POST {"name"}` that it serves one of them.
    pub const APP_DEFINED: &str = "/v1/apps/defined";
    /// An app service in a process of its own: `GET` the id of the key that signs apps' tokens
    /// now, `POST` claims to have them signed (the key never leaves the auth service).
    pub const APP_TOKEN: &str = "/v1/apps/token";
    /// Join with a token (unauthenticated).
    pub const JOIN: &str = "/v1/join";
    /// `tctl auth sign`.
    pub const SIGN_USER: &str = "/v1/certs/user";
    /// `tctl auth sign --format=db`.
    pub const SIGN_DB: &str = "/v1/certs/db";
    /// `tsh db ls`: the databases the caller may reach, with their allowed users and names.
    pub const DBS: &str = "/v1/dbs";
    /// `GET` (the requests the caller may see), `POST` (a new one): access requests.
    pub const ACCESS_REQUESTS: &str = "/v1/requests";
    /// `tctl auth export`.
    pub const EXPORT_CAS: &str = "/v1/cas/export";
    /// Audit events: `POST` (hosts) and `GET` (auditors).
    pub const EVENTS: &str = "/v1/events";
    /// `tctl map-roles --cluster`.
    pub const MAP_ROLES: &str = "/v1/map-roles";
    /// Host CAs of this cluster and of the leaves the caller can see (`tsh config`); with
    /// `?cluster=<name>` ([`host_ca_of`]) that one cluster's, if the caller can see it.
    pub const HOST_CAS: &str = "/v1/hostcas";

    /// [`HOST_CAS`] of one cluster.
    pub fn host_ca_of(cluster: &str) -> String {
        format!("{HOST_CAS}?cluster={}", crate::sso::query_escape(cluster))
    }
    /// The caller's MFA devices: `GET` lists; `/v1/mfa/devices/<name>` `DELETE`.
    pub const MFA_DEVICES: &str = "/v1/mfa/devices";
    /// Start registering a TOTP device (`tsh mfa add`).
    pub const MFA_BEGIN: &str = "/v1/mfa/devices/begin";
    /// Finish registering it with a first code.
    pub const MFA_FINISH: &str = "/v1/mfa/devices/finish";
    /// Session recordings: `GET` lists; nodes `POST` metadata; `/v1/recordings/<sid>/chunks`.
    pub const RECORDINGS: &str = "/v1/recordings";
    /// Live sessions others may join (`tsh sessions ls`, `tsh join`); nodes keep them current.
    pub const SESSION_TRACKERS: &str = "/v1/sessiontrackers";
    /// CA rotation (`tctl auth rotate`).
    pub const ROTATE: &str = "/v1/cas/rotate";
    /// Host certificates renewed under a rotated host CA (nodes, with their host identity).
    pub const HOST_RENEW: &str = "/v1/hosts/renew";
    /// Tunnel states: to each trusted root, from each leaf (`tctl status`).
    pub const TUNNEL_STATUS: &str = "/v1/status/tunnels";
    /// Why a login is allowed or denied (`tsh access explain`, `tctl access explain`).
    pub const ACCESS_EXPLAIN: &str = "/v1/access/explain";
}

/// What a password login without a code hears when the user has a TOTP device (tsh then asks
/// for a code and tries again).
pub const OTP_REQUIRED: &str = "an OTP code is required: enter one from your authenticator app";

/// What `PUT /webapi/users/password/token` needs besides a password, and the QR code to show:
/// `GET /webapi/users/password/token/<token>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserTokenInfo {
    /// The user the link is for.
    pub user: String,
    /// `invite` or `reset`.
    pub kind: String,
    /// The cluster's `second_factor` (`off`, `otp`, `on`, `optional`).
    pub second_factor: String,
    /// The TOTP device to register (`otpauth://...`), when a second factor is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otpauth_url: Option<String>,
    /// The same as a QR code (SVG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
}

/// A registered MFA device, as `tsh mfa ls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MfaDeviceInfo {
    /// Device id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `TOTP`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was added.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub added_at: time::OffsetDateTime,
    /// When it was last used.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub last_used: time::OffsetDateTime,
}

/// `POST /v1/mfa/devices/begin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaBeginRequest {
    /// The new device's name.
    pub name: String,
    /// A code from an already registered device (required when the user has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_code: Option<String>,
}

/// The answer: what the authenticator app needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaBeginResponse {
    /// The registration to finish.
    pub id: String,
    /// The secret (base32), for typing in.
    pub secret: String,
    /// The `otpauth://` URL (the QR code's content).
    pub otpauth_url: String,
}

/// `POST /v1/mfa/devices/finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaFinishRequest {
    /// The registration.
    pub id: String,
    /// A code from the new device.
    pub code: String,
}

/// `DELETE /v1/mfa/devices/<name>`: a code from a registered device proves it is the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MfaDeleteRequest {
    /// A current code.
    #[serde(default)]
    pub code: String,
}

/// `/webapi/ping` (reference §7.7).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingResponse {
    /// Auth settings.
    pub auth: PingAuth,
    /// Proxy settings.
    pub proxy: PingProxy,
    /// Our version.
    pub server_version: String,
    /// Oldest client version supported.
    pub min_client_version: String,
    /// The cluster name.
    pub cluster_name: String,
    /// Always false here.
    #[serde(default)]
    pub automatic_upgrades: bool,
}

/// `auth` part of ping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingAuth {
    /// `local`, `oidc`, `github` or `saml`: what `tsh login` uses without `--auth`.
    #[serde(rename = "type")]
    pub auth_type: String,
    /// `off`, `otp`, `on` or `optional`.
    pub second_factor: String,
    /// The local connector (Teleport sends `{"name": ""}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<PingConnector>,
    /// The default OIDC connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<PingConnector>,
    /// The default GitHub connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<PingConnector>,
    /// The default SAML connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<PingConnector>,
    /// `none`.
    #[serde(default)]
    pub private_key_policy: String,
    /// False.
    #[serde(default)]
    pub allow_passwordless: bool,
    /// False.
    #[serde(default)]
    pub has_motd: bool,
    /// False.
    #[serde(default)]
    pub load_all_cas: bool,
}

/// A connector as ping names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PingConnector {
    /// Its name (`--auth=NAME`).
    pub name: String,
    /// What a login page would call it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display: String,
}

/// `proxy` part of ping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingProxy {
    /// SSH and tunnel addresses.
    pub ssh: PingSsh,
    /// Kubernetes (disabled).
    #[serde(default)]
    pub kube: PingKube,
    /// Databases: where PostgreSQL clients connect when not to the web port.
    #[serde(default)]
    pub db: PingDb,
    /// True: SSH and the reverse tunnel share the web port.
    pub tls_routing_enabled: bool,
}

/// Databases part of ping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingDb {
    /// `proxy_service.postgres_public_addr` (empty: the web port serves PostgreSQL clients).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub postgres_public_addr: String,
}

/// Kubernetes part of ping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingKube {
    /// False.
    pub enabled: bool,
}

/// Addresses part of ping (`omitempty` fields are skipped when empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingSsh {
    /// SSH proxy listen address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listen_addr: String,
    /// Reverse tunnel listen address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tunnel_listen_addr: String,
    /// Web listen address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub web_listen_addr: String,
    /// Public web address (what `web_proxy_addr` and, with TLS routing, `tunnel_addr` use).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_addr: String,
    /// Public SSH proxy address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_public_addr: String,
    /// Public reverse tunnel address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_tunnel_public_addr: String,
}

/// Trust handshake request (reference §1.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateTrustedClusterRequest {
    /// The invitation token.
    pub token: String,
    /// Base64 of the JSON of each CA (exactly one: the leaf's host CA).
    pub certificate_authorities: Vec<String>,
    /// The leaf's version.
    #[serde(default)]
    pub teleport_version: String,
}

/// Trust handshake response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateTrustedClusterResponse {
    /// Base64 of the JSON of each root CA (public parts).
    pub certificate_authorities: Vec<String>,
}

/// `PUT /webapi/users/password/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPasswordRequest {
    /// Invite or reset token.
    pub token: String,
    /// The new password.
    pub password: String,
    /// A code from the TOTP device the invite registers (when a second factor is enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor_token: Option<String>,
}

/// Response to a password set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPasswordResponse {
    /// The user whose password was set.
    pub username: String,
}

/// Public keys a client wants certified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeys {
    /// `authorized_keys` text of the SSH key.
    pub ssh_public_key: String,
    /// SPKI PEM of the TLS key.
    pub tls_public_key: String,
}

/// `POST /v1/hosts/renew`: a node's host certificates again, for new keys, after its
/// cluster rotated its host CA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewHostRequest {
    /// The node's current SSH host certificate (its principals are kept).
    pub ssh_cert: String,
    /// The keys to certify.
    pub keys: PublicKeys,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Teleport user.
    pub username: String,
    /// Password.
    pub password: String,
    /// Keys to certify.
    #[serde(flatten)]
    pub keys: PublicKeys,
    /// Requested TTL in seconds (0: default).
    #[serde(default)]
    pub ttl_seconds: u64,
    /// `tsh login <cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_cluster: Option<String>,
    /// A TOTP code (Teleport's `otp_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_token: Option<String>,
}

/// `POST /v1/auth/reissue` (client-certificate authenticated).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReissueRequest {
    /// Keys to certify.
    #[serde(flatten)]
    pub keys: PublicKeys,
    /// Target cluster (`None`: the root itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_cluster: Option<String>,
    /// Requested TTL in seconds (0: the remaining TTL of the current certificate).
    #[serde(default)]
    pub ttl_seconds: u64,
    /// A Kubernetes cluster in the target cluster (`tsh kube credentials`): the certificate is
    /// for it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_cluster: Option<String>,
    /// A database in the target cluster (`tsh db login`): the certificate is for it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_database: Option<crate::identity::RouteToDatabase>,
    /// Approved access requests whose roles the certificate carries (`tsh login --request-id`;
    /// empty: none, which drops any the current certificate had).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_requests: Vec<String>,
}

/// `POST /v1/requests` (`tsh request create`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateAccessRequest {
    /// The roles.
    pub roles: Vec<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// How long the access should last (Go duration; default: the session's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Reviewers to suggest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggested_reviewers: Vec<String>,
}

/// `POST /v1/requests/<id>/review`: a review (`tsh request review`) or an admin's decision
/// (`tctl request approve|deny`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewAccessRequest {
    /// `APPROVED` or `DENIED`.
    pub state: crate::resource::RequestState,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/dbs/client-cert` (a node that serves databases): a client certificate for `user`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbClientCertRequest {
    /// The database user (the certificate's common name).
    pub user: String,
    /// The latest end (Unix seconds): the end of the certificate of the user it is for.
    pub not_after: i64,
}

/// A certificate a database service presents to a database as one of its users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbClientCert {
    /// The certificate (PEM), common name the database user.
    pub cert_pem: String,
    /// Its key (PEM).
    pub key_pem: String,
    /// The `db` CA's certificates (PEM): what the database's own certificate chains to by default.
    pub cas: Vec<String>,
    /// When it ends (Unix seconds).
    pub not_after: i64,
}

/// `POST /v1/apps/sessions` (client-certificate authenticated, a user of this cluster): a session
/// and certificate for one app of this cluster or of a leaf (reference §3.2 step 3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateAppSessionRequest {
    /// The app's name.
    pub name: String,
    /// The app's public address in its cluster (as `tsh apps ls --cluster` lists it there).
    #[serde(default)]
    pub public_addr: String,
    /// The cluster that serves it (empty: this one).
    #[serde(default)]
    pub cluster_name: String,
    /// Where browsers reach it through this proxy (`<name>.<proxy host>` or its own name).
    #[serde(default)]
    pub fqdn: String,
    /// The key to certify (SPKI PEM; empty: the session's certificate is used by the proxy
    /// alone, for a browser).
    #[serde(default)]
    pub tls_public_key: String,
    /// The web session the app session belongs to (a browser's; it never outlives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_session: Option<String>,
}

/// The answer to [`CreateAppSessionRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppSession {
    /// The session id (the `__Host-grv_app_session` cookie).
    pub session_id: String,
    /// The second secret (the `__Host-grv_app_session_subject` cookie); only in the answer to
    /// the one who created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// The app.
    pub name: String,
    /// Its public address in its cluster.
    pub public_addr: String,
    /// Its cluster.
    pub cluster_name: String,
    /// Where browsers reach it through this proxy.
    pub fqdn: String,
    /// The certificate (PEM).
    pub tls_cert: String,
    /// Unix seconds.
    pub expires: i64,
}

/// A cluster's CA public material, as clients need it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrustedCa {
    /// Cluster name.
    pub cluster_name: String,
    /// `host` or `user`.
    pub ca_type: String,
    /// `authorized_keys` lines.
    pub ssh_public_keys: Vec<String>,
    /// PEM certificates.
    pub tls_certs: Vec<String>,
}

impl TrustedCa {
    /// Puts `cas` in `into` in place of what it held of their clusters' CAs (the others stay).
    pub fn merge(into: &mut Vec<TrustedCa>, cas: Vec<TrustedCa>) {
        into.retain(|k| !cas.iter().any(|c| c.cluster_name == k.cluster_name && c.ca_type == k.ca_type));
        into.extend(cas);
    }
}

/// Certificates for a user or host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertsResponse {
    /// Teleport user name (or host UUID).
    pub username: String,
    /// The issuing cluster.
    pub cluster_name: String,
    /// OpenSSH certificate line.
    pub ssh_cert: String,
    /// PEM certificate.
    pub tls_cert: String,
    /// Host CAs of the issuing cluster and of every leaf the user can see.
    pub host_cas: Vec<TrustedCa>,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    /// Caller name.
    pub name: String,
    /// `user`, `remote_user` or `host`.
    pub kind: String,
    /// The cluster answering.
    pub cluster_name: String,
    /// Effective roles in this cluster.
    pub roles: Vec<String>,
    /// `options.request_access` of the roles: `optional`, `reason` or `always`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_access: String,
    /// `options.request_prompt` of the roles.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_prompt: String,
    /// The existing roles the caller may request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requestable_roles: Vec<String>,
}

/// `POST /v1/resources` and `PUT /v1/resources`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertResourceRequest {
    /// The resource JSON.
    pub resource: serde_json::Value,
    /// Overwrite an existing object (`tctl create -f`).
    #[serde(default)]
    pub force: bool,
    /// Only apply if the stored revision is still this (`tctl edit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_id: Option<i64>,
}

/// Result of an upsert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertResourceResponse {
    /// The kind.
    pub kind: String,
    /// The name as stored (a trusted cluster may have been renamed).
    pub name: String,
    /// True if it did not exist before.
    pub created: bool,
    /// Messages to print as `WARNING: ...`.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddUserRequest {
    /// User name.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Logins (the `logins` trait).
    #[serde(default)]
    pub logins: Vec<String>,
}

/// Invite or reset link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteResponse {
    /// User name.
    pub name: String,
    /// The one-time URL.
    pub url: String,
    /// Validity in seconds.
    pub ttl_seconds: u64,
}

/// `PATCH /v1/users/<name>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    /// Replace the roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_roles: Option<Vec<String>>,
    /// Replace the `logins` trait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_logins: Option<Vec<String>>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddTokenRequest {
    /// System roles (`trusted_cluster`, `node`).
    pub roles: Vec<String>,
    /// TTL in seconds.
    pub ttl_seconds: u64,
    /// A chosen value (else random).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Labels (copied to the remote_cluster for trusted_cluster tokens).
    #[serde(default)]
    pub labels: LabelMap,
}

/// `POST /v1/tokens` response: the token and what a leaf needs to use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddTokenResponse {
    /// The token resource.
    pub token: crate::resource::ProvisionToken,
    /// This cluster's name.
    pub cluster_name: String,
    /// This cluster's public web address (`web_proxy_addr`).
    pub web_proxy_addr: String,
    /// This cluster's reverse tunnel address (`tunnel_addr`).
    pub tunnel_addr: String,
}

/// `PATCH /v1/remoteclusters/<name>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateRemoteClusterRequest {
    /// Replace the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_labels: Option<LabelMap>,
    /// Set `metadata.expires` to now + this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_ttl_seconds: Option<u64>,
}

/// One row of `tsh clusters -f json` (reference §7.1), field order kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterInfo {
    /// Cluster name.
    pub cluster_name: String,
    /// `online` / `offline`.
    pub status: String,
    /// `root` or `leaf`.
    pub cluster_type: String,
    /// Labels (`null` when none).
    pub labels: Option<LabelMap>,
    /// Whether it is the profile's current cluster.
    pub selected: bool,
}

/// `POST /v1/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The join token.
    pub token: String,
    /// Node name.
    pub nodename: String,
    /// Host UUID (the node keeps it across restarts).
    pub host_id: String,
    /// `Node`.
    pub role: String,
    /// Extra principals / SANs (e.g. the advertised IP).
    #[serde(default)]
    pub additional_principals: Vec<String>,
    /// Keys to certify.
    #[serde(flatten)]
    pub keys: PublicKeys,
}

/// `POST /v1/join` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinResponse {
    /// Host UUID.
    pub host_id: String,
    /// Certificates (host CA of the cluster in `host_cas`).
    #[serde(flatten)]
    pub certs: CertsResponse,
}

/// A user CA a node trusts, with the role map for that cluster's users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustedUserCa {
    /// Cluster name.
    pub cluster_name: String,
    /// `authorized_keys` lines.
    pub ssh_public_keys: Vec<String>,
    /// Role map (for a root's CA on a leaf).
    #[serde(default)]
    pub role_map: Vec<crate::resource::RoleMapping>,
    /// Its active X.509 certificates (PEM): a Kubernetes service in a process of its own
    /// verifies users' client certificates with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_certs: Vec<String>,
}

/// `GET /v1/nodes/authz`: everything a node needs to decide logins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeAuthzBundle {
    /// Changes whenever any of this changes; pass it back as `?after=` to wait for a change.
    pub generation: u64,
    /// This cluster.
    pub cluster_name: String,
    /// Active user CAs: the cluster's own and each enabled trusted root's.
    pub user_cas: Vec<TrustedUserCa>,
    /// All roles.
    pub roles: Vec<crate::resource::Role>,
    /// Locks in force: this cluster's, and each trusted root's for its own users.
    #[serde(default)]
    pub locks: crate::resource::lock::LockSet,
    /// This cluster's host CA, public keys and rotation: nodes trust what it trusts and renew
    /// their host certificates as its rotation asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ca: Option<crate::resource::CertAuthority>,
}

/// `POST /v1/certs/user` (`tctl auth sign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignUserRequest {
    /// User to sign for.
    pub username: String,
    /// TTL in seconds.
    pub ttl_seconds: u64,
    /// Keys to certify.
    #[serde(flatten)]
    pub keys: PublicKeys,
}

/// `POST /v1/certs/db` (`tctl auth sign --format=db`): a database server's certificate from
/// this cluster's `db` CA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignDbRequest {
    /// The names clients reach the database by (the first is its common name).
    pub hosts: Vec<String>,
    /// TTL in seconds (0: the default).
    #[serde(default)]
    pub ttl_seconds: u64,
    /// SPKI PEM of the server's key.
    pub tls_public_key: String,
}

/// The answer to [`SignDbRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignDbResponse {
    /// The server certificate (PEM).
    pub cert: String,
    /// The `db` CA's certificates (PEM): what verifies the certificates the cluster's database
    /// service presents to the database, and clients' view of the server.
    pub cas: Vec<String>,
}

/// One database of `GET /v1/dbs` (`tsh db ls`), with what the caller's roles allow there, as
/// the cluster that owns it decides (a leaf: the roles it maps a root's user to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbListing {
    /// The database.
    pub db: crate::resource::Db,
    /// `db_users` the caller may connect as.
    pub users: Vec<String>,
    /// `db_names` the caller may connect to.
    pub names: Vec<String>,
}

/// `GET /v1/cas/export?type=` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportCasResponse {
    /// Lines in OpenSSH format.
    pub lines: Vec<String>,
}

/// `POST /v1/map-roles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRolesRequest {
    /// Trusted (root) cluster whose role map to use.
    pub cluster: String,
    /// Remote roles.
    pub roles: Vec<String>,
}

/// Mapping result (also printed by `tctl map-roles -f json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MapRolesResponse {
    /// The input roles.
    pub remote_roles: Vec<String>,
    /// What they map to.
    pub local_roles: Vec<String>,
}

/// A list of nodes (`tsh ls`).
pub type NodeList = Vec<Node>;

/// An audit event: a flat JSON object with at least `event`, `code` and `time`.
pub type AuditEvent = serde_json::Map<String, serde_json::Value>;

/// User traits (re-exported for API users).
pub type UserTraits = Traits;

/// `POST /v1/access/explain`: why may (or may not) someone log in as `login` on `node`?
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExplainRequest {
    /// The login (SSH principal).
    pub login: String,
    /// The node's host name or UUID (empty with `cluster`).
    #[serde(default)]
    pub node: String,
    /// Explain for this user of the cluster instead of the caller (needs read on users and roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Explain for this identity of a trusted root (what the root answered for `user`).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_identity: Option<ExplainIdentity>,
    /// On a root: explain only whether the leaf `cluster` may be reached (its `cluster_labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Explain access to this Kubernetes cluster instead of a login (`login` and `node` empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_cluster: Option<String>,
}

/// Whom an explanation is about, as their certificate says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExplainIdentity {
    /// Teleport user name.
    pub user: String,
    /// The cluster that issues their certificates.
    pub cluster: String,
    /// Their roles there.
    pub roles: Vec<String>,
    /// Their traits.
    #[serde(default)]
    pub traits: Traits,
    /// The certificate's principals.
    pub logins: Vec<String>,
}

impl ExplainIdentity {
    /// What a certificate's identity says, issued by `cluster`.
    pub fn of(u: &crate::identity::UserIdentity, cluster: &str) -> ExplainIdentity {
        ExplainIdentity {
            user: u.username.clone(),
            cluster: cluster.into(),
            roles: u.roles.clone(),
            traits: u.traits.clone(),
            logins: u.logins.clone(),
        }
    }
}

/// One check of an explanation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExplainStep {
    /// What is checked, e.g. "certificate principals".
    pub check: String,
    /// Passed (`true`), failed (`false`), or not a check (`null`: information).
    pub ok: Option<bool>,
    /// What was found.
    #[serde(default)]
    pub details: Vec<String>,
    /// What to change, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The answer: every check in the order the node (or the root) makes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The cluster that answered.
    pub cluster: String,
    /// Whom it is about.
    pub identity: ExplainIdentity,
    /// The login asked about.
    pub login: String,
    /// The node asked about.
    #[serde(default)]
    pub node: String,
    /// The verdict.
    pub allowed: bool,
    /// The checks.
    pub steps: Vec<ExplainStep>,
}

/// `GET /v1/status/tunnels` (`tctl status`): this cluster's tunnels in both directions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TunnelStatusResponse {
    /// The process that answered (its host UUID): outbound tunnels are per process.
    pub proxy: String,
    /// Tunnels this process keeps to each trusted root (a leaf's view).
    #[serde(default)]
    pub roots: Vec<OutboundTunnel>,
    /// Tunnels each leaf keeps to this cluster's proxies (a root's view).
    #[serde(default)]
    pub leaves: Vec<InboundTunnels>,
}

/// The tunnels to one trusted root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutboundTunnel {
    /// The root.
    pub cluster: String,
    /// Where the agent dials first.
    pub tunnel_addr: String,
    /// `connected`, `connecting` or `disabled`.
    pub state: String,
    /// The root's proxies a tunnel reaches.
    #[serde(default)]
    pub proxies: Vec<ProxyTunnel>,
    /// The last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub last_error_at: Option<time::OffsetDateTime>,
    /// Failures since the last success.
    #[serde(default)]
    pub failures: u32,
    /// Seconds until the next attempt, while connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<i64>,
}

/// One tunnel: the proxy at the root's end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProxyTunnel {
    /// The proxy's host UUID.
    pub proxy: String,
    /// Connected since (outbound).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub since: Option<time::OffsetDateTime>,
    /// Last heartbeat the proxy heard (inbound).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub last_heartbeat: Option<time::OffsetDateTime>,
}

/// One leaf's tunnels to this cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InboundTunnels {
    /// The leaf.
    pub cluster: String,
    /// `online` or `offline`.
    pub status: String,
    /// Its newest heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub last_heartbeat: Option<time::OffsetDateTime>,
    /// Live tunnels, one per proxy.
    #[serde(default)]
    pub proxies: Vec<ProxyTunnel>,
}

/// A live session (kind `session_tracker`, Teleport's shape): what `tsh sessions ls` lists and
/// `tsh join` needs to find the node. The node that runs the session keeps it current; it
/// expires a short while after the node stops refreshing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTracker {
    /// `session_tracker`.
    pub kind: String,
    /// `v1`.
    pub version: String,
    /// `name` is the session ID.
    pub metadata: crate::resource::Metadata,
    /// The session.
    pub spec: SessionTrackerSpec,
}

/// A tracker's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTrackerSpec {
    /// The session ID (a UUID).
    pub session_id: String,
    /// `ssh`.
    pub kind: String,
    /// 1: running.
    pub state: u8,
    /// When it started.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub created: time::OffsetDateTime,
    /// The node's host name.
    pub target_hostname: String,
    /// The node's UUID (what `tsh join` dials).
    pub target_address: String,
    /// The cluster whose node runs it.
    #[serde(default)]
    pub cluster_name: String,
    /// The Unix login.
    pub login: String,
    /// The command, for a session started with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Everyone in the session, the owner first.
    #[serde(default)]
    pub participants: Vec<Participant>,
    /// The owner's Teleport user name.
    pub host_user: String,
    /// The cluster that issued the owner's certificate (ours; Teleport keeps only the name).
    #[serde(default)]
    pub host_user_cluster: String,
    /// The owner's roles on the node (mapped, for a root's user): `join_sessions` rules match them.
    #[serde(default)]
    pub host_roles: Vec<TrackerRole>,
    /// The node's UUID.
    pub host_id: String,
    /// The terminal size, `COLSxROWS`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub terminal: String,
}

/// A role of a session's owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerRole {
    /// Its name.
    pub name: String,
}

/// One party to a live session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// Its ID in the session.
    pub id: String,
    /// Teleport user name.
    pub user: String,
    /// The cluster that issued their certificate.
    #[serde(default)]
    pub cluster: String,
    /// `peer` (the owner, and peers) or `observer`.
    pub mode: String,
    /// When they joined.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub last_active: time::OffsetDateTime,
}

impl Default for SessionTrackerSpec {
    fn default() -> Self {
        SessionTrackerSpec {
            session_id: String::new(),
            kind: "ssh".into(),
            state: 1,
            created: time::OffsetDateTime::UNIX_EPOCH,
            target_hostname: String::new(),
            target_address: String::new(),
            cluster_name: String::new(),
            login: String::new(),
            command: None,
            participants: Vec::new(),
            host_user: String::new(),
            host_user_cluster: String::new(),
            host_roles: Vec::new(),
            host_id: String::new(),
            terminal: String::new(),
        }
    }
}

impl Default for Participant {
    fn default() -> Self {
        Participant {
            id: String::new(),
            user: String::new(),
            cluster: String::new(),
            mode: String::new(),
            last_active: time::OffsetDateTime::UNIX_EPOCH,
        }
    }
}

impl SessionTracker {
    /// The owner's role names.
    pub fn owner_roles(&self) -> Vec<String> {
        self.spec.host_roles.iter().map(|r| r.name.clone()).collect()
    }
}

/// A recorded session's metadata (`tsh recordings ls`), kept by the node's own cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecording {
    /// The session ID.
    pub sid: String,
    /// The cluster that keeps it (the node's).
    pub cluster: String,
    /// Teleport user.
    pub user: String,
    /// Unix login.
    pub login: String,
    /// The cluster that issued the user's certificate.
    pub origin_cluster: String,
    /// Roles in the certificate (the root's, for a root's user).
    #[serde(default)]
    pub remote_roles: Vec<String>,
    /// Roles that applied on the node (mapped, for a root's user).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The node's UUID.
    pub server_id: String,
    /// The node's host name.
    pub server_hostname: String,
    /// A shell (true) or a command.
    pub interactive: bool,
    /// The command, for an exec session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When it started.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub started: time::OffsetDateTime,
    /// When it ended (absent while running, or when the node died).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub ended: Option<time::OffsetDateTime>,
    /// The exit status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Output bytes recorded.
    #[serde(default)]
    pub bytes: u64,
    /// Chunks stored.
    #[serde(default)]
    pub chunks: u64,
    /// The size limit was reached: the rest was not recorded.
    #[serde(default)]
    pub truncated: bool,
}

impl Default for SessionRecording {
    fn default() -> Self {
        SessionRecording {
            sid: String::new(),
            cluster: String::new(),
            user: String::new(),
            login: String::new(),
            origin_cluster: String::new(),
            remote_roles: vec![],
            roles: vec![],
            server_id: String::new(),
            server_hostname: String::new(),
            interactive: false,
            command: None,
            started: time::OffsetDateTime::UNIX_EPOCH,
            ended: None,
            exit_code: None,
            bytes: 0,
            chunks: 0,
            truncated: false,
        }
    }
}

/// One stored chunk of a recording (`data` base64).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordingChunk {
    /// Its place, from 0.
    pub seq: i64,
    /// Frames ([`crate::recording`]), base64.
    pub data: String,
}

/// `GET /v1/recordings/<sid>/chunks?from=N`: chunks from `from`, a few MiB at most.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordingChunks {
    /// The session.
    pub recording: SessionRecording,
    /// The chunks.
    pub chunks: Vec<RecordingChunk>,
    /// More follow: ask again from the next `seq`.
    pub more: bool,
}

/// `POST /v1/cas/rotate` (`tctl auth rotate`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateRequest {
    /// `user` or `host`.
    #[serde(rename = "type")]
    pub ca_type: String,
    /// A Go duration; empty: 30h.
    #[serde(default)]
    pub grace_period: String,
    /// Step by step with `phase`.
    #[serde(default)]
    pub manual: bool,
    /// The phase to move to (manual).
    #[serde(default)]
    pub phase: String,
}
