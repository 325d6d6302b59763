//! The client half of `access explain`, shared by `tsh` and `tctl`: ask the root whether the
//! leaf may be reached (`cluster_labels`), then the cluster that owns the node why the login is
//! allowed or denied, and print both.

use serde::Serialize;

use crate::api::{ExplainIdentity, ExplainRequest, Explanation, path};
use crate::client::ApiClient;
use crate::error::Result;

/// Everything the clusters answered, the node's cluster first.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The verdict: every part allows it.
    pub allowed: bool,
    /// Each cluster's explanation.
    pub explanations: Vec<Explanation>,
}

/// Explains `login@node` in `cluster` (or, with `kube`, access to that Kubernetes cluster of
/// `cluster`). `root` is the cluster signed in to; `user` names someone else (admins).
/// `leaf_api` is called only when the root lets the identity reach it.
#[allow(clippy::too_many_arguments)]
pub async fn explain<F>(
    root: &ApiClient,
    root_name: &str,
    cluster: &str,
    login: &str,
    node: &str,
    kube: Option<&str>,
    user: Option<&str>,
    leaf_api: F,
) -> Result<Report>
where
    F: FnOnce() -> Result<ApiClient>,
{
    let ask = |user: Option<&str>, as_identity: Option<ExplainIdentity>, cluster: Option<&str>| ExplainRequest {
        login: login.into(),
        node: node.into(),
        user: user.map(str::to_string),
        as_identity,
        cluster: cluster.map(str::to_string),
        kube_cluster: kube.map(str::to_string),
    };
    if cluster == root_name {
        let ex: Explanation = root.post(path::ACCESS_EXPLAIN, &ask(user, None, None)).await?;
        return Ok(Report { allowed: ex.allowed, explanations: vec![ex] });
    }
    let at_root: Explanation = root.post(path::ACCESS_EXPLAIN, &ask(user, None, Some(cluster))).await?;
    if !at_root.allowed {
        return Ok(Report { allowed: false, explanations: vec![at_root] });
    }
    // Someone else: the leaf is told who they are at the root (it grants nothing; it explains).
    let as_identity = user.map(|_| at_root.identity.clone());
    let at_leaf: Explanation = leaf_api()?.post(path::ACCESS_EXPLAIN, &ask(None, as_identity, None)).await?;
    Ok(Report { allowed: at_leaf.allowed && at_root.allowed, explanations: vec![at_leaf, at_root] })
}

/// The report as text: a verdict line, then each check with what was found and the fix.
pub fn render(r: &Report, login: &str, node: &str, cluster: &str) -> String {
    let mut s = String::new();
    let who = r.explanations.first().map(|e| format!("{} (of {})", e.identity.user, e.identity.cluster)).unwrap_or_default();
    let what = if login.is_empty() { format!("kubernetes cluster {node}") } else { format!("{login}@{node}") };
    s.push_str(&format!("{what} on cluster {cluster} for {who}: {}\n", if r.allowed { "ALLOWED" } else { "DENIED" }));
    for e in &r.explanations {
        s.push_str(&format!("\nChecked by {}:\n", e.cluster));
        for (i, step) in e.steps.iter().enumerate() {
            let mark = match step.ok {
                Some(true) => "ok",
                Some(false) => "FAIL",
                None => "--",
            };
            s.push_str(&format!("  {:>2}. [{mark:<4}] {}\n", i + 1, step.check));
            for d in &step.details {
                s.push_str(&format!("               {d}\n"));
            }
            if let Some(fix) = &step.fix {
                s.push_str(&format!("               fix: {fix}\n"));
            }
        }
    }
    s
}

/// Splits `login@node` as tsh ssh does.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let (login, node) = target.rsplit_once('@')?;
    (!login.is_empty() && !node.is_empty()).then_some((login, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ExplainStep;

    #[test]
    fn text_names_each_check_and_the_fix() {
        let step = |check: &str, ok: Option<bool>, fix: Option<&str>| ExplainStep {
            check: check.into(),
            ok,
            details: vec!["found".into()],
            fix: fix.map(str::to_string),
        };
        let r = Report {
            allowed: false,
            explanations: vec![Explanation {
                cluster: "leaf".into(),
                identity: ExplainIdentity { user: "alice".into(), cluster: "root".into(), ..Default::default() },
                steps: vec![step("certificate", Some(true), None), step("role map", Some(false), Some("add an entry"))],
                ..Default::default()
            }],
        };
        let text = render(&r, "visitor", "n1", "leaf");
        assert!(text.starts_with("visitor@n1 on cluster leaf for alice (of root): DENIED\n"), "{text}");
        assert!(text.contains("   1. [ok  ] certificate\n"), "{text}");
        assert!(text.contains("   2. [FAIL] role map\n               found\n               fix: add an entry\n"), "{text}");
        assert_eq!(split_target("visitor@n1"), Some(("visitor", "n1")));
        assert_eq!(split_target("n1"), None);
    }
}
