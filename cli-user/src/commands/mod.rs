//! `tsh` commands: one file each, registered in [`Command`].

mod access;
mod apps;
mod clusters;
mod completion;
mod config;
mod db;
mod kube;
mod login;
mod logout;
mod ls;
mod mfa;
mod proxy;
mod recordings;
mod request;
mod scp;
mod sessions;
mod ssh;
mod sso;
mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Options every command accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Global {
    /// Proxy address, host[:port] (no port: 443, then 3080).
    #[arg(long, global = true, env = "TELEPORT_PROXY", hide_env_values = true)]
    pub proxy: Option<String>,
    /// Teleport user [default: the current profile's, else $USER].
    #[arg(long, global = true, env = "TELEPORT_USER", hide_env_values = true)]
    pub user: Option<String>,
    /// Cluster to act on (a leaf of the root you signed in to).
    #[arg(long, global = true, env = "TELEPORT_CLUSTER", hide_env_values = true)]
    pub cluster: Option<String>,
    /// Identity file (from 'tctl auth sign') instead of a profile.
    #[arg(short = 'i', long, global = true, env = "TELEPORT_IDENTITY_FILE", hide_env_values = true)]
    pub identity: Option<PathBuf>,
    /// Do not verify the proxy's web certificate (testing only).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Verbose output.
    #[arg(short = 'd', long, global = true)]
    pub debug: bool,
}

/// Sign in to clusters and reach their servers.
#[derive(Debug, Parser)]
#[command(
    name = "tsh",
    disable_version_flag = true,
    after_help = "Examples:\n  tsh login --proxy=root.example.com --user=myuser\n  tsh ls --cluster=leaf.example.com\n  tsh ssh --cluster=leaf.example.com visitor@node1\n\nExit codes: 0 success, 1 error, 2 usage error; tsh ssh returns the remote command's exit code, and 255 when it cannot connect (as ssh does)."
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in to a cluster (or select a leaf cluster: tsh login <cluster>).
    Login(login::Args),
    /// Remove your keys and certificates.
    #[command(
        after_help = "Examples:\n  tsh logout                                 # every profile\n  tsh logout --proxy=root.example.com:3080   # one profile"
    )]
    Logout,
    /// Show who you are signed in as.
    Status(status::Args),
    /// List the nodes you can reach.
    Ls(ls::Args),
    /// Run a shell or a command on a node.
    Ssh(ssh::Args),
    /// Copy files to or from a node (SFTP).
    Scp(scp::Args),
    /// List the root cluster and the leaf clusters you can reach.
    Clusters(clusters::Args),
    /// Print the version.
    #[command(after_help = "Example:\n  tsh version")]
    Version,
    /// Print an OpenSSH client configuration for the clusters you can reach.
    Config(config::Args),
    /// Connect stdin/stdout to a node (OpenSSH ProxyCommand).
    Proxy(proxy::Args),
    /// Print a shell completion script.
    Completion(completion::Args),
    /// List, add and remove your second-factor (TOTP) devices.
    Mfa(mfa::Args),
    /// Explain why a login is allowed or denied.
    Access(access::Args),
    /// List recorded sessions.
    Recordings(recordings::Args),
    /// Replay a recorded session.
    Play(recordings::PlayArgs),
    /// List live sessions you may see or join.
    Sessions(sessions::Args),
    /// Join a live session (watch it, or type too).
    Join(sessions::JoinArgs),
    /// Kubernetes clusters: list them, log in to one, credentials for kubectl.
    Kube(kube::Args),
    /// Applications: list the ones you can reach.
    Apps(apps::Args),
    /// Databases: list the ones you can reach.
    Db(db::Args),
    /// Access requests: ask for roles for a while, review others' requests.
    Request(request::Args),
}

