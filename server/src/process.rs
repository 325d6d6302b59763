//! Process assembly: storage, auth, TLS, listeners, tunnels and the node, started in order and
//! stopped by one shutdown signal (in-flight requests finish, then storage closes cleanly).
//!
//! ```text
//!  cluster process (auth+proxy[+node])         node process (--roles=node)
//!  ---------------------------------           ---------------------------
//!  SQLite -> AuthServer -> API (axum)           join with token (once), keep identity
//!  web port: HTTPS | SSH (users, tunnels)       heartbeats + authz long-poll over HTTPS
//!  TrustManager: agents to roots                direct listener, or tunnel agent to its proxy
//!  in-process node (optional)
//! ```

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use shared::api::{JoinRequest, JoinResponse, path};
use shared::certs;
use shared::client::{ApiClient, ServerTrust, tcp_dialer_from};
use shared::identity::HostIdentity;
use shared::profile::{Credentials, write_file, write_identity_file};
use shared::resource::token::SystemRole;
use shared::timefmt::SharedClock;
use tokio::sync::watch;

use crate::api::{self, ApiState, PingInfo, RateLimiter};
use crate::audit::AuditLog;
use crate::auth::{AuthServer, AuthSettings};
use crate::authz::Authorizer;
use crate::config::Config;
use crate::limits::Limiter;
use crate::listener::{ApiServer, WebListener};
use crate::live::Live;
use crate::node::{LocalAccess, NodeConfig, NodeService, NodeTunnelService, RemoteAccess};
use crate::services::Services;
use crate::ssh::HostCreds;
use crate::ssh::proxy::ProxySsh;
use crate::ssh::router::Router;
use crate::storage::Backend;
use crate::storage::sqlite::SqliteBackend;
use crate::tls::TlsState;
use crate::tunnel::TunnelRegistry;
use crate::tunnel::agent::AgentConfig;
use crate::tunnel::leaf_service::LeafShared;
use crate::tunnel::manager::TrustManager;

/// Waits for shutdown. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}

/// Triggers shutdown.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Triggers.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// A trigger and its receiver.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

fn prepare_data_dir(dir: &Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set permissions of {}", dir.display()))?;
    let lock_path = dir.join("teleport.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow!("another teleport process is using the data directory {}; stop it first or use another --data-dir", dir.display())
    })
}

fn load_or_create_host_id(dir: &Path) -> anyhow::Result<String> {
    let p = dir.join("host_uuid");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    write_file(&p, id.as_bytes(), 0o600).map_err(|e| anyhow!("{e}"))?;
    Ok(id)
}

fn host_part(addr: &str) -> String {
    shared::client::host_of(addr)
}

