//! The server half of the agent protocol, beside the agent half (`agent.rs`): a proxy accepts
//! a tunnel agent (a leaf's proxy, or a node of this cluster) on its SSH port, registers its
//! tunnel, and serves its heartbeat channel.
//!
//! ```text
//!   agent ── SSH, host certificate ──▶ authenticate: a node of this cluster, or a proxy of a
//!                                      leaf with a remote_cluster here, signed by that CA
//!         ── tcpip-forward "teleport-tunnel" ──▶ register in the TunnelRegistry
//!         ── subsystem "teleport-heartbeat" ──▶ serve_heartbeats: pong, discovery, CAs, moving
//! ```
//! The SSH handler that calls these (users and agents share the port) is the proxy's
//! (`crate::proxy::ssh`); nothing here knows about users, routing or locks.

use std::sync::Arc;
use std::time::Duration;

use russh::Channel;
use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::server::Msg;
use shared::certs;
use shared::error::{Error, Result};
use shared::resource::CaType;
use shared::resource::token::SystemRole;
use tokio::io::AsyncWriteExt;

use super::killable::KillSwitch;
use super::proxies::{DISCOVERY_EVERY, Discovery, ProxyRegistry};
use super::wire::{HEARTBEAT_SUBSYSTEM, Heartbeat, MAX_HEARTBEAT_LINE, TUNNEL_ADDRESS, TunnelKey};
use super::{Lines, TunnelRegistry};
use crate::auth::AuthServer;

/// Called with a leaf's name when its tunnel registers here (the proxy sends it its locks).
pub type OnLeafRegistered = Arc<dyn Fn(String) + Send + Sync>;

/// What every agent connection to this proxy shares.
pub struct TunnelServer {
    /// Auth service (CAs, remote clusters, heartbeats).
    pub auth: Arc<AuthServer>,
    /// Tunnels held here.
    pub tunnels: Arc<TunnelRegistry>,
    /// The cluster's proxies, told to every agent.
    pub registry: Arc<ProxyRegistry>,
    /// This proxy's presence records of the leaves it holds.
    pub presence: Arc<super::presence::Presence>,
    /// Hears each leaf tunnel that registers.
    pub on_leaf_registered: Option<OnLeafRegistered>,
}

/// An authenticated agent's connection.
pub struct AgentConn {
    /// Whose tunnel.
    pub key: TunnelKey,
    /// The agent's host UUID.
    pub agent: String,
    /// This connection's number in the registry.
    pub conn_id: u64,
    /// Whether its tunnel is registered.
    pub registered: bool,
}

