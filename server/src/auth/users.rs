//! Local users: creation with a one-time invite link, updates, password setting and checking.

use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::api::InviteResponse;
use shared::error::{Error, Result};
use shared::resource::User;
use shared::resource::user::{CreatedBy, CreatedByUser};

use super::{AuthServer, audit_codes};
use crate::services::keys;
use crate::storage::Op;

/// Invite and reset links are valid for one hour.
pub const INVITE_TTL: Duration = Duration::from_secs(3600);
/// Minimum password length.
pub const MIN_PASSWORD: usize = 8;
/// Maximum password length.
pub const MAX_PASSWORD: usize = 1024;

/// An invite or reset token record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserToken {
    /// `invite` or `reset`.
    kind: String,
    /// The user it is for.
    user: String,
}

/// Hashes a password with argon2id (on a blocking thread: it is deliberately slow).
pub async fn hash_password(password: &str) -> Result<String> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("hashing password: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("hashing password: {e}")))?
}

/// Checks a password against a stored hash. With no hash, still spends the same time and
/// answers false, so an unknown user and a wrong password cannot be told apart by timing.
pub async fn verify_password(password: &str, hash: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0w2CmEs6Xz0eWaGJ6jHXH+bN+pXqLcYSeRTf2OSX+f4";
    let pw = password.to_string();
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.to_string());
    let ok = tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(h) => argon2::Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false);
    ok && known
}

fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(Error::bad_parameter(format!("password must be at least {MIN_PASSWORD} characters long")));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Error::bad_parameter(format!("password must be at most {MAX_PASSWORD} bytes long")));
    }
    Ok(())
}

impl AuthServer {
    async fn check_roles_exist(&self, roles: &[String]) -> Result<()> {
        if roles.is_empty() {
            return Err(Error::bad_parameter("a user needs at least one role, for example --roles=access"));
        }
        for r in roles {
            self.services.role(r).await?;
        }
        Ok(())
    }

    async fn new_user_token(&self, kind: &str, user: &str) -> Result<(String, Op)> {
        let token = shared::certs::random_hex(16);
        let expires = (self.clock.now() + INVITE_TTL).unix_timestamp();
        let rec = UserToken { kind: kind.into(), user: user.into() };
        let value = crate::services::encode(&rec)?;
        Ok((token.clone(), Op::Create { key: format!("{}{token}", keys::USER_TOKENS), value, expires: Some(expires) }))
    }

    fn link(&self, kind: &str, token: &str) -> String {
        let page = if kind == "reset" { "reset" } else { "invite" };
        format!("https://{}/web/{page}/{token}", self.settings.public_addr)
    }

    /// `tctl users add`: creates the user and a one-time invite link.
    pub async fn add_user(&self, name: &str, roles: Vec<String>, logins: Vec<String>, actor: &str) -> Result<InviteResponse> {
        let mut user = User::new(name, roles, logins);
        user.spec.created_by = Some(CreatedBy { time: self.clock.now(), user: CreatedByUser { name: actor.into() } });
        user.check_and_set_defaults()?;
        self.check_roles_exist(&user.spec.roles).await?;
        let (token, token_op) = self.new_user_token("invite", name).await?;
        let key = format!("{}{name}", keys::USERS);
        self.services.apply(vec![self.services.create_op(&key, &user)?, token_op]).await.map_err(|e| {
            if e.is(shared::Kind::AlreadyExists) { Error::already_exists(format!("user {name:?} already exists")) } else { e }
        })?;
        self.audit.emit(audit_codes::USER_CREATE, json!({"name": name, "user": actor, "roles": user.spec.roles})).await;
        Ok(InviteResponse { name: name.into(), url: self.link("invite", &token), ttl_seconds: INVITE_TTL.as_secs() })
    }

    /// Creates or replaces a user from a resource (`tctl create user.yaml`).
    pub async fn upsert_user(&self, mut user: User, force: bool, expected: Option<i64>, actor: &str) -> Result<bool> {
        user.check_and_set_defaults()?;
        self.check_roles_exist(&user.spec.roles).await?;
        let key = format!("{}{}", keys::USERS, user.metadata.name);
        let existing = self.services.get::<User>(&key).await?;
        if user.spec.created_by.is_none() {
            user.spec.created_by = existing.as_ref().and_then(|e| e.value.spec.created_by.clone());
        }
        let op = match (&existing, expected) {
            (_, Some(rev)) => self.services.cas_op(&key, &user, rev)?,
            (Some(_), None) if !force => {
                return Err(Error::already_exists(format!("user {:?} already exists", user.metadata.name)));
            }
            _ => self.services.put_op(&key, &user)?,
        };
        self.services.apply(vec![op]).await.map_err(edit_conflict)?;
        let code = if existing.is_some() { audit_codes::USER_UPDATE } else { audit_codes::USER_CREATE };
        self.audit.emit(code, json!({"name": user.metadata.name, "user": actor, "roles": user.spec.roles})).await;
        Ok(existing.is_none())
    }

