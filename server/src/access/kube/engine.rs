//! The cluster that owns a Kubernetes cluster decides, here, for every request: it verifies the
//! user's certificate itself (the one its own proxy received, or the one a trusted root's proxy
//! forwarded through the tunnel, checked against that root's user CA), maps a root's roles
//! through its role map, and with those roles checks `kubernetes_labels`,
//! `kubernetes_resources` and the impersonation the request asks for. It then sends the
//! request to the API server with its own credentials and `Impersonate-User` /
//! `Impersonate-Group` headers it sets itself (what came in is replaced, never appended to),
//! and audits it in its own log. Streams (exec, attach, port-forward, watch, logs) pass
//! through; an interactive exec is recorded like an SSH session.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use shared::client::BoxStream;
use shared::error::{Error, Result};
use shared::identity::UserIdentity;
use shared::kube::{KubeRequest, Requested};
use shared::rbac::AccessChecker;
use shared::resource::{KubeCluster, LabelMap};
use tokio::sync::Mutex;

use super::exec::{FrameReader, exit_code, resize};
use super::upstream::Upstream;
pub use crate::access::cluster::Forwarded;
use crate::access::cluster::ServiceAccess;
use crate::audit::codes;
use crate::live::{Live, LiveEntry};
use crate::shutdown::Shutdown;

/// Bodies of answers: the API server's, or ours.
pub use crate::access::Body;

/// The Kubernetes service of this process.
pub struct KubeEngine {
    /// The cluster: who callers are, where events and recordings go.
    pub access: Arc<dyn ServiceAccess>,
    /// The clusters it serves, by name.
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// Static labels of every cluster it serves.
    pub labels: LabelMap,
    /// Dynamic labels: commands run every period, their output the label's value.
    pub dynamic: Arc<crate::access::labels::DynamicLabels>,
    /// This process.
    pub host_id: String,
    /// This process's host name.
    pub hostname: String,
    /// Where live streams register, for locks to end them.
    pub live: Arc<Live>,
    /// The most output one recording keeps.
    pub recording_max_bytes: u64,
    /// How often the clusters are heartbeated.
    pub heartbeat: Duration,
    /// In a process of its own, reached through its tunnel.
    pub tunnel: bool,
}

/// What one connection may do, decided once when it starts.
struct Conn {
    engine: Arc<KubeEngine>,
    upstream: Arc<Upstream>,
    kube_name: String,
    /// The cluster's labels when the connection began.
    labels: LabelMap,
    identity: UserIdentity,
    /// The cluster that issued the certificate.
    origin: String,
    /// `remote-<user>-<root>` for a root's user, else the user name: the default Kubernetes
    /// user, and the user in this cluster's audit log.
    user: String,
    checker: AccessChecker,
    users: Vec<String>,
    groups: Vec<String>,
    not_after: i64,
    addr: String,
    /// The API server connection this client's requests reuse (HTTP/1.1, one at a time).
    sender: Mutex<Option<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>>,
}

/// A refusal as kubectl reads it: a Kubernetes `Status`, or plain text on a discovery path
/// (`/api`, `/apis`), where kubectl's discovery client cannot read a `Status` and would print
/// only "unknown", while it prints a text body as it is.
pub fn refusal(code: u16, message: &str, discovery: bool) -> Response<Body> {
    let (body, content_type) = if discovery {
        (format!("{message}\n"), "text/plain; charset=utf-8")
    } else {
        (shared::kube::status(code, message), "application/json")
    };
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Answers every request on `stream` with one `Status` (a connection refused as a whole, so
/// that `kubectl` prints why instead of a broken pipe).
pub async fn refuse(stream: BoxStream, code: u16, message: String) {
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let message = message.clone();
        let discovery = shared::kube::is_discovery(req.uri().path());
        async move { Ok::<_, std::convert::Infallible>(refusal(code, &message, discovery)) }
    });
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(false).serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
}

