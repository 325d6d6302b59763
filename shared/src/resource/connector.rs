//! `github`, `oidc` and `saml` connectors: how users sign in through an identity provider
//! (`tsh login --auth=NAME`), with their claims, teams or attributes mapped to roles. The spec is
//! kept verbatim (Teleport's connectors have many fields we accept and ignore); the fields the
//! login uses are read through [`OidcSpec`], [`GithubSpec`] and [`SamlSpec`], and checked on
//! `tctl create`. Secrets are hidden in `get` unless `--with-secrets` is given.

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata};
use crate::error::{Error, Result};

/// An SSO connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// `github`, `oidc` or `saml`.
    pub kind: String,
    /// Version as given.
    #[serde(default = "v3")]
    pub version: String,
    /// Connector name.
    pub metadata: Metadata,
    /// Connector settings, kept verbatim.
    pub spec: serde_json::Map<String, serde_json::Value>,
}

fn v3() -> String {
    "v3".into()
}

/// Paths (within `spec`) of the secrets of each connector kind.
fn secret_paths(kind: Kind) -> &'static [&'static [&'static str]] {
    match kind {
        Kind::Github | Kind::Oidc => &[&["client_secret"]],
        Kind::Saml => &[&["signing_key_pair", "private_key"], &["encryption_key_pair", "private_key"]],
        _ => &[],
    }
}

impl Connector {
    /// The kind as an enum.
    pub fn kind_enum(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Github)
    }

    /// Validates the connector.
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        let kind = Kind::parse(&self.kind)?;
        if !matches!(kind, Kind::Github | Kind::Oidc | Kind::Saml) {
            return Err(Error::bad_parameter(format!("{} is not a connector kind", self.kind)));
        }
        self.metadata.check(kind)?;
        match kind {
            Kind::Oidc => self.oidc()?.check()?,
            Kind::Github => self.github()?.check()?,
            _ => self.saml()?.check(&self.metadata.name)?,
        }
        Ok(())
    }

    fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(serde_json::Value::Object(self.spec.clone())).map_err(|e| {
            Error::bad_parameter(format!("{} connector {:?}: spec.{}: {}", self.kind, self.metadata.name, e.path(), e.inner()))
        })
    }

    /// The OIDC fields.
    pub fn oidc(&self) -> Result<OidcSpec> {
        self.typed()
    }

    /// The GitHub fields.
    pub fn github(&self) -> Result<GithubSpec> {
        self.typed()
    }

    /// The SAML fields.
    pub fn saml(&self) -> Result<SamlSpec> {
        self.typed()
    }

    /// `display`, if any.
    pub fn display(&self) -> String {
        self.spec.get("display").and_then(|v| v.as_str()).unwrap_or_default().to_string()
    }

    /// The connector with its secrets removed.
    pub fn without_secrets(&self) -> Connector {
        let mut c = self.clone();
        for path in secret_paths(self.kind_enum()) {
            if let Some((parent, last)) = parent_of(&mut c.spec, path) {
                parent.remove(last);
            }
        }
        c
    }

    /// Each secret this connector lacks, filled by `fill` (given its path in `spec`) where the
    /// object holding it is still there. `tctl edit` shows a connector without its secrets: the
    /// server keeps the stored ones ([`Connector::keep_secrets`]); tctl checks the edit with
    /// stand-ins.
    pub fn fill_missing_secrets(&mut self, fill: impl Fn(&[&str]) -> Option<serde_json::Value>) {
        for path in secret_paths(self.kind_enum()) {
            if let Some((parent, last)) = parent_of(&mut self.spec, path)
                && !parent.contains_key(last)
                && let Some(v) = fill(path)
            {
                parent.insert(last.to_string(), v);
            }
        }
    }

    /// Takes each secret this connector lacks from `stored` (the version being edited).
    pub fn keep_secrets(&mut self, stored: &Connector) {
        let stored = stored.spec.clone();
        self.fill_missing_secrets(|path| {
            let mut cur = &stored;
            let (last, parents) = path.split_last()?;
            for seg in parents {
                cur = cur.get(*seg)?.as_object()?;
            }
            cur.get(*last).cloned()
        });
    }
}

