//! The proxy's SSH side, on the web port (connections starting with `SSH-`). Two kinds of
//! clients, told apart by the certificate they authenticate with:
//!
//! - **users** (user certificates of this cluster or of a trusted root): authenticated and
//!   admitted here (locks, `max_connections`, `max_sessions`, the idle timeout); the `proxy:`
//!   subsystem and `direct-tcpip` (for `ssh -J`) are routed by [`Router`]; nothing else is offered;
//! - **tunnel agents** (host certificates): handed to the tunnel's server half
//!   ([`crate::tunnel::server`]), which registers their tunnel and serves their heartbeats; every
//!   channel they try to open otherwise is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicUsize;

use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use shared::Code;
use shared::certs;
use shared::client::BoxStream;
use shared::error::{Error, Result};
use shared::identity::UserIdentity;
use shared::resource::lock::Subject;
use shared::subsystem::{ProxyRequest, parse_proxy_request};
use shared::tuning::ReadAhead;

use super::router::Router;
use crate::auth::AuthServer;
use crate::auth::semaphore::LeaseGuard;
use crate::limits::{AuthMark, Permit};
use crate::live::{Live, LiveEntry, LiveGuard};
use crate::shutdown::InFlight;
use crate::tunnel::killable::{KillSwitch, Killable};
use crate::tunnel::server::{AgentConn, TunnelServer};

/// State shared by all proxy SSH connections.
pub struct ProxySsh {
    /// Auth service.
    pub auth: Arc<AuthServer>,
    /// Router.
    pub router: Arc<Router>,
    /// The tunnel's server half, for agents.
    pub tunnel_server: Arc<TunnelServer>,
    /// The proxy's host credentials (a host CA rotation replaces them).
    pub creds: crate::ssh::LiveCreds,
    /// SSH connections open now (users and tunnels).
    pub connections: Arc<AtomicUsize>,
    /// Users' connections, for locks to end.
    pub live: Arc<Live>,
    /// Channels one connection may have open, of every kind.
    pub max_channels: usize,
    /// `auth_service.client_idle_timeout`: a user's connection with no channel open this long
    /// is closed (roles may make it shorter).
    pub client_idle_timeout: Option<Duration>,
    /// Log lines about refused requests and channels (a user can cause them at will).
    pub refusals: crate::throttle::Throttle,
}

impl ProxySsh {
    /// Serves one SSH connection. With a `permit` (a socket), it has the permit's grace time to
    /// authenticate; without (a stream inside the process), it counts in no limit of its own.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, peer: Option<SocketAddr>, permit: Option<Permit>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let _counted = InFlight::new(&self.connections);
        let kill = KillSwitch::new();
        let conn = ProxyConn {
            shared: self.clone(),
            peer,
            mode: Mode::Pending,
            channels: HashMap::new(),
            open: Arc::new(AtomicUsize::new(0)),
            kill: kill.clone(),
            mark: permit.as_ref().map(Permit::mark),
            handle: Default::default(),
        };
        let config = self.creds.ssh_config();
        let cut = kill.clone();
        let serve = async move {
            // Boxed: the handshake's state is freed once it is done, not kept for the life of a
            // tunnel that only waits on its session.
            match Box::pin(russh::server::run_stream(config, ReadAhead::new(Killable::new(stream, kill)), conn)).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!(?peer, error = %e, "proxy SSH session ended with an error");
                    }
                }
                Err(e) => tracing::debug!(?peer, error = %e, "proxy SSH handshake failed"),
            }
        };
        match &permit {
            // russh runs the session in a task of its own: cutting the stream is what ends it.
            Some(p) => {
                if crate::limits::with_grace(p, serve).await {
                    cut.pull();
                    tracing::debug!(?peer, "SSH connection did not authenticate in time; closed");
                }
            }
            None => serve.await,
        }
    }

    /// An SSH connection to this proxy inside the process, for the browser at `peer` (the web
    /// UI's terminal and pages): no socket, no trip through the listener, no second place in the
    /// connection limits; the same authentication, admission, routing and audit as over the
    /// network, with the browser's address.
    pub fn in_process(self: &Arc<Self>, peer: Option<SocketAddr>) -> BoxStream {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let me = self.clone();
        tokio::spawn(async move { me.serve(server, peer, None).await });
        Box::new(client)
    }
}

