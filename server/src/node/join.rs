//! Joining a cluster: a node trades its join token for host certificates once, and keeps them
//! in `<data_dir>/node.identity`.

use anyhow::anyhow;
use shared::api::{JoinRequest, JoinResponse, path};
use shared::client::{ApiClient, ServerTrust};
use shared::profile::write_identity_file;

use crate::config::Config;
use crate::ssh::HostCreds;

/// Where a node keeps its identity (rewritten when a host CA rotation renews it).
pub fn identity_path(cfg: &Config) -> std::path::PathBuf {
    cfg.data_dir.join("node.identity")
}

/// Loads the node identity saved at join, or joins with the token.
pub async fn node_identity(cfg: &Config, host_id: &str, join_addr: &str) -> anyhow::Result<HostCreds> {
    let path = identity_path(cfg);
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
    write_identity_file(&path, &creds.credentials())?;
    tracing::info!(cluster = %creds.cluster, "joined the cluster");
    Ok(creds)
}
