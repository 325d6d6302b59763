//! A cluster process: auth and proxy (and optionally a node) over one storage, which several
//! processes may share (PostgreSQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shared::resource::proxy::ProxySpec;
use shared::resource::token::SystemRole;
use shared::timefmt::SharedClock;

use super::{advertise_addr, bind, host_part, load_or_create_host_id, local_host_creds, write_admin_identity};
use crate::api::{self, ApiState, PingInfo};
use crate::audit::{AuditLog, AuditStore};
use crate::auth::{AuthServer, AuthSettings};
use crate::config::Config;
use crate::limits::Limiter;
use crate::listener::{ApiServer, WebListener};
use crate::live::Live;
use crate::node::{LocalAccess, NodeConfig, NodeService};
use crate::proxy::leaf::LeafShared;
use crate::proxy::locks::LockEnforcer;
use crate::proxy::roots::TrustManager;
use crate::proxy::router::Router;
use crate::proxy::ssh::ProxySsh;
use crate::services::Services;
use crate::shutdown::{Stage, Stops, TaskSet};
use crate::ssh::LiveCreds;
use crate::storage::Backend;
use crate::tls::TlsState;
use crate::tunnel::TunnelRegistry;
use crate::tunnel::peer::Peering;
use crate::tunnel::proxies::ProxyRegistry;
use crate::tunnel::server::TunnelServer;

/// Opens the storage, serves until `shutdown`, then closes the storage (last, once nothing
/// writes to it any more).
pub(super) async fn run(cfg: Config, stops: Stops, clock: SharedClock) -> anyhow::Result<()> {
    let (backend, audit) = crate::storage::open(&cfg.storage, clock.clone()).await?;
    let result = serve(cfg, stops, clock, backend.clone(), audit).await;
    backend.close().await;
    tracing::info!("storage closed");
    result
}

