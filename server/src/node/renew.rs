//! A node's host credentials through its cluster's host CA rotation: it trusts what the CA
//! trusts (so the auth service may present a certificate of the new key), and moves to
//! certificates of the new key when the rotation says servers should
//! ([`crate::ssh::needs_renewal`]). Driven by the authorization bundle, which carries the CA.

use shared::api::RenewHostRequest;
use shared::error::Result;
use shared::resource::CertAuthority;

use super::NodeService;
use crate::ssh::HostCreds;

impl NodeService {
    /// Brings the node's credentials in line with `ca`, its cluster's host CA now.
    pub(super) async fn follow_host_ca(&self, ca: &CertAuthority) {
        let cur = self.creds.current();
        let trusted = vec![crate::auth::AuthServer::trusted_ca(ca)];
        let next = if crate::ssh::needs_renewal(ca, &cur.cert) {
            match self.renew(&cur).await {
                Ok(c) => {
                    tracing::info!("renewed the node's host certificates under the rotated host CA");
                    c
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the node's host certificates; retrying");
                    return;
                }
            }
        } else if cur.host_cas != trusted {
            HostCreds { host_cas: trusted, ..(*cur).clone() }
        } else {
            return;
        };
        if let Err(e) = self.access.use_creds(&next) {
            tracing::warn!(error = %e, "cannot use the node's new host credentials; retrying");
            return;
        }
        self.creds.replace(next);
    }

    async fn renew(&self, cur: &HostCreds) -> Result<HostCreds> {
        let (ssh, tls, keys) = HostCreds::new_keys()?;
        let issued = self.access.renew_host(RenewHostRequest { ssh_cert: shared::certs::ssh_cert_line(&cur.cert), keys }).await?;
        HostCreds::from_issued(&cur.host_id, ssh, &tls, &issued)
    }
}
