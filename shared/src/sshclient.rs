//! SSH to nodes through the proxy (tsh, and the web terminal on the proxy itself):
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

use crate::certs::CLUSTER_LOCAL_NAME;
use crate::client::{ApiClient, BoxStream, Dialer};
use crate::profile::Credentials;
use crate::subsystem::ProxyRequest;
use anyhow::{Context, anyhow, bail};
use russh::ChannelMsg;
use russh::client::{self, Handle, Msg};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;
use russh::keys::ssh_key::certificate::CertType;

/// Checks a server's host certificate: signed by one of `cas`, for `cluster`; keeps the reason
/// a server gave when it ended the connection.
pub struct HostChecker {
    cas: Vec<PublicKey>,
    cluster: String,
    principal: Option<String>,
    ended: Arc<std::sync::Mutex<Option<String>>>,
    /// Where connections for remote forwards go, once the caller asked for them.
    forwarded: ForwardedSink,
    /// The local agent's socket, once the caller forwards it (`-A`).
    agent: Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
}

type ForwardedSink = Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Sender<Forwarded>>>>;

/// A connection the node opened back for a remote forward (`forwarded-tcpip`).
pub struct Forwarded {
    /// The channel.
    pub channel: russh::Channel<Msg>,
    /// The address the forward was requested for, as the client sent it.
    pub connected_address: String,
    /// Its port (the allocated one for port 0).
    pub connected_port: u32,
    /// Who connected, as the node saw it.
    pub originator: String,
}

impl client::Handler for HostChecker {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::Certificate(cert) = key else {
            tracing::warn!("the server presented a plain host key instead of a host certificate");
            return Ok(false);
        };
        let now = time::OffsetDateTime::now_utc();
        if let Err(r) = crate::certs::check_ssh_cert(cert, &self.cas, CertType::Host, self.principal.as_deref(), now) {
            tracing::debug!(cluster = %self.cluster, reason = %r, "refusing the server's host certificate");
            return Ok(false);
        }
        match crate::identity::host_from_ssh_cert(cert) {
            Ok((_, authority)) if authority == self.cluster => Ok(true),
            _ => Ok(false),
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let sink = self.forwarded.lock().ok().and_then(|s| s.clone());
        match sink {
            // Asked for: the caller checks it is one of its forwards.
            Some(tx) => {
                reply.accept().await;
                let f = Forwarded {
                    channel,
                    connected_address: connected_address.to_string(),
                    connected_port,
                    originator: format!("{originator_address}:{originator_port}"),
                };
                if tx.try_send(f).is_err() {
                    tracing::warn!("too many forwarded connections waiting; closing one");
                }
            }
            None => reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await,
        }
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<Msg>,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let path = self.agent.lock().ok().and_then(|a| a.clone());
        let Some(path) = path else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        match tokio::net::UnixStream::connect(&path).await {
            Ok(mut agent) => {
                reply.accept().await;
                tokio::spawn(async move {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut agent, &mut stream).await;
                });
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot reach the local agent");
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    async fn disconnected(&mut self, reason: client::DisconnectReason<Self::Error>) -> Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                let why = info.message.trim().to_string();
                if !why.is_empty()
                    && let Ok(mut e) = self.ended.lock()
                {
                    *e = Some(why);
                }
                Ok(())
            }
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}

/// True when a handshake failed because [`HostChecker`] refused the server's host key.
fn refused_host_key(e: &anyhow::Error) -> bool {
    e.chain().any(|c| matches!(c.downcast_ref::<russh::Error>(), Some(russh::Error::UnknownKey)))
}

/// An SSH connection to a proxy.
pub struct ProxyConn {
    handle: Handle<HostChecker>,
    ended: Arc<std::sync::Mutex<Option<String>>>,
}

/// Connects and authenticates to the proxy at `addr` (of cluster `root`).
pub async fn connect_proxy(addr: &str, root: &str, creds: &Credentials, login: &str) -> anyhow::Result<ProxyConn> {
    let tcp = tokio::time::timeout(Duration::from_secs(15), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("timed out connecting to the proxy at {addr}"))?
        .map_err(|e| anyhow!("{}", crate::client::connect_error(addr, &e)))?;
    crate::tuning::set_nodelay(&tcp);
    connect_proxy_over(tcp, addr, root, creds, login).await
}

/// SSH over `stream` (TCP, or a stream inside the proxy's own process) to the proxy `what` of
/// cluster `root`, authenticated as `login` with `creds`.
pub async fn connect_proxy_over<S>(stream: S, what: &str, root: &str, creds: &Credentials, login: &str) -> anyhow::Result<ProxyConn>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ended = Arc::new(std::sync::Mutex::new(None));
    let checker = HostChecker {
        cas: creds.host_ca_keys(root),
        cluster: root.to_string(),
        principal: None,
        ended: ended.clone(),
        forwarded: Default::default(),
        agent: Default::default(),
    };
    let mut handle = client::connect_stream(crate::tuning::client_config(None), crate::tuning::ReadAhead::new(stream), checker)
        .await
        .map_err(|e| match e {
            e if refused_host_key(&e) => anyhow!(
                "the proxy at {what} presented a host certificate that no host CA of cluster {root:?} in your profile signed; \
             if the cluster rotated its host CA, run 'tsh login' again"
            ),
            e => anyhow!("SSH handshake with the proxy at {what} failed: {e}; is the proxy's host certificate signed by cluster {root:?}?"),
        })?;
    let ok = handle
        .authenticate_openssh_cert(login, Arc::new(creds.ssh_key.clone()), creds.ssh_cert.clone())
        .await
        .context("authenticating to the proxy")?;
    if !ok.success() {
        bail!("the proxy at {what} refused your certificate; run 'tsh login' again");
    }
    Ok(ProxyConn { handle, ended })
}

