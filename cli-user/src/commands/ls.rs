//! `tsh ls [--cluster=C] [-v] [-f text|json|yaml|names] [k=v ...]` (reference §7.2).

use std::io::Write;

use anyhow::anyhow;
use shared::api::path;
use shared::output::table;
use shared::resource::{Node, format_labels};

use super::Global;
use crate::context::Session;

/// List nodes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples (from the guide):\n  tsh ls --cluster=leafcluster.example.com\n  tsh ls env=stage -f json")]
pub struct Args {
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
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let api = session.cluster_api(&cluster)?;
    let filter = a.labels.join(",");
    let url = if filter.is_empty() {
        path::NODES.to_string()
    } else {
        format!("{}?labels={}", path::NODES, shared::client::encode_segment(&filter))
    };
    let nodes: Vec<Node> = api.get(&url).await?;
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
