//! `role` (v3–v8): who may log in where, and which API calls they may make (reference §2.6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Kind, Metadata, is_empty_vec};
use crate::error::{Error, Result};
use crate::labels::{self, LabelValues, Labels};
use crate::template;

/// The versions we accept.
pub const ROLE_VERSIONS: &[&str] = &["v3", "v4", "v5", "v6", "v7", "v8"];

/// The default `max_session_ttl`.
pub const DEFAULT_MAX_SESSION_TTL: &str = "30h0m0s";

/// A role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Always `role`.
    pub kind: String,
    /// `v3` … `v8`.
    pub version: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// Options and conditions.
    #[serde(default)]
    pub spec: RoleSpec,
}

/// The body of a role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Session options.
    #[serde(default)]
    pub options: RoleOptions,
    /// What the role grants.
    #[serde(default)]
    pub allow: RoleConditions,
    /// What the role forbids; deny always wins.
    #[serde(default)]
    pub deny: RoleConditions,
}

/// Role options. Options we do not act on are kept as given so a role round-trips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleOptions {
    /// Longest certificate TTL this role allows (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_ttl: Option<String>,
    /// Allow SSH agent forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_agent: Option<bool>,
    /// Allow port forwarding (the older switch; `ssh_port_forwarding` is the newer one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forwarding: Option<bool>,
    /// Local (`-L`, `-D`) and remote (`-R`) forwarding, each with its own switch (Teleport 17+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_port_forwarding: Option<SshPortForwarding>,
    /// Allow copying files (SFTP, `scp`); every role must allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_file_copy: Option<bool>,
    /// `standard` or `legacy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_format: Option<String>,
    /// Allow X11 forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_x11_forwarding: Option<bool>,
    /// Cut live sessions when the certificate expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_expired_cert: Option<bool>,
    /// Most sessions (channels) one SSH connection may have open at once; 0 or absent: the
    /// proxy's and node's own cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<i64>,
    /// Most SSH connections a user may have open at once, cluster-wide; 0 or absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// End a session after this long without input or output (Go duration); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_idle_timeout: Option<String>,
    /// When a request is needed: `optional` (default), `reason` (one must be given) or `always`
    /// (`tsh login` asks for the requestable roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_access: Option<String>,
    /// What tsh shows when asking for a request's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_prompt: Option<String>,
    /// Any other option, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `request:` of a role's allow or deny side (Teleport's `AccessRequestConditions`). Role names
/// are globs (`*`) or `^…$` regular expressions, as Teleport reads them. Fields this product does
/// not act on (`claims_to_roles`, `annotations`, ...) are kept so the role round-trips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestConditions {
    /// Roles that may be requested.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub roles: Vec<String>,
    /// How many approvals (or denials) decide a request; none: one approval or one denial.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub thresholds: Vec<Threshold>,
    /// Reviewers suggested to the requester.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub suggested_reviewers: Vec<String>,
    /// Roles whose resources may be searched to request them (accepted; not acted on yet).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub search_as_roles: Vec<String>,
    /// The longest access a request may grant (Go duration; at most a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Anything else, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One threshold: after `approve` approvals the request is approved, after `deny` denials denied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Its name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Approvals needed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<u32>,
    /// Denials needed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<u32>,
    /// Anything else (`filter`), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `review_requests:` of a role (Teleport's `AccessReviewConditions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewConditions {
    /// Roles whose requests the holder may review (globs or `^…$`).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub roles: Vec<String>,
    /// Anything else (`where`, `preview_as_roles`, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The longest access any request grants, whatever a role says (Teleport's limit).
pub const MAX_REQUEST_DURATION: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// Whether role-name pattern `pattern` (a glob with `*`, or a `^…$` regular expression) matches
/// `name`. A malformed expression matches nothing.
pub fn role_matches(pattern: &str, name: &str) -> bool {
    if pattern.starts_with('^') && pattern.ends_with('$') {
        return regex::Regex::new(pattern).is_ok_and(|r| r.is_match(name));
    }
    glob_match(pattern, name)
}

