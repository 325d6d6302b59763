//! `app` (v3): a web (or TCP) application a cluster's `app_service` serves, or one an admin
//! defines with `tctl create` (reference `kube-app-db.md` §3.5). Served apps are heartbeated
//! with who serves them and expire unless renewed, as `kube_cluster` records do.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata, is_false};
use crate::error::{Error, Result};

/// Headers the service sets itself: `rewrite.headers` may not name them.
pub const RESERVED_HEADERS: &[&str] = &[
    "teleport-jwt-assertion",
    "cf-access-token",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-server",
    "x-forwarded-ssl",
];

/// An application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Always `app`.
    pub kind: String,
    /// `v3`.
    #[serde(default = "v3")]
    pub version: String,
    /// Name (the first label of its address at the root), description, labels, expiry.
    pub metadata: Metadata,
    /// What it is and where.
    pub spec: AppSpec,
}

fn v3() -> String {
    "v3".into()
}

/// Where an app is and how it is served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// `http://`, `https://` or `tcp://` address the service reaches.
    pub uri: String,
    /// The name users reach it at (default `<name>.<proxy host>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_addr: String,
    /// Do not verify an `https://` app's certificate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
    /// Rewrites of what the app sends and receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// UUID of the process whose `app_service` serves it (empty: defined by an admin, served by the app services whose `resources` select it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    /// That process's host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Served by a process of its own, through its reverse tunnel.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tunnel: bool,
}

/// `rewrite`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Hosts whose `Location` headers are rewritten to the public address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect: Vec<String>,
    /// Headers added to every request (`{{internal.*}}`, `{{external.*}}`, `{{internal.jwt}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
}

/// One header of `rewrite.headers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value, templates allowed.
    pub value: String,
}

impl App {
    /// A heartbeat record of an app `host_id` serves.
    pub fn served(mut app: App, host_id: &str, hostname: &str, tunnel: bool, expires: OffsetDateTime) -> App {
        app.spec.host_id = host_id.into();
        app.spec.hostname = hostname.into();
        app.spec.tunnel = tunnel;
        app.metadata.expires = Some(expires);
        app
    }

    /// `HTTP` or `TCP`, as `tsh apps ls` says it.
    pub fn kind_label(&self) -> &'static str {
        if self.spec.uri.starts_with("tcp://") { "TCP" } else { "HTTP" }
    }

    /// Validates an app (from `tctl create` or the config).
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        self.metadata.check(Kind::App)?;
        if self.version.is_empty() {
            self.version = v3();
        }
        if self.version != "v3" {
            return Err(Error::bad_parameter(format!("app version {:?} is not supported, use v3", self.version)));
        }
        let n = &self.metadata.name;
        // The name is the first label of the app's address at the root: a DNS label.
        if n.len() > 63
            || n.starts_with('-')
            || n.ends_with('-')
            || !n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::bad_parameter(format!(
                "app name {n:?} must be a DNS label (lowercase letters, digits and '-', at most 63): it is the first part of the app's address"
            )));
        }
        let scheme = self.spec.uri.split_once("://").map(|(s, _)| s).unwrap_or_default();
        if !["http", "https", "tcp"].contains(&scheme) || self.spec.uri.len() <= scheme.len() + 3 {
            return Err(Error::bad_parameter(format!("app {n:?}: uri {:?} must be http://, https:// or tcp:// and a host", self.spec.uri)));
        }
        if self.spec.public_addr.contains("://")
            || self.spec.public_addr.contains('/')
            || self.spec.public_addr.contains(char::is_whitespace)
        {
            return Err(Error::bad_parameter(format!(
                "app {n:?}: public_addr {:?} is a host name (and port), without a scheme or path",
                self.spec.public_addr
            )));
        }
        if let Some(rw) = &self.spec.rewrite {
            for h in &rw.headers {
                let lower = h.name.to_ascii_lowercase();
                if h.name.is_empty() || h.name.chars().any(|c| !c.is_ascii_graphic() || c == ':') {
                    return Err(Error::bad_parameter(format!("app {n:?}: rewrite.headers name {:?} is not a header name", h.name)));
                }
                if RESERVED_HEADERS.contains(&lower.as_str()) {
                    return Err(Error::bad_parameter(format!(
                        "app {n:?}: rewrite.headers may not set {:?}: the app service sets it itself",
                        h.name
                    )));
                }
                crate::template::validate_values(&format!("app {n:?} rewrite.headers {:?}", h.name), std::slice::from_ref(&h.value))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, uri: &str) -> App {
        App {
            kind: "app".into(),
            version: "v3".into(),
            metadata: Metadata::named(name),
            spec: AppSpec { uri: uri.into(), ..Default::default() },
        }
    }

    #[test]
    fn names_uris_and_headers() {
        assert!(app("grafana", "http://127.0.0.1:3000").check_and_set_defaults().is_ok());
        assert!(app("pg", "tcp://db:5432").check_and_set_defaults().is_ok());
        assert_eq!(app("pg", "tcp://db:5432").kind_label(), "TCP");
        for (name, uri, want) in [
            ("Grafana", "http://x", "DNS label"),
            ("a.b", "http://x", "DNS label"),
            ("ok", "ftp://x", "http://, https:// or tcp://"),
            ("ok", "http://", "http://, https:// or tcp://"),
        ] {
            let e = app(name, uri).check_and_set_defaults().unwrap_err().message;
            assert!(e.contains(want), "{name} {uri}: {e}");
        }
        let mut a = app("ok", "http://x");
        a.spec.public_addr = "https://ok.example.com".into();
        assert!(a.check_and_set_defaults().unwrap_err().message.contains("without a scheme"));
        let mut a = app("ok", "http://x");
        a.spec.rewrite =
            Some(Rewrite { redirect: vec![], headers: vec![Header { name: "Teleport-Jwt-Assertion".into(), value: "x".into() }] });
        assert!(a.check_and_set_defaults().unwrap_err().message.contains("sets it itself"));
        let mut a = app("ok", "http://x");
        a.spec.rewrite = Some(Rewrite {
            redirect: vec![],
            headers: vec![Header { name: "Authorization".into(), value: "Bearer {{internal.jwt}}".into() }],
        });
        assert!(a.check_and_set_defaults().is_ok());
    }
}
