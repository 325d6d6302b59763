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

use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use shared::certs;
use shared::error::{Error, Result};
use shared::identity::UserIdentity;
use shared::resource::CaType;
use shared::resource::token::SystemRole;
use shared::subsystem::{ProxyRequest, parse_proxy_request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::router::Router;
use crate::auth::AuthServer;
use crate::tunnel::killable::{KillSwitch, Killable};
use crate::tunnel::{HEARTBEAT_SUBSYSTEM, TUNNEL_ADDRESS, TunnelKey, TunnelRegistry};

/// State shared by all proxy SSH connections.
pub struct ProxySsh {
    /// Auth service.
    pub auth: Arc<AuthServer>,
    /// Router.
    pub router: Arc<Router>,
    /// Tunnels.
    pub tunnels: Arc<TunnelRegistry>,
    /// russh configuration (host key and certificate).
    pub config: Arc<russh::server::Config>,
    /// SSH connections open now (users and tunnels).
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl ProxySsh {
    /// Serves one SSH connection.
    pub async fn serve<S>(self: &Arc<Self>, stream: S, peer: Option<SocketAddr>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let _counted = crate::diag::InFlight::new(&self.connections);
        let kill = KillSwitch::new();
        let conn = ProxyConn { shared: self.clone(), peer, mode: Mode::Pending, channels: HashMap::new(), kill: kill.clone() };
        match russh::server::run_stream(self.config.clone(), Killable::new(stream, kill), conn).await {
            Ok(session) => {
                if let Err(e) = session.await {
                    tracing::debug!(?peer, error = %e, "proxy SSH session ended with an error");
                }
            }
            Err(e) => tracing::debug!(?peer, error = %e, "proxy SSH handshake failed"),
        }
    }

    /// Drops a leaf's tunnel as soon as its remote_cluster or CA disappears (`tctl rm rc/...`).
    pub async fn run_remote_cluster_watcher(self: Arc<Self>, mut shutdown: crate::process::Shutdown) {
        let mut events = self.auth.services.backend.watch();
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                ev = events.recv() => {
                    let Ok(ev) = ev else { continue };
                    if ev.kind != crate::storage::EventKind::Delete {
                        continue;
                    }
                    let name = ev.key.strip_prefix(crate::services::keys::REMOTE_CLUSTERS)
                        .or_else(|| ev.key.strip_prefix(&format!("{}host/", crate::services::keys::AUTHORITIES)));
                    if let Some(name) = name
                        && self.tunnels.get(&TunnelKey::Cluster(name.to_string())).is_some()
                    {
                        tracing::info!(leaf = %name, "remote cluster removed; closing its tunnel");
                        self.tunnels.disconnect(&TunnelKey::Cluster(name.to_string()), "the trust was removed").await;
                    }
                }
            }
        }
    }
}

enum Mode {
    Pending,
    User { identity: UserIdentity, issued_here: bool },
    Agent { key: TunnelKey, conn_id: u64, registered: bool },
}

struct ProxyConn {
    shared: Arc<ProxySsh>,
    peer: Option<SocketAddr>,
    mode: Mode,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Drops this connection (see [`crate::tunnel::TunnelEntry::kill`]).
    kill: KillSwitch,
}

impl Drop for ProxyConn {
    fn drop(&mut self) {
        if let Mode::Agent { key, conn_id, registered: true } = &self.mode
            && self.shared.tunnels.remove(key, *conn_id)
        {
            tracing::info!(tunnel = ?key, "tunnel disconnected");
            if let TunnelKey::Cluster(name) = key.clone()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                let auth = self.shared.auth.clone();
                rt.spawn(async move {
                    let _ = auth.mark_offline(&name).await;
                });
            }
        }
    }
}

impl ProxyConn {
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
                self.mode = Mode::User { identity, issued_here: owners[idx] == local };
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
                self.mode = Mode::Agent { key, conn_id: self.shared.tunnels.next_conn_id(), registered: false };
                Ok(())
            }
        }
    }
}

