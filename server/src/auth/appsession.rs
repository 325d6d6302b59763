//! App sessions (reference `kube-app-db.md` §3.2): a certificate for one app of this cluster or
//! of a leaf, issued by this cluster's user CA to one of its users, with the app's route in it,
//! and a record (`appsessions/<sha256 of the id>`) that says the session still lives. A
//! browser's session also has a second secret (the subject, stored hashed) and belongs to the
//! web session that made it: it never outlives it, and signing out ends it. `tsh apps login`
//! holds the certificate itself; `tsh apps logout` ends the record and with it the certificate.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::api::{AppSession, CreateAppSessionRequest};
use shared::certs::{self, CLOCK_SKEW, TlsCertParams};
use shared::error::{Error, Result};
use shared::identity::{CertIdentity, RouteToApp, UserIdentity};
use shared::resource::{CaType, User};

use super::{AuthServer, ca};
use crate::services::{encode, keys};
use crate::storage::Op;

/// What the cluster keeps of an app session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAppSession {
    /// The user.
    pub user: String,
    /// The app's route (the certificate's).
    pub route: RouteToApp,
    /// Where browsers reach it here.
    pub fqdn: String,
    /// sha256 of the subject (empty: a `tsh` session, which has none).
    #[serde(default)]
    pub subject_hash: String,
    /// sha256 of the web session's id it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_session: Option<String>,
    /// The certificate (PEM).
    pub tls_cert: String,
    /// Unix seconds.
    pub expires: i64,
}

impl StoredAppSession {
    /// Whether `subject` is this session's (constant time).
    pub fn subject_matches(&self, subject: &str) -> bool {
        use subtle::ConstantTimeEq;
        !self.subject_hash.is_empty()
            && !subject.is_empty()
            && bool::from(certs::sha256_hex(subject.as_bytes()).as_bytes().ct_eq(self.subject_hash.as_bytes()))
    }
}

fn key(id: &str) -> String {
    keys::app_session(&certs::sha256_hex(id.as_bytes()))
}

/// Whether `id` looks like a session id (64 hex characters); nothing else is looked up.
pub fn valid_id(id: &str) -> bool {
    super::websession::valid_id(id)
}

