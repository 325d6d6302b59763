//! `tctl access explain --user=NAME login@node`: why a user's login is allowed or denied, for
//! an admin, with every rule shown. With `--cluster=leaf` the root checks the leaf's
//! `cluster_labels` for the user and tells the leaf who the user is there; the leaf explains
//! (the admin needs read on users and roles on both).

use std::io::Write;

use anyhow::{anyhow, bail};
use shared::api::{PingResponse, path};
use shared::output::Format;

use super::parse_format;
use crate::client::{ConnArgs, connect};

/// Find out why a user may (or may not) log in somewhere.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Explain, check by check, whether a user may log in as login@node, as the node decides it.
    #[command(
        after_help = "Examples:\n  tctl access explain --user=alice visitor@db1\n  tctl --cluster=leaf.example.com access explain --user=alice visitor@stage-node\n  tctl access explain --user=alice -f json root@prod-node"
    )]
    Explain {
        /// The user (of the cluster tctl is signed in to).
        #[arg(long)]
        user: String,
        /// The login and node, login@node.
        target: String,
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let Cmd::Explain { user, target, format } = a.cmd;
    let (login, node) = shared::explain::split_target(&target)
        .ok_or_else(|| anyhow!("expected login@node, e.g. 'tctl access explain --user=alice visitor@node1'"))?;
    let root = connect(&ConnArgs { cluster: None, ..c.clone() })?;
    let ping: PingResponse = root.api.get(path::PING).await?;
    let cluster = c.cluster.clone().unwrap_or_else(|| ping.cluster_name.clone());
    let report = shared::explain::explain(&root.api, &ping.cluster_name, &cluster, login, node, None, Some(&user), || {
        connect(c).map(|conn| conn.api).map_err(|e| shared::Error::connection_problem(format!("{e:#}")))
    })
    .await?;
    match format {
        Format::Json => write!(out, "{}", shared::output::json(&report))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&report))?,
        _ => write!(out, "{}", shared::explain::render(&report, login, node, &cluster))?,
    }
    if !report.allowed {
        bail!("{user} may not log in as {login}@{node} on {cluster}: see the failed check above");
    }
    Ok(())
}
