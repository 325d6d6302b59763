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

impl AuthServer {
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
