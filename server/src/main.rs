//! `teleport`: the daemon. Parses arguments, runs, maps the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: a third of a 10,000-leaf listing's CPU was glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
