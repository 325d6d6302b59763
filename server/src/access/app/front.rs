//! Applications at a proxy: browsers and `tsh` reach an app at `<app>.<proxy public host>` (or
//! the app's own name under it) on the web port, told apart by TLS server name.
//!
//! - **With an app certificate** (`tsh apps login`, `tsh proxy app`, `curl --cert`): the proxy
//!   checks the session still lives and hands the connection, bytes untouched, to the cluster
//!   that serves the app (this one, or a leaf through its tunnel, with the certificate).
//! - **A browser**: HTTP ends here. Requests without a valid app session go to the launcher
//!   (`/web/launch/<fqdn>` on the proxy's own host); the launch ends on the app's host at
//!   `/x-teleport-auth`, which checks the one-minute state cookie against the launch and sets
//!   the `__Host-` session and subject cookies. Every request is checked against both cookies
//!   and the web session they belong to, loses the app cookies, and goes to the serving cluster
//!   over a connection opened with the session's certificate (one per browser connection).
//!
//! The proxy decides who the user is and whether they may see the cluster; the serving cluster
//! decides whether they may use the app (`engine.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};
use serde::Deserialize;
use shared::app::{AUTH_PATH, LOGOUT_PATH, SESSION_COOKIE, STATE_COOKIE, SUBJECT_COOKIE};
use shared::client::BoxStream;
use shared::error::{Error, Result};
use shared::identity::Caller;

use super::engine::{AppEngine, Body, page, refuse};
use crate::access::cluster::Forwarded;
use crate::auth::AuthServer;
use crate::auth::appsession::StoredAppSession;
use crate::authz::Authorizer;
use crate::proxy::dial::Dialer;
use crate::tunnel::{Origin, Target};

/// Most sessions a proxy remembers lookups of.
const CACHE_MAX: usize = 10_000;

/// A session lookup: when, the count of sessions ended in the process then, what it found.
type Cached = (Instant, u64, Option<StoredAppSession>);

/// The proxy side of application access.
pub struct AppFront {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// Tunnels held here, else by a peer proxy.
    pub dialer: Arc<dyn Dialer>,
    /// This process's app service, if it runs one.
    pub engine: Option<Arc<AppEngine>>,
    /// The proxy's public address (`host:port`); apps live under its host.
    pub public_addr: String,
    cache: std::sync::Mutex<HashMap<String, Cached>>,
}

