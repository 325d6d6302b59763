//! `tsh ls [--cluster=C | -R/--all] [-v] [-f text|json|yaml|names] [k=v ...]` (reference §7.2).

use std::io::Write;

use anyhow::anyhow;
use shared::api::path;
use shared::output::table;
use shared::resource::{Node, format_labels};

use super::Global;
use crate::context::Session;

/// List nodes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (from the guide):\n  tsh ls --cluster=leafcluster.example.com\n  tsh ls env=stage -f json\n  tsh ls --all                 # the root and every leaf you may see, with a Cluster column"
)]
pub struct Args {
    /// List the nodes of the root and of every visible leaf (offline leaves are reported, not fatal).
    #[arg(short = 'R', long)]
    all: bool,
    /// Also show node IDs.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format: text, json, yaml or names.
    #[arg(short = 'f', long, default_value = "text")]
    format: String,
    /// Only nodes with these labels (k=v).
    labels: Vec<String>,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let format = a.format.to_ascii_lowercase();
    if !["text", "json", "yaml", "names"].contains(&format.as_str()) {
        return Err(anyhow!("unsupported format {:?}; use one of: text, json, yaml, names", a.format));
    }
    for l in &a.labels {
        if !l.contains('=') {
            return Err(anyhow!("invalid label filter {l:?}: use key=value"));
        }
    }
    let mut session = Session::load(g)?;
    session.require_valid()?;
    if a.all {
        return all_clusters(a, &mut session, &format, out, err).await;
    }
    let cluster = session.resolve_target(g, err).await?;
    let api = session.cluster_api(&cluster)?;
    let filter = a.labels.join(",");
    let url = if filter.is_empty() {
        path::NODES.to_string()
    } else {
        format!("{}?labels={}", path::NODES, shared::client::encode_segment(&filter))
    };
    let (cluster, nodes): (String, Vec<Node>) = match api.get(&url).await {
        Ok(n) => (cluster, n),
        Err(e) => match session.fallback_to_root(g, &cluster, &e, err) {
            Some(root) => {
                let n = session.cluster_api(&root)?.get(&url).await?;
                (root, n)
            }
            None => return Err(e.into()),
        },
    };
    match format.as_str() {
        "json" => write!(out, "{}", shared::output::json(&nodes))?,
        "yaml" => {
            write!(out, "{}", shared::yaml::to_yaml_stream(&nodes.iter().filter_map(|n| serde_json::to_value(n).ok()).collect::<Vec<_>>()))?
        }
        "names" => {
            for n in &nodes {
                writeln!(out, "{}", n.spec.hostname)?;
            }
        }
        _ => {
            if a.verbose {
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| vec![n.spec.hostname.clone(), n.metadata.name.clone(), n.display_addr(), format_labels(&n.metadata.labels)])
                    .collect();
                write!(out, "{}", table(&["Node Name", "Node ID", "Address", "Labels"], &rows))?;
            } else {
                let rows: Vec<Vec<String>> =
                    nodes.iter().map(|n| vec![n.spec.hostname.clone(), n.display_addr(), format_labels(&n.metadata.labels)]).collect();
                write!(out, "{}", table(&["Node Name", "Address", "Labels"], &rows))?;
            }
            if nodes.is_empty() {
                writeln!(
                    err,
                    "No nodes found in cluster {cluster:?} that your roles allow; check the node_labels of your roles (tsh status shows them)."
                )?;
            }
        }
    }
    Ok(())
}

/// How long one leaf may take to answer `tsh ls --all`.
const PER_CLUSTER: std::time::Duration = std::time::Duration::from_secs(5);

async fn all_clusters(a: Args, session: &mut Session, format: &str, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let clusters: Vec<String> = session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect();
    let (answered, failed) = session.nodes_of(&clusters, &a.labels.join(","), PER_CLUSTER).await?;
    for (c, why) in &failed {
        writeln!(err, "WARNING: cluster {c} did not list its nodes: {why}")?;
    }
    let rows: Vec<(&str, &Node)> = answered.iter().flat_map(|(c, nodes)| nodes.iter().map(move |n| (c.as_str(), n))).collect();
    match format {
        "json" | "yaml" => {
            let values: Vec<serde_json::Value> = rows
                .iter()
                .filter_map(|(c, n)| {
                    let mut v = serde_json::to_value(n).ok()?;
                    v.as_object_mut()?.insert("cluster".into(), serde_json::json!(c));
                    Some(v)
                })
                .collect();
            if format == "json" {
                write!(out, "{}", shared::output::json(&values))?
            } else {
                write!(out, "{}", shared::yaml::to_yaml_stream(&values))?
            }
        }
        "names" => {
            for (c, n) in &rows {
                writeln!(out, "{c}/{}", n.spec.hostname)?;
            }
        }
        _ => {
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|(c, n)| {
                    let mut r = vec![c.to_string(), n.spec.hostname.clone()];
                    if a.verbose {
                        r.push(n.metadata.name.clone());
                    }
                    r.extend([n.display_addr(), format_labels(&n.metadata.labels)]);
                    r
                })
                .collect();
            let headers: &[&str] = if a.verbose {
                &["Cluster", "Node Name", "Node ID", "Address", "Labels"]
            } else {
                &["Cluster", "Node Name", "Address", "Labels"]
            };
            write!(out, "{}", table(headers, &table_rows))?;
        }
    }
    Ok(())
}
