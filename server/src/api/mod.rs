//! The HTTPS API (axum). Handlers are thin: parse, ask [`crate::authz`] for a caller context
//! and check it, call the auth service, encode. Errors become `{"error":{"message":...}}` with
//! Teleport's status codes; internal details stay in the server log.

mod explain;
mod handlers;
pub mod ratelimit;
mod recordings;
mod resources;
mod sessions;
mod sso;
mod webapi;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use serde::de::DeserializeOwned;
use shared::error::{Error, ErrorBody, Kind};

pub use ratelimit::RateLimiter;

use crate::auth::AuthServer;
use crate::authz::{Authorizer, Context};
use crate::listener::ConnInfo;

/// Addresses `/webapi/ping` reports.
#[derive(Debug, Clone)]
pub struct PingInfo {
    /// Public web address.
    pub public_addr: String,
    /// Web listen address.
    pub web_listen_addr: String,
    /// Public reverse tunnel address.
    pub tunnel_public_addr: String,
    /// Tunnel listen address (the web one when multiplexed).
    pub tunnel_listen_addr: String,
    /// True when SSH and the tunnel share the web port.
    pub tls_routing: bool,
    /// `proxy_service.postgres_public_addr`, if a PostgreSQL port of its own is configured.
    pub postgres_public_addr: Option<String>,
}

/// Shared state of all handlers.
pub struct ApiState {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// The authorizing facade.
    pub authz: Authorizer,
    /// What ping reports.
    pub ping: PingInfo,
    /// Per-address limits for unauthenticated endpoints.
    pub limiter: RateLimiter,
    /// SSO exchanges at once (a request to the identity provider, a signature check), whoever
    /// starts them.
    pub sso_gate: crate::gate::Gate,
    /// This process's agent pools to trusted roots (`tctl status` on a leaf), which the proxy's
    /// trust manager keeps.
    pub agents: Arc<crate::tunnel::state::AgentRegistry>,
}

impl ApiState {
    /// The state of the API of `auth`, reporting `ping`.
    pub fn new(auth: Arc<AuthServer>, ping: PingInfo) -> ApiState {
        ApiState {
            authz: Authorizer::new(auth.clone()),
            auth,
            ping,
            limiter: RateLimiter::default(),
            sso_gate: crate::gate::Gate::new("sign-ins through single sign-on", 16, 64, std::time::Duration::from_secs(10)),
            agents: Default::default(),
        }
    }
}

/// An error as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = if self.0.kind == Kind::Internal {
            tracing::error!(error = %self.0, "internal error serving a request");
            ErrorBody::new("internal error; the details are in the teleport log")
        } else {
            ErrorBody::of(&self.0)
        };
        (status, axum::Json(body)).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection is a JSON error.
pub struct JsonBody<T>(pub T);

/// Any content type is accepted (scripts often `curl -d` without a header); the body must be JSON.
impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large =
            || ApiError(Error::bad_parameter(format!("request body too large: the limit is {} MiB", BODY_LIMIT / (1024 * 1024))));
        // Refuse a declared oversized body before touching it: reading it first would send
        // `100 Continue`, and a client still uploading when we close would get a reset instead of
        // this answer.
        let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError(Error::bad_parameter(format!("invalid request body: {}", rej.body_text())))
            }
        })?;
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes)).map(JsonBody).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ApiError(Error::bad_parameter(format!("invalid request body: {inner}")))
            } else {
                ApiError(Error::bad_parameter(format!("invalid request body: field {path}: {inner}")))
            }
        })
    }
}

/// The connection of the request.
pub fn conn_info(parts: &Parts) -> Arc<ConnInfo> {
    parts
        .extensions
        .get::<Arc<ConnInfo>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(ConnInfo { peer: None, cert: None, origin: None, permit: None }))
}

/// Where the caller is: their address, or for a request through a trusted root's tunnel, the
/// user and address the root's proxy names.
pub struct ClientAddr(pub Option<IpAddr>, pub Option<crate::tunnel::Origin>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let info = conn_info(parts);
        Ok(ClientAddr(info.peer.map(|p| p.ip()), info.origin.clone()))
    }
}

impl ClientAddr {
    /// Text for logs and audit.
    pub fn text(&self) -> String {
        match (&self.1, self.0) {
            (Some(o), _) => format!("{} (user {} of cluster {}, through its tunnel)", o.addr, o.user, o.cluster),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "local".into(),
        }
    }

    /// The rate limiter's key: the address, or for tunnel requests the user and their address,
    /// so that one root user cannot spend everyone's budget.
    pub fn key(&self) -> String {
        match (&self.1, self.0) {
            (Some(o), _) => format!("tunnel:{}:{}", o.caller(), o.addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(&o.addr)),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "local".into(),
        }
    }
}