/// Hands a connection for one of this cluster's apps (the one the certificate routes to) to
/// the app service that serves it: this process's, or one in a process of its own through that
/// process's tunnel (with the certificate, which it verifies itself).
pub async fn serve_in_cluster(auth: &AuthServer, dialer: &dyn Dialer, engine: Option<&Arc<AppEngine>>, stream: BoxStream, fwd: Forwarded) {
    let route = fwd.claimed_user();
    let name = route.as_ref().and_then(|u| u.route_to_app.as_ref()).map(|r| r.name.clone());
    if let Some(e) = engine
        && name.as_ref().is_none_or(|n| e.serves(n))
    {
        // Here (or no route: the engine says what is wrong with the certificate).
        e.clone().serve(stream, fwd).await;
        return;
    }
    let record = match &name {
        Some(n) => auth.services.get::<shared::resource::App>(&crate::services::keys::app(n)).await.ok().flatten(),
        None => None,
    };
    let now = auth.clock.now();
    let host = match record.map(|r| r.value) {
        // Served by an app service of its own config, in a process of its own.
        Some(a) if a.spec.tunnel && a.metadata.expires.is_none_or(|e| e > now) => Some((a.spec.host_id, a.spec.hostname)),
        // Defined by an admin: whichever process's `resources` picked it (reached by tunnel).
        Some(a) if a.spec.host_id.is_empty() => {
            auth.servers_of_app(&a.metadata.name).await.ok().and_then(|v| v.into_iter().find(|s| s.tunnel)).map(|s| (s.host_id, s.hostname))
        }
        _ => None,
    };
    let Some((host_id, hostname)) = host else {
        refuse(stream, 403, "You are not allowed to access this application.".into()).await;
        return;
    };
    match crate::access::dial_agent(dialer, host_id, Target::App, route, &fwd, auth.cluster_name()).await {
        Ok(target) => crate::tunnel::splice(stream, target).await,
        Err(e) => {
            tracing::info!(app = ?name, host = %hostname, error = %e, "the app's service cannot be reached");
            refuse(stream, 503, "The application cannot be reached now.".into()).await;
        }
    }
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = page(302, "Redirecting.");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn cookie_header(r: &mut Response<Body>, v: String) {
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Every `Cookie` header of a request as one value (browsers send one; HTTP/2 may split it).
pub fn cookies_of(headers: &hyper::HeaderMap) -> String {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("; ")
}

fn query_map(uri: &hyper::Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default()
}

/// The body `/x-teleport-auth`'s page posts (Teleport's field names).
#[derive(Deserialize)]
struct AuthBody {
    state_value: String,
    cookie_value: String,
    subject_cookie: String,
}

impl AppFront {
    /// The front for the proxy at `public_addr`.
    pub fn new(auth: Arc<AuthServer>, dialer: Arc<dyn Dialer>, engine: Option<Arc<AppEngine>>, public_addr: &str) -> Arc<AppFront> {
        Arc::new(AppFront { auth, dialer, engine, public_addr: public_addr.to_string(), cache: Default::default() })
    }

    /// Whether a TLS server name is an app's address at this proxy.
    pub fn is_app_host(&self, sni: Option<&str>) -> bool {
        sni.is_some_and(|s| shared::app::under(s, &self.public_addr))
    }

    /// Serves a connection whose TLS this proxy ended with an app certificate (`der`).
    pub async fn serve_cert(self: Arc<Self>, stream: BoxStream, der: Vec<u8>, peer: Option<SocketAddr>) {
        let addr = peer.map(|p| p.to_string()).unwrap_or_default();
        match self.route_cert(&der, &addr).await {
            Ok(Route::Here) => {
                let fwd = Forwarded { cert: der, addr, via_root: None };
                serve_in_cluster(&self.auth, self.dialer.as_ref(), self.engine.as_ref(), stream, fwd).await
            }
            Ok(Route::Leaf(target)) => crate::tunnel::splice(stream, target).await,
            Err(e) => {
                tracing::info!(addr = %addr, error = %e, "refused an application connection");
                let code = match e.kind {
                    shared::error::Kind::ConnectionProblem => 503,
                    shared::error::Kind::AccessDenied if e.message.contains("expired") => 401,
                    _ => 403,
                };
                let text =
                    if code == 503 { "The application's cluster is offline." } else { "You are not allowed to access this application." };
                refuse(stream, code, text.into()).await;
            }
        }
    }

    async fn route_cert(&self, der: &[u8], addr: &str) -> Result<Route> {
        let peer = shared::certs::parse_peer_cert(der)?;
        let ctx = Authorizer::new(self.auth.clone()).context(&peer).await?;
        let identity = match ctx.caller {
            Caller::LocalUser(u) => u,
            _ => return Err(Error::access_denied("application sessions are made by the user's own cluster; connect through its proxy")),
        };
        let route = identity.route_to_app.clone().ok_or_else(|| Error::access_denied("not an application certificate"))?;
        let live = self.auth.app_session(&route.session_id).await?.is_some_and(|s| s.user == identity.username);
        if !live {
            return Err(Error::access_denied("the app session expired or was logged out; run 'tsh apps login' again"));
        }
        self.dial(&route.cluster_name, der, &identity.username, &identity.roles, addr, Some(&ctx.checker)).await
    }

    /// The serving cluster: here, or a leaf (which the user may see) through its tunnel.
    async fn dial(
        &self,
        cluster: &str,
        der: &[u8],
        user: &str,
        roles: &[String],
        addr: &str,
        checker: Option<&shared::rbac::AccessChecker>,
    ) -> Result<Route> {
        let local = self.auth.cluster_name().to_string();
        if cluster.is_empty() || cluster == local {
            return Ok(Route::Here);
        }
        let origin = Origin::with_cert(user, &local, roles, addr, der);
        let stream = crate::access::dial_leaf(&self.auth, self.dialer.as_ref(), checker, cluster, Target::App, origin).await?;
        Ok(Route::Leaf(stream))
    }

    /// Serves a browser's connection to app host `host` (its TLS server name).
    pub async fn serve_browser(self: Arc<Self>, stream: BoxStream, host: String, peer: Option<SocketAddr>) {
        let conn = Arc::new(BrowserConn { front: self, host: shared::app::host_only(&host), peer, upstream: Default::default() });
        crate::access::serve_http(stream, conn, Duration::from_secs(30), "application browser", |c, req| c.handle(req)).await;
    }

    /// The session `id`, as the cluster's state said at most [`crate::auth::appsession::CACHE_FOR`]
    /// ago, if it lives and its web session does.
    async fn session(&self, id: &str) -> Option<StoredAppSession> {
        let ended = crate::auth::appsession::ended();
        if let Ok(c) = self.cache.lock()
            && let Some((at, seen, s)) = c.get(id)
            && at.elapsed() < crate::auth::appsession::CACHE_FOR
            && *seen == ended
        {
            return s.clone();
        }
        let mut s = self.auth.app_session(id).await.ok().flatten();
        if let Some(ws) = s.as_ref().and_then(|s| s.web_session.clone())
            && !crate::auth::websession::live_by_hash(&self.auth, &ws).await.unwrap_or(false)
        {
            s = None;
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.retain(|_, (at, _, _)| at.elapsed() < crate::auth::appsession::CACHE_FOR);
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
            }
            c.insert(id.to_string(), (Instant::now(), ended, s.clone()));
        }
        s
    }

    fn forget(&self, id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(id);
        }
    }

    /// The launcher's address for `host`, returning to `path` there.
    fn launcher(&self, host: &str, path: &str) -> String {
        format!("https://{}/web/launch/{host}?path={}", self.public_addr, shared::sso::query_escape(&shared::app::safe_path(path)))
    }
}

