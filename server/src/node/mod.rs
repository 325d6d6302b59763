//! The SSH node service: authorizes logins with its cluster's CAs and roles and runs sessions.
//!
//! ```text
//!   auth (local, or over HTTPS with the node's host identity)
//!     |  authz bundle (long-poll: changes arrive in milliseconds), heartbeats, audit events
//!   node ----- direct: listens on ssh_service.listen_addr
//!         \--- tunnel: dials its proxy, serves SSH over the channels the proxy opens
//! ```
//! It runs inside the cluster's process (ssh_service enabled) or alone
//! (`teleport start --roles=node --token=... --auth-server=...`).

pub mod agent;
pub mod authz;
pub mod copy;
pub mod decide;
pub mod explain;
pub mod forward;
pub mod join;
pub mod party;
pub mod recorder;
pub mod renew;
pub mod server;
pub mod session;
pub mod sftp;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shared::api::{AuditEvent, CertsResponse, NodeAuthzBundle, RenewHostRequest, SessionRecording, SessionTracker, path};
use shared::certs;
use shared::client::{ApiClient, BoxFuture, ServerTrust, tcp_dialer_from};
use shared::error::{Error, Result};
use shared::resource::{LabelMap, Node};
use shared::timefmt::SharedClock;
use tokio::sync::watch;

use crate::auth::AuthServer;
use crate::limits::{Limiter, Permit, Source};
use crate::live::{Live, Place};
use crate::shutdown::Shutdown;
use crate::ssh::{HostCreds, LiveCreds};
use crate::tunnel::Origin;

/// How a node talks to its auth service.
pub trait NodeAccessPoint: Send + Sync + 'static {
    /// The authorization bundle; waits for a change when `after` is current.
    fn authz_bundle(&self, after: u64) -> BoxFuture<'_, Result<NodeAuthzBundle>>;
    /// Registers or renews the node.
    fn heartbeat(&self, node: Node) -> BoxFuture<'_, Result<()>>;
    /// Records an audit event.
    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>>;
    /// Stores (or updates) a session recording's metadata.
    fn save_recording(&self, r: SessionRecording) -> BoxFuture<'_, Result<()>>;
    /// Stores one chunk of a session recording.
    fn save_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>>;
    /// New host certificates under the rotated host CA.
    fn renew_host(&self, req: RenewHostRequest) -> BoxFuture<'_, Result<CertsResponse>>;
    /// Records (or refreshes) a live session others may join.
    fn track(&self, t: SessionTracker) -> BoxFuture<'_, Result<()>>;
    /// Registers or renews a Kubernetes cluster this process serves.
    fn kube_heartbeat(&self, k: shared::resource::KubeCluster) -> BoxFuture<'_, Result<()>>;
    /// Sends several audit events together.
    fn emit_many(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            for e in events {
                self.emit(e).await?;
            }
            Ok(())
        })
    }
    /// Registers or renews an app this process serves.
    fn app_heartbeat(&self, a: shared::resource::App) -> BoxFuture<'_, Result<()>>;
    /// The id of the key that signs apps' tokens now.
    fn app_token_kid(&self) -> BoxFuture<'_, Result<String>>;
    /// The apps an admin defined.
    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>>;
    /// This process serves defined app `name` (for three heartbeats).
    fn serve_defined_app(&self, name: String, heartbeat: Duration) -> BoxFuture<'_, Result<()>>;
    /// An app's token with these claims, signed by the cluster's `jwt` CA.
    fn sign_app_token(&self, claims: serde_json::Value) -> BoxFuture<'_, Result<String>>;
    /// Registers or renews a database this process serves.
    fn db_heartbeat(&self, _d: shared::resource::Db) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(shared::error::Error::internal("this process registers no databases")) })
    }
    /// A client certificate for database user `user`, ending by `not_after`.
    fn db_client_cert(&self, _user: String, _not_after: i64) -> BoxFuture<'_, Result<shared::api::DbClientCert>> {
        Box::pin(async { Err(shared::error::Error::internal("this process signs no database certificates")) })
    }
    /// A live session ended.
    fn untrack(&self, sid: String) -> BoxFuture<'_, Result<()>>;
    /// Talks to the auth service with `creds` (and trusts their host CAs) from now on.
    fn use_creds(&self, _creds: &HostCreds) -> Result<()> {
        Ok(())
    }
}

