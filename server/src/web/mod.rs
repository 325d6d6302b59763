//! The web UI on the proxy's web port, with Teleport's routes: server-rendered pages (maud,
//! checked at compile time), a little vendored JavaScript (xterm.js for the terminal), and the
//! JSON endpoints under `/v1/webapi/...` the pages' scripts and other scripts use.
//!
//! ```text
//! browser ──cookie + CSRF form field──▶ page handler ─┐
//! script  ──cookie + Bearer──────────▶ JSON handler ──┼─▶ the user's web session (websessions/<id>)
//! xterm   ──WebSocket, token first───▶ terminal ──────┘      │ its short-lived user certificate
//!                                                             ▼
//!     this proxy's own API (HTTPS) or SSH port, as that user ── a leaf through the tunnel
//! ```
//! The pages are clients of the same API as `tctl` and `tsh`, with the user's own certificate:
//! the same checks (RBAC, `cluster_labels`, the leaf's role map), the same errors and the same
//! audit, for the root and for every leaf.

mod assets;
mod files;
mod json;
mod pages;
mod requests;
pub mod session;
mod sso;
mod terminal;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use shared::client::ApiClient;
use shared::error::{Error, Result};

use crate::api::{ApiError, ApiState};
use crate::proxy::ssh::ProxySsh;
pub use session::WebSession;

/// What the web UI's handlers share: the API's state (auth, rate limits, what ping reports),
/// and the proxy they reach inside the process on the browser's behalf.
pub struct WebState {
    /// The API's state.
    pub api: Arc<ApiState>,
    /// The proxy's SSH side (and its router, for the in-process API).
    pub proxy: Arc<ProxySsh>,
}

impl std::ops::Deref for WebState {
    type Target = ApiState;
    fn deref(&self) -> &ApiState {
        &self.api
    }
}

impl WebState {
    /// How the pages and the terminal reach the proxy for the browser at `client`: streams
    /// inside the process, carrying its address.
    pub fn route(&self, client: Option<std::net::SocketAddr>) -> shared::sshclient::ProxyRoute {
        let (proxy, router) = (self.proxy.clone(), self.proxy.router.clone());
        shared::sshclient::ProxyRoute::InProcess {
            ssh: Arc::new(move || {
                let proxy = proxy.clone();
                Box::pin(async move { Ok(proxy.in_process(client)) })
            }),
            api: Arc::new(move || {
                let router = router.clone();
                Box::pin(async move { Ok(router.api_stream(client)) })
            }),
        }
    }
}

/// CSP violation reports received since start (the browser tests expect none).
pub static CSP_REPORTS: AtomicU64 = AtomicU64::new(0);

/// The Content-Security-Policy of every page: only our own scripts; inline styles because
/// xterm.js sets them (without, the terminal renders black while its text is in the page).
/// `connect-src 'self'` covers the terminal's `wss:` to this same host (CSP Level 3); no other
/// host may be reached from a page.
pub const CSP: &str = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'; \
    script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    report-uri /web/csp-report";

/// The browser's address (the TCP peer of its request), and its connection's place in the
/// limits (for a WebSocket to hold after the upgrade).
pub struct Client(pub Option<std::net::SocketAddr>, pub Option<Arc<crate::limits::Permit>>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> std::result::Result<Self, Self::Rejection> {
        let info = crate::api::conn_info(parts);
        Ok(Client(info.peer, info.permit.clone()))
    }
}

/// A signed-in browser, for pages: without a live session, a redirect to the login page.
pub struct Web(pub WebSession);

impl FromRequestParts<Arc<WebState>> for Web {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<WebState>) -> std::result::Result<Self, Self::Rejection> {
        if let Some(id) = session::cookie_of(&parts.headers)
            && let Ok(Some(mut s)) = session::load(&state.auth, &id).await
        {
            s.client = crate::api::conn_info(parts).peer;
            return Ok(Web(s));
        }
        let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/web");
        Err(Redirect::to(&format!("/web/login?next={}", shared::sso::query_escape(here))).into_response())
    }
}

/// A signed-in script or page script: the session cookie and its bearer token.
pub struct WebApi(pub WebSession);

impl FromRequestParts<Arc<WebState>> for WebApi {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<WebState>) -> std::result::Result<Self, Self::Rejection> {
        let id = session::cookie_of(&parts.headers).ok_or_else(|| ApiError(Error::access_denied("missing session cookie")))?;
        let mut s = session::load(&state.auth, &id)
            .await?
            .ok_or_else(|| ApiError(Error::access_denied("the web session expired or was signed out; sign in again")))?;
        s.client = crate::api::conn_info(parts).peer;
        let bearer = session::bearer_of(&parts.headers).unwrap_or_default();
        if !s.bearer_matches(&bearer) {
            return Err(ApiError(Error::access_denied("bad bearer token")));
        }
        Ok(WebApi(s))
    }
}

