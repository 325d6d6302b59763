//! The database service of the cluster that owns a database: it decides, connects and audits.
//!
//! A connection arrives (from this cluster's proxy, or a root's through the tunnel) with the
//! user's database certificate and the client's `StartupMessage`. The service:
//! 1. admits the certificate (chain to a user CA trusted here, locks, the roles mapped for a
//!    root's user) and finds the database its route names among those it serves;
//! 2. takes the database user and name **from the `StartupMessage`** (the certificate's are
//!    defaults only) and checks `db_labels`, `db_users` and `db_names` of those roles; a refusal
//!    is `db.session.start` with code TDB00W and a PostgreSQL `FATAL` naming the rule;
//! 3. connects to PostgreSQL with TLS (`SSLRequest` first; never plaintext), verifying it per
//!    `tls.mode` against `tls.ca_cert` or the cluster's `db` CA, presenting a client
//!    certificate with the database user as its common name from the `db` CA (PostgreSQL's
//!    `hostssl ... cert`), and sends the `StartupMessage` on;
//! 4. relays, reading what the client sends for the audit (`db.session.query`, the extended
//!    protocol's statements) without holding a byte back, until either side leaves or a lock
//!    ends the session (`db.session.end`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use shared::client::{BoxStream, ClientIdentity, ServerTrust};
use shared::error::{Error, Result};
use shared::pg::{self, Frontend, Startup};
use shared::resource::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::access::cluster::{EventQueue, Forwarded, ServiceAccess, emit_coded};
use crate::audit::codes;
use crate::live::{Live, LiveEntry};
use crate::shutdown::Shutdown;

/// How long a client has to send its `StartupMessage`, and a database to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes read from a database before it has authenticated us.
const MAX_AUTH_BYTES: usize = 64 * 1024;

/// The database service of this process.
pub struct DbEngine {
    /// The cluster: who callers are, where events go, who signs client certificates.
    pub access: Arc<dyn ServiceAccess>,
    /// The databases it serves, by name.
    pub dbs: BTreeMap<String, Db>,
    /// Their dynamic labels, by name.
    dynamic: BTreeMap<String, Arc<crate::access::labels::DynamicLabels>>,
    /// This process.
    pub host_id: String,
    /// This process's host name.
    pub hostname: String,
    /// Where live sessions register, for locks to end them.
    pub live: Arc<Live>,
    /// How often the databases are heartbeated (they live three intervals).
    pub heartbeat: Duration,
    /// Per-query events, written off the session's path.
    queries: EventQueue,
    /// TLS to a database as a user, until shortly before its certificate ends.
    creds: Mutex<HashMap<(String, String), KeptTls>>,
}

/// TLS to a database as a user (database and user name), with its certificate's end.
type KeptTls = (i64, Arc<rustls::ClientConfig>);

/// What one session may do, decided when it starts.
struct Session {
    db: Db,
    /// The database user and name the client asked for.
    db_user: String,
    db_name: String,
    /// The Teleport user (their certificate's name), the cluster that issued the certificate,
    /// and every role that applies (the certificate's and the mapped ones): what locks match.
    login: String,
    origin: String,
    roles: Vec<String>,
    /// The user's certificate's end (Unix seconds).
    not_after: i64,
    /// The access requests whose roles the certificate carries.
    requests: Vec<String>,
    /// The audit's fields common to every event of the session.
    base: Arc<crate::audit::EventBase>,
}

