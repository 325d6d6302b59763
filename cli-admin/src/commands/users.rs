//! `tctl users add|update|ls|rm|reset`.

use std::io::Write;

use shared::api::{AddUserRequest, InviteResponse, UpdateUserRequest, path};
use shared::client::encode_segment;
use shared::output::{Format, table};
use shared::resource::User;

use super::{list, parse_format};
use crate::client::{ConnArgs, connect};

/// Manage users.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Add a user and print a one-time link to set the password.
    #[command(after_help = "Example:\n  tctl users add myuser --roles=access,editor --logins=root,ubuntu")]
    Add {
        /// User name.
        name: String,
        /// Roles, comma-separated.
        #[arg(long)]
        roles: String,
        /// Unix logins (the user's `logins` trait), comma-separated.
        #[arg(long)]
        logins: Option<String>,
    },
    /// Change a user's roles or logins.
    #[command(after_help = "Example (from the guide):\n  tctl users update myuser --set-roles \"${ROLES?},demo-cluster-access\"")]
    Update {
        /// User name.
        name: String,
        /// Replace the roles, comma-separated.
        #[arg(long)]
        set_roles: Option<String>,
        /// Replace the logins, comma-separated.
        #[arg(long)]
        set_logins: Option<String>,
    },
    /// List users.
    #[command(after_help = "Example:\n  tctl users ls --format=json")]
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
    /// Delete a user.
    #[command(after_help = "Example:\n  tctl users rm myuser")]
    Rm {
        /// User name.
        name: String,
    },
    /// Remove a user's password and print a link to set a new one.
    #[command(after_help = "Example:\n  tctl users reset myuser")]
    Reset {
        /// User name.
        name: String,
    },
}

fn print_link(out: &mut dyn Write, r: &InviteResponse, reset: bool, proxy: &str) -> anyhow::Result<()> {
    let hours = (r.ttl_seconds / 3600).max(1);
    if reset {
        writeln!(
            out,
            "User {:?} has been reset. Share this URL with the user to complete password reset, link is valid for {hours}h:",
            r.name
        )?;
    } else {
        writeln!(
            out,
            "User {:?} has been created but requires a password. Share this URL with the user to complete user setup, link is valid for {hours}h:",
            r.name
        )?;
    }
    writeln!(out, "{}\n", r.url)?;
    writeln!(out, "NOTE: Make sure {proxy} points at a Teleport proxy which users can access.")?;
    Ok(())
}

fn proxy_of(url: &str) -> String {
    url.trim_start_matches("https://").split('/').next().unwrap_or_default().to_string()
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    match a.cmd {
        Cmd::Add { name, roles, logins } => {
            let req = AddUserRequest { name, roles: list(&roles), logins: logins.as_deref().map(list).unwrap_or_default() };
            let r: InviteResponse = conn.api.post(path::USERS, &req).await?;
            print_link(out, &r, false, &proxy_of(&r.url))
        }
        Cmd::Update { name, set_roles, set_logins } => {
            let req = UpdateUserRequest { set_roles: set_roles.as_deref().map(list), set_logins: set_logins.as_deref().map(list) };
            if req.set_roles.is_none() && req.set_logins.is_none() {
                anyhow::bail!("nothing to update: use --set-roles or --set-logins");
            }
            let _: serde_json::Value = conn.api.patch(&format!("{}/{}", path::USERS, encode_segment(&name)), &req).await?;
            writeln!(out, "User {name:?} has been updated")?;
            Ok(())
        }
        Cmd::Ls { format } => {
            let users: Vec<User> = conn.api.get(&format!("{}/user", path::RESOURCES)).await?;
            match format {
                Format::Json => write!(out, "{}", shared::output::json(&users))?,
                Format::Yaml => write!(
                    out,
                    "{}",
                    shared::yaml::to_yaml_stream(&users.iter().filter_map(|u| serde_json::to_value(u).ok()).collect::<Vec<_>>())
                )?,
                Format::Text => {
                    let rows: Vec<Vec<String>> = users.iter().map(|u| vec![u.metadata.name.clone(), u.spec.roles.join(",")]).collect();
                    write!(out, "{}", table(&["User", "Roles"], &rows))?;
                }
            }
            Ok(())
        }
        Cmd::Rm { name } => {
            let answer: serde_json::Value = conn.api.delete_json(&format!("{}/user/{}", path::RESOURCES, encode_segment(&name))).await?;
            writeln!(out, "User {name:?} has been deleted")?;
            super::rm::say_user_lock(&answer, out)?;
            Ok(())
        }
        Cmd::Reset { name } => {
            let r: InviteResponse =
                conn.api.post(&format!("{}/{}/reset", path::USERS, encode_segment(&name)), &serde_json::json!({})).await?;
            print_link(out, &r, true, &proxy_of(&r.url))
        }
    }
}