/// Refuses a request that came through a trusted root's tunnel: the endpoints behind it
/// (password login, invites, joins, the trust handshake) need no certificate, so they are for
/// callers who reach this cluster's own address, never for a root's users.
async fn direct_only(req: Request, next: axum::middleware::Next) -> Response {
    let via_tunnel = req.extensions().get::<Arc<ConnInfo>>().is_some_and(|i| i.via_tunnel());
    if via_tunnel {
        return ApiError(Error::access_denied(
            "this endpoint is not served through a trusted cluster's tunnel; connect to this cluster's own proxy address",
        ))
        .into_response();
    }
    next.run(req).await
}

/// The client certificate the TLS layer verified, or the error every authenticated call gives.
pub fn client_cert(info: &ConnInfo) -> Result<&shared::certs::PeerCert, ApiError> {
    info.cert.as_ref().ok_or_else(|| {
        ApiError(Error::access_denied(
            "this call needs a client certificate: sign in with 'tsh login', or run tctl on the auth host with -c teleport.yaml",
        ))
    })
}

/// An authenticated caller.
pub struct Authed(pub Context);

impl FromRequestParts<Arc<ApiState>> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, Self::Rejection> {
        let info = conn_info(parts);
        let cert = client_cert(&info)?;
        match state.authz.context(cert).await {
            // An app's certificate reaches that app and nothing else (Teleport's `usage:apps`).
            Ok(ctx) if matches!(&ctx.caller, shared::identity::Caller::LocalUser(u) | shared::identity::Caller::RemoteUser { identity: u, .. } if u.route_to_app.is_some()) => {
                Err(Error::access_denied("an application certificate reaches its application only; use your login certificate (tsh login)")
                    .into())
            }
            // A database's certificate likewise (Teleport's `usage:db`).
            Ok(ctx) if matches!(&ctx.caller, shared::identity::Caller::LocalUser(u) | shared::identity::Caller::RemoteUser { identity: u, .. } if u.route_to_database.is_some()) => {
                Err(Error::access_denied("a database certificate reaches its database only; use your login certificate (tsh login)").into())
            }
            Ok(ctx) => Ok(Authed(ctx)),
            Err(e) => {
                tracing::debug!(
                    subject = %cert.common_name,
                    issuer = %format!("{} CA of {}", cert.issuer_ca_type, cert.issuer_cluster),
                    path = %parts.uri.path(),
                    reason = %e,
                    "API caller refused"
                );
                Err(e.into())
            }
        }
    }
}

/// Body size limit (resource files are limited to 4 MiB; JSON adds some), for the API and the
/// web UI alike.
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;

