//! The API servers a `kubernetes_service` reaches, read from its kubeconfig: address, the CA
//! that verifies the server, and the service's own credentials (client certificate or bearer
//! token). Every connection verifies the server; there is no plaintext and no fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::ServerName;
use serde::Deserialize;
use shared::client::BoxStream;
use shared::error::{Error, Result};

/// One API server.
pub struct Upstream {
    /// The kube cluster's name here.
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// Value of the `Host` header.
    pub host: String,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    /// `Authorization: Bearer ...`, when the kubeconfig gives a token.
    pub bearer: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.name).field("addr", &self.addr).finish()
    }
}

impl Upstream {
    /// A verified TLS connection to the API server (HTTP/1.1: streams upgrade on it).
    pub async fn connect(&self) -> Result<BoxStream> {
        let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| Error::connection_problem(format!("the Kubernetes API server {} did not answer in time", self.addr)))?
            .map_err(|e| Error::connection_problem(format!("cannot reach the Kubernetes API server {}: {e}", self.addr)))?;
        shared::tuning::set_nodelay(&tcp);
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| Error::connection_problem(format!("TLS with the Kubernetes API server {} failed: {e}", self.addr)))?;
        Ok(Box::new(tls))
    }
}

#[derive(Deserialize)]
struct KubeConfigFile {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(default, rename = "current-context")]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    server: String,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    certificate_authority: Option<PathBuf>,
    #[serde(default)]
    tls_server_name: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    client_certificate: Option<PathBuf>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize, Default)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: String,
}

fn bad(file: &Path, msg: impl std::fmt::Display) -> Error {
    Error::bad_parameter(format!("kubernetes_service.kubeconfig_file {}: {msg}", file.display()))
}

fn data_or_file(file: &Path, data: &Option<String>, path: &Option<PathBuf>, what: &str) -> Result<Option<Vec<u8>>> {
    if let Some(d) = data {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(d.trim()).map_err(|e| bad(file, format!("{what}-data is not base64: {e}")))?;
        return Ok(Some(bytes));
    }
    if let Some(p) = path {
        let p = if p.is_relative() { file.parent().unwrap_or(Path::new(".")).join(p) } else { p.clone() };
        return std::fs::read(&p).map(Some).map_err(|e| bad(file, format!("cannot read {what} {}: {e}", p.display())));
    }
    Ok(None)
}

/// Reads the API servers of a kubeconfig: each context, named after it, or only the current
/// context, named `name`, when a name is given (`kube_cluster_name`).
pub fn load(file: &Path, name: Option<&str>) -> Result<BTreeMap<String, Arc<Upstream>>> {
    let text = std::fs::read_to_string(file).map_err(|e| bad(file, format!("cannot read it: {e}")))?;
    let cfg: KubeConfigFile = serde_yaml_ng::from_str(&text).map_err(|e| bad(file, format!("not a kubeconfig: {e}")))?;
    let contexts: Vec<(String, &ContextEntry)> = match name {
        Some(n) => {
            let current = cfg
                .contexts
                .iter()
                .find(|c| c.name == cfg.current_context)
                .or(if cfg.contexts.len() == 1 { cfg.contexts.first() } else { None })
                .ok_or_else(|| bad(file, "kube_cluster_name needs a current-context (or a single context)"))?;
            let ctx = current.value.as_ref().ok_or_else(|| bad(file, format!("context {:?} is empty", current.name)))?;
            vec![(n.to_string(), ctx)]
        }
        None => cfg.contexts.iter().filter_map(|c| c.value.as_ref().map(|v| (c.name.clone(), v))).collect(),
    };
    if contexts.is_empty() {
        return Err(bad(file, "it has no contexts"));
    }
    let mut out = BTreeMap::new();
    for (kube_name, ctx) in contexts {
        shared::names::check_name("kubernetes cluster name", &kube_name)?;
        let cluster = cfg
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| bad(file, format!("context {kube_name:?} names cluster {:?}, which is not in the file", ctx.cluster)))?;
        let default_user = UserEntry::default();
        let user = cfg.users.iter().find(|u| u.name == ctx.user).and_then(|u| u.value.as_ref()).unwrap_or(&default_user);
        out.insert(kube_name.clone(), Arc::new(upstream(file, &kube_name, cluster, user)?));
    }
    Ok(out)
}