enum Route {
    Here,
    Leaf(BoxStream),
}

/// One browser connection to an app host.
struct BrowserConn {
    front: Arc<AppFront>,
    host: String,
    peer: Option<SocketAddr>,
    /// The connection to the serving cluster this browser connection's requests reuse, and the
    /// session it was opened for.
    upstream: tokio::sync::Mutex<Option<(String, hyper::client::conn::http1::SendRequest<hyper::body::Incoming>)>>,
}

impl BrowserConn {
    fn origin(&self) -> String {
        let port = self.front.public_addr.rsplit_once(':').map(|(_, p)| p).unwrap_or("443");
        if port == "443" { format!("https://{}", self.host) } else { format!("https://{}:{port}", self.host) }
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        // One host per connection: the one its TLS named.
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(shared::app::host_only).unwrap_or_default();
        if host != self.host {
            return page(421, "This connection is for another host.");
        }
        match (req.uri().path(), req.method()) {
            (AUTH_PATH, &Method::GET) => return self.auth_get(&req),
            (AUTH_PATH, &Method::POST) => return self.auth_post(req).await,
            (LOGOUT_PATH, _) => return self.logout(&req).await,
            _ => {}
        }
        let cookies = cookies_of(req.headers());
        let id = shared::app::cookie(&cookies, SESSION_COOKIE).unwrap_or_default().to_string();
        let subject = shared::app::cookie(&cookies, SUBJECT_COOKIE).unwrap_or_default().to_string();
        let session = match self.front.session(&id).await {
            Some(s) if s.subject_matches(&subject) && s.fqdn == self.host => s,
            _ => {
                let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                return redirect(&self.front.launcher(&self.host, pq));
            }
        };
        self.forward(req, &id, &session).await
    }

