//! Node-side authorization of an SSH login, in Teleport's order (reference §6):
//!
//! 1. the certificate has a key id and principals;
//! 2. it is signed by an *active* user CA this cluster trusts (its own, or an enabled root's);
//! 3. it is a user certificate, inside its validity window, and lists the requested login;
//! 4. a root's user gets roles through that root's `role_map` (never their root roles), with
//!    their traits and `logins` = the certificate's principals;
//! 5. the roles are loaded here and traits applied;
//! 6. deny rules first (`node_labels`, `logins`), then an allow rule matching labels and login.
//!
//! Steps 4 to 6 and the locks are [`super::decide`]'s, shared with `access explain`.
//!
//! A pure function over the bundle the node received from its auth service, so every rule is
//! unit-tested without a network.

use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use shared::api::{ExplainIdentity, NodeAuthzBundle};
use shared::certs::{self, SshCertRejection};
use shared::identity::{self, UserIdentity};
use shared::resource::LabelMap;
use shared::template::Traits;
use time::OffsetDateTime;

use super::decide;

/// A successful decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// Teleport user name.
    pub username: String,
    /// The cluster that issued the certificate.
    pub origin_cluster: String,
    /// Roles in the certificate.
    pub cert_roles: Vec<String>,
    /// Roles that applied here (mapped for remote users).
    pub roles: Vec<String>,
    /// Whether the user comes from a trusted root.
    pub remote: bool,
    /// Certificate expiry.
    pub expires: OffsetDateTime,
    /// When the certificate was issued.
    pub issued_at: OffsetDateTime,
    /// The roles' `max_sessions` (sessions one connection may hold).
    pub max_sessions: Option<u64>,
    /// The roles' `client_idle_timeout`.
    pub idle_timeout: Option<std::time::Duration>,
    /// The certificate's principals.
    pub logins: Vec<String>,
    /// The access requests whose roles the certificate carries.
    pub requests: Vec<String>,
    /// The certificate's traits.
    pub traits: Traits,
    /// The role that refuses copying files (`options.ssh_file_copy: false`), if one does.
    pub file_copy_refused_by: Option<String>,
    /// Why the roles refuse local forwarding (`-L`, `-D`), if they do.
    pub local_forward_refused_by: Option<String>,
    /// Why the roles refuse remote forwarding (`-R`), if they do.
    pub remote_forward_refused_by: Option<String>,
    /// A role with `forward_agent` has this login.
    pub forward_agent: bool,
}

/// A refusal: what the log and audit get (the client only sees "access denied").
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    /// The reason.
    pub reason: String,
    /// Who, if known.
    pub username: String,
    /// Issuing cluster, if known.
    pub origin_cluster: String,
    /// Roles in the certificate, if readable.
    pub cert_roles: Vec<String>,
}

/// Decides whether `cert` may log in as `login` on a node with `labels`.
pub fn authorize(
    bundle: &NodeAuthzBundle,
    labels: &LabelMap,
    login: &str,
    cert: &Certificate,
    now: OffsetDateTime,
) -> Result<Allowed, Denied> {
    let (ca, id, here, mut denied) = verify(bundle, cert, Some(login), now)?;
    let who = ExplainIdentity::of(&id, &ca.cluster_name);
    let checker = match decide::rules(&here, labels, login) {
        Ok(c) => c,
        Err(r) => {
            denied.reason = r.reason(&who, login, &bundle.cluster_name);
            return Err(denied);
        }
    };
    Ok(allowed(bundle, ca, id, here, &checker, login, cert))
}

/// Decides whether `cert` may connect to join sessions ([`super::party::JOIN_LOGIN`]): a valid
/// certificate of a trusted CA whose user gets roles here. It names no Unix login, so no login
/// rule applies; which sessions it may join, and how, is decided at the join.
pub fn authorize_join(bundle: &NodeAuthzBundle, cert: &Certificate, now: OffsetDateTime) -> Result<Allowed, Denied> {
    let (ca, id, here, _) = verify(bundle, cert, None, now)?;
    let checker = shared::rbac::AccessChecker::new(&here.roles, &here.traits);
    let mut a = allowed(bundle, ca, id, here, &checker, super::party::JOIN_LOGIN, cert);
    // A party may do nothing but join: no copies, forwards or agents.
    a.file_copy_refused_by = Some("a connection that joins sessions".into());
    a.local_forward_refused_by = Some("a connection that joins sessions".into());
    a.remote_forward_refused_by = Some("a connection that joins sessions".into());
    a.forward_agent = false;
    Ok(a)
}

