//! Join tokens: `trusted_cluster` invitations and `node` joins (reference §1.3).

use std::time::Duration;

use serde_json::json;
use shared::error::{Code, Error, Result};
use shared::resource::token::SystemRole;
use shared::resource::{LabelMap, ProvisionToken};

use super::{AuthServer, audit_codes};
use crate::services::keys;

/// Longest TTL we allow for a token.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(48 * 3600);

/// Masks a token for logs and messages: all but the last quarter hidden (`GetSafeName`).
pub fn mask(token: &str) -> String {
    let n = token.chars().count();
    if n < 16 {
        return "*".repeat(n);
    }
    let hidden = n * 3 / 4;
    format!("{}{}", "*".repeat(hidden), token.chars().skip(hidden).collect::<String>())
}

impl AuthServer {
    /// `tctl tokens add`.
    pub async fn add_token(
        &self,
        roles: &[SystemRole],
        ttl: Duration,
        value: Option<String>,
        labels: LabelMap,
        actor: &str,
    ) -> Result<ProvisionToken> {
        if roles.is_empty() {
            return Err(Error::bad_parameter("a token needs a type: --type=trusted_cluster or --type=node"));
        }
        if ttl.is_zero() {
            return Err(Error::bad_parameter("token TTL must be positive, such as --ttl=5m"));
        }
        if ttl > MAX_TOKEN_TTL {
            return Err(Error::bad_parameter(format!(
                "token TTL {} is longer than the maximum of 48h; use a shorter --ttl",
                shared::timefmt::go_duration(ttl)
            )));
        }
        let value = match value {
            Some(v) => {
                if v.len() < 16 || v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::bad_parameter(
                        "a token --value must be 16-256 printable characters without spaces; shorter values are too easy to guess",
                    ));
                }
                v
            }
            None => shared::certs::random_hex(16),
        };
        if self.settings.static_tokens.iter().any(|(_, t)| shared::certs::secret_eq(t, &value)) {
            return Err(Error::already_exists("a token with this value already exists"));
        }
        let mut token = ProvisionToken::new(&value, roles, Some(self.clock.now() + ttl));
        token.metadata.labels = labels;
        token.check_and_set_defaults()?;
        let key = keys::token(&value);
        self.services.apply(vec![self.services.create_op(&key, &token)?]).await.map_err(|e| {
            if e.is(shared::Kind::AlreadyExists) { Error::already_exists("a token with this value already exists") } else { e }
        })?;
        let code = if roles.contains(&SystemRole::TrustedCluster) {
            audit_codes::TRUSTED_CLUSTER_TOKEN_CREATE
        } else {
            audit_codes::JOIN_TOKEN_CREATE
        };
        self.audit
            .emit(code, json!({"user": actor, "roles": token.spec.roles, "name": mask(&value), "expires": token.metadata.expires.map(shared::timefmt::rfc3339)}))
            .await;
        Ok(token)
    }

    /// All live tokens, static ones included, sorted by expiry.
    pub async fn list_tokens(&self) -> Result<Vec<ProvisionToken>> {
        let mut out: Vec<ProvisionToken> = self.settings.static_tokens.iter().map(|(r, v)| ProvisionToken::new(v, &[*r], None)).collect();
        out.extend(self.services.list::<ProvisionToken>(keys::TOKENS).await?);
        out.sort_by_key(|t| t.metadata.expires.map(|e| e.unix_timestamp()).unwrap_or(i64::MAX));
        Ok(out)
    }

    /// `tctl tokens rm`.
    pub async fn delete_token(&self, value: &str) -> Result<()> {
        if self.settings.static_tokens.iter().any(|(_, t)| shared::certs::secret_eq(t, value)) {
            return Err(Error::bad_parameter(format!("token {} is statically configured and cannot be removed", mask(value))));
        }
        self.services
            .apply(vec![crate::storage::Op::Delete { key: keys::token(value) }])
            .await
            .map_err(|e| if e.is(shared::Kind::NotFound) { Error::not_found(format!("token {} is not found", mask(value))) } else { e })?;
        Ok(())
    }

    /// Finds a live token granting `role`. The error says precisely why, for the server's own
    /// log; callers give the caller something vaguer. Its code tells a token that does not grant
    /// the role ([`Code::RoleMismatch`]) from one that is wrong, expired or unreadable
    /// ([`Code::TokenRejected`]).
    pub async fn validate_token(&self, value: &str, role: SystemRole) -> Result<ProvisionToken> {
        let rejected = |why: String| Error::access_denied(why).with_code(Code::TokenRejected);
        let mismatch = || Error::access_denied("role does not match").with_code(Code::RoleMismatch);
        if value.is_empty() || value.len() > 256 {
            return Err(rejected("the token is empty or too long".into()));
        }
        // Every static token is compared, in constant time, so timing tells nothing about them.
        let matched =
            self.settings.static_tokens.iter().fold(None, |found, t| if shared::certs::secret_eq(&t.1, value) { Some(t) } else { found });
        if let Some((r, v)) = matched {
            if *r != role {
                return Err(mismatch());
            }
            return Ok(ProvisionToken::new(v, &[*r], None));
        }
        let key = keys::token(value);
        let token = match self.services.get::<ProvisionToken>(&key).await {
            Ok(Some(t)) => t.value,
            Ok(None) => return Err(rejected(format!("token {} is not found or has expired", mask(value)))),
            Err(e) => return Err(rejected(format!("reading token: {e}"))),
        };
        if !token.grants(role) {
            return Err(mismatch());
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_teleport() {
        assert_eq!(mask("short"), "*****");
        assert_eq!(mask("0123456789abcdef0123456789abcdef"), format!("{}89abcdef", "*".repeat(24)));
    }
}
