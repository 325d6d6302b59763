//! The agent half of a reverse tunnel: dial out, authenticate with the host certificate,
//! heartbeat, serve the channels the server opens, and reconnect with jittered backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rand::RngExt;
use russh::ChannelMsg;
use russh::client::{self, Msg};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::timefmt::SharedClock;
use tokio::io::{AsyncWriteExt, BufReader};

use super::killable::{KillSwitch, Killable};
use super::{HEARTBEAT_SUBSYSTEM, MAX_HEARTBEAT_LINE, TUNNEL_ADDRESS, TunnelRequest, read_line_bounded, write_err};
use crate::shutdown::Shutdown;
use crate::ssh::HostCreds;

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
    /// Where to dial (`host:port`).
    pub addr: String,
    /// The cluster the server must belong to.
    pub server_cluster: String,
    /// CA keys for the server's host certificate.
    pub server_cas: CaSource,
    /// Our host credentials.
    pub creds: Arc<HostCreds>,
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
}

/// The backoff before attempt `n` (1-based): linear 1s steps up to `max`, jittered to
/// 50–100% so that many agents reconnecting after a root restart do not arrive at once.
pub fn backoff(n: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(u64::from(n.min(60))).min(max).max(Duration::from_millis(200));
    let factor: f64 = rand::rng().random_range(0.5..1.0);
    base.mul_f64(factor)
}

/// How a connection ended.
enum Ended {
    /// It was up, then dropped: reconnect.
    Lost,
    /// The agent was told to stop.
    Stopped,
}