    /// `tctl users update`.
    pub async fn update_user(
        &self,
        name: &str,
        set_roles: Option<Vec<String>>,
        set_logins: Option<Vec<String>>,
        actor: &str,
    ) -> Result<()> {
        if set_roles.is_none() && set_logins.is_none() {
            return Err(Error::bad_parameter("nothing to update: use --set-roles or --set-logins"));
        }
        for attempt in 0..5 {
            let current = self.services.user(name).await?;
            let mut user = current.value.clone();
            if let Some(r) = &set_roles {
                user.spec.roles = r.clone();
            }
            if let Some(l) = &set_logins {
                if l.is_empty() {
                    user.spec.traits.remove("logins");
                } else {
                    user.spec.traits.insert("logins".into(), l.clone());
                }
            }
            user.check_and_set_defaults()?;
            self.check_roles_exist(&user.spec.roles).await?;
            let key = format!("{}{name}", keys::USERS);
            match self.services.apply(vec![self.services.cas_op(&key, &user, current.revision)?]).await {
                Ok(_) => {
                    self.audit.emit(audit_codes::USER_UPDATE, json!({"name": name, "user": actor, "roles": user.spec.roles})).await;
                    return Ok(());
                }
                Err(e) if e.is(shared::Kind::CompareFailed) && attempt < 4 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::compare_failed(format!("user {name:?} is being changed by someone else, try again")))
    }

    /// `tctl users rm`.
    ///
    /// Deleting a user also locks the certificates issued to them so far, until the last of them
    /// expires (Teleport leaves them valid); the lock is returned so the caller can say so.
    pub async fn delete_user(&self, name: &str, actor: &str) -> Result<shared::resource::Lock> {
        self.services.user(name).await?;
        let (lock_op, lock) = self.deleted_user_lock(name, actor).await?;
        self.services
            .apply(vec![
                Op::Delete { key: format!("{}{name}", keys::USERS) },
                Op::DeleteIfExists { key: format!("{}{name}", keys::PASSWORDS) },
                lock_op,
            ])
            .await?;
        self.audit.emit(audit_codes::USER_DELETE, json!({"name": name, "user": actor, "lock": lock.metadata.name})).await;
        Ok(lock)
    }

    /// `tctl users reset`: removes the password and issues a reset link.
    pub async fn reset_user(&self, name: &str) -> Result<InviteResponse> {
        self.services.user(name).await?;
        let (token, op) = self.new_user_token("reset", name).await?;
        self.services.apply(vec![op, Op::DeleteIfExists { key: format!("{}{name}", keys::PASSWORDS) }]).await?;
        Ok(InviteResponse { name: name.into(), url: self.link("reset", &token), ttl_seconds: INVITE_TTL.as_secs() })
    }

    /// Sets a password with an invite or reset token; the token is consumed.
    pub async fn set_password_with_token(&self, token: &str, password: &str) -> Result<String> {
        let gone = || Error::not_found("this invite or reset link has expired or was already used; ask an administrator for a new one");
        if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(gone());
        }
        check_password(password)?;
        let key = format!("{}{token}", keys::USER_TOKENS);
        let item = self.services.backend.get(&key).await?.ok_or_else(gone)?;
        let rec: UserToken = serde_json::from_slice(&item.value).map_err(|_| gone())?;
        let hash = hash_password(password).await?;
        // Consuming the token and storing the password is one transaction: a token works once.
        self.services
            .apply(vec![
                Op::CompareAndSwap { key: key.clone(), value: item.value.clone(), expires: item.expires, expected: item.revision },
                Op::Delete { key },
                Op::Exists { key: format!("{}{}", keys::USERS, rec.user) },
                Op::Put { key: format!("{}{}", keys::PASSWORDS, rec.user), value: hash.into_bytes(), expires: None },
            ])
            .await
            .map_err(|e| if e.is(shared::Kind::CompareFailed) || e.is(shared::Kind::NotFound) { gone() } else { e })?;
        self.audit.emit(audit_codes::USER_PASSWORD, json!({"user": rec.user})).await;
        Ok(rec.user)
    }
}

/// Turns a compare-and-swap failure into the message `tctl edit` users see.
pub fn edit_conflict(e: Error) -> Error {
    if e.is(shared::Kind::CompareFailed) {
        Error::compare_failed(
            "the resource was changed by someone else while you were editing it; run the command again to edit the current version",
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").await.unwrap();
        assert!(verify_password("correct horse", Some(h.clone())).await);
        assert!(!verify_password("wrong horse!", Some(h)).await);
        assert!(!verify_password("correct horse", None).await);
        assert!(check_password("short").is_err());
        assert!(check_password("longenough").is_ok());
    }
}
