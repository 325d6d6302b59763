//! `tsh ssh [-t|-T] [-p PORT] [-l LOGIN] [--cluster=C|all] [LOGIN@]HOST|k=v[,k=v] [COMMAND...]`.
//!
//! A host not in the current cluster is looked for in the others the user may see; a label
//! selector (`env=prod`) runs the command on every matching node, each line prefixed by the
//! node's name, and `--cluster=all` does that across every visible cluster.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use shared::Code;
use shared::subsystem::ProxyRequest;

use super::Global;
use crate::context::Session;
use crate::forward;
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
    /// Forward a local port to HOST:HOSTPORT, dialled from the node ([BIND:]PORT:HOST:HOSTPORT; repeatable).
    #[arg(short = 'L', long = "forward", value_name = "[BIND:]PORT:HOST:HOSTPORT")]
    local: Vec<String>,
    /// Forward a port on the node to HOST:HOSTPORT, dialled from here (port 0: any; repeatable).
    #[arg(short = 'R', long = "remote-forward", value_name = "[BIND:]PORT:HOST:HOSTPORT")]
    remote: Vec<String>,
    /// A SOCKS5 proxy here whose connections the node dials ([BIND:]PORT; repeatable).
    #[arg(short = 'D', long = "dynamic-forward", value_name = "[BIND:]PORT")]
    dynamic: Vec<String>,
    /// OpenSSH options: ForwardAgent=yes|no, ServerAliveInterval=SECONDS, ExitOnForwardFailure=yes|no, StrictHostKeyChecking=yes.
    #[arg(short = 'o', value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// Forward your SSH agent ($SSH_AUTH_SOCK) to the node.
    #[arg(short = 'A', long = "forward-agent")]
    forward_agent: bool,
    /// Run no command: only forward (until Ctrl-C or the connection ends).
    #[arg(short = 'N', long = "no-remote-exec")]
    no_exec: bool,
    /// Go to the background once connected and the forwards are up.
    #[arg(short = 'f', long = "fork-after-authentication")]
    fork: bool,
    /// [login@]host: node name, UUID or address.
    destination: String,
    /// Command to run (a shell when omitted).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the command; returns the remote exit code.
pub async fn exec(a: Args, g: &Global) -> anyhow::Result<u8> {
    let mut session = Session::load(g).map_err(NotConnected::wrap)?;
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
    let opts = SshOptions::parse(&a.options)?;
    let forward_agent = opts.forward_agent.unwrap_or(a.forward_agent);
    let local = a.local.iter().map(|s| forward::parse_spec(s, "127.0.0.1")).collect::<anyhow::Result<Vec<_>>>()?;
    let remote = a.remote.iter().map(|s| forward::parse_spec(s, "localhost")).collect::<anyhow::Result<Vec<_>>>()?;
    let dynamic = a.dynamic.iter().map(|s| forward::parse_dynamic(s)).collect::<anyhow::Result<Vec<_>>>()?;
    let forwards = !(local.is_empty() && remote.is_empty() && dynamic.is_empty());
    if a.no_exec && command.is_some() {
        bail!("-N runs no command: drop the command, or -N");
    }
    if a.fork && command.is_none() && !a.no_exec {
        bail!("-f goes to the background: give a command or -N");
    }
    if (forwards || a.no_exec) && host.contains('=') {
        bail!("forwards and -N need one node, not a label selector");
    }
    if a.fork && std::env::var_os(FORKED).is_none() {
        return fork_after_authentication().await;
    }
    if host.contains('=') {
        return on_labels(&mut session, g, &login, &host, command).await;
    }
    if g.cluster.as_deref() == Some("all") {
        bail!("--cluster=all runs on nodes chosen by labels: use login@key=value, such as visitor@env=prod");
    }
    let (proxy, node) = reach(&mut session, g, &login, &host, a.port, opts.alive).await.map_err(NotConnected::wrap)?;
    let node = std::sync::Arc::new(node);
    let notices = if forwards || a.no_exec { Some(forward::Notices::open(&node).await.map_err(NotConnected::wrap)?) } else { None };
    // A forward that cannot be set up fails the command (OpenSSH's ExitOnForwardFailure=yes),
    // with the node's reason when it refused.
    let _forwards = match forward::start(&node, &local, &remote, &dynamic, opts.exit_on_forward_failure).await {
        Ok(f) => f,
        Err(e) => {
            let said = match &notices {
                Some(n) => n.said().await,
                None => String::new(),
            };
            node.close().await;
            proxy.close().await;
            let e = if said.is_empty() { e } else { anyhow!("{e:#}: {said}") };
            return Err(NotConnected::wrap(e));
        }
    };
    if let Some(n) = &notices {
        n.go_live();
    }
    if std::env::var_os(FORKED).is_some() {
        ready_for_background()?;
    }
    if let (true, Some(mut notices)) = (a.no_exec, notices) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = notices.ended() => {
                node.close().await;
                proxy.close().await;
                return Err(NotConnected::wrap(anyhow!("the connection to the node was lost")));
            }
        }
        node.close().await;
        proxy.close().await;
        return Ok(0);
    }
    let tty = a.tty || (!a.no_tty && command.is_none() && crate::term::stdin_is_tty());
    let sock = if forward_agent { agent_socket() } else { None };
    let agent = sock.is_some();
    if let Some(sock) = sock {
        node.forward_agent(sock);
    }
    let result = crate::sshclient::run(&node, SessionSpec { command, tty, agent, env: Vec::new() }).await;
    node.close().await;
    // The proxy may have ended the connection and said why (a lock): say that, not "lost".
    let result = result.map_err(|e| match proxy.ended_because() {
        Some(why) => anyhow!("{why}"),
        None => e,
    });
    proxy.close().await;
    // A session that could not start or lost its connection is tsh's failure, not the command's.
    let code = result.map_err(NotConnected::wrap)?;
    Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}

