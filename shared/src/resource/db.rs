//! `db` (v3): a database a cluster's `db_service` serves, or one an admin defines with `tctl
//! create` (reference `kube-app-db.md` §4.4). Served databases are heartbeated with who serves
//! them and expire unless renewed, as `app` records do. PostgreSQL only, for now.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata, is_false};
use crate::error::{Error, Result};

/// A database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Db {
    /// Always `db`.
    pub kind: String,
    /// `v3`.
    #[serde(default = "v3")]
    pub version: String,
    /// Name, description, labels, expiry.
    pub metadata: Metadata,
    /// What it is and where.
    pub spec: DbSpec,
}

fn v3() -> String {
    "v3".into()
}

/// Where a database is and how the service reaches it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSpec {
    /// `postgres`.
    pub protocol: String,
    /// `host:port` the service connects to.
    pub uri: String,
    /// How the service verifies the database's certificate.
    #[serde(default, skip_serializing_if = "DbTls::is_default")]
    pub tls: DbTls,
    /// UUID of the process whose `db_service` serves it (empty: defined by an admin).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    /// That process's host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Served by a process of its own, through its reverse tunnel.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tunnel: bool,
}

/// `tls`: Teleport's modes; never a plaintext fallback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbTls {
    /// `verify-full` (default), `verify-ca` or `insecure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// PEM of the CA that signed the database's certificate (default: the cluster's `db` CA).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_cert: String,
    /// The name to verify instead of the URI's host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_name: String,
}

impl DbTls {
    fn is_default(&self) -> bool {
        *self == DbTls::default()
    }
}

/// The TLS modes a database may have.
pub const TLS_MODES: &[&str] = &["verify-full", "verify-ca", "insecure"];

impl Db {
    /// A heartbeat record of a database `host_id` serves.
    pub fn served(mut db: Db, host_id: &str, hostname: &str, tunnel: bool, expires: OffsetDateTime) -> Db {
        db.spec.host_id = host_id.into();
        db.spec.hostname = hostname.into();
        db.spec.tunnel = tunnel;
        db.metadata.expires = Some(expires);
        db
    }

    /// The TLS mode in force (`verify-full` unless set).
    pub fn tls_mode(&self) -> &str {
        if self.spec.tls.mode.is_empty() { "verify-full" } else { &self.spec.tls.mode }
    }

    /// Validates a database (from `tctl create` or the config).
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        self.metadata.check(Kind::Db)?;
        if self.version.is_empty() {
            self.version = v3();
        }
        if self.version != "v3" {
            return Err(Error::bad_parameter(format!("db version {:?} is not supported, use v3", self.version)));
        }
        let n = &self.metadata.name;
        if n.is_empty()
            || n.len() > 63
            || n.starts_with('-')
            || n.ends_with('-')
            || !n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::bad_parameter(format!(
                "database name {n:?} must be lower case letters, digits and hyphens (at most 63), e.g. \"orders-pg\""
            )));
        }
        match self.spec.protocol.as_str() {
            "postgres" => {}
            "" => return Err(Error::bad_parameter(format!("database {n:?}: protocol is required (postgres)"))),
            other => {
                return Err(Error::bad_parameter(format!("database {n:?}: protocol {other:?} is not supported yet; use postgres")));
            }
        }
        let uri = &self.spec.uri;
        let (host, port) = uri.rsplit_once(':').ok_or_else(|| {
            Error::bad_parameter(format!("database {n:?}: uri {uri:?} must be host:port (e.g. db.internal:5432), without a scheme"))
        })?;
        if uri.contains("://") || host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) || host.chars().any(char::is_whitespace) {
            return Err(Error::bad_parameter(format!(
                "database {n:?}: uri {uri:?} must be host:port (e.g. db.internal:5432), without a scheme"
            )));
        }
        if !self.spec.tls.mode.is_empty() && !TLS_MODES.contains(&self.spec.tls.mode.as_str()) {
            return Err(Error::bad_parameter(format!(
                "database {n:?}: tls.mode {:?} is not one of {}",
                self.spec.tls.mode,
                TLS_MODES.join(", ")
            )));
        }
        if !self.spec.tls.ca_cert.is_empty() && !self.spec.tls.ca_cert.contains("BEGIN CERTIFICATE") {
            return Err(Error::bad_parameter(format!("database {n:?}: tls.ca_cert must be a PEM certificate")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str, protocol: &str, uri: &str, mode: &str) -> Db {
        Db {
            kind: "db".into(),
            version: "v3".into(),
            metadata: Metadata::named(name),
            spec: DbSpec {
                protocol: protocol.into(),
                uri: uri.into(),
                tls: DbTls { mode: mode.into(), ..Default::default() },
                ..Default::default()
            },
        }
    }

    #[test]
    fn databases_are_checked_with_errors_that_say_the_fix() {
        assert!(db("orders-pg", "postgres", "db.internal:5432", "").check_and_set_defaults().is_ok());
        assert_eq!(db("a", "postgres", "h:5432", "").tls_mode(), "verify-full");
        let err = |d: Db| {
            let mut d = d;
            d.check_and_set_defaults().unwrap_err().message
        };
        assert!(err(db("Orders", "postgres", "h:5432", "")).contains("lower case"));
        assert!(err(db("a", "mysql", "h:3306", "")).contains("not supported yet; use postgres"));
        assert!(err(db("a", "", "h:5432", "")).contains("protocol is required"));
        assert!(err(db("a", "postgres", "postgres://h:5432", "")).contains("without a scheme"));
        assert!(err(db("a", "postgres", "h", "")).contains("host:port"));
        assert!(err(db("a", "postgres", "h:0", "")).contains("host:port"));
        assert!(err(db("a", "postgres", "h:5432", "disable")).contains("tls.mode"));
    }
}