impl russh::server::Handler for ProxyConn {
    type Error = anyhow::Error;

    async fn auth_publickey(&mut self, _user: &str, _key: russh::server::VerifiedPublicKey<'_>) -> std::result::Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(&mut self, user: &str, cert: &Certificate) -> std::result::Result<Auth, Self::Error> {
        match self.authenticate(user, cert).await {
            Ok(()) => Ok(Auth::Accept),
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
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if matches!(self.mode, Mode::Pending) || self.channels.len() >= 64 {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(&mut self, id: ChannelId, name: &str, session: &mut Session) -> std::result::Result<(), Self::Error> {
        let Some(channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let handle = session.handle();
        match &mut self.mode {
            Mode::User { identity, issued_here } => {
                let req = match parse_proxy_request(name) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(user = %identity.username, error = %e, "proxy request refused");
                        let _ = handle.extended_data(id, 1, format!("{}\n", e.message).into_bytes()).await;
                        session.channel_failure(id)?;
                        session.close(id)?;
                        return Ok(());
                    }
                };
                let (identity, issued_here) = (identity.clone(), *issued_here);
                let shared = self.shared.clone();
                let peer = self.peer;
                tokio::spawn(async move { proxy_subsystem(shared, handle, channel, identity, issued_here, req, peer).await });
            }
            Mode::Agent { key, conn_id, registered } if name == HEARTBEAT_SUBSYSTEM && *registered => {
                session.channel_success(id)?;
                let shared = self.shared.clone();
                let (key, conn_id, kill) = (key.clone(), *conn_id, self.kill.clone());
                tokio::spawn(async move { serve_heartbeats(shared, handle, channel, key, conn_id, kill).await });
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
        let Mode::Agent { key, conn_id, registered } = &mut self.mode else {
            return Ok(false);
        };
        if address != TUNNEL_ADDRESS || *registered {
            return Ok(false);
        }
        self.shared.tunnels.register(key.clone(), *conn_id, session.handle(), self.kill.clone());
        *registered = true;
        tracing::info!(tunnel = ?key, peer = ?self.peer, "tunnel registered");
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
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let Mode::User { identity, issued_here } = &self.mode else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        let req = ProxyRequest {
            host: host_to_connect.to_string(),
            port: u16::try_from(port_to_connect).ok().filter(|p| *p != 0),
            cluster: None,
        };
        let (identity, issued_here) = (identity.clone(), *issued_here);
        let router = self.shared.router.clone();
        let peer = self.peer;
        tokio::spawn(async move {
            match router.route_user(&identity, issued_here, &req, peer).await {
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

async fn proxy_subsystem(
    shared: Arc<ProxySsh>,
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    identity: UserIdentity,
    issued_here: bool,
    req: ProxyRequest,
    peer: Option<SocketAddr>,
) {
    let id = channel.id();
    match shared.router.route_user(&identity, issued_here, &req, peer).await {
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

/// Answers pings with pongs, records heartbeats, and cuts the tunnel when pings stop.
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
    let mut lines = BufReader::new(reader).lines();
    let mut first = true;
    loop {
        let next = tokio::time::timeout(threshold + Duration::from_millis(500), lines.next_line()).await;
        let line = match next {
            Ok(Ok(Some(line))) => line,
            Ok(_) => break,
            Err(_) => {
                tracing::warn!(tunnel = ?key, "no heartbeats for {}; closing the tunnel", shared::timefmt::go_duration(threshold));
                break;
            }
        };
        if !line.starts_with("ping") || line.len() > 200 {
            tracing::warn!(tunnel = ?key, "unexpected heartbeat message; closing the tunnel");
            break;
        }
        if writer.write_all(b"pong\n").await.is_err() || writer.flush().await.is_err() {
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
        let _ = shared.auth.mark_offline(name).await;
    }
    crate::tunnel::close_connection(&handle, &kill, "heartbeat stopped").await;
}