/// The OpenSSH `-o` options tsh ssh understands.
#[derive(Debug, Clone, PartialEq)]
struct SshOptions {
    forward_agent: Option<bool>,
    alive: Option<Duration>,
    exit_on_forward_failure: bool,
}

impl SshOptions {
    fn parse(opts: &[String]) -> anyhow::Result<SshOptions> {
        let mut o = SshOptions { forward_agent: None, alive: None, exit_on_forward_failure: true };
        for raw in opts {
            let (key, value) = raw
                .split_once('=')
                .or_else(|| raw.split_once(char::is_whitespace))
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| anyhow!("-o {raw:?}: use -o Key=Value, such as -o ForwardAgent=yes"))?;
            let yes_no = |v: &str| match v.to_ascii_lowercase().as_str() {
                "yes" | "true" => Ok(true),
                "no" | "false" => Ok(false),
                _ => Err(anyhow!("-o {key}={v}: use yes or no")),
            };
            match key.to_ascii_lowercase().as_str() {
                "forwardagent" if value.eq_ignore_ascii_case("local") => {
                    bail!(
                        "-o ForwardAgent=local is not supported: tsh keeps no agent of its own; use ForwardAgent=yes to forward $SSH_AUTH_SOCK"
                    )
                }
                "forwardagent" => o.forward_agent = Some(yes_no(value)?),
                "serveraliveinterval" => {
                    let secs: u64 = value.parse().map_err(|_| anyhow!("-o ServerAliveInterval={value}: give whole seconds"))?;
                    o.alive = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "exitonforwardfailure" => o.exit_on_forward_failure = yes_no(value)?,
                // tsh checks every node's host certificate against its cluster's CA, always.
                "stricthostkeychecking" if value.eq_ignore_ascii_case("yes") => {}
                "stricthostkeychecking" => bail!(
                    "-o StrictHostKeyChecking={value} is not supported: tsh always checks a node's host certificate against its cluster's CA (remove the option)"
                ),
                _ => bail!(
                    "-o {key} is not supported by tsh ssh; it understands ForwardAgent, ServerAliveInterval, ExitOnForwardFailure and StrictHostKeyChecking=yes (use stock ssh through 'tsh config' for the others)"
                ),
            }
        }
        Ok(o)
    }
}

/// The local agent to forward for `-A`, or a warning that there is none.
fn agent_socket() -> Option<std::path::PathBuf> {
    match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        Some(s) => Some(s.into()),
        None => {
            let _ = writeln!(std::io::stderr(), "WARNING: -A: no agent to forward (SSH_AUTH_SOCK is not set)");
            None
        }
    }
}

/// Set in the background child of `tsh ssh -f`.
const FORKED: &str = "TSH_FORKED_AFTER_AUTHENTICATION";