/// A signed-in user's connection.
struct UserConn {
    identity: UserIdentity,
    issued_here: bool,
    /// Channels this connection may have open (the proxy's cap, or the roles' `max_sessions`).
    max_channels: usize,
    /// Why every request on this connection is refused (a lock, `max_connections`): the user
    /// gets this message instead of a bare "access denied".
    refused: Option<Error>,
    /// When the user's certificate was issued.
    issued_at: time::OffsetDateTime,
    /// The `max_connections` place this connection holds.
    _lease: Option<LeaseGuard>,
    /// Registered with the locks' enforcer.
    _live: LiveGuard,
}

enum Mode {
    Pending,
    User(Box<UserConn>),
    Agent(AgentConn),
}

struct ProxyConn {
    shared: Arc<ProxySsh>,
    peer: Option<SocketAddr>,
    mode: Mode,
    /// Session channels waiting for their subsystem request, each counted in `open`.
    channels: HashMap<ChannelId, (Channel<Msg>, InFlight)>,
    /// Channels open on this connection, of every kind.
    open: Arc<AtomicUsize>,
    /// Drops this connection (see [`crate::tunnel::TunnelEntry::kill`]).
    kill: KillSwitch,
    /// Tells the connection limiter when authentication succeeded (none in the process).
    mark: Option<AuthMark>,
    /// The session's handle, once a channel opened: a lock ends the connection through it, with
    /// its message.
    handle: Arc<std::sync::Mutex<Option<russh::server::Handle>>>,
}

impl Drop for ProxyConn {
    fn drop(&mut self) {
        if let Mode::Agent(a) = &self.mode {
            self.shared.tunnel_server.closed(a);
        }
    }
}

impl ProxyConn {
    /// Keeps the session's handle (the first time a channel opens).
    fn keep_handle(&self, session: &Session) {
        if let Ok(mut h) = self.handle.lock()
            && h.is_none()
        {
            *h = Some(session.handle());
        }
    }

    /// Writes a refusal's log line unless too many came just before it.
    fn log_refusal(&self, log: impl FnOnce(u64)) {
        if let Some(skipped) = self.shared.refusals.allow() {
            log(skipped);
        }
    }

    async fn authenticate(&mut self, user: &str, cert: &Certificate) -> Result<()> {
        let now = self.shared.auth.clock.now();
        match cert.cert_type() {
            CertType::User => {
                let cas = self.shared.auth.trusted_cas().await?;
                let (keys, owners) = cas.ssh_signers();
                let idx = certs::check_ssh_cert(cert, &keys, CertType::User, None, now).map_err(|r| Error::access_denied(r.to_string()))?;
                let identity = shared::identity::user_from_ssh_cert(cert)?;
                let issuer = owners[idx].cluster.clone();
                let user = self.user_conn(identity, issuer, shared::identity::ssh_cert_issued_at(cert)).await;
                self.mode = Mode::User(Box::new(user));
                Ok(())
            }
            CertType::Host => {
                self.mode = Mode::Agent(self.shared.tunnel_server.authenticate(user, cert).await?);
                Ok(())
            }
        }
    }
}

