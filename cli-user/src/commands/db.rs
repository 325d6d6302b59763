//! `tsh db ls` (reference `kube-app-db.md` §4.3): the databases of the root and its leaves the
//! user may reach, with the users they may connect as, as the cluster that owns each decides (a
//! leaf: the roles its role map gives the user). Logging in and connecting come next.

use std::io::Write;

use anyhow::bail;
use shared::api::{DbListing, path};
use shared::output::table;

use super::{Global, parse_format};
use crate::context::Session;
use shared::output::Format;

/// Databases.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the databases you can reach.
    #[command(after_help = "Examples:\n  tsh db ls\n  tsh db ls --cluster=leaf.example.com\n  tsh db ls --all -f json")]
    Ls(LsArgs),
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The databases of the root and of every leaf you may see.
    #[arg(short = 'R', long)]
    all: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
    /// Also show each database's protocol and URI.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Ls(a) => ls(a, g, out, err).await,
    }
}

fn users_text(l: &DbListing) -> String {
    if l.users.is_empty() { "(none)".into() } else { format!("[{}]", l.users.join(" ")) }
}

fn row(l: &DbListing, cluster: &str, root: &str, verbose: bool) -> Vec<String> {
    let d = &l.db;
    let labels = d.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let flag = if cluster == root { String::new() } else { format!("--cluster={cluster} ") };
    let mut r = vec![d.metadata.name.clone(), d.metadata.description.clone().unwrap_or_default()];
    if verbose {
        r.push(d.spec.protocol.clone());
        r.push(d.spec.uri.clone());
    }
    r.push(users_text(l));
    r.push(labels);
    r.push(format!("tsh db connect {flag}{}", d.metadata.name));
    r
}

fn json_of(l: &DbListing) -> serde_json::Value {
    let mut v = serde_json::to_value(&l.db).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("users".into(), serde_json::json!({"allowed": l.users}));
        m.insert("names".into(), serde_json::json!({"allowed": l.names}));
    }
    v
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let root = session.profile.cluster.clone();
    let mut head = vec!["Name", "Description"];
    if a.verbose {
        head.extend(["Protocol", "URI"]);
    }
    head.extend(["Allowed Users", "Labels", "Connect"]);
    let clusters = if a.all {
        session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect()
    } else {
        vec![session.resolve_target(g, err).await?]
    };
    let answers = session
        .per_cluster(&clusters, std::time::Duration::from_secs(10), |api| async move { api.get::<Vec<DbListing>>(path::DBS).await })
        .await;
    let (mut rows, mut json) = (Vec::new(), Vec::new());
    for (cluster, r) in answers {
        match r {
            Ok(list) => {
                for l in list {
                    let mut line = if a.all { vec![session.profile.web_proxy_addr.clone(), cluster.clone()] } else { vec![] };
                    line.extend(row(&l, &cluster, &root, a.verbose));
                    rows.push(line);
                    let mut v = json_of(&l);
                    if a.all
                        && let Some(m) = v.as_object_mut()
                    {
                        m.insert("cluster".into(), serde_json::json!(cluster));
                    }
                    json.push(v);
                }
            }
            Err(e) if !a.all => bail!("{e}"),
            Err(e) => writeln!(err, "WARNING: cluster {cluster}: {e}")?,
        }
    }
    let mut all_head = if a.all { vec!["Proxy", "Cluster"] } else { vec![] };
    all_head.extend(head);
    match a.format {
        Format::Json => write!(out, "{}", shared::output::json(&json))?,
        Format::Yaml => write!(out, "{}", shared::yaml::to_yaml_stream(&json))?,
        Format::Text => write!(out, "{}", table(&all_head, &rows))?,
    }
    Ok(())
}