fn glob_match(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((head, rest)) => {
            let Some(s) = s.strip_prefix(head) else { return false };
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).filter(|i| s.is_char_boundary(*i)).any(|i| glob_match(rest, &s[i..]))
        }
    }
}

/// `options.ssh_port_forwarding`: `{local: {enabled}, remote: {enabled}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshPortForwarding {
    /// `-L` and `-D`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<ForwardSwitch>,
    /// `-R`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<ForwardSwitch>,
}

/// One direction of `ssh_port_forwarding`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSwitch {
    /// Unset: no opinion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// An API permission: verbs on resource kinds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Resource kinds, or `*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// `list`, `read`, `create`, `update`, `delete`, or `*`.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// A `where` expression; accepted but not evaluated (we treat the rule as not applying when set).
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub actions: Vec<String>,
}

/// One `join_sessions` entry: sessions of owners holding one of `roles` (globs), of one of
/// `kinds`, may be joined in one of `modes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSessions {
    /// A name for the policy.
    #[serde(default)]
    pub name: String,
    /// Roles of the session's owner (globs, or `^...$` regular expressions).
    #[serde(default)]
    pub roles: Vec<String>,
    /// `ssh`, `k8s`, `db`, `app`, `desktop`, or `*`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// `observer`, `peer`, `moderator`.
    #[serde(default)]
    pub modes: Vec<String>,
}

/// The participant modes a `join_sessions` entry may name.
pub const JOIN_MODES: [&str; 3] = ["observer", "peer", "moderator"];
/// The session kinds a `join_sessions` entry may name.
pub const SESSION_KINDS: [&str; 6] = ["ssh", "k8s", "db", "app", "desktop", "*"];

/// Rules in `allow` or in `deny`.
pub const MAX_RULES: usize = 256;
/// Keys of one label selector (`node_labels`, `cluster_labels`, ...).
pub const MAX_SELECTOR_KEYS: usize = 256;
/// Entries of one list (`logins`, `kubernetes_groups`, ...).
pub const MAX_LIST: usize = 1024;

/// Allow or deny conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConditions {
    /// Unix logins.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub logins: Vec<String>,
    /// Which nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<Labels>,
    /// Which leaf clusters (checked on the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_labels: Option<Labels>,
    /// Which applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_labels: Option<Labels>,
    /// Which Kubernetes clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_labels: Option<Labels>,
    /// Which databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_labels: Option<Labels>,
    /// Which Windows desktops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_desktop_labels: Option<Labels>,
    /// Kubernetes groups.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub kubernetes_groups: Vec<String>,
    /// Kubernetes users.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub kubernetes_users: Vec<String>,
    /// Database names.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub db_names: Vec<String>,
    /// Database users.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub db_users: Vec<String>,
    /// Windows logins.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub windows_desktop_logins: Vec<String>,
    /// AWS role ARNs.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub aws_role_arns: Vec<String>,
    /// Azure identities.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub azure_identities: Vec<String>,
    /// Host groups for auto-provisioned users.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub host_groups: Vec<String>,
    /// Sudoers lines for auto-provisioned users.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub host_sudoers: Vec<String>,
    /// API permissions.
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub rules: Vec<Rule>,
    /// Namespaces (only `default` exists).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub namespaces: Vec<String>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonate: Option<serde_json::Value>,
    /// Which roles the holder may request (access requests; `deny.request.roles` forbids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestConditions>,
    /// Whose requests for which roles the holder may review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_requests: Option<ReviewConditions>,
    /// Whose sessions these roles may join, and how (`tsh join`, the web's Active Sessions).
    #[serde(default, skip_serializing_if = "is_empty_vec")]
    pub join_sessions: Vec<JoinSessions>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_session_join: Option<serde_json::Value>,
    /// Which Kubernetes objects, and with which verbs (role v7: singular kinds such as `pod`,
    /// or `namespace` for everything in one; v8's plural names are read as well). Unset: every
    /// object (v7's default `{kind: '*', namespace: '*', name: '*', verbs: ['*']}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_resources: Option<Vec<crate::kube::KubeResource>>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_service_accounts: Option<serde_json::Value>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_roles: Option<serde_json::Value>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_service_labels: Option<serde_json::Value>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_labels_expression: Option<serde_json::Value>,
    /// Accepted and kept; not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels_expression: Option<serde_json::Value>,
}