async fn serve(
    cfg: Config,
    stops: Stops,
    clock: SharedClock,
    backend: Arc<dyn Backend>,
    audit_store: Arc<dyn AuditStore>,
) -> anyhow::Result<()> {
    let limiter = Limiter::new(cfg.limits, crate::limits::raise_fd_limit());
    let services = Services::new(backend.clone());
    let audit = AuditLog::open(audit_store, &cfg.data_dir, &cfg.cluster_name, clock.clone())?;
    let host_id = load_or_create_host_id(&cfg.data_dir)?;
    let mut tasks = TaskSet::new();
    let settings = AuthSettings {
        cluster_name: cfg.cluster_name.clone(),
        data_dir: cfg.data_dir.clone(),
        public_addr: cfg.public_addr.clone(),
        keep_alive_interval: cfg.keep_alive_interval,
        keep_alive_count_max: cfg.keep_alive_count_max,
        offline_leaf_ttl: cfg.offline_leaf_ttl,
        insecure: cfg.insecure,
        static_tokens: cfg.static_tokens.clone(),
        proxy_id: host_id.clone(),
        auth_preference: cfg.authentication.clone(),
    };
    let auth = Arc::new(AuthServer::new(services, settings, audit, clock.clone()));
    auth.init().await?;
    let presence = crate::tunnel::presence::Presence::new(auth.clone());
    presence.reset().await?;
    let admin = write_admin_identity(&auth, &cfg.data_dir).await?;
    let extra = vec![host_part(&cfg.public_addr), host_part(&cfg.web_listen_addr)];
    let proxy_creds = LiveCreds::new(local_host_creds(&auth, &host_id, &cfg.nodename, SystemRole::Proxy, &extra).await?);

    // This process in the cluster's registry of proxies: where agents and peers reach it.
    let listen = cfg.tunnel_listen_addr.clone().unwrap_or_else(|| cfg.web_listen_addr.clone());
    let peer_addr = cfg
        .peer_listen_addr
        .as_ref()
        .map(|l| cfg.peer_public_addr.clone().unwrap_or_else(|| advertise_addr(l, cfg.advertise_ip.as_deref(), &cfg.public_addr)));
    let spec = ProxySpec {
        hostname: cfg.nodename.clone(),
        addr: advertise_addr(&listen, cfg.advertise_ip.as_deref(), &cfg.public_addr),
        peer_addr: peer_addr.clone().unwrap_or_default(),
        public_addrs: vec![cfg.public_addr.clone()],
        version: shared::version::VERSION.into(),
        started: clock.now().unix_timestamp(),
    };
    let registry = ProxyRegistry::new(auth.clone(), spec);
    if let Err(e) = registry.heartbeat().await {
        tracing::warn!(error = %e, "cannot register this proxy yet; retrying every {}s", crate::tunnel::proxies::HEARTBEAT.as_secs());
    }
    tasks.spawn(Stage::Writers, |s| registry.clone().run_heartbeat(s));
    tasks.spawn(Stage::Services, |s| registry.clone().run_discovery(s));

    // Background maintenance.
    tasks.spawn(Stage::Services, |s| auth.clone().run_authz_watcher(s));
    tasks.spawn(Stage::Services, |s| auth.clone().run_offline_leaf_reaper(s));
    tasks.spawn(Stage::Services, |s| auth.clone().run_auto_rotation(s));
    tasks.spawn(Stage::Services, |s| {
        let renewal = super::HostRenewal {
            auth: auth.clone(),
            proxy: proxy_creds.clone(),
            host_id: host_id.clone(),
            nodename: cfg.nodename.clone(),
            extra: extra.clone(),
            data_dir: cfg.data_dir.clone(),
        };
        renewal.run(s)
    });
    tasks.spawn(Stage::Writers, |s| presence.clone().run_flusher(s));
    tasks.spawn(Stage::Services, |s| crate::storage::run_sweeper(backend.clone(), Duration::from_secs(1), s));

    // TLS and the API.
    let web = crate::tls::web_certificate(&cfg, &auth).await?;
    let tls = TlsState::new(auth.clone(), web, proxy_creds.clone()).await?;
    tasks.spawn(Stage::Services, |s| tls.clone().run_refresher(s));
    let ping = PingInfo {
        public_addr: cfg.public_addr.clone(),
        web_listen_addr: cfg.web_listen_addr.clone(),
        tunnel_public_addr: cfg.tunnel_public_addr.clone(),
        tunnel_listen_addr: cfg.tunnel_listen_addr.clone().unwrap_or_else(|| cfg.web_listen_addr.clone()),
        tls_routing: cfg.tunnel_listen_addr.is_none(),
        postgres_public_addr: cfg.postgres_public_addr.clone(),
    };
    let state = Arc::new(ApiState::new(auth.clone(), ping));
    let state_agents = state.agents.clone();
    let active = Arc::new(AtomicUsize::new(0));
    let counted = |app: axum::Router| {
        let active = active.clone();
        app.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let active = active.clone();
            async move {
                let _guard = crate::shutdown::InFlight::new(&active);
                next.run(req).await
            }
        }))
    };
    // Two apps: the API alone, which a leaf serves its root's users through the tunnel and this
    // process serves itself in-process; and, once the proxy is built, the web port's public one
    // (the API and the web UI, a peer that reaches the proxy inside the process).
    let api_app = counted(api::router(state.clone()));
    let shutdown = tasks.signal(Stage::Listeners);
    let api_server = Arc::new(ApiServer {
        tls: tls.clone(),
        app: api_app,
        shutdown: shutdown.clone(),
        kube: None,
        kube_only: false,
        apps: None,
        db: None,
    });

    // SSH proxy, routing, tunnels.
    let tunnels = TunnelRegistry::new();
    let peering = Arc::new(Peering {
        auth: auth.clone(),
        local: tunnels.clone(),
        registry: registry.clone(),
        creds: proxy_creds.clone(),
        forwarding: Arc::new(AtomicUsize::new(0)),
    });
    if let Some(addr) = &cfg.peer_listen_addr {
        let l = bind(addr, "proxy_service.peer_listen_addr").await?;
        tasks.spawn(Stage::Listeners, |s| peering.clone().run_listener(l, limiter.clone(), s));
        tracing::info!(listen = %addr, advertised = %peer_addr.clone().unwrap_or_default(), "peer proxies forward to this one here");
    }
    let router = Arc::new(Router { auth: auth.clone(), dialer: peering.clone(), api: api_server.clone(), creds: proxy_creds.clone() });
    let live = Live::new();
    let locks = Arc::new(LockEnforcer { auth: auth.clone(), live: live.clone(), tunnels: tunnels.clone() });
    let on_leaf_registered: crate::tunnel::server::OnLeafRegistered = {
        let locks = locks.clone();
        Arc::new(move |leaf| {
            let locks = locks.clone();
            tokio::spawn(async move { locks.push_locks(&leaf).await });
        })
    };
    let tunnel_server = Arc::new(TunnelServer {
        auth: auth.clone(),
        tunnels: tunnels.clone(),
        registry: registry.clone(),
        presence: presence.clone(),
        on_leaf_registered: Some(on_leaf_registered),
    });
    let proxy_ssh = Arc::new(ProxySsh {
        auth: auth.clone(),
        router: router.clone(),
        tunnel_server: tunnel_server.clone(),
        creds: proxy_creds.clone(),
        connections: Arc::new(AtomicUsize::new(0)),
        live,
        max_channels: cfg.limits.max_channels,
        client_idle_timeout: cfg.client_idle_timeout,
        refusals: crate::throttle::Throttle::new(Duration::from_secs(1)),
    });
    tasks.spawn(Stage::Services, |s| tunnel_server.clone().run_removed_leaf_watcher(s));
    tasks.spawn(Stage::Services, |s| locks.clone().run(s));
    let web = Arc::new(crate::web::WebState { api: state.clone(), proxy: proxy_ssh.clone() });
    let public_app = counted(api::app(api::routes(), state).merge(crate::web::router().with_state(web)));
    // Kubernetes: this process's service (if configured) and the proxy side for every client.
    let kube_engine = match &cfg.kube {
        Some(k) => {
            let recorder: Arc<dyn crate::node::NodeAccessPoint> =
                Arc::new(LocalAccess { auth: auth.clone(), host_id: host_id.clone(), nodename: cfg.nodename.clone() });
            let access = crate::access::cluster::LocalKube { auth: auth.clone(), recorder, host_id: host_id.clone() };
            let engine =
                crate::access::kube::engine::KubeEngine::start(&cfg, k, Arc::new(access), &host_id, proxy_ssh.live.clone(), false)?;
            tasks.spawn(Stage::Writers, |s| engine.clone().run_heartbeat(s));
            Some(engine)
        }
        None => None,
    };
    // Apps: this process's service (if configured) and the proxy side for every client.
    let app_engine = if cfg.apps.is_empty() && cfg.app_resources.is_empty() {
        None
    } else {
        let recorder: Arc<dyn crate::node::NodeAccessPoint> =
            Arc::new(LocalAccess { auth: auth.clone(), host_id: host_id.clone(), nodename: cfg.nodename.clone() });
        let access = crate::access::cluster::LocalKube { auth: auth.clone(), recorder, host_id: host_id.clone() };
        let engine = crate::access::app::engine::AppEngine::new(
            Arc::new(access),
            cfg.apps.clone(),
            cfg.app_resources.clone(),
            &cfg.public_addr,
            &host_id,
            &cfg.nodename,
            cfg.node_heartbeat,
            false,
            &cfg.app_label_commands,
        )?;
        tracing::info!(apps = ?cfg.apps.iter().map(|a| a.metadata.name.clone()).collect::<Vec<_>>(), resources = cfg.app_resources.len(), "app service started");
        tasks.spawn(Stage::Writers, |s| engine.clone().run_heartbeat(s));
        Some(engine)
    };
    // Databases: this process's service (if configured) and the proxy side for every client.
    let db_engine = if cfg.databases.is_empty() {
        None
    } else {
        let recorder: Arc<dyn crate::node::NodeAccessPoint> =
            Arc::new(LocalAccess { auth: auth.clone(), host_id: host_id.clone(), nodename: cfg.nodename.clone() });
        let access = crate::access::cluster::LocalKube { auth: auth.clone(), recorder, host_id: host_id.clone() };
        let engine = crate::access::db::engine::DbEngine::new(Arc::new(access), &cfg, &host_id, proxy_ssh.live.clone());
        tracing::info!(databases = ?cfg.databases.iter().map(|d| d.metadata.name.clone()).collect::<Vec<_>>(), "database service started");
        tasks.spawn(Stage::Writers, |s| engine.clone().run_heartbeat(s));
        Some(engine)
    };
    let app_front = crate::access::app::front::AppFront::new(auth.clone(), peering.clone(), app_engine.clone(), &cfg.public_addr);
    let kube_front =
        Arc::new(crate::access::kube::front::KubeFront { auth: auth.clone(), dialer: peering.clone(), engine: kube_engine.clone() });
    let db_front = Arc::new(crate::access::db::front::DbFront {
        auth: auth.clone(),
        dialer: peering.clone(),
        engine: db_engine.clone(),
        tls: tls.clone(),
    });
    let public_server = Arc::new(ApiServer {
        tls,
        app: public_app,
        shutdown,
        kube: Some(kube_front.clone()),
        kube_only: false,
        apps: Some(app_front),
        db: Some(db_front.clone()),
    });
    if let Some(addr) = &cfg.kube_listen_addr {
        let kube_server = Arc::new(ApiServer {
            tls: public_server.tls.clone(),
            app: public_server.app.clone(),
            shutdown: public_server.shutdown.clone(),
            kube: Some(kube_front.clone()),
            kube_only: true,
            apps: None,
            db: None,
        });
        let l = bind(addr, "proxy_service.kube_listen_addr").await?;
        let kube_listener = Arc::new(WebListener { api: kube_server, ssh: proxy_ssh.clone(), limiter: limiter.clone() });
        tasks.spawn(Stage::Listeners, |s| kube_listener.clone().run(l, s));
        tracing::info!(listen = %addr, "Kubernetes clients also here");
    }
    if let Some(addr) = &cfg.postgres_listen_addr {
        let l = bind(addr, "proxy_service.postgres_listen_addr").await?;
        let pg = crate::listener::PgListener { front: db_front.clone(), limiter: limiter.clone() };
        tasks.spawn(Stage::Listeners, |s| Arc::new(pg).run(l, s));
        tracing::info!(listen = %addr, "PostgreSQL clients also here");
    }
    let web_listener = Arc::new(WebListener { api: public_server.clone(), ssh: proxy_ssh.clone(), limiter: limiter.clone() });
    let listener = bind(&cfg.web_listen_addr, "proxy_service.web_listen_addr").await?;
    tasks.spawn(Stage::Listeners, |s| web_listener.clone().run(listener, s));
    for (extra_addr, what) in
        [(&cfg.tunnel_listen_addr, "proxy_service.tunnel_listen_addr"), (&cfg.ssh_proxy_listen_addr, "proxy_service.listen_addr")]
    {
        if let Some(a) = extra_addr {
            let l = bind(a, what).await?;
            tasks.spawn(Stage::Listeners, |s| web_listener.clone().run(l, s));
        }
    }

    // Leaf side: tunnels to trusted roots.
    let manager = TrustManager {
        auth: auth.clone(),
        creds: proxy_creds.clone(),
        leaf: Arc::new(LeafShared {
            router: router.clone(),
            live: proxy_ssh.live.clone(),
            limiter: limiter.clone(),
            kube: kube_engine.clone(),
            app: app_engine.clone(),
            db: db_engine.clone(),
        }),
        max_backoff: Duration::from_secs(10),
        agents: state_agents,
    };
    tasks.spawn(Stage::Services, |s| manager.run(s));

    // In-process node.
    let mut node: Option<Arc<NodeService>> = None;
    if cfg.ssh {
        let advertise = advertise_addr(&cfg.ssh_listen_addr, cfg.advertise_ip.as_deref(), &cfg.public_addr);
        let creds = LiveCreds::new(local_host_creds(&auth, &host_id, &cfg.nodename, SystemRole::Node, &[host_part(&advertise)]).await?);
        let ncfg = NodeConfig {
            host_id: host_id.clone(),
            nodename: cfg.nodename.clone(),
            labels: cfg.labels.clone(),
            advertise_addr: advertise.clone(),
            use_tunnel: false,
            heartbeat_interval: cfg.node_heartbeat,
            client_idle_timeout: cfg.client_idle_timeout,
            recording_max_bytes: cfg.recording_max_bytes,
            file_copy: cfg.node_file_copy,
            port_forwarding: cfg.node_port_forwarding,
        };
        let access = Arc::new(LocalAccess { auth: auth.clone(), host_id: host_id.clone(), nodename: cfg.nodename.clone() });
        let n = NodeService::new(ncfg, creds, access, clock.clone(), limiter.clone());
        let l = bind(&cfg.ssh_listen_addr, "ssh_service.listen_addr").await?;
        tasks.spawn(Stage::Services, |s| n.clone().run_bundle_loop(s));
        tasks.spawn(Stage::Services, |s| n.clone().run_heartbeat_loop(s));
        tasks.spawn(Stage::Listeners, |s| n.clone().run_listener(l, s));
        tracing::info!(addr = %advertise, "SSH node service started");
        node = Some(n);
    }

    if let Some(addr) = &cfg.diag_addr {
        let gauges = crate::diag::Gauges {
            tunnels: Some(tunnels.clone()),
            proxy_ssh_connections: Some(proxy_ssh.connections.clone()),
            api_requests: Some(active.clone()),
            limiter: Some(limiter.clone()),
            backend: Some(backend.clone()),
            registry: Some(registry.clone()),
        };
        crate::diag::run(addr.clone(), Arc::new(gauges), tasks.signal(Stage::Writers)).await?;
    }
    tracing::info!(
        cluster = %cfg.cluster_name,
        web = %format!("https://{}", cfg.public_addr),
        listen = %cfg.web_listen_addr,
        admin_identity = %admin.display(),
        "teleport is running: auth and proxy (HTTPS, SSH and reverse tunnels on one port)"
    );
    let mut sd = stops.clone();
    if sd.wait().await {
        // Users' connections, connections a peer forwards, node sessions, and connections in
        // their handshake (which would become one of these: a stop must not cut them halfway).
        let running = || {
            proxy_ssh.live.len()
                + peering.forwarding.load(Ordering::SeqCst)
                + node.as_ref().map_or(0, |n| n.live.len())
                + limiter.phases().1
        };
        drain(&cfg, &mut sd, &registry, &mut tasks, &limiter, running).await;
    }
    tracing::info!("shutting down: finishing open requests");
    registry.leave().await;
    if let Some(n) = &node {
        let _ = auth.delete_node(&n.cfg.host_id).await;
    }
    presence.begin_leaving();
    for (_, t) in tunnels.all() {
        tokio::spawn(async move { t.close("the proxy is stopping").await });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    tasks.stop(Duration::from_secs(10)).await;
    while active.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Leave: this process's presence records go, so the others show the truth at once.
    if let Err(e) = presence.leave().await {
        tracing::debug!(error = %e, "cannot remove this proxy's tunnel records");
    }
    Ok(())
}

