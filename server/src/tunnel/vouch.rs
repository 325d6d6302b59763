//! A proxy's signed word about whom a connection to a node carries.
//!
//! A node reached straight over TCP sees every user a proxy brings as coming from the proxy's
//! one address. Its per-source limits (`per_source_max_startups`) would then count all of them
//! together, and one user holding connections that never authenticate (silent channels) would
//! shut every other user out of the node. So before the user's SSH stream the proxy sends one
//! line, and the node keys its limits and its audit on the user it names:
//!
//! ```text
//! proxy ──TCP──▶ node:   TP-VOUCH-1 <host cert> <payload> <signature>\n   then the user's SSH
//!                        payload   {"origin": {user, cluster, roles, addr, issued_at},
//!                                   "node": "<node UUID>", "at": <unix seconds>}
//!                        signature SSHSIG (namespace "teleport-rs-vouch") of the payload by the
//!                                  key of the proxy's host certificate
//! ```
//! Each field is base64 without padding (the line's codec is `super::wire::VouchLine`). The node
//! believes it only when the certificate is a
//! proxy's host certificate of its own cluster, signed by its host CA, the signature is good, the
//! payload names this node and is at most a minute old; otherwise it closes the connection.
//! Authorization is unchanged: the user's own certificate, checked end to end by the node. A
//! client that speaks SSH first (OpenSSH straight to the node) is counted by its address.
//!
//! Pure functions over strings: [`encode`], [`verify`] (fuzzed with the rest of the wire).

use russh::keys::HashAlg;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::{Certificate, LineEnding, PrivateKey, PublicKey, SshSig};
use serde::{Deserialize, Serialize};
use shared::error::{Error, Result};
use shared::resource::token::SystemRole;
use time::OffsetDateTime;

use super::wire::{MAX_VOUCH_LINE, Origin, VouchLine};

/// How old a vouch may be (clocks of one cluster's hosts are kept close).
const MAX_AGE_SECS: i64 = 60;
const NAMESPACE: &str = "teleport-rs-vouch";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    origin: Origin,
    node: String,
    at: i64,
}

fn refused(why: &str) -> Error {
    Error::access_denied(format!("refused a proxy's vouch: {why}"))
}

/// The line a proxy sends before the user's SSH to `node` (its UUID), signed with the proxy's
/// host key and certificate.
pub fn encode(origin: &Origin, node: &str, key: &PrivateKey, cert: &Certificate, now: OffsetDateTime) -> Result<String> {
    let payload = serde_json::to_vec(&Payload { origin: origin.clone(), node: node.into(), at: now.unix_timestamp() })
        .map_err(|e| Error::internal(format!("encoding a vouch: {e}")))?;
    let sig = key.sign(NAMESPACE, HashAlg::Sha512, &payload).map_err(|e| Error::internal(format!("signing a vouch: {e}")))?;
    let sig = sig.to_pem(LineEnding::LF).map_err(|e| Error::internal(format!("encoding a vouch: {e}")))?;
    let cert = cert.to_openssh().map_err(|e| Error::internal(format!("encoding a vouch: {e}")))?;
    let line = VouchLine { cert, payload, sig }.encode();
    if line.len() > MAX_VOUCH_LINE {
        return Err(Error::internal("a vouch is longer than a node reads"));
    }
    Ok(line)
}