    /// Opens a connection to the serving cluster with the session's certificate.
    async fn open(&self, s: &StoredAppSession) -> Result<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>> {
        let der = shared::certs::first_pem_der(&s.tls_cert, "CERTIFICATE")?;
        let addr = self.peer.map(|p| p.to_string()).unwrap_or_default();
        let stream: BoxStream = match self.front.dial(&s.route.cluster_name, &der, &s.user, &[], &addr, None).await? {
            Route::Leaf(st) => st,
            Route::Here => {
                let (a, b) = tokio::io::duplex(64 * 1024);
                let front = self.front.clone();
                tokio::spawn(async move {
                    let fwd = Forwarded { cert: der, addr, via_root: None };
                    serve_in_cluster(&front.auth, front.dialer.as_ref(), front.engine.as_ref(), Box::new(b), fwd).await
                });
                Box::new(a)
            }
        };
        crate::access::http1_client(stream, "the app service").await
    }

    async fn forward(&self, mut req: Request<hyper::body::Incoming>, id: &str, s: &StoredAppSession) -> Response<Body> {
        // The app's cookies only; ours stop here.
        let cookies = cookies_of(req.headers());
        req.headers_mut().remove(header::COOKIE);
        if let Some(kept) = shared::app::strip_app_cookies(&cookies)
            && let Ok(v) = HeaderValue::from_str(&kept)
        {
            req.headers_mut().insert(header::COOKIE, v);
        }
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let on_client = upgrade.then(|| hyper::upgrade::on(&mut req));
        let sent = if upgrade {
            match self.open(s).await {
                Ok(mut sender) => sender.send_request(req).await.map_err(|e| Error::connection_problem(e.to_string())),
                Err(e) => Err(e),
            }
        } else {
            let mut guard = self.upstream.lock().await;
            let reuse = match guard.as_mut() {
                Some((sid, sender)) if sid == id && !sender.is_closed() => sender.ready().await.is_ok(),
                _ => false,
            };
            if !reuse {
                match self.open(s).await {
                    Ok(sender) => *guard = Some((id.to_string(), sender)),
                    Err(e) => {
                        tracing::info!(app = %s.route.name, cluster = %s.route.cluster_name, error = %e, "cannot reach the application's cluster");
                        return page(503, "The application's cluster cannot be reached now.");
                    }
                }
            }
            match guard.as_mut() {
                Some((_, sender)) => sender.send_request(req).await.map_err(|e| Error::connection_problem(e.to_string())),
                None => Err(Error::internal("no connection")),
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(app = %s.route.name, error = %e, "the application's cluster did not answer");
                return page(502, "The application did not answer.");
            }
        };
        crate::access::join_upgrades(on_client, &mut resp);
        resp.map(|b| b.boxed())
    }