/// A graceful stop: leave the registry (agents are told to move, load balancers see `/readyz`
/// fail), stop accepting once load balancers have stopped sending connections here, and let
/// running sessions finish, for at most `shutdown_timeout` or until told to stop now.
async fn drain(
    cfg: &Config,
    stops: &mut Stops,
    registry: &ProxyRegistry,
    tasks: &mut TaskSet,
    limiter: &Limiter,
    running: impl Fn() -> usize,
) {
    tracing::info!(
        sessions = running(),
        timeout = %shared::timefmt::go_duration(cfg.shutdown_timeout),
        "stopping gracefully: agents move to the other proxies, running sessions may finish"
    );
    registry.leave().await;
    let mut now = stops.now.clone();
    // With other proxies to take over, a load balancer in front takes this one out when
    // `/readyz` fails, a second or so later. Closing the listeners before then resets the
    // connections it sent meanwhile that still wait in the accept queue (a client sees the
    // handshake cut); after it, a connection is refused, which load balancers retry elsewhere.
    if !registry.discovery().borrow().proxies.is_empty() {
        let quiet = tokio::select! {
            _ = now.wait() => false,
            q = until_quiet(|| limiter.admitted(), LISTEN_UNTIL_QUIET, LISTEN_AT_MOST) => q,
        };
        tracing::info!(quiet, "no longer accepting connections");
    }
    tasks.stop_stage(Stage::Listeners, Duration::from_secs(10)).await;
    let deadline = tokio::time::Instant::now() + cfg.shutdown_timeout;
    while running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = now.wait() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    match running() {
        0 => tracing::info!("every session finished"),
        n => tracing::warn!(sessions = n, "stopping with sessions still running"),
    }
}

/// How long a stopping process, with other proxies to take over, goes without a new connection
/// before it stops accepting; and the longest it keeps accepting.
const LISTEN_UNTIL_QUIET: Duration = Duration::from_secs(1);
const LISTEN_AT_MOST: Duration = Duration::from_secs(5);

/// Waits until `count` (connections accepted so far) has not moved for `quiet`, or `most` has
/// passed. True when it went quiet.
async fn until_quiet(count: impl Fn() -> u64, quiet: Duration, most: Duration) -> bool {
    let start = tokio::time::Instant::now();
    let (mut seen, mut since) = (count(), start);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = tokio::time::Instant::now();
        let n = count();
        if n != seen {
            (seen, since) = (n, now);
        } else if now - since >= quiet {
            return true;
        }
        if now - start >= most {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopping_listener_waits_for_quiet_and_no_longer_than_its_bound() {
        let short = Duration::from_millis(100);
        assert!(until_quiet(|| 7, short, Duration::from_secs(5)).await, "nothing new: quiet");
        let accepted = std::sync::atomic::AtomicU64::new(0);
        let busy = || accepted.fetch_add(1, Ordering::SeqCst);
        assert!(!until_quiet(busy, short, Duration::from_millis(300)).await, "never quiet: bounded");
    }
}
