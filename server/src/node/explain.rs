//! `access explain`: the node's decision ([`super::authz::authorize`]) told step by step, over
//! the same bundle the node decides with, so that the explanation cannot drift from the truth
//! (a test below checks that both agree on every case they share).
//!
//! Steps, in the node's order; the first that fails ends the explanation, as it ends the login:
//! the certificate's principals, the CA that signed it (and whether that trust is enabled), the
//! role map (for a root's user), the roles here, the node, each role's allow and deny rules for
//! this login and these labels, the locks. The caller's own roles decide how much they see:
//! without `read` on roles, role maps and rules are summarised, never listed.

use shared::api::{ExplainIdentity, ExplainStep, Explanation, NodeAuthzBundle};
use shared::rbac::{AccessChecker, RoleLoginCheck, describe_label_map};
use shared::resource::LabelMap;
use time::OffsetDateTime;

use super::decide::{self, Refusal, RolesHere};

/// How the signing cluster stands here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// This cluster, or a trusted root whose CA is active.
    Active,
    /// A trusted root whose trust is disabled (`enabled: false`).
    Disabled,
    /// Not known here.
    Unknown,
}

/// The node asked about: its host name, UUID and labels.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Host name.
    pub hostname: String,
    /// UUID.
    pub name: String,
    /// Labels (static and dynamic).
    pub labels: LabelMap,
}

/// Inputs beyond the bundle.
pub struct Question<'a> {
    /// The login asked about.
    pub login: &'a str,
    /// The node's name as asked.
    pub node_query: &'a str,
    /// The node, when it exists and the caller may see it.
    pub node: Option<&'a NodeInfo>,
    /// Whom it is about.
    pub id: &'a ExplainIdentity,
    /// How the signing cluster stands.
    pub trust: Trust,
    /// Show role maps and role rules (the caller may read roles here).
    pub show_rules: bool,
}

struct Builder {
    steps: Vec<ExplainStep>,
}

impl Builder {
    fn pass(&mut self, check: &str, details: Vec<String>) {
        self.steps.push(ExplainStep { check: check.into(), ok: Some(true), details, fix: None });
    }

    fn info(&mut self, check: &str, details: Vec<String>) {
        self.steps.push(ExplainStep { check: check.into(), ok: None, details, fix: None });
    }

