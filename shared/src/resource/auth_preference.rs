//! `cluster_auth_preference` (v2): how users sign in to this cluster: locally (password, and a
//! second factor) or through an SSO connector by default (Teleport's `AuthPreferenceV2`; one per
//! cluster, named `cluster-auth-preference`).

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata};
use crate::error::{Error, Result};

/// The one name this resource has.
pub const NAME: &str = "cluster-auth-preference";
/// Label saying where the current value came from (`config-file`, `defaults`, `dynamic`).
pub const ORIGIN_LABEL: &str = "teleport.dev/origin";

/// How local users prove themselves besides a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// Password only.
    Off,
    /// A TOTP code, always.
    Otp,
    /// Some second factor, always (only TOTP exists here, so the same as `Otp`).
    On,
    /// A TOTP code from users who registered a device.
    Optional,
}

impl SecondFactor {
    /// Parses Teleport's spelling.
    pub fn parse(s: &str) -> Result<SecondFactor> {
        match s {
            "off" => Ok(SecondFactor::Off),
            "otp" => Ok(SecondFactor::Otp),
            "on" => Ok(SecondFactor::On),
            "optional" => Ok(SecondFactor::Optional),
            "webauthn" | "u2f" => Err(Error::bad_parameter(format!(
                "second_factor: {s:?} is not supported: WebAuthn and U2F security keys are not implemented; use otp, on, optional or off"
            ))),
            other => Err(Error::bad_parameter(format!("second_factor: unknown value {other:?}; use off, otp, on or optional"))),
        }
    }

    /// Whether every local login needs a code.
    pub fn required(self) -> bool {
        matches!(self, SecondFactor::Otp | SecondFactor::On)
    }

    /// Whether devices can be registered at all.
    pub fn enabled(self) -> bool {
        self != SecondFactor::Off
    }
}

/// The cluster's authentication preference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPreference {
    /// Always `cluster_auth_preference`.
    pub kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// Always named `cluster-auth-preference`.
    pub metadata: Metadata,
    /// The settings.
    #[serde(default)]
    pub spec: AuthPreferenceSpec,
}

fn v2() -> String {
    "v2".into()
}

fn local() -> String {
    "local".into()
}

fn otp() -> String {
    "otp".into()
}

fn yes() -> bool {
    true
}

/// What users sign in with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPreferenceSpec {
    /// `local`, `oidc`, `github` or `saml`: what `tsh login` uses without `--auth`.
    #[serde(rename = "type", default = "local")]
    pub auth_type: String,
    /// `off`, `otp`, `on` or `optional`, for local users.
    #[serde(default = "otp")]
    pub second_factor: String,
    /// The connector `tsh login` uses by default when `type` is not `local` (default: the only
    /// connector of that type).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connector_name: String,
    /// Whether local users may sign in at all.
    #[serde(default = "yes")]
    pub allow_local_auth: bool,
    /// Accepted for compatibility (security keys are not implemented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_json::Value>,
    /// Accepted for compatibility (security keys are not implemented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u2f: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_expired_cert: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_session_mfa: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_of_the_day: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locking_mode: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_passwordless: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headless: Option<serde_json::Value>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_session_ttl: Option<serde_json::Value>,
}

impl Default for AuthPreferenceSpec {
    fn default() -> Self {
        AuthPreferenceSpec {
            auth_type: local(),
            second_factor: otp(),
            connector_name: String::new(),
            allow_local_auth: true,
            webauthn: None,
            u2f: None,
            disconnect_expired_cert: None,
            require_session_mfa: None,
            message_of_the_day: None,
            locking_mode: None,
            allow_passwordless: None,
            allow_headless: None,
            default_session_ttl: None,
        }
    }
}

impl AuthPreference {
    /// A preference with these settings, labelled with where it came from.
    pub fn new(spec: AuthPreferenceSpec, origin: &str) -> AuthPreference {
        let mut metadata = Metadata::named(NAME);
        metadata.labels.insert(ORIGIN_LABEL.into(), origin.into());
        AuthPreference { kind: Kind::AuthPreference.as_str().into(), version: v2(), metadata, spec }
    }

    /// The default of a new cluster: local users, with a TOTP code required.
    pub fn default_for_new_cluster() -> AuthPreference {
        AuthPreference::new(AuthPreferenceSpec::default(), "defaults")
    }

    /// The second factor setting (validated by [`AuthPreference::check_and_set_defaults`]).
    pub fn second_factor(&self) -> SecondFactor {
        SecondFactor::parse(&self.spec.second_factor).unwrap_or(SecondFactor::Otp)
    }

    /// Validates and fills in defaults.
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.metadata.name.is_empty() {
            self.metadata.name = NAME.into();
        }
        if self.metadata.name != NAME {
            return Err(Error::bad_parameter(format!(
                "the cluster_auth_preference is always named {NAME:?}, not {:?}",
                self.metadata.name
            )));
        }
        self.metadata.check(Kind::AuthPreference)?;
        if !matches!(self.spec.auth_type.as_str(), "local" | "oidc" | "github" | "saml") {
            return Err(Error::bad_parameter(format!(
                "spec.type: unknown authentication type {:?}; use local, oidc, github or saml",
                self.spec.auth_type
            )));
        }
        SecondFactor::parse(&self.spec.second_factor).map_err(|e| e.context("spec"))?;
        if self.spec.auth_type == "local" && !self.spec.connector_name.is_empty() && self.spec.connector_name != "local" {
            return Err(Error::bad_parameter(
                "spec.connector_name names an SSO connector, but spec.type is local; set type: oidc, github or saml",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let mut p = AuthPreference::default_for_new_cluster();
        assert!(p.check_and_set_defaults().is_ok());
        assert_eq!(p.second_factor(), SecondFactor::Otp);
        assert_eq!(p.metadata.labels.get(ORIGIN_LABEL).map(String::as_str), Some("defaults"));
        let yaml: AuthPreference =
            serde_json::from_value(serde_json::json!({"kind": "cluster_auth_preference", "metadata": {"name": NAME}, "spec": {"type": "oidc", "connector_name": "okta"}}))
                .unwrap();
        assert_eq!(yaml.spec.second_factor, "otp", "Teleport's current default");
        assert!(yaml.spec.allow_local_auth);
        let mut bad = yaml.clone();
        bad.spec.second_factor = "webauthn".into();
        let e = bad.check_and_set_defaults().unwrap_err();
        assert!(e.message.contains("WebAuthn and U2F security keys are not implemented"), "{}", e.message);
        let mut bad = yaml.clone();
        bad.metadata.name = "other".into();
        assert!(bad.check_and_set_defaults().is_err());
        let mut bad = yaml;
        bad.spec.auth_type = "ldap".into();
        assert!(bad.check_and_set_defaults().unwrap_err().message.contains("use local, oidc, github or saml"));
        assert!(SecondFactor::Optional.enabled() && !SecondFactor::Optional.required());
        assert!(SecondFactor::On.required() && !SecondFactor::Off.enabled());
    }
}
