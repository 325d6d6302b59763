//! `teleport.yaml`: the v3 subset we support, command-line overrides, and defaults.
//!
//! Precedence: flag > config file > default. Unknown or misspelt keys are an error naming the
//! key, the file and the line, so a typo never silently turns a setting off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use shared::error::{Error, Result};
use shared::resource::token::SystemRole;

/// The default limit of one session's recording (`ssh_service.session_recording_max_bytes`):
/// 256 MiB.
pub const DEFAULT_RECORDING_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/teleport";
/// Default config file.
pub const DEFAULT_CONFIG: &str = "/etc/teleport.yaml";

/// A boolean that also accepts `yes`/`no`/`on`/`off` (as Teleport's YAML 1.1 parser did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(b) => Ok(Flag(b)),
            Raw::S(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "y" => Ok(Flag(true)),
                "no" | "false" | "off" | "n" => Ok(Flag(false)),
                other => Err(serde::de::Error::custom(format!("expected yes or no, got {other:?}"))),
            },
        }
    }
}

/// A string or a list of strings (`public_addr` takes both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(s) => OneOrMany(vec![s]),
            Raw::Many(v) => OneOrMany(v),
        })
    }
}

/// The file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `v1`, `v2` or `v3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Process settings.
    #[serde(default)]
    pub teleport: TeleportSection,
    /// Auth service.
    #[serde(default)]
    pub auth_service: AuthSection,
    /// SSH node service.
    #[serde(default)]
    pub ssh_service: SshSection,
    /// Proxy service.
    #[serde(default)]
    pub proxy_service: ProxySection,
    /// Applications this process serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_service: Option<AppSection>,
    /// `db_service:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_service: Option<DbSection>,
    /// Kubernetes clusters this process serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service: Option<KubeSection>,
    /// Not supported; accepted only when disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_desktop_service: Option<Disabled>,
    /// Not supported; accepted only when disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_service: Option<Disabled>,
}

/// A section we only accept when disabled.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Disabled {
    /// Must be false.
    #[serde(default)]
    pub enabled: Option<Flag>,
    /// Anything else is ignored when disabled.
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_yaml_ng::Value>,
}

/// `teleport:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeleportSection {
    /// Node name (default: the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodename: Option<String>,
    /// State directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogSection>,
    /// Join token (node only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// Join settings (node only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_params: Option<JoinParams>,
    /// Where to join directly (node listens on ssh_service.listen_addr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_server: Option<String>,
    /// Same as `auth_server` (older configs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_servers: Vec<String>,
    /// Where to join through a reverse tunnel (node has no listening port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_server: Option<String>,
    /// IP other hosts reach this node at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_ip: Option<String>,
    /// Accepted; CA pinning is done by the first join (trust on first use with --insecure or a
    /// trusted web certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pin: Option<OneOrMany>,
    /// Plain-HTTP diagnostics: `/healthz`, `/readyz` and `/metrics` (keep it on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diag_addr: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// Connection limits of every listener of this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limits: Option<ConnectionLimits>,
    /// Where the cluster state lives (default: SQLite under `data_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSection>,
    /// How long a graceful stop (SIGTERM, SIGQUIT) waits for running sessions (ours; default
    /// 30s). SIGINT stops at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout: Option<String>,
}

/// `teleport.storage` (Teleport's keys).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `sqlite` (also Teleport's `dir`) or `postgresql` (also `postgres`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// SQLite: the directory of `sqlite.db` (default `<data_dir>/backend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// PostgreSQL: the connection string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_string: Option<String>,
    /// Where audit events go besides the local log: a `postgresql://` URI (and `file://` ones,
    /// accepted: every process always writes `<data_dir>/log/events.log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_events_uri: Option<OneOrMany>,
    /// Accepted for compatibility: the feed shares the state's connection string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_feed_conn_string: Option<String>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_feed_poll_interval: Option<String>,
}

/// The storage a cluster process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// One SQLite file (one process).
    Sqlite {
        /// The database file.
        file: PathBuf,
    },
    /// PostgreSQL (any number of processes).
    Postgres {
        /// Connection string of the state.
        conn_string: String,
        /// Connection string of the audit database, if audit goes to PostgreSQL.
        audit: Option<String>,
    },
}

fn storage(s: Option<&StorageSection>, data_dir: &Path) -> Result<Storage> {
    let default_file = || data_dir.join("backend").join("sqlite.db");
    let Some(s) = s else { return Ok(Storage::Sqlite { file: default_file() }) };
    let audit = s
        .audit_events_uri
        .as_ref()
        .map(|u| u.0.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|u| !u.starts_with("file://"))
        .map(|u| {
            if u.starts_with("postgresql://") || u.starts_with("postgres://") {
                Ok(u)
            } else {
                Err(Error::bad_parameter(format!(
                    "teleport.storage.audit_events_uri: {u:?} is not supported; use postgresql://... (or file://, for the local log)"
                )))
            }
        })
        .collect::<Result<Vec<String>>>()?;
    if audit.len() > 1 {
        return Err(Error::bad_parameter("teleport.storage.audit_events_uri: name at most one postgresql:// database"));
    }
    match s.kind.as_deref().unwrap_or("sqlite") {
        "sqlite" | "dir" => {
            if !audit.is_empty() {
                return Err(Error::bad_parameter(
                    "teleport.storage.audit_events_uri needs storage type postgresql (a SQLite cluster keeps its audit log with its state)",
                ));
            }
            Ok(Storage::Sqlite { file: s.path.as_ref().map(|p| p.join("sqlite.db")).unwrap_or_else(default_file) })
        }
        "postgresql" | "postgres" => {
            let conn_string = s.conn_string.clone().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                Error::bad_parameter(
                    "teleport.storage.type is postgresql but conn_string is missing: set conn_string: postgresql://USER@HOST:5432/DATABASE",
                )
            })?;
            crate::storage::pgconn::parse(&conn_string, "teleport.storage.conn_string")?;
            if let Some(a) = audit.first() {
                crate::storage::pgconn::parse(a, "teleport.storage.audit_events_uri")?;
            }
            Ok(Storage::Postgres { conn_string, audit: audit.into_iter().next() })
        }
        other => Err(Error::bad_parameter(format!("teleport.storage.type {other:?} is not supported; use sqlite or postgresql"))),
    }
}

