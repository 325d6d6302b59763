//! Process assembly: storage, auth, TLS, listeners, tunnels and the node, started in order and
//! stopped in order ([`crate::shutdown::TaskSet`]): listeners, then what serves and follows,
//! then what writes state on the way out, and storage last.
//!
//! ```text
//!  cluster process (auth+proxy[+node])         node process (--roles=node)
//!  ---------------------------------           ---------------------------
//!  SQLite | PostgreSQL -> AuthServer -> API    join with token (once), keep identity
//!  web port: HTTPS | SSH (users, tunnels)       heartbeats + authz long-poll over HTTPS
//!  TrustManager: agents to roots                direct listener, or tunnel agent to its proxy
//!  in-process node (optional)
//! ```
//! Several cluster processes may share one PostgreSQL database: each keeps in memory only what
//! the change feed rebuilds (TLS trust, the nodes' wake-ups, its own tunnels and connections).

mod cluster;
mod node;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use shared::identity::HostIdentity;
use shared::profile::{write_file, write_identity_file};
use shared::resource::token::SystemRole;
use shared::timefmt::SharedClock;

use crate::auth::AuthServer;
use crate::config::Config;
use crate::ssh::HostCreds;

pub use crate::shutdown::{Shutdown, ShutdownTrigger, Stops, shutdown_pair};

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

pub(crate) fn load_or_create_host_id(dir: &Path) -> anyhow::Result<String> {
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

pub(crate) fn host_part(addr: &str) -> String {
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
pub(crate) fn advertise_addr(listen: &str, advertise_ip: Option<&str>, towards: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "3022"));
    let unspecified = host.is_empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
    let host = match (advertise_ip, unspecified) {
        (Some(ip), _) => ip.to_string(),
        (None, false) => host.to_string(),
        (None, true) => outbound_ip(towards).map(|i| i.to_string()).unwrap_or_else(|| "127.0.0.1".into()),
    };
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Issues host credentials from the local auth service.
pub(crate) async fn local_host_creds(
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

/// Keeps a cluster process's own host credentials trusted through a host CA rotation: the
/// proxy's (renewed in `update_servers` and `rollback`, see [`crate::ssh::needs_renewal`])
/// and the admin identity `tctl -c` uses (rewritten at every change of the host CA, so it
/// trusts the keys the API will present and is signed by one the API still accepts). The
/// in-process node renews its own, like every node. Follows the change feed, so a phase set
/// by any process of the cluster takes effect in this one within the feed's delay.
pub(crate) struct HostRenewal {
    pub auth: std::sync::Arc<AuthServer>,
    pub proxy: crate::ssh::LiveCreds,
    pub host_id: String,
    pub nodename: String,
    pub extra: Vec<String>,
    pub data_dir: PathBuf,
}

impl HostRenewal {
    pub async fn run(self, shutdown: Shutdown) {
        use shared::resource::CaType;
        let me = std::sync::Arc::new(self);
        let seen = std::sync::Arc::new(tokio::sync::Mutex::new(None));
        let backend = me.auth.services.backend.clone();
        crate::follow::follow(backend, &[crate::services::keys::AUTHORITIES], shutdown, move |_| {
            let (me, seen) = (me.clone(), seen.clone());
            async move {
                let Ok(ca) = me.auth.own_ca(CaType::Host).await else { return };
                let mut seen = seen.lock().await;
                if seen.as_ref() == Some(&ca.spec) {
                    return;
                }
                if crate::ssh::needs_renewal(&ca, &me.proxy.current().cert) {
                    match local_host_creds(&me.auth, &me.host_id, &me.nodename, SystemRole::Proxy, &me.extra).await {
                        Ok(c) => {
                            me.proxy.replace(c);
                            tracing::info!("renewed the proxy's host certificates under the rotated host CA");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot renew the proxy's host certificates; retrying at the next change");
                            return;
                        }
                    }
                }
                if let Err(e) = write_admin_identity(&me.auth, &me.data_dir).await {
                    tracing::warn!(error = %e, "cannot rewrite the admin identity after a host CA change");
                    return;
                }
                *seen = Some(ca.spec);
            }
        })
        .await;
    }
}

/// Writes the admin identity `tctl -c teleport.yaml` uses.
pub(crate) async fn write_admin_identity(auth: &AuthServer, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let creds = local_host_creds(auth, "admin", "admin", SystemRole::Admin, &[]).await?;
    let path = admin_identity_path(data_dir);
    write_identity_file(&path, &creds.credentials())?;
    Ok(path)
}

/// Where the admin identity lives.
pub fn admin_identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.identity")
}

/// Runs the process until it is told to stop.
pub async fn run(cfg: Config, stops: Stops, clock: SharedClock) -> anyhow::Result<()> {
    let _lock = prepare_data_dir(&cfg.data_dir)?;
    if cfg.auth { cluster::run(cfg, stops, clock).await } else { node::run(cfg, stops, clock).await }
}

pub(crate) async fn bind(addr: &str, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what}); is another process using it?"))?;
    tracing::debug!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| addr.to_string()), what, "listening");
    Ok(l)
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
