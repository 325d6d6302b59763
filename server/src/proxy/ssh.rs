//! The proxy's SSH side, on the web port (connections starting with `SSH-`). Two kinds of
//! clients, told apart by the certificate they authenticate with:
//!
//! - **users** (user certificates of this cluster or of a trusted root): the `proxy:` subsystem
//!   and `direct-tcpip` (for `ssh -J`) are routed by [`Router`]; nothing else is offered;
//! - **tunnel agents** (host certificates): a leaf's proxy (`x-teleport-role: Proxy`, another
//!   cluster with a `remote_cluster` here) or a node of this cluster (`Node`). They may register
//!   their tunnel and heartbeat; every channel they try to open otherwise is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicUsize;

use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use shared::certs;
use shared::error::{Error, Result};
use shared::identity::UserIdentity;
use shared::resource::CaType;
use shared::resource::lock::Subject;
use shared::resource::token::SystemRole;
use shared::subsystem::{ProxyRequest, parse_proxy_request};
use tokio::io::{AsyncWriteExt, BufReader};

use super::router::Router;
use crate::auth::AuthServer;
use crate::auth::semaphore::LeaseGuard;
use crate::diag::InFlight;
use crate::limits::{AuthMark, Permit};
use crate::live::{Live, LiveEntry, LiveGuard};
use crate::proxies::{DISCOVERY_EVERY, Discovery, ProxyRegistry};
use crate::tunnel::killable::{KillSwitch, Killable};
use crate::tunnel::{
    HEARTBEAT_SUBSYSTEM, MAX_HEARTBEAT_LINE, TUNNEL_ADDRESS, TUNNEL_PROXIES, TUNNEL_RECONNECT, TunnelKey, TunnelRegistry, read_line_bounded,
};