/// A node inside the auth process.
pub struct LocalAccess {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// Host UUID (heartbeats may only be for it).
    pub host_id: String,
    /// The node's name (its certificates carry it).
    pub nodename: String,
}

impl NodeAccessPoint for LocalAccess {
    fn authz_bundle(&self, after: u64) -> BoxFuture<'_, Result<NodeAuthzBundle>> {
        Box::pin(self.auth.node_authz_bundle(after, Duration::from_secs(25)))
    }
    fn heartbeat(&self, node: Node) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_node(node, &self.host_id, None).await })
    }
    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.auth.audit.record(event).await;
            Ok(())
        })
    }
    fn save_recording(&self, r: SessionRecording) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.save_recording(r, &self.host_id).await })
    }
    fn save_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.save_recording_chunk(&sid, seq, data, &self.host_id).await })
    }
    fn kube_heartbeat(&self, k: shared::resource::KubeCluster) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_kube_cluster(k, &self.host_id).await })
    }
    fn app_heartbeat(&self, a: shared::resource::App) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_app_server(a, &self.host_id).await })
    }
    fn app_token_kid(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { Ok(self.auth.app_token_signer().await?.kid().to_string()) })
    }
    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>> {
        Box::pin(self.auth.defined_apps())
    }
    fn serve_defined_app(&self, name: String, heartbeat: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let server = crate::auth::apps::AppServer { host_id: self.host_id.clone(), hostname: self.nodename.clone(), tunnel: false };
            self.auth.serve_defined_app(&name, server, heartbeat).await
        })
    }
    fn sign_app_token(&self, claims: serde_json::Value) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move { self.auth.app_token_signer().await?.sign(&claims) })
    }
    fn track(&self, t: SessionTracker) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_session_tracker(t, &self.host_id).await })
    }
    fn untrack(&self, sid: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.remove_session_tracker(&sid, &self.host_id).await })
    }
    fn renew_host(&self, req: RenewHostRequest) -> BoxFuture<'_, Result<CertsResponse>> {
        // Part of the auth process: no certificate to prove anything with (after an emergency
        // rotation its old one is trusted by nobody), the same principals as before.
        Box::pin(async move {
            let cert = certs::parse_ssh_cert(&req.ssh_cert)?;
            let role = shared::resource::token::SystemRole::Node;
            let host = shared::identity::HostIdentity { host_id: self.host_id.clone(), nodename: self.nodename.clone(), role };
            self.auth.host_certs(&host, &req.keys, cert.valid_principals()).await
        })
    }
}

/// A node in its own process, talking HTTPS to its cluster's proxy with its host certificate.
/// The clients are rebuilt when a host CA rotation changes what to trust or what to present.
pub struct RemoteAccess {
    join_addr: String,
    source: Option<IpAddr>,
    identity_file: PathBuf,
    clients: std::sync::RwLock<Arc<Clients>>,
}

struct Clients {
    /// Heartbeats, audit, recordings (pinned to the cluster's host CA).
    client: ApiClient,
    /// A second client for the long-poll, so it does not block heartbeats.
    poll: ApiClient,
}

impl RemoteAccess {
    /// Clients of the auth service at `join_addr`, dialing from `source` (the address the
    /// node registers), presenting `creds`; renewed credentials are saved to `identity_file`.
    pub fn new(join_addr: &str, source: Option<IpAddr>, creds: &HostCreds, identity_file: PathBuf) -> Result<RemoteAccess> {
        let clients = Self::clients_for(join_addr, source, creds)?;
        Ok(RemoteAccess { join_addr: join_addr.into(), source, identity_file, clients: std::sync::RwLock::new(Arc::new(clients)) })
    }

    fn clients_for(join_addr: &str, source: Option<IpAddr>, creds: &HostCreds) -> Result<Clients> {
        let pinned = ServerTrust::Pinned(creds.own_host_ca_pems());
        let id = creds.client_identity();
        let make = || ApiClient::new(tcp_dialer_from(join_addr, source), certs::CLUSTER_LOCAL_NAME, &pinned, Some(&id), join_addr);
        Ok(Clients { client: make()?, poll: make()?.with_timeout(Duration::from_secs(60)) })
    }

