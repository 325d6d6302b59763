//! `tsh completion bash|zsh|fish`, generated from the same definitions as the parser.

use std::io::Write;

/// Print a completion script.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  tsh completion bash > /etc/bash_completion.d/tsh")]
pub struct Args {
    /// bash, zsh or fish.
    shell: clap_complete::Shell,
}

/// Runs the command.
pub fn exec(a: Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = super::command();
    clap_complete::generate(a.shell, &mut cmd, "tsh", out);
    Ok(())
}
