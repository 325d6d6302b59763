//! `tctl status`: the cluster, its version, and fingerprints of its certificate authorities.

use std::io::Write;

use shared::api::{PingResponse, WhoAmI, path};
use shared::resource::{CertAuthority, Kind, ResourceRef};

use crate::client::{ConnArgs, connect};

/// Cluster status.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  tctl -c /etc/teleport.yaml status")]
pub struct Args {}

/// Runs the command.
pub async fn exec(_a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    let ping: PingResponse = conn.api.get(path::PING).await?;
    let me: WhoAmI = conn.api.get(path::WHOAMI).await?;
    let values = super::get::fetch(&conn.api, &ResourceRef { kind: Kind::CertAuthority, name: None }, false).await?;
    let cas: Vec<CertAuthority> = values.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
    writeln!(out, "Cluster      {}", ping.cluster_name)?;
    writeln!(out, "Version      {}", ping.server_version)?;
    writeln!(out, "Proxy        {}", conn.addr)?;
    writeln!(out, "Signed in as {} ({})", me.name, me.roles.join(", "))?;
    for ca in cas.iter().filter(|c| c.metadata.name == ping.cluster_name) {
        let fps = ca.ssh_public_keys().iter().map(shared::certs::fingerprint).collect::<Vec<_>>().join(", ");
        writeln!(out, "{:<12} {fps}", format!("{} CA", ca.spec.ca_type))?;
    }
    Ok(())
}