impl TunnelServer {
    /// Authenticates an agent's host certificate: a node of this cluster, or a proxy of a leaf
    /// with a `remote_cluster` here, signed by that cluster's host CA, logging in as its UUID.
    pub async fn authenticate(&self, user: &str, cert: &Certificate) -> Result<AgentConn> {
        let now = self.auth.clock.now();
        let local = self.auth.cluster_name().to_string();
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
            if self.auth.services.remote_cluster(&authority).await?.is_none() {
                return Err(Error::access_denied(format!("cluster {authority} is not a trusted leaf of this cluster")));
            }
            TunnelKey::Cluster(authority.clone())
        };
        let ca = self
            .auth
            .services
            .ca(CaType::Host, &authority, false)
            .await?
            .ok_or_else(|| Error::not_found(format!("cluster {authority} has no matching CA keys")))?;
        certs::check_ssh_cert(cert, &ca.ssh_public_keys(), CertType::Host, Some(user), now).map_err(|r| match r {
            certs::SshCertRejection::UntrustedCa => Error::not_found(format!("cluster {authority} has no matching CA keys")),
            other => Error::access_denied(other.to_string()),
        })?;
        Ok(AgentConn { key, agent: user.to_string(), conn_id: self.tunnels.next_conn_id(), registered: false })
    }

    /// `tcpip-forward` from an agent: registers its tunnel (once, and not while this proxy is
    /// stopping). Returns whether it did.
    pub fn register(&self, conn: &mut AgentConn, address: &str, handle: russh::server::Handle, kill: KillSwitch) -> bool {
        if address != TUNNEL_ADDRESS || conn.registered {
            return false;
        }
        if self.registry.is_leaving() {
            tracing::info!(tunnel = ?conn.key, "refused a tunnel: this proxy is stopping");
            return false;
        }
        self.tunnels.register(conn.key.clone(), &conn.agent, conn.conn_id, handle, kill);
        conn.registered = true;
        if let TunnelKey::Cluster(leaf) = &conn.key {
            self.presence.registered(leaf);
        }
        tracing::info!(tunnel = ?conn.key, "tunnel registered");
        if let (TunnelKey::Cluster(leaf), Some(hook)) = (&conn.key, &self.on_leaf_registered) {
            hook(leaf.clone());
        }
        true
    }

    /// Whether `subsystem` is the heartbeat channel of a registered tunnel.
    pub fn is_heartbeat(conn: &AgentConn, subsystem: &str) -> bool {
        subsystem == HEARTBEAT_SUBSYSTEM && conn.registered
    }

    /// Serves the heartbeat channel of `conn` until the tunnel ends.
    pub async fn heartbeats(self: Arc<Self>, conn: &AgentConn, handle: russh::server::Handle, channel: Channel<Msg>, kill: KillSwitch) {
        serve_heartbeats(self, handle, channel, conn.key.clone(), conn.conn_id, kill).await
    }

    /// The agent's connection ended: its tunnel leaves the registry (and, for a leaf whose last
    /// tunnel here it was, its status records the end).
    pub fn closed(&self, conn: &AgentConn) {
        if conn.registered && self.tunnels.remove(&conn.key, conn.conn_id) {
            tracing::info!(tunnel = ?conn.key, "tunnel disconnected");
            if let TunnelKey::Cluster(name) = conn.key.clone()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                let presence = self.presence.clone();
                rt.spawn(async move {
                    let _ = presence.closed(&name).await;
                });
            }
        }
    }

    /// Drops a leaf's tunnel as soon as its remote_cluster or CA disappears (`tctl rm rc/...`,
    /// through any process). After a gap in the feed, every leaf's tunnel is checked.
    pub async fn run_removed_leaf_watcher(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        use crate::follow::Changed;
        use crate::services::keys;
        let host_cas = keys::cas_of(CaType::Host);
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

/// Answers pings with pongs, records heartbeats, tells the agent where every proxy of the
/// cluster is (at once, on every change, and with a pong every [`DISCOVERY_EVERY`] or
/// keep-alive interval, the longer) and, when this process
/// stops, to move; cuts the tunnel when pings stop.
async fn serve_heartbeats(
    shared: Arc<TunnelServer>,
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    key: TunnelKey,
    conn_id: u64,
    kill: KillSwitch,
) {
    let threshold = shared.auth.settings.offline_threshold();
    let (reader, mut writer) = tokio::io::split(channel.into_stream());
    // Cancel-safe: the other events below may interrupt a read without losing part of a line.
    let mut lines = Lines::new(reader, MAX_HEARTBEAT_LINE);
    let mut discovery = shared.registry.discovery();
    // A leaf hears this cluster's CAs at connect and after every change (a rotation).
    let is_leaf = matches!(key, TunnelKey::Cluster(_));
    let mut authz = shared.auth.authz_changes();
    // What was sent, as a hash: the message is kilobytes, and a root holds one of these per leaf.
    let (mut send_cas, mut sent_cas, mut watch_cas) = (is_leaf, 0u64, is_leaf);
    let mut first = true;
    let mut told_to_move = false;
    // The list goes at once, on every change, and then with a pong (in the same write) once
    // every `repeat`: a timer of its own made it a write per leaf every 10 s, three times the
    // pongs at the default interval, and most of an idle root's CPU at 19,000 leaves. The agent
    // keeps an entry for three repeats.
    let repeat = DISCOVERY_EVERY.max(shared.auth.settings.keep_alive_interval);
    let list_ttl = (repeat * 3).as_secs() + 5;
    // With how long to spread a join over: every agent of this proxy hears of a new one at once.
    let list_message = |d: &Discovery| {
        let spread_ms = u64::try_from(super::proxies::join_spread(shared.tunnels.total()).as_millis()).unwrap_or(u64::MAX);
        Heartbeat::Proxies(Discovery { proxies: d.proxies.clone(), ttl: d.ttl.max(list_ttl), spread_ms })
    };
    let mut next_list = tokio::time::Instant::now();
    let wait = threshold + Duration::from_millis(500);
    let mut silence = Box::pin(tokio::time::sleep(wait));
    // The agent pings as often as this cluster wants to hear from it, whatever its own setting,
    // a little more often in fact (1 s or 5 % less): SSH's own keep-alive (30 s by default) fires
    // after that long without a byte from the peer, and pings at exactly its period would lose
    // the race about half the time, adding a keep-alive round trip to every other heartbeat.
    let interval = shared.auth.settings.keep_alive_interval;
    let keep_alive = Heartbeat::KeepAlive {
        interval_ms: u64::try_from((interval - (interval / 20).min(Duration::from_secs(1))).as_millis()).unwrap_or(u64::MAX),
        count_max: shared.auth.settings.keep_alive_count_max,
    };
    if write_message(&mut writer, &keep_alive).await.is_err() {
        return super::close_connection(&handle, &kill, "heartbeat stopped").await;
    }
    loop {
        if tokio::time::Instant::now() >= next_list {
            let list = discovery.borrow_and_update().clone();
            if write_message(&mut writer, &list_message(&list)).await.is_err() {
                break;
            }
            next_list = tokio::time::Instant::now() + repeat;
        }
        if send_cas {
            send_cas = false;
            if let Some(msg) = super::cas_message(&shared.auth, &[CaType::Host, CaType::User]).await {
                let text = framed(&msg);
                let hash = hash_of(&text);
                if hash != sent_cas {
                    if write_text(&mut writer, &text).await.is_err() {
                        break;
                    }
                    tracing::debug!(tunnel = ?key, "sent this cluster's certificate authorities to the leaf");
                    sent_cas = hash;
                }
            }
        }
        if shared.registry.is_leaving() && !told_to_move {
            told_to_move = true;
            if write_message(&mut writer, &Heartbeat::Reconnect).await.is_err() {
                break;
            }
        }
        let line = tokio::select! {
            next = lines.next() => next,
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
        };
        let message = match line.map(|l| l.map(|l| Heartbeat::decode(&l))) {
            Ok(Some(Ok(Some(m)))) => m,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::warn!(tunnel = ?key, error = %e, "unexpected heartbeat message; closing the tunnel");
                break;
            }
            Ok(Some(Ok(None))) | Err(_) => {
                tracing::warn!(tunnel = ?key, "unexpected heartbeat message; closing the tunnel");
                break;
            }
        };
        match (message, &key) {
            (Heartbeat::Cas(cas), TunnelKey::Cluster(leaf)) => {
                // The leaf's host CA after a change (its rotation): stored for tsh's known_hosts
                // and for checking its agents. Only a host CA, only the leaf's own.
                let (auth, leaf) = (shared.auth.clone(), leaf.clone());
                tokio::spawn(async move {
                    if let Err(e) = auth.update_external_cas(&leaf, &[CaType::Host], cas).await {
                        tracing::warn!(leaf = %leaf, error = %e, "cannot store the leaf cluster's host certificate authority");
                    }
                });
                continue;
            }
            (Heartbeat::Ping(_), _) => {}
            (other, _) => {
                tracing::warn!(tunnel = ?key, message = ?std::mem::discriminant(&other), "unexpected heartbeat message; closing the tunnel");
                break;
            }
        }
        let now = tokio::time::Instant::now();
        silence.as_mut().reset(now + wait);
        let mut out = framed(&Heartbeat::Pong);
        if now >= next_list {
            let list = discovery.borrow_and_update().clone();
            out.push_str(&framed(&list_message(&list)));
            next_list = now + repeat;
        }
        if write_text(&mut writer, &out).await.is_err() {
            break;
        }
        if let TunnelKey::Cluster(name) = &key {
            shared.presence.heard(name);
            if first {
                tracing::info!(leaf = %name, "leaf cluster online");
                first = false;
            }
        }
    }
    if shared.tunnels.remove(&key, conn_id)
        && let TunnelKey::Cluster(name) = &key
    {
        let _ = shared.presence.closed(name).await;
    }
    super::close_connection(&handle, &kill, "heartbeat stopped").await;
}

fn hash_of(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// One heartbeat message as it goes on the channel.
fn framed(m: &Heartbeat) -> String {
    format!("{}\n", m.encode())
}

async fn write_message<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, m: &Heartbeat) -> std::io::Result<()> {
    write_text(w, &framed(m)).await
}

async fn write_text<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.flush().await
}