fn upstream(file: &Path, name: &str, c: &ClusterEntry, u: &UserEntry) -> Result<Upstream> {
    shared::client::install_crypto_provider();
    let rest =
        c.server.strip_prefix("https://").ok_or_else(|| bad(file, format!("cluster server {:?} must be an https:// URL", c.server)))?;
    let host = rest.split('/').next().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(bad(file, format!("cluster server {:?} has no host", c.server)));
    }
    let addr = if host.starts_with('[') && host.ends_with(']') || !host.contains(':') { format!("{host}:443") } else { host.clone() };
    let hostname = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host).trim_start_matches('[').trim_end_matches(']').to_string();
    let sni = c.tls_server_name.clone().unwrap_or(hostname);
    let server_name = ServerName::try_from(sni.clone()).map_err(|e| bad(file, format!("server name {sni:?}: {e}")))?;
    if c.insecure_skip_tls_verify {
        return Err(bad(
            file,
            "insecure-skip-tls-verify is not supported: give the API server's CA (certificate-authority-data) so that the service can verify it",
        ));
    }
    let ca = data_or_file(file, &c.certificate_authority_data, &c.certificate_authority, "certificate-authority")?
        .ok_or_else(|| bad(file, format!("cluster for {name:?} has no certificate-authority(-data): the API server cannot be verified")))?;
    let mut roots = rustls::RootCertStore::empty();
    let ca_certs =
        crate::tls::cert_chain(&String::from_utf8_lossy(&ca)).map_err(|_| bad(file, "certificate-authority has no PEM certificate"))?;
    for der in ca_certs {
        roots.add(der).map_err(|e| bad(file, format!("unusable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let cert = data_or_file(file, &u.client_certificate_data, &u.client_certificate, "client-certificate")?;
    let key = data_or_file(file, &u.client_key_data, &u.client_key, "client-key")?;
    let has_cert = cert.is_some();
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = crate::tls::cert_chain(&String::from_utf8_lossy(&cert))
                .map_err(|_| bad(file, "client-certificate has no PEM certificate"))?;
            let key =
                crate::tls::private_key(&String::from_utf8_lossy(&key)).map_err(|_| bad(file, "client-key has no PEM private key"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| bad(file, format!("client certificate: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(bad(file, "client-certificate and client-key go together")),
    };
    if !has_cert && u.token.is_none() {
        return Err(bad(file, format!("user for {name:?} has neither a client certificate nor a token")));
    }
    Ok(Upstream { name: name.to_string(), addr, host, server_name, tls: Arc::new(tls), bearer: u.token.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(&p, body).unwrap();
        p
    }

    fn ca_b64() -> String {
        let key = shared::certs::new_tls_key().unwrap();
        let pem = shared::certs::new_ca_cert(&key, "kube", "kube", time::OffsetDateTime::now_utc(), Duration::from_secs(3600)).unwrap();
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    #[test]
    fn contexts_become_clusters_and_bad_files_say_why() {
        let dir = std::env::temp_dir().join(format!("tp-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = ca_b64();
        let good = format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: secret\ncontexts:\n- name: east\n  context: {{cluster: c, user: u}}\n- name: west\n  context: {{cluster: c, user: u}}\ncurrent-context: west\n"
        );
        let p = kubeconfig(&dir, &good);
        let all = load(&p, None).unwrap();
        assert_eq!(all.keys().cloned().collect::<Vec<_>>(), ["east", "west"]);
        assert_eq!(all["east"].addr, "10.0.0.1:6443");
        assert_eq!(all["east"].bearer.as_deref(), Some("secret"));
        let named = load(&p, Some("prod")).unwrap();
        assert_eq!(named.keys().cloned().collect::<Vec<_>>(), ["prod"], "kube_cluster_name names the current context");
        for (body, want) in [
            ("clusters: [", "not a kubeconfig"),
            ("contexts: []\n", "it has no contexts"),
            (&good.replace("https://", "http://") as &str, "must be an https:// URL"),
            (
                &good.replace(&format!("certificate-authority-data: {ca}"), "insecure-skip-tls-verify: true"),
                "insecure-skip-tls-verify is not supported",
            ),
            (&good.replace(&format!("    certificate-authority-data: {ca}\n"), ""), "cannot be verified"),
            (&good.replace("    token: secret\n", "    username: x\n"), "neither a client certificate nor a token"),
            (&good.replace("cluster: c,", "cluster: nope,"), "names cluster \"nope\", which is not in the file"),
        ] {
            let p = kubeconfig(&dir, body);
            let e = load(&p, None).unwrap_err();
            assert!(e.message.contains(want) && e.message.contains("kubernetes_service.kubeconfig_file"), "{want}: {}", e.message);
        }
        let e = load(&dir.join("missing"), None).unwrap_err();
        assert!(e.message.contains("cannot read it"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