/// The IP this host uses to reach `target` (no packets are sent).
fn outbound_ip(target: &str) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    let addr = target.to_socket_addrs().ok()?.next()?;
    let sock = std::net::UdpSocket::bind(if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
    sock.connect(addr).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

/// The address a node registers: its listen address, with an unspecified host replaced by
/// `advertise_ip` or the address it uses towards `towards`.
fn advertise_addr(listen: &str, advertise_ip: Option<&str>, towards: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "3022"));
    let unspecified = host.is_empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
    let host = match (advertise_ip, unspecified) {
        (Some(ip), _) => ip.to_string(),
        (None, false) => host.to_string(),
        (None, true) => outbound_ip(towards).map(|i| i.to_string()).unwrap_or_else(|| "127.0.0.1".into()),
    };
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The web certificate: the operator's, or one from a CA generated (and kept) in the data dir.
fn web_certificate(cfg: &Config, clock: &SharedClock) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    if let Some(kp) = cfg.https_keypairs.first() {
        let cert = std::fs::read_to_string(&kp.cert_file)
            .with_context(|| format!("cannot read https_keypairs cert_file {}", kp.cert_file.display()))?;
        let key = std::fs::read_to_string(&kp.key_file)
            .with_context(|| format!("cannot read https_keypairs key_file {}", kp.key_file.display()))?;
        return crate::tls::certified_key(&cert, &key).map_err(|e| anyhow!("https_keypairs: {e}"));
    }
    let dir = cfg.data_dir.join("web");
    std::fs::create_dir_all(&dir)?;
    let (ca_path, cert_path, key_path) = (dir.join("webca.pem"), dir.join("webcert.pem"), dir.join("webkey.pem"));
    let mut sans = vec![host_part(&cfg.public_addr), cfg.nodename.clone(), "localhost".to_string()];
    let listen_host = host_part(&cfg.web_listen_addr);
    if listen_host != "0.0.0.0" && listen_host != "::" {
        sans.push(listen_host);
    }
    sans.dedup();
    let sans_marker = dir.join("sans");
    let wanted = sans.join(",");
    let reuse = std::fs::read_to_string(&sans_marker).map(|s| s == wanted).unwrap_or(false) && cert_path.exists() && key_path.exists();
    if !reuse {
        let now = clock.now();
        let ca_key = certs::new_tls_key()?;
        let ca_pem =
            certs::new_ca_cert(&ca_key, &format!("{} web CA", cfg.cluster_name), "web", now, Duration::from_secs(10 * 365 * 86400))?;
        let key = certs::new_tls_key()?;
        let cert_pem = certs::sign_tls_cert(
            &ca_pem,
            &ca_key.serialize_pem(),
            &certs::spki_pem(&key),
            &certs::TlsCertParams {
                common_name: sans[0].clone(),
                organization: String::new(),
                sans: sans.clone(),
                identity_json: None,
                client: false,
                server: true,
                not_before: now - certs::CLOCK_SKEW,
                not_after: now + Duration::from_secs(2 * 365 * 86400),
            },
        )?;
        write_file(&ca_path, ca_pem.as_bytes(), 0o644)?;
        write_file(&cert_path, format!("{cert_pem}{ca_pem}").as_bytes(), 0o644)?;
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&sans_marker, wanted.as_bytes(), 0o644)?;
    }
    tracing::warn!(
        ca = %ca_path.display(),
        "no https_keypairs configured: serving a certificate from a CA generated for this cluster. \
         Clients need --insecure, or to trust the CA: SSL_CERT_FILE={} (or curl --cacert {})",
        ca_path.display(),
        ca_path.display()
    );
    let cert = std::fs::read_to_string(&cert_path)?;
    let key = std::fs::read_to_string(&key_path)?;
    crate::tls::certified_key(&cert, &key).map_err(|e| anyhow!("{e}"))
}

/// Issues host credentials from the local auth service.
async fn local_host_creds(
    auth: &AuthServer,
    host_id: &str,
    nodename: &str,
    role: SystemRole,
    extra: &[String],
) -> anyhow::Result<HostCreds> {
    let (ssh, tls, public) = HostCreds::new_keys()?;
    let host = HostIdentity { host_id: host_id.into(), nodename: nodename.into(), role };
    let issued = auth.host_certs(&host, &public, extra).await?;
    Ok(HostCreds::from_issued(host_id, ssh, &tls, &issued)?)
}

/// Writes the admin identity `tctl -c teleport.yaml` uses.
async fn write_admin_identity(auth: &AuthServer, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let creds = local_host_creds(auth, "admin", "admin", SystemRole::Admin, &[]).await?;
    let c = Credentials {
        ssh_key: creds.key,
        ssh_cert: creds.cert,
        tls_key_pem: creds.tls_key_pem,
        tls_cert_pem: creds.tls_cert_pem,
        host_cas: creds.host_cas,
    };
    let path = admin_identity_path(data_dir);
    write_identity_file(&path, &c)?;
    Ok(path)
}

/// Where the admin identity lives.
pub fn admin_identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.identity")
}

/// Runs the process until `shutdown`.
pub async fn run(cfg: Config, shutdown: Shutdown, clock: SharedClock) -> anyhow::Result<()> {
    let _lock = prepare_data_dir(&cfg.data_dir)?;
    if cfg.auth { run_cluster(cfg, shutdown, clock).await } else { run_node_only(cfg, shutdown, clock).await }
}

async fn bind(addr: &str, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} ({what}); is another process using it?"))
}

async fn run_cluster(cfg: Config, shutdown: Shutdown, clock: SharedClock) -> anyhow::Result<()> {
    let backend_dir = cfg.data_dir.join("backend");
    std::fs::create_dir_all(&backend_dir)?;
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&backend_dir.join("sqlite.db"), clock.clone())?);
    let result = run_cluster_with(cfg, shutdown, clock, backend.clone()).await;
    backend.close().await;
    tracing::info!("storage closed");
    result
}

