//! `tsh ssh [-t|-T] [-p PORT] [-l LOGIN] [--cluster=C|all] [LOGIN@]HOST|k=v[,k=v] [COMMAND...]`.
//!
//! A host not in the current cluster is looked for in the others the user may see; a label
//! selector (`env=prod`) runs the command on every matching node, each line prefixed by the
//! node's name, and `--cluster=all` does that across every visible cluster.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail};
use shared::Code;
use shared::subsystem::ProxyRequest;

use super::Global;
use crate::context::Session;
use crate::sshclient::{SessionSpec, connect_node, connect_proxy};

/// Run a shell or a command on a node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (from the guide):\n  tsh ssh --cluster=leafcluster.example.com visitor@ip-172-3-2-205\n  tsh ssh visitor@db1 'pwd; id -un'\n  tsh ssh visitor@env=prod uptime                 # every node labelled env=prod\n  tsh ssh --cluster=all visitor@env=prod uptime   # ... in every cluster you may see"
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
    let command = if a.command.is_empty() { None } else { Some(a.command.join(" ")) };
    if host.contains('=') {
        return on_labels(&mut session, g, &login, &host, command).await;
    }
    if g.cluster.as_deref() == Some("all") {
        bail!("--cluster=all runs on nodes chosen by labels: use login@key=value, such as visitor@env=prod");
    }
    let mut cluster = session.resolve_target(g, &mut std::io::stderr()).await?;
    let proxy = connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, &login).await?;
    let req = ProxyRequest { host: host.clone(), port: a.port, cluster: Some(cluster.clone()) };
    let stream = match proxy.subsystem(&req).await {
        Ok(s) => s,
        // Not here: is it in exactly one other cluster this user may see?
        Err(e) if g.cluster.is_none() && e.has(Code::NodeNotFound) => {
            let other = find_cluster(&mut session, &host, &cluster).await.map_err(|why| anyhow!("{e}{why}"))?;
            let _ =
                writeln!(std::io::stderr(), "node {host:?} is in cluster {other:?}; connecting there (use --cluster={other} to say so)");
            cluster = other;
            let req = ProxyRequest { host: host.clone(), port: a.port, cluster: Some(cluster.clone()) };
            proxy.subsystem(&req).await?
        }
        Err(e) => match session.fallback_to_root(g, &cluster, &e, &mut std::io::stderr()) {
            Some(root) => {
                cluster = root;
                let req = ProxyRequest { host: host.clone(), port: a.port, cluster: Some(cluster.clone()) };
                proxy.subsystem(&req).await?
            }
            None => return Err(e.into()),
        },
    };
    let node = connect_node(stream, &host, &cluster, &session.creds, &login).await?;
    let tty = a.tty || (!a.no_tty && command.is_none() && crate::term::stdin_is_tty());
    let result = crate::sshclient::run(&node, SessionSpec { command, tty }).await;
    node.close().await;
    // The proxy may have ended the connection and said why (a lock): say that, not "lost".
    let result = result.map_err(|e| match proxy.ended_because() {
        Some(why) => anyhow!("{why}"),
        None => e,
    });
    proxy.close().await;
    let code = result?;
    Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}

/// The one other visible cluster that has `host`, or why there is none (text to append).
async fn find_cluster(session: &mut Session, host: &str, current: &str) -> Result<String, String> {
    let clusters: Vec<String> = match session.visible_clusters().await {
        Ok(c) => c.into_iter().map(|c| c.cluster_name).filter(|c| c != current).collect(),
        Err(_) => return Err(String::new()),
    };
    if clusters.is_empty() {
        return Err(String::new());
    }
    let (answered, _) = session.nodes_of(&clusters, "", Duration::from_secs(5)).await.map_err(|_| String::new())?;
    let has = |n: &shared::resource::Node| {
        n.spec.hostname == host || n.metadata.name == host || n.spec.addr.rsplit_once(':').map(|(h, _)| h) == Some(host)
    };
    let found: Vec<String> = answered.into_iter().filter(|(_, nodes)| nodes.iter().any(has)).map(|(c, _)| c).collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(String::new()),
        many => Err(format!("; it is in several clusters ({}): choose one with --cluster", many.join(", "))),
    }
}