    /// `GET /x-teleport-auth`: the launch's first visit sets the state cookie and goes back to
    /// the launcher; its second (with `state`) serves the page that posts the session back.
    fn auth_get(&self, req: &Request<hyper::body::Incoming>) -> Response<Body> {
        let q = query_map(req.uri());
        let path = shared::app::safe_path(q.get("path").map(String::as_str).unwrap_or("/"));
        let Some(state) = q.get("state") else {
            let state = shared::certs::random_hex(16);
            let mut to = format!("https://{}/web/launch/{}", self.front.public_addr, self.host);
            if let (Some(c), Some(a)) = (q.get("cluster"), q.get("addr")) {
                to.push_str(&format!("/{}/{}", shared::sso::query_escape(c), shared::sso::query_escape(a)));
            }
            to.push_str(&format!("?state={state}&path={}", shared::sso::query_escape(&path)));
            let mut r = redirect(&to);
            cookie_header(&mut r, format!("{STATE_COOKIE}={state}; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"));
            return r;
        };
        let _ = state;
        let nonce = shared::certs::random_hex(16);
        // The session id is in the fragment (never sent to a server, never in a log).
        let target = serde_json::to_string(&path).unwrap_or_else(|_| "\"/\"".into()).replace('<', "\\u003c");
        let script = format!(
            "(function(){{var q=new URLSearchParams(location.search);var h=new URLSearchParams(location.hash.slice(1));\
             fetch('{AUTH_PATH}',{{method:'POST',credentials:'same-origin',headers:{{'Content-Type':'application/json'}},\
             body:JSON.stringify({{state_value:q.get('state')||'',cookie_value:h.get('value')||'',subject_cookie:q.get('subject')||''}})}})\
             .then(function(r){{if(r.ok){{location.replace({target});}}else{{document.getElementById('m').textContent=\
             'The application session could not start. Open the application again from the resources page.';}}}});}})();"
        );
        let body = maud::html! {
            (maud::DOCTYPE)
            html { head { meta charset="utf-8"; title { "Opening the application" } }
              body { p id="m" { "Opening the application…" } script nonce=(nonce) { (maud::PreEscaped(script)) } } }
        }
        .into_string();
        let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        r
    }

    /// `POST /x-teleport-auth`: the state in the cookie must be the launch's, the session and
    /// its subject the launcher's for this host; then the session's cookies are set.
    async fn auth_post(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        use subtle::ConstantTimeEq;
        let denied = || page(403, "The application session could not start. Open the application again.");
        if let Some(o) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && o != self.origin()
        {
            return denied();
        }
        let cookies = cookies_of(req.headers());
        let state_cookie = shared::app::cookie(&cookies, STATE_COOKIE).unwrap_or_default().to_string();
        let Ok(body) = Limited::new(req.into_body(), 8 * 1024).collect().await else { return denied() };
        let Ok(b) = serde_json::from_slice::<AuthBody>(&body.to_bytes()) else { return denied() };
        let state_ok = !state_cookie.is_empty() && bool::from(state_cookie.as_bytes().ct_eq(b.state_value.as_bytes()));
        if !state_ok {
            tracing::info!(host = %self.host, "refused an app launch: its state does not match this browser's");
            return denied();
        }
        self.front.forget(&b.cookie_value);
        let Some(s) = self.front.session(&b.cookie_value).await else { return denied() };
        if !s.subject_matches(&b.subject_cookie) || s.fqdn != self.host {
            return denied();
        }
        let max_age = (s.expires - self.front.auth.clock.now().unix_timestamp()).max(0);
        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")).map_err(|never| match never {}).boxed());
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in [(SESSION_COOKIE, &b.cookie_value), (SUBJECT_COOKIE, &b.subject_cookie)] {
            cookie_header(&mut r, format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=None"));
        }
        cookie_header(&mut r, format!("{STATE_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"));
        r
    }

    /// `/teleport-logout`: ends the app session and drops its cookies.
    async fn logout(&self, req: &Request<hyper::body::Incoming>) -> Response<Body> {
        let cookies = cookies_of(req.headers());
        let id = shared::app::cookie(&cookies, SESSION_COOKIE).unwrap_or_default().to_string();
        let subject = shared::app::cookie(&cookies, SUBJECT_COOKIE).unwrap_or_default();
        if let Some(s) = self.front.session(&id).await
            && s.subject_matches(subject)
        {
            let _ = self.front.auth.delete_app_session(&id, &s.user).await;
        }
        self.front.forget(&id);
        let mut r = redirect(&format!("https://{}/web", self.front.public_addr));
        for name in [SESSION_COOKIE, SUBJECT_COOKIE] {
            cookie_header(&mut r, format!("{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None"));
        }
        r
    }
}