/// The object holding the field at `path` in `spec`, and the field's name.
fn parent_of<'a>(
    spec: &'a mut serde_json::Map<String, serde_json::Value>,
    path: &[&'static str],
) -> Option<(&'a mut serde_json::Map<String, serde_json::Value>, &'static str)> {
    let (last, parents) = path.split_last()?;
    let mut cur = spec;
    for seg in parents {
        cur = cur.get_mut(*seg)?.as_object_mut()?;
    }
    Some((cur, last))
}

/// A string or a list of strings (Teleport accepts both for `redirect_url`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
    /// None given.
    #[default]
    #[serde(skip)]
    Nothing,
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
            OneOrMany::Nothing => vec![],
        }
    }
}

/// A claim (OIDC) or attribute (SAML) value that grants roles.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClaimMapping {
    /// The claim or attribute (`claim` in Teleport's OIDC schema, `name` in SAML's and in the
    /// guide's OIDC example: both are accepted).
    #[serde(alias = "name")]
    pub claim: String,
    /// A literal with `*` globs, or a `^...$` regular expression.
    pub value: String,
    /// Roles granted (may use `$1`).
    #[serde(default)]
    pub roles: Vec<String>,
}

fn check_mappings(what: &str, maps: &[ClaimMapping]) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::bad_parameter(format!("{what} is empty: map at least one claim value to roles")));
    }
    for m in maps {
        if m.roles.is_empty() {
            return Err(Error::bad_parameter(format!("{what}: {:?} = {:?} grants no roles", m.claim, m.value)));
        }
        crate::labels::compile_expression(&m.value)
            .map_err(|e| Error::bad_parameter(format!("{what}: invalid value expression {:?}: {e}", m.value)))?;
    }
    Ok(())
}

/// The OIDC connector fields the login uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct OidcSpec {
    /// The provider (its `/.well-known/openid-configuration` is read).
    #[serde(default)]
    pub issuer_url: String,
    /// Client id.
    #[serde(default)]
    pub client_id: String,
    /// Client secret.
    #[serde(default)]
    pub client_secret: String,
    /// This proxy's callback (`https://<proxy>/v1/webapi/oidc/callback`).
    #[serde(default)]
    pub redirect_url: OneOrMany,
    /// Claims to roles.
    #[serde(default)]
    pub claims_to_roles: Vec<ClaimMapping>,
    /// Extra scopes (besides `openid` and `email`).
    #[serde(default)]
    pub scope: Vec<String>,
    /// `prompt` (default `select_account`; `none` sends none).
    #[serde(default)]
    pub prompt: Option<String>,
    /// `max_age` (a duration such as `12h`).
    #[serde(default)]
    pub max_age: Option<String>,
    /// The claim that names the user (default `email`).
    #[serde(default)]
    pub username_claim: String,
    /// Accept an `email` claim whose `email_verified` is not true.
    #[serde(default)]
    pub allow_unverified_email: bool,
    /// `enabled` (our default) or `disabled`.
    #[serde(default)]
    pub pkce_mode: String,
    /// `acr_values` to ask for.
    #[serde(default)]
    pub acr_values: String,
}

