//! `tctl status`: the cluster, its version, and fingerprints of its certificate authorities.

use std::io::Write;

use shared::api::{PingResponse, TunnelStatusResponse, WhoAmI, path};
use shared::resource::{CertAuthority, Kind, ResourceRef};

use crate::client::{ConnArgs, connect};

/// Cluster status.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  tctl -c /etc/teleport.yaml status")]
pub struct Args {}

/// Runs the command.
pub async fn exec(_a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    let ping: PingResponse = conn.api.get(path::PING).await?;
    let me: WhoAmI = conn.api.get(path::WHOAMI).await?;
    let values = super::get::fetch(&conn.api, &ResourceRef { kind: Kind::CertAuthority, name: None }, false).await?;
    let cas: Vec<CertAuthority> = values.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
    writeln!(out, "Cluster      {}", ping.cluster_name)?;
    writeln!(out, "Version      {}", ping.server_version)?;
    writeln!(out, "Proxy        {}", conn.addr)?;
    writeln!(out, "Signed in as {} ({})", me.name, me.roles.join(", "))?;
    for ca in cas.iter().filter(|c| c.metadata.name == ping.cluster_name) {
        let fps = if ca.spec.ca_type == shared::resource::CaType::Jwt {
            format!("{} RS256 key(s), published at /.well-known/jwks.json", ca.spec.active_keys.jwt.len())
        } else {
            ca.ssh_public_keys().iter().map(shared::certs::fingerprint).collect::<Vec<_>>().join(", ")
        };
        writeln!(out, "{:<12} {fps}", format!("{} CA", ca.spec.ca_type))?;
        writeln!(out, "{:<12} {}", "", rotation_line(ca.spec.rotation.as_ref()))?;
    }
    if let Some(host) = cas.iter().find(|c| c.metadata.name == ping.cluster_name && c.spec.ca_type == shared::resource::CaType::Host) {
        let pins: Vec<String> = host.tls_certs_pem().iter().filter_map(|p| shared::certs::ca_pin(p).ok()).collect();
        writeln!(out, "CA pin       {}", pins.join(", "))?;
    }
    // The Kubernetes clusters served here, and by which process.
    if let Ok(values) = super::get::fetch(&conn.api, &ResourceRef { kind: Kind::KubeCluster, name: None }, false).await {
        let kube: Vec<shared::resource::KubeCluster> = values.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
        if !kube.is_empty() {
            let list: Vec<String> = kube.iter().map(|k| format!("{} (served by {})", k.metadata.name, k.spec.hostname)).collect();
            writeln!(out, "Kubernetes   {}", list.join(", "))?;
        }
    }
    // Tunnels need read on trusted clusters; without it, status shows the rest.
    if let Ok(t) = conn.api.get::<TunnelStatusResponse>(path::TUNNEL_STATUS).await {
        write!(out, "{}", render_tunnels(&t, time::OffsetDateTime::now_utc()))?;
    }
    Ok(())
}

/// Teleport's words: `never updated`, `rotated <time>`, or the rotation in progress.
fn rotation_line(r: Option<&shared::resource::cert_authority::Rotation>) -> String {
    let stamp = shared::timefmt::rfc3339_secs;
    match r {
        Some(r) if r.state == "in_progress" => {
            let mut s = format!("rotation in progress: phase {}, mode {}, grace period {}", r.phase, r.mode, r.grace_period);
            if let Some(t) = r.started {
                s.push_str(&format!(", started {}", stamp(t)));
            }
            if let Some(next) = r.schedule.as_ref().and_then(|sc| match r.phase.as_str() {
                "init" => sc.update_clients,
                "update_clients" => sc.update_servers,
                "update_servers" => sc.standby,
                _ => None,
            }) {
                s.push_str(&format!(", next phase at {}", stamp(next)));
            }
            s
        }
        Some(r) if r.last_rotated.is_some() => format!("rotated {}", r.last_rotated.map(stamp).unwrap_or_default()),
        _ => "never updated".into(),
    }
}

fn ago(t: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let secs = u64::try_from((now - t).whole_seconds()).unwrap_or(0);
    format!("{} ({} ago)", shared::timefmt::rfc3339_secs(t), shared::timefmt::go_duration(std::time::Duration::from_secs(secs)))
}

