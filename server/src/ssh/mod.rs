//! SSH plumbing shared by the proxy, the reverse tunnel and the node: the server's russh configuration
//! (the client's is `shared::tuning::client_config`), host credentials, and the host-certificate check
//! every client side performs.

pub mod proxy;
pub mod router;

use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::{Certificate, PrivateKey, PublicKey};
use russh::{MethodKind, MethodSet};
use shared::api::CertsResponse;
use shared::certs::{self, SshCertRejection};
use shared::error::{Error, Result};
use shared::resource::token::SystemRole;
use shared::tuning::{self, MAX_PACKET};
use time::OffsetDateTime;

/// A server configuration presenting `key` with its host certificate; public-key (certificate)
/// authentication only.
pub fn server_config(key: PrivateKey, cert: Certificate, inactivity: Option<Duration>) -> Arc<russh::server::Config> {
    let t = tuning::get();
    Arc::new(russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        certificates: vec![cert],
        window_size: t.window,
        maximum_packet_size: MAX_PACKET,
        inactivity_timeout: inactivity,
        // Probe a silent peer every 30 s and drop it after 3 unanswered probes, so a client
        // that vanished (no FIN, no RST) does not hold its connection until TCP gives up.
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: t.nodelay,
        preferred: t.preferred(),
        max_auth_attempts: 6,
        ..Default::default()
    })
}

/// A process's host credentials: SSH key + host certificate, TLS key + certificate.
#[derive(Clone)]
pub struct HostCreds {
    /// Host UUID.
    pub host_id: String,
    /// Cluster name.
    pub cluster: String,
    /// SSH key.
    pub key: PrivateKey,
    /// SSH host certificate.
    pub cert: Certificate,
    /// TLS certificate (PEM).
    pub tls_cert_pem: String,
    /// TLS key (PEM).
    pub tls_key_pem: String,
    /// The cluster's host CAs as returned at issuance.
    pub host_cas: Vec<shared::api::TrustedCa>,
}

impl HostCreds {
    /// Keys for a new host identity, and the public half to send for signing.
    pub fn new_keys() -> Result<(PrivateKey, rcgen::KeyPair, shared::api::PublicKeys)> {
        certs::new_key_pair()
    }

    /// Assembles credentials from issued certificates.
    pub fn from_issued(host_id: &str, ssh: PrivateKey, tls: &rcgen::KeyPair, issued: &CertsResponse) -> Result<HostCreds> {
        Ok(HostCreds {
            host_id: host_id.into(),
            cluster: issued.cluster_name.clone(),
            key: ssh,
            cert: certs::parse_ssh_cert(&issued.ssh_cert)?,
            tls_cert_pem: issued.tls_cert.clone(),
            tls_key_pem: tls.serialize_pem(),
            host_cas: issued.host_cas.clone(),
        })
    }

    /// The SSH host CA keys of this host's own cluster.
    pub fn own_host_ca_keys(&self) -> Vec<PublicKey> {
        self.host_cas
            .iter()
            .filter(|c| c.cluster_name == self.cluster && c.ca_type == "host")
            .flat_map(|c| c.ssh_public_keys.iter())
            .filter_map(|k| certs::parse_authorized_key(k.as_bytes()).ok())
            .collect()
    }

    /// The TLS client identity.
    pub fn client_identity(&self) -> shared::client::ClientIdentity {
        shared::client::ClientIdentity { cert_pem: self.tls_cert_pem.clone(), key_pem: self.tls_key_pem.clone() }
    }
}

/// Checks a server's host key as a client: it must be a host certificate signed by one of
/// `cas`, for cluster `expected_cluster`, valid now, and (if given) list `principal`.
/// Returns the certificate's system role.
pub fn check_server_host_cert(
    presented: &PublicKeyOrCertificate,
    cas: &[PublicKey],
    expected_cluster: &str,
    principal: Option<&str>,
    now: OffsetDateTime,
) -> Result<SystemRole> {
    let cert = match presented {
        PublicKeyOrCertificate::Certificate(c) => c,
        PublicKeyOrCertificate::PublicKey { .. } => {
            return Err(Error::access_denied("the server presented a plain host key instead of a host certificate"));
        }
    };
    certs::check_ssh_cert(cert, cas, CertType::Host, principal, now).map_err(|r| match r {
        SshCertRejection::UntrustedCa => {
            Error::access_denied(format!("the server's host certificate is not signed by the host CA of {expected_cluster:?}"))
        }
        other => Error::access_denied(format!("the server's host certificate was refused: {other}")),
    })?;
    let (role, authority) = shared::identity::host_from_ssh_cert(cert)?;
    if authority != expected_cluster {
        return Err(Error::access_denied(format!("the server belongs to cluster {authority:?}, expected {expected_cluster:?}")));
    }
    Ok(role)
}