/// Runs the agent until `shutdown`.
pub async fn run(cfg: AgentConfig, mut shutdown: Shutdown) {
    let mut failures: u32 = 0;
    loop {
        match connect_and_serve(&cfg, &mut shutdown).await {
            Ok(Ended::Stopped) => return,
            Ok(Ended::Lost) => {
                tracing::info!(tunnel = %cfg.name, "tunnel disconnected; reconnecting");
                failures = 1;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures <= 2 || failures.is_multiple_of(20) {
                    tracing::warn!(tunnel = %cfg.name, addr = %cfg.addr, attempt = failures, error = %e, "tunnel connection failed");
                } else {
                    tracing::debug!(tunnel = %cfg.name, attempt = failures, error = %e, "tunnel connection failed");
                }
            }
        }
        let wait = backoff(failures, cfg.max_backoff);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

struct AgentHandler {
    cas: Vec<PublicKey>,
    cluster: String,
    service: Arc<dyn TunnelService>,
    clock: SharedClock,
}

impl client::Handler for AgentHandler {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        match crate::ssh::check_server_host_cert(key, &self.cas, &self.cluster, None, self.clock.now()) {
            Ok(_) => Ok(true),
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
        let req = match TunnelRequest::parse(connected_address) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "refused a malformed tunnel request");
                reply.accept().await;
                let mut stream = channel.into_stream();
                tokio::spawn(async move {
                    let _ = write_err(&mut stream, &e.message).await;
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

/// One connection: `Ok` after a connection that was up ends (or the agent was stopped), `Err`
/// if it never came up.
async fn connect_and_serve(cfg: &AgentConfig, shutdown: &mut Shutdown) -> Result<Ended> {
    let handle = tokio::select! {
        _ = shutdown.wait() => return Ok(Ended::Stopped),
        h = establish(cfg) => h?,
    };
    let (handle, hb, socket) = handle;
    tracing::info!(tunnel = %cfg.name, addr = %cfg.addr, "tunnel connected");
    let ended = tokio::select! {
        _ = shutdown.wait() => Ended::Stopped,
        _ = heartbeat(cfg, hb.into_stream()) => Ended::Lost,
    };
    // Close explicitly: the server must see the tunnel go at once (a disabled trust). Then cut
    // the socket, so that on a dead link the session and every channel through it (the sessions
    // it was serving) end now, not when TCP gives up minutes later.
    let _ = tokio::time::timeout(Duration::from_secs(2), handle.disconnect(russh::Disconnect::ByApplication, "", "en")).await;
    socket.pull();
    Ok(ended)
}

type Established = (client::Handle<AgentHandler>, russh::Channel<Msg>, KillSwitch);

/// Dials, authenticates, registers and opens the heartbeat channel.
async fn establish(cfg: &AgentConfig) -> Result<Established> {
    let cas = (cfg.server_cas)().await?;
    if cas.is_empty() {
        return Err(Error::not_found(format!("no host certificate authority of {} is trusted here", cfg.server_cluster)));
    }
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&cfg.addr))
        .await
        .map_err(|_| Error::connection_problem(format!("timed out connecting to {}", cfg.addr)))?
        .map_err(|e| shared::client::connect_error(&cfg.addr, &e))?;
    shared::tuning::set_nodelay(&tcp);
    let socket = KillSwitch::new();
    let tcp = Killable::new(tcp, socket.clone());
    let handler = AgentHandler { cas, cluster: cfg.server_cluster.clone(), service: cfg.service.clone(), clock: cfg.clock.clone() };
    let config = shared::tuning::client_config(None);
    let mut handle = tokio::time::timeout(Duration::from_secs(15), client::connect_stream(config, tcp, handler))
        .await
        .map_err(|_| Error::connection_problem("SSH handshake timed out"))?
        .map_err(|e| Error::connection_problem(format!("SSH handshake: {e}")))?;
    let auth = handle
        .authenticate_openssh_cert(cfg.creds.host_id.clone(), Arc::new(cfg.creds.key.clone()), cfg.creds.cert.clone())
        .await
        .map_err(|e| Error::connection_problem(format!("authentication: {e}")))?;
    if !auth.success() {
        return Err(Error::access_denied(format!("{} refused our host certificate (is the trust still in place?)", cfg.addr)));
    }
    handle.tcpip_forward(TUNNEL_ADDRESS, 0).await.map_err(|e| Error::connection_problem(format!("registering the tunnel: {e}")))?;
    let mut hb = handle.channel_open_session().await.map_err(|e| Error::connection_problem(format!("heartbeat channel: {e}")))?;
    hb.request_subsystem(true, HEARTBEAT_SUBSYSTEM).await.map_err(|e| Error::connection_problem(format!("heartbeat channel: {e}")))?;
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
    Ok((handle, hb, socket))
}

/// Sends pings and watches pongs until the server stops answering or the channel closes.
async fn heartbeat(cfg: &AgentConfig, stream: russh::ChannelStream<Msg>) {
    let (reader, mut writer) = tokio::io::split(stream);
    let last_pong = Arc::new(AtomicI64::new(cfg.clock.now().unix_timestamp()));
    let lp = last_pong.clone();
    let clock = cfg.clock.clone();
    let read_task = tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        while let Ok(Some(line)) = read_line_bounded(&mut reader, MAX_HEARTBEAT_LINE).await {
            if line.starts_with("pong") {
                lp.store(clock.now().unix_timestamp(), Ordering::SeqCst);
            }
        }
    });
    let mut read_task = AbortOnDrop(read_task);
    let deadline = (cfg.interval * cfg.count_max.max(1)).as_secs_f64().ceil() as i64 + 1;
    let mut ticker = tokio::time::interval(cfg.interval);
    loop {
        tokio::select! {
            _ = &mut read_task.0 => return,
            _ = ticker.tick() => {
                let now = cfg.clock.now();
                if now.unix_timestamp() - last_pong.load(Ordering::SeqCst) > deadline {
                    tracing::warn!(tunnel = %cfg.name, "no heartbeat answer; reconnecting");
                    return;
                }
                let line = format!("ping {}\n", shared::timefmt::rfc3339(now));
                if writer.write_all(line.as_bytes()).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Aborts the task when dropped (a dropped `JoinHandle` would let it run on).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let max = Duration::from_secs(10);
        for n in 1..100 {
            let b = backoff(n, max);
            assert!(b <= max, "{b:?}");
            assert!(b >= Duration::from_millis(100));
        }
        let samples: Vec<Duration> = (0..20).map(|_| backoff(8, max)).collect();
        assert!(samples.iter().any(|s| *s != samples[0]), "jitter expected");
    }
}
