//! `user` (v2): a local user, its roles and its traits (reference §2.7).

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata, is_empty_vec};
use crate::error::{Error, Result};
use crate::template::Traits;

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Always `user`.
    pub kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// The user name.
    pub metadata: Metadata,
    /// Roles and traits.
    #[serde(default)]
    pub spec: UserSpec,
}

fn v2() -> String {
    "v2".into()
}

/// Who created a user, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedBy {
    /// When.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub time: time::OffsetDateTime,
    /// By whom.
    pub user: CreatedByUser,
    /// For a user an SSO login created: the connector and the identity it vouched for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorRef>,
}

/// The connector that created an SSO user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorRef {
    /// `oidc`, `github` or `saml`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The connector's name.
    pub id: String,
    /// The user's name at the identity provider.
    pub identity: String,
}

/// The creator's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedByUser {
    /// User name.
    pub name: String,
}

/// The body of a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Role names.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub roles: Vec<String>,
    /// Traits: `logins`, `kubernetes_groups`, SSO claims, ...
    #[serde(default, skip_serializing_if = "Traits::is_empty")]
    pub traits: Traits,
    /// Audit information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
    /// SSO identities, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_identities: Option<serde_json::Value>,
    /// SSO identities, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_identities: Option<serde_json::Value>,
    /// SSO identities, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_identities: Option<serde_json::Value>,
    /// Accepted for compatibility with Teleport output; ignored.
    #[serde(default, skip_serializing)]
    pub expires: Option<serde_json::Value>,
    /// Accepted for compatibility with Teleport output; ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
    /// Accepted for compatibility with Teleport output; ignored (passwords are never in a user resource).
    #[serde(default, skip_serializing)]
    pub local_auth: Option<serde_json::Value>,
}

impl User {
    /// A user with roles and logins.
    pub fn new(name: &str, roles: Vec<String>, logins: Vec<String>) -> User {
        let mut traits = Traits::new();
        if !logins.is_empty() {
            traits.insert("logins".into(), logins);
        }
        User {
            kind: Kind::User.as_str().into(),
            version: v2(),
            metadata: Metadata::named(name),
            spec: UserSpec { roles, traits, ..Default::default() },
        }
    }

    /// Validates the user.
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.kind != Kind::User.as_str() {
            return Err(Error::bad_parameter(format!("expected kind user, got {:?}", self.kind)));
        }
        if self.version != "v2" {
            return Err(Error::bad_parameter(format!("unsupported user version {:?}, use v2", self.version)));
        }
        self.metadata.check(Kind::User)?;
        check_user_name(&self.metadata.name)?;
        for r in &self.spec.roles {
            if r.trim().is_empty() {
                return Err(Error::bad_parameter("spec.roles contains an empty role name"));
            }
        }
        for (k, v) in &self.spec.traits {
            if k.is_empty() {
                return Err(Error::bad_parameter("spec.traits has an empty trait name"));
            }
            if k == "logins" {
                for l in v {
                    if l.contains('*') {
                        return Err(Error::bad_parameter(format!("invalid login {l:?}: wildcards are not allowed in logins")));
                    }
                }
            }
        }
        Ok(())
    }

    /// The user's `logins` trait.
    pub fn logins(&self) -> Vec<String> {
        self.spec.traits.get("logins").cloned().unwrap_or_default()
    }
}

/// Checks a Teleport user name.
pub fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c.is_whitespace() || c == '/') {
        return Err(Error::bad_parameter(format!("invalid user name {name:?}: use 1-128 characters without spaces or '/'")));
    }
    Ok(())
}
