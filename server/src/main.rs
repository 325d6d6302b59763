//! `teleport`: the daemon. Parses arguments, runs, maps the result to an exit code.
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `cli`, `config` | arguments, `teleport.yaml` |
//! | `process` | assembling services, shutdown |
//! | `storage` | the key-value trait, SQLite and memory backends |
//! | `services` | typed resource access and key layout |
//! | `auth` | CAs, certificates, users, tokens, trust handshake, nodes |
//! | `authz` | the authorizing facade every API call goes through |
//! | `api` | HTTPS handlers (axum) |
//! | `listener`, `tls` | the multiplexed web port |
//! | `ssh` | russh configuration, the proxy's SSH side, routing |
//! | `tunnel` | reverse tunnels: registry, agent, leaf-side manager |
//! | `node` | the SSH node: authorization and sessions |
//! | `audit` | the audit log |

mod api;
mod audit;
mod auth;
mod authz;
mod cli;
mod config;
mod listener;
mod node;
mod process;
mod services;
mod ssh;
mod storage;
mod tls;
mod tunnel;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli, env!("TP_GIT_REV"), env!("TP_RUSTC_VERSION")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ERROR: {e:#}");
            ExitCode::from(1)
        }
    }
}