/// State shared by all proxy SSH connections.
pub struct ProxySsh {
    /// Auth service.
    pub auth: Arc<AuthServer>,
    /// Router.
    pub router: Arc<Router>,
    /// Tunnels.
    pub tunnels: Arc<TunnelRegistry>,
    /// The cluster's proxies, told to every agent.
    pub registry: Arc<ProxyRegistry>,
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
    /// Serves one SSH connection. It has its `permit`'s grace time to authenticate.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, peer: Option<SocketAddr>, permit: Permit)
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
            mark: permit.mark(),
            handle: Default::default(),
        };
        let config = self.creds.ssh_config();
        let cut = kill.clone();
        let serve = async move {
            match russh::server::run_stream(config, Killable::new(stream, kill), conn).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!(?peer, error = %e, "proxy SSH session ended with an error");
                    }
                }
                Err(e) => tracing::debug!(?peer, error = %e, "proxy SSH handshake failed"),
            }
        };
        // russh runs the session in a task of its own: cutting the stream is what ends it.
        if crate::limits::with_grace(&permit, serve).await {
            cut.pull();
            tracing::debug!(?peer, "SSH connection did not authenticate in time; closed");
        }
    }

    /// Ends users' connections a lock now matches, and sends this cluster's locks to every
    /// connected leaf (which enforces them on this cluster's users): after every change (from
    /// any process), after every gap in the feed, and each minute in case a leaf missed one.
    pub async fn run_lock_enforcer(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        use crate::follow::Changed;
        use crate::services::keys;
        let ticker = {
            let (me, mut stop) = (self.clone(), shutdown.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = stop.wait() => return,
                        _ = tick.tick() => me.push_locks_to_all(),
                    }
                }
            }
        };
        let me = self.clone();
        let follower = crate::follow::follow(self.auth.services.backend.clone(), &[keys::LOCKS, keys::REMOTE_LOCKS], shutdown, move |c| {
            let me = me.clone();
            async move {
                match me.auth.lock_set().await {
                    Ok(locks) => {
                        me.live.enforce(&locks, crate::live::Place::default(), me.auth.clock.now());
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read locks"),
                }
                let ours = match &c {
                    Changed::All => true,
                    Changed::Key(e) => e.key.starts_with(keys::LOCKS),
                };
                if ours {
                    me.push_locks_to_all();
                }
            }
        });
        tokio::join!(ticker, follower);
    }

    fn push_locks_to_all(self: &Arc<Self>) {
        for leaf in self.tunnels.clusters() {
            let me = self.clone();
            tokio::spawn(async move { me.push_locks(&leaf).await });
        }
    }

    /// Sends this cluster's locks to `leaf` over its tunnel.
    pub async fn push_locks(&self, leaf: &str) {
        let sent = async {
            let locks = self.auth.locks_for_leaves().await?;
            let body = serde_json::to_vec(&locks).map_err(|e| Error::internal(format!("encoding locks: {e}")))?;
            let req = crate::tunnel::TunnelRequest::plain(crate::tunnel::TARGET_LOCKS);
            let mut stream = self.tunnels.dial(&TunnelKey::Cluster(leaf.to_string()), &req).await?;
            stream.write_all(&body).await.map_err(|e| Error::connection_problem(format!("sending locks: {e}")))?;
            stream.shutdown().await.map_err(|e| Error::connection_problem(format!("sending locks: {e}")))?;
            crate::tunnel::read_status(&mut stream).await?;
            Ok::<usize, Error>(locks.len())
        };
        match tokio::time::timeout(Duration::from_secs(30), sent).await {
            Ok(Ok(n)) => tracing::debug!(leaf, locks = n, "sent locks to the leaf cluster"),
            Ok(Err(e)) => tracing::warn!(leaf, error = %e, "cannot send locks to the leaf cluster"),
            Err(_) => tracing::warn!(leaf, "sending locks to the leaf cluster timed out"),
        }
    }

    /// Drops a leaf's tunnel as soon as its remote_cluster or CA disappears (`tctl rm rc/...`,
    /// through any process). After a gap in the feed, every leaf's tunnel is checked.
    pub async fn run_remote_cluster_watcher(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        use crate::follow::Changed;
        use crate::services::keys;
        let host_cas = format!("{}host/", keys::AUTHORITIES);
        let me = self.clone();
        let prefixes = [keys::REMOTE_CLUSTERS, host_cas.as_str()];
        let ca_prefix = host_cas.clone();
        crate::follow::follow(self.auth.services.backend.clone(), &prefixes, shutdown, move |c| {
            let me = me.clone();
            let host_cas = ca_prefix.clone();
            async move {
                let leaves: Vec<String> = match c {
                    Changed::All => me.tunnels.clusters(),
                    Changed::Key(e) if e.kind == crate::storage::EventKind::Delete => e
                        .key
                        .strip_prefix(keys::REMOTE_CLUSTERS)
                        .or_else(|| e.key.strip_prefix(host_cas.as_str()))
                        .map(|n| vec![n.to_string()])
                        .unwrap_or_default(),
                    Changed::Key(_) => vec![],
                };
                for leaf in leaves {
                    let gone = matches!(me.auth.services.remote_cluster(&leaf).await, Ok(None))
                        || matches!(me.auth.services.ca(CaType::Host, &leaf, false).await, Ok(None));
                    if gone && me.tunnels.get(&TunnelKey::Cluster(leaf.clone())).is_some() {
                        tracing::info!(leaf = %leaf, "remote cluster removed; closing its tunnel");
                        me.tunnels.disconnect(&TunnelKey::Cluster(leaf), "the trust was removed").await;
                    }
                }
            }
        })
        .await;
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
    refused: Option<String>,
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
    Agent { key: TunnelKey, agent: String, conn_id: u64, registered: bool },
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
    /// Tells the connection limiter when authentication succeeded.
    mark: AuthMark,
    /// The session's handle, once a channel opened: a lock ends the connection through it, with
    /// its message.
    handle: Arc<std::sync::Mutex<Option<russh::server::Handle>>>,
}

