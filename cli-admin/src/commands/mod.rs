//! `tctl` commands: one file each, registered in [`Command`].
//!
//! # Adding a command
//! Add a file with an `Args` struct (clap) and `async fn exec(args, conn_args, out)`, add a
//! variant to [`Command`] and a line to [`exec`]. Output goes to `out`; errors are returned and
//! printed once as `ERROR: ...` by [`run`].

mod access;
mod auth;
mod completion;
mod create;
mod edit;
mod get;
mod lock;
mod map_roles;
mod recordings;
mod request;
mod rm;
mod status;
mod tokens;
mod update;
mod users;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

use crate::client::ConnArgs;

/// Administer a cluster: users, roles, tokens, trusted clusters.
#[derive(Debug, Parser)]
#[command(
    name = "tctl",
    disable_version_flag = true,
    after_help = "Examples:\n  tctl users add myuser --roles=access,editor --logins=root,ubuntu\n  tctl tokens add --type=trusted_cluster --ttl=5m\n  tctl create trusted_cluster.yaml\n  tctl get rc\n  tctl --cluster=leaf.example.com get nodes    # a leaf, through the root, as its role map allows\n\nExit codes: 0 success, 1 error, 2 usage error."
)]
pub struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage users.
    Users(users::Args),
    /// Manage join and invitation tokens.
    Tokens(tokens::Args),
    /// Create or replace resources from a YAML file.
    Create(create::Args),
    /// Print resources.
    Get(get::Args),
    /// Edit a resource in $EDITOR.
    Edit(edit::Args),
    /// Delete a resource.
    Rm(rm::Args),
    /// Update a remote cluster's labels.
    Update(update::Args),
    /// Sign identity files and export certificate authorities.
    Auth(auth::Args),
    /// Lock a user, role, login or node out of the cluster.
    Lock(lock::Args),
    /// Access requests: list, approve, deny, delete.
    Request(request::Args),
    /// Show which local roles a user with the given remote roles would get.
    MapRoles(map_roles::Args),
    /// Show the cluster and its certificate authorities.
    Status(status::Args),
    /// Explain why a user's login is allowed or denied.
    Access(access::Args),
    /// List recorded sessions.
    Recordings(recordings::Args),
    /// Print the version.
    #[command(after_help = "Example (from the guide):\n  tctl version")]
    Version,
    /// Print a shell completion script.
    Completion(completion::Args),
}

/// Parses `args` and runs; returns the exit code (0 ok, 1 error, 2 usage).
pub fn run(args: impl IntoIterator<Item = OsString>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return u8::try_from(code).unwrap_or(2);
        }
    };
    if let Err(e) = shared::tuning::check() {
        let _ = writeln!(err, "ERROR: {e}");
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "ERROR: cannot start: {e}");
            return 1;
        }
    };
    shared::client::install_crypto_provider();
    match rt.block_on(exec(cli, out, err)) {
        Ok(()) => 0,
        Err(e) if shared::output::is_broken_pipe(&e) => 0,
        Err(e) => {
            let _ = writeln!(err, "ERROR: {}", one_line(&format!("{e:#}")));
            1
        }
    }
}

/// Keeps an error on one line unless it deliberately spans several (usage examples).
fn one_line(s: &str) -> String {
    if s.contains("\n$ ") { s.trim_end().to_string() } else { s.replace('\n', " ") }
}

async fn exec(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let c = &cli.conn;
    match cli.cmd {
        Command::Users(a) => users::exec(a, c, out).await,
        Command::Tokens(a) => tokens::exec(a, c, out).await,
        Command::Create(a) => create::exec(a, c, out, err).await,
        Command::Get(a) => get::exec(a, c, out).await,
        Command::Edit(a) => edit::exec(a, c, out, err).await,
        Command::Rm(a) => rm::exec(a, c, out).await,
        Command::Update(a) => update::exec(a, c, out).await,
        Command::Auth(a) => auth::exec(a, c, out).await,
        Command::Lock(a) => lock::exec(a, c, out).await,
        Command::Request(a) => request::exec(a, c, out).await,
        // map-roles' own --cluster names the trusted root whose role_map to use; it acts on
        // the cluster tctl is connected to.
        Command::MapRoles(a) => map_roles::exec(a, &ConnArgs { cluster: None, ..c.clone() }, out).await,
        Command::Status(a) => status::exec(a, c, out).await,
        Command::Access(a) => access::exec(a, c, out).await,
        Command::Recordings(a) => recordings::exec(a, c, out).await,
        Command::Version => {
            writeln!(out, "{}", shared::version::version_line(env!("TP_GIT_REV"), env!("TP_RUSTC_VERSION")))?;
            Ok(())
        }
        Command::Completion(a) => completion::exec(a, out),
    }
}

/// The clap command (for completions and help snapshots).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses `--format`.
pub fn parse_format(s: &str) -> Result<shared::output::Format, String> {
    s.parse().map_err(|e: shared::Error| e.message)
}

/// Splits `a,b,,c` into non-empty trimmed items.
pub fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}
