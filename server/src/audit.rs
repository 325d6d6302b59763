//! The audit log: every event goes to the storage table and, as one JSON line, to
//! `<data_dir>/log/events.log` (where the guide tells admins to look).
//!
//! Every event is bounded ([`MAX_EVENT_BYTES`]): one that would be larger has its longest
//! strings and lists cut until it fits, and says so (`"trimmed": true`), as Teleport trims
//! events to its backends' item size. Strings a caller without credentials controls (a user
//! name at sign-in, a connector name in a URL) are also clipped where they come in ([`clip`]),
//! so a failed sign-in costs the log a few hundred bytes, whatever was sent.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use shared::error::Result;
use shared::timefmt::SharedClock;

pub use crate::storage::audit::{AuditStore, BackendAudit};

/// Event names and codes (Teleport's where they exist).
pub mod codes {
    /// A user logged in.
    pub const USER_LOGIN: (&str, &str) = ("user.login", "T1000I");
    /// A login failed.
    pub const USER_LOGIN_FAILED: (&str, &str) = ("user.login", "T1000W");
    /// A user was created.
    pub const USER_CREATE: (&str, &str) = ("user.create", "T1002I");
    /// A user was changed.
    pub const USER_UPDATE: (&str, &str) = ("user.update", "T1003I");
    /// A user was deleted.
    pub const USER_DELETE: (&str, &str) = ("user.delete", "T1004I");
    /// A password was set.
    pub const USER_PASSWORD: (&str, &str) = ("user.password_change", "T1005I");
    /// An MFA device was added.
    pub const MFA_ADD: (&str, &str) = ("mfa.add", "T1006I");
    /// An MFA device was removed.
    pub const MFA_DELETE: (&str, &str) = ("mfa.delete", "T1007I");
    /// A second-factor code was wrong, or refused during a lockout (Teleport's MFA challenge
    /// validation event, failure code).
    pub const MFA_CODE_FAILED: (&str, &str) = ("mfa_auth_challenge.validate", "T1016W");
    /// Too many wrong codes locked a user's second factor (ours).
    pub const USER_LOCKOUT: (&str, &str) = ("user.lockout", "TLO00W");
    /// An SSH session started.
    pub const SESSION_START: (&str, &str) = ("session.start", "T2000I");
    /// Someone joined a running session (`tsh join`, the web's Active Sessions).
    pub const SESSION_JOIN: (&str, &str) = ("session.join", "T2001I");
    /// Someone left a session they had joined.
    pub const SESSION_LEAVE: (&str, &str) = ("session.leave", "T2003I");
    /// An SSH session ended.
    pub const SESSION_END: (&str, &str) = ("session.end", "T2004I");
    /// A command ran.
    pub const EXEC: (&str, &str) = ("exec", "T3002I");
    /// A Kubernetes API request (T3009I), audited by the cluster that owns the Kubernetes cluster.
    pub const KUBE_REQUEST: (&str, &str) = ("kube.request", "T3009I");
    /// A non-interactive `kubectl exec`.
    pub const KUBE_EXEC: (&str, &str) = ("exec", "T3002I");
    /// A `kubectl port-forward`.
    pub const KUBE_PORT: (&str, &str) = ("port", "T3003I");
    /// An app session began: at the root when it is created, at the cluster that serves the app
    /// for each connection the proxy opens to it.
    pub const APP_SESSION_START: (&str, &str) = ("app.session.start", "T2007I");
    /// One request to an app (method, path, status), by the cluster that serves it.
    pub const APP_SESSION_REQUEST: (&str, &str) = ("app.session.request", "T2009I");
    /// A connection of an app session ended (or the session was signed out, at the root).
    pub const APP_SESSION_END: (&str, &str) = ("app.session.end", "T2011I");
    /// A database session began, at the cluster that serves the database.
    pub const DB_SESSION_START: (&str, &str) = ("db.session.start", "TDB00I");
    /// A database session was refused (the rule in `error`).
    pub const DB_SESSION_DENIED: (&str, &str) = ("db.session.start", "TDB00W");
    /// A database session ended.
    pub const DB_SESSION_END: (&str, &str) = ("db.session.end", "TDB01I");
    /// A simple query (`Q`).
    pub const DB_SESSION_QUERY: (&str, &str) = ("db.session.query", "TDB02I");
    /// A statement prepared (extended protocol `P`).
    pub const PG_PARSE: (&str, &str) = ("db.session.postgres.statements.parse", "TPG00I");
    /// A portal bound with its parameters (`B`).
    pub const PG_BIND: (&str, &str) = ("db.session.postgres.statements.bind", "TPG01I");
    /// A portal run (`E`).
    pub const PG_EXECUTE: (&str, &str) = ("db.session.postgres.statements.execute", "TPG02I");
    /// An access request was made.
    pub const ACCESS_REQUEST_CREATE: (&str, &str) = ("access_request.create", "T5000I");
    /// An access request changed state (approved, denied, or ended by an admin).
    pub const ACCESS_REQUEST_UPDATE: (&str, &str) = ("access_request.update", "T5001I");
    /// A review of an access request was submitted.
    pub const ACCESS_REQUEST_REVIEW: (&str, &str) = ("access_request.review", "T5002I");
    /// An access request was deleted.
    pub const ACCESS_REQUEST_DELETE: (&str, &str) = ("access_request.delete", "T5003I");
    /// An SSH login was refused.
    pub const AUTH_FAILURE: (&str, &str) = ("auth", "T3007W");
    /// A role was created or changed.
    pub const ROLE_CREATE: (&str, &str) = ("role.created", "T9000I");
    /// A role was deleted.
    pub const ROLE_DELETE: (&str, &str) = ("role.deleted", "T9001I");
    /// A trusted cluster was created or changed (leaf).
    pub const TRUSTED_CLUSTER_CREATE: (&str, &str) = ("trusted_cluster.create", "T7000I");
    /// A trusted cluster was deleted (leaf).
    pub const TRUSTED_CLUSTER_DELETE: (&str, &str) = ("trusted_cluster.delete", "T7001I");
    /// A trusted_cluster token was created (root).
    pub const TRUSTED_CLUSTER_TOKEN_CREATE: (&str, &str) = ("trusted_cluster_token.create", "T7002I");
    /// A trust handshake was accepted (root).
    pub const TRUSTED_CLUSTER_VALIDATE: (&str, &str) = ("trusted_cluster.validate", "T7003I");
    /// A trust handshake was refused (root).
    pub const TRUSTED_CLUSTER_VALIDATE_FAILED: (&str, &str) = ("trusted_cluster.validate", "T7003W");
    /// A join token was created.
    pub const JOIN_TOKEN_CREATE: (&str, &str) = ("join_token.create", "TJT00I");
    /// A node joined.
    pub const INSTANCE_JOIN: (&str, &str) = ("instance.join", "TJ002I");
    /// A resource was created or changed through tctl.
    pub const RESOURCE_UPSERT: (&str, &str) = ("resource.upsert", "TR000I");
    /// A resource was deleted through tctl.
    pub const RESOURCE_DELETE: (&str, &str) = ("resource.delete", "TR001I");
    /// A lock was created.
    pub const LOCK_CREATE: (&str, &str) = ("lock.created", "TLK00I");
    /// A lock was deleted.
    pub const LOCK_DELETE: (&str, &str) = ("lock.deleted", "TLK01I");
    /// A leaf proxy connected a root's user to one of its nodes.
    pub const TUNNEL_CONNECT: (&str, &str) = ("session.connect", "T2010I");
    /// A remote cluster was changed (root).
    pub const REMOTE_CLUSTER_UPDATE: (&str, &str) = ("remote_cluster.update", "TRC01I");
    /// A remote cluster was deleted (root).
    pub const REMOTE_CLUSTER_DELETE: (&str, &str) = ("remote_cluster.delete", "TRC02I");
    /// A certificate authority rotation moved to a phase (ours: Teleport does not audit it).
    pub const CA_ROTATE: (&str, &str) = ("cert_authority.rotate", "TCA01I");
    /// An SFTP session's operation (the code depends on the operation: [`sftp_code`]).
    pub const SFTP: &str = "sftp";
    /// Copying files refused by a role or the node.
    pub const SFTP_DISALLOWED: (&str, &str) = ("sftp", "TS020E");
    /// The bytes each file moved in one SFTP session.
    pub const SFTP_SUMMARY: (&str, &str) = ("sftp_summary", "TS021I");
    /// Legacy `scp -O` downloading (`scp -f`).
    pub const SCP_DOWNLOAD: (&str, &str) = ("scp", "T3004I");
    /// Legacy `scp -O` uploading (`scp -t`).
    pub const SCP_UPLOAD: (&str, &str) = ("scp", "T3005I");
    /// Legacy `scp -O` refused by a role or the node.
    pub const SCP_DISALLOWED: (&str, &str) = ("scp", "T3010E");