/// `teleport.connection_limits`: Teleport's `max_connections` (and `max_users`, accepted), and
/// OpenSSH's names for the limits before authentication.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Connections open at once (default: what the descriptor limit allows; a value above it is
    /// lowered to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Accepted for compatibility; concurrent users are bounded by `max_connections` and the
    /// role option `max_connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<usize>,
    /// Accepted for compatibility (request rates are limited per endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<serde_yaml_ng::Value>,
    /// Connections in their handshake at once, in all, and anonymous HTTPS connections (no
    /// client certificate) at once, in all, each (default 3750; at most a quarter of
    /// `max_connections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_startups: Option<usize>,
    /// The same two, from one address (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source_max_startups: Option<usize>,
    /// Connections at once from one address, authenticated or not (default 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source_max_connections: Option<usize>,
    /// Time a connection has to authenticate (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_grace_time: Option<String>,
    /// Channels (sessions, subsystems, port forwards) one SSH connection may have open (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels_per_connection: Option<usize>,
}

/// `teleport.join_params`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JoinParams {
    /// Token name.
    pub token_name: String,
    /// Only `token`.
    #[serde(default)]
    pub method: Option<String>,
}

/// `teleport.log`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `stderr`, `stdout`, or a file path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Accepted (`{output: text}` / `json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<serde_yaml_ng::Value>,
}

/// `auth_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// On by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// Cluster name (default: the node name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Accepted: the API is served on the proxy's web port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<OneOrMany>,
    /// Static tokens, `role:value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// Reverse tunnel heartbeat interval (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_interval: Option<String>,
    /// Missed heartbeats before a leaf is offline (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_count_max: Option<u32>,
    /// Remove a leaf (and its CAs) from this root once it has been offline this long (Go
    /// duration, e.g. 72h; default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_leaf_ttl: Option<String>,
    /// Only `multiplex` (one port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_listener_mode: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_recording: Option<String>,
    /// End SSH sessions with no input or output for this long (Go duration; default: never).
    /// A role's `options.client_idle_timeout` can make it shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_idle_timeout: Option<String>,
    /// The cluster's authentication preference (Teleport's keys), written at every start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationSection>,
}

/// `auth_service.authentication`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationSection {
    /// `local`, `oidc`, `github` or `saml`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `off`, `otp`, `on` or `optional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<String>,
    /// The default SSO connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_name: Option<String>,
    /// Whether local users may sign in (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_auth: Option<bool>,
    /// Accepted: security keys are not implemented (a `second_factor` of `webauthn` is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored (security keys are not implemented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u2f: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_session_mfa: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_expired_cert: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locking_mode: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_of_the_day: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwordless: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headless: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_trust: Option<serde_yaml_ng::Value>,
}

impl AuthenticationSection {
    /// The preference it describes, validated.
    pub fn spec(&self) -> Result<shared::resource::auth_preference::AuthPreferenceSpec> {
        let mut spec = shared::resource::auth_preference::AuthPreferenceSpec::default();
        if let Some(k) = &self.kind {
            spec.auth_type = k.clone();
        }
        if let Some(f) = &self.second_factor {
            spec.second_factor = f.clone();
        }
        if let Some(c) = &self.connector_name {
            spec.connector_name = c.clone();
        }
        if let Some(l) = self.local_auth {
            spec.allow_local_auth = l;
        }
        let mut p = shared::resource::AuthPreference::new(spec, "config-file");
        p.check_and_set_defaults().map_err(|e| e.context("auth_service.authentication"))?;
        Ok(p.spec)
    }
}

/// `ssh_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshSection {
    /// On by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// Listen address (default 0.0.0.0:3022).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    /// Static labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<OneOrMany>,
    /// Heartbeat interval of the node record (ours; default 30s, the record lives 3 intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<String>,
    /// The most output one session's recording keeps, in bytes (ours; default 256 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_recording_max_bytes: Option<u64>,
    /// Copying files (SFTP, `scp`) on this node (default yes; roles may refuse it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_file_copy: Option<bool>,
    /// Port forwarding on this node (default yes; roles may refuse it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forwarding: Option<bool>,
}

/// `kubernetes_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSection {
    /// Off unless set (a section alone does not start it, as in Teleport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// The kubeconfig with the credentials and CA to reach the API server; each context is a
    /// cluster named after it, unless `kube_cluster_name` names the one (current) context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_file: Option<PathBuf>,
    /// The name users type (`tsh kube login <name>`), for the kubeconfig's current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_cluster_name: Option<String>,
    /// Static labels (roles' `kubernetes_labels` match them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Dynamic labels: a command's output, run every `period`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<LabelCommandSection>,
    /// Accepted and ignored (the service is reached through the proxy's tunnels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<OneOrMany>,
}

/// `app_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// Off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// The apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppEntry>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_app: Option<bool>,
    /// Which apps defined with `tctl create` this service serves: `[{labels: {env: prod}}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<AppResources>,
}

/// One selector of `app_service.resources`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppResources {
    /// The labels an app must have (`'*': '*'` for every app).
    #[serde(default)]
    pub labels: shared::labels::Labels,
}

/// One app of `app_service.apps`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    /// Its name (a DNS label).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `http://`, `https://` or `tcp://` address.
    pub uri: String,
    /// The name users reach it at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<String>,
    /// Static labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Do not verify an `https://` app's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Rewrites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<shared::resource::app::Rewrite>,
    /// Dynamic labels: commands run every period, their output the label's value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<LabelCommandSection>,
}

/// Dynamic labels (`kubernetes_service.commands`, a database's `dynamic_labels`): each a label
/// key not among `labels`, a program with its arguments, a period of at least 1 s (default 1m).
fn label_commands(what: &str, labels: &BTreeMap<String, String>, sections: &[LabelCommandSection]) -> Result<Vec<LabelCommand>> {
    let mut commands = Vec::new();
    for (i, c) in sections.iter().enumerate() {
        let field = format!("{what}[{i}]");
        if c.name.is_empty() || c.name.len() > 63 || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch)) {
            return Err(Error::bad_parameter(format!("{field}.name {:?} is not a label key (letters, digits, -_./)", c.name)));
        }
        if labels.contains_key(&c.name) || commands.iter().any(|x: &LabelCommand| x.name == c.name) {
            return Err(Error::bad_parameter(format!("{field}.name {:?} is already a label; use another name", c.name)));
        }
        if c.command.is_empty() || c.command[0].is_empty() {
            return Err(Error::bad_parameter(format!("{field}.command is empty: give the program and its arguments, e.g. [uname, -r]")));
        }
        let period = match &c.period {
            None => Duration::from_secs(60),
            Some(p) => {
                let d = shared::timefmt::parse_duration(p).map_err(|e| e.context(format!("{field}.period")))?;
                if d < Duration::from_secs(1) {
                    return Err(Error::bad_parameter(format!("{field}.period {p:?} is too short; use at least 1s")));
                }
                d
            }
        };
        commands.push(LabelCommand { name: c.name.clone(), command: c.command.clone(), period });
    }
    Ok(commands)
}