/// Checks a vouch `line` (without its newline) for node `node` of `cluster`, whose host CA keys
/// are `host_cas`; returns the origin it vouches for.
pub fn verify(line: &str, host_cas: &[PublicKey], cluster: &str, node: &str, now: OffsetDateTime) -> Result<Origin> {
    let v = VouchLine::decode(line)?;
    let cert = Certificate::from_openssh(&v.cert).map_err(|_| refused("the certificate does not parse"))?;
    shared::certs::check_ssh_cert(&cert, host_cas, CertType::Host, None, now).map_err(|r| refused(&r.to_string()))?;
    let (role, authority) = shared::identity::host_from_ssh_cert(&cert)?;
    if role != SystemRole::Proxy || authority != cluster {
        return Err(refused(&format!("the certificate is a {role} of {authority:?}, not a proxy of {cluster:?}")));
    }
    let sig = SshSig::from_pem(&v.sig).map_err(|_| refused("the signature does not parse"))?;
    PublicKey::from(cert.public_key().clone())
        .verify(NAMESPACE, &v.payload, &sig)
        .map_err(|_| refused("the signature does not match the certificate"))?;
    let p: Payload = serde_json::from_slice(&v.payload).map_err(|_| refused("the payload does not parse"))?;
    if p.node != node {
        return Err(refused("it names another node"));
    }
    if (now.unix_timestamp() - p.at).abs() > MAX_AGE_SECS {
        return Err(refused("it is too old (or the clocks are far apart)"));
    }
    Ok(p.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> PrivateKey {
        shared::certs::new_ssh_key().unwrap_or_else(|e| panic!("{e}"))
    }

    fn host(ca: &PrivateKey, role: SystemRole, cluster: &str) -> (PrivateKey, Certificate) {
        let key = self::ca();
        let now = OffsetDateTime::now_utc();
        let p = shared::certs::SshCertParams {
            cert_type: CertType::Host,
            key_id: "proxy-uuid".into(),
            principals: vec!["proxy-uuid".into()],
            extensions: shared::identity::host_ssh_extensions(role, cluster),
            not_before: now - time::Duration::minutes(1),
            not_after: now + time::Duration::hours(1),
        };
        let cert = shared::certs::sign_ssh_cert(ca, key.public_key(), &p).unwrap_or_else(|e| panic!("{e}"));
        (key, cert)
    }

    fn origin() -> Origin {
        Origin {
            user: "alice".into(),
            cluster: "root".into(),
            roles: vec!["access".into()],
            addr: "10.0.0.9:5555".into(),
            issued_at: None,
            cert: None,
        }
    }

    #[test]
    fn a_proxy_of_the_cluster_vouches_and_everything_else_is_refused() {
        let ca = ca();
        let cas = vec![ca.public_key().clone()];
        let now = OffsetDateTime::now_utc();
        let (key, cert) = host(&ca, SystemRole::Proxy, "leaf");
        let line = encode(&origin(), "node-1", &key, &cert, now).unwrap_or_default();
        assert!(line.len() < MAX_VOUCH_LINE && line.ends_with('\n'));
        let line = line.trim_end();
        assert_eq!(verify(line, &cas, "leaf", "node-1", now).ok(), Some(origin()));
        let err = |r: Result<Origin>| r.err().map(|e| e.message).unwrap_or_default();
        assert!(err(verify(line, &cas, "leaf", "node-2", now)).contains("another node"));
        assert!(err(verify(line, &cas, "other", "node-1", now)).contains("not a proxy of"));
        assert!(err(verify(line, &cas, "leaf", "node-1", now + time::Duration::minutes(5))).contains("too old"));
        let stranger = self::ca();
        assert!(!err(verify(line, &[stranger.public_key().clone()], "leaf", "node-1", now)).is_empty(), "another CA");
        // A node's certificate, or a payload changed after signing.
        let (nkey, ncert) = host(&ca, SystemRole::Node, "leaf");
        let nline = encode(&origin(), "node-1", &nkey, &ncert, now).unwrap_or_default();
        assert!(err(verify(nline.trim_end(), &cas, "leaf", "node-1", now)).contains("not a proxy"));
        let mut o = origin();
        o.user = "mallory".into();
        let mut forged = VouchLine::decode(line).unwrap_or_else(|e| panic!("{e}"));
        forged.payload = serde_json::to_vec(&Payload { origin: o, node: "node-1".into(), at: now.unix_timestamp() }).unwrap_or_default();
        let forged = forged.encode();
        assert!(err(verify(forged.trim_end(), &cas, "leaf", "node-1", now)).contains("signature does not match"));
        for junk in ["", "TP-VOUCH-1 ", "TP-VOUCH-1 a b", "TP-VOUCH-1 !!! b c", "SSH-2.0-x", "TP-VOUCH-1 a b c d"] {
            assert!(verify(junk, &cas, "leaf", "node-1", now).is_err(), "{junk:?}");
        }
    }
}