    fn fail(&mut self, check: &str, details: Vec<String>, fix: String) {
        self.steps.push(ExplainStep { check: check.into(), ok: Some(false), details, fix: Some(fix) });
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

/// Explains whether `q.id` may log in as `q.login` on `q.node` in the bundle's cluster.
pub fn explain(bundle: &NodeAuthzBundle, q: &Question<'_>, now: OffsetDateTime) -> Explanation {
    let here = bundle.cluster_name.as_str();
    let id = q.id;
    let remote = id.cluster != here;
    let mut b = Builder { steps: Vec::new() };
    let out = Explanation {
        cluster: here.into(),
        identity: id.clone(),
        login: q.login.into(),
        node: q.node_query.into(),
        allowed: false,
        steps: Vec::new(),
    };
    let finish = |b: Builder, mut out: Explanation, allowed: bool| {
        out.steps = b.steps;
        out.allowed = allowed;
        out
    };

    // 1. The certificate's principals.
    let who = format!("user {} of cluster {}", id.user, id.cluster);
    let principals = format!("principals: {}", list(&id.logins));
    if !id.logins.iter().any(|l| l == q.login) {
        let fix = if remote {
            format!(
                "on cluster {}, add {:?} to {}'s logins or to allow.logins of one of their roles there, then run 'tsh login' again",
                id.cluster, q.login, id.user
            )
        } else {
            format!(
                "add {:?} to {}'s logins ('tctl users update {} --set-logins=...') or to allow.logins of one of their roles, then run 'tsh login' again",
                q.login, id.user, id.user
            )
        };
        b.fail("certificate", vec![who, principals, format!("{:?} is not among them", q.login)], fix);
        return finish(b, out, false);
    }
    b.pass("certificate", vec![who, principals]);

    // 2. The CA that signed it.
    let ca = bundle.user_cas.iter().find(|c| c.cluster_name == id.cluster);
    match (q.trust, ca) {
        (Trust::Active, Some(ca)) => {
            let fps: Vec<String> = ca
                .ssh_public_keys
                .iter()
                .filter_map(|k| shared::certs::parse_authorized_key(k.as_bytes()).ok())
                .map(|k| shared::certs::fingerprint(&k))
                .collect();
            let whose = if remote {
                format!("user CA of trusted cluster {}; the trust is enabled", id.cluster)
            } else {
                "this cluster's own user CA".to_string()
            };
            b.pass("signing CA", vec![whose, format!("keys: {}", list(&fps))]);
        }
        (Trust::Disabled, _) => {
            b.fail(
                "signing CA",
                vec![format!("user CA of cluster {}: the trust is disabled", id.cluster)],
                format!("set enabled: true in trusted_cluster {:?} on {here} ('tctl edit trusted_cluster/{}')", id.cluster, id.cluster),
            );
            return finish(b, out, false);
        }
        _ => {
            b.fail(
                "signing CA",
                vec![format!("cluster {} is not trusted by {here}", id.cluster)],
                format!("join {here} to {} with a trusted_cluster resource ('tctl create trusted_cluster.yaml' on {here})", id.cluster),
            );
            return finish(b, out, false);
        }
    }

    // 3. Roles: mapped for a root's user (the node's own steps, `decide`).
    let Some(ca) = ca else { return finish(b, out, false) };
    let mapped = decide::map(bundle, ca, id);
    match (&mapped, remote) {
        (Err(Refusal::RoleMap(e)), _) => {
            b.fail(
                "role map",
                vec![e.clone()],
                format!("correct the role_map of trusted_cluster {:?} ('tctl edit trusted_cluster/{}')", id.cluster, id.cluster),
            );
            return finish(b, out, false);
        }
        (Ok(RolesHere { map: Some(map), .. }) | Err(Refusal::NoRolesMapped(map)), true) => {
            let mut details = vec![format!("remote roles: {}", list(&id.roles))];
            if q.show_rules {
                for m in map.explain(&id.roles) {
                    let local = list(&m.local);
                    details.push(if m.matched.is_empty() {
                        format!("remote {:?} -> [{local}]: no match", m.remote)
                    } else {
                        format!("remote {:?} -> [{local}]: matched {} -> {}", m.remote, list(&m.matched), list(&m.produced))
                    });
                }
            }
            details.push(format!("mapped roles: {}", list(&map.map(&id.roles))));
            if mapped.is_ok() {
                b.pass("role map", details);
            } else {
                b.fail(
                    "role map",
                    details,
                    format!(
                        "add a role_map entry for one of [{}] to trusted_cluster {:?} on {here} ('tctl edit trusted_cluster/{}'; check it with 'tctl map-roles --cluster={} {}')",
                        id.roles.join(", "),
                        id.cluster,
                        id.cluster,
                        id.cluster,
                        id.roles.first().map(String::as_str).unwrap_or("<role>")
                    ),
                );
                return finish(b, out, false);
            }
        }
        _ => b.info("roles", vec![format!("roles: {}", list(&id.roles))]),
    }
    let Ok(mapped) = mapped else { return finish(b, out, false) };

    // 4. The roles must exist here.
    let roles_here = match decide::load(bundle, &mapped.names) {
        Ok(roles) => RolesHere { roles, ..mapped },
        Err(name) => {
            b.fail(
                "roles here",
                vec![format!("role {name:?} is not found in cluster {here}")],
                format!("create role {name:?} on {here} ('tctl create role.yaml'), or map to a role that exists"),
            );
            return finish(b, out, false);
        }
    };
    let role_names = &roles_here.names;

    // 5. The node.
    let Some(node) = q.node else {
        b.fail(
            "node",
            vec![format!("no node {:?} that these roles may see in cluster {here}", q.node_query)],
            format!("check the name with 'tsh ls --cluster={here}'"),
        );
        return finish(b, out, false);
    };
    b.info("node", vec![format!("{} ({})", node.hostname, node.name), format!("labels: {}", describe_label_map(&node.labels))]);

    // 6. Each role's allow and deny rules; the verdict is the node's (`decide::rules`).
    let checker = AccessChecker::new(&roles_here.roles, &roles_here.traits);
    let checks = checker.explain_node_login(&node.labels, q.login);
    for c in &checks {
        role_step(&mut b, c, q.login, q.show_rules);
    }
    let denied_by: Vec<String> = checks.iter().filter(|c| c.denies()).map(|c| c.role.clone()).collect();
    let allowed_by: Vec<String> = checks.iter().filter(|c| c.allows()).map(|c| c.role.clone()).collect();
    let rbac_ok = decide::rules(&roles_here, &node.labels, q.login).is_ok();
    debug_assert_eq!(rbac_ok, denied_by.is_empty() && !allowed_by.is_empty(), "the per-role story and the node's verdict agree");
    if !rbac_ok {
        let (detail, fix) = if !denied_by.is_empty() {
            (
                format!("denied by {} (deny rules always win)", list(&denied_by)),
                format!("remove the matching deny rule from {} on {here}, or use another login", list(&denied_by)),
            )
        } else {
            (
                format!("no role allows {:?} on a node with labels {}", q.login, describe_label_map(&node.labels)),
                format!(
                    "give one of [{}] on {here} both node_labels matching {} and {:?} in allow.logins",
                    list(role_names),
                    describe_label_map(&node.labels),
                    q.login
                ),
            )
        };
        b.fail("verdict", vec![detail, shared::rbac::NODE_DENIED.into()], fix);
        return finish(b, out, false);
    }

    // 7. Locks.
    let to = decide::Target { login: q.login, server_id: &node.name, node_name: &node.hostname };
    if let Some(lock) = decide::lock(bundle, id, role_names, &[], &to, None, now) {
        b.fail("locks", vec![lock], "remove the lock when it no longer applies ('tctl rm lock/<name>')".into());
        return finish(b, out, false);
    }
    b.pass("locks", vec!["no lock applies".into()]);
    b.pass("verdict", vec![format!("allowed by {}", list(&allowed_by))]);
    finish(b, out, true)
}

fn role_step(b: &mut Builder, c: &RoleLoginCheck, login: &str, show_rules: bool) {
    let check = format!("role {}", c.role);
    let verdict = if c.denies() {
        "denies this login"
    } else if c.allows() {
        "allows this login"
    } else {
        "grants nothing here"
    };
    let mut details = Vec::new();
    if show_rules {
        let yes = |m: bool| if m { "matches" } else { "does not match" };
        let has = |m: bool| if m { "lists" } else { "does not list" };
        details.push(format!("allow.node_labels {}: {} the node", c.allow_node_labels, yes(c.allow_labels)));
        details.push(format!("allow.logins [{}]: {} {login:?}", c.allow_logins.join(", "), has(c.allow_login)));
        if c.deny_node_labels != "none" {
            details.push(format!("deny.node_labels {}: {} the node", c.deny_node_labels, yes(c.deny_labels)));
        }
        if !c.deny_logins.is_empty() {
            details.push(format!("deny.logins [{}]: {} {login:?}", c.deny_logins.join(", "), has(c.deny_login)));
        }
    } else {
        details.push("(its rules are not shown: your roles may not read roles here)".into());
    }
    details.push(verdict.into());
    let ok = if c.denies() {
        Some(false)
    } else if c.allows() {
        Some(true)
    } else {
        None
    };
    b.steps.push(ExplainStep { check, ok, details, fix: None });
}

/// The root's part: may the identity reach leaf `cluster` with `labels` (`cluster_labels`)?
pub fn explain_cluster(root: &str, id: &ExplainIdentity, checker: &AccessChecker, cluster: &str, labels: Option<&LabelMap>) -> Explanation {
    let mut b = Builder { steps: Vec::new() };
    let mut out = Explanation { cluster: root.into(), identity: id.clone(), ..Default::default() };
    let Some(labels) = labels else {
        b.fail(
            "cluster",
            vec![format!("{cluster:?} is not a leaf of {root} that these roles may see")],
            "check the name with 'tsh clusters'".into(),
        );
        out.steps = b.steps;
        return out;
    };
    let mut details = vec![format!("leaf {cluster} labels: {}", describe_label_map(labels))];
    let checks = checker.explain_cluster(labels);
    for c in &checks {
        let word = |m: bool| if m { "matches" } else { "does not match" };
        let mut line = if c.allow == "none" {
            format!("role {}: no allow.cluster_labels", c.role)
        } else {
            format!("role {}: allow.cluster_labels {} {}", c.role, c.allow, word(c.allow_match))
        };
        if c.deny != "none" {
            line.push_str(&format!("; deny.cluster_labels {} {}", c.deny, word(c.deny_match)));
        }
        details.push(line);
    }
    if labels.is_empty() && checks.iter().all(|c| c.allow == "none" && c.deny == "none") {
        details.push("no role sets cluster_labels and the leaf has no labels: every user of the root may reach it".into());
    }
    out.allowed = checker.check_cluster(labels).is_ok();
    if out.allowed {
        b.pass("cluster_labels on the root", details);
    } else {
        b.fail(
            "cluster_labels on the root",
            details,
            format!(
                "on {root}, give one of [{}] cluster_labels matching {} (or label the leaf: 'tctl update rc/{cluster} --set-labels=...')",
                checker.role_names().join(", "),
                describe_label_map(labels)
            ),
        );
    }
    out.steps = b.steps;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::identity::user_from_ssh_cert;
    use shared::resource::RoleMapping;

    use crate::node::authz::authorize;
    use crate::node::authz::tests::{cert, world};

    fn identity_of(c: &russh::keys::ssh_key::Certificate, cluster: &str) -> ExplainIdentity {
        ExplainIdentity::of(&user_from_ssh_cert(c).unwrap(), cluster)
    }

    /// Every combination of issuer, roles, principals, login and node labels: the explanation's
    /// verdict is the node's.
    #[test]
    fn the_explanation_agrees_with_the_node() {
        let maps = [
            vec![],
            vec![RoleMapping { remote: "admin".into(), local: vec!["stage-access".into()] }],
            vec![RoleMapping { remote: "*".into(), local: vec!["visitor".into()] }],
            vec![RoleMapping { remote: "dev".into(), local: vec!["missing".into()] }],
        ];
        let role_sets: [&[&str]; 4] = [&["admin"], &["dev"], &["access"], &["admin", "access"]];
        let login_sets: [&[&str]; 3] = [&["visitor"], &["root", "visitor"], &["root"]];
        let label_sets =
            [LabelMap::new(), [("env".to_string(), "stage".to_string())].into(), [("env".to_string(), "prod".to_string())].into()];
        let now = OffsetDateTime::now_utc();
        let mut cases = 0;
        for map in &maps {
            let w = world(map.clone());
            for (ca, cluster) in [(&w.root_ca, "root"), (&w.leaf_ca, "leaf")] {
                for roles in role_sets {
                    for logins in login_sets {
                        let c = cert(ca, "alice", roles, logins, 600);
                        let id = identity_of(&c, cluster);
                        for labels in &label_sets {
                            for login in ["visitor", "root"] {
                                let node = NodeInfo { hostname: "n".into(), name: "uuid".into(), labels: labels.clone() };
                                let q =
                                    Question { login, node_query: "n", node: Some(&node), id: &id, trust: Trust::Active, show_rules: true };
                                let ex = explain(&w.bundle, &q, now);
                                let real = authorize(&w.bundle, labels, login, &c, now);
                                assert_eq!(ex.allowed, real.is_ok(), "{map:?} {cluster} {roles:?} {logins:?} {labels:?} {login}: {ex:#?}");
                                assert_eq!(ex.steps.last().and_then(|s| s.ok), Some(ex.allowed));
                                if !ex.allowed {
                                    assert!(ex.steps.iter().any(|s| s.fix.is_some()), "a refusal names a fix: {ex:#?}");
                                }
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 500);
    }

    #[test]
    fn steps_name_the_rule_and_hide_rules_from_those_who_may_not_read_them() {
        let w = world(vec![RoleMapping { remote: "admin".into(), local: vec!["stage-access".into()] }]);
        let c = cert(&w.root_ca, "alice", &["admin"], &["visitor"], 600);
        let id = identity_of(&c, "root");
        let node = NodeInfo { hostname: "prod-node".into(), name: "u1".into(), labels: [("env".to_string(), "prod".to_string())].into() };
        let mut q =
            Question { login: "visitor", node_query: "prod-node", node: Some(&node), id: &id, trust: Trust::Active, show_rules: true };
        let ex = explain(&w.bundle, &q, OffsetDateTime::now_utc());
        assert!(!ex.allowed);
        let text = serde_json::to_string(&ex).unwrap();
        assert!(text.contains(r#"remote \"admin\" -> [stage-access]: matched admin -> stage-access"#), "{text}");
        assert!(text.contains("allow.node_labels {env: stage}: does not match the node"), "{text}");
        q.show_rules = false;
        let hidden = serde_json::to_string(&explain(&w.bundle, &q, OffsetDateTime::now_utc())).unwrap();
        assert!(!hidden.contains("remote \\\"admin\\\""), "{hidden}");
        assert!(!hidden.contains("env: stage"), "{hidden}");
        assert!(hidden.contains("your roles may not read roles here"), "{hidden}");
        q.trust = Trust::Disabled;
        let off = explain(&w.bundle, &q, OffsetDateTime::now_utc());
        assert_eq!(off.steps.last().unwrap().check, "signing CA");
        assert!(off.steps.last().unwrap().fix.as_deref().unwrap().contains("enabled: true"));
    }
}
