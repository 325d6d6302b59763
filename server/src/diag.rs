//! The diagnostics listener (`teleport.diag_addr` / `--diag-addr`): plain HTTP, meant for
//! loopback or a monitoring network. `/healthz` answers while the process runs, `/readyz` once
//! its services are up, and `/metrics` gives Prometheus text: the process's file descriptors,
//! memory, threads and async tasks, and what the proxy is carrying. The load test reads it to
//! prove that sessions leak nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::shutdown::Shutdown;
use crate::tunnel::TunnelRegistry;

/// What the metrics read.
#[derive(Default)]
pub struct Gauges {
    /// The proxy's reverse tunnels (absent in a node-only process).
    pub tunnels: Option<Arc<TunnelRegistry>>,
    /// SSH connections open on the proxy.
    pub proxy_ssh_connections: Option<Arc<AtomicUsize>>,
    /// API requests being served.
    pub api_requests: Option<Arc<AtomicUsize>>,
    /// The connection limiter.
    pub limiter: Option<Arc<crate::limits::Limiter>>,
    /// The cluster's storage: `/readyz` answers 503 while its change feed is down (this
    /// process could then be serving stale trust; a load balancer should send elsewhere).
    pub backend: Option<Arc<dyn crate::storage::Backend>>,
    /// This proxy in the cluster's registry: `/readyz` answers 503 once it is stopping.
    pub registry: Option<Arc<crate::tunnel::proxies::ProxyRegistry>>,
}

/// Reads `/proc/self`: (open file descriptors, resident bytes, threads).
fn process_stats() -> (usize, u64, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096);
    let rss_pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0);
    (fds, rss_pages.saturating_mul(u64::try_from(page).unwrap_or(4096)), threads)
}

/// The Prometheus text for `g`.
pub fn render(g: &Gauges) -> String {
    let (fds, rss, threads) = process_stats();
    let mut out = String::new();
    let mut counters = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, u64)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, v) in samples {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    gauge("process_open_fds", "Number of open file descriptors.", &[("", fds as u64)]);
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", &[("", rss)]);
    gauge("process_threads", "Operating system threads of the process.", &[("", threads)]);
    let tasks = tokio::runtime::Handle::try_current().map(|h| h.metrics().num_alive_tasks()).unwrap_or(0);
    gauge("teleport_runtime_alive_tasks", "Tasks alive in the async runtime.", &[("", tasks as u64)]);
    if let Some(t) = &g.tunnels {
        let (clusters, nodes) = t.counts();
        gauge(
            "teleport_reverse_tunnels",
            "Reverse tunnels connected to this proxy.",
            &[("{kind=\"cluster\"}", clusters as u64), ("{kind=\"node\"}", nodes as u64)],
        );
        counters.push_str(&format!(
            "# HELP teleport_reverse_tunnel_registrations_total Reverse tunnels registered since start.\n# TYPE teleport_reverse_tunnel_registrations_total counter\nteleport_reverse_tunnel_registrations_total {}\n",
            t.registered()
        ));
    }
    if let Some(c) = &g.proxy_ssh_connections {
        gauge("teleport_proxy_ssh_connections", "SSH connections open on the proxy.", &[("", c.load(Ordering::SeqCst) as u64)]);
    }
    if let Some(c) = &g.api_requests {
        gauge("teleport_api_requests_in_flight", "API requests being served.", &[("", c.load(Ordering::SeqCst) as u64)]);
    }
    if let Some(l) = &g.limiter {
        let (open, handshakes, anonymous) = l.phases();
        gauge(
            "teleport_connections",
            "Connections admitted and open now (unauthenticated: in their handshake, or anonymous HTTPS).",
            &[
                ("{state=\"all\"}", open as u64),
                ("{state=\"unauthenticated\"}", (handshakes + anonymous) as u64),
                ("{state=\"handshake\"}", handshakes as u64),
                ("{state=\"anonymous\"}", anonymous as u64),
            ],
        );
        counters.push_str(&format!(
            "# HELP teleport_connections_admitted_total Connections admitted since start.\n# TYPE teleport_connections_admitted_total counter\nteleport_connections_admitted_total {}\n",
            l.admitted()
        ));
        let refused: Vec<(String, u64)> = l.refusals().iter().map(|(k, v)| (format!("{{reason=\"{k}\"}}"), *v)).collect();
        let samples: Vec<(&str, u64)> = refused.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        out.push_str("# HELP teleport_connections_refused_total Connections refused or cut by the connection limits.\n# TYPE teleport_connections_refused_total counter\n");
        for (labels, v) in samples {
            out.push_str(&format!("teleport_connections_refused_total{labels} {v}\n"));
        }
    }
    out.push_str(&counters);
    out
}

async fn metrics(State(g): State<Arc<Gauges>>) -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(&g))
}

async fn ok() -> impl IntoResponse {
    (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"})))
}

async fn ready(State(g): State<Arc<Gauges>>) -> impl IntoResponse {
    match &g.backend {
        Some(b) if !b.feed_live() => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "the storage change feed is down; reconnecting"})))
        }
        _ if g.registry.as_ref().is_some_and(|r| r.is_leaving()) => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "this process is stopping"})))
        }
        _ => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))),
    }
}

/// Serves diagnostics on `addr` until `shutdown`.
pub async fn run(addr: String, gauges: Arc<Gauges>, mut shutdown: Shutdown) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on {addr} (diag_addr)"))?;
    tracing::info!(addr = %addr, "diagnostics at http://{addr}/metrics, /healthz and /readyz");
    let app = Router::new().route("/metrics", get(metrics)).route("/healthz", get(ok)).route("/readyz", get(ready)).with_state(gauges);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_are_prometheus_text_with_live_process_numbers() {
        let g = Gauges {
            tunnels: Some(TunnelRegistry::new()),
            proxy_ssh_connections: Some(Arc::new(AtomicUsize::new(3))),
            api_requests: Some(Arc::new(AtomicUsize::new(0))),
            limiter: None,
            backend: None,
            registry: None,
        };
        let text = render(&g);
        let value =
            |name: &str| -> f64 { text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(-1.0) };
        assert!(value("process_open_fds ") > 2.0, "{text}");
        assert!(value("process_resident_memory_bytes ") > 1e6, "{text}");
        assert!(value("teleport_runtime_alive_tasks ") >= 0.0, "{text}");
        assert_eq!(value("teleport_proxy_ssh_connections "), 3.0);
        assert_eq!(value("teleport_reverse_tunnels{kind=\"cluster\"} "), 0.0);
        assert!(text.contains("# TYPE process_open_fds gauge\n"));
    }
}