/// The tunnel part of `tctl status`: to each trusted root (this process's agents), and from
/// each leaf (every proxy's records).
fn render_tunnels(t: &TunnelStatusResponse, now: time::OffsetDateTime) -> String {
    let mut s = String::new();
    if !t.roots.is_empty() {
        s.push_str(&format!("Trusted root clusters (tunnels from this process, {}):\n", t.proxy));
        for r in &t.roots {
            match r.state.as_str() {
                "connected" => {
                    s.push_str(&format!(
                        "  {}  connected to {} prox{}\n",
                        r.cluster,
                        r.proxies.len(),
                        if r.proxies.len() == 1 { "y" } else { "ies" }
                    ));
                    for p in &r.proxies {
                        s.push_str(&format!("    proxy {} since {}\n", p.proxy, p.since.map(|t| ago(t, now)).unwrap_or_default()));
                    }
                }
                "disabled" => s.push_str(&format!("  {}  disabled (enabled: false in trusted_cluster {})\n", r.cluster, r.cluster)),
                state => {
                    s.push_str(&format!("  {}  {state} to tunnel_addr {}", r.cluster, r.tunnel_addr));
                    if let Some(n) = r.retry_in_seconds {
                        s.push_str(&format!(", next retry in {n}s"));
                    }
                    s.push('\n');
                    if let Some(e) = &r.last_error {
                        let at = r.last_error_at.map(|t| ago(t, now)).unwrap_or_default();
                        s.push_str(&format!("    last error ({} failures, {at}): {e}\n", r.failures));
                        s.push_str(&format!(
                            "    fix: check tunnel_addr in trusted_cluster {} ('tctl get trusted_cluster/{}') and that this host can reach it (firewalls, security groups)\n",
                            r.cluster, r.cluster
                        ));
                    }
                }
            }
            if r.state == "connected"
                && let Some(e) = &r.last_error
            {
                s.push_str(&format!("    last error: {e}\n"));
            }
        }
    }
    if !t.leaves.is_empty() {
        s.push_str("Leaf clusters (tunnels to this cluster's proxies):\n");
        for l in &t.leaves {
            let last = l.last_heartbeat.map(|t| format!(", last heartbeat {}", ago(t, now))).unwrap_or_default();
            s.push_str(&format!("  {}  {}{last}\n", l.cluster, l.status));
            for p in &l.proxies {
                s.push_str(&format!(
                    "    tunnel to proxy {}, heartbeat {}\n",
                    p.proxy,
                    p.last_heartbeat.map(|t| ago(t, now)).unwrap_or_default()
                ));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::{InboundTunnels, OutboundTunnel, ProxyTunnel};

    #[test]
    fn tunnels_show_state_errors_retries_and_proxies() {
        let now = time::OffsetDateTime::now_utc();
        let t = TunnelStatusResponse {
            proxy: "p-leaf".into(),
            roots: vec![
                OutboundTunnel {
                    cluster: "root".into(),
                    tunnel_addr: "127.0.0.1:9".into(),
                    state: "connecting".into(),
                    last_error: Some("connection refused".into()),
                    last_error_at: Some(now),
                    failures: 3,
                    retry_in_seconds: Some(2),
                    ..Default::default()
                },
                OutboundTunnel { cluster: "off".into(), state: "disabled".into(), ..Default::default() },
            ],
            leaves: vec![InboundTunnels {
                cluster: "leaf".into(),
                status: "online".into(),
                last_heartbeat: Some(now),
                proxies: vec![ProxyTunnel { proxy: "p1".into(), since: None, last_heartbeat: Some(now) }],
            }],
        };
        let text = render_tunnels(&t, now);
        assert!(text.contains("  root  connecting to tunnel_addr 127.0.0.1:9, next retry in 2s\n"), "{text}");
        assert!(text.contains("    last error (3 failures, "), "{text}");
        assert!(text.contains("): connection refused\n    fix: check tunnel_addr in trusted_cluster root"), "{text}");
        assert!(text.contains("  off  disabled"), "{text}");
        assert!(text.contains("  leaf  online, last heartbeat ") && text.contains("    tunnel to proxy p1, heartbeat "), "{text}");
    }
}
