//! `cert_authority` (v2): a cluster's SSH and X.509 signing keys (reference §2.3).
//!
//! Each cluster owns a `user` CA (signs user certificates) and a `host` CA (signs node and proxy
//! certificates). A leaf stores the root's public CAs too; the root's `user` CA as stored on the
//! leaf carries the `role_map`. Private keys are only present in the owning cluster's storage.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata, RoleMapping, b64, is_empty_vec};
use crate::error::{Error, Result};

/// Which CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaType {
    /// Signs user certificates.
    User,
    /// Signs host certificates.
    Host,
    /// Teleport's database CA (accepted from a Teleport root; unused).
    Db,
    /// Teleport's OpenSSH CA (accepted from a Teleport root; unused).
    Openssh,
    /// Signs the JWTs applications receive (`teleport-jwt-assertion`); its public keys are
    /// published at `/.well-known/jwks.json`. Never leaves its cluster.
    Jwt,
}

impl CaType {
    /// `user`, `host`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CaType::User => "user",
            CaType::Host => "host",
            CaType::Db => "db",
            CaType::Openssh => "openssh",
            CaType::Jwt => "jwt",
        }
    }

    /// Parses a CA type.
    pub fn parse(s: &str) -> Result<CaType> {
        match s {
            "user" => Ok(CaType::User),
            "host" => Ok(CaType::Host),
            "db" => Ok(CaType::Db),
            "openssh" => Ok(CaType::Openssh),
            "jwt" => Ok(CaType::Jwt),
            _ => Err(Error::bad_parameter(format!("unknown certificate authority type {s:?}; use user or host"))),
        }
    }
}

impl fmt::Display for CaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertAuthority {
    /// Always `cert_authority`.
    pub kind: String,
    /// The CA type again, as Teleport prints it.
    #[serde(default)]
    pub sub_kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// `name` is the cluster name.
    pub metadata: Metadata,
    /// Keys and role map.
    pub spec: CaSpec,
}

fn v2() -> String {
    "v2".into()
}

/// The body of a CA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSpec {
    /// `user` or `host`.
    #[serde(rename = "type")]
    pub ca_type: CaType,
    /// The owning cluster.
    pub cluster_name: String,
    /// Signing and checking keys.
    #[serde(default)]
    pub active_keys: CaKeySet,
    /// Keys trusted in addition (rotation); accepted, trusted for checking.
    #[serde(default, skip_serializing_if = "CaKeySet::is_empty")]
    pub additional_trusted_keys: CaKeySet,
    /// Legacy role list (a root's user CA on a leaf).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub roles: Vec<String>,
    /// Role map (a root's user CA on a leaf).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub role_map: Vec<RoleMapping>,
    /// Where a rotation of this CA stands (Teleport's fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// Accepted from Teleport; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<serde_json::Value>,
}

/// A CA's rotation (`spec.rotation`), with Teleport's field names and values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// `standby` or `in_progress`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// `standby`, `init`, `update_clients`, `update_servers` or `rollback`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    /// `manual` or `auto`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// This rotation's ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_id: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub started: Option<time::OffsetDateTime>,
    /// How long certificates of the old keys stay trusted (a Go duration, `30h0m0s`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grace_period: String,
    /// When the last rotation completed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub last_rotated: Option<time::OffsetDateTime>,
    /// When an automatic rotation enters each phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<RotationSchedule>,
}

/// The phases' times of an automatic rotation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RotationSchedule {
    /// Enter `update_clients`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub update_clients: Option<time::OffsetDateTime>,
    /// Enter `update_servers`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub update_servers: Option<time::OffsetDateTime>,
    /// Enter `standby` (the old keys are dropped).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub standby: Option<time::OffsetDateTime>,
}

/// Key material of a CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaKeySet {
    /// SSH keys.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub ssh: Vec<SshKeyPair>,
    /// X.509 keys.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub tls: Vec<TlsKeyPair>,
    /// JWT keys (the `jwt` CA).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub jwt: Vec<JwtKeyPair>,
}

/// One JWT signing key of a CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtKeyPair {
    /// PEM SubjectPublicKeyInfo.
    #[serde(with = "b64")]
    pub public_key: Vec<u8>,
    /// PEM PKCS#8 private key (only on the owning cluster).
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub private_key: Vec<u8>,
    /// `raw`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub private_key_type: String,
}

impl CaKeySet {
    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.ssh.is_empty() && self.tls.is_empty() && self.jwt.is_empty()
    }
}

/// One SSH key of a CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SshKeyPair {
    /// `authorized_keys` text of the public key.
    #[serde(with = "b64")]
    pub public_key: Vec<u8>,
    /// OpenSSH private key (only on the owning cluster).
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub private_key: Vec<u8>,
    /// `raw`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub private_key_type: String,
}