/// Checks that a state-changing request comes from our own pages: its `Origin` (or
/// `Sec-Fetch-Site`) names this site.
pub fn check_origin(headers: &HeaderMap) -> Result<()> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) if !host.is_empty() && origin == format!("https://{host}") => Ok(()),
        Some(origin) => Err(Error::access_denied(format!("request refused: it comes from another site ({origin})"))),
        None if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin") => Ok(()),
        None => Err(Error::access_denied("request refused: no Origin header (use the JSON API with a bearer token from scripts)")),
    }
}

/// Checks a sign-in over the JSON API against login CSRF (a foreign page signing the browser in
/// as someone else): the body must be declared `application/json`, which a page of another
/// site cannot send without a CORS preflight this server never grants, and an `Origin` or
/// `Sec-Fetch-Site` the browser adds must name this site. Scripts (curl, tsh) send neither.
pub fn check_json_sign_in(headers: &HeaderMap) -> Result<()> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Error::bad_parameter("sign-in refused: send the body as JSON with Content-Type: application/json"));
    }
    if headers.get(header::ORIGIN).is_some() {
        return check_origin(headers);
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin" | "none") | None => Ok(()),
        Some(other) => Err(Error::access_denied(format!("request refused: it comes from another site (Sec-Fetch-Site: {other})"))),
    }
}

/// Checks a page form: same origin, and the session's CSRF token.
pub fn check_form(headers: &HeaderMap, s: &WebSession, csrf: &str) -> Result<()> {
    check_origin(headers)?;
    if !s.csrf_matches(csrf) {
        return Err(Error::access_denied("request refused: the form's CSRF token is missing or stale; reload the page"));
    }
    Ok(())
}

/// Where to land after signing in: only a page of this site (never another origin, never a
/// scheme-relative URL); empty for the default.
pub fn safe_next(next: &str) -> String {
    if next.starts_with("/web") && !next.starts_with("//") && !next.contains('\\') { next.to_string() } else { String::new() }
}

/// The one resource of `kind` in YAML a page or a script sent, checked as `tctl create`
/// checks a file (errors name `<kind>.yaml`, the document and its line).
pub fn one_resource(kind: &str, yaml: &str) -> Result<serde_json::Value> {
    let source = format!("{kind}.yaml");
    let docs = shared::yaml::parse_documents(&source, yaml.as_bytes())?;
    let [doc] = docs.as_slice() else {
        return Err(Error::bad_parameter(format!("{source}: expected one {kind} resource, found {} documents", docs.len())));
    };
    let at = |e: Error| Error { message: format!("{source}: document 1 (line {}): {}", doc.line, e.message), ..e };
    let res = shared::resource::Resource::from_value(doc.value.clone()).map_err(at)?;
    if res.kind().as_str() != kind {
        return Err(at(Error::bad_parameter(format!("expected a {kind} resource, not {}", res.kind().as_str()))));
    }
    Ok(doc.value.clone())
}

/// A stored resource as YAML to edit (without its storage revision).
pub fn editable_yaml(v: &serde_json::Value) -> String {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("id");
        m.remove("revision");
    }
    shared::yaml::to_yaml(&v)
}

/// The API of `cluster` as the session's user (a leaf through this proxy's tunnel), reached
/// inside the process with the browser's address. Fetches the cluster's host CA when the
/// session does not know it yet (a sign-in brings the root's only).
pub async fn api(s: &WebState, sess: &mut WebSession, cluster: &str) -> Result<ApiClient> {
    let root = s.auth.cluster_name().to_string();
    let route = s.route(sess.client);
    let mut creds = sess.credentials()?;
    if cluster != root && creds.cluster_trust(cluster).is_err() {
        let root_api = shared::sshclient::cluster_api_via(&route, &root, &creds, &sess.user, &root)?;
        let cas: Vec<shared::api::TrustedCa> = root_api.get(&shared::api::path::host_ca_of(cluster)).await?;
        shared::api::TrustedCa::merge(&mut sess.certs.host_cas, cas);
        session::save(&s.auth, sess).await?;
        creds = sess.credentials()?;
    }
    shared::sshclient::cluster_api_via(&route, &root, &creds, &sess.user, cluster)
}

/// Security headers of every web UI response (and of the pages SSO sign-ins end on).
async fn headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    security_headers(resp.headers_mut());
    resp
}

/// Sets the security headers of a page.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// `POST /web/csp-report`: counts (and logs) what a browser refused.
async fn csp_report(body: String) -> StatusCode {
    static LOGGED: crate::throttle::Throttle = crate::throttle::Throttle::new(std::time::Duration::from_secs(5));
    CSP_REPORTS.fetch_add(1, Ordering::Relaxed);
    // Anyone can post reports: one line per five seconds at most, and a bounded one.
    if let Some(skipped) = LOGGED.allow() {
        let text = crate::audit::clip(&body, 500);
        tracing::warn!(report = %text, skipped, "the browser reported a Content-Security-Policy violation");
    }
    StatusCode::NO_CONTENT
}

/// `GET /web/csp-report`: how many reports came (for tests and monitoring).
async fn csp_count() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"count": CSP_REPORTS.load(Ordering::Relaxed)}))
}

