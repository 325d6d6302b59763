//! A node in its own process (`teleport start --roles=node`): joins with a token once, then
//! heartbeats and follows its authorization bundle over HTTPS with its host identity, and serves
//! SSH on a listener or through a reverse tunnel to its proxy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use shared::timefmt::SharedClock;

use super::{advertise_addr, bind, load_or_create_host_id};
use crate::config::Config;
use crate::limits::Limiter;
use crate::node::join::{identity_path, node_identity};
use crate::node::{NodeConfig, NodeService, NodeTunnelService, RemoteAccess};
use crate::shutdown::{Stage, Stops, TaskSet};
use crate::ssh::LiveCreds;
use crate::tunnel::agent::AgentConfig;

pub(super) async fn run(cfg: Config, stops: Stops, clock: SharedClock) -> anyhow::Result<()> {
    let join_addr = cfg.join_addr.clone().ok_or_else(|| anyhow!("a node needs --auth-server"))?;
    let host_id = load_or_create_host_id(&cfg.data_dir)?;
    let creds = node_identity(&cfg, &host_id, &join_addr).await?;
    let advertise =
        if cfg.use_tunnel { String::new() } else { advertise_addr(&cfg.ssh_listen_addr, cfg.advertise_ip.as_deref(), &join_addr) };
    // The auth service accepts only a node address its heartbeats come from: send them from it.
    let source: Option<IpAddr> = advertise.rsplit_once(':').and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok());
    let access = Arc::new(RemoteAccess::new(&join_addr, source, &creds, identity_path(&cfg))?);
    let cluster = creds.cluster.clone();
    let creds = LiveCreds::new(creds);
    let ncfg = NodeConfig {
        host_id: host_id.clone(),
        nodename: cfg.nodename.clone(),
        labels: cfg.labels.clone(),
        advertise_addr: advertise.clone(),
        use_tunnel: cfg.use_tunnel,
        heartbeat_interval: cfg.node_heartbeat,
        client_idle_timeout: cfg.client_idle_timeout,
        recording_max_bytes: cfg.recording_max_bytes,
        file_copy: cfg.node_file_copy,
        port_forwarding: cfg.node_port_forwarding,
    };
    let limiter = Limiter::new(cfg.limits, crate::limits::raise_fd_limit());
    let node = NodeService::new(ncfg, creds.clone(), access, clock.clone(), limiter.clone());
    let mut tasks = TaskSet::new();
    tasks.spawn(Stage::Services, |s| node.clone().run_bundle_loop(s));
    if cfg.ssh {
        tasks.spawn(Stage::Services, |s| node.clone().run_heartbeat_loop(s));
    }
    // A Kubernetes service in this process: it decides with the node's bundle and is reached
    // through the node's tunnel.
    let kube = match &cfg.kube {
        Some(k) => {
            let access = Arc::new(crate::access::cluster::BundleKube { node: node.clone() });
            let engine = crate::access::kube::engine::KubeEngine::start(&cfg, k, access, &host_id, node.live.clone(), true)?;
            tasks.spawn(Stage::Services, |s| engine.clone().run_heartbeat(s));
            Some(engine)
        }
        None => None,
    };
    // An app service in this process: it decides with the node's bundle, asks the auth service to
    // sign its tokens, and is reached through the node's tunnel.
    let app = if cfg.apps.is_empty() && cfg.app_resources.is_empty() {
        None
    } else {
        let access = Arc::new(crate::access::cluster::BundleKube { node: node.clone() });
        let engine = crate::access::app::engine::AppEngine::new(
            access,
            cfg.apps.clone(),
            cfg.app_resources.clone(),
            &join_addr,
            &host_id,
            &cfg.nodename,
            cfg.node_heartbeat,
            true,
            &cfg.app_label_commands,
        )?;
        tasks.spawn(Stage::Services, |s| engine.clone().run_heartbeat(s));
        tracing::info!(apps = ?cfg.apps.iter().map(|a| a.metadata.name.clone()).collect::<Vec<_>>(), "app service started (reverse tunnel)");
        Some(engine)
    };
    // A database service in this process: it decides with the node's bundle, asks the auth
    // service for client certificates, and is reached through the node's tunnel.
    let db = if cfg.databases.is_empty() {
        None
    } else {
        let access = Arc::new(crate::access::cluster::BundleKube { node: node.clone() });
        let engine = crate::access::db::engine::DbEngine::new(access, &cfg, &host_id, node.live.clone());
        tasks.spawn(Stage::Services, |s| engine.clone().run_heartbeat(s));
        tracing::info!(databases = ?cfg.databases.iter().map(|d| d.metadata.name.clone()).collect::<Vec<_>>(), "database service started (reverse tunnel)");
        Some(engine)
    };
    if cfg.use_tunnel {
        let live = creds.clone();
        let agent = AgentConfig {
            name: format!("node tunnel to {join_addr}"),
            addr: join_addr.clone(),
            server_cluster: cluster.clone(),
            // What the node trusts now: a rotation's new keys arrive with its bundle.
            server_cas: Arc::new(move || {
                let keys = live.current().own_host_ca_keys();
                Box::pin(async move { Ok(keys) })
            }),
            creds: creds.clone(),
            interval: cfg.node_heartbeat.min(cfg.keep_alive_interval),
            count_max: cfg.keep_alive_count_max,
            max_backoff: Duration::from_secs(10),
            service: Arc::new(NodeTunnelService { node: node.clone(), kube: kube.clone(), app: app.clone(), db: db.clone(), ssh: cfg.ssh }),
            clock: clock.clone(),
            status: crate::tunnel::state::AgentStatus::detached(),
            on_cas: None,
            announce: None,
            source: None,
        };
        tasks.spawn(Stage::Services, |s| crate::tunnel::pool::run(agent, s));
        tracing::info!(proxy = %join_addr, cluster = %cluster, "SSH node service started (reverse tunnel, no listening port)");
    } else {
        let l = bind(&cfg.ssh_listen_addr, "ssh_service.listen_addr").await?;
        tasks.spawn(Stage::Listeners, |s| node.clone().run_listener(l, s));
        tracing::info!(addr = %advertise, cluster = %cluster, "SSH node service started");
    }
    if let Some(addr) = &cfg.diag_addr {
        let gauges = crate::diag::Gauges { limiter: Some(limiter), ..Default::default() };
        crate::diag::run(addr.clone(), Arc::new(gauges), tasks.signal(Stage::Listeners)).await?;
    }
    let mut sd = stops.clone();
    sd.wait().await;
    tracing::info!("shutting down");
    tasks.stop(Duration::from_secs(10)).await;
    Ok(())
}
