//! Who a certificate says its holder is, and how that is written into SSH and X.509 certificates.
//!
//! SSH user certificates carry Teleport's extensions (reference §4.1): `teleport-roles`
//! (`{"version":"v1","roles":[...]}`), `teleport-traits` (JSON map), `teleport-route-to-cluster`.
//! SSH host certificates carry `x-teleport-role` and `x-teleport-authority`. X.509 certificates
//! carry the same identity as JSON in one extension ([`crate::certs::IDENTITY_OID`]); the
//! issuing cluster is always read from the *issuer* (the CA that signed), never from the payload.

use russh::keys::ssh_key::Certificate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::resource::token::SystemRole;
use crate::template::Traits;

/// SSH extension names.
pub mod ext {
    /// Allow a PTY.
    pub const PERMIT_PTY: &str = "permit-pty";
    /// Allow port forwarding.
    pub const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";
    /// Allow agent forwarding.
    pub const PERMIT_AGENT_FORWARDING: &str = "permit-agent-forwarding";
    /// Allow X11 forwarding.
    pub const PERMIT_X11_FORWARDING: &str = "permit-X11-forwarding";
    /// Root role names as JSON.
    pub const TELEPORT_ROLES: &str = "teleport-roles";
    /// User traits as JSON.
    pub const TELEPORT_TRAITS: &str = "teleport-traits";
    /// The cluster the certificate is routed to.
    pub const ROUTE_TO_CLUSTER: &str = "teleport-route-to-cluster";
    /// The approved access requests whose roles the certificate carries (`{"access_requests": [...]}`).
    pub const ACTIVE_REQUESTS: &str = "teleport-active-requests";
    /// Host certificates: the system role (`Node`, `Proxy`).
    pub const HOST_ROLE: &str = "x-teleport-role";
    /// Host certificates: the cluster name.
    pub const HOST_AUTHORITY: &str = "x-teleport-authority";
}

/// A principal that makes a login-less certificate unusable for any login.
pub const NO_LOGIN_PREFIX: &str = "-teleport-nologin-";

/// A user as their certificate describes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserIdentity {
    /// Teleport user name.
    pub username: String,
    /// Role names in the issuing cluster.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user's traits.
    #[serde(default)]
    pub traits: Traits,
    /// Allowed logins (SSH principals).
    #[serde(default)]
    pub logins: Vec<String>,
    /// Cluster the user selected with `tsh login <cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_cluster: Option<String>,
    /// The Kubernetes cluster this certificate is for (`tsh kube login`), in
    /// [`UserIdentity::route_to_cluster`] (or the issuing cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_cluster: Option<String>,
    /// `kubernetes_users` of the issuing cluster's roles, traits applied: what a leaf's roles
    /// read as `{{internal.kubernetes_users}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_users: Vec<String>,
    /// `kubernetes_groups` of the issuing cluster's roles (`{{internal.kubernetes_groups}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_groups: Vec<String>,
    /// The application session this certificate is for (`tsh apps login`, the browser's app
    /// session): the app it reaches and nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_app: Option<RouteToApp>,
    /// The database this certificate is for (`tsh db login`): that database and nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to_database: Option<RouteToDatabase>,
    /// The approved access requests whose roles are among [`UserIdentity::roles`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_requests: Vec<String>,
}

/// Which database a certificate reaches (Teleport's `RouteToDatabase`). The user and database
/// name are defaults: a client's `StartupMessage` may name others, and the serving cluster
/// checks those.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteToDatabase {
    /// The database's name in its cluster.
    pub service_name: String,
    /// `postgres`.
    pub protocol: String,
    /// The default database user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The default database name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
}

/// Where an application certificate goes (Teleport's `RouteToApp`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteToApp {
    /// The app session it belongs to (it lives only as long as the session).
    pub session_id: String,
    /// The app's name in its cluster.
    pub name: String,
    /// The app's public address in its cluster (what that cluster's app service finds it by).
    pub public_addr: String,
    /// The cluster that serves the app.
    pub cluster_name: String,
}

impl UserIdentity {
    /// The traits a leaf applies to a root's user (reference §4.2): the root user's traits with
    /// `logins` replaced by the certificate's principals, and the Kubernetes users and groups
    /// the root's roles gave (X.509 certificates carry them; SSH certificates do not).
    pub fn remote_traits(&self) -> crate::template::Traits {
        let mut t = self.traits.clone();
        t.insert("logins".into(), self.logins.clone());
        if !self.kubernetes_users.is_empty() {
            t.insert("kubernetes_users".into(), self.kubernetes_users.clone());
        }
        if !self.kubernetes_groups.is_empty() {
            t.insert("kubernetes_groups".into(), self.kubernetes_groups.clone());
        }
        t
    }
}

