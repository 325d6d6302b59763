//! `tsh sessions ls` and `tsh join`: live sessions of the root or of a leaf (`--cluster`, asked
//! through the root's tunnel; the leaf's roles decide who sees and joins what).

use std::io::Write;

use anyhow::bail;
use shared::api::{SessionTracker, path};
use shared::output::Format;
use shared::party::{ENV_MODE, ENV_SESSION, JOIN_LOGIN, Mode, check_session_id};

use super::{Global, parse_format};
use crate::context::Session;
use crate::sshclient::SessionSpec;

/// List live sessions.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the running sessions you may see (yours, and those your roles may join).
    #[command(
        after_help = "Examples:\n  tsh sessions ls\n  tsh sessions ls --cluster=leaf.example.com -f json\n  tsh join --cluster=leaf.example.com <session-id>"
    )]
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
        /// Kinds of session to list (only ssh sessions exist here).
        #[arg(long, default_value = "ssh")]
        kind: String,
    },
}

/// Join a running session.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tsh join <session-id>                                   # watch (observer)\n  tsh join --mode=peer <session-id>                       # type too\n  tsh join --cluster=leaf.example.com <session-id>        # a session on a leaf's node\n\nAn observer's keystrokes are never sent; Ctrl-C leaves. Who may join whom is decided by the\njoin_sessions of your roles in the session's cluster."
)]
pub struct JoinArgs {
    /// The session ID (from 'tsh sessions ls').
    session_id: String,
    /// observer (watch) or peer (type too).
    #[arg(long, default_value = "observer")]
    mode: String,
}

/// The rows of `tsh sessions ls`.
pub fn table_of(sessions: &[SessionTracker]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|t| {
            let parties: Vec<String> = t
                .spec
                .participants
                .iter()
                .map(|p| if p.mode == "observer" { format!("{} (observer)", p.user) } else { p.user.clone() })
                .collect();
            vec![
                t.spec.session_id.clone(),
                t.spec.kind.clone(),
                shared::timefmt::rfc3339_secs(t.spec.created),
                t.spec.target_hostname.clone(),
                t.spec.target_address.clone(),
                t.spec.login.clone(),
                parties.join(", "),
                t.spec.command.clone().unwrap_or_default(),
            ]
        })
        .collect();
    shared::output::table(&["ID", "Kind", "Created", "Hostname", "Address", "Login", "Participants", "Command"], &rows)
}

/// Runs `tsh sessions`.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let Cmd::Ls { format, kind } = a.cmd;
    let kinds: Vec<&str> = kind.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
    if let Some(k) = kinds.iter().find(|k| !["ssh", "k8s", "kube", "db", "app", "desktop"].contains(k)) {
        bail!("unknown session kind {k:?}; use ssh, k8s, db, app or desktop");
    }
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let api = session.cluster_api(&cluster)?;
    let mut all: Vec<SessionTracker> = api.get(path::SESSION_TRACKERS).await?;
    all.retain(|t| kinds.contains(&t.spec.kind.as_str()));
    match format {
        Format::Json => write!(out, "{}", shared::output::json(&all))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&all))?,
        _ if all.is_empty() => writeln!(out, "No active sessions in cluster {cluster:?} that you may see.")?,
        _ => write!(out, "{}", table_of(&all))?,
    }
    Ok(())
}

/// Runs `tsh join`; returns the session's exit status (255 when it cannot connect).
pub async fn join(a: JoinArgs, g: &Global, err: &mut dyn Write) -> anyhow::Result<u8> {
    if let Err(e) = check_session_id(&a.session_id) {
        bail!("{e}; 'tsh sessions ls' lists them");
    }
    let mode = Mode::parse(&a.mode).map_err(|why| anyhow::anyhow!("--mode: {why}"))?;
    let mut session = Session::load(g).map_err(super::ssh::NotConnected::wrap)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let api = session.cluster_api(&cluster)?;
    let t: SessionTracker = api.get(&format!("{}/{}", path::SESSION_TRACKERS, a.session_id)).await?;
    // The node by its UUID, in the cluster that keeps the session.
    let mut g = g.clone();
    g.cluster = Some(cluster);
    let (proxy, node) = super::ssh::reach(&mut session, &g, JOIN_LOGIN, &t.spec.target_address, None, None)
        .await
        .map_err(super::ssh::NotConnected::wrap)?;
    let env = vec![(ENV_SESSION.to_string(), a.session_id.clone()), (ENV_MODE.to_string(), mode.as_str().to_string())];
    let result = crate::sshclient::run(&node, SessionSpec { command: None, tty: true, agent: false, env }).await;
    node.close().await;
    proxy.close().await;
    let code = result.map_err(super::ssh::NotConnected::wrap)?;
    Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}
