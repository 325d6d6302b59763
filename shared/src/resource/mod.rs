//! Resource types as `tctl` reads and prints them (reference §2).
//!
//! Every resource is `{kind, version, metadata, spec}` (some have `sub_kind` or `status`). The
//! structs here are the one schema: YAML from `tctl create`, JSON on the wire and rows in storage
//! all go through them, so a field means the same thing everywhere.
//!
//! # Adding a resource kind
//! 1. Add a module with its struct and a `check_and_set_defaults` that validates it.
//! 2. Add a variant to [`Kind`] (its name and aliases) and to [`Resource`] (`parse`, `metadata`).
//! 3. Teach the server's resource dispatch (`server/src/api/resources.rs`) where it is stored and
//!    who may touch it; `tctl get/create/rm` pick it up from there.

pub mod access_request;
pub mod app;
pub mod auth_preference;
pub mod cert_authority;
pub mod cluster;
pub mod connector;
pub mod db;
pub mod kube_cluster;
pub mod lock;
pub mod node;
pub mod proxy;
pub mod role;
pub mod token;
pub mod tunnel_connection;
pub mod user;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use access_request::{AccessRequest, RequestState};
pub use app::App;
pub use auth_preference::AuthPreference;
pub use cert_authority::{CaType, CertAuthority};
pub use cluster::{RemoteCluster, RoleMapping, TrustedCluster};
pub use connector::Connector;
pub use db::Db;
pub use kube_cluster::KubeCluster;
pub use lock::Lock;
pub use node::Node;
pub use proxy::Proxy;
pub use role::Role;
pub use token::ProvisionToken;
pub use tunnel_connection::TunnelConnection;
pub use user::User;

use crate::error::{Error, Result};

/// String labels on a resource's metadata.
pub type LabelMap = BTreeMap<String, String>;

/// Common metadata of every resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique name within the kind.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels used for access control and filtering.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: LabelMap,
    /// When the resource expires and is removed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub expires: Option<OffsetDateTime>,
    /// The storage revision, printed so that `tctl edit` can detect a concurrent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Accepted for compatibility; only `default` exists.
    #[serde(default, skip_serializing)]
    pub namespace: Option<String>,
    /// Accepted for compatibility with newer Teleport output; ignored.
    #[serde(default, skip_serializing)]
    pub revision: Option<String>,
}

/// The longest resource name (user, role, node, ...), in bytes.
pub const MAX_NAME_LEN: usize = 253;
/// The largest resource, as JSON (Teleport's DynamoDB backend holds items up to 400 KB; a SAML
/// connector's inline IdP metadata is the largest thing a resource legitimately holds).
pub const MAX_RESOURCE_BYTES: usize = 512 * 1024;
/// Map entries and list items in one resource, counted through every level.
pub const MAX_RESOURCE_ENTRIES: usize = 10_000;
/// Labels on one resource.
pub const MAX_LABELS: usize = 256;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 4096;

/// Refuses a resource too large to keep, before it is parsed into its type: one line naming the
/// limit. Every resource a user sends passes here.
pub fn check_size(value: &serde_json::Value) -> Result<()> {
    fn entries(v: &serde_json::Value, budget: &mut usize) -> bool {
        let kids: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            _ => return true,
        };
        for k in kids {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            if !entries(k, budget) {
                return false;
            }
        }
        true
    }
    let mut budget = MAX_RESOURCE_ENTRIES;
    if !entries(value, &mut budget) {
        return Err(Error::bad_parameter(format!(
            "the resource has more than {MAX_RESOURCE_ENTRIES} fields and list items; split it into several resources"
        )));
    }
    let bytes = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if bytes > MAX_RESOURCE_BYTES {
        return Err(Error::bad_parameter(format!(
            "the resource is {} KiB; the limit is {} KiB",
            bytes.div_ceil(1024),
            MAX_RESOURCE_BYTES / 1024
        )));
    }
    Ok(())
}

