//! `tctl recordings ls`: every recorded session of the cluster (or of `--cluster=leaf`, as the
//! leaf's role map allows).

use std::io::Write;

use shared::api::{SessionRecording, path};
use shared::output::Format;

use super::parse_format;
use crate::client::{ConnArgs, connect};

/// List recorded sessions.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List recorded sessions (newest first); play one with 'tsh play <id>'.
    #[command(after_help = "Examples:\n  tctl recordings ls\n  tctl --cluster=leaf.example.com recordings ls -f json")]
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let Cmd::Ls { format } = a.cmd;
    let conn = connect(c)?;
    let recs: Vec<SessionRecording> = conn.api.get(path::RECORDINGS).await?;
    match format {
        Format::Json => write!(out, "{}", shared::output::json(&recs))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&recs))?,
        _ => write!(out, "{}", shared::recording::table_of(&recs))?,
    }
    Ok(())
}
