//! `tctl lock --user=NAME|--role=NAME|--login=NAME|--server-id=UUID|--node=NAME [--message] [--ttl|--expires]`
//! (Teleport's RFD 9): creates a lock; list with `tctl get locks`, lift with `tctl rm lock/<name>`.

use std::io::Write;

use anyhow::{anyhow, bail};
use shared::api::{UpsertResourceRequest, UpsertResourceResponse, path};
use shared::resource::Lock;
use shared::resource::lock::{LockSpec, LockTarget};

use crate::client::{ConnArgs, connect};

/// Create a lock.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tctl lock --user=alice --message=\"Suspicious activity.\"\n  tctl lock --role=developers --message=\"Cluster maintenance.\" --ttl=10h\n  tctl lock --server-id=<node UUID> --expires=2030-01-02T15:04:05Z\n  tctl get locks --format=text\n  tctl rm lock/<name>\n\nA lock ends the target's live sessions and refuses new logins and API calls within seconds,\non every node and proxy of the cluster, and a root's locks on its users also apply on its leaves."
)]
pub struct Args {
    /// Lock this Teleport user.
    #[arg(long)]
    user: Option<String>,
    /// Lock everyone with this role.
    #[arg(long)]
    role: Option<String>,
    /// Lock this Unix login.
    #[arg(long)]
    login: Option<String>,
    /// Lock this node (its UUID or name; Teleport deprecates it in favour of --server-id).
    #[arg(long)]
    node: Option<String>,
    /// Lock this server (its UUID).
    #[arg(long)]
    server_id: Option<String>,
    /// Shown to whoever is locked out.
    #[arg(long)]
    message: Option<String>,
    /// Lift the lock after this long, such as 10h.
    #[arg(long)]
    ttl: Option<String>,
    /// Lift the lock at this time (RFC 3339).
    #[arg(long)]
    expires: Option<String>,
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let target = LockTarget {
        user: a.user.unwrap_or_default(),
        role: a.role.unwrap_or_default(),
        login: a.login.unwrap_or_default(),
        node: a.node.unwrap_or_default(),
        server_id: a.server_id.unwrap_or_default(),
        ..Default::default()
    };
    if target.is_empty() {
        bail!("say what to lock: --user, --role, --login, --server-id or --node (for example: tctl lock --user=alice)");
    }
    let expires = match (a.ttl, a.expires) {
        (Some(_), Some(_)) => bail!("use only one of --expires and --ttl"),
        (Some(ttl), None) => {
            let d = shared::timefmt::parse_duration(&ttl)?;
            if d.is_zero() {
                bail!("--ttl must be positive, such as --ttl=10h");
            }
            Some(time::OffsetDateTime::now_utc() + d)
        }
        (None, Some(at)) => Some(shared::timefmt::parse_rfc3339(&at)?),
        (None, None) => None,
    };
    let mut lock = Lock::new(
        &uuid::Uuid::new_v4().to_string(),
        LockSpec { target, message: a.message.unwrap_or_default(), expires, ..Default::default() },
    );
    lock.check_and_set_defaults()?;
    let conn = connect(c)?;
    let req = UpsertResourceRequest { resource: serde_json::to_value(&lock).map_err(|e| anyhow!("{e}"))?, force: false, expected_id: None };
    let resp: UpsertResourceResponse = conn.api.post(path::RESOURCES, &req).await?;
    writeln!(out, "Created a lock with name {:?}.", resp.name)?;
    Ok(())
}