/// The web UI's routes.
pub fn router() -> Router<Arc<WebState>> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/web") }))
        .route("/web", get(pages::index))
        .route("/web/", get(pages::index))
        .route("/web/login", get(pages::login_form).post(pages::login))
        .route("/web/logout", post(pages::logout))
        .route("/web/invite/{token}", get(pages::invite_form).post(pages::invite))
        .route("/web/reset/{token}", get(pages::invite_form).post(pages::invite))
        .route("/web/clusters", get(pages::clusters))
        .route("/web/clusters/{name}/labels", post(pages::cluster_labels))
        .route("/web/clusters/{name}/delete", post(pages::cluster_delete))
        .route("/web/go", get(pages::go))
        .route("/web/launch/{*rest}", get(pages::launch))
        .route("/web/cluster/{cluster}/nodes", get(pages::nodes))
        .route("/web/cluster/{cluster}/resources", get(pages::nodes))
        .route("/web/cluster/{cluster}/console/node/{server}/{login}", get(pages::console))
        .route("/web/cluster/{cluster}/console/session/{sid}", get(pages::join_console))
        .route("/web/cluster/{cluster}/sessions", get(pages::sessions))
        .route("/web/cluster/{cluster}/audit", get(pages::audit))
        .route("/web/roles", get(pages::roles).post(pages::save_role))
        .route("/web/roles/new", get(pages::new_role))
        .route("/web/roles/{name}/edit", get(pages::edit_role))
        .route("/web/roles/{name}/delete", post(pages::delete_role))
        .route("/web/trust", get(pages::trust).post(pages::save_trust))
        .route("/web/trust/{name}/edit", get(pages::edit_trust))
        .route("/web/trust/{name}/delete", post(pages::delete_trust))
        .route("/web/requests", get(requests::list).post(requests::create))
        .route("/web/requests/drop", post(requests::drop_all))
        .route("/web/requests/{id}/review", post(requests::review))
        .route("/web/requests/{id}/assume", post(requests::assume))
        .route("/web/csp-report", post(csp_report).get(csp_count))
        .route("/web/app/{file}", get(assets::serve))
        .route("/web/{*rest}", get(pages::not_found))
        .route_layer(axum::middleware::from_fn(headers));
    // The browser's side of SSO (callbacks, sign-in, the pages it ends on): a direct caller's
    // only, as the whole web UI is.
    let sso = Router::new()
        .route("/webapi/{kind}/login/web", get(sso::web_login))
        .route("/v1/webapi/{kind}/login/web", get(sso::web_login))
        .route("/webapi/{kind}/callback", get(sso::callback))
        .route("/v1/webapi/{kind}/callback", get(sso::callback))
        .route("/webapi/saml/acs", post(sso::acs))
        .route("/v1/webapi/saml/acs", post(sso::acs))
        .route("/webapi/saml/acs/{connector}", post(sso::acs))
        .route("/v1/webapi/saml/acs/{connector}", post(sso::acs))
        .route("/web/msg/info/login_success", get(sso::login_success))
        .route("/web/msg/error/login", get(sso::login_error))
        .route("/web/msg/error/login/{kind}", get(sso::login_error));
    let json = Router::new()
        .route("/v1/webapi/sessions/web", post(json::create_session).delete(json::delete_session))
        .route("/webapi/sessions/web", post(json::create_session).delete(json::delete_session))
        .route("/v1/webapi/sites", get(json::sites))
        .route("/webapi/sites", get(json::sites))
        .route("/v1/webapi/sites/{site}/nodes", get(json::site_nodes))
        .route("/v1/webapi/sites/{site}/sessions", get(json::site_sessions))
        .route("/webapi/sites/{site}/sessions", get(json::site_sessions))
        .route("/webapi/sites/{site}/nodes", get(json::site_nodes))
        .route("/v1/webapi/roles", get(json::list_roles).post(json::create_role))
        .route("/v1/webapi/roles/{name}", axum::routing::put(json::update_role).delete(json::delete_role))
        .route("/v1/webapi/trustedcluster", get(json::list_trust).post(json::create_trust))
        .route("/v1/webapi/trustedcluster/{name}", axum::routing::put(json::update_trust).delete(json::delete_trust))
        .route("/v1/webapi/sites/{site}/nodes/{server}/{login}/scp", get(files::download).post(files::upload))
        .route("/webapi/sites/{site}/nodes/{server}/{login}/scp", get(files::download).post(files::upload))
        .route("/v1/webapi/sites/{site}/connect/ws", get(terminal::connect))
        .route("/webapi/sites/{site}/connect/ws", get(terminal::connect));
    // The API's body limit (the YAML editor sends resources of up to 4 MiB): axum's own default
    // is smaller, and a body cut while the client still sends it ends in a reset, not an answer.
    pages.merge(json).merge(sso).layer(axum::extract::DefaultBodyLimit::max(crate::api::BODY_LIMIT))
}