impl Metadata {
    /// Metadata with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        Metadata { name: name.into(), ..Default::default() }
    }

    /// Checks the name and namespace.
    pub fn check(&self, kind: Kind) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::bad_parameter(format!("missing parameter metadata.name for {kind}")));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(Error::bad_parameter(format!("{kind} name is {} characters long; the limit is {MAX_NAME_LEN}", self.name.len())));
        }
        if self.name.chars().any(|c| c.is_control() || c == '/' && kind != Kind::CertAuthority) {
            return Err(Error::bad_parameter(format!("{kind} name {:?} contains a '/' or a control character", self.name)));
        }
        crate::names::check_name(&format!("{kind} name"), &self.name)?;
        if let Some(ns) = &self.namespace
            && ns != "default"
        {
            return Err(Error::bad_parameter(format!("namespace {ns:?} is not supported, use \"default\"")));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(Error::bad_parameter(format!("{kind} has {} labels; the limit is {MAX_LABELS}", self.labels.len())));
        }
        if self.description.as_ref().is_some_and(|d| d.len() > MAX_DESCRIPTION) {
            return Err(Error::bad_parameter(format!("metadata.description is longer than {MAX_DESCRIPTION} bytes; shorten it")));
        }
        for (k, v) in &self.labels {
            if k.is_empty() || k.len() > 256 || v.len() > 1024 {
                return Err(Error::bad_parameter(format!("invalid label {k:?}: keys must be 1-256 characters, values at most 1024")));
            }
        }
        Ok(())
    }
}

/// The resource kinds `tctl` knows, with Teleport's names and aliases (reference §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `role`
    Role,
    /// `user`
    User,
    /// `token`
    Token,
    /// `trusted_cluster`
    TrustedCluster,
    /// `remote_cluster`
    RemoteCluster,
    /// `cert_authority`
    CertAuthority,
    /// `node`
    Node,
    /// `github`
    Github,
    /// `oidc`
    Oidc,
    /// `saml`
    Saml,
    /// `lock`
    Lock,
    /// `tunnel_connection` (read-only)
    TunnelConnection,
    /// `proxy` (read-only)
    Proxy,
    /// `cluster_auth_preference`
    AuthPreference,
    /// `kube_cluster` (read-only: registered by `kubernetes_service`)
    KubeCluster,
    /// `app`
    App,
    /// `db`
    Db,
}

impl Kind {
    /// Every kind, in the order `tctl` lists them.
    pub const ALL: [Kind; 17] = [
        Kind::Role,
        Kind::User,
        Kind::Token,
        Kind::TrustedCluster,
        Kind::RemoteCluster,
        Kind::CertAuthority,
        Kind::Node,
        Kind::Github,
        Kind::Oidc,
        Kind::Saml,
        Kind::Lock,
        Kind::TunnelConnection,
        Kind::Proxy,
        Kind::AuthPreference,
        Kind::KubeCluster,
        Kind::App,
        Kind::Db,
    ];