/// The API's routes: what `tctl`, `tsh`, nodes, peers and a root's users through the tunnel
/// reach. The web UI's routes are a peer of these, merged in only on the public listener
/// ([`app`] of `routes().merge(web::router())`): the app a leaf serves through its tunnel has
/// no web route and no unauthenticated endpoint a root's user could reach.
pub fn routes() -> Router<Arc<ApiState>> {
    use shared::api::path;
    let direct = Router::new()
        .route(path::VALIDATE_TRUSTED_CLUSTER, post(webapi::validate_trusted_cluster))
        .route(path::SET_PASSWORD, put(webapi::set_password))
        .route("/webapi/users/password/token/{token}", get(webapi::user_token_info))
        .route(path::LOGIN, post(handlers::login))
        .route(path::JOIN, post(handlers::join))
        .route("/webapi/{kind}/login/console", post(sso::console))
        .route("/v1/webapi/{kind}/login/console", post(sso::console))
        .route_layer(axum::middleware::from_fn(direct_only));
    Router::new()
        .merge(direct)
        .route(path::PING, get(webapi::ping))
        .route("/.well-known/jwks.json", get(webapi::jwks))
        .route("/webapi/ping/{connector}", get(webapi::ping_connector))
        .route(path::FIND, get(webapi::ping))
        .route(path::REISSUE, post(handlers::reissue))
        .route(path::WHOAMI, get(handlers::whoami))
        .route(path::RESOURCES, post(resources::upsert))
        .route("/v1/resources/{kind}", get(resources::list))
        .route("/v1/resources/{kind}/{*name}", get(resources::get_one).delete(resources::remove))
        .route(path::USERS, post(handlers::add_user))
        .route("/v1/users/{name}", patch(handlers::update_user))
        .route("/v1/users/{name}/reset", post(handlers::reset_user))
        .route(path::TOKENS, post(handlers::add_token).get(handlers::list_tokens))
        .route("/v1/tokens/{name}", delete(handlers::delete_token))
        .route("/v1/remoteclusters/{name}", patch(handlers::update_remote_cluster))
        .route(path::CLUSTERS, get(handlers::clusters))
        .route(path::NODES, get(handlers::nodes))
        .route(path::NODE_HEARTBEAT, post(handlers::node_heartbeat))
        .route(path::KUBE_HEARTBEAT, post(handlers::kube_heartbeat))
        .route(path::APP_SESSIONS, post(handlers::create_app_session))
        .route(path::APP_HEARTBEAT, post(handlers::app_heartbeat))
        .route(path::DB_HEARTBEAT, post(handlers::db_heartbeat))
        .route(path::ACCESS_REQUESTS, get(handlers::list_access_requests).post(handlers::create_access_request))
        .route("/v1/requests/{id}", get(handlers::get_access_request).delete(handlers::delete_access_request))
        .route("/v1/requests/{id}/review", post(handlers::review_access_request))
        .route(path::DB_CLIENT_CERT, post(handlers::db_client_cert))
        .route(path::APP_DEFINED, get(handlers::defined_apps).post(handlers::serve_defined_app))
        .route(path::APP_TOKEN, get(handlers::app_token_kid).post(handlers::sign_app_token))
        .route(&format!("{}/{{id}}", path::APP_SESSIONS), axum::routing::delete(handlers::delete_app_session))
        .route(path::HOST_RENEW, post(handlers::renew_host))
        .route(path::NODE_AUTHZ, get(handlers::node_authz))
        .route(path::SIGN_USER, post(handlers::sign_user))
        .route(path::SIGN_DB, post(handlers::sign_db))
        .route(path::DBS, get(handlers::list_dbs))
        .route(path::EXPORT_CAS, get(handlers::export_cas))
        .route(path::EVENTS, get(handlers::list_events).post(handlers::post_events))
        .route(path::MAP_ROLES, post(handlers::map_roles))
        .route(path::HOST_CAS, get(handlers::host_cas))
        .route(path::ACCESS_EXPLAIN, post(explain::explain))
        .route(path::TUNNEL_STATUS, get(handlers::tunnel_status))
        .route(path::ROTATE, post(handlers::rotate))
        .route(path::RECORDINGS, get(recordings::list).post(recordings::save))
        .route("/v1/recordings/{sid}/chunks", get(recordings::chunks).post(recordings::save_chunk))
        .route(path::SESSION_TRACKERS, get(sessions::list).post(sessions::upsert))
        .route("/v1/sessiontrackers/{sid}", get(sessions::get_one).delete(sessions::remove))
        .route(path::MFA_DEVICES, get(handlers::mfa_list))
        .route(path::MFA_BEGIN, post(handlers::mfa_begin))
        .route(path::MFA_FINISH, post(handlers::mfa_finish))
        .route("/v1/mfa/devices/{name}", delete(handlers::mfa_delete))
}

/// An application of `routes`: unknown paths get the API's not-found error, bodies are capped.
pub fn app(routes: Router<Arc<ApiState>>, state: Arc<ApiState>) -> Router {
    routes
        .fallback(|uri: axum::http::Uri| async move { ApiError(Error::not_found(format!("no such endpoint: {}", uri.path()))) })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The API alone (the tunnel's and the in-process app).
pub fn router(state: Arc<ApiState>) -> Router {
    app(routes(), state)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    use axum::body::{Body, Bytes};
    use hyper::body::Frame;
    use tower::ServiceExt;

    use super::*;

    /// A body that records whether anyone read it.
    struct Watched(Arc<AtomicBool>);

    impl hyper::body::Body for Watched {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0.store(true, Ordering::SeqCst);
            Poll::Ready(None)
        }
    }

    async fn post_json(length: Option<usize>, body: Body) -> (StatusCode, String) {
        let app = Router::new()
            .route("/", post(|JsonBody(v): JsonBody<serde_json::Value>| async move { axum::Json(v) }))
            .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
        let mut req = Request::builder().method("POST").uri("/");
        if let Some(n) = length {
            req = req.header(axum::http::header::CONTENT_LENGTH, n);
        }
        let resp = app.oneshot(req.body(body).expect("request")).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_declared_oversized_body_is_refused_unread() {
        let read = Arc::new(AtomicBool::new(false));
        let (status, body) = post_json(Some(BODY_LIMIT + 1), Body::new(Watched(read.clone()))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("request body too large: the limit is 6 MiB"), "{body}");
        assert!(!read.load(Ordering::SeqCst), "the body was read before it was refused");
    }

    #[tokio::test]
    async fn an_undeclared_oversized_body_is_cut_at_the_limit() {
        let (status, body) = post_json(None, Body::from(vec![b' '; BODY_LIMIT + 1])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("request body too large"), "{body}");
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read() {
        let json = b"{\"token\":\"abc\"}".to_vec();
        let (status, body) = post_json(Some(json.len()), Body::from(json)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "{\"token\":\"abc\"}"));
    }
}
