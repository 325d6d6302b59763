//! `tsh`: sign in and reach servers. Exits with 0, 1 (error), 2 (usage), or the remote
//! command's exit code for `tsh ssh`.
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `commands` | one file per command |
//! | `context` | the signed-in session, API clients for root and leaf clusters |
//! | `sshclient` | SSH through the proxy to nodes, sessions |
//! | `escape` | `~.`, `~?` and `~~` on a terminal session |
//! | `forward` | `tsh ssh -L/-R/-D`: port forwards over the node connection |
//! | `term` | raw mode and window size |

mod commands;
mod context;
mod escape;
mod forward;
mod sshclient;
mod term;

use std::process::ExitCode;

/// mimalloc: a third of a 10,000-leaf listing's CPU was glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let code = commands::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
