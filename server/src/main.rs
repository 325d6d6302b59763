//! `teleport`: the daemon. Parses arguments, runs, maps the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = teleport_server::cli::Cli::parse();
    match teleport_server::cli::run(cli, env!("TP_GIT_REV"), env!("TP_RUSTC_VERSION")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ERROR: {e:#}");
            ExitCode::from(1)
        }
    }
}