    fn clients(&self) -> Arc<Clients> {
        match self.clients.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl NodeAccessPoint for RemoteAccess {
    fn authz_bundle(&self, after: u64) -> BoxFuture<'_, Result<NodeAuthzBundle>> {
        Box::pin(async move { self.clients().poll.get(&format!("{}?after={after}", path::NODE_AUTHZ)).await })
    }
    fn heartbeat(&self, node: Node) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::NODE_HEARTBEAT, &node).await.map(|_| ()) })
    }
    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::EVENTS, &vec![event]).await.map(|_| ()) })
    }
    fn emit_many(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::EVENTS, &events).await.map(|_| ()) })
    }
    fn save_recording(&self, r: SessionRecording) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::RECORDINGS, &r).await.map(|_| ()) })
    }
    fn kube_heartbeat(&self, k: shared::resource::KubeCluster) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::KUBE_HEARTBEAT, &k).await.map(|_| ()) })
    }
    fn app_heartbeat(&self, a: shared::resource::App) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::APP_HEARTBEAT, &a).await.map(|_| ()) })
    }
    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>> {
        Box::pin(async move { self.clients().client.get(path::APP_DEFINED).await })
    }
    fn serve_defined_app(&self, name: String, heartbeat: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let body = serde_json::json!({"name": name, "heartbeat_seconds": heartbeat.as_secs()});
            self.clients().client.post::<_, serde_json::Value>(path::APP_DEFINED, &body).await.map(|_| ())
        })
    }
    fn app_token_kid(&self) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let v: serde_json::Value = self.clients().client.get(path::APP_TOKEN).await?;
            Ok(v["kid"].as_str().unwrap_or_default().to_string())
        })
    }
    fn sign_app_token(&self, claims: serde_json::Value) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let v: serde_json::Value = self.clients().client.post(path::APP_TOKEN, &claims).await?;
            v["token"].as_str().map(str::to_string).ok_or_else(|| shared::error::Error::internal("the auth service signed no token"))
        })
    }
    fn db_heartbeat(&self, d: shared::resource::Db) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::DB_HEARTBEAT, &d).await.map(|_| ()) })
    }
    fn db_client_cert(&self, user: String, not_after: i64) -> BoxFuture<'_, Result<shared::api::DbClientCert>> {
        Box::pin(
            async move { self.clients().client.post(path::DB_CLIENT_CERT, &shared::api::DbClientCertRequest { user, not_after }).await },
        )
    }
    fn save_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            use base64::Engine as _;
            let chunk = shared::api::RecordingChunk { seq, data: base64::engine::general_purpose::STANDARD.encode(data) };
            self.clients().client.post::<_, serde_json::Value>(&format!("{}/{sid}/chunks", path::RECORDINGS), &chunk).await.map(|_| ())
        })
    }
    fn renew_host(&self, req: RenewHostRequest) -> BoxFuture<'_, Result<CertsResponse>> {
        Box::pin(async move { self.clients().client.post(path::HOST_RENEW, &req).await })
    }
    fn track(&self, t: SessionTracker) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.post::<_, serde_json::Value>(path::SESSION_TRACKERS, &t).await.map(|_| ()) })
    }
    fn untrack(&self, sid: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.clients().client.delete(&format!("{}/{sid}", path::SESSION_TRACKERS)).await })
    }
    fn use_creds(&self, creds: &HostCreds) -> Result<()> {
        let clients = Self::clients_for(&self.join_addr, self.source, creds)?;
        shared::profile::write_identity_file(&self.identity_file, &creds.credentials())?;
        match self.clients.write() {
            Ok(mut c) => *c = Arc::new(clients),
            Err(p) => *p.into_inner() = Arc::new(clients),
        }
        Ok(())
    }
}

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Host UUID.
    pub host_id: String,
    /// Node name.
    pub nodename: String,
    /// Static labels.
    pub labels: LabelMap,
    /// Address registered for direct connections (`host:port`); empty for tunnel nodes.
    pub advertise_addr: String,
    /// Reached through a reverse tunnel.
    pub use_tunnel: bool,
    /// Heartbeat interval (the record expires after 3 missed heartbeats).
    pub heartbeat_interval: Duration,
    /// End sessions idle this long (`auth_service.client_idle_timeout`; roles may shorten it).
    pub client_idle_timeout: Option<Duration>,
    /// The most output one session's recording keeps (`ssh_service.session_recording_max_bytes`).
    pub recording_max_bytes: u64,
    /// `ssh_service.ssh_file_copy`: this node serves SFTP and `scp`.
    pub file_copy: bool,
    /// `ssh_service.port_forwarding`: this node forwards ports.
    pub port_forwarding: bool,
}

