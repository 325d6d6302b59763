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
use crate::gate::Gate;
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
    /// The TOTP secret (base32) of the device the link registers, when a second factor is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    otp_secret: Option<String>,
}

/// `usertokenof/<user>`: the token the user holds now.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldToken {
    token: String,
}

/// Password hashing and checking (argon2id, on blocking threads: it is deliberately slow and
/// takes ~19 MiB a check) behind a [`Gate`]: at most half the cores' worth at once, a short queue,
/// and a quick "busy" beyond it, whoever asks and from however many addresses.
pub struct Passwords {
    gate: Gate,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords { gate: Gate::new("sign-ins", Gate::half_the_cores(), 64, Duration::from_secs(5)) }
    }
}

impl Passwords {
    /// Hashes a password.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let _pass = self.gate.enter().await?;
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
    /// Refused with "busy" (429) when the gate is full.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool> {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0w2CmEs6Xz0eWaGJ6jHXH+bN+pXqLcYSeRTf2OSX+f4";
        let _pass = self.gate.enter().await?;
        let pw = password.to_string();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY.to_string());
        let ok = tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
            Ok(h) => argon2::Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
            Err(_) => false,
        })
        .await
        .unwrap_or(false);
        Ok(ok && known)
    }
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

    /// A new invite or reset token for `user`, and the writes that make it the only one the user
    /// holds: an older link stops working the moment a newer one is issued.
    async fn new_user_token(&self, kind: &str, user: &str) -> Result<(String, Vec<Op>)> {
        let token = shared::certs::random_hex(16);
        let expires = (self.clock.now() + INVITE_TTL).unix_timestamp();
        let otp_secret =
            self.auth_preference().await?.second_factor().enabled().then(|| shared::totp::encode_secret(&shared::totp::new_secret()));
        let rec = UserToken { kind: kind.into(), user: user.into(), otp_secret };
        let value = crate::services::encode(&rec)?;
        let mut ops = vec![
            Op::Create { key: keys::user_token(&token), value, expires: Some(expires) },
            Op::Put {
                key: keys::user_token_of(user),
                value: crate::services::encode(&HeldToken { token: token.clone() })?,
                expires: Some(expires),
            },
        ];
        if let Some(old) = self.held_token(user).await? {
            ops.push(Op::DeleteIfExists { key: keys::user_token(&old) });
        }
        Ok((token, ops))
    }

    /// The invite or reset token `user` holds now.
    async fn held_token(&self, user: &str) -> Result<Option<String>> {
        let item = self.services.backend.get(&keys::user_token_of(user)).await?;
        Ok(item.and_then(|i| serde_json::from_slice::<HeldToken>(&i.value).ok()).map(|h| h.token))
    }

    fn link(&self, kind: &str, token: &str) -> String {
        let page = if kind == "reset" { "reset" } else { "invite" };
        format!("https://{}/web/{page}/{token}", self.settings.public_addr)
    }

    /// `tctl users add`: creates the user and a one-time invite link.
    pub async fn add_user(&self, name: &str, roles: Vec<String>, logins: Vec<String>, actor: &str) -> Result<InviteResponse> {
        let mut user = User::new(name, roles, logins);
        user.spec.created_by = Some(CreatedBy { time: self.clock.now(), user: CreatedByUser { name: actor.into() }, connector: None });
        user.check_and_set_defaults()?;
        self.check_roles_exist(&user.spec.roles).await?;
        let (token, token_ops) = self.new_user_token("invite", name).await?;
        let key = keys::user(name);
        let mut ops = vec![self.services.create_op(&key, &user)?];
        ops.extend(token_ops);
        self.services.apply(ops).await.map_err(|e| {
            if e.is(shared::Kind::AlreadyExists) { Error::already_exists(format!("user {name:?} already exists")) } else { e }
        })?;
        self.audit.emit(audit_codes::USER_CREATE, json!({"name": name, "user": actor, "roles": user.spec.roles})).await;
        Ok(InviteResponse { name: name.into(), url: self.link("invite", &token), ttl_seconds: INVITE_TTL.as_secs() })
    }

    /// Creates or replaces a user from a resource (`tctl create user.yaml`).
    pub async fn upsert_user(&self, mut user: User, force: bool, expected: Option<i64>, actor: &str) -> Result<bool> {
        user.check_and_set_defaults()?;
        self.check_roles_exist(&user.spec.roles).await?;
        let key = keys::user(&user.metadata.name);
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
        let conflict = format!("user {name:?} is being changed by someone else, try again");
        let user = crate::services::retry_cas(5, Error::compare_failed(conflict), || async {
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
            self.services.apply(vec![self.services.cas_op(&keys::user(name), &user, current.revision)?]).await?;
            Ok(user)
        })
        .await?;
        self.audit.emit(audit_codes::USER_UPDATE, json!({"name": name, "user": actor, "roles": user.spec.roles})).await;
        Ok(())
    }

    /// `tctl users rm`.
    ///
    /// Deleting a user also locks the certificates issued to them so far, until the last of them
    /// expires (Teleport leaves them valid); the lock is returned so the caller can say so.
    pub async fn delete_user(&self, name: &str, actor: &str) -> Result<shared::resource::Lock> {
        self.services.user(name).await?;
        let (lock_op, lock) = self.deleted_user_lock(name, actor).await?;
        let mut ops = vec![Op::Delete { key: keys::user(name) }, Op::DeleteIfExists { key: keys::password(name) }, lock_op];
        ops.push(self.clear_code_failures_op(name));
        // A link issued to this user must not set the password of a later user of the same name.
        if let Some(old) = self.held_token(name).await? {
            ops.extend([Op::DeleteIfExists { key: keys::user_token(&old) }, Op::DeleteIfExists { key: keys::user_token_of(name) }]);
        }
        ops.extend(self.delete_all_devices_ops(name).await?);
        self.services.apply(ops).await?;
        self.audit.emit(audit_codes::USER_DELETE, json!({"name": name, "user": actor, "lock": lock.metadata.name})).await;
        Ok(lock)
    }

    /// `tctl users reset`: removes the password and the second factors, and issues a reset link
    /// (which registers a new device, as an invite does).
    pub async fn reset_user(&self, name: &str) -> Result<InviteResponse> {
        self.services.user(name).await?;
        let (token, mut ops) = self.new_user_token("reset", name).await?;
        ops.push(Op::DeleteIfExists { key: keys::password(name) });
        ops.push(self.clear_code_failures_op(name));
        ops.extend(self.delete_all_devices_ops(name).await?);
        self.services.apply(ops).await?;
        Ok(InviteResponse { name: name.into(), url: self.link("reset", &token), ttl_seconds: INVITE_TTL.as_secs() })
    }

    fn token_gone() -> Error {
        Error::not_found("this invite or reset link has expired or was already used; ask an administrator for a new one")
    }

    /// A live token: its record, and the user's pointer to it (a token that is no longer the one
    /// its user holds, because a newer link was issued or the user was deleted, is gone).
    async fn user_token(&self, token: &str) -> Result<(crate::storage::Item, UserToken, crate::storage::Item)> {
        if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Self::token_gone());
        }
        let item = self.services.backend.get(&keys::user_token(token)).await?.ok_or_else(Self::token_gone)?;
        let rec: UserToken = serde_json::from_slice(&item.value).map_err(|_| Self::token_gone())?;
        let pointer = self.services.backend.get(&keys::user_token_of(&rec.user)).await?.ok_or_else(Self::token_gone)?;
        let held: HeldToken = serde_json::from_slice(&pointer.value).map_err(|_| Self::token_gone())?;
        if !shared::certs::secret_eq(&held.token, token) {
            return Err(Self::token_gone());
        }
        Ok((item, rec, pointer))
    }

    /// What an invite or reset page needs: whose link it is and the device to register.
    pub async fn user_token_info(&self, token: &str) -> Result<shared::api::UserTokenInfo> {
        let (_, rec, _) = self.user_token(token).await?;
        let pref = self.auth_preference().await?;
        let url = match &rec.otp_secret {
            Some(b32) => Some(shared::totp::otpauth_url(self.cluster_name(), &rec.user, &shared::totp::decode_secret(b32)?)),
            None => None,
        };
        let qr_svg = url.as_deref().and_then(qr_svg);
        Ok(shared::api::UserTokenInfo {
            user: rec.user,
            kind: rec.kind,
            second_factor: pref.spec.second_factor.clone(),
            otpauth_url: url,
            qr_svg,
        })
    }

    /// Sets a password with an invite or reset token (and, when the cluster asks for a second
    /// factor, registers the link's TOTP device with a first code); the token is consumed.
    pub async fn set_password_with_token(&self, token: &str, password: &str, code: Option<&str>) -> Result<String> {
        let gone = Self::token_gone;
        check_password(password)?;
        let (item, rec, pointer) = self.user_token(token).await?;
        let key = item.key.clone();
        let mode = self.auth_preference().await?.second_factor();
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let mut device_op = None;
        match (&rec.otp_secret, code) {
            (Some(b32), Some(code)) if mode.enabled() => {
                let secret = shared::totp::decode_secret(b32)?;
                let step = shared::totp::matching_step(&secret, code, self.clock.now().unix_timestamp()).ok_or_else(|| {
                    Error::access_denied(
                        "the OTP code does not match: scan the QR code again, check the phone's clock, and enter a new code",
                    )
                })?;
                device_op = Some(self.new_device_op(&rec.user, "otp", b32, step)?);
            }
            (_, None) if mode.required() => {
                return Err(Error::bad_parameter(
                    "this cluster requires a second factor: register the QR code in an authenticator app and enter its code",
                ));
            }
            (None, Some(_)) if mode.required() => {
                return Err(Error::bad_parameter(
                    "this link was issued before the cluster required a second factor; ask an administrator for a new one (tctl users reset)",
                ));
            }
            _ => {}
        }
        let hash = self.passwords.hash(password).await?;
        // Consuming the token, storing the password and the device are one transaction: a
        // token works once.
        let mut ops = vec![
            Op::CompareAndSwap { key: key.clone(), value: item.value.clone(), expires: item.expires, expected: item.revision },
            Op::Delete { key },
            Op::CompareAndSwap {
                key: pointer.key.clone(),
                value: pointer.value.clone(),
                expires: pointer.expires,
                expected: pointer.revision,
            },
            Op::Delete { key: pointer.key.clone() },
            Op::Exists { key: keys::user(&rec.user) },
            Op::Put { key: keys::password(&rec.user), value: hash.into_bytes(), expires: None },
        ];
        let registered = device_op.is_some();
        ops.extend(device_op);
        self.services
            .apply(ops)
            .await
            .map_err(|e| if e.is(shared::Kind::CompareFailed) || e.is(shared::Kind::NotFound) { gone() } else { e })?;
        self.audit.emit(audit_codes::USER_PASSWORD, json!({"user": rec.user})).await;
        if registered {
            self.audit.emit(audit_codes::MFA_ADD, json!({"user": rec.user, "mfa_device": {"name": "otp", "type": "TOTP"}})).await;
        }
        Ok(rec.user)
    }
}

/// A QR code of `text` as SVG (the invite page shows it).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
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
        let p = Passwords::default();
        let h = p.hash("correct horse").await.unwrap();
        assert!(p.verify("correct horse", Some(h.clone())).await.unwrap());
        assert!(!p.verify("wrong horse!", Some(h)).await.unwrap());
        assert!(!p.verify("correct horse", None).await.unwrap());
        assert!(check_password("short").is_err());
        assert!(check_password("longenough").is_ok());
    }
}
