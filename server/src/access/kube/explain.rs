//! `tsh access explain --kube=<name>`: why a Kubernetes cluster is reachable or not, answered by
//! the cluster that owns it, with the same checker methods the engine decides with
//! (`kubernetes_labels`, `kubernetes_users`/`_groups`, `kubernetes_resources`).

use shared::api::{ExplainIdentity, ExplainStep, Explanation};
use shared::rbac::{AccessChecker, describe_label_map, describe_labels};
use shared::resource::LabelMap;

fn step(check: &str, ok: Option<bool>, details: Vec<String>, fix: Option<String>) -> ExplainStep {
    ExplainStep { check: check.into(), ok, details, fix }
}

/// Explains `id`'s access to Kubernetes cluster `kube` of `cluster`. `checker` is their roles
/// here (`Err`: why they have none); `labels` the cluster's, when it is registered here;
/// `show_rules` whether the caller may see the roles' selectors.
pub fn explain_kube(
    cluster: &str,
    id: &ExplainIdentity,
    checker: Result<&AccessChecker, String>,
    kube: &str,
    labels: Option<&LabelMap>,
    show_rules: bool,
) -> Explanation {
    let mut out = Explanation { cluster: cluster.into(), identity: id.clone(), node: kube.into(), ..Default::default() };
    let mut steps = Vec::new();
    let checker = match checker {
        Ok(c) => {
            steps.push(step(
                "roles here",
                Some(true),
                vec![format!("{} (of {}) gets: {}", id.user, id.cluster, c.role_names().join(", "))],
                None,
            ));
            c
        }
        Err(why) => {
            let fix = if id.cluster == cluster {
                "give the user a role here".to_string()
            } else {
                format!("map one of their roles of {} in this cluster's trusted_cluster role_map", id.cluster)
            };
            steps.push(step("roles here", Some(false), vec![why], Some(fix)));
            out.steps = steps;
            return out;
        }
    };
    let Some(labels) = labels else {
        steps.push(step(
            "kubernetes cluster",
            Some(false),
            vec![format!("{kube:?} is not registered in {cluster}")],
            Some(format!("check the name with 'tsh kube ls --cluster={cluster}'; its kubernetes_service must be running")),
        ));
        out.steps = steps;
        return out;
    };
    steps.push(step("kubernetes cluster", Some(true), vec![format!("{kube} labels: {}", describe_label_map(labels))], None));
    let mut details = Vec::new();
    if show_rules {
        for r in checker.roles() {
            details.push(format!(
                "role {}: allow.kubernetes_labels {}; deny.kubernetes_labels {}",
                r.metadata.name,
                describe_labels(r.spec.allow.kubernetes_labels.as_ref()),
                describe_labels(r.spec.deny.kubernetes_labels.as_ref())
            ));
        }
    }
    let reach = checker.check_kube_cluster(labels).is_ok();
    let fix = (!reach)
        .then(|| format!("give one of [{}] kubernetes_labels matching {}", checker.role_names().join(", "), describe_label_map(labels)));
    steps.push(step("kubernetes_labels", Some(reach), details, fix));
    if reach {
        let users = checker.kubernetes_users(Some(labels));
        let groups = checker.kubernetes_groups(Some(labels));
        let ok = !users.is_empty() || !groups.is_empty();
        let user = match users.as_slice() {
            [] => format!(
                "the Teleport user name ({})",
                if id.cluster == cluster { id.user.clone() } else { format!("remote-{}-{}", id.user, id.cluster) }
            ),
            [one] => one.clone(),
            many => format!("one of {} with kubectl --as (several are allowed)", many.join(", ")),
        };
        let details = vec![
            format!("kubernetes_users: {}", if users.is_empty() { "none".into() } else { users.join(", ") }),
            format!("kubernetes_groups: {}", if groups.is_empty() { "none".into() } else { groups.join(", ") }),
            format!(
                "sent to the API server as user {user} with groups {} plus system:authenticated",
                if groups.is_empty() { "none".into() } else { groups.join(", ") }
            ),
        ];
        let fix = (!ok).then(|| {
            if id.cluster == cluster {
                "set kubernetes_groups or kubernetes_users on one of these roles".to_string()
            } else {
                format!(
                    "set kubernetes_groups or kubernetes_users on one of these roles, e.g. ['{{{{internal.kubernetes_groups}}}}'] with the groups on their roles of {}",
                    id.cluster
                )
            }
        });
        steps.push(step("kubernetes users and groups", Some(ok), details, fix));
        let (allow, deny) = checker.kube_resources(labels);
        let show = |v: &[shared::kube::KubeResource]| {
            v.iter()
                .map(|r| {
                    format!("{} {}/{} [{}]", r.kind, if r.namespace.is_empty() { "*" } else { &r.namespace }, r.name, r.verbs.join(","))
                })
                .collect::<Vec<_>>()
        };
        let mut d = vec![format!("allowed: {}", show(&allow).join("; "))];
        if !deny.is_empty() {
            d.push(format!("denied: {}", show(&deny).join("; ")));
        }
        steps.push(step("kubernetes_resources (checked on every request)", None, d, None));
    }
    out.allowed = steps.iter().all(|s| s.ok != Some(false));
    out.steps = steps;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resource::Role;

    fn role(yaml: &str) -> Role {
        let mut r: Role = serde_yaml_ng::from_str(yaml).unwrap();
        r.check_and_set_defaults().unwrap();
        r
    }

    #[test]
    fn says_which_check_fails_and_the_fix() {
        let id = ExplainIdentity { user: "alice".into(), cluster: "root".into(), ..Default::default() };
        let mut labels = LabelMap::new();
        labels.insert("region".into(), "east".into());
        let no_groups = role("kind: role\nversion: v7\nmetadata: {name: kube-admin}\nspec:\n  allow:\n    kubernetes_labels: {'*': '*'}\n");
        let c = AccessChecker::new(&[no_groups], &Default::default());
        let e = explain_kube("east", &id, Ok(&c), "east", Some(&labels), true);
        assert!(!e.allowed);
        let failed = e.steps.iter().find(|s| s.ok == Some(false)).unwrap();
        assert_eq!(failed.check, "kubernetes users and groups");
        assert!(failed.fix.as_ref().unwrap().contains("internal.kubernetes_groups"), "{failed:?}");
        let good = role(
            "kind: role\nversion: v7\nmetadata: {name: kube-admin}\nspec:\n  allow:\n    kubernetes_labels: {region: east}\n    kubernetes_groups: [viewers]\n",
        );
        let c = AccessChecker::new(&[good], &Default::default());
        let e = explain_kube("east", &id, Ok(&c), "east", Some(&labels), true);
        assert!(e.allowed, "{e:?}");
        assert!(e.steps.iter().any(|s| s.details.iter().any(|d| d.contains("remote-alice-root"))), "{e:?}");
        let mut west = LabelMap::new();
        west.insert("region".into(), "west".into());
        let e = explain_kube("west", &id, Ok(&c), "west", Some(&west), true);
        assert_eq!(e.steps.iter().find(|s| s.ok == Some(false)).unwrap().check, "kubernetes_labels");
        let e = explain_kube("east", &id, Err("no roles mapped".into()), "east", Some(&labels), true);
        assert_eq!(e.steps[0].ok, Some(false));
        let e = explain_kube("east", &id, Ok(&c), "nope", None, true);
        assert_eq!(e.steps[1].check, "kubernetes cluster");
    }
}
