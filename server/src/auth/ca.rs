//! Certificate authorities: creation, and signing with a CA's keys.

use std::time::Duration;

use russh::keys::ssh_key::PrivateKey;
use shared::certs;
use shared::error::{Error, Result};
use shared::resource::cert_authority::{CaKeySet, SshKeyPair, TlsKeyPair};
use shared::resource::{CaType, CertAuthority};
use time::OffsetDateTime;

/// CA certificates are valid for ten years (Teleport's `CATTL`).
pub const CA_TTL: Duration = Duration::from_secs(10 * 365 * 86400);

/// Creates a new CA of `ca_type` for `cluster`: an Ed25519 SSH key and a P-256 X.509 CA.
pub fn new_ca(ca_type: CaType, cluster: &str, now: OffsetDateTime) -> Result<CertAuthority> {
    if ca_type == CaType::Jwt {
        // RSA, as every JWT verifier (mod_auth_openidc, Grafana) reads RS256.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| shared::error::Error::internal(format!("cannot generate the JWT signing key: {e}")))?;
        let keys = CaKeySet {
            jwt: vec![shared::resource::cert_authority::JwtKeyPair {
                public_key: key.public_key_pem().into_bytes(),
                private_key: key.serialize_pem().into_bytes(),
                private_key_type: "raw".into(),
            }],
            ..Default::default()
        };
        return Ok(CertAuthority::new(ca_type, cluster, keys));
    }
    let ssh = certs::new_ssh_key()?;
    let tls_key = certs::new_tls_key()?;
    let tls_cert = certs::new_ca_cert(&tls_key, cluster, ca_type.as_str(), now, CA_TTL)?;
    let keys = CaKeySet {
        ssh: vec![SshKeyPair {
            public_key: format!("{}\n", certs::authorized_key(ssh.public_key())).into_bytes(),
            private_key: certs::ssh_key_to_pem(&ssh)?.into_bytes(),
            private_key_type: "raw".into(),
        }],
        tls: vec![TlsKeyPair { cert: tls_cert.into_bytes(), key: tls_key.serialize_pem().into_bytes(), key_type: "raw".into() }],
        jwt: vec![],
    };
    Ok(CertAuthority::new(ca_type, cluster, keys))
}

/// The signing keys of a CA this cluster owns.
pub struct Signer {
    /// SSH signing key.
    pub ssh: PrivateKey,
    /// X.509 CA certificate (PEM).
    pub tls_cert: String,
    /// X.509 CA key (PEM).
    pub tls_key: String,
}

/// Extracts the signing keys; fails if the CA has no private keys (a foreign CA).
pub fn signer(ca: &CertAuthority) -> Result<Signer> {
    let ssh = ca
        .spec
        .active_keys
        .ssh
        .iter()
        .find(|k| !k.private_key.is_empty())
        .ok_or_else(|| Error::internal(format!("certificate authority {} has no SSH signing key", ca.id())))?;
    let tls = ca
        .spec
        .active_keys
        .tls
        .iter()
        .find(|k| !k.key.is_empty())
        .ok_or_else(|| Error::internal(format!("certificate authority {} has no TLS signing key", ca.id())))?;
    Ok(Signer {
        ssh: certs::ssh_key_from_pem(&ssh.private_key)?,
        tls_cert: String::from_utf8_lossy(&tls.cert).into_owned(),
        tls_key: String::from_utf8_lossy(&tls.key).into_owned(),
    })
}

/// Two CAs hold the same public keys (a re-join with the same CA).
pub fn same_public_keys(a: &CertAuthority, b: &CertAuthority) -> bool {
    let keys = |c: &CertAuthority| {
        let mut s: Vec<String> = c.ssh_public_keys().iter().map(certs::authorized_key).collect();
        s.sort();
        let mut t: Vec<String> = c.tls_certs_pem().iter().map(|p| p.trim().to_string()).collect();
        t.sort();
        (s, t)
    };
    keys(a) == keys(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ca_is_valid_and_signs() {
        let now = OffsetDateTime::now_utc();
        let ca = new_ca(CaType::Host, "root.example.com", now).unwrap();
        ca.check().unwrap();
        assert!(ca.has_secrets());
        assert!(!ca.without_secrets().has_secrets());
        let s = signer(&ca).unwrap();
        assert_eq!(certs::cert_subject(&s.tls_cert).unwrap(), ("root.example.com".into(), "root.example.com".into()));
        assert!(signer(&ca.without_secrets()).is_err());
        assert!(same_public_keys(&ca, &ca.without_secrets()));
        let other = new_ca(CaType::Host, "root.example.com", now).unwrap();
        assert!(!same_public_keys(&ca, &other));
    }
}
