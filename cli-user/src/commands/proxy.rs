//! `tsh proxy ssh [--cluster=C] user@host:port`: connects standard input and output to a node
//! through the proxy (and the leaf's tunnel). OpenSSH's `ProxyCommand` for `tsh config`.
//!
//! `tsh proxy app [--cluster=C] [-p PORT] <app>`: a local listener that adds the app's
//! certificate, so any client reaches the app at `127.0.0.1:PORT` (the only way to a `tcp://`
//! app). It logs in to the app first when tsh holds no live certificate for it.
//!
//! `tsh proxy db [--cluster=C] [-p PORT] [--tunnel] <db>`: a local listener for PostgreSQL
//! clients that adds the database certificate (TLS to the proxy with ALPN `teleport-postgres`),
//! so any client or driver connects to `127.0.0.1:PORT` without TLS settings of its own. The
//! listener is on loopback only; anyone on this machine who can reach it connects as you, as
//! with Teleport's `--tunnel`, which is what it always does.

use anyhow::{anyhow, bail};
use shared::subsystem::ProxyRequest;
use tokio::io::AsyncWriteExt;

use super::Global;
use crate::context::Session;
use crate::sshclient::connect_proxy;

/// Proxy commands.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Pipe stdin/stdout to a node's SSH port (for OpenSSH's ProxyCommand).
    #[command(
        after_help = "Example (what `tsh config` writes):\n  ProxyCommand tsh proxy ssh --cluster=leaf.example.com --proxy=root.example.com:3080 %r@%h:%p"
    )]
    Ssh {
        /// user@host[:port]; a host ending in .<cluster> has the suffix removed.
        target: String,
    },
    /// A local listener for an application that adds its certificate.
    #[command(
        after_help = "Examples:\n  tsh proxy app grafana -p 8080   # then http://127.0.0.1:8080\n  tsh proxy app --cluster=leaf.example.com redis -p 6380"
    )]
    App {
        /// The application (as 'tsh apps ls' lists it).
        app: String,
        /// Local port (default: any free one, printed).
        #[arg(short = 'p', long, default_value_t = 0)]
        port: u16,
    },
    /// A local listener for a database that adds its certificate.
    #[command(
        after_help = "Examples:\n  tsh proxy db --tunnel -p 5433 pg   # then psql postgres://alice@127.0.0.1:5433/dev\n  tsh proxy db --cluster=leaf.example.com --db-user=alice --db-name=dev pg"
    )]
    Db {
        /// The database (as 'tsh db ls' lists it).
        db: String,
        /// Local port (default: any free one, printed).
        #[arg(short = 'p', long, default_value_t = 0)]
        port: u16,
        /// Add the certificate for clients (what this listener always does; for Teleport's syntax).
        #[arg(long)]
        tunnel: bool,
        /// The database user, when logging in first.
        #[arg(long = "db-user")]
        db_user: Option<String>,
        /// The database name, when logging in first.
        #[arg(long = "db-name")]
        db_name: Option<String>,
    },
}

/// Splits `user@host:port`, removing a `.<cluster>` suffix from the host.
pub fn parse_target(target: &str, cluster: &str) -> anyhow::Result<(String, String, Option<u16>)> {
    let (user, rest) = target.rsplit_once('@').ok_or_else(|| anyhow!("use user@host[:port], got {target:?}"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| anyhow!("invalid port in {target:?}"))?)),
        _ => (rest, None),
    };
    let host = host.strip_suffix(&format!(".{cluster}")).unwrap_or(host);
    if user.is_empty() || host.is_empty() {
        bail!("use user@host[:port], got {target:?}");
    }
    Ok((user.to_string(), host.to_string(), port.filter(|p| *p != 0)))
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global) -> anyhow::Result<u8> {
    let target = match a.cmd {
        Cmd::Ssh { target } => target,
        Cmd::App { app, port } => return proxy_app(g, &app, port).await,
        Cmd::Db { db, port, tunnel: _, db_user, db_name } => return proxy_db(g, &db, port, db_user, db_name).await,
    };
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let (user, host, port) = parse_target(&target, &cluster)?;
    let proxy = connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, &user).await?;
    // Direct nodes are registered with their own port; OpenSSH's 3022 default matches them, and
    // tunnel nodes ignore the port.
    let req = ProxyRequest { host, port, cluster: Some(cluster) };
    let channel = proxy.subsystem_channel(&req).await?;
    // OpenSSH's ProxyCommand hands us two pipes: read and write them on the event loop, without
    // tokio's standard streams (a blocking-pool hand-off and an 8 KiB copy per read).
    if let Some((stdin, stdout)) = stdio_pipes() {
        shared::sshclient::relay(channel, stdin, stdout, shared::sshclient::Ending::Both).await;
        proxy.close().await;
        return Ok(0);
    }
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let up = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut wr).await;
        let _ = wr.shutdown().await;
    });
    let mut stdout = tokio::io::stdout();
    let _ = tokio::io::copy(&mut rd, &mut stdout).await;
    let _ = stdout.flush().await;
    up.abort();
    proxy.close().await;
    Ok(0)
}

/// Standard input and output as non-blocking pipes, when both are pipes.
fn stdio_pipes() -> Option<(tokio::net::unix::pipe::Receiver, tokio::net::unix::pipe::Sender)> {
    use std::os::fd::AsFd;
    let input = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let output = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    let is_pipe = |fd: &std::os::fd::OwnedFd| nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if !is_pipe(&input) || !is_pipe(&output) {
        return None;
    }
    let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(input).ok()?;
    let tx = tokio::net::unix::pipe::Sender::from_owned_fd(output).ok()?;
    Some((rx, tx))
}

