//! Keys and certificates: SSH (OpenSSH certificate format) and X.509 (rcgen / x509-parser).
//!
//! Pure functions over key material so that the auth server, nodes, tsh and tests all build
//! and check certificates the same way. Trust decisions (which CA is trusted *now*) are made by
//! callers; the functions here check signatures, types, windows and principals against the CA
//! keys they are given.

use std::time::Duration;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber, SubjectPublicKeyInfo,
};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::{Algorithm, Certificate, HashAlg, LineEnding, PrivateKey, PublicKey};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Clock skew allowance: certificates are valid from one minute in the past.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// SNI and DNS name under which a cluster's API presents a host-CA-signed certificate.
pub const CLUSTER_LOCAL_NAME: &str = "teleport.cluster.local";

/// Our X.509 extension carrying the certificate identity as JSON (in Teleport's private arc).
pub const IDENTITY_OID: &[u64] = &[1, 3, 9999, 77, 1];

/// Random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

/// A random lowercase hex string of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    random_bytes(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets (tokens, codes) in time that depends only on their lengths, so that
/// how long a refusal takes says nothing about how much of a guess was right.
pub fn secret_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

// ---------------------------------------------------------------- SSH

/// A new Ed25519 SSH key.
pub fn new_ssh_key() -> Result<PrivateKey> {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| Error::internal(format!("generating SSH key: {e}")))
}

/// An SSH private key as OpenSSH PEM.
pub fn ssh_key_to_pem(k: &PrivateKey) -> Result<String> {
    k.to_openssh(LineEnding::LF).map(|z| z.to_string()).map_err(|e| Error::internal(format!("encoding SSH key: {e}")))
}

/// Parses an OpenSSH private key.
pub fn ssh_key_from_pem(pem: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_openssh(pem).map_err(|e| Error::bad_parameter(format!("invalid SSH private key: {e}")))
}

/// Parses `authorized_keys` text (`ssh-ed25519 AAAA... [comment]`).
pub fn parse_authorized_key(text: &[u8]) -> Result<PublicKey> {
    let s = std::str::from_utf8(text).map_err(|_| Error::bad_parameter("SSH public key is not UTF-8"))?;
    PublicKey::from_openssh(s.trim()).map_err(|e| Error::bad_parameter(format!("invalid SSH public key: {e}")))
}

/// A public key as `authorized_keys` text without a comment.
pub fn authorized_key(k: &PublicKey) -> String {
    let mut k = k.clone();
    k.set_comment("");
    k.to_openssh().unwrap_or_default()
}

/// Parses an OpenSSH certificate line.
pub fn parse_ssh_cert(text: &str) -> Result<Certificate> {
    Certificate::from_openssh(text.trim()).map_err(|e| Error::bad_parameter(format!("invalid SSH certificate: {e}")))
}

/// An SSH certificate as one OpenSSH line.
pub fn ssh_cert_line(c: &Certificate) -> String {
    c.to_openssh().unwrap_or_default()
}

/// SHA-256 fingerprint text of a public key (`SHA256:...`).
pub fn fingerprint(k: &PublicKey) -> String {
    k.fingerprint(HashAlg::Sha256).to_string()
}

