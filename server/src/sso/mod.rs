//! SSO logins (OIDC, GitHub, SAML) in Teleport's console flow (`shared::sso` has the wire format).
//!
//! ```text
//! console request ─▶ [validate tsh's loopback callback] ─▶ request record ssorequests/<id> (10 min)
//!                 ◀─ the identity provider's URL (state = id; nonce, PKCE verifier stay here)
//! callback (any process of the cluster) ─▶ take the record (once) ─▶ the connector checks the answer
//!   ─▶ ExternalIdentity {username, traits} ─▶ roles from the connector's mappings
//!   ─▶ dynamic user (created_by.connector, expires with the certificate) ─▶ certificates
//!   ─▶ 302 to tsh with the response sealed under its key, or with err=<why>
//! ```
//! The record is taken with a compare-and-swap delete: a callback replayed, raced or arriving
//! after ten minutes finds nothing. Every failure is audited (`user.login`, `success: false`,
//! the connector) and ends the login with one message; no secret (client secret, code, tokens,
//! the response key) is logged.

pub mod github;
pub mod http;
pub mod oidc;
pub mod saml;
pub mod xmldsig;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::api::PublicKeys;
use shared::error::{Error, Result};
use shared::resource::user::{ConnectorRef, CreatedBy, CreatedByUser};
use shared::resource::{Connector, User};
use shared::sso::{ConsoleRequest, SshLoginResponse};
use shared::template::Traits;

use crate::audit::{MAX_UNTRUSTED, clip};
use crate::auth::{AuthServer, DEFAULT_USER_TTL, audit_codes};
use crate::services::{encode, keys};
use crate::storage::Op;

/// How long a login may take from the console request to the callback.
pub const REQUEST_TTL: Duration = Duration::from_secs(600);

/// A login in progress, kept in the shared state so that the callback may reach any process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsoRequest {
    /// The id (OIDC/GitHub `state`, SAML `InResponseTo`).
    pub id: String,
    /// `oidc`, `github` or `saml`.
    pub kind: String,
    /// The connector's name.
    pub connector: String,
    /// tsh's callback, with its response key.
    pub client_redirect_url: String,
    /// The keys to certify.
    pub keys: PublicKeys,
    /// Requested certificate lifetime (seconds).
    pub ttl_seconds: u64,
    /// `tsh login <leaf>`.
    #[serde(default)]
    pub route_to_cluster: Option<String>,
    /// OIDC nonce.
    #[serde(default)]
    pub nonce: Option<String>,
    /// OIDC PKCE verifier.
    #[serde(default)]
    pub pkce_verifier: Option<String>,
    /// The redirect URL sent to the provider (the code exchange must repeat it).
    #[serde(default)]
    pub redirect_uri: String,
    /// A sign-in to the web UI (instead of tsh's console flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebLogin>,
}

/// A web UI sign-in in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebLogin {
    /// SHA-256 (hex) of the binding cookie the browser got when it started: the callback must
    /// come from that browser (no login CSRF: nobody can finish their login in your browser).
    pub binding: String,
    /// The page to land on.
    pub next: String,
}

/// The cookie that binds a web sign-in to the browser that started it (sent on the
/// provider's cross-site POST too, hence `SameSite=None`).
pub const BINDING_COOKIE: &str = "__Host-sso_binding";

/// SHA-256 hex of a binding cookie value.
pub fn binding_hash(value: &str) -> String {
    shared::certs::sha256_hex(value.as_bytes())
}

/// Who the identity provider says the user is.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalIdentity {
    /// The Teleport user name.
    pub username: String,
    /// Claims (OIDC), teams and login (GitHub) or attributes (SAML), as traits.
    pub traits: Traits,
    /// Roles the connector's mappings grant.
    pub roles: Vec<String>,
}

/// What the callback does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send the browser here (tsh's callback, with the sealed response or `err=`).
    Redirect(String),
    /// No login to return to (unknown, used or expired request): show this.
    Page(String),
    /// A web UI sign-in: set this cookie and go to this page.
    Web {
        /// `Set-Cookie` of the new web session.
        cookie: String,
        /// Where to go.
        location: String,
    },
}

fn sso_key(id: &str) -> String {
    keys::sso_request(id)
}

