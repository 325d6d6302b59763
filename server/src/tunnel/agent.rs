//! The agent half of one reverse tunnel: dial out, authenticate with the host certificate,
//! learn which proxy answered (its host certificate's key id), heartbeat, hear the proxy's
//! discovery lists and advisories, and serve the channels it opens. [`super::pool`] keeps one
//! such tunnel to every proxy of the cluster and reconnects them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Msg};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::resource::token::SystemRole;
use shared::timefmt::SharedClock;
use tokio::io::{AsyncWriteExt, BufReader};

use super::killable::{KillSwitch, Killable};
use super::wire::{HEARTBEAT_SUBSYSTEM, Heartbeat, MAX_DISCOVERY_LINE, TUNNEL_ADDRESS, TunnelRequest};
use super::{AbortOnDrop, read_line_bounded, write_err};
use crate::shutdown::Shutdown;
use crate::ssh::LiveCreds;

/// What the agent does with a channel the server opens: `req` names what the server wants and
/// for whom.
pub trait TunnelService: Send + Sync + 'static {
    /// Serves one channel. Must answer with a status line (`super::write_ok`/`write_err`).
    fn serve(&self, req: TunnelRequest, stream: russh::ChannelStream<Msg>) -> BoxFuture<'static, ()>;
}

/// Supplies the CA keys that the server's host certificate must be signed by (read at every
/// connect, so a rotated or removed CA takes effect on the next attempt).
pub type CaSource = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<PublicKey>>> + Send + Sync>;

/// Agent settings.
#[derive(Clone)]
pub struct AgentConfig {
    /// For logs: `tunnel to root.example.com`.
    pub name: String,
    /// Where to dial first (`host:port`): the cluster's tunnel address, usually its load
    /// balancer; every proxy's own address comes from discovery.
    pub addr: String,
    /// The cluster the server must belong to.
    pub server_cluster: String,
    /// CA keys for the server's host certificate.
    pub server_cas: CaSource,
    /// Our host credentials.
    pub creds: LiveCreds,
    /// Heartbeat interval.
    pub interval: Duration,
    /// Missed heartbeats before giving up on the connection.
    pub count_max: u32,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Serves forwarded channels.
    pub service: Arc<dyn TunnelService>,
    /// Clock.
    pub clock: SharedClock,
    /// Where the pool reports its tunnels and failures.
    pub status: Arc<super::state::AgentStatus>,
    /// Where CAs the server cluster sends go.
    pub on_cas: Option<CasSink>,
    /// This cluster's CAs to tell the server cluster (a leaf's host CA, to its root).
    pub announce: Option<Announce>,
    /// The local address to dial from (none: the system's choice). The leaf simulator gives
    /// each leaf its own, as 10,000 real leaves would have.
    pub source: Option<std::net::IpAddr>,
}

/// What an agent tells the server cluster about its own CAs: a `cas` message, sent at connect
/// and again whenever `changes` moves and the message is different.
#[derive(Clone)]
pub struct Announce {
    /// The current message.
    pub message: Arc<dyn Fn() -> BoxFuture<'static, Option<Heartbeat>> + Send + Sync>,
    /// Signals a possible change.
    pub changes: tokio::sync::watch::Receiver<u64>,
}

/// Stores the CAs a root sends (the leaf's trust manager; tunnel nodes have none).
pub type CasSink = Arc<dyn Fn(Vec<shared::resource::CertAuthority>) + Send + Sync>;

/// Hears what the proxy says on the heartbeat channel besides `pong` and its keep-alive (which
/// the agent follows itself): its discovery lists, its CAs, that it is stopping.
pub type OnMessage = Arc<dyn Fn(Heartbeat) + Send + Sync>;