/// A PostgreSQL `FATAL` error to the client, then the end of the connection.
pub async fn refuse(stream: &mut BoxStream, code: &str, message: &str) {
    let _ = stream.write_all(&pg::error_response("FATAL", code, message)).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// Reads the packet a client starts with (bounded in size and time).
pub async fn read_startup(stream: &mut BoxStream) -> Result<(Startup, Vec<u8>)> {
    tokio::time::timeout(STARTUP_TIMEOUT, pg::read_startup_from(stream))
        .await
        .map_err(|_| Error::connection_problem("no startup packet in time"))?
}

impl DbEngine {
    /// The service for `dbs`, deciding through `access`.
    pub fn new(access: Arc<dyn ServiceAccess>, cfg: &crate::config::Config, host_id: &str, live: Arc<Live>) -> Arc<Self> {
        let queries = EventQueue::start(access.clone());
        let (dbs, hostname, heartbeat) = (&cfg.databases, cfg.nodename.as_str(), cfg.node_heartbeat);
        Arc::new(DbEngine {
            access,
            dbs: dbs.iter().map(|d| (d.metadata.name.clone(), d.clone())).collect(),
            dynamic: cfg
                .db_label_commands
                .iter()
                .map(|(name, commands)| (name.clone(), crate::access::labels::DynamicLabels::new(commands.clone())))
                .collect(),
            host_id: host_id.to_string(),
            hostname: hostname.to_string(),
            live,
            heartbeat,
            queries,
            creds: Mutex::new(HashMap::new()),
        })
    }

    /// Whether it serves database `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.dbs.contains_key(name)
    }

    /// Database `name` with its dynamic labels' latest values.
    fn current(&self, name: &str) -> Option<Db> {
        let mut d = self.dbs.get(name)?.clone();
        if let Some(dl) = self.dynamic.get(name) {
            d.metadata.labels = dl.with(&d.metadata.labels);
        }
        Some(d)
    }

    /// Heartbeats every database until shutdown, then removes those it served; runs the dynamic
    /// labels' commands (once before the first heartbeat, then each at its period).
    pub async fn run_heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
        for dl in self.dynamic.values() {
            dl.start(&shutdown).await;
        }
        loop {
            let expires = self.access.now() + self.heartbeat * 3;
            for d in self.dbs.keys().filter_map(|n| self.current(n)) {
                let served = Db::served(d.clone(), &self.host_id, &self.hostname, false, expires);
                if let Err(e) = self.access.heartbeat_db(served).await {
                    tracing::warn!(db = %d.metadata.name, error = %e, "cannot register the database; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.heartbeat) => {}
            }
        }
        for name in self.dbs.keys() {
            self.access.leave_db(name).await;
        }
    }

    /// Serves a connection whose first bytes are the client's `StartupMessage`.
    pub async fn serve(self: Arc<Self>, mut stream: BoxStream, fwd: Forwarded) {
        match read_startup(&mut stream).await {
            Ok((startup @ Startup::Message { .. }, _)) => self.serve_startup(stream, startup, fwd).await,
            Ok(_) => refuse(&mut stream, "08P01", "expected a StartupMessage").await,
            Err(e) => refuse(&mut stream, "08P01", &e.message).await,
        }
    }

    /// Serves a connection whose `StartupMessage` the caller has read.
    pub async fn serve_startup(self: Arc<Self>, mut client: BoxStream, startup: Startup, fwd: Forwarded) {
        let session = match self.admit(&startup, &fwd).await {
            Ok(s) => s,
            Err((base, e)) => {
                tracing::info!(addr = %fwd.addr, via = ?fwd.via_root, error = %e, "refused a database connection");
                if let Some(mut event) = base {
                    event.insert("error".into(), json!(e.message));
                    emit_coded(self.access.as_ref(), codes::DB_SESSION_DENIED, event).await;
                }
                refuse(&mut client, "28000", &e.message).await;
                return;
            }
        };
        let (server, greeting) = match self.connect(&session, &startup).await {
            Ok(s) => s,
            Err(Connect::Refused(bytes)) => {
                // PostgreSQL's own refusal (no such role, a failed certificate check): as it is.
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                let mut event = session.base.map().clone();
                event.insert("error".into(), json!("the database refused the connection"));
                emit_coded(self.access.as_ref(), codes::DB_SESSION_DENIED, event).await;
                return;
            }
            Err(Connect::Failed(e)) => {
                tracing::warn!(db = %session.db.metadata.name, error = %e, "cannot connect to the database");
                let mut event = session.base.map().clone();
                event.insert("error".into(), json!(e.message));
                emit_coded(self.access.as_ref(), codes::DB_SESSION_DENIED, event).await;
                refuse(&mut client, "08006", &e.message).await;
                return;
            }
        };
        if client.write_all(&greeting).await.is_err() {
            return;
        }
        emit_coded(self.access.as_ref(), codes::DB_SESSION_START, session.base.map().clone()).await;
        self.relay(client, server, &session).await;
        emit_coded(self.access.as_ref(), codes::DB_SESSION_END, session.base.map().clone()).await;
    }

    /// Verifies the certificate and decides on the user and database the client asked for.
    /// A refusal carries the audit fields when the caller is known.
    async fn admit(
        &self,
        startup: &Startup,
        fwd: &Forwarded,
    ) -> std::result::Result<Session, (Option<serde_json::Map<String, serde_json::Value>>, Error)> {
        let admitted = crate::access::cluster::admit_forwarded(self.access.as_ref(), fwd, "databases").await.map_err(|(_, e)| (None, e))?;
        let local = self.access.cluster_name();
        let (identity, origin, checker) = (admitted.identity, admitted.origin, admitted.checker);
        let Some(route) = identity.route_to_database.clone() else {
            return Err((None, Error::access_denied("this certificate is for no database; run 'tsh db login <database>'")));
        };
        let routed_here = identity.route_to_cluster.as_deref().is_none_or(|c| c.is_empty() || c == local);
        let db = self.current(&route.service_name).filter(|_| routed_here).ok_or_else(|| {
            (None, Error::not_found(format!("database {:?} not found among registered databases in cluster {local:?}", route.service_name)))
        })?;
        let db_user = startup.param("user").filter(|u| !u.is_empty()).map(str::to_string).unwrap_or(route.username.clone());
        let db_name = startup.param("database").filter(|d| !d.is_empty()).map(str::to_string).unwrap_or(route.database.clone());
        // PostgreSQL's own default: the database named as the user.
        let db_name = if db_name.is_empty() { db_user.clone() } else { db_name };
        let user = if origin == local { identity.username.clone() } else { format!("remote-{}-{origin}", identity.username) };
        let mut base = serde_json::Map::new();
        base.insert("user".into(), json!(user));
        base.insert("login".into(), json!(identity.username));
        base.insert("origin_cluster".into(), json!(origin));
        base.insert("remote_roles".into(), json!(identity.roles));
        base.insert("roles".into(), json!(checker.role_names()));
        base.insert("sid".into(), json!(uuid::Uuid::new_v4().to_string()));
        base.insert("db_service".into(), json!(db.metadata.name));
        base.insert("db_protocol".into(), json!(db.spec.protocol));
        base.insert("db_uri".into(), json!(db.spec.uri));
        base.insert("db_user".into(), json!(db_user));
        base.insert("db_name".into(), json!(db_name));
        base.insert("db_labels".into(), json!(db.metadata.labels));
        base.insert("addr.remote".into(), json!(fwd.addr));
        base.insert("server_id".into(), json!(self.host_id));
        base.insert("expires".into(), json!(admitted.not_after));
        if !identity.active_requests.is_empty() {
            base.insert("access_requests".into(), json!(identity.active_requests));
        }
        if db_user.is_empty() {
            let e = Error::bad_parameter("no database user: give one with 'tsh db login --db-user=NAME' or the client's user");
            return Err((Some(base), e));
        }
        if let Err(e) = checker.check_db_login(&db.metadata.labels, &db_user, &db_name) {
            return Err((Some(base), e));
        }
        let roles = identity.roles.iter().cloned().chain(checker.role_names()).collect();
        Ok(Session {
            db,
            db_user,
            db_name,
            login: identity.username.clone(),
            origin,
            roles,
            not_after: admitted.not_after,
            requests: identity.active_requests.clone(),
            base: crate::audit::EventBase::new(base),
        })
    }

    /// TLS to the database as the session's user, the `StartupMessage` sent and the
    /// authentication done: the stream and what the database said up to `AuthenticationOk`.
    async fn connect(&self, s: &Session, startup: &Startup) -> std::result::Result<(BoxStream, Vec<u8>), Connect> {
        let name = &s.db.metadata.name;
        let failed = |m: String| Connect::Failed(Error::connection_problem(m));
        let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&s.db.spec.uri))
            .await
            .map_err(|_| failed(format!("database {name:?} at {} did not answer in time", s.db.spec.uri)))?
            .map_err(|e| failed(format!("cannot reach database {name:?} at {}: {e}", s.db.spec.uri)))?;
        shared::tuning::set_nodelay(&tcp);
        let mut tcp = tcp;
        tcp.write_all(&pg::SSL_REQUEST_BYTES).await.map_err(|e| failed(format!("database {name:?}: {e}")))?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await.map_err(|e| failed(format!("database {name:?}: {e}")))?;
        if answer[0] != b'S' {
            return Err(failed(format!(
                "database {name:?} does not accept TLS (ssl = off?); Teleport never connects to a database in plaintext"
            )));
        }
        let cfg = self.client_config(&s.db, &s.db_user, s.not_after).await.map_err(Connect::Failed)?;
        let host =
            if s.db.spec.tls.server_name.is_empty() { shared::client::host_of(&s.db.spec.uri) } else { s.db.spec.tls.server_name.clone() };
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| failed(format!("database {name:?}: {host:?} is not a valid TLS server name")))?;
        let tls = tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsConnector::from(cfg).connect(server_name, tcp))
            .await
            .map_err(|_| failed(format!("database {name:?}: the TLS handshake did not finish in time")))?
            .map_err(|e| failed(format!("database {name:?}: TLS ({} mode): {e}", s.db.tls_mode())))?;
        let mut server: BoxStream = Box::new(tls);
        let mut params: Vec<(String, String)> = vec![("user".into(), s.db_user.clone()), ("database".into(), s.db_name.clone())];
        if let Startup::Message { params: asked, .. } = startup {
            params.extend(asked.iter().filter(|(k, _)| k != "user" && k != "database").cloned());
        }
        server.write_all(&pg::encode_startup(&params)).await.map_err(|e| failed(format!("database {name:?}: {e}")))?;
        server.flush().await.map_err(|e| failed(format!("database {name:?}: {e}")))?;
        let greeting = tokio::time::timeout(STARTUP_TIMEOUT, authenticate(&mut server, name))
            .await
            .map_err(|_| failed(format!("database {name:?} did not authenticate the connection in time")))??;
        Ok((server, greeting))
    }

    /// TLS to `db` as `user`: the client certificate from the `db` CA, made again a minute
    /// before it ends (or when the user's own certificate ends sooner than the kept one).
    async fn client_config(&self, db: &Db, user: &str, not_after: i64) -> Result<Arc<rustls::ClientConfig>> {
        let key = (db.metadata.name.clone(), user.to_string());
        let now = self.access.now().unix_timestamp();
        if let Ok(m) = self.creds.lock()
            && let Some((end, cfg)) = m.get(&key)
            && *end - 60 > now
            && *end <= not_after
        {
            return Ok(cfg.clone());
        }
        let cert = self.access.db_client_cert(user, not_after).await?;
        let cas = if db.spec.tls.ca_cert.is_empty() { cert.cas.clone() } else { vec![db.spec.tls.ca_cert.clone()] };
        let trust = match db.tls_mode() {
            "insecure" => ServerTrust::Insecure,
            "verify-ca" => ServerTrust::ChainOnly(cas),
            _ => ServerTrust::Pinned(cas),
        };
        let mut cfg = shared::client::tls_client_config(&trust, Some(&ClientIdentity { cert_pem: cert.cert_pem, key_pem: cert.key_pem }))?;
        cfg.alpn_protocols.clear();
        let cfg = Arc::new(cfg);
        if let Ok(mut m) = self.creds.lock() {
            m.retain(|_, (end, _)| *end > now);
            m.insert(key, (cert.not_after, cfg.clone()));
        }
        Ok(cfg)
    }

    /// Relays both ways until either side leaves or a lock ends the session.
    async fn relay(&self, client: BoxStream, server: BoxStream, s: &Session) {
        let cut = Arc::new(tokio::sync::Notify::new());
        let _live = {
            let cut = cut.clone();
            self.live.register(LiveEntry {
                user: s.login.clone(),
                origin: s.origin.clone(),
                roles: s.roles.clone(),
                login: None,
                issued_at: None,
                requests: s.requests.clone(),
                end: Box::new(move |_why| cut.notify_one()),
            })
        };
        let (mut client_rd, mut client_wr) = tokio::io::split(client);
        let (mut server_rd, mut server_wr) = tokio::io::split(server);
        let up = async {
            let mut scanner = pg::Scanner::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut seen: Vec<Frontend> = Vec::new();
            loop {
                let n = match client_rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Err(e) = scanner.feed(&buf[..n], &mut |f| seen.push(f)) {
                    tracing::info!(db = %s.db.metadata.name, error = %e, "ended a database session: malformed message from the client");
                    break;
                }
                for f in seen.drain(..) {
                    self.audit(s, f).await;
                }
                if server_wr.write_all(&buf[..n]).await.is_err() || server_wr.flush().await.is_err() {
                    break;
                }
            }
            let _ = server_wr.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut server_rd, &mut client_wr).await;
            let _ = client_wr.shutdown().await;
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut.notified() => {
                tracing::info!(db = %s.db.metadata.name, user = %s.db_user, "a lock ended a database session");
            }
        }
    }

    /// Queues the audit event for what the client sent.
    async fn audit(&self, s: &Session, f: Frontend) {
        let mut event = serde_json::Map::new();
        let code = match f {
            Frontend::Query(q) => {
                event.insert("db_query".into(), json!(crate::audit::clip(&q, 16 * 1024)));
                codes::DB_SESSION_QUERY
            }
            Frontend::Parse { name, query } => {
                event.insert("statement_name".into(), json!(name));
                event.insert("query".into(), json!(crate::audit::clip(&query, 16 * 1024)));
                codes::PG_PARSE
            }
            Frontend::Bind { portal, statement, params } => {
                event.insert("portal_name".into(), json!(portal));
                event.insert("statement_name".into(), json!(statement));
                event.insert("parameters".into(), json!(params.iter().map(|p| crate::audit::clip(p, 1024)).collect::<Vec<_>>()));
                codes::PG_BIND
            }
            Frontend::Execute { portal } => {
                event.insert("portal_name".into(), json!(portal));
                codes::PG_EXECUTE
            }
            Frontend::Terminate | Frontend::Other(_) => return,
        };
        self.queries.send_coded(code, &s.base, event).await;
    }
}