/// TLS to the proxy's web port with a login's certificate: the proxy's own name and pinned host
/// CA (as every tsh call to it), so the apps' and databases' DNS names are not needed.
struct ToProxy {
    connector: tokio_rustls::TlsConnector,
    proxy: String,
}

impl ToProxy {
    fn new(session: &Session, cert: &str, key: &str, alpn: Option<&str>) -> anyhow::Result<std::sync::Arc<ToProxy>> {
        let identity = shared::client::ClientIdentity {
            cert_pem: std::fs::read_to_string(cert).map_err(|e| anyhow!("cannot read {cert}: {e}"))?,
            key_pem: std::fs::read_to_string(key).map_err(|e| anyhow!("cannot read {key}: {e}"))?,
        };
        let trust = session.creds.cluster_trust(&session.profile.cluster)?;
        let mut cfg = shared::client::tls_client_config(&trust, Some(&identity))?;
        cfg.alpn_protocols = alpn.map(|a| vec![a.as_bytes().to_vec()]).unwrap_or_default();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
        Ok(std::sync::Arc::new(ToProxy { connector, proxy: session.profile.web_proxy_addr.clone() }))
    }

    async fn dial(&self) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(&self.proxy).await.map_err(|e| anyhow!("cannot reach the proxy {}: {e}", self.proxy))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(shared::certs::CLUSTER_LOCAL_NAME).unwrap_or_else(|_| unreachable!());
        self.connector.connect(name, tcp).await.map_err(|e| anyhow!("TLS to the proxy: {e}"))
    }
}

/// A listener on 127.0.0.1:`port` (0: any free port) and its address.
async fn bind_local(port: u16) -> anyhow::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves each local client with `serve` until Ctrl-C; a client's failure is a warning.
async fn serve_local<F, Fut>(listener: tokio::net::TcpListener, serve: F) -> anyhow::Result<u8>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(0),
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let _ = client.set_nodelay(true);
                    let fut = serve(client);
                    tokio::spawn(async move {
                        if let Err(e) = fut.await {
                            warn(e.to_string());
                        }
                    });
                }
                Err(e) => warn(format!("accept: {e}")),
            },
        }
    }
}

fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Serves `tsh proxy app` until interrupted.
async fn proxy_app(g: &Global, app: &str, port: u16) -> anyhow::Result<u8> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let login = match super::apps::live_login(&session, &cluster, app) {
        Some(l) => l,
        None => super::apps::login_to(&session, &cluster, app).await?,
    };
    let to = ToProxy::new(&session, &login.cert, &login.key, None)?;
    let (listener, local) = bind_local(port).await?;
    let scheme = if login.tcp { "tcp" } else { "http" };
    say(&format!("Proxying connections to {app} on {local} ({scheme}://{local}). Press Ctrl-C to stop."));
    serve_local(listener, move |mut client| {
        let to = to.clone();
        async move {
            let mut tls = to.dial().await?;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut tls).await;
            Ok(())
        }
    })
    .await
}

/// Serves `tsh proxy db` until interrupted.
async fn proxy_db(g: &Global, db: &str, port: u16, db_user: Option<String>, db_name: Option<String>) -> anyhow::Result<u8> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let login = match super::db::live_login(&session, &cluster, db) {
        Some(l) => l,
        None => super::db::login_to(&session, &cluster, db, db_user.as_deref(), db_name.as_deref()).await?,
    };
    // The web port always speaks PostgreSQL behind ALPN; `postgres_public_addr` is for psql.
    let to = ToProxy::new(&session, &login.cert, &login.key, Some(shared::pg::ALPN))?;
    let (listener, local) = bind_local(port).await?;
    let user = if login.user.is_empty() { "<user>".to_string() } else { login.user.clone() };
    let dbname = if login.database.is_empty() { "<database>".to_string() } else { login.database.clone() };
    say(&format!("Started authenticated tunnel for the PostgreSQL database \"{db}\" in cluster \"{cluster}\" on {local}."));
    say("To avoid port randomization, you can choose the listening port using the --port flag.\n");
    say("Use the following command to connect to the database or to the address above using other database GUI/CLI clients:");
    say(&format!("  $ psql postgres://{user}@localhost:{}/{dbname}", local.port()));
    serve_local(listener, move |client| pg_tunnel(client, to.clone())).await
}

/// One PostgreSQL client through the tunnel: its requests for encryption declined here (the
/// hop to the proxy is TLS), its `StartupMessage` passed on as it came.
async fn pg_tunnel(mut client: tokio::net::TcpStream, to: std::sync::Arc<ToProxy>) -> anyhow::Result<()> {
    let mut raw = Vec::new();
    let mut started = false;
    for _ in 0..3 {
        let (startup, bytes) = shared::pg::read_startup_from(&mut client)
            .await
            .map_err(|e| anyhow!("a local client sent an invalid startup packet: {}", e.message))?;
        raw = bytes;
        match startup {
            shared::pg::Startup::Ssl | shared::pg::Startup::GssEnc => client.write_all(b"N").await?,
            shared::pg::Startup::Message { .. } => {
                started = true;
                break;
            }
            shared::pg::Startup::Cancel { .. } => return Ok(()),
        }
    }
    if !started {
        bail!("a local client sent too many startup packets");
    }
    let mut tls = to.dial().await?;
    tls.write_all(&raw).await?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut tls).await;
    Ok(())
}

fn warn(msg: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "WARNING: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("visitor@node1.leaf.example.com:3022", "leaf.example.com").unwrap(),
            ("visitor".into(), "node1".into(), Some(3022))
        );
        assert_eq!(parse_target("root@db1", "c").unwrap(), ("root".into(), "db1".into(), None));
        assert!(parse_target("nouser", "c").is_err());
        assert!(parse_target("u@h:notaport", "c").is_err());
    }
}