impl ProxyConn {
    /// Sets up a signed-in user's connection: the roles that apply, locks, `max_sessions` and
    /// `max_connections`. A lock or a full `max_connections` does not fail the login: it makes
    /// every request fail with the reason, which the user sees (a failed login says nothing).
    async fn user_conn(&self, identity: UserIdentity, issuer: String, issued_at: time::OffsetDateTime) -> UserConn {
        let auth = &self.shared.auth;
        let issued_here = issuer == auth.cluster_name();
        // A root's user who cannot be mapped here is refused by the node, with the reason in the
        // node's log and audit; the proxy only applies what it knows.
        let access = auth.access_for(&identity, &issuer).await.ok();
        let mut roles: Vec<String> = identity.roles.clone();
        if let Some((mapped, _)) = &access {
            roles.extend(mapped.iter().cloned());
        }
        let subject = Subject {
            user: Some(&identity.username),
            roles: &roles,
            issued_at: Some(issued_at),
            requests: &identity.active_requests,
            ..Default::default()
        };
        let mut refused = auth.check_locks(&subject, &issuer).await.err();
        let checker = access.map(|(_, c)| c);
        let max_sessions = checker.as_ref().and_then(|c| c.max_sessions()).and_then(|n| usize::try_from(n).ok());
        let max_channels = max_sessions.map_or(self.shared.max_channels, |n| n.min(self.shared.max_channels));
        let mut lease = None;
        if refused.is_none()
            && let Some(max) = checker.as_ref().and_then(|c| c.max_connections())
        {
            let key = if issued_here { identity.username.clone() } else { format!("{}@{issuer}", identity.username) };
            match auth.acquire_lease("connection", &key, max, &identity.username).await {
                Ok(l) => lease = Some(l),
                Err(e) => refused = Some(e),
            }
        }
        if let Some(why) = &refused {
            tracing::info!(user = %identity.username, peer = ?self.peer, reason = %why, "signed-in user refused");
        }
        let idle = match (checker.as_ref().and_then(|c| c.client_idle_timeout()), self.shared.client_idle_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(idle) = idle {
            tokio::spawn(close_when_idle(Arc::downgrade(&self.open), self.kill.clone(), idle, identity.username.clone()));
        }
        let (kill, handle) = (self.kill.clone(), self.handle.clone());
        let live = self.shared.live.register(LiveEntry {
            user: identity.username.clone(),
            origin: issuer,
            roles,
            login: None,
            issued_at: Some(issued_at),
            requests: identity.active_requests.clone(),
            // A second's grace lets the node the user is on end the session itself and say
            // why; then the connection goes whatever the node did, with the lock's message in
            // the disconnect so the client can say why too.
            end: Box::new(move |why| {
                let (kill, handle) = (kill.clone(), handle.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let h = handle.lock().ok().and_then(|h| h.clone());
                    if let Some(h) = h {
                        let _ = tokio::time::timeout(
                            Duration::from_millis(500),
                            h.disconnect(russh::Disconnect::ByApplication, why, "en".into()),
                        )
                        .await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    kill.pull();
                });
            }),
        });
        UserConn { identity, issued_here, issued_at, max_channels, refused, _lease: lease, _live: live }
    }

    /// Whether another channel fits (`max_channels` for users; a few for agents).
    fn channel_fits(&self) -> bool {
        let cap = match &self.mode {
            Mode::User(u) => u.max_channels,
            Mode::Agent(_) => 4,
            Mode::Pending => 0,
        };
        self.open.load(std::sync::atomic::Ordering::SeqCst) < cap
    }
}

impl russh::server::Handler for ProxyConn {
    type Error = anyhow::Error;

    async fn auth_publickey(&mut self, _user: &str, _key: russh::server::VerifiedPublicKey<'_>) -> std::result::Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(&mut self, user: &str, cert: &Certificate) -> std::result::Result<Auth, Self::Error> {
        // Boxed: each session's task keeps room for the largest handler future for the life of
        // the connection, twice over (russh's spawn holds the session future and awaits a copy).
        // Inline, this 3 KiB one made the task 30.2 KiB instead of 24.4 for every idle tunnel
        // (`-Zprint-type-sizes`; root RSS per tunnel 68 -> 61.5 KiB at 19,000 leaves).
        match Box::pin(self.authenticate(user, cert)).await {
            Ok(()) => {
                if let Some(m) = &self.mark {
                    m.authenticated();
                }
                Ok(Auth::Accept)
            }
            Err(e) => {
                tracing::warn!(peer = ?self.peer, user, key_id = %cert.key_id(), error = %e, "proxy refused an SSH login");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        self.keep_handle(session);
        if !self.channel_fits() {
            self.log_refusal(|skipped| tracing::info!(peer = ?self.peer, skipped, "refused a channel: too many open on this connection"));
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), (channel, InFlight::new(&self.open)));
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(&mut self, id: ChannelId, _session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.channels.remove(&id);
        Ok(())
    }

    async fn subsystem_request(&mut self, id: ChannelId, name: &str, session: &mut Session) -> std::result::Result<(), Self::Error> {
        let Some((channel, counted)) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let handle = session.handle();
        match &mut self.mode {
            Mode::User(u) => {
                if let Some(why) = &u.refused {
                    // Through the session, not the handle: the message must leave before the
                    // failure, which ends the client's wait.
                    for (ext, data) in refusal(why) {
                        session.extended_data(id, ext, data)?;
                    }
                    session.channel_failure(id)?;
                    session.close(id)?;
                    return Ok(());
                }
                let identity = &u.identity;
                let req = match parse_proxy_request(name) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(user = %identity.username, error = %e, "proxy request refused");
                        for (ext, data) in refusal(&e) {
                            session.extended_data(id, ext, data)?;
                        }
                        session.channel_failure(id)?;
                        session.close(id)?;
                        return Ok(());
                    }
                };
                let (identity, issued_here, issued_at) = (identity.clone(), u.issued_here, u.issued_at);
                let shared = self.shared.clone();
                let peer = self.peer;
                tokio::spawn(async move {
                    let _counted = counted;
                    proxy_subsystem(shared, handle, channel, identity, issued_here, issued_at, req, peer).await
                });
            }
            Mode::Agent(a) if TunnelServer::is_heartbeat(a, name) => {
                session.channel_success(id)?;
                let server = self.shared.tunnel_server.clone();
                let (conn, kill) = (AgentConn { key: a.key.clone(), agent: a.agent.clone(), ..*a }, self.kill.clone());
                tokio::spawn(async move {
                    let _counted = counted;
                    server.heartbeats(&conn, handle, channel, kill).await
                });
            }
            _ => {
                session.channel_failure(id)?;
            }
        }
        Ok(())
    }