/// The databases of `db_service.databases`, checked as `tctl create` checks them, with their CA
/// files read.
fn db_entries(entries: &[DbEntry]) -> Result<Vec<shared::resource::Db>> {
    let mut out: Vec<shared::resource::Db> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let field = format!("db_service.databases[{i}]");
        let tls = e.tls.clone().unwrap_or_default();
        let ca_file = tls.ca_cert_file.clone().or(e.ca_cert_file.clone());
        let ca_cert = match &ca_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|err| Error::bad_parameter(format!("{field}: cannot read the CA file {}: {err}", p.display())))?,
            None => String::new(),
        };
        let mut metadata = shared::resource::Metadata::named(e.name.clone());
        metadata.description = e.description.clone();
        metadata.labels = e.static_labels.clone();
        let spec = shared::resource::db::DbSpec {
            protocol: e.protocol.clone(),
            uri: e.uri.clone(),
            tls: shared::resource::db::DbTls {
                mode: tls.mode.unwrap_or_default(),
                ca_cert,
                server_name: tls.server_name.unwrap_or_default(),
            },
            ..Default::default()
        };
        let mut db = shared::resource::Db { kind: "db".into(), version: "v3".into(), metadata, spec };
        db.check_and_set_defaults().map_err(|err| err.context(field.clone()))?;
        if out.iter().any(|x| x.metadata.name == e.name) {
            return Err(Error::bad_parameter(format!("{field}: database {:?} is listed twice", e.name)));
        }
        out.push(db);
    }
    Ok(out)
}

/// `db_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DbSection {
    /// Off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// The databases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DbEntry>,
}

/// One database of `db_service.databases`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DbEntry {
    /// Its name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `postgres`.
    pub protocol: String,
    /// `host:port`.
    pub uri: String,
    /// Teleport's older place for `tls.ca_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<PathBuf>,
    /// How the database's certificate is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<DbTlsEntry>,
    /// Static labels (roles' `db_labels` match them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_labels: BTreeMap<String, String>,
    /// Labels whose values commands give, run every period (Teleport's `dynamic_labels`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic_labels: Vec<LabelCommandSection>,
}

/// `tls:` of a database.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DbTlsEntry {
    /// `verify-full` (default), `verify-ca` or `insecure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The name to verify instead of the uri's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The CA that signed the database's certificate (default: the cluster's `db` CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<PathBuf>,
}

/// One dynamic label (`commands:` of a service).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelCommandSection {
    /// The label's key.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// How often (default 1m, at least 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// A dynamic label, checked.
#[derive(Debug, Clone)]
pub struct LabelCommand {
    /// The label's key.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// How often it runs.
    pub period: Duration,
}

/// `proxy_service:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// On by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    /// HTTPS + SSH + tunnel listen address (default 0.0.0.0:3080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_listen_addr: Option<String>,
    /// Public address(es) of the web port; the first is used in links and `web_proxy_addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<OneOrMany>,
    /// An extra listener for reverse tunnels (optional; the web port always accepts them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_listen_addr: Option<String>,
    /// Public address of `tunnel_listen_addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_public_addr: Option<String>,
    /// An extra listener for SSH (optional; the web port always accepts SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_addr: Option<OneOrMany>,
    /// The web certificate and key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub https_keypairs: Vec<KeyPairFiles>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_keypairs_reload_interval: Option<String>,
    /// Accepted when disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<serde_yaml_ng::Value>,
    /// A port of its own for Kubernetes clients (optional: the web port serves them, told
    /// apart by TLS server name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_listen_addr: Option<String>,
    /// A port of its own for PostgreSQL clients (optional: the web port serves them too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_listen_addr: Option<String>,
    /// The address `tsh` gives PostgreSQL clients for `postgres_listen_addr` (default: the
    /// proxy's public host with that port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_public_addr: Option<String>,
    /// Where the other proxies of the cluster forward connections to this one (mutual TLS with
    /// proxy host certificates). Default with PostgreSQL: the web host, port 3021.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_listen_addr: Option<String>,
    /// The address peers dial for `peer_listen_addr`, when it differs (NAT, a 0.0.0.0 listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_public_addr: Option<String>,
}

/// A certificate and key file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairFiles {
    /// PEM key.
    pub key_file: PathBuf,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
}

/// Reads and parses a config file. Errors name the file and line.
pub fn read_file(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::bad_parameter(format!("cannot read config file {}: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

/// Parses config text.
pub fn parse(text: &str, name: &str) -> Result<FileConfig> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let cfg: FileConfig = serde_yaml_ng::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.rsplit_once(" at line ").map(|(m, _)| m.to_string()).unwrap_or(msg);
        match e.location() {
            Some(l) => Error::bad_parameter(format!("{name}:{}:{}: {msg}", l.line(), l.column())),
            None => Error::bad_parameter(format!("{name}: {msg}")),
        }
    })?;
    if let Some(v) = &cfg.version
        && !["v1", "v2", "v3"].contains(&v.as_str())
    {
        return Err(Error::bad_parameter(format!("{name}: unsupported config version {v:?}; use v3")));
    }
    for (section, s) in [("windows_desktop_service", &cfg.windows_desktop_service), ("discovery_service", &cfg.discovery_service)] {
        if let Some(d) = s
            && d.enabled.is_some_and(|f| f.0)
        {
            return Err(Error::bad_parameter(format!(
                "{name}: {section} is not supported by this product; set enabled: no or remove the section"
            )));
        }
    }
    if let Some(m) = &cfg.auth_service.proxy_listener_mode
        && m != "multiplex"
    {
        return Err(Error::bad_parameter(format!(
            "{name}: proxy_listener_mode {m:?} is not supported; the web port always multiplexes HTTPS, SSH and tunnels"
        )));
    }
    Ok(cfg)
}

