//! The web port's TLS: which certificate to present and which client certificates to accept.
//!
//! - SNI `teleport.cluster.local` → a certificate from this cluster's host CA (clients that
//!   have logged in pin that CA, so they need neither `--insecure` nor a public certificate);
//!   any other name → the operator's `https_keypairs`, or a self-signed fallback. Kubernetes
//!   clients' name (`shared::kube::PROXY_SNI`) gets the host-CA certificate too: their
//!   kubeconfig trusts the cluster's host CA.
//! - Client certificates are optional at the TLS layer (browsers, `/webapi/ping`) and, when
//!   present, must chain to this cluster's user or host CA or to the user CA of an enabled
//!   trusted root. The list is rebuilt whenever a CA changes; no CA names are advertised (a
//!   root with many leaves never sends a huge list, and leaves' CAs are never in it).
//! - ALPN `teleport-postgres` (`tsh proxy db`, `tsh db connect`) selects a database client.
//! - A PostgreSQL client that asked for TLS with `SSLRequest` (`psql` straight to the web port
//!   or `postgres_listen_addr`) gets [`TlsState::pg_config`]: the host-CA certificate whatever
//!   the name, with the web port's client trust (what `tsh db config` prints as `CA:`).

use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use shared::certs::{self, CLUSTER_LOCAL_NAME};
use shared::error::{Error, Result};

use crate::auth::AuthServer;
use crate::shutdown::Shutdown;

/// The certificates of PEM data, in order; at least one.
pub fn cert_chain(cert_pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<CertificateDer<'static>> =
        certs::pem_blocks(cert_pem).into_iter().filter(|(l, _)| l == "CERTIFICATE").map(|(_, d)| CertificateDer::from(d)).collect();
    if chain.is_empty() {
        return Err(Error::bad_parameter("no certificate found in the PEM data"));
    }
    Ok(chain)
}

/// The first private key of PEM data (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn private_key(key_pem: &str) -> Result<PrivateKeyDer<'static>> {
    let (label, der) = certs::pem_blocks(key_pem)
        .into_iter()
        .find(|(l, _)| l.ends_with("PRIVATE KEY"))
        .ok_or_else(|| Error::bad_parameter("no private key found in the PEM data"))?;
    Ok(match label.as_str() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(der.into()),
        _ => PrivateKeyDer::Pkcs8(der.into()),
    })
}