    /// Port forwarding refused by a role or the node.
    pub const PORT_DENIED: (&str, &str) = ("port", "T3003E");
    /// A `direct-tcpip` channel (`-L`, `-D`) connected from the node.
    pub const PORT_LOCAL_START: (&str, &str) = ("port.local", "T3003I");
    /// A `direct-tcpip` channel whose target could not be reached.
    pub const PORT_LOCAL_FAIL: (&str, &str) = ("port.local", "T3003E");
    /// A `direct-tcpip` channel ended.
    pub const PORT_LOCAL_STOP: (&str, &str) = ("port.local", "T3003S");
    /// A remote forward (`-R`) listening on the node.
    pub const PORT_REMOTE_START: (&str, &str) = ("port.remote", "T3003I");
    /// A remote forward that could not listen.
    pub const PORT_REMOTE_FAIL: (&str, &str) = ("port.remote", "T3003E");
    /// A remote forward cancelled.
    pub const PORT_REMOTE_STOP: (&str, &str) = ("port.remote", "T3003S");
    /// A connection accepted on a remote forward's listener.
    pub const PORT_REMOTE_CONN: (&str, &str) = ("port.remote_conn", "T3003I");

    /// Teleport's code for an SFTP operation (its `action` number), success or failure.
    pub fn sftp_code(action: u64, ok: bool) -> Option<String> {
        if !matches!(action, 1 | 7 | 9 | 11 | 12 | 13 | 16 | 18 | 19) {
            return None;
        }
        Some(format!("TS{action:03}{}", if ok { 'I' } else { 'E' }))
    }
}