    async fn exec_request(&mut self, id: ChannelId, _data: &[u8], session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.refuse_session(id, session).await
    }

    async fn shell_request(&mut self, id: ChannelId, session: &mut Session) -> std::result::Result<(), Self::Error> {
        self.refuse_session(id, session).await
    }

    async fn tcpip_forward(&mut self, address: &str, _port: &mut u32, session: &mut Session) -> std::result::Result<bool, Self::Error> {
        let Mode::Agent(a) = &mut self.mode else {
            return Ok(false);
        };
        Ok(self.shared.tunnel_server.register(a, address, session.handle(), self.kill.clone()))
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        self.keep_handle(session);
        let fits = self.channel_fits();
        let Mode::User(u) = &self.mode else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        if let Some(why) = &u.refused {
            self.log_refusal(|skipped| tracing::info!(user = %u.identity.username, reason = %why, skipped, "direct-tcpip refused"));
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        if !fits {
            self.log_refusal(|skipped| {
                tracing::info!(user = %u.identity.username, skipped, "direct-tcpip refused: too many channels open on this connection")
            });
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        let (identity, issued_here, issued_at) = (&u.identity, &u.issued_here, u.issued_at);
        let counted = InFlight::new(&self.open);
        let req = ProxyRequest {
            host: host_to_connect.to_string(),
            port: u16::try_from(port_to_connect).ok().filter(|p| *p != 0),
            cluster: None,
        };
        let (identity, issued_here) = (identity.clone(), *issued_here);
        let router = self.shared.router.clone();
        let peer = self.peer;
        tokio::spawn(async move {
            let _counted = counted;
            let mut routed = router.route_user(&identity, issued_here, Some(issued_at), &req, peer).await;
            // `ssh -J proxy visitor@node.leaf`: the names tsh config gives, when no node here
            // has the whole name.
            if let Err(e) = &routed
                && e.has(Code::NodeNotFound)
                && let Some((host, cluster)) = router.split_cluster(&req.host).await
            {
                let again = ProxyRequest { host, port: req.port, cluster: Some(cluster) };
                routed = router.route_user(&identity, issued_here, Some(issued_at), &again, peer).await;
            }
            match routed {
                Ok(target) => {
                    reply.accept().await;
                    crate::tunnel::splice_channel(channel, target).await;
                }
                Err(e) => {
                    tracing::info!(user = %identity.username, target = %req.host, error = %e, "direct-tcpip refused");
                    // The channel carries the client's SSH to the node: answer as an SSH server
                    // that disconnects at once, so `ssh -J` prints the reason (a refused open
                    // would show only "connect failed").
                    reply.accept().await;
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, &ssh_disconnect(&e.message)).await;
                    // Read what the client sends (its version, its key exchange) until it hangs
                    // up having read ours, for a few seconds at most: closing first would make its
                    // next write fail before it reads the reason.
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        let mut sink = [0u8; 4096];
                        while matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await, Ok(n) if n > 0) {}
                    })
                    .await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                }
            }
        });
        Ok(())
    }
}