/// Request headers never passed to the API server: hop-by-hop ones, credentials, what this
/// service sets itself.
fn dropped_header(name: &str, upgrade: bool) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("impersonate-")
        || n.starts_with("x-forwarded-")
        || n.starts_with("proxy-")
        || n.starts_with("teleport-")
        || matches!(n.as_str(), "authorization" | "host" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "forwarded")
        || (!upgrade && matches!(n.as_str(), "connection" | "upgrade"))
}

impl KubeEngine {
    /// The service `cfg` describes, deciding through `access` (its kubeconfig read and checked
    /// now); `tunnel` when it is reached through its own reverse tunnel.
    pub fn start(
        cfg: &crate::config::Config,
        k: &crate::config::KubeConfig,
        access: Arc<dyn ServiceAccess>,
        host_id: &str,
        live: Arc<Live>,
        tunnel: bool,
    ) -> Result<Arc<KubeEngine>> {
        let upstreams = super::upstream::load(&k.kubeconfig_file, k.kube_cluster_name.as_deref())?;
        let engine = Arc::new(KubeEngine {
            access,
            upstreams,
            labels: k.labels.clone(),
            dynamic: crate::access::labels::DynamicLabels::new(k.commands.clone()),
            host_id: host_id.to_string(),
            hostname: cfg.nodename.clone(),
            live,
            recording_max_bytes: cfg.recording_max_bytes,
            heartbeat: cfg.node_heartbeat,
            tunnel,
        });
        tracing::info!(clusters = ?engine.upstreams.keys().collect::<Vec<_>>(), tunnel, "Kubernetes service started");
        Ok(engine)
    }

    /// The labels now: static, and the dynamic ones' latest values.
    pub fn current_labels(&self) -> LabelMap {
        self.dynamic.with(&self.labels)
    }

