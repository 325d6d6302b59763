//! The steps of a node's login decision after the certificate's signature, written once.
//! [`super::authz::authorize`] runs them for a certificate and stops at the first refusal;
//! [`super::explain::explain`] runs the same functions for an identity and tells each step,
//! so the explanation cannot take a path the decision does not.
//!
//! 1. [`roles_for`]: a root's user gets roles through that root's `role_map` (never their root
//!    roles) and traits with `logins` = the certificate's principals; a local user keeps theirs.
//!    Every role must exist here.
//! 2. [`rules`]: deny rules first (`node_labels`, `logins`), then an allow rule matching both.
//! 3. [`lock`]: this cluster's locks, and the issuing root's for a root's user.

use shared::api::{ExplainIdentity, NodeAuthzBundle, TrustedUserCa};
use shared::rbac::AccessChecker;
use shared::resource::lock::Subject;
use shared::resource::{LabelMap, Role};
use shared::rolemap::CompiledRoleMap;
use shared::template::Traits;
use time::OffsetDateTime;

/// Why a step refused.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The role map cannot be read.
    RoleMap(String),
    /// The role map gives none of the user's roles a role here.
    NoRolesMapped(CompiledRoleMap),
    /// A role the user would get is not in this cluster.
    RoleMissing(String),
    /// The roles' rules do not allow the login on this node.
    Rules(String),
}

impl Refusal {
    /// The reason as the node logs and audits it.
    pub fn reason(&self, who: &ExplainIdentity, login: &str, here: &str) -> String {
        match self {
            Refusal::RoleMap(e) => {
                format!("failed to map roles for user with remote roles {}: {e}", shared::rolemap::go_list(&who.roles))
            }
            Refusal::NoRolesMapped(_) => shared::rolemap::no_roles_mapped_ssh(&who.roles).message,
            Refusal::RoleMissing(name) => format!("role {name:?} is not found in cluster {here:?}"),
            Refusal::Rules(e) => format!("user {}@{} is not authorized to login as {login}@{here}: {e}", who.user, who.cluster),
        }
    }
}

/// The roles that apply here.
pub struct RolesHere {
    /// Their names.
    pub names: Vec<String>,
    /// The roles, as this cluster defines them.
    pub roles: Vec<Role>,
    /// The traits their templates see.
    pub traits: Traits,
    /// The role map used (a root's user only).
    pub map: Option<CompiledRoleMap>,
}

/// Step 1: the roles `who`, whose certificate `ca` signed, gets in the bundle's cluster.
pub fn roles_for(bundle: &NodeAuthzBundle, ca: &TrustedUserCa, who: &ExplainIdentity) -> Result<RolesHere, Refusal> {
    let mapped = map(bundle, ca, who)?;
    let roles = load(bundle, &mapped.names).map_err(Refusal::RoleMissing)?;
    Ok(RolesHere { roles, ..mapped })
}

/// Step 1, first half: role names and traits (through the role map for a root's user).
/// `roles` is left empty.
pub fn map(bundle: &NodeAuthzBundle, ca: &TrustedUserCa, who: &ExplainIdentity) -> Result<RolesHere, Refusal> {
    if ca.cluster_name == bundle.cluster_name {
        return Ok(RolesHere { names: who.roles.clone(), roles: vec![], traits: who.traits.clone(), map: None });
    }
    let map = shared::rolemap::parse_role_map(&ca.role_map).map_err(|e| Refusal::RoleMap(e.message))?;
    let names = map.map(&who.roles);
    if names.is_empty() {
        return Err(Refusal::NoRolesMapped(map));
    }
    let mut traits = who.traits.clone();
    traits.insert("logins".into(), who.logins.clone());
    Ok(RolesHere { names, roles: vec![], traits, map: Some(map) })
}

/// Step 1, second half: every role named must exist here (the error is the first missing one).
pub fn load(bundle: &NodeAuthzBundle, names: &[String]) -> Result<Vec<Role>, String> {
    names.iter().map(|name| bundle.roles.iter().find(|r| &r.metadata.name == name).cloned().ok_or_else(|| name.clone())).collect()
}

/// Step 2: whether those roles allow `login` on a node with `labels`.
pub fn rules(here: &RolesHere, labels: &LabelMap, login: &str) -> Result<AccessChecker, Refusal> {
    let checker = AccessChecker::new(&here.roles, &here.traits);
    checker.check_node_login(labels, login).map_err(|e| Refusal::Rules(e.message))?;
    Ok(checker)
}

/// Where the login goes: the node and the login.
pub struct Target<'a> {
    /// The login.
    pub login: &'a str,
    /// The node's UUID.
    pub server_id: &'a str,
    /// The node's host name.
    pub node_name: &'a str,
}

/// Step 3: the refusal of the lock (if any) that stops `who` (with `mapped` roles here).
pub fn lock(
    bundle: &NodeAuthzBundle,
    who: &ExplainIdentity,
    mapped: &[String],
    requests: &[String],
    to: &Target<'_>,
    issued_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<String> {
    let mut roles = who.roles.clone();
    roles.extend(mapped.iter().cloned());
    let s = Subject {
        user: Some(&who.user),
        roles: &roles,
        login: Some(to.login),
        server_id: Some(to.server_id),
        node_name: Some(to.node_name),
        issued_at,
        requests,
    };
    bundle.locks.find(&s, &who.cluster, now).map(|l| l.refusal())
}