/// How to reach a cluster's proxy: at its address (tsh, tctl), or, for the proxy's own web UI,
/// through streams the process makes to its own SSH side and its own API (no socket).
#[derive(Clone)]
pub enum ProxyRoute {
    /// TCP to this address.
    Addr(String),
    /// Streams inside the process.
    InProcess {
        /// A new stream into the proxy's SSH side.
        ssh: Dialer,
        /// A new stream into the cluster's API (TLS is spoken over it).
        api: Dialer,
    },
}

impl ProxyRoute {
    fn label(&self) -> &str {
        match self {
            ProxyRoute::Addr(a) => a,
            ProxyRoute::InProcess { .. } => "this process",
        }
    }

    /// Connects to the proxy's SSH side as `login`.
    pub async fn connect(&self, root: &str, creds: &Credentials, login: &str) -> anyhow::Result<ProxyConn> {
        match self {
            ProxyRoute::Addr(a) => connect_proxy(a, root, creds, login).await,
            ProxyRoute::InProcess { ssh, .. } => {
                let stream = ssh().await.map_err(|e| anyhow!("{e}"))?;
                connect_proxy_over(stream, "this process", root, creds, login).await
            }
        }
    }
}

impl ProxyConn {
    /// Asks the proxy to connect us to `req`; returns the channel as a stream, or the proxy's
    /// refusal with its kind and code.
    pub async fn subsystem(&self, req: &ProxyRequest) -> crate::Result<russh::ChannelStream<Msg>> {
        self.subsystem_channel(req).await.map(russh::Channel::into_stream)
    }

    /// [`Self::subsystem`], as the channel itself.
    pub async fn subsystem_channel(&self, req: &ProxyRequest) -> crate::Result<russh::Channel<Msg>> {
        let trouble = |what: &str, e: russh::Error| crate::Error::connection_problem(format!("{what}: {e}"));
        let mut ch = self.handle.channel_open_session().await.map_err(|e| trouble("opening a channel to the proxy", e))?;
        ch.request_subsystem(true, req.to_subsystem()).await.map_err(|e| trouble("sending the proxy request", e))?;
        let mut stderr = Vec::new();
        let mut status: Option<crate::error::WireError> = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), ch.wait()).await {
                Ok(Some(ChannelMsg::Success)) => return Ok(ch),
                Ok(Some(ChannelMsg::ExtendedData { data, ext })) if ext == crate::subsystem::REFUSAL_DATA_TYPE => {
                    status = serde_json::from_slice(&data).ok();
                }
                Ok(Some(ChannelMsg::ExtendedData { data, .. })) => stderr.extend_from_slice(&data),
                Ok(Some(ChannelMsg::WindowAdjusted { .. })) => continue,
                Ok(Some(ChannelMsg::Data { .. })) => continue,
                Ok(_) => {
                    let msg = String::from_utf8_lossy(&stderr).trim().to_string();
                    return Err(match status {
                        Some(w) => w.into(),
                        None if msg.is_empty() => {
                            crate::Error::access_denied(format!("the proxy refused the connection to {}", req.to_subsystem()))
                        }
                        None => crate::Error::access_denied(msg),
                    });
                }
                Err(_) => {
                    return Err(crate::Error::connection_problem(format!(
                        "the proxy did not answer the request for {}",
                        req.to_subsystem()
                    )));
                }
            }
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    /// Why the proxy ended the connection, when it said (a lock's message).
    pub fn ended_because(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
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
    forwarded: ForwardedSink,
    agent: Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
}