/// `-f`: runs the same command again without `-f` as a background child, in its own process
/// group with no input, and returns once it says it is connected with its forwards up (or with
/// its exit status when it fails first).
async fn fork_after_authentication() -> anyhow::Result<u8> {
    use std::os::unix::process::CommandExt;
    use tokio::io::AsyncBufReadExt;
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for arg in std::env::args_os().skip(1) {
        let s = arg.to_string_lossy();
        if s == "-f" || s == "--fork-after-authentication" {
            continue;
        }
        // A cluster of short switches (-fN): the same without f.
        if s.starts_with('-') && !s.starts_with("--") && s.len() > 2 && s[1..].chars().all(|c| "fNtT".contains(c)) {
            args.push(s.replace('f', "").into());
            continue;
        }
        args.push(arg);
    }
    let exe = std::env::current_exe().context("finding tsh itself")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&args).env(FORKED, "1").stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).process_group(0);
    let mut child = tokio::process::Command::from(cmd).spawn().context("starting tsh in the background")?;
    let Some(out) = child.stdout.take() else { bail!("starting tsh in the background: no pipe") };
    let mut line = String::new();
    let _ = tokio::io::BufReader::new(out).read_line(&mut line).await;
    if line.trim() == "ready" {
        return Ok(0);
    }
    let status = child.wait().await.context("waiting for the background tsh")?;
    Ok(u8::try_from(status.code().unwrap_or(255)).unwrap_or(255))
}

/// In the background child: tells the parent it is connected, then writes its output where
/// its errors go (the terminal it was started from).
fn ready_for_background() -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    nix::unistd::dup2_stdout(std::io::stderr()).context("moving standard output to the terminal")?;
    Ok(())
}

/// tsh could not connect or authenticate: it exits 255, as OpenSSH's `ssh` does, so a script
/// tells "could not reach the node" from "the command returned 1".
#[derive(Debug)]
pub struct NotConnected(pub anyhow::Error);

impl NotConnected {
    /// Marks an error as a failure to connect.
    pub fn wrap(e: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(NotConnected(e))
    }
}

impl std::fmt::Display for NotConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for NotConnected {}

/// Connects to `login@host` through the proxy: in the target cluster, else in the one other
/// visible cluster that has it, else (a selected leaf that is gone) in the root.
pub async fn reach(
    session: &mut Session,
    g: &Global,
    login: &str,
    host: &str,
    port: Option<u16>,
    keepalive: Option<Duration>,
) -> anyhow::Result<(shared::sshclient::ProxyConn, shared::sshclient::NodeConn)> {
    session.require_valid()?;
    let mut cluster = session.resolve_target(g, &mut std::io::stderr()).await?;
    let proxy = connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, login).await?;
    let req = ProxyRequest { host: host.to_string(), port, cluster: Some(cluster.clone()) };
    let stream = match proxy.subsystem(&req).await {
        Ok(s) => s,
        // Not here: is it in exactly one other cluster this user may see?
        Err(e) if g.cluster.is_none() && e.has(Code::NodeNotFound) => {
            let other = find_cluster(session, host, &cluster).await.map_err(|why| anyhow!("{e}{why}"))?;
            let _ =
                writeln!(std::io::stderr(), "node {host:?} is in cluster {other:?}; connecting there (use --cluster={other} to say so)");
            cluster = other;
            let req = ProxyRequest { host: host.to_string(), port, cluster: Some(cluster.clone()) };
            proxy.subsystem(&req).await?
        }
        Err(e) => match session.fallback_to_root(g, &cluster, &e, &mut std::io::stderr()) {
            Some(root) => {
                cluster = root;
                let req = ProxyRequest { host: host.to_string(), port, cluster: Some(cluster.clone()) };
                proxy.subsystem(&req).await?
            }
            None => return Err(e.into()),
        },
    };
    let node = shared::sshclient::connect_node_with(stream, host, &cluster, &session.creds, login, keepalive).await?;
    Ok((proxy, node))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_options_that_make_sense_are_understood_and_the_rest_refused() {
        let p = |v: &[&str]| SshOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = p(&["ForwardAgent=yes", "ServerAliveInterval=15", "exitonforwardfailure no", "StrictHostKeyChecking=yes"]).unwrap();
        assert_eq!(o, SshOptions { forward_agent: Some(true), alive: Some(Duration::from_secs(15)), exit_on_forward_failure: false });
        assert!(p(&["ForwardAgent=local"]).unwrap_err().to_string().contains("not supported"));
        assert!(p(&["StrictHostKeyChecking=no"]).unwrap_err().to_string().contains("always checks"));
        assert!(p(&["ProxyJump=x"]).unwrap_err().to_string().contains("-o ProxyJump is not supported by tsh ssh"));
        assert!(p(&["ServerAliveInterval=soon"]).is_err());
        assert!(p(&["Compression"]).is_err());
    }
}