impl Drop for ProxyConn {
    fn drop(&mut self) {
        if let Mode::Agent { key, conn_id, registered: true, .. } = &self.mode
            && self.shared.tunnels.remove(key, *conn_id)
        {
            tracing::info!(tunnel = ?key, "tunnel disconnected");
            if let TunnelKey::Cluster(name) = key.clone()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                let auth = self.shared.auth.clone();
                rt.spawn(async move {
                    let _ = auth.tunnel_closed(&name).await;
                });
            }
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

    /// User CA keys accepted from users: this cluster's and every enabled root's.
    async fn user_cas(&self) -> Result<(Vec<russh::keys::PublicKey>, Vec<String>)> {
        let mut keys = Vec::new();
        let mut owners = Vec::new();
        for ca in self.shared.auth.services.cas_of_type(CaType::User).await? {
            for k in ca.ssh_public_keys() {
                keys.push(k);
                owners.push(ca.metadata.name.clone());
            }
        }
        Ok((keys, owners))
    }

    async fn authenticate(&mut self, user: &str, cert: &Certificate) -> Result<()> {
        let now = self.shared.auth.clock.now();
        let local = self.shared.auth.cluster_name().to_string();
        match cert.cert_type() {
            CertType::User => {
                let (keys, owners) = self.user_cas().await?;
                let idx = certs::check_ssh_cert(cert, &keys, CertType::User, None, now).map_err(|r| Error::access_denied(r.to_string()))?;
                let identity = shared::identity::user_from_ssh_cert(cert)?;
                let issuer = owners[idx].clone();
                let user = self.user_conn(identity, issuer, shared::identity::ssh_cert_issued_at(cert)).await;
                self.mode = Mode::User(Box::new(user));
                Ok(())
            }
            CertType::Host => {
                let (role, authority) = shared::identity::host_from_ssh_cert(cert)?;
                if user != cert.key_id() {
                    return Err(Error::access_denied("a tunnel agent must log in as its host UUID"));
                }
                let key = if authority == local {
                    if role != SystemRole::Node {
                        return Err(Error::access_denied(format!("agent from this cluster cannot register a {role} tunnel")));
                    }
                    TunnelKey::Node(user.to_string())
                } else {
                    if role != SystemRole::Proxy {
                        return Err(Error::access_denied(format!("agent from cluster {authority} cannot register local service {role}")));
                    }
                    if self.shared.auth.services.remote_cluster(&authority).await?.is_none() {
                        return Err(Error::access_denied(format!("cluster {authority} is not a trusted leaf of this cluster")));
                    }
                    TunnelKey::Cluster(authority.clone())
                };
                let ca = self
                    .shared
                    .auth
                    .services
                    .ca(CaType::Host, &authority, false)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("cluster {authority} has no matching CA keys")))?;
                certs::check_ssh_cert(cert, &ca.ssh_public_keys(), CertType::Host, Some(user), now).map_err(|r| match r {
                    certs::SshCertRejection::UntrustedCa => Error::not_found(format!("cluster {authority} has no matching CA keys")),
                    other => Error::access_denied(other.to_string()),
                })?;
                self.mode = Mode::Agent { key, agent: user.to_string(), conn_id: self.shared.tunnels.next_conn_id(), registered: false };
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
        let subject = Subject { user: Some(&identity.username), roles: &roles, issued_at: Some(issued_at), ..Default::default() };
        let mut refused = auth.check_locks(&subject, &issuer).await.err().map(|e| e.message);
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
                Err(e) => refused = Some(e.message),
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
            Mode::Agent { .. } => 4,
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
        match self.authenticate(user, cert).await {
            Ok(()) => {
                self.mark.authenticated();
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
                    session.extended_data(id, 1, format!("{why}\n").into_bytes())?;
                    session.channel_failure(id)?;
                    session.close(id)?;
                    return Ok(());
                }
                let identity = &u.identity;
                let req = match parse_proxy_request(name) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(user = %identity.username, error = %e, "proxy request refused");
                        session.extended_data(id, 1, format!("{}\n", e.message).into_bytes())?;
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
            Mode::Agent { key, conn_id, registered, .. } if name == HEARTBEAT_SUBSYSTEM && *registered => {
                session.channel_success(id)?;
                let shared = self.shared.clone();
                let (key, conn_id, kill) = (key.clone(), *conn_id, self.kill.clone());
                tokio::spawn(async move {
                    let _counted = counted;
                    serve_heartbeats(shared, handle, channel, key, conn_id, kill).await
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
        let Mode::Agent { key, agent, conn_id, registered } = &mut self.mode else {
            return Ok(false);
        };
        if address != TUNNEL_ADDRESS || *registered {
            return Ok(false);
        }
        if self.shared.registry.is_leaving() {
            tracing::info!(tunnel = ?key, "refused a tunnel: this proxy is stopping");
            return Ok(false);
        }
        self.shared.tunnels.register(key.clone(), agent, *conn_id, session.handle(), self.kill.clone());
        *registered = true;
        tracing::info!(tunnel = ?key, peer = ?self.peer, "tunnel registered");
        if let TunnelKey::Cluster(leaf) = key.clone() {
            let shared = self.shared.clone();
            tokio::spawn(async move { shared.push_locks(&leaf).await });
        }
        Ok(true)
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
            match router.route_user(&identity, issued_here, Some(issued_at), &req, peer).await {
                Ok(target) => {
                    reply.accept().await;
                    crate::tunnel::splice(channel.into_stream(), target).await;
                }
                Err(e) => {
                    tracing::info!(user = %identity.username, target = %req.host, error = %e, "direct-tcpip refused");
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }
}

impl ProxyConn {
    async fn refuse_session(&mut self, id: ChannelId, session: &mut Session) -> std::result::Result<(), anyhow::Error> {
        let msg = match self.mode {
            Mode::Agent { .. } => "Cannot open new SSH session on reverse tunnel. Are you connecting to the right port?\n",
            _ => "This is a Teleport proxy; reach nodes with 'tsh ssh', or with ssh -J / ProxyCommand (see 'tsh config').\n",
        };
        session.extended_data(id, 1, msg.as_bytes().to_vec())?;
        session.channel_failure(id)?;
        session.close(id)?;
        Ok(())
    }
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
            crate::tunnel::splice(channel.into_stream(), target).await;
        }
        Err(e) => {
            tracing::info!(user = %identity.username, request = %req.to_subsystem(), error = %e, "proxy request refused");
            let _ = handle.extended_data(id, 1, format!("{}\n", e.message).into_bytes()).await;
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

/// Answers pings with pongs, records heartbeats, tells the agent where every proxy of the
/// cluster is (at once, on every change, and every [`DISCOVERY_EVERY`]) and, when this process
/// stops, to move; cuts the tunnel when pings stop.
async fn serve_heartbeats(
    shared: Arc<ProxySsh>,
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    key: TunnelKey,
    conn_id: u64,
    kill: KillSwitch,
) {
    let threshold = shared.auth.settings.offline_threshold();
    let (reader, mut writer) = tokio::io::split(channel.into_stream());
    // Lines are read in a task of their own: a read cut off by the other events below would
    // lose what it had read of a line.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<Option<String>>>(4);
    let reader_task = tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        loop {
            let next = read_line_bounded(&mut reader, MAX_HEARTBEAT_LINE).await;
            let done = !matches!(next, Ok(Some(_)));
            if lines_tx.send(next).await.is_err() || done {
                return;
            }
        }
    });
    let _reader = crate::tunnel::AbortOnDrop(reader_task);
    let mut discovery = shared.registry.discovery();
    // A leaf hears this cluster's CAs at connect and after every change (a rotation).
    let is_leaf = matches!(key, TunnelKey::Cluster(_));
    let mut authz = shared.auth.authz_changes();
    let (mut send_cas, mut sent_cas, mut watch_cas) = (is_leaf, String::new(), is_leaf);
    let mut first = true;
    let mut told_to_move = false;
    let mut next_list = tokio::time::Instant::now();
    let wait = threshold + Duration::from_millis(500);
    let mut silence = Box::pin(tokio::time::sleep(wait));
    loop {
        if tokio::time::Instant::now() >= next_list {
            let list = discovery.borrow_and_update().clone();
            if write_line(&mut writer, &discovery_line(&list)).await.is_err() {
                break;
            }
            next_list = tokio::time::Instant::now() + DISCOVERY_EVERY;
        }
        if send_cas {
            send_cas = false;
            if let Some(line) = crate::tunnel::cas_line(&shared.auth, &[CaType::Host, CaType::User]).await
                && line != sent_cas
            {
                if write_line(&mut writer, &line).await.is_err() {
                    break;
                }
                tracing::debug!(tunnel = ?key, "sent this cluster's certificate authorities to the leaf");
                sent_cas = line;
            }
        }
        if shared.registry.is_leaving() && !told_to_move {
            told_to_move = true;
            if write_line(&mut writer, TUNNEL_RECONNECT).await.is_err() {
                break;
            }
        }
        let line = tokio::select! {
            next = lines.recv() => next.unwrap_or(Ok(None)),
            _ = &mut silence => {
                tracing::warn!(tunnel = ?key, "no heartbeats for {}; closing the tunnel", shared::timefmt::go_duration(threshold));
                break;
            }
            changed = discovery.changed() => {
                if changed.is_ok() {
                    next_list = tokio::time::Instant::now();
                }
                continue;
            }
            changed = authz.changed(), if watch_cas => {
                send_cas = changed.is_ok();
                watch_cas = changed.is_ok();
                continue;
            }
            _ = tokio::time::sleep_until(next_list) => continue,
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(tunnel = ?key, error = %e, "unexpected heartbeat message; closing the tunnel");
                break;
            }
        };
        if let (Some(cas), TunnelKey::Cluster(leaf)) =
            (line.strip_prefix(crate::tunnel::TUNNEL_CAS).and_then(|r| r.strip_prefix(' ')), &key)
        {
            // The leaf's host CA after a change (its rotation): stored for tsh's known_hosts
            // and for checking its agents. Only a host CA, only the leaf's own.
            match serde_json::from_str::<Vec<shared::resource::CertAuthority>>(cas) {
                Ok(cas) => {
                    let (auth, leaf) = (shared.auth.clone(), leaf.clone());
                    tokio::spawn(async move {
                        if let Err(e) = auth.update_external_cas(&leaf, &[CaType::Host], cas).await {
                            tracing::warn!(leaf = %leaf, error = %e, "cannot store the leaf cluster's host certificate authority");
                        }
                    });
                }
                Err(e) => tracing::warn!(tunnel = ?key, error = %e, "ignored unreadable certificate authorities from the leaf"),
            }
            continue;
        }
        if !line.starts_with("ping") {
            tracing::warn!(tunnel = ?key, "unexpected heartbeat message; closing the tunnel");
            break;
        }
        silence.as_mut().reset(tokio::time::Instant::now() + wait);
        if write_line(&mut writer, "pong").await.is_err() {
            break;
        }
        if let TunnelKey::Cluster(name) = &key {
            // The heartbeat's time is the root's clock: a leaf cannot move last_heartbeat.
            shared.auth.record_heartbeat(name, shared.auth.clock.now());
            if first {
                tracing::info!(leaf = %name, "leaf cluster online");
                first = false;
            }
        }
    }
    if shared.tunnels.remove(&key, conn_id)
        && let TunnelKey::Cluster(name) = &key
    {
        let _ = shared.auth.tunnel_closed(name).await;
    }
    crate::tunnel::close_connection(&handle, &kill, "heartbeat stopped").await;
}

fn discovery_line(d: &Discovery) -> String {
    format!("{TUNNEL_PROXIES} {}", serde_json::to_string(d).unwrap_or_default())
}

async fn write_line<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
    w.write_all(format!("{line}\n").as_bytes()).await?;
    w.flush().await
}
