//! SSH to nodes through the proxy:
//!
//! ```text
//! tsh --TCP+SSH--> proxy (root)    host certificate checked against the root host CA
//!     session + subsystem "proxy:<host>:<port>@<cluster>"
//!     ==channel== SSH end to end with the node   host certificate checked against the
//!                                                 node's cluster host CA; user certificate
//! ```
//! The same subsystem with no host (`proxy:@leaf`) reaches a leaf's API, over which the API
//! client speaks TLS end to end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use russh::ChannelMsg;
use russh::client::{self, Handle, Msg};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;
use russh::keys::ssh_key::certificate::CertType;
use shared::profile::Credentials;
use shared::subsystem::ProxyRequest;

/// Checks a server's host certificate: signed by one of `cas`, for `cluster`.
pub struct HostChecker {
    cas: Vec<PublicKey>,
    cluster: String,
    principal: Option<String>,
}

impl client::Handler for HostChecker {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::Certificate(cert) = key else {
            tracing::warn!("the server presented a plain host key instead of a host certificate");
            return Ok(false);
        };
        let now = time::OffsetDateTime::now_utc();
        if let Err(r) = shared::certs::check_ssh_cert(cert, &self.cas, CertType::Host, self.principal.as_deref(), now) {
            tracing::debug!(cluster = %self.cluster, reason = %r, "refusing the server's host certificate");
            return Ok(false);
        }
        match shared::identity::host_from_ssh_cert(cert) {
            Ok((_, authority)) if authority == self.cluster => Ok(true),
            _ => Ok(false),
        }
    }
}

/// An SSH connection to a proxy.
pub struct ProxyConn {
    handle: Handle<HostChecker>,
}

/// Connects and authenticates to the proxy at `addr` (of cluster `root`).
pub async fn connect_proxy(addr: &str, root: &str, creds: &Credentials, login: &str) -> anyhow::Result<ProxyConn> {
    let tcp = tokio::time::timeout(Duration::from_secs(15), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("timed out connecting to the proxy at {addr}"))?
        .map_err(|e| anyhow!("{}", shared::client::connect_error(addr, &e)))?;
    shared::tuning::set_nodelay(&tcp);
    let checker = HostChecker { cas: creds.host_ca_keys(root), cluster: root.to_string(), principal: None };
    let mut handle = client::connect_stream(shared::tuning::client_config(None), tcp, checker).await.map_err(|e| {
        anyhow!("SSH handshake with the proxy at {addr} failed: {e}; is the proxy's host certificate signed by cluster {root:?}?")
    })?;
    let ok = handle
        .authenticate_openssh_cert(login, Arc::new(creds.ssh_key.clone()), creds.ssh_cert.clone())
        .await
        .context("authenticating to the proxy")?;
    if !ok.success() {
        bail!("the proxy at {addr} refused your certificate; run 'tsh login' again");
    }
    Ok(ProxyConn { handle })
}

