//! `tctl request ls|approve|deny|rm`: an admin's view of the cluster's access requests. An
//! admin's approval or denial decides whatever the thresholds (Teleport's behaviour); users
//! review with `tsh request review`.

use std::io::Write;

use anyhow::anyhow;
use shared::api::path;
use shared::output::{Format, table};
use shared::resource::{AccessRequest, RequestState};

use super::parse_format;
use crate::client::{ConnArgs, connect};

/// Access requests.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the live requests.
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
    /// Approve a request (whatever its thresholds).
    Approve {
        /// The request's id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Deny a request (also after approval: its roles end at the certificates' next use).
    Deny {
        /// The request's id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Delete a request.
    Rm {
        /// The request's id.
        id: String,
    },
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    let api = &conn.api;
    match a.cmd {
        Cmd::Ls { format } => {
            let all: Vec<AccessRequest> = api.get(path::ACCESS_REQUESTS).await.map_err(|e| anyhow!("{}", e.message))?;
            match format {
                Format::Text => {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|r| {
                            vec![
                                r.id().to_string(),
                                r.spec.user.clone(),
                                format!("roles={}", r.spec.roles.join(",")),
                                shared::timefmt::rfc822(r.spec.created),
                                r.spec.state.as_str().to_string(),
                                r.spec.request_reason.clone(),
                                r.spec.resolve_reason.clone(),
                            ]
                        })
                        .collect();
                    let head = ["Token", "Requestor", "Metadata", "Created At (UTC)", "Status", "Request Reason", "Resolve Reason"];
                    write!(out, "{}", table(&head, &rows))?;
                }
                Format::Json => write!(out, "{}", shared::output::json(&all))?,
                Format::Yaml => {
                    let values: Vec<serde_json::Value> = all.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
                    write!(out, "{}", shared::yaml::to_yaml_stream(&values))?
                }
            }
        }
        Cmd::Approve { id, reason } => decide(api, &id, RequestState::Approved, &reason, out).await?,
        Cmd::Deny { id, reason } => decide(api, &id, RequestState::Denied, &reason, out).await?,
        Cmd::Rm { id } => {
            api.delete(&format!("{}/{id}", path::ACCESS_REQUESTS)).await.map_err(|e| anyhow!("{}", e.message))?;
            writeln!(out, "Access request {id} has been deleted.")?;
        }
    }
    Ok(())
}

async fn decide(api: &shared::client::ApiClient, id: &str, state: RequestState, reason: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let body = shared::api::ReviewAccessRequest { state, reason: reason.to_string() };
    let r: AccessRequest =
        api.post(&format!("{}/{id}/review", path::ACCESS_REQUESTS), &body).await.map_err(|e| anyhow!("{}", e.message))?;
    writeln!(out, "Access request {} is now {}.", r.id(), r.spec.state.as_str())?;
    Ok(())
}