/// The largest event the log stores, as JSON.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// The longest string from a caller without credentials kept in a log line or event.
pub const MAX_UNTRUSTED: usize = 256;

/// `s`, cut to at most `max` bytes (on a character boundary) with a note of its full length when
/// it is longer: for strings a caller controls, before they are logged or audited.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &s[..end], s.len())
}

/// Cuts `event`'s strings and lists until its JSON fits in `max` bytes (keeping the fields that
/// say what it is); returns whether anything was cut.
fn trim_to(event: &mut Map<String, Value>, max: usize) -> bool {
    fn cut(v: &mut Value, strings: usize, items: usize) {
        match v {
            Value::String(s) if s.len() > strings => *s = clip(s, strings),
            Value::Array(a) => {
                a.truncate(items);
                a.iter_mut().for_each(|x| cut(x, strings, items));
            }
            Value::Object(o) => o.values_mut().for_each(|x| cut(x, strings, items)),
            _ => {}
        }
    }
    let size = |e: &Map<String, Value>| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(usize::MAX);
    if size(event) <= max {
        return false;
    }
    for (strings, items) in [(4096, 256), (1024, 64), (256, 16), (64, 4)] {
        event.values_mut().for_each(|v| cut(v, strings, items));
        if size(event) <= max.saturating_sub(20) {
            return true;
        }
    }
    // Still too large (many fields): keep what says what happened.
    event.retain(|k, _| matches!(k.as_str(), "event" | "code" | "time" | "uid" | "cluster_name" | "user" | "success"));
    event.values_mut().for_each(|v| cut(v, 64, 4));
    true
}