/// SSH over `stream` to the node `host` of `cluster`, as `login`.
pub async fn connect_node<S>(stream: S, host: &str, cluster: &str, creds: &Credentials, login: &str) -> anyhow::Result<NodeConn>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    connect_node_with(stream, host, cluster, creds, login, None).await
}

/// [`connect_node`], with a keep-alive every `keepalive` (OpenSSH's `ServerAliveInterval`; three
/// unanswered end the connection).
pub async fn connect_node_with<S>(
    stream: S,
    host: &str,
    cluster: &str,
    creds: &Credentials,
    login: &str,
    keepalive: Option<Duration>,
) -> anyhow::Result<NodeConn>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let cas = creds.host_ca_keys(cluster);
    if cas.is_empty() {
        bail!("no host certificate authority of cluster {cluster:?} is known; run 'tsh login' again");
    }
    let is_address = host.parse::<std::net::IpAddr>().is_ok();
    let checker = HostChecker {
        cas,
        cluster: cluster.to_string(),
        principal: if is_address { None } else { Some(host.to_string()) },
        ended: Default::default(),
        forwarded: Default::default(),
        agent: Default::default(),
    };
    let (forwarded, agent) = (checker.forwarded.clone(), checker.agent.clone());
    let mut handle = client::connect_stream(crate::tuning::client_config(keepalive), crate::tuning::ReadAhead::new(stream), checker)
        .await
        .map_err(|e| match e {
            e if refused_host_key(&e) => anyhow!(
                "node {host} presented a host certificate that no host CA of cluster {cluster:?} in your profile signed; \
                 if the cluster rotated its host CA, run 'tsh login' again"
            ),
            e => anyhow!("SSH handshake with node {host} failed: {e} (its host certificate must be signed by cluster {cluster:?})"),
        })?;
    let ok = handle
        .authenticate_openssh_cert(login, Arc::new(creds.ssh_key.clone()), creds.ssh_cert.clone())
        .await
        .context("authenticating to the node")?;
    if !ok.success() {
        // The node says no more than "no" (by design); what tsh knows narrows it down.
        let principals = creds.ssh_cert.valid_principals();
        if !principals.iter().any(|p| p == login) {
            bail!(
                "access denied to {login} connecting to {host}: {login:?} is not among your certificate's logins [{}]; ask an admin to add it to your user's logins or roles, then run 'tsh login' again",
                principals.join(", ")
            );
        }
        bail!(
            "access denied to {login} connecting to {host}: cluster {cluster} refused it (its role map or role rules); run 'tsh access explain --cluster={cluster} {login}@{host}' to see why"
        );
    }
    Ok(NodeConn { handle, forwarded, agent })
}

impl NodeConn {
    /// Runs `command` without a terminal and collects its output: (exit status, stdout, stderr).
    pub async fn exec_capture(&self, command: &str) -> anyhow::Result<(i32, Vec<u8>, Vec<u8>)> {
        let mut ch = self.open_session().await?;
        ch.exec(true, command).await.context("starting the command")?;
        let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => code = Some(i32::try_from(exit_status).unwrap_or(255)),
                ChannelMsg::ExitSignal { .. } => code = Some(255),
                ChannelMsg::Failure => bail!("the node refused to start the command"),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok((code.ok_or_else(|| anyhow!("the connection to the node was lost before the command finished"))?, out, err))
    }