impl OidcSpec {
    /// Checks the fields a login needs.
    pub fn check(&self) -> Result<()> {
        for (f, v) in [("issuer_url", &self.issuer_url), ("client_id", &self.client_id), ("client_secret", &self.client_secret)] {
            if v.is_empty() {
                return Err(Error::bad_parameter(format!("oidc connector: spec.{f} is required")));
            }
        }
        if self.redirect_url.values().is_empty() {
            return Err(Error::bad_parameter("oidc connector: spec.redirect_url is required (https://<proxy>/v1/webapi/oidc/callback)"));
        }
        if !matches!(self.pkce_mode.as_str(), "" | "enabled" | "disabled") {
            return Err(Error::bad_parameter("oidc connector: spec.pkce_mode must be enabled or disabled"));
        }
        if let Some(m) = &self.max_age {
            crate::timefmt::parse_duration(m).map_err(|e| e.context("oidc connector: spec.max_age"))?;
        }
        check_mappings("oidc connector: spec.claims_to_roles", &self.claims_to_roles)
    }
}

/// A GitHub team that grants roles.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TeamMapping {
    /// Organization login.
    pub organization: String,
    /// Team slug.
    pub team: String,
    /// Roles granted (`teams_to_roles`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Roles granted (legacy `teams_to_logins`, whose `logins` are role names).
    #[serde(default)]
    pub logins: Vec<String>,
}

/// The GitHub connector fields the login uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GithubSpec {
    /// OAuth app client id.
    #[serde(default)]
    pub client_id: String,
    /// OAuth app client secret.
    #[serde(default)]
    pub client_secret: String,
    /// This proxy's callback (`https://<proxy>/v1/webapi/github/callback`).
    #[serde(default)]
    pub redirect_url: String,
    /// GitHub (default `https://github.com`; GitHub Enterprise's address otherwise).
    #[serde(default)]
    pub endpoint_url: String,
    /// GitHub's API (default `https://api.github.com`, or `<endpoint_url>/api/v3` when
    /// `endpoint_url` is set).
    #[serde(default)]
    pub api_endpoint_url: String,
    /// Teams to roles.
    #[serde(default)]
    pub teams_to_roles: Vec<TeamMapping>,
    /// Legacy teams to roles.
    #[serde(default)]
    pub teams_to_logins: Vec<TeamMapping>,
}

impl GithubSpec {
    /// Checks the fields a login needs.
    pub fn check(&self) -> Result<()> {
        for (f, v) in [("client_id", &self.client_id), ("client_secret", &self.client_secret), ("redirect_url", &self.redirect_url)] {
            if v.is_empty() {
                return Err(Error::bad_parameter(format!("github connector: spec.{f} is required")));
            }
        }
        if self.teams_to_roles.is_empty() && self.teams_to_logins.is_empty() {
            return Err(Error::bad_parameter("github connector: spec.teams_to_roles is empty: map at least one team to roles"));
        }
        for t in self.teams_to_roles.iter().chain(&self.teams_to_logins) {
            if t.roles.is_empty() && t.logins.is_empty() {
                return Err(Error::bad_parameter(format!("github connector: team {}/{} grants no roles", t.organization, t.team)));
            }
        }
        Ok(())
    }

    /// The web address (`https://github.com` by default), without a trailing slash.
    pub fn endpoint(&self) -> String {
        if self.endpoint_url.is_empty() { "https://github.com".into() } else { self.endpoint_url.trim_end_matches('/').into() }
    }

    /// The API address, without a trailing slash.
    pub fn api_endpoint(&self) -> String {
        match (self.api_endpoint_url.is_empty(), self.endpoint_url.is_empty()) {
            (false, _) => self.api_endpoint_url.trim_end_matches('/').into(),
            (true, true) => "https://api.github.com".into(),
            (true, false) => format!("{}/api/v3", self.endpoint()),
        }
    }

    /// Every team mapping, legacy ones included (their `logins` as roles).
    pub fn mappings(&self) -> Vec<(String, String, Vec<String>)> {
        self.teams_to_roles
            .iter()
            .map(|t| (t.organization.clone(), t.team.clone(), t.roles.clone()))
            .chain(
                self.teams_to_logins.iter().map(|t| (t.organization.clone(), t.team.clone(), [t.roles.clone(), t.logins.clone()].concat())),
            )
            .collect()
    }
}