struct AgentHandler {
    cas: Vec<PublicKey>,
    cluster: String,
    service: Arc<dyn TunnelService>,
    clock: SharedClock,
    /// The key id (host UUID) of the proxy that answered.
    proxy: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for AgentHandler {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        match crate::ssh::check_server_host_cert(key, &self.cas, &self.cluster, None, self.clock.now()) {
            Ok(role) if role != SystemRole::Proxy => {
                tracing::warn!(cluster = %self.cluster, %role, "refusing tunnel server: it is not a proxy");
                Ok(false)
            }
            Ok(_) => {
                if let (PublicKeyOrCertificate::Certificate(c), Ok(mut p)) = (key, self.proxy.lock()) {
                    *p = Some(c.key_id().to_string());
                }
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, error = %e, "refusing tunnel server");
                Ok(false)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<Msg>,
        connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> std::result::Result<(), Self::Error> {
        let req = match TunnelRequest::decode(connected_address) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "refused a malformed tunnel request");
                reply.accept().await;
                let mut stream = channel.into_stream();
                tokio::spawn(async move {
                    let _ = write_err(&mut stream, &e).await;
                });
                return Ok(());
            }
        };
        reply.accept().await;
        let fut = self.service.serve(req, channel.into_stream());
        tokio::spawn(fut);
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> std::result::Result<(), Self::Error> {
        reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> std::result::Result<(), Self::Error> {
        reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }
}

/// A tunnel that is up: registered, heartbeat channel open.
pub struct Established {
    handle: client::Handle<AgentHandler>,
    hb: russh::Channel<Msg>,
    socket: KillSwitch,
    /// The proxy that answered (its host UUID).
    pub proxy: String,
}

impl Established {
    /// Closes the tunnel: the server must see it go at once (a disabled trust, a duplicate).
    /// Then the socket is cut, so that on a dead link the session and every channel through
    /// it (the sessions it was serving) end now, not when TCP gives up minutes later.
    pub async fn close(self) {
        close_parts(&self.handle, &self.socket).await;
    }
}

/// Serves an established tunnel until it drops (`false`) or `stop` (`true`); then closes it.
pub async fn serve(cfg: &AgentConfig, est: Established, on_message: OnMessage, stop: &mut Shutdown) -> bool {
    let Established { handle, hb, socket, proxy } = est;
    tracing::info!(tunnel = %cfg.name, proxy = %proxy, "tunnel connected");
    let stopped = tokio::select! {
        _ = stop.wait() => true,
        _ = heartbeat(cfg, hb.into_stream(), on_message) => false,
    };
    close_parts(&handle, &socket).await;
    stopped
}

async fn close_parts(handle: &client::Handle<AgentHandler>, socket: &KillSwitch) {
    let _ = tokio::time::timeout(Duration::from_secs(2), handle.disconnect(russh::Disconnect::ByApplication, "", "en")).await;
    socket.pull();
}

/// Why [`establish`] gave up.
#[derive(Debug)]
pub enum NotEstablished {
    /// It failed.
    Failed(Error),
    /// `claim` said no: this agent already has a tunnel to the proxy that answered.
    Duplicate(String),
}

/// Dials `addr`, learns from the handshake which proxy answered and asks `claim` whether to go
/// on (before registering anything there: a second tunnel to a proxy is dropped before that
/// proxy sees it), then authenticates, registers and opens the heartbeat channel.
pub async fn establish<F, Fut>(cfg: &AgentConfig, addr: &str, claim: F) -> std::result::Result<Established, NotEstablished>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use NotEstablished::Failed;
    let cas = (cfg.server_cas)().await.map_err(Failed)?;
    if cas.is_empty() {
        return Err(Failed(Error::not_found(format!("no host certificate authority of {} is trusted here", cfg.server_cluster))));
    }
    let tcp = tokio::time::timeout(Duration::from_secs(10), dial(addr, cfg.source))
        .await
        .map_err(|_| Failed(Error::connection_problem(format!("timed out connecting to {addr}"))))?
        .map_err(|e| Failed(shared::client::connect_error(addr, &e)))?;
    shared::tuning::set_nodelay(&tcp);
    let socket = KillSwitch::new();
    let tcp = Killable::new(tcp, socket.clone());
    let proxy = Arc::new(std::sync::Mutex::new(None));
    let handler = AgentHandler {
        cas,
        cluster: cfg.server_cluster.clone(),
        service: cfg.service.clone(),
        clock: cfg.clock.clone(),
        proxy: proxy.clone(),
    };
    let config = shared::tuning::client_config(None);
    let connected = async {
        let mut handle =
            tokio::time::timeout(Duration::from_secs(15), client::connect_stream(config, shared::tuning::ReadAhead::new(tcp), handler))
                .await
                .map_err(|_| Failed(Error::connection_problem("SSH handshake timed out")))?
                .map_err(|e| Failed(Error::connection_problem(format!("SSH handshake: {e}"))))?;
        let answered = proxy.lock().ok().and_then(|p| p.clone()).unwrap_or_default();
        if !claim(answered.clone()).await {
            let _ = tokio::time::timeout(Duration::from_secs(2), handle.disconnect(russh::Disconnect::ByApplication, "", "en")).await;
            return Err(NotEstablished::Duplicate(answered));
        }
        let registered = async {
            let creds = cfg.creds.current();
            let auth = handle
                .authenticate_openssh_cert(creds.host_id.clone(), Arc::new(creds.key.clone()), creds.cert.clone())
                .await
                .map_err(|e| Error::connection_problem(format!("authentication: {e}")))?;
            if !auth.success() {
                return Err(Error::access_denied(format!("{addr} refused our host certificate (is the trust still in place?)")));
            }
            handle.tcpip_forward(TUNNEL_ADDRESS, 0).await.map_err(|e| Error::connection_problem(format!("registering the tunnel: {e}")))?;
            let mut hb = handle.channel_open_session().await.map_err(|e| Error::connection_problem(format!("heartbeat channel: {e}")))?;
            hb.request_subsystem(true, HEARTBEAT_SUBSYSTEM)
                .await
                .map_err(|e| Error::connection_problem(format!("heartbeat channel: {e}")))?;
            loop {
                match tokio::time::timeout(Duration::from_secs(10), hb.wait()).await {
                    Ok(Some(ChannelMsg::Success)) => break,
                    Ok(Some(ChannelMsg::WindowAdjusted { .. })) => continue,
                    Ok(Some(other)) => {
                        return Err(Error::connection_problem(format!("heartbeat refused: {other:?}")));
                    }
                    Ok(None) => return Err(Error::connection_problem("heartbeat channel closed")),
                    Err(_) => return Err(Error::connection_problem("heartbeat channel timed out")),
                }
            }
            Ok(hb)
        };
        match registered.await {
            Ok(hb) => Ok((handle, hb)),
            Err(e) => Err(Failed(e)),
        }
    };
    match connected.await {
        Ok((handle, hb)) => {
            let proxy = proxy.lock().ok().and_then(|p| p.clone()).unwrap_or_default();
            Ok(Established { handle, hb, socket, proxy })
        }
        Err(e) => {
            socket.pull();
            Err(e)
        }
    }
}