impl RoleConditions {
    fn template_fields(&self) -> [(&'static str, &Vec<String>); 10] {
        [
            ("logins", &self.logins),
            ("kubernetes_groups", &self.kubernetes_groups),
            ("kubernetes_users", &self.kubernetes_users),
            ("db_names", &self.db_names),
            ("db_users", &self.db_users),
            ("windows_desktop_logins", &self.windows_desktop_logins),
            ("aws_role_arns", &self.aws_role_arns),
            ("azure_identities", &self.azure_identities),
            ("host_groups", &self.host_groups),
            ("host_sudoers", &self.host_sudoers),
        ]
    }

    fn label_fields(&self) -> [(&'static str, &Option<Labels>); 6] {
        [
            ("node_labels", &self.node_labels),
            ("cluster_labels", &self.cluster_labels),
            ("app_labels", &self.app_labels),
            ("kubernetes_labels", &self.kubernetes_labels),
            ("db_labels", &self.db_labels),
            ("windows_desktop_labels", &self.windows_desktop_labels),
        ]
    }

    fn validate(&self, side: &str) -> Result<()> {
        for (field, values) in self.template_fields() {
            if values.len() > MAX_LIST {
                return Err(Error::bad_parameter(format!("{side}.{field} has {} entries; the limit is {MAX_LIST}", values.len())));
            }
        }
        for (field, values) in self.template_fields() {
            template::validate_values(&format!("{side}.{field}"), values)?;
        }
        for (field, labels) in self.label_fields() {
            if let Some(l) = labels {
                if l.len() > MAX_SELECTOR_KEYS {
                    return Err(Error::bad_parameter(format!("{side}.{field} has {} keys; the limit is {MAX_SELECTOR_KEYS}", l.len())));
                }
                labels::validate(&format!("{side}.{field}"), l)?;
            }
        }
        if self.join_sessions.len() > MAX_RULES {
            return Err(Error::bad_parameter(format!(
                "{side}.join_sessions has {} entries; the limit is {MAX_RULES}",
                self.join_sessions.len()
            )));
        }
        for j in &self.join_sessions {
            if let Some(m) = j.modes.iter().find(|m| !JOIN_MODES.contains(&m.as_str())) {
                return Err(Error::bad_parameter(format!(
                    "{side}.join_sessions {:?}: unknown mode {m:?}; use {}",
                    j.name,
                    JOIN_MODES.join(", ")
                )));
            }
            if let Some(k) = j.kinds.iter().find(|k| !SESSION_KINDS.contains(&k.as_str())) {
                return Err(Error::bad_parameter(format!(
                    "{side}.join_sessions {:?}: unknown kind {k:?}; use {}",
                    j.name,
                    SESSION_KINDS.join(", ")
                )));
            }
            if j.roles.len() > MAX_LIST {
                return Err(Error::bad_parameter(format!(
                    "{side}.join_sessions {:?} has {} roles; the limit is {MAX_LIST}",
                    j.name,
                    j.roles.len()
                )));
            }
            for r in j.roles.iter().filter(|r| r.starts_with('^')) {
                labels::compile_expression(r).map_err(|e| {
                    Error::bad_parameter(format!("{side}.join_sessions {:?}: {r:?} is not a valid expression: {e}", j.name))
                })?;
            }
        }
        if self.rules.len() > MAX_RULES {
            return Err(Error::bad_parameter(format!("{side}.rules has {} rules; the limit is {MAX_RULES}", self.rules.len())));
        }
        for rule in &self.rules {
            if rule.resources.is_empty() || rule.verbs.is_empty() {
                return Err(Error::bad_parameter(format!(
                    "{side}.rules: every rule needs resources and verbs, such as resources: [role] verbs: [list, read]"
                )));
            }
            for v in &rule.verbs {
                if !VERBS.contains(&v.as_str()) {
                    return Err(Error::bad_parameter(format!("{side}.rules: unknown verb {v:?}; known verbs: {}", VERBS.join(", "))));
                }
            }
        }
        for r in self.kubernetes_resources.iter().flatten() {
            r.check(side)?;
        }
        for ns in &self.namespaces {
            if ns != "default" && ns != "*" {
                return Err(Error::bad_parameter(format!("{side}.namespaces: namespace {ns:?} is not supported")));
            }
        }
        Ok(())
    }

    /// Applies traits to every templated field (reference §4.3), logins filtered to valid Unix names.
    pub fn apply_traits(&self, traits: &template::Traits) -> RoleConditions {
        let mut out = self.clone();
        out.logins = template::apply_values(&self.logins, traits).into_iter().filter(|l| is_valid_unix_login(l)).collect();
        out.kubernetes_groups = template::apply_values(&self.kubernetes_groups, traits);
        out.kubernetes_users = template::apply_values(&self.kubernetes_users, traits);
        out.db_names = template::apply_values(&self.db_names, traits);
        out.db_users = template::apply_values(&self.db_users, traits);
        out.windows_desktop_logins = template::apply_values(&self.windows_desktop_logins, traits);
        out.aws_role_arns = template::apply_values(&self.aws_role_arns, traits);
        out.azure_identities = template::apply_values(&self.azure_identities, traits);
        out.host_groups = template::apply_values(&self.host_groups, traits);
        out.host_sudoers = template::apply_values(&self.host_sudoers, traits);
        let apply = |l: &Option<Labels>| l.as_ref().map(|l| labels::apply_traits(l, traits));
        out.node_labels = apply(&self.node_labels);
        out.cluster_labels = apply(&self.cluster_labels);
        out.app_labels = apply(&self.app_labels);
        out.kubernetes_labels = apply(&self.kubernetes_labels);
        out.db_labels = apply(&self.db_labels);
        out.windows_desktop_labels = apply(&self.windows_desktop_labels);
        out
    }
}

/// Verbs a rule may name.
pub const VERBS: &[&str] =
    &["*", "list", "read", "readnosecrets", "create", "update", "delete", "create_enroll_token", "enroll", "use", "rotate"];

/// Whether `login` is usable as a Unix login (Teleport drops others, such as `-teleport-internal-join`).
pub fn is_valid_unix_login(login: &str) -> bool {
    let bytes = login.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 || bytes[0] == b'-' {
        return false;
    }
    let body = login.strip_suffix('$').unwrap_or(login);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' || b == b'@')
}

impl Role {
    /// A role with the given name and spec at version v7.
    pub fn new(name: &str, spec: RoleSpec) -> Role {
        Role { kind: Kind::Role.as_str().into(), version: "v7".into(), metadata: Metadata::named(name), spec }
    }

    /// Validates the role and fills in the version's defaults (reference §2.6).
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.kind != Kind::Role.as_str() {
            return Err(Error::bad_parameter(format!("expected kind role, got {:?}", self.kind)));
        }
        self.metadata.check(Kind::Role)?;
        if !ROLE_VERSIONS.contains(&self.version.as_str()) {
            return Err(Error::bad_parameter(format!("unrecognized role version: {}", self.version)));
        }
        if self.spec.allow.logins.iter().any(|l| l.contains('*')) {
            return Err(Error::bad_parameter("wildcard matcher is not allowed in logins"));
        }
        self.spec.allow.validate("allow")?;
        self.spec.deny.validate("deny")?;
        if let Some(ttl) = &self.spec.options.max_session_ttl {
            crate::timefmt::parse_duration(ttl).map_err(|e| e.context("options.max_session_ttl"))?;
        }
        if let Some(t) = &self.spec.options.client_idle_timeout {
            crate::timefmt::parse_duration(t).map_err(|e| e.context("options.client_idle_timeout"))?;
        }
        for (name, v) in [("max_sessions", self.spec.options.max_sessions), ("max_connections", self.spec.options.max_connections)] {
            if v.is_some_and(|n| n < 0) {
                return Err(Error::bad_parameter(format!("options.{name} must be 0 (no limit) or a positive number")));
            }
        }
        if let Some(m) = &self.spec.options.request_access
            && !["optional", "reason", "always"].contains(&m.as_str())
        {
            return Err(Error::bad_parameter(format!("options.request_access: {m:?} is not supported, use optional, reason or always")));
        }
        for (side, c) in [("allow", &self.spec.allow), ("deny", &self.spec.deny)] {
            if let Some(r) = &c.request {
                for p in r.roles.iter().chain(&r.search_as_roles) {
                    if p.starts_with('^') && p.ends_with('$') && regex::Regex::new(p).is_err() {
                        return Err(Error::bad_parameter(format!("{side}.request.roles: {p:?} is not a valid regular expression")));
                    }
                }
                if let Some(d) = &r.max_duration {
                    let v = crate::timefmt::parse_duration(d).map_err(|e| e.context(format!("{side}.request.max_duration")))?;
                    if v > MAX_REQUEST_DURATION {
                        return Err(Error::bad_parameter(format!("{side}.request.max_duration may be at most 7 days (168h)")));
                    }
                }
                if r.thresholds.iter().any(|t| t.approve == Some(0) || t.deny == Some(0)) {
                    return Err(Error::bad_parameter(format!("{side}.request.thresholds: approve and deny must be at least 1")));
                }
            }
            if let Some(r) = &c.review_requests {
                for p in &r.roles {
                    if p.starts_with('^') && p.ends_with('$') && regex::Regex::new(p).is_err() {
                        return Err(Error::bad_parameter(format!("{side}.review_requests.roles: {p:?} is not a valid regular expression")));
                    }
                }
            }
        }
        if let Some(f) = &self.spec.options.cert_format
            && f != "standard"
            && f != "legacy"
        {
            return Err(Error::bad_parameter(format!("options.cert_format: {f:?} is not supported, use standard or legacy")));
        }

        // Version defaults.
        let allow = &mut self.spec.allow;
        if self.version == "v3" {
            if allow.node_labels.is_none() {
                allow.node_labels = Some(if allow.logins.is_empty() { Labels::new() } else { labels::wildcard() });
            }
            for l in [&mut allow.app_labels, &mut allow.kubernetes_labels, &mut allow.db_labels] {
                if l.is_none() {
                    *l = Some(labels::wildcard());
                }
            }
        }
        if allow.namespaces.is_empty() {
            allow.namespaces = vec!["default".into()];
        }
        if !self.spec.deny.is_empty_conditions() && self.spec.deny.namespaces.is_empty() {
            self.spec.deny.namespaces = vec!["default".into()];
        }
        let o = &mut self.spec.options;
        o.max_session_ttl.get_or_insert_with(|| DEFAULT_MAX_SESSION_TTL.into());
        o.forward_agent.get_or_insert(false);
        o.port_forwarding.get_or_insert(true);
        o.cert_format.get_or_insert_with(|| "standard".into());
        Ok(())
    }

    /// The role's `max_session_ttl`.
    pub fn max_session_ttl(&self) -> std::time::Duration {
        self.spec
            .options
            .max_session_ttl
            .as_deref()
            .and_then(|s| crate::timefmt::parse_duration(s).ok())
            .unwrap_or(std::time::Duration::from_secs(30 * 3600))
    }
}

impl RoleConditions {
    fn is_empty_conditions(&self) -> bool {
        *self == RoleConditions { namespaces: self.namespaces.clone(), ..Default::default() }
    }
}

fn rule(resources: &[&str], verbs: &[&str]) -> Rule {
    Rule {
        resources: resources.iter().map(|s| s.to_string()).collect(),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        where_: None,
        actions: vec![],
    }
}

/// The resource kinds `editor` manages.
pub const EDITOR_RESOURCES: &[&str] = &[
    "user",
    "role",
    "token",
    "trusted_cluster",
    "remote_cluster",
    "cert_authority",
    "node",
    "github",
    "oidc",
    "saml",
    "event",
    "session",
    "lock",
    "cluster_auth_preference",
];

/// Teleport's `where` on the preset access role's `session` rule: a user's own sessions.
pub const OWN_SESSIONS: &str = "contains(session.participants, user.metadata.name)";

/// The preset roles every cluster starts with: `access`, `editor`, `auditor`.
pub fn presets() -> Vec<Role> {
    let mut access = Role::new(
        "access",
        RoleSpec {
            allow: RoleConditions {
                logins: vec!["{{internal.logins}}".into()],
                node_labels: Some(labels::wildcard()),
                kubernetes_groups: vec!["{{internal.kubernetes_groups}}".into()],
                kubernetes_users: vec!["{{internal.kubernetes_users}}".into()],
                db_names: vec!["{{internal.db_names}}".into()],
                db_users: vec!["{{internal.db_users}}".into()],
                aws_role_arns: vec!["{{internal.aws_role_arns}}".into()],
                rules: vec![
                    rule(&["event"], &["list", "read"]),
                    Rule { where_: Some(OWN_SESSIONS.into()), ..rule(&["session"], &["list", "read"]) },
                ],
                ..Default::default()
            },
            ..Default::default()
        },
    );
    access.metadata.description = Some("Access cluster resources".into());
    let mut editor = Role::new(
        "editor",
        RoleSpec { allow: RoleConditions { rules: vec![rule(EDITOR_RESOURCES, &["*"])], ..Default::default() }, ..Default::default() },
    );
    editor.metadata.description = Some("Edit cluster configuration".into());
    let mut auditor = Role::new(
        "auditor",
        RoleSpec {
            allow: RoleConditions {
                rules: vec![rule(&["event"], &["list", "read"]), rule(&["session"], &["list", "read"])],
                ..Default::default()
            },
            ..Default::default()
        },
    );
    auditor.metadata.description = Some("Review cluster events and replay sessions".into());
    let mut out = vec![access, editor, auditor];
    for r in &mut out {
        // Presets are valid by construction; a failure here is a bug caught by the unit tests.
        let _ = r.check_and_set_defaults();
    }
    out
}

/// Label values for a single selector (convenience for tests and presets).
pub fn one_label(key: &str, value: &str) -> Labels {
    let mut l = Labels::new();
    l.insert(key.into(), LabelValues(vec![value.into()]));
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Resource;

    fn parse(yaml: &str) -> Result<Role> {
        let v: serde_json::Value = serde_yaml_ng::from_str(yaml).map_err(|e| Error::bad_parameter(e.to_string()))?;
        match Resource::from_value(v)? {
            Resource::Role(mut r) => {
                r.check_and_set_defaults()?;
                Ok(r)
            }
            _ => Err(Error::bad_parameter("not a role")),
        }
    }

    #[test]
    fn join_sessions_are_typed_checked_and_round_trip() {
        let r = parse("kind: role\nversion: v7\nmetadata: {name: w}\nspec:\n  allow:\n    join_sessions:\n    - {name: watch, roles: [access], kinds: [ssh], modes: [observer, peer]}\n").unwrap();
        assert_eq!(r.spec.allow.join_sessions[0].modes, vec!["observer".to_string(), "peer".to_string()]);
        let again: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(again["spec"]["allow"]["join_sessions"][0]["kinds"], serde_json::json!(["ssh"]));
        let bad = parse(
            "kind: role\nversion: v7\nmetadata: {name: w}\nspec:\n  allow:\n    join_sessions:\n    - {name: watch, roles: [access], kinds: [ssh], modes: [boss]}\n",
        );
        assert!(bad.unwrap_err().message.contains("unknown mode \"boss\""));
        let kind = parse(
            "kind: role\nversion: v7\nmetadata: {name: w}\nspec:\n  allow:\n    join_sessions:\n    - {name: watch, roles: [access], kinds: [telnet], modes: [peer]}\n",
        );
        assert!(kind.unwrap_err().message.contains("unknown kind \"telnet\""));
    }

    #[test]
    fn guide_visitor_role_parses() {
        let r = parse(
            "kind: role\nversion: v5\nmetadata:\n  name: visitor\nspec:\n  allow:\n    logins:\n      - visitor\n    node_labels:\n      '*': '*'\n",
        );
        let r = r.map_err(|e| e.message);
        assert!(r.is_ok(), "{r:?}");
        let r = r.unwrap_or_else(|_| Role::new("x", RoleSpec::default()));
        assert_eq!(r.spec.allow.logins, vec!["visitor"]);
        assert_eq!(r.spec.allow.node_labels, Some(labels::wildcard()));
        assert_eq!(r.spec.options.max_session_ttl.as_deref(), Some("30h0m0s"));
    }

    #[test]
    fn guide_demo_cluster_access_role_parses() {
        let r = parse(
            "kind: role\nmetadata:\n  name: demo-cluster-access\nspec:\n  allow:\n    cluster_labels:\n      'env': 'demo'\nversion: v5\n",
        );
        assert!(r.is_ok(), "{:?}", r.err());
    }

    #[test]
    fn v3_defaults_node_labels_from_logins() {
        let r = parse("kind: role\nversion: v3\nmetadata: {name: a}\nspec: {allow: {logins: [root]}}").ok();
        assert_eq!(r.and_then(|r| r.spec.allow.node_labels), Some(labels::wildcard()));
        let r = parse("kind: role\nversion: v3\nmetadata: {name: a}\nspec: {allow: {}}").ok();
        assert_eq!(r.and_then(|r| r.spec.allow.node_labels), Some(Labels::new()));
        let r = parse("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {logins: [root]}}").ok();
        assert_eq!(r.and_then(|r| r.spec.allow.node_labels), None);
    }

    #[test]
    fn validation_errors() {
        let msg = |y: &str| parse(y).err().map(|e| e.message).unwrap_or_default();
        assert_eq!(msg("kind: role\nversion: v9\nmetadata: {name: a}\n"), "unrecognized role version: v9");
        assert_eq!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {logins: ['*']}}"),
            "wildcard matcher is not allowed in logins"
        );
        assert!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {node_labels: {'*': prod}}}")
                .contains("selector *:prod is not supported")
        );
        assert!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {logins: ['{{internal.logins']}}")
                .contains("template brackets")
        );
        assert!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {node_lables: {a: b}}}")
                .contains("unknown field `node_lables`")
        );
        assert!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {allow: {rules: [{resources: [role], verbs: [fly]}]}}")
                .contains("unknown verb")
        );
        assert!(
            msg("kind: role\nversion: v5\nmetadata: {name: a}\nspec: {options: {max_session_ttl: forever}}").contains("invalid duration")
        );
        assert!(msg("kind: role\nversion: v5\nmetadata: {name: ''}\n").contains("metadata.name"));
    }

    #[test]
    fn presets_are_valid() {
        for mut r in presets() {
            assert!(r.check_and_set_defaults().is_ok(), "{}", r.metadata.name);
        }
    }

    #[test]
    fn unix_logins() {
        for ok in ["root", "visitor", "ubuntu", "a_b", "user$", "first.last"] {
            assert!(is_valid_unix_login(ok), "{ok}");
        }
        for bad in ["", "-teleport-internal-join", "a b", "x;y", "averyveryveryveryveryverylongloginname"] {
            assert!(!is_valid_unix_login(bad), "{bad}");
        }
    }
}
