//! Second factors of local users: TOTP devices (Teleport's `second_factor: otp`).
//!
//! ```text
//! mfa/<user>/<device id>     {name, secret, added_at, last_used, last_step}
//! mfapending/<id>            a registration in progress (10 minutes): {user, name, secret}
//! ```
//! A code is accepted once: a device remembers the last step it accepted and refuses it and
//! every earlier one, so a code seen over a shoulder is worthless after it was used. The check
//! and the update are one compare-and-swap, so two processes cannot both accept one code.
//!
//! Guessing is bounded per user, in the cluster state (so every process counts the same):
//! [`MAX_CODE_FAILURES`] wrong codes within [`CODE_FAILURE_WINDOW`] lock the user's codes for
//! [`CODE_LOCKOUT`], during which even the right code is refused (Teleport locks after 5 failed
//! attempts too). Only codes count, and a code is only checked after the right password (or
//! with the user's own certificate, to add or remove a device), so nobody who lacks the
//! password can lock a user out. Every wrong code and every lockout is audited.
//!
//! ```text
//! codefailures/<user>        {failures: [unix seconds], locked_until}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::api::MfaDeviceInfo;
use shared::error::{Error, Result};
use shared::resource::auth_preference::SecondFactor;
use shared::totp;
use time::OffsetDateTime;

use super::{AuthServer, audit_codes};
use crate::services::{encode, keys};
use crate::storage::Op;

/// How long a registration may take from the QR code to the first code.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

pub use shared::api::OTP_REQUIRED;
/// What every failed password or code check says (no telling which one was wrong).
pub const BAD_CREDENTIALS: &str = "invalid username, password or second factor";
/// Wrong codes that lock a user's second factor.
pub const MAX_CODE_FAILURES: usize = 5;
/// How far back wrong codes count.
pub const CODE_FAILURE_WINDOW: Duration = Duration::from_secs(30 * 60);
/// How long a lockout lasts.
pub const CODE_LOCKOUT: Duration = Duration::from_secs(20 * 60);

/// A user's recent wrong codes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CodeFailures {
    /// When each counted failure happened (unix seconds), oldest first.
    failures: Vec<i64>,
    /// Unix seconds until which the user's codes are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_until: Option<i64>,
}

fn locked_out(until: i64) -> Error {
    let at = shared::timefmt::rfc3339(shared::timefmt::from_unix(until));
    Error::access_denied(format!(
        "too many wrong second-factor codes: this user's codes are refused until {at}; an administrator can lift it with 'tctl users reset'"
    ))
}

/// A registered TOTP device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaDevice {
    /// Device id (a UUID).
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// The shared secret (base32).
    secret: String,
    /// When it was added.
    #[serde(with = "shared::timefmt::rfc3339_serde")]
    pub added_at: OffsetDateTime,
    /// When it last signed someone in.
    #[serde(with = "shared::timefmt::rfc3339_serde")]
    pub last_used: OffsetDateTime,
    /// The last TOTP step it accepted.
    last_step: i64,
}

impl MfaDevice {
    /// What `tsh mfa ls` shows (never the secret).
    pub fn info(&self) -> MfaDeviceInfo {
        MfaDeviceInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: "TOTP".into(),
            added_at: self.added_at,
            last_used: self.last_used,
        }
    }
}

/// A registration in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    user: String,
    name: String,
    secret: String,
}

fn device_key(user: &str, id: &str) -> String {
    keys::mfa_device(user, id)
}

fn check_device_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Error::bad_parameter("a device name must be 1-64 characters without control characters, for example --name=phone"));
    }
    Ok(())
}

impl AuthServer {
    /// The user's devices, oldest first.
    pub async fn mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>> {
        let items = self.services.backend.list(&keys::mfa_devices_of(user)).await?;
        let mut out: Vec<MfaDevice> = items.iter().filter_map(|i| serde_json::from_slice(&i.value).ok()).collect();
        out.sort_by_key(|d| d.added_at);
        Ok(out)
    }

