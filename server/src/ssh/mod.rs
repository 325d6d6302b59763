//! SSH plumbing shared by the proxy, the reverse tunnel and the node: the server's russh configuration
//! (the client's is `shared::tuning::client_config`), host credentials, and the host-certificate check
//! every client side performs.

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
        // Probe a silent peer every 30 s (`tuning`'s default) and drop it after 3 unanswered
        // probes, so a client that vanished (no FIN, no RST) does not hold its connection until
        // TCP gives up.
        keepalive_interval: Some(t.keepalive),
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

    /// The host CAs of this host's own cluster, among those it holds.
    fn own_host_cas(&self) -> impl Iterator<Item = &shared::api::TrustedCa> {
        self.host_cas.iter().filter(|c| c.cluster_name == self.cluster && c.ca_type == "host")
    }

    /// The SSH host CA keys of this host's own cluster.
    pub fn own_host_ca_keys(&self) -> Vec<PublicKey> {
        self.own_host_cas().flat_map(|c| c.ssh_public_keys.iter()).filter_map(|k| certs::parse_authorized_key(k.as_bytes()).ok()).collect()
    }

    /// The TLS client identity.
    pub fn client_identity(&self) -> shared::client::ClientIdentity {
        shared::client::ClientIdentity { cert_pem: self.tls_cert_pem.clone(), key_pem: self.tls_key_pem.clone() }
    }

    /// The PEM certificates of this host's own cluster's host CA: what its API clients pin.
    pub fn own_host_ca_pems(&self) -> Vec<String> {
        self.own_host_cas().flat_map(|c| c.tls_certs.clone()).collect()
    }

    /// As an identity file holds them.
    pub fn credentials(&self) -> shared::profile::Credentials {
        shared::profile::Credentials {
            ssh_key: self.key.clone(),
            ssh_cert: self.cert.clone(),
            tls_key_pem: self.tls_key_pem.clone(),
            tls_cert_pem: self.tls_cert_pem.clone(),
            host_cas: self.host_cas.clone(),
        }
    }
}

/// Host credentials that a CA rotation may replace. Each use (a connection, a handshake, a
/// request) takes the current ones, so a renewal applies to everything that starts after it
/// and nothing running is cut.
#[derive(Clone)]
pub struct LiveCreds(Arc<tokio::sync::watch::Sender<Current>>);

#[derive(Clone)]
struct Current {
    creds: Arc<HostCreds>,
    ssh: Arc<russh::server::Config>,
    tls: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl Current {
    fn of(creds: HostCreds) -> Current {
        let ssh = server_config(creds.key.clone(), creds.cert.clone(), None);
        // Simulated hosts (the bench's leaves) have no TLS half.
        let tls = crate::tls::certified_key(&creds.tls_cert_pem, &creds.tls_key_pem).ok();
        Current { creds: Arc::new(creds), ssh, tls }
    }
}

impl std::fmt::Debug for LiveCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCreds").field("host_id", &self.current().host_id).finish()
    }
}

impl LiveCreds {
    /// Starts with `creds`.
    pub fn new(creds: HostCreds) -> LiveCreds {
        LiveCreds(Arc::new(tokio::sync::watch::Sender::new(Current::of(creds))))
    }

    /// The credentials now.
    pub fn current(&self) -> Arc<HostCreds> {
        self.0.borrow().creds.clone()
    }

    /// An SSH server configuration presenting the current host certificate.
    pub fn ssh_config(&self) -> Arc<russh::server::Config> {
        self.0.borrow().ssh.clone()
    }

    /// The current TLS certificate and key, ready for rustls.
    pub fn tls(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.borrow().tls.clone()
    }

    /// Replaces the credentials (a renewal, or the same ones trusting new CAs).
    pub fn replace(&self, creds: HostCreds) {
        self.0.send_replace(Current::of(creds));
    }
}

/// Whether a host certificate must be re-issued under `ca` (this cluster's host CA), in
/// Teleport's order: servers switch to certificates of the new key in `update_servers`, not
/// before (clients may not trust it yet); back to the old key in `rollback`; and a certificate
/// of a key the CA no longer signs with is renewed in any other phase (an emergency rotation,
/// or a process that missed `update_servers`).
pub fn needs_renewal(ca: &shared::resource::CertAuthority, cert: &Certificate) -> bool {
    use crate::auth::rotation::{Phase, phase_of};
    let signer = cert.signature_key();
    let signs_now =
        ca.spec.active_keys.ssh.iter().filter_map(|k| certs::parse_authorized_key(&k.public_key).ok()).any(|k| k.key_data() == signer);
    !signs_now && !matches!(phase_of(ca), Phase::Init | Phase::UpdateClients)
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