/// The SAML connector fields the login uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SamlSpec {
    /// The identity provider's entity id (checked against the assertion's issuer when set).
    #[serde(default)]
    pub issuer: String,
    /// The identity provider's single sign-on URL (HTTP-Redirect).
    #[serde(default)]
    pub sso: String,
    /// The identity provider's signing certificate (PEM).
    #[serde(default)]
    pub cert: String,
    /// The identity provider's metadata (XML): its entity id, SSO URL and signing certificates.
    #[serde(default)]
    pub entity_descriptor: String,
    /// Where to fetch that metadata.
    #[serde(default)]
    pub entity_descriptor_url: String,
    /// This proxy's assertion consumer service (`https://<proxy>/v1/webapi/saml/acs/<connector>`).
    #[serde(default)]
    pub acs: String,
    /// The audience the assertion must name (default: `acs`).
    #[serde(default)]
    pub audience: String,
    /// Our entity id in requests (default: `audience`).
    #[serde(default)]
    pub service_provider_issuer: String,
    /// Attributes to roles.
    #[serde(default)]
    pub attributes_to_roles: Vec<ClaimMapping>,
    /// Logins the identity provider starts (refused: not supported).
    #[serde(default)]
    pub allow_idp_initiated: bool,
}

impl SamlSpec {
    /// Checks the fields a login needs.
    pub fn check(&self, name: &str) -> Result<()> {
        if self.acs.is_empty() {
            return Err(Error::bad_parameter(format!("saml connector: spec.acs is required (https://<proxy>/v1/webapi/saml/acs/{name})")));
        }
        if self.acs.trim_end_matches('/').rsplit('/').next() != Some(name) {
            return Err(Error::bad_parameter(format!(
                "saml connector: the last segment of spec.acs must be the connector's name, {name:?}"
            )));
        }
        if self.entity_descriptor.is_empty() && self.entity_descriptor_url.is_empty() && (self.sso.is_empty() || self.cert.is_empty()) {
            return Err(Error::bad_parameter("saml connector: set spec.entity_descriptor (or entity_descriptor_url, or sso and cert)"));
        }
        if self.allow_idp_initiated {
            return Err(Error::bad_parameter("saml connector: allow_idp_initiated is not supported: logins must start from Teleport"));
        }
        check_mappings("saml connector: spec.attributes_to_roles", &self.attributes_to_roles)
    }

    /// The audience the assertion must name.
    pub fn audience(&self) -> &str {
        if self.audience.is_empty() { &self.acs } else { &self.audience }
    }

    /// Our entity id.
    pub fn sp_issuer(&self) -> &str {
        if self.service_provider_issuer.is_empty() { self.audience() } else { &self.service_provider_issuer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed() {
        let c: Connector = serde_json::from_value(serde_json::json!({
            "kind": "saml", "version": "v2", "metadata": {"name": "mysaml"},
            "spec": {"signing_key_pair": {"private_key": "SECRET", "cert": "C"}, "attributes_to_roles": []}
        }))
        .unwrap_or_else(|_| Connector {
            kind: "x".into(),
            version: "v".into(),
            metadata: Metadata::default(),
            spec: Default::default(),
        });
        let s = serde_json::to_string(&c.without_secrets()).unwrap_or_default();
        assert!(!s.contains("SECRET"), "{s}");
        assert!(s.contains("\"cert\":\"C\""), "{s}");
        let g: Connector = serde_json::from_value(serde_json::json!({
            "kind": "github", "metadata": {"name": "github"}, "spec": {"client_secret": "S", "client_id": "I"}
        }))
        .unwrap_or_else(|_| Connector {
            kind: "x".into(),
            version: "v".into(),
            metadata: Metadata::default(),
            spec: Default::default(),
        });
        let s = serde_json::to_string(&g.without_secrets()).unwrap_or_default();
        assert!(!s.contains("\"S\"") && s.contains("client_id"), "{s}");
    }
}