/// A running node.
pub struct NodeService {
    /// Settings.
    pub cfg: NodeConfig,
    /// Auth access.
    pub access: Arc<dyn NodeAccessPoint>,
    /// The current authorization bundle.
    pub bundle: watch::Receiver<Option<Arc<NodeAuthzBundle>>>,
    bundle_tx: watch::Sender<Option<Arc<NodeAuthzBundle>>>,
    /// Host credentials (a host CA rotation renews them).
    pub creds: LiveCreds,
    /// Clock.
    pub clock: SharedClock,
    /// Running sessions, for locks to end.
    pub live: Arc<Live>,
    /// Interactive sessions others may join.
    pub parties: party::Hub,
    /// Connection limits of the node's listener (and of connections through its tunnel).
    pub limiter: Arc<Limiter>,
    /// Log lines about refused vouches.
    refused_vouch: crate::throttle::Throttle,
}

impl NodeService {
    /// Builds a node.
    pub fn new(
        cfg: NodeConfig,
        creds: LiveCreds,
        access: Arc<dyn NodeAccessPoint>,
        clock: SharedClock,
        limiter: Arc<Limiter>,
    ) -> Arc<NodeService> {
        let (bundle_tx, bundle) = watch::channel(None);
        Arc::new(NodeService {
            cfg,
            access,
            bundle,
            bundle_tx,
            creds,
            clock,
            parties: party::Hub::default(),
            live: Live::new(),
            limiter,
            refused_vouch: Default::default(),
        })
    }

    /// The node record it heartbeats.
    pub fn record(&self) -> Node {
        let mut n =
            Node::new(&self.cfg.host_id, &self.cfg.nodename, &self.cfg.advertise_addr, self.cfg.use_tunnel, self.cfg.labels.clone());
        n.metadata.expires = Some(self.clock.now() + self.cfg.heartbeat_interval * 3);
        n
    }

    /// Keeps the authorization bundle current.
    pub async fn run_bundle_loop(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut generation = 0u64;
        let mut failures = 0u32;
        loop {
            let r = tokio::select! {
                _ = shutdown.wait() => return,
                r = self.access.authz_bundle(generation) => r,
            };
            match r {
                Ok(b) => {
                    failures = 0;
                    // Every answer, changed or not: a renewal that failed is retried.
                    if let Some(ca) = &b.host_ca {
                        self.follow_host_ca(ca).await;
                    }
                    if b.generation != generation || self.bundle.borrow().is_none() {
                        generation = b.generation;
                        let place = Place { server_id: Some(&self.cfg.host_id), node_name: Some(&self.cfg.nodename) };
                        self.live.enforce(&b.locks, place, self.clock.now());
                        let _ = self.bundle_tx.send(Some(Arc::new(b)));
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(error = %e, "cannot fetch roles and certificate authorities from the auth service");
                    }
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Heartbeats the node record.
    pub async fn run_heartbeat_loop(self: Arc<Self>, shutdown: Shutdown) {
        let failing = std::sync::atomic::AtomicBool::new(false);
        crate::shutdown::now_and_every(self.cfg.heartbeat_interval, shutdown, || async {
            match self.access.heartbeat(self.record()).await {
                Ok(()) => {
                    if failing.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        tracing::info!("node heartbeat restored");
                    }
                }
                Err(e) => {
                    if !failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(error = %e, "node heartbeat failed");
                    }
                }
            }
        })
        .await
    }

    /// The current bundle, waiting briefly at start-up for the first one.
    pub async fn current_bundle(&self) -> Option<Arc<NodeAuthzBundle>> {
        let mut rx = self.bundle.clone();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|b| b.is_some())).await;
        match got {
            Ok(Ok(b)) => b.clone(),
            _ => None,
        }
    }

