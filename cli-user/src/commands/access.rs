//! `tsh access explain`: why a login is allowed or denied, asked of the cluster that decides.

use std::io::Write;

use anyhow::anyhow;
use shared::output::Format;

use super::{Global, parse_format};
use crate::context::Session;

/// Find out why you may (or may not) log in somewhere.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Explain, check by check, whether login@node is allowed, as the node decides it.
    #[command(
        after_help = "Examples:\n  tsh access explain visitor@db1\n  tsh access explain --cluster=leaf.example.com visitor@stage-node\n  tsh access explain --cluster=leaf.example.com -f json root@prod-node\n  tsh access explain --cluster=east --kube=east\n\nExit code: 0 when the login is allowed, 1 when it is denied."
    )]
    Explain {
        /// The login and node, login@node.
        #[arg(required_unless_present = "kube")]
        target: Option<String>,
        /// A Kubernetes cluster instead of a login: may you reach it, as whom.
        #[arg(long, conflicts_with = "target")]
        kube: Option<String>,
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
}

/// Runs the command; returns the exit code.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let Cmd::Explain { target, kube, format } = a.cmd;
    let (login, node) = match (&target, &kube) {
        (_, Some(k)) => ("", k.as_str()),
        (Some(t), None) => {
            shared::explain::split_target(t).ok_or_else(|| anyhow!("expected login@node, e.g. 'tsh access explain visitor@node1'"))?
        }
        (None, None) => return Err(anyhow!("name login@node, or --kube=<kubernetes cluster>")),
    };
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let root = session.root_api()?;
    let root_name = session.profile.cluster.clone();
    let report = shared::explain::explain(&root, &root_name, &cluster, login, node, kube.as_deref(), None, || {
        session.cluster_api(&cluster).map_err(|e| shared::Error::connection_problem(format!("{e:#}")))
    })
    .await?;
    match format {
        Format::Json => write!(out, "{}", shared::output::json(&report))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&report))?,
        _ => write!(out, "{}", shared::explain::render(&report, login, node, &cluster))?,
    }
    Ok(if report.allowed { 0 } else { 1 })
}
