//! Web sessions: what a browser holds after signing in, kept in the cluster's state
//! (`websessions/<sha256 of the id>`), so any process of a highly available cluster serves them;
//! the id itself (the cookie's value) is stored nowhere, so a copy of the database or a backup
//! holds no session a browser could present. Each session holds a short-lived user certificate
//! minted at sign-in, with which the proxy acts on the user's behalf, so the web UI is authorized
//! exactly like `tsh`. The HTTP side (cookies, bearer and CSRF tokens) is `crate::web::session`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::api::CertsResponse;
use shared::error::{Error, Result};
use shared::profile::Credentials;

use super::AuthServer;
use crate::services::{encode, keys};
use crate::storage::Op;

/// Signed out after this long without a request (Teleport's web idle timeout).
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// How often `last_active` is written (a request at most this stale is not recorded).
const TOUCH: i64 = 60;

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSession {
    /// The cookie value (32 random bytes, hex); never stored, only its hash names the record.
    #[serde(skip)]
    pub id: String,
    /// Where the browser's request came from (this request's, never stored): the web UI reaches
    /// the proxy in the process on its behalf, with this address for audit and limits.
    #[serde(skip)]
    pub client: Option<std::net::SocketAddr>,
    /// The Teleport user.
    pub user: String,
    /// For JSON calls and the terminal (`Authorization: Bearer`).
    pub bearer: String,
    /// For page forms.
    pub csrf: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds: the certificate's end (the role's `max_session_ttl` caps it).
    pub expires: i64,
    /// Unix seconds of the last request.
    pub last_active: i64,
    /// The session's SSH private key (OpenSSH).
    pub ssh_key: String,
    /// The session's TLS private key (PEM).
    pub tls_key: String,
    /// Its certificates.
    pub certs: CertsResponse,
}

impl WebSession {
    /// The credentials to act as the user with.
    pub fn credentials(&self) -> Result<Credentials> {
        let ssh_key = russh::keys::ssh_key::PrivateKey::from_openssh(&self.ssh_key)
            .map_err(|e| Error::internal(format!("the web session's key does not parse: {e}")))?;
        Ok(Credentials {
            ssh_key,
            ssh_cert: shared::certs::parse_ssh_cert(&self.certs.ssh_cert)?,
            tls_key_pem: self.tls_key.clone(),
            tls_cert_pem: self.certs.tls_cert.clone(),
            host_cas: self.certs.host_cas.clone(),
        })
    }

    /// Whether `token` is this session's bearer token (constant time).
    pub fn bearer_matches(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !token.is_empty() && bool::from(self.bearer.as_bytes().ct_eq(token.as_bytes()))
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }

    /// Whether the session may still be used at `now`: not past its certificate's end, and not
    /// idle for longer than [`IDLE`].
    pub fn live(&self, now: i64) -> bool {
        now < self.expires && now - self.last_active <= IDLE.as_secs() as i64
    }
}

fn key(id: &str) -> String {
    keys::web_session(&shared::certs::sha256_hex(id.as_bytes()))
}

/// Whether `id` looks like a session id (64 hex characters); nothing else is looked up.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Signs `user` in with the certificates `certs` for the keys `ssh_key`/`tls_key`.
pub async fn create(
    auth: &AuthServer,
    certs: CertsResponse,
    ssh_key: &russh::keys::ssh_key::PrivateKey,
    tls_key: &rcgen::KeyPair,
) -> Result<WebSession> {
    let cert = shared::certs::parse_ssh_cert(&certs.ssh_cert)?;
    let now = auth.clock.now().unix_timestamp();
    let expires = i64::try_from(cert.valid_before()).unwrap_or(now).min(now + 30 * 3600);
    let ssh_key =
        ssh_key.to_openssh(russh::keys::ssh_key::LineEnding::LF).map_err(|e| Error::internal(format!("encoding a key: {e}")))?.to_string();
    let s = WebSession {
        id: shared::certs::random_hex(32),
        client: None,
        user: certs.username.clone(),
        bearer: shared::certs::random_hex(32),
        csrf: shared::certs::random_hex(32),
        created: now,
        expires,
        last_active: now,
        ssh_key,
        tls_key: tls_key.serialize_pem(),
        certs,
    };
    auth.services.apply(vec![Op::Create { key: key(&s.id), value: encode(&s)?, expires: Some(expires) }]).await?;
    Ok(s)
}