impl ProxyConn {
    async fn refuse_session(&mut self, id: ChannelId, session: &mut Session) -> std::result::Result<(), anyhow::Error> {
        let msg = match self.mode {
            Mode::Agent(_) => "Cannot open new SSH session on reverse tunnel. Are you connecting to the right port?\n",
            _ => "This is a Teleport proxy; reach nodes with 'tsh ssh', or with ssh -J / ProxyCommand (see 'tsh config').\n",
        };
        session.extended_data(id, 1, msg.as_bytes().to_vec())?;
        session.channel_failure(id)?;
        session.close(id)?;
        Ok(())
    }
}

/// What an SSH server sends to refuse a client before key exchange, so the client prints `why`:
/// its version line, then `SSH_MSG_DISCONNECT` (reason 1, host not allowed to connect) in the
/// unencrypted binary packet format (RFC 4253 §6: padding of at least 4 bytes to a multiple of 8).
pub fn ssh_disconnect(why: &str) -> Vec<u8> {
    let why: String = why.chars().filter(|c| !c.is_control()).take(400).collect();
    let mut payload = vec![1u8]; // SSH_MSG_DISCONNECT
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.extend_from_slice(&(why.len() as u32).to_be_bytes());
    payload.extend_from_slice(why.as_bytes());
    payload.extend_from_slice(&2u32.to_be_bytes());
    payload.extend_from_slice(b"en");
    let mut padding = 8 - (4 + 1 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let mut out = b"SSH-2.0-Teleport\r\n".to_vec();
    out.extend_from_slice(&((1 + payload.len() + padding) as u32).to_be_bytes());
    out.push(padding as u8);
    out.extend_from_slice(&payload);
    out.extend(std::iter::repeat_n(0u8, padding));
    out
}

/// Why a `proxy:` request was refused: the message for people (standard error), then the error
/// for programs, with its kind and code ([`shared::subsystem::REFUSAL_DATA_TYPE`]).
fn refusal(e: &Error) -> [(u32, Vec<u8>); 2] {
    let wire = serde_json::to_vec(&shared::error::WireError::from(e)).unwrap_or_default();
    [(1, format!("{}\n", e.message).into_bytes()), (shared::subsystem::REFUSAL_DATA_TYPE, wire)]
}

#[allow(clippy::too_many_arguments)]
async fn proxy_subsystem(
    shared: Arc<ProxySsh>,
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    identity: UserIdentity,
    issued_here: bool,
    issued_at: time::OffsetDateTime,
    req: ProxyRequest,
    peer: Option<SocketAddr>,
) {
    let id = channel.id();
    match shared.router.route_user(&identity, issued_here, Some(issued_at), &req, peer).await {
        Ok(target) => {
            if handle.channel_success(id).await.is_err() {
                return;
            }
            crate::tunnel::splice_channel(channel, target).await;
        }
        Err(e) => {
            tracing::info!(user = %identity.username, request = %req.to_subsystem(), error = %e, "proxy request refused");
            for (ext, data) in refusal(&e) {
                let _ = handle.extended_data(id, ext, data).await;
            }
            let _ = handle.channel_failure(id).await;
            let _ = handle.close(id).await;
        }
    }
}

/// Closes a user's connection once it has had no channel open for `idle`; ends with the
/// connection (when the channel counter is gone).
async fn close_when_idle(open: std::sync::Weak<AtomicUsize>, kill: KillSwitch, idle: Duration, user: String) {
    let step = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(step).await;
        let Some(open) = open.upgrade() else { return };
        if open.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            quiet_since = tokio::time::Instant::now();
        } else if quiet_since.elapsed() >= idle {
            tracing::info!(user = %user, "closing an idle connection (client_idle_timeout {})", shared::timefmt::go_duration(idle));
            kill.pull();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_an_ssh_disconnect_a_client_can_read() {
        let b = ssh_disconnect("node \"x\" is not found\n");
        let body = b.strip_prefix(b"SSH-2.0-Teleport\r\n".as_slice()).unwrap();
        let len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        assert_eq!(body.len(), 4 + len, "one whole packet");
        assert_eq!((4 + len) % 8, 0, "a multiple of the cipher block size");
        let padding = body[4] as usize;
        assert!(padding >= 4);
        assert_eq!(body[5], 1, "SSH_MSG_DISCONNECT");
        let text_len = u32::from_be_bytes(body[10..14].try_into().unwrap()) as usize;
        assert_eq!(&body[14..14 + text_len], b"node \"x\" is not found", "control characters dropped");
    }
}