/// One X.509 key of a CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsKeyPair {
    /// PEM certificate.
    #[serde(with = "b64")]
    pub cert: Vec<u8>,
    /// PEM PKCS#8 private key (only on the owning cluster).
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    /// `raw`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_type: String,
}

impl CertAuthority {
    /// A CA of `ca_type` for `cluster`.
    pub fn new(ca_type: CaType, cluster: &str, keys: CaKeySet) -> CertAuthority {
        CertAuthority {
            kind: Kind::CertAuthority.as_str().into(),
            sub_kind: ca_type.as_str().into(),
            version: v2(),
            metadata: Metadata::named(cluster),
            spec: CaSpec {
                ca_type,
                cluster_name: cluster.into(),
                active_keys: keys,
                additional_trusted_keys: CaKeySet::default(),
                roles: vec![],
                role_map: vec![],
                rotation: None,
                signing_alg: None,
            },
        }
    }

    /// `<type>/<cluster>`, the storage and CLI name.
    pub fn id(&self) -> String {
        format!("{}/{}", self.spec.ca_type, self.metadata.name)
    }

    /// The CA without private keys.
    pub fn without_secrets(&self) -> CertAuthority {
        let mut c = self.clone();
        for set in [&mut c.spec.active_keys, &mut c.spec.additional_trusted_keys] {
            for k in &mut set.ssh {
                k.private_key.clear();
                k.private_key_type.clear();
            }
            for k in &mut set.tls {
                k.key.clear();
                k.key_type.clear();
            }
            for k in &mut set.jwt {
                k.private_key.clear();
                k.private_key_type.clear();
            }
        }
        c
    }

    /// True when any private key is present.
    pub fn has_secrets(&self) -> bool {
        self.spec.active_keys.ssh.iter().any(|k| !k.private_key.is_empty())
            || self.spec.active_keys.tls.iter().any(|k| !k.key.is_empty())
            || self.spec.active_keys.jwt.iter().any(|k| !k.private_key.is_empty())
    }

    /// Validates a CA received from a peer (reference §1.2 `ValidateCertAuthority`).
    pub fn check(&self) -> Result<()> {
        if self.kind != Kind::CertAuthority.as_str() {
            return Err(Error::bad_parameter(format!("expected kind cert_authority, got {:?}", self.kind)));
        }
        self.metadata.check(Kind::CertAuthority)?;
        if matches!(self.spec.ca_type, CaType::User | CaType::Host) {
            if self.spec.active_keys.ssh.is_empty() {
                return Err(Error::bad_parameter("certificate authority missing SSH key pairs"));
            }
            if self.spec.active_keys.tls.is_empty() {
                return Err(Error::bad_parameter("certificate authority missing TLS key pairs"));
            }
        }
        if !self.spec.roles.is_empty() && !self.spec.role_map.is_empty() {
            return Err(Error::bad_parameter("should set either 'roles' or 'role_map', not both"));
        }
        if !self.spec.role_map.is_empty() {
            crate::rolemap::parse_role_map(&self.spec.role_map)?;
        }
        if self.metadata.name != self.spec.cluster_name {
            return Err(Error::bad_parameter("CA name does not match its cluster name"));
        }
        for k in self.spec.active_keys.ssh.iter().chain(self.spec.additional_trusted_keys.ssh.iter()) {
            crate::certs::parse_authorized_key(&k.public_key)?;
        }
        Ok(())
    }

    /// The role map used for users of this CA's cluster (`roles` as a `*` mapping if set).
    pub fn combined_mapping(&self) -> Vec<RoleMapping> {
        if !self.spec.roles.is_empty() {
            vec![RoleMapping { remote: "*".into(), local: self.spec.roles.clone() }]
        } else {
            self.spec.role_map.clone()
        }
    }

    /// All SSH public keys this CA checks with (active and additional).
    pub fn ssh_public_keys(&self) -> Vec<russh::keys::PublicKey> {
        self.spec
            .active_keys
            .ssh
            .iter()
            .chain(self.spec.additional_trusted_keys.ssh.iter())
            .filter_map(|k| crate::certs::parse_authorized_key(&k.public_key).ok())
            .collect()
    }

    /// All X.509 certificates (PEM) of this CA.
    pub fn tls_certs_pem(&self) -> Vec<String> {
        self.spec
            .active_keys
            .tls
            .iter()
            .chain(self.spec.additional_trusted_keys.tls.iter())
            .map(|k| String::from_utf8_lossy(&k.cert).into_owned())
            .collect()
    }
}
