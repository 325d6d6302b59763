//! `tsh recordings ls` and `tsh play`: recorded sessions, kept by the cluster of the node
//! (`--cluster=leaf` asks the leaf through the root's tunnel; the leaf's role map decides).

use std::io::Write;

use shared::api::{SessionRecording, path};
use shared::output::Format;
use shared::recording::PlayFormat;

use super::{Global, parse_format};
use crate::context::Session;

/// List recorded sessions.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the recorded sessions your roles may see (newest first).
    #[command(after_help = "Examples:\n  tsh recordings ls\n  tsh recordings ls --cluster=leaf.example.com -f json")]
    Ls {
        /// Output format: text, json or yaml.
        #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
        format: Format,
    },
}

/// Replay a recorded session.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tsh play 0b9b5e3c-6c1e-4d0e-9a55-2f1f6c1f2d4e\n  tsh play --cluster=leaf.example.com --speed=4 <session-id>\n  tsh play --format=json <session-id> | jq '.[] | select(.event == \"print\")'"
)]
pub struct PlayArgs {
    /// The session ID (from 'tsh recordings ls').
    session_id: String,
    /// Play this many times faster (pty format).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// pty: the output with its timing; text: the output at once; json: every frame with its time.
    #[arg(long, default_value = "pty")]
    format: PlayFormat,
}

async fn api_for(g: &Global, err: &mut dyn Write) -> anyhow::Result<shared::client::ApiClient> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    session.cluster_api(&cluster)
}

/// Runs `tsh recordings`.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let Cmd::Ls { format } = a.cmd;
    let api = api_for(g, err).await?;
    let recs: Vec<SessionRecording> = api.get(path::RECORDINGS).await?;
    match format {
        Format::Json => write!(out, "{}", shared::output::json(&recs))?,
        Format::Yaml => write!(out, "{}", shared::output::yaml(&recs))?,
        _ => write!(out, "{}", shared::recording::table_of(&recs))?,
    }
    Ok(())
}

/// Runs `tsh play`.
pub async fn play(a: PlayArgs, g: &Global, err: &mut dyn Write) -> anyhow::Result<()> {
    if !(a.speed > 0.0 && a.speed.is_finite()) {
        anyhow::bail!("--speed must be a positive number, e.g. --speed=2");
    }
    let api = api_for(g, err).await?;
    let mut stdout = std::io::stdout().lock();
    shared::recording::play(&api, &a.session_id, a.format, a.speed, &mut stdout).await?;
    Ok(())
}