    /// Serves SSH connections on a listener.
    pub async fn run_listener(self: Arc<Self>, listener: tokio::net::TcpListener, shutdown: Shutdown) {
        let limiter = self.limiter.clone();
        crate::limits::accept_until(listener, limiter, shutdown, "ssh_service", move |tcp, peer, permit| {
            let node = self.clone();
            async move {
                let mut tcp = tcp;
                match node.vouched(&mut tcp, peer).await {
                    Ok(None) => node.serve(tcp, Some(peer), permit, None).await,
                    Ok(Some(origin)) => {
                        // Counted as the user the proxy vouches for, from now on.
                        let Ok(vouched) = node.limiter.admit(Source::Caller(origin.caller())) else { return };
                        drop(permit);
                        node.serve(tcp, Some(peer), vouched, Some(origin)).await
                    }
                    Err(e) => {
                        if let Some(skipped) = node.refused_vouch.allow() {
                            tracing::warn!(%peer, error = %e, skipped, "closing a connection");
                        }
                    }
                }
            }
        })
        .await;
    }

    /// Reads a proxy's vouch (`tunnel::vouch`) when the connection starts with one: `None` for a
    /// client that speaks SSH at once, the user it vouches for, or why it is refused.
    async fn vouched(&self, tcp: &mut tokio::net::TcpStream, peer: SocketAddr) -> Result<Option<Origin>> {
        use crate::tunnel::vouch;
        use crate::tunnel::wire::{MAX_VOUCH_LINE, VouchLine};
        let deadline = tokio::time::Instant::now() + self.limiter.limits().login_grace_time.min(Duration::from_secs(10));
        let mut buf = vec![0u8; MAX_VOUCH_LINE];
        // Peek until a whole line is there (or it cannot be a vouch), then take exactly it.
        let len = loop {
            let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
                .await
                .map_err(|_| Error::access_denied(format!("{peer} sent nothing in time")))?
                .map_err(|e| Error::connection_problem(e.to_string()))?;
            let seen = &buf[..n];
            if !VouchLine::may_start(seen) {
                return Ok(None);
            }
            if let Some(i) = seen.iter().position(|b| *b == b'\n') {
                break i + 1;
            }
            if n == buf.len() {
                return Err(Error::access_denied("a vouch line longer than allowed"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let mut line = vec![0u8; len];
        tokio::io::AsyncReadExt::read_exact(tcp, &mut line).await.map_err(|e| Error::connection_problem(e.to_string()))?;
        let bundle = self.current_bundle().await.ok_or_else(|| Error::connection_problem("no authorization bundle yet"))?;
        let host_cas: Vec<russh::keys::PublicKey> = bundle.host_ca.as_ref().map(|ca| ca.ssh_public_keys()).unwrap_or_default();
        let text = String::from_utf8_lossy(&line[..len - 1]).into_owned();
        vouch::verify(&text, &host_cas, &bundle.cluster_name, &self.cfg.host_id, self.clock.now()).map(Some)
    }

    /// Serves one SSH connection (TCP, or a channel from the tunnel for `origin`). It has its
    /// `permit`'s grace time to authenticate.
    pub async fn serve<S>(self: Arc<Self>, stream: S, peer: Option<SocketAddr>, permit: Permit, origin: Option<Origin>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let conn = server::NodeConn::new(self.clone(), peer, origin, Some(permit.mark()));
        let config = self.creds.ssh_config();
        let kill = crate::tunnel::killable::KillSwitch::new();
        let stream = shared::tuning::ReadAhead::new(crate::tunnel::killable::Killable::new(stream, kill.clone()));
        let serve = async move {
            match russh::server::run_stream(config, stream, conn).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!(?peer, error = %e, "SSH session ended with an error");
                    }
                }
                Err(e) => tracing::debug!(?peer, error = %e, "SSH handshake failed"),
            }
        };
        // russh runs the session in a task of its own: cutting the stream is what ends it.
        if crate::limits::with_grace(&permit, serve).await {
            kill.pull();
            tracing::debug!(?peer, "SSH connection did not authenticate in time; closed");
        }
    }
}

/// What a Kubernetes or app service in a process of its own serves through its tunnel.
enum Engine {
    Kube(Arc<crate::access::kube::engine::KubeEngine>),
    App(Arc<crate::access::app::engine::AppEngine>),
    Db(Arc<crate::access::db::engine::DbEngine>),
}

/// A Kubernetes client or an app session its cluster's proxy brings through the tunnel, with
/// the user's certificate (and the trusted root that brought it, for a root's user).
async fn serve_with_cert(
    node: &NodeService,
    engine: Engine,
    origin: Option<crate::tunnel::Origin>,
    mut stream: russh::ChannelStream<russh::client::Msg>,
) {
    use crate::tunnel::{write_err, write_ok};
    let cert = origin.as_ref().and_then(crate::tunnel::Origin::cert_der);
    let (Some(o), Some(cert)) = (origin, cert) else {
        let _ = write_err(&mut stream, &Error::access_denied("a request through the tunnel must carry the user's certificate")).await;
        return;
    };
    let permit = match node.limiter.admit(Source::Caller(o.caller())) {
        Ok(p) => p,
        Err(r) => {
            let e = Error::limit_exceeded(format!("the service is at its connection limit ({}); try again shortly", r.label()));
            let _ = write_err(&mut stream, &e).await;
            return;
        }
    };
    if write_ok(&mut stream).await.is_err() {
        return;
    }
    let local = match &engine {
        Engine::Kube(e) => e.access.cluster_name(),
        Engine::App(e) => e.access.cluster_name(),
        Engine::Db(e) => e.access.cluster_name(),
    };
    let via_root = (o.cluster != local && !o.cluster.is_empty()).then(|| o.cluster.clone());
    let fwd = crate::access::cluster::Forwarded { cert, addr: o.addr, via_root };
    match engine {
        Engine::Kube(e) => e.serve(Box::new(stream), fwd).await,
        Engine::App(e) => e.serve(Box::new(stream), fwd).await,
        Engine::Db(e) => e.serve(Box::new(stream), fwd).await,
    }
    drop(permit);
}

/// Serves the node's SSH over channels its proxy opens through the tunnel, and the process's
/// Kubernetes service when it runs one.
pub struct NodeTunnelService {
    /// The node half.
    pub node: Arc<NodeService>,
    /// The Kubernetes service, if this process runs one.
    pub kube: Option<Arc<crate::access::kube::engine::KubeEngine>>,
    /// The app service, if this process runs one.
    pub app: Option<Arc<crate::access::app::engine::AppEngine>>,
    /// The database service, if this process runs one.
    pub db: Option<Arc<crate::access::db::engine::DbEngine>>,
    /// Whether it serves SSH (`--roles=kube` or `--roles=app` alone does not).
    pub ssh: bool,
}

impl crate::tunnel::agent::TunnelService for NodeTunnelService {
    fn serve(&self, req: crate::tunnel::TunnelRequest, mut stream: russh::ChannelStream<russh::client::Msg>) -> BoxFuture<'static, ()> {
        use crate::tunnel::{Target, write_err, write_ok};
        let node = self.node.clone();
        let kube = self.kube.clone();
        let app = self.app.clone();
        let db = self.db.clone();
        let ssh = self.ssh;
        Box::pin(async move {
            match (&req.target, kube, app, db) {
                (Target::Kube, Some(e), _, _) => return serve_with_cert(&node, Engine::Kube(e), req.origin, stream).await,
                (Target::App, _, Some(e), _) => return serve_with_cert(&node, Engine::App(e), req.origin, stream).await,
                (Target::Db, _, _, Some(e)) => return serve_with_cert(&node, Engine::Db(e), req.origin, stream).await,
                _ => {}
            }
            if req.target != Target::Ssh || !ssh {
                let what = if ssh { "a node only serves SSH" } else { "this process does not serve SSH" };
                let _ = write_err(&mut stream, &Error::bad_parameter(what)).await;
                return;
            }
            let source = match &req.origin {
                Some(o) => Source::Caller(o.caller()),
                None => Source::Unknown,
            };
            let permit = match node.limiter.admit(source) {
                Ok(p) => p,
                Err(r) => {
                    let e = Error::limit_exceeded(format!("the node is at its connection limit ({}); try again shortly", r.label()));
                    let _ = write_err(&mut stream, &e).await;
                    return;
                }
            };
            if write_ok(&mut stream).await.is_ok() {
                node.serve(stream, None, permit, req.origin).await;
            }
        })
    }
}