    /// The canonical name used in YAML `kind:` and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::User => "user",
            Kind::Token => "token",
            Kind::TrustedCluster => "trusted_cluster",
            Kind::RemoteCluster => "remote_cluster",
            Kind::CertAuthority => "cert_authority",
            Kind::Node => "node",
            Kind::Github => "github",
            Kind::Oidc => "oidc",
            Kind::Saml => "saml",
            Kind::Lock => "lock",
            Kind::TunnelConnection => "tunnel_connection",
            Kind::Proxy => "proxy",
            Kind::AuthPreference => "cluster_auth_preference",
            Kind::KubeCluster => "kube_cluster",
            Kind::App => "app",
            Kind::Db => "db",
        }
    }

    /// Names accepted on the command line besides [`Kind::as_str`].
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Kind::Role => &["roles"],
            Kind::User => &["users"],
            Kind::Token => &["tokens"],
            Kind::TrustedCluster => &["tc", "cluster", "clusters", "trusted_clusters"],
            Kind::RemoteCluster => &["rc", "rcs", "remote_clusters"],
            Kind::CertAuthority => &["cas", "cert_authorities", "ca"],
            Kind::Node => &["nodes"],
            Kind::Github => &["githubs"],
            Kind::Oidc => &["oidcs"],
            Kind::Saml => &["samls"],
            Kind::Lock => &["locks"],
            Kind::TunnelConnection => &["tunnel_connections", "tunnels"],
            Kind::Proxy => &["proxies"],
            Kind::AuthPreference => &["cap", "cluster_auth_preferences", "auth_preference"],
            Kind::KubeCluster => &["kube_clusters", "kube"],
            Kind::App => &["apps"],
            Kind::Db => &["dbs", "database", "databases"],
        }
    }

    /// Parses a kind or alias, case-insensitively.
    pub fn parse(s: &str) -> Result<Kind> {
        let lower = s.trim().to_ascii_lowercase();
        Kind::ALL.into_iter().find(|k| k.as_str() == lower || k.aliases().contains(&lower.as_str())).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            Error::bad_parameter(format!("unknown resource kind {s:?}; known kinds: {}", known.join(", ")))
        })
    }

    /// Whether `tctl create` accepts this kind.
    pub fn creatable(self) -> bool {
        !matches!(self, Kind::RemoteCluster | Kind::CertAuthority | Kind::Node | Kind::TunnelConnection | Kind::Proxy | Kind::KubeCluster)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference such as `role/visitor`, `rc/leaf` or `cert_authority/host/root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// The kind.
    pub kind: Kind,
    /// The name, if any (for CAs, `<type>/<cluster>` or just `<type>`).
    pub name: Option<String>,
}

impl ResourceRef {
    /// Parses `kind[/name]`.
    pub fn parse(s: &str) -> Result<ResourceRef> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n.to_string())),
            None => (s, None),
        };
        let kind = Kind::parse(kind)?;
        let name = name.filter(|n| !n.is_empty());
        Ok(ResourceRef { kind, name })
    }
}

/// Any resource, tagged by its `kind`.
// Roles are large, but resources are moved rarely and never in hot paths; boxing would only
// add noise at every construction site.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// A role.
    Role(Role),
    /// A user.
    User(User),
    /// A join token.
    Token(ProvisionToken),
    /// A trusted_cluster (leaf side).
    TrustedCluster(TrustedCluster),
    /// A remote_cluster (root side).
    RemoteCluster(RemoteCluster),
    /// A certificate authority.
    CertAuthority(CertAuthority),
    /// An SSH node.
    Node(Node),
    /// A github, oidc or saml connector.
    Connector(Connector),
    /// A lock.
    Lock(Lock),
    /// A tunnel connection.
    TunnelConnection(TunnelConnection),
    /// A proxy process.
    Proxy(Proxy),
    /// The cluster's authentication preference.
    AuthPreference(AuthPreference),
    /// A Kubernetes cluster.
    KubeCluster(KubeCluster),
    /// An application.
    App(App),
    /// `db`
    Db(Db),
}

impl Resource {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Role(_) => Kind::Role,
            Resource::User(_) => Kind::User,
            Resource::Token(_) => Kind::Token,
            Resource::TrustedCluster(_) => Kind::TrustedCluster,
            Resource::RemoteCluster(_) => Kind::RemoteCluster,
            Resource::CertAuthority(_) => Kind::CertAuthority,
            Resource::Node(_) => Kind::Node,
            Resource::Connector(c) => c.kind_enum(),
            Resource::Lock(_) => Kind::Lock,
            Resource::TunnelConnection(_) => Kind::TunnelConnection,
            Resource::Proxy(_) => Kind::Proxy,
            Resource::AuthPreference(_) => Kind::AuthPreference,
            Resource::KubeCluster(_) => Kind::KubeCluster,
            Resource::App(_) => Kind::App,
            Resource::Db(_) => Kind::Db,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Resource::Role(r) => &r.metadata,
            Resource::User(r) => &r.metadata,
            Resource::Token(r) => &r.metadata,
            Resource::TrustedCluster(r) => &r.metadata,
            Resource::RemoteCluster(r) => &r.metadata,
            Resource::CertAuthority(r) => &r.metadata,
            Resource::Node(r) => &r.metadata,
            Resource::Connector(r) => &r.metadata,
            Resource::Lock(r) => &r.metadata,
            Resource::TunnelConnection(r) => &r.metadata,
            Resource::Proxy(r) => &r.metadata,
            Resource::AuthPreference(r) => &r.metadata,
            Resource::KubeCluster(r) => &r.metadata,
            Resource::App(r) => &r.metadata,
            Resource::Db(r) => &r.metadata,
        }
    }

    /// The metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        match self {
            Resource::Role(r) => &mut r.metadata,
            Resource::User(r) => &mut r.metadata,
            Resource::Token(r) => &mut r.metadata,
            Resource::TrustedCluster(r) => &mut r.metadata,
            Resource::RemoteCluster(r) => &mut r.metadata,
            Resource::CertAuthority(r) => &mut r.metadata,
            Resource::Node(r) => &mut r.metadata,
            Resource::Connector(r) => &mut r.metadata,
            Resource::Lock(r) => &mut r.metadata,
            Resource::TunnelConnection(r) => &mut r.metadata,
            Resource::Proxy(r) => &mut r.metadata,
            Resource::AuthPreference(r) => &mut r.metadata,
            Resource::KubeCluster(r) => &mut r.metadata,
            Resource::App(r) => &mut r.metadata,
            Resource::Db(r) => &mut r.metadata,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// Builds a typed resource from a JSON value, dispatching on `kind`.
    ///
    /// Errors name the kind and the field: serde's message (`unknown field ...`, `invalid type
    /// ...`) is kept and prefixed with where it was found.
    pub fn from_value(value: serde_json::Value) -> Result<Resource> {
        check_size(&value)?;
        let kind_str = match value.get("kind") {
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(_) => {
                return Err(Error::bad_parameter("field \"kind\" must be a string such as role or trusted_cluster"));
            }
            None => {
                return Err(Error::bad_parameter("missing field \"kind\"; every resource needs kind, version and metadata"));
            }
        };
        if kind_str == "access_request" {
            return Err(Error::bad_parameter(
                "access requests are made with 'tsh request create --roles=...' and decided with 'tsh request review' or 'tctl request approve|deny'",
            ));
        }
        let kind = Kind::parse(&kind_str)?;
        if kind.as_str() != kind_str {
            return Err(Error::bad_parameter(format!("unknown resource kind {kind_str:?}; did you mean {:?}?", kind.as_str())));
        }
        fn typed<T: serde::de::DeserializeOwned>(kind: Kind, v: serde_json::Value) -> Result<T> {
            serde_path_to_error(kind, v)
        }
        Ok(match kind {
            Kind::Role => Resource::Role(typed(kind, value)?),
            Kind::User => Resource::User(typed(kind, value)?),
            Kind::Token => Resource::Token(typed(kind, value)?),
            Kind::TrustedCluster => Resource::TrustedCluster(typed(kind, value)?),
            Kind::RemoteCluster => Resource::RemoteCluster(typed(kind, value)?),
            Kind::CertAuthority => Resource::CertAuthority(typed(kind, value)?),
            Kind::Node => Resource::Node(typed(kind, value)?),
            Kind::Github | Kind::Oidc | Kind::Saml => Resource::Connector(typed(kind, value)?),
            Kind::Lock => Resource::Lock(typed(kind, value)?),
            Kind::TunnelConnection => Resource::TunnelConnection(typed(kind, value)?),
            Kind::Proxy => Resource::Proxy(typed(kind, value)?),
            Kind::AuthPreference => Resource::AuthPreference(typed(kind, value)?),
            Kind::KubeCluster => Resource::KubeCluster(typed(kind, value)?),
            Kind::App => Resource::App(typed(kind, value)?),
            Kind::Db => Resource::Db(typed(kind, value)?),
        })
    }

    /// Validates a resource a user asked to create (`tctl create`) and fills in defaults, with
    /// the same rules the server applies. Kinds the server owns are refused with a hint.
    pub fn check_creatable(&mut self) -> Result<()> {
        match self {
            Resource::Role(r) => r.check_and_set_defaults(),
            Resource::User(u) => u.check_and_set_defaults(),
            Resource::Token(t) => t.check_and_set_defaults(),
            Resource::TrustedCluster(t) => t.check_and_set_defaults(),
            Resource::Connector(c) => c.check_and_set_defaults(),
            Resource::Lock(l) => l.check_and_set_defaults(),
            Resource::AuthPreference(p) => p.check_and_set_defaults(),
            Resource::App(a) => a.check_and_set_defaults(),
            Resource::Db(d) => d.check_and_set_defaults(),
            Resource::KubeCluster(_) => Err(Error::bad_parameter(
                "creating resources of type \"kube_cluster\" is not supported; a kubernetes_service registers its clusters (teleport.yaml: kubernetes_service.kube_cluster_name and kubeconfig_file)",
            )),
            Resource::RemoteCluster(_)
            | Resource::CertAuthority(_)
            | Resource::Node(_)
            | Resource::TunnelConnection(_)
            | Resource::Proxy(_) => {
                let hint = if self.kind() == Kind::RemoteCluster { "; use 'tctl update rc/<name> --set-labels=...'" } else { "" };
                Err(Error::bad_parameter(format!("creating resources of type {:?} is not supported{hint}", self.kind().as_str())))
            }
        }
    }

    /// Serializes to a JSON value (keys sorted, as `tctl get` prints them).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Deserializes with serde_json, turning its message into a one-line, field-naming error.
fn serde_path_to_error<T: serde::de::DeserializeOwned>(kind: Kind, v: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        // serde_json appends " at line 0 column 0" for values; that position is meaningless here.
        let msg = msg.trim_end_matches(" at line 0 column 0");
        if path.is_empty() || path == "." {
            Error::bad_parameter(format!("invalid {kind} resource: {msg}"))
        } else {
            Error::bad_parameter(format!("invalid {kind} resource: field {path}: {msg}"))
        }
    })
}