/// The request id of a new login (32 hex characters, as Teleport's).
pub fn new_request_id() -> String {
    shared::certs::random_hex(16)
}

/// The redirect URL of a connector for a console request that came to `host`: the one on that
/// host (and port), else the first (Teleport's `GetRedirectURL`).
pub fn pick_redirect_url(urls: &[String], host: &str) -> Option<String> {
    let want = host.to_ascii_lowercase();
    let host_of =
        |u: &str| shared::sso::parse_url(u).ok().map(|p| if p.port.is_empty() { p.host } else { format!("{}:{}", p.host, p.port) });
    urls.iter()
        .find(|u| host_of(u).as_deref() == Some(want.as_str()))
        .or_else(|| {
            urls.iter()
                .find(|u| host_of(u).map(|h| h.split(':').next().map(str::to_string)) == Some(want.split(':').next().map(str::to_string)))
        })
        .or_else(|| urls.first())
        .cloned()
}

impl AuthServer {
    /// The connector `kind/name`.
    pub async fn connector(&self, kind: &str, name: &str) -> Result<Connector> {
        self.services
            .get::<Connector>(&keys::connector(kind, name))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| Error::not_found(format!("{kind} connector {name:?} is not found")))
    }

    /// A console login: checks tsh's request and returns the identity provider's login URL.
    pub async fn sso_console_login(&self, kind: &str, req: &ConsoleRequest, host: &str) -> Result<String> {
        shared::sso::validate_client_redirect(&req.redirect_url)?;
        let connector = self.connector(kind, &req.connector_id).await?;
        let ssh = if req.ssh_pub_key.is_empty() { &req.public_key } else { &req.ssh_pub_key };
        let ssh = shared::sso::b64_decode(ssh).map_err(|e| e.context("ssh_pub_key"))?;
        shared::certs::parse_authorized_key(ssh.as_bytes()).map_err(|e| e.context("ssh_pub_key"))?;
        if req.tls_pub_key.is_empty() {
            return Err(Error::bad_parameter("tls_pub_key is required"));
        }
        let tls = shared::sso::b64_decode(&req.tls_pub_key).map_err(|e| e.context("tls_pub_key"))?;
        if !tls.contains("PUBLIC KEY") {
            return Err(Error::bad_parameter("tls_pub_key must be a PEM public key"));
        }
        let ttl_seconds =
            if req.cert_ttl <= 0 { DEFAULT_USER_TTL.as_secs() } else { u64::try_from(req.cert_ttl / 1_000_000_000).unwrap_or(0).max(60) };
        let record = SsoRequest {
            id: new_request_id(),
            kind: kind.into(),
            connector: connector.metadata.name.clone(),
            client_redirect_url: req.redirect_url.clone(),
            keys: PublicKeys { ssh_public_key: ssh.trim().to_string(), tls_public_key: tls },
            ttl_seconds,
            route_to_cluster: Some(req.route_to_cluster.clone()).filter(|r| !r.is_empty()),
            nonce: None,
            pkce_verifier: None,
            redirect_uri: String::new(),
            web: None,
        };
        self.start_sso(kind, &connector, record, host).await
    }

    /// A web UI sign-in: the provider's URL and the binding cookie's value for the browser.
    pub async fn sso_web_login(&self, kind: &str, connector_id: &str, next: &str, host: &str) -> Result<(String, String)> {
        let connector = self.connector(kind, connector_id).await?;
        let binding = shared::certs::random_hex(32);
        let record = SsoRequest {
            id: new_request_id(),
            kind: kind.into(),
            connector: connector.metadata.name.clone(),
            client_redirect_url: String::new(),
            keys: PublicKeys { ssh_public_key: String::new(), tls_public_key: String::new() },
            ttl_seconds: DEFAULT_USER_TTL.as_secs(),
            route_to_cluster: None,
            nonce: None,
            pkce_verifier: None,
            redirect_uri: String::new(),
            web: Some(WebLogin { binding: binding_hash(&binding), next: next.to_string() }),
        };
        Ok((self.start_sso(kind, &connector, record, host).await?, binding))
    }

    async fn start_sso(&self, kind: &str, connector: &Connector, mut record: SsoRequest, host: &str) -> Result<String> {
        let url = match kind {
            "oidc" => oidc::login_url(&connector.oidc()?, &mut record, host).await?,
            "github" => github::login_url(&connector.github()?, &mut record)?,
            _ => saml::login_url(&connector.saml()?, &mut record, self.clock.now()).await?,
        };
        let expires = (self.clock.now() + REQUEST_TTL).unix_timestamp();
        self.services.apply(vec![Op::Create { key: sso_key(&record.id), value: encode(&record)?, expires: Some(expires) }]).await?;
        tracing::info!(connector = %record.connector, kind, web = record.web.is_some(), "SSO login started");
        Ok(url)
    }

    /// Takes a login in progress (once).
    pub async fn take_sso_request(&self, id: &str) -> Result<SsoRequest> {
        let gone = || Error::access_denied("this login request expired, was already used or is unknown; run tsh login again");
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(gone());
        }
        let key = sso_key(id);
        let item = self.services.backend.get(&key).await?.ok_or_else(gone)?;
        let rec: SsoRequest = serde_json::from_slice(&item.value).map_err(|_| gone())?;
        self.services
            .apply(vec![
                Op::CompareAndSwap { key: key.clone(), value: item.value.clone(), expires: item.expires, expected: item.revision },
                Op::Delete { key },
            ])
            .await
            .map_err(|e| if e.is(shared::Kind::CompareFailed) || e.is(shared::Kind::NotFound) { gone() } else { e })?;
        Ok(rec)
    }

    /// Finishes a login the identity provider vouched for: the user, the certificates, the
    /// response for tsh.
    pub async fn finish_sso_login(&self, req: &SsoRequest, id: ExternalIdentity) -> Result<shared::api::CertsResponse> {
        if id.roles.is_empty() {
            // Say what the provider sent, so the admin can compare it with the mappings.
            let mut seen: Vec<String> = id.traits.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            seen.sort();
            let mut seen = seen.join(" ");
            if seen.len() > 400 {
                seen = format!("{}...", seen.chars().take(400).collect::<String>());
            }
            return Err(Error::access_denied(format!(
                "unable to map claims to roles for connector {:?}: the identity provider's answer for {:?} matches no mapping (it sent {seen})",
                req.connector, id.username
            )));
        }
        shared::names::check_name("user name", &id.username).map_err(|e| e.context("the identity provider's user name"))?;
        if let Some(existing) = self.services.get::<User>(&keys::user(&id.username)).await? {
            let sso = existing.value.spec.created_by.as_ref().is_some_and(|c| c.connector.is_some());
            if !sso {
                let what = match req.kind.as_str() {
                    "saml" => "NameID in SAML identity",
                    "github" => "the user name in GitHub",
                    _ => "email in OIDC identity",
                };
                return Err(Error::already_exists(format!(
                    "local user with name {:?} already exists. Either change {what} or remove local user and try again.",
                    id.username
                )));
            }
        }
        let now = self.clock.now();
        let mut user = User::new(&id.username, id.roles.clone(), vec![]);
        user.spec.traits = id.traits.clone();
        user.spec.created_by = Some(CreatedBy {
            time: now,
            user: CreatedByUser { name: "system".into() },
            connector: Some(ConnectorRef { kind: req.kind.clone(), id: req.connector.clone(), identity: id.username.clone() }),
        });
        let identities = json!([{"connector_id": req.connector, "username": id.username}]);
        match req.kind.as_str() {
            "oidc" => user.spec.oidc_identities = Some(identities),
            "github" => user.spec.github_identities = Some(identities),
            _ => user.spec.saml_identities = Some(identities),
        }
        // The certificate's lifetime, capped by the roles; the user lives as long.
        let checker = self.checker_for_user(&user).await?;
        let ttl = Duration::from_secs(req.ttl_seconds).min(checker.max_session_ttl()).max(Duration::from_secs(60));
        user.metadata.expires = Some(now + ttl);
        user.check_and_set_defaults()?;
        self.services.apply(vec![self.services.put_op(&keys::user(&id.username), &user)?]).await?;
        let certs = self.user_certs(&user, &req.keys, ttl, req.route_to_cluster.clone()).await?;
        self.audit
            .emit(
                audit_codes::USER_LOGIN,
                json!({"user": id.username, "method": req.kind, "success": true, "connector": req.connector, "roles": id.roles}),
            )
            .await;
        Ok(certs)
    }

    /// Audits a failed SSO login.
    pub async fn sso_failed(&self, kind: &str, connector: &str, why: &str) {
        // Each of these may come from the URL or the form of an unauthenticated caller.
        let (kind, connector, why) = (clip(kind, MAX_UNTRUSTED), clip(connector, MAX_UNTRUSTED), clip(why, 4 * MAX_UNTRUSTED));
        tracing::warn!(kind, connector, error = %why, "SSO login failed");
        self.audit
            .emit(audit_codes::USER_LOGIN_FAILED, json!({"method": kind, "success": false, "connector": connector, "error": why}))
            .await;
    }

    /// Ends a callback: the response sealed for tsh, or the error for it; with no request to
    /// return to, the page's message.
    pub async fn sso_outcome(&self, req: Option<&SsoRequest>, result: Result<ExternalIdentity>) -> Outcome {
        let Some(req) = req else {
            let msg = match result {
                Err(e) => e.message,
                Ok(_) => "this login request is unknown".into(),
            };
            return Outcome::Page(msg);
        };
        if let Some(web) = &req.web {
            return self.sso_web_outcome(req, web, result).await;
        }
        let finished = match result {
            Ok(id) => self.finish_sso_login(req, id).await.map(|c| SshLoginResponse::from_certs(&c)),
            Err(e) => Err(e),
        };
        let sealed = finished.and_then(|resp| {
            let key = shared::sso::validate_client_redirect(&req.client_redirect_url)?;
            let json = serde_json::to_vec(&resp).map_err(|e| Error::internal(format!("encoding: {e}")))?;
            shared::sso::success_redirect(&req.client_redirect_url, &shared::sso::seal(&key, &json)?)
        });
        match sealed {
            Ok(url) => Outcome::Redirect(url),
            Err(e) => {
                self.sso_failed(&req.kind, &req.connector, &e.message).await;
                Outcome::Redirect(shared::sso::error_redirect(&req.client_redirect_url, &e.message))
            }
        }
    }
}