/// Sends pings and watches pongs until the server stops answering or the channel closes;
/// hands the proxy's other messages to `on_message`. Pings follow the keep-alive the proxy
/// announces (the cluster dialled decides how often it wants to hear from its agents, and when
/// it gives up on them), or the agent's own until it does.
async fn heartbeat(cfg: &AgentConfig, stream: russh::ChannelStream<Msg>, on_message: OnMessage) {
    let (reader, mut writer) = tokio::io::split(stream);
    let last_pong = Arc::new(AtomicI64::new(cfg.clock.now().unix_timestamp()));
    let lp = last_pong.clone();
    let clock = cfg.clock.clone();
    let name = cfg.name.clone();
    let (keep_tx, mut keep_alive) = tokio::sync::watch::channel((cfg.interval, cfg.count_max));
    let read_task = tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        while let Ok(Some(line)) = read_line_bounded(&mut reader, MAX_DISCOVERY_LINE).await {
            match Heartbeat::decode(&line) {
                Ok(Some(Heartbeat::Pong)) => lp.store(clock.now().unix_timestamp(), Ordering::SeqCst),
                Ok(Some(Heartbeat::KeepAlive { interval_ms, count_max })) => {
                    let _ = keep_tx.send((Duration::from_millis(interval_ms).max(MIN_INTERVAL), count_max));
                }
                Ok(Some(msg)) => on_message(msg),
                // Newer proxies may say more; what we do not know we ignore.
                Ok(None) => {}
                Err(e) => tracing::warn!(tunnel = %name, error = %e, "ignored an unreadable heartbeat message"),
            }
        }
    });
    let mut read_task = AbortOnDrop(read_task);
    let deadline = |(interval, count): (Duration, u32)| (interval * count.max(1)).as_secs_f64().ceil() as i64 + 1;
    let mut current = *keep_alive.borrow_and_update();
    let mut ticker = tokio::time::interval(current.0);
    let mut announce = cfg.announce.clone();
    let mut announced = String::new();
    let mut announce_now = announce.is_some();
    loop {
        if announce_now && let Some(a) = &announce {
            announce_now = false;
            if let Some(msg) = (a.message)().await
                && msg.encode() != announced
            {
                let line = msg.encode();
                if writer.write_all(format!("{line}\n").as_bytes()).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
                tracing::debug!(tunnel = %cfg.name, "sent this cluster's host certificate authority");
                announced = line;
            }
        }
        let changed = async {
            match &mut announce {
                Some(a) => a.changes.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut read_task.0 => return,
            ok = changed => {
                if ok { announce_now = true } else { announce = None }
            }
            Ok(()) = keep_alive.changed() => {
                let next = *keep_alive.borrow_and_update();
                if next != current {
                    tracing::debug!(tunnel = %cfg.name, interval = ?next.0, count = next.1, "following the cluster's keep-alive");
                    current = next;
                    ticker = tokio::time::interval(current.0);
                    last_pong.store(cfg.clock.now().unix_timestamp(), Ordering::SeqCst);
                }
            }
            _ = ticker.tick() => {
                let now = cfg.clock.now();
                if now.unix_timestamp() - last_pong.load(Ordering::SeqCst) > deadline(current) {
                    tracing::warn!(tunnel = %cfg.name, "no heartbeat answer; reconnecting");
                    return;
                }
                let line = Heartbeat::Ping(shared::timefmt::rfc3339(now)).encode();
                if writer.write_all(format!("{line}\n").as_bytes()).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The shortest keep-alive interval an agent follows (a cluster cannot make it spin).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Connects to `addr` (`host:port`), from `source` when given.
pub async fn dial(addr: &str, source: Option<std::net::IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let Some(source) = source else { return tokio::net::TcpStream::connect(addr).await };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} resolves to no address"));
    for target in tokio::net::lookup_host(addr).await? {
        let sock = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        sock.bind(std::net::SocketAddr::new(source, 0))?;
        match sock.connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