async fn run_cluster_with(cfg: Config, shutdown: Shutdown, clock: SharedClock, backend: Arc<dyn Backend>) -> anyhow::Result<()> {
    let limiter = Limiter::new(cfg.limits, crate::limits::raise_fd_limit());
    let services = Services::new(backend.clone());
    let audit = AuditLog::open(backend.clone(), &cfg.data_dir, &cfg.cluster_name, clock.clone())?;
    let settings = AuthSettings {
        cluster_name: cfg.cluster_name.clone(),
        data_dir: cfg.data_dir.clone(),
        public_addr: cfg.public_addr.clone(),
        keep_alive_interval: cfg.keep_alive_interval,
        keep_alive_count_max: cfg.keep_alive_count_max,
        insecure: cfg.insecure,
        static_tokens: cfg.static_tokens.clone(),
    };
    let auth = Arc::new(AuthServer::new(services, settings, audit, clock.clone()));
    auth.init().await?;
    auth.reset_remote_statuses().await?;
    let host_id = load_or_create_host_id(&cfg.data_dir)?;
    let admin = write_admin_identity(&auth, &cfg.data_dir).await?;
    let extra = vec![host_part(&cfg.public_addr), host_part(&cfg.web_listen_addr)];
    let proxy_creds = Arc::new(local_host_creds(&auth, &host_id, &cfg.nodename, SystemRole::Proxy, &extra).await?);

    // Background maintenance.
    tokio::spawn(auth.clone().run_authz_watcher(shutdown.clone()));
    tokio::spawn(auth.clone().run_heartbeat_flusher(shutdown.clone()));
    {
        let backend = backend.clone();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = sd.wait() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if let Err(e) = backend.sweep().await {
                            tracing::warn!(error = %e, "expiry sweep failed");
                        }
                    }
                }
            }
        });
    }

    // TLS and the API.
    let web = web_certificate(&cfg, &clock)?;
    let cluster_cert = crate::tls::certified_key(&proxy_creds.tls_cert_pem, &proxy_creds.tls_key_pem)?;
    let tls = TlsState::new(auth.clone(), web, cluster_cert).await?;
    tokio::spawn(tls.clone().run_refresher(shutdown.clone()));
    let ping = PingInfo {
        public_addr: cfg.public_addr.clone(),
        web_listen_addr: cfg.web_listen_addr.clone(),
        tunnel_public_addr: cfg.tunnel_public_addr.clone(),
        tunnel_listen_addr: cfg.tunnel_listen_addr.clone().unwrap_or_else(|| cfg.web_listen_addr.clone()),
        tls_routing: cfg.tunnel_listen_addr.is_none(),
    };
    let state = Arc::new(ApiState { auth: auth.clone(), authz: Authorizer::new(auth.clone()), ping, limiter: RateLimiter::default() });
    let active = Arc::new(AtomicUsize::new(0));
    let app = api::router(state).layer(axum::middleware::from_fn({
        let active = active.clone();
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let active = active.clone();
            async move {
                let _guard = crate::diag::InFlight::new(&active);
                next.run(req).await
            }
        }
    }));
    let api_server = Arc::new(ApiServer { tls, app, shutdown: shutdown.clone() });

    // SSH proxy, routing, tunnels.
    let tunnels = TunnelRegistry::new();
    let router = Arc::new(Router { auth: auth.clone(), tunnels: tunnels.clone(), api: api_server.clone() });
    let proxy_ssh = Arc::new(ProxySsh {
        auth: auth.clone(),
        router: router.clone(),
        tunnels: tunnels.clone(),
        config: crate::ssh::server_config(proxy_creds.key.clone(), proxy_creds.cert.clone(), None),
        connections: Arc::new(AtomicUsize::new(0)),
        live: Live::new(),
        max_channels: cfg.limits.max_channels,
        client_idle_timeout: cfg.client_idle_timeout,
    });
    tokio::spawn(proxy_ssh.clone().run_remote_cluster_watcher(shutdown.clone()));
    tokio::spawn(proxy_ssh.clone().run_lock_enforcer(shutdown.clone()));
    let web_listener = Arc::new(WebListener { api: api_server.clone(), ssh: proxy_ssh.clone(), limiter: limiter.clone() });
    let listener = bind(&cfg.web_listen_addr, "proxy_service.web_listen_addr").await?;
    tokio::spawn(web_listener.clone().run(listener, shutdown.clone()));
    for (extra_addr, what) in
        [(&cfg.tunnel_listen_addr, "proxy_service.tunnel_listen_addr"), (&cfg.ssh_proxy_listen_addr, "proxy_service.listen_addr")]
    {
        if let Some(a) = extra_addr {
            let l = bind(a, what).await?;
            tokio::spawn(web_listener.clone().run(l, shutdown.clone()));
        }
    }

    // Leaf side: tunnels to trusted roots.
    let manager = TrustManager {
        auth: auth.clone(),
        creds: proxy_creds.clone(),
        leaf: Arc::new(LeafShared { router: router.clone(), live: proxy_ssh.live.clone(), limiter: limiter.clone() }),
        max_backoff: Duration::from_secs(10),
    };
    tokio::spawn(manager.run(shutdown.clone()));

    // In-process node.
    let mut node: Option<Arc<NodeService>> = None;
    if cfg.ssh {
        let advertise = advertise_addr(&cfg.ssh_listen_addr, cfg.advertise_ip.as_deref(), &cfg.public_addr);
        let creds = Arc::new(local_host_creds(&auth, &host_id, &cfg.nodename, SystemRole::Node, &[host_part(&advertise)]).await?);
        let ncfg = NodeConfig {
            host_id: host_id.clone(),
            nodename: cfg.nodename.clone(),
            labels: cfg.labels.clone(),
            advertise_addr: advertise.clone(),
            use_tunnel: false,
            heartbeat_interval: cfg.node_heartbeat,
            client_idle_timeout: cfg.client_idle_timeout,
        };
        let access = Arc::new(LocalAccess { auth: auth.clone(), host_id: host_id.clone() });
        let n = NodeService::new(ncfg, creds, access, clock.clone(), limiter.clone());
        let l = bind(&cfg.ssh_listen_addr, "ssh_service.listen_addr").await?;
        tokio::spawn(n.clone().run_bundle_loop(shutdown.clone()));
        tokio::spawn(n.clone().run_heartbeat_loop(shutdown.clone()));
        tokio::spawn(n.clone().run_listener(l, shutdown.clone()));
        tracing::info!(addr = %advertise, "SSH node service started");
        node = Some(n);
    }

    if let Some(addr) = &cfg.diag_addr {
        let gauges = crate::diag::Gauges {
            tunnels: Some(tunnels.clone()),
            proxy_ssh_connections: Some(proxy_ssh.connections.clone()),
            api_requests: Some(active.clone()),
            limiter: Some(limiter.clone()),
        };
        crate::diag::run(addr.clone(), Arc::new(gauges), shutdown.clone()).await?;
    }
    tracing::info!(
        cluster = %cfg.cluster_name,
        web = %format!("https://{}", cfg.public_addr),
        listen = %cfg.web_listen_addr,
        admin_identity = %admin.display(),
        "teleport is running: auth and proxy (HTTPS, SSH and reverse tunnels on one port)"
    );
    let mut sd = shutdown.clone();
    sd.wait().await;
    tracing::info!("shutting down: finishing open requests");
    if let Some(n) = node {
        let _ = auth.delete_node(&n.cfg.host_id).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while active.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Loads the node identity saved at join, or joins with the token.
async fn node_identity(cfg: &Config, host_id: &str, join_addr: &str) -> anyhow::Result<HostCreds> {
    let path = cfg.data_dir.join("node.identity");
    if path.exists() {
        let c = shared::profile::read_identity_file(&path)?;
        let cluster = shared::identity::host_from_ssh_cert(&c.ssh_cert).map(|(_, a)| a)?;
        return Ok(HostCreds {
            host_id: host_id.into(),
            cluster,
            key: c.ssh_key,
            cert: c.ssh_cert,
            tls_cert_pem: c.tls_cert_pem,
            tls_key_pem: c.tls_key_pem,
            host_cas: c.host_cas,
        });
    }
    let token = cfg
        .join_token
        .clone()
        .ok_or_else(|| anyhow!("this node has not joined a cluster yet: pass --token=<token from 'tctl tokens add --type=node'>"))?;
    let (ssh, tls, public) = HostCreds::new_keys()?;
    let trust = if cfg.insecure { ServerTrust::Insecure } else { ServerTrust::System };
    let client = ApiClient::direct(join_addr, &trust, None)?;
    let mut extra = Vec::new();
    if let Some(ip) = &cfg.advertise_ip {
        extra.push(ip.clone());
    }
    let req = JoinRequest {
        token,
        nodename: cfg.nodename.clone(),
        host_id: host_id.into(),
        role: "Node".into(),
        additional_principals: extra,
        keys: public,
    };
    let resp: JoinResponse = client.post(path::JOIN, &req).await.map_err(|e| anyhow!("joining the cluster at {join_addr} failed: {e}"))?;
    let creds = HostCreds::from_issued(host_id, ssh, &tls, &resp.certs)?;
    let c = Credentials {
        ssh_key: creds.key.clone(),
        ssh_cert: creds.cert.clone(),
        tls_key_pem: creds.tls_key_pem.clone(),
        tls_cert_pem: creds.tls_cert_pem.clone(),
        host_cas: creds.host_cas.clone(),
    };
    write_identity_file(&path, &c)?;
    tracing::info!(cluster = %creds.cluster, "joined the cluster");
    Ok(creds)
}

async fn run_node_only(cfg: Config, shutdown: Shutdown, clock: SharedClock) -> anyhow::Result<()> {
    let join_addr = cfg.join_addr.clone().ok_or_else(|| anyhow!("a node needs --auth-server"))?;
    let host_id = load_or_create_host_id(&cfg.data_dir)?;
    let creds = Arc::new(node_identity(&cfg, &host_id, &join_addr).await?);
    let cluster_pems: Vec<String> = creds
        .host_cas
        .iter()
        .filter(|c| c.cluster_name == creds.cluster && c.ca_type == "host")
        .flat_map(|c| c.tls_certs.clone())
        .collect();
    let pinned = ServerTrust::Pinned(cluster_pems);
    let advertise =
        if cfg.use_tunnel { String::new() } else { advertise_addr(&cfg.ssh_listen_addr, cfg.advertise_ip.as_deref(), &join_addr) };
    // The auth service accepts only a node address its heartbeats come from: send them from it.
    let source: Option<IpAddr> = advertise.rsplit_once(':').and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok());
    let make = || {
        ApiClient::new(tcp_dialer_from(&join_addr, source), certs::CLUSTER_LOCAL_NAME, &pinned, Some(&creds.client_identity()), &join_addr)
    };
    let access = Arc::new(RemoteAccess { client: make()?, poll_client: make()?.with_timeout(Duration::from_secs(60)) });
    let ncfg = NodeConfig {
        host_id: host_id.clone(),
        nodename: cfg.nodename.clone(),
        labels: cfg.labels.clone(),
        advertise_addr: advertise.clone(),
        use_tunnel: cfg.use_tunnel,
        heartbeat_interval: cfg.node_heartbeat,
        client_idle_timeout: cfg.client_idle_timeout,
    };
    let limiter = Limiter::new(cfg.limits, crate::limits::raise_fd_limit());
    let node = NodeService::new(ncfg, creds.clone(), access, clock.clone(), limiter.clone());
    tokio::spawn(node.clone().run_bundle_loop(shutdown.clone()));
    tokio::spawn(node.clone().run_heartbeat_loop(shutdown.clone()));
    if cfg.use_tunnel {
        let keys = creds.own_host_ca_keys();
        let agent = AgentConfig {
            name: format!("node tunnel to {join_addr}"),
            addr: join_addr.clone(),
            server_cluster: creds.cluster.clone(),
            server_cas: Arc::new(move || {
                let keys = keys.clone();
                Box::pin(async move { Ok(keys) })
            }),
            creds: creds.clone(),
            interval: cfg.node_heartbeat.min(cfg.keep_alive_interval),
            count_max: cfg.keep_alive_count_max,
            max_backoff: Duration::from_secs(10),
            service: Arc::new(NodeTunnelService(node.clone())),
            clock: clock.clone(),
        };
        tokio::spawn(crate::tunnel::agent::run(agent, shutdown.clone()));
        tracing::info!(proxy = %join_addr, cluster = %creds.cluster, "SSH node service started (reverse tunnel, no listening port)");
    } else {
        let l = bind(&cfg.ssh_listen_addr, "ssh_service.listen_addr").await?;
        tokio::spawn(node.clone().run_listener(l, shutdown.clone()));
        tracing::info!(addr = %advertise, cluster = %creds.cluster, "SSH node service started");
    }
    if let Some(addr) = &cfg.diag_addr {
        let gauges = crate::diag::Gauges { limiter: Some(limiter), ..Default::default() };
        crate::diag::run(addr.clone(), Arc::new(gauges), shutdown.clone()).await?;
    }
    let mut sd = shutdown.clone();
    sd.wait().await;
    tracing::info!("shutting down");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_address_choice() {
        assert_eq!(advertise_addr("127.0.0.5:3022", None, "x:1"), "127.0.0.5:3022");
        assert_eq!(advertise_addr("0.0.0.0:3022", Some("10.1.2.3"), "x:1"), "10.1.2.3:3022");
        assert!(advertise_addr("0.0.0.0:3022", None, "127.0.0.9:3080").starts_with("127."));
    }
}