/// What goes into an SSH certificate.
#[derive(Debug, Clone)]
pub struct SshCertParams {
    /// User or host.
    pub cert_type: CertType,
    /// KeyId: the Teleport user name, or the host UUID.
    pub key_id: String,
    /// Valid principals; must not be empty (an empty list means "any" to OpenSSH).
    pub principals: Vec<String>,
    /// Extensions (name → value; flags have value "").
    pub extensions: Vec<(String, String)>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Signs an SSH certificate for `subject` with `ca`.
pub fn sign_ssh_cert(ca: &PrivateKey, subject: &PublicKey, p: &SshCertParams) -> Result<Certificate> {
    if p.principals.is_empty() {
        return Err(Error::internal("refusing to sign an SSH certificate without principals"));
    }
    let after = u64::try_from(p.not_before.unix_timestamp()).unwrap_or(0);
    let before = u64::try_from(p.not_after.unix_timestamp()).unwrap_or(0);
    let err = |e: russh::keys::ssh_key::Error| Error::internal(format!("building SSH certificate: {e}"));
    let mut b = Builder::new(random_bytes(32), subject.key_data().clone(), after, before).map_err(err)?;
    let mut serial = [0u8; 8];
    rand::rng().fill_bytes(&mut serial);
    b.serial(u64::from_be_bytes(serial)).map_err(err)?;
    b.cert_type(p.cert_type).map_err(err)?;
    b.key_id(p.key_id.clone()).map_err(err)?;
    for pr in &p.principals {
        b.valid_principal(pr.clone()).map_err(err)?;
    }
    for (k, v) in &p.extensions {
        b.extension(k.clone(), v.clone()).map_err(err)?;
    }
    b.sign(ca).map_err(err)
}

/// Why an SSH certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshCertRejection {
    /// Not signed by any of the given CAs (or the signature is invalid).
    UntrustedCa,
    /// Outside its validity window.
    Expired,
    /// User vs host mismatch.
    WrongType,
    /// The requested principal is not in the certificate.
    Principal(String),
    /// KeyId empty or no principals.
    Malformed,
    /// A critical option we do not implement.
    UnsupportedOption(String),
}

impl std::fmt::Display for SshCertRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshCertRejection::UntrustedCa => f.write_str("the certificate signed by untrusted CA"),
            SshCertRejection::Expired => f.write_str("the certificate has expired or is not yet valid"),
            SshCertRejection::WrongType => f.write_str("the certificate is of the wrong type"),
            SshCertRejection::Principal(p) => {
                write!(f, "the certificate is not valid for principal {p:?}")
            }
            SshCertRejection::Malformed => f.write_str("the certificate has no key id or no principals"),
            SshCertRejection::UnsupportedOption(o) => {
                write!(f, "the certificate has unsupported critical option {o:?}")
            }
        }
    }
}

/// Checks an SSH certificate: signed by one of `cas` (the index of the CA is returned), of
/// `cert_type`, valid at `now`, and (if given) listing `principal`. Critical options other
/// than none are refused, since we do not enforce them.
pub fn check_ssh_cert(
    cert: &Certificate,
    cas: &[PublicKey],
    cert_type: CertType,
    principal: Option<&str>,
    now: OffsetDateTime,
) -> std::result::Result<usize, SshCertRejection> {
    if cert.key_id().is_empty() || cert.valid_principals().is_empty() {
        return Err(SshCertRejection::Malformed);
    }
    let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
    let idx = cas.iter().position(|ca| ca.fingerprint(HashAlg::Sha256) == signer).ok_or(SshCertRejection::UntrustedCa)?;
    let fp = signer;
    let ts = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    match cert.validate_at(ts, [&fp]) {
        Ok(()) => {}
        Err(_) => {
            // Distinguish a bad signature from a bad window for the log.
            let in_window = cert.valid_after() <= ts && ts < cert.valid_before();
            return Err(if in_window { SshCertRejection::UntrustedCa } else { SshCertRejection::Expired });
        }
    }
    if cert.cert_type() != cert_type {
        return Err(SshCertRejection::WrongType);
    }
    if let Some((name, _)) = cert.critical_options().iter().next() {
        return Err(SshCertRejection::UnsupportedOption(name.clone()));
    }
    if let Some(p) = principal
        && !cert.valid_principals().iter().any(|x| x == p)
    {
        return Err(SshCertRejection::Principal(p.to_string()));
    }
    Ok(idx)
}

// ---------------------------------------------------------------- X.509

/// A new SSH key and TLS key, and their public halves as a signing request carries them.
pub fn new_key_pair() -> Result<(PrivateKey, KeyPair, crate::api::PublicKeys)> {
    let ssh = new_ssh_key()?;
    let tls = new_tls_key()?;
    let public = crate::api::PublicKeys { ssh_public_key: authorized_key(ssh.public_key()), tls_public_key: spki_pem(&tls) };
    Ok((ssh, tls, public))
}

/// A new ECDSA P-256 key pair.
pub fn new_tls_key() -> Result<KeyPair> {
    KeyPair::generate().map_err(|e| Error::internal(format!("generating TLS key: {e}")))
}

