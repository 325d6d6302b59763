//! The cluster that serves an app decides, here, for every connection a proxy opens to it: it
//! verifies the app certificate itself (its own proxy's user's, or a trusted root's user's,
//! against that root's user CA), finds the app the certificate routes to, and checks the
//! `app_labels` of the roles it maps. Then it proxies HTTP to the app, adding who the user is
//! in a token it signs with its own `jwt` CA and the `X-Forwarded-*` headers (what the client
//! sent under those names is dropped), or, for a `tcp://` app, the bytes. A refusal is a plain
//! 403 page naming nothing inside; each request is audited here, with the mapped roles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use shared::client::BoxStream;
use shared::error::{Error, Result};
use shared::identity::{RouteToApp, UserIdentity};
use shared::resource::App;
use shared::template::Traits;
use tokio::sync::Mutex;

use crate::access::cluster::{Forwarded, ServiceAccess};
use crate::audit::codes;
use shared::jwt::{self, TokenSigner};

/// Bodies of answers: the app's, or ours.
pub use crate::access::Body;

/// The app service of a process: the apps it serves and how it reaches them.
pub struct AppEngine {
    /// The cluster: who callers are, where events go, the jwt key.
    pub access: Arc<dyn ServiceAccess>,
    /// The apps of its config (public addresses filled in).
    pub apps: Vec<App>,
    /// `resources`: which apps an admin defined it serves too.
    pub selectors: Vec<shared::labels::Labels>,
    /// Those apps, as the last heartbeat found them.
    dynamic: std::sync::RwLock<Vec<App>>,
    /// Dynamic labels of the configured apps, by name.
    labels: std::collections::BTreeMap<String, Arc<crate::access::labels::DynamicLabels>>,
    /// The cluster's proxy address, for defined apps' default public addresses.
    pub proxy_public: String,
    /// This process.
    pub host_id: String,
    /// This process's host name (`X-Forwarded-Server`).
    pub hostname: String,
    verify: Arc<rustls::ClientConfig>,
    insecure: Arc<rustls::ClientConfig>,
    signer: std::sync::Mutex<Option<(Instant, Arc<dyn TokenSigner>)>>,
    /// How often the apps are heartbeated (they live three intervals).
    pub heartbeat: Duration,
    /// In a process of its own, reached through its tunnel.
    pub tunnel: bool,
    /// Per-request events, written off the request's path (bounded: a full queue holds the
    /// request back rather than lose its event).
    requests: crate::access::cluster::EventQueue,
}

/// A plain page (refusals, errors): a status and one sentence, nothing about the inside.
pub fn page(code: u16, text: &str) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
    let title = format!("{code} {}", status.canonical_reason().unwrap_or_default());
    let body = maud::html! {
        (maud::DOCTYPE)
        html { head { meta charset="utf-8"; title { (title) } } body { h1 { (title) } p { (text) } } }
    }
    .into_string();
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Answers every request on `stream` with one page (a connection refused as a whole).
pub async fn refuse(stream: BoxStream, code: u16, text: String) {
    let svc = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
        let r = page(code, &text);
        async move { Ok::<_, std::convert::Infallible>(r) }
    });
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(false).serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
}

/// What one connection may do, decided when it starts.
struct Conn {
    engine: Arc<AppEngine>,
    app: App,
    route: RouteToApp,
    identity: UserIdentity,
    /// The cluster that issued the certificate.
    origin: String,
    /// The user here: `remote-<user>-<root>` for a root's user.
    user: String,
    roles: Vec<String>,
    traits: Traits,
    not_after: i64,
    addr: String,
    /// The app connection this client's requests reuse (HTTP/1.1, one at a time).
    upstream: Mutex<Option<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>>,
    /// The fields every event of this connection has.
    base: Arc<crate::audit::EventBase>,
    /// Where the app is.
    to: AppAddr,
    /// The token (as the header's value), until a minute before it ends or the signing key
    /// changes.
    token: std::sync::Mutex<Option<(i64, String, HeaderValue)>>,
}

/// Where the app is, read from its URI once per connection.
#[derive(Default)]
struct AppAddr {
    /// `https://`.
    tls: bool,
    /// `host:port`.
    authority: String,
    /// The URI's path, without a trailing `/`: requests' paths go under it.
    base: String,
}