/// Serde for Go `[]byte` fields: standard base64 in JSON and YAML.
pub mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes bytes as base64.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    /// Decodes base64 into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// True for an empty vector (for `skip_serializing_if`).
pub fn is_empty_vec<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// True for `false` (for `skip_serializing_if`).
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// Parses `k=v,k2=v2` into labels (for `--labels` and `--set-labels`).
pub fn parse_label_spec(spec: &str) -> Result<LabelMap> {
    let mut out = LabelMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| Error::bad_parameter(format!("invalid label {part:?}: expected key=value, such as env=demo")))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(Error::bad_parameter(format!("invalid label {part:?}: the key is empty")));
        }
        out.insert(k.to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// Formats labels as `k=v` joined by `,`, plain keys first, then keys with `/`, each sorted
/// (Teleport's `sortedLabels`, without its v12 bug of dropping values of `teleport.dev/` keys).
pub fn format_labels(labels: &LabelMap) -> String {
    let (plain, namespaced): (Vec<_>, Vec<_>) = labels.iter().partition(|(k, _)| !k.contains('/'));
    plain.into_iter().chain(namespaced).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_resources_are_refused_before_they_are_parsed() {
        let role = |labels: usize, extra: serde_json::Value| {
            let labels: serde_json::Map<String, serde_json::Value> =
                (0..labels).map(|i| (format!("k{i}"), serde_json::json!("v"))).collect();
            let mut v = serde_json::json!({"kind": "role", "version": "v7", "metadata": {"name": "r", "labels": labels}});
            if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
                o.extend(e);
            }
            v
        };
        let msg = |v| Resource::from_value(v).err().map(|e| e.message).unwrap_or_default();
        assert!(msg(role(100_000, serde_json::json!({}))).contains("more than 10000 fields"));
        let mut r = Resource::from_value(role(300, serde_json::json!({}))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.check_creatable().err().map(|e| e.message).unwrap_or_default(), "role has 300 labels; the limit is 256");
        let big = serde_json::json!({"spec": {"allow": {"logins": vec!["x".repeat(700); 1000]}}});
        assert_eq!(msg(role(0, big)), "the resource is 687 KiB; the limit is 512 KiB");
        let ok = role(256, serde_json::json!({}));
        assert!(Resource::from_value(ok).and_then(|mut r| r.check_creatable()).is_ok(), "256 labels are fine");
    }

    #[test]
    fn kinds_and_aliases_parse() {
        assert_eq!(Kind::parse("rc").ok(), Some(Kind::RemoteCluster));
        assert_eq!(Kind::parse("TC").ok(), Some(Kind::TrustedCluster));
        assert_eq!(Kind::parse("cas").ok(), Some(Kind::CertAuthority));
        assert_eq!(Kind::parse("roles").ok(), Some(Kind::Role));
        let err = Kind::parse("rolez").err().map(|e| e.message).unwrap_or_default();
        assert!(err.contains("unknown resource kind \"rolez\""), "{err}");
        assert!(err.contains("trusted_cluster"), "{err}");
    }

    #[test]
    fn refs_parse() {
        let r = ResourceRef::parse("cert_authority/host/root").ok();
        assert_eq!(r.map(|r| (r.kind, r.name)), Some((Kind::CertAuthority, Some("host/root".into()))));
        let r = ResourceRef::parse("users").ok();
        assert_eq!(r.map(|r| (r.kind, r.name)), Some((Kind::User, None)));
    }

    #[test]
    fn labels_parse_and_format() {
        let l = parse_label_spec("env=demo, a/b=c,team=x").ok().unwrap_or_default();
        assert_eq!(format_labels(&l), "env=demo,team=x,a/b=c");
        assert!(parse_label_spec("novalue").is_err());
        assert!(parse_label_spec("=v").is_err());
    }

    #[test]
    fn unknown_kind_in_document_lists_known() {
        let err = Resource::from_value(serde_json::json!({"kind": "rol", "metadata": {"name": "x"}}))
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("known kinds"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = Resource::from_value(serde_json::json!({
            "kind": "role", "version": "v5", "metadata": {"name": "x"},
            "spec": {"allow": {"logins": "root"}}
        }))
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
        assert!(err.contains("invalid role resource"), "{err}");
        assert!(err.contains("field spec.allow.logins: invalid type"), "{err}");
    }
}