    /// Opens a session channel (the caller asks for a terminal, a shell or a command).
    pub async fn open_session(&self) -> anyhow::Result<russh::Channel<Msg>> {
        self.handle.channel_open_session().await.context("opening a session")
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    /// Asks the node to connect to `host:port` (`-L`, `-D`); `from` is who connected here.
    pub async fn direct_tcpip(&self, host: &str, port: u32, from: std::net::SocketAddr) -> Result<russh::Channel<Msg>, russh::Error> {
        self.handle.channel_open_direct_tcpip(host, port, from.ip().to_string(), u32::from(from.port())).await
    }

    /// Asks the node to listen on `address:port` (`-R`); the port it listens on (the allocated
    /// one when `port` is 0).
    pub async fn remote_forward(&self, address: &str, port: u32) -> Result<u32, russh::Error> {
        let got = self.handle.tcpip_forward(address, port).await?;
        Ok(if port == 0 { got } else { port })
    }

    /// Serves the node's agent channels from the agent at `socket` (`-A`), from now on.
    pub fn forward_agent(&self, socket: std::path::PathBuf) {
        if let Ok(mut a) = self.agent.lock() {
            *a = Some(socket);
        }
    }

    /// An SFTP session with the node (its `sftp` subsystem, served as the login), with the
    /// node's own words when it refuses (copying not allowed by a role or the node).
    pub async fn sftp(&self) -> anyhow::Result<russh_sftp::client::SftpSession> {
        open_sftp(self).await
    }

    /// The connections the node opens back for remote forwards, from now on.
    pub fn forwarded_connections(&self) -> tokio::sync::mpsc::Receiver<Forwarded> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        if let Ok(mut s) = self.forwarded.lock() {
            *s = Some(tx);
        }
        rx
    }
}

/// Standard output of the channel as a byte stream, its standard error kept for the message a
/// node sends when it refuses (then the stream just ends).
struct ChannelData {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl tokio::io::AsyncRead for ChannelData {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        while self.current.is_empty() {
            match self.rx.poll_recv(cx) {
                std::task::Poll::Ready(Some(b)) => self.current = b,
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(Ok(())),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
        let n = self.current.len().min(buf.remaining());
        let chunk = self.current.split_to(n);
        buf.put_slice(&chunk);
        std::task::Poll::Ready(Ok(()))
    }
}

/// A path as the node's SFTP server reads it: `""`, `~` and `~/x` from the login's home (the
/// server's start directory), as OpenSSH's scp rewrites them (`tsh scp` and the web UI's files).
pub fn sftp_path(p: &str) -> String {
    match p {
        "" | "~" | "~/" => ".".into(),
        _ => p.strip_prefix("~/").unwrap_or(p).to_string(),
    }
}

/// Opens the node's `sftp` subsystem; the node's own words when it refuses.
async fn open_sftp(node: &NodeConn) -> anyhow::Result<russh_sftp::client::SftpSession> {
    let ch = node.open_session().await?;
    ch.request_subsystem(true, "sftp").await?;
    let (mut rd, wr) = ch.split();
    let writer = wr.make_writer();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let stderr = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let (refused_tx, refused_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let stderr = stderr.clone();
        tokio::spawn(async move {
            let mut refused = Some(refused_tx);
            let _wr = wr;
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data } if tx.send(data.clone()).await.is_err() => break,
                    ChannelMsg::ExtendedData { data, .. } => {
                        if let Ok(mut e) = stderr.lock()
                            && e.len() < 4096
                        {
                            e.extend_from_slice(&data);
                        }
                    }
                    ChannelMsg::Failure => {
                        if let Some(r) = refused.take() {
                            let _ = r.send(());
                        }
                        break;
                    }
                    ChannelMsg::Close | ChannelMsg::Eof => break,
                    _ => {}
                }
            }
        });
    }
    let stream = tokio::io::join(ChannelData { rx, current: bytes::Bytes::new() }, writer);
    let cfg =
        russh_sftp::client::Config { max_concurrent_reads: 32, max_concurrent_writes: 32, request_timeout_secs: 120, ..Default::default() };
    let opened = tokio::select! {
        s = russh_sftp::client::SftpSession::new_with_config(stream, cfg) => s.map_err(|e| e.to_string()),
        _ = refused_rx => Err(String::new()),
    };
    opened.map_err(|e| {
        let said = stderr.lock().map(|s| String::from_utf8_lossy(&s).trim().to_string()).unwrap_or_default();
        let said = said.strip_prefix("ERROR: ").unwrap_or(&said).to_string();
        match (said.is_empty(), e.is_empty()) {
            (false, _) => anyhow!("{said}"),
            (true, true) => anyhow!("the node does not serve SFTP (subsystem request failed)"),
            (true, false) => anyhow!("the node's SFTP server did not answer: {e}"),
        }
    })
}

/// What one read of a forwarded TCP connection may take (four SSH packets).
const RELAY_CHUNK: usize = 4 * crate::tuning::MAX_PACKET as usize;

/// Copies both ways between an SSH channel and a TCP connection (port forwarding, either end,
/// either direction) until both directions are done, then closes the channel.
pub async fn relay_tcp<S>(channel: russh::Channel<S>, tcp: tokio::net::TcpStream)
where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let _ = tcp.set_nodelay(true);
    let (tcp_rd, tcp_wr) = tcp.into_split();
    relay(channel, tcp_rd, tcp_wr, Ending::Both).await;
}