/// Parses and runs; returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return u8::try_from(code).unwrap_or(2);
        }
    };
    let level = if cli.global.debug { tracing::Level::DEBUG } else { tracing::Level::WARN };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    if let Err(e) = shared::tuning::check() {
        let _ = writeln!(err, "ERROR: {e}");
        return 1;
    }
    // One thread: a client's work is a few connections, and on one thread a packet goes from
    // the socket through russh to the terminal without waking another worker (A/B of
    // `tsh ssh` in one cluster: 1 GiB at 0.81-0.96 instead of 1.08-1.09 CPU s/GiB,
    // 636-704 instead of 538-593 MiB/s, keystroke echo p50 0.44-0.47 instead of 0.46-0.51 ms).
    // Blocking work still goes to tokio's blocking pool, standard input to its own thread.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "ERROR: cannot start: {e}");
            return 1;
        }
    };
    shared::client::install_crypto_provider();
    let result = rt.block_on(exec(cli, out, err));
    // Do not wait for a blocked read of standard input.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) if shared::output::is_broken_pipe(&e) => 0,
        Err(e) if e.downcast_ref::<ssh::NotConnected>().is_some() => {
            let _ = writeln!(err, "ERROR: {}", format!("{e:#}").replace('\n', " "));
            255
        }
        Err(e) => {
            let _ = writeln!(err, "ERROR: {}", format!("{e:#}").replace('\n', " "));
            1
        }
    }
}

async fn exec(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let g = cli.global;
    match cli.cmd {
        Command::Login(a) => login::exec(a, &g, out, err).await.map(|_| 0),
        Command::Logout => logout::exec(&g, out).map(|_| 0),
        Command::Status(a) => status::exec(a, &g, out).await.map(|_| 0),
        Command::Ls(a) => ls::exec(a, &g, out, err).await.map(|_| 0),
        Command::Ssh(a) => ssh::exec(a, &g).await,
        Command::Scp(a) => scp::exec(a, &g).await,
        Command::Clusters(a) => clusters::exec(a, &g, out).await.map(|_| 0),
        Command::Version => {
            writeln!(out, "{}", shared::version::version_line(env!("TP_GIT_REV"), env!("TP_RUSTC_VERSION")))?;
            Ok(0)
        }
        Command::Config(a) => config::exec(a, &g, out).await.map(|_| 0),
        Command::Mfa(a) => mfa::exec(a, &g, out, err).await.map(|_| 0),
        Command::Access(a) => access::exec(a, &g, out, err).await,
        Command::Recordings(a) => recordings::exec(a, &g, out, err).await.map(|_| 0),
        Command::Play(a) => recordings::play(a, &g, err).await.map(|_| 0),
        Command::Sessions(a) => sessions::exec(a, &g, out, err).await.map(|_| 0),
        Command::Join(a) => sessions::join(a, &g, err).await,
        Command::Kube(a) => kube::exec(a, &g, out, err).await.map(|_| 0),
        Command::Apps(a) => apps::exec(a, &g, out, err).await.map(|_| 0),
        Command::Db(a) => db::exec(a, &g, out, err).await.map(|_| 0),
        Command::Request(a) => request::exec(a, &g, out, err).await.map(|_| 0),
        Command::Proxy(a) => proxy::exec(a, &g).await,
        Command::Completion(a) => completion::exec(a, out).map(|_| 0),
    }
}

/// The clap command (for completions and help snapshots).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses `--format`.
/// The records (`*.json`, one directory per cluster under `dir`) of a profile's app or database
/// logins, with where each is, sorted by cluster and name (`key`).
pub fn read_logins<T: serde::de::DeserializeOwned>(
    dir: &std::path::Path,
    key: impl Fn(&T) -> (String, String),
) -> Vec<(std::path::PathBuf, T)> {
    let mut out = Vec::new();
    for cluster in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(cluster.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "json")
                && let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(l) = serde_json::from_str::<T>(&text)
            {
                out.push((p, l));
            }
        }
    }
    out.sort_by_key(|(_, l)| key(l));
    out
}

pub fn parse_format(s: &str) -> Result<shared::output::Format, String> {
    s.parse().map_err(|e: shared::Error| e.message)
}