/// A host (node, proxy) or the cluster admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIdentity {
    /// The host UUID (for Admin: `admin`).
    pub host_id: String,
    /// The host name.
    #[serde(default)]
    pub nodename: String,
    /// What it is.
    pub role: SystemRole,
}

/// The identity inside an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// Parsed once per connection and never stored in bulk: boxing the user would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum CertIdentity {
    /// A person.
    User(UserIdentity),
    /// A machine.
    Host(HostIdentity),
}

impl CertIdentity {
    /// JSON for the certificate extension.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the extension JSON.
    pub fn from_json(s: &str) -> Result<CertIdentity> {
        serde_json::from_str(s).map_err(|e| Error::access_denied(format!("client certificate has an unreadable identity: {e}")))
    }
}

#[derive(Serialize, Deserialize)]
struct CertRoles {
    version: String,
    roles: Vec<String>,
}

/// SSH extensions for a user certificate.
pub fn user_ssh_extensions(id: &UserIdentity, port_forwarding: bool, agent_forwarding: bool) -> Vec<(String, String)> {
    let mut out = vec![(ext::PERMIT_PTY.to_string(), String::new())];
    if port_forwarding {
        out.push((ext::PERMIT_PORT_FORWARDING.into(), String::new()));
    }
    if agent_forwarding {
        out.push((ext::PERMIT_AGENT_FORWARDING.into(), String::new()));
    }
    let roles: Vec<String> = id.roles.iter().filter(|r| *r != crate::rolemap::DEFAULT_IMPLICIT_ROLE).cloned().collect();
    if !roles.is_empty() {
        let json = serde_json::to_string(&CertRoles { version: "v1".into(), roles }).unwrap_or_default();
        out.push((ext::TELEPORT_ROLES.into(), json));
    }
    if !id.traits.is_empty() {
        out.push((ext::TELEPORT_TRAITS.into(), serde_json::to_string(&id.traits).unwrap_or_default()));
    }
    if let Some(r) = &id.route_to_cluster {
        out.push((ext::ROUTE_TO_CLUSTER.into(), r.clone()));
    }
    if !id.active_requests.is_empty() {
        let json = serde_json::json!({ "access_requests": id.active_requests }).to_string();
        out.push((ext::ACTIVE_REQUESTS.into(), json));
    }
    out
}

/// Reads the user identity from an SSH user certificate.
pub fn user_from_ssh_cert(cert: &Certificate) -> Result<UserIdentity> {
    let exts = cert.extensions();
    let roles = match exts.get(ext::TELEPORT_ROLES) {
        Some(j) => {
            serde_json::from_str::<CertRoles>(j)
                .map_err(|e| Error::access_denied(format!("certificate has an unreadable {} extension: {e}", ext::TELEPORT_ROLES)))?
                .roles
        }
        None => vec![],
    };
    let traits = match exts.get(ext::TELEPORT_TRAITS) {
        Some(j) => serde_json::from_str::<Traits>(j)
            .map_err(|e| Error::access_denied(format!("certificate has an unreadable {} extension: {e}", ext::TELEPORT_TRAITS)))?,
        None => Traits::new(),
    };
    Ok(UserIdentity {
        username: cert.key_id().to_string(),
        roles,
        traits,
        logins: cert.valid_principals().to_vec(),
        route_to_cluster: exts.get(ext::ROUTE_TO_CLUSTER).cloned().filter(|s| !s.is_empty()),
        active_requests: exts
            .get(ext::ACTIVE_REQUESTS)
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v["access_requests"].clone()).ok())
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// SSH extensions for a host certificate.
pub fn host_ssh_extensions(role: SystemRole, cluster: &str) -> Vec<(String, String)> {
    vec![(ext::HOST_ROLE.into(), role.as_str().into()), (ext::HOST_AUTHORITY.into(), cluster.into())]
}

/// Reads role and cluster from an SSH host certificate.
pub fn host_from_ssh_cert(cert: &Certificate) -> Result<(SystemRole, String)> {
    let exts = cert.extensions();
    let authority = exts.get(ext::HOST_AUTHORITY).filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::access_denied("certificate missing \"x-teleport-authority\" extension; this SSH host certificate was not issued by Teleport")
    })?;
    let role = exts.get(ext::HOST_ROLE).ok_or_else(|| Error::access_denied("certificate missing \"x-teleport-role\" extension"))?;
    Ok((SystemRole::parse(role)?, authority.clone()))
}