/// A new event's `uid`: a version 4 UUID from the thread's CSPRNG (seeded from the system's),
/// not a `getrandom` system call per event as `Uuid::new_v4` makes (a busy app audits every
/// request).
fn event_uid() -> String {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string()
}

/// The fields every event of one connection has (who, what, from where), built once when the
/// connection starts: as a map, and serialized, so that a per-request or per-query event copies
/// a string into its line instead of cloning and serializing the same map again each time (that
/// was about a tenth of an app service's CPU per request).
pub struct EventBase {
    map: Map<String, Value>,
    /// The members of `map` as JSON, without the braces (empty when `map` is).
    members: String,
}

impl EventBase {
    /// The base of `map`'s fields.
    pub fn new(map: Map<String, Value>) -> Arc<EventBase> {
        let json = serde_json::to_string(&map).unwrap_or_else(|_| "{}".into());
        let members = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_string();
        Arc::new(EventBase { map, members })
    }

    /// The fields, as a map.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }
}

/// One event of a connection: its [`EventBase`] and the fields of its own.
pub struct BasedEvent {
    /// The connection's fields.
    pub base: Arc<EventBase>,
    /// This event's (`event` and `code` among them); where a name is in both, this one counts.
    pub own: Map<String, Value>,
}

impl BasedEvent {
    /// The whole event as one map.
    pub fn into_map(self) -> Map<String, Value> {
        let mut m = self.base.map.clone();
        m.extend(self.own);
        m
    }
}

/// Where events go.
#[derive(Clone)]
pub struct AuditLog {
    backend: Arc<dyn AuditStore>,
    file: Arc<Mutex<Option<std::fs::File>>>,
    cluster_name: String,
    clock: SharedClock,
    path: PathBuf,
}