    /// Heartbeats every served cluster until shutdown, then removes them; runs the dynamic
    /// labels' commands (once before the first heartbeat, then each at its period).
    pub async fn run_heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
        self.dynamic.start(&shutdown).await;
        loop {
            let expires = self.access.now() + self.heartbeat * 3;
            for name in self.upstreams.keys() {
                let spec = shared::resource::kube_cluster::KubeClusterSpec {
                    host_id: self.host_id.clone(),
                    hostname: self.hostname.clone(),
                    version: shared::version::VERSION.into(),
                    tunnel: self.tunnel,
                };
                let k = KubeCluster::new(name, self.current_labels(), spec, expires);
                if let Err(e) = self.access.heartbeat(k).await {
                    tracing::warn!(kube_cluster = %name, error = %e, "cannot register the Kubernetes cluster; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.heartbeat) => {}
            }
        }
        for name in self.upstreams.keys() {
            self.access.leave(name).await;
        }
    }

    /// Records an audit event in this cluster's log.
    async fn emit(&self, code: (&str, &str), event: serde_json::Map<String, serde_json::Value>) {
        crate::access::cluster::emit_coded(self.access.as_ref(), code, event).await;
    }

    /// Serves one client connection (HTTP/1.1 over `stream`).
    pub async fn serve(self: Arc<Self>, stream: BoxStream, fwd: Forwarded) {
        let conn = match self.clone().admit(&fwd).await {
            Ok(c) => Arc::new(c),
            Err((code, e)) => {
                tracing::info!(addr = %fwd.addr, via = ?fwd.via_root, error = %e, "refused a Kubernetes connection");
                refuse(stream, code, e.message).await;
                return;
            }
        };
        crate::access::serve_http(stream, conn, Duration::from_secs(60), "Kubernetes client", |c, req| c.handle(req)).await;
    }

    /// Verifies the certificate and decides what the connection may do.
    async fn admit(self: Arc<Self>, fwd: &Forwarded) -> std::result::Result<Conn, (u16, Error)> {
        let denied = |e: Error| (403u16, e);
        // The chain (to a user CA trusted here now), validity, locks, the roles here.
        let admitted = crate::access::cluster::admit_forwarded(self.access.as_ref(), fwd, "Kubernetes clusters").await?;
        let not_after = admitted.not_after;
        let local = self.access.cluster_name();
        let (identity, origin, checker) = (admitted.identity, admitted.origin, admitted.checker);
        if fwd.via_root.is_none() && origin != local {
            // A root's user who came straight to this cluster's own proxy.
            if identity.route_to_cluster.as_deref() != Some(local.as_str()) {
                return Err(denied(Error::access_denied("access denied: remote user can not access remote cluster")));
            }
        } else if identity.route_to_cluster.as_deref().is_some_and(|r| r != local) {
            return Err(denied(Error::access_denied(format!(
                "this certificate is for cluster {:?}, not {local:?}; run 'tsh kube login --cluster=<cluster> <kube cluster>'",
                identity.route_to_cluster.as_deref().unwrap_or_default()
            ))));
        }
        let Some(name) = identity.kubernetes_cluster.clone() else {
            return Err(denied(Error::access_denied(
                "this certificate names no Kubernetes cluster; run 'tsh kube login <kube cluster>' and use the kubeconfig it writes",
            )));
        };
        // Unknown and forbidden read the same.
        let not_found = || (404u16, Error::not_found(format!("kubernetes cluster {name:?} not found")));
        let upstream = self.upstreams.get(&name).cloned().ok_or_else(not_found)?;
        let labels = self.current_labels();
        checker.check_kube_cluster(&labels).map_err(|_| not_found())?;
        let users = checker.kubernetes_users(Some(&labels));
        let groups = checker.kubernetes_groups(Some(&labels));
        if users.is_empty() && groups.is_empty() {
            return Err(denied(Error::access_denied(format!(
                "your roles in cluster {local:?} ({}) allow no kubernetes_users or kubernetes_groups on kubernetes cluster {name:?}; \
                 ask an administrator to set them (for a trusted cluster, on the roles the role_map maps yours to)",
                checker.role_names().join(", ")
            ))));
        }
        let user = if origin == local { identity.username.clone() } else { format!("remote-{}-{origin}", identity.username) };
        Ok(Conn {
            engine: self.clone(),
            upstream,
            kube_name: name,
            labels,
            origin,
            user,
            checker,
            users,
            groups,
            not_after,
            addr: fwd.addr.clone(),
            identity,
            sender: Mutex::new(None),
        })
    }
}

impl Conn {
    fn roles(&self) -> Vec<String> {
        self.checker.role_names()
    }