/// Steps 1 to 5: the CA that signed `cert` (checking `principal` when given), the identity, and
/// the roles it gets here.
fn verify<'b>(
    bundle: &'b NodeAuthzBundle,
    cert: &Certificate,
    principal: Option<&str>,
    now: OffsetDateTime,
) -> Result<(&'b shared::api::TrustedUserCa, UserIdentity, decide::RolesHere, Denied), Denied> {
    let mut denied =
        Denied { reason: String::new(), username: cert.key_id().to_string(), origin_cluster: String::new(), cert_roles: vec![] };
    let deny = |mut d: Denied, reason: String| {
        d.reason = reason;
        Err(d)
    };
    // 2. Which active user CA signed it.
    let mut cas = Vec::new();
    let mut owners = Vec::new();
    for ca in &bundle.user_cas {
        for k in &ca.ssh_public_keys {
            if let Ok(pk) = certs::parse_authorized_key(k.as_bytes()) {
                cas.push(pk);
                owners.push(ca);
            }
        }
    }
    // 1 and 3 are checked together with the signature.
    let idx = match certs::check_ssh_cert(cert, &cas, CertType::User, principal, now) {
        Ok(i) => i,
        Err(SshCertRejection::Principal(p)) => {
            return deny(denied, format!("the certificate does not allow login {p:?}; add it to the user's logins on their cluster"));
        }
        Err(r) => return deny(denied, r.to_string()),
    };
    let ca = owners[idx];
    denied.origin_cluster = ca.cluster_name.clone();
    let id: UserIdentity = match identity::user_from_ssh_cert(cert) {
        Ok(id) => id,
        Err(e) => return deny(denied, e.message),
    };
    denied.cert_roles = id.roles.clone();
    let who = ExplainIdentity::of(&id, &ca.cluster_name);
    // 4 and 5, as `access explain` tells them.
    match decide::roles_for(bundle, ca, &who) {
        Ok(here) => Ok((ca, id, here, denied)),
        Err(r) => {
            let reason = r.reason(&who, principal.unwrap_or(super::party::JOIN_LOGIN), &bundle.cluster_name);
            deny(denied, reason)
        }
    }
}

fn allowed(
    bundle: &NodeAuthzBundle,
    ca: &shared::api::TrustedUserCa,
    id: UserIdentity,
    here: decide::RolesHere,
    checker: &shared::rbac::AccessChecker,
    login: &str,
    cert: &Certificate,
) -> Allowed {
    Allowed {
        username: id.username,
        origin_cluster: ca.cluster_name.clone(),
        remote: ca.cluster_name != bundle.cluster_name,
        cert_roles: id.roles,
        roles: here.names,
        expires: identity::ssh_cert_expiry(cert),
        issued_at: identity::ssh_cert_issued_at(cert),
        max_sessions: checker.max_sessions(),
        idle_timeout: checker.client_idle_timeout(),
        logins: id.logins,
        requests: id.active_requests,
        traits: id.traits,
        file_copy_refused_by: checker.file_copy_refused_by(),
        local_forward_refused_by: checker.forward_refused_by(false),
        remote_forward_refused_by: checker.forward_refused_by(true),
        forward_agent: checker.forward_agent_for(login),
    }
}