/// Parses a PKCS#8 PEM private key.
pub fn tls_key_from_pem(pem: &str) -> Result<KeyPair> {
    KeyPair::from_pem(pem).map_err(|e| Error::bad_parameter(format!("invalid TLS private key: {e}")))
}

fn rcgen_err(e: rcgen::Error) -> Error {
    Error::internal(format!("building X.509 certificate: {e}"))
}

fn serial() -> SerialNumber {
    let mut b = random_bytes(16);
    b[0] &= 0x7f;
    SerialNumber::from_slice(&b)
}

/// Subject DN of a cluster CA: CN = O = cluster name (as Teleport), OU = CA type (so that the
/// issuer of a client certificate says which CA signed it).
pub fn ca_subject(cluster: &str, ca_type: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cluster);
    dn.push(DnType::OrganizationName, cluster);
    dn.push(DnType::OrganizationalUnitName, ca_type);
    dn
}

/// A self-signed CA certificate for `cluster`, valid for `ttl`.
pub fn new_ca_cert(key: &KeyPair, cluster: &str, ca_type: &str, now: OffsetDateTime, ttl: Duration) -> Result<String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
    p.distinguished_name = ca_subject(cluster, ca_type);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - CLOCK_SKEW;
    p.not_after = now + ttl;
    p.serial_number = Some(serial());
    Ok(p.self_signed(key).map_err(rcgen_err)?.pem())
}