impl AuthServer {
    /// Creates an app session for `user` (whose certificate ends at `not_after`, Unix seconds,
    /// and carries the approved access `requests`, whose roles the session's certificate carries
    /// too). A leaf's app is not looked up here: the leaf alone knows its apps and decides who
    /// reaches them; this cluster only says who the user is and that they may see the leaf.
    pub async fn create_app_session(
        &self,
        user: &User,
        req: CreateAppSessionRequest,
        not_after: i64,
        requests: &[String],
    ) -> Result<AppSession> {
        let (extra, until) =
            if requests.is_empty() { (Vec::new(), None) } else { self.usable_requests(&user.metadata.name, requests).await? };
        let mut user = user.clone();
        for r in extra {
            if !user.spec.roles.contains(&r) {
                user.spec.roles.push(r);
            }
        }
        let user = &user;
        let not_after = until.map_or(not_after, |u| not_after.min(u.unix_timestamp()));
        self.check_issuance_locks(&user.metadata.name, &user.spec.roles).await?;
        shared::names::check_name("app name", &req.name)?;
        if req.public_addr.len() > 253 || req.fqdn.len() > 253 {
            return Err(Error::bad_parameter("the app's address is too long"));
        }
        let checker = self.checker_for_user(user).await?;
        let local = self.cluster_name().to_string();
        let cluster = if req.cluster_name.is_empty() { local.clone() } else { req.cluster_name.clone() };
        let not_found = || Error::not_found(format!("app {:?} not found", req.name));
        let public_addr = if cluster == local {
            let app = self.visible_apps(Some(&checker)).await?.into_iter().find(|a| a.metadata.name == req.name).ok_or_else(not_found)?;
            if !app.spec.public_addr.is_empty() { app.spec.public_addr } else { req.public_addr.clone() }
        } else {
            let visible = match self.services.remote_cluster(&cluster).await? {
                Some(rc) => checker.check_cluster(&rc.value.metadata.labels).is_ok(),
                None => false,
            };
            if !visible {
                return Err(Error::not_found(format!("remote cluster {cluster:?} not found")).with_code(shared::Code::ClusterNotFound));
            }
            req.public_addr.clone()
        };
        let now = self.clock.now();
        let mut expires = not_after.min((now + checker.max_session_ttl()).unix_timestamp());
        let web_session = match &req.web_session {
            Some(id) => {
                let ws = super::websession::load(self, id)
                    .await?
                    .filter(|w| w.user == user.metadata.name)
                    .ok_or_else(|| Error::access_denied("the web session expired or was signed out; sign in again"))?;
                expires = expires.min(ws.expires);
                Some(certs::sha256_hex(id.as_bytes()))
            }
            None => None,
        };
        if expires <= now.unix_timestamp() {
            return Err(Error::access_denied("your certificate has expired; run 'tsh login' again"));
        }
        let session_id = certs::random_hex(32);
        let subject = if web_session.is_some() { certs::random_hex(32) } else { String::new() };
        let route = RouteToApp { session_id: session_id.clone(), name: req.name.clone(), public_addr, cluster_name: cluster.clone() };
        let id = UserIdentity {
            username: user.metadata.name.clone(),
            roles: user.spec.roles.clone(),
            traits: user.spec.traits.clone(),
            logins: super::cert_logins(&checker),
            route_to_cluster: (cluster != local).then(|| cluster.clone()),
            kubernetes_users: checker.kubernetes_users(None),
            kubernetes_groups: checker.kubernetes_groups(None),
            route_to_app: Some(route.clone()),
            active_requests: requests.to_vec(),
            ..Default::default()
        };
        let spki = if req.tls_public_key.is_empty() {
            // A browser's session: the proxy presents the certificate on the browser's behalf
            // and never needs its key.
            certs::spki_pem(&certs::new_tls_key()?)
        } else {
            req.tls_public_key.clone()
        };
        let user_ca = ca::signer(&self.own_ca(CaType::User).await?)?;
        let tls_cert = certs::sign_tls_cert(
            &user_ca.tls_cert,
            &user_ca.tls_key,
            &spki,
            &TlsCertParams {
                common_name: id.username.clone(),
                organization: local.clone(),
                sans: vec![],
                identity_json: Some(CertIdentity::User(id).to_json()),
                client: true,
                server: false,
                not_before: now - CLOCK_SKEW,
                not_after: shared::timefmt::from_unix(expires),
            },
        )?;
        let stored = StoredAppSession {
            user: user.metadata.name.clone(),
            route: route.clone(),
            fqdn: req.fqdn.clone(),
            subject_hash: if subject.is_empty() { String::new() } else { certs::sha256_hex(subject.as_bytes()) },
            web_session,
            tls_cert: tls_cert.clone(),
            expires,
        };
        self.services.apply(vec![Op::Create { key: key(&session_id), value: encode(&stored)?, expires: Some(expires) }]).await?;
        let mut event = serde_json::Map::new();
        for (k, v) in [
            ("event", json!(crate::audit::codes::APP_SESSION_START.0)),
            ("code", json!(crate::audit::codes::APP_SESSION_START.1)),
            ("user", json!(user.metadata.name)),
            ("sid", json!(certs::sha256_hex(session_id.as_bytes())[..16])),
            ("app_name", json!(req.name)),
            ("app_public_addr", json!(route.public_addr)),
            ("app_cluster", json!(cluster)),
            ("roles", json!(user.spec.roles)),
            ("via", json!(if stored.web_session.is_some() { "web" } else { "tsh" })),
        ] {
            event.insert(k.into(), v);
        }
        self.audit.record(event).await;
        Ok(AppSession {
            session_id,
            subject,
            name: route.name,
            public_addr: route.public_addr,
            cluster_name: cluster,
            fqdn: req.fqdn,
            tls_cert,
            expires,
        })
    }

    /// The live app session `id`, if any.
    pub async fn app_session(&self, id: &str) -> Result<Option<StoredAppSession>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let Some(item) = self.services.backend.get(&key(id)).await? else { return Ok(None) };
        let Ok(s) = serde_json::from_slice::<StoredAppSession>(&item.value) else { return Ok(None) };
        Ok((s.expires > self.clock.now().unix_timestamp()).then_some(s))
    }

    /// Ends app session `id` of `user` (`tsh apps logout`, `/teleport-logout`).
    pub async fn delete_app_session(&self, id: &str, user: &str) -> Result<()> {
        match self.app_session(id).await? {
            Some(s) if s.user == user => {
                self.services.apply(vec![Op::DeleteIfExists { key: key(id) }]).await?;
                note_ended();
                Ok(())
            }
            _ => Err(Error::not_found("app session not found")),
        }
    }

    /// Ends every app session of the web session `web_id` (its sign-out).
    pub async fn delete_app_sessions_of(&self, web_id: &str) -> Result<()> {
        // Even with none stored: their web session is gone, so cached lookups must go too.
        note_ended();
        let hash = certs::sha256_hex(web_id.as_bytes());
        let items = self.services.backend.list(keys::APP_SESSIONS).await?;
        let mut ops = Vec::new();
        for item in items {
            if let Ok(s) = serde_json::from_slice::<StoredAppSession>(&item.value)
                && s.web_session.as_deref() == Some(hash.as_str())
            {
                ops.push(Op::DeleteIfExists { key: item.key.clone() });
            }
        }
        if !ops.is_empty() {
            self.services.apply(ops).await?;
        }
        Ok(())
    }
}

/// How long a proxy may believe a session lookup: a sign-out in another process of the cluster
/// reaches it within this; one in this process at once ([`ended`]).
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// Counts app sessions ended in this process: a proxy's cached lookups older than the count
/// it saw are looked up again.
static ENDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many app sessions this process ended so far.
pub fn ended() -> u64 {
    ENDED.load(std::sync::atomic::Ordering::Acquire)
}

fn note_ended() {
    ENDED.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}
