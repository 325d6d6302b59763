//! `tsh status [-f json|yaml]` (reference §7.3).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use shared::output::Format;
use shared::profile::{Credentials, Profile, ProfileStore};

use super::{Global, parse_format};
use crate::context::{Session, valid_until};

/// Show the signed-in user.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (from the guide):\n  tsh status -f json | jq -r '.active.roles | join(\",\")'")]
pub struct Args {
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

/// One profile in JSON/YAML.
#[derive(Debug, Serialize)]
pub struct ProfileInfo {
    profile_url: String,
    username: String,
    cluster: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "shared::template::Traits::is_empty")]
    traits: shared::template::Traits,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logins: Vec<String>,
    kubernetes_enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubernetes_users: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubernetes_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    active_requests: Vec<String>,
    valid_until: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<String>,
}

/// The roles a leaf gives the user, as the leaf says (its role map, its truth).
#[derive(Debug, Serialize)]
pub struct LeafRoles {
    cluster: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ActiveOut {
    #[serde(flatten)]
    info: ProfileInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    leaf_clusters: Vec<LeafRoles>,
    /// Leaves not asked (beyond the first few; `--cluster=LEAF` asks one).
    #[serde(skip_serializing_if = "is_zero")]
    leaf_clusters_not_asked: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
struct StatusOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<ActiveOut>,
    profiles: Vec<ProfileInfo>,
}

/// At most this many leaves are asked for their roles: `tsh status` is a quick look at who you
/// are, and a root with 10,000 leaves made it a 41-second one.
const LEAVES_ASKED: usize = 16;

/// Which leaves `tsh status` asks, and how many it leaves out: `--cluster=LEAF` alone when
/// given, else up to `cap` of them, online ones first, in the root's order.
fn leaves_to_ask(clusters: Vec<shared::api::ClusterInfo>, only: Option<&str>, cap: usize) -> (Vec<String>, usize) {
    let mut leaves: Vec<shared::api::ClusterInfo> = clusters.into_iter().filter(|c| c.cluster_type == "leaf").collect();
    if let Some(only) = only {
        leaves.retain(|c| c.cluster_name == only);
    }
    leaves.sort_by_key(|c| c.status != shared::resource::cluster::STATUS_ONLINE);
    let left_out = leaves.len().saturating_sub(cap);
    (leaves.into_iter().take(cap).map(|c| c.cluster_name).collect(), left_out)
}

/// Asks visible leaves which roles they map this user to (in parallel, a few seconds each), and
/// says how many it did not ask.
async fn leaf_roles(session: &mut Session, only: Option<&str>) -> (Vec<LeafRoles>, usize) {
    if crate::context::valid_until(&session.creds) <= time::OffsetDateTime::now_utc() {
        return (vec![], 0);
    }
    let Ok(clusters) = session.visible_clusters().await else { return (vec![], 0) };
    let (leaves, left_out) = leaves_to_ask(clusters, only, LEAVES_ASKED);
    let answers = session
        .per_cluster(&leaves, Duration::from_secs(5), |api| async move { api.get::<shared::api::WhoAmI>(shared::api::path::WHOAMI).await })
        .await;
    let roles = answers
        .into_iter()
        .map(|(cluster, r)| LeafRoles { cluster, roles: r.clone().map(|w| w.roles).unwrap_or_default(), error: r.err() })
        .collect();
    (roles, left_out)
}

/// Logins worth showing (internal principals hidden).
fn logins(creds: &Credentials) -> Vec<String> {
    creds.ssh_cert.valid_principals().iter().filter(|p| !p.starts_with('-')).cloned().collect()
}

fn info(p: &Profile, c: &Credentials) -> ProfileInfo {
    let id = shared::identity::user_from_ssh_cert(&c.ssh_cert).ok();
    // Kubernetes users and groups are in the X.509 certificate only.
    let kube = c.user_identity();
    ProfileInfo {
        profile_url: format!("https://{}", p.web_proxy_addr),
        username: p.username.clone(),
        cluster: p.site.clone(),
        roles: id.as_ref().map(|i| i.roles.clone()).unwrap_or_default(),
        traits: id.map(|i| i.traits).unwrap_or_default(),
        logins: logins(c),
        kubernetes_enabled: true,
        kubernetes_users: kube.as_ref().map(|k| k.kubernetes_users.clone()).unwrap_or_default(),
        kubernetes_groups: kube.as_ref().map(|k| k.kubernetes_groups.clone()).unwrap_or_default(),
        active_requests: kube.map(|k| k.active_requests).unwrap_or_default(),
        valid_until: shared::timefmt::rfc3339(valid_until(c)),
        extensions: c.ssh_cert.extensions().keys().filter(|k| k.starts_with("permit-")).cloned().collect(),
    }
}

/// Prints a profile as text (also after `tsh login`).
pub fn print_text(out: &mut dyn Write, p: &Profile, c: &Credentials, active: bool) -> anyhow::Result<()> {
    let i = info(p, c);
    let until = valid_until(c);
    let now = time::OffsetDateTime::now_utc();
    let left = if until > now {
        format!("valid for {}", shared::timefmt::go_duration(Duration::from_secs((until - now).whole_seconds().max(0) as u64)))
    } else {
        "EXPIRED".into()
    };
    let mark = if active { "> " } else { "  " };
    writeln!(out, "{mark}Profile URL:        {}", i.profile_url)?;
    writeln!(out, "  Logged in as:       {}", i.username)?;
    writeln!(out, "  Cluster:            {}", i.cluster)?;
    writeln!(out, "  Roles:              {}", i.roles.join(", "))?;
    writeln!(out, "  Logins:             {}", i.logins.join(", "))?;
    writeln!(out, "  Kubernetes:         enabled")?;
    if !i.kubernetes_users.is_empty() {
        writeln!(out, "  Kubernetes users:   {}", i.kubernetes_users.join(", "))?;
    }
    if !i.kubernetes_groups.is_empty() {
        writeln!(out, "  Kubernetes groups:  {}", i.kubernetes_groups.join(", "))?;
    }
    if !i.active_requests.is_empty() {
        writeln!(out, "  Active requests:    {}", i.active_requests.join(", "))?;
    }
    writeln!(out, "  Valid until:        {} [{left}]", shared::timefmt::go_time(until))?;
    writeln!(out, "  Extensions:         {}", i.extensions.join(", "))?;
    writeln!(out)?;
    Ok(())
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = ProfileStore::from_env();
    let mut active = Session::load(g)?;
    let only = g.cluster.as_deref().filter(|c| !c.is_empty() && *c != active.profile.cluster);
    let (leaves, not_asked) = leaf_roles(&mut active, only).await;
    let others: Vec<(Profile, Credentials)> =
        store.names().into_iter().filter(|n| Some(n) != active.name.as_ref()).filter_map(|n| store.load(&n).ok()).collect();
    match a.format {
        Format::Text => {
            print_text(out, &active.profile, &active.creds, true)?;
            if !leaves.is_empty() {
                writeln!(out, "  Roles in leaf clusters (as each leaf maps you):")?;
                for l in &leaves {
                    match &l.error {
                        None => writeln!(
                            out,
                            "    {:<30} {}",
                            l.cluster,
                            if l.roles.is_empty() { "(none)".to_string() } else { l.roles.join(", ") }
                        )?,
                        Some(e) => writeln!(out, "    {:<30} unknown: {e}", l.cluster)?,
                    }
                }
                if not_asked > 0 {
                    writeln!(out, "    ... and {not_asked} more (tsh status --cluster=<leaf> asks one of them)")?;
                }
                writeln!(out)?;
            }
            for (p, c) in &others {
                print_text(out, p, c, false)?;
            }
        }
        f => {
            let s = StatusOut {
                active: Some(ActiveOut {
                    info: info(&active.profile, &active.creds),
                    leaf_clusters: leaves,
                    leaf_clusters_not_asked: not_asked,
                }),
                profiles: others.iter().map(|(p, c)| info(p, c)).collect(),
            };
            if f == Format::Json { write!(out, "{}", shared::output::json(&s))? } else { write!(out, "{}", shared::output::yaml(&s))? }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, status: &str, kind: &str) -> shared::api::ClusterInfo {
        shared::api::ClusterInfo {
            cluster_name: name.into(),
            status: status.into(),
            cluster_type: kind.into(),
            labels: None,
            selected: false,
        }
    }

    #[test]
    fn status_asks_a_few_leaves_online_first_or_the_one_named() {
        let all = || {
            vec![
                cluster("root", "online", "root"),
                cluster("a", "offline", "leaf"),
                cluster("b", "online", "leaf"),
                cluster("c", "online", "leaf"),
                cluster("d", "offline", "leaf"),
            ]
        };
        assert_eq!(leaves_to_ask(all(), None, 16), (vec!["b".into(), "c".into(), "a".into(), "d".into()], 0));
        assert_eq!(leaves_to_ask(all(), None, 3), (vec!["b".into(), "c".into(), "a".into()], 1));
        assert_eq!(leaves_to_ask(all(), Some("d"), 3), (vec!["d".into()], 0));
        assert_eq!(leaves_to_ask(all(), Some("nope"), 3), (vec![], 0));
    }
}