/// What goes into an X.509 certificate signed by a cluster CA.
#[derive(Debug, Clone)]
pub struct TlsCertParams {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization (Teleport puts roles here; we put the cluster name).
    pub organization: String,
    /// DNS or IP subject alternative names (servers).
    pub sans: Vec<String>,
    /// The identity JSON for [`IDENTITY_OID`].
    pub identity_json: Option<String>,
    /// Client authentication.
    pub client: bool,
    /// Server authentication.
    pub server: bool,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Signs an X.509 certificate for the public key `spki_pem` with the CA (`ca_cert_pem`, `ca_key_pem`).
pub fn sign_tls_cert(ca_cert_pem: &str, ca_key_pem: &str, spki_pem: &str, p: &TlsCertParams) -> Result<String> {
    let ca_key = tls_key_from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(rcgen_err)?;
    let subject = SubjectPublicKeyInfo::from_pem(spki_pem).map_err(|e| Error::bad_parameter(format!("invalid TLS public key: {e}")))?;
    let mut params = CertificateParams::new(p.sans.clone()).map_err(rcgen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, p.common_name.as_str());
    if !p.organization.is_empty() {
        dn.push(DnType::OrganizationName, p.organization.as_str());
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let mut eku = Vec::new();
    if p.client {
        eku.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if p.server {
        eku.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.extended_key_usages = eku;
    params.not_before = p.not_before;
    params.not_after = p.not_after;
    params.serial_number = Some(serial());
    if let Some(json) = &p.identity_json {
        params.custom_extensions.push(CustomExtension::from_oid_content(IDENTITY_OID, der_utf8(json)));
    }
    Ok(params.signed_by(&subject, &issuer).map_err(rcgen_err)?.pem())
}

/// A self-signed server certificate (the web listener's fallback), valid for one year.
pub fn self_signed_server_cert(sans: &[String], now: OffsetDateTime) -> Result<(String, String)> {
    let key = new_tls_key()?;
    let mut p = CertificateParams::new(sans.to_vec()).map_err(rcgen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, sans.first().map(String::as_str).unwrap_or("localhost"));
    p.distinguished_name = dn;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = now - CLOCK_SKEW;
    p.not_after = now + Duration::from_secs(365 * 86400);
    p.serial_number = Some(serial());
    let cert = p.self_signed(&key).map_err(rcgen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The public key of a key pair as SPKI PEM (what a client sends to get a certificate).
pub fn spki_pem(key: &KeyPair) -> String {
    key.public_key_pem()
}

/// DER `UTF8String` around `s`.
fn der_utf8(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = vec![0x0c];
    push_der_len(&mut out, b.len());
    out.extend_from_slice(b);
    out
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Reads a DER `UTF8String`; `None` when malformed.
fn read_der_utf8(b: &[u8]) -> Option<String> {
    let (&tag, rest) = b.split_first()?;
    if tag != 0x0c {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, x| (acc << 8) | *x as usize);
        (len, &rest[n..])
    };
    if rest.len() != len {
        return None;
    }
    String::from_utf8(rest.to_vec()).ok()
}

/// What we read from a peer's X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// Issuer CN (the cluster name of the signing CA).
    pub issuer_cluster: String,
    /// Issuer OU (`user` or `host`).
    pub issuer_ca_type: String,
    /// Subject CN.
    pub common_name: String,
    /// The identity JSON, if present.
    pub identity_json: Option<String>,
    /// Unix seconds after which it is invalid.
    pub not_after: i64,
    /// Unix seconds before which it is invalid.
    pub not_before: i64,
}

impl PeerCert {
    /// The user identity the certificate claims (unverified: the caller decides what to trust),
    /// `None` for a host's or an unreadable one.
    pub fn user(&self) -> Option<crate::identity::UserIdentity> {
        match crate::identity::CertIdentity::from_json(self.identity_json.as_deref()?).ok()? {
            crate::identity::CertIdentity::User(u) => Some(u),
            crate::identity::CertIdentity::Host(_) => None,
        }
    }
}

/// Lower-case hex of the SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// Teleport's CA pin of an X.509 CA certificate (PEM): `sha256:` and the hex SHA-256 of its
/// SubjectPublicKeyInfo, what `teleport start --ca-pin` checks.
pub fn ca_pin(pem: &str) -> Result<String> {
    use x509_parser::prelude::*;
    let der = first_pem_der(pem, "CERTIFICATE")?;
    let (_, cert) = parse_x509_certificate(&der).map_err(|e| Error::bad_parameter(format!("unparsable CA certificate: {e}")))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    Ok(format!("sha256:{}", data_encoding::HEXLOWER.encode(digest.as_ref())))
}

/// Parses a DER certificate (already verified by the TLS layer) into what we need.
pub fn parse_peer_cert(der: &[u8]) -> Result<PeerCert> {
    use x509_parser::prelude::*;
    let (_, cert) = parse_x509_certificate(der).map_err(|e| Error::access_denied(format!("unparsable client certificate: {e}")))?;
    let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| -> String {
        it.next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_string()
    };
    let issuer = cert.issuer();
    let subject = cert.subject();
    let identity_json = cert
        .extensions()
        .iter()
        .find(|e| e.oid.iter().map(|arcs| arcs.collect::<Vec<u64>>()).as_deref() == Some(IDENTITY_OID))
        .and_then(|e| read_der_utf8(e.value));
    Ok(PeerCert {
        issuer_cluster: first(&mut issuer.iter_common_name()),
        issuer_ca_type: first(&mut issuer.iter_organizational_unit()),
        common_name: first(&mut subject.iter_common_name()),
        identity_json,
        not_after: cert.validity().not_after.timestamp(),
        not_before: cert.validity().not_before.timestamp(),
    })
}

/// Reads the subject CN and O of a PEM certificate (the cluster name of a CA certificate).
pub fn cert_subject(pem: &str) -> Result<(String, String)> {
    use x509_parser::prelude::*;
    let der = first_pem_der(pem, "CERTIFICATE")?;
    let (_, cert) = parse_x509_certificate(&der).map_err(|e| Error::bad_parameter(format!("invalid certificate: {e}")))?;
    let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_string();
    let o = cert.subject().iter_organization().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_string();
    Ok((cn, o))
}

/// The DER body of the first PEM block with `label`.
pub fn first_pem_der(pem: &str, label: &str) -> Result<Vec<u8>> {
    pem_blocks(pem)
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, d)| d)
        .ok_or_else(|| Error::bad_parameter(format!("no {label} PEM block found")))
}

/// All PEM blocks as (label, DER).
pub fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(l) = line.strip_prefix("-----BEGIN ").and_then(|s| s.strip_suffix("-----")) {
            label = Some(l.to_string());
            body.clear();
        } else if let Some(l) = line.strip_prefix("-----END ").and_then(|s| s.strip_suffix("-----")) {
            if label.as_deref() == Some(l)
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes())
            {
                out.push((l.to_string(), der));
            }
            label = None;
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    out
}

/// The PEM text of each PEM block with `label` (re-encoded).
pub fn pem_texts(text: &str, label: &str) -> Vec<String> {
    pem_blocks(text).into_iter().filter(|(l, _)| l == label).map(|(l, der)| pem_encode(&l, &der)).collect()
}

/// Encodes DER as PEM.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn user_params(principals: &[&str]) -> SshCertParams {
        SshCertParams {
            cert_type: CertType::User,
            key_id: "alice".into(),
            principals: principals.iter().map(|s| s.to_string()).collect(),
            extensions: vec![("permit-pty".into(), String::new())],
            not_before: now() - CLOCK_SKEW,
            not_after: now() + Duration::from_secs(3600),
        }
    }