impl AuditLog {
    /// Opens `<data_dir>/log/events.log` for appending.
    pub fn open(backend: Arc<dyn AuditStore>, data_dir: &Path, cluster_name: &str, clock: SharedClock) -> Result<AuditLog> {
        let dir = data_dir.join("log");
        std::fs::create_dir_all(&dir).map_err(|e| shared::Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("events.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| shared::Error::internal(format!("cannot open {}: {e}", path.display())))?;
        Ok(AuditLog { backend, file: Arc::new(Mutex::new(Some(file))), cluster_name: cluster_name.into(), clock, path })
    }

    /// Records an event: `code` is (event name, code); `fields` is a JSON object.
    pub async fn emit(&self, code: (&str, &str), fields: Value) {
        let mut event = Map::new();
        event.insert("event".into(), json!(code.0));
        event.insert("code".into(), json!(code.1));
        event.insert("time".into(), json!(shared::timefmt::rfc3339(self.clock.now())));
        event.insert("uid".into(), json!(event_uid()));
        event.insert("cluster_name".into(), json!(self.cluster_name));
        if let Value::Object(f) = fields {
            for (k, v) in f {
                event.insert(k, v);
            }
        }
        self.record(event).await;
    }

    /// Records an event that already has its fields (from a node); fills `time`, `uid` and the
    /// cluster if missing.
    pub async fn record(&self, event: Map<String, Value>) {
        self.record_many(vec![event]).await;
    }

    /// Records several events together (one store transaction, one write to the file).
    pub async fn record_many(&self, events: Vec<Map<String, Value>>) {
        let lines = events.into_iter().map(|e| self.line(e)).collect();
        self.write(lines).await;
    }

    /// Records events of connections together, each written as its own fields followed by its
    /// connection's, serialized once (the same line as [`Self::record_many`] would write, but for
    /// the order of the fields).
    pub async fn record_based(&self, events: Vec<BasedEvent>) {
        let lines = events.into_iter().map(|e| self.based_line(e)).collect();
        self.write(lines).await;
    }

    async fn write(&self, lines: Vec<String>) {
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in &lines {
            bytes.extend_from_slice(l.as_bytes());
            bytes.push(b'\n');
        }
        let stored = if lines.len() == 1 {
            self.backend.append(lines.into_iter().next().unwrap_or_default()).await.map(|_| ())
        } else {
            self.backend.append_many(lines).await
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "cannot store audit event");
        }
        // One write for all (a formatted `writeln!` to a file is a system call per piece).
        if let Ok(mut guard) = self.file.lock()
            && let Some(f) = guard.as_mut()
            && let Err(e) = f.write_all(&bytes)
        {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot append audit event");
        }
    }

    /// A connection's event's line: [`Self::line`]'s, with the connection's fields copied in as
    /// they were serialized. An event whose own fields name one of the connection's, or that
    /// would be over its bound, is made whole and goes the ordinary way.
    fn based_line(&self, e: BasedEvent) -> String {
        let BasedEvent { base, mut own } = e;
        let clash =
            own.keys().any(|k| base.map.contains_key(k)) || ["time", "uid", "cluster_name"].iter().any(|k| base.map.contains_key(*k));
        if clash {
            return self.line(BasedEvent { base, own }.into_map());
        }
        own.entry("time").or_insert_with(|| json!(shared::timefmt::rfc3339(self.clock.now())));
        own.entry("uid").or_insert_with(|| json!(event_uid()));
        own.entry("cluster_name").or_insert_with(|| json!(self.cluster_name));
        let mut line = serde_json::to_string(&own).unwrap_or_else(|_| "{}".into());
        if !base.members.is_empty() {
            line.pop();
            line.push(',');
            line.push_str(&base.members);
            line.push('}');
        }
        if line.len() <= MAX_EVENT_BYTES {
            return line;
        }
        self.line(BasedEvent { base, own }.into_map())
    }

    /// An event's line: `time`, `uid` and the cluster filled in if missing, within its bound.
    fn line(&self, mut event: Map<String, Value>) -> String {
        event.entry("time").or_insert_with(|| json!(shared::timefmt::rfc3339(self.clock.now())));
        event.entry("uid").or_insert_with(|| json!(event_uid()));
        event.entry("cluster_name").or_insert_with(|| json!(self.cluster_name));
        // Serialized once; only an event over its bound is cut and serialized again.
        let line = serde_json::to_string(&event).unwrap_or_default();
        if line.len() <= MAX_EVENT_BYTES {
            return line;
        }
        trim_to(&mut event, MAX_EVENT_BYTES);
        event.insert("trimmed".into(), json!(true));
        Value::Object(event).to_string()
    }

    /// The newest events.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Value>> {
        let records = self.backend.list(limit).await?;
        Ok(records.into_iter().filter_map(|r| serde_json::from_str(&r.json).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (AuditLog, PathBuf) {
        let clock = shared::timefmt::system_clock();
        let backend = Arc::new(crate::storage::memory::MemoryBackend::new(clock.clone()));
        let dir = std::env::temp_dir().join(format!("tp-audit-{}-{}", std::process::id(), shared::certs::random_hex(4)));
        let log = AuditLog::open(Arc::new(BackendAudit(backend)), &dir, "leaf", clock).unwrap();
        (log, dir)
    }

    #[tokio::test]
    async fn a_connections_events_are_the_events_a_whole_map_makes() {
        let (log, dir) = log();
        let mut common = Map::new();
        common.insert("user".into(), json!("remote-alice-root"));
        common.insert("roles".into(), json!(["visitor"]));
        common.insert("app_labels".into(), json!({"env": "dev \"quoted\""}));
        let base = EventBase::new(common);
        let own = |path: &str| {
            let mut m = Map::new();
            m.insert("event".into(), json!("app.session.request"));
            m.insert("code".into(), json!("T2009I"));
            m.insert("path".into(), json!(path));
            m
        };
        // Its own field named like the connection's: its own counts (the whole-map way).
        let mut clash = own("/b");
        clash.insert("user".into(), json!("someone-else"));
        // Over the bound: cut the ordinary way.
        let big = own(&"x".repeat(MAX_EVENT_BYTES + 10));
        let events = vec![
            BasedEvent { base: base.clone(), own: own("/a") },
            BasedEvent { base: base.clone(), own: clash },
            BasedEvent { base: base.clone(), own: big },
            BasedEvent { base: EventBase::new(Map::new()), own: own("/c") },
        ];
        log.record_based(events).await;
        let text = std::fs::read_to_string(dir.join("log/events.log")).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (i, path) in ["/a", "/b"].iter().enumerate() {
            let e = &lines[i];
            let mut want = base.map().clone();
            want.extend(own(path));
            if i == 1 {
                want.insert("user".into(), json!("someone-else"));
            }
            for k in ["time", "uid", "cluster_name"] {
                assert!(e.get(k).is_some(), "{k} filled in: {e}");
                want.insert(k.into(), e[k].clone());
            }
            assert_eq!(e, &Value::Object(want), "line {i}");
        }
        assert_eq!(lines[1]["user"], "someone-else");
        assert_eq!((lines[2]["trimmed"].as_bool(), lines[2]["user"].as_str()), (Some(true), Some("remote-alice-root")));
        assert!(text.lines().nth(2).unwrap().len() <= MAX_EVENT_BYTES);
        assert_eq!((lines[3]["path"].as_str(), lines[3]["cluster_name"].as_str()), (Some("/c"), Some("leaf")));
        // The store has the same lines as the file.
        let stored = log.recent(10).await.unwrap();
        assert_eq!(stored.len(), 4);
        assert!(stored.iter().all(|e| lines.contains(e)), "{stored:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn event_uids_are_version_4_uuids_and_differ() {
        let (a, b) = (event_uid(), event_uid());
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
    }

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_on_a_character_boundary() {
        assert_eq!(clip("alice", 256), "alice");
        let long = "é".repeat(1000);
        let c = clip(&long, 255);
        assert!(c.starts_with(&"é".repeat(127)) && c.ends_with("…[2000 bytes]"), "{c}");
        assert!(c.len() < 300);
    }

    #[test]
    fn an_event_is_cut_to_its_size_limit_and_says_so() {
        let mut e = Map::new();
        e.insert("event".into(), json!("user.login"));
        e.insert("user".into(), json!("x".repeat(5 << 20)));
        e.insert("roles".into(), json!(vec!["r"; 100_000]));
        assert!(trim_to(&mut e, MAX_EVENT_BYTES));
        let n = serde_json::to_vec(&e).map(|v| v.len()).unwrap_or(0);
        assert!(n <= MAX_EVENT_BYTES, "{n}");
        assert_eq!(e["event"], "user.login");
        assert!(e["user"].as_str().is_some_and(|u| u.ends_with(&format!("[{} bytes]", 5 << 20))));
        let mut small = Map::new();
        small.insert("user".into(), json!("alice"));
        assert!(!trim_to(&mut small, MAX_EVENT_BYTES), "small events are untouched");
        // Many fields of moderate size still end within the limit.
        let mut wide = Map::new();
        for i in 0..2000 {
            wide.insert(format!("f{i}"), json!("y".repeat(100)));
        }
        wide.insert("event".into(), json!("x"));
        assert!(trim_to(&mut wide, MAX_EVENT_BYTES));
        assert!(serde_json::to_vec(&wide).map(|v| v.len()).unwrap_or(0) <= MAX_EVENT_BYTES);
    }
}
