//! `tctl update rc/NAME --set-labels=k=v[,..] [--set-ttl=DURATION]` (root clusters only).

use std::io::Write;

use anyhow::bail;
use shared::api::{UpdateRemoteClusterRequest, path};
use shared::client::encode_segment;
use shared::resource::{Kind, ResourceRef, parse_label_spec};

use crate::client::{ConnArgs, connect};

/// Update a remote cluster.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (from the guide):\n  tctl update rc/leafcluster.example.com --set-labels=env=demo")]
pub struct Args {
    /// rc/<name>.
    reference: String,
    /// Replace the labels, k=v,k2=v2.
    #[arg(long)]
    set_labels: Option<String>,
    /// Expire the remote cluster after this long.
    #[arg(long)]
    set_ttl: Option<String>,
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = ResourceRef::parse(&a.reference)?;
    if r.kind != Kind::RemoteCluster {
        bail!("updating resources of type {:?} is not supported, supported are: \"remote_cluster\"", r.kind.as_str());
    }
    let Some(name) = r.name else {
        bail!("provide a full resource name to update, for example:\n$ tctl update rc/remote --set-labels=env=prod\n");
    };
    if a.set_labels.is_none() && a.set_ttl.is_none() {
        bail!("use at least one of --set-labels or --set-ttl");
    }
    let set_labels = a.set_labels.as_deref().map(parse_label_spec).transpose()?;
    let set_ttl_seconds = a.set_ttl.as_deref().map(shared::timefmt::parse_duration).transpose()?.map(|d| d.as_secs());
    let conn = connect(c)?;
    let req = UpdateRemoteClusterRequest { set_labels, set_ttl_seconds };
    let _: serde_json::Value = conn.api.patch(&format!("{}/{}", path::REMOTE_CLUSTERS, encode_segment(&name)), &req).await?;
    writeln!(out, "cluster {name} has been updated")?;
    Ok(())
}
