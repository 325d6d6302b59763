//! `tsh ssh [-t|-T] [-p PORT] [-l LOGIN] [--cluster=C] [LOGIN@]HOST [COMMAND...]`.

use anyhow::{anyhow, bail};
use shared::subsystem::ProxyRequest;

use super::Global;
use crate::context::Session;
use crate::sshclient::{SessionSpec, connect_node, connect_proxy};

/// Run a shell or a command on a node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (from the guide):\n  tsh ssh --cluster=leafcluster.example.com visitor@ip-172-3-2-205\n  tsh ssh visitor@db1 'pwd; id -un'"
)]
pub struct Args {
    /// Allocate a terminal even when running a command.
    #[arg(short = 't', long = "tty", conflicts_with = "no_tty")]
    tty: bool,
    /// Never allocate a terminal.
    #[arg(short = 'T')]
    no_tty: bool,
    /// Node port.
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// Unix login [default: the part before @, else $USER].
    #[arg(short = 'l', long)]
    login: Option<String>,
    /// [login@]host: node name, UUID or address.
    destination: String,
    /// Command to run (a shell when omitted).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the command; returns the remote exit code.
pub async fn exec(a: Args, g: &Global) -> anyhow::Result<u8> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let (login, host) = match a.destination.rsplit_once('@') {
        Some((l, h)) => (l.to_string(), h.to_string()),
        None => (
            a.login.clone().or_else(|| std::env::var("USER").ok()).ok_or_else(|| anyhow!("use login@host or -l LOGIN"))?,
            a.destination.clone(),
        ),
    };
    if host.is_empty() || login.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("invalid destination {:?}: use [login@]host, such as visitor@db1", a.destination);
    }
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let proxy = connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, &login).await?;
    let req = ProxyRequest { host: host.clone(), port: a.port, cluster: Some(cluster.clone()) };
    let stream = proxy.subsystem(&req).await?;
    let node = connect_node(stream, &host, &cluster, &session.creds, &login).await?;
    let command = if a.command.is_empty() { None } else { Some(a.command.join(" ")) };
    let tty = a.tty || (!a.no_tty && command.is_none() && crate::term::stdin_is_tty());
    let result = crate::sshclient::run(&node, SessionSpec { command, tty }).await;
    node.close().await;
    proxy.close().await;
    let code = result?;
    Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}
