//! How `tctl` finds its cluster and proves who it is, in order:
//! 1. `-i/--identity FILE` (with `--auth-server`);
//! 2. `-c/--config FILE`: the admin identity the daemon keeps in its data directory;
//! 3. the current `tsh` profile (as in the guide: `tsh login`, then `tctl ...`);
//! 4. `/etc/teleport.yaml`, if readable.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use shared::certs::CLUSTER_LOCAL_NAME;
use shared::client::{ApiClient, tcp_dialer};
use shared::profile::{Credentials, ProfileStore, read_identity_file};

/// A connected client and what we know about the cluster.
pub struct Conn {
    /// The API client.
    pub api: ApiClient,
    /// The address we talk to.
    pub addr: String,
}

/// Global connection flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnArgs {
    /// teleport.yaml of the cluster (tctl on the auth host).
    #[arg(short = 'c', long = "config", global = true, env = "TELEPORT_CONFIG_FILE", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Identity file (from 'tctl auth sign').
    #[arg(short = 'i', long = "identity", global = true, env = "TELEPORT_IDENTITY_FILE", hide_env_values = true)]
    pub identity: Option<PathBuf>,
    /// Address of the cluster's proxy (with --identity).
    #[arg(long = "auth-server", global = true, env = "TELEPORT_AUTH_SERVER", hide_env_values = true)]
    pub auth_server: Option<String>,
    /// Act on this leaf cluster, through the root's tunnel, with your root certificate (the
    /// leaf's role map decides what you may do there).
    #[arg(long = "cluster", global = true, env = "TELEPORT_CLUSTER", hide_env_values = true)]
    pub cluster: Option<String>,
    /// Verbose output.
    #[arg(short = 'd', long = "debug", global = true)]
    pub debug: bool,
}

/// Minimal reading of teleport.yaml: where the data is and where the web port listens.
fn read_teleport_yaml(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let data_dir = v.get("teleport").and_then(|t| t.get("data_dir")).and_then(|d| d.as_str()).unwrap_or("/var/lib/teleport");
    let listen = v.get("proxy_service").and_then(|p| p.get("web_listen_addr")).and_then(|d| d.as_str()).unwrap_or("0.0.0.0:3080");
    let listen = shared::resource::cluster::with_default_port(listen, 3080);
    let (host, port) = listen.rsplit_once(':').unwrap_or((&listen, "3080"));
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    };
    Ok((PathBuf::from(data_dir), format!("{host}:{port}")))
}

/// The cluster named by the CA certificates a credential set trusts.
fn cluster_of(creds: &Credentials) -> anyhow::Result<String> {
    let der = shared::certs::first_pem_der(&creds.tls_cert_pem, "CERTIFICATE")?;
    Ok(shared::certs::parse_peer_cert(&der)?.issuer_cluster)
}

fn connect_with(creds: &Credentials, addr: &str) -> anyhow::Result<Conn> {
    let cluster = cluster_of(creds)?;
    let trust = creds.cluster_trust(&cluster)?;
    let api = ApiClient::new(tcp_dialer(addr), CLUSTER_LOCAL_NAME, &trust, Some(&creds.client_identity()), addr)?;
    Ok(Conn { api, addr: addr.to_string() })
}

/// A user's connection to `leaf` through the root proxy at `addr` (tsh's path to a leaf's API).
fn connect_leaf(creds: &Credentials, addr: &str, user: &str, leaf: &str) -> anyhow::Result<Conn> {
    let root = cluster_of(creds)?;
    if leaf == root {
        return connect_with(creds, addr);
    }
    if creds.host_ca_keys(leaf).is_empty() {
        bail!(
            "cluster {leaf:?} is not known to these credentials; see 'tsh clusters', and run 'tsh login' again if it was trusted since you signed in"
        );
    }
    let api = shared::sshclient::cluster_api(addr, &root, creds, user, leaf)?;
    Ok(Conn { api, addr: format!("{leaf} via {addr}") })
}

fn user_of(creds: &Credentials) -> anyhow::Result<String> {
    let id = shared::identity::user_from_ssh_cert(&creds.ssh_cert).map_err(|e| anyhow!("{e}"))?;
    Ok(id.username)
}

fn check_expiry(creds: &Credentials, what: &str) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let der = shared::certs::first_pem_der(&creds.tls_cert_pem, "CERTIFICATE")?;
    let cert = shared::certs::parse_peer_cert(&der)?;
    if cert.not_after <= now {
        bail!(
            "the certificate in {what} has expired; {}",
            if what.contains("profile") { "run 'tsh login' again" } else { "issue a new one" }
        );
    }
    if cert.not_before > now + 60 {
        bail!("the certificate in {what} is not valid yet; check this machine's clock, or issue a new one");
    }
    Ok(())
}

/// Connects as the flags and environment say.
pub fn connect(a: &ConnArgs) -> anyhow::Result<Conn> {
    if let Some(id) = &a.identity {
        let creds = read_identity_file(id)?;
        check_expiry(&creds, &format!("identity file {}", id.display()))?;
        let addr = a.auth_server.clone().ok_or_else(|| anyhow!("--identity needs --auth-server=<proxy host:port>"))?;
        let addr = shared::resource::cluster::with_default_port(&addr, 3080);
        if let Some(leaf) = &a.cluster {
            return connect_leaf(&creds, &addr, &user_of(&creds)?, leaf);
        }
        return connect_with(&creds, &addr);
    }
    let config = a.config.clone();
    if let Some(cfg) = &config {
        if a.cluster.is_some() {
            bail!(
                "--cluster acts through a root with a user's certificate: sign in with 'tsh login' (or use -i), not -c; the admin identity of -c reaches only its own cluster"
            );
        }
        return connect_config(cfg, a.auth_server.as_deref());
    }
    let store = ProfileStore::from_env();
    if let Some(name) = store.current() {
        let (profile, creds) = store.load(&name)?;
        check_expiry(&creds, &format!("profile {name}"))?;
        let addr = a.auth_server.clone().unwrap_or(profile.web_proxy_addr.clone());
        if let Some(leaf) = a.cluster.as_deref().filter(|c| *c != profile.cluster) {
            return connect_leaf(&creds, &addr, &profile.username, leaf);
        }
        let cluster = profile.cluster.clone();
        let trust = creds.cluster_trust(&cluster)?;
        let api = ApiClient::new(tcp_dialer(&addr), CLUSTER_LOCAL_NAME, &trust, Some(&creds.client_identity()), &addr)?;
        return Ok(Conn { api, addr });
    }
    let default = PathBuf::from("/etc/teleport.yaml");
    if default.exists() {
        return connect_config(&default, a.auth_server.as_deref());
    }
    bail!("not logged in: run 'tsh login --proxy=<proxy> --user=<user>', or run tctl on the auth host with -c /etc/teleport.yaml")
}

fn connect_config(cfg: &Path, auth_server: Option<&str>) -> anyhow::Result<Conn> {
    let (data_dir, listen) = read_teleport_yaml(cfg)?;
    let id = data_dir.join("admin.identity");
    let creds = read_identity_file(&id)
        .map_err(|e| anyhow!("{e}. Is teleport running with this config, and are you allowed to read {}?", id.display()))?;
    connect_with(&creds, auth_server.unwrap_or(&listen))
}
