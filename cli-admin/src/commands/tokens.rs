//! `tctl tokens add|ls|rm` (reference §7.4, §7.5).

use std::io::Write;
use std::time::Duration;

use shared::api::{AddTokenRequest, AddTokenResponse, path};
use shared::client::encode_segment;
use shared::output::{Format, table};
use shared::resource::token::SystemRole;
use shared::resource::{ProvisionToken, format_labels, parse_label_spec};
use shared::timefmt::{go_duration, parse_duration, rfc822};

use super::parse_format;
use crate::client::{ConnArgs, connect};

/// Manage tokens.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Create a token (trusted_cluster: invite a leaf cluster; node: join a node).
    #[command(after_help = "Examples:\n  tctl tokens add --type=trusted_cluster --ttl=5m\n  tctl tokens add --type=node --ttl=30m")]
    Add {
        /// trusted_cluster or node (comma-separated for several).
        #[arg(long = "type")]
        token_type: String,
        /// How long the token is valid.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Use this value instead of a random one (at least 16 characters).
        #[arg(long)]
        value: Option<String>,
        /// Labels, k=v,k2=v2 (copied to the remote_cluster a trusted_cluster token creates).
        #[arg(long)]
        labels: Option<String>,
        /// text prints only the token; json and yaml print the token resource.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// List active tokens.
    #[command(after_help = "Example (from the guide):\n  tctl tokens ls")]
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
    /// Delete a token.
    #[command(after_help = "Example:\n  tctl tokens rm 3b4c5d6e7f8091a2b3c4d5e6f708192a")]
    Rm {
        /// The token.
        token: String,
    },
}

/// Rows of `tctl tokens ls`.
pub fn token_rows(tokens: &[ProvisionToken], now: time::OffsetDateTime) -> Vec<Vec<String>> {
    tokens
        .iter()
        .map(|t| {
            let kind = t.system_roles().iter().map(|r| r.display()).collect::<Vec<_>>().join(",");
            let expiry = match t.metadata.expires {
                Some(e) => {
                    let left = Duration::from_secs(u64::try_from((e - now).whole_seconds()).unwrap_or(0));
                    format!("{} ({})", rfc822(e), go_duration(left))
                }
                None => "never".into(),
            };
            vec![t.metadata.name.clone(), kind, format_labels(&t.metadata.labels), expiry]
        })
        .collect()
}

/// Header of `tctl tokens ls`.
pub const TOKEN_HEADER: [&str; 4] = ["Token", "Type", "Labels", "Expiry Time (UTC)"];

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Add { token_type, ttl, value, labels, format } => {
            let format: Option<Format> = format.as_deref().map(str::parse).transpose()?;
            let roles: Vec<SystemRole> = token_type.split(',').map(|r| SystemRole::parse(r.trim())).collect::<Result<_, _>>()?;
            let ttl = parse_duration(&ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            let labels = labels.as_deref().map(parse_label_spec).transpose()?.unwrap_or_default();
            let conn = connect(c)?;
            let req = AddTokenRequest {
                roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
                ttl_seconds: ttl.as_secs().max(1),
                value,
                labels,
            };
            let r: AddTokenResponse = conn.api.post(path::TOKENS, &req).await?;
            let token = &r.token.metadata.name;
            match format {
                Some(Format::Text) => writeln!(out, "{token}")?,
                Some(Format::Json) => {
                    let v = serde_json::json!({"expires": r.token.metadata.expires.map(shared::timefmt::rfc3339), "roles": r.token.spec.roles, "token": token});
                    write!(out, "{}", shared::output::json(&v))?;
                }
                Some(Format::Yaml) => {
                    let v = serde_json::json!({"expires": r.token.metadata.expires.map(shared::timefmt::rfc3339), "roles": r.token.spec.roles, "token": token});
                    write!(out, "{}", shared::yaml::to_yaml(&v))?;
                }
                None => print_added(out, &r, &roles, ttl)?,
            }
            Ok(())
        }
        Cmd::Ls { format } => {
            let conn = connect(c)?;
            let tokens: Vec<ProvisionToken> = conn.api.get(path::TOKENS).await?;
            match format {
                Format::Json => write!(out, "{}", shared::output::json(&tokens))?,
                Format::Yaml => write!(
                    out,
                    "{}",
                    shared::yaml::to_yaml_stream(&tokens.iter().filter_map(|t| serde_json::to_value(t).ok()).collect::<Vec<_>>())
                )?,
                Format::Text if tokens.is_empty() => writeln!(out, "No active tokens found.")?,
                Format::Text => write!(out, "{}", table(&TOKEN_HEADER, &token_rows(&tokens, time::OffsetDateTime::now_utc())))?,
            }
            Ok(())
        }
        Cmd::Rm { token } => {
            let conn = connect(c)?;
            conn.api.delete(&format!("{}/{}", path::TOKENS, encode_segment(&token))).await?;
            writeln!(out, "Token {token} has been deleted")?;
            Ok(())
        }
    }
}

fn print_added(out: &mut dyn Write, r: &AddTokenResponse, roles: &[SystemRole], ttl: Duration) -> anyhow::Result<()> {
    let token = &r.token.metadata.name;
    let minutes = (ttl.as_secs() as f64 / 60.0).round() as u64;
    if roles.contains(&SystemRole::TrustedCluster) {
        writeln!(out, "The cluster invite token: {token}")?;
        writeln!(out, "This token will expire in {minutes} minutes")?;
        writeln!(out)?;
        writeln!(out, "Use this token when defining a trusted cluster resource on a remote cluster.")?;
        writeln!(out)?;
        writeln!(out, "Here is a trusted_cluster.yaml for the leaf cluster, with this cluster's addresses filled in")?;
        writeln!(out, "(edit the role_map, then run 'tctl create trusted_cluster.yaml' on the leaf):")?;
        writeln!(out)?;
        write!(
            out,
            "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: {name}\nspec:\n  enabled: true\n  token: {token}\n  tunnel_addr: {tunnel}\n  web_proxy_addr: {web}\n  role_map:\n    - remote: \"access\"\n      local: [\"visitor\"]\n",
            name = r.cluster_name,
            tunnel = r.tunnel_addr,
            web = r.web_proxy_addr
        )?;
    } else {
        writeln!(out, "The invite token: {token}")?;
        writeln!(out, "This token will expire in {minutes} minutes.")?;
        writeln!(out)?;
        writeln!(out, "Run this on the new node to join the cluster:")?;
        writeln!(out)?;
        writeln!(out, "> teleport start \\\n   --roles=node \\\n   --token={token} \\\n   --auth-server={}", r.web_proxy_addr)?;
        writeln!(out)?;
        writeln!(out, "Add --tunnel to reach the node through a reverse tunnel (no inbound port on the node).")?;
        writeln!(out)?;
        writeln!(out, "Please note:")?;
        writeln!(out)?;
        writeln!(out, "  - This invitation token will expire in {minutes} minutes")?;
        writeln!(out, "  - {} must be reachable from the new node", r.web_proxy_addr)?;
    }
    Ok(())
}
