//! `tctl rm KIND/NAME` with Teleport's messages (reference §7.6).

use std::io::Write;

use anyhow::bail;
use shared::api::path;
use shared::client::encode_segment;
use shared::resource::{Kind, ResourceRef};

use crate::client::{ConnArgs, connect};

/// Delete a resource.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (from the guide):\n  tctl rm trusted_cluster/rootcluster.example.com   # on the leaf\n  tctl rm rc/leafcluster.example.com                # on the root"
)]
pub struct Args {
    /// kind/name, such as rc/leaf, tc/root, role/visitor, cert_authority/host/leaf.
    reference: String,
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = ResourceRef::parse(&a.reference)?;
    let Some(name) = r.name.clone() else {
        bail!("provide a full resource name to delete, for example: tctl rm {}/NAME", r.kind.as_str());
    };
    let conn = connect(c)?;
    let encoded = name.split('/').map(encode_segment).collect::<Vec<_>>().join("/");
    let answer: serde_json::Value = conn.api.delete_json(&format!("{}/{}/{encoded}", path::RESOURCES, r.kind.as_str())).await?;
    match r.kind {
        Kind::RemoteCluster => writeln!(out, "remote cluster {name:?} has been deleted")?,
        Kind::TrustedCluster => writeln!(out, "trusted cluster {name:?} has been deleted")?,
        Kind::CertAuthority => writeln!(out, "cert_authority '{name}' has been deleted")?,
        Kind::Token => writeln!(out, "Token {name} has been deleted")?,
        Kind::User => {
            writeln!(out, "user {name:?} has been deleted")?;
            say_user_lock(&answer, out)?;
        }
        Kind::Lock => writeln!(out, "lock {name:?} has been deleted")?,
        other => writeln!(out, "{} {name:?} has been deleted", super::create::describe(other))?,
    }
    Ok(())
}

/// Says which lock now stops a deleted user's certificates (the server makes one).
pub fn say_user_lock(answer: &serde_json::Value, out: &mut dyn Write) -> std::io::Result<()> {
    if let (Some(lock), Some(until)) = (answer["lock"]["metadata"]["name"].as_str(), answer["lock"]["spec"]["expires"].as_str()) {
        writeln!(
            out,
            "Certificates already issued to this user are locked until {until} (lock {lock:?}); a new user of this name is not affected."
        )?;
    }
    Ok(())
}
