//! The web port's TLS: which certificate to present and which client certificates to accept.
//!
//! - SNI `teleport.cluster.local` → a certificate from this cluster's host CA (clients that
//!   have logged in pin that CA, so they need neither `--insecure` nor a public certificate);
//!   any other name → the operator's `https_keypairs`, or a self-signed fallback.
//! - Client certificates are optional at the TLS layer (browsers, `/webapi/ping`) and, when
//!   present, must chain to this cluster's user or host CA or to the user CA of an enabled
//!   trusted root. The list is rebuilt whenever a CA changes; no CA names are advertised (a
//!   root with many leaves never sends a huge list, and leaves' CAs are never in it).

use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use shared::certs::{self, CLUSTER_LOCAL_NAME};
use shared::error::{Error, Result};
use shared::resource::CaType;

use crate::auth::AuthServer;
use crate::process::Shutdown;

/// Loads a PEM certificate chain and key into a rustls signing key.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> =
        certs::pem_blocks(cert_pem).into_iter().filter(|(l, _)| l == "CERTIFICATE").map(|(_, d)| CertificateDer::from(d)).collect();
    if chain.is_empty() {
        return Err(Error::bad_parameter("no certificate found in the PEM data"));
    }
    let key_der = certs::pem_blocks(key_pem)
        .into_iter()
        .find(|(l, _)| l.ends_with("PRIVATE KEY"))
        .ok_or_else(|| Error::bad_parameter("no private key found in the PEM data"))?;
    let key = match key_der.0.as_str() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(key_der.1.into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(key_der.1.into()),
        _ => PrivateKeyDer::Pkcs8(key_der.1.into()),
    };
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| Error::bad_parameter(format!("unsupported private key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

#[derive(Debug)]
struct SniResolver {
    web: Arc<CertifiedKey>,
    cluster: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello.server_name() == Some(CLUSTER_LOCAL_NAME) { Some(self.cluster.clone()) } else { Some(self.web.clone()) }
    }
}

/// The current TLS configuration of the web port.
pub struct TlsState {
    auth: Arc<AuthServer>,
    resolver: Arc<SniResolver>,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    /// Builds the state: `web` is the public certificate, `cluster` the host-CA-signed one.
    pub async fn new(auth: Arc<AuthServer>, web: Arc<CertifiedKey>, cluster: Arc<CertifiedKey>) -> Result<Arc<TlsState>> {
        let resolver = Arc::new(SniResolver { web, cluster });
        let config = build(&auth, &resolver).await?;
        Ok(Arc::new(TlsState { auth, resolver, current: RwLock::new(config) }))
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
        let cfg = build(&self.auth, &self.resolver).await?;
        if let Ok(mut c) = self.current.write() {
            *c = cfg;
        }
        Ok(())
    }

    /// Rebuilds whenever a CA changes.
    pub async fn run_refresher(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut events = self.auth.services.backend.watch();
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                ev = events.recv() => {
                    let relevant = match &ev {
                        Ok(e) => e.key.starts_with(crate::services::keys::AUTHORITIES) || e.key.starts_with(crate::services::keys::TRUSTED_CLUSTERS),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    if relevant && let Err(e) = self.refresh().await {
                        tracing::warn!(error = %e, "cannot refresh TLS client trust");
                    }
                }
            }
        }
    }
}

async fn build(auth: &AuthServer, resolver: &Arc<SniResolver>) -> Result<Arc<ServerConfig>> {
    shared::client::install_crypto_provider();
    let local = auth.cluster_name().to_string();
    let mut roots = RootCertStore::empty();
    let mut add = |ca: &shared::resource::CertAuthority| {
        for pem in ca.tls_certs_pem() {
            if let Ok(der) = certs::first_pem_der(&pem, "CERTIFICATE") {
                let _ = roots.add(CertificateDer::from(der));
            }
        }
    };
    add(&auth.own_ca(CaType::User).await?);
    add(&auth.own_ca(CaType::Host).await?);
    for ca in auth.services.cas_of_type(CaType::User).await? {
        if ca.metadata.name != local && auth.services.trusted_cluster(&ca.metadata.name).await?.is_some() {
            add(&ca);
        }
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
        .with_cert_resolver(resolver.clone());
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