/// The lock (if any) that stops an allowed login as `login` on this node (`server_id`,
/// `node_name`): the cluster's own locks, and the issuing root's for a root's user.
pub fn check_locks(
    bundle: &NodeAuthzBundle,
    a: &Allowed,
    login: &str,
    server_id: &str,
    node_name: &str,
    now: OffsetDateTime,
) -> Option<String> {
    let who = ExplainIdentity {
        user: a.username.clone(),
        cluster: a.origin_cluster.clone(),
        roles: a.cert_roles.clone(),
        traits: a.traits.clone(),
        logins: a.logins.clone(),
    };
    decide::lock(bundle, &who, &a.roles, &a.requests, &decide::Target { login, server_id, node_name }, Some(a.issued_at), now)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use russh::keys::ssh_key::PrivateKey;
    use shared::api::TrustedUserCa;
    use shared::certs::{SshCertParams, authorized_key, new_ssh_key, sign_ssh_cert};
    use shared::identity::user_ssh_extensions;
    use shared::labels::wildcard;
    use shared::resource::role::{RoleConditions, RoleSpec, one_label};
    use shared::resource::{Role, RoleMapping};
    use std::time::Duration;

    pub(crate) struct World {
        pub(crate) leaf_ca: PrivateKey,
        pub(crate) root_ca: PrivateKey,
        pub(crate) bundle: NodeAuthzBundle,
    }

    fn role(name: &str, logins: &[&str], labels: shared::labels::Labels) -> Role {
        let mut r = Role::new(
            name,
            RoleSpec {
                allow: RoleConditions {
                    logins: logins.iter().map(|s| s.to_string()).collect(),
                    node_labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        r.check_and_set_defaults().unwrap();
        r
    }

    pub(crate) fn world(role_map: Vec<RoleMapping>) -> World {
        let leaf_ca = new_ssh_key().unwrap();
        let root_ca = new_ssh_key().unwrap();
        let bundle = NodeAuthzBundle {
            host_ca: None,
            generation: 1,
            cluster_name: "leaf".into(),
            user_cas: vec![
                TrustedUserCa {
                    cluster_name: "leaf".into(),
                    ssh_public_keys: vec![authorized_key(leaf_ca.public_key())],
                    role_map: vec![],
                    tls_certs: vec![],
                },
                TrustedUserCa {
                    cluster_name: "root".into(),
                    ssh_public_keys: vec![authorized_key(root_ca.public_key())],
                    role_map,
                    tls_certs: vec![],
                },
            ],
            roles: vec![
                role("visitor", &["visitor"], wildcard()),
                role("stage-access", &["{{internal.logins}}"], one_label("env", "stage")),
                role("access", &["root", "visitor"], wildcard()),
            ],
            locks: Default::default(),
        };
        World { leaf_ca, root_ca, bundle }
    }

    pub(crate) fn cert(ca: &PrivateKey, user: &str, roles: &[&str], logins: &[&str], ttl: i64) -> Certificate {
        let key = new_ssh_key().unwrap();
        let id = UserIdentity {
            username: user.into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            traits: Default::default(),
            logins: logins.iter().map(|s| s.to_string()).collect(),
            route_to_cluster: None,
            ..Default::default()
        };
        let now = OffsetDateTime::now_utc();
        sign_ssh_cert(
            ca,
            key.public_key(),
            &SshCertParams {
                cert_type: CertType::User,
                key_id: user.into(),
                principals: id.logins.clone(),
                extensions: user_ssh_extensions(&id, true, false),
                not_before: now - Duration::from_secs(60),
                not_after: if ttl >= 0 { now + Duration::from_secs(ttl as u64) } else { now - Duration::from_secs(1) },
            },
        )
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn root_user_gets_mapped_roles_not_root_roles() {
        let w = world(vec![RoleMapping { remote: "access".into(), local: vec!["visitor".into()] }]);
        let c = cert(&w.root_ca, "alice", &["access"], &["root", "visitor"], 600);
        let ok = authorize(&w.bundle, &labels(&[]), "visitor", &c, now()).unwrap();
        assert_eq!(ok.roles, vec!["visitor"]);
        assert!(ok.remote);
        assert_eq!(ok.origin_cluster, "root");
        // "root" is among the principals, and the leaf has an "access" role allowing root, but
        // the user is mapped to "visitor" only.
        let e = authorize(&w.bundle, &labels(&[]), "root", &c, now()).unwrap_err();
        assert!(e.reason.contains("is not authorized to login as root@leaf"), "{}", e.reason);
    }

    #[test]
    fn unmapped_root_roles_are_denied_with_the_reason() {
        let w = world(vec![RoleMapping { remote: "access".into(), local: vec!["visitor".into()] }]);
        let c = cert(&w.root_ca, "bob", &["dev"], &["visitor"], 600);
        let e = authorize(&w.bundle, &labels(&[]), "visitor", &c, now()).unwrap_err();
        assert_eq!(e.reason, "no roles mapped for user with remote roles [dev]");
        assert_eq!(e.origin_cluster, "root");
        assert_eq!(e.cert_roles, vec!["dev"]);
    }

    #[test]
    fn traits_from_principals_drive_templates() {
        let w = world(vec![RoleMapping { remote: "full-access".into(), local: vec!["stage-access".into()] }]);
        let c = cert(&w.root_ca, "alice", &["full-access"], &["visitor"], 600);
        assert!(authorize(&w.bundle, &labels(&[("env", "stage")]), "visitor", &c, now()).is_ok());
        assert!(authorize(&w.bundle, &labels(&[("env", "prod")]), "visitor", &c, now()).is_err());
    }

    #[test]
    fn locks_stop_their_targets_only() {
        use shared::resource::Lock;
        use shared::resource::lock::{LockSet, LockSpec, LockTarget, RemoteLocks};
        let mut w = world(vec![RoleMapping { remote: "access".into(), local: vec!["visitor".into()] }]);
        let lock = |t: LockTarget| Lock::new("l", LockSpec { target: t, message: "go away".into(), ..Default::default() });
        let root_alice = cert(&w.root_ca, "alice", &["access"], &["visitor"], 600);
        let ok = authorize(&w.bundle, &labels(&[]), "visitor", &root_alice, now()).unwrap();
        assert_eq!(check_locks(&w.bundle, &ok, "visitor", "uuid-1", "node1", now()), None);
        // The root's lock on its user alice reaches the leaf's node.
        w.bundle.locks = LockSet {
            local: vec![],
            remote: vec![RemoteLocks {
                cluster: "root".into(),
                locks: vec![lock(LockTarget { user: "alice".into(), ..Default::default() })],
            }],
        };
        let msg = check_locks(&w.bundle, &ok, "visitor", "uuid-1", "node1", now()).unwrap_or_default();
        assert_eq!(msg, "lock targeting User:\"alice\" is in force: go away");
        // A leaf's own alice is not the root's.
        let leaf_alice = cert(&w.leaf_ca, "alice", &["access"], &["root"], 600);
        let ok_leaf = authorize(&w.bundle, &labels(&[]), "root", &leaf_alice, now()).unwrap();
        assert_eq!(check_locks(&w.bundle, &ok_leaf, "root", "uuid-1", "node1", now()), None);
        // A leaf lock on the mapped role, on a login, and on this node.
        for t in [
            LockTarget { role: "visitor".into(), ..Default::default() },
            LockTarget { login: "visitor".into(), ..Default::default() },
            LockTarget { server_id: "uuid-1".into(), ..Default::default() },
            LockTarget { node: "node1".into(), ..Default::default() },
        ] {
            w.bundle.locks = LockSet { local: vec![lock(t.clone())], remote: vec![] };
            assert!(check_locks(&w.bundle, &ok, "visitor", "uuid-1", "node1", now()).is_some(), "{t}");
            assert_eq!(
                check_locks(&w.bundle, &ok, "visitor", "uuid-2", "node2", now()).is_some(),
                t.server_id.is_empty() && t.node.is_empty()
            );
        }
    }

    #[test]
    fn local_users_use_their_own_roles() {
        let w = world(vec![]);
        let c = cert(&w.leaf_ca, "carol", &["access"], &["root"], 600);
        let ok = authorize(&w.bundle, &labels(&[]), "root", &c, now()).unwrap();
        assert!(!ok.remote);
        assert_eq!(ok.roles, vec!["access"]);
    }

    #[test]
    fn refusals() {
        let w = world(vec![RoleMapping { remote: "*".into(), local: vec!["visitor".into()] }]);
        let foreign = new_ssh_key().unwrap();
        let c = cert(&foreign, "eve", &["access"], &["visitor"], 600);
        assert_eq!(authorize(&w.bundle, &labels(&[]), "visitor", &c, now()).unwrap_err().reason, "the certificate signed by untrusted CA");
        let c = cert(&w.root_ca, "alice", &["access"], &["visitor"], -1);
        assert!(authorize(&w.bundle, &labels(&[]), "visitor", &c, now()).unwrap_err().reason.contains("expired"));
        let c = cert(&w.root_ca, "alice", &["access"], &["visitor"], 600);
        assert!(authorize(&w.bundle, &labels(&[]), "root", &c, now()).unwrap_err().reason.contains("does not allow login \"root\""));
        // Trust disabled: the root CA is no longer in the bundle.
        let mut b = w.bundle.clone();
        b.user_cas.retain(|c| c.cluster_name != "root");
        assert_eq!(authorize(&b, &labels(&[]), "visitor", &c, now()).unwrap_err().reason, "the certificate signed by untrusted CA");
        // A mapped role that does not exist here.
        let w2 = world(vec![RoleMapping { remote: "*".into(), local: vec!["ghost".into()] }]);
        let c = cert(&w2.root_ca, "alice", &["access"], &["visitor"], 600);
        assert!(authorize(&w2.bundle, &labels(&[]), "visitor", &c, now()).unwrap_err().reason.contains("role \"ghost\" is not found"));
    }
}