/// Why a connection to a database did not come about.
enum Connect {
    /// The database answered with an error (its bytes, for the client).
    Refused(Vec<u8>),
    /// Anything else (the reason, for the client and the log).
    Failed(Error),
}

impl From<Error> for Connect {
    fn from(e: Error) -> Self {
        Connect::Failed(e)
    }
}

/// Reads the database's answers to the `StartupMessage` until `AuthenticationOk`: those bytes
/// (the client gets them as they are). An `ErrorResponse` is the database's refusal; a request
/// for a password means `pg_hba.conf` does not ask for the certificate.
async fn authenticate(server: &mut BoxStream, name: &str) -> std::result::Result<Vec<u8>, Connect> {
    let mut buf: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut chunk = [0u8; 4096];
    loop {
        while let Some((tag, body, n)) = pg::read_message(&buf[at..])
            .map_err(|e| Connect::Failed(Error::connection_problem(format!("database {name:?}: {}", e.message))))?
        {
            match tag {
                b'R' => {
                    let code = body.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(u32::MAX);
                    if code == 0 {
                        return Ok(buf);
                    }
                    return Err(Connect::Failed(Error::access_denied(format!(
                        "database {name:?} asked for a password (authentication method {code}); its pg_hba.conf must accept Teleport's certificates: hostssl all all <network> cert"
                    ))));
                }
                b'E' => return Err(Connect::Refused(buf[at..at + n].to_vec())),
                _ => at += n,
            }
        }
        if buf.len() > MAX_AUTH_BYTES {
            return Err(Connect::Failed(Error::connection_problem(format!("database {name:?} sent too much before authenticating"))));
        }
        let n = server.read(&mut chunk).await.map_err(|e| Connect::Failed(Error::connection_problem(format!("database {name:?}: {e}"))))?;
        if n == 0 {
            return Err(Connect::Failed(Error::connection_problem(format!("database {name:?} closed the connection"))));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