/// Principals of a host certificate (reference §4.1), de-duplicated.
pub fn host_principals(host_id: &str, nodename: &str, cluster: &str, extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let candidates = [
        format!("{host_id}.{cluster}"),
        host_id.to_string(),
        format!("{nodename}.{cluster}"),
        nodename.to_string(),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    for p in candidates.into_iter().chain(extra.iter().cloned()) {
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Identity of an authenticated API caller, after the server checked which CA signed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// A user of this cluster.
    LocalUser(UserIdentity),
    /// A user of a trusted (root) cluster, with their root roles.
    RemoteUser {
        /// The identity the root issued.
        identity: UserIdentity,
        /// The root cluster's name.
        cluster: String,
    },
    /// A node, proxy or the admin identity of this cluster.
    Host(HostIdentity),
}

impl Caller {
    /// A short name for logs and audit events.
    pub fn name(&self) -> String {
        match self {
            Caller::LocalUser(u) => u.username.clone(),
            Caller::RemoteUser { identity, cluster } => {
                format!("remote-{}-{}", identity.username, cluster)
            }
            Caller::Host(h) => format!("{}.{}", h.host_id, h.role),
        }
    }

    /// Whether the caller is `user` of cluster `origin`, as seen from cluster `here` (a local
    /// user's origin is `here`; a host is no user).
    pub fn is_user(&self, user: &str, origin: &str, here: &str) -> bool {
        match self {
            Caller::LocalUser(u) => u.username == user && origin == here,
            Caller::RemoteUser { identity, cluster } => identity.username == user && cluster == origin,
            Caller::Host(_) => false,
        }
    }
}

/// When a certificate was issued: we backdate `valid_after` by [`crate::certs::CLOCK_SKEW`].
pub fn ssh_cert_issued_at(cert: &Certificate) -> OffsetDateTime {
    crate::timefmt::from_unix(i64::try_from(cert.valid_after()).unwrap_or(0)) + crate::certs::CLOCK_SKEW
}

/// When an X.509 certificate was issued (its `not_before`, backdated as for SSH).
pub fn tls_cert_issued_at(not_before_unix: i64) -> OffsetDateTime {
    crate::timefmt::from_unix(not_before_unix) + crate::certs::CLOCK_SKEW
}

/// A certificate's expiry as an `OffsetDateTime`.
pub fn ssh_cert_expiry(cert: &Certificate) -> OffsetDateTime {
    crate::timefmt::from_unix(i64::try_from(cert.valid_before()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{SshCertParams, new_ssh_key, sign_ssh_cert};
    use russh::keys::ssh_key::certificate::CertType;

    #[test]
    fn user_identity_round_trips_through_ssh_cert() -> Result<()> {
        let ca = new_ssh_key()?;
        let key = new_ssh_key()?;
        let mut traits = Traits::new();
        traits.insert("logins".into(), vec!["root".into()]);
        let id = UserIdentity {
            username: "alice".into(),
            roles: vec!["access".into(), crate::rolemap::DEFAULT_IMPLICIT_ROLE.into()],
            traits,
            logins: vec!["root".into(), "visitor".into()],
            route_to_cluster: Some("leaf".into()),
            ..Default::default()
        };
        let now = OffsetDateTime::now_utc();
        let cert = sign_ssh_cert(
            &ca,
            key.public_key(),
            &SshCertParams {
                cert_type: CertType::User,
                key_id: id.username.clone(),
                principals: id.logins.clone(),
                extensions: user_ssh_extensions(&id, true, false),
                not_before: now,
                not_after: now + std::time::Duration::from_secs(60),
            },
        )?;
        assert_eq!(cert.extensions().get("teleport-roles").map(String::as_str), Some("{\"version\":\"v1\",\"roles\":[\"access\"]}"));
        let back = user_from_ssh_cert(&cert)?;
        assert_eq!(back.roles, vec!["access".to_string()]);
        assert_eq!(back.route_to_cluster.as_deref(), Some("leaf"));
        assert_eq!(back.logins, id.logins);
        assert_eq!(back.traits, id.traits);
        Ok(())
    }

    #[test]
    fn host_principals_are_deduplicated() {
        let p = host_principals("u1", "node1", "c", &["node1".into(), "10.0.0.1".into()]);
        assert_eq!(p, vec!["u1.c", "u1", "node1.c", "node1", "localhost", "127.0.0.1", "::1", "10.0.0.1"]);
    }

    #[test]
    fn cert_identity_json_round_trip() -> Result<()> {
        let h = CertIdentity::Host(HostIdentity { host_id: "x".into(), nodename: "n".into(), role: SystemRole::Node });
        assert_eq!(CertIdentity::from_json(&h.to_json())?, h);
        assert!(CertIdentity::from_json("{\"kind\":\"alien\"}").is_err());
        Ok(())
    }
}