impl AuthServer {
    async fn sso_web_outcome(&self, req: &SsoRequest, web: &WebLogin, result: Result<ExternalIdentity>) -> Outcome {
        let signed_in = async {
            let id = result?;
            let (ssh, tls, keys) = shared::certs::new_key_pair()?;
            let mut with_keys = req.clone();
            with_keys.keys = keys;
            let certs = self.finish_sso_login(&with_keys, id).await?;
            crate::auth::websession::create(self, certs, &ssh, &tls).await
        }
        .await;
        match signed_in {
            Ok(sess) => {
                let now = self.clock.now().unix_timestamp();
                let location = if web.next.is_empty() {
                    format!("/web/cluster/{}/nodes", shared::client::encode_segment(self.cluster_name()))
                } else {
                    web.next.clone()
                };
                Outcome::Web { cookie: sess.cookie(now), location }
            }
            Err(e) => {
                self.sso_failed(&req.kind, &req.connector, &e.message).await;
                Outcome::Page(e.message)
            }
        }
    }
}

/// Maps traits to roles with a connector's mappings, logging what matched only by case.
pub fn map_roles(mappings: &[shared::resource::connector::ClaimMapping], traits: &Traits) -> Result<Vec<String>> {
    let maps: Vec<shared::rolemap::TraitMapping> = mappings
        .iter()
        .map(|m| shared::rolemap::TraitMapping { name: m.claim.clone(), value: m.value.clone(), roles: m.roles.clone() })
        .collect();
    let (roles, warnings) = shared::rolemap::traits_to_roles(&maps, traits)?;
    for w in warnings {
        tracing::warn!("SSO mapping: {w}");
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_url_on_the_requests_host_wins() {
        let urls =
            vec!["https://a.example.com/v1/webapi/oidc/callback".to_string(), "https://b.example.com:3080/v1/webapi/oidc/callback".into()];
        assert_eq!(pick_redirect_url(&urls, "b.example.com:3080").as_deref(), Some(urls[1].as_str()));
        assert_eq!(pick_redirect_url(&urls, "b.example.com:443").as_deref(), Some(urls[1].as_str()), "same host");
        assert_eq!(pick_redirect_url(&urls, "c.example.com").as_deref(), Some(urls[0].as_str()), "else the first");
        assert_eq!(pick_redirect_url(&[], "x"), None);
    }
}
