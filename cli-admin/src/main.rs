//! `tctl`: administer a cluster. Parses, runs, exits with 0 (ok), 1 (error) or 2 (usage).
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `client` | how tctl finds and authenticates to its cluster |
//! | `commands` | one file per command (`users`, `tokens`, `create`, `get`, `edit`, `rm`, `update`, `auth`, `map-roles`, `status`, `completion`) |

mod client;
mod commands;

use std::process::ExitCode;

/// mimalloc: a third of a 10,000-leaf listing's CPU was glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let code = commands::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
