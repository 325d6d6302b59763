//! Databases, the cluster's side: the `db` certificate authority, which signs the certificates a
//! database server presents (`tctl auth sign --format=db`) and, for the cluster's database
//! service, the client certificates it presents to a database as the user it connects as.

use std::time::Duration;

use shared::certs::{self, CLOCK_SKEW, TlsCertParams};
use shared::error::{Error, Result};
use shared::resource::CaType;

use super::{AuthServer, ca};

/// Teleport's default for `tctl auth sign --format=db` is the user TTL; operators give months.
pub const DEFAULT_DB_CERT_TTL: Duration = Duration::from_secs(12 * 3600);
/// The longest a database server certificate may live (a year and a bit: renew at leisure).
pub const MAX_DB_CERT_TTL: Duration = Duration::from_secs(400 * 86400);

impl AuthServer {
    /// A database server's certificate for `hosts` (the first is its common name) and the `db`
    /// CA's certificates, for `ssl_cert_file` and `ssl_ca_file`.
    pub async fn sign_db_server(&self, req: &shared::api::SignDbRequest) -> Result<shared::api::SignDbResponse> {
        let hosts: Vec<String> = req.hosts.iter().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect();
        if hosts.is_empty() {
            return Err(Error::bad_parameter("give the database server's names with --host (e.g. --host=db.example.com,10.0.0.5)"));
        }
        for h in &hosts {
            if h.len() > 253 || h.chars().any(|c| !(c.is_ascii_alphanumeric() || "-._:*".contains(c))) {
                return Err(Error::bad_parameter(format!("{h:?} is not a host name or an IP address")));
            }
        }
        let ttl = if req.ttl_seconds == 0 { DEFAULT_DB_CERT_TTL } else { Duration::from_secs(req.ttl_seconds) };
        if ttl > MAX_DB_CERT_TTL {
            return Err(Error::bad_parameter(format!(
                "--ttl may be at most {} days for a database certificate",
                MAX_DB_CERT_TTL.as_secs() / 86400
            )));
        }
        let db_ca = self.own_ca(CaType::Db).await?;
        let signer = ca::signer(&db_ca)?;
        let now = self.clock.now();
        let cert = certs::sign_tls_cert(
            &signer.tls_cert,
            &signer.tls_key,
            &req.tls_public_key,
            &TlsCertParams {
                common_name: hosts[0].clone(),
                organization: self.cluster_name().to_string(),
                sans: hosts.clone(),
                identity_json: None,
                client: false,
                server: true,
                not_before: now - CLOCK_SKEW,
                not_after: now + ttl,
            },
        )?;
        Ok(shared::api::SignDbResponse { cert, cas: db_ca.tls_certs_pem() })
    }
}

pub use shared::api::DbClientCert;

impl AuthServer {
    /// A client certificate for database user `user` (PostgreSQL's `cert` authentication takes
    /// the common name as the role), signed by this cluster's `db` CA, ending at `not_after` at
    /// the latest (the user's own certificate's end) and within an hour.
    pub async fn sign_db_client(&self, user: &str, not_after: i64) -> Result<DbClientCert> {
        if user.is_empty() || user.len() > 63 || user.chars().any(|c| c.is_control()) {
            return Err(Error::bad_parameter(format!("{user:?} is not a database user name")));
        }
        let db_ca = self.own_ca(CaType::Db).await?;
        let signer = ca::signer(&db_ca)?;
        let now = self.clock.now();
        let end = time::OffsetDateTime::from_unix_timestamp(not_after)
            .map_err(|_| Error::bad_parameter("invalid certificate end"))?
            .min(now + Duration::from_secs(3600));
        if end <= now {
            return Err(Error::access_denied("the certificate has expired; run 'tsh db login' again"));
        }
        let key = certs::new_tls_key()?;
        let cert_pem = certs::sign_tls_cert(
            &signer.tls_cert,
            &signer.tls_key,
            &certs::spki_pem(&key),
            &TlsCertParams {
                common_name: user.to_string(),
                organization: self.cluster_name().to_string(),
                sans: vec![],
                identity_json: None,
                client: true,
                server: false,
                not_before: now - CLOCK_SKEW,
                not_after: end,
            },
        )?;
        Ok(DbClientCert { cert_pem, key_pem: key.serialize_pem(), cas: db_ca.tls_certs_pem(), not_after: end.unix_timestamp() })
    }
}

impl AuthServer {
    /// Stores a heartbeat of a database this cluster's `db_service` in process `host_id` serves.
    pub async fn upsert_db_server(&self, mut db: shared::resource::Db, host_id: &str) -> Result<()> {
        db.check_and_set_defaults()?;
        db.spec.host_id = host_id.to_string();
        let key = crate::services::keys::db(&db.metadata.name);
        self.upsert_served(&key, db, host_id, "database", "db_service.databases").await
    }

    /// Removes database `name` if the service in process `host_id` still holds it.
    pub async fn leave_db(&self, name: &str, host_id: &str) {
        let key = crate::services::keys::db(name);
        if let Ok(Some(v)) = self.services.get::<shared::resource::Db>(&key).await
            && v.value.spec.host_id == host_id
        {
            let _ = self.services.apply(vec![crate::storage::Op::DeleteIfExists { key }]).await;
        }
    }

    /// The databases `checker` may reach, each with the users and database names its roles
    /// allow there (`tsh db ls`: a leaf answers with the roles it maps a root's user to).
    pub async fn db_listing(&self, checker: &shared::rbac::AccessChecker) -> Result<Vec<shared::api::DbListing>> {
        Ok(self
            .visible_dbs(Some(checker))
            .await?
            .into_iter()
            .map(|db| {
                let users = checker.db_users(&db.metadata.labels);
                let names = checker.db_names(&db.metadata.labels);
                shared::api::DbListing { db, users, names }
            })
            .collect())
    }

    /// Every database `checker` may reach (`None`: all of them), by name: `db_labels` of its
    /// roles (mapped on a leaf).
    pub async fn visible_dbs(&self, checker: Option<&shared::rbac::AccessChecker>) -> Result<Vec<shared::resource::Db>> {
        let mut all: Vec<shared::resource::Db> = self.services.list(crate::services::keys::DBS).await?;
        if let Some(c) = checker {
            all.retain(|d| c.check_db(&d.metadata.labels).is_ok());
        }
        all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(all)
    }
}