/// Command-line settings that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--roles`.
    pub roles: Option<Vec<String>>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--nodename`.
    pub nodename: Option<String>,
    /// `--cluster-name`.
    pub cluster_name: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `--auth-server`.
    pub auth_server: Option<String>,
    /// `--tunnel`.
    pub tunnel: bool,
    /// `--labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `--listen-ip`/`--ssh-listen-addr`.
    pub ssh_listen_addr: Option<String>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--diag-addr`.
    pub diag_addr: Option<String>,
}

/// The runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Node name.
    pub nodename: String,
    /// State directory.
    pub data_dir: PathBuf,
    /// Cluster name (auth).
    pub cluster_name: String,
    /// Auth + proxy enabled.
    pub auth: bool,
    /// Node enabled.
    pub ssh: bool,
    /// Web listen address.
    pub web_listen_addr: String,
    /// Public web address.
    pub public_addr: String,
    /// Extra tunnel listener.
    pub tunnel_listen_addr: Option<String>,
    /// Public tunnel address.
    pub tunnel_public_addr: String,
    /// Extra SSH listener.
    pub ssh_proxy_listen_addr: Option<String>,
    /// Web certificate.
    pub https_keypairs: Vec<KeyPairFiles>,
    /// Static tokens.
    pub static_tokens: Vec<(SystemRole, String)>,
    /// Tunnel heartbeat interval.
    pub keep_alive_interval: Duration,
    /// Missed heartbeats allowed.
    pub keep_alive_count_max: u32,
    /// Remove leaves offline for this long (`auth_service.offline_leaf_ttl`; None: never).
    pub offline_leaf_ttl: Option<Duration>,
    /// Node listen address.
    pub ssh_listen_addr: String,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Node heartbeat interval.
    pub node_heartbeat: Duration,
    /// The most output one session's recording keeps.
    pub recording_max_bytes: u64,
    /// `ssh_service.ssh_file_copy`.
    pub node_file_copy: bool,
    /// `ssh_service.port_forwarding`.
    pub node_port_forwarding: bool,
    /// Address the node advertises (overrides detection).
    pub advertise_ip: Option<String>,
    /// Node-only: where to join.
    pub join_addr: Option<String>,
    /// Node-only: join token.
    pub join_token: Option<String>,
    /// Node-only: through a reverse tunnel.
    pub use_tunnel: bool,
    /// Skip TLS verification of other clusters' proxies and of the proxy a node joins.
    pub insecure: bool,
    /// Verbose logging.
    pub debug: bool,
    /// Log destination (`stderr`, `stdout`, or a file).
    pub log_output: String,
    /// Diagnostics listener (`/healthz`, `/readyz`, `/metrics`).
    pub diag_addr: Option<String>,
    /// Connection limits.
    pub limits: crate::limits::ConnLimits,
    /// Where the cluster state lives.
    pub storage: Storage,
    /// Default idle timeout of SSH sessions.
    pub client_idle_timeout: Option<Duration>,
    /// Peer listener (forwarding between the proxies of one cluster), if any.
    pub peer_listen_addr: Option<String>,
    /// The address peers dial, if not derived from `peer_listen_addr`.
    pub peer_public_addr: Option<String>,
    /// How long a graceful stop waits for running sessions.
    pub shutdown_timeout: Duration,
    /// `auth_service.authentication`, if set.
    pub authentication: Option<shared::resource::auth_preference::AuthPreferenceSpec>,
    /// `kubernetes_service`, when enabled.
    pub kube: Option<KubeConfig>,
    /// `proxy_service.kube_listen_addr`.
    pub kube_listen_addr: Option<String>,
    /// `proxy_service.postgres_listen_addr`.
    pub postgres_listen_addr: Option<String>,
    /// `proxy_service.postgres_public_addr` (or the public host with the listener's port).
    pub postgres_public_addr: Option<String>,
    /// `app_service.apps`, when enabled (checked).
    pub apps: Vec<shared::resource::App>,
    /// `app_service.resources`: selectors of the apps defined with `tctl create` it serves.
    pub app_resources: Vec<shared::labels::Labels>,
    /// The configured apps' dynamic labels (`commands`), by app name.
    pub app_label_commands: BTreeMap<String, Vec<LabelCommand>>,
    /// `db_service.databases`, when enabled (checked, CA files read).
    pub databases: Vec<shared::resource::Db>,
    /// Their `dynamic_labels`, by database name.
    pub db_label_commands: BTreeMap<String, Vec<LabelCommand>>,
}

/// The Kubernetes service of this process.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// The kubeconfig file.
    pub kubeconfig_file: PathBuf,
    /// The name of its current context's cluster, if given.
    pub kube_cluster_name: Option<String>,
    /// Static labels.
    pub labels: BTreeMap<String, String>,
    /// Dynamic labels.
    pub commands: Vec<LabelCommand>,
}

fn host_name() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

fn with_port(addr: &str, port: u16) -> String {
    shared::resource::cluster::with_default_port(addr, port)
}

fn duration(field: &str, v: &Option<String>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => {
            let d = shared::timefmt::parse_duration(s).map_err(|e| e.context(field))?;
            if d < Duration::from_millis(100) {
                return Err(Error::bad_parameter(format!("{field}: {s:?} is too short; use at least 100ms")));
            }
            Ok(d)
        }
    }
}

/// `teleport.connection_limits` with defaults; zero values are refused (they would refuse
/// every connection).
fn connection_limits(c: Option<&ConnectionLimits>) -> Result<crate::limits::ConnLimits> {
    let mut l = crate::limits::ConnLimits::default();
    let Some(c) = c else { return Ok(l) };
    let positive = |name: &str, v: Option<usize>, d: usize| -> Result<usize> {
        let default =
            if d == crate::limits::DEFAULT_MAX_CONNECTIONS { "what the descriptor limit allows".to_string() } else { d.to_string() };
        match v {
            None => Ok(d),
            Some(0) => Err(Error::bad_parameter(format!(
                "teleport.connection_limits.{name} must be positive (0 would refuse every connection); remove it for the default ({default})"
            ))),
            Some(n) => Ok(n),
        }
    };
    l.max_connections = positive("max_connections", c.max_connections, l.max_connections)?;
    l.max_startups = positive("max_startups", c.max_startups, l.max_startups)?;
    l.per_source_max_startups = positive("per_source_max_startups", c.per_source_max_startups, l.per_source_max_startups)?;
    l.per_source_max_connections = positive("per_source_max_connections", c.per_source_max_connections, l.per_source_max_connections)?;
    l.max_channels = positive("max_channels_per_connection", c.max_channels_per_connection, l.max_channels)?;
    l.login_grace_time = duration("teleport.connection_limits.login_grace_time", &c.login_grace_time, l.login_grace_time)?;
    Ok(l)
}

impl Config {
    /// Combines the file and the flags.
    pub fn build(file: FileConfig, o: Overrides) -> Result<Config> {
        let t = &file.teleport;
        let nodename = o.nodename.clone().or(t.nodename.clone()).unwrap_or_else(host_name);
        let data_dir = o.data_dir.clone().or(t.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let enabled = |f: Option<Flag>| f.map(|f| f.0).unwrap_or(true);
        let (mut auth, mut proxy, mut ssh) =
            (enabled(file.auth_service.enabled), enabled(file.proxy_service.enabled), enabled(file.ssh_service.enabled));
        let join_addr = o.auth_server.clone().or(t.proxy_server.clone()).or(t.auth_server.clone()).or(t.auth_servers.first().cloned());
        let mut kube_role = false;
        let mut app_role = false;
        let mut db_role = false;
        if let Some(roles) = &o.roles {
            let mut set = (false, false, false);
            for r in roles {
                match r.trim().to_ascii_lowercase().as_str() {
                    "auth" => set.0 = true,
                    "proxy" => set.1 = true,
                    "node" | "ssh" => set.2 = true,
                    "kube" => kube_role = true,
                    "app" => app_role = true,
                    "db" => db_role = true,
                    "" => {}
                    other => {
                        return Err(Error::bad_parameter(format!(
                            "unknown role {other:?} in --roles; use auth, proxy, node, kube, app and db"
                        )));
                    }
                }
            }
            (auth, proxy, ssh) = set;
        } else if join_addr.is_some() && t.auth_server.is_none() && file.auth_service.enabled.is_none() && o.auth_server.is_some() {
            // `teleport start --token=... --auth-server=...` with no roles means a node.
            (auth, proxy, ssh) = (false, false, true);
        } else if t.proxy_server.is_some() || t.auth_server.is_some() || !t.auth_servers.is_empty() {
            if file.auth_service.enabled.is_none() {
                auth = false;
            }
            if file.proxy_service.enabled.is_none() {
                proxy = false;
            }
        }
        if auth != proxy {
            return Err(Error::bad_parameter(
                "the auth and proxy services run together in this product: use --roles=auth,proxy[,node], or --roles=node to join an existing cluster",
            ));
        }
        let kube_enabled = kube_role || file.kubernetes_service.as_ref().is_some_and(|k| k.enabled.is_some_and(|f| f.0));
        if kube_role && !file.kubernetes_service.as_ref().is_some_and(|k| k.enabled.is_none_or(|f| f.0)) {
            return Err(Error::bad_parameter(
                "--roles=kube needs a kubernetes_service section (kubeconfig_file, kube_cluster_name) in the config",
            ));
        }
        let app_enabled = app_role || file.app_service.as_ref().is_some_and(|a| a.enabled.is_some_and(|f| f.0));
        if app_role
            && !file.app_service.as_ref().is_some_and(|a| a.enabled.is_none_or(|f| f.0) && (!a.apps.is_empty() || !a.resources.is_empty()))
        {
            return Err(Error::bad_parameter(
                "--roles=app needs an app_service section with apps (name, uri) or resources (labels) in the config",
            ));
        }
        let db_enabled = db_role || file.db_service.as_ref().is_some_and(|d| d.enabled.is_some_and(|f| f.0));
        if db_role && !file.db_service.as_ref().is_some_and(|d| d.enabled.is_none_or(|f| f.0) && !d.databases.is_empty()) {
            return Err(Error::bad_parameter("--roles=db needs a db_service section with databases (name, protocol, uri) in the config"));
        }
        if !auth && !ssh && !kube_enabled && !app_enabled && !db_enabled {
            return Err(Error::bad_parameter(
                "no service enabled: enable auth_service and proxy_service, or ssh_service with a join token",
            ));
        }
        let cluster_name = o.cluster_name.clone().or(file.auth_service.cluster_name.clone()).unwrap_or_else(|| nodename.clone());
        if cluster_name.is_empty()
            || cluster_name.len() > 253
            || !cluster_name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(Error::bad_parameter(format!("invalid cluster name {cluster_name:?}: use letters, digits, '-', '_' and '.'")));
        }
        let p = &file.proxy_service;
        let web_listen_addr = with_port(p.web_listen_addr.as_deref().unwrap_or("0.0.0.0:3080"), 3080);
        let web_port = port_of(&web_listen_addr).unwrap_or(3080);
        let public_addr = match p.public_addr.as_ref().and_then(|a| a.0.first().cloned()) {
            Some(a) => with_port(&a, web_port),
            None => {
                let host = web_listen_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default();
                let host = if host == "0.0.0.0" || host == "[::]" || host.is_empty() { nodename.clone() } else { host };
                format!("{host}:{web_port}")
            }
        };
        let tunnel_listen_addr = p.tunnel_listen_addr.clone().map(|a| with_port(&a, 3024));
        let postgres_public_addr = match (&p.postgres_public_addr, &p.postgres_listen_addr) {
            (Some(a), _) => Some(with_port(a, 5432)),
            (None, Some(l)) => {
                let port = with_port(l, 5432).rsplit(':').next().unwrap_or("5432").to_string();
                Some(format!("{}:{port}", shared::client::host_of(&public_addr)))
            }
            (None, None) => None,
        };
        let tunnel_public_addr = match (&p.tunnel_public_addr, &tunnel_listen_addr) {
            (Some(a), _) => with_port(a, 3024),
            (None, Some(l)) => {
                let host = public_addr.rsplit_once(':').map(|(h, _)| h).unwrap_or_default();
                format!("{host}:{}", port_of(l).unwrap_or(3024))
            }
            (None, None) => public_addr.clone(),
        };
        let mut static_tokens = Vec::new();
        for t in &file.auth_service.tokens {
            let (role, value) = t.split_once(':').ok_or_else(|| {
                Error::bad_parameter(format!("auth_service.tokens: {:?} must be role:value, such as trusted_cluster:...", mask(t)))
            })?;
            for r in role.split(',') {
                static_tokens.push((SystemRole::parse(r)?, value.to_string()));
            }
        }
        let keep_alive_interval =
            duration("auth_service.keep_alive_interval", &file.auth_service.keep_alive_interval, Duration::from_secs(30))?;
        let keep_alive_count_max = file.auth_service.keep_alive_count_max.unwrap_or(3).max(1);
        let offline_leaf_ttl = match &file.auth_service.offline_leaf_ttl {
            Some(_) => Some(duration("auth_service.offline_leaf_ttl", &file.auth_service.offline_leaf_ttl, Duration::from_secs(0))?)
                .filter(|d| !d.is_zero()),
            None => None,
        };
        let s = &file.ssh_service;
        let ssh_listen_addr = with_port(o.ssh_listen_addr.as_deref().or(s.listen_addr.as_deref()).unwrap_or("0.0.0.0:3022"), 3022);
        let mut labels = s.labels.clone();
        if let Some(l) = &o.labels {
            labels.extend(l.clone());
        }
        let node_heartbeat = duration("ssh_service.heartbeat_interval", &s.heartbeat_interval, Duration::from_secs(30))?;
        let join_token = o.token.clone().or(t.auth_token.clone()).or(t.join_params.as_ref().map(|j| j.token_name.clone()));
        let use_tunnel = o.tunnel || (o.auth_server.is_none() && t.proxy_server.is_some());
        if !auth && ssh && join_addr.is_none() {
            return Err(Error::bad_parameter(
                "a node needs to know where to join: use --auth-server=PROXY:PORT (or teleport.proxy_server in the config)",
            ));
        }
        let limits = connection_limits(t.connection_limits.as_ref())?;
        let storage = storage(t.storage.as_ref(), &data_dir)?;
        let client_idle_timeout = match &file.auth_service.client_idle_timeout {
            None => None,
            Some(s) => Some(shared::timefmt::parse_duration(s).map_err(|e| e.context("auth_service.client_idle_timeout"))?)
                .filter(|d| !d.is_zero()),
        };
        // Peers exist only when processes share the state: PostgreSQL, or an explicit address.
        let peer_listen_addr = match (&p.peer_listen_addr, &storage) {
            (Some(a), _) => Some(with_port(a, 3021)),
            (None, Storage::Postgres { .. }) => {
                let host = web_listen_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_else(|| "0.0.0.0".into());
                Some(format!("{host}:3021"))
            }
            (None, Storage::Sqlite { .. }) => None,
        };
        let peer_public_addr = p.peer_public_addr.as_ref().map(|a| with_port(a, 3021));
        let shutdown_timeout = match &t.shutdown_timeout {
            None => Duration::from_secs(30),
            Some(s) => shared::timefmt::parse_duration(s).map_err(|e| e.context("teleport.shutdown_timeout"))?,
        };
        let authentication = file.auth_service.authentication.as_ref().map(|a| a.spec()).transpose()?;
        let kube = match &file.kubernetes_service {
            Some(k) if k.enabled.is_some_and(|f| f.0) || (kube_role && k.enabled.is_none()) => {
                if !auth && !use_tunnel {
                    return Err(Error::bad_parameter(
                        "kubernetes_service in a process of its own is reached through its reverse tunnel: start it with --tunnel \
                         (or teleport.proxy_server), or run it in the cluster process",
                    ));
                }
                let kubeconfig_file = k.kubeconfig_file.clone().ok_or_else(|| {
                    Error::bad_parameter(
                        "kubernetes_service.kubeconfig_file is required: the kubeconfig with the credentials to reach the API server",
                    )
                })?;
                if let Some(n) = &k.kube_cluster_name {
                    shared::names::check_name("kubernetes_service.kube_cluster_name", n)?;
                }
                let commands = label_commands("kubernetes_service.commands", &k.labels, &k.commands)?;
                Some(KubeConfig { kubeconfig_file, kube_cluster_name: k.kube_cluster_name.clone(), labels: k.labels.clone(), commands })
            }
            _ => None,
        };
        let mut apps = Vec::new();
        let mut app_resources = Vec::new();
        let mut app_label_commands = BTreeMap::new();
        if let Some(a) = &file.app_service
            && (a.enabled.is_some_and(|f| f.0) || (app_role && a.enabled.is_none()))
        {
            if !auth && !use_tunnel {
                return Err(Error::bad_parameter(
                    "app_service in a process of its own is reached through its reverse tunnel: start it with --tunnel \
                     (or teleport.proxy_server), or run it in the cluster process",
                ));
            }
            for (i, e) in a.apps.iter().enumerate() {
                let mut metadata = shared::resource::Metadata::named(e.name.clone());
                metadata.description = e.description.clone();
                metadata.labels = e.labels.clone();
                let spec = shared::resource::app::AppSpec {
                    uri: e.uri.clone(),
                    public_addr: e.public_addr.clone().unwrap_or_default(),
                    insecure_skip_verify: e.insecure_skip_verify.unwrap_or(false),
                    rewrite: e.rewrite.clone(),
                    ..Default::default()
                };
                let mut app = shared::resource::App { kind: "app".into(), version: "v3".into(), metadata, spec };
                app.check_and_set_defaults().map_err(|err| err.context(format!("app_service.apps[{i}]")))?;
                if apps.iter().any(|x: &shared::resource::App| x.metadata.name == e.name) {
                    return Err(Error::bad_parameter(format!("app_service.apps[{i}]: app {:?} is listed twice", e.name)));
                }
                let commands = label_commands(&format!("app_service.apps[{i}].commands"), &e.labels, &e.commands)?;
                if !commands.is_empty() {
                    app_label_commands.insert(e.name.clone(), commands);
                }
                apps.push(app);
            }
            for (i, r) in a.resources.iter().enumerate() {
                if r.labels.is_empty() {
                    return Err(Error::bad_parameter(format!(
                        "app_service.resources[{i}].labels is empty: it would match no app; use {{'*': '*'}} for every app"
                    )));
                }
                shared::labels::validate(&format!("app_service.resources[{i}].labels"), &r.labels)?;
                app_resources.push(r.labels.clone());
            }
        }
        let databases = match &file.db_service {
            Some(d) if d.enabled.is_some_and(|f| f.0) || (db_role && d.enabled.is_none()) => {
                if !auth && !use_tunnel {
                    return Err(Error::bad_parameter(
                        "db_service in a process of its own is reached through its reverse tunnel: start it with --tunnel \
                         (or teleport.proxy_server), or run it in the cluster process",
                    ));
                }
                db_entries(&d.databases)?
            }
            _ => Vec::new(),
        };
        let mut db_label_commands = BTreeMap::new();
        if !databases.is_empty()
            && let Some(d) = &file.db_service
        {
            for (i, e) in d.databases.iter().enumerate() {
                let commands = label_commands(&format!("db_service.databases[{i}].dynamic_labels"), &e.static_labels, &e.dynamic_labels)?;
                if !commands.is_empty() {
                    db_label_commands.insert(e.name.clone(), commands);
                }
            }
        }
        let log_output = t.log.as_ref().and_then(|l| l.output.clone()).unwrap_or_else(|| "stderr".into());
        let debug = o.debug || t.log.as_ref().and_then(|l| l.severity.as_deref()).is_some_and(|s| s.eq_ignore_ascii_case("debug"));
        Ok(Config {
            nodename,
            data_dir,
            cluster_name,
            auth,
            ssh,
            web_listen_addr,
            public_addr,
            tunnel_listen_addr,
            tunnel_public_addr,
            ssh_proxy_listen_addr: p.listen_addr.clone().map(|a| with_port(&a, 3023)),
            https_keypairs: p.https_keypairs.clone(),
            static_tokens,
            keep_alive_interval,
            keep_alive_count_max,
            offline_leaf_ttl,
            ssh_listen_addr,
            labels,
            node_heartbeat,
            recording_max_bytes: s.session_recording_max_bytes.unwrap_or(DEFAULT_RECORDING_MAX_BYTES),
            node_file_copy: s.ssh_file_copy.unwrap_or(true),
            node_port_forwarding: s.port_forwarding.unwrap_or(true),
            advertise_ip: t.advertise_ip.clone(),
            limits,
            storage,
            client_idle_timeout,
            peer_listen_addr,
            peer_public_addr,
            shutdown_timeout,
            authentication,
            kube,
            apps,
            app_resources,
            databases,
            db_label_commands,
            app_label_commands,
            kube_listen_addr: p.kube_listen_addr.clone().map(|a| with_port(&a, 3026)),
            postgres_listen_addr: p.postgres_listen_addr.clone().map(|a| with_port(&a, 5432)),
            postgres_public_addr,
            join_addr: join_addr.map(|a| with_port(&a, 3080)),
            join_token,
            use_tunnel,
            insecure: o.insecure,
            debug,
            log_output,
            diag_addr: o.diag_addr.clone().or(t.diag_addr.clone()).filter(|a| !a.is_empty()),
        })
    }
}

fn mask(s: &str) -> String {
    crate::auth::tokens::mask(s)
}

/// What `teleport configure` writes.
pub fn starter_file(cluster_name: &str, public_addr: &str, data_dir: &Path, nodename: &str, web_listen_addr: &str) -> String {
    format!(
        "# teleport.yaml written by `teleport configure`. Reference: docs/configuration.md\n\
version: v3\n\
teleport:\n\
\x20 nodename: {nodename}\n\
\x20 data_dir: {data_dir}\n\
\x20 log:\n\
\x20   output: stderr\n\
\x20   severity: INFO\n\
auth_service:\n\
\x20 enabled: yes\n\
\x20 cluster_name: {cluster_name}\n\
\x20 # Reverse tunnel heartbeats: a leaf is offline after keep_alive_count_max missed ones.\n\
\x20 keep_alive_interval: 30s\n\
\x20 keep_alive_count_max: 3\n\
ssh_service:\n\
\x20 enabled: yes\n\
\x20 listen_addr: 0.0.0.0:3022\n\
\x20 labels:\n\
\x20   env: example\n\
proxy_service:\n\
\x20 enabled: yes\n\
\x20 web_listen_addr: {web_listen_addr}\n\
\x20 public_addr: {public_addr}\n\
\x20 # Without https_keypairs a self-signed certificate is generated at start.\n\
\x20 # https_keypairs:\n\
\x20 # - key_file: /etc/teleport/privkey.pem\n\
\x20 #   cert_file: /etc/teleport/fullchain.pem\n",
        data_dir = data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `teleport start --roles=<roles> --token=t --auth-server=leaf.example.com:3080 [--tunnel]`.
    fn agent_overrides(tunnel: bool, roles: &str) -> Overrides {
        Overrides {
            roles: Some(roles.split(',').map(String::from).collect()),
            token: Some("t".into()),
            auth_server: Some("leaf.example.com:3080".into()),
            tunnel,
            ..Default::default()
        }
    }

    fn build(yaml: &str, o: Overrides) -> Result<Config> {
        Config::build(parse(yaml, "teleport.yaml")?, o)
    }

    #[test]
    fn starter_file_parses_and_has_defaults() {
        let text = starter_file("root.example.com", "root.example.com:3080", Path::new("/var/lib/teleport"), "root", "0.0.0.0:3080");
        let c = build(&text, Overrides::default()).unwrap();
        assert_eq!(c.cluster_name, "root.example.com");
        assert!(c.auth && c.ssh);
        assert_eq!(c.public_addr, "root.example.com:3080");
        assert_eq!(c.tunnel_public_addr, "root.example.com:3080");
        assert_eq!(c.keep_alive_interval, Duration::from_secs(30));
    }

    #[test]
    fn kubernetes_service_where_it_may_run() {
        let section = "kubernetes_service:\n  enabled: yes\n  kubeconfig_file: /etc/kube.yaml\n  kube_cluster_name: east\n";
        let c = build(&format!("teleport:\n  nodename: a\n{section}"), Overrides::default()).unwrap();
        let k = c.kube.expect("in the cluster process");
        assert_eq!(k.kube_cluster_name.as_deref(), Some("east"));
        let c = build(&format!("teleport:\n  nodename: a\n{section}"), agent_overrides(true, "kube")).unwrap();
        assert!(!c.auth && !c.ssh && c.kube.is_some() && c.use_tunnel, "--roles=kube --tunnel: Kubernetes only");
        let e = build(&format!("teleport:\n  nodename: a\n{section}"), agent_overrides(false, "kube")).unwrap_err().message;
        assert!(e.contains("start it with --tunnel"), "{e}");
        let e = build("teleport:\n  nodename: a\n", agent_overrides(true, "kube")).unwrap_err().message;
        assert!(e.contains("--roles=kube needs a kubernetes_service section"), "{e}");
        let e = build("kubernetes_service:\n  enabled: yes\n", Overrides::default()).unwrap_err().message;
        assert!(e.contains("kubeconfig_file is required"), "{e}");
        let with = |cmds: &str| {
            build(&format!("teleport:\n  nodename: a\n{section}  labels: {{env: prod}}\n  commands:\n{cmds}"), Overrides::default())
        };
        let c = with("  - {name: arch, command: [uname, -m], period: 10s}\n").unwrap().kube.unwrap();
        assert_eq!((c.commands[0].name.as_str(), c.commands[0].period), ("arch", Duration::from_secs(10)));
        for (cmds, want) in [
            ("  - {name: env, command: [true]}\n", "already a label"),
            ("  - {name: 'bad key', command: [true]}\n", "not a label key"),
            ("  - {name: x, command: []}\n", "command is empty"),
            ("  - {name: x, command: [true], period: 10ms}\n", "too short"),
        ] {
            let e = with(cmds).unwrap_err().message;
            assert!(e.contains(want) && e.contains("kubernetes_service.commands[0]"), "{want}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("teleport:\n  nodename: a\n  nodenam: b\n", "teleport.yaml").unwrap_err().message;
        assert!(e.starts_with("teleport.yaml:3:"), "{e}");
        assert!(e.contains("unknown field `nodenam`"), "{e}");
        let e = parse("auth_service:\n  clustername: x\n", "t.yaml").unwrap_err().message;
        assert!(e.contains("clustername") && e.contains("t.yaml:2"), "{e}");
        let e = parse("proxy_servce:\n  enabled: yes\n", "t.yaml").unwrap_err().message;
        assert!(e.contains("proxy_servce"), "{e}");
    }

    #[test]
    fn cluster_name_defaults_to_nodename_and_yes_no_flags() {
        let c = build("teleport:\n  nodename: box1\nssh_service:\n  enabled: no\n", Overrides::default()).unwrap();
        assert_eq!(c.cluster_name, "box1");
        assert!(!c.ssh);
    }

    #[test]
    fn roles_and_node_mode() {
        let o = Overrides {
            roles: Some(vec!["node".into()]),
            auth_server: Some("root:3080".into()),
            token: Some("t".into()),
            ..Default::default()
        };
        let c = build("", o).unwrap();
        assert!(!c.auth && c.ssh && !c.use_tunnel);
        assert_eq!(c.join_addr.as_deref(), Some("root:3080"));
        let o = Overrides { roles: Some(vec!["auth".into()]), ..Default::default() };
        assert!(build("", o).unwrap_err().message.contains("run together"));
        let o = Overrides { roles: Some(vec!["node".into()]), ..Default::default() };
        assert!(build("", o).unwrap_err().message.contains("where to join"));
        let c = build("teleport:\n  proxy_server: root:443\n  auth_token: x\n", Overrides::default()).unwrap();
        assert!(!c.auth && c.ssh && c.use_tunnel);
        assert_eq!(c.join_addr.as_deref(), Some("root:443"));
    }

    #[test]
    fn static_tokens_and_durations() {
        let c = build(
            "auth_service:\n  tokens: ['trusted_cluster:secret-value-123456', 'node:abc']\n  keep_alive_interval: 1s\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.static_tokens.len(), 2);
        assert_eq!(c.keep_alive_interval, Duration::from_secs(1));
        assert!(build("auth_service:\n  tokens: ['nocolon']\n", Overrides::default()).is_err());
        assert!(
            build("auth_service:\n  keep_alive_interval: soon\n", Overrides::default())
                .unwrap_err()
                .message
                .contains("keep_alive_interval")
        );
        assert!(build("app_service:\n  enabled: yes\n", Overrides::default()).unwrap().apps.is_empty());
        let c = build(
            "app_service:\n  enabled: yes\n  apps:\n  - {name: grafana, uri: 'http://127.0.0.1:3000', labels: {env: prod}}\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.apps[0].metadata.labels["env"], "prod");
        let e = build("app_service:\n  enabled: yes\n  apps:\n  - {name: Grafana, uri: 'http://x'}\n", Overrides::default())
            .unwrap_err()
            .message;
        assert!(e.contains("app_service.apps[0]") && e.contains("DNS label"), "{e}");
        assert!(build("app_service:\n  enabled: no\n  apps: []\n", Overrides::default()).is_ok());
        let db = build(
            "db_service:\n  enabled: yes\n  databases:\n  - {name: dev-pg, protocol: postgres, uri: 'h:5432', static_labels: {env: dev}}\n",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(db.databases[0].metadata.labels["env"], "dev");
        let twice = build(
            "db_service:\n  enabled: yes\n  databases:\n  - {name: a, protocol: postgres, uri: 'h:5432'}\n  - {name: a, protocol: postgres, uri: 'h:5433'}\n",
            Overrides::default(),
        )
        .unwrap_err()
        .message;
        assert!(twice.contains("db_service.databases[1]") && twice.contains("listed twice"), "{twice}");
        let no_ca = build(
            "db_service:\n  enabled: yes\n  databases:\n  - {name: a, protocol: postgres, uri: 'h:5432', tls: {ca_cert_file: /nonexistent/ca.pem}}\n",
            Overrides::default(),
        )
        .unwrap_err()
        .message;
        assert!(no_ca.contains("cannot read the CA file /nonexistent/ca.pem"), "{no_ca}");
        let mysql =
            build("db_service:\n  enabled: yes\n  databases:\n  - {name: m, protocol: mysql, uri: 'h:3306'}\n", Overrides::default())
                .unwrap_err()
                .message;
        assert!(mysql.contains("db_service.databases[0]") && mysql.contains("use postgres"), "{mysql}");
        let dynamic = build(
            "db_service:\n  enabled: yes\n  databases:\n  - name: a\n    protocol: postgres\n    uri: 'h:5432'\n    static_labels: {env: dev}\n    dynamic_labels:\n    - {name: env, command: [hostname]}\n",
            Overrides::default(),
        )
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
        assert!(dynamic.contains("db_service.databases[0].dynamic_labels[0].name") && dynamic.contains("already a label"), "{dynamic}");
        // A process of its own: --roles=db, reached through its tunnel.
        let section = "db_service:\n  enabled: yes\n  databases:\n  - {name: pg, protocol: postgres, uri: 'h:5432'}\n";
        let c = build(section, agent_overrides(true, "db")).unwrap();
        assert!(!c.auth && !c.ssh && c.databases.len() == 1 && c.use_tunnel, "--roles=db --tunnel: databases only");
        let direct = build(section, agent_overrides(false, "db")).err().map(|e| e.message).unwrap_or_default();
        assert!(direct.contains("--tunnel"), "{direct}");
        let empty = build("teleport:\n  nodename: a\n", agent_overrides(true, "db")).err().map(|e| e.message).unwrap_or_default();
        assert!(empty.contains("--roles=db needs a db_service section"), "{empty}");
        let r = build("app_service:\n  enabled: yes\n  resources:\n  - labels: {team: web}\n", Overrides::default()).unwrap();
        assert_eq!(r.app_resources.len(), 1);
        let empty = build("app_service:\n  enabled: yes\n  resources:\n  - labels: {}\n", Overrides::default()).unwrap_err().message;
        assert!(empty.contains("app_service.resources[0].labels is empty"), "{empty}");
        let agent = |yaml: &str| {
            let o = Overrides { roles: Some(vec!["app".into()]), tunnel: true, auth_server: Some("x:3080".into()), ..Default::default() };
            build(yaml, o)
        };
        assert!(agent("app_service:\n  resources:\n  - labels: {'*': '*'}\n").unwrap().app_resources.len() == 1);
        let none = agent("ssh_service:\n  enabled: no\n").unwrap_err().message;
        assert!(none.contains("--roles=app needs an app_service section"), "{none}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse("auth_service:\n  keep_alive_count_max: many\n", "t.yaml").unwrap_err().message;
        assert!(e.contains("keep_alive_count_max") && e.starts_with("t.yaml:2"), "{e}");
    }
}
