//! `teleport start | configure | version`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, Overrides};

/// The teleport daemon: auth, proxy and SSH node services.
#[derive(Debug, Parser)]
#[command(
    name = "teleport",
    disable_version_flag = true,
    after_help = "Examples:\n  teleport configure --cluster-name=root.example.com --public-addr=root.example.com:3080 -o /etc/teleport.yaml\n  teleport start -c /etc/teleport.yaml\n  teleport start --roles=node --token=<token> --auth-server=root.example.com:3080"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the services enabled in the configuration (auth, proxy and node by default).
    Start(StartArgs),
    /// Write a starter teleport.yaml.
    Configure(ConfigureArgs),
    /// Print the version.
    Version,
    /// The SFTP server a node starts as the login for one session (not run by hand).
    #[command(hide = true)]
    Sftp,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// Configuration file [default: /etc/teleport.yaml if it exists].
    #[arg(short = 'c', long = "config", env = "TELEPORT_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// Verbose logging (same as log.severity: DEBUG).
    #[arg(short = 'd', long)]
    debug: bool,
    /// Accept self-signed certificates from other clusters' proxies and from the proxy a node joins. For testing only.
    #[arg(long)]
    insecure: bool,
    /// Services to run: auth,proxy,node,kube,app,db (auth and proxy go together).
    #[arg(long, value_delimiter = ',')]
    roles: Option<Vec<String>>,
    /// State directory [default: /var/lib/teleport].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// This host's name [default: the host name].
    #[arg(long)]
    nodename: Option<String>,
    /// Cluster name [default: the node name].
    #[arg(long)]
    cluster_name: Option<String>,
    /// Join token (nodes).
    #[arg(long)]
    token: Option<String>,
    /// Proxy address to join (nodes), host:port.
    #[arg(long, visible_alias = "proxy")]
    auth_server: Option<String>,
    /// Join through a reverse tunnel (no listening port on the node).
    #[arg(long)]
    tunnel: bool,
    /// Node labels, k=v,k2=v2.
    #[arg(long)]
    labels: Option<String>,
    /// Node SSH listen address [default: 0.0.0.0:3022].
    #[arg(long)]
    ssh_listen_addr: Option<String>,
    /// Serve /healthz, /readyz and /metrics over plain HTTP here, e.g. 127.0.0.1:3000.
    #[arg(long)]
    diag_addr: Option<String>,
}

#[derive(Debug, Args)]
struct ConfigureArgs {
    /// Cluster name.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Public address of the web port, host:port.
    #[arg(long)]
    public_addr: Option<String>,
    /// State directory.
    #[arg(long, default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Node name [default: the host name].
    #[arg(long)]
    nodename: Option<String>,
    /// Web listen address.
    #[arg(long, default_value = "0.0.0.0:3080")]
    web_listen_addr: String,
    /// Where to write ("-" for stdout).
    #[arg(short = 'o', long, default_value = "-")]
    output: String,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(cli: Cli, git_rev: &str, rustc: &str) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Version => {
            writeln!(std::io::stdout(), "{}", shared::version::version_line(git_rev, rustc))?;
            Ok(())
        }
        Cmd::Configure(a) => configure(a),
        Cmd::Start(a) => start(a),
        Cmd::Sftp => crate::node::sftp::run_child(),
    }
}

fn configure(a: ConfigureArgs) -> anyhow::Result<()> {
    let nodename = a
        .nodename
        .unwrap_or_else(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into()));
    let cluster = a.cluster_name.unwrap_or_else(|| nodename.clone());
    let public = a.public_addr.unwrap_or_else(|| format!("{cluster}:3080"));
    let text = config::starter_file(&cluster, &public, &a.data_dir, &nodename, &a.web_listen_addr);
    config::parse(&text, "generated config").map_err(|e| anyhow!("{e}"))?;
    if a.output == "-" {
        write!(std::io::stdout(), "{text}")?;
        return Ok(());
    }
    let path = PathBuf::from(&a.output);
    if path.exists() && !a.force {
        return Err(anyhow!("{} already exists; use --force to overwrite it", path.display()));
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        std::io::stdout(),
        "A Teleport configuration file has been created at {:?}.\nTo start Teleport with this configuration file, run:\n\nteleport start -c {}\n",
        path.display().to_string(),
        path.display()
    )?;
    Ok(())
}

