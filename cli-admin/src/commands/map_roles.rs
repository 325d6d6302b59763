//! `tctl map-roles`: which local roles a root user with the given roles gets on this (leaf)
//! cluster. Teleport has no such command; the guide calls role-mapping problems the hardest to
//! troubleshoot. With `--file` it needs no cluster, so a role_map can be checked before
//! `tctl create`.

use std::io::Write;

use anyhow::{anyhow, bail};
use shared::api::{MapRolesRequest, MapRolesResponse, path};
use shared::output::Format;
use shared::resource::{Resource, RoleMapping};

use super::{list, parse_format};
use crate::client::{ConnArgs, connect};

/// Show the result of role mapping.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tctl map-roles --roles=access --file=trusted_cluster.yaml\n  tctl map-roles --roles=access,dev --cluster=rootcluster.example.com -f json"
)]
pub struct Args {
    /// The root user's roles, comma-separated.
    #[arg(long)]
    roles: String,
    /// Use the role_map stored for this trusted (root) cluster.
    #[arg(long, conflicts_with = "file")]
    cluster: Option<String>,
    /// Use the role_map in this trusted_cluster YAML (no cluster needed).
    #[arg(long)]
    file: Option<String>,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

fn map_local(map: &[RoleMapping], roles: &[String]) -> anyhow::Result<Vec<String>> {
    let mapped = shared::rolemap::map_roles(map, roles)
        .map_err(|e| anyhow!("failed to map roles for user with remote roles {}: {}", shared::rolemap::go_list(roles), e.message))?;
    if mapped.is_empty() {
        return Err(anyhow!("{}", shared::rolemap::no_roles_mapped_ssh(roles).message));
    }
    Ok(mapped)
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let roles = list(&a.roles);
    let result = match (&a.cluster, &a.file) {
        (_, Some(file)) => {
            let bytes = super::create::read_input(file)?;
            let docs = shared::yaml::parse_documents(file, &bytes)?;
            let tc = docs
                .iter()
                .find_map(|d| match Resource::from_value(d.value.clone()) {
                    Ok(Resource::TrustedCluster(t)) => Some(t),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("{file} holds no trusted_cluster resource"))?;
            let mut tc = tc;
            tc.check_and_set_defaults().map_err(|e| anyhow!("{file}: {e}"))?;
            MapRolesResponse { local_roles: map_local(&tc.combined_mapping(), &roles)?, remote_roles: roles }
        }
        (Some(cluster), None) => {
            let conn = connect(c)?;
            conn.api.post(path::MAP_ROLES, &MapRolesRequest { cluster: cluster.clone(), roles }).await?
        }
        (None, None) => bail!("use --cluster=<root cluster> or --file=<trusted_cluster.yaml>"),
    };
    match a.format {
        Format::Json => write!(out, "{}", shared::output::json(&result))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&result))?,
        Format::Text => {
            writeln!(out, "Remote roles: {}", result.remote_roles.join(", "))?;
            writeln!(out, "Local roles:  {}", result.local_roles.join(", "))?;
        }
    }
    Ok(())
}