    fn audit_base(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("user".into(), json!(self.user));
        m.insert("login".into(), json!(self.identity.username));
        m.insert("origin_cluster".into(), json!(self.origin));
        m.insert("remote_roles".into(), json!(self.identity.roles));
        m.insert("roles".into(), json!(self.roles()));
        m.insert("kubernetes_cluster".into(), json!(self.kube_name));
        m.insert("kubernetes_labels".into(), json!(self.labels));
        m.insert("addr.remote".into(), json!(self.addr));
        m.insert("server_id".into(), json!(self.engine.host_id));
        if !self.identity.active_requests.is_empty() {
            m.insert("access_requests".into(), json!(self.identity.active_requests));
        }
        m
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let kreq = KubeRequest::parse(req.method().as_str(), &path, &query);
        let mut event = self.audit_base();
        event.insert("request_path".into(), json!(path));
        event.insert("verb".into(), json!(req.method().as_str()));
        if let Some(k) = &kreq {
            event.insert("resource_api_group".into(), json!(k.api_group));
            event.insert("resource_namespace".into(), json!(k.namespace));
            event.insert("resource_kind".into(), json!(k.resource));
            event.insert("resource_name".into(), json!(k.name));
        }
        let discovery = kreq.is_none() && shared::kube::is_discovery(&path);
        let refused = |code: u16, message: String, mut event: serde_json::Map<String, serde_json::Value>| {
            let me = self.clone();
            async move {
                event.insert("response_code".into(), json!(code));
                event.insert("error".into(), json!(message));
                me.engine.emit(codes::KUBE_REQUEST, event).await;
                refusal(code, &message, discovery)
            }
        };
        if self.engine.access.now().unix_timestamp() >= self.not_after {
            return refused(401, "your certificate has expired; run 'tsh login' again".into(), event).await;
        }
        if kreq.is_none() && !shared::kube::is_discovery(&path) {
            // A path that names no object we can read and is no discovery document: only roles
            // that allow every object reach it.
            let (allow, deny) = self.checker.kube_resources(&self.labels);
            let all = shared::kube::KubeResource::everything();
            if !deny.is_empty() || !allow.contains(&all) {
                let msg = format!("access denied: {path:?} is not a Kubernetes object path your roles' kubernetes_resources cover");
                return refused(403, msg, event).await;
            }
        }
        if let Some(k) = &kreq {
            let (allow, deny) = self.checker.kube_resources(&self.labels);
            if !shared::kube::resources_allow(&allow, &deny, k) {
                let msg = format!(
                    "access denied: the kubernetes_resources of your roles in cluster {:?} ({}) do not allow {} in kubernetes cluster {:?}",
                    self.engine.access.cluster_name(),
                    self.roles().join(", "),
                    k.describe(),
                    self.kube_name
                );
                return refused(403, msg, event).await;
            }
        }
        let requested = Requested::from_headers(req.headers().iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))));
        let imp = match shared::kube::impersonate(&requested, &self.users, &self.groups, &self.user) {
            Ok(i) => i,
            Err(m) => return refused(403, m, event).await,
        };
        event.insert("kubernetes_users".into(), json!([imp.user]));
        event.insert("kubernetes_groups".into(), json!(imp.groups));
        let upgrade = req.headers().contains_key(hyper::header::UPGRADE);
        let (mut parts, body) = req.into_parts();
        let client_upgrade = upgrade.then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>()).flatten();
        let mut out = Request::builder().method(parts.method.clone()).uri(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        for (name, value) in parts.headers.iter() {
            if !dropped_header(name.as_str(), upgrade) {
                out = out.header(name, value);
            }
        }
        out = out.header(hyper::header::HOST, self.upstream.host.as_str());
        if let Some(t) = &self.upstream.bearer {
            out = out.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        out = out.header(HeaderName::from_static("impersonate-user"), imp.user.as_str());
        for g in &imp.groups {
            out = out.header(HeaderName::from_static("impersonate-group"), g.as_str());
        }
        let client_ip = self.addr.rsplit_once(':').map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']')).unwrap_or(&self.addr);
        out = out.header("x-forwarded-for", client_ip).header("x-forwarded-proto", "https");
        let out = match out.body(body) {
            Ok(r) => r,
            Err(e) => return refused(400, format!("cannot forward the request: {e}"), event).await,
        };
        let sent = if upgrade { self.send_upgrade(out).await } else { self.send(out).await };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return refused(502, e.message, event).await,
        };
        let code = resp.status().as_u16();
        event.insert("response_code".into(), json!(code));
        if code == 101 {
            let server_upgrade = hyper::upgrade::on(&mut resp);
            if let Some(client_upgrade) = client_upgrade {
                let me = self.clone();
                let kreq = kreq.clone().unwrap_or_default();
                let ws = resp.headers().get(hyper::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                tokio::spawn(async move { me.stream(client_upgrade, server_upgrade, kreq, query, ws, event).await });
            }
            let (p, _) = resp.into_parts();
            return Response::from_parts(p, Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
        }
        self.engine.emit(codes::KUBE_REQUEST, event).await;
        let (mut p, body) = resp.into_parts();
        for h in ["connection", "keep-alive", "transfer-encoding"] {
            p.headers.remove(h);
        }
        Response::from_parts(p, body.boxed())
    }

    /// Sends on this client's API server connection (a new one when it is gone).
    async fn send(&self, req: Request<hyper::body::Incoming>) -> Result<Response<hyper::body::Incoming>> {
        let mut slot = self.sender.lock().await;
        let what = format!("Kubernetes API server {}", self.upstream.addr);
        crate::access::send_reusing(&mut slot, || self.api_server(), req, &what).await
    }

    /// Sends a request that upgrades (exec, attach, port-forward) on a connection of its own.
    async fn send_upgrade(&self, req: Request<hyper::body::Incoming>) -> Result<Response<hyper::body::Incoming>> {
        let mut sender = self.api_server().await?;
        sender.send_request(req).await.map_err(|e| Error::connection_problem(format!("Kubernetes API server {}: {e}", self.upstream.addr)))
    }

    /// A new connection to the API server.
    async fn api_server(&self) -> Result<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>> {
        crate::access::http1_client(self.upstream.connect().await?, "the Kubernetes API server").await
    }

    /// Relays an upgraded stream; records an interactive exec, audits the rest.
    async fn stream(
        self: Arc<Self>,
        client: hyper::upgrade::OnUpgrade,
        server: hyper::upgrade::OnUpgrade,
        kreq: KubeRequest,
        query: String,
        ws: String,
        mut event: serde_json::Map<String, serde_json::Value>,
    ) {
        let (Ok(client), Ok(server)) = (client.await, server.await) else { return };
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        let params: Vec<(String, String)> =
            query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), percent_decode(v))).collect();
        let flag = |name: &str| params.iter().any(|(k, v)| k == name && (v == "true" || v == "1"));
        let command: Vec<String> = params.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
        let container = params.iter().find(|(k, _)| k == "container").map(|(_, v)| v.clone()).unwrap_or_default();
        event.insert("kubernetes_pod_namespace".into(), json!(kreq.namespace));
        event.insert("kubernetes_pod_name".into(), json!(kreq.name));
        event.insert("kubernetes_container_name".into(), json!(container));
        let cut = Arc::new(tokio::sync::Notify::new());
        let _live = {
            let cut = cut.clone();
            self.engine.live.register(LiveEntry {
                user: self.identity.username.clone(),
                origin: self.origin.clone(),
                roles: self.identity.roles.iter().cloned().chain(self.roles()).collect(),
                login: None,
                issued_at: None,
                requests: self.identity.active_requests.clone(),
                end: Box::new(move |_why| cut.notify_one()),
            })
        };
        if kreq.verb == "portforward" {
            self.engine.emit(codes::KUBE_PORT, event).await;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.notified() => {}
            }
            return;
        }
        // A command with a terminal is a session: recorded, with session.start and session.end.
        // Without one it is Teleport's `exec` event, as in Teleport: a bulk `kubectl exec` (a
        // backup streamed out, say) is not stored a second time.
        let interactive = flag("tty");
        let codec = if ws.contains("channel.k8s.io") {
            Codec::WebSocket
        } else {
            Codec::Spdy(super::exec::spdy_streams(flag("stdin"), flag("stdout"), flag("stderr"), interactive))
        };
        if !interactive {
            event.insert("command".into(), json!(command.join(" ")));
            let code = tokio::select! {
                c = relay_exec(&mut client, &mut server, &codec, None) => c,
                _ = cut.notified() => None,
            };
            event.insert("exitCode".into(), json!(code.map(|c| c.to_string()).unwrap_or_default()));
            self.engine.emit(codes::KUBE_EXEC, event).await;
            return;
        }
        let sid = uuid::Uuid::new_v4().to_string();
        let mut start = event.clone();
        start.insert("sid".into(), json!(sid));
        start.insert("interactive".into(), json!(interactive));
        start.insert("command".into(), json!(command.join(" ")));
        start.insert("proto".into(), json!("kube"));
        self.engine.emit(codes::SESSION_START, start.clone()).await;
        let meta = shared::api::SessionRecording {
            sid: sid.clone(),
            user: self.identity.username.clone(),
            login: self.users.first().cloned().unwrap_or_else(|| self.user.clone()),
            origin_cluster: self.origin.clone(),
            remote_roles: self.identity.roles.clone(),
            roles: self.roles(),
            server_id: self.engine.host_id.clone(),
            server_hostname: format!("{}/{}", kreq.namespace, kreq.name),
            interactive,
            command: Some(command.join(" ")).filter(|c| !c.is_empty()),
            started: self.engine.access.now(),
            ..Default::default()
        };
        let (tap, finish) = crate::node::recorder::start(self.engine.access.recorder(), meta, self.engine.recording_max_bytes);
        let code = tokio::select! {
            c = relay_exec(&mut client, &mut server, &codec, Some(&tap)) => c,
            _ = cut.notified() => None,
        };
        finish.finish(code.unwrap_or(-1)).await;
        start.insert("exitCode".into(), json!(code.map(|c| c.to_string()).unwrap_or_default()));
        self.engine.emit(codes::SESSION_END, start).await;
    }
}