fn start(a: StartArgs) -> anyhow::Result<()> {
    shared::tuning::check().map_err(|e| anyhow!(e))?;
    let path = a.config.clone().or_else(|| {
        let p = PathBuf::from(config::DEFAULT_CONFIG);
        p.exists().then_some(p)
    });
    let file = match &path {
        Some(p) => config::read_file(p).map_err(|e| anyhow!("{e}"))?,
        None => config::FileConfig::default(),
    };
    let labels = match &a.labels {
        Some(l) => Some(shared::resource::parse_label_spec(l).map_err(|e| anyhow!("--labels: {e}"))?),
        None => None,
    };
    let o = Overrides {
        roles: a.roles,
        data_dir: a.data_dir,
        nodename: a.nodename,
        cluster_name: a.cluster_name,
        token: a.token,
        auth_server: a.auth_server,
        tunnel: a.tunnel,
        labels,
        ssh_listen_addr: a.ssh_listen_addr,
        insecure: a.insecure,
        debug: a.debug,
        diag_addr: a.diag_addr,
    };
    let cfg = Config::build(file, o).map_err(|e| anyhow!("{e}"))?;
    init_logging(&cfg)?;
    // Never the connection string (it may hold a password) or tokens.
    let storage = match &cfg.storage {
        config::Storage::Sqlite { file } => format!("sqlite {}", file.display()),
        config::Storage::Postgres { .. } => "postgresql".to_string(),
    };
    tracing::debug!(
        file = %path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(none: defaults and flags)".into()),
        cluster = %cfg.cluster_name,
        nodename = %cfg.nodename,
        data_dir = %cfg.data_dir.display(),
        auth_and_proxy = cfg.auth,
        ssh = cfg.ssh,
        storage = %storage,
        keep_alive = %format!("{}s x {}", cfg.keep_alive_interval.as_secs(), cfg.keep_alive_count_max),
        insecure = cfg.insecure,
        "configuration loaded"
    );
    if cfg.insecure {
        tracing::warn!("--insecure: TLS certificates of other proxies are not verified; do not use this in production");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        shared::client::install_crypto_provider();
        let (now, now_rx) = crate::shutdown::shutdown_pair();
        let (graceful, graceful_rx) = crate::shutdown::shutdown_pair();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut quit)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::quit()))
            else {
                return;
            };
            // SIGINT stops at once; SIGTERM and SIGQUIT (Teleport's graceful signal) let running
            // sessions finish; a second signal of any kind stops at once.
            let first_graceful = tokio::select! {
                _ = int.recv() => false,
                _ = term.recv() => true,
                _ = quit.recv() => true,
            };
            if !first_graceful {
                tracing::info!("received a stop signal");
                now.trigger();
                return;
            }
            tracing::info!("received a graceful stop signal: finishing running sessions (send it again to stop at once)");
            graceful.trigger();
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = quit.recv() => {}
            }
            tracing::info!("received a second stop signal: stopping now");
            now.trigger();
        });
        let stops = crate::shutdown::Stops { now: now_rx, graceful: graceful_rx };
        crate::process::run(cfg, stops, shared::timefmt::system_clock()).await
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let level = if cfg.debug { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    match cfg.log_output.as_str() {
        "stderr" | "" => builder.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).init(),
        "stdout" => builder.with_ansi(std::io::stdout().is_terminal()).with_writer(std::io::stdout).init(),
        file => {
            let f =
                std::fs::OpenOptions::new().create(true).append(true).open(file).with_context(|| format!("cannot open log file {file}"))?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
        }
    }
    // Libraries that log through `log` (russh says why it refused a certificate before our
    // handler sees it: expired, not yet valid, bad signature) get their warnings into our log.
    if log::set_logger(&LogBridge).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    Ok(())
}

/// Forwards `log` warnings and errors to `tracing`.
struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        match r.level() {
            log::Level::Error => tracing::error!(from = r.target(), "{}", r.args()),
            log::Level::Warn => tracing::warn!(from = r.target(), "{}", r.args()),
            _ => {}
        }
    }

    fn flush(&self) {}
}
