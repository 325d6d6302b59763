//! `github`, `oidc` and `saml` connectors: stored so the guide's SSO steps (`tctl edit
//! github/github`, `tctl get --with-secrets saml/...`) work; their secrets are hidden in `get`
//! unless `--with-secrets` is given. SSO login itself is not part of this product.

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
        Ok(())
    }

    /// The connector with its secrets removed.
    pub fn without_secrets(&self) -> Connector {
        let mut c = self.clone();
        for path in secret_paths(self.kind_enum()) {
            let mut cur = &mut c.spec;
            for (i, seg) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    cur.remove(*seg);
                    break;
                }
                match cur.get_mut(*seg) {
                    Some(serde_json::Value::Object(m)) => cur = m,
                    _ => break,
                }
            }
        }
        c
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