/// `tsh ssh login@k=v[,k=v] command`: the command on every matching node (of the current
/// cluster, or of every visible one with --cluster=all), lines prefixed by `[node]`.
async fn on_labels(session: &mut Session, g: &Global, login: &str, selector: &str, command: Option<String>) -> anyhow::Result<u8> {
    let Some(command) = command else {
        bail!(
            "a label selector ({selector}) runs a command on every matching node: add the command, such as: tsh ssh {login}@{selector} uptime"
        );
    };
    for part in selector.split(',') {
        if !part.contains('=') || part.starts_with('=') {
            bail!("invalid label selector {selector:?}: use key=value[,key=value]");
        }
    }
    let clusters: Vec<String> = if g.cluster.as_deref() == Some("all") {
        session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect()
    } else {
        vec![session.target(g)]
    };
    let (answered, failed) = session.nodes_of(&clusters, selector, Duration::from_secs(5)).await?;
    for (c, why) in &failed {
        let _ = writeln!(std::io::stderr(), "WARNING: cluster {c} did not list its nodes: {why}");
    }
    let targets: Vec<(String, String)> =
        answered.iter().flat_map(|(c, nodes)| nodes.iter().map(move |n| (c.clone(), n.metadata.name.clone()))).collect();
    let names: std::collections::HashMap<String, String> =
        answered.iter().flat_map(|(_, nodes)| nodes.iter().map(|n| (n.metadata.name.clone(), n.spec.hostname.clone()))).collect();
    if targets.is_empty() {
        bail!("no node matches {selector} in {}; see tsh ls{}", clusters.join(", "), if clusters.len() > 1 { " --all" } else { "" });
    }
    let several = clusters.len() > 1;
    let proxy = std::sync::Arc::new(connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, login).await?);
    let creds = std::sync::Arc::new(session.creds.clone());
    // A few at a time: each is one channel on the one proxy connection.
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for (i, (cluster, id)) in targets.into_iter().enumerate() {
        let (proxy, creds, limit, login, command) = (proxy.clone(), creds.clone(), limit.clone(), login.to_string(), command.clone());
        let label = match names.get(&id) {
            Some(h) if several => format!("{cluster}/{h}"),
            Some(h) => h.clone(),
            None => id.clone(),
        };
        set.spawn(async move {
            let _permit = limit.acquire().await;
            let run = async {
                let req = ProxyRequest { host: id.clone(), port: None, cluster: Some(cluster.clone()) };
                let stream = proxy.subsystem(&req).await?;
                let node = connect_node(stream, &id, &cluster, &creds, &login).await?;
                let r = node.exec_capture(&command).await;
                node.close().await;
                r
            };
            (i, label, run.await)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|(i, _, _)| *i);
    let mut worst = 0u8;
    let mut stdout = std::io::stdout().lock();
    for (_, label, r) in results {
        match r {
            Ok((code, out, err)) => {
                for line in String::from_utf8_lossy(&out).lines() {
                    let _ = writeln!(stdout, "[{label}] {line}");
                }
                for line in String::from_utf8_lossy(&err).lines() {
                    let _ = writeln!(std::io::stderr(), "[{label}] {line}");
                }
                if code != 0 {
                    let _ = writeln!(std::io::stderr(), "[{label}] exited with status {code}");
                    worst = worst.max(u8::try_from(code.rem_euclid(256)).unwrap_or(255).max(1));
                }
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "[{label}] ERROR: {e:#}");
                worst = worst.max(1);
            }
        }
    }
    proxy.close().await;
    Ok(worst)
}