/// The live session `id`: not expired, not idle for longer than [`IDLE`]. Records activity.
pub async fn load(auth: &AuthServer, id: &str) -> Result<Option<WebSession>> {
    if !valid_id(id) {
        return Ok(None);
    }
    let mut s = load_key(auth, &key(id)).await?;
    if let Some(s) = s.as_mut() {
        s.id = id.to_string();
    }
    Ok(s)
}

/// Whether the session whose id hashes to `hash` is live (an app session's check of the web
/// session it belongs to); records activity, so using an app keeps the web session alive.
pub async fn live_by_hash(auth: &AuthServer, hash: &str) -> Result<bool> {
    Ok(load_key(auth, &keys::web_session(hash)).await?.is_some())
}

async fn load_key(auth: &AuthServer, key: &str) -> Result<Option<WebSession>> {
    let Some(item) = auth.services.backend.get(key).await? else { return Ok(None) };
    let Ok(mut s) = serde_json::from_slice::<WebSession>(&item.value) else { return Ok(None) };
    let now = auth.clock.now().unix_timestamp();
    if !s.live(now) {
        let _ = auth.services.apply(vec![Op::Delete { key: key.to_string() }]).await;
        return Ok(None);
    }
    if now - s.last_active >= TOUCH {
        s.last_active = now;
        // Another request may have touched it first; either write is as good.
        let _ = auth
            .services
            .apply(vec![Op::CompareAndSwap { key: key.to_string(), value: encode(&s)?, expires: Some(s.expires), expected: item.revision }])
            .await;
    }
    Ok(Some(s))
}

/// Whether session `id` still exists (the terminal's check for a sign-out elsewhere).
pub async fn exists(auth: &AuthServer, id: &str) -> bool {
    matches!(auth.services.backend.get(&key(id)).await, Ok(Some(_)))
}

/// Signs the session out.
pub async fn delete(auth: &AuthServer, s: &WebSession) -> Result<()> {
    if let Err(e) = auth.services.apply(vec![Op::Delete { key: key(&s.id) }]).await
        && !e.is(shared::Kind::NotFound)
    {
        return Err(e);
    }
    // Its app sessions end with it (each proxy also checks the web session on every request).
    if let Err(e) = auth.delete_app_sessions_of(&s.id).await {
        tracing::warn!(user = %s.user, error = %e, "cannot end the web session's app sessions; they fail their web session check");
    }
    tracing::info!(user = %s.user, "web session ended");
    Ok(())
}

/// Stores new host CAs in the session (a leaf trusted after the user signed in).
pub async fn save(auth: &AuthServer, s: &WebSession) -> Result<()> {
    auth.services.apply(vec![Op::Put { key: key(&s.id), value: encode(s)?, expires: Some(s.expires) }]).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: i64, expires: i64) -> WebSession {
        WebSession {
            id: "a".repeat(64),
            client: None,
            user: "alice".into(),
            bearer: "b".repeat(64),
            csrf: "c".repeat(64),
            created,
            expires,
            last_active: created,
            ssh_key: String::new(),
            tls_key: String::new(),
            certs: CertsResponse {
                username: "alice".into(),
                cluster_name: "c".into(),
                ssh_cert: String::new(),
                tls_cert: String::new(),
                host_cas: vec![],
            },
        }
    }

    #[test]
    fn sessions_end_when_idle_or_when_the_certificate_does() {
        let mut s = session(1000, 1000 + 12 * 3600);
        assert!(s.live(1000 + 599));
        assert!(s.live(1000 + 600), "ten minutes idle is still allowed");
        assert!(!s.live(1000 + 601), "idle for longer: signed out");
        s.last_active = 1000 + 11 * 3600;
        assert!(s.live(1000 + 11 * 3600 + 300));
        assert!(!s.live(1000 + 12 * 3600), "the certificate's end is the session's end, however active");
    }
}