    /// Checks the second factor of a login whose password was right: `Ok` when none is needed
    /// or `code` is a fresh code of one of the user's devices (which it then uses up).
    pub async fn check_second_factor(&self, user: &str, code: Option<&str>, mode: SecondFactor) -> Result<()> {
        if !mode.enabled() {
            return Ok(());
        }
        let devices = self.mfa_devices(user).await?;
        if devices.is_empty() {
            if mode.required() {
                return Err(Error::access_denied(format!(
                    "this cluster requires a second factor and user {user:?} has no OTP device; an administrator can issue a new invite with 'tctl users reset {user}'"
                )));
            }
            return Ok(());
        }
        let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
            return Err(Error::access_denied(OTP_REQUIRED).with_code(shared::Code::OtpRequired));
        };
        self.use_code(user, code, "sign-in").await
    }

    /// Accepts `code` from one of `user`'s devices once, unless too many wrong codes locked
    /// them; a wrong code is counted and audited (`how` says where it was tried).
    pub async fn use_code(&self, user: &str, code: &str, how: &str) -> Result<()> {
        let now = self.clock.now().unix_timestamp();
        let key = keys::code_failures(user);
        let record = self.services.backend.get(&key).await?;
        let failures: CodeFailures = record.as_ref().and_then(|i| serde_json::from_slice(&i.value).ok()).unwrap_or_default();
        if let Some(until) = failures.locked_until.filter(|u| *u > now) {
            self.audit.emit(audit_codes::MFA_CODE_FAILED, json!({"user": user, "how": how, "error": "locked out"})).await;
            return Err(locked_out(until));
        }
        match self.check_code(user, code).await {
            Ok(()) => {
                if record.is_some() {
                    let _ = self.services.apply(vec![Op::DeleteIfExists { key }]).await;
                }
                Ok(())
            }
            Err(e) if e.is(shared::Kind::AccessDenied) => {
                let locked = self.count_code_failure(user).await?;
                self.audit.emit(audit_codes::MFA_CODE_FAILED, json!({"user": user, "how": how, "error": e.message})).await;
                match locked {
                    Some(until) => {
                        tracing::warn!(user, "too many wrong second-factor codes; locking the user's codes until {until}");
                        self.audit
                            .emit(audit_codes::USER_LOCKOUT, json!({"user": user, "failures": MAX_CODE_FAILURES, "locked_until": until}))
                            .await;
                        Err(locked_out(until))
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Counts a wrong code of `user`; returns the end of the lockout it started, if it did.
    async fn count_code_failure(&self, user: &str) -> Result<Option<i64>> {
        let key = keys::code_failures(user);
        let window = CODE_FAILURE_WINDOW.as_secs() as i64;
        let conflict = Error::compare_failed("the failure count is being changed by another sign-in; try again");
        crate::services::retry_cas(5, conflict, || async {
            let now = self.clock.now().unix_timestamp();
            let item = self.services.backend.get(&key).await?;
            let mut f: CodeFailures = item.as_ref().and_then(|i| serde_json::from_slice(&i.value).ok()).unwrap_or_default();
            f.failures.retain(|t| now - t < window);
            f.failures.push(now);
            let mut locked = None;
            if f.failures.len() >= MAX_CODE_FAILURES {
                let until = now + CODE_LOCKOUT.as_secs() as i64;
                f.locked_until = Some(until);
                f.failures.clear();
                locked = Some(until);
            }
            let expires = Some(now + window.max(CODE_LOCKOUT.as_secs() as i64));
            let op = match &item {
                Some(i) => Op::CompareAndSwap { key: key.clone(), value: encode(&f)?, expires, expected: i.revision },
                None => Op::Create { key: key.clone(), value: encode(&f)?, expires },
            };
            self.services.apply_racing(vec![op]).await.map(|_| locked)
        })
        .await
    }

    /// The op that lifts `user`'s lockout and forgets their wrong codes (a reset).
    pub fn clear_code_failures_op(&self, user: &str) -> Op {
        Op::DeleteIfExists { key: keys::code_failures(user) }
    }

    /// Accepts `code` from one of `user`'s devices once.
    async fn check_code(&self, user: &str, code: &str) -> Result<()> {
        let now = self.clock.now();
        let used = crate::services::retry_cas(5, Error::access_denied(BAD_CREDENTIALS), || async {
            for item in &self.services.backend.list(&keys::mfa_devices_of(user)).await? {
                let Ok(mut d) = serde_json::from_slice::<MfaDevice>(&item.value) else { continue };
                let Ok(secret) = totp::decode_secret(&d.secret) else { continue };
                let Some(step) = totp::matching_step(&secret, code, now.unix_timestamp()) else { continue };
                if step <= d.last_step {
                    return Err(Error::access_denied("this OTP code was already used; wait for the next one"));
                }
                d.last_step = step;
                d.last_used = now;
                let op = Op::CompareAndSwap { key: item.key.clone(), value: encode(&d)?, expires: None, expected: item.revision };
                self.services.apply(vec![op]).await?;
                return Ok(true);
            }
            Ok(false)
        })
        .await?;
        if used { Ok(()) } else { Err(Error::access_denied(BAD_CREDENTIALS)) }
    }

    /// Starts registering a TOTP device named `name`: returns the registration id, the secret
    /// and its `otpauth://` URL.
    pub async fn begin_otp_registration(&self, user: &str, name: &str) -> Result<(String, String, String)> {
        check_device_name(name)?;
        if self.mfa_devices(user).await?.iter().any(|d| d.name == name) {
            return Err(Error::already_exists(format!("a device named {name:?} is already registered; choose another --name")));
        }
        let secret = totp::new_secret();
        let b32 = totp::encode_secret(&secret);
        let id = uuid::Uuid::new_v4().to_string();
        let expires = (self.clock.now() + PENDING_TTL).unix_timestamp();
        let rec = Pending { user: user.into(), name: name.into(), secret: b32.clone() };
        self.services.apply(vec![Op::Create { key: keys::mfa_pending(&id), value: encode(&rec)?, expires: Some(expires) }]).await?;
        Ok((id, b32, totp::otpauth_url(self.cluster_name(), user, &secret)))
    }

    /// Finishes a registration with a first code from the device.
    pub async fn finish_otp_registration(&self, user: &str, id: &str, code: &str) -> Result<MfaDeviceInfo> {
        let gone = || Error::not_found("this device registration expired or was already finished; start again with 'tsh mfa add'");
        let key = keys::mfa_pending(id);
        let item = self.services.backend.get(&key).await?.ok_or_else(gone)?;
        let rec: Pending = serde_json::from_slice(&item.value).map_err(|_| gone())?;
        if rec.user != user {
            return Err(gone());
        }
        let secret = totp::decode_secret(&rec.secret)?;
        let now = self.clock.now();
        let step = totp::matching_step(&secret, code, now.unix_timestamp())
            .ok_or_else(|| Error::access_denied("the OTP code does not match; check the device's clock and try a new code"))?;
        let device = MfaDevice {
            id: uuid::Uuid::new_v4().to_string(),
            name: rec.name,
            secret: rec.secret,
            added_at: now,
            last_used: now,
            last_step: step,
        };
        self.services
            .apply(vec![
                Op::CompareAndSwap { key: key.clone(), value: item.value.clone(), expires: item.expires, expected: item.revision },
                Op::Delete { key },
                Op::Create { key: device_key(user, &device.id), value: encode(&device)?, expires: None },
            ])
            .await
            .map_err(|e| if e.is(shared::Kind::CompareFailed) || e.is(shared::Kind::NotFound) { gone() } else { e })?;
        self.audit.emit(audit_codes::MFA_ADD, json!({"user": user, "mfa_device": {"name": device.name, "type": "TOTP"}})).await;
        Ok(device.info())
    }

    /// The op that registers a device from a secret already shown to the user (the invite
    /// page), with the step its first code used.
    pub fn new_device_op(&self, user: &str, name: &str, secret_b32: &str, step: i64) -> Result<Op> {
        let now = self.clock.now();
        let d = MfaDevice {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            secret: secret_b32.into(),
            added_at: now,
            last_used: now,
            last_step: step,
        };
        Ok(Op::Create { key: device_key(user, &d.id), value: encode(&d)?, expires: None })
    }

    /// Removes a device by name or id. With a second factor required, the last one stays.
    pub async fn delete_mfa_device(&self, user: &str, name: &str) -> Result<()> {
        let devices = self.mfa_devices(user).await?;
        let Some(d) = devices.iter().find(|d| d.name == name || d.id == name) else {
            return Err(Error::not_found(format!("MFA device {name:?} is not found")));
        };
        if devices.len() == 1 && self.auth_preference().await?.second_factor().required() {
            return Err(Error::bad_parameter(
                "cannot delete the last MFA device for this user while the cluster requires a second factor; add a replacement device first",
            ));
        }
        self.services.apply(vec![Op::Delete { key: device_key(user, &d.id) }]).await?;
        self.audit.emit(audit_codes::MFA_DELETE, json!({"user": user, "mfa_device": {"name": d.name, "type": "TOTP"}})).await;
        Ok(())
    }

    /// The ops that remove every device of `user` (a reset, a deleted user).
    pub async fn delete_all_devices_ops(&self, user: &str) -> Result<Vec<Op>> {
        Ok(self.mfa_devices(user).await?.iter().map(|d| Op::DeleteIfExists { key: device_key(user, &d.id) }).collect())
    }
}
