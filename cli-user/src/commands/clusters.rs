//! `tsh clusters [-f json|yaml]` (reference §7.1).

use std::io::Write;

use shared::api::{ClusterInfo, path};
use shared::output::{Format, table};

use super::{Global, parse_format};
use crate::context::Session;

/// List clusters.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples (from the guide):\n  tsh clusters\n  tsh clusters -f json")]
pub struct Args {
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    session.require_valid()?;
    let mut clusters: Vec<ClusterInfo> = session.root_api()?.get(path::CLUSTERS).await?;
    for c in &mut clusters {
        c.selected = c.cluster_name == session.profile.site;
    }
    match a.format {
        Format::Json => write!(out, "{}", shared::output::json(&clusters))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&clusters))?,
        Format::Text => {
            let rows: Vec<Vec<String>> = clusters
                .iter()
                .map(|c| {
                    vec![
                        c.cluster_name.clone(),
                        c.status.clone(),
                        c.cluster_type.clone(),
                        c.labels.as_ref().map(shared::resource::format_labels).unwrap_or_default(),
                        if c.selected { "*".into() } else { String::new() },
                    ]
                })
                .collect();
            write!(out, "{}", table(&["Cluster Name", "Status", "Cluster Type", "Labels", "Selected"], &rows))?;
        }
    }
    Ok(())
}