/// When a [`relay`] is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// When both directions are done (a forwarded TCP connection, `tsh proxy ssh`'s pipes).
    Both,
    /// When the stream side ends or dies: the channel's EOF only half-closes the stream, whose
    /// answer still comes back (a channel carrying SSH end to end through a proxy, where a dead
    /// target must end the user's connection at once).
    StreamEnds,
}

/// Copies both ways between an SSH channel and a stream's reader and writer until `ending`,
/// then closes the channel. A read from the stream goes out as owned buffers cut into packets
/// without a copy; channel data goes to the stream as it arrives. Through a `ChannelStream` each
/// byte was copied once more each way, into the stream's buffers.
pub async fn relay<S, R, W>(channel: russh::Channel<S>, mut rd: R, mut wr: W, ending: Ending)
where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut ch_rd, ch_wr) = channel.split();
    // True when the channel's side ended (EOF, close) rather than the stream refusing a write.
    let to_stream = async {
        while let Some(msg) = ch_rd.wait().await {
            let data = match msg {
                ChannelMsg::Data { data } => data,
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => continue,
            };
            if wr.write_all(&data).await.is_err() {
                return false;
            }
        }
        let _ = wr.shutdown().await;
        true
    };
    let to_channel = async {
        let mut buf = bytes::BytesMut::new();
        loop {
            buf.reserve(RELAY_CHUNK);
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if ch_wr.data_bytes(buf.split().freeze()).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = ch_wr.eof().await;
    };
    match ending {
        Ending::Both => {
            tokio::join!(to_stream, to_channel);
        }
        Ending::StreamEnds => {
            tokio::pin!(to_channel);
            tokio::select! {
                clean = to_stream => if clean { (&mut to_channel).await },
                () = &mut to_channel => {}
            }
        }
    }
    let _ = ch_wr.close().await;
}

/// The API of `cluster` as the holder of `creds`: the root directly at `proxy_addr`, a leaf
/// through the root proxy's tunnel (TLS end to end with the leaf).
pub fn cluster_api(proxy_addr: &str, root: &str, creds: &Credentials, username: &str, cluster: &str) -> crate::Result<ApiClient> {
    cluster_api_via(&ProxyRoute::Addr(proxy_addr.to_string()), root, creds, username, cluster)
}

/// [`cluster_api`] along `route`.
pub fn cluster_api_via(route: &ProxyRoute, root: &str, creds: &Credentials, username: &str, cluster: &str) -> crate::Result<ApiClient> {
    if cluster == root {
        let trust = creds.cluster_trust(root)?;
        let dialer = match route {
            ProxyRoute::Addr(a) => crate::client::tcp_dialer(a),
            ProxyRoute::InProcess { api, .. } => api.clone(),
        };
        return ApiClient::new(dialer, CLUSTER_LOCAL_NAME, &trust, Some(&creds.client_identity()), route.label());
    }
    let trust = creds.cluster_trust(cluster).map_err(|_| {
        crate::Error::not_found(format!("cluster {cluster:?} is not found; run 'tsh clusters' to see the clusters you can reach"))
            .with_code(crate::Code::ClusterNotFound)
    })?;
    let (route, root, user, target) = (route.clone(), root.to_string(), username.to_string(), cluster.to_string());
    let identity = creds.client_identity();
    let creds = Arc::new(creds.clone());
    let dialer: Dialer = Arc::new(move || {
        let (route, root, user, target, creds) = (route.clone(), root.clone(), user.clone(), target.clone(), creds.clone());
        Box::pin(async move {
            let proxy = route.connect(&root, &creds, &user).await.map_err(|e| crate::Error::connection_problem(format!("{e:#}")))?;
            let req = ProxyRequest { host: String::new(), port: None, cluster: Some(target) };
            let stream = proxy.subsystem(&req).await?;
            Ok(Box::new(TunnelStream::new(stream, proxy)) as BoxStream)
        })
    });
    ApiClient::new(dialer, CLUSTER_LOCAL_NAME, &trust, Some(&identity), cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sftp_paths_start_from_the_logins_home_as_scp_writes_them() {
        assert_eq!((sftp_path("~"), sftp_path("~/in/x"), sftp_path("/tmp")), (".".into(), "in/x".into(), "/tmp".into()));
        assert_eq!(sftp_path(""), ".");
    }
}