/// The app's address: scheme, `host:port`, base path.
fn target(app: &App) -> Result<AppAddr> {
    let uri: hyper::Uri = app.spec.uri.parse().map_err(|e| Error::bad_parameter(format!("app {:?}: bad uri: {e}", app.metadata.name)))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http" | "tcp") => false,
        _ => return Err(Error::bad_parameter(format!("app {:?}: unsupported uri scheme", app.metadata.name))),
    };
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let base = uri.path().trim_end_matches('/').to_string();
    Ok(AppAddr { tls, authority, base })
}

impl AppEngine {
    /// The service for `apps`, deciding through `access`; `tunnel` when it is reached through
    /// its own reverse tunnel.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        access: Arc<dyn ServiceAccess>,
        apps: Vec<App>,
        selectors: Vec<shared::labels::Labels>,
        proxy_public: &str,
        host_id: &str,
        hostname: &str,
        heartbeat: Duration,
        tunnel: bool,
        commands: &std::collections::BTreeMap<String, Vec<crate::config::LabelCommand>>,
    ) -> Result<Arc<AppEngine>> {
        let verify = shared::client::tls_client_config(&shared::client::ServerTrust::System, None)?;
        let insecure = shared::client::tls_client_config(&shared::client::ServerTrust::Insecure, None)?;
        let requests = crate::access::cluster::EventQueue::start(access.clone());
        Ok(Arc::new(AppEngine {
            access,
            apps: super::with_public_addrs(&apps, proxy_public),
            selectors,
            dynamic: Default::default(),
            labels: commands.iter().map(|(n, c)| (n.clone(), crate::access::labels::DynamicLabels::new(c.clone()))).collect(),
            proxy_public: proxy_public.to_string(),
            host_id: host_id.to_string(),
            hostname: hostname.to_string(),
            verify: Arc::new(verify),
            insecure: Arc::new(insecure),
            signer: std::sync::Mutex::new(None),
            requests,
            heartbeat,
            tunnel,
        }))
    }

    /// The defined apps its `resources` select, now.
    async fn refresh_defined(&self) {
        if self.selectors.is_empty() {
            return;
        }
        match self.access.defined_apps().await {
            Ok(all) => {
                let mine: Vec<App> = all
                    .into_iter()
                    .filter(|a| !self.apps.iter().any(|s| s.metadata.name == a.metadata.name))
                    .filter(|a| self.selectors.iter().any(|sel| shared::labels::match_labels(sel, &a.metadata.labels)))
                    .collect();
                let mine = super::with_public_addrs(&mine, &self.proxy_public);
                for a in &mine {
                    if let Err(e) = self.access.serve_defined_app(&a.metadata.name, self.heartbeat).await {
                        tracing::warn!(app = %a.metadata.name, error = %e, "cannot register serving the app; retrying");
                    }
                }
                if let Ok(mut d) = self.dynamic.write() {
                    *d = mine;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the apps defined with tctl create; retrying"),
        }
    }

    /// App `name`, if this service serves it (with its dynamic labels' latest values).
    pub fn find(&self, name: &str) -> Option<App> {
        if let Some(a) = self.apps.iter().find(|a| a.metadata.name == name) {
            return Some(self.current(a));
        }
        self.dynamic.read().ok().and_then(|d| d.iter().find(|a| a.metadata.name == name).cloned())
    }

    /// A configured app with its dynamic labels' latest values.
    fn current(&self, a: &App) -> App {
        let mut a = a.clone();
        if let Some(dl) = self.labels.get(&a.metadata.name) {
            a.metadata.labels = dl.with(&a.metadata.labels);
        }
        a
    }

    /// Heartbeats every app until shutdown, then removes those it served; runs the dynamic
    /// labels' commands (once before the first heartbeat, then each at its period).
    pub async fn run_heartbeat(self: Arc<Self>, mut shutdown: crate::shutdown::Shutdown) {
        for dl in self.labels.values() {
            dl.start(&shutdown).await;
        }
        loop {
            self.refresh_defined().await;
            let expires = self.access.now() + self.heartbeat * 3;
            for a in &self.apps {
                let served = App::served(self.current(a), &self.host_id, &self.hostname, self.tunnel, expires);
                if let Err(e) = self.access.heartbeat_app(served).await {
                    tracing::warn!(app = %a.metadata.name, error = %e, "cannot register the app; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.heartbeat) => {}
            }
        }
        for a in &self.apps {
            self.access.leave_app(&a.metadata.name).await;
        }
    }

    /// Whether this process serves app `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The signing key, read from the cluster at most every five seconds (a rotation's
    /// `update_clients` reaches it that soon; the old key stays published until `standby`).
    async fn signer(&self) -> Result<Arc<dyn TokenSigner>> {
        if let Ok(g) = self.signer.lock()
            && let Some((at, s)) = g.as_ref()
            && at.elapsed() < Duration::from_secs(5)
        {
            return Ok(s.clone());
        }
        let fresh = self.access.jwt_signer().await?;
        if let Ok(mut g) = self.signer.lock() {
            *g = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    async fn emit(&self, code: (&str, &str), event: serde_json::Map<String, serde_json::Value>) {
        crate::access::cluster::emit_coded(self.access.as_ref(), code, event).await;
    }

    /// Serves one connection a proxy opened for an app session.
    pub async fn serve(self: Arc<Self>, stream: BoxStream, fwd: Forwarded) {
        let conn = match self.clone().admit(&fwd).await {
            Ok(c) => Arc::new(c),
            Err((code, e)) => {
                tracing::info!(addr = %fwd.addr, via = ?fwd.via_root, error = %e, "refused an application connection");
                let text = if code == 401 {
                    "Your session has expired. Sign in and open the application again."
                } else {
                    "You are not allowed to access this application."
                };
                refuse(stream, code, text.into()).await;
                return;
            }
        };
        conn.engine.emit(codes::APP_SESSION_START, conn.audit_base()).await;
        let tcp = conn.app.spec.uri.starts_with("tcp://");
        if tcp {
            conn.clone().serve_tcp(stream).await;
        } else {
            crate::access::serve_http(stream, conn.clone(), Duration::from_secs(60), "application client", |c, req| c.handle(req)).await;
        }
        conn.engine.emit(codes::APP_SESSION_END, conn.audit_base()).await;
    }

    /// Verifies the certificate and finds what it may reach.
    async fn admit(self: Arc<Self>, fwd: &Forwarded) -> std::result::Result<Conn, (u16, Error)> {
        let denied = |e: Error| (403u16, e);
        let admitted = crate::access::cluster::admit_forwarded(self.access.as_ref(), fwd, "applications").await?;
        let not_after = admitted.not_after;
        let local = self.access.cluster_name();
        let (identity, origin, checker) = (admitted.identity, admitted.origin, admitted.checker);
        let Some(route) = identity.route_to_app.clone() else {
            return Err(denied(Error::access_denied("this certificate is for no application; run 'tsh apps login <app>'")));
        };
        if route.cluster_name != local {
            return Err(denied(Error::access_denied(format!("this certificate is for an app of cluster {:?}", route.cluster_name))));
        }
        let app = self
            .find(&route.name)
            .filter(|a| route.public_addr.is_empty() || a.spec.public_addr.is_empty() || a.spec.public_addr == route.public_addr)
            .ok_or_else(|| denied(Error::not_found(format!("no application {:?} at {:?} here", route.name, route.public_addr))))?;
        checker.check_app(&app.metadata.labels).map_err(denied)?;
        let to = target(&app).map_err(denied)?;
        let user = if origin == local { identity.username.clone() } else { format!("remote-{}-{origin}", identity.username) };
        let traits = if origin == local { identity.traits.clone() } else { identity.remote_traits() };
        let mut conn = Conn {
            engine: self.clone(),
            app,
            route,
            origin,
            user,
            roles: checker.role_names(),
            traits,
            not_after,
            addr: fwd.addr.clone(),
            identity,
            upstream: Mutex::new(None),
            base: crate::audit::EventBase::new(serde_json::Map::new()),
            to,
            token: std::sync::Mutex::new(None),
        };
        conn.base = crate::audit::EventBase::new(conn.make_base());
        Ok(conn)
    }
}

impl Conn {
    fn audit_base(&self) -> serde_json::Map<String, serde_json::Value> {
        self.base.map().clone()
    }

    fn make_base(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("user".into(), json!(self.user));
        m.insert("login".into(), json!(self.identity.username));
        m.insert("origin_cluster".into(), json!(self.origin));
        m.insert("remote_roles".into(), json!(self.identity.roles));
        m.insert("roles".into(), json!(self.roles));
        m.insert("app_name".into(), json!(self.app.metadata.name));
        m.insert("app_uri".into(), json!(self.app.spec.uri));
        m.insert("app_public_addr".into(), json!(self.route.public_addr));
        m.insert("app_labels".into(), json!(self.app.metadata.labels));
        // The session id is a secret's half: events name its hash.
        m.insert("sid".into(), json!(shared::certs::sha256_hex(self.route.session_id.as_bytes())[..16]));
        m.insert("addr.remote".into(), json!(self.addr));
        m.insert("server_id".into(), json!(self.engine.host_id));
        if !self.identity.active_requests.is_empty() {
            m.insert("access_requests".into(), json!(self.identity.active_requests));
        }
        m
    }

    /// The app's token for this user, made again a minute before it ends.
    async fn token(&self, now: i64) -> Result<HeaderValue> {
        let signer = self.engine.signer().await?;
        if let Ok(g) = self.token.lock()
            && let Some((exp, by, t)) = g.as_ref()
            && now < exp - 60
            && by == signer.kid()
        {
            return Ok(t.clone());
        }
        let issuer = self.engine.access.cluster_name();
        let s =
            jwt::Subject { issuer: &issuer, audience: &self.app.spec.uri, username: &self.user, roles: &self.roles, traits: &self.traits };
        let claims = jwt::claims(&s, now, self.not_after);
        let exp = claims["exp"].as_i64().unwrap_or(now);
        let t = signer.sign_token(&claims).await?;
        let t = HeaderValue::from_str(&t).map_err(|e| Error::internal(format!("the app token is not a header value: {e}")))?;
        if let Ok(mut g) = self.token.lock() {
            *g = Some((exp, signer.kid().to_string(), t.clone()));
        }
        Ok(t)
    }

    /// A new connection to the app.
    async fn dial(&self) -> Result<BoxStream> {
        let AppAddr { tls, authority, .. } = &self.to;
        let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&authority))
            .await
            .map_err(|_| Error::connection_problem(format!("connecting to {authority} timed out")))?
            .map_err(|e| Error::connection_problem(format!("connecting to {authority}: {e}")))?;
        shared::tuning::set_nodelay(&tcp);
        if !*tls {
            return Ok(Box::new(tcp));
        }
        let cfg = if self.app.spec.insecure_skip_verify { self.engine.insecure.clone() } else { self.engine.verify.clone() };
        let host = shared::app::host_only(authority);
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| Error::bad_parameter(format!("app host name: {e}")))?;
        let s = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::connection_problem(format!("TLS to {authority}: {e}")))?;
        Ok(Box::new(s))
    }

    async fn handshake(&self) -> Result<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>> {
        crate::access::http1_client(self.dial().await?, "the app").await
    }

    async fn serve_tcp(self: Arc<Self>, stream: BoxStream) {
        match self.dial().await {
            Ok(up) => crate::tunnel::splice(stream, up).await,
            Err(e) => tracing::warn!(app = %self.app.metadata.name, error = %e, "cannot reach the TCP application"),
        }
    }

    /// The request as the app receives it.
    /// Returns the address the browser used (the `Host` the proxy passed on).
    fn rewrite(&self, parts: &mut hyper::http::request::Parts, token: &HeaderValue, upgrade: bool) -> Result<String> {
        // Origin-form (`/path?query`) goes as it came when the app's URI has no path of its own.
        if !self.to.base.is_empty() || parts.uri.authority().is_some() {
            let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            parts.uri = format!("{}{pq}", self.to.base).parse().map_err(|e| Error::bad_parameter(format!("request path: {e}")))?;
        }
        let public = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&self.route.public_addr).to_string();
        let h = &mut parts.headers;
        let drop: Vec<HeaderName> = h
            .keys()
            .filter(|n| shared::app::reserved_header(n.as_str()) || shared::app::hop_header(n.as_str(), upgrade))
            .cloned()
            .collect();
        for n in drop {
            h.remove(&n);
        }
        if let Some(c) = h.get(header::COOKIE).and_then(|v| v.to_str().ok()).map(str::to_string) {
            h.remove(header::COOKIE);
            if let Some(kept) = shared::app::strip_app_cookies(&c)
                && let Ok(v) = HeaderValue::from_str(&kept)
            {
                h.insert(header::COOKIE, v);
            }
        }
        let client_ip = self.addr.rsplit_once(':').map(|(ip, _)| ip.trim_matches(['[', ']'])).unwrap_or(&self.addr).to_string();
        let set = |h: &mut hyper::HeaderMap, n: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(n, v);
            }
        };
        set(h, "host", &self.to.authority);
        set(h, "x-forwarded-proto", "https");
        set(h, "x-forwarded-host", &public);
        set(h, "x-forwarded-server", &self.engine.hostname);
        set(h, "x-forwarded-for", &client_ip);
        set(h, "x-forwarded-ssl", "on");
        h.insert(shared::app::JWT_HEADER, token.clone());
        h.insert(shared::app::CF_HEADER, token.clone());
        let token = token.to_str().unwrap_or_default();
        if let Some(rw) = &self.app.spec.rewrite {
            for hd in &rw.headers {
                if shared::app::reserved_header(&hd.name) {
                    continue;
                }
                let (Ok(name), Some(value)) =
                    (HeaderName::from_bytes(hd.name.as_bytes()), shared::app::expand_header(&hd.value, &self.traits, &self.traits, token))
                else {
                    continue;
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
        }
        Ok(public)
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let now = self.engine.access.now().unix_timestamp();
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let mut event = serde_json::Map::new();
        event.insert("method".into(), json!(method));
        event.insert("path".into(), json!(path));
        event.insert("raw_query".into(), json!(crate::audit::clip(&query, 1024)));
        let resp = self.forward(req, now).await;
        event.insert("status_code".into(), json!(resp.status().as_u16()));
        self.engine.requests.send_coded(codes::APP_SESSION_REQUEST, &self.base, event).await;
        resp
    }

    async fn forward(&self, mut req: Request<hyper::body::Incoming>, now: i64) -> Response<Body> {
        if now >= self.not_after {
            return page(401, "Your session has expired. Sign in and open the application again.");
        }
        let token = match self.token(now).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sign the application token");
                return page(500, "The application cannot be reached now.");
            }
        };
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let on_client = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let public = match self.rewrite(&mut parts, &token, upgrade) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot forward a request to the application");
                return page(400, "The request cannot be forwarded.");
            }
        };
        let out = Request::from_parts(parts, body);
        let sent = if upgrade {
            // An upgraded connection is the client's alone.
            match self.handshake().await {
                Ok(mut s) => s.send_request(out).await.map_err(|e| Error::connection_problem(e.to_string())),
                Err(e) => Err(e),
            }
        } else {
            self.send(out).await
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(app = %self.app.metadata.name, error = %e, "the application did not answer");
                return page(502, "The application did not answer.");
            }
        };
        crate::access::join_upgrades(on_client, &mut resp);
        self.rewrite_response(&mut resp, &public);
        resp.map(|b| b.boxed())
    }

    /// Sends on the connection this client reuses, opening it again when the app closed it.
    async fn send(&self, req: Request<hyper::body::Incoming>) -> Result<Response<hyper::body::Incoming>> {
        let mut slot = self.upstream.lock().await;
        crate::access::send_reusing(&mut slot, || self.handshake(), req, "the app").await
    }

    fn rewrite_response(&self, resp: &mut Response<hyper::body::Incoming>, public: &str) {
        let upgraded = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        let drop: Vec<HeaderName> = h.keys().filter(|n| shared::app::hop_header(n.as_str(), upgraded)).cloned().collect();
        for n in drop {
            h.remove(&n);
        }
        if let Some(loc) = h.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
            let redirect = self.app.spec.rewrite.as_ref().map(|r| r.redirect.as_slice()).unwrap_or_default();
            if let Some(new) = shared::app::rewrite_location(loc, &self.to.authority, redirect, public)
                && let Ok(v) = HeaderValue::from_str(&new)
            {
                h.insert(header::LOCATION, v);
            }
        }
    }
}