    #[test]
    fn ssh_cert_checks() -> Result<()> {
        let ca = new_ssh_key()?;
        let other = new_ssh_key()?;
        let user = new_ssh_key()?;
        let cert = sign_ssh_cert(&ca, user.public_key(), &user_params(&["visitor"]))?;
        let cas = vec![other.public_key().clone(), ca.public_key().clone()];
        assert_eq!(check_ssh_cert(&cert, &cas, CertType::User, Some("visitor"), now()), Ok(1));
        assert_eq!(check_ssh_cert(&cert, &cas[..1], CertType::User, Some("visitor"), now()), Err(SshCertRejection::UntrustedCa));
        assert_eq!(check_ssh_cert(&cert, &cas, CertType::User, Some("root"), now()), Err(SshCertRejection::Principal("root".into())));
        assert_eq!(check_ssh_cert(&cert, &cas, CertType::Host, None, now()), Err(SshCertRejection::WrongType));
        assert_eq!(check_ssh_cert(&cert, &cas, CertType::User, None, now() + Duration::from_secs(7200)), Err(SshCertRejection::Expired));
        // Round trip through text.
        let back = parse_ssh_cert(&ssh_cert_line(&cert))?;
        assert_eq!(back.key_id(), "alice");
        Ok(())
    }

    #[test]
    fn refuses_to_sign_without_principals() -> Result<()> {
        let ca = new_ssh_key()?;
        let user = new_ssh_key()?;
        assert!(sign_ssh_cert(&ca, user.public_key(), &user_params(&[])).is_err());
        Ok(())
    }

    #[test]
    fn x509_issue_and_parse() -> Result<()> {
        let ca_key = new_tls_key()?;
        let ca_pem = new_ca_cert(&ca_key, "root.example.com", "user", now(), Duration::from_secs(86400))?;
        assert_eq!(cert_subject(&ca_pem)?, ("root.example.com".to_string(), "root.example.com".to_string()));
        let key = new_tls_key()?;
        let p = TlsCertParams {
            common_name: "alice".into(),
            organization: "root.example.com".into(),
            sans: vec![],
            identity_json: Some("{\"kind\":\"user\"}".repeat(20)),
            client: true,
            server: false,
            not_before: now() - CLOCK_SKEW,
            not_after: now() + Duration::from_secs(600),
        };
        let pem = sign_tls_cert(&ca_pem, &ca_key.serialize_pem(), &spki_pem(&key), &p)?;
        let der = first_pem_der(&pem, "CERTIFICATE")?;
        let peer = parse_peer_cert(&der)?;
        assert_eq!(peer.issuer_cluster, "root.example.com");
        assert_eq!(peer.issuer_ca_type, "user");
        assert_eq!(peer.common_name, "alice");
        assert_eq!(peer.identity_json.as_deref(), p.identity_json.as_deref());
        Ok(())
    }

    #[test]
    fn der_utf8_round_trip() {
        for n in [0, 1, 127, 128, 255, 256, 70000] {
            let s = "x".repeat(n);
            assert_eq!(read_der_utf8(&der_utf8(&s)).as_deref(), Some(s.as_str()));
        }
        assert_eq!(read_der_utf8(&[0x0c, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(read_der_utf8(&[]), None);
    }
}