/// Loads a PEM certificate chain and key into a rustls signing key.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>> {
    let chain = cert_chain(cert_pem)?;
    let key = private_key(key_pem)?;
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| Error::bad_parameter(format!("unsupported private key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// The web CA of a cluster without `https_keypairs`, kept in the cluster state so that every
/// process of the cluster serves a certificate from the same CA (one `SSL_CERT_FILE` for all).
#[derive(serde::Serialize, serde::Deserialize)]
struct WebCa {
    cert_pem: String,
    key_pem: String,
}

/// The web certificate: the operator's (`https_keypairs`), or one this process issues itself
/// from the cluster's web CA (created by whichever process starts first). The CA certificate
/// is written to `<data_dir>/web/webca.pem` for clients' `SSL_CERT_FILE`.
pub async fn web_certificate(cfg: &crate::config::Config, auth: &AuthServer) -> anyhow::Result<Arc<CertifiedKey>> {
    use anyhow::Context as _;
    use std::time::Duration;
    if let Some(kp) = cfg.https_keypairs.first() {
        let cert = std::fs::read_to_string(&kp.cert_file)
            .with_context(|| format!("cannot read https_keypairs cert_file {}", kp.cert_file.display()))?;
        let key = std::fs::read_to_string(&kp.key_file)
            .with_context(|| format!("cannot read https_keypairs key_file {}", kp.key_file.display()))?;
        return certified_key(&cert, &key).map_err(|e| anyhow::anyhow!("https_keypairs: {e}"));
    }
    let now = auth.clock.now();
    let ca = match auth.services.backend.get(crate::services::keys::WEB_CA).await? {
        Some(item) => serde_json::from_slice::<WebCa>(&item.value).map_err(|e| anyhow::anyhow!("corrupt web CA record: {e}"))?,
        None => {
            let key = certs::new_tls_key()?;
            let cert_pem =
                certs::new_ca_cert(&key, &format!("{} web CA", cfg.cluster_name), "web", now, Duration::from_secs(10 * 365 * 86400))?;
            let made = WebCa { cert_pem, key_pem: key.serialize_pem() };
            let op = crate::storage::Op::Create {
                key: crate::services::keys::WEB_CA.into(),
                value: crate::services::encode(&made)?,
                expires: None,
            };
            match auth.services.apply(vec![op]).await {
                Ok(_) => made,
                // Another process of the cluster made it first: use theirs.
                Err(e) if e.is(shared::Kind::AlreadyExists) => {
                    let item = auth
                        .services
                        .backend
                        .get(crate::services::keys::WEB_CA)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("web CA vanished"))?;
                    serde_json::from_slice::<WebCa>(&item.value).map_err(|e| anyhow::anyhow!("corrupt web CA record: {e}"))?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let host = |a: &str| shared::client::host_of(a);
    let mut sans = vec![host(&cfg.public_addr), cfg.nodename.clone(), "localhost".to_string()];
    let listen_host = host(&cfg.web_listen_addr);
    if listen_host != "0.0.0.0" && listen_host != "::" {
        sans.push(listen_host);
    }
    // Apps live at `<app>.<public host>`: one wildcard name covers them all.
    if shared::app::is_dns_name(&sans[0]) && sans[0] != "localhost" {
        sans.push(format!("*.{}", sans[0]));
    }
    sans.dedup();
    let key = certs::new_tls_key()?;
    let cert_pem = certs::sign_tls_cert(
        &ca.cert_pem,
        &ca.key_pem,
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
    let dir = cfg.data_dir.join("web");
    std::fs::create_dir_all(&dir)?;
    let ca_path = dir.join("webca.pem");
    shared::profile::write_file(&ca_path, ca.cert_pem.as_bytes(), 0o644)?;
    tracing::warn!(
        ca = %ca_path.display(),
        "no https_keypairs configured: serving a certificate from a CA generated for this cluster. \
         Clients need --insecure, or to trust the CA: SSL_CERT_FILE={} (or curl --cacert {})",
        ca_path.display(),
        ca_path.display()
    );
    certified_key(&format!("{cert_pem}{}", ca.cert_pem), &key.serialize_pem()).map_err(|e| anyhow::anyhow!("{e}"))
}

#[derive(Debug)]
struct SniResolver {
    web: Arc<CertifiedKey>,
    cluster: crate::ssh::LiveCreds,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(CLUSTER_LOCAL_NAME | shared::kube::PROXY_SNI) => self.cluster.tls(),
            _ => Some(self.web.clone()),
        }
    }
}

/// The proxy's host-CA certificate, whatever name the client asked for (PostgreSQL clients).
#[derive(Debug)]
struct HostCert(crate::ssh::LiveCreds);

impl ResolvesServerCert for HostCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.tls()
    }
}

/// The current TLS configuration of the web port.
pub struct TlsState {
    auth: Arc<AuthServer>,
    resolver: Arc<SniResolver>,
    current: RwLock<Arc<ServerConfig>>,
    pg_resolver: Arc<HostCert>,
    pg: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    /// Builds the state: `web` is the public certificate, `cluster` the proxy's host
    /// credentials (their host-CA-signed certificate, current after every renewal).
    pub async fn new(auth: Arc<AuthServer>, web: Arc<CertifiedKey>, cluster: crate::ssh::LiveCreds) -> Result<Arc<TlsState>> {
        let pg_resolver = Arc::new(HostCert(cluster.clone()));
        let resolver = Arc::new(SniResolver { web, cluster });
        let config = build(&auth, resolver.clone(), WEB_ALPN).await?;
        let pg = build(&auth, pg_resolver.clone(), &[]).await?;
        Ok(Arc::new(TlsState { auth, resolver, current: RwLock::new(config), pg_resolver, pg: RwLock::new(pg) }))
    }

    /// The configuration for a PostgreSQL client's TLS after its `SSLRequest`.
    pub fn pg_config(&self) -> Arc<ServerConfig> {
        match self.pg.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuilds the client-certificate trust from the current CAs.
    pub async fn refresh(&self) -> Result<()> {
        let cfg = build(&self.auth, self.resolver.clone(), WEB_ALPN).await?;
        let pg = build(&self.auth, self.pg_resolver.clone(), &[]).await?;
        if let Ok(mut c) = self.current.write() {
            *c = cfg;
        }
        if let Ok(mut c) = self.pg.write() {
            *c = pg;
        }
        Ok(())
    }

    /// Rebuilds whenever a CA or a trust changes (in any process of the cluster), and after
    /// every gap in the change feed.
    pub async fn run_refresher(self: Arc<Self>, shutdown: Shutdown) {
        use crate::services::keys;
        let me = self.clone();
        crate::follow::follow(self.auth.services.backend.clone(), &[keys::AUTHORITIES, keys::TRUSTED_CLUSTERS], shutdown, move |_| {
            let me = me.clone();
            async move {
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "cannot refresh TLS client trust");
                }
            }
        })
        .await;
    }
}

/// The protocols the web port's TLS speaks: HTTP, and databases routed by ALPN.
const WEB_ALPN: &[&[u8]] = &[b"http/1.1", shared::pg::ALPN.as_bytes()];

async fn build(auth: &AuthServer, resolver: Arc<dyn ResolvesServerCert>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>> {
    shared::client::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    for der in auth.trusted_cas().await?.tls_client_roots() {
        let _ = roots.add(CertificateDer::from(der.clone()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .clear_root_hint_subjects()
        .build()
        .map_err(|e| Error::internal(format!("TLS client verifier: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}