impl ProxyConn {
    /// Asks the proxy to connect us to `req`; returns the channel as a stream.
    pub async fn subsystem(&self, req: &ProxyRequest) -> anyhow::Result<russh::ChannelStream<Msg>> {
        let mut ch = self.handle.channel_open_session().await.context("opening a channel to the proxy")?;
        ch.request_subsystem(true, req.to_subsystem()).await.context("sending the proxy request")?;
        let mut stderr = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(60), ch.wait()).await {
                Ok(Some(ChannelMsg::Success)) => return Ok(ch.into_stream()),
                Ok(Some(ChannelMsg::ExtendedData { data, .. })) => stderr.extend_from_slice(&data),
                Ok(Some(ChannelMsg::WindowAdjusted { .. })) => continue,
                Ok(Some(ChannelMsg::Data { .. })) => continue,
                Ok(_) => {
                    let msg = String::from_utf8_lossy(&stderr).trim().to_string();
                    if msg.is_empty() {
                        bail!("the proxy refused the connection to {}", req.to_subsystem());
                    }
                    bail!("{msg}");
                }
                Err(_) => bail!("the proxy did not answer the request for {}", req.to_subsystem()),
            }
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// A stream that keeps its SSH connection alive (for the API client over the tunnel).
pub struct TunnelStream {
    stream: russh::ChannelStream<Msg>,
    _proxy: ProxyConn,
}

impl TunnelStream {
    /// Wraps a channel and its connection.
    pub fn new(stream: russh::ChannelStream<Msg>, proxy: ProxyConn) -> TunnelStream {
        TunnelStream { stream, _proxy: proxy }
    }
}

impl tokio::io::AsyncRead for TunnelStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// An SSH connection to a node.
pub struct NodeConn {
    handle: Handle<HostChecker>,
}

/// SSH over `stream` to the node `host` of `cluster`, as `login`.
pub async fn connect_node<S>(stream: S, host: &str, cluster: &str, creds: &Credentials, login: &str) -> anyhow::Result<NodeConn>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let cas = creds.host_ca_keys(cluster);
    if cas.is_empty() {
        bail!("no host certificate authority of cluster {cluster:?} is known; run 'tsh login' again");
    }
    let is_address = host.parse::<std::net::IpAddr>().is_ok();
    let checker = HostChecker { cas, cluster: cluster.to_string(), principal: if is_address { None } else { Some(host.to_string()) } };
    let mut handle = client::connect_stream(shared::tuning::client_config(None), stream, checker)
        .await
        .map_err(|e| anyhow!("SSH handshake with node {host} failed: {e} (its host certificate must be signed by cluster {cluster:?})"))?;
    let ok = handle
        .authenticate_openssh_cert(login, Arc::new(creds.ssh_key.clone()), creds.ssh_cert.clone())
        .await
        .context("authenticating to the node")?;
    if !ok.success() {
        bail!("access denied to {login} connecting to {host}");
    }
    Ok(NodeConn { handle })
}

/// What to run.
pub struct SessionSpec {
    /// Command, or `None` for a shell.
    pub command: Option<String>,
    /// Allocate a PTY.
    pub tty: bool,
}

impl NodeConn {
    /// Runs a session, relaying the local terminal; returns the remote exit status.
    pub async fn run(&self, spec: SessionSpec) -> anyhow::Result<i32> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ch = self.handle.channel_open_session().await.context("opening a session")?;
        if let Ok(lang) = std::env::var("LANG") {
            let _ = ch.set_env(false, "LANG", lang).await;
        }
        if spec.tty {
            let (cols, rows) = crate::term::size();
            let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
            ch.request_pty(false, &term, cols, rows, 0, 0, &[]).await.context("requesting a terminal")?;
        }
        match &spec.command {
            Some(c) => ch.exec(true, c.as_str()).await.context("starting the command")?,
            None => ch.request_shell(true).await.context("starting a shell")?,
        }
        let (mut rd, wr) = ch.split();
        let wr = Arc::new(wr);
        let _raw = if spec.tty && crate::term::stdin_is_tty() { Some(crate::term::RawMode::enter()) } else { None };
        let input = {
            let wr = wr.clone();
            tokio::spawn(async move {
                let mut stdin = tokio::io::stdin();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stdin.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            let _ = wr.eof().await;
                            return;
                        }
                        Ok(n) => {
                            if wr.data_bytes(buf[..n].to_vec()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            })
        };
        let resize = if spec.tty {
            let wr = wr.clone();
            Some(tokio::spawn(async move {
                let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else { return };
                while sig.recv().await.is_some() {
                    let (c, r) = crate::term::size();
                    let _ = wr.window_change(c, r, 0, 0).await;
                }
            }))
        } else {
            None
        };
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut code: Option<i32> = None;
        let mut closed_cleanly = false;
        while let Some(msg) = rd.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    stdout.write_all(&data).await?;
                    stdout.flush().await?;
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    stderr.write_all(&data).await?;
                    stderr.flush().await?;
                }
                ChannelMsg::ExitStatus { exit_status } => code = Some(i32::try_from(exit_status).unwrap_or(255)),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    let _ = stderr.write_all(format!("the remote command was killed by signal {signal_name:?}\n").as_bytes()).await;
                    code = Some(255);
                }
                ChannelMsg::Failure => bail!("the node refused to start the session"),
                ChannelMsg::Close => {
                    closed_cleanly = true;
                    break;
                }
                _ => {}
            }
        }
        input.abort();
        if let Some(r) = resize {
            r.abort();
        }
        match code {
            Some(c) => Ok(c),
            None if closed_cleanly => Ok(0),
            None => bail!("the connection to the node was lost before the command finished"),
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}