/// How an exec stream is framed: WebSocket (`v5`/`v4.channel.k8s.io`), or SPDY/3.1 with its
/// streams in creation order ([`super::exec::spdy_streams`]).
#[derive(Debug, Clone)]
enum Codec {
    WebSocket,
    Spdy(Vec<u8>),
}

/// One direction's reader for `codec`, keeping `channels`.
enum Reader {
    Ws(FrameReader),
    Spdy(super::exec::SpdyReader),
}

impl Reader {
    fn new(codec: &Codec, channels: &[u8]) -> Reader {
        match codec {
            Codec::WebSocket => Reader::Ws(FrameReader::only(channels)),
            Codec::Spdy(streams) => Reader::Spdy(super::exec::SpdyReader::new(streams.clone(), channels)),
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<super::exec::ChannelData> {
        match self {
            Reader::Ws(r) => r.feed(bytes),
            Reader::Spdy(r) => r.feed(bytes),
        }
    }
}

/// Copies both ways until both ends are done; with a tap, reads the messages as they pass
/// (output and resizes into the recording). The exit code, when the stream said it (SPDY: the
/// error stream's status, or its end with none: 0).
async fn relay_exec<C, S>(client: &mut C, server: &mut S, codec: &Codec, tap: Option<&crate::node::recorder::Tap>) -> Option<i32>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let mut code = None;
    // Only what is kept is read: the exit status, and with a recording the output and resizes.
    let up = async {
        let mut reader = Reader::new(codec, if tap.is_some() { &[4] } else { &[] });
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if let Some(t) = tap {
                for m in reader.feed(&buf[..n]) {
                    if m.channel == 4
                        && let Some((c, r)) = resize(&m.data)
                    {
                        t.resize(c, r);
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut reader = Reader::new(codec, if tap.is_some() { &[1, 2, 3] } else { &[3] });
        let mut buf = vec![0u8; 32 * 1024];
        let mut status: Vec<u8> = Vec::new();
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for m in reader.feed(&buf[..n]) {
                match m.channel {
                    1 | 2 => {
                        if let Some(t) = tap {
                            t.output(&m.data).await;
                        }
                    }
                    3 if m.data.is_empty() => code = code.or(status.is_empty().then_some(0)),
                    3 => {
                        status.extend_from_slice(&m.data);
                        code = exit_code(&status).or(code);
                    }
                    _ => {}
                }
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
    code
}

/// `%xx` and `+` in a query value.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(x) => {
                    out.push(x);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_kept_and_dropped() {
        for h in [
            "Impersonate-User",
            "impersonate-group",
            "Impersonate-Extra-X",
            "Authorization",
            "X-Forwarded-For",
            "Host",
            "Transfer-Encoding",
        ] {
            assert!(dropped_header(h, false), "{h}");
            assert!(dropped_header(h, true), "{h}");
        }
        assert!(dropped_header("Upgrade", false));
        assert!(!dropped_header("Upgrade", true));
        assert!(!dropped_header("Accept", false));
        assert!(!dropped_header("Sec-WebSocket-Protocol", true));
    }

    #[test]
    fn query_values() {
        assert_eq!(percent_decode("echo%20hi+there"), "echo hi there");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
